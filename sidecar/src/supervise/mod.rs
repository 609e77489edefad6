//! Supervise: the agent asks for a host, the human answers, the grant is
//! exact and expires.
//!
//! - [`Supervisor`]: the approval queue — proposals validated by the policy
//!   crate, rate-limited and coalesced, filed for the host ([`store`]),
//!   waited on; decisions (from the core, through the control socket, never
//!   from the agent) become grants in [`Live`] and wake the waiters; an
//!   expiry task ends grants and unanswered proposals on time;
//! - [`mcp`]: the MCP server the agent talks to (`egress_rules`,
//!   `request_egress`, `request_status`), over Streamable HTTP ([`http`]).
//!
//! Every proposal, decision and expiry is an audit line.

mod expiry;
pub mod http;
pub mod mcp;
mod store;

use crate::audit::{now_rfc3339, AuditLog, Entry};
use crate::config::Live;
use bottlebar_policy::supervise::{
    human_seconds, Answer, Decision, EgressAsk, Grant, Origin, Proposal, Scope, Status,
    SuperviseConfig,
};
use bottlebar_policy::{AuditKind, Verdict};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::Store;
use tokio::sync::{watch, Notify};

/// How long a once-only grant waits to be used.
const ONCE_GRANT_SECONDS: u64 = 3600;
/// Denials kept for `egress_rules`.
const RECENT_DENIALS: usize = 50;

/// How a proposal ended, as its waiters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed: the grant's scope and how long.
    Approved {
        /// The human's answer (once, for a while, always).
        answer: Answer,
        /// What is allowed.
        scope: Scope,
        /// When it ends (Unix seconds), if it does.
        expires_unix: Option<u64>,
    },
    /// Refused, with the human's note.
    Denied {
        /// The note, if any.
        note: Option<String>,
    },
    /// Nobody answered before the proposal expired.
    Expired,
}

/// A request the proxy refused, as `egress_rules` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Denial {
    /// When (RFC 3339).
    pub time: String,
    /// The method.
    pub method: String,
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The path, with anything secret masked.
    pub path: String,
    /// The reason's code.
    pub reason: String,
}

struct Pending {
    proposal: Proposal,
    outcome: watch::Sender<Option<Outcome>>,
    ends: Instant,
}

#[derive(Default)]
struct Queue {
    proposals: BTreeMap<String, Pending>,
    /// When recent proposals were filed, for the per-minute limit.
    filed: VecDeque<Instant>,
}

/// The approval queue of one bottle.
pub struct Supervisor {
    bottle: String,
    config: SuperviseConfig,
    live: Arc<Live>,
    audit: Arc<AuditLog>,
    store: Option<Store>,
    queue: Mutex<Queue>,
    denials: Mutex<VecDeque<Denial>>,
    /// Wakes the expiry task when grants or proposals change.
    changed: Notify,
    counter: AtomicU64,
}

/// A proposal filed (or an identical one found pending).
#[derive(Debug, Clone)]
pub struct Filed {
    /// The proposal's id.
    pub id: String,
    /// An identical proposal was already waiting; this is that one.
    pub coalesced: bool,
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn rfc3339_in(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(seconds)).to_string()
}

impl Supervisor {
    /// The queue for `bottle`, filing proposals where `config` says, and
    /// its expiry task. Proposals left pending by an earlier run (the
    /// sidecar restarted) are taken back.
    pub fn start(
        bottle: &str,
        config: SuperviseConfig,
        live: Arc<Live>,
        audit: Arc<AuditLog>,
    ) -> Arc<Self> {
        let store = (!config.requests_dir.is_empty())
            .then(|| Store::open(std::path::Path::new(&config.requests_dir)))
            .and_then(|r| {
                r.map_err(|e| tracing::error!("supervise: cannot use {}: {e}", config.requests_dir))
                    .ok()
            });
        if let Some(store) = store.clone() {
            // The host shows the grants with their time left (`bottle ls`).
            live.watch_grants(Box::new(move |grants| {
                if let Err(e) = store.write_grants(grants) {
                    tracing::warn!("supervise: cannot publish the grants: {e}");
                }
            }));
        }
        let sup = Arc::new(Supervisor {
            bottle: bottle.to_string(),
            config,
            live,
            audit,
            store,
            queue: Mutex::default(),
            denials: Mutex::default(),
            changed: Notify::new(),
            counter: AtomicU64::new(0),
        });
        sup.take_back_pending();
        tokio::spawn(expiry::run(sup.clone()));
        sup
    }

    /// The bottle's settings.
    pub fn config(&self) -> &SuperviseConfig {
        &self.config
    }

    /// The bottle.
    pub fn bottle(&self) -> &str {
        &self.bottle
    }

    fn take_back_pending(&self) {
        let Some(store) = &self.store else { return };
        let mut q = lock(&self.queue);
        for p in store
            .load()
            .into_iter()
            .filter(|p| p.status == Status::Pending)
        {
            let left = humantime::parse_rfc3339_weak(&p.expires)
                .ok()
                .and_then(|t| t.duration_since(SystemTime::now()).ok())
                .unwrap_or_default();
            let (tx, _) = watch::channel(None);
            q.proposals.insert(
                p.id.clone(),
                Pending {
                    proposal: p,
                    outcome: tx,
                    ends: Instant::now() + left,
                },
            );
        }
    }

    fn next_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("p-{:010x}{:03x}", ms & 0xff_ffff_ffff, n & 0xfff)
    }

    /// Files a proposal for `ask`: validated as a manifest rule is, within
    /// the bottle's limits, coalesced with an identical pending one. The
    /// error is for the agent (it never reaches the human).
    pub fn ask(&self, ask: &EgressAsk, origin: Origin) -> Result<Filed, String> {
        let (scope, reason) = ask.validate(self.config.allow_wildcards)?;
        let mut q = lock(&self.queue);
        if let Some(p) = q
            .proposals
            .values()
            .find(|p| p.proposal.status == Status::Pending && p.proposal.scope == scope)
        {
            return Ok(Filed {
                id: p.proposal.id.clone(),
                coalesced: true,
            });
        }
        let pending = q
            .proposals
            .values()
            .filter(|p| p.proposal.status == Status::Pending)
            .count();
        if pending >= self.config.max_pending {
            return Err(format!(
                "{pending} requests are already waiting for the human (the limit is {}); wait for an answer before asking for more",
                self.config.max_pending
            ));
        }
        let now = Instant::now();
        while q
            .filed
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            q.filed.pop_front();
        }
        if q.filed.len() >= self.config.per_minute {
            return Err(format!(
                "at most {} requests a minute; wait before asking again",
                self.config.per_minute
            ));
        }
        q.filed.push_back(now);
        let ttl = self.config.proposal_ttl_seconds;
        let proposal = Proposal {
            id: self.next_id(),
            bottle: self.bottle.clone(),
            created: now_rfc3339(),
            expires: rfc3339_in(ttl),
            scope,
            reason,
            origin,
            status: Status::Pending,
        };
        self.file(&proposal);
        self.record(
            AuditKind::Proposal,
            &proposal,
            Verdict::Deny,
            format!(
                "{} asked for {}: {}",
                origin_word(origin),
                proposal.scope.describe(),
                proposal.reason
            ),
        );
        let (tx, _) = watch::channel(None);
        let id = proposal.id.clone();
        q.proposals.insert(
            id.clone(),
            Pending {
                proposal,
                outcome: tx,
                ends: now + Duration::from_secs(ttl),
            },
        );
        drop(q);
        self.changed.notify_one();
        Ok(Filed {
            id,
            coalesced: false,
        })
    }

    /// Waits up to `timeout` for proposal `id` to be answered; `None` when
    /// it was not (or there is no such proposal).
    pub async fn wait(&self, id: &str, timeout: Duration) -> Option<Outcome> {
        let mut rx = {
            let q = lock(&self.queue);
            let p = q.proposals.get(id)?;
            p.outcome.subscribe()
        };
        let answered = async {
            loop {
                if let Some(o) = rx.borrow_and_update().clone() {
                    return Some(o);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::time::timeout(timeout, answered).await.ok().flatten()
    }

    /// Proposal `id` and its outcome, if it has one.
    pub fn status(&self, id: &str) -> Option<(Proposal, Option<Outcome>)> {
        let q = lock(&self.queue);
        let p = q.proposals.get(id)?;
        let outcome = p.outcome.borrow().clone();
        Some((p.proposal.clone(), outcome))
    }

    /// Applies the human's decision (from the core, through the control
    /// socket): the grant is put in force and the waiters are woken.
    pub fn decide(&self, d: Decision) -> Result<String, String> {
        let mut q = lock(&self.queue);
        let Some(p) = q.proposals.get_mut(&d.id) else {
            return Err(format!("no proposal {}", d.id));
        };
        if p.proposal.status != Status::Pending {
            return Err(
                format!("proposal {} is already {:?}", d.id, p.proposal.status).to_lowercase(),
            );
        }
        let scope = p.proposal.scope.clone();
        let (status, outcome) = match &d.answer {
            Answer::Deny { note } => (Status::Denied, Outcome::Denied { note: note.clone() }),
            answer => {
                let expires_unix = match answer {
                    Answer::Once => Some(unix_now() + ONCE_GRANT_SECONDS),
                    Answer::For { seconds } => Some(unix_now() + seconds),
                    _ => None,
                };
                let grant = Grant {
                    proposal: d.id.clone(),
                    scope: scope.clone(),
                    once: *answer == Answer::Once,
                    expires_unix,
                };
                self.live.update_grants(|g| g.push(grant));
                (
                    Status::Approved,
                    Outcome::Approved {
                        answer: answer.clone(),
                        scope: scope.clone(),
                        expires_unix,
                    },
                )
            }
        };
        p.proposal.status = status;
        let proposal = p.proposal.clone();
        p.outcome.send_replace(Some(outcome));
        drop(q);
        self.file(&proposal);
        let note = match &d.answer {
            Answer::Deny { note: Some(n) } => format!(" (note: {n})"),
            _ => String::new(),
        };
        let verdict = if status == Status::Approved {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        self.record(
            AuditKind::Decision,
            &proposal,
            verdict,
            format!(
                "{} by {}: {}{note}",
                d.answer.describe(),
                d.by,
                scope.describe()
            ),
        );
        self.changed.notify_one();
        Ok(format!("ok: {} {}", d.id, d.answer.describe()))
    }

    /// Raises a proposal for a request refused only because its host is
    /// not listed, and waits up to `hold_seconds` for it to be allowed.
    pub async fn hold(&self, scope: Scope, what: &str) -> bool {
        let ask = EgressAsk {
            host: scope.host.clone(),
            port: Some(scope.port),
            methods: scope.methods.clone(),
            paths: scope.paths.clone(),
            reason: format!("held request: {what}"),
        };
        let Ok(filed) = self.ask(&ask, Origin::Held) else {
            return false;
        };
        let wait = Duration::from_secs(self.config.hold_seconds);
        matches!(
            self.wait(&filed.id, wait).await,
            Some(Outcome::Approved { .. })
        )
    }

    /// Keeps a refusal for `egress_rules`.
    pub fn note_denial(&self, d: Denial) {
        let mut q = lock(&self.denials);
        if q.len() == RECENT_DENIALS {
            q.pop_front();
        }
        q.push_back(d);
    }

    /// The most recent refusals, newest last.
    pub fn recent_denials(&self) -> Vec<Denial> {
        lock(&self.denials).iter().cloned().collect()
    }

    pub(super) fn file(&self, p: &Proposal) {
        if let Some(store) = &self.store {
            if let Err(e) = store.write(p) {
                tracing::error!("supervise: filing proposal {}: {e}", p.id);
            }
        }
    }

    pub(super) fn entry(
        &self,
        kind: AuditKind,
        proposal: &str,
        scope: &Scope,
        decision: Verdict,
    ) -> Entry {
        Entry {
            time: now_rfc3339(),
            bottle: self.bottle.clone(),
            method: scope.methods.join(",").chars().take(64).collect(),
            scheme: "supervise".into(),
            host: scope.host.clone(),
            port: scope.port,
            path: scope.paths.join(","),
            decision,
            kind,
            proposal: Some(proposal.to_string()),
            ..Default::default()
        }
    }

    pub(super) fn record(&self, kind: AuditKind, p: &Proposal, decision: Verdict, detail: String) {
        let mut e = self.entry(kind, &p.id, &p.scope, decision);
        e.detail = Some(detail);
        self.audit.record(&e);
    }
}

fn origin_word(o: Origin) -> &'static str {
    match o {
        Origin::Tool => "the agent",
        Origin::Held => "a held request",
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `ends in 59m`, for people.
pub fn remaining(expires_unix: Option<u64>) -> String {
    match expires_unix {
        None => "no end".into(),
        Some(t) => format!("ends in {}", human_seconds(t.saturating_sub(unix_now()))),
    }
}
