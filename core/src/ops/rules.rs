//! A running bottle's rules, brought up to date live: written to its state
//! and handed to the sidecar through its control socket (the engine's
//! `exec`, the message on stdin). The sidecar never re-reads its files, so
//! nothing an agent could write changes what it enforces. Supervise
//! decisions travel the same way.

use super::{secret_err, state_err, OpError};
use crate::backend::Engine;
use crate::home::Home;
use crate::launch;
use crate::manifest::Manifest;
use crate::runner::Runner;
use crate::state::{self, StateDirs, SIDECAR_CONFIG_FILE};
use bottlebar_policy::SidecarConfig;

/// Writes `m`'s rules and secrets to its state and hands them to its
/// running sidecar. Whether they changed.
pub(super) async fn refresh<R: Runner>(
    home: &Home,
    engine: &Engine,
    m: &Manifest,
    runner: &R,
) -> Result<bool, OpError> {
    let secrets = launch::resolve_secrets(&m.name, &m.secrets).map_err(secret_err(&m.name))?;
    let dirs = StateDirs::new(home.state_dir(&m.name));
    let egress = state::Egress {
        rules: &m.egress,
        secrets: &secrets,
        extra_roots: &m.extra_roots,
        hosts: &m.hosts,
        allow_private_ranges: &m.allow_private_ranges,
        supervise: m.supervise.then_some(&m.supervise_settings),
    };
    let changed =
        state::write_sidecar_files(&dirs, &m.name, &egress).map_err(state_err(&m.name))?;
    let rules = serde_json::to_vec(&state::live_rules(&egress)).expect("rules serialize");
    send(runner, engine.reload_argv(&m.name), rules)
        .await
        .map_err(|(command, detail)| OpError::Rules {
            bottle: m.name.to_string(),
            command,
            detail,
        })?;
    Ok(changed)
}

/// Whether `m` turns supervise on or off compared with what its running
/// sidecar was started with (which needs a new sidecar).
pub(super) fn supervise_changed(home: &Home, m: &Manifest) -> bool {
    let dirs = StateDirs::new(home.state_dir(&m.name));
    let running: Option<SidecarConfig> = std::fs::read(dirs.sidecar.join(SIDECAR_CONFIG_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    running.is_some_and(|c| c.supervise.is_some() != m.supervise)
}

/// Runs `argv` (a control command in the sidecar) with `message` on
/// stdin: its answer, or the command line and what went wrong.
pub(super) async fn send<R: Runner>(
    runner: &R,
    argv: Vec<String>,
    message: Vec<u8>,
) -> Result<String, (String, String)> {
    let out = runner.run_input(&argv, message).await;
    if out.success() {
        return Ok(out.stdout.trim().to_string());
    }
    let detail = format!(
        "exit {:?}: {} {}",
        out.code,
        out.stdout.trim(),
        out.stderr_tail()
    );
    Err((
        crate::plan::display_command(&argv),
        detail.trim().to_string(),
    ))
}
