//! `bottle build NAME`: build a bottle's images now, launching nothing.

use crate::args::Backend;
use crate::progress::with_build_events;
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
    rebuild: bool,
    json: bool,
    runner: Arc<ProcessRunner>,
) -> Result<ExitCode> {
    let opts = super::up::options(backend, rebuild);
    let (home2, name2) = (home.clone(), name.to_string());
    let built = with_build_events(json, move |events| async move {
        ops::build(&home2, &name2, opts, runner, &events).await
    })
    .await??;
    if json {
        println!("{}", serde_json::to_string(&built)?);
    } else {
        println!(
            "bottle `{name}`'s images are built in {:.1}s (agent {}); `bottle up {name}` starts without building",
            built.duration_ms as f64 / 1000.0,
            built.agent_image
        );
    }
    Ok(ExitCode::SUCCESS)
}
