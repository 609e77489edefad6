//! From a validated manifest to everything a launch plan needs, with no engine
//! involved: image specs, state paths, mounts and the agent's environment.
//!
//! [`describe`] only reads files (to hash image inputs); [`materialize`]
//! writes the state directory; [`plan`] is a pure function of the spec.

use crate::home::{Home, HomeId};
use crate::images::{self, ImageError, ImageSpec};
use crate::manifest::{
    AgentImage, BackendKind, Manifest, Mount, Resources, SecretSpec, AGENT_CA_DIR,
};
use crate::name::BottleName;
use crate::plan::SIDECAR_IP;
use crate::state::{
    self, StagedDir, StateDirs, StateError, CA_CERT_FILE, SIDECAR_AUDIT_IN_CONTAINER,
    SIDECAR_REQUESTS_IN_CONTAINER, SIDECAR_STATE_IN_CONTAINER,
};
use crate::templates;
use bottlebar_policy::supervise::SuperviseConfig;
use bottlebar_policy::{EgressRule, HeldSecret, PROXY_PORT, SUPERVISE_PATH};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The agent's main process: sleep for the largest signed 32-bit number of
/// seconds, i.e. forever, without relying on `sleep infinity` (which not every
/// `sleep` accepts). It keeps the container up so `exec` always has a target.
pub const AGENT_KEEPALIVE_SECS: &str = "2147483647";

/// Everything a plan is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchSpec {
    /// The bottle.
    pub bottle: BottleName,
    /// The id of the home launching it (every resource is labelled with it).
    pub home_id: String,
    /// The backend it runs on.
    pub backend: BackendKind,
    /// The engine program, argv[0] of every step.
    pub engine: String,
    /// Its state directory.
    pub state: StateDirs,
    /// The sidecar's image.
    pub sidecar_image: ImageSpec,
    /// The agent's image.
    pub agent_image: ImageSpec,
    /// The manifest's directory mounts.
    pub dir_mounts: Vec<Mount>,
    /// Staging directories for its single-file mounts.
    pub staged: Vec<StagedDir>,
    /// The agent's environment, as the manifest sets it.
    pub env: BTreeMap<String, String>,
    /// The egress rules.
    pub egress: Vec<EgressRule>,
    /// Where the credentials come from (their values are read at launch only).
    pub secrets: Vec<SecretSpec>,
    /// Extra CA roots the sidecar trusts upstream.
    pub extra_roots: Vec<PathBuf>,
    /// The supervise (MCP) endpoint's settings, when the agent gets it.
    pub supervise: Option<SuperviseConfig>,
    /// The agent's CPUs and memory.
    pub resources: Resources,
    /// Nameservers for the sidecar and the image builder (Apple's NAT gateway
    /// may not resolve). Empty on Docker unless set: its embedded DNS works.
    pub dns: Vec<String>,
    /// The engine CLI's version, where it changes the plan; `None` plans for
    /// the newest known behaviour.
    pub engine_version: Option<(u64, u64, u64)>,
    /// Host names the sidecar resolves to fixed addresses, never asking DNS.
    pub hosts: BTreeMap<String, String>,
    /// Private ranges an allowed name may resolve to (`allow_private_ranges`).
    pub allow_private_ranges: Vec<String>,
    /// Run the agent under gVisor (`runsc`), where the engine has it.
    pub gvisor: bool,
    /// Build the agent's image afresh (`bottle up --rebuild`): no cache, not
    /// skipped when an image with its hash exists.
    pub rebuild_agent: bool,
    /// The sidecar's user and group ids (never root).
    pub sidecar_user: (u32, u32),
    /// Docker: the internal and egress networks' subnets (see `subnets`);
    /// `None` leaves them to the engine.
    pub subnets: Option<(String, String)>,
}

/// Files on this machine that images are built from.
#[derive(Debug, Clone)]
pub struct BuildInputs {
    /// The static sidecar binary.
    pub sidecar_bin: PathBuf,
    /// A static busybox for the template, if there is one.
    pub busybox: Option<PathBuf>,
    /// The uid of the Debian templates' `agent` user: the launching user's,
    /// so the workspace they own is the agent's to write (1000 for root).
    pub agent_uid: u32,
}

impl BuildInputs {
    /// Finds the sidecar binary and a static busybox the usual ways.
    pub fn locate() -> Result<Self, ImageError> {
        Ok(Self {
            sidecar_bin: images::find_sidecar_binary()?,
            busybox: images::find_static_busybox(),
            agent_uid: launching_uid(),
        })
    }
}

/// The launching user's uid, or 1000 for root (the agent is never root).
fn launching_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    match unsafe { libc::getuid() } {
        0 => 1000,
        uid => uid,
    }
}

/// The engine a launch is planned for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Which backend.
    pub backend: BackendKind,
    /// Its CLI, argv[0] of every step.
    pub program: &'a str,
    /// The CLI's version where the plan depends on it (Apple's).
    pub version: Option<(u64, u64, u64)>,
}

/// Builds the launch spec for `manifest` on `target`, for the home `home`
/// (whose id labels every resource).
pub fn describe(
    home: &Home,
    home_id: &HomeId,
    manifest: &Manifest,
    target: Target<'_>,
    inputs: &BuildInputs,
    dns: Vec<String>,
) -> Result<LaunchSpec, ImageError> {
    let Target {
        backend,
        program: engine,
        version: engine_version,
    } = target;
    let state = StateDirs::new(home.state_dir(&manifest.name));
    let sidecar_image = images::sidecar_image(&manifest.name, &inputs.sidecar_bin, &state.build)?;
    let agent_image = match &manifest.agent {
        AgentImage::Template { name, base } => match templates::find(name) {
            Some(t) if t.is_debian() => images::debian_template_image(
                &manifest.name,
                t,
                base.as_deref().unwrap_or(templates::DEFAULT_BASE),
                inputs.agent_uid,
                &manifest.extra_roots,
                &state.build,
            )?,
            _ => images::busybox_template_image(
                &manifest.name,
                inputs.busybox.as_deref(),
                &state.build,
            )?,
        },
        AgentImage::Dockerfile {
            dockerfile,
            context,
        } => images::user_image(&manifest.name, dockerfile, context)?,
    };
    let staged = state::plan_staging(&state, &manifest.mounts);
    Ok(LaunchSpec {
        bottle: manifest.name.clone(),
        home_id: home_id.to_string(),
        backend,
        engine: engine.to_string(),
        sidecar_image,
        agent_image,
        dir_mounts: manifest
            .mounts
            .iter()
            .filter(|m| !m.is_file)
            .cloned()
            .collect(),
        staged,
        env: manifest.env.clone(),
        egress: manifest.egress.clone(),
        secrets: manifest.secrets.clone(),
        extra_roots: manifest.extra_roots.clone(),
        supervise: manifest
            .supervise
            .then(|| manifest.supervise_settings.clone()),
        resources: manifest.resources.clone(),
        dns,
        engine_version,
        hosts: manifest.hosts.clone(),
        allow_private_ranges: manifest.allow_private_ranges.clone(),
        gvisor: false,
        rebuild_agent: false,
        sidecar_user: state::sidecar_user(),
        subnets: None,
        state,
    })
}

/// Why the state directory or the build contexts could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    /// The state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// A build context.
    #[error(transparent)]
    Image(#[from] ImageError),
}

/// The public resolver used when nothing better is known (Cloudflare's).
pub const DEFAULT_PUBLIC_DNS: &str = "1.1.1.1";

/// Nameservers for the sidecar (and Apple's image builder): the manifest's
/// `dns`, else `$BOTTLEBAR_DNS` (comma-separated), else, on Apple's runtime,
/// the host's own resolvers (from /etc/resolv.conf, loopback ones excluded:
/// a VM cannot reach the host's 127.0.0.1), else [`DEFAULT_PUBLIC_DNS`]. On
/// Docker nothing is passed unless set: its embedded DNS works.
pub fn choose_dns(manifest: &Manifest, backend: BackendKind) -> Vec<String> {
    if !manifest.dns.is_empty() {
        return manifest.dns.clone();
    }
    let from_env: Vec<String> = std::env::var("BOTTLEBAR_DNS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
        .map(String::from)
        .collect();
    if !from_env.is_empty() || backend == BackendKind::Docker {
        return from_env;
    }
    let host = host_nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    if host.is_empty() {
        vec![DEFAULT_PUBLIC_DNS.to_string()]
    } else {
        host
    }
}

/// The non-loopback `nameserver` addresses in resolv.conf text.
pub fn host_nameservers(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .filter(|ip| !ip.is_loopback())
        .map(|ip| ip.to_string())
        .collect()
}

/// Whether a bottle's agent runs under gVisor (`runsc`, Docker on Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GvisorChoice {
    /// Where Docker has `runsc` registered.
    Auto,
    /// Required: the launch fails without it.
    On,
    /// Never.
    Off,
}

/// Overrides the gVisor choice for every bottle: `auto`, `on` or `off`.
pub const GVISOR_ENV: &str = "BOTTLEBAR_GVISOR";

/// The bottle file's `[isolation] gvisor`, else `$BOTTLEBAR_GVISOR`, else auto.
pub fn gvisor_choice(manifest: &Manifest) -> Result<GvisorChoice, String> {
    match manifest.gvisor {
        Some(true) => return Ok(GvisorChoice::On),
        Some(false) => return Ok(GvisorChoice::Off),
        None => {}
    }
    match std::env::var(GVISOR_ENV).as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(GvisorChoice::Auto),
        Ok("on") => Ok(GvisorChoice::On),
        Ok("off") => Ok(GvisorChoice::Off),
        Ok(other) => Err(format!(
            "{GVISOR_ENV}={other}: expected `auto`, `on` or `off`"
        )),
    }
}

/// Features a manifest may ask for that a backend cannot provide yet.
pub fn check_support(manifest: &Manifest, backend: BackendKind) -> Result<(), String> {
    if manifest.gvisor == Some(true) && backend == BackendKind::Apple {
        return Err("`[isolation] gvisor = true` needs the docker backend on Linux: Apple's runtime already runs each container in its own VM; remove it or use `backend = \"docker\"`".into());
    }
    if manifest.git_gate {
        return Err(match backend {
            BackendKind::Apple => "`git_gate` is not supported on the apple backend yet: there is no safe way to deliver the push key to its sidecar; use the docker backend or remove `git_gate`".into(),
            BackendKind::Docker => "`git_gate` (gated git push through the sidecar) is not available yet; remove it from the manifest".into(),
        });
    }
    Ok(())
}

/// Writes the state directory and build contexts the plan refers to.
pub fn materialize(spec: &LaunchSpec, secrets: &[HeldSecret]) -> Result<(), MaterializeError> {
    state::prepare(
        &spec.state,
        &spec.bottle,
        &state::Egress {
            rules: &spec.egress,
            secrets,
            extra_roots: &spec.extra_roots,
            hosts: &spec.hosts,
            allow_private_ranges: &spec.allow_private_ranges,
            supervise: spec.supervise.as_ref(),
        },
        &spec.staged,
    )?;
    images::materialize(&spec.sidecar_image)?;
    images::materialize(&spec.agent_image)?;
    Ok(())
}

/// A directory bind mount (no backend mounts single files; see `state::plan_staging`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// The host directory.
    pub host: PathBuf,
    /// Where it appears in the container.
    pub container: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// The sidecar's mounts: its private state (read-only), the audit
/// directory, and where it files supervise proposals.
pub fn sidecar_mounts(spec: &LaunchSpec) -> Vec<BindMount> {
    let mut v = vec![
        BindMount {
            host: spec.state.sidecar.clone(),
            container: SIDECAR_STATE_IN_CONTAINER.into(),
            readonly: true,
        },
        BindMount {
            host: spec.state.audit.clone(),
            container: SIDECAR_AUDIT_IN_CONTAINER.into(),
            readonly: false,
        },
    ];
    if spec.supervise.is_some() {
        v.push(BindMount {
            host: spec.state.requests.clone(),
            container: SIDECAR_REQUESTS_IN_CONTAINER.into(),
            readonly: false,
        });
    }
    v
}

/// The agent's mounts: the CA certificate directory, the manifest's
/// directories, and the staging directories of its single files.
pub fn agent_mounts(spec: &LaunchSpec) -> Vec<BindMount> {
    let mut v = vec![BindMount {
        host: spec.state.agent_ca.clone(),
        container: AGENT_CA_DIR.into(),
        readonly: true,
    }];
    v.extend(spec.dir_mounts.iter().map(|m| BindMount {
        host: m.host.clone(),
        container: m.container.clone(),
        readonly: m.readonly,
    }));
    v.extend(spec.staged.iter().map(|s| BindMount {
        host: s.host_dir.clone(),
        container: s.container_dir.clone(),
        readonly: s.readonly,
    }));
    v
}

/// The agent's environment: the manifest's variables, then the proxy and CA
/// settings (which the manifest may not override), in a stable order.
pub fn agent_env(spec: &LaunchSpec) -> Vec<(String, String)> {
    let proxy = format!("http://{SIDECAR_IP}:{PROXY_PORT}");
    let ca = format!("{AGENT_CA_DIR}/{CA_CERT_FILE}");
    let mut env: Vec<(String, String)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
        env.push((k.into(), proxy.clone()));
    }
    for k in ["NO_PROXY", "no_proxy"] {
        env.push((k.into(), "localhost,127.0.0.1,::1".into()));
    }
    for k in [
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
    ] {
        env.push((k.into(), ca.clone()));
    }
    // Stand-ins so the agent's tools start; the sidecar swaps in the real value.
    for s in &spec.secrets {
        if let Some(var) = &s.placeholder_env {
            env.push((var.clone(), s.placeholder()));
        }
    }
    if spec.supervise.is_some() {
        env.push((
            "MCP_SUPERVISE_URL".into(),
            format!("http://{SIDECAR_IP}:{PROXY_PORT}{SUPERVISE_PATH}"),
        ));
    }
    env
}

/// Capabilities the agent keeps, of the 14 OCI defaults: what package
/// managers and build tools need to run as root in their own container.
/// Dropped: `NET_RAW` (raw frames could go around the proxy), `MKNOD`,
/// `SETFCAP`, `SETPCAP`, `SYS_CHROOT`, `AUDIT_WRITE`.
pub const AGENT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
];

/// Processes the agent may run at once (a fork bomb stops there).
pub const AGENT_PIDS_LIMIT: u32 = 4096;
/// Processes the sidecar may run at once (it runs one, plus `exec`s).
pub const SIDECAR_PIDS_LIMIT: u32 = 256;
/// The sidecar's memory limit.
pub const SIDECAR_MEMORY_MIB: u64 = 256;
/// Open files the sidecar may hold: two per connection at its limit, and margin.
pub const SIDECAR_NOFILE: u32 = 8192;

/// The user the isolation probe runs as: nobody.
pub const PROBE_USER: u32 = 65534;

mod example;
mod secrets;
pub use example::example_spec;
pub use secrets::{resolve_secrets, SecretError};
