//! Supervise: what an agent may ask the human for, and what the human
//! answers. The sidecar files proposals (validated here, by the same rule
//! code as manifests) and applies decisions; the core records decisions and
//! hands them to the sidecar. Nothing here is the agent's to write.

use crate::rule::{is_ip_literal, normalize_host, EgressRule};
use crate::DOH_HOSTS;
use serde::{Deserialize, Serialize};

/// Longest reason an agent may give, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// Most methods or path prefixes one proposal may name.
pub const MAX_SCOPE_ITEMS: usize = 16;

/// A bottle's supervise settings (`[supervise]` in its file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SuperviseConfig {
    /// Where the sidecar files proposals (a directory the host reads).
    pub requests_dir: String,
    /// How long `request_egress` waits for the human, at most, in seconds.
    pub request_timeout_seconds: u64,
    /// Hold a request refused only because its host is not listed, while a
    /// proposal for it is raised.
    pub hold_denied: bool,
    /// How long a held request waits, in seconds.
    pub hold_seconds: u64,
    /// Most proposals pending at once.
    pub max_pending: usize,
    /// Most proposals filed per minute.
    pub per_minute: usize,
    /// Whether a proposal may name `*.domain`.
    pub allow_wildcards: bool,
    /// How long an undecided proposal stays open, in seconds.
    pub proposal_ttl_seconds: u64,
}

impl Default for SuperviseConfig {
    fn default() -> Self {
        SuperviseConfig {
            requests_dir: String::new(),
            request_timeout_seconds: 120,
            hold_denied: false,
            hold_seconds: 30,
            max_pending: 5,
            per_minute: 10,
            allow_wildcards: false,
            proposal_ttl_seconds: 600,
        }
    }
}

/// What an agent asks for (`request_egress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressAsk {
    /// The host (`api.example.com`; `*.example.com` where the bottle allows).
    pub host: String,
    /// The port; 443 when not given.
    #[serde(default)]
    pub port: Option<u16>,
    /// Methods; any when empty.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Path prefixes; any when empty.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Why the agent needs it, in plain text.
    pub reason: String,
}

/// The exact reach of a proposal and of the grant that answers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    /// The host, normalized.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Methods (upper case); any when empty.
    pub methods: Vec<String>,
    /// Path prefixes; any when empty.
    pub paths: Vec<String>,
}

impl Scope {
    /// The egress rule a grant of this scope adds.
    pub fn rule(&self) -> EgressRule {
        EgressRule {
            host: self.host.clone(),
            ports: vec![self.port],
            methods: self.methods.clone(),
            paths: self.paths.clone(),
            inject: None,
            dlp: Default::default(),
        }
    }

    /// One line for people: `GET, POST https://api.example.com:443/v1/`.
    pub fn describe(&self) -> String {
        let methods = if self.methods.is_empty() {
            "any method".to_string()
        } else {
            self.methods.join(", ")
        };
        let paths = if self.paths.is_empty() {
            "any path".to_string()
        } else {
            self.paths.join(", ")
        };
        format!("{} port {} ({methods}; {paths})", self.host, self.port)
    }
}

impl EgressAsk {
    /// Checks the ask as a manifest rule is checked, plus what only asks
    /// need: no address literal, no DNS-over-HTTPS host, no wildcard unless
    /// allowed, a plain-text reason of bounded length. The scope it asks
    /// for, and its reason cleaned, or why not.
    pub fn validate(&self, allow_wildcards: bool) -> Result<(Scope, String), String> {
        let host = normalize_host(self.host.trim());
        if host.is_empty() {
            return Err("`host` is empty".into());
        }
        if is_ip_literal(&host) {
            return Err(format!("`{host}` is an address; ask for a host name"));
        }
        if host.starts_with("*.") && !allow_wildcards {
            return Err(format!(
                "`{host}` is a wildcard; this bottle accepts exact host names only"
            ));
        }
        if DOH_HOSTS.contains(&host.trim_start_matches("*.")) {
            return Err(format!(
                "`{host}` serves DNS over HTTPS, which bottles never reach"
            ));
        }
        if self.methods.len() > MAX_SCOPE_ITEMS || self.paths.len() > MAX_SCOPE_ITEMS {
            return Err(format!(
                "at most {MAX_SCOPE_ITEMS} methods and {MAX_SCOPE_ITEMS} paths"
            ));
        }
        let port = self.port.unwrap_or(443);
        let mut methods: Vec<String> = self
            .methods
            .iter()
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        methods.sort();
        methods.dedup();
        let mut paths = self.paths.clone();
        paths.sort();
        paths.dedup();
        let scope = Scope {
            host,
            port,
            methods,
            paths,
        };
        scope.rule().validate().map_err(|e| e.to_string())?;
        Ok((scope, clean_reason(&self.reason)?))
    }
}

/// The reason as plain text: control characters (but line breaks) removed,
/// whitespace trimmed, at most [`MAX_REASON_CHARS`] characters, not empty.
pub fn clean_reason(reason: &str) -> Result<String, String> {
    let text: String = reason
        .chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Err("`reason` is empty: say why the agent needs this host".into());
    }
    if text.chars().count() > MAX_REASON_CHARS {
        return Err(format!(
            "`reason` is longer than {MAX_REASON_CHARS} characters"
        ));
    }
    Ok(text.to_string())
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the human.
    Pending,
    /// Allowed (see the decision for how long).
    Approved,
    /// Refused.
    Denied,
    /// Nobody answered in time.
    Expired,
}

/// How a proposal came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The agent called `request_egress`.
    Tool,
    /// A request was held while its host was asked for.
    Held,
}

/// A proposal as the sidecar files it (`<requests_dir>/<id>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Its id (`p-` and 12 hex digits).
    pub id: String,
    /// The bottle.
    pub bottle: String,
    /// When it was filed (RFC 3339).
    pub created: String,
    /// When it stops waiting for an answer (RFC 3339).
    pub expires: String,
    /// What is asked for.
    pub scope: Scope,
    /// The agent's reason, plain text.
    pub reason: String,
    /// How it came to be.
    pub origin: Origin,
    /// Where it stands.
    pub status: Status,
}

/// What the human answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// Exactly one request within the scope.
    Once,
    /// Requests within the scope for this long.
    For {
        /// How long, in seconds.
        seconds: u64,
    },
    /// A rule in the bottle's file from now on.
    Always,
    /// Refused.
    Deny {
        /// The human's note to the agent, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
}

impl Answer {
    /// For people: `allowed once`, `allowed for 1h`, `allowed always`, `denied`.
    pub fn describe(&self) -> String {
        match self {
            Answer::Once => "allowed once".into(),
            Answer::For { seconds } => format!("allowed for {}", human_seconds(*seconds)),
            Answer::Always => "allowed always".into(),
            Answer::Deny { .. } => "denied".into(),
        }
    }
}

/// `90s`, `5m`, `1h 30m`, `2d`.
pub fn human_seconds(s: u64) -> String {
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s < 86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d", s / 86400),
    }
}

/// A decision on a proposal, as the core records it and hands it to the
/// sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The proposal.
    pub id: String,
    /// The answer.
    pub answer: Answer,
    /// Who answered: `app` or `cli` (never the agent).
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// The scope decided on (the proposal's).
    pub scope: Scope,
}

/// The file, beside the proposals, in which the sidecar publishes its
/// grants in force for the host (a JSON list of [`Grant`]; not `.json`, so
/// it is never taken for a proposal).
pub const GRANTS_FILE: &str = "grants";

/// A temporary rule in force in the sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The proposal it answers.
    pub proposal: String,
    /// What it allows.
    pub scope: Scope,
    /// Good for one request only.
    pub once: bool,
    /// When it ends (seconds since the Unix epoch); never for `once` grants
    /// until used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(host: &str) -> EgressAsk {
        EgressAsk {
            host: host.into(),
            port: None,
            methods: vec!["get".into(), "GET".into()],
            paths: vec!["/v1/".into()],
            reason: "  fetch\u{7} the docs \n".into(),
        }
    }

    #[test]
    fn asks_are_checked_like_rules_and_more() {
        let (scope, reason) = ask("API.Example.com").validate(false).unwrap();
        assert_eq!(
            scope,
            Scope {
                host: "api.example.com".into(),
                port: 443,
                methods: vec!["GET".into()],
                paths: vec!["/v1/".into()]
            }
        );
        assert_eq!(reason, "fetch the docs");
        for bad in [
            "10.0.0.1",
            "[::1]",
            "*.example.com",
            "dns.google",
            "not a host",
            "",
        ] {
            assert!(ask(bad).validate(false).is_err(), "{bad}");
        }
        assert!(ask("*.example.com").validate(true).is_ok());
        let mut long = ask("a.example.com");
        long.reason = "x".repeat(MAX_REASON_CHARS + 1);
        assert!(long.validate(false).unwrap_err().contains("longer"));
        long.reason = "\u{7}\u{1b}".into();
        assert!(long.validate(false).unwrap_err().contains("empty"));
        let mut path = ask("a.example.com");
        path.paths = vec!["no-slash".into()];
        assert!(path.validate(false).is_err());
    }

    #[test]
    fn answers_and_durations_read_well() {
        assert_eq!(Answer::For { seconds: 3600 }.describe(), "allowed for 1h");
        assert_eq!(human_seconds(5400), "1h 30m");
        assert_eq!(human_seconds(2), "2s");
        let json = serde_json::to_string(&Answer::Deny {
            note: Some("no".into()),
        })
        .unwrap();
        assert_eq!(json, r#"{"answer":"deny","note":"no"}"#);
    }
}
