//! The sidecar's live configuration: rules and secrets, reloaded when their
//! files change (polled, because inotify does not see changes made on the
//! other side of a VM or bind mount) and on SIGHUP.
//!
//! Every request reads the current [`Snapshot`]; a reload swaps it without
//! touching live connections. A reload that fails closes egress (an empty rule
//! set with the error attached) rather than keeping rules that may be stale:
//! unreadable rules mean no egress.

use crate::dlp::Scanner;
use anyhow::{bail, Context, Result};
use bottlebar_policy::{EgressRule, HeldSecret, SecretsFile, SidecarConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the rules and secrets files are checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_millis(500);

pub struct Snapshot {
    pub rules: Vec<EgressRule>,
    /// Host names pinned to addresses (reloaded with the rules).
    pub hosts: std::collections::BTreeMap<String, std::net::IpAddr>,
    pub secrets: Vec<HeldSecret>,
    pub scanner: Arc<Scanner>,
    /// Why egress is closed, when the files could not be read.
    pub error: Option<String>,
}

impl Snapshot {
    pub fn secret(&self, name: &str) -> Option<&HeldSecret> {
        self.secrets.iter().find(|s| s.name == name)
    }

    fn closed(error: String) -> Self {
        Self {
            rules: Vec::new(),
            hosts: Default::default(),
            secrets: Vec::new(),
            scanner: Arc::new(Scanner::new(&[])),
            error: Some(error),
        }
    }
}

pub struct Live {
    config_path: PathBuf,
    /// The configuration as first loaded: listen address, CA, audit settings.
    /// Only rules and secrets change on reload.
    pub config: SidecarConfig,
    current: RwLock<Arc<Snapshot>>,
    stamp: std::sync::Mutex<Vec<Option<(SystemTime, u64)>>>,
}

fn read_config(path: &Path) -> Result<SidecarConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: SidecarConfig =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    for (i, rule) in cfg.rules.iter().enumerate() {
        rule.validate()
            .with_context(|| format!("{}: rule #{}", path.display(), i + 1))?;
    }
    Ok(cfg)
}

fn read_secrets(cfg: &SidecarConfig) -> Result<Vec<HeldSecret>> {
    let Some(path) = &cfg.secrets_file else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the secrets file {path}"))?;
    // Never echo the file's content in an error: it holds credentials.
    let file: SecretsFile = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "the secrets file {path} is not valid (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    for s in &file.secrets {
        if s.value.is_empty() {
            bail!("secret `{}` in {path} is empty", s.name);
        }
    }
    for (i, rule) in cfg.rules.iter().enumerate() {
        if let Some(inj) = &rule.inject {
            if !file.secrets.iter().any(|s| s.name == inj.secret) {
                bail!(
                    "rule #{} injects secret `{}`, which {path} does not hold",
                    i + 1,
                    inj.secret
                );
            }
        }
    }
    Ok(file.secrets)
}

fn snapshot(cfg: &SidecarConfig) -> Result<Snapshot> {
    let secrets = read_secrets(cfg)?;
    let mut hosts = std::collections::BTreeMap::new();
    for (name, ip) in &cfg.hosts {
        let addr = ip
            .parse()
            .with_context(|| format!("hosts: `{ip}` (for `{name}`) is not an IP address"))?;
        hosts.insert(bottlebar_policy::normalize_host(name), addr);
    }
    Ok(Snapshot {
        rules: cfg.rules.clone(),
        hosts,
        scanner: Arc::new(Scanner::new(&secrets)),
        secrets,
        error: None,
    })
}

fn stamp_of(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Live {
    /// Loads the configuration; at startup a bad file is fatal (the launch's
    /// health check then fails and the launch rolls back).
    pub fn load(config_path: &Path) -> Result<Self> {
        let config = read_config(config_path)?;
        let snap = snapshot(&config)?;
        let live = Self {
            config_path: config_path.to_path_buf(),
            current: RwLock::new(Arc::new(snap)),
            stamp: std::sync::Mutex::new(Vec::new()),
            config,
        };
        *live.stamp.lock().unwrap() = live.stamps();
        Ok(live)
    }

    fn watched(&self) -> Vec<PathBuf> {
        let mut v = vec![self.config_path.clone()];
        if let Some(s) = &self.config.secrets_file {
            v.push(PathBuf::from(s));
        }
        v
    }

    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        self.watched().iter().map(|p| stamp_of(p)).collect()
    }

    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Re-reads the files now. Returns the error if egress is now closed.
    pub fn reload(&self) -> Option<String> {
        let result = read_config(&self.config_path).and_then(|mut cfg| {
            // Where the secrets live is fixed at startup, like the CA.
            cfg.secrets_file = self.config.secrets_file.clone();
            snapshot(&cfg)
        });
        let (snap, error) = match result {
            Ok(s) => {
                tracing::info!(rules = s.rules.len(), "rules reloaded");
                (s, None)
            }
            Err(e) => {
                let msg = format!("{e:#}");
                tracing::error!(
                    "rules could not be reloaded; egress is closed until they can: {msg}"
                );
                (Snapshot::closed(msg.clone()), Some(msg))
            }
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
        error
    }

    /// Reloads when a watched file changes, and on SIGHUP.
    pub fn spawn_watcher(self: Arc<Self>) {
        let live = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_POLL);
            loop {
                tick.tick().await;
                let now = live.stamps();
                let changed = {
                    let mut last = live.stamp.lock().unwrap();
                    let changed = *last != now;
                    *last = now;
                    changed
                };
                if changed {
                    live.reload();
                }
            }
        });
        if let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading rules");
                    self.reload();
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, cfg: &SidecarConfig) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(cfg).unwrap()).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    fn config(hosts: &[&str]) -> SidecarConfig {
        serde_json::from_value(serde_json::json!({
            "bottle": "t", "listen": "127.0.0.1:0",
            "rules": hosts.iter().map(|h| serde_json::json!({"host": h})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn reload_swaps_rules_and_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidecar.json");
        write(&path, &config(&["a.example.com"]));
        let live = Live::load(&path).unwrap();
        assert_eq!(live.current().rules[0].host, "a.example.com");

        write(&path, &config(&["b.example.com"]));
        assert_eq!(live.reload(), None);
        assert_eq!(live.current().rules[0].host, "b.example.com");

        std::fs::write(&path, "{ not json").unwrap();
        let err = live.reload().unwrap();
        assert!(err.contains("parsing"), "{err}");
        let snap = live.current();
        assert!(
            snap.rules.is_empty() && snap.error.is_some(),
            "a broken file must close egress"
        );

        write(&path, &config(&["c.example.com"]));
        assert_eq!(live.reload(), None);
        assert_eq!(live.current().rules[0].host, "c.example.com");
    }

    #[test]
    fn secrets_must_cover_every_injecting_rule_and_errors_never_show_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidecar.json");
        let secrets = dir.path().join("secrets.json");
        let mut cfg: SidecarConfig = serde_json::from_value(serde_json::json!({
            "bottle": "t", "listen": "127.0.0.1:0",
            "rules": [{"host": "api.example.com", "inject": {"header": "x-api-key", "secret": "k"}}],
            "secrets_file": secrets.display().to_string(),
        }))
        .unwrap();
        write(&path, &cfg);
        std::fs::write(
            &secrets,
            r#"{"secrets":[{"name":"other","value":"v1-supersecret"}]}"#,
        )
        .unwrap();
        let err = format!("{:#}", Live::load(&path).err().unwrap());
        assert!(err.contains("does not hold"), "{err}");
        std::fs::write(
            &secrets,
            r#"{"secrets":[{"name":"k","value":"v1-supersecret",}]}"#,
        )
        .unwrap();
        let err = format!("{:#}", Live::load(&path).err().unwrap());
        assert!(
            err.contains("not valid") && !err.contains("supersecret"),
            "{err}"
        );
        std::fs::write(
            &secrets,
            r#"{"secrets":[{"name":"k","value":"v1-supersecret"}]}"#,
        )
        .unwrap();
        let live = Live::load(&path).unwrap();
        assert_eq!(live.current().secret("k").unwrap().value, "v1-supersecret");
        cfg.rules.clear();
        write(&path, &cfg);
        assert_eq!(live.reload(), None);
    }
}
