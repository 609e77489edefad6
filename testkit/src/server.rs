//! The fake internet: an HTTP and HTTPS server (HTTP/1.1 and HTTP/2 by ALPN).
//!
//! - `/` answers the server's token;
//! - `/echo` answers, as JSON, the request it received (method, path, query,
//!   headers, body, version), so tests see exactly what left the sidecar;
//! - `/sse?n=N&ms=M` streams N server-sent events M milliseconds apart;
//! - `/bytes?n=N` answers N bytes;
//! - `/v1/messages` and `/v1/responses`: the fake model APIs (`model_api.rs`).

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

fn query_num(query: &str, key: &str, default: u64) -> u64 {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(default)
}

async fn respond(req: Request<Incoming>, token: Arc<String>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if super::model_api::handles(&path) {
        return super::model_api::respond(req).await.map(BodyExt::boxed);
    }
    match path.as_str() {
        // Reads the whole request body; says how much and its digest (an
        // upload's sink, for the benchmarks).
        "/sink" => {
            let body = body_bytes(req).await;
            let v = serde_json::json!({"bytes": body.len(), "sha256": sha256_hex(&body)});
            Response::new(full(v.to_string()))
        }
        "/echo" => {
            let echo_header = req.headers().get("authorization").cloned();
            let method = req.method().to_string();
            let version = format!("{:?}", req.version());
            let mut headers = serde_json::Map::new();
            let mut digests = serde_json::Map::new();
            for (name, value) in req.headers() {
                for (map, shown) in [
                    (
                        &mut headers,
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    ),
                    (&mut digests, sha256_hex(value.as_bytes())),
                ] {
                    map.entry(name.as_str().to_string())
                        .or_insert_with(|| serde_json::Value::Array(vec![]))
                        .as_array_mut()
                        .unwrap()
                        .push(shown.into());
                }
            }
            let authority = req.uri().authority().map(|a| a.to_string());
            let body = body_bytes(req).await;
            // What the upstream saw, echoed back as a debug endpoint would;
            // `header_sha256` lets a test check a masked header's real value.
            let v = serde_json::json!({
                "token": *token, "method": method, "path": path, "query": query, "version": version,
                "authority": authority, "headers": headers, "header_sha256": digests,
                "body": String::from_utf8_lossy(&body), "body_sha256": sha256_hex(&body),
            });
            let gzip = query.split('&').any(|kv| kv == "gzip=1");
            let text = v.to_string();
            let mut resp = if gzip {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(text.as_bytes()).unwrap();
                let mut r = Response::new(full(e.finish().unwrap()));
                r.headers_mut()
                    .insert("content-encoding", "gzip".parse().unwrap());
                r
            } else {
                Response::new(full(text))
            };
            // Reflected in a response header too, as some debug servers do.
            if let Some(v) = echo_header {
                resp.headers_mut().insert("x-echo-authorization", v);
            }
            resp.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            resp
        }
        "/sse" => {
            let n = query_num(&query, "n", 5);
            let ms = query_num(&query, "ms", 200);
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
            tokio::spawn(async move {
                for i in 0..n {
                    if tx
                        .send(Ok(Frame::data(Bytes::from(format!("data: event {i}\n\n")))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            });
            let mut resp = Response::new(ChannelBody(rx).boxed());
            resp.headers_mut()
                .insert("content-type", "text/event-stream".parse().unwrap());
            resp.headers_mut()
                .insert("cache-control", "no-cache".parse().unwrap());
            resp
        }
        "/bytes" => full(vec![b'b'; query_num(&query, "n", 1024) as usize]).into_response(),
        // Answers before reading the request body, as some servers do.
        "/early" => full("early\n").into_response(),
        _ => full(format!("{token}\n")).into_response(),
    }
}

/// The whole request body; empty when the client broke off (the endpoints
/// then answer with what they saw, which is what a test wants to read).
pub(crate) async fn body_bytes(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

/// The SHA-256 of `data`, in hex: how the echo shows what it saw without
/// the value itself.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

trait IntoResponse {
    fn into_response(self) -> Response<Body>;
}

impl IntoResponse for Body {
    fn into_response(self) -> Response<Body> {
        Response::new(self)
    }
}

/// A body fed by a channel: each message is sent as soon as it arrives.
struct ChannelBody(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx)
    }
}

async fn serve_io<IO>(io: IO, token: Arc<String>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let token = token.clone();
        async move { Ok::<_, Infallible>(respond(req, token).await) }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// Serves plain HTTP on `listener` forever.
pub async fn serve_http(listener: TcpListener, token: String) {
    let token = Arc::new(token);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_io(stream, token.clone()));
    }
}

/// A TLS server config for a PEM certificate and key, offering h2 and http/1.1.
pub fn tls_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("key PEM")?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An HTTPS upstream on loopback answering `token`, with a test CA of its
/// own called `ca_name`: the CA and the upstream's address (the fake
/// internet of the benchmark and of the floors' tests).
pub async fn spawn_https_upstream(
    ca_name: &str,
    token: &str,
) -> Result<(crate::pki::TestCa, std::net::SocketAddr)> {
    let ca = crate::pki::TestCa::new(ca_name);
    let (cert, key) = ca.leaf(&["localhost"]);
    let https = TcpListener::bind("127.0.0.1:0").await?;
    let address = https.local_addr()?;
    tokio::spawn(serve_https(https, tls_config(&cert, &key)?, token.into()));
    Ok((ca, address))
}

/// Serves HTTPS on `listener` forever.
pub async fn serve_https(listener: TcpListener, config: Arc<rustls::ServerConfig>, token: String) {
    let token = Arc::new(token);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, token) = (acceptor.clone(), token.clone());
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_io(tls, token).await;
            }
        });
    }
}

/// A DNS answer for `query` that gives every name the address `answer`, or
/// `None` for something that is not a single-question query.
pub fn dns_answer(query: &[u8], answer: std::net::Ipv4Addr) -> Option<Vec<u8>> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        i += len;
    }
    let question_end = i + 4;
    if query.len() < question_end {
        return None;
    }
    let mut r = Vec::with_capacity(question_end + 16);
    r.extend_from_slice(&query[0..2]); // id
    r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    r.extend_from_slice(&query[12..question_end]);
    r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    r.extend_from_slice(&answer.octets());
    Some(r)
}

/// A resolver that answers every query, on UDP and TCP: the "outside" DNS
/// server of the tests. Each query is logged on stdout (`dns query from
/// ADDR`), so a test can tell whether one arrived.
pub async fn serve_dns(udp: tokio::net::UdpSocket, tcp: TcpListener, answer: std::net::Ipv4Addr) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        loop {
            let Ok((mut s, peer)) = tcp.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Ok(len) = s.read_u16().await else { return };
                let mut q = vec![0u8; len as usize];
                if s.read_exact(&mut q).await.is_err() {
                    return;
                }
                println!("dns query from {peer} (tcp)");
                if let Some(r) = dns_answer(&q, answer) {
                    let _ = s.write_all(&(r.len() as u16).to_be_bytes()).await;
                    let _ = s.write_all(&r).await;
                }
            });
        }
    });
    let mut buf = vec![0u8; 1500];
    loop {
        let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
            continue;
        };
        println!("dns query from {peer} (udp)");
        if let Some(r) = dns_answer(&buf[..n], answer) {
            let _ = udp.send_to(&r, peer).await;
        }
    }
}

/// The banner of the fake SSH server: what `git` over SSH would see first.
pub const SSH_BANNER: &str = "SSH-2.0-bottlebar-fake-git-remote";

/// Sends [`SSH_BANNER`] to every connection, logs it (`ssh connection from
/// ADDR`) and closes.
pub async fn serve_ssh_banner(listener: TcpListener) {
    use tokio::io::AsyncWriteExt;
    loop {
        let Ok((mut s, peer)) = listener.accept().await else {
            continue;
        };
        println!("ssh connection from {peer}");
        tokio::spawn(async move {
            let _ = s.write_all(format!("{SSH_BANNER}\r\n").as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_query_with_the_given_address() {
        // id 0x1234, RD, one question: outside.test A IN
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["outside", "test"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let r = dns_answer(&q, "198.51.100.7".parse().unwrap()).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(&r[6..8], &[0, 1], "one answer");
        assert_eq!(&r[r.len() - 4..], &[198, 51, 100, 7]);
        assert!(dns_answer(&q[..14], "1.2.3.4".parse().unwrap()).is_none());
    }
}
