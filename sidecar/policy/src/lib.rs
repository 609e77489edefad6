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
//!
//! - [`rule`]: one allowlist entry and its validation;
//! - [`decide`](mod@decide): the allow/deny decision and the reasons for a denial;
//! - [`path`]: how a request path is normalised before path rules see it;
//! - [`addresses`]: which resolved addresses an allowed name may not reach;
//! - [`config`]: what the core hands the sidecar (rules, secrets, listen scope);
//! - [`audit`]: one line of the audit log;
//! - [`doh`]: DNS-over-HTTPS hosts and media types;
//! - [`selftest`]: the isolation self-test's vocabulary.

#![warn(missing_docs)]

pub mod addresses;
pub mod audit;
pub mod config;
pub mod decide;
pub mod doh;
pub mod path;
pub mod rule;
pub mod selftest;
pub mod supervise;

pub use addresses::{AddressPolicy, Cidr, SpecialAddress};
pub use audit::{AuditEntry, Kind as AuditKind, ReasonCode, Verdict};
pub use config::{HeldSecret, ListenSpec, LiveRules, SecretsFile, SidecarConfig, CONTROL_SOCKET};
pub use decide::{decide, Decision, DenyReason, Request};
pub use doh::{DOH_HOSTS, DOH_MEDIA_TYPES};
pub use rule::{
    is_ip_literal, normalize_host, DlpAction, EgressRule, Inject, RuleError, SECRET_MARKER,
};

/// Port the sidecar's proxy listens on inside its container.
pub const PROXY_PORT: u16 = 3128;

/// Path, on the proxy port, of the health endpoint the launch waits on.
pub const HEALTH_PATH: &str = "/__bottlebar/health";

/// Path, on the proxy port, of the supervise endpoint offered to the agent
/// (the MCP server, when the bottle has `supervise`).
pub const SUPERVISE_PATH: &str = "/__bottlebar/supervise";

/// Path, on the proxy port, of the status page: the bottle's rules, host
/// pins and counters, as JSON (never a secret value).
pub const STATUS_PATH: &str = "/__bottlebar/status";

/// Ports a rule allows when it names none.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// The port on which upstream TLS is spoken whatever the agent sends: a
/// tunnel to it is always continued over verified TLS.
pub const TLS_PORT: u16 = 443;
