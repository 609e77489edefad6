//! The allow/deny decision for one request, and the reasons for a denial.

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
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::IpLiteral { .. } => "ip_literal",
            DenyReason::HostNotAllowed { .. } => "host_not_allowed",
            DenyReason::PortNotAllowed { .. } => "port_not_allowed",
            DenyReason::MethodNotAllowed { .. } => "method_not_allowed",
            DenyReason::PathNotAllowed { .. } => "path_not_allowed",
            DenyReason::TraceRefused { .. } => "trace_refused",
            DenyReason::InjectionNeedsTls { .. } => "injection_needs_tls",
            DenyReason::TunnelNeedsInspection { .. } => "tunnel_needs_inspection",
            DenyReason::Doh { .. } => "doh",
            DenyReason::Fronting { .. } => "fronting",
            DenyReason::Placeholder { .. } => "placeholder",
            DenyReason::SecretDetected { .. } => "secret_detected",
            DenyReason::Uninspectable { .. } => "uninspectable",
            DenyReason::PrivateAddress { .. } => "private_address",
            DenyReason::BadRequest { .. } => "bad_request",
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
mod tests {
    use super::*;
    use crate::rule::tests::rule;
    use crate::rule::{DlpAction, Inject};

    fn http<'a>(method: &'a str, host: &'a str, path: &'a str) -> Request<'a> {
        Request::Http {
            method,
            host,
            port: 80,
            path,
            doh_media: false,
            tls: false,
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
                    decide(
                        &rules,
                        Request::Connect {
                            host,
                            port: 443,
                            inspected: true
                        }
                    ),
                    Decision::Deny(DenyReason::IpLiteral { .. })
                ),
                "{host}"
            );
        }
    }

    #[test]
    fn ports_methods_and_paths_are_enforced() {
        let rules = [EgressRule {
            host: "api.example.com".into(),
            ports: vec![443, 8443],
            methods: vec!["GET".into()],
            paths: vec!["/v1/".into()],
            inject: None,
            dlp: DlpAction::Block,
        }];
        let req = |method, port, path| Request::Http {
            method,
            host: "api.example.com",
            port,
            path,
            doh_media: false,
            tls: false,
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
                    port: 443,
                    inspected: false,
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
                    port: 443,
                    inspected: true,
                }
            )
            .deny_code(),
            Some("host_not_allowed")
        );
    }

    #[test]
    fn an_inspected_tunnel_defers_method_and_path_checks() {
        let mut r = rule("api.example.com");
        r.methods = vec!["GET".into()];
        let rules = [r];
        assert_eq!(
            decide(
                &rules,
                Request::Connect {
                    host: "api.example.com",
                    port: 443,
                    inspected: true
                }
            ),
            Decision::Allow { rule: 0 }
        );
    }

    #[test]
    fn addresses_pass_only_a_rule_naming_them_exactly() {
        let rules = [rule("10.1.2.3"), rule("fd00::1")];
        let connect = |host| {
            decide(
                &rules,
                Request::Connect {
                    host,
                    port: 443,
                    inspected: true,
                },
            )
        };
        assert_eq!(connect("10.1.2.3"), Decision::Allow { rule: 0 });
        assert_eq!(connect("[fd00::1]"), Decision::Allow { rule: 1 });
        for other in ["10.1.2.4", "0x0a010203", "167838211", "[fd00::2]"] {
            assert_eq!(connect(other).deny_code(), Some("ip_literal"), "{other}");
        }
    }

    #[test]
    fn doh_needs_an_exact_rule() {
        let wildcard = [rule("*.google"), rule("*.example.com")];
        assert_eq!(
            decide(
                &wildcard,
                Request::Connect {
                    host: "dns.google",
                    port: 443,
                    inspected: true
                }
            )
            .deny_code(),
            Some("doh")
        );
        assert_eq!(
            decide(
                &[],
                Request::Connect {
                    host: "cloudflare-dns.com",
                    port: 443,
                    inspected: true
                }
            )
            .deny_code(),
            Some("doh")
        );
        let exact = [rule("dns.google")];
        assert_eq!(
            decide(
                &exact,
                Request::Connect {
                    host: "dns.google",
                    port: 443,
                    inspected: true
                }
            ),
            Decision::Allow { rule: 0 }
        );
        let doh_exchange = Request::Http {
            method: "POST",
            host: "a.example.com",
            port: 443,
            path: "/q",
            doh_media: true,
            tls: true,
        };
        assert_eq!(decide(&wildcard, doh_exchange).deny_code(), Some("doh"));
        assert_eq!(
            decide(&[rule("a.example.com")], doh_exchange),
            Decision::Allow { rule: 0 }
        );
    }

    #[test]
    fn path_prefixes_end_at_a_segment_boundary_and_normalise() {
        let mut r = rule("api.example.com");
        r.paths = vec!["/v1".into()];
        let rules = [r];
        let get = |path| decide(&rules, http("GET", "api.example.com", path));
        assert_eq!(get("/v1"), Decision::Allow { rule: 0 });
        assert_eq!(get("/v1/models"), Decision::Allow { rule: 0 });
        assert_eq!(get("/v1;v=2/models"), Decision::Allow { rule: 0 });
        for path in [
            "/v1-admin",
            "/v1.bak",
            "/v1/..;/admin",
            "/v1/.;/admin",
            "/v1/%252e%252e/admin",
            "/v1%2fadmin",
        ] {
            assert_eq!(get(path).deny_code(), Some("path_not_allowed"), "{path}");
        }
    }

    #[test]
    fn trace_is_refused_unless_listed() {
        let rules = [rule("example.com")];
        for m in ["TRACE", "TRACK"] {
            assert_eq!(
                decide(&rules, http(m, "example.com", "/")).deny_code(),
                Some("trace_refused")
            );
        }
        let mut listed = rule("example.com");
        listed.methods = vec!["TRACE".into()];
        assert_eq!(
            decide(&[listed], http("TRACE", "example.com", "/")),
            Decision::Allow { rule: 0 }
        );
    }

    #[test]
    fn injection_travels_only_over_tls() {
        let mut r = rule("api.example.com");
        r.inject = Some(Inject {
            header: "authorization".into(),
            secret: "k".into(),
            value: "Bearer {secret}".into(),
            allow_wildcard: false,
        });
        let rules = [r.clone()];
        let req = |tls| Request::Http {
            method: "GET",
            host: "api.example.com",
            port: 443,
            path: "/",
            doh_media: false,
            tls,
        };
        assert_eq!(decide(&rules, req(true)), Decision::Allow { rule: 0 });
        let refused = decide(&rules, req(false));
        assert_eq!(refused.deny_code(), Some("injection_needs_tls"));
        let Decision::Deny(reason) = refused else {
            unreachable!()
        };
        assert!(reason.to_string().contains("verified TLS"), "{reason}");
        // A blind tunnel cannot inject either.
        assert_eq!(
            decide(
                &rules,
                Request::Connect {
                    host: "api.example.com",
                    port: 443,
                    inspected: false
                }
            )
            .deny_code(),
            Some("tunnel_needs_inspection")
        );
        // A second rule without injection may carry plain HTTP (with no credential).
        let plain = rule("api.example.com");
        assert_eq!(decide(&[r, plain], req(false)), Decision::Allow { rule: 1 });
        let _ = DlpAction::Block;
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
