//! One attempt per path: TCP connects, DNS over UDP and TCP, and the proxy's
//! health endpoint. Each reports what happened and how long it took.
//!
//! A path is tried either as the agent's own sockets would go
//! ([`Via::Routes`]), or *on-link only* ([`Via::LinkOnly`], `SO_DONTROUTE`):
//! delivered directly on an attached network and never handed to a gateway.
//! The probe uses the second only once it has shown that no gateway of the
//! agent's network is held by anyone (see `gateways`), so a packet handed to
//! one could only have waited for an ARP answer that never comes; on-link
//! only, the kernel says so at once instead.

use bottlebar_policy::selftest::{path_name, LeakClass, Outcome, PathResult};
use bottlebar_policy::HEALTH_PATH;
use hickory_resolver::proto::op::{Message, Query};
use hickory_resolver::proto::rr::{Name, RecordType};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::timeout;

/// How a path's packets may leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// As the agent's own sockets: through the routing table, gateways
    /// included.
    Routes,
    /// Directly on an attached network only (`SO_DONTROUTE`).
    LinkOnly,
}

impl Via {
    fn apply(self, fd: &impl AsRawFd) -> io::Result<()> {
        match self {
            Via::Routes => Ok(()),
            Via::LinkOnly => set_flag(fd, libc::SOL_SOCKET, libc::SO_DONTROUTE),
        }
    }
}

/// Turns on an integer socket option.
fn set_flag(fd: &impl AsRawFd, level: libc::c_int, option: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `fd` is an open socket owned by the caller for the whole call;
    // the value is a c_int that outlives the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks for ICMP errors on a UDP socket (`IP_RECVERR`), so a datagram to a
/// neighbour that never answers ARP fails the receive ("no route to host")
/// instead of leaving it to wait out its bound.
fn report_errors(sock: &UdpSocket, ip: IpAddr) -> io::Result<()> {
    match ip {
        IpAddr::V4(_) => set_flag(sock, libc::IPPROTO_IP, libc::IP_RECVERR),
        IpAddr::V6(_) => set_flag(sock, libc::IPPROTO_IPV6, libc::IPV6_RECVERR),
    }
}

/// Sorts a connect or receive error into blocked or refused.
fn classify(e: &io::Error) -> Outcome {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Outcome::Refused,
        _ => Outcome::Blocked,
    }
}

async fn connect(addr: SocketAddr, via: Via) -> io::Result<TcpStream> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    via.apply(&sock)?;
    sock.connect(addr).await
}

/// A TCP connect: connecting or being refused is a leak.
pub async fn tcp(class: LeakClass, addr: SocketAddr, via: Via, limit: Duration) -> PathResult {
    let started = Instant::now();
    let (outcome, detail) = match timeout(limit, connect(addr, via)).await {
        Ok(Ok(_)) => (Outcome::Open, "connected".to_string()),
        Ok(Err(e)) => (classify(&e), e.to_string()),
        Err(_) => (Outcome::Blocked, "timed out".to_string()),
    };
    PathResult {
        class,
        path: path_name::tcp(addr),
        outcome,
        detail,
        ms: started.elapsed().as_millis() as u64,
    }
}

fn dns_query(name: &str, id: u16) -> Result<Vec<u8>, String> {
    let name = Name::from_ascii(name).map_err(|e| format!("bad name {name:?}: {e}"))?;
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(Query::query(name, RecordType::A));
    m.to_vec().map_err(|e| e.to_string())
}

/// Whether a DNS reply resolved the name, and a summary for the report.
fn judge_answer(reply: &[u8]) -> (bool, String) {
    match Message::from_vec(reply) {
        Ok(m) if !m.answers().is_empty() => (
            true,
            format!(
                "resolved: {}",
                m.answers()
                    .iter()
                    .map(|r| r.data().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Ok(m) => (
            false,
            format!("answered {} with no address", m.response_code()),
        ),
        Err(e) => (false, format!("unreadable reply: {e}")),
    }
}

/// The class of a port-53 path: a gateway that refuses it is the host
/// answering, not a resolver, and is reported with the host's paths.
fn dns_class(outcome: Outcome, at_gateway: bool) -> LeakClass {
    if at_gateway && outcome == Outcome::Refused {
        LeakClass::Host
    } else {
        LeakClass::Dns
    }
}

/// A resolver a DNS path asks, and what the agent's network says of it.
#[derive(Debug, Clone, Copy)]
pub struct Resolver {
    /// Its address (port 53).
    pub ip: IpAddr,
    /// The agent is configured with it (its resolv.conf).
    pub configured: bool,
    /// It is one of the agent's gateways.
    pub at_gateway: bool,
}

/// UDP port 53. For a resolver the agent is configured with, only resolving
/// the name is a leak (the engine's embedded DNS answers every query, with
/// an error for outside names); any other resolver must not answer at all.
pub async fn dns_udp(to: Resolver, name: &str, via: Via, limit: Duration) -> PathResult {
    let started = Instant::now();
    let result = async {
        let bind: SocketAddr = match to.ip {
            IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(bind).await?;
        via.apply(&sock)?;
        report_errors(&sock, to.ip)?;
        sock.connect((to.ip, 53)).await?;
        let query = dns_query(name, 0x6262).map_err(io::Error::other)?;
        sock.send(&query).await?;
        let mut buf = vec![0u8; 2048];
        let n = sock.recv(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, io::Error>(buf)
    };
    let (outcome, detail) = match timeout(limit, result).await {
        Ok(Ok(reply)) => {
            let (resolved, detail) = judge_answer(&reply);
            if resolved {
                (Outcome::Resolved, detail)
            } else if to.configured {
                (Outcome::Blocked, detail)
            } else {
                (Outcome::Open, detail)
            }
        }
        Ok(Err(e)) if to.configured => (Outcome::Blocked, e.to_string()),
        Ok(Err(e)) => (classify(&e), e.to_string()),
        Err(_) => (Outcome::Blocked, "timed out".to_string()),
    };
    PathResult {
        class: dns_class(outcome, to.at_gateway),
        path: path_name::dns_udp(to.ip, name),
        outcome,
        detail,
        ms: started.elapsed().as_millis() as u64,
    }
}

/// TCP port 53: connecting at all is a leak (a resolver is reachable).
pub async fn dns_tcp(to: Resolver, name: &str, via: Via, limit: Duration) -> PathResult {
    let started = Instant::now();
    let result = async {
        let mut s = connect(SocketAddr::new(to.ip, 53), via).await?;
        let query = dns_query(name, 0x6263).map_err(io::Error::other)?;
        s.write_all(&(query.len() as u16).to_be_bytes()).await?;
        s.write_all(&query).await?;
        let len = s.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await?;
        Ok::<_, io::Error>(buf)
    };
    let (outcome, detail) = match timeout(limit, result).await {
        Ok(Ok(reply)) => match judge_answer(&reply) {
            (true, d) => (Outcome::Resolved, d),
            (false, d) => (Outcome::Open, d),
        },
        Ok(Err(e)) => (classify(&e), e.to_string()),
        Err(_) => (Outcome::Blocked, "timed out".to_string()),
    };
    PathResult {
        class: dns_class(outcome, to.at_gateway),
        path: path_name::dns_tcp(to.ip, name),
        outcome,
        detail,
        ms: started.elapsed().as_millis() as u64,
    }
}

/// The one path that must work, tried until it does or `within` has
/// passed: whether it answered, and what it last said.
pub async fn await_proxy(addr: SocketAddr, within: Duration) -> (bool, String) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (ok, detail) = proxy(addr, left.min(Duration::from_secs(5))).await;
        if ok || Instant::now() + PROXY_RETRY >= deadline {
            return (ok, detail);
        }
        tokio::time::sleep(PROXY_RETRY).await;
    }
}

/// How soon a proxy that did not answer is asked again.
const PROXY_RETRY: Duration = Duration::from_millis(20);

/// The proxy's health endpoint, once.
async fn proxy(addr: SocketAddr, limit: Duration) -> (bool, String) {
    let attempt = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {HEALTH_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut reply = Vec::new();
        s.take(4096).read_to_end(&mut reply).await?;
        Ok::<_, io::Error>(String::from_utf8_lossy(&reply).into_owned())
    };
    match timeout(limit, attempt).await {
        Ok(Ok(r)) if r.starts_with("HTTP/1.1 200") => (true, format!("proxy at {addr} answered")),
        Ok(Ok(r)) => (
            false,
            format!(
                "proxy at {addr} answered {:?}",
                r.lines().next().unwrap_or("")
            ),
        ),
        Ok(Err(e)) => (false, format!("proxy at {addr}: {e}")),
        Err(_) => (false, format!("proxy at {addr}: timed out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_refusing_port_53_is_the_host_not_a_resolver() {
        assert_eq!(dns_class(Outcome::Refused, true), LeakClass::Host);
        assert_eq!(dns_class(Outcome::Refused, false), LeakClass::Dns);
        assert_eq!(dns_class(Outcome::Resolved, true), LeakClass::Dns);
        assert_eq!(dns_class(Outcome::Open, true), LeakClass::Dns);
    }

    #[test]
    fn judges_dns_answers() {
        use hickory_resolver::proto::rr::{rdata::A, RData, Record};
        let mut m = Message::new();
        m.add_query(Query::query(
            Name::from_ascii("x.test").unwrap(),
            RecordType::A,
        ));
        assert!(!judge_answer(&m.to_vec().unwrap()).0);
        m.add_answer(Record::from_rdata(
            Name::from_ascii("x.test").unwrap(),
            60,
            RData::A(A::new(10, 9, 8, 7)),
        ));
        let (resolved, detail) = judge_answer(&m.to_vec().unwrap());
        assert!(resolved);
        assert!(detail.contains("10.9.8.7"), "{detail}");
    }

    /// A proxy that starts late is waited for; one that never answers is
    /// reported as such once the wait is over.
    #[tokio::test]
    async fn the_proxy_is_awaited_within_a_bound() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let started = Instant::now();
        let (ok, detail) = await_proxy(addr, Duration::from_millis(300)).await;
        assert!(!ok, "{detail}");
        assert!(detail.contains("refused"), "{detail}");
        assert!(started.elapsed() < Duration::from_secs(2));
        // Comes up after 150 ms: answered.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            let (s, _) = l.accept().await.unwrap();
            super::super::tests::answer_ok(s).await;
        });
        let (ok, detail) = await_proxy(addr, Duration::from_secs(5)).await;
        assert!(ok, "{detail}");
    }

    /// On-link only, an address on an attached network is still tried for
    /// real (that the rest fails at once is shown in a real bottle by the
    /// self-test suite: no test sends to an address it did not make).
    #[tokio::test]
    async fn link_only_still_reaches_what_is_on_link() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = l.local_addr().unwrap();
        let r = tcp(
            LeakClass::Host,
            local,
            Via::LinkOnly,
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Open, "{r:?}");
    }
}
