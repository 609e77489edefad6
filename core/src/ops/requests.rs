//! `bottle requests`, `allow` and `deny`, and the app's Requests view: a
//! home's supervise requests, and the human's answers to them. An answer
//! is handed to the bottle's sidecar (which applies the grant live and
//! wakes the waiting agent) and then kept; "always" first adds the rule to
//! the bottle's file and hands the sidecar its new rules.

use super::{backend_of, engine_err, rules, OpError};
use crate::backend;
use crate::editor;
use crate::home::Home;
use crate::manifest;
use crate::name::BottleName;
use crate::runner::Runner;
use crate::supervise::{self, Request};
use bottlebar_policy::supervise::{Answer, Decision};

/// The requests of bottle `name`, or of every bottle of this home; oldest
/// first.
pub fn requests(home: &Home, name: Option<&str>) -> Result<Vec<Request>, OpError> {
    let bottles = match name {
        Some(n) => vec![BottleName::parse(n)?],
        None => manifest::list_names(home).0,
    };
    let mut all: Vec<Request> = bottles
        .iter()
        .flat_map(|b| supervise::requests(home, b))
        .collect();
    all.sort_by(|a, b| a.proposal.created.cmp(&b.proposal.created));
    Ok(all)
}

/// Answers request `id` of bottle `name` with `answer`, as `by` (`cli` or
/// `app`). Only a pending request can be answered; the answer takes effect
/// in the running sidecar before it is recorded.
pub async fn decide<R: Runner>(
    home: &Home,
    name: &str,
    id: &str,
    answer: Answer,
    by: &str,
    runner: &R,
) -> Result<Request, OpError> {
    let bottle = BottleName::parse(name)?;
    let refused = |message: String| OpError::Request {
        bottle: bottle.to_string(),
        id: id.to_string(),
        message,
    };
    let request = supervise::requests(home, &bottle)
        .into_iter()
        .find(|r| r.proposal.id == id)
        .ok_or_else(|| refused("no such request (see `bottle requests`)".into()))?;
    if !request.pending {
        return Err(refused(match &request.decision {
            Some(d) => format!("already {} by {}", d.answer.describe(), d.by),
            None => format!("no longer waiting ({:?})", request.proposal.status).to_lowercase(),
        }));
    }
    if let Answer::For { seconds } = answer {
        if seconds == 0 || seconds > 30 * 86400 {
            return Err(refused("a grant lasts from 1 second to 30 days".into()));
        }
    }
    let engine =
        backend::find_engine(backend_of(home, &bottle, None)).map_err(engine_err(&bottle))?;
    if answer == Answer::Always {
        editor::add_rule(home, &bottle, &request.proposal.scope.rule())
            .map_err(|e| refused(format!("adding the rule to the bottle's file: {e}")))?;
        let m = manifest::load(home, name)?;
        rules::refresh(home, &engine, &m, runner).await?;
    }
    let decision = Decision {
        id: id.to_string(),
        answer,
        by: by.to_string(),
        at: crate::now_rfc3339(),
        scope: request.proposal.scope.clone(),
    };
    let message = serde_json::to_vec(&decision).expect("a decision serializes");
    rules::send(runner, engine.decide_argv(&bottle), message)
        .await
        .map_err(|(command, detail)| {
            refused(format!(
                "the sidecar did not take the answer (`{command}`): {detail}"
            ))
        })?;
    supervise::record(home, &bottle, &decision).map_err(|e| refused(e.to_string()))?;
    Ok(Request {
        decision: Some(decision),
        pending: false,
        seconds_left: None,
        ..request
    })
}
