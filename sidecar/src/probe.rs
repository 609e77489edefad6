//! The isolation probe: run in the agent's network (a short-lived container
//! from the sidecar's image, joined to the agent's network namespace, so the
//! agent can neither replace nor trace it), it tries every direct way out
//! and the proxy path, and reports each as a [`PathResult`] with how long
//! it took.
//!
//! All paths are tried at once, each bounded by the targets' timeout, so a
//! run takes about that long however many targets there are. Only the
//! targets it is given, plus what the agent's network shows (its default
//! gateways and its resolv.conf nameservers), are ever contacted.

use crate::netinfo::{gateways_v4, gateways_v6};
use bottlebar_policy::selftest::{
    path_name, LeakClass, Outcome, PathResult, ProbeReport, ProbeTargets,
};
use bottlebar_policy::HEALTH_PATH;
use hickory_resolver::proto::op::{Message, Query};
use hickory_resolver::proto::rr::{Name, RecordType};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Runs every check and reports.
pub async fn run(targets: &ProbeTargets) -> ProbeReport {
    run_with(targets, LocalView::read()).await
}

async fn run_with(targets: &ProbeTargets, local: LocalView) -> ProbeReport {
    let started = Instant::now();
    let limit = Duration::from_millis(targets.timeout_ms);
    let mut set: JoinSet<PathResult> = JoinSet::new();

    for &addr in &targets.outside {
        let class = if addr.is_ipv4() {
            LeakClass::OutsideIpv4
        } else {
            LeakClass::OutsideIpv6
        };
        set.spawn(tcp_path(class, addr, limit));
    }

    let mut resolvers = targets.resolvers.clone();
    for ip in local.gateways.iter().chain(&local.nameservers) {
        push_unique(&mut resolvers, *ip);
    }
    for ip in resolvers {
        let configured = local.nameservers.contains(&ip);
        let at_gateway = local.gateways.contains(&ip);
        let name = targets.dns_name.clone();
        set.spawn(async move { dns_udp(ip, &name, configured, at_gateway, limit).await });
        // The agent's own configured resolver answers on TCP by design (the
        // engine's embedded DNS); only resolving the name counts there.
        if !configured {
            let name = targets.dns_name.clone();
            set.spawn(async move { dns_tcp(ip, &name, at_gateway, limit).await });
        }
    }

    let mut host = targets.host_addrs.clone();
    for ip in &local.gateways {
        push_unique(&mut host, *ip);
    }
    for ip in host {
        for &port in &targets.host_ports {
            set.spawn(tcp_path(LeakClass::Host, SocketAddr::new(ip, port), limit));
        }
    }

    for &ip in &targets.egress_addrs {
        for port in targets.egress_ports() {
            set.spawn(tcp_path(
                LeakClass::EgressNetwork,
                SocketAddr::new(ip, port),
                limit,
            ));
        }
    }

    let proxy = tokio::spawn(proxy_path(targets.proxy));
    let mut paths = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(p) = r {
            paths.push(p);
        }
    }
    paths.sort_by(|a, b| (a.class, &a.path).cmp(&(b.class, &b.path)));
    let (proxy_ok, proxy_detail) = proxy
        .await
        .unwrap_or_else(|e| (false, format!("probe task failed: {e}")));
    ProbeReport {
        paths,
        proxy_ok,
        proxy_detail,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

fn push_unique(v: &mut Vec<IpAddr>, ip: IpAddr) {
    if !v.contains(&ip) {
        v.push(ip);
    }
}

/// What the agent can see of its own network.
#[derive(Debug, Default)]
struct LocalView {
    gateways: Vec<IpAddr>,
    nameservers: Vec<IpAddr>,
}

impl LocalView {
    fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mut gateways = gateways_v4(&read("/proc/net/route"));
        gateways.extend(gateways_v6(&read("/proc/net/ipv6_route")));
        LocalView {
            gateways,
            nameservers: nameservers(&read("/etc/resolv.conf")),
        }
    }
}

fn nameservers(resolv_conf: &str) -> Vec<IpAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse().ok())
        .collect()
}

/// Sorts a connect or receive error into blocked or refused.
fn classify(e: &io::Error) -> Outcome {
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => Outcome::Refused,
        _ => Outcome::Blocked,
    }
}

async fn tcp_path(class: LeakClass, addr: SocketAddr, limit: Duration) -> PathResult {
    let started = Instant::now();
    let (outcome, detail) = match timeout(limit, TcpStream::connect(addr)).await {
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

/// UDP port 53. For a resolver the agent is configured with, only resolving
/// the name is a leak (the engine's embedded DNS answers every query, with
/// an error for outside names); any other resolver must not answer at all.
async fn dns_udp(
    ip: IpAddr,
    name: &str,
    configured: bool,
    at_gateway: bool,
    limit: Duration,
) -> PathResult {
    let started = Instant::now();
    let path = path_name::dns_udp(ip, name);
    let result = async {
        let bind: SocketAddr = if ip.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).await?;
        sock.connect((ip, 53)).await?;
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
            } else if configured {
                (Outcome::Blocked, detail)
            } else {
                (Outcome::Open, detail)
            }
        }
        Ok(Err(e)) if configured => (Outcome::Blocked, e.to_string()),
        Ok(Err(e)) => (classify(&e), e.to_string()),
        Err(_) => (Outcome::Blocked, "timed out".to_string()),
    };
    PathResult {
        class: dns_class(outcome, at_gateway),
        path,
        outcome,
        detail,
        ms: started.elapsed().as_millis() as u64,
    }
}

/// TCP port 53: connecting at all is a leak (a resolver is reachable).
async fn dns_tcp(ip: IpAddr, name: &str, at_gateway: bool, limit: Duration) -> PathResult {
    let started = Instant::now();
    let addr = SocketAddr::new(ip, 53);
    let result = async {
        let mut s = TcpStream::connect(addr).await?;
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
        class: dns_class(outcome, at_gateway),
        path: path_name::dns_tcp(ip, name),
        outcome,
        detail,
        ms: started.elapsed().as_millis() as u64,
    }
}

/// The one path that must work: the proxy's health endpoint.
async fn proxy_path(addr: SocketAddr) -> (bool, String) {
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
    match timeout(Duration::from_secs(5), attempt).await {
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
    fn reads_gateways_and_nameservers() {
        let route = "Iface\tDestination\tGateway \tFlags\n\
                     eth0\t00000000\t010012AC\t0003\n\
                     eth0\t000012AC\t00000000\t0001\n";
        assert_eq!(
            gateways_v4(route),
            vec!["172.18.0.1".parse::<IpAddr>().unwrap()]
        );
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0\n";
        assert_eq!(gateways_v6(v6), vec!["fe80::1".parse::<IpAddr>().unwrap()]);
        let rc = "# generated\nnameserver 127.0.0.11\nnameserver fe80::1%eth0\noptions ndots:0\n";
        assert_eq!(
            nameservers(rc),
            vec![
                "127.0.0.11".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

    /// Loopback stands in for the outside: an open port, a closed port, a
    /// resolver that answers and one that doesn't, and a proxy.
    #[tokio::test]
    async fn reports_open_refused_resolved_and_blocked_paths() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open_addr = open.local_addr().unwrap();
        let closed_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        // A proxy that answers its health endpoint.
        let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = proxy.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        tokio::spawn(async move {
            loop {
                let _ = open.accept().await;
            }
        });
        // Blocked paths are shown by the end-to-end suites, in real bottles.
        let targets = ProbeTargets {
            outside: vec![open_addr],
            resolvers: vec![],
            dns_name: "outside.bottlebar.test".into(),
            host_addrs: vec!["127.0.0.1".parse().unwrap()],
            host_ports: vec![closed_addr.port()],
            egress_addrs: vec![],
            proxy: proxy_addr,
            timeout_ms: 1500,
        };
        // Not this machine's own gateways and resolvers: loopback only.
        let r = run_with(&targets, LocalView::default()).await;
        let find = |p: &str| {
            r.paths
                .iter()
                .find(|x| x.path == p)
                .unwrap_or_else(|| panic!("{p} missing from {r:#?}"))
        };
        assert_eq!(find(&format!("tcp {open_addr}")).outcome, Outcome::Open);
        assert_eq!(
            find(&format!("tcp {closed_addr}")).outcome,
            Outcome::Refused
        );
        assert_eq!(find(&format!("tcp {closed_addr}")).class, LeakClass::Host);
        assert!(r.proxy_ok, "{}", r.proxy_detail);
        assert!(r.elapsed_ms < 3000, "{}", r.elapsed_ms);
    }

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
}
