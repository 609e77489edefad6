//! The explicit HTTP proxy: absolute-form HTTP requests and `CONNECT` tunnels,
//! deny by default, every decision made by `bottlebar_policy::decide`.
//!
//! Layers, outermost first: accept loop → HTTP/1 connection (hyper) →
//! `Proxy::handle` (routing: own endpoints / CONNECT / plain HTTP) →
//! policy decision → upstream (resolve with hickory, connect, forward).

use crate::audit::{now_rfc3339, AuditLog, Entry};
use anyhow::{Context, Result};
use bottlebar_policy::{
    decide, normalize_host, Decision, Request as PolicyRequest, SidecarConfig, HEALTH_PATH,
    SUPERVISE_PATH,
};
use bytes::Bytes;
use hickory_resolver::TokioResolver;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, hyper::Error>;

/// Largest request head (request line plus headers) accepted from the agent.
const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;
/// How long an upstream connection attempt may take per address.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(cfg: SidecarConfig) -> Result<()> {
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding the proxy to {}", cfg.listen))?;
    tracing::info!(
        bottle = %cfg.bottle,
        rules = cfg.rules.len(),
        "egress proxy listening on {}",
        cfg.listen
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: stopping"),
        }
    };
    serve(cfg, listener, stop).await
}

/// Serves the proxy on `listener` until `stop` completes.
pub async fn serve(
    cfg: SidecarConfig,
    listener: TcpListener,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let proxy = Arc::new(Proxy::new(cfg)?);
    tokio::pin!(stop);
    loop {
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
                let proxy = proxy.clone();
                tokio::spawn(async move { proxy.serve_connection(stream, peer).await });
            }
            _ = &mut stop => return Ok(()),
        }
    }
}

struct Proxy {
    cfg: SidecarConfig,
    resolver: TokioResolver,
    audit: AuditLog,
    allowed: AtomicU64,
    denied: AtomicU64,
}

/// What the audit log needs to know about one request.
struct Target<'a> {
    method: &'a str,
    scheme: &'a str,
    host: &'a str,
    port: u16,
    path: &'a str,
}

impl Proxy {
    fn new(cfg: SidecarConfig) -> Result<Self> {
        let resolver = TokioResolver::builder_tokio()
            .context("reading the resolver configuration (/etc/resolv.conf)")?
            .build();
        let audit = AuditLog::open(cfg.audit_file.as_deref())
            .with_context(|| format!("opening the audit log {:?}", cfg.audit_file))?;
        Ok(Self {
            cfg,
            resolver,
            audit,
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
        })
    }

    async fn serve_connection(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        // The address the agent dialled: requests for it are for the proxy itself.
        let local = stream.local_addr().ok();
        let svc = service_fn(move |req| {
            let proxy = self.clone();
            async move { Ok::<_, Infallible>(proxy.handle(req, local).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .max_buf_size(MAX_REQUEST_HEAD_BYTES)
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
    ) -> Response<Body> {
        if req.method() == Method::CONNECT {
            return self.connect(req).await;
        }
        if addressed_to(&req, local) {
            return self.own_endpoint(&req);
        }
        self.forward(req).await
    }

    /// Requests addressed to the proxy itself (origin-form).
    fn own_endpoint(&self, req: &Request<Incoming>) -> Response<Body> {
        match (req.method(), req.uri().path()) {
            (&Method::GET, HEALTH_PATH) => json(
                StatusCode::OK,
                serde_json::json!({ "status": "ok", "bottle": self.cfg.bottle }),
            ),
            (&Method::GET, SUPERVISE_PATH) => json(
                StatusCode::OK,
                serde_json::json!({
                    "bottle": self.cfg.bottle,
                    "rules": self.cfg.rules,
                    "allowed": self.allowed.load(Ordering::Relaxed),
                    "denied": self.denied.load(Ordering::Relaxed),
                }),
            ),
            _ => text(
                StatusCode::BAD_REQUEST,
                "Bottlebar sidecar: this is an HTTP proxy; send absolute-form requests (http://host/path) or CONNECT host:port\n",
            ),
        }
    }

    async fn connect(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let Some(authority) = req.uri().authority().cloned() else {
            return text(StatusCode::BAD_REQUEST, "CONNECT needs host:port\n");
        };
        let Some(port) = authority.port_u16() else {
            return text(StatusCode::BAD_REQUEST, "CONNECT needs an explicit port\n");
        };
        let host = normalize_host(authority.host());
        let target = Target {
            method: "CONNECT",
            scheme: "tunnel",
            host: &host,
            port,
            path: "",
        };
        let rule = match decide(
            &self.cfg.rules,
            PolicyRequest::Connect { host: &host, port },
        ) {
            Decision::Allow { rule } => rule,
            Decision::Deny(reason) => {
                return self.deny(
                    &target,
                    reason.code(),
                    reason.rule(),
                    &reason.to_string(),
                    started,
                )
            }
        };
        let upstream = match self.dial(&host, port).await {
            Ok(s) => s,
            Err(msg) => return self.upstream_failed(&target, rule, &msg, started),
        };
        self.allowed.fetch_add(1, Ordering::Relaxed);
        let proxy = self.clone();
        tokio::spawn(async move {
            let mut upstream = upstream;
            let (up, down) = match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    let mut agent = TokioIo::new(upgraded);
                    tokio::io::copy_bidirectional(&mut agent, &mut upstream)
                        .await
                        .unwrap_or((0, 0))
                }
                Err(e) => {
                    tracing::debug!("CONNECT upgrade failed: {e}");
                    (0, 0)
                }
            };
            proxy.record(
                &target_owned(&host, port),
                "allow",
                Some(rule),
                None,
                200,
                up,
                down,
                started,
            );
        });
        Response::new(empty())
    }

    async fn forward(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let started = Instant::now();
        let uri = req.uri().clone();
        if uri.scheme_str() != Some("http") {
            return text(
                StatusCode::BAD_REQUEST,
                "Bottlebar sidecar: only http:// URLs are proxied in absolute form; use CONNECT for https\n",
            );
        }
        let authority = uri.authority().expect("checked by caller");
        let host = normalize_host(authority.host());
        let port = authority.port_u16().unwrap_or(80);
        let path = uri.path().to_string();
        let method = req.method().as_str().to_string();
        let target = Target {
            method: &method,
            scheme: "http",
            host: &host,
            port,
            path: &path,
        };
        // A Host header naming another host than the URL is domain fronting.
        if let Some(h) = req.headers().get(header::HOST) {
            let named = h.to_str().map(host_of_header).unwrap_or_default();
            if named != host {
                let msg = format!(
                    "the Host header (`{named}`) does not match the request URL's host (`{host}`)"
                );
                return self.deny(&target, "host_mismatch", None, &msg, started);
            }
        }
        let decision = decide(
            &self.cfg.rules,
            PolicyRequest::Http {
                method: &method,
                host: &host,
                port,
                path: &path,
            },
        );
        let rule = match decision {
            Decision::Allow { rule } => rule,
            Decision::Deny(reason) => {
                return self.deny(
                    &target,
                    reason.code(),
                    reason.rule(),
                    &reason.to_string(),
                    started,
                )
            }
        };
        let stream = match self.dial(&host, port).await {
            Ok(s) => s,
            Err(msg) => return self.upstream_failed(&target, rule, &msg, started),
        };
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(pair) => pair,
                Err(e) => {
                    let msg = format!("HTTP handshake with {host}:{port} failed: {e}");
                    return self.upstream_failed(&target, rule, &msg, started);
                }
            };
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("upstream connection ended: {e}");
            }
        });

        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if !parts.headers.contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(header::HOST, v);
            }
        }
        parts.uri = match uri.path_and_query() {
            Some(pq) => pq.as_str().parse().unwrap_or_else(|_| "/".parse().unwrap()),
            None => "/".parse().unwrap(),
        };
        let upstream_req = Request::from_parts(parts, body);
        match sender.send_request(upstream_req).await {
            Ok(resp) => {
                self.allowed.fetch_add(1, Ordering::Relaxed);
                let status = resp.status().as_u16();
                self.record(&target, "allow", Some(rule), None, status, 0, 0, started);
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                let msg = format!("upstream {host}:{port} failed: {e}");
                self.upstream_failed(&target, rule, &msg, started)
            }
        }
    }

    /// Resolves `host` with the sidecar's own resolver and connects to the first
    /// address that answers. Errors are the text the agent will read in a 502.
    async fn dial(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let addrs: Vec<IpAddr> = match self.resolver.lookup_ip(format!("{host}.")).await {
            Ok(lookup) => lookup.iter().collect(),
            Err(e) => return Err(format!("could not resolve `{host}`: {e}")),
        };
        let mut last_err = format!("`{host}` has no addresses");
        for ip in addrs {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => return Ok(s),
                Ok(Err(e)) => last_err = format!("could not connect to {host} ({addr}): {e}"),
                Err(_) => last_err = format!("connecting to {host} ({addr}) timed out"),
            }
        }
        Err(last_err)
    }

    fn deny(
        &self,
        target: &Target<'_>,
        code: &str,
        rule: Option<usize>,
        message: &str,
        started: Instant,
    ) -> Response<Body> {
        self.denied.fetch_add(1, Ordering::Relaxed);
        self.record(target, "deny", rule, Some(code), 403, 0, 0, started);
        let body = format!(
            "Bottlebar: egress denied for bottle `{}`: {message}\n",
            self.cfg.bottle
        );
        let mut resp = text(StatusCode::FORBIDDEN, &body);
        if let Ok(v) = HeaderValue::from_str(code) {
            resp.headers_mut().insert("x-bottlebar-deny", v);
        }
        resp
    }

    fn upstream_failed(
        &self,
        target: &Target<'_>,
        rule: usize,
        message: &str,
        started: Instant,
    ) -> Response<Body> {
        tracing::info!(host = target.host, "upstream failure: {message}");
        self.record(
            target,
            "allow",
            Some(rule),
            Some("upstream_failed"),
            502,
            0,
            0,
            started,
        );
        text(
            StatusCode::BAD_GATEWAY,
            &format!("Bottlebar: upstream failure: {message}\n"),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        t: &Target<'_>,
        decision: &str,
        rule: Option<usize>,
        reason: Option<&str>,
        status: u16,
        bytes_up: u64,
        bytes_down: u64,
        started: Instant,
    ) {
        tracing::info!(
            method = t.method,
            host = t.host,
            port = t.port,
            status,
            reason = reason.unwrap_or(""),
            "{decision}"
        );
        self.audit.record(&Entry {
            time: now_rfc3339(),
            bottle: &self.cfg.bottle,
            method: t.method,
            scheme: t.scheme,
            host: t.host,
            port: t.port,
            path: t.path,
            rule: rule.map(|r| r + 1),
            decision,
            reason,
            status,
            bytes_up,
            bytes_down,
            duration_ms: started.elapsed().as_millis() as u64,
        });
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

fn target_owned(host: &str, port: u16) -> Target<'_> {
    Target {
        method: "CONNECT",
        scheme: "tunnel",
        host,
        port,
        path: "",
    }
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

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
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

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut resp = text(status, &format!("{value}\n"));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottlebar_policy::EgressRule;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn host_header_parsing() {
        assert_eq!(host_of_header("Example.com:8080"), "example.com");
        assert_eq!(host_of_header("example.com"), "example.com");
        assert_eq!(host_of_header("[::1]:80"), "::1");
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-secret, keep-alive"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::ACCEPT));
    }

    /// A loopback upstream that answers every request with `token` and echoes
    /// the request head it saw after a blank line.
    async fn upstream(token: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        let Ok(n) = s.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                    }
                    let head = String::from_utf8_lossy(&seen).to_string();
                    let body = format!("{token}\n{head}");
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        addr
    }

    struct Running {
        addr: SocketAddr,
        audit: tempfile::TempDir,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    async fn proxy(rules: Vec<EgressRule>) -> Running {
        let audit = tempfile::tempdir().unwrap();
        let cfg = SidecarConfig {
            bottle: "unit".into(),
            listen: "127.0.0.1:0".into(),
            rules,
            audit_file: Some(audit.path().join("egress.jsonl").display().to_string()),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            serve(cfg, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap()
        });
        Running {
            addr,
            audit,
            _stop: tx,
        }
    }

    fn localhost_rule(port: u16) -> EgressRule {
        EgressRule {
            host: "localhost".into(),
            ports: vec![port],
            methods: vec![],
            paths: vec![],
        }
    }

    /// Sends raw bytes, half-closes nothing, and reads until the peer closes
    /// or `timeout` passes.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn allowed_http_is_forwarded_without_proxy_headers() {
        let up = upstream("tok-http").await;
        let p = proxy(vec![localhost_rule(up.port())]).await;
        let req = format!(
            "GET http://localhost:{0}/x?y=1 HTTP/1.1\r\nHost: localhost:{0}\r\nProxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nConnection: close\r\n\r\n",
            up.port()
        );
        let reply = exchange(p.addr, req.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("tok-http"));
        // The upstream saw origin-form and none of the proxy's own headers.
        assert!(reply.contains("GET /x?y=1 HTTP/1.1"), "{reply}");
        assert!(
            !reply.to_ascii_lowercase().contains("proxy-authorization"),
            "{reply}"
        );
        assert!(
            !reply.to_ascii_lowercase().contains("proxy-connection"),
            "{reply}"
        );
        let audit = std::fs::read_to_string(p.audit.path().join("egress.jsonl")).unwrap();
        assert!(
            audit.contains("\"decision\":\"allow\"") && audit.contains("\"path\":\"/x\""),
            "{audit}"
        );
    }

    #[tokio::test]
    async fn denials_say_why() {
        let up = upstream("tok-deny").await;
        let p = proxy(vec![localhost_rule(up.port())]).await;
        let cases = [
            ("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n".to_string(), "host_not_allowed", "not on this bottle's egress allowlist"),
            (format!("GET http://localhost:{0}/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n", up.port()), "host_mismatch", "does not match"),
            (format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n\r\n", up.port()), "ip_literal", "is an IP address"),
            ("CONNECT localhost:22 HTTP/1.1\r\n\r\n".to_string(), "port_not_allowed", "port 22 is not allowed"),
            ("GET http://2130706433/ HTTP/1.1\r\nHost: 2130706433\r\nConnection: close\r\n\r\n".to_string(), "ip_literal", "is an IP address"),
        ];
        for (req, code, text) in cases {
            let reply = exchange(p.addr, req.as_bytes()).await;
            assert!(reply.starts_with("HTTP/1.1 403"), "{req}: {reply}");
            assert!(
                reply.contains(&format!("x-bottlebar-deny: {code}")),
                "{req}: {reply}"
            );
            assert!(reply.contains(text), "{req}: {reply}");
            assert!(!reply.contains("tok-deny"));
        }
        let audit = std::fs::read_to_string(p.audit.path().join("egress.jsonl")).unwrap();
        assert_eq!(
            audit
                .lines()
                .filter(|l| l.contains("\"decision\":\"deny\""))
                .count(),
            5,
            "{audit}"
        );
    }

    #[tokio::test]
    async fn connect_tunnels_to_allowed_hosts() {
        let up = upstream("tok-tunnel").await;
        let p = proxy(vec![localhost_rule(up.port())]).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        s.write_all(
            format!(
                "CONNECT localhost:{0} HTTP/1.1\r\nHost: localhost:{0}\r\n\r\n",
                up.port()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut head = vec![0u8; 1024];
        let n = s.read(&mut head).await.unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
        s.write_all(b"GET /through HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
        let out = String::from_utf8_lossy(&out);
        assert!(
            out.contains("tok-tunnel") && out.contains("GET /through"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
        let up = upstream("tok-after").await;
        let p = proxy(vec![localhost_rule(up.port())]).await;
        for garbage in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET http://localhost/ HTTP/9.9\r\n\r\n",
            b"\x00\x01\x02\r\n\r\n",
            b"GET https://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ] {
            let reply = exchange(p.addr, garbage).await;
            assert!(reply.starts_with("HTTP/1.1 400"), "{garbage:?}: {reply}");
        }
        let huge = format!(
            "GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(200_000)
        );
        let reply = exchange(p.addr, huge.as_bytes()).await;
        assert!(
            reply.starts_with("HTTP/1.1 431"),
            "{}",
            &reply[..reply.len().min(200)]
        );
        let ok = exchange(p.addr, format!("GET http://localhost:{0}/ HTTP/1.1\r\nHost: localhost:{0}\r\nConnection: close\r\n\r\n", up.port()).as_bytes()).await;
        assert!(ok.contains("tok-after"), "{ok}");
    }

    #[tokio::test]
    async fn own_endpoints_answer_in_origin_and_absolute_form() {
        let p = proxy(vec![]).await;
        let health = exchange(
            p.addr,
            format!("GET {HEALTH_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert!(
            health.starts_with("HTTP/1.1 200") && health.contains("\"status\":\"ok\""),
            "{health}"
        );
        let sup = exchange(
            p.addr,
            format!(
                "GET http://{}{SUPERVISE_PATH} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                p.addr, p.addr
            )
            .as_bytes(),
        )
        .await;
        assert!(
            sup.starts_with("HTTP/1.1 200") && sup.contains("\"bottle\":\"unit\""),
            "{sup}"
        );
        let other = exchange(
            p.addr,
            b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(other.starts_with("HTTP/1.1 400"), "{other}");
    }
}
