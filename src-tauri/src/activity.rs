//! The window's egress activity: a bottle's newest audit entries, and,
//! for every running bottle while the window is open, each entry its
//! sidecar writes after them as an `audit-entry` event. One task follows
//! them all, woken by file notifications: nothing polls, and nothing is
//! followed once the window is gone.

use crate::AppState;
use bottlebar_core::audit::{self, AuditEntry, Follower};
use bottlebar_core::dir_watch::DirWatch;
use bottlebar_core::name::BottleName;
use bottlebar_core::state::StateDirs;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::Notify;

/// Entries the window asks for when it does not say.
const DEFAULT_LIMIT: usize = 500;

/// The newest entries of a bottle's audit log, for the window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditTail {
    /// The entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Whether the log holds entries before these.
    pub earlier: bool,
    /// Why the log could not be read (then there are no entries).
    pub problem: Option<String>,
}

impl AuditTail {
    /// The newest `limit` of `read` (which holds one more when there are
    /// earlier ones), or why they could not be read.
    fn of(bottle: &BottleName, read: std::io::Result<audit::Entries>, limit: usize) -> Self {
        match read {
            Ok(last) => {
                let earlier = last.len() > limit;
                let entries = last
                    .into_iter()
                    .skip(usize::from(earlier))
                    .filter_map(Result::ok)
                    .collect();
                Self {
                    entries,
                    earlier,
                    problem: None,
                }
            }
            Err(e) => Self {
                problem: Some(format!("reading the audit log of `{bottle}`: {e}")),
                ..Self::default()
            },
        }
    }
}

/// An audit entry, for the window's `audit-entry` event.
#[derive(Debug, Clone, Serialize)]
pub struct BottleEventAudit {
    /// The bottle.
    pub bottle: String,
    /// The entry.
    pub entry: AuditEntry,
}

/// The most recent audit entries of a bottle (newest last), and whether the
/// log holds earlier ones: for a bottle that is not followed (not running).
#[tauri::command]
pub async fn audit<R: Runtime>(
    app: AppHandle<R>,
    name: String,
    limit: Option<usize>,
) -> Result<AuditTail, String> {
    let state = app.state::<AppState>();
    let bottle = BottleName::parse(&name).map_err(|e| e.to_string())?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    // One line more than asked tells whether there are earlier ones.
    let read = audit::read_last(&state.home, &bottle, limit.saturating_add(1));
    Ok(AuditTail::of(&bottle, read, limit))
}

/// Follows exactly the bottles `names` from now on (the running ones).
/// Each one in `read`, or not followed yet, is followed afresh: its
/// newest `limit` entries are returned, and every entry written after
/// them comes as an `audit-entry` event (see [`Follower::with_last`]:
/// none twice, none missed). Bottles left out are no longer followed. A
/// name that is not a bottle name changes nothing.
#[tauri::command]
pub async fn follow_audits<R: Runtime>(
    app: AppHandle<R>,
    names: Vec<String>,
    read: Vec<String>,
    limit: Option<usize>,
) -> Result<BTreeMap<String, AuditTail>, String> {
    let parse = |names: &[String]| {
        names
            .iter()
            .map(|n| BottleName::parse(n).map_err(|e| e.to_string()))
            .collect::<Result<BTreeSet<_>, _>>()
    };
    let (bottles, read) = (parse(&names)?, parse(&read)?);
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    let state = app.state::<AppState>();
    let mut following = state.following.lock().unwrap();
    // A call that raced its window's close follows nothing: the closed
    // app must not wake for what a bottle's sidecar writes.
    if app.webview_windows().is_empty() {
        return Err("no window to follow the audit logs for".into());
    }
    let following = following.get_or_insert_with(|| Following::start(&app));
    Ok(following.follow_only(&state.home, &bottles, &read, limit))
}

/// The bottles followed for the window, and the task that follows them.
pub struct Following {
    followers: Arc<Mutex<BTreeMap<BottleName, Follower>>>,
    /// Told when the bottles followed change (their directories are
    /// watched anew).
    changed: Arc<Notify>,
    task: tauri::async_runtime::JoinHandle<()>,
}

impl Following {
    /// The task, following nothing yet.
    fn start<R: Runtime>(app: &AppHandle<R>) -> Self {
        let followers = Arc::new(Mutex::new(BTreeMap::new()));
        let changed = Arc::new(Notify::new());
        let task =
            tauri::async_runtime::spawn(follow(app.clone(), followers.clone(), changed.clone()));
        Self {
            followers,
            changed,
            task,
        }
    }

    /// Follows exactly `bottles`; the newest `limit` entries of each in
    /// `read` or not followed yet, which is followed afresh from them.
    fn follow_only(
        &self,
        home: &bottlebar_core::home::Home,
        bottles: &BTreeSet<BottleName>,
        read: &BTreeSet<BottleName>,
        limit: usize,
    ) -> BTreeMap<String, AuditTail> {
        let mut followers = self.followers.lock().unwrap();
        followers.retain(|b, _| bottles.contains(b) && !read.contains(b));
        let mut tails = BTreeMap::new();
        for bottle in bottles {
            if followers.contains_key(bottle) {
                continue;
            }
            // One line more than asked tells whether there are earlier ones.
            let (follower, read) = Follower::with_last(home, bottle, limit.saturating_add(1));
            tails.insert(bottle.to_string(), AuditTail::of(bottle, read, limit));
            followers.insert(bottle.clone(), follower);
        }
        self.changed.notify_one();
        tails
    }

    /// Follows nothing more (the window is gone).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// The task: reads what each followed bottle's sidecar wrote whenever its
/// audit directory changes, and sends each entry to the window.
async fn follow<R: Runtime>(
    app: AppHandle<R>,
    followers: Arc<Mutex<BTreeMap<BottleName, Follower>>>,
    changed: Arc<Notify>,
) {
    let home = app.state::<AppState>().home.clone();
    let mut files = DirWatch::new();
    loop {
        let arrived: Vec<BottleEventAudit> = {
            let mut followers = followers.lock().unwrap();
            // Watched before reading, so nothing written in between is missed.
            let dirs = followers
                .keys()
                .map(|b| StateDirs::new(home.state_dir(b)).audit)
                .collect();
            files.watch_only(&dirs);
            followers
                .iter_mut()
                .flat_map(|(bottle, follower)| {
                    follower.poll().into_iter().filter_map(|line| {
                        let entry = audit::parse_bytes(&line).ok()?;
                        let bottle = bottle.to_string();
                        Some(BottleEventAudit { bottle, entry })
                    })
                })
                .collect()
        };
        for event in arrived {
            let _ = app.emit("audit-entry", event);
        }
        tokio::select! {
            _ = files.changed() => {}
            _ = changed.notified() => {}
        }
        // The window went while this was being set up (the close stops
        // what it finds; this was not there yet): nothing more is read.
        if app.webview_windows().is_empty() {
            let state = app.state::<AppState>();
            state.following.lock().unwrap().take();
            return;
        }
    }
}
