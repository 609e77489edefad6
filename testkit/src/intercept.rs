//! A bare intercepting proxy: the least a proxy that reads HTTPS does — the
//! agent's TLS ended with a certificate of its own CA, the request parsed,
//! sent on over a second TLS connection, the response passed back — and
//! nothing else: no rules, no audit line, no scanning, no credentials.
//!
//! The benchmark measures it beside the sidecar and the bare relay, so that
//! what interception itself costs on the machine at hand (two TLS legs, two
//! HTTP codecs) can be told apart from what the sidecar adds to it.
//!
//! Like the relay, it connects only to the one loopback upstream it was
//! started with, whatever host a `CONNECT` names; each agent connection gets
//! one upstream connection of its own, kept alive (HTTP/1.1 both sides, as
//! the sidecar speaks to an HTTP/1.1 agent and upstream).

use crate::relay::read_connect;
use anyhow::{ensure, Context, Result};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

/// What every connection needs: the agent-side certificate, the upstream's
/// roots and address.
pub struct Interceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
    upstream: SocketAddr,
}

impl Interceptor {
    /// `cert_pem`/`key_pem`: the certificate shown to the agent (for
    /// `localhost`, from a CA the agent trusts); `roots_pem`: the CAs the
    /// upstream's certificate is verified against.
    pub fn new(
        cert_pem: &str,
        key_pem: &str,
        roots_pem: &[u8],
        upstream: SocketAddr,
    ) -> Result<Self> {
        ensure!(
            upstream.ip().is_loopback(),
            "the interceptor only connects to loopback, not {upstream}"
        );
        let mut server = (*crate::server::tls_config(cert_pem, key_pem)?).clone();
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = crate::client::tls_client_config(roots_pem, vec![b"http/1.1".to_vec()])?;
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(client),
            upstream,
        })
    }

    /// Serves `listener` forever.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        loop {
            let (agent, _) = listener.accept().await.context("accepting")?;
            let this = self.clone();
            tokio::spawn(async move {
                // A client that goes away mid-benchmark is not the proxy's error.
                let _ = this.intercept(agent).await;
            });
        }
    }

    /// One agent connection: its `CONNECT` answered, its TLS ended, and
    /// each request sent on over the connection's own upstream connection.
    async fn intercept(&self, mut agent: TcpStream) -> Result<()> {
        agent.set_nodelay(true)?;
        let early = read_connect(&mut agent).await?;
        // An agent waits for the answer before its TLS hello.
        ensure!(
            early.is_empty(),
            "bytes sent before the CONNECT was answered"
        );
        agent
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await?;
        let agent = self.acceptor.accept(agent).await.context("agent TLS")?;
        let up = TcpStream::connect(self.upstream)
            .await
            .with_context(|| format!("connecting to {}", self.upstream))?;
        up.set_nodelay(true)?;
        let name = ServerName::try_from("localhost")?;
        let up = self
            .connector
            .connect(name, up)
            .await
            .context("upstream TLS")?;
        let (sender, conn) = http1::handshake(TokioIo::new(up)).await?;
        tokio::spawn(conn);
        let sender = Arc::new(Mutex::new(sender));
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let sender = sender.clone();
            async move { forward(&sender, req).await }
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(agent), service)
            .await?;
        Ok(())
    }
}

/// One request on, in origin form; its response back as it streams.
async fn forward(
    sender: &Mutex<http1::SendRequest<Incoming>>,
    req: Request<Incoming>,
) -> Result<Response<Incoming>> {
    let (mut parts, body) = req.into_parts();
    if let Some(path) = parts.uri.path_and_query().cloned() {
        parts.uri = Uri::from(path);
    }
    let mut sender = sender.lock().await;
    sender.ready().await?;
    Ok(sender
        .send_request(Request::from_parts(parts, body))
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{session_through, Client, FetchOptions};
    use crate::{pki::TestCa, server};

    /// An interceptor in front of an HTTPS server on loopback: its address,
    /// the CA it shows certificates of, and the upstream's port.
    async fn interceptor_to_https() -> Result<(String, TestCa, u16)> {
        let (internet, up) =
            server::spawn_https_upstream("Interceptor test upstream CA", "intercept-test").await?;
        let own = TestCa::new("Interceptor test CA");
        let (cert, key) = own.leaf(&["localhost"]);
        let interceptor = Interceptor::new(&cert, &key, internet.cert_pem.as_bytes(), up)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        tokio::spawn(Arc::new(interceptor).serve(listener));
        Ok((addr, own, up.port()))
    }

    #[tokio::test]
    async fn requests_and_uploads_go_through_decrypted() -> Result<()> {
        let (proxy, own, port) = interceptor_to_https().await?;
        // The client trusts only the interceptor's CA: TLS is ended there.
        let mut session = session_through(proxy, own.cert_pem.as_bytes(), port).await?;
        let body = vec![b'x'; 300_000];
        let upload = FetchOptions {
            method: Some("POST".into()),
            body: Some(body.clone()),
            ..Default::default()
        };
        let r = session.request("/sink", &upload).await?;
        let sink: serde_json::Value = serde_json::from_str(&r.body)?;
        assert_eq!(sink["bytes"], body.len());
        assert_eq!(sink["sha256"], server::sha256_hex(&body));
        Ok(())
    }

    #[tokio::test]
    async fn an_upstream_not_trusted_is_not_reached() -> Result<()> {
        let (_, own, port) = interceptor_to_https().await?;
        // An interceptor that trusts another CA than the upstream's.
        let stranger = TestCa::new("Not the upstream's CA");
        let (cert, key) = own.leaf(&["localhost"]);
        let up = SocketAddr::from(([127, 0, 0, 1], port));
        let wary = Interceptor::new(&cert, &key, stranger.cert_pem.as_bytes(), up)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        tokio::spawn(Arc::new(wary).serve(listener));
        let client = Client::new(Some(addr), own.cert_pem.as_bytes())?;
        let fetched = client
            .fetch(
                &format!("https://localhost:{port}/"),
                &FetchOptions::default(),
            )
            .await;
        assert!(fetched.is_err(), "{fetched:?}");
        Ok(())
    }

    #[test]
    fn only_loopback_upstreams_are_taken() {
        let ca = TestCa::new("Interceptor test CA");
        let (cert, key) = ca.leaf(&["localhost"]);
        let err = Interceptor::new(&cert, &key, b"", "192.0.2.1:443".parse().unwrap())
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("only connects to loopback"),
            "{err}"
        );
    }
}
