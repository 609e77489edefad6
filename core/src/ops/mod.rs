//! The operations the CLI and the app offer, one file each: [`up`]
//! (launch), [`build`] (a launch's images only), [`down`], [`verify`], [`list`]/[`status`], [`cleanup`],
//! [`exec_argv`], [`doctor`]; `lock` keeps two of them off one bottle, and
//! `ownership` keeps each home to its own bottles.
//!
//! Each takes a [`Runner`](crate::runner::Runner) (the engine) and, where
//! it changes something, an [`Events`](crate::events::Events) sink, so the
//! same code serves a terminal, a window and the tests.

mod build;
mod cleanup;
mod doctor;
mod down;
mod exec;
mod listing;
mod lock;
mod new;
mod ownership;
mod requests;
mod rules;
mod status;
mod up;
mod verify;

pub use build::{build, Built};
pub use cleanup::cleanup;
pub use doctor::{doctor, DoctorReport};
pub use down::down;
pub use exec::{exec_argv, terminal_argv, TerminalCommand};
pub use listing::{list, Listing};
pub use lock::{lock, lock_waiting, BottleLock, LOCK_WAIT};
pub use new::{new_bottle, new_bottle_file, KeySource, NewBottle, NewBottleError};
pub use requests::{decide, requests};
pub use status::{evaluate, format_uptime, status, BottleState, BottleStatus, SelfTestSummary};
pub use up::{up, UpOptions, UpOutcome};
pub use verify::{verify, SELF_TEST_STEP};

use crate::backend::{self, EngineError};
use crate::home::{Home, HomeIdError};
use crate::images::ImageError;
use crate::launch::{self, MaterializeError};
use crate::manifest::{self, BackendKind, LoadError};
use crate::name::{BottleName, NameError};
use crate::state::StateError;

/// Why an operation failed, naming the bottle and the step.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// This home's id could not be read or made.
    #[error("bottle home: {0}")]
    HomeId(#[from] HomeIdError),
    /// The bottle's resources on the engine belong to another home.
    #[error("bottle `{bottle}` on this engine belongs to another Bottlebar home (id {home}); engine names are shared, so remove it from that home (`bottle down {bottle}` with its BOTTLEBAR_HOME) or give this bottle another name")]
    Foreign {
        /// The bottle.
        bottle: String,
        /// The other home's id.
        home: String,
    },
    /// The name is not a bottle name.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The manifest could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The engine failed.
    #[error("bottle `{bottle}`: {source}")]
    Engine {
        /// The bottle.
        bottle: String,
        /// What failed.
        source: EngineError,
    },
    /// An image could not be prepared.
    #[error("bottle `{bottle}`: {source}")]
    Image {
        /// The bottle.
        bottle: String,
        /// What failed.
        source: ImageError,
    },
    /// The state directory could not be written.
    #[error("bottle `{bottle}`: preparing its state: {source}")]
    Prepare {
        /// The bottle.
        bottle: String,
        /// What failed.
        source: MaterializeError,
    },
    /// The state directory could not be read or changed.
    #[error("bottle `{bottle}`: {source}")]
    State {
        /// The bottle.
        bottle: String,
        /// What failed.
        source: StateError,
    },
    /// A secret could not be read.
    #[error("bottle `{bottle}`: {source}")]
    Secret {
        /// The bottle.
        bottle: String,
        /// What failed.
        source: launch::SecretError,
    },
    /// A launch step failed (the launch was rolled back).
    #[error(transparent)]
    Launch(#[from] crate::executor::StepFailed),
    /// `bottle build` failed at a step (it creates nothing to roll back).
    #[error("bottle `{}`: building its images failed at step `{}`{}\n  command: {}\n{}  nothing was launched",
        .0.bottle, .0.step,
        .0.exit_code.map(|c| format!(" (exit code {c})")).unwrap_or_default(),
        .0.command,
        if .0.stderr_tail.is_empty() { String::new() } else { format!("  stderr: {}\n", .0.stderr_tail.replace('\n', "\n          ")) })]
    Build(crate::executor::StepFailed),
    /// The self-test found a direct way out (or no proxy path): the bottle
    /// was removed, nothing runs.
    #[error("bottle `{bottle}`: {summary}\n  the bottle was stopped and removed (fail closed); details: `bottle verify {bottle}` after fixing, or {record}\n  to accept a documented leak class knowingly, see docs/security.md")]
    IsolationLeak {
        /// The bottle.
        bottle: String,
        /// Which path leaked.
        summary: String,
        /// Where the full record is.
        record: String,
    },
    /// The self-test could not run.
    #[error("bottle `{bottle}`: isolation self-test: {source}")]
    SelfTest {
        /// The bottle.
        bottle: String,
        /// What failed.
        source: crate::selftest::SelfTestError,
    },
    #[error(
        "bottle `{0}` is being launched or removed by another process; try again when it finishes"
    )]
    /// Another process holds the bottle's lock.
    Busy(String),
    /// The bottle is not running.
    #[error("bottle `{0}` is not running; start it with `bottle up {0}`")]
    NotRunning(String),
    /// The bottle asks for something this machine or backend cannot do.
    #[error("bottle `{bottle}`: {message}")]
    Unsupported {
        /// The bottle.
        bottle: String,
        /// What, and what to do.
        message: String,
    },
    /// A running sidecar refused (or could not be given) new rules; its
    /// egress is closed until it has valid ones.
    #[error("bottle `{bottle}`: the sidecar did not take the new rules (`{command}`): {detail}\n  its egress is closed until it has valid rules; fix the bottle file and run `bottle up {bottle}` again")]
    Rules {
        /// The bottle.
        bottle: String,
        /// The reload command.
        command: String,
        /// What it said.
        detail: String,
    },
    /// `cleanup` could not ask the engine.
    #[error("cleanup: {0}")]
    Sweep(EngineError),
    /// A supervise request cannot be answered.
    #[error("bottle `{bottle}`: request {id}: {message}")]
    Request {
        /// The bottle.
        bottle: String,
        /// The request's id.
        id: String,
        /// Why not.
        message: String,
    },
    /// A lock file could not be made or taken.
    #[error("lock file {path}: {source}")]
    Lock {
        /// The lock file.
        path: String,
        /// The OS's reason.
        source: std::io::Error,
    },
}

/// Chooses the backend: command line, then manifest, then the machine default.
pub fn choose_backend(cli: Option<BackendKind>, manifest: Option<BackendKind>) -> BackendKind {
    cli.or(manifest).unwrap_or_else(backend::default_backend)
}

/// The backend a bottle uses, for operations that must work even when its
/// manifest is gone or broken (`down`, `exec`).
fn backend_of(home: &Home, name: &BottleName, cli: Option<BackendKind>) -> BackendKind {
    let from_manifest = manifest::load(home, name.as_str())
        .ok()
        .and_then(|m| m.backend);
    choose_backend(cli, from_manifest)
}

/// Wraps an engine error with the bottle it happened to.
fn engine_err(bottle: &BottleName) -> impl Fn(EngineError) -> OpError + '_ {
    move |source| OpError::Engine {
        bottle: bottle.to_string(),
        source,
    }
}

/// Wraps a state error with the bottle it happened to.
fn state_err(bottle: &BottleName) -> impl Fn(StateError) -> OpError + '_ {
    move |source| OpError::State {
        bottle: bottle.to_string(),
        source,
    }
}

/// Wraps an image error with the bottle it happened to.
fn image_err(bottle: &BottleName) -> impl Fn(ImageError) -> OpError + '_ {
    move |source| OpError::Image {
        bottle: bottle.to_string(),
        source,
    }
}

/// Wraps a failure to prepare the state directory with the bottle.
fn prepare_err(bottle: &BottleName) -> impl Fn(MaterializeError) -> OpError + '_ {
    move |source| OpError::Prepare {
        bottle: bottle.to_string(),
        source,
    }
}

/// Wraps a secret that could not be read with the bottle.
fn secret_err(bottle: &BottleName) -> impl Fn(launch::SecretError) -> OpError + '_ {
    move |source| OpError::Secret {
        bottle: bottle.to_string(),
        source,
    }
}

/// An error the operation's own checks found, for the bottle.
fn unsupported(bottle: &BottleName) -> impl Fn(String) -> OpError + '_ {
    move |message| OpError::Unsupported {
        bottle: bottle.to_string(),
        message,
    }
}
