//! The terminal view's host side: sessions (kept by the app in
//! `bottlebar_core::terminal`, so they outlive the window) and one viewer per
//! session, fed over a Tauri channel.
//!
//! Output goes to the view as binary messages ([`output_message`]: base64
//! text on Linux, where Tauri's IPC hands bytes above 1 KiB to the page as
//! an array of numbers, 3–4 times the size and far slower to read), batched,
//! with flow control:
//! the view acknowledges what xterm.js has drawn, and at most [`WINDOW`]
//! bytes are ever in flight. A flood (`yes`) therefore never queues more
//! than that in the webview; what the view could not keep up with is
//! dropped from the front of the session's bounded scrollback, and the view
//! is told how much it skipped.

use crate::AppState;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bottlebar_core::ops::{self, TerminalCommand};
use bottlebar_core::runner::pty::CellSize;
use bottlebar_core::terminal::{Session, SessionInfo};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tauri::ipc::{Channel, InvokeResponseBody};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::watch;

/// Bytes sent to a view and not yet acknowledged, at most.
const WINDOW: u64 = 512 * 1024;
/// Bytes in one message, at most.
const CHUNK: usize = 128 * 1024;
/// After a message smaller than [`CHUNK`], how long to gather more before
/// the next: output arriving in dribs goes out in a few messages a frame,
/// while a keystroke's echo after a pause goes out at once.
const GATHER: Duration = Duration::from_millis(4);

/// The viewers: per session, the newest view's acknowledgements (a new
/// view replaces the old one, whose feed then stops).
#[derive(Default)]
pub struct Viewers {
    acks: Mutex<HashMap<u64, Arc<watch::Sender<Ack>>>>,
}

/// What the current view of a session has drawn.
#[derive(Debug, Clone, Copy, Default)]
struct Ack {
    /// Which view (a new attach is a new view).
    view: u64,
    /// The offset it has drawn up to.
    upto: u64,
}

/// Opens a terminal on `bottle`: a shell or its agent command.
#[tauri::command]
pub async fn terminal_open<R: Runtime>(
    app: AppHandle<R>,
    bottle: String,
    kind: TerminalCommand,
    cols: u16,
    rows: u16,
) -> Result<SessionInfo, String> {
    open(&app, &bottle, kind, CellSize { cols, rows }).await
}

/// Every terminal session, oldest first.
#[tauri::command]
pub fn terminal_list<R: Runtime>(app: AppHandle<R>) -> Vec<SessionInfo> {
    app.state::<AppState>().terminals.list()
}

/// Feeds session `id`'s output to `channel`, starting with its scrollback:
/// binary messages of output, and JSON messages `{"from": N}` (the offset
/// the next output starts at, first and after a skip) and `{"ended": …}`.
#[tauri::command]
pub fn terminal_attach<R: Runtime>(
    app: AppHandle<R>,
    id: u64,
    channel: Channel<InvokeResponseBody>,
) -> Result<(), String> {
    let state = app.state::<AppState>();
    let session = state.terminals.get(id)?;
    let acks = state
        .viewers
        .acks
        .lock()
        .unwrap()
        .entry(id)
        .or_insert_with(|| Arc::new(watch::Sender::new(Ack::default())))
        .clone();
    let mut view = 0;
    acks.send_modify(|a| {
        a.view += 1;
        view = a.view;
        a.upto = session.replay_from();
    });
    tauri::async_runtime::spawn(feed(session, acks, view, channel));
    Ok(())
}

/// The view has drawn session `id`'s output up to offset `upto`.
#[tauri::command]
pub fn terminal_ack<R: Runtime>(app: AppHandle<R>, id: u64, upto: u64) {
    if let Some(acks) = app
        .state::<AppState>()
        .viewers
        .acks
        .lock()
        .unwrap()
        .get(&id)
    {
        acks.send_if_modified(|a| {
            let newer = upto > a.upto;
            a.upto = a.upto.max(upto);
            newer
        });
    }
}

/// Types into session `id`: text, or raw bytes (xterm.js's binary input).
#[tauri::command]
pub fn terminal_input<R: Runtime>(
    app: AppHandle<R>,
    id: u64,
    text: Option<String>,
    bytes: Option<Vec<u8>>,
) -> Result<(), String> {
    let data = match (text, bytes) {
        (Some(t), None) => t.into_bytes(),
        (None, Some(b)) => b,
        _ => return Err("give either `text` or `bytes`".into()),
    };
    app.state::<AppState>().terminals.get(id)?.type_in(data)
}

/// Session `id`'s view now has `cols` × `rows` cells.
#[tauri::command]
pub fn terminal_resize<R: Runtime>(
    app: AppHandle<R>,
    id: u64,
    cols: u16,
    rows: u16,
) -> Result<(), String> {
    app.state::<AppState>()
        .terminals
        .get(id)?
        .resize(CellSize { cols, rows })
}

/// Closes session `id` (ending it if it still runs).
#[tauri::command]
pub fn terminal_close<R: Runtime>(app: AppHandle<R>, id: u64) -> Result<(), String> {
    let state = app.state::<AppState>();
    state.terminals.close(id)?;
    state.viewers.acks.lock().unwrap().remove(&id);
    changed(&app);
    Ok(())
}

/// Opens a link the user clicked in a terminal (after the view showed it
/// and the user confirmed): web and mail links only, never a file or an
/// app's own scheme.
#[tauri::command]
pub fn open_link(url: String) -> Result<(), String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https" | "mailto")) || url.len() > 4096 {
        return Err(format!("not opening `{url}`: only web and mail links open"));
    }
    open::that_detached(&url).map_err(|e| format!("opening {url}: {e}"))
}

/// Opens a terminal session on `bottle` and announces it.
pub async fn open<R: Runtime>(
    app: &AppHandle<R>,
    bottle: &str,
    kind: TerminalCommand,
    size: CellSize,
) -> Result<SessionInfo, String> {
    let state = app.state::<AppState>();
    let argv = ops::terminal_argv(&state.home, bottle, kind, state.runner.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let session = state.terminals.open(bottle, kind, &argv, size)?;
    let info = session.info();
    // Its end is news for the tabs.
    let (app2, mut progress) = (app.clone(), session.progress());
    tauri::async_runtime::spawn(async move {
        let _ = progress.wait_for(|p| p.ended.is_some()).await;
        changed(&app2);
        if explain_end(&app2, &session).await {
            changed(&app2);
        }
    });
    changed(app);
    Ok(info)
}

/// Ends the sessions of bottles no longer running.
pub fn end_stopped<R: Runtime>(app: &AppHandle<R>, running: &[&str]) {
    let state = app.state::<AppState>();
    let bottles: Vec<String> = state
        .terminals
        .list()
        .into_iter()
        .filter(|s| s.ended.is_none() && !running.contains(&s.bottle.as_str()))
        .map(|s| s.bottle)
        .collect();
    for bottle in bottles {
        state.terminals.end_bottle(&bottle, "the bottle stopped");
    }
}

/// An exec that ended on its own may have died with its bottle: if the
/// bottle stops within a few seconds, the session's end says so (true).
async fn explain_end<R: Runtime>(app: &AppHandle<R>, session: &Session) -> bool {
    if session.info().ended.is_some_and(|e| e.why.is_some()) {
        return false;
    }
    let state = app.state::<AppState>();
    for _ in 0..4 {
        let st = ops::status(&state.home, session.bottle(), state.runner.as_ref()).await;
        if st.is_ok_and(|st| st.state != ops::BottleState::Running) {
            session.explain_end("the bottle stopped");
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

/// A piece of output as a channel message: raw bytes (an `ArrayBuffer` in
/// the page), or on Linux base64 text (measured faster there: see the
/// module's note).
fn output_message(bytes: Vec<u8>) -> InvokeResponseBody {
    if cfg!(target_os = "linux") {
        InvokeResponseBody::Json(format!("\"{}\"", BASE64.encode(&bytes)))
    } else {
        InvokeResponseBody::Raw(bytes)
    }
}

/// Tells the window the sessions changed.
fn changed<R: Runtime>(app: &AppHandle<R>) {
    let _ = app.emit(
        "terminals-changed",
        app.state::<AppState>().terminals.list(),
    );
}

/// One view's feed: output from the replay point on, within the window of
/// unacknowledged bytes, until the session ends or a newer view takes over.
async fn feed(
    session: Arc<Session>,
    acks: Arc<watch::Sender<Ack>>,
    view: u64,
    channel: Channel<InvokeResponseBody>,
) {
    let mut progress = session.progress();
    let mut acked = acks.subscribe();
    let mut sent = acked.borrow().upto;
    let json = |v: serde_json::Value| InvokeResponseBody::Json(v.to_string());
    if channel.send(json(json!({ "from": sent }))).is_err() {
        return;
    }
    loop {
        let ack = *acked.borrow_and_update();
        if ack.view != view {
            return; // a newer view took over
        }
        let p = progress.borrow_and_update().clone();
        let room = WINDOW.saturating_sub(sent.saturating_sub(ack.upto));
        if sent < p.end && room > 0 {
            let piece = session.read(sent, CHUNK.min(room as usize));
            if piece.from > sent {
                // The view fell behind the scrollback's bound.
                let _ = channel.send(json(json!({ "from": piece.from })));
            }
            sent = piece.from + piece.bytes.len() as u64;
            let small = piece.bytes.len() < CHUNK;
            if channel.send(output_message(piece.bytes)).is_err() {
                return;
            }
            if small {
                tokio::time::sleep(GATHER).await;
            }
            continue;
        }
        if let (Some(ended), true) = (&p.ended, sent >= p.end) {
            let _ = channel.send(json(json!({ "ended": ended })));
            return;
        }
        tokio::select! {
            r = progress.changed() => if r.is_err() { return },
            r = acked.changed() => if r.is_err() { return },
        }
    }
}
