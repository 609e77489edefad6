//! The egress proxy, in layers, outermost first:
//!
//! 1. [`accept`]: only the agent's networks (and loopback) are served; a
//!    connection limit that tunnels count in, with stalled connections
//!    evicted first;
//! 2. [`agent`]: the agent's HTTP/1 connection: `CONNECT`, absolute-form
//!    `http://` and `https://`, or a request for the proxy itself (health,
//!    supervise); every refusal is audited, malformed requests included;
//! 3. [`tunnel`]: `CONNECT`, decided on host and port, then intercepted:
//!    TLS terminated with a leaf for the host (HTTP/1.1 or HTTP/2 by ALPN),
//!    or plain HTTP; upstream TLS is decided by the port, never by the
//!    agent's first byte; without a CA, a blind tunnel;
//! 4. [`pipeline`]: every request, however it arrived, through named checks
//!    ([`checks`]): egress open → names agree → no secret in the destination
//!    → rules → placeholders → secret scan of the head → body encoding →
//!    injection (verified TLS only); then the body ([`request_body`]:
//!    decoded, scanned through a window) and the upstream;
//! 5. [`response`]: the response streamed back with every held secret
//!    masked (headers and body), audited when it ends.

mod accept;
mod agent;
mod checks;
mod held;
mod passed;
mod pipeline;
mod reply;
mod request_body;
mod response;
mod rewind;
mod scan_away;
mod tunnel;

pub use accept::{Limits, PeerFilter};
pub use reply::RespBody;

use crate::audit::{now_rfc3339, AuditLog, Entry};
use crate::config::Live;
use crate::mitm::Mitm;
use crate::netinfo::NetView;
use crate::supervise::http::McpEndpoint;
use crate::supervise::Supervisor;
use crate::upstream::Upstream;
use accept::{Admission, Slots};
use anyhow::{bail, Context, Result};
use bottlebar_policy::{ListenSpec, CONTROL_SOCKET};
use bottlebar_policy::{ReasonCode, Verdict};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// Largest request head (request line plus headers) accepted from the agent.
const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// Runs the sidecar: loads `config_path`, listens where it says (the
/// agent's networks only, in a bottle), serves the control socket, and
/// stops on SIGTERM or SIGINT.
pub async fn run(config_path: &std::path::Path) -> Result<()> {
    let view = NetView::read();
    let live = Arc::new(Live::load(config_path, view.own_and_gateways())?);
    let spec = ListenSpec::parse(&live.config.listen).map_err(anyhow::Error::msg)?;
    let (listeners, filter) = bind(spec, &view).await?;
    let proxy = Arc::new(Proxy::new(live.clone())?);
    crate::control::spawn(live.clone(), proxy.supervisor.clone(), CONTROL_SOCKET)?;
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    tracing::info!(bottle = %live.config.bottle, rules = live.current().rules.len(), "egress proxy listening on {}", addrs.join(", "));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        }
    };
    let audit = proxy.audit.clone();
    let served = accept::serve_on(proxy, listeners, filter, stop).await;
    // Whatever the agent's last requests handed over reaches the disk
    // before the process ends.
    audit.close();
    served
}

/// The listeners for `spec`: one address, or loopback plus every address on
/// the agent's networks.
async fn bind(spec: ListenSpec, view: &NetView) -> Result<(Vec<TcpListener>, PeerFilter)> {
    let listen = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the proxy to {addr}"))
    };
    match spec {
        ListenSpec::Addr(a) => Ok((vec![listen(a).await?], PeerFilter::Any)),
        ListenSpec::AgentNetworks(port) => {
            let side = view.agent_side();
            if side.is_empty() {
                bail!("no agent-side network interface (every interface carries the default route); refusing to serve on the egress side");
            }
            let mut listeners = vec![listen(SocketAddr::from(([127, 0, 0, 1], port))).await?];
            for a in side {
                listeners.push(listen(SocketAddr::new(a.ip, port)).await?);
            }
            Ok((listeners, PeerFilter::AgentNetworks(view.clone())))
        }
    }
}

/// Serves the proxy on one listener, admitting anyone who reaches it
/// (tests and tools), until `stop` completes.
pub async fn serve(
    live: Arc<Live>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    serve_with(Arc::new(Proxy::new(live)?), listener, stop).await
}

/// [`serve`] with a proxy already built (e.g. with its own [`Limits`]).
pub async fn serve_with(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    accept::serve_on(proxy, vec![listener], PeerFilter::Any, stop).await
}

/// The proxy: its rules, CA, upstream connector, audit log and limits.
pub struct Proxy {
    live: Arc<Live>,
    bottle: String,
    mitm: Option<Mitm>,
    upstream: Upstream,
    audit: Arc<AuditLog>,
    limits: Limits,
    allowed: AtomicU64,
    denied: AtomicU64,
    /// The approval queue, when the bottle offers supervise.
    pub(crate) supervisor: Option<Arc<Supervisor>>,
    /// The MCP server at the supervise path, with it.
    mcp: Option<McpEndpoint>,
}

/// What the agent is talking to, and how each leg is carried.
#[derive(Clone, Debug)]
struct Origin {
    host: String,
    port: u16,
    /// The agent's leg is TLS (terminated here).
    agent_tls: bool,
    /// The upstream leg is verified TLS.
    upstream_tls: bool,
    /// Reached through a `CONNECT` tunnel, whose authority fixes the host.
    tunneled: bool,
    /// The destination checks this connection's requests passed.
    passed: Arc<passed::PassedDestinations>,
}

impl Origin {
    fn scheme(&self) -> &'static str {
        if self.upstream_tls {
            "https"
        } else {
            "http"
        }
    }

    fn authority(&self) -> String {
        let default = if self.upstream_tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl Proxy {
    /// A proxy with the default [`Limits`].
    pub fn new(live: Arc<Live>) -> Result<Self> {
        let cfg = &live.config;
        let mitm = match (&cfg.ca_cert_file, &cfg.ca_key_file) {
            (Some(c), Some(k)) => Some(Mitm::load(c, k)?),
            _ => None,
        };
        let extra = match &cfg.extra_roots_file {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading extra roots {p}"))?),
            None => None,
        };
        let upstream = Upstream::new(extra.as_deref())?;
        let audit = AuditLog::open(
            cfg.audit_file.as_deref(),
            cfg.audit_max_bytes,
            cfg.audit_keep,
        )
        .with_context(|| format!("opening the audit log {:?}", cfg.audit_file))?;
        let audit = Arc::new(audit);
        let supervisor = cfg
            .supervise
            .clone()
            .map(|s| Supervisor::start(&cfg.bottle, s, live.clone(), audit.clone()));
        let mcp = supervisor
            .as_ref()
            .map(|s| McpEndpoint::new(s.clone(), live.clone()));
        Ok(Self {
            bottle: cfg.bottle.clone(),
            live: live.clone(),
            mitm,
            upstream,
            audit,
            limits: Limits::default(),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            supervisor,
            mcp,
        })
    }

    /// The same proxy with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Serves one agent connection outside any limit (the fuzz target).
    /// `local` is the address the agent dialled: requests for it are for
    /// the proxy itself.
    pub async fn serve_connection<IO>(
        self: Arc<Self>,
        stream: IO,
        local: Option<SocketAddr>,
        peer: SocketAddr,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let admission = Slots::new(1).admit().await;
        self.serve_admitted(stream, local, peer, admission).await
    }

    /// Serves one admitted connection until it ends, stalls, or is evicted.
    async fn serve_admitted<IO>(
        self: Arc<Self>,
        stream: IO,
        local: Option<SocketAddr>,
        peer: SocketAddr,
        admission: Admission,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let admission = Arc::new(admission);
        let slot = admission.slot.clone();
        let limit = self.limits.handshake_timeout;
        tokio::select! {
            _ = self.serve_agent(stream, local, peer, admission) => {}
            _ = slot.stalled(limit) => tracing::debug!(%peer, "connection closed: no complete request in time"),
            _ = slot.evicted() => tracing::debug!(%peer, "connection closed to make room"),
        }
    }

    /// Audits a connection refused because it came from outside the agent's networks.
    fn record_refused_peer(&self, peer: SocketAddr) {
        self.denied.fetch_add(1, Ordering::Relaxed);
        let mut entry = self.entry("-", "tcp", &peer.ip().to_string(), peer.port(), "");
        entry.decision = Verdict::Deny;
        entry.reason = Some(ReasonCode::NotAgentNetwork);
        entry.detail = Some(format!(
            "connection from {peer}, which is not on the agent's networks, refused"
        ));
        entry.time = now_rfc3339();
        self.audit.record(&entry);
    }

    fn entry(&self, method: &str, scheme: &str, host: &str, port: u16, path: &str) -> Entry {
        Entry {
            bottle: self.bottle.clone(),
            method: method.into(),
            scheme: scheme.into(),
            host: host.into(),
            port,
            path: path.into(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests;
