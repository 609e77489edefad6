//! `bottle logs NAME [-f] [-n N]`: the egress audit log.

use anyhow::{Context, Result};
use bottlebar_core::dir_watch::DirWatch;
use bottlebar_core::home::Home;
use bottlebar_core::state::StateDirs;
use std::collections::BTreeSet;
use std::process::ExitCode;

pub async fn run(
    home: &Home,
    name: &str,
    follow: bool,
    json: bool,
    lines: Option<usize>,
) -> Result<ExitCode> {
    use bottlebar_core::audit;
    let bottle = bottlebar_core::name::BottleName::parse(name)?;
    let show = |line: Result<audit::AuditEntry, String>, raw: Option<&str>| match (json, line) {
        (true, Ok(e)) => println!(
            "{}",
            raw.map(str::to_string)
                .unwrap_or_else(|| serde_json::to_string(&e).expect("entry serializes"))
        ),
        (false, Ok(e)) => println!("{}", audit::render(&e)),
        (_, Err(bad)) => eprintln!("warning: {bad}"),
    };
    // Followed from where the backlog ends: no entry shown twice or missed.
    let (mut follower, backlog) = if follow {
        let (follower, backlog) =
            audit::Follower::with_last(home, &bottle, lines.unwrap_or(usize::MAX));
        (Some(follower), backlog)
    } else {
        let backlog = match lines {
            Some(n) => audit::read_last(home, &bottle, n),
            None => audit::read_all(home, &bottle),
        };
        (None, backlog)
    };
    let backlog = backlog.with_context(|| format!("reading the audit log of `{name}`"))?;
    if backlog.is_empty() && !follow && !home.state_dir(&bottle).exists() {
        anyhow::bail!("bottle `{name}` has no audit log (it has not been launched, or was removed with `bottle down`)");
    }
    for entry in backlog {
        show(entry, None);
    }
    if let Some(f) = &mut follower {
        // Woken when the sidecar writes (file notifications), not on a timer.
        let dirs = BTreeSet::from([StateDirs::new(home.state_dir(&bottle)).audit]);
        let mut files = DirWatch::new();
        loop {
            // Watched before reading, so nothing written in between is missed.
            files.watch_only(&dirs);
            for line in f.poll() {
                show(
                    audit::parse_bytes(&line),
                    Some(&String::from_utf8_lossy(&line)),
                );
            }
            tokio::select! {
                _ = files.changed() => {}
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
