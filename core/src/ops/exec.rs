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
    let st = status(home, name, runner).await?;
    if st.state != BottleState::Running {
        return Err(OpError::NotRunning(name.to_string()));
    }
    let bottle = BottleName::parse(name)?;
    let engine = backend::find_engine(st.backend).map_err(engine_err(&bottle))?;
    Ok(engine.exec_argv(&bottle, command, tty))
}
