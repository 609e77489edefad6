//! Whether anyone holds the agent's gateways.
//!
//! A bottle's internal network has a gateway address that, by design, no
//! one holds (Docker: `inhibit_ipv4`, so the host keeps no address on the
//! bridge). The agent's routing table still sends everything off-link to
//! it, so every outside and host path queues behind an ARP request that is
//! never answered. The probe tries the gateways' own paths first; if none
//! of them reached anything and the kernel's neighbour table holds no
//! answer for the gateway, nobody holds it, and the rest of the paths are
//! tried on-link only: the same packets could only have waited at the same
//! unanswered ARP request. A gateway that answers ARP, or any of its paths,
//! is held, and the rest are tried through it as the agent's sockets go.

use bottlebar_policy::selftest::{path_name, GatewayCheck, PathResult};
use std::net::{IpAddr, Ipv4Addr};

/// `ATF_COM` in `/proc/net/arp`'s flags: the entry has a hardware address.
const ATF_COM: u32 = 0x2;

/// Whether the IPv4 neighbour table (`/proc/net/arp`) has an answer for `ip`.
pub fn arp_answered(table: &str, ip: Ipv4Addr) -> bool {
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(addr), Some(flags)) = (cols.first(), cols.get(2)) else {
            return false;
        };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap_or(0);
        addr.parse::<Ipv4Addr>().ok() == Some(ip) && flags & ATF_COM != 0
    })
}

/// Whether `path` (a path name such as `tcp 10.0.0.1:22` or
/// `udp 10.0.0.1:53 name`) goes to `ip`.
fn goes_to(path: &str, ip: IpAddr) -> bool {
    path_name::target(path).is_some_and(|a| a.ip() == ip)
}

/// Judges one gateway from its own paths' results and the ARP table.
///
/// IPv6 has no `/proc` neighbour table to read: an IPv6 gateway counts as
/// held unless none of its paths reached anything *and* every one of them
/// failed with "no route to host" (what a failed neighbour solicitation
/// gives), never merely timed out.
pub fn check(gateway: IpAddr, tried: &[PathResult], arp: &str) -> GatewayCheck {
    let own: Vec<&PathResult> = tried.iter().filter(|p| goes_to(&p.path, gateway)).collect();
    let answered = own.iter().find(|p| p.outcome.reached());
    let (held, detail) = match (answered, gateway) {
        // Nothing was sent to it, so nothing is known of it.
        _ if own.is_empty() => (true, "none of its paths was tried".to_string()),
        (Some(p), _) => (true, format!("answered: {} ({})", p.path, p.detail)),
        (None, IpAddr::V4(v4)) if arp_answered(arp, v4) => (
            true,
            "answers ARP but none of its paths; tried through it".to_string(),
        ),
        (None, IpAddr::V4(_)) => (
            false,
            format!(
                "nobody answers ARP for it ({} of its paths tried)",
                own.len()
            ),
        ),
        (None, IpAddr::V6(_)) => {
            let unreachable = !own.is_empty()
                && own
                    .iter()
                    .all(|p| p.detail.contains("os error 113") || p.detail.contains("No route"));
            if unreachable {
                (
                    false,
                    "no neighbour answers for it (no route to host)".into(),
                )
            } else {
                (
                    true,
                    "its neighbour state is unknown; tried through it".into(),
                )
            }
        }
    };
    GatewayCheck {
        ip: gateway,
        held,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bottlebar_policy::selftest::{LeakClass, Outcome};

    const ARP: &str = "IP address       HW type     Flags       HW address            Mask     Device\n\
                       10.213.4.17      0x1         0x0         00:00:00:00:00:00     *        eth0\n\
                       10.213.4.18      0x1         0x2         02:42:0a:d5:04:12     *        eth0\n";

    fn path(p: &str, outcome: Outcome, detail: &str) -> PathResult {
        PathResult {
            class: LeakClass::Host,
            path: p.into(),
            outcome,
            detail: detail.into(),
            ms: 100,
        }
    }

    #[test]
    fn reads_the_arp_table() {
        assert!(!arp_answered(ARP, "10.213.4.17".parse().unwrap()));
        assert!(arp_answered(ARP, "10.213.4.18".parse().unwrap()));
        assert!(!arp_answered(ARP, "10.213.4.19".parse().unwrap()));
        assert!(!arp_answered("", "10.213.4.18".parse().unwrap()));
    }

    #[test]
    fn a_gateway_nobody_answers_for_is_not_held() {
        let gw: IpAddr = "10.213.4.17".parse().unwrap();
        let tried = [
            path(
                "tcp 10.213.4.17:22",
                Outcome::Blocked,
                "No route to host (os error 113)",
            ),
            path("udp 10.213.4.17:53 x.test", Outcome::Blocked, "timed out"),
            // Another gateway's answer says nothing about this one.
            path("tcp 10.9.9.1:22", Outcome::Refused, "Connection refused"),
        ];
        let c = check(gw, &tried, ARP);
        assert!(!c.held, "{c:?}");
        assert!(c.detail.contains("2 of its paths"), "{c:?}");
    }

    #[test]
    fn a_gateway_is_held_when_it_answers_anything() {
        let gw: IpAddr = "10.213.4.17".parse().unwrap();
        let tried = [
            path("tcp 10.213.4.17:22", Outcome::Blocked, "timed out"),
            path("tcp 10.213.4.17:80", Outcome::Refused, "Connection refused"),
        ];
        assert!(check(gw, &tried, ARP).held);
        // Or only ARP: a host that drops what it is sent still holds it.
        let gw: IpAddr = "10.213.4.18".parse().unwrap();
        let tried = [path("tcp 10.213.4.18:22", Outcome::Blocked, "timed out")];
        assert!(check(gw, &tried, ARP).held);
    }

    #[test]
    fn an_ipv6_gateway_is_held_unless_every_path_found_no_route() {
        let gw: IpAddr = "fd00::1".parse().unwrap();
        let unreachable = [path(
            "tcp [fd00::1]:22",
            Outcome::Blocked,
            "No route to host (os error 113)",
        )];
        assert!(!check(gw, &unreachable, "").held);
        let silent = [path("tcp [fd00::1]:22", Outcome::Blocked, "timed out")];
        assert!(check(gw, &silent, "").held);
        assert!(check(gw, &[], "").held);
        assert!(check("10.213.4.17".parse().unwrap(), &[], ARP).held);
    }
}
