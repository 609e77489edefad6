//! The window's commands: thin wrappers over `bottlebar_core` (the
//! operations, the editor, the audit log) and the app's `actions`. Long
//! operations report through the `bottle-event` event (`{bottle, event}`),
//! so a launch started from the tray shows in the window too.

use crate::actions::{self, Action, Done};
use crate::files::DirWatch;
use crate::{external_terminal, new_bottle, refresh, requests, AppState, FailureRecord};
use bottlebar_core::audit::{self, AuditEntry};
use bottlebar_core::editor::{self, BottleForm, BottleText, FieldError};
use bottlebar_core::name::BottleName;
use bottlebar_core::ops::{self, DoctorReport, Listing};
use bottlebar_core::state::StateDirs;
use serde::Serialize;
use std::collections::BTreeSet;
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// Every bottle of this home and its state (and refreshes the tray).
#[tauri::command]
pub async fn list_bottles<R: Runtime>(app: AppHandle<R>) -> Result<Listing, String> {
    Ok(refresh(&app).await)
}

/// The states as last read, and how long ago (engine events keep them
/// current): a window made afresh shows them at once while `list_bottles`
/// reads them again. Never read yet: read now.
#[tauri::command]
pub async fn known_bottles<R: Runtime>(app: AppHandle<R>) -> Result<KnownListing, String> {
    let state = app.state::<AppState>();
    let read = *state.listing_read.lock().unwrap();
    if let Some(at) = read {
        let listing = state.listing.lock().unwrap().clone();
        let age_ms = at.elapsed().as_millis() as u64;
        return Ok(KnownListing { listing, age_ms });
    }
    Ok(KnownListing {
        listing: refresh(&app).await,
        age_ms: 0,
    })
}

/// The states as last read ([`known_bottles`]).
#[derive(Debug, Serialize)]
pub struct KnownListing {
    /// The states.
    pub listing: Listing,
    /// How long ago they were read, in milliseconds.
    pub age_ms: u64,
}

/// Launches a bottle; progress arrives as `bottle-event`s. A failure is
/// recorded for the failure view and raises a notification naming the step.
#[tauri::command]
pub async fn launch_bottle<R: Runtime>(app: AppHandle<R>, name: String) -> Result<Done, String> {
    actions::run(&app, Action::Launch, &name).await
}

/// Builds the bottle's agent image afresh (`bottle up --rebuild`: a
/// template's CLI at its newest release) and relaunches it; progress as
/// `bottle-event`s.
#[tauri::command]
pub async fn rebuild_bottle<R: Runtime>(app: AppHandle<R>, name: String) -> Result<Done, String> {
    actions::run(&app, Action::Rebuild, &name).await
}

/// Reruns the isolation self-test in a running bottle (`bottle verify`). A
/// leak stops the bottle, is recorded as its failure, and notifies.
#[tauri::command]
pub async fn verify_bottle<R: Runtime>(app: AppHandle<R>, name: String) -> Result<Done, String> {
    actions::run(&app, Action::Verify, &name).await
}

/// Stops a bottle: removes its containers, networks and state (`bottle down`).
#[tauri::command]
pub async fn stop_bottle<R: Runtime>(app: AppHandle<R>, name: String) -> Result<Done, String> {
    actions::run(&app, Action::Stop, &name).await
}

/// The doctor report (the same `bottle doctor` prints): which backend is
/// used and why, each engine's state, and the fixes on offer.
#[tauri::command]
pub async fn doctor<R: Runtime>(app: AppHandle<R>) -> Result<DoctorReport, String> {
    Ok(ops::doctor(app.state::<AppState>().runner.as_ref(), false).await)
}

/// Applies the fixes the core can make (starting Apple's container service).
#[tauri::command]
pub async fn fix_engine<R: Runtime>(app: AppHandle<R>) -> Result<Vec<String>, String> {
    Ok(ops::doctor(app.state::<AppState>().runner.as_ref(), true)
        .await
        .fixed)
}

/// The most recent audit entries of a bottle (newest last), and whether the
/// log holds earlier ones.
#[tauri::command]
pub async fn audit<R: Runtime>(
    app: AppHandle<R>,
    name: String,
    limit: Option<usize>,
) -> Result<AuditTail, String> {
    let state = app.state::<AppState>();
    let bottle = BottleName::parse(&name).map_err(|e| e.to_string())?;
    let limit = limit.unwrap_or(500);
    // One line more than asked tells whether there are earlier ones.
    let last = audit::read_last(&state.home, &bottle, limit.saturating_add(1))
        .map_err(|e| format!("reading the audit log of `{bottle}`: {e}"))?;
    let earlier = last.len() > limit;
    let entries = last
        .into_iter()
        .skip(usize::from(earlier))
        .filter_map(Result::ok)
        .collect();
    Ok(AuditTail { entries, earlier })
}

/// The newest entries of a bottle's audit log, for the window.
#[derive(Debug, Clone, Serialize)]
pub struct AuditTail {
    /// The entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Whether the log holds entries before these.
    pub earlier: bool,
}

/// Streams new audit entries of `name` to the window as `audit-entry` events
/// until another bottle is followed or the window closes. Reads the file
/// when its directory changes (file notifications: nothing polls).
#[tauri::command]
pub async fn follow_audit<R: Runtime>(app: AppHandle<R>, name: String) -> Result<(), String> {
    let state = app.state::<AppState>();
    let bottle = BottleName::parse(&name).map_err(|e| e.to_string())?;
    let home = state.home.clone();
    let app2 = app.clone();
    let task = tauri::async_runtime::spawn(async move {
        let mut follower = audit::Follower::from_end(&home, &bottle);
        let audit_dir = BTreeSet::from([StateDirs::new(home.state_dir(&bottle)).audit]);
        let mut files = DirWatch::new();
        loop {
            // Watched before reading, so nothing written in between is missed.
            files.watch_only(&audit_dir);
            for line in follower.poll() {
                if let Ok(entry) = audit::parse_bytes(&line) {
                    let _ = app2.emit(
                        "audit-entry",
                        BottleEventAudit {
                            bottle: bottle.to_string(),
                            entry,
                        },
                    );
                }
            }
            files.changed().await;
        }
    });
    if let Some(old) = state.follow.lock().unwrap().replace(task) {
        old.abort();
    }
    Ok(())
}

/// An audit entry, for the window's `audit-entry` event.
#[derive(Debug, Clone, Serialize)]
pub struct BottleEventAudit {
    /// The bottle.
    pub bottle: String,
    /// The entry.
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

/// Opens the user's own terminal (Terminal.app, …) on a shell in the
/// bottle's agent: the secondary action beside the window's terminal.
#[tauri::command]
pub async fn open_shell<R: Runtime>(app: AppHandle<R>, name: String) -> Result<(), String> {
    external_terminal::open_shell(&app, &name).await
}

/// The notifications the app raised.
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

/// The last failed launch of a bottle, for the failure view.
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

/// Every supervise request of this home, oldest first (pending ones with
/// their seconds left; answered ones with who answered and when).
#[tauri::command]
pub async fn list_requests<R: Runtime>(
    app: AppHandle<R>,
) -> Result<Vec<bottlebar_core::supervise::Request>, String> {
    Ok(requests::look(&app))
}

/// Answers a request: `answer` is `once`, `hour`, `always` (writes the rule
/// into the bottle's file) or `deny` (with `note`, shown to the agent).
#[tauri::command]
pub async fn answer_request<R: Runtime>(
    app: AppHandle<R>,
    name: String,
    id: String,
    answer: String,
    note: Option<String>,
) -> Result<bottlebar_core::supervise::Request, String> {
    let answer = requests::answer_of(&answer, note)?;
    requests::answer(&app, &name, &id, answer).await
}

/// What New bottle offers: templates, presets, names taken.
#[tauri::command]
pub async fn new_bottle_choices<R: Runtime>(
    app: AppHandle<R>,
) -> Result<new_bottle::Choices, String> {
    Ok(new_bottle::choices(&app))
}

/// Makes a bottle from a template: its file, and its key in the keychain.
#[tauri::command]
pub async fn create_bottle<R: Runtime>(
    app: AppHandle<R>,
    request: new_bottle::NewBottleRequest,
) -> Result<String, new_bottle::NewBottleFieldError> {
    new_bottle::create(&app, request).await
}

/// What the About card shows.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    /// The app's version.
    pub version: String,
    /// The home directory.
    pub home: String,
    /// Why there is no menu-bar icon, if there is none.
    pub tray_problem: Option<String>,
    /// Where the window was asked to open (`#/requests`, …), when it was
    /// made afresh for that; taken by the first page that asks.
    pub open_at: Option<String>,
    /// When the window was made (ms since the Unix epoch): the page says how
    /// long it took to show its state from then (the re-creation time).
    pub window_made_ms: Option<u64>,
}

/// The app's version, home and tray status.
#[tauri::command]
pub async fn app_info<R: Runtime>(app: AppHandle<R>) -> Result<AppInfo, String> {
    let state = app.state::<AppState>();
    let tray_problem = state.tray_problem.lock().unwrap().clone();
    let open_at = state.open_at.lock().unwrap().take();
    let window_made_ms = *state.window_made_ms.lock().unwrap();
    Ok(AppInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        home: state.home.root().display().to_string(),
        tray_problem,
        open_at,
        window_made_ms,
    })
}
