//! Command-line pieces both planners use: labels, image builds, the
//! sidecar's and the agent's common arguments, and the commands run inside
//! a bottle's containers. Each backend adds what is its own (networks,
//! confinement flags, step order).

use crate::images::{self, ImageSpec};
use crate::launch::{self, agent_env, agent_mounts, sidecar_mounts, BindMount, LaunchSpec};
use crate::name::{Role, LABEL_BOTTLE, LABEL_CONTENT_HASH, LABEL_HOME, LABEL_ROLE};
use crate::plan::{Capture, Step, SIDECAR_EGRESS_IP, SIDECAR_IP};

/// Owned argv from string slices.
pub(super) fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The engine names of a bottle's four resources.
pub(super) struct Names {
    pub internal: String,
    pub egress: String,
    pub sidecar: String,
    pub agent: String,
}

impl Names {
    pub fn of(spec: &LaunchSpec) -> Self {
        let b = &spec.bottle;
        Names {
            internal: b.resource(Role::Internal),
            egress: b.resource(Role::Egress),
            sidecar: b.resource(Role::Sidecar),
            agent: b.resource(Role::Agent),
        }
    }
}

/// `--label k=v` for every label a resource of the bottle in `role` carries:
/// its bottle, its role, and the home that made it.
pub(super) fn labels(spec: &LaunchSpec, role: Role) -> Vec<String> {
    vec![
        "--label".into(),
        format!("{LABEL_BOTTLE}={}", spec.bottle),
        "--label".into(),
        format!("{LABEL_ROLE}={}", role.as_str()),
        "--label".into(),
        format!("{LABEL_HOME}={}", spec.home_id),
    ]
}

/// `PROGRAM build --quiet --tag TAG` with the image's labels (its content
/// hash among them, which the skip probe reads).
pub(super) fn build_head(program: &str, spec: &LaunchSpec, img: &ImageSpec) -> Vec<String> {
    // The agent's build is shown as it goes (a template's can take
    // minutes); the sidecar's is one quick layer.
    let mut argv = s(&[program, "build"]);
    if img.role != Role::Agent {
        argv.push("--quiet".into());
    }
    argv.extend(s(&["--tag", &img.tag]));
    argv.extend(labels(spec, img.role));
    argv.extend([
        "--label".into(),
        format!("{LABEL_CONTENT_HASH}={}", img.content_hash),
    ]);
    if rebuilds(spec, img) {
        argv.push("--no-cache".into());
    }
    for (name, value) in &img.build_args {
        argv.extend(["--build-arg".into(), format!("{name}={value}")]);
    }
    argv
}

/// Whether `img` is built afresh even when an image with its hash exists
/// (the agent's, on `bottle up --rebuild`).
fn rebuilds(spec: &LaunchSpec, img: &ImageSpec) -> bool {
    img.role == Role::Agent && spec.rebuild_agent
}

/// The step building `img` with `argv`: skipped when `probe` finds it built
/// already, unless it is being rebuilt; the agent's shows its output as it
/// goes (a template's build takes minutes).
pub(super) fn build_step(
    spec: &LaunchSpec,
    img: &ImageSpec,
    (id, title): (&str, &str),
    argv: Vec<String>,
    probe: crate::plan::Probe,
) -> Step {
    let mut step = Step::new(id, title, argv);
    if img.role == Role::Agent {
        step = step.streams_output();
    }
    if rebuilds(spec, img) {
        step
    } else {
        step.skip_if(probe)
    }
}

/// `--file DOCKERFILE CONTEXT`, the end of a build.
pub(super) fn build_source(img: &ImageSpec) -> Vec<String> {
    vec![
        "--file".into(),
        img.dockerfile.display().to_string(),
        img.context.display().to_string(),
    ]
}

/// `type=bind,source=…,target=…[,readonly]`, understood by both `docker
/// --mount` and `container --mount`. Manifest validation keeps `,` and `=`
/// out of the paths.
pub(super) fn mount_arg(m: &BindMount) -> String {
    let mut s = format!(
        "type=bind,source={},target={}",
        m.host.display(),
        m.container
    );
    if m.readonly {
        s.push_str(",readonly");
    }
    s
}

fn mounts(list: Vec<BindMount>) -> Vec<String> {
    list.iter()
        .flat_map(|m| ["--mount".to_string(), mount_arg(m)])
        .collect()
}

/// The end of the sidecar's `run`/`create`: its nameservers, mounts, image
/// and command.
pub(super) fn sidecar_tail(spec: &LaunchSpec) -> Vec<String> {
    let mut v = Vec::new();
    for ns in &spec.dns {
        v.extend(s(&["--dns", ns]));
    }
    v.extend(mounts(sidecar_mounts(spec)));
    v.push(spec.sidecar_image.tag.clone());
    v.extend(sidecar_serve_command());
    v
}

/// The end of the agent's `run`: the sidecar as its only nameserver, its
/// CPUs and memory (`memory_unit`: the engine's suffix for MiB), its
/// environment, mounts, image, and the keep-alive command.
pub(super) fn agent_tail(spec: &LaunchSpec, memory_unit: &str) -> Vec<String> {
    // Its only nameserver is the sidecar, which serves no DNS: the agent
    // resolves nothing by itself (a DNS tunnel has no channel), and the
    // engine's resolver never forwards its queries. The proxy resolves
    // allowed names.
    let mut v = s(&["--dns", SIDECAR_IP]);
    if let Some(c) = spec.resources.cpus {
        v.extend(["--cpus".into(), c.to_string()]);
    }
    if let Some(m) = spec.resources.memory_mib {
        v.extend(["--memory".into(), format!("{m}{memory_unit}")]);
    }
    for (k, val) in agent_env(spec) {
        v.extend(["--env".into(), format!("{k}={val}")]);
    }
    v.extend(mounts(agent_mounts(spec)));
    v.push(spec.agent_image.tag.clone());
    v.extend(["sleep".into(), launch::AGENT_KEEPALIVE_SECS.into()]);
    v
}

/// Waiting for the sidecar's proxy to answer, and reading its internal and
/// egress addresses (`capture` of each network), all after `started`, the
/// step that started it.
pub(super) fn sidecar_ready_steps(
    program: &str,
    n: &Names,
    started: &str,
    capture: impl Fn(&str, &str) -> Capture,
) -> [Step; 3] {
    // Reads one of the sidecar's addresses from `inspect`.
    let discover = |(id, title): (&str, &str), what: Capture| {
        Step::new(id, title, s(&[program, "inspect", &n.sidecar]))
            .after(&[started])
            .retry(20, 250)
            .capture(what)
    };
    [
        Step::new(
            "wait-sidecar-healthy",
            "Wait for the sidecar proxy to answer",
            health_argv(program, &n.sidecar),
        )
        .after(&[started])
        // 10 s in all; tried often, since the proxy is usually up within
        // one or two tries and each wasted wait delays the whole launch.
        .retry(200, 50),
        discover(
            (DISCOVER_SIDECAR_IP, "Read the sidecar's internal IP"),
            capture(&n.internal, SIDECAR_IP),
        ),
        discover(
            (DISCOVER_SIDECAR_EGRESS_IP, "Read the sidecar's egress IP"),
            capture(&n.egress, SIDECAR_EGRESS_IP),
        ),
    ]
}

/// The step that reads the sidecar's internal address (where it is not planned).
pub(super) const DISCOVER_SIDECAR_IP: &str = "discover-sidecar-ip";
/// The step that reads the sidecar's egress address (where it is not planned).
pub(super) const DISCOVER_SIDECAR_EGRESS_IP: &str = "discover-sidecar-egress-ip";
/// The step that starts the agent.
pub const RUN_AGENT: &str = "run-agent";
/// The step that builds the sidecar's image.
pub(super) const BUILD_SIDECAR_IMAGE: &str = "build-sidecar-image";
/// The step that builds the agent's image.
pub(super) const BUILD_AGENT_IMAGE: &str = "build-agent-image";

/// What the agent's start is called in a launch's timeline.
pub(super) const RUN_AGENT_TITLE: &str = "Start agent on the internal network";

/// Starting the agent (`argv`), once its image is built and the sidecar
/// answers at a known address; `undo` removes it.
pub(super) fn run_agent_step(argv: Vec<String>, undo: Vec<String>) -> Step {
    Step::new(RUN_AGENT, RUN_AGENT_TITLE, argv)
        .after(&[
            BUILD_AGENT_IMAGE,
            "wait-sidecar-healthy",
            DISCOVER_SIDECAR_IP,
        ])
        .undo(undo)
}

/// `PROGRAM exec SIDECAR bottlebar-sidecar health`.
pub(super) fn health_argv(program: &str, sidecar: &str) -> Vec<String> {
    s(&[
        program,
        "exec",
        sidecar,
        images::SIDECAR_BIN_IN_IMAGE,
        "health",
    ])
}

/// `PROGRAM exec -i SIDECAR bottlebar-sidecar reload`, the rules on stdin.
pub(super) fn reload_argv(program: &str, sidecar: &str) -> Vec<String> {
    control_argv(program, sidecar, "reload")
}

/// `PROGRAM exec -i SIDECAR bottlebar-sidecar decide`, the answer on stdin.
pub(super) fn decide_argv(program: &str, sidecar: &str) -> Vec<String> {
    control_argv(program, sidecar, "decide")
}

/// `PROGRAM exec -i SIDECAR bottlebar-sidecar VERB`: a message on stdin for
/// the running proxy's control socket.
fn control_argv(program: &str, sidecar: &str, verb: &str) -> Vec<String> {
    s(&[
        program,
        "exec",
        "-i",
        sidecar,
        images::SIDECAR_BIN_IN_IMAGE,
        verb,
    ])
}

/// The sidecar container's command.
fn sidecar_serve_command() -> Vec<String> {
    s(&["serve", "--config", images::SIDECAR_CONFIG_IN_CONTAINER])
}

/// The probe's command inside the sidecar's image (whose entrypoint is the
/// sidecar binary): try every direct way out of the agent's network.
pub(super) fn probe_command(targets_json: &str) -> Vec<String> {
    s(&["probe", "--targets", targets_json])
}

/// The probe's confinement on both engines: no capabilities, a read-only
/// root, nobody.
pub(super) fn probe_user() -> String {
    launch::PROBE_USER.to_string()
}
