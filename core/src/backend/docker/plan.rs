//! The launch plan on Docker.

use super::GVISOR_RUNTIME;
use crate::backend::shared::{self, s, Names};
use crate::images::ImageSpec;
use crate::launch::{self, LaunchSpec};
use crate::name::{Role, LABEL_CONTENT_HASH};
use crate::plan::{Capture, Plan, Probe, ProbeCheck, Step, SIDECAR_IP};

/// The launch plan on Docker: images, the two networks, the sidecar
/// (created on egress, attached to internal, started, healthy), then the
/// agent on the internal network.
pub fn plan(spec: &LaunchSpec) -> Plan {
    let d = spec.engine.as_str();
    let n = Names::of(spec);
    let mut steps = vec![
        build(
            spec,
            &spec.sidecar_image,
            "build-sidecar-image",
            "Build sidecar image",
        ),
        build(
            spec,
            &spec.agent_image,
            "build-agent-image",
            "Build agent image",
        ),
        network(
            spec,
            Role::Internal,
            "create-internal-network",
            "Create internal network",
        ),
        network(
            spec,
            Role::Egress,
            "create-egress-network",
            "Create egress network",
        ),
        Step::new(
            "create-sidecar",
            "Create sidecar on the egress network",
            create_sidecar(spec, &n),
        )
        .after(&[
            "build-sidecar-image",
            "create-internal-network",
            "create-egress-network",
        ])
        .undo(s(&[d, "rm", "--force", &n.sidecar])),
        Step::new(
            "connect-sidecar-internal",
            "Attach sidecar to the internal network",
            s(&[d, "network", "connect", &n.internal, &n.sidecar]),
        )
        .after(&["create-sidecar"]),
        Step::new(
            "start-sidecar",
            "Start sidecar",
            s(&[d, "start", &n.sidecar]),
        )
        .after(&["connect-sidecar-internal"]),
    ];
    steps.extend(shared::sidecar_ready_steps(
        d,
        &n,
        "start-sidecar",
        Capture::DockerNetworkIp {
            network: n.internal.clone(),
            placeholder: SIDECAR_IP.into(),
        },
    ));
    steps.push(shared::run_agent_step(
        run_agent(spec, &n),
        s(&[d, "rm", "--force", &n.agent]),
    ));
    Plan {
        bottle: spec.bottle.to_string(),
        backend: spec.backend,
        steps,
    }
}

/// Builds an image, skipped when one with the same content hash exists.
/// Images are a cache shared by later launches, so nothing undoes it.
fn build(spec: &LaunchSpec, img: &ImageSpec, id: &str, title: &str) -> Step {
    let d = spec.engine.as_str();
    let mut argv = shared::build_head(d, spec, img);
    argv.extend(shared::build_source(img));
    let label = format!("{{{{ index .Config.Labels \"{LABEL_CONTENT_HASH}\" }}}}");
    shared::build_step(
        spec,
        img,
        (id, title),
        argv,
        Probe {
            argv: s(&[d, "image", "inspect", "--format", &label, &img.tag]),
            check: ProbeCheck::StdoutEquals {
                value: img.content_hash.clone(),
            },
        },
    )
}

fn network(spec: &LaunchSpec, role: Role, id: &str, title: &str) -> Step {
    let d = spec.engine.as_str();
    let name = spec.bottle.resource(role);
    let internal_only = role == Role::Internal;
    let mut argv = s(&[d, "network", "create"]);
    if let Some((internal, egress)) = &spec.subnets {
        argv.extend(s(&[
            "--subnet",
            if internal_only { internal } else { egress },
        ]));
    }
    if internal_only {
        // No route out, and no host address on the bridge: without its
        // IPv4 address the host is not the agent's gateway, so host
        // services (even ones bound to 0.0.0.0) are out of reach.
        argv.extend(s(&[
            "--internal",
            "--opt",
            "com.docker.network.bridge.inhibit_ipv4=true",
        ]));
    }
    argv.extend(shared::labels(spec, role));
    argv.push(name.clone());
    Step::new(id, title, argv).undo(s(&[d, "network", "rm", &name]))
}

fn create_sidecar(spec: &LaunchSpec, n: &Names) -> Vec<String> {
    let mut v = s(&[&spec.engine, "create", "--name", &n.sidecar]);
    v.extend(shared::labels(spec, Role::Sidecar));
    v.extend(s(&["--network", &n.egress]));
    v.extend(sidecar_confinement(spec));
    v.extend(shared::sidecar_tail(spec));
    v
}

fn run_agent(spec: &LaunchSpec, n: &Names) -> Vec<String> {
    let mut v = s(&[&spec.engine, "run", "--detach", "--name", &n.agent]);
    v.extend(shared::labels(spec, Role::Agent));
    v.extend(s(&["--network", &n.internal, "--init"]));
    v.extend(agent_confinement(spec));
    v.extend(shared::agent_tail(spec, "m"));
    v
}

/// The agent's confinement: only the capabilities it needs (no `NET_RAW`),
/// no privilege gain through setuid binaries, a process limit, and gVisor
/// when asked for.
fn agent_confinement(spec: &LaunchSpec) -> Vec<String> {
    let mut v = s(&["--cap-drop", "ALL"]);
    for c in launch::AGENT_CAPABILITIES {
        v.extend(s(&["--cap-add", c]));
    }
    v.extend(s(&["--security-opt", "no-new-privileges"]));
    v.extend(["--pids-limit".into(), launch::AGENT_PIDS_LIMIT.to_string()]);
    if spec.gvisor {
        v.extend(s(&["--runtime", GVISOR_RUNTIME]));
    }
    v
}

/// The sidecar's confinement: no capabilities, a read-only root, a
/// non-root user, limits, and IP forwarding off in its namespace (which
/// would otherwise inherit the host's), so a frame addressed to it is
/// never routed onto the egress network.
fn sidecar_confinement(spec: &LaunchSpec) -> Vec<String> {
    let (uid, gid) = spec.sidecar_user;
    let mut v = super::unprivileged(&uid.to_string(), &gid.to_string());
    v.extend([
        "--pids-limit".into(),
        launch::SIDECAR_PIDS_LIMIT.to_string(),
    ]);
    v.extend([
        "--memory".into(),
        format!("{}m", launch::SIDECAR_MEMORY_MIB),
    ]);
    v.extend([
        "--ulimit".into(),
        format!("nofile={0}:{0}", launch::SIDECAR_NOFILE),
    ]);
    v.extend(s(&["--sysctl", "net.ipv4.ip_forward=0"]));
    v
}
