//! The sidecar's live configuration.
//!
//! At start the sidecar reads `sidecar.json` and the secrets file once.
//! After that its rules change only when the core pushes new ones through
//! the control socket ([`crate::control`]), never because a file changed:
//! the rules are not read from anywhere an agent's mount could reach.
//!
//! Every request reads the current [`Snapshot`]; a change swaps it without
//! touching live connections. Rules that fail validation close egress (an
//! empty rule set with the error attached) rather than keeping rules the
//! user meant to replace. The human's temporary grants (supervise) are
//! rules appended after the bottle's own, kept apart so new rules from the
//! core do not drop them and their expiry does not touch the others.

use crate::dlp::{Needles, Scanner};
use anyhow::{Context, Result};
use bottlebar_policy::supervise::Grant;
use bottlebar_policy::{
    normalize_host, AddressPolicy, Cidr, EgressRule, HeldSecret, LiveRules, SecretsFile,
    SidecarConfig,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// The rules in force, and everything derived from them.
pub struct Snapshot {
    /// The egress rules.
    pub rules: Vec<EgressRule>,
    /// Host names pinned to addresses.
    pub hosts: BTreeMap<String, IpAddr>,
    /// The credentials.
    pub secrets: Vec<HeldSecret>,
    /// Scans what the agent sends: held secrets and token formats.
    pub scanner: Arc<Scanner>,
    /// Scans what comes back: held secrets only.
    pub reflection: Arc<Scanner>,
    /// Which resolved addresses may be connected to.
    pub addresses: AddressPolicy,
    /// Why egress is closed, when the rules could not be taken.
    pub error: Option<String>,
    /// How many of `rules` are the bottle's own; the rest are grants.
    pub own_rules: usize,
    /// The grants behind `rules[own_rules..]`, in order.
    pub grants: Vec<Grant>,
}

impl Snapshot {
    /// The grant behind rule `index`, when it is one.
    pub fn grant(&self, index: usize) -> Option<&Grant> {
        index
            .checked_sub(self.own_rules)
            .and_then(|i| self.grants.get(i))
    }

    /// The held secret called `name`.
    pub fn secret(&self, name: &str) -> Option<&HeldSecret> {
        self.secrets.iter().find(|s| s.name == name)
    }

    fn closed(error: String, own: &[IpAddr]) -> Self {
        Self {
            rules: Vec::new(),
            hosts: Default::default(),
            secrets: Vec::new(),
            scanner: Arc::new(Scanner::new(&[], Needles::SecretsAndTokens)),
            reflection: Arc::new(Scanner::new(&[], Needles::SecretsOnly)),
            addresses: AddressPolicy {
                allowed: vec![],
                own: own.to_vec(),
            },
            error: Some(error),
            own_rules: 0,
            grants: Vec::new(),
        }
    }

    fn build(live: LiveRules, grants: &[Grant], own: &[IpAddr]) -> Result<Self, String> {
        live.validate()?;
        let hosts = live
            .hosts
            .iter()
            .map(|(n, ip)| (normalize_host(n), ip.parse().expect("validated")))
            .collect();
        let allowed = live
            .allow_private_ranges
            .iter()
            .map(|r| Cidr::parse(r).expect("validated"))
            .collect();
        let own_rules = live.rules.len();
        let mut rules = live.rules;
        rules.extend(grants.iter().map(|g| g.scope.rule()));
        Ok(Snapshot {
            scanner: Arc::new(Scanner::new(&live.secrets, Needles::SecretsAndTokens)),
            reflection: Arc::new(Scanner::new(&live.secrets, Needles::SecretsOnly)),
            rules,
            own_rules,
            grants: grants.to_vec(),
            hosts,
            secrets: live.secrets,
            addresses: AddressPolicy {
                allowed,
                own: own.to_vec(),
            },
            error: None,
        })
    }
}

/// The configuration fixed at start, and the rules in force.
pub struct Live {
    /// The configuration as loaded: listen address, CA, audit settings.
    /// Only the rules, pins, ranges and secrets change later.
    pub config: SidecarConfig,
    current: RwLock<Arc<Snapshot>>,
    /// The bottle's own rules in force (`None` while egress is closed).
    base: Mutex<Option<LiveRules>>,
    /// The human's grants in force.
    grants: Mutex<Vec<Grant>>,
    /// Told the grants after every change (the supervisor publishes them
    /// to the host).
    grants_watcher: OnceLock<GrantsWatcher>,
    own: Vec<IpAddr>,
}

/// Told the grants in force after each change.
pub type GrantsWatcher = Box<dyn Fn(&[Grant]) + Send + Sync>;

fn read_config(path: &Path) -> Result<SidecarConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
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
    Ok(file.secrets)
}

impl Live {
    /// Loads the configuration and secrets; a bad file is fatal (the
    /// launch's health check then fails and the launch rolls back).
    /// `own` is the sidecar's own addresses and gateways.
    pub fn load(config_path: &Path, own: Vec<IpAddr>) -> Result<Self> {
        let config = read_config(config_path)?;
        let secrets = read_secrets(&config)?;
        Self::new(config, secrets, own).with_context(|| format!("{}", config_path.display()))
    }

    /// From a configuration and secrets already in hand.
    pub fn new(config: SidecarConfig, secrets: Vec<HeldSecret>, own: Vec<IpAddr>) -> Result<Self> {
        let rules = config.live_rules(secrets);
        let snap = Snapshot::build(rules.clone(), &[], &own).map_err(anyhow::Error::msg)?;
        Ok(Self {
            config,
            current: RwLock::new(Arc::new(snap)),
            base: Mutex::new(Some(rules)),
            grants: Mutex::default(),
            grants_watcher: OnceLock::new(),
            own,
        })
    }

    /// The rules in force now.
    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Closes egress: no rules, with `why` attached.
    pub fn apply_closed(&self, why: &str) {
        tracing::error!("egress closed: {why}");
        *lock(&self.base) = None;
        self.swap(Snapshot::closed(why.to_string(), &self.own));
    }

    /// Puts new rules in force (the grants stay). Rules that fail
    /// validation close egress (and the error says why); returns the number
    /// of the bottle's rules in force.
    pub fn apply(&self, rules: LiveRules) -> Result<usize, String> {
        let mut base = lock(&self.base);
        let grants = lock(&self.grants).clone();
        let (snap, result) = match Snapshot::build(rules.clone(), &grants, &self.own) {
            Ok(s) => {
                let n = s.own_rules;
                tracing::info!(rules = n, "rules updated");
                *base = Some(rules);
                (s, Ok(n))
            }
            Err(e) => {
                tracing::error!("new rules refused; egress is closed until valid ones arrive: {e}");
                *base = None;
                (Snapshot::closed(e.clone(), &self.own), Err(e))
            }
        };
        self.swap(snap);
        result
    }

    /// The grants in force.
    pub fn grants(&self) -> Vec<Grant> {
        lock(&self.grants).clone()
    }

    /// Changes the grants in force (adding one, dropping expired ones).
    pub fn update_grants(&self, change: impl FnOnce(&mut Vec<Grant>)) {
        let base = lock(&self.base);
        let mut grants = lock(&self.grants);
        let before = grants.clone();
        change(&mut grants);
        if *grants != before {
            // Under the lock, so the last list told is the list in force.
            if let Some(tell) = self.grants_watcher.get() {
                tell(&grants);
            }
        }
        if let Some(rules) = base.as_ref() {
            // The bottle's rules were valid and grants are valid by
            // construction: this cannot fail, but a closed result is safe.
            let snap = Snapshot::build(rules.clone(), &grants, &self.own)
                .unwrap_or_else(|e| Snapshot::closed(e, &self.own));
            self.swap(snap);
        }
    }

    /// Tells `watcher` the grants now and after every change (once; a
    /// second watcher is ignored).
    pub fn watch_grants(&self, watcher: GrantsWatcher) {
        let grants = lock(&self.grants);
        watcher(&grants);
        let _ = self.grants_watcher.set(watcher);
    }

    /// Uses up the once-only grant of `proposal`: true if it was still
    /// there (this request may go), false if another request took it.
    pub fn consume_once(&self, proposal: &str) -> bool {
        let mut taken = false;
        self.update_grants(|grants| {
            if let Some(i) = grants.iter().position(|g| g.once && g.proposal == proposal) {
                grants.remove(i);
                taken = true;
            }
        });
        taken
    }

    fn swap(&self, snap: Snapshot) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hosts: &[&str]) -> SidecarConfig {
        serde_json::from_value(serde_json::json!({
            "bottle": "t", "listen": "127.0.0.1:0",
            "rules": hosts.iter().map(|h| serde_json::json!({"host": h})).collect::<Vec<_>>(),
        }))
        .unwrap()
    }

    #[test]
    fn applying_swaps_rules_and_bad_rules_close_egress() {
        let live = Live::new(config(&["a.example.com"]), vec![], vec![]).unwrap();
        assert_eq!(live.current().rules[0].host, "a.example.com");

        assert_eq!(
            live.apply(config(&["b.example.com"]).live_rules(vec![])),
            Ok(1)
        );
        assert_eq!(live.current().rules[0].host, "b.example.com");

        let err = live
            .apply(config(&["Not A Host"]).live_rules(vec![]))
            .unwrap_err();
        assert!(err.contains("rule #1"), "{err}");
        let snap = live.current();
        assert!(
            snap.rules.is_empty() && snap.error.is_some(),
            "bad rules must close egress"
        );

        assert_eq!(
            live.apply(config(&["c.example.com"]).live_rules(vec![])),
            Ok(1)
        );
        assert_eq!(live.current().rules[0].host, "c.example.com");
    }

    #[test]
    fn secrets_must_cover_every_injecting_rule_and_errors_never_show_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sidecar.json");
        let secrets = dir.path().join("secrets.json");
        let cfg = serde_json::json!({
            "bottle": "t", "listen": "127.0.0.1:0",
            "rules": [{"host": "api.example.com", "inject": {"header": "x-api-key", "secret": "k"}}],
            "secrets_file": secrets.display().to_string(),
        });
        std::fs::write(&path, cfg.to_string()).unwrap();
        std::fs::write(
            &secrets,
            r#"{"secrets":[{"name":"other","value":"v1-supersecret"}]}"#,
        )
        .unwrap();
        let err = format!("{:#}", Live::load(&path, vec![]).err().unwrap());
        assert!(err.contains("not held"), "{err}");
        std::fs::write(
            &secrets,
            r#"{"secrets":[{"name":"k","value":"v1-supersecret",}]}"#,
        )
        .unwrap();
        let err = format!("{:#}", Live::load(&path, vec![]).err().unwrap());
        assert!(
            err.contains("not valid") && !err.contains("supersecret"),
            "{err}"
        );
        std::fs::write(
            &secrets,
            r#"{"secrets":[{"name":"k","value":"v1-supersecret"}]}"#,
        )
        .unwrap();
        let live = Live::load(&path, vec![]).unwrap();
        assert_eq!(live.current().secret("k").unwrap().value, "v1-supersecret");
    }
}
