//! The destination checks a connection's requests passed, so that its next
//! request to the same destination is not scanned again for the same answer.
//!
//! [`check_destination`] is a function of the method, the host and the
//! rules' scanner alone. Inside a tunnel the host never changes, and an
//! agent's plain HTTP connection mostly asks one host (the last one passed
//! is kept): every request of a connection asked the same question, at
//! ~2 % of the proxy's CPU a request on 8 connections (docs/performance.md,
//! the thirty-fifth round). A pass is kept with the rules it was decided by (the
//! snapshot itself, held, so a freed one's address can never be mistaken for
//! new rules) and is asked again under any other rules, host or method.
//! Only passes are kept: a refusal is decided afresh every time.

use super::checks::check_destination;
use crate::config::Snapshot;
use bottlebar_policy::DenyReason;
use hyper::Method;
use std::sync::{Arc, Mutex};

/// Methods kept a connection: agents use a handful.
const METHODS_KEPT: usize = 8;

/// One connection's passed destination checks.
#[derive(Default)]
pub struct PassedDestinations(Mutex<Option<Passed>>);

impl std::fmt::Debug for PassedDestinations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassedDestinations")
    }
}

struct Passed {
    snap: Arc<Snapshot>,
    host: String,
    methods: Vec<Method>,
}

impl PassedDestinations {
    /// [`check_destination`] of `method` and `host` under `snap`, unless it
    /// passed already under the same rules.
    pub fn check(
        &self,
        method: &Method,
        host: &str,
        snap: &Arc<Snapshot>,
    ) -> Result<(), DenyReason> {
        let same = |p: &Passed| Arc::ptr_eq(&p.snap, snap) && p.host == host;
        {
            let passed = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if passed
                .as_ref()
                .is_some_and(|p| same(p) && p.methods.contains(method))
            {
                return Ok(());
            }
        }
        check_destination(method.as_str(), host, snap)?;
        let mut passed = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match passed.as_mut() {
            Some(p) if same(p) => {
                if p.methods.len() < METHODS_KEPT && !p.methods.contains(method) {
                    p.methods.push(method.clone());
                }
            }
            _ => {
                *passed = Some(Passed {
                    snap: snap.clone(),
                    host: host.to_string(),
                    methods: vec![method.clone()],
                })
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Live;
    use bottlebar_policy::HeldSecret;

    /// Rules holding one secret, `value`.
    fn rules_holding(value: &str) -> Arc<Snapshot> {
        let config = serde_json::from_value(serde_json::json!({
            "bottle": "unit", "listen": "127.0.0.1:0", "rules": [{"host": "example.com"}],
        }))
        .unwrap();
        let secret: HeldSecret = serde_json::from_value(serde_json::json!({
            "name": "api", "value": value, "placeholder": "bottlebar-placeholder-api-5f2a",
        }))
        .unwrap();
        Live::new(config, vec![secret], vec![]).unwrap().current()
    }

    const FIRST: &str = "first-held-credential-0123456789";
    const SECOND: &str = "second-held-credential-987654321";

    #[test]
    fn a_pass_is_kept_only_for_its_rules_host_and_method() {
        let passed = PassedDestinations::default();
        let holding_first = rules_holding(FIRST);
        let host = format!("{SECOND}.example.com");
        // The host carries SECOND, which the first rules do not hold.
        assert!(passed.check(&Method::GET, &host, &holding_first).is_ok());
        assert!(passed.check(&Method::GET, &host, &holding_first).is_ok());
        // Rules that hold SECOND refuse it, though it passed before.
        let holding_second = rules_holding(SECOND);
        assert!(passed.check(&Method::GET, &host, &holding_second).is_err());
        // The same rules, another host or method: asked again.
        let other = format!("{FIRST}.example.com");
        assert!(passed.check(&Method::GET, &other, &holding_first).is_err());
        let method = Method::from_bytes(FIRST.as_bytes()).unwrap();
        assert!(passed
            .check(&method, "example.com", &holding_first)
            .is_err());
        assert!(passed
            .check(&Method::POST, "example.com", &holding_first)
            .is_ok());
    }
}
