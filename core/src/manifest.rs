//! Bottle manifests: `$BOTTLEBAR_HOME/bottles/<name>.toml`, parsed and validated.
//!
//! Parsing is strict (unknown keys are errors) and every error names the file,
//! the key and, where known, the line and column. Validation checks everything
//! that can be checked without an engine, so a bad manifest fails before any
//! resource exists. The format is documented in `docs/manifest.md`.

use crate::home::Home;
use crate::name::{BottleName, NameError};
use bottlebar_policy::selftest::LeakClass;
use bottlebar_policy::EgressRule;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use toml::Spanned;

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

/// Built-in agent image templates.
pub const TEMPLATES: &[&str] = &["busybox"];

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
    pub file: String,
    /// 1-based line and column, where the parser knows them.
    pub position: Option<(usize, usize)>,
    /// Dotted key path, e.g. `mounts[2].host`.
    pub key: String,
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
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("no bottle named `{name}`: expected a manifest at {path}")]
    NotFound { name: String, path: PathBuf },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] ManifestError),
}

/// Which container engine runs a bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Docker,
    Apple,
}

impl BackendKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "docker" => Some(Self::Docker),
            "apple" => Some(Self::Apple),
            _ => None,
        }
    }

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
    pub name: BottleName,
    /// Where it came from: a file path, or `<built-in demo>`.
    pub source: String,
    pub description: Option<String>,
    pub backend: Option<BackendKind>,
    pub agent: AgentImage,
    /// The agent program "Start agent" runs in the bottle (e.g. `["claude"]`).
    pub agent_command: Vec<String>,
    pub mounts: Vec<Mount>,
    pub env: BTreeMap<String, String>,
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
    pub supervise: bool,
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
    pub name: String,
    pub source: SecretSource,
    /// An environment variable the agent gets holding [`SecretSpec::placeholder`],
    /// so its tools start; the sidecar swaps in the real value.
    pub placeholder_env: Option<String>,
}

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

impl SecretSpec {
    /// The stand-in value the agent sees in `placeholder_env`.
    pub fn placeholder(&self) -> String {
        format!("bottlebar-placeholder-{}", self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentImage {
    /// A built-in template, e.g. `busybox`.
    Template(String),
    /// The bottle's own Dockerfile and its build context directory.
    Dockerfile {
        dockerfile: PathBuf,
        context: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub host: PathBuf,
    pub container: String,
    pub readonly: bool,
    /// True when `host` is a single file (it is staged, never bind-mounted itself).
    pub is_file: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    pub cpus: Option<u32>,
    pub memory_mib: Option<u64>,
}

// ---- raw, as written ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    description: Option<String>,
    backend: Option<Spanned<String>>,
    agent: Spanned<RawAgent>,
    #[serde(default)]
    mounts: Vec<Spanned<RawMount>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    egress: Vec<Spanned<EgressRule>>,
    #[serde(default)]
    secrets: BTreeMap<String, Spanned<RawSecret>>,
    #[serde(default)]
    tls: RawTls,
    #[serde(default)]
    dns: Vec<Spanned<String>>,
    #[serde(default)]
    hosts: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    git_gate: bool,
    #[serde(default)]
    supervise: bool,
    #[serde(default)]
    resources: RawResources,
    #[serde(default)]
    isolation: RawIsolation,
    #[serde(default)]
    allow_private_ranges: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIsolation {
    #[serde(default)]
    accept_leaks: Vec<Spanned<String>>,
    #[serde(default)]
    gvisor: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    env: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    #[serde(default)]
    keychain: bool,
    placeholder_env: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    #[serde(default)]
    extra_roots: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    template: Option<Spanned<String>>,
    dockerfile: Option<Spanned<String>>,
    context: Option<Spanned<String>>,
    #[serde(default)]
    command: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    host: Spanned<String>,
    container: Spanned<String>,
    #[serde(default)]
    readonly: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawResources {
    cpus: Option<Spanned<i64>>,
    memory: Option<Spanned<String>>,
}

/// Fewest MiB a bottle may ask for (Apple's runtime refuses less than 200 MiB).
pub const MIN_MEMORY_MIB: u64 = 256;
pub const MAX_CPUS: i64 = 256;

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.file.to_string(),
            position: span.map(|s| line_col(self.text, s.start)),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The key a parse error points at, read from the source: the text before `=`
/// on a key/value line (prefixed with the enclosing `[table]`), or the header
/// of a `[table]` line.
fn key_at(text: &str, offset: usize) -> String {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| {
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    };
    if let Some(h) = header(line) {
        return h;
    }
    let Some((key, _)) = line.split_once('=') else {
        return String::new();
    };
    let key = key.trim().trim_matches('"');
    let table = text[..start].lines().rev().map(str::trim).find_map(header);
    match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    }
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
    let base_dir = home.bottles_dir();
    let base_dir = base_dir.as_path();
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let span = e.span();
        let key = span
            .clone()
            .map(|s| key_at(text, s.start))
            .unwrap_or_default();
        cx.err(span, &key, e.message().trim().to_string())
    })?;

    let backend = match &raw.backend {
        None => None,
        Some(b) => Some(BackendKind::parse(b.get_ref()).ok_or_else(|| {
            cx.err(
                Some(b.span()),
                "backend",
                format!(
                    "unknown backend `{}`; expected `docker` or `apple`",
                    b.get_ref()
                ),
            )
        })?),
    };

    let agent = validate_agent(&cx, &raw.agent, base_dir)?;
    let mut agent_command = Vec::new();
    for (i, a) in raw.agent.get_ref().command.iter().enumerate() {
        if a.get_ref().is_empty() || a.get_ref().contains('\0') {
            return Err(cx.err(
                Some(a.span()),
                &format!("agent.command[{i}]"),
                "arguments must be non-empty and contain no NUL byte",
            ));
        }
        agent_command.push(a.get_ref().clone());
    }
    let mounts = validate_mounts(&cx, &raw.mounts, home.root())?;
    let env = validate_env(&cx, &raw.env)?;

    let secrets = validate_secrets(&cx, &raw.secrets, &env)?;
    let mut egress = Vec::with_capacity(raw.egress.len());
    for (i, r) in raw.egress.iter().enumerate() {
        let rule = r.get_ref().clone();
        let key = format!("egress[{i}]");
        rule.validate()
            .map_err(|e| cx.err(Some(r.span()), &key, e.to_string()))?;
        if let Some(inj) = &rule.inject {
            if !secrets.iter().any(|s| s.name == inj.secret) {
                return Err(cx.err(
                    Some(r.span()),
                    &format!("{key}.inject.secret"),
                    format!(
                        "no secret named `{}`; declare it as [secrets.{}]",
                        inj.secret, inj.secret
                    ),
                ));
            }
        }
        egress.push(rule);
    }
    let extra_roots = validate_extra_roots(&cx, &raw.tls.extra_roots)?;
    let mut dns = Vec::new();
    for (i, d) in raw.dns.iter().enumerate() {
        match d.get_ref().parse::<std::net::IpAddr>() {
            Ok(ip) => dns.push(ip.to_string()),
            Err(_) => {
                return Err(cx.err(
                    Some(d.span()),
                    &format!("dns[{i}]"),
                    format!("`{}` is not an IP address", d.get_ref()),
                ))
            }
        }
    }
    let mut hosts = BTreeMap::new();
    for (name, ip) in &raw.hosts {
        let key = format!("hosts.{name}");
        let probe = EgressRule {
            host: name.clone(),
            ports: vec![],
            methods: vec![],
            paths: vec![],
            inject: None,
            dlp: Default::default(),
        };
        if name.starts_with("*.")
            || bottlebar_policy::is_ip_literal(name)
            || probe.validate().is_err()
        {
            return Err(cx.err(
                Some(ip.span()),
                &key,
                format!("`{name}` is not a host name (lowercase, no wildcard)"),
            ));
        }
        let addr = ip.get_ref().parse::<std::net::IpAddr>().map_err(|_| {
            cx.err(
                Some(ip.span()),
                &key,
                format!("`{}` is not an IP address", ip.get_ref()),
            )
        })?;
        hosts.insert(name.clone(), addr.to_string());
    }

    let mut allow_private_ranges = Vec::new();
    for (i, r) in raw.allow_private_ranges.iter().enumerate() {
        bottlebar_policy::Cidr::parse(r.get_ref())
            .map_err(|e| cx.err(Some(r.span()), &format!("allow_private_ranges[{i}]"), e))?;
        allow_private_ranges.push(r.get_ref().clone());
    }
    let resources = validate_resources(&cx, &raw.resources)?;
    let mut accept_leaks = Vec::new();
    for c in &raw.isolation.accept_leaks {
        let class = LeakClass::parse(c.get_ref()).ok_or_else(|| {
            cx.err(
                Some(c.span()),
                "isolation.accept_leaks",
                format!(
                    "`{}` is not a leak class; the classes are {}",
                    c.get_ref(),
                    LeakClass::ALL.map(|c| format!("`{c}`")).join(", ")
                ),
            )
        })?;
        if !accept_leaks.contains(&class) {
            accept_leaks.push(class);
        }
    }

    Ok(Manifest {
        name: name.clone(),
        source: file.to_string(),
        description: raw.description,
        backend,
        agent,
        agent_command,
        mounts,
        env,
        egress,
        secrets,
        extra_roots,
        dns,
        hosts,
        allow_private_ranges,
        git_gate: raw.git_gate,
        supervise: raw.supervise,
        resources,
        accept_leaks,
        gvisor: raw.isolation.gvisor,
    })
}

fn validate_agent(
    cx: &Ctx<'_>,
    agent: &Spanned<RawAgent>,
    base_dir: &Path,
) -> Result<AgentImage, ManifestError> {
    let a = agent.get_ref();
    match (&a.template, &a.dockerfile) {
        (Some(_), Some(d)) => Err(cx.err(Some(d.span()), "agent.dockerfile", "give either `template` or `dockerfile`, not both")),
        (None, None) => Err(cx.err(Some(agent.span()), "agent", "needs `template` (one of: busybox) or `dockerfile` (a path relative to the bottle file)")),
        (Some(t), None) => {
            if let Some(c) = &a.context {
                return Err(cx.err(Some(c.span()), "agent.context", "`context` goes with `dockerfile`, not with `template`"));
            }
            if !TEMPLATES.contains(&t.get_ref().as_str()) {
                return Err(cx.err(Some(t.span()), "agent.template", format!("unknown template `{}`; built-in templates: {}", t.get_ref(), TEMPLATES.join(", "))));
            }
            Ok(AgentImage::Template(t.get_ref().clone()))
        }
        (None, Some(d)) => {
            let dockerfile = resolve_from(base_dir, d.get_ref());
            if !dockerfile.is_file() {
                return Err(cx.err(Some(d.span()), "agent.dockerfile", format!("no such file: {}", dockerfile.display())));
            }
            let context = match &a.context {
                Some(c) => {
                    let p = resolve_from(base_dir, c.get_ref());
                    if !p.is_dir() {
                        return Err(cx.err(Some(c.span()), "agent.context", format!("no such directory: {}", p.display())));
                    }
                    p
                }
                None => dockerfile.parent().map(Path::to_path_buf).unwrap_or_else(|| base_dir.to_path_buf()),
            };
            Ok(AgentImage::Dockerfile { dockerfile, context })
        }
    }
}

fn resolve_from(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Characters that would break a `--mount type=bind,source=…,target=…` spec.
fn bad_mount_char(s: &str) -> Option<char> {
    s.chars()
        .find(|c| matches!(c, ',' | '"' | '\'' | '=' | '\n' | '\r' | '\0'))
}

fn validate_mounts(
    cx: &Ctx<'_>,
    mounts: &[Spanned<RawMount>],
    home: &Path,
) -> Result<Vec<Mount>, ManifestError> {
    let mut out = Vec::with_capacity(mounts.len());
    let mut targets = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let m = m.get_ref();
        let hkey = format!("mounts[{i}].host");
        let ckey = format!("mounts[{i}].container");
        let host = m.host.get_ref();
        let hspan = Some(m.host.span());
        if let Some(c) = bad_mount_char(host) {
            return Err(cx.err(hspan, &hkey, format!("host path may not contain {c:?}")));
        }
        let host_path = Path::new(host);
        if !host_path.is_absolute() {
            return Err(cx.err(hspan, &hkey, format!("host path `{host}` must be absolute")));
        }
        let meta = std::fs::metadata(host_path).map_err(|e| {
            cx.err(
                hspan.clone(),
                &hkey,
                format!("host path `{host}` is not accessible: {e}"),
            )
        })?;
        if !meta.is_dir() && !meta.is_file() {
            return Err(cx.err(
                hspan,
                &hkey,
                format!("host path `{host}` is neither a directory nor a regular file"),
            ));
        }
        if let Some(why) = crate::boundary::forbidden_mount(host_path, home) {
            return Err(cx.err(
                hspan,
                &hkey,
                format!("host path `{host}` cannot be mounted: {why}"),
            ));
        }

        let container = m.container.get_ref();
        let cspan = Some(m.container.span());
        if let Some(c) = bad_mount_char(container) {
            return Err(cx.err(
                cspan,
                &ckey,
                format!("container path may not contain {c:?}"),
            ));
        }
        let cpath = Path::new(container);
        let normal = cpath.is_absolute()
            && cpath
                .components()
                .skip(1)
                .all(|c| matches!(c, Component::Normal(_)))
            && !container.contains("//")
            && (container.len() == 1 || !container.ends_with('/'));
        if !normal || container == "/" {
            return Err(cx.err(cspan, &ckey, format!("container path `{container}` must be an absolute, normalised path other than `/` (no `.`, `..`, `//` or trailing `/`)")));
        }
        if let Some(r) = RESERVED_CONTAINER_DIRS
            .iter()
            .find(|r| cpath.starts_with(r))
        {
            return Err(cx.err(
                cspan,
                &ckey,
                format!("container path `{container}` is inside `{r}`, which Bottlebar reserves"),
            ));
        }
        if !targets.insert(container.clone()) {
            return Err(cx.err(
                cspan,
                &ckey,
                format!("container path `{container}` is mounted twice"),
            ));
        }
        out.push(Mount {
            host: host_path.to_path_buf(),
            container: container.clone(),
            readonly: m.readonly,
            is_file: meta.is_file(),
        });
    }
    // Single files are staged into a directory mounted at their container parent,
    // so no other mount may sit at or under that parent, and vice versa.
    for (i, f) in out.iter().enumerate().filter(|(_, m)| m.is_file) {
        let parent = Path::new(&f.container).parent().unwrap_or(Path::new("/"));
        if parent == Path::new("/") {
            return Err(cx.err(Some(mounts[i].get_ref().container.span()), &format!("mounts[{i}].container"), format!("single file `{}` cannot be mounted directly under `/`: Bottlebar mounts files through their parent directory, so choose a directory such as `/data/...`", f.container)));
        }
        for (j, d) in out.iter().enumerate().filter(|(_, m)| !m.is_file) {
            let dp = Path::new(&d.container);
            if dp.starts_with(parent) || parent.starts_with(dp) {
                return Err(cx.err(Some(mounts[i].get_ref().container.span()), &format!("mounts[{i}].container"), format!("file `{}` is mounted through its directory `{}`, which overlaps the directory mount `{}` (mounts[{j}])", f.container, parent.display(), d.container)));
            }
        }
    }
    Ok(out)
}

fn validate_env(
    cx: &Ctx<'_>,
    env: &BTreeMap<String, Spanned<String>>,
) -> Result<BTreeMap<String, String>, ManifestError> {
    let mut out = BTreeMap::new();
    for (k, v) in env {
        let key = format!("env.{k}");
        let span = Some(v.span());
        if !valid_env_name(k) {
            return Err(cx.err(span, &key, format!("`{k}` is not a valid environment variable name (letters, digits, `_`; not starting with a digit)")));
        }
        if RESERVED_ENV.contains(&k.as_str()) {
            return Err(cx.err(
                span,
                &key,
                format!(
                    "`{k}` is set by Bottlebar (proxy and CA settings) and cannot be overridden"
                ),
            ));
        }
        if v.get_ref().contains('\0') {
            return Err(cx.err(span, &key, "value contains a NUL byte"));
        }
        out.insert(k.clone(), v.get_ref().clone());
    }
    Ok(out)
}

fn valid_env_name(k: &str) -> bool {
    k.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn validate_secrets(
    cx: &Ctx<'_>,
    secrets: &BTreeMap<String, Spanned<RawSecret>>,
    env: &BTreeMap<String, String>,
) -> Result<Vec<SecretSpec>, ManifestError> {
    let mut out = Vec::new();
    let mut placeholders = BTreeSet::new();
    for (name, raw) in secrets {
        let key = format!("secrets.{name}");
        let span = Some(raw.span());
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(cx.err(
                span,
                &key,
                format!("secret name `{name}` must be lowercase letters, digits, `-` or `_`"),
            ));
        }
        let r = raw.get_ref();
        let source = match (&r.env, &r.file) {
            (None, None) if r.keychain => SecretSource::Keychain,
            (Some(e), None) if !r.keychain => {
                if !valid_env_name(e.get_ref()) {
                    return Err(cx.err(Some(e.span()), &format!("{key}.env"), format!("`{}` is not an environment variable name", e.get_ref())));
                }
                SecretSource::Env(e.get_ref().clone())
            }
            (None, Some(f)) if !r.keychain => {
                let p = Path::new(f.get_ref());
                if !p.is_absolute() {
                    return Err(cx.err(Some(f.span()), &format!("{key}.file"), format!("`{}` must be an absolute path", f.get_ref())));
                }
                SecretSource::File(p.to_path_buf())
            }
            _ => return Err(cx.err(span, &key, "give exactly one of `env` (a variable of the launching process), `file` (an absolute path) or `keychain = true` (the OS keychain)")),
        };
        let placeholder_env = match &r.placeholder_env {
            None => None,
            Some(p) => {
                let v = p.get_ref();
                let pkey = format!("{key}.placeholder_env");
                if !valid_env_name(v) {
                    return Err(cx.err(
                        Some(p.span()),
                        &pkey,
                        format!("`{v}` is not an environment variable name"),
                    ));
                }
                if RESERVED_ENV.contains(&v.as_str())
                    || env.contains_key(v)
                    || !placeholders.insert(v.clone())
                {
                    return Err(cx.err(
                        Some(p.span()),
                        &pkey,
                        format!("`{v}` is already set (by Bottlebar, [env] or another secret)"),
                    ));
                }
                Some(v.clone())
            }
        };
        out.push(SecretSpec {
            name: name.clone(),
            source,
            placeholder_env,
        });
    }
    Ok(out)
}

fn validate_extra_roots(
    cx: &Ctx<'_>,
    roots: &[Spanned<String>],
) -> Result<Vec<PathBuf>, ManifestError> {
    let mut out = Vec::new();
    for (i, r) in roots.iter().enumerate() {
        let key = format!("tls.extra_roots[{i}]");
        let p = Path::new(r.get_ref());
        if !p.is_absolute() {
            return Err(cx.err(
                Some(r.span()),
                &key,
                format!("`{}` must be an absolute path", r.get_ref()),
            ));
        }
        let text = std::fs::read_to_string(p).map_err(|e| {
            cx.err(
                Some(r.span()),
                &key,
                format!("cannot read `{}`: {e}", p.display()),
            )
        })?;
        if !text.contains("-----BEGIN CERTIFICATE-----") {
            return Err(cx.err(
                Some(r.span()),
                &key,
                format!("`{}` holds no PEM certificate", p.display()),
            ));
        }
        out.push(p.to_path_buf());
    }
    Ok(out)
}

fn validate_resources(cx: &Ctx<'_>, r: &RawResources) -> Result<Resources, ManifestError> {
    let cpus = match &r.cpus {
        None => None,
        Some(c) => {
            let n = *c.get_ref();
            if !(1..=MAX_CPUS).contains(&n) {
                return Err(cx.err(
                    Some(c.span()),
                    "resources.cpus",
                    format!("must be a whole number from 1 to {MAX_CPUS}, got {n}"),
                ));
            }
            Some(n as u32)
        }
    };
    let memory_mib = match &r.memory {
        None => None,
        Some(m) => {
            let mib = parse_memory_mib(m.get_ref()).ok_or_else(|| {
                cx.err(
                    Some(m.span()),
                    "resources.memory",
                    format!(
                        "`{}` is not a size; write a whole number with a unit: `512m`, `4g`",
                        m.get_ref()
                    ),
                )
            })?;
            if mib < MIN_MEMORY_MIB {
                return Err(cx.err(
                    Some(m.span()),
                    "resources.memory",
                    format!("{mib} MiB is too little; at least {MIN_MEMORY_MIB}m"),
                ));
            }
            Some(mib)
        }
    };
    Ok(Resources { cpus, memory_mib })
}

/// `512m`, `4g`, `4G`, `1t` → MiB. Whole numbers only; bytes and KiB are too small to matter.
pub fn parse_memory_mib(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'm' => (&s[..s.len() - 1], 1u64),
        'g' => (&s[..s.len() - 1], 1024),
        't' => (&s[..s.len() - 1], 1024 * 1024),
        _ => return None,
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<u64>().ok()?.checked_mul(mult)
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
        assert_eq!(m.agent, AgentImage::Template("busybox".into()));
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
