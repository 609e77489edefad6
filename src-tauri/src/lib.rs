//! The Bottlebar menu-bar app: a thin Tauri shell over `bottlebar-core`.
//!
//! - `commands`: what the window may call; each one is a wrapper over
//!   `bottlebar_core` or `actions` (no engine logic lives here);
//! - `activity`: the window's egress activity — a bottle's newest audit
//!   entries, and every running bottle's new ones as they are written,
//!   followed while the window is open;
//! - `actions`: one runner for a bottle's actions from the window or the
//!   tray (busy → events to the window → the operation → failure kept and
//!   notified → states refreshed);
//! - `new_bottle`: New bottle from a template (choices; file and keychain);
//! - `requests`: supervise requests — a watcher while bottles run
//!   (`requests-changed`, notifications), and answering them;
//! - `terminal`: the user's terminal on a bottle's shell or agent;
//! - `tray`: the menu-bar icon and its menu, rebuilt whenever the states
//!   change (it listens for `bottles-changed`; nothing calls it);
//! - `window`: the window, made when opened and released (with its
//!   webview) when closed or long hidden;
//! - `desktop_theme`: the desktop's light/dark style, followed through its
//!   portal's signal (Linux; no thread polls for it);
//! - `idle_memory`: with no window, once settled, the app gives back the
//!   memory starting and the released window left behind;
//! - `watch`: engine events (Docker's event stream; a slow refresh on Apple's
//!   runtime, which has none) → refreshed states, tray, and notifications for
//!   bottles that stop unexpectedly.
//!
//! Everything long-running streams `bottlebar_core` events to the window as
//! the `bottle-event` event; nothing polls while idle (Apple's runtime, which
//! has no event stream, is the one exception: see `watch`).

#![warn(missing_docs)]

mod actions;
pub mod activity;
pub mod commands;
#[cfg(target_os = "linux")]
pub mod desktop_theme;
pub mod external_terminal;
pub mod idle_memory;
pub mod new_bottle;
pub mod notices;
pub mod requests;
pub mod terminals;
mod tray;
mod watch;
pub mod window;

use bottlebar_core::home::Home;
use bottlebar_core::ops::{self, Listing};
use bottlebar_core::runner::ProcessRunner;
pub use notices::NotificationRecord;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use window::make_window;
pub use window::show_window;

/// The last failed launch of a bottle: what the failure view shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FailureRecord {
    /// The bottle.
    pub bottle: String,
    /// The step that failed, if a step did.
    pub step: Option<String>,
    /// Its command line.
    pub command: Option<String>,
    /// The end of its stderr.
    pub stderr_tail: Option<String>,
    /// The whole error.
    pub message: String,
    /// When.
    pub time: String,
}

/// The app's state, shared by commands, the tray and the watchers.
pub struct AppState {
    /// This app's home.
    pub home: Home,
    /// Runs engine commands.
    pub runner: Arc<ProcessRunner>,
    /// Notifications raised, newest last.
    pub notifications: Mutex<Vec<NotificationRecord>>,
    /// The last failure of each bottle.
    pub failures: Mutex<BTreeMap<String, FailureRecord>>,
    /// Bottles with a launch or stop in progress (their state changes are expected).
    pub busy: Mutex<BTreeSet<String>>,
    /// Bottles seen running at the last refresh.
    pub running: Mutex<BTreeSet<String>>,
    /// Told when `running` changes (the requests watcher follows it).
    pub running_changed: tokio::sync::Notify,
    /// The running bottles' audit logs, followed while the window is open.
    pub following: Mutex<Option<activity::Following>>,
    /// Why there is no tray icon, when there is none.
    pub tray_problem: Mutex<Option<String>>,
    /// The states at the last refresh (the tray draws its menu from them).
    pub listing: Mutex<Listing>,
    /// When `listing` was read (never yet: `None`).
    pub listing_read: Mutex<Option<std::time::Instant>>,
    /// The supervise requests at the last look (the tray lists the pending).
    pub requests: Mutex<Vec<bottlebar_core::supervise::Request>>,
    /// Pending requests already announced by a notification.
    pub seen_pending: Mutex<BTreeSet<String>>,
    /// Terminal sessions (they live as long as the app, not the window).
    pub terminals: bottlebar_core::terminal::Sessions,
    /// Who views each terminal session.
    pub viewers: terminals::Viewers,
    /// The route a window made afresh opens at (see [`show_window`]).
    pub open_at: Mutex<Option<String>>,
    /// When the window was last made (ms since the Unix epoch).
    pub window_made_ms: Mutex<Option<u64>>,
    /// The hidden window's release, pending (see [`window::hide_window`]).
    pub release_hidden: Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

impl AppState {
    /// Fresh state for `home`.
    pub fn new(home: Home) -> Self {
        Self {
            home,
            runner: Arc::new(ProcessRunner),
            notifications: Mutex::default(),
            failures: Mutex::default(),
            busy: Mutex::default(),
            running: Mutex::default(),
            running_changed: tokio::sync::Notify::new(),
            following: Mutex::default(),
            tray_problem: Mutex::default(),
            listing: Mutex::new(Listing {
                bottles: vec![],
                problems: vec![],
                notes: vec![],
                adopted: vec![],
            }),
            listing_read: Mutex::default(),
            requests: Mutex::default(),
            seen_pending: Mutex::default(),
            terminals: Default::default(),
            viewers: Default::default(),
            open_at: Mutex::default(),
            window_made_ms: Mutex::default(),
            release_hidden: Mutex::default(),
        }
    }
}

/// Re-reads this home's bottle states, keeps them, and announces them as
/// `bottles-changed` (the window and the tray follow that event).
pub async fn refresh<R: Runtime>(app: &AppHandle<R>) -> Listing {
    let state = app.state::<AppState>();
    let listing = ops::list(&state.home, state.runner.as_ref()).await;
    *state.listing.lock().unwrap() = listing.clone();
    *state.listing_read.lock().unwrap() = Some(std::time::Instant::now());
    let _ = app.emit("bottles-changed", &listing);
    let running: Vec<&str> = listing
        .bottles
        .iter()
        .filter(|b| b.state == bottlebar_core::ops::BottleState::Running)
        .map(|b| b.name.as_str())
        .collect();
    terminals::end_stopped(app, &running);
    listing
}

/// The time now, for records shown to people.
pub fn now() -> String {
    bottlebar_core::now_rfc3339()
}

/// Whether the menu-bar icon is there (the window can be closed and
/// brought back).
fn has_tray<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.state::<AppState>()
        .tray_problem
        .lock()
        .unwrap()
        .is_none()
}

/// Raises a notification that opens the window at `route` when clicked.
pub fn notify<R: Runtime>(app: &tauri::AppHandle<R>, title: &str, body: &str, route: &str) {
    notices::notify(app, title, body, notices::About::Route(route));
}

/// Registers state, plugins and commands; `run` and the tests both use it.
pub fn configure<R: Runtime>(builder: tauri::Builder<R>, home: Home) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_shell::init())
        .plugin(tauri_plugin_positioner::init())
        .manage(AppState::new(home))
        .invoke_handler(tauri::generate_handler![
            commands::list_bottles,
            commands::known_bottles,
            commands::launch_bottle,
            commands::rebuild_bottle,
            commands::stop_bottle,
            commands::verify_bottle,
            commands::doctor,
            commands::fix_engine,
            activity::audit,
            activity::follow_audits,
            commands::load_bottle,
            commands::save_bottle,
            commands::load_bottle_text,
            commands::save_bottle_text,
            commands::open_shell,
            commands::notifications,
            commands::last_failure,
            commands::app_info,
            commands::list_requests,
            commands::new_bottle_choices,
            commands::create_bottle,
            commands::answer_request,
            terminals::terminal_open,
            terminals::terminal_list,
            terminals::terminal_attach,
            terminals::terminal_ack,
            terminals::terminal_input,
            terminals::terminal_resize,
            terminals::terminal_close,
            terminals::open_link,
        ])
}

/// Runs the app.
pub fn run() {
    let home = match Home::from_env() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("bottlebar: {e}");
            std::process::exit(1);
        }
    };
    configure(tauri::Builder::default(), home)
        .setup(|app| {
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            notices::listen(app.handle(), requests::answer_in_background);
            #[cfg(target_os = "linux")]
            desktop_theme::follow(app.handle());
            tray::install(app.handle());
            watch::start(app.handle().clone());
            requests::start(app.handle().clone());
            // `--hidden`: start in the menu bar only, when there is a menu
            // bar to come back from (at login; the idle measurement). The
            // window is not made at all then (`create: false`), so no web
            // engine process is started until it is first opened.
            let hidden = std::env::args().any(|a| a == "--hidden");
            if hidden && has_tray(app.handle()) {
                idle_memory::give_back_when_settled(app.handle());
            } else {
                make_window(app.handle())?;
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // A menu-bar popover: it hides when it loses focus (quick to
            // show again, released if left hidden); closing it releases
            // it with its webview.
            #[cfg(target_os = "macos")]
            if let tauri::WindowEvent::Focused(false) = event {
                window::hide_window(window, window::HIDDEN_KEPT_FOR);
            }
            // Nothing is followed for a window that is gone.
            if let tauri::WindowEvent::Destroyed = event {
                let following = window.state::<AppState>().following.lock().unwrap().take();
                if let Some(following) = following {
                    following.stop();
                }
                window::cancel_release(window.app_handle());
                idle_memory::give_back_when_settled(window.app_handle());
            }
        })
        .build(tauri::generate_context!())
        .expect("error while building the Bottlebar app")
        .run(|app, event| match event {
            // The last window closed: a menu-bar app stays (in the menu bar,
            // without a webview) unless there is no menu bar to come back
            // from. Quit (an exit code) always quits.
            tauri::RunEvent::ExitRequested {
                api, code: None, ..
            } if has_tray(app) => api.prevent_exit(),
            // Terminal sessions end with the app, not with the window.
            tauri::RunEvent::Exit => app.state::<AppState>().terminals.end_all("Bottlebar quit"),
            // Opened again (Finder, Spotlight) while it runs in the menu
            // bar with its window closed: the window comes back.
            #[cfg(target_os = "macos")]
            tauri::RunEvent::Reopen {
                has_visible_windows: false,
                ..
            } => show_window(app, "#/"),
            _ => {}
        });
}
