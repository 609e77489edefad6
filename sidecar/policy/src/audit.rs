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
    /// Whether the request went out.
    pub decision: Verdict,
    /// Why it was denied (or what went wrong upstream), as a short code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReasonCode>,
    /// What the request was refused or changed for, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Credential injected into the request (by secret name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected: Option<String>,
    /// What the line is about: a request (the default), or a step of the
    /// approval queue.
    #[serde(skip_serializing_if = "Kind::is_request")]
    pub kind: Kind,
    /// The proposal the line is about, or the one whose grant allowed the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
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

/// What an audit line records.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A request the agent made.
    #[default]
    Request,
    /// The agent asked for a host (`detail` has the scope and reason).
    Proposal,
    /// The human answered a proposal (`detail` says how, and who).
    Decision,
    /// A temporary grant ended, or a proposal went unanswered.
    Expiry,
}

impl Kind {
    fn is_request(&self) -> bool {
        *self == Kind::Request
    }

    /// `request`, `proposal`, `decision` or `expiry`, as in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Proposal => "proposal",
            Kind::Decision => "decision",
            Kind::Expiry => "expiry",
        }
    }
}

/// Whether a request went out (`allow`) or was refused (`deny`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Sent upstream (it may still have failed there).
    #[default]
    Allow,
    /// Refused by the sidecar.
    Deny,
}

impl Verdict {
    /// `allow` or `deny`, as in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

/// Declares [`ReasonCode`]: each variant, its doc, and its code in the log.
macro_rules! reason_codes {
    ($($(#[doc = $doc:expr])* $variant:ident => $code:literal,)*) => {
        /// Why a request was refused, or what went wrong upstream: the short
        /// code in the audit log and the `x-bottlebar-deny` header.
        #[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ReasonCode {
            $($(#[doc = $doc])* #[serde(rename = $code)] $variant,)*
            /// A code this version does not know (a newer sidecar's log).
            #[serde(other, rename = "other")]
            Other,
        }

        impl ReasonCode {
            /// Every code this version knows.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)*];

            /// The code as the log and the header write it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ReasonCode::$variant => $code,)*
                    ReasonCode::Other => "other",
                }
            }
        }
    };
}

reason_codes! {
    /// An address no rule names exactly.
    IpLiteral => "ip_literal",
    /// No rule names the host.
    HostNotAllowed => "host_not_allowed",
    /// Rules name the host, not the port.
    PortNotAllowed => "port_not_allowed",
    /// The rule limits methods.
    MethodNotAllowed => "method_not_allowed",
    /// The rule limits paths.
    PathNotAllowed => "path_not_allowed",
    /// `TRACE`/`TRACK` refused.
    TraceRefused => "trace_refused",
    /// An injecting rule over a connection that is not verified TLS.
    InjectionNeedsTls => "injection_needs_tls",
    /// A blind tunnel where the rule limits methods or paths.
    TunnelNeedsInspection => "tunnel_needs_inspection",
    /// DNS over HTTPS to a host no rule names exactly.
    Doh => "doh",
    /// The names in one request disagree.
    Fronting => "fronting",
    /// A credential placeholder to a rule that does not inject it.
    Placeholder => "placeholder",
    /// Outbound data carries a secret.
    SecretDetected => "secret_detected",
    /// A body the proxy cannot inspect.
    Uninspectable => "uninspectable",
    /// An allowed name resolved to a private address.
    PrivateAddress => "private_address",
    /// A malformed request.
    BadRequest => "bad_request",
    /// The sidecar has no valid rules: egress is closed.
    RulesUnreadable => "rules_unreadable",
    /// The upstream failed (connect, DNS, HTTP).
    UpstreamFailed => "upstream_failed",
    /// The upstream's certificate did not verify.
    UpstreamTlsVerify => "upstream_tls_verify",
    /// A connection from outside the agent's networks.
    NotAgentNetwork => "not_agent_network",
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_and_write_as_the_log_spells_them() {
        for &c in ReasonCode::ALL.iter().chain([&ReasonCode::Other]) {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ReasonCode>(&json).unwrap(), c);
        }
        let old: AuditEntry =
            serde_json::from_str(r#"{"decision":"deny","reason":"from_the_future"}"#).unwrap();
        assert_eq!(
            (old.decision, old.reason),
            (Verdict::Deny, Some(ReasonCode::Other))
        );
    }
}
