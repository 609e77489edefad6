//! `bottle exec NAME -- CMD…` and `bottle shell NAME`: a command in the
//! agent, with this terminal attached.

use anyhow::{Context, Result};
use bottlebar_core::home::Home;
use bottlebar_core::ops;
use bottlebar_core::runner::{self, ProcessRunner};
use std::io::IsTerminal;
use std::process::ExitCode;

pub async fn run(
    home: &Home,
    name: &str,
    command: &[String],
    runner: &ProcessRunner,
) -> Result<ExitCode> {
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let argv = ops::exec_argv(home, name, command, tty, runner).await?;
    attached(&argv)
}

pub async fn shell(home: &Home, name: &str, runner: &ProcessRunner) -> Result<ExitCode> {
    let tty = std::io::stdin().is_terminal();
    let argv = ops::exec_argv(home, name, &["sh".to_string()], tty, runner).await?;
    attached(&argv)
}

/// Runs `argv` with this process's stdio; its exit code is ours.
fn attached(argv: &[String]) -> Result<ExitCode> {
    let code = runner::run_attached(argv).with_context(|| format!("running {}", argv[0]))?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
