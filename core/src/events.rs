//! Progress events: what the executor and operations report while they run.
//!
//! The CLI renders them (a live display on a terminal, JSON lines with
//! `--json`); the app forwards them to its window. They serialize as
//! `{"event": "step_started", ...}`.

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

/// One thing an operation reports. Fields named `step` are a plan step's
/// id; `title` says what it does, for people; `duration_ms` is how long it
/// took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A launch plan is about to run.
    PlanStarted {
        /// The bottle being launched.
        bottle: String,
        /// The backend it runs on.
        backend: String,
        /// Every step of the plan, in order.
        steps: Vec<StepInfo>,
    },
    /// A step's command started.
    StepStarted {
        /// The step's id.
        step: String,
        /// What it does.
        title: String,
        /// Its command line, as shown to people.
        command: String,
    },
    /// Retrying a step (e.g. waiting for the sidecar to answer).
    StepRetrying {
        /// The step's id.
        step: String,
        /// This attempt's number, from 1.
        attempt: u32,
        /// How many attempts it gets.
        of: u32,
    },
    /// A step was skipped: its result already exists.
    StepSkipped {
        /// The step's id.
        step: String,
        /// What it does.
        title: String,
        /// Why it was skipped.
        reason: String,
    },
    /// A line of a running step's output (an image build's progress).
    StepOutput {
        /// The step's id.
        step: String,
        /// The line, as the command wrote it.
        line: String,
    },
    /// A step finished.
    StepFinished {
        /// The step's id.
        step: String,
        /// What it does.
        title: String,
        /// How long it took.
        duration_ms: u64,
    },
    /// A step failed (after its retries); the plan rolls back.
    StepFailed {
        /// The step's id.
        step: String,
        /// What it does.
        title: String,
        /// Its command line.
        command: String,
        /// Its exit code, if it exited.
        exit_code: Option<i32>,
        /// The end of its stderr: the engine's own words.
        stderr_tail: String,
        /// How long it took.
        duration_ms: u64,
    },
    /// Undoing what a failed launch created began.
    RollbackStarted {
        /// The bottle.
        bottle: String,
    },
    /// One undo command ran.
    RollbackStep {
        /// The step it undoes.
        step: String,
        /// The undo command line.
        command: String,
        /// Whether it succeeded.
        ok: bool,
        /// Why not, when it failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The rollback ended.
    RollbackFinished {
        /// The bottle.
        bottle: String,
        /// Whether every undo succeeded.
        ok: bool,
    },
    /// The bottle is up.
    Ready {
        /// The bottle.
        bottle: String,
        /// The sidecar's address on the internal network.
        sidecar_ip: String,
        /// From the plan's start to the self-test's end.
        duration_ms: u64,
        /// The plan's own part of it (the self-test may run beside its
        /// last steps).
        plan_ms: u64,
    },
    /// The isolation self-test's result (also saved; see `selftest::Record`).
    SelfTest {
        /// The bottle.
        bottle: String,
        /// Isolated: every direct way out failed and the proxy answered.
        ready: bool,
        /// What it found, in one line.
        summary: String,
        /// When it ran (RFC 3339).
        at: String,
    },
    /// Something worth telling that is not a step (e.g. "already up").
    Note {
        /// The bottle it is about.
        bottle: String,
        /// What to tell.
        message: String,
    },
    /// A resource removed by `down` or `cleanup`.
    Removed {
        /// The bottle it belonged to.
        bottle: String,
        /// `container`, `network` or `state`.
        kind: String,
        /// Its name (or the state directory's path).
        name: String,
    },
}

/// A plan step as the timeline lists it before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepInfo {
    /// The step's id.
    pub id: String,
    /// What it does.
    pub title: String,
    /// The steps it waits for.
    pub after: Vec<String>,
}

/// Where events go. Sending never blocks; a dropped receiver is ignored
/// (nobody watching must not stop a launch).
#[derive(Clone, Debug)]
pub struct Events {
    tx: Option<UnboundedSender<Event>>,
}

impl Events {
    /// A sink that sends every event to `tx`.
    pub fn new(tx: UnboundedSender<Event>) -> Self {
        Self { tx: Some(tx) }
    }

    /// A sink that discards everything.
    pub fn none() -> Self {
        Self { tx: None }
    }

    /// Reports `e`.
    pub fn emit(&self, e: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }
}
