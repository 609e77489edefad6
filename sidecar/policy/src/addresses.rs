//! Which addresses an allowed host name may resolve to.
//!
//! A name on the allowlist whose DNS answer is loopback, link-local (the
//! cloud metadata address 169.254.169.254), private, unique-local, or one of
//! the sidecar's own addresses would turn the proxy into a way into the
//! machine and its network. Such answers are refused unless the user pinned
//! the name with `[hosts]` (checked by the caller) or allowed the range
//! explicitly (`allow_private_ranges`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A CIDR range, e.g. `10.20.0.0/16` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

impl Cidr {
    /// Reads `ADDR/PREFIX`; the address must be the network's first.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let net: ipnet::IpNet = s
            .parse()
            .map_err(|_| format!("`{s}` is not a CIDR range (e.g. `10.20.0.0/16`)"))?;
        if net.network() != net.addr() {
            return Err(format!(
                "`{s}` has host bits set; the range is `{}`",
                net.trunc()
            ));
        }
        Ok(Cidr(net))
    }

    /// Whether `ip` is inside the range (an IPv4-mapped IPv6 address counts as its IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why an address is not one the proxy connects to by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialAddress {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 169.254.0.0/16 (cloud metadata), fe80::/10.
    LinkLocal,
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (shared), fec0::/10.
    Private,
    /// fc00::/7.
    UniqueLocal,
    /// Multicast and broadcast.
    Multicast,
    /// One of the sidecar's own addresses, or its gateway (the host).
    Own,
}

impl SpecialAddress {
    /// Words for the user.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecialAddress::Loopback => "loopback",
            SpecialAddress::Unspecified => "unspecified",
            SpecialAddress::LinkLocal => "link-local",
            SpecialAddress::Private => "private",
            SpecialAddress::UniqueLocal => "unique-local",
            SpecialAddress::Multicast => "multicast",
            SpecialAddress::Own => "the sidecar's own or its gateway's",
        }
    }
}

impl fmt::Display for SpecialAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IPv4-mapped or -compatible IPv6 address as the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn classify_v4(a: Ipv4Addr) -> Option<SpecialAddress> {
    let o = a.octets();
    if a.is_loopback() {
        Some(SpecialAddress::Loopback)
    } else if o[0] == 0 {
        Some(SpecialAddress::Unspecified)
    } else if a.is_link_local() {
        Some(SpecialAddress::LinkLocal)
    } else if a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        Some(SpecialAddress::Private)
    } else if a.is_multicast() || a.is_broadcast() {
        Some(SpecialAddress::Multicast)
    } else {
        None
    }
}

fn classify_v6(a: Ipv6Addr) -> Option<SpecialAddress> {
    let s0 = a.segments()[0];
    if a.is_loopback() {
        Some(SpecialAddress::Loopback)
    } else if a.is_unspecified() {
        Some(SpecialAddress::Unspecified)
    } else if (s0 & 0xffc0) == 0xfe80 {
        Some(SpecialAddress::LinkLocal)
    } else if (s0 & 0xffc0) == 0xfec0 {
        Some(SpecialAddress::Private)
    } else if (s0 & 0xfe00) == 0xfc00 {
        Some(SpecialAddress::UniqueLocal)
    } else if a.is_multicast() {
        Some(SpecialAddress::Multicast)
    } else {
        None
    }
}

/// What kind of special address `ip` is, if any.
pub fn classify(ip: IpAddr) -> Option<SpecialAddress> {
    match canonical(ip) {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

/// The sidecar's rule for resolved addresses.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Ranges the user allowed (`allow_private_ranges`).
    pub allowed: Vec<Cidr>,
    /// The sidecar's own addresses and gateways.
    pub own: Vec<IpAddr>,
}

impl AddressPolicy {
    /// `Ok` when a resolved `ip` may be connected to; otherwise what it is.
    /// An explicitly allowed range wins over every class, the sidecar's own
    /// addresses included.
    pub fn check(&self, ip: IpAddr) -> Result<(), SpecialAddress> {
        if self.allowed.iter().any(|c| c.contains(ip)) {
            return Ok(());
        }
        if self.own.iter().any(|o| canonical(*o) == canonical(ip)) {
            return Err(SpecialAddress::Own);
        }
        match classify(ip) {
            Some(s) => Err(s),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_addresses_are_refused_and_public_ones_pass() {
        let p = AddressPolicy::default();
        for (addr, kind) in [
            ("127.0.0.1", SpecialAddress::Loopback),
            ("127.9.9.9", SpecialAddress::Loopback),
            ("::1", SpecialAddress::Loopback),
            ("::ffff:127.0.0.1", SpecialAddress::Loopback),
            ("0.0.0.0", SpecialAddress::Unspecified),
            ("::", SpecialAddress::Unspecified),
            ("169.254.169.254", SpecialAddress::LinkLocal),
            ("fe80::1", SpecialAddress::LinkLocal),
            ("10.1.2.3", SpecialAddress::Private),
            ("172.16.0.1", SpecialAddress::Private),
            ("172.31.255.255", SpecialAddress::Private),
            ("192.168.1.1", SpecialAddress::Private),
            ("100.64.0.1", SpecialAddress::Private),
            ("::ffff:10.0.0.1", SpecialAddress::Private),
            ("fd00::1", SpecialAddress::UniqueLocal),
            ("fc12::1", SpecialAddress::UniqueLocal),
            ("224.0.0.1", SpecialAddress::Multicast),
            ("255.255.255.255", SpecialAddress::Multicast),
            ("ff02::1", SpecialAddress::Multicast),
        ] {
            assert_eq!(p.check(ip(addr)), Err(kind), "{addr}");
        }
        for addr in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(p.check(ip(addr)), Ok(()), "{addr}");
        }
    }

    #[test]
    fn allowed_ranges_and_own_addresses() {
        let p = AddressPolicy {
            allowed: vec![Cidr::parse("10.20.0.0/16").unwrap()],
            own: vec![ip("203.0.113.7")],
        };
        assert_eq!(p.check(ip("10.20.3.4")), Ok(()));
        assert_eq!(p.check(ip("10.21.0.1")), Err(SpecialAddress::Private));
        assert_eq!(p.check(ip("203.0.113.7")), Err(SpecialAddress::Own));
        assert_eq!(p.check(ip("::ffff:203.0.113.7")), Err(SpecialAddress::Own));
    }

    #[test]
    fn cidr_parsing_names_the_problem() {
        assert!(Cidr::parse("10.0.0.0/8").is_ok());
        assert!(Cidr::parse("fd00::/8").is_ok());
        assert!(Cidr::parse("10.0.0.1/8")
            .unwrap_err()
            .contains("10.0.0.0/8"));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.com").is_err());
    }
}
