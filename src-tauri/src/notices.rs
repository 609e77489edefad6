//! Notifications: raising them, recording them, and acting on what the
//! user does with them.
//!
//! A notification about one supervise request carries the four answers as
//! buttons (*Allow once*, *Allow for 1 hour*, *Always allow*, *Deny*):
//! freedesktop servers show them as buttons, macOS as an "Options" menu.
//! A click on any notification opens the window where it points (the
//! Requests view for requests), which is also the path on servers that
//! cannot show buttons. What a notification points at is kept by the app
//! (the plugin hands back the payload the app attached), never read from
//! the notification server.

use crate::{now, show_window, AppState};
use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_notification::{Action, ActionPerformed, ActionType, NotificationExt};

/// The action type of a notification about one request.
const REQUEST_ACTIONS: &str = "egress-request";

/// The buttons of a request's notification: the answer word
/// (see `requests::answer_of`) and its label.
pub const REQUEST_BUTTONS: [(&str, &str); 4] = [
    ("once", "Allow once"),
    ("hour", "Allow for 1 hour"),
    ("always", "Always allow"),
    ("deny", "Deny"),
];

/// A notification the app raised, kept so the window (and tests) can list them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NotificationRecord {
    /// When.
    pub time: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// Where a click on it opens the window (`#/requests`, …).
    pub opens: String,
    /// The answers its buttons give (empty when it has none).
    pub buttons: Vec<String>,
}

/// What a notification is about, beyond its text.
#[derive(Debug, Clone, Copy)]
pub enum About<'a> {
    /// Something to look at in the window, at this route.
    Route(&'a str),
    /// One supervise request, answerable from the notification.
    Request {
        /// Its bottle.
        bottle: &'a str,
        /// Its id.
        id: &'a str,
    },
}

/// Answers request `id` of `bottle` with an answer word (`once`, `hour`,
/// `always`, `deny`): `requests::answer_in_background`, handed in so this
/// module need not know the requests.
pub type Answerer<R> = fn(&AppHandle<R>, &str, String, String);

/// Registers the request buttons and the handler of clicks (buttons go to
/// `answer`); before any notification is raised, since the plugin reports
/// only on notifications shown after a handler exists.
pub fn listen<R: Runtime>(app: &AppHandle<R>, answer: Answerer<R>) {
    let notifications = app.notification();
    let buttons = REQUEST_BUTTONS
        .iter()
        .map(|(id, label)| {
            Action::builder(*id, *label)
                .destructive(*id == "deny")
                .build()
        })
        .collect();
    let _ = notifications.register_action_types(vec![ActionType::builder(REQUEST_ACTIONS)
        .actions(buttons)
        .build()]);
    let handle = app.clone();
    let _ = notifications.on_action(move |performed| on_action(&handle, performed, answer));
}

/// Raises a notification about `about` and records it.
pub fn notify<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str, about: About) {
    let mut builder = app.notification().builder().title(title).body(body);
    let (opens, buttons) = match about {
        About::Route(route) => (route.to_string(), vec![]),
        About::Request { bottle, id } => {
            builder = builder
                .action_type_id(REQUEST_ACTIONS)
                .extra("bottle", bottle)
                .extra("request", id);
            (
                "#/requests".to_string(),
                REQUEST_BUTTONS.iter().map(|(w, _)| w.to_string()).collect(),
            )
        }
    };
    let _ = builder.extra("opens", &opens).show();
    if let Some(state) = app.try_state::<AppState>() {
        state
            .notifications
            .lock()
            .unwrap()
            .push(NotificationRecord {
                time: now(),
                title: title.into(),
                body: body.into(),
                opens,
                buttons,
            });
    }
}

/// What the user did with a notification: a button answers its request; a
/// click opens the window where the notification points.
fn on_action<R: Runtime>(app: &AppHandle<R>, performed: &ActionPerformed, answer: Answerer<R>) {
    let extra = performed.notification().map(|n| n.extra());
    let field = |key: &str| {
        extra
            .and_then(|e| e.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let word = performed.action_id();
    match (field("bottle"), field("request")) {
        (Some(bottle), Some(id)) if REQUEST_BUTTONS.iter().any(|(w, _)| *w == word) => {
            answer(app, word, bottle, id);
        }
        _ => show_window(app, &field("opens").unwrap_or_else(|| "#/".into())),
    }
}
