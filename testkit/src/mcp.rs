//! An MCP client the project did not write — the official Rust SDK's
//! (`rmcp`), over Streamable HTTP — for the supervise endpoint's
//! conformance tests, in-process and from inside a bottle.

use anyhow::{anyhow, Context, Result};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

/// A connected client.
pub type Session = RunningService<RoleClient, ClientConfig>;

/// The protocol revision named `v` (`2025-06-18`, `2025-03-26`).
pub fn version(v: &str) -> Result<ProtocolVersion> {
    match v {
        "2025-06-18" => Ok(ProtocolVersion::V_2025_06_18),
        "2025-03-26" => Ok(ProtocolVersion::V_2025_03_26),
        other => Err(anyhow!("unknown protocol revision {other}")),
    }
}

/// Connects to `url` (initialize and initialized), asking for `v`.
pub async fn connect(url: &str, v: ProtocolVersion) -> Result<Session> {
    let transport = StreamableHttpClientTransport::from_uri(url.to_string());
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("bottlebar-testkit", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(v);
    info.serve(transport)
        .await
        .with_context(|| format!("initializing an MCP session with {url}"))
}

/// Calls tool `name` with `args`: `{"is_error": …, "value": …}` where
/// `value` is the structured content (or the text, parsed if it is JSON).
pub async fn call(s: &Session, name: &str, args: Value) -> Result<Value> {
    let arguments = match args {
        Value::Object(m) => Some(m),
        Value::Null => None,
        other => return Err(anyhow!("tool arguments must be an object, not {other}")),
    };
    let mut params = CallToolRequestParams::new(name.to_string());
    params.arguments = arguments;
    let r = s
        .peer()
        .call_tool(params)
        .await
        .with_context(|| format!("calling `{name}`"))?;
    let value = r.structured_content.clone().unwrap_or_else(|| {
        let text: String = r
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    });
    Ok(json!({ "is_error": r.is_error.unwrap_or(false), "value": value }))
}

/// Initialize, list the tools, and call each once (`request_egress` with
/// a short wait, so it comes back pending): what a client sees.
pub async fn conformance(url: &str, v: ProtocolVersion) -> Result<Value> {
    let s = connect(url, v).await?;
    let info = s.peer().peer_info();
    let tools = s.peer().list_all_tools().await.context("tools/list")?;
    let tool_list: Vec<Value> = tools
        .iter()
        .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": &*t.input_schema }))
        .collect();
    let rules = call(&s, "egress_rules", Value::Null).await?;
    let asked = call(
        &s,
        "request_egress",
        json!({ "host": "conformance.example.com", "methods": ["GET"], "reason": "conformance check", "wait_seconds": 1 }),
    )
    .await?;
    let id = asked["value"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let status = call(&s, "request_status", json!({ "id": id })).await?;
    let unknown = call(&s, "request_status", json!({ "id": "p-none" })).await?;
    let refused = call(
        &s,
        "request_egress",
        json!({ "host": "10.0.0.1", "reason": "an address" }),
    )
    .await?;
    let _ = s.cancel().await;
    Ok(json!({
        "server": info.as_ref().map(|i| json!({
            "protocol_version": i.protocol_version.to_string(),
            "name": i.server_info.as_ref().map(|s| s.name.clone()),
            "instructions": i.instructions,
        })),
        "tools": tool_list,
        "egress_rules": rules,
        "request_egress": asked,
        "request_status": status,
        "unknown_status": unknown,
        "refused": refused,
    }))
}
