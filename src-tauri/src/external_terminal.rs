//! Opening the user's own terminal (Terminal.app, `x-terminal-emulator`) on
//! a shell in a bottle: the secondary action beside the window's terminal.

use crate::AppState;
use bottlebar_core::ops;
use tauri::{AppHandle, Manager, Runtime};

/// Opens the user's terminal on a shell in the bottle's agent.
pub async fn open_shell<R: Runtime>(app: &AppHandle<R>, name: &str) -> Result<(), String> {
    let state = app.state::<AppState>();
    let shell = ["sh".to_string()];
    let argv = ops::exec_argv(&state.home, name, &shell, true, state.runner.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    use tauri_plugin_shell::ShellExt;
    let (program, args) = terminal_command(&argv);
    app.shell()
        .command(&program)
        .args(args)
        .spawn()
        .map_err(|e| format!("opening a terminal ({program}): {e}"))?;
    Ok(())
}

/// The terminal command that runs `argv`: Terminal.app on macOS, `$TERMINAL`
/// or `x-terminal-emulator` elsewhere.
pub fn terminal_command(argv: &[String]) -> (String, Vec<String>) {
    let line = bottlebar_core::plan::display_command(argv);
    if cfg!(target_os = "macos") {
        let script = format!("tell application \"Terminal\" to do script \"{}\"\ntell application \"Terminal\" to activate", line.replace('\\', "\\\\").replace('"', "\\\""));
        return ("osascript".into(), vec!["-e".into(), script]);
    }
    let term = std::env::var("TERMINAL")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "x-terminal-emulator".into());
    let mut args = vec!["-e".to_string()];
    args.extend(argv.iter().cloned());
    (term, args)
}
