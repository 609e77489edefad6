//! What the core hands the sidecar: `sidecar.json` at start, and the live
//! rules it pushes later through the control socket.

use crate::addresses::Cidr;
use crate::rule::EgressRule;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// The sidecar's control socket: an abstract Unix socket, so it lives in the
/// sidecar's own network namespace and has no path any mount could share.
/// `bottlebar-sidecar reload` (run by the core through the engine's `exec`)
/// delivers new [`LiveRules`] over it.
pub const CONTROL_SOCKET: &str = "bottlebar-sidecar-control";

/// Everything the sidecar needs to know, written by the core as `sidecar.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SidecarConfig {
    /// The bottle's name, for the audit log and error pages.
    pub bottle: String,
    /// Where to listen: see [`ListenSpec`].
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
    /// The bottle's CA certificate (PEM). With the key, `CONNECT` tunnels
    /// are intercepted: TLS is terminated with a leaf minted for the host,
    /// and every request inside is checked like plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert_file: Option<String>,
    /// The bottle's CA private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key_file: Option<String>,
    /// PEM roots trusted for upstream TLS in addition to the Mozilla roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_roots_file: Option<String>,
    /// JSON [`SecretsFile`] with the credentials to inject (mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_file: Option<String>,
    /// Host names pinned to addresses; the sidecar never asks DNS for them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, String>,
    /// Private, loopback or link-local ranges an allowed name may resolve to
    /// (CIDR); by default such answers are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_private_ranges: Vec<String>,
    /// The supervise endpoint (MCP) and its approval queue, when the bottle
    /// offers them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervise: Option<crate::supervise::SuperviseConfig>,
}

fn default_audit_max_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_audit_keep() -> u32 {
    5
}

impl SidecarConfig {
    /// The parts of the configuration that may change while the sidecar runs.
    pub fn live_rules(&self, secrets: Vec<HeldSecret>) -> LiveRules {
        LiveRules {
            rules: self.rules.clone(),
            hosts: self.hosts.clone(),
            allow_private_ranges: self.allow_private_ranges.clone(),
            secrets,
        }
    }
}

/// Where the proxy listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenSpec {
    /// One socket address (tests, tools).
    Addr(SocketAddr),
    /// `agent-networks:PORT`: loopback (for the health check run inside the
    /// sidecar) and every address of an interface that does not carry the
    /// default route, i.e. the agent's networks, never the egress side.
    AgentNetworks(u16),
}

impl ListenSpec {
    /// The `listen` value for the agent's networks on `port`.
    pub fn agent_networks(port: u16) -> String {
        format!("agent-networks:{port}")
    }

    /// Reads a `listen` value.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some(port) = s.strip_prefix("agent-networks:") {
            return port
                .parse()
                .map(ListenSpec::AgentNetworks)
                .map_err(|_| format!("`{s}`: `{port}` is not a port"));
        }
        s.parse()
            .map(ListenSpec::Addr)
            .map_err(|_| format!("`{s}` is neither a socket address nor `agent-networks:PORT`"))
    }
}

/// What the core may change while the sidecar runs: the rules, pinned
/// hosts, allowed private ranges and the secrets. Sent as JSON on the
/// control socket; never read from a file after start.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LiveRules {
    /// The egress rules.
    pub rules: Vec<EgressRule>,
    /// Host names pinned to addresses.
    #[serde(default)]
    pub hosts: BTreeMap<String, String>,
    /// Private ranges allowed as resolved addresses.
    #[serde(default)]
    pub allow_private_ranges: Vec<String>,
    /// The credentials.
    #[serde(default)]
    pub secrets: Vec<HeldSecret>,
}

impl fmt::Debug for LiveRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveRules")
            .field("rules", &self.rules)
            .field("hosts", &self.hosts)
            .field("allow_private_ranges", &self.allow_private_ranges)
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl LiveRules {
    /// Checks everything the sidecar relies on: each rule, each pinned
    /// address, each range, and that every injecting rule's secret is held.
    /// Errors never contain a secret's value.
    pub fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.rules.iter().enumerate() {
            rule.validate()
                .map_err(|e| format!("rule #{}: {e}", i + 1))?;
            if let Some(inj) = &rule.inject {
                if !self.secrets.iter().any(|s| s.name == inj.secret) {
                    return Err(format!(
                        "rule #{} injects secret `{}`, which is not held",
                        i + 1,
                        inj.secret
                    ));
                }
            }
        }
        for (name, ip) in &self.hosts {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("hosts: `{ip}` (for `{name}`) is not an IP address"))?;
        }
        for r in &self.allow_private_ranges {
            Cidr::parse(r).map_err(|e| format!("allow_private_ranges: {e}"))?;
        }
        for s in &self.secrets {
            if s.value.is_empty() {
                return Err(format!("secret `{}` is empty", s.name));
            }
        }
        Ok(())
    }
}

/// The credentials a sidecar holds, in their own 0600 file so the rules can be
/// shown (e.g. on the supervise endpoint) without them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SecretsFile {
    /// Every credential.
    pub secrets: Vec<HeldSecret>,
}

/// One credential. `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldSecret {
    /// The secret's name in the manifest (`[secrets.NAME]`).
    pub name: String,
    /// The real value; never given to the agent.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::tests::rule;

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
            allow_private_ranges: vec!["10.0.0.0/8".into()],
            supervise: Some(Default::default()),
        };
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<SidecarConfig>(&text).unwrap(), cfg);
        assert!(serde_json::from_str::<SidecarConfig>(
            r#"{"bottle":"d","listen":"x","rules":[],"extra":1}"#
        )
        .is_err());
    }

    #[test]
    fn listen_specs() {
        assert_eq!(
            ListenSpec::parse("agent-networks:3128"),
            Ok(ListenSpec::AgentNetworks(3128))
        );
        assert_eq!(
            ListenSpec::parse("127.0.0.1:0"),
            Ok(ListenSpec::Addr("127.0.0.1:0".parse().unwrap()))
        );
        assert!(ListenSpec::parse("agent-networks:x").is_err());
        assert!(ListenSpec::parse("0.0.0.0").is_err());
        assert_eq!(ListenSpec::agent_networks(3128), "agent-networks:3128");
    }

    #[test]
    fn live_rules_need_every_injected_secret_and_never_show_values() {
        let mut r = rule("api.example.com");
        r.inject = Some(crate::rule::Inject {
            header: "x-api-key".into(),
            secret: "k".into(),
            value: "{secret}".into(),
            allow_wildcard: false,
            basic_user: None,
        });
        let mut live = LiveRules {
            rules: vec![r],
            ..Default::default()
        };
        assert!(live.validate().unwrap_err().contains("not held"));
        live.secrets.push(HeldSecret {
            name: "k".into(),
            value: "v1-supersecret".into(),
            placeholder: None,
        });
        assert_eq!(live.validate(), Ok(()));
        assert!(!format!("{live:?}").contains("supersecret"));
        live.allow_private_ranges.push("10.0.0.0/33".into());
        assert!(live.validate().is_err());
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
}
