//! Stages 4 and 5 of `up`: the plan, and the isolation self-test.
//!
//! The self-test starts during the plan, as soon as everything its probe
//! needs exists (`backend::self_test_starts_after`): on Docker, where
//! Bottlebar chooses the sidecar's addresses, once the agent has started,
//! beside the plan's last steps (the sidecar still starting); on Apple's
//! runtime once the sidecar's addresses are read, beside the agent's start.
//! The probe tries nothing until the proxy answers — the topology it tests
//! is then complete — so this hides the probe container's start without
//! testing any less. Its record is made only once the agent has started: a
//! bottle is *running* only with a self-test passed since its agent
//! started (`ops::status`).

use super::{Preflight, Prepared};
use crate::backend::{self, Engine};
use crate::events::{Event, Events};
use crate::executor::{self, Milestone, StepFailed};
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
use tokio::sync::oneshot;

/// How many times a launch chooses subnets again after a clash.
const SUBNET_ATTEMPTS: u32 = 4;

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
    let test = |spec: &crate::launch::LaunchSpec| {
        let runner = runner.clone();
        let spec = spec.clone();
        move |captured: HashMap<String, String>, agent_started: AgentStarted, events: Events| async move {
            let Some(sidecar) = sidecar_of(&spec, &captured) else {
                return Err(no_sidecar_address(bottle, &captured));
            };
            let runner = runner.as_ref();
            let (engine, kind, policy) = (&pre.engine, pre.kind, &launch.policy);
            let agent_started = async move { agent_started.await.is_ok() };
            self_test(
                home,
                engine,
                runner,
                bottle,
                kind,
                policy,
                sidecar,
                agent_started,
                &events,
            )
            .await
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
        let run =
            plan_with_early_test(&plan, runner.clone(), events, spec.backend, test(&spec)).await;
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
        // A plan that succeeded has run every step, so the self-test has
        // started; only a plan without the steps it waits for gets here.
        None => Err(OpError::SelfTest {
            bottle: bottle.to_string(),
            source: selftest::SelfTestError::ProbeFailed(format!(
                "the self-test never started: the plan has none of the steps {:?}",
                backend::self_test_starts_after(pre.kind)
            )),
        }),
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

/// Told when the plan has started the agent (an error: it never will).
type AgentStarted = oneshot::Receiver<HashMap<String, String>>;

/// The plan, with the self-test (`test`) started once the plan reaches
/// `backend::self_test_starts_after`, given what the plan captured so far
/// and when the agent has started: its result, or `None` when the plan ended
/// before. When the plan fails, the self-test is dropped (its probe ends by
/// itself within its bounds, and the rollback has removed what it tested).
async fn plan_with_early_test<R, T, F>(
    plan: &Plan,
    runner: Arc<R>,
    events: &Events,
    backend: BackendKind,
    test: F,
) -> Result<(executor::Outcome, Option<Result<selftest::Record, OpError>>), StepFailed>
where
    R: Runner,
    T: Future<Output = Result<selftest::Record, OpError>>,
    F: FnOnce(HashMap<String, String>, AgentStarted, Events) -> T,
{
    let (can_start, start) = Milestone::new(backend::self_test_starts_after(backend));
    let (agent_started, agent) = Milestone::new(&[backend::RUN_AGENT]);
    let executed = executor::execute_with(plan, runner, events, vec![can_start, agent_started]);
    let tested = async move {
        match start.await {
            Ok(captured) => Some(test(captured, agent, events.clone()).await),
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
    // A plan that succeeded has reached every step, so the self-test has
    // started too.
    let outcome = planned?;
    let tested = match early {
        Some(t) => t,
        None => tested.await,
    };
    Ok((outcome, tested))
}

/// What the self-test needs of the sidecar: its planned addresses (Docker)
/// or those the plan read so far (`captured`).
fn sidecar_of(
    spec: &crate::launch::LaunchSpec,
    captured: &HashMap<String, String>,
) -> Option<Sidecar> {
    let ip = |placeholder| captured.get(placeholder)?.parse::<IpAddr>().ok();
    let (internal_ip, egress_ip) = match backend::planned_sidecar_addresses(spec) {
        Some((internal, egress)) => (internal, Some(egress)),
        None => (ip(SIDECAR_IP)?, ip(SIDECAR_EGRESS_IP)),
    };
    Some(Sidecar {
        internal_ip,
        egress_ip,
        image: spec.sidecar_image.tag.clone(),
        gvisor: spec.gvisor,
    })
}

/// The launch read no usable internal address of the sidecar.
fn no_sidecar_address(bottle: &BottleName, captured: &HashMap<String, String>) -> OpError {
    OpError::SelfTest {
        bottle: bottle.to_string(),
        source: selftest::SelfTestError::ProbeFailed(format!(
            "the launch read no internal address of the sidecar ({:?})",
            captured.get(SIDECAR_IP)
        )),
    }
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
