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

use crate::procs::Killed;
use anyhow::{anyhow, Context, Result};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A session on a running app, and its driver (ended when dropped).
pub struct Attached {
    /// The session.
    pub client: Client,
    _driver: Killed,
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

/// A new session on the app whose inspector is at `inspector`, retried for
/// up to 45 s (the app may still be starting).
pub async fn attach(inspector: &str) -> Result<Attached> {
    let port = crate::free_port()?;
    let driver = Killed(
        Command::new("WebKitWebDriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting WebKitWebDriver (webkit2gtk-driver; scripts/setup installs it)")?,
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "webkitgtk:browserOptions".into(),
        json!({ "targetAddress": inspector }),
    );
    let client = connect(&format!("http://127.0.0.1:{port}"), caps)
        .await
        .with_context(|| format!("no WebDriver session on the app at {inspector}"))?;
    Ok(Attached {
        client,
        _driver: driver,
    })
}

/// A session from the WebDriver at `url` with `capabilities`, retried for
/// up to 45 s (the driver, or the app it starts, may still be starting; a
/// cold `scripts/test` still compiles in the background, niced, while the
/// window tests run).
pub async fn connect(
    url: &str,
    capabilities: serde_json::Map<String, serde_json::Value>,
) -> Result<Client> {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        match ClientBuilder::native()
            .capabilities(capabilities.clone())
            .connect(url)
            .await
        {
            Ok(c) => return Ok(c),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(anyhow!("{e}")),
        }
    }
}
