//! A bottle's state directory, `$BOTTLEBAR_HOME/state/<name>/`:
//!
//! ```text
//! sidecar/    mode 0700, mounted read-only into the sidecar only:
//!             sidecar.json (rules), secrets.json (credentials), extra-roots.pem,
//!             ca.key + ca.crt (the per-bottle CA), all 0600
//! agent-ca/   ca.crt only, mounted read-only into the agent
//! audit/      the sidecar's JSONL audit log (mounted read-write into the sidecar)
//! files/N/    staged copies of single-file mounts, one directory per container parent
//! build/      prepared image build contexts
//! ```
//!
//! The CA is generated once, at the first launch, and kept until `bottle down`.
//! The sidecar reads its files once, at start; later rule changes reach it
//! through its control socket ([`live_rules`]), never through these files.
//! It runs as a non-root user ([`sidecar_user`]): when the core runs as root
//! (Linux CI, a root daemon), `sidecar/` and `audit/` are handed to that user.

use crate::manifest::Mount;
use crate::name::BottleName;
use bottlebar_policy::supervise::SuperviseConfig;
use bottlebar_policy::{
    EgressRule, HeldSecret, ListenSpec, LiveRules, SecretsFile, SidecarConfig, PROXY_PORT,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The bottle CA's certificate.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The bottle CA's key (the sidecar's only).
pub const CA_KEY_FILE: &str = "ca.key";
/// The sidecar's configuration.
pub const SIDECAR_CONFIG_FILE: &str = "sidecar.json";
/// The secrets the sidecar holds.
pub const SECRETS_FILE: &str = "secrets.json";
/// Extra CA roots the sidecar trusts upstream.
pub const EXTRA_ROOTS_FILE: &str = "extra-roots.pem";
/// Rotate the audit log at this size, keeping this many old files.
pub const AUDIT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated audit files kept.
pub const AUDIT_KEEP: u32 = 5;
/// The audit log's file name.
pub const AUDIT_FILE: &str = "egress.jsonl";
/// Where the sidecar sees its state directory and audit directory.
pub const SIDECAR_STATE_IN_CONTAINER: &str = "/etc/bottlebar";
/// Where the sidecar finds its audit directory.
pub const SIDECAR_AUDIT_IN_CONTAINER: &str = "/var/log/bottlebar";
/// Where the sidecar files supervise proposals.
pub const SIDECAR_REQUESTS_IN_CONTAINER: &str = "/var/lib/bottlebar/requests";

/// Why the state directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed.
    #[error("preparing {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// The bottle CA could not be made or read.
    #[error("generating the bottle's CA: {0}")]
    Ca(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The paths of one bottle's state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateDirs {
    /// The bottle's state directory.
    pub root: PathBuf,
    /// The sidecar's private files (CA key, rules, secrets).
    pub sidecar: PathBuf,
    /// The CA certificate the agent trusts.
    pub agent_ca: PathBuf,
    /// The audit log.
    pub audit: PathBuf,
    /// Staging for single-file mounts.
    pub files: PathBuf,
    /// Build contexts.
    pub build: PathBuf,
    /// Supervise proposals, filed by the sidecar (mounted into it, writable).
    pub requests: PathBuf,
    /// The human's decisions on them, written by the core (never mounted).
    pub decisions: PathBuf,
}

impl StateDirs {
    /// The layout under `root`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            sidecar: root.join("sidecar"),
            agent_ca: root.join("agent-ca"),
            audit: root.join("audit"),
            files: root.join("files"),
            build: root.join("build"),
            requests: root.join("requests"),
            decisions: root.join("decisions"),
            root,
        }
    }
}

/// A directory of staged single files, mounted at `container_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedDir {
    /// The staging directory on the host.
    pub host_dir: PathBuf,
    /// Where it appears in the agent.
    pub container_dir: String,
    /// Mounted read-only.
    pub readonly: bool,
    /// (source file, file name inside the directory)
    pub files: Vec<(PathBuf, String)>,
}

/// Groups single-file mounts by their container parent directory: each group
/// becomes one staging directory holding copies of just those files, so the
/// agent never sees a file's real siblings. A group is read-only only if all
/// its files are.
pub fn plan_staging(dirs: &StateDirs, mounts: &[Mount]) -> Vec<StagedDir> {
    let mut groups: Vec<StagedDir> = Vec::new();
    for m in mounts.iter().filter(|m| m.is_file) {
        let path = Path::new(&m.container);
        let parent = path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        match groups.iter_mut().find(|g| g.container_dir == parent) {
            Some(g) => {
                g.readonly &= m.readonly;
                g.files.push((m.host.clone(), file_name));
            }
            None => {
                let n = groups.len();
                groups.push(StagedDir {
                    host_dir: dirs.files.join(n.to_string()),
                    container_dir: parent,
                    readonly: m.readonly,
                    files: vec![(m.host.clone(), file_name)],
                });
            }
        }
    }
    groups
}

/// What the sidecar is told about a bottle's egress.
#[derive(Debug, Clone, Copy)]
pub struct Egress<'a> {
    /// The egress rules.
    pub rules: &'a [EgressRule],
    /// The secrets, with their values.
    pub secrets: &'a [HeldSecret],
    /// Extra CA roots.
    pub extra_roots: &'a [PathBuf],
    /// Pinned host names.
    pub hosts: &'a BTreeMap<String, String>,
    /// Private ranges allowed names may resolve to.
    pub allow_private_ranges: &'a [String],
    /// The supervise settings, when the bottle offers supervise.
    pub supervise: Option<&'a SuperviseConfig>,
}

/// The user the sidecar runs as: the core's own when it is not root (so the
/// files it writes are readable), else a fixed unprivileged id.
pub fn sidecar_user() -> (u32, u32) {
    // SAFETY: geteuid/getegid only read the process's credentials.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        (SIDECAR_UNPRIVILEGED_ID, SIDECAR_UNPRIVILEGED_ID)
    } else {
        (uid, gid)
    }
}

/// The sidecar's user and group when the core runs as root.
pub const SIDECAR_UNPRIVILEGED_ID: u32 = 65532;

/// Gives `path` to the sidecar's user when the core runs as root (otherwise
/// the core's own files are already the sidecar's).
fn hand_to_sidecar(path: &Path) -> Result<(), StateError> {
    // SAFETY: as above.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let (uid, gid) = sidecar_user();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(path))
}

/// What a running sidecar is told when its rules change: the same content
/// as `sidecar.json` and `secrets.json`, sent through its control socket.
pub fn live_rules(egress: &Egress<'_>) -> LiveRules {
    LiveRules {
        rules: egress.rules.to_vec(),
        hosts: egress.hosts.clone(),
        allow_private_ranges: egress.allow_private_ranges.to_vec(),
        secrets: egress.secrets.to_vec(),
    }
}

/// The sidecar's configuration for this bottle: rules, pinned hosts, and
/// where (inside its container) it finds the CA, the secrets and the extra roots.
pub fn sidecar_config(bottle: &BottleName, egress: &Egress<'_>) -> SidecarConfig {
    let inside = |f: &str| Some(format!("{SIDECAR_STATE_IN_CONTAINER}/{f}"));
    SidecarConfig {
        bottle: bottle.to_string(),
        listen: ListenSpec::agent_networks(PROXY_PORT),
        rules: egress.rules.to_vec(),
        audit_file: Some(format!("{SIDECAR_AUDIT_IN_CONTAINER}/{AUDIT_FILE}")),
        audit_max_bytes: AUDIT_MAX_BYTES,
        audit_keep: AUDIT_KEEP,
        ca_cert_file: inside(CA_CERT_FILE),
        ca_key_file: inside(CA_KEY_FILE),
        extra_roots_file: if egress.extra_roots.is_empty() {
            None
        } else {
            inside(EXTRA_ROOTS_FILE)
        },
        secrets_file: inside(SECRETS_FILE),
        hosts: egress.hosts.clone(),
        allow_private_ranges: egress.allow_private_ranges.to_vec(),
        supervise: egress.supervise.map(|s| SuperviseConfig {
            requests_dir: SIDECAR_REQUESTS_IN_CONTAINER.into(),
            ..s.clone()
        }),
    }
}

/// Writes the sidecar's rules and secrets files, each only if its content
/// changed; a running sidecar notices and reloads them. Secrets are written
/// first, so the sidecar never sees rules that inject a secret it lacks.
/// Returns whether anything changed.
pub fn write_sidecar_files(
    dirs: &StateDirs,
    bottle: &BottleName,
    egress: &Egress<'_>,
) -> Result<bool, StateError> {
    let mut roots = Vec::new();
    for r in egress.extra_roots {
        roots.extend(fs::read(r).map_err(io_err(r))?);
        roots.push(b'\n');
    }
    let secrets = serde_json::to_vec_pretty(&SecretsFile {
        secrets: egress.secrets.to_vec(),
    })
    .expect("secrets serialize");
    let config =
        serde_json::to_vec_pretty(&sidecar_config(bottle, egress)).expect("config serializes");
    let mut changed = false;
    for (file, data) in [
        (EXTRA_ROOTS_FILE, roots),
        (SECRETS_FILE, secrets),
        (SIDECAR_CONFIG_FILE, config),
    ] {
        let path = dirs.sidecar.join(file);
        if fs::read(&path).ok().as_deref() != Some(&data[..]) {
            write_private(&path, &data, 0o600)?;
            hand_to_sidecar(&path)?;
            changed = true;
        }
    }
    Ok(changed)
}

fn mkdir(path: &Path, mode: u32) -> Result<(), StateError> {
    fs::create_dir_all(path).map_err(io_err(path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// Writes `data` to `path` with `mode`, atomically (temp file + rename), so a
/// crash never leaves a half-written rules file or key.
pub fn write_private(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// Creates the state directory for a launch: directories, the CA (first launch
/// only), the sidecar config, and the staged files.
pub fn prepare(
    dirs: &StateDirs,
    bottle: &BottleName,
    egress: &Egress<'_>,
    staged: &[StagedDir],
) -> Result<(), StateError> {
    mkdir(&dirs.root, 0o700)?;
    mkdir(&dirs.sidecar, 0o700)?;
    mkdir(&dirs.agent_ca, 0o755)?;
    mkdir(&dirs.audit, 0o700)?;
    mkdir(&dirs.build, 0o700)?;
    mkdir(&dirs.requests, 0o700)?;
    mkdir(&dirs.decisions, 0o700)?;
    hand_to_sidecar(&dirs.sidecar)?;
    hand_to_sidecar(&dirs.audit)?;
    hand_to_sidecar(&dirs.requests)?;
    // A log kept from an earlier launch (maybe written as another user).
    for e in fs::read_dir(&dirs.audit)
        .map_err(io_err(&dirs.audit))?
        .flatten()
    {
        hand_to_sidecar(&e.path())?;
    }

    let key_path = dirs.sidecar.join(CA_KEY_FILE);
    let cert_path = dirs.sidecar.join(CA_CERT_FILE);
    if !key_path.is_file() || !cert_path.is_file() {
        let (cert, key) = generate_ca(bottle)?;
        write_private(&key_path, key.as_bytes(), 0o600)?;
        write_private(&cert_path, cert.as_bytes(), 0o600)?;
        hand_to_sidecar(&key_path)?;
        hand_to_sidecar(&cert_path)?;
    }
    // The agent's copy holds the certificate only, never the key.
    let cert = fs::read(&cert_path).map_err(io_err(&cert_path))?;
    write_private(&dirs.agent_ca.join(CA_CERT_FILE), &cert, 0o644)?;

    write_sidecar_files(dirs, bottle, egress)?;

    if dirs.files.exists() {
        fs::remove_dir_all(&dirs.files).map_err(io_err(&dirs.files))?;
    }
    for group in staged {
        mkdir(&group.host_dir, 0o755)?;
        for (src, name) in &group.files {
            let dest = group.host_dir.join(name);
            fs::copy(src, &dest).map_err(io_err(src))?;
        }
    }
    Ok(())
}

/// A fresh CA for one bottle: (certificate PEM, private key PEM).
pub fn generate_ca(bottle: &BottleName) -> Result<(String, String), StateError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let err = |e: rcgen::Error| StateError::Ca(e.to_string());
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(
        DnType::CommonName,
        format!("Bottlebar CA for bottle {bottle}"),
    );
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Bottlebar");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let year = current_year();
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn current_year() -> i32 {
    let now = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    now[..4].parse().unwrap_or(2026)
}

/// Removes a bottle's state directory. Missing is fine.
pub fn remove(dirs: &StateDirs) -> Result<bool, StateError> {
    match fs::remove_dir_all(&dirs.root) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StateError::Io {
            path: dirs.root.clone(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn prepare_keeps_the_key_private_and_gives_the_agent_the_cert_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = StateDirs::new(tmp.path().join("state/t"));
        let name = BottleName::parse("t").unwrap();
        let file = tmp.path().join("gitconfig");
        fs::write(&file, "[user]\n").unwrap();
        let mounts = vec![Mount {
            host: file.clone(),
            container: "/home/agent/.gitconfig".into(),
            readonly: true,
            is_file: true,
        }];
        let staged = plan_staging(&dirs, &mounts);
        let no_hosts = BTreeMap::new();
        let egress = Egress {
            rules: &[],
            secrets: &[],
            extra_roots: &[],
            hosts: &no_hosts,
            allow_private_ranges: &[],
            supervise: None,
        };
        prepare(&dirs, &name, &egress, &staged).unwrap();

        let key = fs::read_to_string(dirs.sidecar.join(CA_KEY_FILE)).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        assert_eq!(
            fs::metadata(dirs.sidecar.join(CA_KEY_FILE)).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::metadata(&dirs.sidecar).unwrap().mode() & 0o777, 0o700);
        let agent_files: Vec<_> = fs::read_dir(&dirs.agent_ca)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(agent_files, vec![std::ffi::OsString::from(CA_CERT_FILE)]);
        assert!(!fs::read_to_string(dirs.agent_ca.join(CA_CERT_FILE))
            .unwrap()
            .contains("PRIVATE"));

        assert_eq!(staged[0].container_dir, "/home/agent");
        assert_eq!(
            fs::read_to_string(staged[0].host_dir.join(".gitconfig")).unwrap(),
            "[user]\n"
        );

        // A second launch keeps the CA.
        prepare(&dirs, &name, &egress, &staged).unwrap();
        assert_eq!(
            fs::read_to_string(dirs.sidecar.join(CA_KEY_FILE)).unwrap(),
            key
        );
    }

    #[test]
    fn staging_groups_files_by_container_directory() {
        let dirs = StateDirs::new(PathBuf::from("/s"));
        let m = |c: &str, ro| Mount {
            host: PathBuf::from(format!("/h{c}")),
            container: c.into(),
            readonly: ro,
            is_file: true,
        };
        let groups = plan_staging(&dirs, &[m("/a/x", true), m("/b/y", true), m("/a/z", false)]);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].files.len(), 2);
        assert!(!groups[0].readonly);
        assert!(groups[1].readonly);
        assert_eq!(groups[1].host_dir, PathBuf::from("/s/files/1"));
    }
}
