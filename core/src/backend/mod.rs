//! Container engines: every engine command line (argv) and every parser of
//! engine output lives here.
//!
//! - [`plan`]: a launch spec becomes a pure-data plan for its backend
//!   (`docker::plan`, `apple::plan`, sharing `shared`);
//! - `engine`: finding an engine, checking it is ready, `doctor`'s view of
//!   it, and the commands run on a launched bottle;
//! - `inventory`: what of Bottlebar's runs on the engine, and removing it;
//! - [`probe_matches`], [`capture`], [`is_subnet_clash`]: reading the output
//!   of a plan's steps, for the executor.

pub mod apple;
pub mod docker;
mod engine;
mod inventory;
mod shared;

pub use engine::{
    default_backend, docker_runtimes, ensure_ready, find_engine, fix, status, Engine, EngineError,
    EngineStatus,
};
pub use inventory::{docker_subnets, inventory, remove, Inventory, LiveContainer, LiveNetwork};
pub use shared::RUN_AGENT;

use crate::launch::LaunchSpec;
use crate::manifest::BackendKind;
use crate::plan::{Capture, Plan, ProbeCheck};
use std::net::IpAddr;

/// The launch plan for `spec` on its backend.
pub fn plan(spec: &LaunchSpec) -> Plan {
    match spec.backend {
        BackendKind::Docker => docker::plan(spec),
        BackendKind::Apple => apple::plan(spec),
    }
}

/// The part of `spec`'s launch plan that builds its images (and, on
/// Apple's runtime, readies the builder for them): `bottle build`. Each
/// build is skipped, as in a launch, when its image is there already.
pub fn image_plan(spec: &LaunchSpec) -> Plan {
    plan(spec).only(&[shared::BUILD_SIDECAR_IMAGE, shared::BUILD_AGENT_IMAGE])
}

/// The sidecar's addresses (internal, egress) when the plan gives them
/// rather than reading them once the sidecar runs: then whatever needs them
/// (the agent, the self-test) can start before the sidecar has.
pub fn planned_sidecar_addresses(spec: &LaunchSpec) -> Option<(IpAddr, IpAddr)> {
    match spec.backend {
        BackendKind::Docker => docker::planned_sidecar_addresses(spec),
        // `container` has no way to ask for an address.
        BackendKind::Apple => None,
    }
}

/// The plan steps after which a launch's self-test may start: everything
/// its probe needs exists then. Docker's probe joins the agent's network
/// namespace (its addresses are planned), so it follows the agent's start;
/// Apple's probe is a container of its own on the internal network, so it
/// starts as soon as the sidecar's addresses are read, beside the agent's
/// start (each container there is a VM: the starts overlap).
pub fn self_test_starts_after(backend: BackendKind) -> &'static [&'static str] {
    match backend {
        BackendKind::Docker => &[shared::RUN_AGENT],
        BackendKind::Apple => &[
            shared::DISCOVER_SIDECAR_IP,
            shared::DISCOVER_SIDECAR_EGRESS_IP,
        ],
    }
}

/// Whether a probe's output says its step can be skipped.
pub fn probe_matches(check: &ProbeCheck, stdout: &str) -> bool {
    match check {
        ProbeCheck::StdoutEquals { value } => stdout.trim() == value,
        ProbeCheck::AppleBuilderDns {
            nameservers,
            absent_ok,
        } => apple::builder_dns_matches(stdout, nameservers, *absent_ok),
        ProbeCheck::AppleImageLabel { key, value } => apple::image_has_label(stdout, key, value),
    }
}

/// The value a step captures from its output.
pub fn capture(capture: &Capture, stdout: &str) -> Result<String, String> {
    match capture {
        Capture::DockerNetworkIp { network, .. } => docker::container_ip(stdout, network),
        Capture::AppleNetworkIp { network, .. } => apple::container_ip(stdout, network),
    }
}

/// Whether a failed step was creating a network whose subnet another
/// network took meanwhile (the launch then chooses again).
pub fn is_subnet_clash(step: &str, stderr: &str) -> bool {
    step.ends_with("-network") && stderr.contains("overlaps")
}
