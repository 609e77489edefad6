//! `bottle up NAME`: launch, showing each step; Ctrl-C removes what the
//! launch created.

use super::EXIT_ISOLATION_LEAK;
use crate::args::Backend;
use crate::progress::with_events;
use anyhow::Result;
use bottlebar_core::events::Events;
use bottlebar_core::home::Home;
use bottlebar_core::ops::{self, UpOptions, UpOutcome};
use bottlebar_core::runner::ProcessRunner;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(
    home: &Home,
    name: &str,
    backend: Option<Backend>,
    rebuild: bool,
    json: bool,
    runner: Arc<ProcessRunner>,
) -> Result<ExitCode> {
    let opts = options(backend, rebuild);
    let (home2, name2, runner2) = (home.clone(), name.to_string(), runner.clone());
    let launching = Arc::new(AtomicBool::new(false));
    let up = with_events(json, Some(launching.clone()), move |events| async move {
        ops::up(&home2, &name2, opts, runner2, &events).await
    });
    let result = tokio::select! {
        r = up => r?,
        _ = tokio::signal::ctrl_c() => {
            let started = launching.load(Ordering::SeqCst);
            return interrupted(home, name, backend, started, runner.as_ref()).await;
        }
    };
    match result {
        Ok(UpOutcome::Launched {
            sidecar_ip,
            duration_ms,
        }) if !json => println!(
            "bottle `{name}` is up in {:.1}s (sidecar {sidecar_ip}); `bottle shell {name}` opens a shell",
            duration_ms as f64 / 1000.0
        ),
        Ok(UpOutcome::AlreadyUp { sidecar_ip, .. }) if !json => println!(
            "bottle `{name}` is already up (sidecar {})",
            sidecar_ip.unwrap_or_else(|| "?".into())
        ),
        Ok(_) => {}
        Err(e @ ops::OpError::IsolationLeak { .. }) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_ISOLATION_LEAK));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `up`'s and `build`'s options from their flags (the build inputs found
/// beside the binary).
pub(super) fn options(backend: Option<Backend>, rebuild: bool) -> UpOptions {
    UpOptions {
        backend: backend.map(Into::into),
        inputs: None,
        rebuild,
    }
}

/// Ctrl-C during `up`: if a launch had begun, remove what it created (the
/// bottle was not running before, or the plan would not have started).
async fn interrupted(
    home: &Home,
    name: &str,
    backend: Option<Backend>,
    launching: bool,
    runner: &ProcessRunner,
) -> Result<ExitCode> {
    if !launching {
        eprintln!("interrupted");
        return Ok(ExitCode::from(130));
    }
    eprintln!("interrupted: removing what this launch created");
    // The aborted launch releases its lock as it unwinds; wait for that briefly.
    for _ in 0..100 {
        match ops::down(home, name, backend.map(Into::into), runner, &Events::none()).await {
            Err(ops::OpError::Busy(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context("cleaning up after the interrupted launch (run `bottle cleanup`)"))
            }
            Ok(()) => {
                eprintln!("removed; nothing of `{name}` is left");
                return Ok(ExitCode::from(130));
            }
        }
    }
    anyhow::bail!("the interrupted launch did not let go of `{name}`; run `bottle cleanup`")
}
