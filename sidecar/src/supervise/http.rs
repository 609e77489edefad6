//! Serving the MCP server over Streamable HTTP on the proxy's own port, at
//! `MCP_SUPERVISE_URL`. Only the agent's networks reach the proxy at all;
//! here a request must also name the sidecar's own address as its host
//! (never a name that a DNS rebinding could point here) and carry no
//! `Origin` (a web page in the user's browser must not drive it).

use super::mcp::SuperviseMcp;
use super::Supervisor;
use crate::config::Live;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HOST, ORIGIN};
use hyper::{Request, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::sync::Arc;

/// Largest MCP message accepted from the agent.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The supervise endpoint of one bottle.
pub struct McpEndpoint {
    service: StreamableHttpService<SuperviseMcp, LocalSessionManager>,
}

/// Why a request to the endpoint is refused before MCP sees it.
pub fn refusal(req: &Request<Incoming>, local: Option<SocketAddr>) -> Option<String> {
    if req.headers().contains_key(ORIGIN) {
        return Some("requests carrying an Origin header are refused: a web page must not drive the supervise endpoint".into());
    }
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(String::from)
        })
        .unwrap_or_default();
    let own = local.map(|l| l.to_string()).unwrap_or_default();
    let loopback = local.is_some_and(|l| l.ip().is_loopback());
    let named = host == own || (loopback && host.split(':').next() == Some("localhost"));
    (!named).then(|| format!("the supervise endpoint answers to {own} only, not to `{host}`"))
}

impl McpEndpoint {
    /// The endpoint for `sup`'s bottle.
    pub fn new(sup: Arc<Supervisor>, live: Arc<Live>) -> Self {
        let config = StreamableHttpServerConfig::default()
            // Checked above, against the address the agent connected to.
            .disable_allowed_hosts()
            .enforce_origin_validation()
            .with_legacy_session_mode(true)
            .with_max_request_body_bytes(MAX_MESSAGE_BYTES);
        let service = StreamableHttpService::new(
            move || Ok(SuperviseMcp::new(sup.clone(), live.clone())),
            LocalSessionManager::default().into(),
            config,
        );
        McpEndpoint { service }
    }

    /// Answers one MCP request (its body cannot fail).
    pub async fn serve(
        &self,
        req: Request<Incoming>,
    ) -> Response<BoxBody<Bytes, std::convert::Infallible>> {
        self.service.handle(req).await.map(BodyExt::boxed)
    }
}
