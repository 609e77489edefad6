//! A bottle's state, read from what the engine has of it and its last
//! self-test; `bottle status`, and each bottle of `listing`.

use super::ownership::home_inventory;
use super::{backend_of, engine_err, OpError};
use crate::backend::{self, Inventory};
use crate::home::Home;
use crate::launch::AGENT_KEEPALIVE_SECS;
use crate::manifest::{self, BackendKind};
use crate::name::{BottleName, Role};
use crate::runner::Runner;
use crate::selftest;
use crate::supervise::{self, GrantInForce};
use serde::Serialize;
use std::time::{Duration, SystemTime};

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

impl BottleState {
    /// The state as people read it, the same in the CLI, the tray and the
    /// window.
    pub fn label(self) -> &'static str {
        match self {
            BottleState::Running => "Running",
            BottleState::Stopped => "Stopped",
            BottleState::Partial => "Needs attention",
            BottleState::NotLaunched => "Not launched",
            BottleState::Unknown => "Unknown",
            BottleState::IsolationLeak => "Isolation leak",
        }
    }
}

/// What the engine has of one bottle, as `ls`, the app and the tray show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BottleStatus {
    /// The bottle.
    pub name: String,
    /// Its state.
    pub state: BottleState,
    /// The backend it runs on.
    pub backend: BackendKind,
    /// Where the manifest came from; `None` for resources with no manifest.
    pub manifest: Option<String>,
    /// The agent's keep-alive process (`sleep 2147483647`) is its running main process.
    pub keepalive_alive: bool,
    /// When its agent started (RFC 3339), while running.
    pub started_at: Option<String>,
    /// How long its agent has run.
    pub uptime_secs: Option<u64>,
    /// The sidecar's address on the internal network, while running.
    pub sidecar_ip: Option<String>,
    /// What is wrong, for partial and unknown bottles.
    pub problem: Option<String>,
    /// The last isolation self-test: when it ran and what it found.
    pub self_test: Option<SelfTestSummary>,
    /// The human's temporary grants in force, while running.
    pub grants: Vec<GrantInForce>,
}

/// The status as JSON: its fields, and the state's label beside the state.
impl Serialize for BottleStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            name: &'a str,
            state: BottleState,
            state_label: &'static str,
            backend: BackendKind,
            manifest: &'a Option<String>,
            keepalive_alive: bool,
            started_at: &'a Option<String>,
            uptime_secs: Option<u64>,
            sidecar_ip: &'a Option<String>,
            problem: &'a Option<String>,
            self_test: &'a Option<SelfTestSummary>,
            grants: &'a [GrantInForce],
        }
        View {
            name: &self.name,
            state: self.state,
            state_label: self.state.label(),
            backend: self.backend,
            manifest: &self.manifest,
            keepalive_alive: self.keepalive_alive,
            started_at: &self.started_at,
            uptime_secs: self.uptime_secs,
            sidecar_ip: &self.sidecar_ip,
            problem: &self.problem,
            self_test: &self.self_test,
            grants: &self.grants,
        }
        .serialize(s)
    }
}

/// The last self-test of a bottle, as the app and `ls` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelfTestSummary {
    /// When it ran (RFC 3339).
    pub at: String,
    /// Isolated.
    pub ready: bool,
    /// What it found, in one line.
    pub summary: String,
}

/// Adds what the host keeps of a bottle: its last self-test and, while it
/// runs, the grants in force. A bottle with nothing on the engine whose last
/// self-test failed is in the "isolation leak" state.
///
/// A running bottle is only "running" once a self-test has passed since its
/// agent started; until then (a launch killed before its self-test, a
/// record lost) it needs attention: `up` replaces it, `cleanup` removes it.
pub(super) fn with_host_records(
    home: &Home,
    name: &BottleName,
    mut st: BottleStatus,
) -> BottleStatus {
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
    if st.state == BottleState::Running {
        st.grants = supervise::grants_in_force(home, name);
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
        grants: Vec::new(),
    }
}

/// A bottle whose state could not be read, and why.
pub(super) fn unknown(
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
        grants: Vec::new(),
    }
}

/// The status of one of this home's bottles.
pub async fn status<R: Runner>(
    home: &Home,
    name: &str,
    runner: &R,
) -> Result<BottleStatus, OpError> {
    let bottle = BottleName::parse(name)?;
    let kind = backend_of(home, &bottle, None);
    let engine = backend::find_engine(kind).map_err(engine_err(&bottle))?;
    let inv = home_inventory(home, &home.id()?, &engine, runner)
        .await
        .map_err(engine_err(&bottle))?
        .mine;
    let source = manifest::load(home, name).ok().map(|m| m.source);
    Ok(with_host_records(
        home,
        &bottle,
        evaluate(&bottle, kind, source, &inv.of_bottle(name)),
    ))
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
            home: None,
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
            home: None,
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
}
