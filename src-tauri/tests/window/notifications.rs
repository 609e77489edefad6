//! A freedesktop notification server of the test's own, on a private session
//! bus: it records every notification the app sends (title, body, buttons)
//! and clicks them as a user would (the `ActionInvoked` signal a real server
//! sends), so the window tests see what a desktop shows and press its
//! buttons.

use bottlebar_e2e::session_bus::SessionBus;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zbus::zvariant::OwnedValue;

const PATH: &str = "/org/freedesktop/Notifications";
const INTERFACE: &str = "org.freedesktop.Notifications";

/// A notification as the server received it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The server's id for it.
    pub id: u32,
    /// Its title.
    pub summary: String,
    /// Its text.
    pub body: String,
    /// Its actions, as `[key, label, key, label, …]` (the spec's form).
    pub actions: Vec<String>,
}

impl Shown {
    /// The action keys it offers.
    pub fn keys(&self) -> Vec<&str> {
        self.actions.iter().step_by(2).map(String::as_str).collect()
    }
}

/// The server's object: records what it is sent.
struct Server {
    shown: Arc<Mutex<Vec<Shown>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &mut self,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut shown = self.shown.lock().unwrap();
        let id = shown.len() as u32 + 1;
        shown.push(Shown {
            id,
            summary,
            body,
            actions,
        });
        id
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn close_notification(&self, _id: u32) {}

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "bottlebar-test".into(),
            "bottlebar".into(),
            "1".into(),
            "1.2".into(),
        )
    }
}

/// The server on a bus of its own; both end when dropped.
pub struct Notifications {
    /// The bus address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
    shown: Arc<Mutex<Vec<Shown>>>,
    connection: zbus::blocking::Connection,
    bus: SessionBus,
}

impl Notifications {
    /// Starts a session bus and the server on it.
    pub fn start() -> Notifications {
        let bus = SessionBus::start();
        let shown = Arc::new(Mutex::new(Vec::new()));
        let server = Server {
            shown: shown.clone(),
        };
        let connection = bus.serve(INTERFACE, PATH, server, "the notification server");
        Notifications {
            address: bus.address.clone(),
            shown,
            connection,
            bus,
        }
    }

    /// The bus, for other servers a test puts beside this one.
    pub fn bus(&self) -> &SessionBus {
        &self.bus
    }

    /// Everything shown so far.
    pub fn shown(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }

    /// Waits up to `secs` for a notification titled `summary` newer than
    /// the one with id `after` (0: any).
    pub async fn wait_for(&self, summary: &str, after: u32, secs: u64) -> Shown {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let shown = self.shown().into_iter();
            if let Some(s) = shown
                .filter(|s| s.id > after)
                .find(|s| s.summary == summary)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no notification `{summary}` reached the server: {:?}",
                self.shown()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks action `key` of notification `id` (`default`: the
    /// notification itself).
    pub fn click(&self, id: u32, key: &str) {
        self.connection
            .emit_signal(None::<&str>, PATH, INTERFACE, "ActionInvoked", &(id, key))
            .expect("emitting ActionInvoked");
    }
}
