//! Supervise on the host side: the proposals a bottle's sidecar filed
//! (`state/<bottle>/requests/`, written by the sidecar only) and the human's
//! decisions on them (`state/<bottle>/decisions/`, written by the core
//! only, never mounted). Both survive an app restart and are seen by the CLI
//! and the app at once. An agent reaches neither: the requests directory is
//! mounted into the sidecar alone.

use crate::home::Home;
use crate::name::BottleName;
use crate::state::{write_private, StateDirs, StateError};
use bottlebar_policy::supervise::{Decision, Grant, Proposal, Scope, Status, GRANTS_FILE};
use serde::Serialize;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A temporary grant in force, as `bottle ls` and the app show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantInForce {
    /// The proposal it answered.
    pub proposal: String,
    /// What it allows.
    pub scope: Scope,
    /// The scope in words.
    pub allows: String,
    /// Good for one request only.
    pub once: bool,
    /// Seconds until it ends; `None` for an "always" grant (its rule is in
    /// the manifest and stays after the sidecar restarts).
    pub seconds_left: Option<u64>,
}

/// The grants bottle `bottle`'s sidecar has in force, as it last published
/// them, less those whose time is up. Only meaningful while it runs.
pub fn grants_in_force(home: &Home, bottle: &BottleName) -> Vec<GrantInForce> {
    let dirs = StateDirs::new(home.state_dir(bottle));
    let Ok(bytes) = std::fs::read(dirs.requests.join(GRANTS_FILE)) else {
        return Vec::new();
    };
    let grants: Vec<Grant> = serde_json::from_slice(&bytes).unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    grants
        .into_iter()
        .filter(|g| g.expires_unix.is_none_or(|t| t > now))
        .map(|g| GrantInForce {
            proposal: g.proposal,
            allows: g.scope.describe(),
            scope: g.scope,
            once: g.once,
            seconds_left: g.expires_unix.map(|t| t - now),
        })
        .collect()
}

/// A proposal and, once answered, its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// What the agent asked for (as the sidecar filed it).
    pub proposal: Proposal,
    /// The human's answer, if given.
    pub decision: Option<Decision>,
    /// Waiting for an answer now.
    pub pending: bool,
    /// Seconds until it stops waiting, while pending.
    pub seconds_left: Option<u64>,
}

fn seconds_until(rfc3339: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()?
        .duration_since(SystemTime::now())
        .ok()
        .map(|d| d.as_secs())
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.ends_with(".json") && !n.starts_with('.')
        })
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect()
}

/// Bottle `bottle`'s requests, oldest first.
pub fn requests(home: &Home, bottle: &BottleName) -> Vec<Request> {
    let dirs = StateDirs::new(home.state_dir(bottle));
    let decisions: Vec<Decision> = read_json(&dirs.decisions);
    let mut out: Vec<Request> = read_json::<Proposal>(&dirs.requests)
        .into_iter()
        .filter(|p| p.bottle == bottle.as_str())
        .map(|proposal| {
            let decision = decisions.iter().find(|d| d.id == proposal.id).cloned();
            let left = seconds_until(&proposal.expires);
            let pending =
                proposal.status == Status::Pending && decision.is_none() && left.is_some();
            Request {
                seconds_left: left.filter(|_| pending),
                pending,
                proposal,
                decision,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.proposal.created, &a.proposal.id).cmp(&(&b.proposal.created, &b.proposal.id))
    });
    out
}

/// Keeps `decision` for bottle `bottle` (0600, atomically).
pub fn record(home: &Home, bottle: &BottleName, decision: &Decision) -> Result<(), StateError> {
    let dirs = StateDirs::new(home.state_dir(bottle));
    std::fs::create_dir_all(&dirs.decisions).map_err(|source| StateError::Io {
        path: dirs.decisions.clone(),
        source,
    })?;
    let path = dirs
        .decisions
        .join(format!("{}.json", safe_id(&decision.id)));
    let json = serde_json::to_vec_pretty(decision).expect("a decision serializes");
    write_private(&path, &json, 0o600)
}

/// An id as a file name: only the characters proposal ids have.
fn safe_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottlebar_policy::supervise::{Answer, Origin, Scope};

    fn proposal(id: &str, status: Status, expires: &str) -> Proposal {
        Proposal {
            id: id.into(),
            bottle: "b".into(),
            created: "2026-11-30T10:00:00Z".into(),
            expires: expires.into(),
            scope: Scope {
                host: "a.example.com".into(),
                port: 443,
                methods: vec![],
                paths: vec![],
            },
            reason: "<b>docs</b>".into(),
            origin: Origin::Tool,
            status,
        }
    }

    #[test]
    fn requests_join_proposals_and_decisions() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let b = BottleName::parse("b").unwrap();
        let dirs = StateDirs::new(home.state_dir(&b));
        std::fs::create_dir_all(&dirs.requests).unwrap();
        let later = humantime::format_rfc3339_seconds(
            SystemTime::now() + std::time::Duration::from_secs(60),
        )
        .to_string();
        for p in [
            proposal("p-1", Status::Pending, &later),
            proposal("p-2", Status::Pending, "2020-01-01T00:00:00Z"),
            proposal("p-3", Status::Approved, &later),
        ] {
            std::fs::write(
                dirs.requests.join(format!("{}.json", p.id)),
                serde_json::to_vec(&p).unwrap(),
            )
            .unwrap();
        }
        std::fs::write(dirs.requests.join(".p-4.tmp"), b"{ half").unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let grant = |id: &str, expires_unix| Grant {
            proposal: id.into(),
            scope: proposal(id, Status::Approved, &later).scope,
            once: false,
            expires_unix,
        };
        let published = [grant("p-3", Some(now + 60)), grant("p-5", Some(now - 1))];
        std::fs::write(
            dirs.requests.join(GRANTS_FILE),
            serde_json::to_vec(&published).unwrap(),
        )
        .unwrap();
        let g = grants_in_force(&home, &b);
        assert_eq!(g.len(), 1, "an ended grant is not shown: {g:?}");
        assert_eq!(g[0].proposal, "p-3");
        assert!((58..=60).contains(&g[0].seconds_left.unwrap()));
        assert_eq!(g[0].allows, "a.example.com port 443 (any method; any path)");
        let d = Decision {
            id: "p-3".into(),
            answer: Answer::Once,
            by: "cli".into(),
            at: "t".into(),
            scope: proposal("p-3", Status::Approved, &later).scope,
        };
        record(&home, &b, &d).unwrap();
        let r = requests(&home, &b);
        assert_eq!(r.len(), 3, "the grants file is not a proposal");
        assert!(r[0].pending && r[0].seconds_left.is_some());
        assert!(!r[1].pending, "past its expiry");
        assert_eq!(r[2].decision.as_ref().unwrap().answer, Answer::Once);
        assert_eq!(r[0].proposal.reason, "<b>docs</b>", "kept as text");
    }
}
