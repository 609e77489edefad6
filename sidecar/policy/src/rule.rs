//! One allowlist entry ([`EgressRule`]) and its validation, shared by the
//! manifest parser and the sidecar.

use crate::DEFAULT_PORTS;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

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
    /// The header to set (any value the agent sent in it is removed first).
    pub header: String,
    /// The name of the held secret.
    pub secret: String,
    /// The header's value, with `{secret}` where the secret goes.
    #[serde(default = "default_inject_value")]
    pub value: String,
    /// On a `*.` rule, send the credential to every subdomain anyway. Off by
    /// default: a wildcard usually spans other tenants of a shared domain.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_wildcard: bool,
    /// HTTP Basic: `{secret}` stands for base64 of `basic_user:secret`
    /// (`value = "Basic {secret}"`; GitHub's git over HTTPS takes a token as
    /// `x-access-token:TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_user: Option<String>,
}

/// The placeholder for the secret inside [`Inject::value`].
pub const SECRET_MARKER: &str = "{secret}";

fn default_inject_value() -> String {
    SECRET_MARKER.to_string()
}

impl Inject {
    /// The header value to send, with the secret filled in.
    pub fn render(&self, secret: &str) -> String {
        match &self.basic_user {
            Some(user) => {
                use base64::Engine;
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
                self.value.replacen(SECRET_MARKER, &pair, 1)
            }
            None => self.value.replacen(SECRET_MARKER, secret, 1),
        }
    }
}

/// Data-loss prevention: on a secret in outbound data, refuse the request
/// (`block`, the default) or replace the secret and send it on (`redact`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DlpAction {
    /// Refuse the request.
    #[default]
    Block,
    /// Mask the secret where it can be masked in place and send the rest on.
    Redact,
}

impl DlpAction {
    fn is_default(&self) -> bool {
        *self == DlpAction::Block
    }
}

/// Why a rule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // each variant's message says what it is
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
        "path prefix `{0}` must start with `/` and contain no spaces, `?`, `#`, `%`, `;`, `\\` or dot segments"
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
    #[error("`inject.basic_user` `{0}` must be 1 to 64 visible characters without `:`")]
    BadBasicUser(String),
    #[error("`inject` on the wildcard rule `{0}` would send the credential to every subdomain (other tenants of a shared domain); name the host exactly, or set `inject.allow_wildcard = true` to accept that")]
    WildcardInject(String),
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
            if !crate::path::valid_prefix(p) {
                return Err(RuleError::BadPath(p.clone()));
            }
        }
        if let Some(inj) = &self.inject {
            validate_inject(inj)?;
            if self.host.starts_with("*.") && !inj.allow_wildcard {
                return Err(RuleError::WildcardInject(self.host.clone()));
            }
        }
        Ok(())
    }

    /// True when the rule names this host exactly (not through a wildcard).
    pub fn names_exactly(&self, host: &str) -> bool {
        !self.host.starts_with("*.") && self.host == host
    }

    pub(crate) fn allows_port(&self, port: u16) -> bool {
        if self.ports.is_empty() {
            DEFAULT_PORTS.contains(&port)
        } else {
            self.ports.contains(&port)
        }
    }

    pub(crate) fn matches_host(&self, host: &str) -> bool {
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
    if let Some(user) = &inj.basic_user {
        let ok = (1..=64).contains(&user.len())
            && user.chars().all(|c| c.is_ascii_graphic() && c != ':');
        if !ok {
            return Err(RuleError::BadBasicUser(user.clone()));
        }
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

/// Lower-cases a request's host and strips one trailing dot, so matching is by name.
pub fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A rule for `host` with every other field at its default.
    pub(crate) fn rule(host: &str) -> EgressRule {
        EgressRule {
            host: host.into(),
            ports: vec![],
            methods: vec![],
            paths: vec![],
            inject: None,
            dlp: DlpAction::Block,
        }
    }

    fn inject(header: &str, value: &str) -> Inject {
        Inject {
            header: header.into(),
            secret: "k".into(),
            value: value.into(),
            allow_wildcard: false,
            basic_user: None,
        }
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
        for bad in ["v1", "/a/../b", "/a;b", "/a%2fb"] {
            r.paths = vec![bad.into()];
            assert!(matches!(r.validate(), Err(RuleError::BadPath(_))), "{bad}");
        }
        r.paths = vec![];
        r.ports = vec![0];
        assert_eq!(r.validate(), Err(RuleError::BadPort));
    }

    #[test]
    fn inject_validation() {
        let mut r = rule("api.example.com");
        r.inject = Some(inject("Authorization", "Bearer {secret}"));
        assert!(r.validate().is_ok());
        assert_eq!(r.inject.as_ref().unwrap().render("abc"), "Bearer abc");
        let mut basic = inject("Authorization", "Basic {secret}");
        basic.basic_user = Some("x-access-token".into());
        // base64("x-access-token:abc")
        assert_eq!(basic.render("abc"), "Basic eC1hY2Nlc3MtdG9rZW46YWJj");
        r.inject = Some(basic.clone());
        r.validate().unwrap();
        for bad in ["", "a:b", "a b", &"u".repeat(65)] {
            basic.basic_user = Some(bad.into());
            r.inject = Some(basic.clone());
            assert!(
                r.validate().unwrap_err().to_string().contains("basic_user"),
                "{bad:?}"
            );
        }
        r.inject = Some(inject("Authorization", "Bearer {secret}"));
        for (header, value, want) in [
            ("bad header", "{secret}", "not a valid HTTP header"),
            ("Host", "{secret}", "cannot be injected"),
            ("x-api-key", "no marker", "exactly once"),
            ("x-api-key", "{secret}{secret}", "exactly once"),
            ("x-api-key", "a\r\n{secret}", "control characters"),
        ] {
            r.inject = Some(inject(header, value));
            let err = r.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{header} {value}: {err}");
        }
    }

    #[test]
    fn injecting_on_a_wildcard_needs_an_explicit_opt_in() {
        let mut r = rule("*.example.com");
        r.inject = Some(inject("x-api-key", "{secret}"));
        let err = r.validate().unwrap_err();
        assert_eq!(err, RuleError::WildcardInject("*.example.com".into()));
        assert!(err.to_string().contains("allow_wildcard = true"));
        r.inject.as_mut().unwrap().allow_wildcard = true;
        assert_eq!(r.validate(), Ok(()));
        // The opt-in round-trips and is omitted when off.
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"allow_wildcard\":true"), "{json}");
        let plain = serde_json::to_string(&inject("x", "{secret}")).unwrap();
        assert!(!plain.contains("allow_wildcard"), "{plain}");
    }

    #[test]
    fn ip_literal_spellings() {
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
            assert!(is_ip_literal(host), "{host}");
        }
        assert!(!is_ip_literal("1password.com"));
        assert!(!is_ip_literal("a0x1.com"));
    }
}
