//! `bottle cleanup`: sweep this home's bottles that are not fully running.

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
    backend: Option<Backend>,
    json: bool,
    runner: Arc<ProcessRunner>,
) -> Result<ExitCode> {
    let home2 = home.clone();
    let swept = with_events(json, None, move |events| async move {
        ops::cleanup(&home2, backend.map(Into::into), runner.as_ref(), &events).await
    })
    .await??;
    if !json {
        if swept.is_empty() {
            println!("nothing to clean up");
        } else {
            println!("removed the resources of: {}", swept.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
