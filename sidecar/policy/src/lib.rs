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

pub mod selftest;

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
    /// Rotate the audit log when it grows past this many bytes.
    #[serde(default = "default_audit_max_bytes")]
    pub audit_max_bytes: u64,
    /// How many rotated audit files to keep (`egress.jsonl.1` …).
    #[serde(default = "default_audit_keep")]
    pub audit_keep: u32,
    /// The bottle's CA (PEM certificate and key). With both, `CONNECT` tunnels
    /// are intercepted: TLS is terminated with a leaf minted for the host, and
    /// every request inside is checked like plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key_file: Option<String>,
    /// PEM roots trusted for upstream TLS in addition to the Mozilla roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_roots_file: Option<String>,
    /// JSON [`SecretsFile`] with the credentials to inject (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_file: Option<String>,
    /// Host names pinned to addresses; the sidecar never asks DNS for them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub hosts: std::collections::BTreeMap<String, String>,
}

fn default_audit_max_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_audit_keep() -> u32 {
    5
}

/// One line of a bottle's audit log: the sidecar writes it, the core reads it.
/// Missing fields read as their defaults, so older logs still read.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(default)]
pub struct AuditEntry {
    pub time: String,
    pub bottle: String,
    pub method: String,
    /// `http`, `https`, or `tunnel` for an uninspected CONNECT.
    pub scheme: String,
    pub host: String,
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
    pub status: u16,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_ms: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The credentials a sidecar holds, in their own 0600 file so the rules can be
/// shown (e.g. on the supervise endpoint) without them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    pub secrets: Vec<HeldSecret>,
}

/// One credential. `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldSecret {
    pub name: String,
    pub value: String,
    /// The stand-in value the agent was given, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
}

impl fmt::Debug for HeldSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldSecret")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("placeholder", &self.placeholder)
            .finish()
    }
}

impl fmt::Debug for SecretsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.secrets).finish()
    }
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
    /// A credential to put into requests this rule allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject: Option<Inject>,
    /// What to do when outbound data carries a secret.
    #[serde(default, skip_serializing_if = "DlpAction::is_default")]
    pub dlp: DlpAction,
}

/// Replace header `header` with `value`, where `{secret}` stands for the named secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    pub header: String,
    pub secret: String,
    #[serde(default = "default_inject_value")]
    pub value: String,
}

/// The placeholder for the secret inside [`Inject::value`].
pub const SECRET_MARKER: &str = "{secret}";

fn default_inject_value() -> String {
    SECRET_MARKER.to_string()
}

impl Inject {
    /// The header value to send, with the secret filled in.
    pub fn render(&self, secret: &str) -> String {
        self.value.replacen(SECRET_MARKER, secret, 1)
    }
}

/// Data-loss prevention: on a secret in outbound data, refuse the request
/// (`block`, the default) or replace the secret and send it on (`redact`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DlpAction {
    #[default]
    Block,
    Redact,
}

impl DlpAction {
    fn is_default(&self) -> bool {
        *self == DlpAction::Block
    }
}

/// Well-known DNS-over-HTTPS hosts. Reaching them would let an agent resolve
/// (and tunnel data through) DNS behind the proxy's back, so they are denied
/// unless a rule names the host exactly.
pub const DOH_HOSTS: &[&str] = &[
    "dns.google",
    "dns.google.com",
    "dns64.dns.google",
    "cloudflare-dns.com",
    "mozilla.cloudflare-dns.com",
    "chrome.cloudflare-dns.com",
    "1dot1dot1dot1.cloudflare-dns.com",
    "one.one.one.one",
    "security.cloudflare-dns.com",
    "family.cloudflare-dns.com",
    "dns.quad9.net",
    "dns9.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "doh.opendns.com",
    "doh.familyshield.opendns.com",
    "dns.adguard.com",
    "dns.adguard-dns.com",
    "unfiltered.adguard-dns.com",
    "family.adguard-dns.com",
    "doh.cleanbrowsing.org",
    "dns.nextdns.io",
    "doh.mullvad.net",
    "dns.mullvad.net",
    "doh.dns.sb",
    "dns.twnic.tw",
    "doh.libredns.gr",
    "dns.alidns.com",
    "doh.pub",
    "doh.360.cn",
    "dns.controld.com",
    "freedns.controld.com",
    "ordns.he.net",
    "doh.applied-privacy.net",
];

/// Media types that mark a DNS-over-HTTPS exchange on any host.
pub const DOH_MEDIA_TYPES: &[&str] = &["application/dns-message", "application/dns-json"];

/// Why a rule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("host `{0}` is not a valid host name (letters, digits, `-` and `.`, optionally starting with `*.`)")]
    BadHost(String),
    #[error("host `{0}` is not a host name, and addresses may only be named exactly in canonical form (e.g. `10.1.2.3`, `fd00::1`)")]
    IpLiteralHost(String),
    #[error("port 0 is not a valid port")]
    BadPort,
    #[error("method `{0}` is not an HTTP method token in upper case (e.g. GET, POST)")]
    BadMethod(String),
    #[error(
        "path prefix `{0}` must start with `/` and contain no spaces, `?`, `#` or dot segments"
    )]
    BadPath(String),
    #[error("`inject.header` `{0}` is not a valid HTTP header name")]
    BadInjectHeader(String),
    #[error(
        "`inject.header` `{0}` cannot be injected (it describes the connection, not the request)"
    )]
    ReservedInjectHeader(String),
    #[error("`inject.value` must contain `{{secret}}` exactly once, e.g. \"Bearer {{secret}}\"")]
    BadInjectValue,
    #[error("`inject.value` may not contain control characters")]
    InjectValueControl,
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
        if let Some(inj) = &self.inject {
            validate_inject(inj)?;
        }
        Ok(())
    }

    /// True when the rule names this host exactly (not through a wildcard).
    pub fn names_exactly(&self, host: &str) -> bool {
        !self.host.starts_with("*.") && self.host == host
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

/// Headers that describe the connection or framing; injecting them would break HTTP.
const UNINJECTABLE_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "keep-alive",
    "trailer",
];

fn validate_inject(inj: &Inject) -> Result<(), RuleError> {
    let h = &inj.header;
    let token = !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(RuleError::BadInjectHeader(h.clone()));
    }
    if UNINJECTABLE_HEADERS.contains(&h.to_ascii_lowercase().as_str()) {
        return Err(RuleError::ReservedInjectHeader(h.clone()));
    }
    if inj.value.matches(SECRET_MARKER).count() != 1 {
        return Err(RuleError::BadInjectValue);
    }
    if inj.value.chars().any(|c| c.is_control()) {
        return Err(RuleError::InjectValueControl);
    }
    Ok(())
}

fn validate_host_pattern(pattern: &str) -> Result<(), RuleError> {
    // An address may be allowed only by naming it exactly, in canonical form.
    if pattern.parse::<std::net::IpAddr>().is_ok() {
        return if pattern
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .as_deref()
            == Ok(pattern)
        {
            Ok(())
        } else {
            Err(RuleError::IpLiteralHost(pattern.to_string()))
        };
    }
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
    /// A `CONNECT host:port` tunnel. When `inspected`, the proxy will see
    /// (and check) every request inside it, so only host and port matter here.
    Connect {
        host: &'a str,
        port: u16,
        inspected: bool,
    },
    /// An HTTP request: plain, or decrypted from an intercepted tunnel.
    Http {
        method: &'a str,
        host: &'a str,
        port: u16,
        path: &'a str,
        /// The request declares a DNS-over-HTTPS media type.
        doh_media: bool,
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
    /// A DNS-over-HTTPS endpoint or exchange on a host no rule names exactly.
    Doh {
        host: String,
    },
    /// The names in one request disagree (CONNECT authority, TLS SNI, `Host`).
    Fronting {
        detail: String,
    },
    /// The request carries a credential placeholder to a rule that does not inject it.
    Placeholder {
        secret: String,
    },
    /// Outbound data carries a secret and the rule blocks it.
    SecretDetected {
        kind: String,
        location: String,
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
            DenyReason::Doh { .. } => "doh",
            DenyReason::Fronting { .. } => "fronting",
            DenyReason::Placeholder { .. } => "placeholder",
            DenyReason::SecretDetected { .. } => "secret_detected",
        }
    }

    /// The index of the rule that matched the host but refused the request, if any.
    pub fn rule(&self) -> Option<usize> {
        match self {
            DenyReason::PortNotAllowed { rule, .. }
            | DenyReason::MethodNotAllowed { rule, .. }
            | DenyReason::PathNotAllowed { rule, .. }
            | DenyReason::TunnelNeedsInspection { rule, .. }
            | DenyReason::SecretDetected { rule, .. } => Some(*rule),
            _ => None,
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::IpLiteral { host } => write!(f, "host `{host}` is an IP address; only hosts on the allowlist are reachable (IP literal)"),
            DenyReason::HostNotAllowed { host } => write!(f, "host `{host}` is not on this bottle's egress allowlist (host not allowed)"),
            DenyReason::PortNotAllowed { host, port, rule } => write!(f, "port {port} is not allowed for host `{host}` (rule #{}: port not allowed)", rule + 1),
            DenyReason::MethodNotAllowed { method, rule } => write!(f, "method {method} is not allowed (rule #{}: method not allowed)", rule + 1),
            DenyReason::PathNotAllowed { path, rule } => write!(f, "path `{path}` is not allowed (rule #{}: path not allowed)", rule + 1),
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
            DenyReason::SecretDetected { kind, location, rule } => write!(f, "the request's {location} contains {kind} (rule #{}: secret detected)", rule + 1),
        }
    }
}

/// The host with brackets removed, lower-cased, without a trailing dot.
fn bare_host(host: &str) -> String {
    normalize_host(host.trim_start_matches('[').trim_end_matches(']'))
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
                    && (!rule.methods.is_empty() || !rule.paths.is_empty()))
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

    fn rule(host: &str) -> EgressRule {
        EgressRule {
            host: host.into(),
            ports: vec![],
            methods: vec![],
            paths: vec![],
            inject: None,
            dlp: DlpAction::Block,
        }
    }

    fn http<'a>(method: &'a str, host: &'a str, path: &'a str) -> Request<'a> {
        Request::Http {
            method,
            host,
            port: 80,
            path,
            doh_media: false,
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
            inject: None,
            dlp: DlpAction::Block,
        }];
        let req = |method, port, path| Request::Http {
            method,
            host: "api.example.com",
            port,
            path,
            doh_media: false,
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
    fn rule_validation_names_the_problem() {
        let mut r = rule("Example.com");
        assert!(matches!(r.validate(), Err(RuleError::BadHost(_))));
        r.host = "10.0.0.1".into();
        assert!(r.validate().is_ok(), "an address named exactly is allowed");
        for odd in ["010.0.0.1", "2130706433", "*.10.0.0.1", "[::1]"] {
            r.host = odd.into();
            assert!(r.validate().is_err(), "{odd}");
        }
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
            audit_max_bytes: 1024,
            audit_keep: 2,
            ca_cert_file: None,
            ca_key_file: None,
            extra_roots_file: None,
            secrets_file: None,
            hosts: Default::default(),
        };
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<SidecarConfig>(&text).unwrap(), cfg);
        assert!(serde_json::from_str::<SidecarConfig>(
            r#"{"bottle":"d","listen":"x","rules":[],"extra":1}"#
        )
        .is_err());
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
        };
        assert_eq!(decide(&wildcard, doh_exchange).deny_code(), Some("doh"));
        assert_eq!(
            decide(&[rule("a.example.com")], doh_exchange),
            Decision::Allow { rule: 0 }
        );
    }

    #[test]
    fn inject_validation() {
        let mut r = rule("api.example.com");
        r.inject = Some(Inject {
            header: "Authorization".into(),
            secret: "k".into(),
            value: "Bearer {secret}".into(),
        });
        assert!(r.validate().is_ok());
        assert_eq!(r.inject.as_ref().unwrap().render("abc"), "Bearer abc");
        for (header, value, want) in [
            ("bad header", "{secret}", "not a valid HTTP header"),
            ("Host", "{secret}", "cannot be injected"),
            ("x-api-key", "no marker", "exactly once"),
            ("x-api-key", "{secret}{secret}", "exactly once"),
            ("x-api-key", "a\r\n{secret}", "control characters"),
        ] {
            r.inject = Some(Inject {
                header: header.into(),
                secret: "k".into(),
                value: value.into(),
            });
            let err = r.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{header} {value}: {err}");
        }
    }

    #[test]
    fn held_secrets_never_debug_print_their_value() {
        let s = HeldSecret {
            name: "k".into(),
            value: "sk-very-secret".into(),
            placeholder: None,
        };
        assert!(!format!("{s:?}").contains("sk-very-secret"));
        assert!(!format!("{:?}", SecretsFile { secrets: vec![s] }).contains("sk-very-secret"));
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
