//! Progress events: what the executor and operations report while they run.
//!
//! The CLI renders them (a live display on a terminal, JSON lines with
//! `--json`); the app forwards them to its window. They serialize as
//! `{"event": "step_started", ...}`.

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A launch plan is about to run.
    PlanStarted {
        bottle: String,
        backend: String,
        steps: Vec<StepInfo>,
    },
    StepStarted {
        step: String,
        title: String,
        command: String,
    },
    /// Retrying a step (e.g. waiting for the sidecar to answer).
    StepRetrying {
        step: String,
        attempt: u32,
        of: u32,
    },
    StepSkipped {
        step: String,
        title: String,
        reason: String,
    },
    StepFinished {
        step: String,
        title: String,
        duration_ms: u64,
    },
    StepFailed {
        step: String,
        title: String,
        command: String,
        exit_code: Option<i32>,
        stderr_tail: String,
        duration_ms: u64,
    },
    RollbackStarted {
        bottle: String,
    },
    RollbackStep {
        step: String,
        command: String,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    RollbackFinished {
        bottle: String,
        ok: bool,
    },
    /// The bottle is up.
    Ready {
        bottle: String,
        sidecar_ip: String,
        duration_ms: u64,
    },
    /// The isolation self-test's result (also saved; see `selftest::Record`).
    SelfTest {
        bottle: String,
        ready: bool,
        summary: String,
        at: String,
    },
    /// Something worth telling that is not a step (e.g. "already up").
    Note {
        bottle: String,
        message: String,
    },
    /// A resource removed by `down` or `cleanup`.
    Removed {
        bottle: String,
        kind: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepInfo {
    pub id: String,
    pub title: String,
    pub after: Vec<String>,
}

/// Where events go. Sending never blocks; a dropped receiver is ignored
/// (nobody watching must not stop a launch).
#[derive(Clone, Debug)]
pub struct Events(Option<UnboundedSender<Event>>);

impl Events {
    pub fn new(tx: UnboundedSender<Event>) -> Self {
        Self(Some(tx))
    }

    /// A sink that discards everything.
    pub fn none() -> Self {
        Self(None)
    }

    pub fn emit(&self, e: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(e);
        }
    }
}
