//! The allow/deny decision for one request, and the reasons for a denial.

use crate::audit::ReasonCode;
use crate::doh::DOH_HOSTS;
use crate::path::{prefix_matches, rule_path};
use crate::rule::{is_ip_literal, normalize_host, EgressRule};
use std::fmt;

/// What the agent asked for.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// A `CONNECT host:port` tunnel. When `inspected`, the proxy will see
    /// (and check) every request inside it, so only host and port matter here.
    Connect {
        /// The tunnel's host.
        host: &'a str,
        /// The tunnel's port.
        port: u16,
        /// Whether the proxy terminates the tunnel's TLS and checks each request.
        inspected: bool,
    },
    /// An HTTP request: plain, or decrypted from an intercepted tunnel.
    Http {
        /// The request method.
        method: &'a str,
        /// The host it is for.
        host: &'a str,
        /// The port it is for.
        port: u16,
        /// The path, without the query.
        path: &'a str,
        /// The request declares a DNS-over-HTTPS media type.
        doh_media: bool,
        /// Whether the proxy will send it upstream over verified TLS.
        tls: bool,
    },
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the rule at this index.
    Allow {
        /// Index into the rules.
        rule: usize,
    },
    /// Refused, and why.
    Deny(DenyReason),
}

/// Why a request was refused; its `Display` is what the agent reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // fields are named for what they hold; `rule` is an index into the rules
pub enum DenyReason {
    /// The host is an address no rule names exactly.
    IpLiteral { host: String },
    /// No rule names the host.
    HostNotAllowed { host: String },
    /// Rules name the host, not the port.
    PortNotAllowed {
        host: String,
        port: u16,
        rule: usize,
    },
    /// The rule limits methods.
    MethodNotAllowed { method: String, rule: usize },
    /// The rule limits paths; `problem` says why the path could not be compared.
    PathNotAllowed {
        path: String,
        rule: usize,
        problem: Option<String>,
    },
    /// `TRACE` (and `TRACK`) echo the request, injected credentials
    /// included; refused unless the rule lists the method.
    TraceRefused { method: String, rule: usize },
    /// The rule injects a credential, which travels only over verified TLS.
    InjectionNeedsTls { host: String, rule: usize },
    /// The rule restricts methods or paths, which a blind tunnel cannot check.
    TunnelNeedsInspection { host: String, rule: usize },
    /// A DNS-over-HTTPS endpoint or exchange on a host no rule names exactly.
    Doh { host: String },
    /// The names in one request disagree (CONNECT authority, TLS SNI, `Host`).
    Fronting { detail: String },
    /// The request carries a credential placeholder to a rule that does not inject it.
    Placeholder { secret: String },
    /// Outbound data carries a secret and the rule blocks it (or it was
    /// found where it cannot be masked).
    SecretDetected {
        kind: String,
        location: String,
        rule: Option<usize>,
    },
    /// A body the proxy cannot inspect (unknown or abusive content encoding).
    Uninspectable { detail: String },
    /// The allowed name resolved only to addresses the proxy does not reach.
    PrivateAddress { host: String, detail: String },
    /// The request is malformed or not something the proxy serves.
    BadRequest { detail: String },
}

impl DenyReason {
    /// A short machine-readable tag for the audit log and the
    /// `x-bottlebar-deny` header.
    pub fn code(&self) -> ReasonCode {
        match self {
            DenyReason::IpLiteral { .. } => ReasonCode::IpLiteral,
            DenyReason::HostNotAllowed { .. } => ReasonCode::HostNotAllowed,
            DenyReason::PortNotAllowed { .. } => ReasonCode::PortNotAllowed,
            DenyReason::MethodNotAllowed { .. } => ReasonCode::MethodNotAllowed,
            DenyReason::PathNotAllowed { .. } => ReasonCode::PathNotAllowed,
            DenyReason::TraceRefused { .. } => ReasonCode::TraceRefused,
            DenyReason::InjectionNeedsTls { .. } => ReasonCode::InjectionNeedsTls,
            DenyReason::TunnelNeedsInspection { .. } => ReasonCode::TunnelNeedsInspection,
            DenyReason::Doh { .. } => ReasonCode::Doh,
            DenyReason::Fronting { .. } => ReasonCode::Fronting,
            DenyReason::Placeholder { .. } => ReasonCode::Placeholder,
            DenyReason::SecretDetected { .. } => ReasonCode::SecretDetected,
            DenyReason::Uninspectable { .. } => ReasonCode::Uninspectable,
            DenyReason::PrivateAddress { .. } => ReasonCode::PrivateAddress,
            DenyReason::BadRequest { .. } => ReasonCode::BadRequest,
        }
    }

    /// The HTTP status the agent receives.
    pub fn status(&self) -> u16 {
        match self {
            DenyReason::BadRequest { .. } => 400,
            _ => 403,
        }
    }

    /// The index of the rule that matched the host but refused the request, if any.
    pub fn rule(&self) -> Option<usize> {
        match self {
            DenyReason::PortNotAllowed { rule, .. }
            | DenyReason::MethodNotAllowed { rule, .. }
            | DenyReason::PathNotAllowed { rule, .. }
            | DenyReason::TraceRefused { rule, .. }
            | DenyReason::InjectionNeedsTls { rule, .. }
            | DenyReason::TunnelNeedsInspection { rule, .. } => Some(*rule),
            DenyReason::SecretDetected { rule, .. } => *rule,
            _ => None,
        }
    }
}

fn rule_no(rule: &Option<usize>) -> String {
    rule.map(|r| format!("rule #{}: ", r + 1))
        .unwrap_or_default()
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::IpLiteral { host } => write!(f, "host `{host}` is an IP address; only hosts on the allowlist are reachable (IP literal)"),
            DenyReason::HostNotAllowed { host } => write!(f, "host `{host}` is not on this bottle's egress allowlist (host not allowed)"),
            DenyReason::PortNotAllowed { host, port, rule } => write!(f, "port {port} is not allowed for host `{host}` (rule #{}: port not allowed)", rule + 1),
            DenyReason::MethodNotAllowed { method, rule } => write!(f, "method {method} is not allowed (rule #{}: method not allowed)", rule + 1),
            DenyReason::PathNotAllowed { path, rule, problem: None } => write!(f, "path `{path}` is not allowed (rule #{}: path not allowed)", rule + 1),
            DenyReason::PathNotAllowed { path, rule, problem: Some(p) } => write!(f, "path `{path}` cannot be checked against rule #{}'s paths: {p} (path not allowed)", rule + 1),
            DenyReason::TraceRefused { method, rule } => write!(f, "method {method} echoes the request, credentials included; it is refused unless rule #{} lists it in `methods` (trace refused)", rule + 1),
            DenyReason::InjectionNeedsTls { host, rule } => write!(f, "rule #{} injects a credential for `{host}`, which is only ever sent over verified TLS; use https:// (injection needs TLS)", rule + 1),
            DenyReason::TunnelNeedsInspection { host, rule } => write!(
                f,
                "rule #{} limits methods or paths for `{host}`, which cannot be checked inside an uninspected CONNECT tunnel",
                rule + 1
            ),
            DenyReason::Doh { host } => write!(f, "`{host}`: DNS over HTTPS is not allowed unless a rule names the host exactly (DoH)"),
            DenyReason::Fronting { detail } => write!(f, "{detail} (domain fronting)"),
            DenyReason::Placeholder { secret } => write!(
                f,
                "the request carries the placeholder for secret `{secret}`, but no rule for this host injects it (placeholder)"
            ),
            DenyReason::SecretDetected { kind, location, rule } => write!(f, "the request's {location} contains {kind} ({}secret detected)", rule_no(rule)),
            DenyReason::Uninspectable { detail } => write!(f, "{detail}; the proxy sends on only what it can inspect (uninspectable)"),
            DenyReason::PrivateAddress { host, detail } => write!(f, "`{host}` resolved to {detail}; pin the name in the bottle's [hosts] or allow the range in `allow_private_ranges` (private address)"),
            DenyReason::BadRequest { detail } => write!(f, "{detail} (bad request)"),
        }
    }
}

/// The host with brackets removed, lower-cased, without a trailing dot.
fn bare_host(host: &str) -> String {
    normalize_host(host.trim_start_matches('[').trim_end_matches(']'))
}

/// Why `rule` (which names the host) refuses an HTTP request, if it does.
fn refuse_http(
    rule: &EgressRule,
    i: usize,
    host: &str,
    method: &str,
    path: &str,
    tls: bool,
) -> Option<DenyReason> {
    if !rule.methods.is_empty() && !rule.methods.iter().any(|m| m == method) {
        return Some(DenyReason::MethodNotAllowed {
            method: method.to_string(),
            rule: i,
        });
    }
    if matches!(method, "TRACE" | "TRACK") && !rule.methods.iter().any(|m| m == method) {
        return Some(DenyReason::TraceRefused {
            method: method.to_string(),
            rule: i,
        });
    }
    if !rule.paths.is_empty() {
        let refused = |problem: Option<String>| DenyReason::PathNotAllowed {
            path: path.to_string(),
            rule: i,
            problem,
        };
        match rule_path(path) {
            Err(p) => return Some(refused(Some(p.as_str().to_string()))),
            Ok(normal) if !rule.paths.iter().any(|p| prefix_matches(p, &normal)) => {
                return Some(refused(None))
            }
            Ok(_) => {}
        }
    }
    if rule.inject.is_some() && !tls {
        return Some(DenyReason::InjectionNeedsTls {
            host: host.to_string(),
            rule: i,
        });
    }
    None
}

/// Decides one request against the rules, first by host, then port, method, path.
///
/// When several rules name the host, the request is allowed if any allows it;
/// a denial reports the first rule that matched the host, which is the one a
/// user most likely meant. Addresses, DNS-over-HTTPS endpoints and DoH media
/// types pass only a rule that names the host exactly.
pub fn decide(rules: &[EgressRule], req: Request<'_>) -> Decision {
    let (host, port) = match req {
        Request::Connect { host, port, .. } | Request::Http { host, port, .. } => (host, port),
    };
    let host = bare_host(host);
    let ip = is_ip_literal(&host);
    let exact = |r: &EgressRule| r.names_exactly(&host);
    if ip && !rules.iter().any(exact) {
        return Decision::Deny(DenyReason::IpLiteral { host });
    }
    let doh_host = DOH_HOSTS.contains(&host.as_str());
    let doh_media = matches!(
        req,
        Request::Http {
            doh_media: true,
            ..
        }
    );
    let mut first_refusal: Option<DenyReason> = None;
    for (i, rule) in rules.iter().enumerate() {
        let matches = if ip {
            exact(rule)
        } else {
            rule.matches_host(&host)
        };
        if !matches {
            continue;
        }
        let refusal = if (doh_host || doh_media) && !exact(rule) {
            Some(DenyReason::Doh { host: host.clone() })
        } else if !rule.allows_port(port) {
            Some(DenyReason::PortNotAllowed {
                host: host.clone(),
                port,
                rule: i,
            })
        } else {
            match req {
                Request::Connect { inspected, .. } => (!inspected
                    && (!rule.methods.is_empty()
                        || !rule.paths.is_empty()
                        || rule.inject.is_some()))
                .then(|| DenyReason::TunnelNeedsInspection {
                    host: host.clone(),
                    rule: i,
                }),
                Request::Http {
                    method, path, tls, ..
                } => refuse_http(rule, i, &host, method, path, tls),
            }
        };
        match refusal {
            None => return Decision::Allow { rule: i },
            Some(r) => {
                first_refusal.get_or_insert(r);
            }
        }
    }
    let fallback = if doh_host {
        DenyReason::Doh { host }
    } else {
        DenyReason::HostNotAllowed { host }
    };
    Decision::Deny(first_refusal.unwrap_or(fallback))
}

#[cfg(test)]
mod tests;
