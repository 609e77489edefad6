//! The MCP server at `MCP_SUPERVISE_URL`: what the agent may reach, and
//! how it asks the human for more. Three tools:
//!
//! - `egress_rules`: the bottle's rules, the grants in force with their
//!   remaining time, and recent refusals with their reasons;
//! - `request_egress`: asks for one host (and port, methods, paths) with a
//!   reason, and waits for the human's answer;
//! - `request_status`: where an earlier request stands.
//!
//! No tool ever shows a secret's value (rules say only whether a
//! credential is injected), and nothing here can approve anything: answers
//! come from the host through the control socket.

use super::{remaining, Outcome, Supervisor};
use crate::config::Live;
use bottlebar_policy::supervise::{Answer, EgressAsk, Origin, Scope};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// What the server tells a client when it connects.
const INSTRUCTIONS: &str = "You run in a Bottlebar bottle: every request leaves through a proxy that allows only listed hosts. \
Call `egress_rules` to see what you may reach and why recent requests were refused. \
When you need a host that is not listed, call `request_egress` with the host, the port, the methods and paths you need, and a one-sentence reason: \
a human decides, and an approval applies at once (once, for a while, or always). Do not retry a refused host in other ways.";

/// The supervise MCP server of one bottle.
#[derive(Clone)]
pub struct SuperviseMcp {
    sup: Arc<Supervisor>,
    live: Arc<Live>,
}

/// `request_egress`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RequestEgress {
    /// The host name, e.g. `api.github.com` (no addresses, no scheme).
    pub host: String,
    /// The port; 443 when left out.
    pub port: Option<u16>,
    /// HTTP methods needed, e.g. `["GET"]`; any when left out.
    pub methods: Option<Vec<String>>,
    /// Path prefixes needed, each starting with `/`, e.g. `["/repos/"]`; any when left out.
    pub paths: Option<Vec<String>>,
    /// Why you need it, in one or two sentences the human will read.
    pub reason: String,
    /// How long to wait for the answer, in seconds (the bottle sets the limit; 120 by default).
    pub wait_seconds: Option<u64>,
}

/// `request_status`'s arguments.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RequestStatus {
    /// The id `request_egress` returned.
    pub id: String,
}

fn scope_json(s: &Scope) -> Value {
    json!({ "host": s.host, "port": s.port, "methods": s.methods, "paths": s.paths })
}

/// An outcome as the agent reads it.
fn outcome_json(id: &str, outcome: Option<&Outcome>) -> Value {
    match outcome {
        None => json!({
            "id": id, "status": "pending",
            "message": "No answer yet. Call `request_status` later, or carry on with other work.",
        }),
        Some(Outcome::Approved {
            answer,
            scope,
            expires_unix,
        }) => json!({
            "id": id, "status": "approved", "scope": scope_json(scope),
            "grant": match answer {
                Answer::Once => "once: exactly one request",
                Answer::For { .. } => "temporary",
                _ => "always",
            },
            "expires_in_seconds": expires_unix.map(|t| t.saturating_sub(super::unix_now())),
            "message": format!("Approved ({}); {}. Retry the request now.", answer.describe(), remaining(*expires_unix)),
        }),
        Some(Outcome::Denied { note }) => json!({
            "id": id, "status": "denied", "note": note,
            "message": "Denied by the human. Do not try to reach this host another way.",
        }),
        Some(Outcome::Expired) => json!({
            "id": id, "status": "expired",
            "message": "Nobody answered in time; the request is closed.",
        }),
    }
}

#[tool_router]
impl SuperviseMcp {
    /// The server for `sup`'s bottle.
    pub fn new(sup: Arc<Supervisor>, live: Arc<Live>) -> Self {
        SuperviseMcp { sup, live }
    }

    #[tool(
        description = "What this bottle may reach: its egress rules (hosts, ports, methods, path prefixes), temporary grants with their remaining time, and recent refused requests with the reason for each. Call it before asking for a host."
    )]
    async fn egress_rules(&self) -> Result<CallToolResult, ErrorData> {
        let snap = self.live.current();
        let rules: Vec<Value> = snap.rules[..snap.own_rules]
            .iter()
            .map(|r| {
                json!({
                    "host": r.host,
                    "ports": if r.ports.is_empty() { vec![80, 443] } else { r.ports.clone() },
                    "methods": r.methods, "paths": r.paths,
                    "credential_injected": r.inject.is_some(),
                })
            })
            .collect();
        let grants: Vec<Value> = snap
            .grants
            .iter()
            .map(|g| {
                json!({
                    "request": g.proposal, "scope": scope_json(&g.scope), "once": g.once,
                    "expires_in_seconds": g.expires_unix.map(|t| t.saturating_sub(super::unix_now())),
                })
            })
            .collect();
        Ok(CallToolResult::structured(json!({
            "bottle": self.sup.bottle(),
            "egress_closed": snap.error,
            "rules": rules,
            "grants": grants,
            "recent_denials": self.sup.recent_denials(),
        })))
    }

    #[tool(
        description = "Ask the human for egress to one host you need but may not reach. Give the host, the port (default 443), the methods and path prefixes you need (least is best), and a short reason. Waits for the answer (up to `wait_seconds`); an approval applies at once. Returns `approved` (with the exact scope and how long), `denied` (with the human's note), or `pending` with an id for `request_status`."
    )]
    async fn request_egress(
        &self,
        Parameters(p): Parameters<RequestEgress>,
    ) -> Result<CallToolResult, ErrorData> {
        let ask = EgressAsk {
            host: p.host,
            port: p.port,
            methods: p.methods.unwrap_or_default(),
            paths: p.paths.unwrap_or_default(),
            reason: p.reason,
        };
        let filed = match self.sup.ask(&ask, Origin::Tool) {
            Ok(f) => f,
            Err(why) => {
                return Ok(CallToolResult::structured_error(
                    json!({ "status": "refused", "message": why }),
                ))
            }
        };
        let limit = self.sup.config().request_timeout_seconds;
        let wait = Duration::from_secs(p.wait_seconds.unwrap_or(limit).min(limit));
        let outcome = self.sup.wait(&filed.id, wait).await;
        let mut reply = outcome_json(&filed.id, outcome.as_ref());
        if outcome.is_none() {
            // The wait timed out; the request stays open for the human.
            reply["timed_out"] = json!(true);
            reply["message"] = json!(format!(
                "No answer within {} s; the request stays open. Call `request_status` later, or carry on with other work.",
                wait.as_secs()
            ));
        }
        Ok(CallToolResult::structured(reply))
    }

    #[tool(
        description = "Where an earlier `request_egress` stands: pending, approved (with scope and remaining time), denied (with the note), or expired."
    )]
    async fn request_status(
        &self,
        Parameters(p): Parameters<RequestStatus>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match self.sup.status(&p.id) {
            Some((proposal, outcome)) => {
                let mut v = outcome_json(&proposal.id, outcome.as_ref());
                v["scope"] = scope_json(&proposal.scope);
                CallToolResult::structured(v)
            }
            None => CallToolResult::structured_error(
                json!({ "status": "unknown", "message": format!("no request {}", p.id) }),
            ),
        })
    }
}

#[tool_handler]
impl ServerHandler for SuperviseMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "bottlebar-supervise",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}
