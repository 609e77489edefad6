//! Layer 2: the agent's HTTP/1 connection to the proxy.
//!
//! Each request is a `CONNECT` (layer 3), an absolute-form `http://` or
//! `https://` request (the pipeline, with the proxy originating TLS for
//! `https://` as it does inside a tunnel), or a request for the proxy
//! itself. Anything else is refused with a 400 that is audited like every
//! other refusal; so is a request hyper cannot parse.

use super::accept::Admission;
use super::passed::PassedDestinations;
use super::reply::{json, RespBody, Stop};
use super::{Origin, Proxy, MAX_REQUEST_HEAD_BYTES};
use crate::audit::now_rfc3339;
use crate::mitm::Mitm;
use crate::upstream::{AgentHttp, Pool};
use bottlebar_policy::Verdict;
use bottlebar_policy::{normalize_host, DenyReason, HEALTH_PATH, STATUS_PATH, SUPERVISE_PATH};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};

impl Proxy {
    /// Serves the agent's connection until it closes or upgrades to a tunnel.
    pub(super) async fn serve_agent<IO>(
        self: Arc<Self>,
        stream: IO,
        local: Option<SocketAddr>,
        peer: SocketAddr,
        admission: Arc<Admission>,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Plain HTTP/1.1 from the agent (`http://` through the proxy).
        // The connection's upstream connections and passed destination
        // checks, kept from one of its requests to the next.
        let pool = Arc::new(Pool::new(AgentHttp::H1));
        let passed = Arc::new(PassedDestinations::default());
        let proxy = self.clone();
        let svc = service_fn(move |req| {
            let (proxy, admission) = (proxy.clone(), admission.clone());
            let (pool, passed) = (pool.clone(), passed.clone());
            async move { Ok::<_, Infallible>(proxy.handle(req, local, pool, passed, admission).await) }
        });
        // Half-close: clients such as busybox wget shut their write side
        // once the request is sent, and still expect the response.
        let conn = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .max_buf_size(MAX_REQUEST_HEAD_BYTES)
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(%peer, "connection ended: {e}");
            if e.is_parse() || e.is_parse_too_large() {
                // hyper answered 400 or 431 itself; the audit says so too.
                self.record_unparsed(peer, &e);
            }
        }
    }

    fn record_unparsed(&self, peer: SocketAddr, e: &hyper::Error) {
        self.denied.fetch_add(1, Ordering::Relaxed);
        let reason = DenyReason::BadRequest {
            detail: format!("unreadable request from {peer}: {e}"),
        };
        let mut entry = self.entry("-", "http", "-", 0, "");
        entry.decision = Verdict::Deny;
        entry.reason = Some(reason.code());
        entry.detail = Some(reason.to_string());
        entry.status = if e.is_parse_too_large() { 431 } else { 400 };
        entry.time = now_rfc3339();
        self.audit.record(&entry);
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        local: Option<SocketAddr>,
        pool: Arc<Pool>,
        passed: Arc<PassedDestinations>,
        admission: Arc<Admission>,
    ) -> Response<RespBody> {
        admission.slot.activate();
        if req.method() == Method::CONNECT {
            return self.connect(req, admission).await;
        }
        if addressed_to(&req, local) {
            if req.uri().path() == SUPERVISE_PATH {
                return self.supervise(req, local).await;
            }
            return self.own_endpoint(&req);
        }
        let started = Instant::now();
        let uri = req.uri().clone();
        let upstream_tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => {
                let entry = self.entry(req.method().as_str(), other.unwrap_or("-"), "-", 0, "");
                let reason = DenyReason::BadRequest {
                    detail: format!(
                        "`{}` URLs are not proxied; send absolute-form http:// or https:// requests, or CONNECT host:port",
                        other.unwrap_or("")
                    ),
                };
                return self.stop(entry, Stop::Deny(reason), started);
            }
        };
        let authority = uri.authority().expect("absolute form has an authority");
        let origin = Origin {
            host: normalize_host(
                authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']'),
            ),
            port: authority
                .port_u16()
                .unwrap_or(if upstream_tls { 443 } else { 80 }),
            agent_tls: false,
            upstream_tls,
            tunneled: false,
            passed,
        };
        self.pipeline(req, origin, pool).await
    }

    /// Requests addressed to the proxy itself.
    fn own_endpoint(&self, req: &Request<Incoming>) -> Response<RespBody> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, HEALTH_PATH) => json(
                StatusCode::OK,
                serde_json::json!({ "status": "ok", "bottle": self.bottle }),
            ),
            (&Method::GET, STATUS_PATH) => json(StatusCode::OK, self.status()),
            (method, path) => {
                let (path, _) = self.live.current().scanner.redact_str(path);
                let entry = self.entry(method.as_str(), "http", "-", 0, &path);
                let reason = DenyReason::BadRequest {
                    detail: "this is an HTTP proxy; send absolute-form requests (http://host/path) or CONNECT host:port".into(),
                };
                self.stop(entry, Stop::Deny(reason), Instant::now())
            }
        }
    }
}

impl Proxy {
    /// The status page: what this bottle may reach and how it went so far.
    fn status(&self) -> serde_json::Value {
        let snap = self.live.current();
        serde_json::json!({
            "bottle": self.bottle,
            "rules": snap.rules,
            "egress_closed": snap.error,
            "intercepting_tls": self.mitm.is_some(),
            "leaf_certificates_minted": self.mitm.as_ref().map(Mitm::minted),
            "hosts": snap.hosts,
            "allowed": self.allowed.load(Ordering::Relaxed),
            "denied": self.denied.load(Ordering::Relaxed),
            "supervise": self.mcp.is_some(),
        })
    }

    /// The supervise endpoint: the MCP server, when the bottle offers it.
    async fn supervise(
        &self,
        req: Request<Incoming>,
        local: Option<SocketAddr>,
    ) -> Response<RespBody> {
        let Some(mcp) = &self.mcp else {
            return json(
                StatusCode::NOT_FOUND,
                serde_json::json!({ "error": "supervise is off for this bottle; set `supervise = true` in its file" }),
            );
        };
        if let Some(why) = crate::supervise::http::refusal(&req, local) {
            tracing::warn!("supervise request refused: {why}");
            return json(StatusCode::FORBIDDEN, serde_json::json!({ "error": why }));
        }
        mcp.serve(req)
            .await
            .map(|body| body.map_err(|never| match never {}).boxed())
    }
}

/// Is the request for the proxy itself? Origin-form (`GET /path`), or absolute
/// form naming the address the client connected to, which is what an agent's
/// HTTP client sends for `$MCP_SUPERVISE_URL` since that URL goes through the proxy.
fn addressed_to(req: &Request<Incoming>, local: Option<SocketAddr>) -> bool {
    let Some(authority) = req.uri().authority() else {
        return true;
    };
    let Some(local) = local else { return false };
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.parse::<IpAddr>().is_ok_and(|ip| ip == local.ip()) && port == local.port()
}
