//! `bottle new NAME --template T --workspace DIR`: a bottle from a
//! template. The key goes to the OS keychain — taken from the agent's usual
//! variable when it is set, else asked for without echo — unless
//! `--key-env`/`--key-file` say to read it at each launch instead.

use crate::args::NewArgs;
use anyhow::{bail, Context, Result};
use bottlebar_core::home::Home;
use bottlebar_core::ops::{self, KeySource, NewBottle};
use std::process::ExitCode;

pub fn run(home: &Home, a: NewArgs) -> Result<ExitCode> {
    let workspace = if a.workspace.is_absolute() {
        a.workspace.clone()
    } else {
        std::env::current_dir()?.join(&a.workspace)
    };
    let key_source = match (a.key_env, a.key_file) {
        (Some(var), _) => KeySource::Env(var),
        (_, Some(path)) => KeySource::File(path),
        _ => KeySource::Keychain,
    };
    // GitHub: a variable named for it, or $GITHUB_TOKEN into the keychain.
    let github = a.presets.iter().any(|p| p == "github");
    let env_token = std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let (github_token, token) = match (&a.github_token_env, github, env_token) {
        (Some(var), _, _) => (Some(KeySource::Env(var.clone())), None),
        (None, true, Some(t)) => (Some(KeySource::Keychain), Some(t)),
        _ => (None, None),
    };
    let choice = NewBottle {
        name: a.name.clone(),
        template: a.template,
        workspace,
        auth: a.auth,
        key_source,
        presets: a.presets,
        github_token,
        base: a.base,
        extra_roots: Vec::new(),
        supervise: !a.no_supervise,
    };
    // Every choice is checked before the key is asked for.
    let (_, credential) = ops::new_bottle_file(home, &choice)?;
    let key = match (&choice.key_source, credential) {
        (KeySource::Keychain, Some(c)) => Some(read_key(c.label, c.placeholder_env)?),
        _ => None,
    };
    let path = ops::new_bottle(home, &choice, key.as_deref(), token.as_deref())?;
    println!("wrote {}", path.display());
    if credential.is_some() && key.is_some() {
        println!("the key is in the OS keychain; the file and the agent never hold it");
    }
    println!(
        "launch it with `bottle up {}` (the first build takes a few minutes)",
        a.name
    );
    Ok(ExitCode::SUCCESS)
}

/// The key: from `var` when it is set (how these agents are usually given
/// theirs), else typed at the terminal without echo.
fn read_key(label: &str, var: &str) -> Result<String> {
    if let Some(v) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        eprintln!("using the {label} from ${var}");
        return Ok(v);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("the {label} is needed: set {var}, or run this in a terminal to type it, or use --key-env/--key-file");
    }
    let key = rpassword::prompt_password(format!("{label} (not shown; kept in the OS keychain): "))
        .context("reading the key")?;
    Ok(key)
}
