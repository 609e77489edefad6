//! Address space for bottles on Docker.
//!
//! Docker's default address pools hold about thirty networks, and each
//! bottle needs two, so a machine runs out after a dozen bottles. A bottle's
//! networks hold two containers each, so Bottlebar gives them small subnets
//! (/28) of its own pool instead: 4096 of them in the default /16. The first
//! candidate depends on the bottle's name, so bottles launched at the same
//! moment rarely pick the same one (a clash fails that network's creation
//! cleanly, and `ops::up` chooses again).

use std::fmt;
use std::net::Ipv4Addr;

/// The pool bottles' networks come from, unless `BOTTLEBAR_SUBNET_POOL` says
/// otherwise.
pub const DEFAULT_POOL: &str = "10.213.0.0/16";
/// The variable that replaces the pool.
pub const POOL_ENV: &str = "BOTTLEBAR_SUBNET_POOL";
/// Each network's size: 16 addresses, of which Docker reserves three.
pub const BOTTLE_PREFIX: u8 = 28;

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    base: u32,
    prefix: u8,
}

impl Net {
    /// `A.B.C.D/N`.
    pub fn parse(s: &str) -> Option<Net> {
        let (addr, prefix) = s.trim().split_once('/')?;
        let addr: Ipv4Addr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        (prefix <= 32).then(|| Net::new(addr, prefix))
    }

    /// The network of `addr` with `prefix` bits (host bits cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Net {
        Net {
            base: u32::from(addr) & Self::mask(prefix),
            prefix,
        }
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    fn last(&self) -> u32 {
        self.base | !Self::mask(self.prefix)
    }

    /// Whether the two share an address.
    pub fn overlaps(&self, other: &Net) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }

    /// The `n`th address of the network (0 is the network's own).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base.wrapping_add(n))
    }

    /// Its upper half: where an engine hands out addresses by itself, so
    /// that the lower half's are Bottlebar's to give.
    pub fn upper_half(&self) -> Net {
        let prefix = (self.prefix + 1).min(32);
        Net {
            base: self.base | (1u32 << (32 - prefix)),
            prefix,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// The pool in use: `BOTTLEBAR_SUBNET_POOL`, else [`DEFAULT_POOL`].
pub fn pool() -> Result<Net, String> {
    let s = std::env::var(POOL_ENV).unwrap_or_else(|_| DEFAULT_POOL.into());
    match Net::parse(&s) {
        Some(n) if n.prefix < BOTTLE_PREFIX => Ok(n),
        Some(_) => Err(format!(
            "{POOL_ENV}={s}: too small; it must hold at least two /{BOTTLE_PREFIX} networks"
        )),
        None => Err(format!(
            "{POOL_ENV}={s}: not an IPv4 network like 10.213.0.0/16"
        )),
    }
}

/// FNV-1a: stable across builds, unlike std's hasher.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// A free /28 of `pool` for each of `keys` (e.g. a bottle's two networks),
/// none overlapping `taken` or each other. Each search starts at a slot that
/// depends on the key and on `try_no`, so concurrent launches spread out.
pub fn choose(keys: &[String], try_no: u32, pool: Net, taken: &[Net]) -> Option<Vec<Net>> {
    let slots = 1u64 << (BOTTLE_PREFIX - pool.prefix);
    let mut out: Vec<Net> = Vec::new();
    for key in keys {
        let start = fnv(&format!("{key}#{try_no}")) % slots;
        let free = (0..slots).map(|i| (start + i) % slots).find_map(|slot| {
            let net = Net {
                base: pool.base + (slot as u32) * (1 << (32 - BOTTLE_PREFIX)),
                prefix: BOTTLE_PREFIX,
            };
            (!taken.iter().chain(out.iter()).any(|t| t.overlaps(&net))).then_some(net)
        })?;
        out.push(free);
    }
    Some(out)
}

/// This machine's own IPv4 networks (bottles must not shadow them).
pub fn host_networks() -> Vec<Net> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(a) => {
                let prefix = u32::from(a.netmask).leading_ones() as u8;
                Some(Net::new(a.ip, prefix))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_and_halves() {
        let n = Net::parse("10.213.4.16/28").unwrap();
        assert_eq!(n.nth(2).to_string(), "10.213.4.18");
        assert_eq!(n.upper_half().to_string(), "10.213.4.24/29");
        assert!(n.overlaps(&n.upper_half()));
        assert!(!n
            .upper_half()
            .overlaps(&Net::parse("10.213.4.18/32").unwrap()));
    }

    use super::*;

    #[test]
    fn parses_prints_and_overlaps() {
        let a = Net::parse("10.213.0.0/16").unwrap();
        assert_eq!(a.to_string(), "10.213.0.0/16");
        assert_eq!(
            Net::parse("10.213.7.9/28").unwrap().to_string(),
            "10.213.7.0/28"
        );
        let b = Net::parse("10.213.5.16/28").unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!b.overlaps(&Net::parse("10.213.5.32/28").unwrap()));
        assert!(Net::parse("10.0.0.0/33").is_none());
        assert!(Net::parse("nonsense").is_none());
    }

    #[test]
    fn chooses_free_distinct_subnets_deterministically() {
        let pool = Net::parse("10.213.0.0/24").unwrap(); // 16 slots
        let keys = ["demo-internal".to_string(), "demo-egress".to_string()];
        let first = choose(&keys, 0, pool, &[]).unwrap();
        assert_eq!(first, choose(&keys, 0, pool, &[]).unwrap());
        assert_ne!(first[0], first[1]);
        assert!(first.iter().all(|n| pool.overlaps(n) && n.prefix == 28));
        // Taken space is skipped; another try starts elsewhere.
        let taken = vec![first[0], Net::parse("10.213.0.128/25").unwrap()];
        let again = choose(&keys, 0, pool, &taken).unwrap();
        assert!(again.iter().all(|n| !taken.iter().any(|t| t.overlaps(n))));
        // A full pool says so.
        let all = vec![pool];
        assert_eq!(choose(&keys, 0, pool, &all), None);
    }

    #[test]
    fn many_bottles_mostly_start_apart() {
        let pool = Net::parse(DEFAULT_POOL).unwrap();
        let firsts: std::collections::BTreeSet<String> = (0..20)
            .map(|i| choose(&[format!("bottle-{i}")], 0, pool, &[]).unwrap()[0].to_string())
            .collect();
        assert!(firsts.len() >= 19, "{firsts:?}");
    }
}
