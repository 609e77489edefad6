//! Apple's `container` CLI (macOS 26, container ≥ 1.0): planning, output
//! parsing and error interpretation. `shared/reference/apple-container-cli.md`
//! is the source for every flag and JSON shape used here.
//!
//! Differences from Docker that shape the plan: no `network connect` (the
//! sidecar gets both `--network` flags on one `run`, egress first so it owns
//! the default route), no network aliases (the agent is given an IP), no
//! single-file binds (files are staged into directories), `--internal` means
//! host-only, and the image builder is a container with its own DNS.

mod parse;
mod plan;

pub use parse::{
    builder_dns_matches, container_ip, image_has_label, interpret_failure, parse_containers,
    parse_networks, parse_semver, parse_version, CliFailure,
};
pub use plan::plan;

use super::shared::{probe_command, probe_user, s};

/// Oldest `container` Bottlebar works with: two networks on one container
/// fail to boot before 1.0.0, and the JSON shapes changed then.
pub const MIN_VERSION: (u64, u64, u64) = (1, 0, 0);
/// From this version `container build --dns` reaches the builder even when it
/// is already running; before it, the builder must be recreated with the DNS.
pub const BUILD_DNS_FLAG_VERSION: (u64, u64, u64) = (1, 2, 1);
/// Assumed when planning without asking the CLI (`bottle plan`).
pub const ASSUMED_VERSION: (u64, u64, u64) = (1, 2, 2);

/// The isolation probe on Apple's runtime, which cannot join another
/// container's network namespace: a short-lived container from the
/// sidecar's image on the agent's network, configured as the agent is
/// (the sidecar its only nameserver), without capabilities, as nobody.
pub fn probe_argv(
    engine: &str,
    internal_network: &str,
    sidecar_ip: &str,
    sidecar_image: &str,
    targets_json: &str,
) -> Vec<String> {
    let mut v = s(&[
        engine,
        "run",
        "--rm",
        "--network",
        internal_network,
        "--dns",
        sidecar_ip,
    ]);
    v.extend(s(&["--cap-drop", "ALL", "--read-only"]));
    let id = probe_user();
    v.extend(["--uid".into(), id.clone(), "--gid".into(), id]);
    v.push(sidecar_image.into());
    v.extend(probe_command(targets_json));
    v
}

/// `container ls --all` as JSON.
pub fn list_argv(engine: &str) -> Vec<String> {
    s(&[engine, "ls", "--all", "--format", "json"])
}

/// `container network ls` as JSON.
pub fn network_list_argv(engine: &str) -> Vec<String> {
    s(&[engine, "network", "ls", "--format", "json"])
}

/// `container delete --force NAME…`.
pub fn delete_argv(engine: &str, names: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "delete", "--force"]);
    v.extend(names.iter().cloned());
    v
}

/// `container network delete NAME…`.
pub fn network_delete_argv(engine: &str, names: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "network", "delete"]);
    v.extend(names.iter().cloned());
    v
}

/// `container --version`.
pub fn version_argv(engine: &str) -> Vec<String> {
    s(&[engine, "--version"])
}

/// `container system status` as JSON.
pub fn system_status_argv(engine: &str) -> Vec<String> {
    s(&[engine, "system", "status", "--format", "json"])
}

/// Starts the container service, accepting the kernel install up front
/// (never a prompt on stdin).
pub fn system_start_argv(engine: &str) -> Vec<String> {
    s(&[engine, "system", "start", "--enable-kernel-install"])
}
