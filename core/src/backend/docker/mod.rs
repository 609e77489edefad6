//! Docker Engine, through the `docker` CLI.
//!
//! Topology: an `--internal` network for the agent and a NAT bridge for
//! egress. The sidecar is created on the egress network (so that network
//! gives it its default route), connected to the internal one, and only
//! then started: the Debian 20.10 CLI cannot take two `--network` flags on
//! `run`. `plan` makes the launch plan; `parse` reads the CLI's output;
//! `events` is the stream of changes that wakes the app; the commands below
//! are the rest of what Bottlebar runs.

mod events;
mod parse;
mod plan;

pub use events::{EventFeed, EventScope};
pub use parse::{
    container_ip, parse_containers, parse_networks, parse_runtimes, parse_subnets, parse_version,
};
pub use plan::{plan, planned_sidecar_addresses};

use super::shared::{probe_command, probe_user, s};
use crate::name::LABEL_BOTTLE;

/// Docker's name for gVisor's runtime.
pub const GVISOR_RUNTIME: &str = "runsc";

/// `docker info` asking for the registered runtimes.
pub fn runtimes_argv(engine: &str) -> Vec<String> {
    s(&[engine, "info", "--format", "{{json .Runtimes}}"])
}

/// `docker version` as JSON.
pub fn version_argv(engine: &str) -> Vec<String> {
    s(&[engine, "version", "--format", "{{json .}}"])
}

/// `docker network ls`: every network's id, whoever owns it.
pub fn all_networks_argv(engine: &str) -> Vec<String> {
    s(&[engine, "network", "ls", "--quiet", "--no-trunc"])
}

/// `docker events` for `scope`'s containers, a line per event (the app
/// refreshes when a burst of them arrives).
pub fn events_argv(engine: &str, scope: &EventScope) -> Vec<String> {
    let filter = format!("label={}", scope.label_filter());
    s(&[
        engine,
        "events",
        "--format",
        "{{.Status}}",
        "--filter",
        "type=container",
        "--filter",
        &filter,
    ])
}

/// The isolation probe: a short-lived container from the sidecar's image,
/// joined to the agent's network namespace. The agent can neither replace
/// it (its image is not the agent's to write) nor trace it (another
/// container); it has no capabilities and runs as nobody.
pub fn probe_argv(
    engine: &str,
    agent: &str,
    sidecar_image: &str,
    targets_json: &str,
) -> Vec<String> {
    let mut v = s(&[
        engine,
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        &format!("container:{agent}"),
    ]);
    v.extend(probe_confinement(sidecar_image));
    v.extend(probe_command(targets_json));
    v
}

/// The probe for an agent under gVisor, whose network stack lives in its
/// sandbox (a runc container joined to its namespace would see none of
/// it): a sibling on the agent's network, under gVisor too, configured as
/// the agent is (the sidecar its only nameserver).
pub fn probe_beside_argv(
    engine: &str,
    internal_network: &str,
    sidecar_ip: &str,
    sidecar_image: &str,
    targets_json: &str,
) -> Vec<String> {
    let mut v = s(&[engine, "run", "--rm", "--pull", "never"]);
    v.extend(s(&["--runtime", GVISOR_RUNTIME]));
    v.extend(s(&["--network", internal_network, "--dns", sidecar_ip]));
    v.extend(probe_confinement(sidecar_image));
    v.extend(probe_command(targets_json));
    v
}

fn probe_confinement(sidecar_image: &str) -> Vec<String> {
    let id = probe_user();
    let mut v = unprivileged(&id, &id);
    v.extend(s(&["--pids-limit", "64", "--memory", "64m", sidecar_image]));
    v
}

/// No capabilities, no privilege gain, a read-only root, user `uid:gid`:
/// what the sidecar and the probe both run with.
fn unprivileged(uid: &str, gid: &str) -> Vec<String> {
    let mut v = s(&[
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
    ]);
    v.extend(["--user".into(), format!("{uid}:{gid}")]);
    v
}

/// The commands that list labelled resources: (ids of containers, ids of networks).
pub fn list_argv(engine: &str) -> (Vec<String>, Vec<String>) {
    let filter = format!("label={LABEL_BOTTLE}");
    (
        s(&[
            engine,
            "ps",
            "--all",
            "--quiet",
            "--no-trunc",
            "--filter",
            &filter,
        ]),
        s(&[
            engine,
            "network",
            "ls",
            "--quiet",
            "--no-trunc",
            "--filter",
            &filter,
        ]),
    )
}

/// `docker inspect` of containers by id.
pub fn inspect_argv(engine: &str, ids: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "inspect", "--type", "container"]);
    v.extend(ids.iter().cloned());
    v
}

/// `docker network inspect` by id.
pub fn network_inspect_argv(engine: &str, ids: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "network", "inspect"]);
    v.extend(ids.iter().cloned());
    v
}

/// `docker rm --force` of containers by name.
pub fn remove_containers_argv(engine: &str, names: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "rm", "--force"]);
    v.extend(names.iter().cloned());
    v
}

/// Detaches a container from a network even if it is not Bottlebar's.
pub fn disconnect_argv(engine: &str, network: &str, container: &str) -> Vec<String> {
    s(&[
        engine,
        "network",
        "disconnect",
        "--force",
        network,
        container,
    ])
}

/// `docker network rm` by name.
pub fn remove_networks_argv(engine: &str, names: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "network", "rm"]);
    v.extend(names.iter().cloned());
    v
}
