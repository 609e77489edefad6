//! A session bus of a test's own: a `dbus-daemon` on a socket in a
//! temporary directory, so what the app says on the bus (notifications, the
//! desktop's settings it follows) is between it and the test, never the
//! desktop the tests happen to run under.

use crate::procs::Killed;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The bus; the daemon ends and its socket goes when dropped.
pub struct SessionBus {
    /// Its address, for `DBUS_SESSION_BUS_ADDRESS` or a client's builder.
    pub address: String,
    _daemon: Killed,
    _dir: tempfile::TempDir,
}

impl SessionBus {
    /// Starts the daemon and waits (up to 10 s) for its socket.
    ///
    /// Panics when Debian's `dbus` package is missing (scripts/setup
    /// installs it): a test that needs a bus must not pass without one.
    pub fn start() -> SessionBus {
        let dir = tempfile::tempdir().expect("a directory for the bus socket");
        let socket: PathBuf = dir.path().join("bus");
        let address = format!("unix:path={}", socket.display());
        let daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", &format!("--address={address}")])
            .stdout(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian's dbus package; scripts/setup installs it)");
        let daemon = Killed(daemon);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "dbus-daemon made no socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        SessionBus {
            address,
            _daemon: daemon,
            _dir: dir,
        }
    }

    /// Serves `object` at `path` under the well-known `name` on this bus
    /// (a fake desktop service); it is served while the connection lives.
    /// Panics naming `what` when it cannot be.
    pub fn serve<T: zbus::object_server::Interface>(
        &self,
        name: &'static str,
        path: &'static str,
        object: T,
        what: &str,
    ) -> zbus::blocking::Connection {
        zbus::blocking::connection::Builder::address(self.address.as_str())
            .and_then(|b| b.name(name))
            .and_then(|b| b.serve_at(path, object))
            .and_then(|b| b.build())
            .unwrap_or_else(|e| panic!("serving {what} on the test bus: {e}"))
    }
}
