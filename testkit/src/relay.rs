//! A bare `CONNECT` relay: the least any proxy between an agent and the
//! internet does — a second TCP leg and the bytes copied across, nothing
//! decrypted, read or written down. The benchmark measures it beside the
//! sidecar, so that the sidecar's figures can be told apart from what two
//! legs through the kernel cost on the machine at hand.
//!
//! Whatever host a `CONNECT` names, the relay connects only to the one
//! loopback upstream it was started with: it cannot reach anything else.

use anyhow::{bail, ensure, Context, Result};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest `CONNECT` head read before the connection is refused.
const MAX_HEAD: usize = 8 * 1024;
/// Bytes copied per read in each direction: as large as the sidecar's reads,
/// so uploads are compared like for like.
const COPY_BUFFER: usize = 64 * 1024;

/// Serves `listener` forever, relaying every `CONNECT` to `upstream`
/// (which must be a loopback address).
pub async fn serve(listener: TcpListener, upstream: SocketAddr) -> Result<()> {
    ensure!(
        upstream.ip().is_loopback(),
        "the relay only connects to loopback, not {upstream}"
    );
    loop {
        let (agent, _) = listener.accept().await.context("accepting")?;
        tokio::spawn(async move {
            // A client that goes away mid-benchmark is not the relay's error.
            let _ = relay(agent, upstream).await;
        });
    }
}

/// One connection: its `CONNECT` answered, then bytes copied both ways.
async fn relay(mut agent: TcpStream, upstream: SocketAddr) -> Result<()> {
    agent.set_nodelay(true)?;
    let early = match read_connect(&mut agent).await {
        Ok(early) => early,
        Err(e) => {
            agent
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Err(e);
        }
    };
    let mut up = TcpStream::connect(upstream)
        .await
        .with_context(|| format!("connecting to {upstream}"))?;
    up.set_nodelay(true)?;
    agent
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await?;
    up.write_all(&early).await?;
    tokio::io::copy_bidirectional_with_sizes(&mut agent, &mut up, COPY_BUFFER, COPY_BUFFER).await?;
    Ok(())
}

/// Reads a `CONNECT` request's head; returns any bytes that came after it.
pub(crate) async fn read_connect(agent: &mut TcpStream) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            bail!("no end of the request head in {MAX_HEAD} bytes");
        }
        let n = agent.read(&mut chunk).await?;
        if n == 0 {
            bail!("closed before the request head ended");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    ensure!(
        buf.starts_with(b"CONNECT "),
        "not a CONNECT request: {:?}",
        String::from_utf8_lossy(&buf[..buf.len().min(40)])
    );
    Ok(buf.split_off(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::session_through;
    use crate::{pki::TestCa, server};

    /// A relay in front of an HTTPS server on loopback; its address.
    async fn relay_to_https() -> Result<(String, TestCa, u16)> {
        let (ca, up) = server::spawn_https_upstream("Relay test CA", "relay-test").await?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        tokio::spawn(serve(listener, up));
        Ok((addr, ca, up.port()))
    }

    #[tokio::test]
    async fn tls_goes_through_end_to_end() -> Result<()> {
        let (relay, ca, port) = relay_to_https().await?;
        // The client trusts only the upstream's own CA: the relay
        // terminates nothing.
        session_through(relay, ca.cert_pem.as_bytes(), port).await?;
        Ok(())
    }

    #[tokio::test]
    async fn anything_but_connect_is_refused() -> Result<()> {
        let (relay, _, _) = relay_to_https().await?;
        let mut tcp = TcpStream::connect(&relay).await?;
        tcp.write_all(b"GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await?;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
        Ok(())
    }

    #[tokio::test]
    async fn only_loopback_upstreams_are_taken() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve(listener, "192.0.2.1:443".parse().unwrap())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("only connects to loopback"),
            "{err}"
        );
    }
}
