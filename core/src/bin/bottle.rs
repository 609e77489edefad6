//! `bottle`: the Bottlebar command line.

use anyhow::{Context, Result};
use bottlebar_core::backend;
use bottlebar_core::events::{Event, Events};
use bottlebar_core::home::Home;
use bottlebar_core::launch::{self, BuildInputs};
use bottlebar_core::manifest::{self, BackendKind};
use bottlebar_core::ops::{self, format_uptime, BottleState, UpOptions, UpOutcome};
use bottlebar_core::runner::ProcessRunner;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "bottle",
    version,
    about = "Run AI coding agents in bottles: containers whose only way out is an egress proxy."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Docker,
    Apple,
}

impl From<Backend> for BackendKind {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Docker => BackendKind::Docker,
            Backend::Apple => BackendKind::Apple,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Launch a bottle (a no-op if it is already up).
    Up {
        name: String,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Print progress events as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Remove everything of a bottle: containers, networks, state. Idempotent.
    Down {
        name: String,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long)]
        json: bool,
    },
    /// List bottles with their live state.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Print the launch plan without touching the engine.
    Plan {
        name: String,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Plan for this engine version (Apple's builder DNS steps depend on it);
        /// default: the newest known.
        #[arg(long, value_name = "X.Y.Z")]
        engine_version: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a bottle's egress audit log: every request its agent made and what the sidecar decided.
    Logs {
        name: String,
        /// Keep printing new entries as they arrive.
        #[arg(long, short)]
        follow: bool,
        /// Print the raw JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a bottle's agent: `bottle exec NAME -- CMD...`.
    Exec {
        name: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Open an interactive shell in a bottle's agent.
    Shell { name: String },
    /// Check the container engines and say what to fix.
    Doctor {
        #[arg(long)]
        json: bool,
        /// Fix what can be fixed without questions (start Apple's container service).
        #[arg(long)]
        fix: bool,
    },
    /// Rerun the isolation self-test in a running bottle. A leak stops it.
    /// Exit 0 isolated, 3 isolation leak.
    Verify {
        name: String,
        /// Print the full record (every path tried) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the resources of every bottle that is not fully running.
    Cleanup {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long)]
        json: bool,
    },
}

/// `bottle up` and `bottle verify` exit with this when the self-test found a
/// way out (other failures exit 1).
const EXIT_ISOLATION_LEAK: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each shown once: most of the library's errors
/// already include their cause in their own message.
fn error_chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let home = Home::from_env()?;
    let runner = Arc::new(ProcessRunner);
    match cli.command {
        Command::Up {
            name,
            backend,
            json,
        } => {
            let opts = UpOptions {
                backend: backend.map(Into::into),
                inputs: None,
            };
            let (home2, name2, runner2) = (home.clone(), name.clone(), runner.clone());
            let launching = Arc::new(AtomicBool::new(false));
            let up = with_events(json, Some(launching.clone()), move |events| async move {
                ops::up(&home2, &name2, opts, runner2, &events).await
            });
            let result = tokio::select! {
                r = up => r?,
                _ = tokio::signal::ctrl_c() => {
                    let started = launching.load(Ordering::SeqCst);
                    return interrupted_up(&home, &name, backend, started, runner.as_ref()).await;
                }
            };
            match result {
                Ok(UpOutcome::Launched {
                    sidecar_ip,
                    duration_ms,
                }) => {
                    if !json {
                        println!("bottle `{name}` is up in {:.1}s (sidecar {sidecar_ip}); `bottle shell {name}` opens a shell", duration_ms as f64 / 1000.0);
                    }
                }
                Ok(UpOutcome::AlreadyUp { sidecar_ip, .. }) => {
                    if !json {
                        println!(
                            "bottle `{name}` is already up (sidecar {})",
                            sidecar_ip.unwrap_or_else(|| "?".into())
                        );
                    }
                }
                Err(e @ ops::OpError::IsolationLeak { .. }) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_ISOLATION_LEAK));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Down {
            name,
            backend,
            json,
        } => {
            let (home2, name2, runner2) = (home.clone(), name.clone(), runner.clone());
            with_events(json, None, move |events| async move {
                ops::down(
                    &home2,
                    &name2,
                    backend.map(Into::into),
                    runner2.as_ref(),
                    &events,
                )
                .await
            })
            .await??;
            if !json {
                println!("bottle `{name}` is down");
            }
        }
        Command::Ls { json } => {
            let listing = ops::list(&home, runner.as_ref()).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                print_listing(&listing);
            }
        }
        Command::Plan {
            name,
            backend,
            engine_version,
            json,
        } => {
            let m = manifest::load(&home, &name)?;
            let kind = ops::choose_backend(backend.map(Into::into), m.backend);
            launch::check_support(&m, kind).map_err(anyhow::Error::msg)?;
            let version = match &engine_version {
                Some(v) => Some(
                    bottlebar_core::backend::apple::parse_semver(v)
                        .with_context(|| format!("`{v}` is not a version like 1.2.2"))?,
                ),
                None => None,
            };
            // Planning never runs the engine; the program path is only printed.
            let program = backend::find_engine(kind)
                .map(|e| e.program_str())
                .unwrap_or_else(|_| default_program(kind).into());
            let inputs = BuildInputs::locate()?;
            let spec = launch::describe(
                &home,
                &m,
                kind,
                &program,
                version,
                &inputs,
                launch::choose_dns(&m, kind),
            )?;
            let mut spec = spec;
            let gvisor = launch::gvisor_choice(&m).map_err(anyhow::Error::msg)?;
            spec.gvisor = kind == BackendKind::Docker && gvisor == launch::GvisorChoice::On;
            let plan = launch::plan(&spec);
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.render());
                let engine = bottlebar_core::backend::Engine {
                    kind,
                    program: program.clone().into(),
                };
                let probe = engine.probe_argv(
                    &spec.bottle,
                    &spec.sidecar_image.tag,
                    std::net::IpAddr::from([0, 0, 0, 0]),
                    "",
                    spec.gvisor,
                );
                println!(
                    "\nThen the isolation self-test [{}]: {}\n    (in the agent's network; the sidecar's address for {{sidecar_ip}})\n    ready only if every direct way out fails and the proxy answers",
                    ops::SELF_TEST_STEP,
                    bottlebar_core::selftest::shown(&probe).replace("0.0.0.0", "{sidecar_ip}"),
                );
                if kind == BackendKind::Docker && gvisor == launch::GvisorChoice::Auto {
                    println!("    The agent runs under gVisor (`--runtime runsc`) if Docker has it registered; `[isolation] gvisor` or {}=on|off decide.", launch::GVISOR_ENV);
                }
            }
        }
        Command::Logs { name, follow, json } => return logs(&home, &name, follow, json).await,
        Command::Exec { name, command } => {
            let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
            let argv = ops::exec_argv(&home, &name, &command, tty, runner.as_ref()).await?;
            return run_attached(&argv);
        }
        Command::Shell { name } => {
            let argv = ops::exec_argv(
                &home,
                &name,
                &["sh".to_string()],
                std::io::stdin().is_terminal(),
                runner.as_ref(),
            )
            .await?;
            return run_attached(&argv);
        }
        Command::Doctor { json, fix } => return doctor(json, fix, runner.as_ref()).await,
        Command::Verify { name, json } => {
            let (home2, name2, runner2) = (home.clone(), name.clone(), runner.clone());
            let result = with_events(false, None, move |events| async move {
                ops::verify(&home2, &name2, runner2.as_ref(), &events).await
            })
            .await?;
            match result {
                Ok(record) => {
                    if json {
                        println!("{}", serde_json::to_string_pretty(&record)?);
                    } else {
                        println!("bottle `{name}`: {}", record.summary);
                    }
                }
                Err(e @ ops::OpError::IsolationLeak { .. }) => {
                    if json {
                        if let Some(r) = bottlebar_core::selftest::load(
                            &home,
                            &bottlebar_core::name::BottleName::parse(&name)?,
                        ) {
                            println!("{}", serde_json::to_string_pretty(&r)?);
                        }
                    }
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(EXIT_ISOLATION_LEAK));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Command::Cleanup { backend, json } => {
            let (home2, runner2) = (home.clone(), runner.clone());
            let swept = with_events(json, None, move |events| async move {
                ops::cleanup(&home2, backend.map(Into::into), runner2.as_ref(), &events).await
            })
            .await??;
            if !json {
                if swept.is_empty() {
                    println!("nothing to clean up");
                } else {
                    println!("removed the resources of: {}", swept.join(", "));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn default_program(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Docker => "docker",
        BackendKind::Apple => "container",
    }
}

/// Runs `op` with an event sink, rendering its events as they come. When
/// `launching` is given, it is set once a launch plan starts running. If this
/// future is dropped (Ctrl-C), the operation is aborted with it.
async fn with_events<F, Fut, T>(json: bool, launching: Option<Arc<AtomicBool>>, op: F) -> Result<T>
where
    F: FnOnce(Events) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut task = AbortOnDrop(tokio::spawn(op(Events::new(tx))));
    let mut renderer = Renderer::new(json);
    while let Some(e) = rx.recv().await {
        if let (Some(flag), Event::PlanStarted { .. }) = (&launching, &e) {
            flag.store(true, Ordering::SeqCst);
        }
        renderer.render(&e);
    }
    renderer.finish();
    (&mut task.0).await.context("the operation panicked")
}

/// Ctrl-C during `up`: if a launch had begun, remove what it created (the
/// bottle was not running before, or the plan would not have started).
async fn interrupted_up(
    home: &Home,
    name: &str,
    backend: Option<Backend>,
    launching: bool,
    runner: &ProcessRunner,
) -> Result<ExitCode> {
    if !launching {
        eprintln!("interrupted");
        return Ok(ExitCode::from(130));
    }
    eprintln!("interrupted: removing what this launch created");
    // The aborted launch releases its lock as it unwinds; wait for that briefly.
    for _ in 0..100 {
        match ops::down(home, name, backend.map(Into::into), runner, &Events::none()).await {
            Err(ops::OpError::Busy(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context("cleaning up after the interrupted launch (run `bottle cleanup`)"))
            }
            Ok(()) => {
                eprintln!("removed; nothing of `{name}` is left");
                return Ok(ExitCode::from(130));
            }
        }
    }
    anyhow::bail!("the interrupted launch did not let go of `{name}`; run `bottle cleanup`")
}

enum Renderer {
    Json,
    Plain,
    Live {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
}

impl Renderer {
    fn new(json: bool) -> Self {
        if json {
            Renderer::Json
        } else if std::io::stderr().is_terminal() {
            Renderer::Live {
                multi: MultiProgress::new(),
                bars: HashMap::new(),
            }
        } else {
            Renderer::Plain
        }
    }

    fn render(&mut self, e: &Event) {
        match self {
            Renderer::Json => println!("{}", serde_json::to_string(e).expect("events serialize")),
            Renderer::Plain => {
                if let Some(line) = plain_line(e) {
                    eprintln!("{line}");
                }
            }
            Renderer::Live { multi, bars } => match e {
                Event::StepStarted { step, title, .. } => {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                            .expect("template"),
                    );
                    bar.set_message(title.clone());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bars.insert(step.clone(), bar);
                }
                Event::StepRetrying { step, attempt, of } => {
                    if let Some(bar) = bars.get(step) {
                        let title = bar.message();
                        let base = title.split(" (attempt").next().unwrap_or("").to_string();
                        bar.set_message(format!("{base} (attempt {attempt}/{of})"));
                    }
                }
                Event::StepFinished {
                    step,
                    title,
                    duration_ms,
                } => done(
                    bars,
                    step,
                    format!("✓ {title}  {:.1}s", *duration_ms as f64 / 1000.0),
                ),
                Event::StepSkipped {
                    step,
                    title,
                    reason,
                } => done(bars, step, format!("– {title}  ({reason})")),
                Event::StepFailed { step, title, .. } => done(bars, step, format!("✗ {title}")),
                other => {
                    if let Some(line) = plain_line(other) {
                        let _ = multi.println(line);
                    }
                }
            },
        }
    }

    fn finish(&mut self) {
        if let Renderer::Live { bars, .. } = self {
            for (_, bar) in bars.drain() {
                if !bar.is_finished() {
                    bar.finish();
                }
            }
        }
    }
}

fn done(bars: &mut HashMap<String, ProgressBar>, step: &str, msg: String) {
    if let Some(bar) = bars.get(step) {
        bar.set_style(ProgressStyle::with_template("{msg}").expect("template"));
        bar.finish_with_message(msg);
    }
}

fn plain_line(e: &Event) -> Option<String> {
    Some(match e {
        Event::PlanStarted {
            bottle,
            backend,
            steps,
        } => format!("launching `{bottle}` on {backend} ({} steps)", steps.len()),
        Event::StepStarted { title, .. } => format!("  … {title}"),
        Event::StepRetrying { .. } => return None,
        Event::StepSkipped { title, reason, .. } => format!("  – {title} ({reason})"),
        Event::StepFinished {
            title, duration_ms, ..
        } => format!("  ✓ {title} {:.1}s", *duration_ms as f64 / 1000.0),
        Event::StepFailed { title, .. } => format!("  ✗ {title}"),
        Event::RollbackStarted { .. } => "rolling back what this launch created".into(),
        Event::RollbackStep {
            command, ok, error, ..
        } => {
            format!(
                "  {} {command}{}",
                if *ok { "✓" } else { "✗" },
                error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            )
        }
        Event::RollbackFinished { ok, .. } => (if *ok {
            "rollback complete"
        } else {
            "rollback incomplete; run `bottle cleanup`"
        })
        .into(),
        Event::Ready { .. } => return None,
        Event::SelfTest { summary, .. } => format!("  {summary}"),
        Event::Note { message, .. } => message.clone(),
        Event::Removed { kind, name, .. } => format!("  removed {kind} {name}"),
    })
}

fn print_listing(listing: &ops::Listing) {
    println!(
        "{:<20} {:<14} {:<8} {:<11} {:<16} {:<9} NOTE",
        "NAME", "STATE", "BACKEND", "KEEP-ALIVE", "SIDECAR IP", "UPTIME"
    );
    for b in &listing.bottles {
        let state = match b.state {
            BottleState::Running => "running",
            BottleState::Stopped => "stopped",
            BottleState::Partial => "partial",
            BottleState::NotLaunched => "not launched",
            BottleState::Unknown => "unknown",
            BottleState::IsolationLeak => "isolation leak",
        };
        println!(
            "{:<20} {:<14} {:<8} {:<11} {:<16} {:<9} {}",
            b.name,
            state,
            b.backend,
            if b.keepalive_alive { "alive" } else { "-" },
            b.sidecar_ip.as_deref().unwrap_or("-"),
            b.uptime_secs
                .map(format_uptime)
                .unwrap_or_else(|| "-".into()),
            b.problem.as_deref().unwrap_or("")
        );
    }
    for p in &listing.problems {
        eprintln!("warning: {p}");
    }
}

fn run_attached(argv: &[String]) -> Result<ExitCode> {
    let status = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .status()
        .with_context(|| format!("running {}", argv[0]))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

async fn doctor(json: bool, fix: bool, runner: &ProcessRunner) -> Result<ExitCode> {
    if fix {
        for line in backend::fix(runner).await {
            if !json {
                println!("{line}");
            }
        }
    }
    let mut reports = Vec::new();
    for kind in [BackendKind::Docker, BackendKind::Apple] {
        if kind == BackendKind::Apple
            && !cfg!(target_os = "macos")
            && backend::find_engine(kind).is_err()
        {
            continue; // Apple's runtime only exists on macOS; don't nag Linux users.
        }
        reports.push(backend::status(kind, runner).await);
    }
    let chosen = ops::choose_backend(None, None);
    let sidecar = bottlebar_core::images::find_sidecar_binary()
        .and_then(|p| bottlebar_core::images::check_static_linux_elf(&p).map(|_| p));
    if json {
        let value = serde_json::json!({
            "default_backend": chosen,
            "engines": reports,
            "sidecar_binary": sidecar.as_ref().map(|p| p.display().to_string()).map_err(|e| e.to_string()),
            "static_busybox": bottlebar_core::images::find_static_busybox(),
            "secrets_store": bottlebar_core::keychain::store_in_use().describe(),
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("default backend: {chosen}");
        for r in &reports {
            let ok = r.problem.is_none() && r.running;
            println!("\n{} {}", if ok { "✓" } else { "✗" }, r.kind);
            if let Some(p) = &r.program {
                println!("  program: {}", p.display());
            }
            if let Some(v) = &r.client_version {
                println!("  client:  {v}");
            }
            if let Some(v) = &r.server_version {
                println!("  engine:  {v}");
            }
            if let Some(v) = &r.sandbox {
                println!("  sandbox: {v}");
            }
            if let Some(p) = &r.problem {
                println!("  problem: {p}");
            }
            if let Some(f) = &r.fix {
                println!("  fix:     {f}");
            }
        }
        match &sidecar {
            Ok(p) => println!("\n✓ sidecar binary: {}", p.display()),
            Err(e) => println!("\n✗ sidecar binary: {e}"),
        }
        println!(
            "✓ secrets store: {}",
            bottlebar_core::keychain::store_in_use().describe()
        );
        match bottlebar_core::images::find_static_busybox() {
            Some(p) => println!("✓ static busybox for the demo template: {}", p.display()),
            None => println!(
                "– no static busybox; the demo template will pull {}",
                bottlebar_core::images::BUSYBOX_FALLBACK_IMAGE
            ),
        }
    }
    let chosen_ok = reports
        .iter()
        .any(|r| r.kind == chosen && r.running && r.problem.is_none());
    if !chosen_ok || sidecar.is_err() {
        if !json {
            eprintln!("\nbottle doctor: the {chosen} backend is not ready");
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

async fn logs(home: &Home, name: &str, follow: bool, json: bool) -> Result<ExitCode> {
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
    // Start following before reading the backlog so nothing falls between.
    let mut follower = follow.then(|| audit::Follower::from_end(home, &bottle));
    let backlog = audit::read_all(home, &bottle)
        .with_context(|| format!("reading the audit log of `{name}`"))?;
    if backlog.is_empty() && !follow && !home.state_dir(&bottle).exists() {
        anyhow::bail!("bottle `{name}` has no audit log (it has not been launched, or was removed with `bottle down`)");
    }
    for entry in backlog {
        show(entry, None);
    }
    if let Some(f) = &mut follower {
        loop {
            for line in f.poll() {
                show(audit::parse_line(&line), Some(&line));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
