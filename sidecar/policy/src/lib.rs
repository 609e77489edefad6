//! Egress policy for a Bottlebar sidecar.
//!
//! The core writes a [`SidecarConfig`] (JSON) into the sidecar's state directory
//! at launch; the sidecar reads it and asks [`decide`] about every request the
//! agent makes. Keeping the types and the matching in one small crate means the
//! core validates a manifest's egress rules with exactly the code that will
//! enforce them.
//!
//! Deny is the default: a request is allowed only when some rule names its host,
//! its port, and (where the rule restricts them) its method and path.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::Ipv4Addr;

/// Port the sidecar's proxy listens on inside its container.
pub const PROXY_PORT: u16 = 3128;

/// Path, on the proxy port, of the health endpoint the launch waits on.
pub const HEALTH_PATH: &str = "/__bottlebar/health";

/// Path, on the proxy port, of the supervise endpoint offered to the agent.
pub const SUPERVISE_PATH: &str = "/__bottlebar/supervise";

/// Ports a rule allows when it names none.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// Everything the sidecar needs to know, written by the core as `sidecar.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarConfig {
    /// The bottle's name, for the audit log and error pages.
    pub bottle: String,
    /// Socket address to listen on, e.g. `0.0.0.0:3128`.
    pub listen: String,
    /// Egress rules; an empty list denies everything.
    pub rules: Vec<EgressRule>,
    /// Where to append one JSON line per egress decision, if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_file: Option<String>,
}

/// One allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressRule {
    /// `example.com` (that host only) or `*.example.com` (its subdomains, not itself).
    pub host: String,
    /// Allowed destination ports; empty means [`DEFAULT_PORTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// Allowed HTTP methods (upper case); empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Allowed path prefixes (each starting with `/`); empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

/// Why a rule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("host `{0}` is not a valid host name (letters, digits, `-` and `.`, optionally starting with `*.`)")]
    BadHost(String),
    #[error("host `{0}` is an IP address; rules name hosts, not addresses")]
    IpLiteralHost(String),
    #[error("port 0 is not a valid port")]
    BadPort,
    #[error("method `{0}` is not an HTTP method token in upper case (e.g. GET, POST)")]
    BadMethod(String),
    #[error(
        "path prefix `{0}` must start with `/` and contain no spaces, `?`, `#` or dot segments"
    )]
    BadPath(String),
}

impl EgressRule {
    /// Checks the rule is well formed, so a bad manifest fails before launch.
    pub fn validate(&self) -> Result<(), RuleError> {
        validate_host_pattern(&self.host)?;
        if self.ports.contains(&0) {
            return Err(RuleError::BadPort);
        }
        for m in &self.methods {
            let ok = !m.is_empty()
                && m.len() <= 32
                && m.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'-' || b == b'_');
            if !ok {
                return Err(RuleError::BadMethod(m.clone()));
            }
        }
        for p in &self.paths {
            let ok = p.starts_with('/')
                && !p
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b == b'?' || b == b'#')
                && !has_dot_segment(p);
            if !ok {
                return Err(RuleError::BadPath(p.clone()));
            }
        }
        Ok(())
    }

    fn allows_port(&self, port: u16) -> bool {
        if self.ports.is_empty() {
            DEFAULT_PORTS.contains(&port)
        } else {
            self.ports.contains(&port)
        }
    }

    fn matches_host(&self, host: &str) -> bool {
        match self.host.strip_prefix("*.") {
            Some(parent) => {
                host.len() > parent.len() + 1 && host.ends_with(parent) && {
                    let cut = host.len() - parent.len();
                    host.as_bytes()[cut - 1] == b'.'
                }
            }
            None => host == self.host,
        }
    }
}

fn validate_host_pattern(pattern: &str) -> Result<(), RuleError> {
    let bare = pattern.strip_prefix("*.").unwrap_or(pattern);
    if is_ip_literal(bare) {
        return Err(RuleError::IpLiteralHost(pattern.to_string()));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if bare.is_empty() || bare.len() > 253 || !bare.split('.').all(label_ok) {
        return Err(RuleError::BadHost(pattern.to_string()));
    }
    Ok(())
}

/// True when `host` names an address rather than a name, in any spelling a
/// resolver or URL parser might accept: IPv6 (with or without brackets),
/// dotted quad, and the inet_aton forms (`2130706433`, `0x7f.1`, `0177.0.0.1`).
/// Following the URL standard, a host whose last label is numeric is an address.
pub fn is_ip_literal(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.contains(':') || host.starts_with('[') {
        return true;
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return true;
    }
    let last = host.rsplit('.').next().unwrap_or("");
    let numeric = |l: &str| {
        !l.is_empty()
            && (l.bytes().all(|b| b.is_ascii_digit())
                || ((l.starts_with("0x") || l.starts_with("0X"))
                    && l[2..].bytes().all(|b| b.is_ascii_hexdigit())))
    };
    numeric(last)
}

fn has_dot_segment(path: &str) -> bool {
    let lower = path.to_ascii_lowercase().replace("%2e", ".");
    lower
        .split(['/', '\\'])
        .any(|seg| seg == "." || seg == "..")
        || lower.contains("%2f")
        || lower.contains("%5c")
}

/// Lower-cases a request's host and strips one trailing dot, so matching is by name.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// What the agent asked for.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// A `CONNECT host:port` tunnel: method and path are not visible.
    Connect { host: &'a str, port: u16 },
    /// A plain-HTTP request in absolute form.
    Http {
        method: &'a str,
        host: &'a str,
        port: u16,
        path: &'a str,
    },
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow { rule: usize },
    Deny(DenyReason),
}

/// Why a request was denied; its `Display` is what the agent reads in the 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    IpLiteral {
        host: String,
    },
    HostNotAllowed {
        host: String,
    },
    PortNotAllowed {
        host: String,
        port: u16,
        rule: usize,
    },
    MethodNotAllowed {
        method: String,
        rule: usize,
    },
    PathNotAllowed {
        path: String,
        rule: usize,
    },
    /// The rule restricts methods or paths, which a blind tunnel cannot check.
    TunnelNeedsInspection {
        host: String,
        rule: usize,
    },
}

impl DenyReason {
    /// A short machine-readable tag for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::IpLiteral { .. } => "ip_literal",
            DenyReason::HostNotAllowed { .. } => "host_not_allowed",
            DenyReason::PortNotAllowed { .. } => "port_not_allowed",
            DenyReason::MethodNotAllowed { .. } => "method_not_allowed",
            DenyReason::PathNotAllowed { .. } => "path_not_allowed",
            DenyReason::TunnelNeedsInspection { .. } => "tunnel_needs_inspection",
        }
    }

    /// The index of the rule that matched the host but refused the request, if any.
    pub fn rule(&self) -> Option<usize> {
        match self {
            DenyReason::PortNotAllowed { rule, .. }
            | DenyReason::MethodNotAllowed { rule, .. }
            | DenyReason::PathNotAllowed { rule, .. }
            | DenyReason::TunnelNeedsInspection { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::IpLiteral { host } => write!(
                f,
                "host `{host}` is an IP address; only named hosts on the allowlist are reachable"
            ),
            DenyReason::HostNotAllowed { host } => {
                write!(f, "host `{host}` is not on this bottle's egress allowlist")
            }
            DenyReason::PortNotAllowed { host, port, rule } => write!(
                f,
                "port {port} is not allowed for host `{host}` (rule #{})",
                rule + 1
            ),
            DenyReason::MethodNotAllowed { method, rule } => {
                write!(f, "method {method} is not allowed by rule #{}", rule + 1)
            }
            DenyReason::PathNotAllowed { path, rule } => {
                write!(f, "path `{path}` is not allowed by rule #{}", rule + 1)
            }
            DenyReason::TunnelNeedsInspection { host, rule } => write!(
                f,
                "rule #{} limits methods or paths for `{host}`, which cannot be checked inside an uninspected CONNECT tunnel",
                rule + 1
            ),
        }
    }
}

/// Decides one request against the rules, first by host, then port, method, path.
///
/// When several rules name the host, the request is allowed if any allows it;
/// a denial reports the first rule that matched the host, which is the one a
/// user most likely meant.
pub fn decide(rules: &[EgressRule], req: Request<'_>) -> Decision {
    let (host, port) = match req {
        Request::Connect { host, port } | Request::Http { host, port, .. } => (host, port),
    };
    let host = normalize_host(host);
    if is_ip_literal(&host) {
        return Decision::Deny(DenyReason::IpLiteral { host });
    }
    let mut first_refusal: Option<DenyReason> = None;
    for (i, rule) in rules.iter().enumerate() {
        if !rule.matches_host(&host) {
            continue;
        }
        let refusal = if !rule.allows_port(port) {
            Some(DenyReason::PortNotAllowed {
                host: host.clone(),
                port,
                rule: i,
            })
        } else {
            match req {
                Request::Connect { .. } => (!rule.methods.is_empty() || !rule.paths.is_empty())
                    .then(|| DenyReason::TunnelNeedsInspection {
                        host: host.clone(),
                        rule: i,
                    }),
                Request::Http { method, path, .. } => {
                    if !rule.methods.is_empty() && !rule.methods.iter().any(|m| m == method) {
                        Some(DenyReason::MethodNotAllowed {
                            method: method.to_string(),
                            rule: i,
                        })
                    } else if !rule.paths.is_empty()
                        && (has_dot_segment(path)
                            || !rule.paths.iter().any(|p| path.starts_with(p.as_str())))
                    {
                        Some(DenyReason::PathNotAllowed {
                            path: path.to_string(),
                            rule: i,
                        })
                    } else {
                        None
                    }
                }
            }
        };
        match refusal {
            None => return Decision::Allow { rule: i },
            Some(r) => {
                first_refusal.get_or_insert(r);
            }
        }
    }
    Decision::Deny(first_refusal.unwrap_or(DenyReason::HostNotAllowed { host }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(host: &str) -> EgressRule {
        EgressRule {
            host: host.into(),
            ports: vec![],
            methods: vec![],
            paths: vec![],
        }
    }

    fn http<'a>(method: &'a str, host: &'a str, path: &'a str) -> Request<'a> {
        Request::Http {
            method,
            host,
            port: 80,
            path,
        }
    }

    #[test]
    fn exact_host_allows_only_that_host() {
        let rules = [rule("example.com")];
        assert_eq!(
            decide(&rules, http("GET", "example.com", "/")),
            Decision::Allow { rule: 0 }
        );
        assert_eq!(
            decide(&rules, http("GET", "EXAMPLE.com.", "/")),
            Decision::Allow { rule: 0 }
        );
        for other in [
            "www.example.com",
            "example.org",
            "badexample.com",
            "example.com.evil.io",
        ] {
            assert_eq!(
                decide(&rules, http("GET", other, "/")),
                Decision::Deny(DenyReason::HostNotAllowed {
                    host: other.to_string()
                }),
                "{other}"
            );
        }
    }

    #[test]
    fn wildcard_matches_subdomains_not_apex_or_lookalikes() {
        let rules = [rule("*.example.com")];
        assert!(matches!(
            decide(&rules, http("GET", "a.b.example.com", "/")),
            Decision::Allow { .. }
        ));
        for other in ["example.com", "badexample.com", "xexample.com"] {
            assert!(matches!(
                decide(&rules, http("GET", other, "/")),
                Decision::Deny(DenyReason::HostNotAllowed { .. })
            ));
        }
    }

    #[test]
    fn ip_literals_in_every_spelling_are_denied() {
        let rules = [rule("example.com")];
        for host in [
            "127.0.0.1",
            "2130706433",
            "0x7f000001",
            "0177.0.0.1",
            "0x7f.1",
            "[::1]",
            "::ffff:127.0.0.1",
            "10.0.0.1.",
        ] {
            assert!(
                matches!(
                    decide(&rules, Request::Connect { host, port: 443 }),
                    Decision::Deny(DenyReason::IpLiteral { .. })
                ),
                "{host}"
            );
        }
        assert!(!is_ip_literal("1password.com"));
        assert!(!is_ip_literal("a0x1.com"));
    }

    #[test]
    fn ports_methods_and_paths_are_enforced() {
        let rules = [EgressRule {
            host: "api.example.com".into(),
            ports: vec![443, 8443],
            methods: vec!["GET".into()],
            paths: vec!["/v1/".into()],
        }];
        let req = |method, port, path| Request::Http {
            method,
            host: "api.example.com",
            port,
            path,
        };
        assert_eq!(
            decide(&rules, req("GET", 8443, "/v1/models")),
            Decision::Allow { rule: 0 }
        );
        assert_eq!(
            decide(&rules, req("GET", 80, "/v1/models")).deny_code(),
            Some("port_not_allowed")
        );
        assert_eq!(
            decide(&rules, req("POST", 443, "/v1/models")).deny_code(),
            Some("method_not_allowed")
        );
        assert_eq!(
            decide(&rules, req("GET", 443, "/v2/models")).deny_code(),
            Some("path_not_allowed")
        );
        assert_eq!(
            decide(&rules, req("GET", 443, "/v1/../admin")).deny_code(),
            Some("path_not_allowed")
        );
        assert_eq!(
            decide(&rules, req("GET", 443, "/v1/%2e%2e/admin")).deny_code(),
            Some("path_not_allowed")
        );
        // A blind tunnel cannot honour method or path limits.
        assert_eq!(
            decide(
                &rules,
                Request::Connect {
                    host: "api.example.com",
                    port: 443
                }
            )
            .deny_code(),
            Some("tunnel_needs_inspection")
        );
    }

    #[test]
    fn any_matching_rule_allows() {
        let mut narrow = rule("example.com");
        narrow.methods = vec!["GET".into()];
        let rules = [narrow, rule("example.com")];
        assert_eq!(
            decide(&rules, http("POST", "example.com", "/")),
            Decision::Allow { rule: 1 }
        );
    }

    #[test]
    fn empty_rules_deny_everything() {
        assert_eq!(
            decide(
                &[],
                Request::Connect {
                    host: "example.com",
                    port: 443
                }
            )
            .deny_code(),
            Some("host_not_allowed")
        );
    }

    #[test]
    fn rule_validation_names_the_problem() {
        let mut r = rule("Example.com");
        assert!(matches!(r.validate(), Err(RuleError::BadHost(_))));
        r.host = "10.0.0.1".into();
        assert!(matches!(r.validate(), Err(RuleError::IpLiteralHost(_))));
        r.host = "*.*.example.com".into();
        assert!(matches!(r.validate(), Err(RuleError::BadHost(_))));
        r.host = "ok.example.com".into();
        assert!(r.validate().is_ok());
        r.methods = vec!["get".into()];
        assert!(matches!(r.validate(), Err(RuleError::BadMethod(_))));
        r.methods = vec![];
        r.paths = vec!["v1".into()];
        assert!(matches!(r.validate(), Err(RuleError::BadPath(_))));
        r.paths = vec!["/a/../b".into()];
        assert!(matches!(r.validate(), Err(RuleError::BadPath(_))));
        r.paths = vec![];
        r.ports = vec![0];
        assert_eq!(r.validate(), Err(RuleError::BadPort));
    }

    #[test]
    fn config_round_trips_and_rejects_unknown_fields() {
        let cfg = SidecarConfig {
            bottle: "demo".into(),
            listen: "0.0.0.0:3128".into(),
            rules: vec![rule("example.com")],
            audit_file: Some("/var/log/bottlebar/egress.jsonl".into()),
        };
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<SidecarConfig>(&text).unwrap(), cfg);
        assert!(serde_json::from_str::<SidecarConfig>(
            r#"{"bottle":"d","listen":"x","rules":[],"extra":1}"#
        )
        .is_err());
    }

    impl Decision {
        fn deny_code(&self) -> Option<&'static str> {
            match self {
                Decision::Deny(r) => Some(r.code()),
                Decision::Allow { .. } => None,
            }
        }
    }
}
