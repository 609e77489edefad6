//! The isolation self-test, as the last stage of `up` and as `bottle
//! verify`: every direct way out of the agent's network must fail.

use super::lock::{lock_waiting, LOCK_WAIT};
use super::ownership::home_inventory;
use super::status::{evaluate, BottleState};
use super::{choose_backend, down::remove_resources, engine_err, OpError};
use crate::backend::{self, Engine, Inventory};
use crate::events::{Event, Events};
use crate::home::Home;
use crate::manifest::{self, BackendKind};
use crate::name::{BottleName, Role};
use crate::runner::Runner;
use crate::selftest;
use std::net::IpAddr;

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
    let engine = backend::find_engine(kind).map_err(engine_err(&bottle))?;
    let id = home.id()?;
    let _lock = lock_waiting(home, &bottle, LOCK_WAIT, events).await?;
    let live = home_inventory(home, &id, &engine, runner)
        .await
        .map_err(engine_err(&bottle))?
        .mine
        .of_bottle(bottle.as_str());
    if evaluate(&bottle, kind, None, &live).state != BottleState::Running {
        return Err(OpError::NotRunning(bottle.to_string()));
    }
    let policy = self_test_policy(home, &manifest)?;
    let tested = match Sidecar::of(&bottle, &live) {
        Ok(sidecar) => {
            let agent_started = std::future::ready(true);
            self_test(
                home,
                &engine,
                runner,
                &bottle,
                kind,
                &policy,
                sidecar,
                agent_started,
                events,
            )
            .await
        }
        Err(source) => Err(OpError::SelfTest {
            bottle: bottle.to_string(),
            source,
        }),
    };
    match tested {
        Ok(r) => Ok(r),
        Err(e) => {
            remove_resources(&engine, runner, &bottle, &live, events).await?;
            Err(e)
        }
    }
}

/// The self-test's targets, and the leak classes accepted for this bottle
/// (its manifest's and the settings').
pub(super) fn self_test_policy(
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

/// What the self-test needs to know of a running bottle's sidecar: a launch
/// knows it already; `verify` reads it from the engine.
pub(super) struct Sidecar {
    /// Its address on the internal network (the agent's proxy).
    pub internal_ip: IpAddr,
    /// Its address on the egress network, tried from the agent's side.
    pub egress_ip: Option<IpAddr>,
    /// Its image: the probe runs from it.
    pub image: String,
    /// The agent runs under gVisor.
    pub gvisor: bool,
}

impl Sidecar {
    /// Read from what the engine has of the bottle.
    pub fn of(bottle: &BottleName, live: &Inventory) -> Result<Self, selftest::SelfTestError> {
        let sidecar = live.container(Role::Sidecar);
        let ip_on = |role: Role| {
            sidecar
                .and_then(|s| s.networks.get(&bottle.resource(role)))
                .and_then(|ip| ip.split('/').next()?.parse::<IpAddr>().ok())
        };
        let internal_ip = ip_on(Role::Internal).ok_or_else(|| {
            selftest::SelfTestError::ProbeFailed(
                "the sidecar has no address on the internal network".into(),
            )
        })?;
        Ok(Sidecar {
            internal_ip,
            egress_ip: ip_on(Role::Egress),
            image: sidecar.map(|s| s.image.clone()).unwrap_or_default(),
            gvisor: live.container(Role::Agent).is_some_and(|a| a.gvisor),
        })
    }
}

/// Runs the self-test on a running bottle, records it once
/// `agent_started` says the agent has started (`false`: it never will), and
/// reports it as a step. `Ok` only when the bottle is isolated.
#[allow(clippy::too_many_arguments)]
pub(super) async fn self_test<R: Runner>(
    home: &Home,
    engine: &Engine,
    runner: &R,
    bottle: &BottleName,
    kind: BackendKind,
    policy: &selftest::Policy,
    sidecar: Sidecar,
    agent_started: impl std::future::Future<Output = bool>,
    events: &Events,
) -> Result<selftest::Record, OpError> {
    let title = "Isolation self-test: every direct way out must fail".to_string();
    let started = std::time::Instant::now();
    let fail = |source| OpError::SelfTest {
        bottle: bottle.to_string(),
        source,
    };
    let (sidecar_ip, sidecar_image, gvisor) = (sidecar.internal_ip, sidecar.image, sidecar.gvisor);
    let egress: Vec<IpAddr> = sidecar.egress_ip.into_iter().collect();
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
    // A probe started beside the agent's start (Apple) can end before it:
    // the record waits for the agent, since a bottle is "running" only with
    // a self-test passed since its agent started — and the network the
    // probe tried is the one the agent has joined.
    let result = match (result, agent_started.await) {
        (Ok((record, argv)), true) => Ok((record.stamped_now(), argv)),
        (Ok(_), false) => Err(selftest::SelfTestError::ProbeFailed(
            "the launch ended before its agent started".into(),
        )),
        (Err(e), _) => Err(e),
    };
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
