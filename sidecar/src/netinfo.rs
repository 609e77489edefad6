//! What the sidecar (or the probe) can see of its own network: interfaces,
//! which one carries the default route, and the gateways.
//!
//! The sidecar is created on the egress network first, so that network's
//! interface holds the default route; every other interface is an agent
//! network. The proxy listens only there (and on loopback, for its health
//! check), so nothing on the egress side — the host, another container —
//! can use a bottle's proxy or its credentials.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The interface's name, e.g. `eth1`.
    pub interface: String,
    /// The address.
    pub ip: IpAddr,
    /// The prefix length of its network.
    pub prefix: u8,
}

impl InterfaceAddr {
    /// Whether `ip` is on this address's network.
    pub fn covers(&self, ip: IpAddr) -> bool {
        match (self.ip, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

/// The machine's network as the sidecar sees it.
#[derive(Debug, Clone, Default)]
pub struct NetView {
    /// Every non-loopback interface address.
    pub addrs: Vec<InterfaceAddr>,
    /// Interfaces holding a default route (IPv4 or IPv6).
    pub default_interfaces: Vec<String>,
    /// Next hops of routes (the default gateways among them).
    pub gateways: Vec<IpAddr>,
}

impl NetView {
    /// Reads the interfaces and `/proc/net/{route,ipv6_route}`.
    pub fn read() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let addrs = if_addrs::get_if_addrs()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| !i.is_loopback())
            .map(|i| InterfaceAddr {
                interface: i.name.clone(),
                ip: i.ip(),
                prefix: match &i.addr {
                    if_addrs::IfAddr::V4(a) => a.prefixlen,
                    if_addrs::IfAddr::V6(a) => a.prefixlen,
                },
            })
            .collect();
        let (v4, v6) = (read("/proc/net/route"), read("/proc/net/ipv6_route"));
        let mut default_interfaces = default_interfaces_v4(&v4);
        for i in default_interfaces_v6(&v6) {
            if !default_interfaces.contains(&i) {
                default_interfaces.push(i);
            }
        }
        let mut gateways = gateways_v4(&v4);
        for g in gateways_v6(&v6) {
            if !gateways.contains(&g) {
                gateways.push(g);
            }
        }
        NetView {
            addrs,
            default_interfaces,
            gateways,
        }
    }

    /// The addresses of interfaces without a default route: the agent's side.
    pub fn agent_side(&self) -> Vec<&InterfaceAddr> {
        self.addrs
            .iter()
            .filter(|a| !self.default_interfaces.contains(&a.interface))
            .filter(|a| !is_link_local(a.ip))
            .collect()
    }

    /// Whether a peer at `ip` is on one of the agent's networks.
    pub fn on_agent_side(&self, ip: IpAddr) -> bool {
        self.agent_side().iter().any(|a| a.covers(ip))
    }

    /// Every address that is the sidecar itself or its gateways (the host):
    /// never a destination for an allowed name.
    pub fn own_and_gateways(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.addrs.iter().map(|a| a.ip).collect();
        v.extend(self.gateways.iter().copied());
        v
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_link_local(),
        IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Interfaces with a default route in `/proc/net/route`.
fn default_interfaces_v4(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(1) == Some(&"00000000") && cols.get(7) == Some(&"00000000"))
                .then(|| cols[0].to_string())
        })
        .collect()
}

/// Interfaces with a default route in `/proc/net/ipv6_route`.
fn default_interfaces_v6(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let default = cols.first() == Some(&"00000000000000000000000000000000")
                && cols.get(1) == Some(&"00");
            let iface = cols.get(9)?;
            (default && *iface != "lo").then(|| iface.to_string())
        })
        .collect()
}

/// Gateways of routes in `/proc/net/route` (hex, little-endian IPv4).
pub fn gateways_v4(table: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some(gw) = cols.get(2).and_then(|g| u32::from_str_radix(g, 16).ok()) else {
            continue;
        };
        let ip = IpAddr::V4(Ipv4Addr::from(gw.swap_bytes()));
        if gw != 0 && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Next hops of routes in `/proc/net/ipv6_route` (32 hex digits each).
pub fn gateways_v6(table: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in table.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some(hop) = cols.get(4).and_then(|h| u128::from_str_radix(h, 16).ok()) else {
            continue;
        };
        let ip = IpAddr::V6(Ipv6Addr::from(hop));
        if hop != 0 && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n\
                         eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\n\
                         eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\n\
                         eth1\t000013AC\t00000000\t0001\t0\t0\t0\t0000FFFF\n";

    #[test]
    fn reads_gateways_and_the_default_interface() {
        assert_eq!(
            gateways_v4(ROUTE),
            vec!["172.18.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(default_interfaces_v4(ROUTE), vec!["eth0".to_string()]);
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n\
                  fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth1\n\
                  00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert_eq!(gateways_v6(v6), vec!["fe80::1".parse::<IpAddr>().unwrap()]);
        assert_eq!(default_interfaces_v6(v6), vec!["eth0".to_string()]);
    }

    #[test]
    fn the_agent_side_is_every_interface_without_the_default_route() {
        let view = NetView {
            addrs: vec![
                InterfaceAddr {
                    interface: "eth0".into(),
                    ip: "172.18.0.2".parse().unwrap(),
                    prefix: 16,
                },
                InterfaceAddr {
                    interface: "eth1".into(),
                    ip: "10.213.0.3".parse().unwrap(),
                    prefix: 28,
                },
            ],
            default_interfaces: vec!["eth0".into()],
            gateways: vec!["172.18.0.1".parse().unwrap()],
        };
        let side: Vec<IpAddr> = view.agent_side().iter().map(|a| a.ip).collect();
        assert_eq!(side, vec!["10.213.0.3".parse::<IpAddr>().unwrap()]);
        assert!(view.on_agent_side("10.213.0.2".parse().unwrap()));
        assert!(!view.on_agent_side("10.213.0.17".parse().unwrap()));
        assert!(!view.on_agent_side("172.18.0.1".parse().unwrap()));
        assert_eq!(view.own_and_gateways().len(), 3);
    }
}
