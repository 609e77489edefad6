//! The escape suite's record of each attack, written for the security report.

use crate::{engine, target_dir, Engine};
use std::path::PathBuf;

/// Whether this run puts agents under gVisor (`BOTTLEBAR_GVISOR=on`).
pub fn gvisor_run() -> bool {
    std::env::var("BOTTLEBAR_GVISOR").as_deref() == Ok("on")
}

/// The engine as the security report names it.
pub fn backend_label() -> &'static str {
    match engine() {
        Engine::Docker if gvisor_run() => "docker + gVisor",
        Engine::Docker => "docker",
        Engine::Apple { double: true, .. } => "apple (double)",
        Engine::Apple { double: false, .. } => "apple",
    }
}

/// Where the escape suite writes one JSON result per attack and backend;
/// `bottlebar-security-report` turns them into `docs/security.md`.
pub fn security_results_dir() -> PathBuf {
    std::env::var_os("BOTTLEBAR_SECURITY_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("security-results"))
}

/// One attack of the escape suite: controls prove it could be attempted,
/// checks prove it failed. Written out on [`Attack::finish`], which fails
/// the test on a leak or on an attack that could not be attempted.
pub struct Attack {
    id: u32,
    title: &'static str,
    attempts: Vec<String>,
    leaks: Vec<String>,
    not_attempted: Vec<String>,
    accepted: Vec<String>,
}

impl Attack {
    pub fn new(id: u32, title: &'static str) -> Self {
        Self {
            id,
            title,
            attempts: vec![],
            leaks: vec![],
            not_attempted: vec![],
            accepted: vec![],
        }
    }

    /// An attempt that got through in a leak class the bottle accepts
    /// knowingly (e.g. `host` on Apple): reported as such, not hidden.
    pub fn accepted_leak(&mut self, what: impl Into<String>) {
        let what = what.into();
        self.accepted.push(what.clone());
        self.attempts.push(what);
    }

    /// A control: the target answers where it should (else the attack
    /// could not really be attempted, and a "block" would prove nothing).
    pub fn control(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.not_attempted.push(what.into());
        }
    }

    /// One attempt; `blocked` must hold.
    pub fn blocked(&mut self, blocked: bool, what: impl Into<String>) {
        let what = what.into();
        if !blocked {
            self.leaks.push(what.clone());
        }
        self.attempts.push(what);
    }

    #[track_caller]
    pub fn finish(self) {
        let outcome = if !self.leaks.is_empty() {
            "LEAKED"
        } else if !self.not_attempted.is_empty() || self.attempts.is_empty() {
            "NOT ATTEMPTED"
        } else if !self.accepted.is_empty() {
            "blocked, except accepted leaks"
        } else {
            "blocked"
        };
        let dir = security_results_dir().join(backend_label().replace([' ', '(', ')'], ""));
        std::fs::create_dir_all(&dir).unwrap();
        let v = serde_json::json!({
            "id": self.id,
            "title": self.title,
            "backend": backend_label(),
            "outcome": outcome,
            "attempts": self.attempts,
            "leaks": self.leaks,
            "not_attempted": self.not_attempted,
            "accepted": self.accepted,
        });
        std::fs::write(
            dir.join(format!("{:02}.json", self.id)),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
        assert!(
            self.leaks.is_empty(),
            "attack {} succeeded: {:?}",
            self.id,
            self.leaks
        );
        assert!(
            self.not_attempted.is_empty() && !self.attempts.is_empty(),
            "attack {} could not be attempted: {:?}",
            self.id,
            self.not_attempted
        );
    }
}
