//! WebDriver sessions on an app already running: a WebKitWebDriver of our
//! own, attached to the inspector the app was started with
//! (`WEBKIT_INSPECTOR_SERVER`, as WebDriver sets it for an app it starts,
//! with `TAURI_WEBVIEW_AUTOMATION=true`).
//!
//! Used where a session has to begin after the app did: the idle
//! measurement closes the window of an app it started itself, and the
//! window tests drive a window made after WebKit ended the first session
//! (it does when the network process it began with ends, which the idle
//! app makes it do).
//!
//! [`Driver`] starts a WebDriver server with its output kept for the error
//! of a session that never comes; [`webkit_driver`] starts Debian's
//! WebKitWebDriver, which both these sessions and the window tests' (an app
//! it starts itself, [`launch_capabilities`]) are driven through. No
//! tauri-driver: on Linux it only renames the capabilities below and
//! forwards every request to a WebKitWebDriver of its own.

use crate::procs::Killed;
use anyhow::{anyhow, Context, Result};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A session on a running app, and its driver (ended when dropped).
pub struct Attached {
    /// The session.
    pub client: Client,
    _driver: Driver,
}

/// A WebDriver server a test started (WebKitWebDriver; any server in tests),
/// killed when dropped. Its output goes to a log file rather than to the
/// test's: a session that never comes says why only there, so
/// [`Driver::session`]'s error carries its end.
pub struct Driver {
    /// The server's process.
    pub process: Killed,
    what: String,
    url: String,
    log: PathBuf,
}

/// How much of a driver's output a failed session's error carries.
const LOG_TAIL: u64 = 4000;

impl Driver {
    /// Starts `command`, a WebDriver server listening on `port` (`what`
    /// names it in errors, with how to install it).
    pub fn start(mut command: Command, what: &str, port: u16) -> Result<Driver> {
        let log = std::env::temp_dir().join(format!("bottlebar-webdriver-{port}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let process = command
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        Ok(Driver {
            process: Killed(process),
            what: what.to_string(),
            url: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    /// A session with `capabilities`, asked for until one comes, for up to
    /// 45 s (the driver, or the app it starts, may still be starting; a cold
    /// `scripts/test` still compiles in the background, niced, while the
    /// window tests run), or until the driver exits. When none comes, the
    /// error says which, and ends with the last of the driver's output.
    pub async fn session(&mut self, capabilities: Map<String, Value>) -> Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(45);
        let error = loop {
            // Plain HTTP: every driver here listens on loopback.
            let asked = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&self.url)
                .await;
            match asked {
                Ok(c) => return Ok(c),
                Err(e) => {
                    if let Ok(Some(status)) = self.process.0.try_wait() {
                        break format!("{e}; the driver exited ({status})");
                    }
                    if Instant::now() >= deadline {
                        break format!("{e}; the driver still runs, 45 s on");
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        Err(anyhow!(
            "no WebDriver session from {} at {}: {error}; the last of its output:\n{}",
            self.what,
            self.url,
            self.output_tail()
        ))
    }

    /// The last [`LOG_TAIL`] bytes of the server's output (a character cut
    /// at the start reads as U+FFFD).
    fn output_tail(&self) -> String {
        let mut tail = Vec::new();
        let read = std::fs::File::open(&self.log).and_then(|mut f| {
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)))?;
            f.read_to_end(&mut tail)
        });
        match read {
            Ok(_) => String::from_utf8_lossy(&tail).into_owned(),
            Err(e) => format!("(unreadable: {e})"),
        }
    }
}

impl Drop for Driver {
    /// Ends what the driver started too: killed alone, it would leave its
    /// app running, which the next suite would find beside its own.
    fn drop(&mut self) {
        let started = crate::procs::tree(self.process.0.id());
        for pid in started.iter().skip(1).rev() {
            // SAFETY: kill has no memory preconditions; a pid gone since
            // it was read is an error ignored.
            unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The environment that makes an app started with it open to [`attach`]:
/// automation allowed, its inspector on `127.0.0.1:port`.
pub fn automation_env(port: u16) -> [(&'static str, String); 2] {
    [
        ("TAURI_WEBVIEW_AUTOMATION", "true".into()),
        ("WEBKIT_INSPECTOR_SERVER", format!("127.0.0.1:{port}")),
    ]
}

/// The inspector address the process `pid` was started with.
pub fn inspector_of(pid: u32) -> Result<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ"))
        .with_context(|| format!("reading the environment of process {pid}"))?;
    environ
        .split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(b"WEBKIT_INSPECTOR_SERVER="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or_else(|| {
            anyhow!("process {pid} has no WEBKIT_INSPECTOR_SERVER: not started for WebDriver")
        })
}

/// Debian's WebKitWebDriver on a free loopback port, with `env` for the
/// app a session starts (it inherits the driver's environment).
pub fn webkit_driver<'a>(env: impl IntoIterator<Item = (&'a str, &'a OsStr)>) -> Result<Driver> {
    let port = crate::free_port()?;
    let mut command = Command::new("WebKitWebDriver");
    command
        .arg(format!("--port={port}"))
        .arg("--host=local")
        // What makes a Tauri 2 app's webview take automation.
        .env("TAURI_WEBVIEW_AUTOMATION", "true")
        .envs(env);
    Driver::start(
        command,
        "WebKitWebDriver (webkit2gtk-driver; scripts/setup installs it)",
        port,
    )
}

/// The capabilities of a session that starts the Tauri app `binary` with
/// `args`: what tauri-driver turns its `tauri:options` into on Linux.
pub fn launch_capabilities(binary: &Path, args: &[&str]) -> Map<String, Value> {
    let mut caps = Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert(
        "webkitgtk:browserOptions".into(),
        json!({ "binary": binary, "args": args }),
    );
    caps
}

/// A new session on the app whose inspector is at `inspector`, retried for
/// up to 45 s (the app may still be starting).
pub async fn attach(inspector: &str) -> Result<Attached> {
    let mut driver = webkit_driver([])?;
    let mut caps = Map::new();
    caps.insert(
        "webkitgtk:browserOptions".into(),
        json!({ "targetAddress": inspector }),
    );
    let client = driver
        .session(caps)
        .await
        .with_context(|| format!("attaching to the app whose inspector is at {inspector}"))?;
    Ok(Attached {
        client,
        _driver: driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A driver that dies says so at once, with its last words, instead of
    /// being asked for a session until the deadline.
    #[tokio::test]
    async fn a_driver_that_exits_is_reported_at_once_with_its_output() {
        let port = crate::free_port().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo starting; echo cannot open display >&2; exit 3"]);
        let mut driver = Driver::start(command, "a driver that fails", port).unwrap();
        let started = Instant::now();
        let e = driver.session(Map::new()).await.unwrap_err();
        let message = format!("{e:#}");
        assert!(started.elapsed() < Duration::from_secs(10), "{message}");
        assert!(message.contains("a driver that fails"), "{message}");
        assert!(message.contains("exited (exit status: 3)"), "{message}");
        assert!(
            message.contains("starting\ncannot open display"),
            "{message}"
        );
    }

    /// Only the end of a long output is carried.
    #[test]
    fn the_output_tail_is_the_end_of_the_log() {
        let port = crate::free_port().unwrap();
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "head -c 10000 /dev/zero | tr '\\0' a; echo; echo the end",
        ]);
        let mut driver = Driver::start(command, "a chatty driver", port).unwrap();
        driver.process.0.wait().unwrap();
        let tail = driver.output_tail();
        assert_eq!(tail.len() as u64, LOG_TAIL, "{tail}");
        assert!(tail.ends_with("a\nthe end\n"), "{tail}");
    }
}
