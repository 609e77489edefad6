//! Connections to the real servers: resolved by the sidecar itself (hickory;
//! the image has no libc resolver), TLS verified against the Mozilla roots
//! plus the bottle's extra roots, HTTP/2 when the server offers it.
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
    tls: Arc<ClientConfig>,
    resolver: TokioResolver,
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
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let resolver = TokioResolver::builder_tokio()
            .context("reading the resolver configuration (/etc/resolv.conf)")?
            .build();
        Ok(Self {
            tls: Arc::new(tls),
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

    async fn connect(
        &self,
        dest: &Destination,
        addresses: &AddressPolicy,
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
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
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
        _ => UpstreamError::Tls {
            host: host.into(),
            reason,
        },
    }
}

/// The upstream connections of one agent connection.
#[derive(Default)]
pub struct Pool {
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
            None => match upstream.connect(dest, addresses).await? {
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
