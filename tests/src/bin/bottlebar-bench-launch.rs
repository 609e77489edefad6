//! `bottlebar-bench-launch`: how long a bottle takes to launch and go, beside
//! the same topology made by hand with plain `docker` commands, in one run.
//!
//! Warm images (one launch first, not measured). Then, alternating, `runs`
//! times each:
//! - **raw**: a hand-written script of plain `docker` commands making the
//!   same topology from the same images and configuration — two networks,
//!   the sidecar created, connected, started, its health awaited, its
//!   address read, the agent run — then removed;
//! - **bottle**: `bottle up demo` (to *verified ready*: the isolation
//!   self-test passed) then `bottle down demo`; what the self-test adds
//!   (from the plan's end to ready: its probe may start beside the plan's
//!   last steps) is read from the launch's events, so the topology alone is
//!   known too, as is each step's own time.
//!
//! Medians and ratios are printed as a Markdown table (or JSON). The
//! self-test's outside targets are this machine's fake internet; nothing
//! else is contacted. Every loop is bounded.

use anyhow::{bail, Context, Result};
use bottlebar_e2e::{engine, Harness};
use clap::Parser;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "bottlebar-bench-launch")]
struct Args {
    /// Measured runs of each (after one warm-up launch).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also list the self-test's slowest paths (where its time goes).
    #[arg(long)]
    paths: bool,
}

/// The bottle measured: the built-in demo.
const NAME: &str = "demo";
/// The raw script's resources.
const RAW: &str = "bb-bench-raw";

fn main() -> Result<()> {
    let args = Args::parse();
    if !(1..=50).contains(&args.runs) {
        bail!("--runs must be 1 to 50");
    }
    let h = Harness::new();
    // Warm up: images built, and what the raw script needs copied while up.
    h.up(NAME).0.expect_ok("the warm-up launch");
    let raw = RawTopology::from_running(&h)?;
    let slowest = slowest_paths(&h)?;
    h.bottle(&["down", NAME]).expect_ok("the warm-up stop");

    let (mut raw_ms, mut up_ms, mut selftest_ms) = (vec![], vec![], vec![]);
    let mut steps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..args.runs {
        raw_ms.push(raw.launch_and_remove()?);
        let run = bottle_launch_and_stop(&h)?;
        up_ms.push(run.total_ms);
        selftest_ms.push(run.selftest_ms);
        for (step, ms) in run.steps {
            steps.entry(step).or_default().push(ms);
        }
    }
    let steps: BTreeMap<String, f64> = steps.iter().map(|(k, v)| (k.clone(), median(v))).collect();
    let topology_ms: Vec<f64> = up_ms.iter().zip(&selftest_ms).map(|(u, s)| u - s).collect();
    let report = json!({
        "backend": if engine().is_apple() { "apple (the container double)" } else { "docker" },
        "runs": args.runs,
        "raw_ms": median(&raw_ms),
        "bottle_ms": median(&up_ms),
        "bottle_without_selftest_ms": median(&topology_ms),
        "selftest_ms": median(&selftest_ms),
        "ratio": median(&up_ms) / median(&raw_ms),
        "ratio_without_selftest": median(&topology_ms) / median(&raw_ms),
        "samples": { "raw": raw_ms, "bottle": up_ms, "selftest": selftest_ms },
        "step_medians_ms": steps,
    });
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    if args.paths {
        println!("\nthe warm-up self-test's slowest paths (ms, outcome, path):");
        for (ms, outcome, path) in slowest {
            println!("  {ms:>5}  {outcome:<8} {path}");
        }
    }
    Ok(())
}

/// The warm-up launch's self-test paths, slowest first: where its time goes.
fn slowest_paths(h: &Harness) -> Result<Vec<(u64, String, String)>> {
    let file = h.home.path().join("selftest").join(format!("{NAME}.json"));
    let record: Value = serde_json::from_str(&std::fs::read_to_string(&file)?)
        .with_context(|| format!("reading {}", file.display()))?;
    let mut paths: Vec<(u64, String, String)> = record["report"]["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["ms"].as_u64().unwrap_or(0),
                p["outcome"].as_str().unwrap_or("").to_string(),
                p["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.0));
    paths.truncate(12);
    Ok(paths)
}

fn print_table(r: &Value) {
    let ms = |k: &str| format!("{:.0} ms", r[k].as_f64().unwrap_or(0.0));
    println!(
        "launch + stop, {}, warm images, medians of {}:\n",
        r["backend"].as_str().unwrap_or(""),
        r["runs"]
    );
    println!("| what | median | ratio to raw |");
    println!("|---|---|---|");
    println!("| raw `docker` script | {} | 1.00× |", ms("raw_ms"));
    println!(
        "| `bottle up` + `down` (to verified ready) | {} | {:.2}× |",
        ms("bottle_ms"),
        r["ratio"].as_f64().unwrap_or(0.0)
    );
    println!(
        "| … without the self-test | {} | {:.2}× |",
        ms("bottle_without_selftest_ms"),
        r["ratio_without_selftest"].as_f64().unwrap_or(0.0)
    );
    println!(
        "| what the self-test adds (plan end → ready) | {} | |",
        ms("selftest_ms")
    );
    println!("\nsteps of `bottle up` (median ms; concurrent steps overlap):");
    for (step, ms) in r["step_medians_ms"].as_object().into_iter().flatten() {
        println!("  {:>6.0}  {step}", ms.as_f64().unwrap_or(0.0));
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// One `bottle up` + `down`.
struct BottleRun {
    /// Up and down, end to end (ms).
    total_ms: f64,
    /// The self-test's part of it.
    selftest_ms: f64,
    /// Each launch step's own time.
    steps: Vec<(String, f64)>,
}

/// `bottle up demo --json` then `bottle down demo`: the whole time, what
/// the self-test adds to it, and each step's own time (ms).
fn bottle_launch_and_stop(h: &Harness) -> Result<BottleRun> {
    let start = Instant::now();
    let (up, events) = h.up(NAME);
    if !up.ok() {
        bail!("bottle up failed: {}{}", up.stdout, up.stderr);
    }
    let up_ms = start.elapsed().as_secs_f64() * 1000.0;
    let down = h.bottle(&["down", NAME]);
    if !down.ok() {
        bail!("bottle down failed: {}", down.stderr);
    }
    let total = start.elapsed().as_secs_f64() * 1000.0;
    // What the self-test adds to the launch: from the plan's end to ready
    // (its probe may start before the plan ends, beside its last steps).
    let ready = events
        .iter()
        .find(|e| e["event"] == "ready")
        .context("no ready event")?;
    let (plan_ms, ready_ms) = (
        ready["plan_ms"].as_f64().context("no plan_ms in ready")?,
        ready["duration_ms"]
            .as_f64()
            .context("no duration_ms in ready")?,
    );
    let selftest = ready_ms - plan_ms;
    let mut steps: Vec<(String, f64)> = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .filter_map(|e| Some((e["step"].as_str()?.to_string(), e["duration_ms"].as_f64()?)))
        .collect();
    // Where the rest goes: `up` before its plan starts (checks, the lock,
    // the files) and after the self-test, and `down`.
    steps.push((
        "(up, outside its plan and self-test)".into(),
        up_ms - ready_ms,
    ));
    steps.push(("(down)".into(), total - up_ms));
    Ok(BottleRun {
        total_ms: total,
        selftest_ms: selftest,
        steps,
    })
}

/// What the hand-written script needs: the bottle's images and the
/// sidecar's configuration and CA, copied while the bottle was up.
struct RawTopology {
    sidecar_image: String,
    agent_image: String,
    state: tempfile::TempDir,
}

impl RawTopology {
    fn from_running(h: &Harness) -> Result<Self> {
        let image = |role: &str| -> Result<String> {
            let out = docker(&[
                "inspect",
                "--format",
                "{{.Config.Image}}",
                &format!("bottlebar-{NAME}-{role}"),
            ])?;
            Ok(out.trim().to_string())
        };
        let state = tempfile::tempdir()?;
        for dir in ["sidecar", "agent-ca"] {
            copy_dir(&h.state_dir(NAME).join(dir), &state.path().join(dir))?;
        }
        std::fs::create_dir_all(state.path().join("audit"))?;
        // The sidecar runs as 65532: it reads its configuration and writes
        // its audit log (copies are the copier's, as the originals were not).
        for dir in ["sidecar", "audit"] {
            run_ok(Command::new("chown").args([
                "-R",
                "65532:65532",
                &state.path().join(dir).display().to_string(),
            ]))?;
        }
        Ok(RawTopology {
            sidecar_image: image("sidecar")?,
            agent_image: image("agent")?,
            state,
        })
    }

    /// The script: up, then down; its time (ms).
    fn launch_and_remove(&self) -> Result<f64> {
        let start = Instant::now();
        let result = self.launch();
        let removed = self.remove();
        result?;
        removed?;
        Ok(start.elapsed().as_secs_f64() * 1000.0)
    }

    fn launch(&self) -> Result<()> {
        let (internal, egress) = (format!("{RAW}-internal"), format!("{RAW}-egress"));
        let (sidecar, agent) = (format!("{RAW}-sidecar"), format!("{RAW}-agent"));
        let mount = |dir: &str, target: &str, ro: bool| {
            format!(
                "type=bind,source={},target={target}{}",
                self.state.path().join(dir).display(),
                if ro { ",readonly" } else { "" }
            )
        };
        docker(&["network", "create", "--internal", &internal])?;
        docker(&["network", "create", &egress])?;
        docker(&[
            "create",
            "--name",
            &sidecar,
            "--network",
            &egress,
            "--user",
            "65532:65532",
            "--mount",
            &mount("sidecar", "/etc/bottlebar", true),
            "--mount",
            &mount("audit", "/var/log/bottlebar", false),
            &self.sidecar_image,
            "serve",
            "--config",
            "/etc/bottlebar/sidecar.json",
        ])?;
        docker(&["network", "connect", &internal, &sidecar])?;
        docker(&["start", &sidecar])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while docker(&["exec", &sidecar, "/bottlebar-sidecar", "health"]).is_err() {
            if Instant::now() > deadline {
                let logs = Command::new("docker").args(["logs", &sidecar]).output()?;
                bail!(
                    "the raw sidecar never became healthy: {}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let ip = docker(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{internal}\").IPAddress}}}}"),
            &sidecar,
        ])?;
        let proxy = format!("HTTPS_PROXY=http://{}:3128", ip.trim());
        docker(&[
            "run",
            "--detach",
            "--name",
            &agent,
            "--network",
            &internal,
            "--init",
            "--env",
            &proxy,
            "--mount",
            &mount("agent-ca", "/etc/bottlebar/ca", true),
            &self.agent_image,
            "sleep",
            "2147483647",
        ])?;
        Ok(())
    }

    fn remove(&self) -> Result<()> {
        docker(&[
            "rm",
            "--force",
            &format!("{RAW}-agent"),
            &format!("{RAW}-sidecar"),
        ])?;
        docker(&[
            "network",
            "rm",
            &format!("{RAW}-internal"),
            &format!("{RAW}-egress"),
        ])?;
        Ok(())
    }
}

impl Drop for RawTopology {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Runs `docker ARGS` (see [`run_ok`]).
fn docker(args: &[&str]) -> Result<String> {
    let mut c = Command::new("docker");
    c.args(args);
    run_ok(&mut c)
}

/// Runs `c`; its stdout, or an error with its stderr.
fn run_ok(c: &mut Command) -> Result<String> {
    let out = c.output().with_context(|| format!("running {c:?}"))?;
    if !out.status.success() {
        bail!("{c:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
