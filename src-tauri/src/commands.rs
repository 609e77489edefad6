//! The window's commands: thin wrappers over `bottlebar_core::ops`. Long
//! operations report through the `bottle-event` event (`{bottle, event}`),
//! so a launch started from the tray shows in the window too.

use crate::{notify, now, AppState, FailureRecord};
use bottlebar_core::audit::{self, AuditEntry};
use bottlebar_core::backend::{self, EngineStatus};
use bottlebar_core::editor::{self, BottleForm, BottleText, FieldError};
use bottlebar_core::events::{Event, Events};
use bottlebar_core::manifest::{self, BackendKind};
use bottlebar_core::name::BottleName;
use bottlebar_core::ops::{self, Listing, OpError, UpOptions, UpOutcome};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// What the window receives for every core event.
#[derive(Debug, Clone, Serialize)]
pub struct BottleEvent {
    pub bottle: String,
    pub event: Event,
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

/// Re-reads bottle states and tells the window and the tray.
pub async fn refresh<R: Runtime>(app: &AppHandle<R>) -> Listing {
    let state = app.state::<AppState>();
    let listing = ops::list(&state.home, state.runner.as_ref()).await;
    let _ = app.emit("bottles-changed", &listing);
    crate::tray::update(app, &listing);
    listing
}

#[tauri::command]
pub async fn list_bottles<R: Runtime>(app: AppHandle<R>) -> Result<Listing, String> {
    Ok(refresh(&app).await)
}

struct Busy<'a> {
    state: &'a AppState,
    name: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.state.busy.lock().unwrap().remove(&self.name);
    }
}

fn busy<'a>(state: &'a AppState, name: &str) -> Busy<'a> {
    state.busy.lock().unwrap().insert(name.to_string());
    Busy {
        state,
        name: name.to_string(),
    }
}

/// Launches a bottle; progress arrives as `bottle-event`s. A failure is
/// recorded for the failure view and raises a notification naming the step.
#[tauri::command]
pub async fn launch_bottle<R: Runtime>(
    app: AppHandle<R>,
    name: String,
) -> Result<UpOutcome, String> {
    let state = app.state::<AppState>();
    let _busy = busy(&state, &name);
    state.failures.lock().unwrap().remove(&name);
    let (events, forwarding) = forward(&app, &name);
    let result = ops::up(
        &state.home,
        &name,
        UpOptions::default(),
        state.runner.clone(),
        &events,
    )
    .await;
    drop(events);
    let _ = forwarding.await;
    if let Err(e) = &result {
        report_failure(&app, &state, &name, e);
    }
    drop(_busy);
    refresh(&app).await;
    result.map_err(|e| e.to_string())
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
    notify(app, &title, &body);
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
    match e {
        OpError::Launch(f) => FailureRecord {
            bottle: bottle.into(),
            step: Some(f.step.clone()),
            command: Some(f.command.clone()),
            stderr_tail: Some(f.stderr_tail.clone()),
            message: e.to_string(),
            time: now(),
        },
        OpError::IsolationLeak { summary, .. } => FailureRecord {
            bottle: bottle.into(),
            step: Some(ops::SELF_TEST_STEP.into()),
            command: None,
            stderr_tail: Some(summary.clone()),
            message: e.to_string(),
            time: now(),
        },
        other => FailureRecord {
            bottle: bottle.into(),
            step: None,
            command: None,
            stderr_tail: None,
            message: other.to_string(),
            time: now(),
        },
    }
}

/// Reruns the isolation self-test in a running bottle (`bottle verify`). A
/// leak stops the bottle, is recorded as its failure, and notifies.
#[tauri::command]
pub async fn verify_bottle<R: Runtime>(
    app: AppHandle<R>,
    name: String,
) -> Result<bottlebar_core::selftest::Record, String> {
    let state = app.state::<AppState>();
    let _busy = busy(&state, &name);
    let (events, forwarding) = forward(&app, &name);
    let result = ops::verify(&state.home, &name, state.runner.as_ref(), &events).await;
    drop(events);
    let _ = forwarding.await;
    if let Err(e @ OpError::IsolationLeak { .. }) = &result {
        report_failure(&app, &state, &name, e);
    }
    drop(_busy);
    refresh(&app).await;
    result.map_err(|e| e.to_string())
}

/// Stops a bottle: removes its containers, networks and state (`bottle down`).
#[tauri::command]
pub async fn stop_bottle<R: Runtime>(app: AppHandle<R>, name: String) -> Result<(), String> {
    let state = app.state::<AppState>();
    let _busy = busy(&state, &name);
    let (events, forwarding) = forward(&app, &name);
    let result = ops::down(&state.home, &name, None, state.runner.as_ref(), &events).await;
    drop(events);
    let _ = forwarding.await;
    drop(_busy);
    refresh(&app).await;
    result.map_err(|e| e.to_string())
}

#[derive(Debug, Serialize)]
pub struct Doctor {
    pub default_backend: BackendKind,
    pub reason: String,
    pub engines: Vec<EngineStatus>,
    pub sidecar: Result<String, String>,
    /// Where secrets entered in the editor are kept.
    pub secrets_store: &'static str,
}

/// Which backend is used and why, each engine's state, and the fix on offer.
#[tauri::command]
pub async fn doctor<R: Runtime>(app: AppHandle<R>) -> Result<Doctor, String> {
    let state = app.state::<AppState>();
    let default_backend = ops::choose_backend(None, None);
    let reason = if std::env::var("BOTTLEBAR_BACKEND").is_ok() {
        "set by BOTTLEBAR_BACKEND".to_string()
    } else if default_backend == BackendKind::Apple {
        "Apple's container runtime is installed on this Mac".to_string()
    } else {
        "Docker is the runtime on this machine (Apple's runtime needs macOS 26)".to_string()
    };
    let mut engines = Vec::new();
    for kind in [BackendKind::Docker, BackendKind::Apple] {
        let st = backend::status(kind, state.runner.as_ref()).await;
        if kind == BackendKind::Apple && st.program.is_none() && !cfg!(target_os = "macos") {
            continue;
        }
        engines.push(st);
    }
    let sidecar = bottlebar_core::images::find_sidecar_binary()
        .map(|p| p.display().to_string())
        .map_err(|e| e.to_string());
    Ok(Doctor {
        default_backend,
        reason,
        engines,
        sidecar,
        secrets_store: bottlebar_core::keychain::store_in_use().describe(),
    })
}

/// Applies the fixes the core can make (starting Apple's container service).
#[tauri::command]
pub async fn fix_engine<R: Runtime>(app: AppHandle<R>) -> Result<Vec<String>, String> {
    let state = app.state::<AppState>();
    Ok(backend::fix(state.runner.as_ref()).await)
}

/// The most recent audit entries of a bottle (newest last).
#[tauri::command]
pub async fn audit<R: Runtime>(
    app: AppHandle<R>,
    name: String,
    limit: Option<usize>,
) -> Result<Vec<AuditEntry>, String> {
    let state = app.state::<AppState>();
    let bottle = BottleName::parse(&name).map_err(|e| e.to_string())?;
    let all = audit::read_all(&state.home, &bottle).map_err(|e| e.to_string())?;
    let entries: Vec<AuditEntry> = all.into_iter().filter_map(Result::ok).collect();
    let keep = limit.unwrap_or(500);
    Ok(entries[entries.len().saturating_sub(keep)..].to_vec())
}

/// Streams new audit entries of `name` to the window as `audit-entry` events
/// until another bottle is followed. Reads the file twice a second; the
/// audit log is local, so this is cheap.
#[tauri::command]
pub async fn follow_audit<R: Runtime>(app: AppHandle<R>, name: String) -> Result<(), String> {
    let state = app.state::<AppState>();
    let bottle = BottleName::parse(&name).map_err(|e| e.to_string())?;
    let home = state.home.clone();
    let app2 = app.clone();
    let task = tauri::async_runtime::spawn(async move {
        let mut follower = audit::Follower::from_end(&home, &bottle);
        loop {
            for line in follower.poll() {
                if let Ok(entry) = audit::parse_line(&line) {
                    let _ = app2.emit(
                        "audit-entry",
                        BottleEventAudit {
                            bottle: bottle.to_string(),
                            entry,
                        },
                    );
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    if let Some(old) = state.follow.lock().unwrap().replace(task) {
        old.abort();
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct BottleEventAudit {
    pub bottle: String,
    pub entry: AuditEntry,
}

/// The editor's form for a bottle (a new one when `name` is empty). A file
/// the form cannot read comes back as an error carrying its text, for the
/// text editor.
#[tauri::command]
pub async fn load_bottle<R: Runtime>(
    app: AppHandle<R>,
    name: String,
) -> Result<BottleForm, editor::OpenError> {
    editor::open(&app.state::<AppState>().home, &name)
}

/// A bottle's file as text, for the text editor.
#[tauri::command]
pub async fn load_bottle_text<R: Runtime>(
    app: AppHandle<R>,
    name: String,
) -> Result<BottleText, editor::OpenError> {
    editor::open_text(&app.state::<AppState>().home, &name)
}

/// Validates and saves the editor's form into the bottle's file, changing
/// only what the form shows; errors name the form field they belong to.
#[tauri::command]
pub async fn save_bottle<R: Runtime>(
    app: AppHandle<R>,
    form: BottleForm,
) -> Result<String, Vec<FieldError>> {
    let path = editor::save(&app.state::<AppState>().home, &form)?;
    refresh(&app).await;
    Ok(path.display().to_string())
}

/// Validates and saves the text editor's text as the bottle's file.
#[tauri::command]
pub async fn save_bottle_text<R: Runtime>(
    app: AppHandle<R>,
    name: String,
    text: String,
    revision: String,
) -> Result<String, Vec<FieldError>> {
    let path = editor::save_text(&app.state::<AppState>().home, &name, &text, &revision)?;
    refresh(&app).await;
    Ok(path.display().to_string())
}

/// Opens the user's terminal on a shell in the bottle's agent.
#[tauri::command]
pub async fn open_shell<R: Runtime>(app: AppHandle<R>, name: String) -> Result<(), String> {
    let state = app.state::<AppState>();
    let argv = ops::exec_argv(
        &state.home,
        &name,
        &["sh".to_string()],
        true,
        state.runner.as_ref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    open_in_terminal(&app, &argv)
}

/// Opens the user's terminal on the bottle's agent program (`agent.command`).
#[tauri::command]
pub async fn start_agent<R: Runtime>(app: AppHandle<R>, name: String) -> Result<(), String> {
    let state = app.state::<AppState>();
    let m = manifest::load(&state.home, &name).map_err(|e| e.to_string())?;
    if m.agent_command.is_empty() {
        return Err(format!("bottle `{name}` has no agent command; set `agent.command` in the editor (e.g. `claude`)"));
    }
    let argv = ops::exec_argv(
        &state.home,
        &name,
        &m.agent_command,
        true,
        state.runner.as_ref(),
    )
    .await
    .map_err(|e| e.to_string())?;
    open_in_terminal(&app, &argv)
}

/// Runs `argv` in the user's terminal.
fn open_in_terminal<R: Runtime>(app: &AppHandle<R>, argv: &[String]) -> Result<(), String> {
    use tauri_plugin_shell::ShellExt;
    let (program, args) = terminal_command(argv);
    app.shell()
        .command(&program)
        .args(args)
        .spawn()
        .map_err(|e| format!("opening a terminal ({program}): {e}"))?;
    Ok(())
}

/// The terminal command that runs `argv`: Terminal.app on macOS, `$TERMINAL`
/// or `x-terminal-emulator` elsewhere.
pub fn terminal_command(argv: &[String]) -> (String, Vec<String>) {
    let line = bottlebar_core::plan::display_command(argv);
    if cfg!(target_os = "macos") {
        let script = format!("tell application \"Terminal\" to do script \"{}\"\ntell application \"Terminal\" to activate", line.replace('\\', "\\\\").replace('"', "\\\""));
        return ("osascript".into(), vec!["-e".into(), script]);
    }
    let term = std::env::var("TERMINAL")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "x-terminal-emulator".into());
    let mut args = vec!["-e".to_string()];
    args.extend(argv.iter().cloned());
    (term, args)
}

#[tauri::command]
pub async fn notifications<R: Runtime>(
    app: AppHandle<R>,
) -> Result<Vec<crate::NotificationRecord>, String> {
    Ok(app
        .state::<AppState>()
        .notifications
        .lock()
        .unwrap()
        .clone())
}

#[tauri::command]
pub async fn last_failure<R: Runtime>(
    app: AppHandle<R>,
    name: String,
) -> Result<Option<FailureRecord>, String> {
    Ok(app
        .state::<AppState>()
        .failures
        .lock()
        .unwrap()
        .get(&name)
        .cloned())
}

#[derive(Debug, Serialize)]
pub struct AppInfo {
    pub version: String,
    pub home: String,
    pub tray_problem: Option<String>,
}

#[tauri::command]
pub async fn app_info<R: Runtime>(app: AppHandle<R>) -> Result<AppInfo, String> {
    let state = app.state::<AppState>();
    let tray_problem = state.tray_problem.lock().unwrap().clone();
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        home: state.home.root().display().to_string(),
        tray_problem,
    })
}
