//! `bottle`: the Bottlebar command line. Each command is a module in
//! `cmd/`; `progress` shows an operation's events; the work itself is
//! `bottlebar_core::ops`, which the app uses too.

mod args;
mod cmd;
mod progress;

use anyhow::Result;
use args::{Cli, Command};
use bottlebar_core::home::Home;
use bottlebar_core::runner::ProcessRunner;
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each shown once: most of the library's errors
/// already include their cause in their own message.
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::from_env()?;
    let runner = Arc::new(ProcessRunner);
    match cli.command {
        Command::New(args) => cmd::new::run(&home, args),
        Command::Up {
            name,
            backend,
            rebuild,
            json,
        } => cmd::up::run(&home, &name, backend, rebuild, json, runner).await,
        Command::Build {
            name,
            backend,
            rebuild,
            json,
        } => cmd::build::run(&home, &name, backend, rebuild, json, runner).await,
        Command::Down {
            name,
            backend,
            json,
        } => cmd::down::run(&home, &name, backend, json, runner).await,
        Command::Ls { json } => cmd::ls::run(&home, json, runner.as_ref()).await,
        Command::Plan {
            name,
            backend,
            engine_version,
            json,
        } => cmd::plan::run(&home, &name, backend, engine_version.as_deref(), json),
        Command::Logs {
            name,
            follow,
            json,
            lines,
        } => cmd::logs::run(&home, &name, follow, json, lines).await,
        Command::Exec { name, command } => {
            cmd::exec::run(&home, &name, &command, runner.as_ref()).await
        }
        Command::Shell { name } => cmd::exec::shell(&home, &name, runner.as_ref()).await,
        Command::Doctor { json, fix } => cmd::doctor::run(json, fix, runner.as_ref()).await,
        Command::Verify { name, json } => cmd::verify::run(&home, &name, json, runner).await,
        Command::Cleanup { backend, json } => cmd::cleanup::run(&home, backend, json, runner).await,
        Command::Requests { name, watch, json } => {
            cmd::requests::list(&home, name.as_deref(), watch, json).await
        }
        Command::Allow {
            name,
            id,
            once: _,
            for_,
            always,
        } => {
            cmd::requests::allow(&home, &name, &id, for_.as_deref(), always, runner.as_ref()).await
        }
        Command::Deny { name, id, note } => {
            cmd::requests::deny(&home, &name, &id, note, runner.as_ref()).await
        }
    }
}
