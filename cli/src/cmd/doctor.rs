//! `bottle doctor [--fix]`: the same report the app's Settings shows.

use anyhow::Result;
use bottlebar_core::ops::{self, DoctorReport};
use bottlebar_core::runner::ProcessRunner;
use std::process::ExitCode;

pub async fn run(json: bool, fix: bool, runner: &ProcessRunner) -> Result<ExitCode> {
    let report = ops::doctor(runner, fix).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(if report.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print(r: &DoctorReport) {
    for line in &r.fixed {
        println!("{line}");
    }
    println!("default backend: {} ({})", r.default_backend, r.reason);
    for e in &r.engines {
        let ok = e.problem.is_none() && e.running;
        println!("\n{} {}", if ok { "✓" } else { "✗" }, e.kind);
        let rows = [
            (
                "program",
                e.program.as_ref().map(|p| p.display().to_string()),
            ),
            ("client", e.client_version.clone()),
            ("engine", e.server_version.clone()),
            ("sandbox", e.sandbox.clone()),
            ("problem", e.problem.clone()),
            ("fix", e.fix.clone()),
        ];
        for (k, v) in rows {
            if let Some(v) = v {
                println!("  {:<8} {v}", format!("{k}:"));
            }
        }
    }
    let mark = |ok: bool| if ok { "✓" } else { "✗" };
    println!(
        "\n{} sidecar binary: {}",
        mark(r.sidecar.ok),
        r.sidecar.detail
    );
    println!("✓ secrets store: {}", r.secrets_store);
    println!(
        "{} static busybox for the demo template: {}",
        if r.busybox.ok { "✓" } else { "–" },
        r.busybox.detail
    );
    if !r.ready {
        eprintln!(
            "\nbottle doctor: the {} backend is not ready",
            r.default_backend
        );
    }
}
