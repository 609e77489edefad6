//! The desktop's light or dark style, followed on Linux.
//!
//! Desktops keep the user's choice in the desktop portal's `color-scheme`
//! setting (GNOME, KDE and others serve it on the session bus). tao can
//! follow it itself (tauri's default `dbus` feature), but it does so from a
//! thread that wakes every 5 s for the app's life, and with a blocking bus
//! call each time a window is made; an app idling in the menu bar must not
//! poll (`docs/performance.md`). So that feature is off, and here the
//! setting is read once and then followed through the portal's
//! `SettingChanged` signal, on the app's async runtime: nothing runs until
//! the desktop says the style changed.
//!
//! The style reaches the page through GTK's "prefer dark" setting, which
//! WebKit reports as `prefers-color-scheme` (`ui/style.css` follows it).
//! On macOS the system's appearance reaches the window without help.

use tauri::{AppHandle, Runtime, Theme};
use zbus::message::Type;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, MatchRule, Message, MessageStream};

use futures_util::StreamExt;

const PORTAL: &str = "org.freedesktop.portal.Desktop";
const PATH: &str = "/org/freedesktop/portal/desktop";
const SETTINGS: &str = "org.freedesktop.portal.Settings";
const APPEARANCE: &str = "org.freedesktop.appearance";
const COLOR_SCHEME: &str = "color-scheme";

/// Follows the desktop's style for the app's life, from a task of its own.
/// Without a session bus or a portal the app keeps GTK's own theme (light
/// unless the GTK theme itself is dark), as it would without this.
pub fn follow<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let connection = match session_bus().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("bottlebar: not following the desktop's light/dark style: {e}");
                return;
            }
        };
        let mut applied = None;
        let apply = |theme: Option<Theme>| {
            // The portal may repeat a value; GTK redraws on every set.
            if applied != Some(theme) {
                applied = Some(theme);
                app.set_theme(theme);
            }
        };
        if let Err(e) = follow_scheme(&connection, apply).await {
            eprintln!("bottlebar: stopped following the desktop's light/dark style: {e}");
        }
    });
}

/// The session bus, its tasks run on the app's runtime rather than on a
/// thread of zbus's own (`Connection::executor`). Its I/O waits in
/// async-io's reactor thread, which sleeps until the socket has something.
async fn session_bus() -> zbus::Result<Connection> {
    let connection = zbus::connection::Builder::session()?
        .internal_executor(false)
        .build()
        .await?;
    let ticking = connection.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            ticking.executor().tick().await;
        }
    });
    Ok(connection)
}

/// Calls `apply` with the desktop's style as it is, then with each change,
/// for as long as `connection` lasts. `None`: the user has no preference
/// (GTK's theme decides).
///
/// The signal is subscribed to before the setting is read, so a change in
/// between is not missed. Any process of the user's on the session bus
/// could send such a signal; what it could change is only this style.
pub async fn follow_scheme(
    connection: &Connection,
    mut apply: impl FnMut(Option<Theme>),
) -> zbus::Result<()> {
    let changes = MatchRule::builder()
        .msg_type(Type::Signal)
        .interface(SETTINGS)?
        .member("SettingChanged")?
        .path(PATH)?
        .arg(0, APPEARANCE)?
        .arg(1, COLOR_SCHEME)?
        .build();
    let mut changes = MessageStream::for_match_rule(changes, connection, Some(8)).await?;
    // No portal (or none yet) is not an error: its signal may come later.
    if let Some(theme) = read_scheme(connection).await {
        apply(theme);
    }
    while let Some(message) = changes.next().await {
        if let Some(theme) = changed_scheme(&message?) {
            apply(theme);
        }
    }
    Ok(())
}

/// The portal's current `color-scheme`: `ReadOne` (version 2), else the
/// older `Read`.
async fn read_scheme(connection: &Connection) -> Option<Option<Theme>> {
    for method in ["ReadOne", "Read"] {
        let reply = connection
            .call_method(
                Some(PORTAL),
                PATH,
                Some(SETTINGS),
                method,
                &(APPEARANCE, COLOR_SCHEME),
            )
            .await;
        if let Ok(reply) = reply {
            let value: OwnedValue = reply.body().deserialize().ok()?;
            return theme_of(&value);
        }
    }
    None
}

/// The style a `SettingChanged` signal announces, if it is the
/// `color-scheme` setting's (the bus filters by arguments, but a match rule
/// is the daemon's word, and a malformed body is ignored, not obeyed).
fn changed_scheme(message: &Message) -> Option<Option<Theme>> {
    let (namespace, key, value): (String, String, OwnedValue) =
        message.body().deserialize().ok()?;
    if (namespace.as_str(), key.as_str()) != (APPEARANCE, COLOR_SCHEME) {
        return None;
    }
    theme_of(&value)
}

/// A `color-scheme` value as a theme: 1 prefers dark, 2 prefers light, and
/// 0 (or a value a later portal adds) is no preference. `None` for a value
/// that is not a number at all. Older portals wrap it in a second variant.
fn theme_of(value: &Value) -> Option<Option<Theme>> {
    match value {
        Value::Value(inner) => theme_of(inner),
        Value::U32(1) => Some(Some(Theme::Dark)),
        Value::U32(2) => Some(Some(Theme::Light)),
        Value::U32(_) => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottlebar_e2e::desktop_portal::{scheme, DesktopPortal, Version};
    use bottlebar_e2e::session_bus::SessionBus;
    use std::time::Duration;
    use tokio::sync::mpsc;

    #[test]
    fn scheme_values_are_read_as_the_portal_defines_them() {
        assert_eq!(theme_of(&Value::U32(1)), Some(Some(Theme::Dark)));
        assert_eq!(theme_of(&Value::U32(2)), Some(Some(Theme::Light)));
        assert_eq!(theme_of(&Value::U32(0)), Some(None));
        assert_eq!(theme_of(&Value::U32(7)), Some(None));
        let wrapped = Value::Value(Box::new(Value::U32(1)));
        assert_eq!(theme_of(&wrapped), Some(Some(Theme::Dark)));
        assert_eq!(theme_of(&Value::from("dark")), None);
        assert_eq!(theme_of(&Value::I32(1)), None);
    }

    /// Follows the portal on `bus` into a channel.
    async fn follower(bus: &SessionBus) -> mpsc::UnboundedReceiver<Option<Theme>> {
        let connection = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap();
        let (sent, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            follow_scheme(&connection, |theme| sent.send(theme).unwrap())
                .await
                .unwrap();
        });
        received
    }

    async fn next(themes: &mut mpsc::UnboundedReceiver<Option<Theme>>) -> Option<Theme> {
        tokio::time::timeout(Duration::from_secs(10), themes.recv())
            .await
            .expect("no style within 10 s")
            .expect("the follower ended")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_style_is_read_then_followed_and_other_settings_are_ignored() {
        let bus = SessionBus::start();
        let portal = DesktopPortal::serve(&bus, scheme::DARK, Version::Two);
        let mut themes = follower(&bus).await;
        assert_eq!(next(&mut themes).await, Some(Theme::Dark));

        portal.announce("org.gnome.desktop.interface", "gtk-theme", 2);
        portal.announce(APPEARANCE, "accent-color", 2);
        portal.set_scheme(scheme::LIGHT);
        // Signals arrive in order: had either other setting been taken
        // for the style, it would come first.
        assert_eq!(next(&mut themes).await, Some(Theme::Light));
        portal.set_scheme(scheme::DEFAULT);
        assert_eq!(next(&mut themes).await, None);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_version_one_portal_is_read_through_its_wrapped_value() {
        let bus = SessionBus::start();
        let _portal = DesktopPortal::serve(&bus, scheme::DARK, Version::One);
        let mut themes = follower(&bus).await;
        assert_eq!(next(&mut themes).await, Some(Theme::Dark));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_portal_that_comes_later_is_followed_from_its_first_change() {
        let bus = SessionBus::start();
        let mut themes = follower(&bus).await;
        // Nothing to read: no portal on the bus yet.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(themes.try_recv().is_err());
        let portal = DesktopPortal::serve(&bus, scheme::LIGHT, Version::Two);
        portal.set_scheme(scheme::DARK);
        assert_eq!(next(&mut themes).await, Some(Theme::Dark));
    }
}
