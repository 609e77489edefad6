//! The window's commands: thin wrappers over `bottlebar_core` (the
//! operations, the editor) and the app's `actions`; the audit log's are in
//! `activity`, the terminals' in `terminals`. Long operations report
//! through the `bottle-event` event (`{bottle, event}`), so a launch
//! started from the tray shows in the window too.

use crate::actions::{self, Action, Done};
use crate::{external_terminal, new_bottle, refresh, requests, AppState, FailureRecord};
use bottlebar_core::editor::{self, BottleForm, BottleText, FieldError};
use bottlebar_core::ops::{self, DoctorReport, Listing};
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};

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
