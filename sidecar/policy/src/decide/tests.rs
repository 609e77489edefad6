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
        basic_user: None,
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
            Decision::Deny(r) => Some(r.code().as_str()),
            Decision::Allow { .. } => None,
        }
    }
}
