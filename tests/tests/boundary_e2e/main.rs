//! The escape suite, part two: the classes found by attacking a real bottle
//! around its allowlist (issue 10). Same rules as `escape_e2e.rs`: every
//! attack is made from inside a real agent (or its network namespace),
//! paired with controls proving it could be attempted; a success or an
//! attack that could not be attempted fails the test. Results feed
//! `docs/security.md`.
//!
//! Helpers that need more than the agent has (raw frames, a sniffer, a
//! forwarding router for the control) are the project's own test kit in
//! containers on this machine, driven through Docker directly.

use bottlebar_e2e::escape::*;
use bottlebar_e2e::testkit::server::sha256_hex;
use bottlebar_e2e::*;
use serde_json::Value;
use std::time::Duration;

mod credentials;
mod hidden_secrets;
mod limits_and_egress;
mod packets;
mod sidecar_state;

fn denied_with(v: &Value, code: &str) -> bool {
    status(v) == 403 && deny_code(v) == code
}

/// The secret as hex, the way an agent hides it in a host label.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Output of a shell script in the agent that talks to its proxy by hand.
fn raw_to_proxy(f: &Fixture, request: &str) -> String {
    f.sh(&format!(
        "host=${{HTTP_PROXY#http://}}; (printf '{request}'; sleep 2) | nc -w 5 ${{host%:*}} ${{host##*:}}"
    ))
    .stdout
}

fn docker_ip(container: &str, network: &str) -> String {
    let v: Value =
        serde_json::from_str(&docker(&["inspect", container]).stdout).unwrap_or_default();
    v[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}
