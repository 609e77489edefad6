//! Keeps bottle states current without polling while idle: Docker's event
//! stream (filtered to this home's containers, so another home's bottles
//! wake nothing; read from the daemon's socket, or `docker events` where
//! the CLI reaches it otherwise) triggers a refresh; Apple's runtime has no
//! event stream, so there a slow refresh runs instead. A bottle that stops
//! while nothing of Bottlebar's was launching or stopping it raises a
//! notification.

use crate::{notify, refresh, AppState};
use bottlebar_core::backend::docker::EventScope;
use bottlebar_core::backend::{self, find_engine};
use bottlebar_core::manifest::BackendKind;
use bottlebar_core::ops::BottleState;
use std::collections::BTreeSet;
use std::time::Duration;
use tauri::{AppHandle, Manager, Runtime};

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
    let mut reopened = false;
    loop {
        let Ok(engine) = find_engine(BackendKind::Docker) else {
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        };
        let scope = event_scope(app);
        let Some(opened) = engine.events(&scope).await else {
            return;
        };
        let Ok(mut events) = opened else {
            tokio::time::sleep(Duration::from_secs(30)).await;
            continue;
        };
        // What changed while no stream was open.
        if reopened {
            check(app).await;
        }
        reopened = true;
        let ended = loop {
            if events.next().await.is_none() {
                break true;
            }
            // Drain the rest of the burst, then refresh once.
            while let Ok(Some(_)) = tokio::time::timeout(DEBOUNCE, events.next()).await {}
            check(app).await;
            // A bottle adopted, or relabelled by a relaunch: the stream
            // must carry what this home now holds.
            if event_scope(app) != scope {
                break false;
            }
        };
        events.close().await;
        if ended {
            // The daemon went away; try again later.
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
}

/// The containers whose events concern this home: its own, by its id,
/// unless some of its bottles' resources carry no home label (then every
/// Bottlebar container's), or its id cannot be read.
fn event_scope<R: Runtime>(app: &AppHandle<R>) -> EventScope {
    let state = app.state::<AppState>();
    let adopted = !state.listing.lock().unwrap().adopted.is_empty();
    scope_for(state.home.id().ok().map(|id| id.to_string()), adopted)
}

fn scope_for(home_id: Option<String>, adopted: bool) -> EventScope {
    match home_id {
        Some(id) if !adopted => EventScope::Home(id),
        _ => EventScope::AllBottles,
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
        if *running != now_running {
            *running = now_running;
            state.running_changed.notify_one();
        }
        gone
    };
    for name in stopped {
        let why = listing
            .bottles
            .iter()
            .find(|b| b.name == name)
            .and_then(|b| b.problem.clone())
            .unwrap_or_else(|| "it is no longer running".into());
        notify(
            app,
            &format!("Bottle {name} stopped unexpectedly"),
            &why,
            &format!("#/bottle/{name}"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_home_with_adopted_bottles_or_no_id_hears_every_bottle() {
        assert_eq!(
            scope_for(Some("h-1".into()), false),
            EventScope::Home("h-1".into())
        );
        assert_eq!(scope_for(Some("h-1".into()), true), EventScope::AllBottles);
        assert_eq!(scope_for(None, false), EventScope::AllBottles);
    }
}
