//! One line of a bottle's audit log: the sidecar writes it, the core reads it.

use serde::{Deserialize, Serialize};

/// One egress decision. Missing fields read as their defaults, so older logs
/// still read.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(default)]
pub struct AuditEntry {
    /// When the exchange ended (RFC 3339, UTC).
    pub time: String,
    /// The bottle whose agent made the request.
    pub bottle: String,
    /// The request method (`CONNECT` for a tunnel), masked if it held a secret.
    pub method: String,
    /// `http`, `https`, or `tunnel` for an uninspected CONNECT.
    pub scheme: String,
    /// The host asked for, masked if it held a secret.
    pub host: String,
    /// The port asked for.
    pub port: u16,
    /// Path and query, with anything secret in them masked.
    pub path: String,
    /// 1-based index of the rule that allowed the request or refused it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// `allow` or `deny`.
    pub decision: String,
    /// Why it was denied (or what went wrong upstream), as a short code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the request was refused or changed for, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Credential injected into the request (by secret name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected: Option<String>,
    /// Secrets masked in the request before it was sent.
    #[serde(skip_serializing_if = "is_zero")]
    pub redacted: usize,
    /// Held secrets masked in the response before the agent saw it.
    #[serde(skip_serializing_if = "is_zero")]
    pub redacted_in_response: usize,
    /// The HTTP status the agent received.
    pub status: u16,
    /// Request body bytes sent upstream.
    pub bytes_up: u64,
    /// Response body bytes sent to the agent.
    pub bytes_down: u64,
    /// How long the exchange took.
    pub duration_ms: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
