//! Bottle manifests: `$BOTTLEBAR_HOME/bottles/<name>.toml`, parsed and validated.
//!
//! Parsing is strict (unknown keys are errors) and every error names the file,
//! the key and, where known, the line and column. Validation checks everything
//! that can be checked without an engine, so a bad manifest fails before any
//! resource exists. The format is documented in `docs/manifest.md`.

//!
//! The module: [`raw`] is the file as written (serde, with spans), its
//! keys listed in [`schema`] with who edits each (the app's form or the
//! file only); [`validate`] turns each part into the checked
//! [`Manifest`]; `parse` runs the stages in order.

mod agent;
mod mounts;
mod raw;
pub mod schema;
mod validate;

use crate::home::Home;
use crate::name::{BottleName, NameError};
use bottlebar_policy::selftest::LeakClass;
use bottlebar_policy::EgressRule;
pub(crate) use raw::line_col;
use raw::{Ctx, RawManifest};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
pub use validate::parse_memory_mib;

/// The built-in bottle that exists without a file.
pub const DEMO_BOTTLE: &str = "demo";

/// The demo bottle's manifest. A user file `bottles/demo.toml` takes precedence.
pub const DEMO_MANIFEST: &str = r#"# The built-in demo bottle: a busybox agent that may reach example.com only.
description = "Built-in demo: a busybox agent allowed to reach example.com"

[agent]
template = "busybox"

[[egress]]
host = "example.com"

[[egress]]
host = "*.example.com"
methods = ["GET", "HEAD"]
"#;

/// Fewest MiB a bottle may ask for (Apple's runtime refuses less than 200 MiB).
pub const MIN_MEMORY_MIB: u64 = 256;
/// Most CPUs a bottle may ask for.
pub const MAX_CPUS: i64 = 256;

/// Container path where the agent finds the bottle's CA certificate.
pub const AGENT_CA_DIR: &str = "/etc/bottlebar/ca";

/// Container paths reserved for Bottlebar's own mounts (and the probe's
/// old place, which an image may still expect nothing at).
const RESERVED_CONTAINER_DIRS: &[&str] = &["/etc/bottlebar", "/.bottlebar"];

/// Environment variables Bottlebar sets in the agent; a manifest may not set them.
pub const RESERVED_ENV: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "MCP_SUPERVISE_URL",
];

/// A validated error in a manifest, pointing at the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    /// The manifest file (or `<built-in demo>`).
    pub file: String,
    /// 1-based line and column, where the parser knows them.
    pub position: Option<(usize, usize)>,
    /// Dotted key path, e.g. `mounts[2].host`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors loading a bottle by name.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The name is not a bottle name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// There is no such bottle.
    #[error("no bottle named `{name}`: expected a manifest at {path}")]
    NotFound {
        /// The bottle.
        name: String,
        /// Where its file would be.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error(transparent)]
    Invalid(#[from] ManifestError),
}

/// Which container engine runs a bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Docker Engine, through the `docker` CLI.
    Docker,
    /// Apple's `container` (macOS 26).
    Apple,
}

impl BackendKind {
    /// `docker` or `apple`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "docker" => Some(Self::Docker),
            "apple" => Some(Self::Apple),
            _ => None,
        }
    }

    /// `docker` or `apple`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Apple => "apple",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A manifest that passed validation. Paths are absolute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// Its name (the file's stem).
    pub name: BottleName,
    /// Where it came from: a file path, or `<built-in demo>`.
    pub source: String,
    /// `description`.
    pub description: Option<String>,
    /// `backend`, when the bottle insists on one.
    pub backend: Option<BackendKind>,
    /// The agent's image: a template or a Dockerfile.
    pub agent: AgentImage,
    /// The agent program "Start agent" runs in the bottle (e.g. `["claude"]`).
    pub agent_command: Vec<String>,
    /// `[[mounts]]`.
    pub mounts: Vec<Mount>,
    /// `[env]`.
    pub env: BTreeMap<String, String>,
    /// `[[egress]]` rules.
    pub egress: Vec<EgressRule>,
    /// Credentials the sidecar holds: injected by rules, and scanned for in
    /// everything the agent sends.
    pub secrets: Vec<SecretSpec>,
    /// PEM files of extra CAs the sidecar trusts for upstream TLS.
    pub extra_roots: Vec<PathBuf>,
    /// Nameservers for the sidecar (and Apple's image builder); empty = the default.
    pub dns: Vec<String>,
    /// Host names pinned to addresses: the sidecar never asks DNS for them.
    pub hosts: BTreeMap<String, String>,
    /// Private, loopback or link-local ranges (CIDR) an allowed name may
    /// resolve to; by default the sidecar refuses such answers.
    pub allow_private_ranges: Vec<String>,
    /// Gated `git push` through the sidecar.
    pub git_gate: bool,
    /// `supervise`: offer the agent the MCP supervise endpoint.
    pub supervise: bool,
    /// `[supervise]`'s settings (limits, held requests, wildcards).
    pub supervise_settings: bottlebar_policy::supervise::SuperviseConfig,
    /// `[resources]`.
    pub resources: Resources,
    /// Leak classes of the isolation self-test the user accepts knowingly
    /// (`[isolation] accept_leaks`); empty by default: any leak fails closed.
    pub accept_leaks: Vec<LeakClass>,
    /// Run the agent under gVisor: `Some(true)` requires it, `Some(false)`
    /// turns it off, `None` uses it where Docker has it (`[isolation] gvisor`).
    pub gvisor: Option<bool>,
}

/// Where a secret comes from. Its value is read at launch, never stored in
/// the manifest, and never given to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretSpec {
    /// Its name (`[secrets.NAME]`).
    pub name: String,
    /// Where its value comes from.
    pub source: SecretSource,
    /// An environment variable the agent gets holding [`SecretSpec::placeholder`],
    /// so its tools start; the sidecar swaps in the real value.
    pub placeholder_env: Option<String>,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    /// An environment variable of the process that launches the bottle.
    Env(String),
    /// A file (trailing newlines are trimmed).
    File(PathBuf),
    /// The OS keychain (macOS Keychain; the kernel keyring on Linux), entry
    /// `bottlebar` / `<bottle>/<secret>`; the app stores it there.
    Keychain,
}

impl SecretSource {
    /// Where the value comes from, as people read it: `the environment
    /// variable API_KEY`, `the file /run/token`, `the keychain`.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(v) => format!("the environment variable {v}"),
            SecretSource::File(p) => format!("the file {}", p.display()),
            SecretSource::Keychain => "the keychain".into(),
        }
    }
}

impl SecretSpec {
    /// The stand-in value the agent sees in `placeholder_env`.
    pub fn placeholder(&self) -> String {
        format!("bottlebar-placeholder-{}", self.name)
    }
}

/// The agent's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentImage {
    /// A built-in template (`crate::templates`), and the base image a
    /// Debian template is built on, when the bottle names one.
    Template {
        /// Its name, e.g. `claude-code`.
        name: String,
        /// `agent.base`: an image reference.
        base: Option<String>,
    },
    /// The bottle's own Dockerfile and its build context directory.
    Dockerfile {
        /// The Dockerfile.
        dockerfile: PathBuf,
        /// Its build context.
        context: PathBuf,
    },
}

/// One `[[mounts]]` entry, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// The host path (absolute, existing).
    pub host: PathBuf,
    /// Where it appears in the container.
    pub container: String,
    /// Mounted read-only.
    pub readonly: bool,
    /// True when `host` is a single file (it is staged, never bind-mounted itself).
    pub is_file: bool,
}

/// `[resources]`: the agent's CPUs and memory (the engine's default when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// CPUs.
    pub cpus: Option<u32>,
    /// Memory, in MiB.
    pub memory_mib: Option<u64>,
}

/// Parses and validates manifest text. `file` names it in errors; a
/// relative Dockerfile path is resolved from `home`'s bottles directory,
/// and no mount may reach into `home`.
pub fn parse(
    name: &BottleName,
    file: &str,
    text: &str,
    home: &Home,
) -> Result<Manifest, ManifestError> {
    let cx = Ctx { file, text };
    let raw: RawManifest = cx.deserialize()?;
    let base_dir = home.bottles_dir();
    let agent = agent::agent(&cx, &raw.agent, &base_dir)?;
    let mut agent_command = validate::agent_command(&cx, &raw.agent.get_ref().command)?;
    if let (true, AgentImage::Template { name, .. }) = (agent_command.is_empty(), &agent) {
        // A template's own program, when the file names none.
        let template = crate::templates::find(name).expect("validated");
        agent_command = template.command.iter().map(|a| a.to_string()).collect();
    }
    let env = validate::env(&cx, &raw.env)?;
    let secrets = validate::secrets(&cx, &raw.secrets, &env)?;
    let supervise = validate::supervise(&cx, raw.supervise.as_ref())?;
    Ok(Manifest {
        name: name.clone(),
        source: file.to_string(),
        backend: validate::backend(&cx, raw.backend.as_ref())?,
        agent,
        agent_command,
        mounts: mounts::mounts(&cx, &raw.mounts, home.root())?,
        egress: validate::egress(&cx, &raw.egress, &secrets)?,
        env,
        secrets,
        extra_roots: validate::extra_roots(&cx, &raw.tls.extra_roots)?,
        dns: validate::dns(&cx, &raw.dns)?,
        hosts: validate::hosts(&cx, &raw.hosts)?,
        allow_private_ranges: validate::private_ranges(&cx, &raw.allow_private_ranges)?,
        resources: validate::resources(&cx, &raw.resources)?,
        accept_leaks: validate::accept_leaks(&cx, &raw.isolation.accept_leaks)?,
        gvisor: raw.isolation.gvisor,
        git_gate: raw.git_gate,
        supervise: supervise.0,
        supervise_settings: supervise.1,
        description: raw.description,
    })
}

/// Loads the bottle `name` from `home` (never from anywhere else). The built-in
/// demo bottle is used when no `demo.toml` exists.
pub fn load(home: &Home, name: &str) -> Result<Manifest, LoadError> {
    let name = BottleName::parse(name)?;
    let path = home.bottle_file(&name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(parse(&name, &path.display().to_string(), &text, home)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.as_str() == DEMO_BOTTLE => {
            Ok(parse(&name, "<built-in demo>", DEMO_MANIFEST, home)?)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(LoadError::NotFound {
            name: name.to_string(),
            path,
        }),
        Err(source) => Err(LoadError::Io { path, source }),
    }
}

/// Names of every bottle the user has (files in `bottles/` plus the demo), sorted.
/// Files whose names are not valid bottle names are reported, not skipped silently.
pub fn list_names(home: &Home) -> (Vec<BottleName>, Vec<String>) {
    let mut names = BTreeSet::new();
    let mut problems = Vec::new();
    names.insert(BottleName::parse(DEMO_BOTTLE).expect("demo name is valid"));
    if let Ok(entries) = std::fs::read_dir(home.bottles_dir()) {
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("toml") {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            match BottleName::parse(stem) {
                Ok(n) => {
                    names.insert(n);
                }
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        }
    }
    (names.into_iter().collect(), problems)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_manifest_is_valid() {
        let home = Home::at("/nonexistent-bottlebar-home");
        let m = load(&home, "demo").unwrap();
        assert_eq!(
            m.agent,
            AgentImage::Template {
                name: "busybox".into(),
                base: None
            }
        );
        assert_eq!(m.egress.len(), 2);
        assert_eq!(m.source, "<built-in demo>");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory_mib("512m"), Some(512));
        assert_eq!(parse_memory_mib("4G"), Some(4096));
        assert_eq!(parse_memory_mib("2gb"), Some(2048));
        assert_eq!(parse_memory_mib("1.5g"), None);
        assert_eq!(parse_memory_mib("-1g"), None);
        assert_eq!(parse_memory_mib("100"), None);
        assert_eq!(parse_memory_mib("g"), None);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
