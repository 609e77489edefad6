//! Ending things on time: grants whose time is up, and proposals nobody
//! answered. One task per bottle sleeps until the next is due, or until
//! something changes.

use super::{lock, unix_now, Outcome, Supervisor};
use bottlebar_policy::supervise::Status;
use bottlebar_policy::{AuditKind, Verdict};
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Supervisor {
    /// Ends what is due: expired grants, and proposals nobody answered.
    /// Returns when the next thing is due, if anything is.
    pub(super) fn expire_due(&self) -> Option<Instant> {
        let now_unix = unix_now();
        let mut ended = Vec::new();
        self.live.update_grants(|grants| {
            grants.retain(|g| {
                let due = g.expires_unix.is_some_and(|t| t <= now_unix);
                if due {
                    ended.push(g.clone());
                }
                !due
            })
        });
        for g in ended {
            let mut e = self.entry(AuditKind::Expiry, &g.proposal, &g.scope, Verdict::Deny);
            e.detail = Some(format!("the grant for {} ended", g.scope.describe()));
            self.audit.record(&e);
        }
        let now = Instant::now();
        let mut expired = Vec::new();
        {
            let mut q = lock(&self.queue);
            for p in q.proposals.values_mut() {
                if p.proposal.status == Status::Pending && p.ends <= now {
                    p.proposal.status = Status::Expired;
                    p.outcome.send_replace(Some(Outcome::Expired));
                    expired.push(p.proposal.clone());
                }
            }
        }
        for p in expired {
            self.file(&p);
            self.record(
                AuditKind::Expiry,
                &p,
                Verdict::Deny,
                format!("nobody answered the request for {}", p.scope.describe()),
            );
        }
        let next_grant = self
            .live
            .grants()
            .iter()
            .filter_map(|g| g.expires_unix)
            .min()
            .map(|t| now + Duration::from_secs(t.saturating_sub(unix_now())));
        let next_proposal = lock(&self.queue)
            .proposals
            .values()
            .filter(|p| p.proposal.status == Status::Pending)
            .map(|p| p.ends)
            .min();
        next_grant.into_iter().chain(next_proposal).min()
    }
}

/// Ends grants and proposals on time: sleeps until the next one is due, or
/// until something changes. Runs as long as the proxy.
pub(super) async fn run(sup: Arc<Supervisor>) {
    loop {
        let next = sup.expire_due();
        let changed = sup.changed.notified();
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = changed => {}
                }
            }
            None => changed.await,
        }
    }
}
