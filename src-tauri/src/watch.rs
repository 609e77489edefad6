//! Keeps bottle states current without polling while idle: Docker's event
//! stream (`docker events`, filtered to Bottlebar's labelled containers)
//! triggers a refresh; Apple's runtime has no event stream, so there a slow
//! refresh runs instead. A bottle that stops while nothing of Bottlebar's
//! was launching or stopping it raises a notification.

use crate::commands::refresh;
use crate::{notify, AppState};
use bottlebar_core::backend::{self, find_engine};
use bottlebar_core::manifest::BackendKind;
use bottlebar_core::ops::BottleState;
use std::collections::BTreeSet;
use std::time::Duration;
use tauri::{AppHandle, Manager, Runtime};
use tokio::io::AsyncBufReadExt;

/// How often states are re-read where the engine has no event stream.
const APPLE_REFRESH: Duration = Duration::from_secs(10);
/// Events arrive in bursts (a launch makes several); one refresh per burst.
const DEBOUNCE: Duration = Duration::from_millis(400);

pub fn start<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        // Reconcile at start: bottles may have run while the app was closed.
        check(&app).await;
        match backend::default_backend() {
            BackendKind::Docker => docker_events(&app).await,
            BackendKind::Apple => loop {
                tokio::time::sleep(APPLE_REFRESH).await;
                check(&app).await;
            },
        }
    });
}

async fn docker_events<R: Runtime>(app: &AppHandle<R>) {
    loop {
        let Ok(engine) = find_engine(BackendKind::Docker) else {
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        };
        let child = tokio::process::Command::new(&engine.program)
            .args([
                "events",
                "--format",
                "{{.Status}}",
                "--filter",
                "type=container",
                "--filter",
                "label=bottlebar.bottle",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let Ok(mut child) = child else {
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        };
        let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
        while let Ok(Some(_)) = lines.next_line().await {
            // Drain the rest of the burst, then refresh once.
            while let Ok(Ok(Some(_))) = tokio::time::timeout(DEBOUNCE, lines.next_line()).await {}
            check(app).await;
        }
        // The daemon went away; try again later.
        let _ = child.wait().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        check(app).await;
    }
}

async fn check<R: Runtime>(app: &AppHandle<R>) {
    let listing = refresh(app).await;
    let state = app.state::<AppState>();
    let now_running: BTreeSet<String> = listing
        .bottles
        .iter()
        .filter(|b| b.state == BottleState::Running)
        .map(|b| b.name.clone())
        .collect();
    let stopped: Vec<String> = {
        let mut running = state.running.lock().unwrap();
        let busy = state.busy.lock().unwrap();
        let gone = running
            .difference(&now_running)
            .filter(|n| !busy.contains(*n))
            .cloned()
            .collect();
        *running = now_running;
        gone
    };
    for name in stopped {
        let why = listing
            .bottles
            .iter()
            .find(|b| b.name == name)
            .and_then(|b| b.problem.clone())
            .unwrap_or_else(|| "it is no longer running".into());
        notify(app, &format!("Bottle {name} stopped unexpectedly"), &why);
    }
}
