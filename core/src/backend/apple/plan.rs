//! The launch plan on Apple's runtime.

use super::{ASSUMED_VERSION, BUILD_DNS_FLAG_VERSION};
use crate::backend::shared::{self, s, Names};
use crate::images::ImageSpec;
use crate::launch::{self, LaunchSpec};
use crate::name::{Role, LABEL_CONTENT_HASH};
use crate::plan::{Capture, Plan, Probe, ProbeCheck, Step};

/// The launch plan on Apple's runtime: the builder's DNS where the CLI
/// needs it, images, the two networks, the sidecar (egress first, so it
/// owns the default route), then the agent on the host-only network.
pub fn plan(spec: &LaunchSpec) -> Plan {
    let c = spec.engine.as_str();
    let n = Names::of(spec);
    let version = spec.engine_version.unwrap_or(ASSUMED_VERSION);
    // Before 1.2.1 `build --dns` is ignored while a builder runs: recreate
    // the builder with the DNS, only when it differs.
    let recreate_builder = version < BUILD_DNS_FLAG_VERSION && !spec.dns.is_empty();
    let mut steps = if recreate_builder {
        builder_steps(spec)
    } else {
        Vec::new()
    };
    let build_after: &[&str] = if recreate_builder {
        &["start-builder"]
    } else {
        &[]
    };
    steps.extend([
        build(
            spec,
            &spec.sidecar_image,
            shared::BUILD_SIDECAR_IMAGE,
            "Build sidecar image",
            recreate_builder,
        )
        .after(build_after),
        build(
            spec,
            &spec.agent_image,
            shared::BUILD_AGENT_IMAGE,
            "Build agent image",
            recreate_builder,
        )
        .after(build_after),
        network(
            spec,
            Role::Internal,
            "create-internal-network",
            "Create internal (host-only) network",
        ),
        network(
            spec,
            Role::Egress,
            "create-egress-network",
            "Create egress (NAT) network",
        ),
        Step::new(
            "run-sidecar",
            "Start sidecar on egress, then internal network",
            run_sidecar(spec, &n),
        )
        .after(&[
            shared::BUILD_SIDECAR_IMAGE,
            "create-internal-network",
            "create-egress-network",
        ])
        .undo(s(&[c, "delete", "--force", &n.sidecar])),
    ]);
    steps.extend(shared::sidecar_ready_steps(
        c,
        &n,
        "run-sidecar",
        |network, placeholder| Capture::AppleNetworkIp {
            network: network.into(),
            placeholder: placeholder.into(),
        },
    ));
    steps.push(shared::run_agent_step(
        run_agent(spec, &n),
        s(&[c, "delete", "--force", &n.agent]),
    ));
    Plan {
        bottle: spec.bottle.to_string(),
        backend: spec.backend,
        steps,
    }
}

/// Stop, delete and start the image builder with the bottle's DNS, each
/// skipped when the builder already has it.
fn builder_steps(spec: &LaunchSpec) -> Vec<Step> {
    let c = spec.engine.as_str();
    let probe = |absent_ok| Probe {
        argv: s(&[c, "builder", "status", "--format", "json"]),
        check: ProbeCheck::AppleBuilderDns {
            nameservers: spec.dns.clone(),
            absent_ok,
        },
    };
    let mut start = s(&[c, "builder", "start"]);
    for ns in &spec.dns {
        start.extend(s(&["--dns", ns]));
    }
    vec![
        Step::new(
            "stop-builder",
            "Stop the image builder (to change its DNS)",
            s(&[c, "builder", "stop"]),
        )
        .skip_if(probe(true)),
        Step::new(
            "delete-builder",
            "Delete the image builder",
            s(&[c, "builder", "delete", "--force"]),
        )
        .after(&["stop-builder"])
        .skip_if(probe(true)),
        Step::new(
            "start-builder",
            "Start the image builder with the bottle's DNS",
            start,
        )
        .after(&["delete-builder"])
        .skip_if(probe(false)),
    ]
}

/// Builds an image, skipped when one with the same content hash exists.
fn build(spec: &LaunchSpec, img: &ImageSpec, id: &str, title: &str, builder_has_dns: bool) -> Step {
    let c = spec.engine.as_str();
    let mut argv = shared::build_head(c, spec, img);
    if !builder_has_dns {
        for ns in &spec.dns {
            argv.extend(s(&["--dns", ns]));
        }
    }
    argv.extend(shared::build_source(img));
    shared::build_step(
        spec,
        img,
        (id, title),
        argv,
        Probe {
            argv: s(&[c, "image", "inspect", &img.tag]),
            check: ProbeCheck::AppleImageLabel {
                key: LABEL_CONTENT_HASH.into(),
                value: img.content_hash.clone(),
            },
        },
    )
}

fn network(spec: &LaunchSpec, role: Role, id: &str, title: &str) -> Step {
    let c = spec.engine.as_str();
    let name = spec.bottle.resource(role);
    let mut argv = s(&[c, "network", "create"]);
    if role == Role::Internal {
        argv.push("--internal".into());
    }
    argv.extend(shared::labels(spec, role));
    argv.push(name.clone());
    Step::new(id, title, argv).undo(s(&[c, "network", "delete", &name]))
}

fn run_sidecar(spec: &LaunchSpec, n: &Names) -> Vec<String> {
    let mut v = s(&[&spec.engine, "run", "--detach", "--name", &n.sidecar]);
    v.extend(shared::labels(spec, Role::Sidecar));
    v.extend(s(&["--network", &n.egress, "--network", &n.internal]));
    v.extend(sidecar_confinement(spec));
    v.extend(shared::sidecar_tail(spec));
    v
}

fn run_agent(spec: &LaunchSpec, n: &Names) -> Vec<String> {
    let mut v = s(&[&spec.engine, "run", "--detach", "--name", &n.agent]);
    v.extend(shared::labels(spec, Role::Agent));
    v.extend(s(&["--network", &n.internal, "--init"]));
    v.extend(agent_confinement());
    v.extend(shared::agent_tail(spec, "M"));
    v
}

/// The agent's confinement as far as Apple's CLI allows: only the
/// capabilities it needs (no `NET_RAW`) and a process limit. Apple's CLI has
/// no `no-new-privileges`, seccomp or sysctl flags (`docs/security.md`):
/// each container is its own VM, which is the boundary there.
fn agent_confinement() -> Vec<String> {
    let mut v = s(&["--cap-drop", "ALL"]);
    for c in launch::AGENT_CAPABILITIES {
        v.extend(s(&["--cap-add", c]));
    }
    v.extend([
        "--ulimit".into(),
        format!("nproc={0}:{0}", launch::AGENT_PIDS_LIMIT),
    ]);
    v
}

/// The sidecar's confinement on Apple's runtime: no capabilities, a
/// read-only root, a non-root user, process, file and memory limits.
fn sidecar_confinement(spec: &LaunchSpec) -> Vec<String> {
    let (uid, gid) = spec.sidecar_user;
    let mut v = s(&["--cap-drop", "ALL", "--read-only"]);
    v.extend([
        "--uid".into(),
        uid.to_string(),
        "--gid".into(),
        gid.to_string(),
    ]);
    v.extend([
        "--ulimit".into(),
        format!("nproc={0}:{0}", launch::SIDECAR_PIDS_LIMIT),
    ]);
    v.extend([
        "--ulimit".into(),
        format!("nofile={0}:{0}", launch::SIDECAR_NOFILE),
    ]);
    v.extend([
        "--memory".into(),
        format!("{}M", launch::SIDECAR_MEMORY_MIB),
    ]);
    v
}
