//! Layer 3: `CONNECT` tunnels.
//!
//! The tunnel is decided on its host and port. With the bottle's CA it is
//! intercepted: TLS from the agent is terminated with a leaf for the
//! tunnel's host (the SNI must name that host, and carry no secret), and
//! every request inside goes through the pipeline. Plain HTTP inside a
//! tunnel is served too, but the upstream leg is TLS whenever the port is
//! 443: the agent's first byte never decides whether a credential travels
//! in the clear. Without a CA the tunnel is blind, decided on host and port
//! alone. Each tunnel keeps its connection's place within the limit, and a
//! tunnel that stalls before its first request is closed.

use super::accept::Admission;
use super::checks::check_destination;
use super::reply::{empty, RespBody, Stop};
use super::rewind::Rewind;
use super::{Origin, Proxy, MAX_REQUEST_HEAD_BYTES};
use crate::upstream::{AgentHttp, Pool};
use bottlebar_policy::supervise::Scope;
use bottlebar_policy::Verdict;
use bottlebar_policy::{
    decide, normalize_host, Decision, DenyReason, Request as PolicyRequest, TLS_PORT,
};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// Streams one HTTP/2 connection from the agent may open at once.
const MAX_H2_STREAMS: u32 = 128;

impl Proxy {
    /// Answers a `CONNECT`: refused, or 200 and the tunnel served on its own task.
    pub(super) async fn connect(
        self: Arc<Self>,
        req: Request<Incoming>,
        admission: Arc<Admission>,
    ) -> Response<RespBody> {
        let started = Instant::now();
        let authority = req.uri().authority().cloned();
        let target = authority
            .as_ref()
            .and_then(|a| Some((a.host(), a.port_u16()?)));
        let Some((host, port)) = target else {
            let entry = self.entry("CONNECT", "tunnel", "-", 0, "");
            let reason = DenyReason::BadRequest {
                detail: "CONNECT needs host:port".into(),
            };
            return self.stop(entry, Stop::Deny(reason), started);
        };
        let host = normalize_host(host.trim_start_matches('[').trim_end_matches(']'));
        let inspected = self.mitm.is_some();
        let snap = self
            .hold_unlisted(
                self.live.current(),
                PolicyRequest::Connect {
                    host: &host,
                    port,
                    inspected,
                },
                || {
                    let scope = Scope {
                        host: host.clone(),
                        port,
                        methods: Vec::new(),
                        paths: Vec::new(),
                    };
                    (scope, format!("CONNECT {host}:{port}"))
                },
            )
            .await;
        let (audit_host, _) = snap.scanner.redact_str(&host);
        let mut entry = self.entry("CONNECT", "tunnel", &audit_host, port, "");
        if let Some(err) = &snap.error {
            return self.stop(entry, Stop::Closed(err.clone()), started);
        }
        if let Err(reason) = check_destination("CONNECT", &host, &snap) {
            return self.stop(entry, Stop::Deny(reason), started);
        }
        let rule = match decide(
            &snap.rules,
            PolicyRequest::Connect {
                host: &host,
                port,
                inspected,
            },
        ) {
            Decision::Allow { rule } => rule,
            Decision::Deny(reason) => return self.stop(entry, Stop::Deny(reason), started),
        };
        entry.rule = Some(rule + 1);
        if inspected {
            // Each request inside the tunnel is decided and audited on its own.
            let origin = Origin {
                host,
                port,
                agent_tls: false,
                upstream_tls: port == TLS_PORT,
                tunneled: true,
                passed: Arc::default(),
            };
            admission.slot.set_pending();
            tokio::spawn(async move {
                let slot = admission.slot.clone();
                let limit = self.limits.handshake_timeout;
                let serve = async {
                    match hyper::upgrade::on(req).await {
                        Ok(upgraded) => {
                            self.intercept(TokioIo::new(upgraded), origin, admission.clone())
                                .await
                        }
                        Err(e) => tracing::debug!("CONNECT upgrade failed: {e}"),
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = slot.stalled(limit) => tracing::debug!("tunnel closed: no request inside it in time"),
                    _ = slot.evicted() => tracing::debug!("tunnel closed to make room"),
                }
            });
            return Response::new(empty());
        }
        self.blind_tunnel(req, host, port, entry, started, admission)
            .await
    }

    /// No CA: a tunnel decided on host and port alone, bytes copied both ways.
    async fn blind_tunnel(
        self: Arc<Self>,
        req: Request<Incoming>,
        host: String,
        port: u16,
        mut entry: crate::audit::Entry,
        started: Instant,
        admission: Arc<Admission>,
    ) -> Response<RespBody> {
        let snap = self.live.current();
        let mut upstream = match self
            .upstream
            .dial(&host, port, snap.hosts.get(&host).copied(), &snap.addresses)
            .await
        {
            Ok(s) => s,
            Err(e) => return self.stop(entry, Stop::Upstream(e), started),
        };
        self.allowed.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _held = admission;
            let (up, down) = match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    tokio::io::copy_bidirectional(&mut TokioIo::new(upgraded), &mut upstream)
                        .await
                        .unwrap_or((0, 0))
                }
                Err(_) => (0, 0),
            };
            entry.decision = Verdict::Allow;
            entry.status = 200;
            entry.bytes_up = up;
            entry.bytes_down = down;
            entry.duration_ms = started.elapsed().as_millis() as u64;
            entry.time = crate::audit::now_rfc3339();
            self.audit.record(&entry);
        });
        Response::new(empty())
    }

    /// Serves the inside of an allowed tunnel: TLS terminated with a leaf for
    /// the tunnel's host, or plain HTTP.
    async fn intercept<IO>(self: Arc<Self>, io: IO, mut origin: Origin, admission: Arc<Admission>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut io = Rewind {
            prefix: None,
            inner: io,
        };
        let mut first = [0u8; 1];
        match io.inner.read(&mut first).await {
            Ok(1) => io.prefix = Some(Bytes::copy_from_slice(&first)),
            _ => return,
        }
        if first[0] != TLS_HANDSHAKE {
            return self.serve_inner(io, origin, admission, AgentHttp::H1).await;
        }
        let acceptor =
            tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
        let start = match acceptor.await {
            Ok(s) => s,
            Err(e) => return tracing::debug!(host = origin.host, "TLS from the agent failed: {e}"),
        };
        if let Some(sni) = start.client_hello().server_name() {
            let sni = normalize_host(sni);
            let snap = self.live.current();
            let refusal = if let Err(reason) = check_destination("TLS", &sni, &snap) {
                Some(reason)
            } else if sni != origin.host {
                // The agent asked the tunnel for one host and TLS for another.
                Some(DenyReason::Fronting {
                    detail: format!(
                        "TLS server name `{sni}` differs from the CONNECT host `{}`",
                        origin.host
                    ),
                })
            } else {
                None
            };
            if let Some(reason) = refusal {
                let entry = self.entry("CONNECT", "https", &origin.host, origin.port, "");
                self.stop(entry, Stop::Deny(reason), Instant::now());
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
        origin.agent_tls = true;
        origin.upstream_tls = true;
        let speaks = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => AgentHttp::H2,
            _ => AgentHttp::H1,
        };
        self.serve_inner(tls, origin, admission, speaks).await;
    }

    /// HTTP/1.1 or HTTP/2 inside a tunnel, every request through the pipeline.
    async fn serve_inner<IO>(
        self: Arc<Self>,
        io: IO,
        origin: Origin,
        admission: Arc<Admission>,
        speaks: AgentHttp,
    ) where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let pool = Arc::new(Pool::new(speaks));
        let header_timeout = self.limits.header_timeout;
        let svc = service_fn(move |req| {
            admission.slot.activate();
            let (proxy, origin, pool) = (self.clone(), origin.clone(), pool.clone());
            async move { Ok::<_, Infallible>(proxy.pipeline(req, origin, pool).await) }
        });
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .half_close(true)
            .max_buf_size(MAX_REQUEST_HEAD_BYTES)
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_REQUEST_HEAD_BYTES as u32)
            .max_concurrent_streams(MAX_H2_STREAMS)
            .max_send_buf_size(256 * 1024)
            .keep_alive_interval(Some(header_timeout))
            .keep_alive_timeout(header_timeout);
        if let Err(e) = builder.serve_connection(TokioIo::new(io), svc).await {
            tracing::debug!("intercepted connection ended: {e}");
        }
    }
}
