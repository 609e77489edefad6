//! `up`: launch a bottle, in named stages.
//!
//! 1. `preflight` — the manifest, the engine (ready, and its version), the
//!    home's id; before the lock, so a missing engine fails fast.
//! 2. `reconcile` — under the lock, what the engine has of the bottle: up
//!    already (its rules and secrets refreshed live), half there (removed
//!    first), another home's (refused), or nothing.
//! 3. `prepare` — everything read or written before the engine is touched:
//!    the self-test's policy, secrets, the launch spec, the state directory
//!    (kept by a [`StateGuard`] only if the launch succeeds).
//! 4. `execute` — the plan, choosing subnets again when another network
//!    took them meanwhile;
//! 5. … and the isolation self-test, as soon as what it tests runs (beside
//!    the plan's last steps when the plan gives the sidecar's addresses);
//!    anything but isolated removes the bottle (fail closed).

mod execute;

use super::lock::{lock_waiting, LOCK_WAIT};
use super::ownership::{home_inventory, Owned};
use super::rules;
use super::status::{evaluate, with_host_records, BottleState};
use super::verify::self_test_policy;
use super::{
    choose_backend, down::remove_resources, engine_err, image_err, prepare_err, secret_err,
    unsupported, OpError,
};
use crate::backend::{self, Engine};
use crate::events::{Event, Events};
use crate::home::{Home, HomeId};
use crate::launch::{self, BuildInputs, LaunchSpec};
use crate::manifest::{self, BackendKind, Manifest};
use crate::runner::Runner;
use crate::selftest;
use crate::state::{self, StateDirs};
use serde::Serialize;
use std::sync::Arc;

/// What `up` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UpOutcome {
    /// Launched and verified isolated.
    Launched {
        /// The sidecar's address on the internal network.
        sidecar_ip: String,
        /// From the plan's start to the self-test's end.
        duration_ms: u64,
    },
    /// It was running: its rules and secrets were brought up to date.
    AlreadyUp {
        /// The sidecar's address on the internal network.
        sidecar_ip: Option<String>,
        /// Whether the sidecar was handed changed rules.
        rules_updated: bool,
    },
}

/// Options for [`up`], and for [`build`](super::build) (where `rebuild`
/// builds afresh and leaves a running bottle as it is).
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Overrides the manifest's backend.
    pub backend: Option<BackendKind>,
    /// Where images are built from; located automatically when `None`.
    pub inputs: Option<BuildInputs>,
    /// Build the agent's image afresh (a template's CLI at its newest),
    /// replacing the bottle if it runs.
    pub rebuild: bool,
}

/// Launches a bottle. Already up: a no-op that says so (and refreshes its
/// rules). Half there: removed first, then launched afresh. Any failure
/// removes what this launch created.
pub async fn up<R: Runner>(
    home: &Home,
    name: &str,
    opts: UpOptions,
    runner: Arc<R>,
    events: &Events,
) -> Result<UpOutcome, OpError> {
    let pre = preflight(home, name, &opts, runner.as_ref()).await?;
    let bottle = pre.manifest.name.clone();
    let _lock = lock_waiting(home, &bottle, LOCK_WAIT, events).await?;
    if let Some(done) = reconcile(home, &pre, opts.rebuild, runner.as_ref(), events).await? {
        return Ok(done);
    }
    let mut launch = prepare(home, &pre, opts.inputs, runner.as_ref(), events).await?;
    launch.spec.rebuild_agent = opts.rebuild;
    let started = std::time::Instant::now();
    let launched = execute::plan_and_self_test(home, &pre, &launch, runner.clone(), events).await?;
    launch.state.keep();
    let duration_ms = started.elapsed().as_millis() as u64;
    events.emit(Event::Ready {
        bottle: bottle.to_string(),
        sidecar_ip: launched.sidecar_ip.clone(),
        duration_ms,
        plan_ms: launched.plan_ms,
    });
    Ok(UpOutcome::Launched {
        sidecar_ip: launched.sidecar_ip,
        duration_ms,
    })
}

/// What stage 1 found.
pub(super) struct Preflight {
    pub manifest: Manifest,
    pub kind: BackendKind,
    pub engine: Engine,
    pub version: Option<(u64, u64, u64)>,
    pub home_id: HomeId,
}

/// Stage 1 (`bottle build`'s too).
pub(super) async fn preflight<R: Runner>(
    home: &Home,
    name: &str,
    opts: &UpOptions,
    runner: &R,
) -> Result<Preflight, OpError> {
    let manifest = manifest::load(home, name)?;
    let bottle = &manifest.name;
    let kind = choose_backend(opts.backend, manifest.backend);
    let engine = backend::find_engine(kind).map_err(engine_err(bottle))?;
    launch::check_support(&manifest, kind).map_err(unsupported(bottle))?;
    let version = backend::ensure_ready(&engine, runner)
        .await
        .map_err(engine_err(bottle))?;
    let home_id = home.id()?;
    Ok(Preflight {
        manifest,
        kind,
        engine,
        version,
        home_id,
    })
}

async fn mine<R: Runner>(home: &Home, pre: &Preflight, runner: &R) -> Result<Owned, OpError> {
    home_inventory(home, &pre.home_id, &pre.engine, runner)
        .await
        .map_err(engine_err(&pre.manifest.name))
}

/// Stage 2: `Some` when the bottle was up already (nothing more to do).
async fn reconcile<R: Runner>(
    home: &Home,
    pre: &Preflight,
    rebuild: bool,
    runner: &R,
    events: &Events,
) -> Result<Option<UpOutcome>, OpError> {
    let bottle = &pre.manifest.name;
    let owned = mine(home, pre, runner).await?;
    for (b, note) in owned.adoption_notes() {
        events.emit(Event::Note {
            bottle: b,
            message: note,
        });
    }
    let foreign = owned.foreign.of_bottle(bottle.as_str());
    if !foreign.is_empty() {
        let home = foreign
            .containers
            .iter()
            .filter_map(|c| c.home.clone())
            .chain(foreign.networks.iter().filter_map(|n| n.home.clone()))
            .next()
            .unwrap_or_else(|| "none: made by an older Bottlebar, with no state here".into());
        return Err(OpError::Foreign {
            bottle: bottle.to_string(),
            home,
        });
    }
    let live = owned.mine.of_bottle(bottle.as_str());
    let source = Some(pre.manifest.source.clone());
    let status = with_host_records(home, bottle, evaluate(bottle, pre.kind, source, &live));
    let state_dir = home.state_dir(bottle);
    let note = |message: String| {
        events.emit(Event::Note {
            bottle: bottle.to_string(),
            message,
        })
    };
    match status.state {
        // Running, but its state directory is gone: its sidecar's mounts
        // are dangling, so it cannot be managed from here. Replace it.
        BottleState::Running if !state_dir.join("sidecar").is_dir() => {
            note(format!(
                "bottle `{bottle}` is running but its state directory {} is missing; replacing it",
                state_dir.display()
            ));
            remove_resources(&pre.engine, runner, bottle, &live, events).await?;
        }
        // Supervise turned on or off: the sidecar's mounts and endpoint are
        // fixed at its start, so it is replaced.
        BottleState::Running if rules::supervise_changed(home, &pre.manifest) => {
            note(format!(
                "bottle `{bottle}`: supervise was turned {}; relaunching it",
                if pre.manifest.supervise { "on" } else { "off" }
            ));
            remove_resources(&pre.engine, runner, bottle, &live, events).await?;
        }
        BottleState::Running if rebuild => {
            note(format!(
                "bottle `{bottle}`: rebuilding its agent's image; relaunching it"
            ));
            remove_resources(&pre.engine, runner, bottle, &live, events).await?;
        }
        BottleState::Running => {
            let rules_updated = rules::refresh(home, &pre.engine, &pre.manifest, runner).await?;
            note(if rules_updated {
                format!("bottle `{bottle}` is already up; its egress rules changed and the sidecar applied them (live connections stay up)")
            } else {
                format!("bottle `{bottle}` is already up")
            });
            return Ok(Some(UpOutcome::AlreadyUp {
                sidecar_ip: status.sidecar_ip,
                rules_updated,
            }));
        }
        BottleState::NotLaunched => {}
        _ => {
            note(format!(
                "bottle `{bottle}` is half there ({}); removing it before launching",
                status.problem.unwrap_or_default()
            ));
            remove_resources(&pre.engine, runner, bottle, &live, events).await?;
        }
    }
    Ok(None)
}

/// What stage 3 made ready.
struct Prepared {
    spec: LaunchSpec,
    policy: selftest::Policy,
    state: StateGuard,
}

/// Stage 3: reads what can fail before anything is created on the engine
/// (policy, secrets, images' inputs) and writes the state directory.
async fn prepare<R: Runner>(
    home: &Home,
    pre: &Preflight,
    inputs: Option<BuildInputs>,
    runner: &R,
    events: &Events,
) -> Result<Prepared, OpError> {
    let m = &pre.manifest;
    let bottle = &m.name;
    let policy = self_test_policy(home, m)?;
    let secrets = launch::resolve_secrets(bottle, &m.secrets).map_err(secret_err(bottle))?;
    let inputs = match inputs {
        Some(i) => i,
        None => BuildInputs::locate().map_err(image_err(bottle))?,
    };
    let dns = launch::choose_dns(m, pre.kind);
    let program = pre.engine.program_str();
    let target = launch::Target {
        backend: pre.kind,
        program: &program,
        version: pre.version,
    };
    let mut spec =
        launch::describe(home, &pre.home_id, m, target, &inputs, dns).map_err(image_err(bottle))?;
    let state = StateGuard::new(&spec.state);
    launch::materialize(&spec, &secrets).map_err(prepare_err(bottle))?;
    spec.gvisor = use_gvisor(&pre.engine, runner, m, events).await?;
    Ok(Prepared {
        spec,
        policy,
        state,
    })
}

/// Removes a state directory this launch created, unless the launch
/// succeeded: every way out of `up` (an error, a `?`, a panic) cleans up.
/// `bottle build` never keeps the one it writes its build contexts in.
pub(super) struct StateGuard {
    dirs: StateDirs,
    existed: bool,
    keep: bool,
}

impl StateGuard {
    pub(super) fn new(dirs: &StateDirs) -> Self {
        StateGuard {
            dirs: dirs.clone(),
            existed: dirs.root.exists(),
            keep: false,
        }
    }

    fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        if !self.keep && !self.existed {
            let _ = state::remove(&self.dirs);
        }
    }
}

/// Whether this launch runs its agent under gVisor: the manifest's or the
/// environment's choice, and whether Docker has `runsc` registered.
async fn use_gvisor<R: Runner>(
    engine: &Engine,
    runner: &R,
    manifest: &Manifest,
    events: &Events,
) -> Result<bool, OpError> {
    let bottle = &manifest.name;
    let choice = launch::gvisor_choice(manifest).map_err(unsupported(bottle))?;
    if engine.kind != BackendKind::Docker || choice == launch::GvisorChoice::Off {
        return Ok(false);
    }
    let runtimes = backend::docker_runtimes(engine, runner)
        .await
        .map_err(engine_err(bottle))?;
    let has = runtimes
        .iter()
        .any(|r| r == backend::docker::GVISOR_RUNTIME);
    if !has && choice == launch::GvisorChoice::On {
        return Err(unsupported(bottle)(format!(
            "gVisor is required (`[isolation] gvisor = true` or {}=on) but Docker has no `runsc` runtime (it has: {}); install gVisor and register it in /etc/docker/daemon.json",
            launch::GVISOR_ENV,
            runtimes.join(", ")
        )));
    }
    if has {
        events.emit(Event::Note {
            bottle: bottle.to_string(),
            message: format!("bottle `{bottle}`: the agent runs under gVisor (runsc)"),
        });
    }
    Ok(has)
}
