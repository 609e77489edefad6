//! The isolation probe: run in the agent's network (a short-lived container
//! from the sidecar's image, joined to the agent's network namespace, so the
//! agent can neither replace nor trace it), it tries every direct way out
//! and the proxy path, and reports each as a [`PathResult`] with how long
//! it took.
//!
//! First the proxy path, which must work: the probe waits (a bounded time)
//! for it to answer, so that it tests the whole topology even when started
//! while the sidecar is still starting. Then two stages, each trying its
//! paths all at once, each path within its bound (local or outside):
//! 1. the agent's gateways: every host port and DNS on each of them; from
//!    their results and the ARP table, whether anyone holds each gateway
//!    (`gateways`);
//! 2. everything else. When no gateway is held, these are tried on-link
//!    only ([`paths::Via::LinkOnly`]), so a path that could only have gone
//!    to a gateway nobody holds fails at once instead of waiting on ARP;
//!    otherwise through the routes, as the agent's own sockets go.
//!
//! Only the targets it is given, plus what
//! the agent's network shows (its gateways and its resolv.conf
//! nameservers), are ever contacted.

mod gateways;
mod paths;

use crate::netinfo::{gateways_v4, gateways_v6, InterfaceAddr, NetView};
use bottlebar_policy::selftest::{LeakClass, PathResult, ProbeReport, ProbeTargets};
use paths::{Resolver, Via};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How long the probe waits for the proxy to answer before trying the
/// other paths anyway (and reporting that the proxy did not answer): the
/// launch's own wait for a starting sidecar.
const PROXY_WAIT: Duration = Duration::from_secs(10);

/// Runs every check and reports.
pub async fn run(targets: &ProbeTargets) -> ProbeReport {
    run_with(targets, LocalView::read()).await
}

/// One path, not yet tried: given how its packets may leave, it tries
/// (within its own bound) and reports.
type Attempt = Box<dyn FnOnce(Via) -> Pin<Box<dyn Future<Output = PathResult> + Send>> + Send>;

/// Every path of a run, split by stage.
#[derive(Default)]
struct Stages {
    /// Paths to the agent's gateways.
    gateways: Vec<Attempt>,
    /// Every other path.
    rest: Vec<Attempt>,
}

impl Stages {
    fn push(&mut self, to: IpAddr, local: &LocalView, attempt: Attempt) {
        if local.gateways.contains(&to) {
            self.gateways.push(attempt);
        } else {
            self.rest.push(attempt);
        }
    }
}

fn tcp_attempt(class: LeakClass, addr: SocketAddr, limit: Duration) -> Attempt {
    Box::new(move |via| Box::pin(paths::tcp(class, addr, via, limit)))
}

/// How long a silent path to `ip` is waited for. Local — this machine's
/// kernel or a process on it would answer — when the targets do not call it
/// outside and it is loopback, on one of the agent's networks, a gateway,
/// one of the host's addresses or on the egress side; otherwise the outside
/// bound.
fn bound(targets: &ProbeTargets, local: &LocalView, ip: IpAddr) -> Duration {
    let local_machine = !targets.is_outside(ip)
        && (ip.is_loopback()
            || local.links.iter().any(|l| l.covers(ip))
            || local.gateways.contains(&ip)
            || targets.host_addrs.contains(&ip)
            || targets.egress_addrs.contains(&ip));
    Duration::from_millis(if local_machine {
        targets.local_timeout_ms.min(targets.timeout_ms)
    } else {
        targets.timeout_ms
    })
}

/// The paths the targets and the agent's network call for.
fn stages(targets: &ProbeTargets, local: &LocalView) -> Stages {
    let mut stages = Stages::default();
    let bound = |ip| bound(targets, local, ip);
    for &addr in &targets.outside {
        let class = if addr.is_ipv4() {
            LeakClass::OutsideIpv4
        } else {
            LeakClass::OutsideIpv6
        };
        stages.push(addr.ip(), local, tcp_attempt(class, addr, bound(addr.ip())));
    }

    let mut resolvers = targets.resolvers.clone();
    for ip in local.gateways.iter().chain(&local.nameservers) {
        push_unique(&mut resolvers, *ip);
    }
    for ip in resolvers {
        let to = Resolver {
            ip,
            configured: local.nameservers.contains(&ip),
            at_gateway: local.gateways.contains(&ip),
        };
        let limit = bound(ip);
        let name = targets.dns_name.clone();
        stages.push(
            ip,
            local,
            Box::new(move |via| {
                Box::pin(async move { paths::dns_udp(to, &name, via, limit).await })
            }),
        );
        // The agent's own configured resolver answers on TCP by design (the
        // engine's embedded DNS); only resolving the name counts there.
        if !to.configured {
            let name = targets.dns_name.clone();
            stages.push(
                ip,
                local,
                Box::new(move |via| {
                    Box::pin(async move { paths::dns_tcp(to, &name, via, limit).await })
                }),
            );
        }
    }

    let mut host = targets.host_addrs.clone();
    for ip in &local.gateways {
        push_unique(&mut host, *ip);
    }
    for ip in host {
        for &port in &targets.host_ports {
            let addr = SocketAddr::new(ip, port);
            stages.push(ip, local, tcp_attempt(LeakClass::Host, addr, bound(ip)));
        }
    }

    for &ip in &targets.egress_addrs {
        for port in targets.egress_ports() {
            let addr = SocketAddr::new(ip, port);
            let attempt = tcp_attempt(LeakClass::EgressNetwork, addr, bound(ip));
            stages.push(ip, local, attempt);
        }
    }
    stages
}

/// Tries `attempts` all at once.
async fn try_all(attempts: Vec<Attempt>, via: Via) -> Vec<PathResult> {
    let mut set = JoinSet::new();
    for attempt in attempts {
        set.spawn(attempt(via));
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(p) = r {
            out.push(p);
        }
    }
    out
}

async fn run_with(targets: &ProbeTargets, local: LocalView) -> ProbeReport {
    let started = Instant::now();
    // The proxy answering means the sidecar runs, attached to the agent's
    // network: the topology under test is whole. (A launch may start the
    // probe while the sidecar is still starting.)
    let (proxy_ok, proxy_detail) = paths::await_proxy(targets.proxy, PROXY_WAIT).await;
    let Stages { gateways, rest } = stages(targets, &local);

    let mut tried = try_all(gateways, Via::Routes).await;
    let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    let checks: Vec<_> = local
        .gateways
        .iter()
        .map(|gw| gateways::check(*gw, &tried, &arp))
        .collect();
    let via = if checks.iter().any(|c| c.held) {
        Via::Routes
    } else {
        Via::LinkOnly
    };
    tried.extend(try_all(rest, via).await);

    tried.sort_by(|a, b| (a.class, &a.path).cmp(&(b.class, &b.path)));
    ProbeReport {
        paths: tried,
        proxy_ok,
        proxy_detail,
        elapsed_ms: started.elapsed().as_millis() as u64,
        gateways: checks,
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
    /// Next hops of its routes.
    gateways: Vec<IpAddr>,
    /// Its resolv.conf's nameservers.
    nameservers: Vec<IpAddr>,
    /// The networks it is attached to.
    links: Vec<InterfaceAddr>,
}

impl LocalView {
    fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mut gateways = gateways_v4(&read("/proc/net/route"));
        gateways.extend(gateways_v6(&read("/proc/net/ipv6_route")));
        LocalView {
            gateways,
            nameservers: nameservers(&read("/etc/resolv.conf")),
            links: NetView::read().addrs,
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

#[cfg(test)]
mod tests {
    use super::*;
    use bottlebar_policy::selftest::Outcome;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers one request on `s` as the proxy's health endpoint does.
    pub(super) async fn answer_ok(mut s: tokio::net::TcpStream) {
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
    }

    /// A gateway's own paths (its host ports and DNS) come first; the
    /// outside, the host's other addresses and the egress side after.
    #[test]
    fn paths_to_gateways_are_the_first_stage() {
        let local = LocalView {
            gateways: vec!["10.213.4.17".parse().unwrap()],
            nameservers: vec!["127.0.0.11".parse().unwrap()],
            links: vec![InterfaceAddr {
                interface: "eth0".into(),
                ip: "10.213.4.20".parse().unwrap(),
                prefix: 28,
            }],
        };
        let targets = ProbeTargets {
            outside: vec!["10.9.0.2:443".parse().unwrap()],
            resolvers: vec!["10.9.0.53".parse().unwrap()],
            dns_name: "outside.bottlebar.test".into(),
            host_addrs: vec!["10.9.0.1".parse().unwrap()],
            host_ports: vec![22, 80],
            egress_addrs: vec!["10.213.9.34".parse().unwrap()],
            proxy: "10.213.4.18:3128".parse().unwrap(),
            timeout_ms: 1500,
            local_timeout_ms: 150,
        };
        let s = stages(&targets, &local);
        // Gateway: udp + tcp 53, two host ports.
        assert_eq!(s.gateways.len(), 4);
        // outside 1, resolver udp+tcp 2, configured resolver udp 1, host
        // address 2 ports, egress 3 ports.
        assert_eq!(s.rest.len(), 9);
        // Only what the targets call outside, or what is not on this
        // machine, waits the outside bound.
        let wait = |ip: &str| bound(&targets, &local, ip.parse().unwrap()).as_millis();
        assert_eq!(wait("10.9.0.2"), 1500, "an outside address");
        assert_eq!(wait("10.9.0.53"), 1500, "an outside resolver");
        assert_eq!(wait("10.9.0.99"), 1500, "somewhere unknown");
        assert_eq!(wait("127.0.0.11"), 150, "the engine's resolver");
        assert_eq!(wait("10.213.4.18"), 150, "the agent's network");
        assert_eq!(wait("10.213.4.17"), 150, "the gateway");
        assert_eq!(wait("10.9.0.1"), 150, "the host");
        assert_eq!(wait("10.213.9.34"), 150, "the egress side");
    }

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
                let (s, _) = proxy.accept().await.unwrap();
                answer_ok(s).await;
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
            local_timeout_ms: 150,
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
}
