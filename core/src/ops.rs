//! The operations the CLI and the app offer: up, down, status, cleanup, exec.
//!
//! Each takes a [`Runner`] (the engine) and an [`Events`] sink, so the same code
//! serves a terminal, a window and the tests.

use crate::backend::{self, Engine, EngineError, Inventory};
use crate::events::{Event, Events};
use crate::executor::{self, StepFailed};
use crate::home::Home;
use crate::images::ImageError;
use crate::launch::{self, BuildInputs, MaterializeError, AGENT_KEEPALIVE_SECS};
use crate::manifest::{self, BackendKind, LoadError};
use crate::name::{BottleName, NameError, Role};
use crate::runner::Runner;
use crate::selftest;
use crate::state::{self, StateDirs, StateError};
use serde::Serialize;
use std::fs::File;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("bottle `{bottle}`: {source}")]
    Engine { bottle: String, source: EngineError },
    #[error("bottle `{bottle}`: {source}")]
    Image { bottle: String, source: ImageError },
    #[error("bottle `{bottle}`: preparing its state: {source}")]
    Prepare {
        bottle: String,
        source: MaterializeError,
    },
    #[error("bottle `{bottle}`: {source}")]
    State { bottle: String, source: StateError },
    #[error("bottle `{bottle}`: {source}")]
    Secret {
        bottle: String,
        source: launch::SecretError,
    },
    #[error(transparent)]
    Launch(#[from] StepFailed),
    /// The self-test found a direct way out (or no proxy path): the bottle
    /// was removed, nothing runs.
    #[error("bottle `{bottle}`: {summary}\n  the bottle was stopped and removed (fail closed); details: `bottle verify {bottle}` after fixing, or {record}\n  to accept a documented leak class knowingly, see docs/security.md")]
    IsolationLeak {
        bottle: String,
        summary: String,
        record: String,
    },
    #[error("bottle `{bottle}`: isolation self-test: {source}")]
    SelfTest {
        bottle: String,
        source: crate::selftest::SelfTestError,
    },
    #[error(
        "bottle `{0}` is being launched or removed by another process; try again when it finishes"
    )]
    Busy(String),
    #[error("bottle `{0}` is not running; start it with `bottle up {0}`")]
    NotRunning(String),
    #[error("bottle `{bottle}`: {message}")]
    Unsupported { bottle: String, message: String },
    /// A running sidecar refused (or could not be given) new rules; its
    /// egress is closed until it has valid ones.
    #[error("bottle `{bottle}`: the sidecar did not take the new rules (`{command}`): {detail}\n  its egress is closed until it has valid rules; fix the bottle file and run `bottle up {bottle}` again")]
    Rules {
        bottle: String,
        command: String,
        detail: String,
    },
    #[error("cleanup: {0}")]
    Sweep(EngineError),
    #[error("lock file {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
}

/// The state of a bottle as found on the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BottleState {
    /// Agent and sidecar running, both networks present.
    Running,
    /// Everything present, nothing running (e.g. after the engine restarted).
    Stopped,
    /// Some of it is there: a crash, a killed sidecar, a removed network.
    Partial,
    /// Nothing on the engine.
    NotLaunched,
    /// The engine could not be asked.
    Unknown,
    /// Its last self-test found a way out; it was stopped and removed.
    IsolationLeak,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BottleStatus {
    pub name: String,
    pub state: BottleState,
    pub backend: BackendKind,
    /// Where the manifest came from; `None` for resources with no manifest.
    pub manifest: Option<String>,
    /// The agent's keep-alive process (`sleep 2147483647`) is its running main process.
    pub keepalive_alive: bool,
    pub started_at: Option<String>,
    pub uptime_secs: Option<u64>,
    pub sidecar_ip: Option<String>,
    /// What is wrong, for partial and unknown bottles.
    pub problem: Option<String>,
    /// The last isolation self-test: when it ran and what it found.
    pub self_test: Option<SelfTestSummary>,
}

/// The last self-test of a bottle, as the app and `ls` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelfTestSummary {
    pub at: String,
    pub ready: bool,
    pub summary: String,
}

/// Adds the last self-test to a status; a bottle with nothing on the engine
/// whose last self-test failed is in the "isolation leak" state.
///
/// A running bottle is only "running" once a self-test has passed since its
/// agent started; until then (a launch killed before its self-test, a
/// record lost) it needs attention: `up` replaces it, `cleanup` removes it.
fn with_self_test(home: &Home, name: &BottleName, mut st: BottleStatus) -> BottleStatus {
    let record = selftest::load(home, name);
    if st.state == BottleState::Running {
        let parse = |s: &str| humantime::parse_rfc3339_weak(s).ok();
        let verified = record.as_ref().is_some_and(|r| {
            r.verdict.is_ready()
                && match (st.started_at.as_deref().and_then(parse), parse(&r.at)) {
                    (Some(started), Some(at)) => at >= started,
                    _ => true,
                }
        });
        if !verified {
            st.state = BottleState::Partial;
            st.problem = Some("not verified: no isolation self-test has passed since the agent started; relaunch it (or `bottle verify`)".into());
        }
    }
    if let Some(r) = record {
        let ready = r.verdict.is_ready();
        if !ready && st.state == BottleState::NotLaunched {
            st.state = BottleState::IsolationLeak;
            st.problem = Some(r.summary.clone());
        }
        st.self_test = Some(SelfTestSummary {
            at: r.at,
            ready,
            summary: r.summary,
        });
    }
    st
}

/// Derives a bottle's state from its labelled resources.
pub fn evaluate(
    name: &BottleName,
    backend: BackendKind,
    manifest: Option<String>,
    inv: &Inventory,
) -> BottleStatus {
    let agent = inv.container(Role::Agent);
    let sidecar = inv.container(Role::Sidecar);
    let internal_name = name.resource(Role::Internal);
    let keepalive_alive = agent.is_some_and(|a| {
        a.running && a.command.last().map(String::as_str) == Some(AGENT_KEEPALIVE_SECS)
    });
    let mut missing = Vec::new();
    for (role, present) in [
        (Role::Agent, agent.is_some()),
        (Role::Sidecar, sidecar.is_some()),
        (Role::Internal, inv.network(Role::Internal).is_some()),
        (Role::Egress, inv.network(Role::Egress).is_some()),
    ] {
        if !present {
            missing.push(format!("{} missing", role.as_str()));
        }
    }
    let mut stopped = Vec::new();
    for (role, c) in [(Role::Agent, agent), (Role::Sidecar, sidecar)] {
        if let Some(c) = c.filter(|c| !c.running) {
            stopped.push(format!(
                "{} {}",
                role.as_str(),
                if c.status.is_empty() {
                    "stopped"
                } else {
                    &c.status
                }
            ));
        }
    }
    let any_running = agent.is_some_and(|c| c.running) || sidecar.is_some_and(|c| c.running);
    let state = if inv.is_empty() {
        BottleState::NotLaunched
    } else if missing.is_empty() && stopped.is_empty() && keepalive_alive {
        BottleState::Running
    } else if missing.is_empty() && !any_running {
        BottleState::Stopped
    } else {
        BottleState::Partial
    };
    let mut problems = missing;
    problems.extend(stopped);
    if agent.is_some_and(|a| a.running) && !keepalive_alive {
        problems.push("agent's main process is not the keep-alive".into());
    }
    let started_at = agent
        .filter(|a| a.running)
        .and_then(|a| a.started_at.clone());
    let uptime_secs = started_at
        .as_deref()
        .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(|d| d.as_secs());
    BottleStatus {
        name: name.to_string(),
        state,
        backend,
        manifest,
        keepalive_alive,
        started_at,
        uptime_secs,
        sidecar_ip: sidecar
            .filter(|s| s.running)
            .and_then(|s| s.networks.get(&internal_name))
            .filter(|ip| !ip.is_empty())
            .cloned(),
        problem: (matches!(state, BottleState::Partial | BottleState::Stopped)
            && !problems.is_empty())
        .then(|| problems.join(", ")),
        self_test: None,
    }
}

/// Held while a launch or teardown of one bottle runs; released on drop
/// (and by the kernel if the process dies).
pub struct BottleLock {
    file: File,
}

impl Drop for BottleLock {
    fn drop(&mut self) {
        crate::runner::lock_released(&self.file);
    }
}

/// How long `up`, `down` and `cleanup` wait for a bottle's lock before
/// saying it is busy. A launch killed with SIGKILL releases it only when
/// the engine commands it started have finished (they inherit it).
pub const LOCK_WAIT: Duration = Duration::from_secs(30);
/// `cleanup` waits less per bottle: a launch in progress is not its to sweep.
const CLEANUP_LOCK_WAIT: Duration = Duration::from_secs(10);

/// [`lock`], waiting up to `wait` for another holder to let go.
pub async fn lock_waiting(
    home: &Home,
    name: &BottleName,
    wait: Duration,
    events: &Events,
) -> Result<BottleLock, OpError> {
    let deadline = std::time::Instant::now() + wait;
    let mut told = false;
    loop {
        match lock(home, name) {
            Err(OpError::Busy(_)) if std::time::Instant::now() < deadline => {
                if !told {
                    events.emit(Event::Note {
                        bottle: name.to_string(),
                        message: format!("waiting for another launch or removal of `{name}` (or the engine commands of one that was killed) to finish"),
                    });
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

pub fn lock(home: &Home, name: &BottleName) -> Result<BottleLock, OpError> {
    let path = home.lock_file(name);
    let lock_err = |source| OpError::Lock {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(lock_err)?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    match file.try_lock() {
        Ok(()) => {
            crate::runner::lock_taken(&file);
            Ok(BottleLock { file })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(OpError::Busy(name.to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
    }
}

fn engine_err(bottle: &BottleName) -> impl Fn(EngineError) -> OpError + '_ {
    move |source| OpError::Engine {
        bottle: bottle.to_string(),
        source,
    }
}

/// What `up` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UpOutcome {
    Launched {
        sidecar_ip: String,
        duration_ms: u64,
    },
    AlreadyUp {
        sidecar_ip: Option<String>,
        rules_updated: bool,
    },
}

/// Options for [`up`].
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Overrides the manifest's backend.
    pub backend: Option<BackendKind>,
    /// Where images are built from; located automatically when `None`.
    pub inputs: Option<BuildInputs>,
}

/// Chooses the backend: command line, then manifest, then the machine default.
pub fn choose_backend(cli: Option<BackendKind>, manifest: Option<BackendKind>) -> BackendKind {
    cli.or(manifest).unwrap_or_else(backend::default_backend)
}

/// Launches a bottle. Already up: a no-op that says so. Half there: removed
/// first, then launched afresh. Any failure removes what this launch created.
pub async fn up<R: Runner>(
    home: &Home,
    name: &str,
    opts: UpOptions,
    runner: Arc<R>,
    events: &Events,
) -> Result<UpOutcome, OpError> {
    let manifest = manifest::load(home, name)?;
    let bottle = manifest.name.clone();
    let kind = choose_backend(opts.backend, manifest.backend);
    let engine = backend::find_engine(kind).map_err(engine_err(&bottle))?;
    launch::check_support(&manifest, kind).map_err(|e| OpError::Unsupported {
        bottle: bottle.to_string(),
        message: e,
    })?;
    let version = backend::ensure_ready(&engine, runner.as_ref())
        .await
        .map_err(engine_err(&bottle))?;
    let _lock = lock_waiting(home, &bottle, LOCK_WAIT, events).await?;

    let live = backend::inventory(&engine, runner.as_ref())
        .await
        .map_err(engine_err(&bottle))?
        .of_bottle(bottle.as_str());
    let status = with_self_test(
        home,
        &bottle,
        evaluate(&bottle, kind, Some(manifest.source.clone()), &live),
    );
    let state_dir = home.state_dir(&bottle);
    match status.state {
        // Running, but its state directory is gone (deleted, or another
        // BOTTLEBAR_HOME launched it): its sidecar's mounts are dangling, so
        // it cannot be managed from here. Replace it.
        BottleState::Running if !state_dir.join("sidecar").is_dir() => {
            events.emit(Event::Note {
                bottle: bottle.to_string(),
                message: format!("bottle `{bottle}` is running but its state directory {} is missing; replacing it", state_dir.display()),
            });
            remove_resources(&engine, runner.as_ref(), &bottle, &live, events).await?;
        }
        BottleState::Running => {
            // Already up: bring its rules and secrets up to date; the sidecar reloads them live.
            let secrets =
                launch::resolve_secrets(&bottle, &manifest.secrets).map_err(|source| {
                    OpError::Secret {
                        bottle: bottle.to_string(),
                        source,
                    }
                })?;
            let dirs = StateDirs::new(home.state_dir(&bottle));
            let egress = state::Egress {
                rules: &manifest.egress,
                secrets: &secrets,
                extra_roots: &manifest.extra_roots,
                hosts: &manifest.hosts,
                allow_private_ranges: &manifest.allow_private_ranges,
            };
            let changed =
                state::write_sidecar_files(&dirs, &bottle, &egress).map_err(|source| {
                    OpError::State {
                        bottle: bottle.to_string(),
                        source,
                    }
                })?;
            push_rules(&engine, runner.as_ref(), &bottle, &egress).await?;
            let message = if changed {
                format!("bottle `{bottle}` is already up; its egress rules changed and the sidecar applied them (live connections stay up)")
            } else {
                format!("bottle `{bottle}` is already up")
            };
            events.emit(Event::Note {
                bottle: bottle.to_string(),
                message,
            });
            return Ok(UpOutcome::AlreadyUp {
                sidecar_ip: status.sidecar_ip,
                rules_updated: changed,
            });
        }
        BottleState::NotLaunched => {}
        _ => {
            events.emit(Event::Note {
                bottle: bottle.to_string(),
                message: format!(
                    "bottle `{bottle}` is half there ({}); removing it before launching",
                    status.problem.unwrap_or_default()
                ),
            });
            remove_resources(&engine, runner.as_ref(), &bottle, &live, events).await?;
        }
    }

    // The self-test's targets and accepted leaks, and every secret, are
    // read before anything is created: a problem fails the launch cleanly.
    let policy = self_test_policy(home, &manifest)?;
    let secrets =
        launch::resolve_secrets(&bottle, &manifest.secrets).map_err(|source| OpError::Secret {
            bottle: bottle.to_string(),
            source,
        })?;
    let inputs = match opts.inputs {
        Some(i) => i,
        None => BuildInputs::locate().map_err(|source| OpError::Image {
            bottle: bottle.to_string(),
            source,
        })?,
    };
    let dns = launch::choose_dns(&manifest, kind);
    let spec = launch::describe(
        home,
        &manifest,
        kind,
        &engine.program_str(),
        version,
        &inputs,
        dns,
    )
    .map_err(|source| OpError::Image {
        bottle: bottle.to_string(),
        source,
    })?;
    let state_existed = spec.state.root.exists();
    let discard_state = |spec: &launch::LaunchSpec| {
        if !state_existed {
            let _ = state::remove(&spec.state);
        }
    };
    if let Err(source) = launch::materialize(&spec, &secrets) {
        discard_state(&spec);
        return Err(OpError::Prepare {
            bottle: bottle.to_string(),
            source,
        });
    }
    let mut spec = spec;
    spec.gvisor = match use_gvisor(&engine, runner.as_ref(), &manifest, events).await {
        Ok(g) => g,
        Err(e) => {
            discard_state(&spec);
            return Err(e);
        }
    };
    let started = std::time::Instant::now();
    // Docker: the networks get subnets of Bottlebar's own pool. A clash with
    // a network created meanwhile (a concurrent launch) fails that step and
    // rolls back; choose again, a few times.
    let mut attempt = 0;
    let executed = loop {
        if kind == BackendKind::Docker {
            match choose_subnets(&engine, runner.as_ref(), &bottle, attempt).await {
                Ok(s) => spec.subnets = Some(s),
                Err(e) => {
                    discard_state(&spec);
                    return Err(e);
                }
            }
        }
        let plan = launch::plan(&spec);
        match executor::execute(&plan, runner.clone(), events).await {
            Err(f) if attempt < SUBNET_ATTEMPTS && is_subnet_clash(&f) => {
                attempt += 1;
                events.emit(Event::Note {
                    bottle: bottle.to_string(),
                    message: format!("bottle `{bottle}`: its network's subnet was taken meanwhile; choosing another"),
                });
            }
            other => break other,
        }
    };
    match executed {
        Ok(outcome) => {
            let ip = outcome
                .captured
                .get(crate::plan::SIDECAR_IP)
                .cloned()
                .unwrap_or_default();
            // Step 8: measure isolation. Anything but "isolated" removes the
            // bottle (fail closed) and says which path leaked.
            let tested = self_test(
                home,
                &engine,
                runner.as_ref(),
                &bottle,
                kind,
                &policy,
                events,
            )
            .await;
            if let Err(e) = tested {
                let live = backend::inventory(&engine, runner.as_ref())
                    .await
                    .map(|i| i.of_bottle(bottle.as_str()))
                    .unwrap_or_default();
                remove_resources(&engine, runner.as_ref(), &bottle, &live, events).await?;
                discard_state(&spec);
                return Err(e);
            }
            let duration_ms = started.elapsed().as_millis() as u64;
            events.emit(Event::Ready {
                bottle: bottle.to_string(),
                sidecar_ip: ip.clone(),
                duration_ms,
            });
            Ok(UpOutcome::Launched {
                sidecar_ip: ip,
                duration_ms,
            })
        }
        Err(failed) => {
            discard_state(&spec);
            Err(failed.into())
        }
    }
}

/// Whether this launch runs its agent under gVisor: the manifest's or the
/// environment's choice, and whether Docker has `runsc` registered.
async fn use_gvisor<R: Runner>(
    engine: &Engine,
    runner: &R,
    manifest: &manifest::Manifest,
    events: &Events,
) -> Result<bool, OpError> {
    let bottle = manifest.name.to_string();
    let unsupported = |message: String| OpError::Unsupported {
        bottle: bottle.clone(),
        message,
    };
    let choice = launch::gvisor_choice(manifest).map_err(unsupported)?;
    if engine.kind != BackendKind::Docker || choice == launch::GvisorChoice::Off {
        return Ok(false);
    }
    let runtimes = backend::docker_runtimes(engine, runner)
        .await
        .map_err(engine_err(&manifest.name))?;
    let has = runtimes
        .iter()
        .any(|r| r == backend::docker::GVISOR_RUNTIME);
    if !has && choice == launch::GvisorChoice::On {
        return Err(unsupported(format!(
            "gVisor is required (`[isolation] gvisor = true` or {}=on) but Docker has no `runsc` runtime (it has: {}); install gVisor and register it in /etc/docker/daemon.json",
            launch::GVISOR_ENV,
            runtimes.join(", ")
        )));
    }
    if has {
        events.emit(Event::Note {
            bottle: bottle.clone(),
            message: format!("bottle `{bottle}`: the agent runs under gVisor (runsc)"),
        });
    }
    Ok(has)
}

/// Hands a running sidecar its rules through its control socket (the
/// engine's `exec`, the rules on stdin): the sidecar never re-reads its
/// files, so nothing an agent could write changes what it enforces.
async fn push_rules<R: Runner>(
    engine: &Engine,
    runner: &R,
    bottle: &BottleName,
    egress: &state::Egress<'_>,
) -> Result<(), OpError> {
    let argv = engine.reload_argv(bottle);
    let rules = serde_json::to_vec(&state::live_rules(egress)).expect("rules serialize");
    let out = runner.run_input(&argv, rules).await;
    if out.success() {
        return Ok(());
    }
    Err(OpError::Rules {
        bottle: bottle.to_string(),
        command: crate::plan::display_command(&argv),
        detail: format!(
            "exit {:?}: {} {}",
            out.code,
            out.stdout.trim(),
            out.stderr_tail()
        )
        .trim()
        .to_string(),
    })
}

/// How many times a launch chooses subnets again after a clash.
const SUBNET_ATTEMPTS: u32 = 4;

fn is_subnet_clash(f: &StepFailed) -> bool {
    f.step.ends_with("-network") && f.stderr_tail.contains("overlaps")
}

/// Two free subnets (internal, egress) for a bottle's Docker networks.
async fn choose_subnets<R: Runner>(
    engine: &Engine,
    runner: &R,
    bottle: &BottleName,
    attempt: u32,
) -> Result<(String, String), OpError> {
    let unsupported = |message: String| OpError::Unsupported {
        bottle: bottle.to_string(),
        message,
    };
    let pool = crate::subnets::pool().map_err(unsupported)?;
    let mut taken = backend::docker_subnets(engine, runner)
        .await
        .map_err(engine_err(bottle))?;
    taken.extend(crate::subnets::host_networks());
    let keys = [Role::Internal, Role::Egress].map(|r| bottle.resource(r));
    match crate::subnets::choose(&keys, attempt, pool, &taken) {
        Some(v) => Ok((v[0].to_string(), v[1].to_string())),
        None => Err(unsupported(format!(
            "no free /{} subnet left in {pool} for its networks; remove unused networks or set {} to a larger pool",
            crate::subnets::BOTTLE_PREFIX,
            crate::subnets::POOL_ENV
        ))),
    }
}

/// The self-test's targets, and the leak classes accepted for this bottle
/// (its manifest's and the settings').
fn self_test_policy(
    home: &Home,
    manifest: &manifest::Manifest,
) -> Result<selftest::Policy, OpError> {
    let bottle = manifest.name.to_string();
    let outside = selftest::outside_targets().map_err(|source| OpError::SelfTest {
        bottle: bottle.clone(),
        source,
    })?;
    let mut accepted = selftest::accepted_in_settings(home)
        .map_err(|message| OpError::Unsupported { bottle, message })?;
    for c in &manifest.accept_leaks {
        if !accepted.contains(c) {
            accepted.push(*c);
        }
    }
    Ok(selftest::Policy { outside, accepted })
}

/// The id of the self-test in the launch timeline.
pub const SELF_TEST_STEP: &str = "self-test";

/// Runs the self-test on a running bottle, records it, and reports it as a
/// step. `Ok` only when the bottle is isolated.
async fn self_test<R: Runner>(
    home: &Home,
    engine: &Engine,
    runner: &R,
    bottle: &BottleName,
    kind: BackendKind,
    policy: &selftest::Policy,
    events: &Events,
) -> Result<selftest::Record, OpError> {
    let title = "Isolation self-test: every direct way out must fail".to_string();
    let started = std::time::Instant::now();
    let fail = |source| OpError::SelfTest {
        bottle: bottle.to_string(),
        source,
    };
    let live = backend::inventory(engine, runner)
        .await
        .map_err(engine_err(bottle))?
        .of_bottle(bottle.as_str());
    let sidecar = live.container(Role::Sidecar);
    let ip_on = |role: Role| {
        sidecar
            .and_then(|s| s.networks.get(&bottle.resource(role)))
            .and_then(|ip| ip.split('/').next()?.parse::<std::net::IpAddr>().ok())
    };
    let Some(sidecar_ip) = ip_on(Role::Internal) else {
        return Err(fail(selftest::SelfTestError::ProbeFailed(
            "the sidecar has no address on the internal network".into(),
        )));
    };
    let egress: Vec<std::net::IpAddr> = ip_on(Role::Egress).into_iter().collect();
    let sidecar_image = sidecar.map(|s| s.image.clone()).unwrap_or_default();
    let gvisor = live.container(Role::Agent).is_some_and(|a| a.gvisor);
    events.emit(Event::StepStarted {
        step: SELF_TEST_STEP.into(),
        title: title.clone(),
        command: selftest::shown(&engine.probe_argv(
            bottle,
            &sidecar_image,
            sidecar_ip,
            "",
            gvisor,
        )),
    });
    let subject = selftest::Subject {
        bottle,
        backend: kind,
        sidecar_image: &sidecar_image,
        sidecar_ip,
        egress_addrs: egress,
        gvisor,
    };
    let result = selftest::run(runner, engine, subject, policy).await;
    let duration_ms = started.elapsed().as_millis() as u64;
    let (record, argv) = match result {
        Ok(r) => r,
        Err(e) => {
            events.emit(Event::StepFailed {
                step: SELF_TEST_STEP.into(),
                title,
                command: String::new(),
                exit_code: None,
                stderr_tail: e.to_string(),
                duration_ms,
            });
            return Err(fail(e));
        }
    };
    selftest::save(home, &record).map_err(fail)?;
    events.emit(Event::SelfTest {
        bottle: bottle.to_string(),
        ready: record.verdict.is_ready(),
        summary: record.summary.clone(),
        at: record.at.clone(),
    });
    if record.verdict.is_ready() {
        events.emit(Event::StepFinished {
            step: SELF_TEST_STEP.into(),
            title,
            duration_ms,
        });
        Ok(record)
    } else {
        events.emit(Event::StepFailed {
            step: SELF_TEST_STEP.into(),
            title,
            command: crate::plan::display_command(&argv),
            exit_code: None,
            stderr_tail: record.summary.clone(),
            duration_ms,
        });
        Err(OpError::IsolationLeak {
            bottle: bottle.to_string(),
            summary: record.summary.clone(),
            record: selftest::record_path(home, bottle).display().to_string(),
        })
    }
}

/// The engine, the bottle's lock (waited for), and what of the bottle is
/// on the engine once the lock is held.
async fn locked_inventory<R: Runner>(
    home: &Home,
    bottle: &BottleName,
    kind: BackendKind,
    runner: &R,
    events: &Events,
) -> Result<(Engine, BottleLock, Inventory), OpError> {
    let engine = backend::find_engine(kind).map_err(engine_err(bottle))?;
    let lock = lock_waiting(home, bottle, LOCK_WAIT, events).await?;
    let live = backend::inventory(&engine, runner)
        .await
        .map_err(engine_err(bottle))?
        .of_bottle(bottle.as_str());
    Ok((engine, lock, live))
}

/// `bottle verify`: reruns the self-test on a running bottle. A leak stops
/// it (its containers and networks are removed; its state is kept so a
/// relaunch keeps its CA).
pub async fn verify<R: Runner>(
    home: &Home,
    name: &str,
    runner: &R,
    events: &Events,
) -> Result<selftest::Record, OpError> {
    let manifest = manifest::load(home, name)?;
    let bottle = manifest.name.clone();
    let kind = choose_backend(None, manifest.backend);
    let (engine, _lock, live) = locked_inventory(home, &bottle, kind, runner, events).await?;
    if evaluate(&bottle, kind, None, &live).state != BottleState::Running {
        return Err(OpError::NotRunning(bottle.to_string()));
    }
    let policy = self_test_policy(home, &manifest)?;
    match self_test(home, &engine, runner, &bottle, kind, &policy, events).await {
        Ok(r) => Ok(r),
        Err(e) => {
            remove_resources(&engine, runner, &bottle, &live, events).await?;
            Err(e)
        }
    }
}

async fn remove_resources<R: Runner>(
    engine: &Engine,
    runner: &R,
    bottle: &BottleName,
    inv: &Inventory,
    events: &Events,
) -> Result<(), OpError> {
    backend::remove(engine, runner, inv)
        .await
        .map_err(engine_err(bottle))?;
    for c in &inv.containers {
        events.emit(Event::Removed {
            bottle: bottle.to_string(),
            kind: "container".into(),
            name: c.name.clone(),
        });
    }
    for n in &inv.networks {
        events.emit(Event::Removed {
            bottle: bottle.to_string(),
            kind: "network".into(),
            name: n.name.clone(),
        });
    }
    Ok(())
}

/// The backend a bottle uses, for operations that must work even when its
/// manifest is gone or broken (`down`, `exec`).
fn backend_of(home: &Home, name: &BottleName, cli: Option<BackendKind>) -> BackendKind {
    let from_manifest = manifest::load(home, name.as_str())
        .ok()
        .and_then(|m| m.backend);
    choose_backend(cli, from_manifest)
}

/// Removes every container, network and state file of a bottle. Idempotent;
/// works without a manifest (the manifest itself is kept).
pub async fn down<R: Runner>(
    home: &Home,
    name: &str,
    backend_override: Option<BackendKind>,
    runner: &R,
    events: &Events,
) -> Result<(), OpError> {
    let bottle = BottleName::parse(name)?;
    let kind = backend_of(home, &bottle, backend_override);
    let (engine, _lock, live) = locked_inventory(home, &bottle, kind, runner, events).await?;
    remove_resources(&engine, runner, &bottle, &live, events).await?;
    let dirs = StateDirs::new(home.state_dir(&bottle));
    if state::remove(&dirs).map_err(|source| OpError::State {
        bottle: bottle.to_string(),
        source,
    })? {
        events.emit(Event::Removed {
            bottle: bottle.to_string(),
            kind: "state".into(),
            name: dirs.root.display().to_string(),
        });
    }
    if live.is_empty() {
        events.emit(Event::Note {
            bottle: bottle.to_string(),
            message: format!("bottle `{bottle}` had nothing running"),
        });
    }
    Ok(())
}

/// `bottle ls`: every bottle with a manifest, plus any labelled resources
/// whose bottle has none.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub bottles: Vec<BottleStatus>,
    /// Manifests that could not be read, with why.
    pub problems: Vec<String>,
}

pub async fn list<R: Runner>(home: &Home, runner: &R) -> Listing {
    let (names, mut problems) = manifest::list_names(home);
    let default_kind = choose_backend(None, None);
    let mut entries = Vec::new();
    for name in &names {
        match manifest::load(home, name.as_str()) {
            Ok(m) => entries.push((name, choose_backend(None, m.backend), m.source)),
            Err(e) => {
                problems.push(e.to_string());
                entries.push((
                    name,
                    default_kind,
                    home.bottle_file(name).display().to_string(),
                ));
            }
        }
    }
    // Ask each backend in use once.
    let mut kinds: Vec<BackendKind> = entries.iter().map(|e| e.1).chain([default_kind]).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    let mut inventories = Vec::new();
    for kind in kinds {
        let inv = match backend::find_engine(kind) {
            Ok(engine) => backend::inventory(&engine, runner)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        inventories.push((kind, inv));
    }
    let inventory_of = |kind: BackendKind| {
        &inventories
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("queried above")
            .1
    };

    let mut bottles: Vec<BottleStatus> = entries
        .into_iter()
        .map(|(name, kind, source)| match inventory_of(kind) {
            Ok(inv) => with_self_test(
                home,
                name,
                evaluate(name, kind, Some(source), &inv.of_bottle(name.as_str())),
            ),
            Err(e) => unknown(name, kind, Some(source), e.clone()),
        })
        .collect();
    // Labelled resources of bottles without a manifest (e.g. a deleted file).
    if let Ok(inv) = inventory_of(default_kind) {
        for orphan in inv.bottles() {
            if names.iter().any(|n| n.as_str() == orphan) {
                continue;
            }
            if let Ok(name) = BottleName::parse(&orphan) {
                let mut st = evaluate(&name, default_kind, None, &inv.of_bottle(&orphan));
                st.problem =
                    Some("no manifest; remove with `bottle down` or `bottle cleanup`".into());
                bottles.push(st);
            }
        }
    }
    Listing { bottles, problems }
}

fn unknown(
    name: &BottleName,
    backend: BackendKind,
    manifest: Option<String>,
    problem: String,
) -> BottleStatus {
    BottleStatus {
        name: name.to_string(),
        state: BottleState::Unknown,
        backend,
        manifest,
        keepalive_alive: false,
        started_at: None,
        uptime_secs: None,
        sidecar_ip: None,
        problem: Some(problem),
        self_test: None,
    }
}

/// The status of one bottle.
pub async fn status<R: Runner>(
    home: &Home,
    name: &str,
    runner: &R,
) -> Result<BottleStatus, OpError> {
    let bottle = BottleName::parse(name)?;
    let kind = backend_of(home, &bottle, None);
    let engine = backend::find_engine(kind).map_err(engine_err(&bottle))?;
    let inv = backend::inventory(&engine, runner)
        .await
        .map_err(engine_err(&bottle))?;
    let source = manifest::load(home, name).ok().map(|m| m.source);
    Ok(with_self_test(
        home,
        &bottle,
        evaluate(&bottle, kind, source, &inv.of_bottle(name)),
    ))
}

/// Removes the resources of every bottle that is not fully running (crashed
/// launches, stopped or broken bottles), skipping bottles whose launch is in
/// progress. Returns the names of the bottles swept.
pub async fn cleanup<R: Runner>(
    home: &Home,
    backend_override: Option<BackendKind>,
    runner: &R,
    events: &Events,
) -> Result<Vec<String>, OpError> {
    let kind = choose_backend(backend_override, None);
    let sweeper = BottleName::parse("cleanup").expect("valid");
    let engine = backend::find_engine(kind).map_err(engine_err(&sweeper))?;
    let inv = backend::inventory(&engine, runner)
        .await
        .map_err(engine_err(&sweeper))?;
    let mut swept = Vec::new();
    // The bottles on the engine, and this home's own: a launch of one of
    // them that was killed may still have engine commands creating things.
    let mut owners = inv.bottles();
    for name in manifest::list_names(home).0 {
        if !owners.iter().any(|o| o == name.as_str()) {
            owners.push(name.to_string());
        }
    }
    for owner in owners {
        let Ok(bottle) = BottleName::parse(&owner) else {
            // Not a name Bottlebar would create; leave it alone rather than guess.
            events.emit(Event::Note {
                bottle: owner.clone(),
                message: format!("skipping resources labelled with invalid bottle name `{owner}`"),
            });
            continue;
        };
        // Bottles of this home must also have passed their self-test; a
        // bottle from elsewhere (its record is not here) only has to run.
        let running = |mine: &Inventory| {
            let mut status = evaluate(&bottle, kind, None, mine);
            if home.bottle_file(&bottle).is_file() {
                status = with_self_test(home, &bottle, status);
            }
            status.state == BottleState::Running
        };
        if running(&inv.of_bottle(&owner)) {
            continue;
        }
        // A launch may be under way (or its commands still finishing after
        // it was killed): wait for it, then look again.
        let Ok(_lock) = lock_waiting(home, &bottle, CLEANUP_LOCK_WAIT, events).await else {
            events.emit(Event::Note {
                bottle: owner.clone(),
                message: format!("skipping `{owner}`: a launch is in progress"),
            });
            continue;
        };
        let mine = backend::inventory(&engine, runner)
            .await
            .map_err(engine_err(&sweeper))?
            .of_bottle(&owner);
        if mine.is_empty() || running(&mine) {
            continue;
        }
        remove_resources(&engine, runner, &bottle, &mine, events).await?;
        let dirs = StateDirs::new(home.state_dir(&bottle));
        let _ = state::remove(&dirs);
        swept.push(owner);
    }
    Ok(swept)
}

/// The argv that runs `command` in a running bottle's agent with the terminal
/// attached (`-i`, plus `-t` when `tty`). The caller runs it with inherited stdio.
pub async fn exec_argv<R: Runner>(
    home: &Home,
    name: &str,
    command: &[String],
    tty: bool,
    runner: &R,
) -> Result<Vec<String>, OpError> {
    let st = status(home, name, runner).await?;
    if st.state != BottleState::Running {
        return Err(OpError::NotRunning(name.to_string()));
    }
    let bottle = BottleName::parse(name)?;
    let engine = backend::find_engine(st.backend).map_err(engine_err(&bottle))?;
    let mut argv = vec![engine.program_str(), "exec".into(), "--interactive".into()];
    if tty {
        argv.push("--tty".into());
    }
    argv.push(bottle.resource(Role::Agent));
    argv.extend(command.iter().cloned());
    Ok(argv)
}

/// Formats seconds as `3d 4h`, `2h 5m`, `4m 10s` or `9s`.
pub fn format_uptime(secs: u64) -> String {
    let d = Duration::from_secs(secs);
    let (days, hours, mins, s) = (
        secs / 86400,
        (secs % 86400) / 3600,
        (secs % 3600) / 60,
        d.as_secs() % 60,
    );
    match (days, hours, mins) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {s}s"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{LiveContainer, LiveNetwork};

    fn container(role: Role, running: bool) -> LiveContainer {
        LiveContainer {
            id: role.as_str().into(),
            name: format!("bottlebar-x-{}", role.as_str()),
            bottle: "x".into(),
            role: Some(role),
            running,
            status: if running {
                "running".into()
            } else {
                "exited".into()
            },
            started_at: Some("2026-01-01T00:00:00Z".into()),
            gvisor: false,
            command: if role == Role::Agent {
                vec!["sleep".into(), AGENT_KEEPALIVE_SECS.into()]
            } else {
                vec![]
            },
            image: String::new(),
            networks: [("bottlebar-x-internal".to_string(), "10.1.0.2".to_string())].into(),
        }
    }

    fn network(role: Role) -> LiveNetwork {
        LiveNetwork {
            id: role.as_str().into(),
            name: format!("bottlebar-x-{}", role.as_str()),
            bottle: "x".into(),
            role: Some(role),
            internal: role == Role::Internal,
            attached: vec![],
        }
    }

    fn full(agent_running: bool, sidecar_running: bool) -> Inventory {
        Inventory {
            containers: vec![
                container(Role::Agent, agent_running),
                container(Role::Sidecar, sidecar_running),
            ],
            networks: vec![network(Role::Internal), network(Role::Egress)],
        }
    }

    #[test]
    fn states_follow_the_resources() {
        let x = BottleName::parse("x").unwrap();
        let st = evaluate(&x, BackendKind::Docker, None, &full(true, true));
        assert_eq!(st.state, BottleState::Running);
        assert!(st.keepalive_alive);
        assert_eq!(st.sidecar_ip.as_deref(), Some("10.1.0.2"));
        assert!(st.uptime_secs.unwrap() > 0);

        assert_eq!(
            evaluate(&x, BackendKind::Docker, None, &Inventory::default()).state,
            BottleState::NotLaunched
        );
        assert_eq!(
            evaluate(&x, BackendKind::Docker, None, &full(false, false)).state,
            BottleState::Stopped
        );

        let killed_sidecar = evaluate(&x, BackendKind::Docker, None, &full(true, false));
        assert_eq!(killed_sidecar.state, BottleState::Partial);
        assert_eq!(killed_sidecar.sidecar_ip, None);
        assert!(killed_sidecar.problem.unwrap().contains("sidecar exited"));

        let mut no_net = full(true, true);
        no_net.networks.pop();
        let st = evaluate(&x, BackendKind::Docker, None, &no_net);
        assert_eq!(st.state, BottleState::Partial);
        assert_eq!(st.problem.as_deref(), Some("egress missing"));

        let mut wrong_cmd = full(true, true);
        wrong_cmd.containers[0].command = vec!["sh".into()];
        let st = evaluate(&x, BackendKind::Docker, None, &wrong_cmd);
        assert_eq!(st.state, BottleState::Partial);
        assert!(!st.keepalive_alive);
    }

    #[test]
    fn uptime_formatting() {
        assert_eq!(format_uptime(9), "9s");
        assert_eq!(format_uptime(250), "4m 10s");
        assert_eq!(format_uptime(7500), "2h 5m");
        assert_eq!(format_uptime(3 * 86400 + 4 * 3600 + 5), "3d 4h");
    }

    #[test]
    fn a_second_lock_on_the_same_bottle_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let x = BottleName::parse("x").unwrap();
        let held = lock(&home, &x).unwrap();
        assert!(matches!(lock(&home, &x), Err(OpError::Busy(_))));
        drop(held);
        assert!(lock(&home, &x).is_ok());
    }
}
