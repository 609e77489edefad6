//! The launch plan on Docker.

use super::GVISOR_RUNTIME;
use crate::backend::shared::{self, s, Names};
use crate::images::ImageSpec;
use crate::launch::{self, LaunchSpec};
use crate::name::{Role, LABEL_CONTENT_HASH};
use crate::plan::{Capture, Plan, Probe, ProbeCheck, Step, SIDECAR_IP};
use crate::subnets::Net;
use std::net::IpAddr;

/// The launch plan on Docker: images, the two networks, the sidecar
/// (created on egress, attached to internal, started, healthy), and the
/// agent on the internal network.
///
/// With the subnets chosen (every real launch), the sidecar's internal
/// address is Bottlebar's to give — the network's second, Docker handing
/// out only addresses of its upper half — so the agent, told that address,
/// starts while the sidecar is still starting. Without them (a plan shown
/// before any are chosen) the agent waits to read the sidecar's address.
pub fn plan(spec: &LaunchSpec) -> Plan {
    let d = spec.engine.as_str();
    let n = Names::of(spec);
    let sidecar_ip = planned_sidecar_addresses(spec).map(|(internal, _)| internal.to_string());
    let mut connect = s(&[d, "network", "connect"]);
    if let Some(ip) = &sidecar_ip {
        connect.extend(s(&["--ip", ip]));
    }
    connect.extend(s(&[&n.internal, &n.sidecar]));
    let mut steps = vec![
        build(
            spec,
            &spec.sidecar_image,
            shared::BUILD_SIDECAR_IMAGE,
            "Build sidecar image",
        ),
        build(
            spec,
            &spec.agent_image,
            shared::BUILD_AGENT_IMAGE,
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
            shared::BUILD_SIDECAR_IMAGE,
            "create-internal-network",
            "create-egress-network",
        ])
        .undo(s(&[d, "rm", "--force", &n.sidecar])),
        Step::new(
            "connect-sidecar-internal",
            "Attach sidecar to the internal network",
            connect,
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
        |network, placeholder| Capture::DockerNetworkIp {
            network: network.into(),
            placeholder: placeholder.into(),
        },
    ));
    let undo_agent = s(&[d, "rm", "--force", &n.agent]);
    steps.push(match &sidecar_ip {
        Some(ip) => {
            let argv = run_agent(spec, &n)
                .into_iter()
                .map(|a| a.replace(SIDECAR_IP, ip))
                .collect();
            // Both images: the self-test's probe, which starts with the
            // agent, runs from the sidecar's.
            Step::new(shared::RUN_AGENT, shared::RUN_AGENT_TITLE, argv)
                .after(&[
                    shared::BUILD_AGENT_IMAGE,
                    shared::BUILD_SIDECAR_IMAGE,
                    "create-internal-network",
                ])
                .undo(undo_agent)
        }
        None => shared::run_agent_step(run_agent(spec, &n), undo_agent),
    });
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

/// The networks' subnets (internal, egress), once chosen.
fn subnets(spec: &LaunchSpec) -> Option<(Net, Net)> {
    let (internal, egress) = spec.subnets.as_ref()?;
    Some((Net::parse(internal)?, Net::parse(egress)?))
}

/// The sidecar's addresses once the subnets are chosen: the second of each
/// network (the first is its gateway; Docker hands out only the internal
/// network's upper half, and nothing else joins the egress network).
pub fn planned_sidecar_addresses(spec: &LaunchSpec) -> Option<(IpAddr, IpAddr)> {
    let (internal, egress) = subnets(spec)?;
    Some((internal.nth(2).into(), egress.nth(2).into()))
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
    if let Some((net, _)) = subnets(spec).filter(|_| internal_only) {
        // Docker hands out only the upper half; the sidecar's address,
        // given by the plan, is below it. The gateway stays the first
        // address (with a range, Docker would take the range's first).
        argv.extend([
            "--ip-range".to_string(),
            net.upper_half().to_string(),
            "--gateway".to_string(),
            net.nth(1).to_string(),
        ]);
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
    if let Some((_, egress_ip)) = planned_sidecar_addresses(spec) {
        v.extend(["--ip".to_string(), egress_ip.to_string()]);
    }
    v.extend(sidecar_confinement(spec));
    v.extend(shared::sidecar_tail(spec));
    v
}

fn run_agent(spec: &LaunchSpec, n: &Names) -> Vec<String> {
    // Images are built here, never pulled: a missing one is an error.
    let mut v = s(&[&spec.engine, "run", "--pull", "never", "--detach"]);
    v.extend(s(&["--name", &n.agent]));
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
    } else {
        v.extend(quick_arp());
    }
    v
}

/// ARP on the agent's one interface gives up after two requests 50 ms
/// apart (the kernel's default is three, 1 s apart). Its network's gateway
/// address is held by no one, by design, and everything the agent sends
/// off-link queues behind an ARP request for it; the isolation probe waits
/// for that request to fail before it can say nobody holds the gateway.
/// Every neighbour on the bridge (the sidecar) answers within microseconds:
/// the same kernel handles both ends. Not under gVisor, whose network stack
/// is its own.
fn quick_arp() -> Vec<String> {
    s(&[
        "--sysctl",
        "net.ipv4.neigh.eth0.mcast_solicit=2",
        "--sysctl",
        "net.ipv4.neigh.eth0.retrans_time_ms=50",
    ])
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
