//! An HTTP client that goes through an explicit proxy the way agents' tools
//! do (absolute-form for `http://`, `CONNECT` then TLS for `https://`), with
//! knobs an honest client would not have: another TLS server name or
//! `CONNECT` host than the URL's, to attempt domain fronting.

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::{Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Default)]
pub struct FetchOptions {
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Offer HTTP/2 by ALPN (HTTPS only).
    pub http2: bool,
    /// TLS server name to send instead of the URL's host.
    pub sni: Option<String>,
    /// Host to name in `CONNECT` instead of the URL's.
    pub connect_host: Option<String>,
}

/// One response, with when each body chunk arrived.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// (milliseconds since the request was sent, bytes) per body chunk.
    pub chunks: Vec<(u64, usize)>,
}

impl Fetched {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": self.status, "version": self.version,
            "headers": self.headers.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
            "body": self.body, "chunks": self.chunks,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// A persistent connection (through the proxy, or direct) for many requests.
pub struct Session {
    sender: Sender,
    scheme: String,
    authority: String,
    /// HTTP URLs through a proxy use absolute-form request targets.
    absolute_form: bool,
}

/// A TLS client configuration that trusts only the CAs in `roots_pem` and
/// offers the protocols `alpn`.
pub fn tls_client_config(
    roots_pem: &[u8],
    alpn: Vec<Vec<u8>>,
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem) {
        roots.add(cert.context("root PEM")?)?;
    }
    let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    c.alpn_protocols = alpn;
    Ok(Arc::new(c))
}

#[derive(Clone)]
pub struct Client {
    /// `host:port` of the proxy; `None` connects directly.
    pub proxy: Option<String>,
    tls: Arc<rustls::ClientConfig>,
    tls_h2: Arc<rustls::ClientConfig>,
}

impl Client {
    /// `roots_pem`: the CA certificates trusted for HTTPS (the bottle's CA inside a bottle).
    pub fn new(proxy: Option<String>, roots_pem: &[u8]) -> Result<Self> {
        Ok(Self {
            proxy,
            tls: tls_client_config(roots_pem, vec![b"http/1.1".to_vec()])?,
            tls_h2: tls_client_config(roots_pem, vec![b"h2".to_vec(), b"http/1.1".to_vec()])?,
        })
    }

    /// From the environment a bottle gives its agent: `HTTPS_PROXY` / `HTTP_PROXY`
    /// and `SSL_CERT_FILE`.
    pub fn from_env(https: bool) -> Result<Self> {
        let var = if https {
            ["HTTPS_PROXY", "https_proxy"]
        } else {
            ["HTTP_PROXY", "http_proxy"]
        };
        let proxy = var
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .filter(|p| !p.is_empty());
        let proxy = proxy.map(|p| {
            p.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        });
        let roots = match std::env::var("SSL_CERT_FILE") {
            Ok(f) => std::fs::read(&f).with_context(|| format!("reading {f}"))?,
            Err(_) => Vec::new(),
        };
        Self::new(proxy, &roots)
    }

    /// Opens a connection for `url`'s origin.
    pub async fn session(
        &self,
        url: &str,
        opts: &FetchOptions,
    ) -> Result<Result<Session, Fetched>> {
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| anyhow!("URL without host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().unwrap().to_string();
        let target = match &self.proxy {
            Some(p) => p.clone(),
            None => format!("{host}:{port}"),
        };
        let mut tcp = TcpStream::connect(&target)
            .await
            .with_context(|| format!("connecting to {target}"))?;
        tcp.set_nodelay(true)?;
        if !https {
            let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
            tokio::spawn(conn);
            return Ok(Ok(Session {
                sender: Sender::H1(sender),
                scheme: "http".into(),
                authority,
                absolute_form: self.proxy.is_some(),
            }));
        }
        if self.proxy.is_some() {
            let connect_host = opts.connect_host.clone().unwrap_or_else(|| host.clone());
            tcp.write_all(
                format!(
                    "CONNECT {connect_host}:{port} HTTP/1.1\r\nHost: {connect_host}:{port}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
            let (status, head, rest) = read_head(&mut tcp).await?;
            if status != 200 {
                return Ok(Err(Fetched {
                    status,
                    version: "HTTP/1.1".into(),
                    headers: head,
                    body: String::from_utf8_lossy(&rest).into(),
                    chunks: vec![],
                }));
            }
        }
        let sni = opts.sni.clone().unwrap_or_else(|| host.clone());
        let config = if opts.http2 {
            self.tls_h2.clone()
        } else {
            self.tls.clone()
        };
        let name = ServerName::try_from(sni)?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let sender = if h2 {
            let (s, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
            tokio::spawn(conn);
            Sender::H2(s)
        } else {
            let (s, conn) = http1::handshake(TokioIo::new(tls)).await?;
            tokio::spawn(conn);
            Sender::H1(s)
        };
        Ok(Ok(Session {
            sender,
            scheme: "https".into(),
            authority,
            absolute_form: false,
        }))
    }

    /// One request on a fresh connection.
    pub async fn fetch(&self, url: &str, opts: &FetchOptions) -> Result<Fetched> {
        let uri: Uri = url.parse()?;
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        match self.session(url, opts).await? {
            Ok(mut s) => s.request(&path, opts).await,
            Err(refused) => Ok(refused),
        }
    }
}

impl Session {
    pub async fn request(&mut self, path_and_query: &str, opts: &FetchOptions) -> Result<Fetched> {
        let method = opts.method.clone().unwrap_or_else(|| "GET".into());
        let mut b = Request::builder().method(method.as_str());
        b = match &self.sender {
            Sender::H2(_) => b
                .uri(format!(
                    "{}://{}{path_and_query}",
                    self.scheme, self.authority
                ))
                .version(hyper::Version::HTTP_2),
            Sender::H1(_) if self.absolute_form => b
                .uri(format!(
                    "{}://{}{path_and_query}",
                    self.scheme, self.authority
                ))
                .header("host", &self.authority),
            Sender::H1(_) => b.uri(path_and_query).header("host", &self.authority),
        };
        let mut has_host_override = false;
        for (k, v) in &opts.headers {
            if k.eq_ignore_ascii_case("host") {
                has_host_override = true;
            }
            b = b.header(k.as_str(), v.as_str());
        }
        let mut req = b.body(Full::new(Bytes::from(
            opts.body.clone().unwrap_or_default(),
        )))?;
        if has_host_override {
            // Keep only the caller's Host.
            let custom: Vec<_> = opts
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
                .collect();
            req.headers_mut().remove("host");
            for (_, v) in custom {
                req.headers_mut().append("host", v.parse()?);
            }
        }
        let sent = Instant::now();
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await?
            }
            Sender::H2(s) => s.send_request(req).await?,
        };
        let status = resp.status().as_u16();
        let version = format!("{:?}", resp.version());
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = resp.into_body();
        let mut out = Vec::new();
        let mut chunks = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            if let Some(d) = frame.data_ref() {
                chunks.push((sent.elapsed().as_millis() as u64, d.len()));
                out.extend_from_slice(d);
            }
        }
        Ok(Fetched {
            status,
            version,
            headers,
            body: String::from_utf8_lossy(&out).into_owned(),
            chunks,
        })
    }
}

/// Reads an HTTP/1 response head: (status, headers, bytes after the head).
async fn read_head(tcp: &mut TcpStream) -> Result<(u16, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            bail!("the proxy closed the connection before answering CONNECT");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut rest = buf[end..].to_vec();
    // A refusal carries a body; read it (Content-Length) so the caller can show it.
    if status != 200 {
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while rest.len() < len {
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
    }
    Ok((status, headers, rest))
}

/// A session through the `CONNECT` proxy at `proxy` to the loopback
/// upstream on `port`, its client trusting `roots`, that has fetched a
/// small body and one larger than a TLS record: what the test kit's own
/// proxies are first checked with.
#[cfg(test)]
pub(crate) async fn session_through(proxy: String, roots: &[u8], port: u16) -> Result<Session> {
    let client = Client::new(Some(proxy), roots)?;
    let url = format!("https://localhost:{port}/");
    let mut session = client
        .session(&url, &FetchOptions::default())
        .await?
        .map_err(|r| anyhow!("refused {}", r.status))?;
    for n in [5usize, 70_000] {
        let r = session
            .request(&format!("/bytes?n={n}"), &FetchOptions::default())
            .await?;
        assert_eq!((r.status, r.body.len()), (200, n));
    }
    Ok(session)
}
