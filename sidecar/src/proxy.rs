//! The egress proxy, in layers, outermost first:
//!
//! 1. accept loop (a connection limit, graceful stop);
//! 2. HTTP/1 connection from the agent (hyper): `CONNECT`, absolute-form
//!    plain HTTP, or a request for the proxy itself (health, supervise);
//! 3. `CONNECT`: decided on host and port, then intercepted: the first bytes
//!    tell TLS (terminated with a leaf for the host, HTTP/1.1 or HTTP/2 by
//!    ALPN) from plain HTTP; without a CA configured, a blind tunnel;
//! 4. the request pipeline, the same for every request however it arrived:
//!    names agree (no fronting) → rules → placeholders → secret scanning of
//!    path, query and headers → credential injection → streaming body scan →
//!    upstream (pooled, TLS verified) → response streamed back, audited when
//!    its body ends.

use crate::audit::{now_rfc3339, AuditLog, Entry};
use crate::config::{Live, Snapshot};
use crate::dlp::{Finding, Mode, StreamScanner};
use crate::mitm::Mitm;
use crate::upstream::{BoxError, Destination, Framing, Pool, ReqBody, Upstream, UpstreamError};
use anyhow::{Context, Result};
use bottlebar_policy::{
    decide, normalize_host, Decision, DenyReason, DlpAction, EgressRule, Request as PolicyRequest,
    DOH_MEDIA_TYPES, HEALTH_PATH, SUPERVISE_PATH,
};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

type RespBody = BoxBody<Bytes, BoxError>;

/// Largest request head (request line plus headers) accepted from the agent.
const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
/// Agent connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// How long the agent may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a tunnel may wait for the agent's first bytes.
const TUNNEL_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

pub async fn run(config_path: &std::path::Path) -> Result<()> {
    let live = Arc::new(Live::load(config_path)?);
    let listener = TcpListener::bind(&live.config.listen)
        .await
        .with_context(|| format!("binding the proxy to {}", live.config.listen))?;
    tracing::info!(bottle = %live.config.bottle, rules = live.current().rules.len(), "egress proxy listening on {}", live.config.listen);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        }
    };
    serve(live, listener, stop).await
}

/// Serves the proxy on `listener` until `stop` completes.
pub async fn serve(
    live: Arc<Live>,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let proxy = Arc::new(Proxy::new(live.clone())?);
    live.spawn_watcher();
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = &mut stop => return Ok(()),
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: back off, don't spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok();
                let proxy = proxy.clone();
                tokio::spawn(async move {
                    proxy.serve_connection(stream, local, peer).await;
                    drop(permit);
                });
            }
            _ = &mut stop => return Ok(()),
        }
    }
}

pub struct Proxy {
    live: Arc<Live>,
    bottle: String,
    mitm: Option<Mitm>,
    upstream: Upstream,
    audit: Arc<AuditLog>,
    allowed: AtomicU64,
    denied: AtomicU64,
}

/// What the agent is talking to: from the URL for plain HTTP, from the
/// `CONNECT` authority inside a tunnel.
#[derive(Clone, Debug)]
struct Origin {
    host: String,
    port: u16,
    tls: bool,
    /// Reached through a `CONNECT` tunnel, whose authority fixes the host.
    tunneled: bool,
}

impl Origin {
    fn scheme(&self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }

    fn authority(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
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
        Ok(Self {
            bottle: cfg.bottle.clone(),
            live: live.clone(),
            mitm,
            upstream,
            audit: Arc::new(audit),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        })
    }

    /// Serves one agent connection. `local` is the address the agent dialled:
    /// requests for it are for the proxy itself.
    pub async fn serve_connection<IO>(
        self: Arc<Self>,
        stream: IO,
        local: Option<SocketAddr>,
        peer: SocketAddr,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let pool = Arc::new(Pool::default());
        let svc = service_fn(move |req| {
            let proxy = self.clone();
            let pool = pool.clone();
            async move { Ok::<_, Infallible>(proxy.handle(req, local, pool).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .max_buf_size(MAX_REQUEST_HEAD_BYTES)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(%peer, "connection ended: {e}");
        }
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        local: Option<SocketAddr>,
        pool: Arc<Pool>,
    ) -> Response<RespBody> {
        if req.method() == Method::CONNECT {
            return self.connect(req).await;
        }
        if addressed_to(&req, local) {
            return self.own_endpoint(&req);
        }
        let uri = req.uri().clone();
        if uri.scheme_str() != Some("http") {
            return text(StatusCode::BAD_REQUEST, "Bottlebar sidecar: only http:// URLs are proxied in absolute form; use CONNECT for https\n");
        }
        let authority = uri.authority().expect("absolute form has an authority");
        let origin = Origin {
            host: normalize_host(
                authority
                    .host()
                    .trim_start_matches('[')
                    .trim_end_matches(']'),
            ),
            port: authority.port_u16().unwrap_or(80),
            tls: false,
            tunneled: false,
        };
        self.pipeline(req, origin, pool).await
    }

    /// Requests addressed to the proxy itself.
    fn own_endpoint(&self, req: &Request<Incoming>) -> Response<RespBody> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, HEALTH_PATH) => json(StatusCode::OK, serde_json::json!({ "status": "ok", "bottle": self.bottle })),
            (&Method::GET, SUPERVISE_PATH) => {
                let snap = self.live.current();
                json(
                    StatusCode::OK,
                    serde_json::json!({
                        "bottle": self.bottle,
                        "rules": snap.rules,
                        "egress_closed": snap.error,
                        "intercepting_tls": self.mitm.is_some(),
                        "leaf_certificates_minted": self.mitm.as_ref().map(Mitm::minted),
                        "hosts": snap.hosts,
                        "allowed": self.allowed.load(Ordering::Relaxed),
                        "denied": self.denied.load(Ordering::Relaxed),
                    }),
                )
            }
            _ => text(StatusCode::BAD_REQUEST, "Bottlebar sidecar: this is an HTTP proxy; send absolute-form requests (http://host/path) or CONNECT host:port\n"),
        }
    }

    async fn connect(self: Arc<Self>, req: Request<Incoming>) -> Response<RespBody> {
        let started = Instant::now();
        let Some(authority) = req.uri().authority().cloned() else {
            return text(StatusCode::BAD_REQUEST, "CONNECT needs host:port\n");
        };
        let Some(port) = authority.port_u16() else {
            return text(StatusCode::BAD_REQUEST, "CONNECT needs an explicit port\n");
        };
        let host = normalize_host(
            authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']'),
        );
        let mut entry = self.entry("CONNECT", "tunnel", &host, port, "");
        let snap = self.live.current();
        if let Some(err) = &snap.error {
            return self.deny_closed(entry, err, started);
        }
        let inspected = self.mitm.is_some();
        let rule = match decide(
            &snap.rules,
            PolicyRequest::Connect {
                host: &host,
                port,
                inspected,
            },
        ) {
            Decision::Allow { rule } => rule,
            Decision::Deny(reason) => return self.deny(entry, &reason, started),
        };
        entry.rule = Some(rule + 1);
        if inspected {
            // Each request inside the tunnel is decided and audited on its own.
            let origin = Origin {
                host,
                port,
                tls: false,
                tunneled: true,
            };
            tokio::spawn(async move {
                match hyper::upgrade::on(req).await {
                    Ok(upgraded) => self.intercept(TokioIo::new(upgraded), origin).await,
                    Err(e) => tracing::debug!("CONNECT upgrade failed: {e}"),
                }
            });
            return Response::new(empty());
        }
        // No CA: a blind tunnel, decided on host and port alone.
        let mut upstream = match self
            .upstream
            .dial(&host, port, snap.hosts.get(&host).copied())
            .await
        {
            Ok(s) => s,
            Err(e) => return self.upstream_failed(entry, &e, started),
        };
        self.allowed.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let (up, down) = match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream)
                        .await
                        .unwrap_or((0, 0))
                }
                Err(_) => (0, 0),
            };
            entry.decision = "allow".into();
            entry.status = 200;
            entry.bytes_up = up;
            entry.bytes_down = down;
            entry.duration_ms = started.elapsed().as_millis() as u64;
            self.audit.record(&entry);
        });
        Response::new(empty())
    }

    /// Serves the inside of an allowed tunnel: TLS terminated with a leaf for
    /// the tunnel's host, or plain HTTP.
    async fn intercept<IO>(self: Arc<Self>, io: IO, mut origin: Origin)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut io = Rewind {
            prefix: None,
            inner: io,
        };
        let mut first = [0u8; 1];
        match tokio::time::timeout(TUNNEL_FIRST_BYTE_TIMEOUT, io.inner.read(&mut first)).await {
            Ok(Ok(1)) => io.prefix = Some(Bytes::copy_from_slice(&first)),
            _ => return,
        }
        if first[0] != TLS_HANDSHAKE {
            return self.serve_inner(io, origin).await;
        }
        let acceptor =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
        let start = match acceptor.await {
            Ok(s) => s,
            Err(e) => return tracing::debug!(host = origin.host, "TLS from the agent failed: {e}"),
        };
        if let Some(sni) = start.client_hello().server_name() {
            let sni = normalize_host(sni);
            if sni != origin.host {
                // The agent asked the tunnel for one host and TLS for another.
                let reason = DenyReason::Fronting {
                    detail: format!(
                        "TLS server name `{sni}` differs from the CONNECT host `{}`",
                        origin.host
                    ),
                };
                let mut entry = self.entry("CONNECT", "https", &origin.host, origin.port, "");
                entry.detail = Some(reason.to_string());
                self.deny(entry, &reason, Instant::now());
                return;
            }
        }
        let config = match self
            .mitm
            .as_ref()
            .expect("intercepting")
            .server_config(&origin.host)
        {
            Ok(c) => c,
            Err(e) => {
                return tracing::warn!(host = origin.host, "cannot mint a certificate: {e:#}")
            }
        };
        let tls = match start.into_stream(config).await {
            Ok(s) => s,
            Err(e) => {
                return tracing::debug!(
                    host = origin.host,
                    "TLS handshake with the agent failed: {e}"
                )
            }
        };
        origin.tls = true;
        self.serve_inner(tls, origin).await;
    }

    async fn serve_inner<IO>(self: Arc<Self>, io: IO, origin: Origin)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let pool = Arc::new(Pool::default());
        let svc = service_fn(move |req| {
            let (proxy, origin, pool) = (self.clone(), origin.clone(), pool.clone());
            async move { Ok::<_, Infallible>(proxy.pipeline(req, origin, pool).await) }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_buf_size(MAX_REQUEST_HEAD_BYTES)
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_REQUEST_HEAD_BYTES as u32);
        if let Err(e) = builder.serve_connection(TokioIo::new(io), svc).await {
            tracing::debug!("intercepted connection ended: {e}");
        }
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

    /// Every request, however it arrived.
    async fn pipeline(
        self: Arc<Self>,
        req: Request<Incoming>,
        origin: Origin,
        pool: Arc<Pool>,
    ) -> Response<RespBody> {
        let started = Instant::now();
        let snap = self.live.current();
        let agent_version = req.version();
        let (mut parts, body) = req.into_parts();
        let method = parts.method.as_str().to_string();
        let path = parts.uri.path().to_string();
        // The audit log never holds a secret, whatever the rule does with it.
        let (audit_path, _) = snap.scanner.redact_str(
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        );
        let mut entry = self.entry(
            &method,
            origin.scheme(),
            &origin.host,
            origin.port,
            &audit_path,
        );

        if let Some(reason) = fronting(&parts, &origin) {
            return self.deny(entry, &reason, started);
        }
        if let Some(err) = &snap.error {
            return self.deny_closed(entry, err, started);
        }
        let doh_media = [header::CONTENT_TYPE, header::ACCEPT].iter().any(|h| {
            parts
                .headers
                .get_all(h)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| {
                    DOH_MEDIA_TYPES
                        .iter()
                        .any(|m| v.to_ascii_lowercase().contains(m))
                })
        });
        let decision = decide(
            &snap.rules,
            PolicyRequest::Http {
                method: &method,
                host: &origin.host,
                port: origin.port,
                path: &path,
                doh_media,
            },
        );
        let rule_index = match decision {
            Decision::Allow { rule } => rule,
            Decision::Deny(reason) => return self.deny(entry, &reason, started),
        };
        entry.rule = Some(rule_index + 1);
        let rule = &snap.rules[rule_index];

        strip_hop_by_hop(&mut parts.headers);
        if let Some(inj) = &rule.inject {
            parts.headers.remove(inj.header.as_str());
        }
        if let Some(reason) = placeholder_misuse(&parts, &snap, rule) {
            return self.deny(entry, &reason, started);
        }
        match scan_head(&mut parts, &snap, rule, rule_index) {
            Ok(redacted) => entry.redacted = redacted,
            Err(reason) => return self.deny(entry, &reason, started),
        }
        if let Some(inj) = &rule.inject {
            let Some(secret) = snap.secret(&inj.secret) else {
                return self.deny_closed(
                    entry,
                    &format!("secret `{}` is not held", inj.secret),
                    started,
                );
            };
            match HeaderValue::from_str(&inj.render(&secret.value)) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    parts.headers.insert(
                        HeaderName::from_bytes(inj.header.as_bytes())
                            .expect("validated header name"),
                        v,
                    );
                    entry.injected = Some(inj.secret.clone());
                }
                Err(_) => {
                    return self.deny_closed(
                        entry,
                        &format!("secret `{}` cannot be sent in a header", inj.secret),
                        started,
                    )
                }
            }
        }

        let bytes_up = Arc::new(AtomicU64::new(0));
        let blocked: Arc<Mutex<Option<Finding>>> = Arc::default();
        let mode = match rule.dlp {
            DlpAction::Block => Mode::Block,
            DlpAction::Redact => Mode::Redact,
        };
        let redacted_in_body = Arc::new(AtomicU64::new(0));
        let scanned = ScannedBody {
            inner: body,
            scanner: StreamScanner::new(snap.scanner.clone(), mode),
            bytes_up: bytes_up.clone(),
            blocked: blocked.clone(),
            redacted: redacted_in_body.clone(),
            finished: false,
            trailers: None,
        };
        let upstream_body: ReqBody = scanned.boxed();

        let dest = Destination {
            host: origin.host.clone(),
            port: origin.port,
            tls: origin.tls,
            pinned: snap.hosts.get(&origin.host).copied(),
        };
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let authority = origin.authority();
        let scheme = origin.scheme();
        let build = move |framing: Framing| {
            let mut p = parts;
            match framing {
                Framing::H1 => {
                    p.version = Version::HTTP_11;
                    p.uri = path_and_query
                        .parse()
                        .unwrap_or_else(|_| Uri::from_static("/"));
                    p.headers.insert(
                        header::HOST,
                        HeaderValue::from_str(&authority).expect("host is a valid header value"),
                    );
                }
                Framing::H2 => {
                    p.version = Version::HTTP_2;
                    p.uri = format!("{scheme}://{authority}{path_and_query}")
                        .parse()
                        .unwrap_or_else(|_| Uri::from_static("/"));
                    p.headers.remove(header::HOST);
                }
            }
            Request::from_parts(p, upstream_body)
        };
        let result = pool.send(&self.upstream, &dest, build).await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                if let Some(f) = blocked.lock().unwrap().take() {
                    let reason = DenyReason::SecretDetected {
                        kind: f.kind,
                        location: "body".into(),
                        rule: rule_index,
                    };
                    entry.bytes_up = bytes_up.load(Ordering::Relaxed);
                    return self.deny(entry, &reason, started);
                }
                entry.bytes_up = bytes_up.load(Ordering::Relaxed);
                return self.upstream_failed(entry, &e, started);
            }
        };
        self.allowed.fetch_add(1, Ordering::Relaxed);
        let (mut rparts, rbody) = response.into_parts();
        strip_hop_by_hop(&mut rparts.headers);
        rparts.version = agent_version;
        entry.decision = "allow".into();
        entry.status = rparts.status.as_u16();
        let audited = AuditedBody {
            inner: rbody,
            entry: Some(entry),
            started,
            bytes_down: 0,
            bytes_up,
            redacted_in_body,
            audit: self.audit.clone(),
        };
        Response::from_parts(rparts, audited.boxed())
    }

    fn deny(&self, mut entry: Entry, reason: &DenyReason, started: Instant) -> Response<RespBody> {
        self.denied.fetch_add(1, Ordering::Relaxed);
        entry.decision = "deny".into();
        entry.reason = Some(reason.code().into());
        entry.detail.get_or_insert_with(|| reason.to_string());
        if entry.rule.is_none() {
            entry.rule = reason.rule().map(|r| r + 1);
        }
        self.finish(entry, 403, started);
        forbidden(&self.bottle, reason.code(), &reason.to_string())
    }

    /// Egress is closed because the rules or secrets could not be read.
    fn deny_closed(&self, mut entry: Entry, why: &str, started: Instant) -> Response<RespBody> {
        self.denied.fetch_add(1, Ordering::Relaxed);
        entry.decision = "deny".into();
        entry.reason = Some("rules_unreadable".into());
        entry.detail = Some(why.into());
        self.finish(entry, 403, started);
        forbidden(
            &self.bottle,
            "rules_unreadable",
            &format!("egress is closed until the sidecar's rules can be read: {why}"),
        )
    }

    fn upstream_failed(
        &self,
        mut entry: Entry,
        error: &UpstreamError,
        started: Instant,
    ) -> Response<RespBody> {
        tracing::info!(host = entry.host, "upstream failure: {error}");
        entry.decision = "allow".into();
        entry.reason = Some(match error {
            UpstreamError::TlsVerify { .. } => "upstream_tls_verify".into(),
            _ => "upstream_failed".into(),
        });
        entry.detail = Some(error.to_string());
        self.finish(entry, 502, started);
        text(
            StatusCode::BAD_GATEWAY,
            &format!("Bottlebar: upstream failure: {error}\n"),
        )
    }

    fn finish(&self, mut entry: Entry, status: u16, started: Instant) {
        entry.status = status;
        entry.time = now_rfc3339();
        entry.duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            method = entry.method,
            host = entry.host,
            port = entry.port,
            status,
            reason = entry.reason.as_deref().unwrap_or(""),
            "{}",
            entry.decision
        );
        self.audit.record(&entry);
    }
}

/// Inside a tunnel, the request must name the tunnel's host (`Host` in
/// HTTP/1, `:authority` in HTTP/2); outside, `Host` must match the URL.
fn fronting(parts: &hyper::http::request::Parts, origin: &Origin) -> Option<DenyReason> {
    let uri_host = parts
        .uri
        .authority()
        .map(|a| normalize_host(a.host().trim_start_matches('[').trim_end_matches(']')));
    let header_host = parts
        .headers
        .get(header::HOST)
        .map(|h| h.to_str().map(host_of_header).unwrap_or_default());
    for (what, named) in [("URL", uri_host), ("Host header", header_host)] {
        if let Some(named) = named {
            if named != origin.host {
                let inside = if origin.tunneled {
                    format!("the tunnel to `{}`", origin.host)
                } else {
                    format!("the request for `{}`", origin.host)
                };
                return Some(DenyReason::Fronting {
                    detail: format!("the {what} names `{named}` inside {inside}"),
                });
            }
        }
    }
    None
}

/// A placeholder the agent was given may only travel to the rule that replaces it.
fn placeholder_misuse(
    parts: &hyper::http::request::Parts,
    snap: &Snapshot,
    rule: &EgressRule,
) -> Option<DenyReason> {
    let uri = parts.uri.to_string();
    for s in &snap.secrets {
        let Some(p) = s.placeholder.as_deref().filter(|p| !p.is_empty()) else {
            continue;
        };
        let present = uri.contains(p)
            || parts
                .headers
                .values()
                .any(|v| v.as_bytes().windows(p.len()).any(|w| w == p.as_bytes()));
        let injected_here = rule.inject.as_ref().is_some_and(|i| i.secret == s.name);
        if present && !injected_here {
            return Some(DenyReason::Placeholder {
                secret: s.name.clone(),
            });
        }
    }
    None
}

/// Scans path, query and header values; blocks, or masks in place and
/// returns how many findings were masked.
fn scan_head(
    parts: &mut hyper::http::request::Parts,
    snap: &Snapshot,
    rule: &EgressRule,
    rule_index: usize,
) -> Result<usize, DenyReason> {
    let scanner = &snap.scanner;
    let detected = |kind: String, location: String| DenyReason::SecretDetected {
        kind,
        location,
        rule: rule_index,
    };
    let mut redacted = 0;
    // Percent-decoding is not needed: the scanner looks for percent-encoded forms too.
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let mut new_path = path.clone();
    let mut new_query = query.clone();
    for (location, value) in [("path", Some(&mut new_path)), ("query", new_query.as_mut())] {
        let Some(value) = value else { continue };
        if let Some(f) = scanner.first(value.as_bytes()) {
            if rule.dlp == DlpAction::Block {
                return Err(detected(f.kind, location.into()));
            }
            let mut bytes = std::mem::take(value).into_bytes();
            redacted += scanner.redact(&mut bytes);
            *value = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    if new_path != path || new_query != query {
        let pq = match &new_query {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        let mut uri = parts.uri.clone().into_parts();
        uri.path_and_query = pq.parse().ok();
        parts.uri = Uri::from_parts(uri).unwrap_or_else(|_| parts.uri.clone());
    }
    let names: Vec<HeaderName> = parts.headers.keys().cloned().collect();
    for name in names {
        let values: Vec<HeaderValue> = parts.headers.get_all(&name).iter().cloned().collect();
        let mut changed = false;
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            let found = scanner.find_all(v.as_bytes());
            if found.is_empty() {
                out.push(v);
                continue;
            }
            if rule.dlp == DlpAction::Block {
                return Err(detected(found[0].kind.clone(), format!("header `{name}`")));
            }
            let mut bytes = v.as_bytes().to_vec();
            redacted += scanner.redact(&mut bytes);
            out.push(HeaderValue::from_bytes(&bytes).unwrap_or(v));
            changed = true;
        }
        if changed {
            parts.headers.remove(&name);
            for v in out {
                parts.headers.append(name.clone(), v);
            }
        }
    }
    Ok(redacted)
}

/// The agent's request body on its way out: counted, scanned through a
/// bounded window, blocked or redacted.
struct ScannedBody {
    inner: Incoming,
    scanner: StreamScanner,
    bytes_up: Arc<AtomicU64>,
    blocked: Arc<Mutex<Option<Finding>>>,
    redacted: Arc<AtomicU64>,
    finished: bool,
    trailers: Option<HeaderMap>,
}

impl hyper::body::Body for ScannedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.finished {
                return Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(f))) => f,
                Poll::Ready(None) => {
                    self.finished = true;
                    let rest = self.scanner.finish();
                    match self.release(rest) {
                        Some(out) => return Poll::Ready(Some(out)),
                        None => continue,
                    }
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    self.bytes_up
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    let pushed = self.scanner.push(&data);
                    if let Some(out) = self.release(pushed) {
                        return Poll::Ready(Some(out));
                    }
                }
                Err(frame) => {
                    // Trailers end the body: release what was held back first.
                    self.trailers = frame.into_trailers().ok();
                    self.finished = true;
                    let rest = self.scanner.finish();
                    if let Some(out) = self.release(rest) {
                        return Poll::Ready(Some(out));
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Redaction keeps lengths, and held-back bytes are all sent in the end.
        self.inner.size_hint()
    }
}

impl ScannedBody {
    /// Turns scanner output into a frame: `None` when there is nothing to send yet.
    fn release(&mut self, out: Result<Bytes, Finding>) -> Option<Result<Frame<Bytes>, BoxError>> {
        self.redacted
            .store(self.scanner.redacted as u64, Ordering::Relaxed);
        match out {
            Ok(b) if b.is_empty() => None,
            Ok(b) => Some(Ok(Frame::data(b))),
            Err(f) => {
                let msg = format!("request body carries {}", f.kind);
                *self.blocked.lock().unwrap() = Some(f);
                Some(Err(msg.into()))
            }
        }
    }
}

/// The upstream's response on its way to the agent: streamed as it arrives,
/// counted, and audited once it ends (or is dropped).
struct AuditedBody {
    inner: Incoming,
    entry: Option<Entry>,
    started: Instant,
    bytes_down: u64,
    bytes_up: Arc<AtomicU64>,
    redacted_in_body: Arc<AtomicU64>,
    audit: Arc<AuditLog>,
}

impl hyper::body::Body for AuditedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &polled {
            if let Some(d) = f.data_ref() {
                self.bytes_down += d.len() as u64;
            }
        }
        if let Poll::Ready(None) = &polled {
            self.record();
        }
        polled.map(|o| o.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl AuditedBody {
    fn record(&mut self) {
        if let Some(mut e) = self.entry.take() {
            e.bytes_down = self.bytes_down;
            e.bytes_up = self.bytes_up.load(Ordering::Relaxed);
            e.redacted += self.redacted_in_body.load(Ordering::Relaxed) as usize;
            e.time = now_rfc3339();
            e.duration_ms = self.started.elapsed().as_millis() as u64;
            tracing::info!(
                method = e.method,
                host = e.host,
                port = e.port,
                status = e.status,
                "allow"
            );
            self.audit.record(&e);
        }
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        self.record();
    }
}

/// Bytes already read from a stream, served again before the rest of it.
struct Rewind<T> {
    prefix: Option<Bytes>,
    inner: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(mut p) = self.prefix.take() {
            let n = p.len().min(buf.remaining());
            buf.put_slice(&p.split_to(n));
            if !p.is_empty() {
                self.prefix = Some(p);
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
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

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`).
fn host_of_header(value: &str) -> String {
    let v = value.trim();
    let host = if let Some(rest) = v.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        v.rsplit_once(':').map(|(h, _)| h).unwrap_or(v)
    };
    normalize_host(host)
}

/// Removes the headers that describe one hop, not the request (RFC 9110 §7.6.1),
/// including any the `Connection` header names and the proxy's own credentials.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("proxy-connection");
    headers.remove("keep-alive");
}

fn empty() -> RespBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

fn text(status: StatusCode, body: &str) -> Response<RespBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn forbidden(bottle: &str, code: &str, message: &str) -> Response<RespBody> {
    let mut resp = text(
        StatusCode::FORBIDDEN,
        &format!("Bottlebar: egress denied for bottle `{bottle}`: {message}\n"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-bottlebar-deny", v);
    }
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<RespBody> {
    let mut resp = text(status, &format!("{value}\n"));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests;
