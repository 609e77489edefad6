//! Connections to the real servers: resolved by the sidecar itself (hickory;
//! the image has no libc resolver), TLS verified against the Mozilla roots
//! plus the bottle's extra roots.
//!
//! The upstream leg speaks what the agent speaks: HTTP/2 when the agent's
//! connection is HTTP/2 and the server offers it, otherwise HTTP/1.1 (a
//! server that will only speak HTTP/2 gets it). Translating an HTTP/1.1
//! agent's requests to HTTP/2 bought nothing (one agent connection's
//! requests come one at a time) and cost a third of the throughput: the
//! HTTP/2 framing and flow control were the sidecar's largest user-space
//! cost under load (docs/performance.md).
//!
//! Connections are pooled per agent connection and destination, so an agent
//! keeping its connection alive keeps the upstream one alive too.

use anyhow::{Context, Result};
use bottlebar_policy::AddressPolicy;
use bytes::Bytes;
use hickory_resolver::TokioResolver;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;

/// Any error in a body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A request body going upstream.
pub type ReqBody = BoxBody<Bytes, BoxError>;

/// HTTP/1.1 upstream connections kept per destination and agent connection.
const MAX_IDLE_PER_DESTINATION: usize = 8;

/// How long connecting (TCP plus TLS) to one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an upstream request failed; the `Display` is what the agent reads in the 502.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The name did not resolve.
    #[error("could not resolve `{host}`: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's reason.
        reason: String,
    },
    /// No connection could be made.
    #[error("could not connect to {host}:{port}: {reason}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// The OS's reason.
        reason: String,
    },
    /// The name resolved to a private address the bottle does not allow.
    #[error("`{host}` resolved only to addresses the proxy does not connect to: {detail}")]
    PrivateAddress {
        /// The host.
        host: String,
        /// Which address, and why it is refused.
        detail: String,
    },
    /// The upstream's certificate did not verify.
    #[error("TLS verification of {host} failed: {reason}; the connection was not made")]
    TlsVerify {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The server speaks none of the protocols asked for (it refused
    /// HTTP/1.1 for want of HTTP/2): asked again with HTTP/2.
    #[error("TLS handshake with {host} failed: {reason}")]
    NoCommonProtocol {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed.
    #[error("TLS handshake with {host} failed: {reason}")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The HTTP exchange failed.
    #[error("HTTP exchange with {host} failed: {reason}")]
    Http {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

/// Where a request goes: host, port, and whether over TLS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Whether the leg is TLS.
    pub tls: bool,
    /// An address the bottle pins this host to, used instead of DNS.
    pub pinned: Option<IpAddr>,
}

enum Sender {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

/// Resolving, connecting and TLS-verifying upstream legs.
pub struct Upstream {
    /// Offers HTTP/2 and HTTP/1.1.
    tls_h2: Arc<ClientConfig>,
    /// Offers HTTP/1.1 only.
    tls_h1: Arc<ClientConfig>,
    resolver: TokioResolver,
}

/// What the agent's connection speaks, and so what its upstream legs ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentHttp {
    /// HTTP/1.1: upstream legs ask for HTTP/1.1.
    H1,
    /// HTTP/2: upstream legs ask for HTTP/2, taking HTTP/1.1 if that is all
    /// the server speaks.
    H2,
}

impl Upstream {
    /// `extra_roots_pem`: PEM certificates trusted in addition to the Mozilla roots.
    pub fn new(extra_roots_pem: Option<&[u8]>) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = extra_roots_pem {
            use rustls::pki_types::pem::PemObject;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.context("an extra root is not a valid PEM certificate")?)
                    .context("an extra root is not a usable CA certificate")?;
                added += 1;
            }
            anyhow::ensure!(added > 0, "the extra roots file holds no certificate");
        }
        let mut tls = ClientConfig::builder_with_provider(crate::mitm::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tls_h1 = tls.clone();
        tls_h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let resolver = TokioResolver::builder_tokio()
            .context("reading the resolver configuration (/etc/resolv.conf)")?
            .build();
        Ok(Self {
            tls_h2: Arc::new(tls),
            tls_h1: Arc::new(tls_h1),
            resolver,
        })
    }

    /// Resolves `host` (an address is used as is) with the sidecar's own resolver.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, UpstreamError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        match self.resolver.lookup_ip(format!("{host}.")).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) => Err(UpstreamError::Resolve {
                host: host.into(),
                reason: e.to_string(),
            }),
        }
    }

    /// A TCP connection to the first address of `host` that answers. An
    /// address pinned by the bottle is used as is; resolved addresses that
    /// `addresses` refuses (loopback, private, the sidecar's own …) are
    /// skipped, and if none is left the request fails saying why.
    pub async fn dial(
        &self,
        host: &str,
        port: u16,
        pinned: Option<IpAddr>,
        addresses: &AddressPolicy,
    ) -> Result<TcpStream, UpstreamError> {
        let addrs = match pinned {
            Some(ip) => vec![ip],
            None => {
                let resolved = self.resolve(host).await?;
                let (ok, refused): (Vec<IpAddr>, Vec<IpAddr>) = resolved
                    .iter()
                    .partition(|ip| addresses.check(**ip).is_ok());
                if ok.is_empty() && !refused.is_empty() {
                    let detail = refused
                        .iter()
                        .map(|ip| {
                            let kind = addresses.check(*ip).err().map(|k| k.as_str()).unwrap_or("");
                            format!("{ip} ({kind})")
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(UpstreamError::PrivateAddress {
                        host: host.into(),
                        detail,
                    });
                }
                ok
            }
        };
        let mut reason = format!("`{host}` has no addresses");
        for ip in addrs {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Ok(Err(e)) => reason = format!("{addr}: {e}"),
                Err(_) => reason = format!("{addr}: timed out"),
            }
        }
        Err(UpstreamError::Connect {
            host: host.into(),
            port,
            reason,
        })
    }

    /// A connection for `agent`'s requests: HTTP/1.1 for an HTTP/1.1 agent,
    /// unless the server refuses it for want of HTTP/2.
    async fn connect(
        &self,
        dest: &Destination,
        addresses: &AddressPolicy,
        agent: AgentHttp,
    ) -> Result<Sender, UpstreamError> {
        match (agent, self.connect_with(dest, addresses, agent).await) {
            (AgentHttp::H1, Err(UpstreamError::NoCommonProtocol { .. })) => {
                self.connect_with(dest, addresses, AgentHttp::H2).await
            }
            (_, result) => result,
        }
    }

    async fn connect_with(
        &self,
        dest: &Destination,
        addresses: &AddressPolicy,
        agent: AgentHttp,
    ) -> Result<Sender, UpstreamError> {
        let tcp = self
            .dial(&dest.host, dest.port, dest.pinned, addresses)
            .await?;
        let http_err = |e: hyper::Error| UpstreamError::Http {
            host: dest.host.clone(),
            reason: e.to_string(),
        };
        if !dest.tls {
            let (sender, conn) = http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(http_err)?;
            tokio::spawn(conn);
            return Ok(Sender::H1(sender));
        }
        let name = ServerName::try_from(dest.host.clone()).map_err(|e| UpstreamError::Tls {
            host: dest.host.clone(),
            reason: e.to_string(),
        })?;
        let config = match agent {
            AgentHttp::H1 => self.tls_h1.clone(),
            AgentHttp::H2 => self.tls_h2.clone(),
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(tls_error(&dest.host, e)),
            Err(_) => {
                return Err(UpstreamError::Tls {
                    host: dest.host.clone(),
                    reason: "timed out".into(),
                })
            }
        };
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(http_err)?;
            tokio::spawn(conn);
            Ok(Sender::H2(sender))
        } else {
            let (sender, conn) = http1::handshake(TokioIo::new(tls))
                .await
                .map_err(http_err)?;
            tokio::spawn(conn);
            Ok(Sender::H1(sender))
        }
    }
}

/// Tells a certificate that did not verify apart from other handshake failures.
fn tls_error(host: &str, e: std::io::Error) -> UpstreamError {
    let reason = e.to_string();
    let rustls_err = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls_err {
        Some(rustls::Error::InvalidCertificate(c)) => UpstreamError::TlsVerify {
            host: host.into(),
            reason: format!("invalid peer certificate: {c:?}"),
        },
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)) => {
            UpstreamError::NoCommonProtocol {
                host: host.into(),
                reason,
            }
        }
        _ => UpstreamError::Tls {
            host: host.into(),
            reason,
        },
    }
}

/// The upstream connections of one agent connection.
pub struct Pool {
    agent: AgentHttp,
    h2: Mutex<HashMap<Destination, http2::SendRequest<ReqBody>>>,
    h1: Mutex<HashMap<Destination, Vec<http1::SendRequest<ReqBody>>>>,
}

/// Whether the request will travel as HTTP/2 (absolute URI, no `Host`) or HTTP/1.1.
pub enum Framing {
    /// HTTP/1.1.
    H1,
    /// HTTP/2.
    H2,
}

impl Pool {
    /// The (empty) pool of an agent connection speaking `agent`.
    pub fn new(agent: AgentHttp) -> Self {
        Pool {
            agent,
            h2: Mutex::default(),
            h1: Mutex::default(),
        }
    }

    /// Sends `build(framing)` to `dest`, reusing a connection when one is free.
    pub async fn send(
        &self,
        upstream: &Upstream,
        dest: &Destination,
        addresses: &AddressPolicy,
        build: impl FnOnce(Framing) -> Request<ReqBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let http_err = |e: hyper::Error| UpstreamError::Http {
            host: dest.host.clone(),
            reason: e.to_string(),
        };
        let reusable_h2 = self
            .h2
            .lock()
            .unwrap()
            .get(dest)
            .filter(|s| !s.is_closed())
            .cloned();
        if let Some(mut h2) = reusable_h2 {
            return h2.send_request(build(Framing::H2)).await.map_err(http_err);
        }
        let idle_h1 = {
            let mut map = self.h1.lock().unwrap();
            let list = map.entry(dest.clone()).or_default();
            list.retain(|s| !s.is_closed());
            list.iter()
                .position(|s| s.is_ready())
                .map(|i| list.swap_remove(i))
        };
        let mut h1 = match idle_h1 {
            Some(s) => s,
            None => match upstream.connect(dest, addresses, self.agent).await? {
                Sender::H2(mut h2) => {
                    self.h2.lock().unwrap().insert(dest.clone(), h2.clone());
                    return h2.send_request(build(Framing::H2)).await.map_err(http_err);
                }
                Sender::H1(s) => s,
            },
        };
        let resp = h1
            .send_request(build(Framing::H1))
            .await
            .map_err(http_err)?;
        // Ready again once this response's body has been read; kept for the
        // next request, up to a bound (an HTTP/2 agent may fan out).
        let mut map = self.h1.lock().unwrap();
        let idle = map.entry(dest.clone()).or_default();
        if idle.len() < MAX_IDLE_PER_DESTINATION {
            idle.push(h1);
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottlebar_e2e::testkit::pki::TestCa;
    use bottlebar_e2e::testkit::server;
    use http_body_util::{BodyExt, Empty};

    /// An upstream on loopback offering only `alpn`; a pool for `agent`
    /// asks it for `/echo`: the HTTP version the server saw.
    async fn version_seen(alpn: &[&[u8]], agent: AgentHttp) -> String {
        let ca = TestCa::new("Test Internet CA");
        let (cert, key) = ca.leaf(&["localhost"]);
        let mut config = (*server::tls_config(&cert, &key).unwrap()).clone();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(server::serve_https(listener, Arc::new(config), "t".into()));

        let upstream = Upstream::new(Some(ca.cert_pem.as_bytes())).unwrap();
        let dest = Destination {
            host: "localhost".into(),
            port,
            tls: true,
            pinned: Some("127.0.0.1".parse().unwrap()),
        };
        let build = |framing| {
            let uri = match framing {
                Framing::H1 => "/echo".to_string(),
                Framing::H2 => format!("https://localhost:{port}/echo"),
            };
            let mut req = Request::get(uri);
            if let Framing::H1 = framing {
                req = req.header("host", format!("localhost:{port}"));
            } else {
                req = req.version(hyper::Version::HTTP_2);
            }
            req.body(Empty::new().map_err(|e| match e {}).boxed())
                .unwrap()
        };
        let pool = Pool::new(agent);
        let resp = pool
            .send(&upstream, &dest, &AddressPolicy::default(), build)
            .await
            .unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap();
        echo["version"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn the_upstream_leg_speaks_what_the_agent_speaks() {
        let both: &[&[u8]] = &[b"h2", b"http/1.1"];
        assert_eq!(version_seen(both, AgentHttp::H1).await, "HTTP/1.1");
        assert_eq!(version_seen(both, AgentHttp::H2).await, "HTTP/2.0");
        // A server that will only speak HTTP/2 refuses HTTP/1.1 in the
        // handshake; it is asked again for HTTP/2.
        assert_eq!(version_seen(&[b"h2"], AgentHttp::H1).await, "HTTP/2.0");
        // One that only speaks HTTP/1.1 serves an HTTP/2 agent too.
        assert_eq!(
            version_seen(&[b"http/1.1"], AgentHttp::H2).await,
            "HTTP/1.1"
        );
    }
}
