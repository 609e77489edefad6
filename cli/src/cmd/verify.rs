//! `bottle verify NAME`: rerun the isolation self-test; exit 3 on a leak.

use super::EXIT_ISOLATION_LEAK;
use crate::progress::with_events;
use anyhow::Result;
use bottlebar_core::home::Home;
use bottlebar_core::name::BottleName;
use bottlebar_core::ops;
use bottlebar_core::runner::ProcessRunner;
use bottlebar_core::selftest;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(
    home: &Home,
    name: &str,
    json: bool,
    runner: Arc<ProcessRunner>,
) -> Result<ExitCode> {
    let (home2, name2) = (home.clone(), name.to_string());
    let result = with_events(false, None, move |events| async move {
        ops::verify(&home2, &name2, runner.as_ref(), &events).await
    })
    .await?;
    match result {
        Ok(record) if json => println!("{}", serde_json::to_string_pretty(&record)?),
        Ok(record) => println!("bottle `{name}`: {}", record.summary),
        Err(e @ ops::OpError::IsolationLeak { .. }) => {
            if json {
                if let Some(r) = selftest::load(home, &BottleName::parse(name)?) {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                }
            }
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_ISOLATION_LEAK));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ExitCode::SUCCESS)
}
