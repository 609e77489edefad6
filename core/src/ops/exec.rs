//! `bottle shell`/`exec` and the app's terminal: the command that runs in a
//! running bottle's agent.

use super::status::{status, BottleState};
use super::{engine_err, OpError};
use crate::backend;
use crate::home::Home;
use crate::name::BottleName;
use crate::runner::Runner;

/// The argv that runs `command` in a running bottle's agent with the terminal
/// attached (`-i`, plus `-t` when `tty`). The caller runs it with inherited stdio.
pub async fn exec_argv<R: Runner>(
    home: &Home,
    name: &str,
    command: &[String],
    tty: bool,
    runner: &R,
) -> Result<Vec<String>, OpError> {
    let (engine, bottle) = running(home, name, runner).await?;
    Ok(engine.exec_argv(&bottle, command, tty))
}

/// What a terminal session runs in the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalCommand {
    /// A login shell: bash where the image has it, else sh.
    Shell,
    /// The bottle's `agent.command`.
    Agent,
}

/// The shell a terminal opens: bash where the image has it, else sh.
const SHELL: [&str; 3] = [
    "sh",
    "-c",
    "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi",
];

/// The argv the app's terminal view runs for `what` in a running bottle
/// (an interactive exec with a terminal; see
/// [`backend::Engine::terminal_argv`]).
pub async fn terminal_argv<R: Runner>(
    home: &Home,
    name: &str,
    what: TerminalCommand,
    runner: &R,
) -> Result<Vec<String>, OpError> {
    let command: Vec<String> = match what {
        TerminalCommand::Shell => SHELL.map(String::from).to_vec(),
        TerminalCommand::Agent => {
            let m = crate::manifest::load(home, name)?;
            if m.agent_command.is_empty() {
                return Err(OpError::Unsupported {
                    bottle: name.to_string(),
                    message:
                        "it has no agent command; set `agent.command` in its file (e.g. `claude`)"
                            .into(),
                });
            }
            m.agent_command
        }
    };
    let (engine, bottle) = running(home, name, runner).await?;
    Ok(engine.terminal_argv(&bottle, &command))
}

/// The engine of a running bottle, and its name; an error naming the
/// bottle when it is not running.
async fn running<R: Runner>(
    home: &Home,
    name: &str,
    runner: &R,
) -> Result<(backend::Engine, BottleName), OpError> {
    let st = status(home, name, runner).await?;
    if st.state != BottleState::Running {
        return Err(OpError::NotRunning(name.to_string()));
    }
    let bottle = BottleName::parse(name)?;
    let engine = backend::find_engine(st.backend).map_err(engine_err(&bottle))?;
    Ok((engine, bottle))
}
