//! Supervise requests in the app. A watcher reads this home's requests (the
//! proposals sidecars file, the decisions the core keeps) when a running
//! bottle's request or decision files change (file notifications, no
//! polling), when the bottles running change, and when a pending request's
//! wait runs out; it announces changes as `requests-changed`, keeps the
//! pending ones for the tray, and raises a notification for new proposals
//! (those seen in one look coalesced into one). Answers go through
//! `bottlebar_core::ops::decide`, as `app`.
//!
//! A notification about one request carries the answers as buttons
//! ([`notices`]); several new at once are one notification that opens the
//! Requests view.

use crate::notices::{self, About};
use crate::{notify, AppState};
use bottlebar_core::dir_watch::DirWatch;
use bottlebar_core::home::Home;
use bottlebar_core::name::BottleName;
use bottlebar_core::ops;
use bottlebar_core::state::StateDirs;
use bottlebar_core::supervise::Request;
use bottlebar_policy::supervise::Answer;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// The longest reason a notification or menu item shows.
const REASON_CHARS: usize = 80;

/// Starts the watcher.
pub fn start<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        let mut files = DirWatch::new();
        loop {
            let state = app.state::<AppState>();
            let running = state.running.lock().unwrap().clone();
            files.watch_only(&request_dirs(&state.home, &running));
            let requests = if running.is_empty() {
                Vec::new()
            } else {
                look(&app)
            };
            let wait_ends = next_wait_end(&requests);
            tokio::select! {
                _ = files.changed() => {}
                _ = state.running_changed.notified() => {}
                _ = tokio::time::sleep(wait_ends.unwrap_or_default()), if wait_ends.is_some() => {}
            }
        }
    });
}

/// Where running bottles' requests change: each one's request and
/// decision directories.
fn request_dirs(home: &Home, running: &BTreeSet<String>) -> BTreeSet<PathBuf> {
    running
        .iter()
        .filter_map(|name| BottleName::parse(name).ok())
        .flat_map(|bottle| {
            let dirs = StateDirs::new(home.state_dir(&bottle));
            [dirs.requests, dirs.decisions]
        })
        .collect()
}

/// When the first pending request stops waiting (a second after its
/// countdown ends, so that it has).
fn next_wait_end(requests: &[Request]) -> Option<Duration> {
    requests
        .iter()
        .filter_map(|r| r.seconds_left)
        .min()
        .map(|s| Duration::from_secs(s + 1))
}

/// Reads the requests; announces them if anything but the countdowns
/// changed, and notifies of proposals not seen before.
pub fn look<R: Runtime>(app: &AppHandle<R>) -> Vec<Request> {
    let state = app.state::<AppState>();
    let requests = ops::requests(&state.home, None).unwrap_or_default();
    let pending: BTreeSet<String> = requests
        .iter()
        .filter(|r| r.pending)
        .map(|r| r.proposal.id.clone())
        .collect();
    let new: Vec<&Request> = {
        let mut seen = state.seen_pending.lock().unwrap();
        let new = requests
            .iter()
            .filter(|r| r.pending && !seen.contains(&r.proposal.id))
            .collect();
        seen.extend(pending.iter().cloned());
        new
    };
    let changed = {
        let mut kept = state.requests.lock().unwrap();
        let changed = signature(&kept) != signature(&requests);
        *kept = requests.clone();
        changed
    };
    if changed {
        let _ = app.emit("requests-changed", &requests);
    }
    match new.as_slice() {
        [] => {}
        [r] => notices::notify(
            app,
            &title(r),
            &body(r),
            About::Request {
                bottle: &r.proposal.bottle,
                id: &r.proposal.id,
            },
        ),
        many => notify(
            app,
            &format!("{} new egress requests", many.len()),
            &many.iter().map(|r| title(r)).collect::<Vec<_>>().join("\n"),
            "#/requests",
        ),
    }
    requests
}

/// What tells two readings apart, less the countdowns.
fn signature(requests: &[Request]) -> Vec<(String, bool, bool)> {
    requests
        .iter()
        .map(|r| (r.proposal.id.clone(), r.pending, r.decision.is_some()))
        .collect()
}

/// "demo asks for api.example.com:443".
pub fn title(r: &Request) -> String {
    format!(
        "{} asks for {}:{}",
        r.proposal.bottle, r.proposal.scope.host, r.proposal.scope.port
    )
}

/// What the request reaches beyond its host (methods, path prefixes), the
/// agent's reason (its own words, shortened, on one line) and where to
/// answer.
fn body(r: &Request) -> String {
    let scope = &r.proposal.scope;
    let list = |items: &[String], any: &str| match items {
        [] => any.to_string(),
        items => short_reason(&items.join(", ")),
    };
    format!(
        "{} · {}\n“{}”\nAnswer here, from the menu-bar icon, or in Bottlebar → Requests.",
        list(&scope.methods, "any method"),
        list(&scope.paths, "any path"),
        short_reason(&r.proposal.reason)
    )
}

/// The agent's reason on one line, at most [`REASON_CHARS`] characters,
/// for a notification or a menu item. Some notification servers read
/// `<b>`-style markup in a body and some menus read `&` or `_` as an
/// accelerator: those characters are swapped for look-alikes, so the
/// agent's words stay words.
pub fn short_reason(reason: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| match c {
            c if c.is_control() => ' ',
            '<' => '‹',
            '>' => '›',
            '&' => '＆',
            '_' => '＿',
            c => c,
        })
        .collect();
    if one_line.chars().count() > REASON_CHARS {
        let cut: String = one_line.chars().take(REASON_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

/// The answer a button or menu item names: `once`, `hour`, `always`, or
/// `deny` (with the user's note, if any).
pub fn answer_of(kind: &str, note: Option<String>) -> Result<Answer, String> {
    Ok(match kind {
        "once" => Answer::Once,
        "hour" => Answer::For { seconds: 3600 },
        "always" => Answer::Always,
        "deny" => Answer::Deny {
            note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
        },
        other => {
            return Err(format!(
                "`{other}` is not an answer (once, hour, always, deny)"
            ))
        }
    })
}

/// Answers request `id` of bottle `bottle`, then reads the requests and the
/// states again (so the window and the tray follow at once).
pub async fn answer<R: Runtime>(
    app: &AppHandle<R>,
    bottle: &str,
    id: &str,
    answer: Answer,
) -> Result<Request, String> {
    let state = app.state::<AppState>();
    let done = ops::decide(
        &state.home,
        bottle,
        id,
        answer,
        "app",
        state.runner.as_ref(),
    )
    .await
    .map_err(|e| e.to_string());
    look(app);
    // The bottle's grants changed: the window's bottle pages show them.
    crate::refresh(app).await;
    done
}

/// Answers request `id` of `bottle` with the answer `word` names, on a
/// task of its own (for a menu item or a notification button); a failure
/// is a notification.
pub fn answer_in_background<R: Runtime>(
    app: &AppHandle<R>,
    word: &str,
    bottle: String,
    id: String,
) {
    let (app, word) = (app.clone(), word.to_string());
    tauri::async_runtime::spawn(async move {
        let done = match answer_of(&word, None) {
            Ok(a) => answer(&app, &bottle, &id, a).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            notify(
                &app,
                &format!("Cannot answer request {id}"),
                &e,
                "#/requests",
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_reason_stays_text_and_short() {
        let r = short_reason("<b>bold</b> & _x_\n<a href='file:///'>link</a>");
        assert!(!r.contains(['<', '>', '&', '_', '\n']), "{r}");
        assert!(r.starts_with("‹b›bold‹/b› ＆ ＿x＿ ‹a"), "{r}");
        let long = short_reason(&"y".repeat(500));
        assert_eq!(long.chars().count(), REASON_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn answers_are_named() {
        assert_eq!(answer_of("hour", None), Ok(Answer::For { seconds: 3600 }));
        assert_eq!(
            answer_of("deny", Some("  ".into())),
            Ok(Answer::Deny { note: None })
        );
        assert!(answer_of("sure", None).unwrap_err().contains("sure"));
    }
}
