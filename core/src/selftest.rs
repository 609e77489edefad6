//! Step 8 of the launch: the isolation self-test.
//!
//! The probe (the static sidecar binary, mounted read-only into the agent at
//! [`PROBE_DIR_IN_AGENT`]) runs inside the agent through the engine's `exec`
//! and tries every direct way out; the core judges its report. A bottle is
//! ready only when every direct path fails and the proxy path works, except
//! for leak classes the user accepted by name (`[isolation] accept_leaks` in
//! the bottle file, or in `settings.toml` for every bottle).
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
    LeakClass, Outcome, PathResult, ProbeReport, ProbeTargets, HOST_SERVICE_PORTS,
    PROBE_EXIT_ISOLATED, PROBE_EXIT_LEAK, PROBE_EXIT_NO_PROXY,
};
use bottlebar_policy::PROXY_PORT;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Where the probe directory is mounted in the agent.
pub const PROBE_DIR_IN_AGENT: &str = "/.bottlebar/probe";
/// The probe binary's file name in that directory.
pub const PROBE_BIN: &str = "bottlebar-sidecar";
/// A JSON file replacing the real-world outside targets (tests, CI, users
/// behind unusual networks).
pub const TARGETS_ENV: &str = "BOTTLEBAR_SELFTEST_TARGETS";
/// Set by every test run; the self-test then refuses the real-world defaults.
pub const TEST_RUN_ENV: &str = "BOTTLEBAR_TEST_RUN";
/// Most host addresses probed (a machine with many bridges has many).
const MAX_HOST_ADDRS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    #[error("this is a test run ({TEST_RUN_ENV} is set) but {TARGETS_ENV} is not: refusing to probe real-world addresses from a test; point {TARGETS_ENV} at the test's own targets")]
    RealWorldInTest,
    #[error("{TARGETS_ENV}={path}: {message}")]
    BadTargets { path: String, message: String },
    #[error("the probe did not run: {0}")]
    ProbeFailed(String),
    #[error("writing the self-test record {path}: {source}")]
    Record {
        path: String,
        source: std::io::Error,
    },
}

/// The outside part of the targets, as an override file gives it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutsideTargets {
    pub outside: Vec<SocketAddr>,
    pub resolvers: Vec<IpAddr>,
    pub dns_name: String,
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
    }
}

/// The command that runs the probe in the agent: `<engine> exec <agent>
/// /.bottlebar/probe/bottlebar-sidecar probe --targets <json>`. The same on
/// both backends.
pub fn probe_argv(engine: &str, agent: &str, targets: &ProbeTargets) -> Vec<String> {
    vec![
        engine.to_string(),
        "exec".into(),
        agent.to_string(),
        format!("{PROBE_DIR_IN_AGENT}/{PROBE_BIN}"),
        "probe".into(),
        "--targets".into(),
        serde_json::to_string(targets).expect("targets serialize"),
    ]
}

/// Copies the probe into the directory mounted into the agent (read-only
/// and executable; a copy from an earlier launch is replaced).
pub fn stage_probe(probe_bin: &Path, dir: &Path) -> Result<(), crate::state::StateError> {
    use std::os::unix::fs::PermissionsExt;
    let dest = dir.join(PROBE_BIN);
    let failed = |source| crate::state::StateError::Io {
        path: dest.clone(),
        source,
    };
    match std::fs::remove_file(&dest) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    std::fs::copy(probe_bin, &dest).map_err(failed)?;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o555)).map_err(failed)
}

/// The judgement on one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every direct path failed (or leaked only in accepted classes) and
    /// the proxy answered.
    Isolated { accepted: Vec<PathResult> },
    /// A direct path reached something in a class not accepted.
    Leak { leaks: Vec<PathResult> },
    /// Isolated, but the agent cannot reach its proxy either.
    NoProxy { detail: String },
}

impl Verdict {
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
    pub bottle: String,
    pub backend: BackendKind,
    /// When it ran (RFC 3339, UTC).
    pub at: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub summary: String,
    pub report: ProbeReport,
}

pub fn record_path(home: &Home, bottle: &BottleName) -> PathBuf {
    home.root().join("selftest").join(format!("{bottle}.json"))
}

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
    pub outside: OutsideTargets,
    pub accepted: Vec<LeakClass>,
}

/// Runs the probe in a running agent and judges it.
pub async fn run<R: Runner>(
    runner: &R,
    engine: &str,
    bottle: &BottleName,
    backend: BackendKind,
    policy: &Policy,
    sidecar_ip: IpAddr,
    egress_addrs: Vec<IpAddr>,
) -> Result<(Record, Vec<String>), SelfTestError> {
    let t = targets(
        policy.outside.clone(),
        sidecar_ip,
        egress_addrs,
        host_addresses(),
    );
    let argv = probe_argv(engine, &bottle.resource(crate::name::Role::Agent), &t);
    let out = runner.run(&argv).await;
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
                crate::plan::display_command(&argv[..5]),
                out.code,
                out.stderr_tail()
            )))
        }
    };
    let verdict = judge(&report, &policy.accepted);
    Ok((
        Record {
            bottle: bottle.to_string(),
            backend,
            // Milliseconds: compared with the agent's start time.
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            summary: verdict.summary(),
            verdict,
            report,
        },
        argv,
    ))
}

/// Leak classes accepted for every bottle: `accept_leaks` in
/// `$BOTTLEBAR_HOME/settings.toml`. Unreadable settings accept nothing.
pub fn accepted_in_settings(home: &Home) -> Result<Vec<LeakClass>, String> {
    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        accept_leaks: Vec<String>,
    }
    let path = home.root().join("settings.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let s: Settings = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
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
mod tests {
    use super::*;

    fn path(class: LeakClass, p: &str, outcome: Outcome) -> PathResult {
        PathResult {
            class,
            path: p.into(),
            outcome,
            detail: "x".into(),
        }
    }

    fn report(paths: Vec<PathResult>, proxy_ok: bool) -> ProbeReport {
        ProbeReport {
            paths,
            proxy_ok,
            proxy_detail: "proxy at 10.0.0.2:3128 answered".into(),
            elapsed_ms: 1500,
        }
    }

    #[test]
    fn judges_leaks_accepted_classes_and_the_proxy_path() {
        let blocked = path(LeakClass::OutsideIpv4, "tcp 10.9.9.9:443", Outcome::Blocked);
        let host = path(LeakClass::Host, "tcp 10.0.0.1:22", Outcome::Refused);
        let r = report(vec![blocked.clone()], true);
        assert_eq!(judge(&r, &[]), Verdict::Isolated { accepted: vec![] });
        let r = report(vec![blocked.clone(), host.clone()], true);
        let v = judge(&r, &[]);
        assert_eq!(
            v,
            Verdict::Leak {
                leaks: vec![host.clone()]
            }
        );
        assert!(v.summary().contains("tcp 10.0.0.1:22"), "{}", v.summary());
        assert!(!v.is_ready());
        // Accepting the class makes it ready, and says what was accepted.
        let v = judge(&r, &[LeakClass::Host]);
        assert!(v.is_ready());
        assert!(v.summary().contains("accepted"), "{}", v.summary());
        // Accepting another class does not.
        assert!(!judge(&r, &[LeakClass::Dns]).is_ready());
        // No proxy: not ready, even when nothing leaked.
        let v = judge(&report(vec![blocked], false), &[]);
        assert!(matches!(v, Verdict::NoProxy { .. }));
    }

    #[test]
    fn targets_leave_out_the_bottles_own_proxy() {
        let outside = OutsideTargets {
            outside: vec!["10.9.9.9:443".parse().unwrap()],
            resolvers: vec!["10.9.9.9".parse().unwrap()],
            dns_name: "outside.test".into(),
            host_ports: None,
        };
        let sidecar: IpAddr = "10.0.0.2".parse().unwrap();
        let t = targets(
            outside,
            sidecar,
            vec!["10.1.0.2".parse().unwrap()],
            vec![sidecar, "192.168.1.5".parse().unwrap()],
        );
        assert_eq!(t.host_addrs, vec!["192.168.1.5".parse::<IpAddr>().unwrap()]);
        assert_eq!(t.proxy, "10.0.0.2:3128".parse().unwrap());
        assert_eq!(t.host_ports, HOST_SERVICE_PORTS);
        let argv = probe_argv("docker", "bottlebar-x-agent", &t);
        assert_eq!(argv[3], "/.bottlebar/probe/bottlebar-sidecar");
        let back: ProbeTargets = serde_json::from_str(&argv[6]).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn host_addresses_exclude_loopback_and_link_local() {
        for a in host_addresses() {
            assert!(!a.is_loopback(), "{a}");
        }
    }
}
