//! What a bottle's buttons do, from the window or the tray: one runner for
//! every action — mark the bottle busy (its state changes are expected),
//! forward the operation's events to the window, run it, keep and notify a
//! failure, then refresh the states (which the tray and the window follow).

use crate::{notify, now, refresh, AppState, FailureRecord};
use bottlebar_core::events::{Event, Events};
use bottlebar_core::ops::{self, OpError, UpOptions, UpOutcome};
use bottlebar_core::selftest::Record;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// What the window receives for every core event.
#[derive(Debug, Clone, Serialize)]
pub struct BottleEvent {
    /// The bottle the operation is about.
    pub bottle: String,
    /// The core's event.
    pub event: Event,
}

/// An action on a bottle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `up`.
    Launch,
    /// `up --rebuild`: the agent's image afresh (a template's CLI at its
    /// newest), relaunching the bottle.
    Rebuild,
    /// `down`.
    Stop,
    /// The isolation self-test again.
    Verify,
}

/// What an action returned.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Done {
    /// A launch.
    Launched(UpOutcome),
    /// A stop.
    Stopped,
    /// A self-test.
    Verified(Record),
}

/// Runs `action` on bottle `name`. A launch that fails, or a self-test that
/// finds a leak, is kept for the failure view and notified.
pub async fn run<R: Runtime>(
    app: &AppHandle<R>,
    action: Action,
    name: &str,
) -> Result<Done, String> {
    let state = app.state::<AppState>();
    let busy = Busy::mark(&state, name);
    let launching = matches!(action, Action::Launch | Action::Rebuild);
    if launching {
        state.failures.lock().unwrap().remove(name);
    }
    let (events, forwarding) = forward(app, name);
    let result = match action {
        Action::Launch | Action::Rebuild => ops::up(
            &state.home,
            name,
            UpOptions {
                rebuild: action == Action::Rebuild,
                ..UpOptions::default()
            },
            state.runner.clone(),
            &events,
        )
        .await
        .map(Done::Launched),
        Action::Stop => ops::down(&state.home, name, None, state.runner.as_ref(), &events)
            .await
            .map(|()| Done::Stopped),
        Action::Verify => ops::verify(&state.home, name, state.runner.as_ref(), &events)
            .await
            .map(Done::Verified),
    };
    drop(events);
    let _ = forwarding.await;
    match &result {
        Err(e) if launching => report_failure(app, &state, name, e),
        Err(e @ OpError::IsolationLeak { .. }) => report_failure(app, &state, name, e),
        _ => {}
    }
    drop(busy);
    refresh(app).await;
    result.map_err(|e| e.to_string())
}

/// A bottle marked busy while an action runs on it.
struct Busy<'a> {
    state: &'a AppState,
    name: String,
}

impl<'a> Busy<'a> {
    fn mark(state: &'a AppState, name: &str) -> Self {
        state.busy.lock().unwrap().insert(name.to_string());
        Busy {
            state,
            name: name.to_string(),
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.state.busy.lock().unwrap().remove(&self.name);
    }
}

/// The events of one operation, forwarded to the window as they come.
fn forward<R: Runtime>(
    app: &AppHandle<R>,
    bottle: &str,
) -> (Events, tauri::async_runtime::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let (app, bottle) = (app.clone(), bottle.to_string());
    let task = tauri::async_runtime::spawn(async move {
        while let Some(event) = rx.recv().await {
            let _ = app.emit(
                "bottle-event",
                BottleEvent {
                    bottle: bottle.clone(),
                    event,
                },
            );
        }
    });
    (Events::new(tx), task)
}

/// Keeps a failure for the failure view and raises a notification naming
/// the bottle and the step.
fn report_failure<R: Runtime>(app: &AppHandle<R>, state: &AppState, name: &str, e: &OpError) {
    let record = failure_record(name, e);
    let title = if matches!(e, OpError::IsolationLeak { .. }) {
        format!("Bottle {name} stopped: isolation leak")
    } else {
        format!("Bottle {name} failed to launch")
    };
    let body = match &record.step {
        Some(step) => format!(
            "Step `{step}` failed: {}",
            first_line(record.stderr_tail.as_deref().unwrap_or(&record.message))
        ),
        None => first_line(&record.message),
    };
    notify(app, &title, &body, &format!("#/bottle/{name}"));
    state
        .failures
        .lock()
        .unwrap()
        .insert(name.to_string(), record);
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

fn failure_record(bottle: &str, e: &OpError) -> FailureRecord {
    let (step, command, stderr_tail) = match e {
        OpError::Launch(f) => (
            Some(f.step.clone()),
            Some(f.command.clone()),
            Some(f.stderr_tail.clone()),
        ),
        OpError::IsolationLeak { summary, .. } => (
            Some(ops::SELF_TEST_STEP.into()),
            None,
            Some(summary.clone()),
        ),
        _ => (None, None, None),
    };
    FailureRecord {
        bottle: bottle.into(),
        step,
        command,
        stderr_tail,
        message: e.to_string(),
        time: now(),
    }
}
