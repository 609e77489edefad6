//! Stages 4 and 5 of `up`: the plan, and the isolation self-test.
//!
//! When the plan gives the sidecar's addresses (Docker: Bottlebar chooses
//! the subnets and hands them out), everything the self-test needs is known
//! before the sidecar runs, so its probe's container starts as soon as the
//! agent does, beside the plan's last steps (the sidecar still starting).
//! The probe tries nothing until the proxy answers — the topology it tests
//! is then complete — so this hides the container's start without testing
//! any less. Otherwise (the apple plan reads the sidecar's addresses once it
//! runs) the self-test follows the plan.

use super::{Preflight, Prepared};
use crate::backend::{self, Engine};
use crate::events::{Event, Events};
use crate::executor::{self, StepFailed};
use crate::manifest::BackendKind;
use crate::name::{BottleName, Role};
use crate::ops::down::remove_resources;
use crate::ops::verify::{self_test, Sidecar};
use crate::ops::{engine_err, unsupported, OpError};
use crate::plan::{Plan, SIDECAR_EGRESS_IP, SIDECAR_IP};
use crate::runner::Runner;
use crate::selftest;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

/// How many times a launch chooses subnets again after a clash.
const SUBNET_ATTEMPTS: u32 = 4;

/// The plan step after which an early self-test may start.
const AGENT_STARTED: &str = "run-agent";

/// What a launch that passed its self-test reports.
pub(super) struct Launched {
    /// The sidecar's address on the internal network.
    pub sidecar_ip: String,
    /// How long the plan itself took.
    pub plan_ms: u64,
}

/// Runs the plan (rolled back if it fails) and the self-test; a self-test
/// that does not pass removes what the launch made (fail closed).
pub(super) async fn plan_and_self_test<R: Runner>(
    home: &crate::home::Home,
    pre: &Preflight,
    launch: &Prepared,
    runner: Arc<R>,
    events: &Events,
) -> Result<Launched, OpError> {
    let bottle = &pre.manifest.name;
    let test = |sidecar: Sidecar, events: Events| {
        let runner = runner.clone();
        async move {
            let runner = runner.as_ref();
            let (engine, kind, policy) = (&pre.engine, pre.kind, &launch.policy);
            self_test(home, engine, runner, bottle, kind, policy, sidecar, &events).await
        }
    };
    let mut spec = launch.spec.clone();
    // Docker: the networks get subnets of Bottlebar's own pool. A clash with
    // a network created meanwhile (a concurrent launch) fails that step and
    // rolls back; choose again, a few times.
    let mut attempt = 0;
    let (outcome, tested) = loop {
        if pre.kind == BackendKind::Docker {
            spec.subnets =
                Some(choose_subnets(&pre.engine, runner.as_ref(), bottle, attempt).await?);
        }
        let plan = backend::plan(&spec);
        let run = match backend::planned_sidecar_addresses(&spec) {
            Some((internal_ip, egress_ip)) => {
                let sidecar = Sidecar {
                    internal_ip,
                    egress_ip: Some(egress_ip),
                    image: spec.sidecar_image.tag.clone(),
                    gvisor: spec.gvisor,
                };
                plan_with_early_test(&plan, runner.clone(), events, |e| test(sidecar, e)).await
            }
            None => executor::execute(&plan, runner.clone(), events)
                .await
                .map(|o| (o, None)),
        };
        match run {
            Ok(done) => break done,
            Err(f)
                if attempt < SUBNET_ATTEMPTS
                    && backend::is_subnet_clash(&f.step, &f.stderr_tail) =>
            {
                attempt += 1;
                events.emit(Event::Note {
                    bottle: bottle.to_string(),
                    message: format!("bottle `{bottle}`: its network's subnet was taken meanwhile; choosing another"),
                });
            }
            Err(f) => return Err(f.into()),
        }
    };
    let sidecar_ip = outcome
        .captured
        .get(SIDECAR_IP)
        .cloned()
        .unwrap_or_default();
    let tested = match tested {
        Some(result) => result,
        None => match sidecar_from(&outcome.captured, &spec) {
            Some(sidecar) => test(sidecar, events.clone()).await,
            None => Err(OpError::SelfTest {
                bottle: bottle.to_string(),
                source: selftest::SelfTestError::ProbeFailed(format!(
                    "the launch read no internal address of the sidecar ({sidecar_ip:?})"
                )),
            }),
        },
    };
    if let Err(e) = tested {
        remove_launched(home, pre, runner.as_ref(), bottle, events).await?;
        return Err(e);
    }
    Ok(Launched {
        sidecar_ip,
        plan_ms: outcome.duration.as_millis() as u64,
    })
}

/// The plan, with the self-test (`test`) started once the agent has: its
/// result, or `None` when the plan ended before the agent started. When the
/// plan fails, the self-test is dropped (its probe ends by itself within
/// its bounds, and the rollback has removed what it tested).
async fn plan_with_early_test<R, T, F>(
    plan: &Plan,
    runner: Arc<R>,
    events: &Events,
    test: F,
) -> Result<(executor::Outcome, Option<Result<selftest::Record, OpError>>), StepFailed>
where
    R: Runner,
    T: Future<Output = Result<selftest::Record, OpError>>,
    F: FnOnce(Events) -> T,
{
    let (watched, agent_started) = events.awaiting_step(AGENT_STARTED);
    let executed = executor::execute(plan, runner, &watched);
    let tested = async move {
        match agent_started.await {
            Ok(()) => Some(test(events.clone()).await),
            Err(_) => None,
        }
    };
    tokio::pin!(executed, tested);
    let mut early = None;
    let planned = loop {
        tokio::select! {
            r = &mut executed => break r,
            t = &mut tested, if early.is_none() => early = Some(t),
        }
    };
    // A plan that succeeded has started the agent, so the self-test has
    // started too.
    let outcome = planned?;
    let tested = match early {
        Some(t) => t,
        None => tested.await,
    };
    Ok((outcome, tested))
}

/// What the self-test needs of the sidecar, from what the plan read.
fn sidecar_from(
    captured: &HashMap<String, String>,
    spec: &crate::launch::LaunchSpec,
) -> Option<Sidecar> {
    let ip = |placeholder| captured.get(placeholder)?.parse::<IpAddr>().ok();
    Some(Sidecar {
        internal_ip: ip(SIDECAR_IP)?,
        egress_ip: ip(SIDECAR_EGRESS_IP),
        image: spec.sidecar_image.tag.clone(),
        gvisor: spec.gvisor,
    })
}

/// Removes what a launch whose self-test did not pass made.
async fn remove_launched<R: Runner>(
    home: &crate::home::Home,
    pre: &Preflight,
    runner: &R,
    bottle: &BottleName,
    events: &Events,
) -> Result<(), OpError> {
    let live = super::mine(home, pre, runner).await.unwrap_or_default();
    let of_bottle = live.mine.of_bottle(bottle.as_str());
    remove_resources(&pre.engine, runner, bottle, &of_bottle, events).await
}

/// Two free subnets (internal, egress) for a bottle's Docker networks.
async fn choose_subnets<R: Runner>(
    engine: &Engine,
    runner: &R,
    bottle: &BottleName,
    attempt: u32,
) -> Result<(String, String), OpError> {
    let pool = crate::subnets::pool().map_err(unsupported(bottle))?;
    let mut taken = backend::docker_subnets(engine, runner)
        .await
        .map_err(engine_err(bottle))?;
    taken.extend(crate::subnets::host_networks());
    let keys = [Role::Internal, Role::Egress].map(|r| bottle.resource(r));
    match crate::subnets::choose(&keys, attempt, pool, &taken) {
        Some(v) => Ok((v[0].to_string(), v[1].to_string())),
        None => Err(unsupported(bottle)(format!(
            "no free /{} subnet left in {pool} for its networks; remove unused networks or set {} to a larger pool",
            crate::subnets::BOTTLE_PREFIX,
            crate::subnets::POOL_ENV
        ))),
    }
}
