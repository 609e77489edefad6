//! `bottle requests`, `bottle allow`, `bottle deny`: the hosts agents asked
//! for, and the human's answers.

use anyhow::{bail, Context, Result};
use bottlebar_core::home::Home;
use bottlebar_core::ops;
use bottlebar_core::runner::ProcessRunner;
use bottlebar_core::supervise::Request;
use bottlebar_policy::supervise::{human_seconds, Answer};
use std::process::ExitCode;
use std::time::Duration;

pub async fn list(home: &Home, name: Option<&str>, watch: bool, json: bool) -> Result<ExitCode> {
    let mut shown = String::new();
    loop {
        let requests = ops::requests(home, name)?;
        let now = if json {
            serde_json::to_string_pretty(&requests)?
        } else {
            render(&requests)
        };
        if now != shown {
            println!("{now}");
            shown = now;
        }
        if !watch {
            return Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// A table: pending first (with the time left), then the rest, newest first.
fn render(requests: &[Request]) -> String {
    if requests.is_empty() {
        return "no requests".into();
    }
    let mut rows: Vec<&Request> = requests.iter().collect();
    rows.sort_by_key(|r| (!r.pending, std::cmp::Reverse(r.proposal.created.clone())));
    let mut out = format!(
        "{:<16} {:<14} {:<30} {:<22} {:<10} REASON",
        "ID", "BOTTLE", "HOST", "SCOPE", "STATUS"
    );
    for r in rows {
        let p = &r.proposal;
        let status = match (&r.decision, r.pending) {
            (_, true) => format!("waiting {}", human_seconds(r.seconds_left.unwrap_or(0))),
            (Some(d), _) => d.answer.describe(),
            (None, _) => format!("{:?}", p.status).to_lowercase(),
        };
        let scope = format!(
            "{} {}",
            if p.scope.methods.is_empty() {
                "any".into()
            } else {
                p.scope.methods.join(",")
            },
            if p.scope.paths.is_empty() {
                "/".into()
            } else {
                p.scope.paths.join(",")
            }
        );
        // The reason is the agent's text: one line, control characters gone.
        let reason: String = p
            .reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!(
            "\n{:<16} {:<14} {:<30} {:<22} {:<10} {}",
            p.id,
            p.bottle,
            format!("{}:{}", p.scope.host, p.scope.port),
            scope,
            status,
            reason
        ));
    }
    out
}

pub async fn allow(
    home: &Home,
    name: &str,
    id: &str,
    for_: Option<&str>,
    always: bool,
    runner: &ProcessRunner,
) -> Result<ExitCode> {
    let answer = match (for_, always) {
        (Some(d), _) => {
            let dur = humantime::parse_duration(d)
                .with_context(|| format!("`{d}` is not a duration like 10m, 1h or 2d"))?;
            if dur.as_secs() == 0 {
                bail!("`{d}` is shorter than a second");
            }
            Answer::For {
                seconds: dur.as_secs(),
            }
        }
        (None, true) => Answer::Always,
        (None, false) => Answer::Once,
    };
    let r = ops::decide(home, name, id, answer, "cli", runner).await?;
    println!(
        "{}: {} {}",
        id,
        r.decision.map(|d| d.answer.describe()).unwrap_or_default(),
        r.proposal.scope.describe()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn deny(
    home: &Home,
    name: &str,
    id: &str,
    note: Option<String>,
    runner: &ProcessRunner,
) -> Result<ExitCode> {
    let note = note
        .map(|n| n.trim().chars().take(500).collect::<String>())
        .filter(|n| !n.is_empty());
    ops::decide(home, name, id, Answer::Deny { note }, "cli", runner).await?;
    println!("{id}: denied");
    Ok(ExitCode::SUCCESS)
}
