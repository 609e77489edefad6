//! `bottlebar-measure-idle`: the app's memory and CPU when idle, with one
//! bottle running: window closed (`--hidden`, the menu bar only), window
//! open, and window closed after use (started with its window, which is
//! closed through WebDriver once shown, as a user closes it). For each:
//! the app started on a private home, left alone for `--seconds`, then the
//! PSS of the app and every process under it (its WebKit processes)
//! summed, and the CPU they used over that time.
//!
//! Needs a display (run it under `xvfb-run`; `scripts/measure-idle` does)
//! and Docker. The bottle's self-test probes this machine's fake internet.

use anyhow::{bail, Context, Result};
use bottlebar_e2e::procs::{
    cpu_ticks, pss_kib, thread_wakeups, ticks_per_second, tree, wakeups_between, Killed,
};
use bottlebar_e2e::{sidecar_bin, webdriver, Harness};
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "bottlebar-measure-idle")]
struct Args {
    /// The app binary.
    #[arg(long)]
    app: PathBuf,
    /// Seconds the app is left alone before measuring (and CPU is counted over).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// What one idle period showed.
struct Idle {
    pss_kib: u64,
    app_pss_kib: u64,
    processes: usize,
    cpu_percent: f64,
    /// Times per second the app's own threads were woken.
    app_wakeups_per_s: f64,
    /// The same for every process of the app.
    wakeups_per_s: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(5..=600).contains(&args.seconds) {
        bail!("--seconds must be 5 to 600");
    }
    if std::env::var_os("DISPLAY").is_none() {
        bail!("needs a display: run it under xvfb-run (scripts/measure-idle does)");
    }
    let h = Harness::new();
    h.up("demo").0.expect_ok("launching the demo bottle");
    let closed = measure(&args, &h, Window::Never)?;
    let open = measure(&args, &h, Window::Open)?;
    let after_use = measure(&args, &h, Window::ClosedAfterUse)?;
    let row = |i: &Idle| {
        json!({
            "pss_mib": i.pss_kib / 1024,
            "app_pss_mib": i.app_pss_kib / 1024,
            "webview_pss_mib": (i.pss_kib - i.app_pss_kib) / 1024,
            "processes": i.processes,
            "cpu_percent": (i.cpu_percent * 100.0).round() / 100.0,
            "app_wakeups_per_s": (i.app_wakeups_per_s * 10.0).round() / 10.0,
            "wakeups_per_s": (i.wakeups_per_s * 10.0).round() / 10.0,
        })
    };
    let report = json!({
        "seconds": args.seconds,
        "window_closed": row(&closed),
        "window_open": row(&open),
        "window_closed_after_use": row(&after_use),
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!("idle app, one bottle running, {} s alone:\n", args.seconds);
    println!("| window | PSS total | app | the rest | processes | CPU | wakeups/s, app | wakeups/s, all |");
    println!("|---|---|---|---|---|---|---|---|");
    for (what, i) in [
        ("closed, never opened", &closed),
        ("open", &open),
        ("closed after use", &after_use),
    ] {
        println!(
            "| {what} | {} MiB | {} MiB | {} MiB | {} | {:.2} % | {:.1} | {:.1} |",
            i.pss_kib / 1024,
            i.app_pss_kib / 1024,
            (i.pss_kib - i.app_pss_kib) / 1024,
            i.processes,
            i.cpu_percent,
            i.app_wakeups_per_s,
            i.wakeups_per_s
        );
    }
    Ok(())
}

/// The window while the app is measured.
#[derive(Clone, Copy, PartialEq)]
enum Window {
    /// Never made: started `--hidden`.
    Never,
    /// Open, as the app starts.
    Open,
    /// Made as the app starts, then closed.
    ClosedAfterUse,
}

/// Starts the app, leaves it alone, measures, stops it.
fn measure(args: &Args, h: &Harness, window: Window) -> Result<Idle> {
    let inspector_port = bottlebar_e2e::free_port()?;
    let mut cmd = Command::new(&args.app);
    cmd.env("BOTTLEBAR_HOME", h.home.path())
        .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match window {
        Window::Never => {
            cmd.arg("--hidden");
        }
        Window::Open => {}
        Window::ClosedAfterUse => {
            cmd.envs(webdriver::automation_env(inspector_port));
        }
    }
    let app = Killed(
        cmd.spawn()
            .with_context(|| format!("starting {}", args.app.display()))?,
    );
    let pid = app.0.id();
    // Settled first (the window drawn, the first refresh done), then counted.
    std::thread::sleep(Duration::from_secs(5));
    if window == Window::ClosedAfterUse {
        close_window(inspector_port).context("closing the window")?;
        // Gone with its web process, then counted.
        std::thread::sleep(Duration::from_secs(1));
    }
    let before = tree(pid);
    if before.is_empty() {
        bail!("the app exited while settling");
    }
    let ticks_before = cpu_ticks(&before);
    let (app_wakes_before, wakes_before) = (thread_wakeups(&[pid]), thread_wakeups(&before));
    std::thread::sleep(Duration::from_secs(args.seconds));
    let procs = tree(pid);
    if procs.is_empty() {
        bail!("the app exited while idle");
    }
    // Wakeups of the processes there throughout only: one that came would
    // count its whole life. Within them, each thread is counted by itself
    // (one that ended takes its count with it).
    let stayed: Vec<u32> = before
        .iter()
        .copied()
        .filter(|p| procs.contains(p))
        .collect();
    let wakes = wakeups_between(&wakes_before, &thread_wakeups(&stayed));
    let app_wakes = wakeups_between(&app_wakes_before, &thread_wakeups(&[pid]));
    let ticks = cpu_ticks(&procs).saturating_sub(ticks_before);
    Ok(Idle {
        pss_kib: procs.iter().map(|p| pss_kib(*p)).sum(),
        app_pss_kib: pss_kib(pid),
        processes: procs.len(),
        cpu_percent: ticks as f64 / ticks_per_second() / args.seconds as f64 * 100.0,
        app_wakeups_per_s: app_wakes as f64 / args.seconds as f64,
        wakeups_per_s: wakes as f64 / args.seconds as f64,
    })
}

/// Closes the app's window as the page's ⌘W does, through a WebDriver
/// session on the app's inspector at `port`, and waits for it to go.
fn close_window(port: u16) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let attached = webdriver::attach(&format!("127.0.0.1:{port}")).await?;
        let c = &attached.client;
        c.execute(
            "setTimeout(() => window.__TAURI__.window.getCurrentWindow().close(), 50); return 1;",
            vec![],
        )
        .await
        .context("asking the page to close its window")?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !c.windows().await.unwrap_or_default().is_empty() {
            if std::time::Instant::now() > deadline {
                bail!("the window was still there 10 s after it was closed");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })
}
