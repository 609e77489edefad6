//! The isolation self-test's vocabulary, shared by the core (which chooses
//! the targets and judges the report) and the probe (which runs inside the
//! agent and tries each path).
//!
//! A bottle is ready only if every *direct* path fails and the proxy path
//! works. Each direct path belongs to a [`LeakClass`]; a user may accept a
//! class knowingly (`[isolation] accept_leaks` in the bottle file), never by
//! default.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Ports tried on the gateway and on the host's addresses: the services a
/// developer machine commonly runs (ssh, dns, http(s), engine APIs, dev
/// servers, databases).
pub const HOST_SERVICE_PORTS: &[u16] = &[
    22, 53, 80, 443, 2375, 2376, 3000, 3306, 5000, 5432, 6379, 8000, 8080, 8443, 11434,
];

/// How long a silent path to something outside this machine (the outside
/// targets, the outside resolvers) is waited for before it counts as
/// blocked, unless the targets say otherwise: a leak there answers within
/// one round trip to it, and this covers a slow satellite link's twice.
pub const PROBE_TIMEOUT_MS: u64 = 1500;

/// How long a silent path to this machine is waited for: the host's
/// addresses, the agent network's gateways, the egress side, and a resolver
/// of the agent's own on loopback or its own network (the engine's, whose
/// only upstream is the sidecar). Whatever answers there is this machine's
/// kernel or a process on it, in well under a millisecond; this allows for
/// a busy machine a hundred times over.
pub const PROBE_LOCAL_TIMEOUT_MS: u64 = 100;

fn default_timeout_ms() -> u64 {
    PROBE_TIMEOUT_MS
}

fn default_local_timeout_ms() -> u64 {
    PROBE_LOCAL_TIMEOUT_MS
}

/// What the probe tries. The core fills it; the probe adds what only the
/// agent can see (its default gateways, its resolv.conf nameservers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeTargets {
    /// Outside addresses (v4 and v6) tried by direct TCP.
    pub outside: Vec<SocketAddr>,
    /// Resolvers tried on UDP and TCP port 53.
    pub resolvers: Vec<IpAddr>,
    /// The name asked of every resolver; resolving it is a leak.
    pub dns_name: String,
    /// The host's own addresses, tried on [`ProbeTargets::host_ports`].
    pub host_addrs: Vec<IpAddr>,
    /// The ports tried on every host address and gateway.
    pub host_ports: Vec<u16>,
    /// Addresses on the egress side (the sidecar's egress address, the
    /// egress network's gateway), tried on the proxy port, 80 and 443.
    pub egress_addrs: Vec<IpAddr>,
    /// The proxy as the agent reaches it: this path must work.
    pub proxy: SocketAddr,
    /// How long a silent path outside this machine is waited for before it
    /// counts as blocked.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long a silent path to this machine is waited for.
    #[serde(default = "default_local_timeout_ms")]
    pub local_timeout_ms: u64,
}

impl ProbeTargets {
    /// The real-world defaults: well-known public resolvers' anycast
    /// addresses (v4 and v6), which answer from anywhere with internet.
    /// Tests must never use these (the core refuses them in a test run).
    pub fn real_world(proxy: SocketAddr) -> Self {
        let outside = [
            "1.1.1.1:443",
            "8.8.8.8:443",
            "9.9.9.9:443",
            "[2606:4700:4700::1111]:443",
            "[2001:4860:4860::8888]:443",
        ]
        .iter()
        .map(|s| s.parse().expect("valid default address"))
        .collect();
        let resolvers = ["1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"]
            .iter()
            .map(|s| s.parse().expect("valid default address"))
            .collect();
        ProbeTargets {
            outside,
            resolvers,
            dns_name: "example.com".into(),
            host_addrs: vec![],
            host_ports: HOST_SERVICE_PORTS.to_vec(),
            egress_addrs: vec![],
            proxy,
            timeout_ms: PROBE_TIMEOUT_MS,
            local_timeout_ms: PROBE_LOCAL_TIMEOUT_MS,
        }
    }

    /// Whether `ip` is outside this machine by the targets' own account (an
    /// outside address or resolver): a silent path to it waits
    /// [`ProbeTargets::timeout_ms`].
    pub fn is_outside(&self, ip: IpAddr) -> bool {
        self.outside.iter().any(|a| a.ip() == ip) || self.resolvers.contains(&ip)
    }

    /// The least a silent path to `ip` may be waited for: the outside bound
    /// for the targets' outside addresses, the local one for the rest.
    pub fn least_wait_ms(&self, ip: IpAddr) -> u64 {
        if self.is_outside(ip) {
            self.timeout_ms
        } else {
            self.local_timeout_ms.min(self.timeout_ms)
        }
    }

    /// The ports tried on each egress-side address.
    pub fn egress_ports(&self) -> Vec<u16> {
        let mut ports = vec![self.proxy.port(), 80, 443];
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// Every path the probe must report for these targets (it may report
    /// more: what only the agent's namespace shows, its gateways and its
    /// configured resolvers). A report missing one of them is not trusted.
    pub fn expected_paths(&self) -> Vec<String> {
        let mut v: Vec<String> = self.outside.iter().map(|a| path_name::tcp(*a)).collect();
        for ip in &self.resolvers {
            v.push(path_name::dns_udp(*ip, &self.dns_name));
            v.push(path_name::dns_tcp(*ip, &self.dns_name));
        }
        for ip in &self.host_addrs {
            for port in &self.host_ports {
                v.push(path_name::tcp(SocketAddr::new(*ip, *port)));
            }
        }
        for ip in &self.egress_addrs {
            for port in self.egress_ports() {
                v.push(path_name::tcp(SocketAddr::new(*ip, port)));
            }
        }
        v.sort();
        v.dedup();
        v
    }
}

/// How each path is named in a report (the probe writes them; the core
/// checks that none it asked for is missing).
pub mod path_name {
    use std::net::{IpAddr, SocketAddr};

    /// A TCP connection attempt, e.g. `tcp 1.1.1.1:443`.
    pub fn tcp(addr: SocketAddr) -> String {
        format!("tcp {addr}")
    }

    /// A DNS query over UDP, e.g. `udp 1.1.1.1:53 example.com`.
    pub fn dns_udp(ip: IpAddr, name: &str) -> String {
        format!("udp {} {name}", SocketAddr::new(ip, 53))
    }

    /// A DNS query over TCP, e.g. `tcp 1.1.1.1:53 example.com`.
    pub fn dns_tcp(ip: IpAddr, name: &str) -> String {
        format!("tcp {} {name}", SocketAddr::new(ip, 53))
    }

    /// The address a path named as above goes to.
    pub fn target(path: &str) -> Option<SocketAddr> {
        path.split_whitespace().nth(1)?.parse().ok()
    }
}

/// The kind of direct path that leaked; a user may accept one by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeakClass {
    /// Raw-IP TCP to an outside IPv4 address.
    OutsideIpv4,
    /// Raw-IP TCP to an outside IPv6 address.
    OutsideIpv6,
    /// A resolver answered: a DNS tunnel would have a channel.
    Dns,
    /// The host (the network's gateway, or one of the host's addresses)
    /// answered: host services are exposed to the agent.
    Host,
    /// The egress network answered directly, bypassing the proxy.
    EgressNetwork,
}

impl LeakClass {
    /// Every class, in the order reports list them.
    pub const ALL: [LeakClass; 5] = [
        LeakClass::OutsideIpv4,
        LeakClass::OutsideIpv6,
        LeakClass::Dns,
        LeakClass::Host,
        LeakClass::EgressNetwork,
    ];

    /// The class's name in manifests and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            LeakClass::OutsideIpv4 => "outside-ipv4",
            LeakClass::OutsideIpv6 => "outside-ipv6",
            LeakClass::Dns => "dns",
            LeakClass::Host => "host",
            LeakClass::EgressNetwork => "egress-network",
        }
    }

    /// The class named `s`, if any.
    pub fn parse(s: &str) -> Option<LeakClass> {
        LeakClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for LeakClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened on one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// No answer: timed out, no route, unreachable, no address family.
    Blocked,
    /// A connection was established (TCP) or a reply came back (UDP).
    Open,
    /// The far end refused (TCP reset, ICMP port unreachable): the path
    /// exists even though nothing listens on that port.
    Refused,
    /// A resolver answered the name with addresses.
    Resolved,
}

impl Outcome {
    /// Whether this outcome shows the path exists.
    pub fn reached(self) -> bool {
        !matches!(self, Outcome::Blocked)
    }
}

/// One path the probe tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathResult {
    /// What kind of path it is.
    pub class: LeakClass,
    /// e.g. `tcp 1.1.1.1:443`, `udp 10.0.0.1:53 example.com`.
    pub path: String,
    /// What happened.
    pub outcome: Outcome,
    /// The error or answer, for the user.
    pub detail: String,
    /// How long the attempt took; a path reported as timed out sooner than
    /// the timeout is not believed.
    #[serde(default)]
    pub ms: u64,
}

/// Everything the probe found, printed as one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Every path tried.
    pub paths: Vec<PathResult>,
    /// Whether the proxy answered its health endpoint from inside the agent.
    pub proxy_ok: bool,
    /// What the proxy path answered.
    pub proxy_detail: String,
    /// How long the whole probe took.
    pub elapsed_ms: u64,
    /// What the probe found of the agent's gateways: whether anyone holds
    /// them decides how the paths behind them were tried.
    #[serde(default)]
    pub gateways: Vec<GatewayCheck>,
}

/// One gateway of the agent's network, as the probe found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayCheck {
    /// Its address.
    pub ip: IpAddr,
    /// Whether anything answers for it (ARP, or any path to it).
    pub held: bool,
    /// What showed it.
    pub detail: String,
}

impl ProbeReport {
    /// The paths that reached something.
    pub fn leaks(&self) -> impl Iterator<Item = &PathResult> {
        self.paths.iter().filter(|p| p.outcome.reached())
    }
}

/// The probe's exit code: every direct path failed and the proxy answered.
pub const PROBE_EXIT_ISOLATED: i32 = 0;
/// The probe's exit code: a direct path reached something.
pub const PROBE_EXIT_LEAK: i32 = 3;
/// The probe's exit code: isolated, but the proxy did not answer.
pub const PROBE_EXIT_NO_PROXY: i32 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leak_classes_round_trip_by_name() {
        for c in LeakClass::ALL {
            assert_eq!(LeakClass::parse(c.as_str()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{c}\""));
        }
        assert_eq!(LeakClass::parse("hosts"), None);
    }

    #[test]
    fn real_world_targets_cover_both_families() {
        let t = ProbeTargets::real_world("10.0.0.2:3128".parse().unwrap());
        assert!(t.outside.iter().any(|a| a.is_ipv4()));
        assert!(t.outside.iter().any(|a| a.is_ipv6()));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<ProbeTargets>(&json).unwrap(), t);
    }

    #[test]
    fn expected_paths_cover_every_target() {
        let mut t = ProbeTargets::real_world("10.0.0.2:3128".parse().unwrap());
        t.host_addrs = vec!["192.0.2.1".parse().unwrap()];
        t.egress_addrs = vec!["192.0.2.9".parse().unwrap()];
        let paths = t.expected_paths();
        assert!(paths.contains(&"tcp 1.1.1.1:443".to_string()));
        assert!(paths.contains(&"udp 1.1.1.1:53 example.com".to_string()));
        assert!(paths.contains(&"tcp [2606:4700:4700::1111]:53 example.com".to_string()));
        assert!(paths.contains(&"tcp 192.0.2.1:22".to_string()));
        assert!(paths.contains(&"tcp 192.0.2.9:3128".to_string()));
        let n = 5 + 3 * 2 + HOST_SERVICE_PORTS.len() + 3;
        assert_eq!(paths.len(), n, "{paths:#?}");
    }
}
