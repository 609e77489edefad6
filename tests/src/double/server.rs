//! The apiserver's side of a request. Apple's CLI is a client: the work of a
//! request that changes state is done by `container-apiserver` over XPC
//! (the reference: "Server errors cross XPC"), and the server finishes it
//! even when the CLI is killed halfway. The double does such work in a
//! child of its own, in a new process group (a signal sent to the CLI or to
//! its group does not reach it), and waits for it: a client killed halfway
//! never leaves half a container (a namespace holder with no container, a
//! network still in use by nothing `list` shows) behind.

use super::{Failure, Out};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Set in the server's environment.
const SERVER_ENV: &str = "BOTTLEBAR_DOUBLE_SERVER";

/// Is this process the server (the work is done here)?
pub fn is_server() -> bool {
    std::env::var_os(SERVER_ENV).is_some()
}

/// `None` in the server: go on and do the work. In the client: the same
/// command run by a server, waited for; its output is the client's (the
/// server writes to the client's stdout and stderr) and so is its exit code.
pub fn delegate() -> Option<Out> {
    if is_server() {
        return None;
    }
    Some(run_server())
}

fn run_server() -> Out {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::failed(format!("interrupted: \"XPC connection error: {e}\"")))?;
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(SERVER_ENV, "1")
        .stdin(Stdio::null())
        .process_group(0)
        .status()
        .map_err(|e| Failure::failed(format!("interrupted: \"XPC connection error: {e}\"")))?;
    Ok(status.code().unwrap_or(1))
}
