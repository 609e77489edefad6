//! The desktop portal's settings, served by a test on its own session bus
//! (`session_bus`): the light/dark choice the app follows, which the test
//! reads back from the app and changes as a user changing their desktop's
//! style would (the `SettingChanged` signal a real portal sends).

use crate::session_bus::SessionBus;
use std::sync::{Arc, Mutex};
use zbus::zvariant::{OwnedValue, Value};

const NAME: &str = "org.freedesktop.portal.Desktop";
const PATH: &str = "/org/freedesktop/portal/desktop";
const INTERFACE: &str = "org.freedesktop.portal.Settings";
const APPEARANCE: &str = "org.freedesktop.appearance";
const COLOR_SCHEME: &str = "color-scheme";

/// The portal's `color-scheme` values (the portal's spec).
pub mod scheme {
    /// No preference.
    pub const DEFAULT: u32 = 0;
    /// Prefer dark.
    pub const DARK: u32 = 1;
    /// Prefer light.
    pub const LIGHT: u32 = 2;
}

/// Which version of the settings interface the portal speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Version 1: only `Read`, whose value comes wrapped in a second variant.
    One,
    /// Version 2: `ReadOne` (one variant) and `Read`, as portals since 1.16.
    Two,
}

struct Settings {
    scheme: Arc<Mutex<u32>>,
    version: Version,
}

impl Settings {
    fn value(&self, namespace: &str, key: &str) -> zbus::fdo::Result<u32> {
        if (namespace, key) == (APPEARANCE, COLOR_SCHEME) {
            Ok(*self.scheme.lock().unwrap())
        } else {
            Err(zbus::fdo::Error::Failed(format!(
                "no setting {namespace} {key}"
            )))
        }
    }
}

#[zbus::interface(name = "org.freedesktop.portal.Settings")]
impl Settings {
    fn read_one(&self, namespace: String, key: String) -> zbus::fdo::Result<OwnedValue> {
        if self.version == Version::One {
            return Err(zbus::fdo::Error::UnknownMethod("ReadOne".into()));
        }
        Ok(OwnedValue::from(self.value(&namespace, &key)?))
    }

    /// The deprecated read: its value is a variant holding the variant.
    fn read(&self, namespace: String, key: String) -> zbus::fdo::Result<OwnedValue> {
        let inner = Value::from(self.value(&namespace, &key)?);
        OwnedValue::try_from(Value::Value(Box::new(inner)))
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
    }

    #[zbus(property)]
    fn version(&self) -> u32 {
        match self.version {
            Version::One => 1,
            Version::Two => 2,
        }
    }
}

/// The portal on a bus; it leaves the bus when dropped.
pub struct DesktopPortal {
    scheme: Arc<Mutex<u32>>,
    connection: zbus::blocking::Connection,
}

impl DesktopPortal {
    /// Serves the portal, with `scheme` as the desktop's choice, on `bus`.
    pub fn serve(bus: &SessionBus, scheme: u32, version: Version) -> DesktopPortal {
        let shared = Arc::new(Mutex::new(scheme));
        let settings = Settings {
            scheme: shared.clone(),
            version,
        };
        let connection = bus.serve(NAME, PATH, settings, "the desktop portal");
        DesktopPortal {
            scheme: shared,
            connection,
        }
    }

    /// The user chooses `scheme`: the portal keeps it and announces it.
    pub fn set_scheme(&self, scheme: u32) {
        *self.scheme.lock().unwrap() = scheme;
        self.announce(APPEARANCE, COLOR_SCHEME, scheme);
    }

    /// Announces a change of another setting (`namespace`, `key`), which
    /// must change nothing the app shows.
    pub fn announce(&self, namespace: &str, key: &str, value: u32) {
        self.connection
            .emit_signal(
                None::<&str>,
                PATH,
                INTERFACE,
                "SettingChanged",
                &(namespace, key, Value::from(value)),
            )
            .expect("emitting SettingChanged");
    }
}
