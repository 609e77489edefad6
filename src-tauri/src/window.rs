//! The one window: made when it is opened, released (with its webview and
//! the web engine's processes) when it is closed, or when it has stayed
//! hidden for [`HIDDEN_KEPT_FOR`]. Everything it shows is read from the core
//! when it is made, so nothing is lost by releasing it.

use crate::AppState;
use std::time::Duration;
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// How long a hidden window keeps its webview. A menu-bar popover hides
/// whenever it loses focus and is often shown again at once (a glance at
/// another window); held that long, it comes back instantly. Left hidden
/// longer, it is released like a closed one: an idle menu-bar app holds no
/// web engine.
pub const HIDDEN_KEPT_FOR: Duration = Duration::from_secs(30);

/// Shows the window (at `route`, e.g. `#/bottle/demo`). A closed window
/// was released with its webview; it is made afresh here, its page opens
/// at `route` and loads everything from the core (terminal sessions
/// reattach with their scrollback).
pub fn show_window<R: Runtime>(app: &AppHandle<R>, route: &str) {
    if let Some(w) = app.get_webview_window("main") {
        // Shown again before its release: it stays.
        cancel_release(app);
        let _ = w.show();
        let _ = w.set_focus();
        let _ = app.emit("navigate", route);
        return;
    }
    *app.state::<AppState>().open_at.lock().unwrap() = Some(route.to_string());
    match make_window(app) {
        Ok(Some(w)) => {
            let _ = w.set_focus();
        }
        Ok(None) => {}
        Err(e) => eprintln!("bottlebar: the window could not be made: {e}"),
    }
}

/// Makes the main window from its configuration (none configured: none).
pub(crate) fn make_window<R: Runtime>(
    app: &AppHandle<R>,
) -> tauri::Result<Option<tauri::WebviewWindow<R>>> {
    let Some(config) = app.config().app.windows.iter().find(|w| w.label == "main") else {
        return Ok(None);
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    *app.state::<AppState>().window_made_ms.lock().unwrap() = Some(now_ms);
    tauri::WebviewWindowBuilder::from_config(app, config)?
        .build()
        .map(Some)
}

/// Hides the window; still hidden after `keep`, it is destroyed, which
/// releases its webview (one timer, set once per hiding, never a poll).
pub fn hide_window<R: Runtime>(window: &tauri::Window<R>, keep: Duration) {
    let _ = window.hide();
    let app = window.app_handle().clone();
    let label = window.label().to_string();
    let release = tauri::async_runtime::spawn(async move {
        tokio::time::sleep(keep).await;
        if let Some(w) = app.get_webview_window(&label) {
            if !w.is_visible().unwrap_or(true) {
                let _ = w.destroy();
            }
        }
    });
    let state = window.state::<AppState>();
    let earlier = state.release_hidden.lock().unwrap().replace(release);
    if let Some(earlier) = earlier {
        earlier.abort();
    }
}

/// Stops a pending release (the window is shown, or gone anyway).
pub(crate) fn cancel_release<R: Runtime>(app: &AppHandle<R>) {
    let pending = app
        .state::<AppState>()
        .release_hidden
        .lock()
        .unwrap()
        .take();
    if let Some(task) = pending {
        task.abort();
    }
}
