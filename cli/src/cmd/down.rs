//! `bottle down NAME`: remove everything of one of this home's bottles.

use crate::args::Backend;
use crate::progress::with_events;
use anyhow::Result;
use bottlebar_core::home::Home;
use bottlebar_core::ops;
use bottlebar_core::runner::ProcessRunner;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(
    home: &Home,
    name: &str,
    backend: Option<Backend>,
    json: bool,
    runner: Arc<ProcessRunner>,
) -> Result<ExitCode> {
    let (home2, name2) = (home.clone(), name.to_string());
    with_events(json, None, move |events| async move {
        ops::down(
            &home2,
            &name2,
            backend.map(Into::into),
            runner.as_ref(),
            &events,
        )
        .await
    })
    .await??;
    if !json {
        println!("bottle `{name}` is down");
    }
    Ok(ExitCode::SUCCESS)
}
