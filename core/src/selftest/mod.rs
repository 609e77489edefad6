//! Step 8 of the launch: the isolation self-test.
//!
//! The probe is the sidecar's own binary, run from the sidecar's image in a
//! short-lived container on the agent's network (on Docker, joined to the
//! agent's network namespace; see `backend::Engine::probe_argv`), so nothing
//! the agent does to its own filesystem or processes can replace or fake
//! it. It tries every direct way out; the core judges its report, and trusts
//! it only if it has a result for every path asked for, each with a
//! plausible time. A bottle is ready only when every direct path fails and
//! the proxy path works, except for leak classes the user accepted by name
//! (`[isolation] accept_leaks` in the bottle file, or in `settings.toml`
//! for every bottle).
//!
//! Targets: real-world defaults for users ([`ProbeTargets::real_world`]);
//! `BOTTLEBAR_SELFTEST_TARGETS` (a JSON file) replaces the outside part. A
//! test run (`BOTTLEBAR_TEST_RUN` set) without that override is refused, so
//! no test ever probes the outside world.

use crate::home::Home;
use crate::manifest::BackendKind;
use crate::name::BottleName;
use crate::runner::Runner;
use bottlebar_policy::selftest::{
    path_name, LeakClass, Outcome, PathResult, ProbeReport, ProbeTargets, HOST_SERVICE_PORTS,
    PROBE_EXIT_ISOLATED, PROBE_EXIT_LEAK, PROBE_EXIT_NO_PROXY,
};
use bottlebar_policy::PROXY_PORT;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// A JSON file replacing the real-world outside targets (tests, CI, users
/// behind unusual networks).
pub const TARGETS_ENV: &str = "BOTTLEBAR_SELFTEST_TARGETS";
/// Set by every test run; the self-test then refuses the real-world defaults.
pub const TEST_RUN_ENV: &str = "BOTTLEBAR_TEST_RUN";
/// Most host addresses probed (a machine with many bridges has many).
const MAX_HOST_ADDRS: usize = 64;

/// Why the self-test could not run or be kept.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// A test run without its own targets (it would reach the real internet).
    #[error("this is a test run ({TEST_RUN_ENV} is set) but {TARGETS_ENV} is not: refusing to probe real-world addresses from a test; point {TARGETS_ENV} at the test's own targets")]
    RealWorldInTest,
    /// The targets file is unusable.
    #[error("{TARGETS_ENV}={path}: {message}")]
    BadTargets {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The probe did not run or said nothing usable.
    #[error("the probe did not run: {0}")]
    ProbeFailed(String),
    /// The record could not be written.
    #[error("writing the self-test record {path}: {source}")]
    Record {
        /// The record's file.
        path: String,
        /// The OS's reason.
        source: std::io::Error,
    },
}

/// The outside part of the targets, as an override file gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutsideTargets {
    /// Addresses outside that the agent must not reach (TCP and UDP).
    pub outside: Vec<SocketAddr>,
    /// Resolvers the agent must not reach on port 53.
    pub resolvers: Vec<IpAddr>,
    /// A name the agent must not be able to resolve.
    pub dns_name: String,
    /// Host ports to try on the gateways (the `host` class); default a fixed set.
    #[serde(default)]
    pub host_ports: Option<Vec<u16>>,
}

/// The outside targets: the override file if set, else the real-world
/// defaults (refused in a test run).
pub fn outside_targets() -> Result<OutsideTargets, SelfTestError> {
    match std::env::var_os(TARGETS_ENV) {
        Some(path) => {
            let path = PathBuf::from(path);
            let bad = |message: String| SelfTestError::BadTargets {
                path: path.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
            let t: OutsideTargets =
                serde_json::from_str(&text).map_err(|e| bad(format!("not valid targets: {e}")))?;
            if t.outside.is_empty() {
                return Err(bad("`outside` lists no address".into()));
            }
            Ok(t)
        }
        None if std::env::var_os(TEST_RUN_ENV).is_some() => Err(SelfTestError::RealWorldInTest),
        None => {
            let d = ProbeTargets::real_world(SocketAddr::from(([0, 0, 0, 0], 0)));
            Ok(OutsideTargets {
                outside: d.outside,
                resolvers: d.resolvers,
                dns_name: d.dns_name,
                host_ports: None,
            })
        }
    }
}

/// This machine's own addresses (not loopback, link-local or multicast):
/// the agent must reach none of them.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback() && !ip.is_multicast() && !ip.is_unspecified())
        .filter(|ip| match ip {
            IpAddr::V4(a) => !a.is_link_local(),
            IpAddr::V6(a) => (a.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    v.sort();
    v.dedup();
    v.truncate(MAX_HOST_ADDRS);
    v
}

/// Everything the probe tries for one bottle.
pub fn targets(
    outside: OutsideTargets,
    sidecar_ip: IpAddr,
    egress_addrs: Vec<IpAddr>,
    host_addrs: Vec<IpAddr>,
) -> ProbeTargets {
    ProbeTargets {
        outside: outside.outside,
        resolvers: outside.resolvers,
        dns_name: outside.dns_name,
        // The agent's own network is not the host's: the sidecar's internal
        // address belongs to the bottle and is meant to answer.
        host_addrs: host_addrs
            .into_iter()
            .filter(|a| *a != sidecar_ip)
            .collect(),
        host_ports: outside
            .host_ports
            .unwrap_or_else(|| HOST_SERVICE_PORTS.to_vec()),
        egress_addrs,
        proxy: SocketAddr::new(sidecar_ip, PROXY_PORT),
        timeout_ms: bottlebar_policy::selftest::PROBE_TIMEOUT_MS,
        local_timeout_ms: bottlebar_policy::selftest::PROBE_LOCAL_TIMEOUT_MS,
    }
}

/// The judgement on one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every direct path failed (or leaked only in accepted classes) and
    /// the proxy answered.
    Isolated {
        /// Paths that got through in accepted classes.
        accepted: Vec<PathResult>,
    },
    /// A direct path reached something in a class not accepted.
    Leak {
        /// The paths that got through.
        leaks: Vec<PathResult>,
    },
    /// Isolated, but the agent cannot reach its proxy either.
    NoProxy {
        /// What the probe saw.
        detail: String,
    },
    /// The report cannot be believed: a path asked for is missing, or a
    /// result came faster than the path could have been tried.
    Untrusted {
        /// What gave it away.
        detail: String,
    },
}

impl Verdict {
    /// Whether the bottle may run: isolated.
    pub fn is_ready(&self) -> bool {
        matches!(self, Verdict::Isolated { .. })
    }

    /// One line for the user, naming the first path that leaked.
    pub fn summary(&self) -> String {
        match self {
            Verdict::Isolated { accepted } if accepted.is_empty() => {
                "isolated: every direct path failed and the proxy answered".into()
            }
            Verdict::Isolated { accepted } => format!(
                "isolated except for accepted leaks: {}",
                describe_paths(accepted)
            ),
            Verdict::Leak { leaks } => format!("isolation leak: {}", describe_paths(leaks)),
            Verdict::NoProxy { detail } => format!("the agent cannot reach its proxy: {detail}"),
            Verdict::Untrusted { detail } => {
                format!("the isolation probe's report cannot be trusted: {detail}")
            }
        }
    }
}

fn describe_paths(paths: &[PathResult]) -> String {
    let mut shown: Vec<String> = paths
        .iter()
        .take(3)
        .map(|p| format!("{} ({}: {:?}, {})", p.path, p.class, p.outcome, p.detail))
        .collect();
    if paths.len() > 3 {
        shown.push(format!("and {} more", paths.len() - 3));
    }
    shown.join("; ")
}

/// Slack allowed between the time a report claims and the time its probe
/// ran (process start and exit).
const TIMING_SLACK_MS: u64 = 100;

/// Slack allowed below a path's bound: a timer never fires early, and a
/// path's time is measured from before its timer started, so only the
/// rounding to whole milliseconds is forgiven.
const TIMEOUT_SLACK_MS: u64 = 2;

/// Why a report for `targets` cannot be believed, if it cannot: a path
/// asked for is missing, a path "timed out" sooner than its timeout, or the
/// report claims more time than the probe's command took (`wall_ms`).
pub fn implausible(report: &ProbeReport, targets: &ProbeTargets, wall_ms: u64) -> Option<String> {
    let missing: Vec<String> = targets
        .expected_paths()
        .into_iter()
        .filter(|p| !report.paths.iter().any(|r| &r.path == p))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "{} of the {} paths asked for are missing (first: {})",
            missing.len(),
            targets.expected_paths().len(),
            missing[0]
        ));
    }
    if let Some(p) = report
        .paths
        .iter()
        .find(|p| path_name::target(&p.path).is_none())
    {
        return Some(format!("{:?} is not a path the probe tries", p.path));
    }
    // Each silent path waits its bound: the outside one for the targets'
    // outside addresses, the local one (or longer) for the rest.
    let least_wait =
        |p: &PathResult| path_name::target(&p.path).map_or(0, |to| targets.least_wait_ms(to.ip()));
    if let Some(p) = report.paths.iter().find(|p| {
        p.outcome == Outcome::Blocked
            && p.detail == "timed out"
            && p.ms < least_wait(p).saturating_sub(TIMEOUT_SLACK_MS)
    }) {
        return Some(format!(
            "{} reports a timeout after {} ms, under the {} ms it waits",
            p.path,
            p.ms,
            least_wait(p)
        ));
    }
    if report.elapsed_ms > wall_ms + TIMING_SLACK_MS {
        return Some(format!(
            "the report claims {} ms, but the probe ran for {wall_ms} ms",
            report.elapsed_ms
        ));
    }
    None
}

/// Judges a report: leaks in accepted classes are listed, not fatal.
pub fn judge(report: &ProbeReport, accepted: &[LeakClass]) -> Verdict {
    let (ok, mut bad): (Vec<PathResult>, Vec<PathResult>) = report
        .leaks()
        .cloned()
        .partition(|p| accepted.contains(&p.class));
    // The worst first: a resolved name or an open connection says more than
    // a refusal.
    bad.sort_by_key(|p| match p.outcome {
        Outcome::Resolved | Outcome::Open => 0,
        _ => 1,
    });
    if !bad.is_empty() {
        Verdict::Leak { leaks: bad }
    } else if !report.proxy_ok {
        Verdict::NoProxy {
            detail: report.proxy_detail.clone(),
        }
    } else {
        Verdict::Isolated { accepted: ok }
    }
}

/// The last self-test of a bottle, kept in `$BOTTLEBAR_HOME/selftest/` (not
/// in the state directory: a leak removes the bottle, and the record must
/// say why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The bottle.
    pub bottle: String,
    /// The backend it ran on.
    pub backend: BackendKind,
    /// When it ran (RFC 3339, UTC).
    pub at: String,
    /// The judgement.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The judgement in one line.
    pub summary: String,
    /// Every path the probe tried and what happened.
    pub report: ProbeReport,
}

/// Where a bottle's last self-test record is kept.
pub fn record_path(home: &Home, bottle: &BottleName) -> PathBuf {
    home.root().join("selftest").join(format!("{bottle}.json"))
}

/// Keeps `record` as the bottle's last self-test.
pub fn save(home: &Home, record: &Record) -> Result<(), SelfTestError> {
    let bottle = BottleName::parse(&record.bottle).expect("records are made for valid names");
    let path = record_path(home, &bottle);
    let err = |source| SelfTestError::Record {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(err)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(record).expect("serializes")).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)
}

/// The last record, if any (an unreadable one counts as none).
pub fn load(home: &Home, bottle: &BottleName) -> Option<Record> {
    let text = std::fs::read_to_string(record_path(home, bottle)).ok()?;
    serde_json::from_str(&text).ok()
}

/// What a self-test tries and what it forgives; read before a launch
/// creates anything.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where the probe tries to go.
    pub outside: OutsideTargets,
    /// Leak classes this bottle accepts knowingly.
    pub accepted: Vec<LeakClass>,
}

/// The probe's command for people: its targets (a long JSON) as `…`.
pub fn shown(argv: &[String]) -> String {
    match argv.split_last() {
        Some((_, rest)) => format!("{} …", crate::plan::display_command(rest)),
        None => String::new(),
    }
}

/// What the self-test needs to know about the bottle it tests.
pub struct Subject<'a> {
    /// The bottle.
    pub bottle: &'a BottleName,
    /// Its backend.
    pub backend: BackendKind,
    /// The sidecar's image: the probe runs from it.
    pub sidecar_image: &'a str,
    /// The sidecar's address on the agent's network.
    pub sidecar_ip: IpAddr,
    /// The sidecar's addresses on the egress network.
    pub egress_addrs: Vec<IpAddr>,
    /// The agent runs under gVisor.
    pub gvisor: bool,
}

/// Runs the probe in a running bottle's agent network and judges it.
/// Returns the record and the probe's command.
pub async fn run<R: Runner>(
    runner: &R,
    engine: &crate::backend::Engine,
    subject: Subject<'_>,
    policy: &Policy,
) -> Result<(Record, Vec<String>), SelfTestError> {
    let t = targets(
        policy.outside.clone(),
        subject.sidecar_ip,
        subject.egress_addrs.clone(),
        host_addresses(),
    );
    let targets_json = serde_json::to_string(&t).expect("targets serialize");
    let argv = engine.probe_argv(
        subject.bottle,
        subject.sidecar_image,
        subject.sidecar_ip,
        &targets_json,
        subject.gvisor,
    );
    let started = std::time::Instant::now();
    let out = runner.run(&argv).await;
    let wall_ms = started.elapsed().as_millis() as u64;
    let report = match out.code {
        Some(PROBE_EXIT_ISOLATED | PROBE_EXIT_LEAK | PROBE_EXIT_NO_PROXY) => {
            serde_json::from_str::<ProbeReport>(out.stdout.trim()).map_err(|e| {
                SelfTestError::ProbeFailed(format!(
                    "unreadable report ({e}): {}",
                    out.stdout.trim()
                ))
            })?
        }
        _ => {
            return Err(SelfTestError::ProbeFailed(format!(
                "{} exited with {:?}: {}",
                shown(&argv),
                out.code,
                out.stderr_tail()
            )))
        }
    };
    let verdict = match implausible(&report, &t, wall_ms) {
        Some(detail) => Verdict::Untrusted { detail },
        None => judge(&report, &policy.accepted),
    };
    Ok((
        Record {
            bottle: subject.bottle.to_string(),
            backend: subject.backend,
            at: now(),
            summary: verdict.summary(),
            verdict,
            report,
        },
        argv,
    ))
}

/// The time a record is made, in milliseconds: compared with the agent's
/// start time (`ops::status`).
fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl Record {
    /// The same record, made now.
    pub fn stamped_now(self) -> Self {
        Self { at: now(), ..self }
    }
}

/// Leak classes accepted for every bottle: `accept_leaks` in
/// `$BOTTLEBAR_HOME/settings.toml`. Unreadable settings accept nothing.
pub fn accepted_in_settings(home: &Home) -> Result<Vec<LeakClass>, String> {
    let s = crate::settings::load(home)?;
    let path = home.root().join(crate::settings::SETTINGS_FILE);
    s.accept_leaks
        .iter()
        .map(|c| {
            LeakClass::parse(c).ok_or_else(|| {
                format!(
                    "{}: `accept_leaks`: `{c}` is not a leak class; the classes are {}",
                    path.display(),
                    LeakClass::ALL.map(|c| format!("`{c}`")).join(", ")
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
