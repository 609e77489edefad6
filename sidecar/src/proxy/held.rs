//! Held requests (supervise, `hold_denied`): a request refused only because
//! its host is not listed waits while a proposal for it is raised, and goes
//! on if the human allows it in time; otherwise the usual refusal. Also the
//! bookkeeping grants need: a once-only grant is used up by the request it
//! lets through, and refusals are remembered for `egress_rules`.

use super::Proxy;
use crate::audit::{now_rfc3339, Entry};
use crate::config::Snapshot;
use crate::supervise::Denial;
use bottlebar_policy::supervise::Scope;
use bottlebar_policy::{decide, Decision, DenyReason, Request as PolicyRequest};
use std::sync::Arc;

impl Proxy {
    /// The rules to decide `request` by: `snap`, or — where the bottle
    /// holds requests and `snap` refuses this one only for its host — the
    /// rules after the human answered a proposal for the scope `describe`
    /// gives (with the words the human reads), made only when held.
    pub(super) async fn hold_unlisted(
        &self,
        snap: Arc<Snapshot>,
        request: PolicyRequest<'_>,
        describe: impl FnOnce() -> (Scope, String),
    ) -> Arc<Snapshot> {
        let Some(sup) = self.supervisor.as_ref().filter(|s| s.config().hold_denied) else {
            return snap;
        };
        if snap.error.is_some()
            || !matches!(
                decide(&snap.rules, request),
                Decision::Deny(DenyReason::HostNotAllowed { .. })
            )
        {
            return snap;
        }
        let (scope, what) = describe();
        if sup.hold(scope, &what).await {
            self.live.current()
        } else {
            snap
        }
    }

    /// Records that rule `rule` of `snap` let this request through; a
    /// once-only grant is used up here. False when another request used it
    /// first (this one is then refused).
    pub(super) fn use_grant(&self, snap: &Snapshot, rule: usize, entry: &mut Entry) -> bool {
        let Some(grant) = snap.grant(rule) else {
            return true;
        };
        entry.proposal = Some(grant.proposal.clone());
        !grant.once || self.live.consume_once(&grant.proposal)
    }

    /// Keeps a refusal for the supervise endpoint's `egress_rules`.
    pub(super) fn note_denial(&self, entry: &Entry, reason: &DenyReason) {
        if let Some(sup) = &self.supervisor {
            sup.note_denial(Denial {
                time: now_rfc3339(),
                method: entry.method.clone(),
                host: entry.host.clone(),
                port: entry.port,
                path: entry.path.clone(),
                reason: reason.code().as_str().to_string(),
            });
        }
    }
}
