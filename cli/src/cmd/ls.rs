//! `bottle ls`: this home's bottles and their live state.

use anyhow::Result;
use bottlebar_core::home::Home;
use bottlebar_core::ops::{self, format_uptime, Listing};
use bottlebar_core::runner::ProcessRunner;
use bottlebar_core::supervise::GrantInForce;
use bottlebar_policy::supervise::human_seconds;
use std::process::ExitCode;

pub async fn run(home: &Home, json: bool, runner: &ProcessRunner) -> Result<ExitCode> {
    let listing = ops::list(home, runner).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print(&listing);
    }
    Ok(ExitCode::SUCCESS)
}

fn print(listing: &Listing) {
    println!(
        "{:<20} {:<16} {:<8} {:<11} {:<16} {:<9} NOTE",
        "NAME", "STATE", "BACKEND", "KEEP-ALIVE", "SIDECAR IP", "UPTIME"
    );
    for b in &listing.bottles {
        println!(
            "{:<20} {:<16} {:<8} {:<11} {:<16} {:<9} {}",
            b.name,
            b.state.label(),
            b.backend,
            if b.keepalive_alive { "alive" } else { "-" },
            b.sidecar_ip.as_deref().unwrap_or("-"),
            b.uptime_secs
                .map(format_uptime)
                .unwrap_or_else(|| "-".into()),
            b.problem.as_deref().unwrap_or("")
        );
        for g in &b.grants {
            println!(
                "{:<20} grant {}: {} ({})",
                "",
                g.proposal,
                g.allows,
                grant_time(g)
            );
        }
    }
    for n in &listing.notes {
        eprintln!("note: {n}");
    }
    for p in &listing.problems {
        eprintln!("warning: {p}");
    }
}

/// How long a grant has left, in words.
fn grant_time(g: &GrantInForce) -> String {
    match (g.once, g.seconds_left) {
        (true, _) => "once, unused".into(),
        (false, Some(s)) => format!("{} left", human_seconds(s)),
        (false, None) => "always; in the manifest".into(),
    }
}
