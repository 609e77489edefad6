//! One flag value at a time, read as Apple's parser reads it: capability
//! names, ulimits, sizes, `--network` attachments, env files, `-p` specs.

use super::super::args::Parsed;
use super::super::engine::network_json;
use super::super::{Failure, Version};
use serde_json::{json, Map, Value};

/// Apple's default CPUs and memory (config.toml `[container]`).
const DEFAULT_CPUS: i64 = 4;
const DEFAULT_MEMORY: u64 = 1 << 30;
/// The MTU Apple gives an interface unless `mtu=` says otherwise.
pub const DEFAULT_MTU: u32 = 1280;

/// Linux capability names, as Apple's `CapabilityName` knows them.
const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// One `--network` attachment.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub network: String,
    pub mac: Option<String>,
    pub mtu: u32,
}

/// A `--cap-add`/`--cap-drop` value as Apple reads it: case-insensitive,
/// `CAP_` optional, or `ALL`.
pub fn capability(name: &str) -> Result<String, Failure> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" || CAPABILITIES.contains(&bare) {
        Ok(bare.to_string())
    } else {
        Err(Failure::failed(format!("invalid CapabilityName '{name}'")))
    }
}

/// A `--ulimit type=soft[:hard]` value.
pub fn ulimit(spec: &str) -> Result<(String, u64, u64), Failure> {
    let bad = || {
        Failure::usage(format!(
            "The value '{spec}' is invalid for '--ulimit <ulimit>'"
        ))
    };
    let (kind, limits) = spec.split_once('=').ok_or_else(bad)?;
    let known = [
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if !known.contains(&kind) {
        return Err(bad());
    }
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let n = |v: &str| v.parse::<u64>().map_err(|_| bad());
    let (soft, hard) = (n(soft)?, n(hard)?);
    if soft > hard {
        return Err(bad());
    }
    Ok((kind.to_string(), soft, hard))
}

/// `-m`/`--shm-size` sizes: a number (decimals allowed) with an optional
/// K/M/G/T/P suffix (`MiB`, `mb`, `g` …); a bare number is bytes.
pub fn memory_bytes(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mult): (&str, u64) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        'p' => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n > 0.0).then_some((n * mult as f64) as u64)
}

/// CPUs, memory and `/dev/shm` as asked: integers for CPUs (a parse
/// error), sizes for memory (a runtime error, at least 200 MiB).
pub struct Resources {
    pub cpus: i64,
    pub memory: u64,
    pub shm: Option<u64>,
}

impl Resources {
    pub fn from_flags(p: &Parsed) -> Result<Self, Failure> {
        let cpus = match p.one("cpus") {
            Some(c) => c.parse::<i64>().map_err(|_| {
                Failure::usage(format!("The value '{c}' is invalid for '-c <cpus>'"))
            })?,
            None => DEFAULT_CPUS,
        };
        let memory = match p.one("memory") {
            Some(m) => memory_bytes(&m).ok_or_else(|| {
                Failure::failed(format!("invalidArgument: \"invalid memory size {m}\""))
            })?,
            None => DEFAULT_MEMORY,
        };
        if memory < 200 << 20 {
            return Err(Failure::failed(format!(
                "invalidArgument: \"memory {} is below the minimum of 200 MiB\"",
                p.one("memory").unwrap_or_default()
            )));
        }
        let shm = match p.one("shm-size") {
            Some(s) => Some(
                memory_bytes(&s).ok_or_else(|| Failure::failed(format!("invalid shm size {s}")))?,
            ),
            None => None,
        };
        Ok(Resources { cpus, memory, shm })
    }
}

/// The attachments in flag order: `none` alone (no interface), else the
/// given ones, else one to `default`. Each network must exist.
pub fn attachments(p: &Parsed, v: Version) -> Result<Vec<Attachment>, Failure> {
    let mut networks: Vec<Attachment> = p
        .all("network")
        .iter()
        .map(|n| attachment(n, v))
        .collect::<Result<_, _>>()?;
    if networks.iter().any(|n| n.network == "none") {
        if networks.len() > 1 {
            return Err(Failure::failed(
                "--network none cannot be combined with other networks",
            ));
        }
        return Ok(Vec::new());
    }
    if networks.len() > 1 && v < Version(1, 0, 0) {
        // Before cz PR #697 every interface got a default route and boot failed.
        return Err(Failure::failed(
            "internalError: \"failed to create container: ipRouteAddDefault\"",
        ));
    }
    if networks.is_empty() {
        super::super::network::ensure_default()?;
        networks.push(Attachment {
            network: "default".into(),
            mac: None,
            mtu: DEFAULT_MTU,
        });
    }
    if let Some(n) = networks.iter().find(|n| network_json(&n.network).is_none()) {
        return Err(Failure::failed(format!("network not found: {}", n.network)));
    }
    Ok(networks)
}

/// A `--network` value: `name[,mac=XX:…][,mtu=N]`.
fn attachment(spec: &str, v: Version) -> Result<Attachment, Failure> {
    let mut parts = spec.split(',');
    let network = parts.next().unwrap_or_default().to_string();
    let mut a = Attachment {
        network,
        mac: None,
        mtu: DEFAULT_MTU,
    };
    for part in parts {
        match part.split_once('=') {
            Some(("mac", m)) if v >= Version(0, 7, 0) => {
                let ok = m.split(':').count() == 6
                    && m.split(':')
                        .all(|x| x.len() == 2 && u8::from_str_radix(x, 16).is_ok());
                if !ok {
                    return Err(Failure::usage(format!("invalid MAC address {m}")));
                }
                a.mac = Some(m.to_ascii_lowercase());
            }
            Some(("mtu", n)) if v >= Version(0, 11, 0) => {
                a.mtu = n
                    .parse()
                    .ok()
                    .filter(|m| (1280..=65535).contains(m))
                    .ok_or_else(|| {
                        Failure::usage(format!("invalid MTU {n}: must be 1280-65535"))
                    })?;
            }
            _ => return Err(Failure::usage(format!("invalid network option {part}"))),
        }
    }
    Ok(a)
}

/// `--env-file` lines as Docker's kvfile: `K=V`, bare `K` inherits, `#` comments.
pub fn env_file(path: &str) -> Result<Vec<String>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::failed(format!("failed to read env file {path}: {e}")))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(inherit)
        .collect())
}

/// `K=V` as is; bare `K` from the host's environment, or nothing when unset.
pub fn inherit(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

/// Published ports: Docker's `PortBindings` (they go on the namespace
/// holder) and Apple's `publishedPorts`.
pub struct Ports {
    pub bindings: Value,
    pub shown: Vec<Value>,
}

impl Ports {
    /// Every `-p`; at most 64 specs.
    pub fn from_flags(p: &Parsed) -> Result<Self, Failure> {
        let mut bindings = Map::new();
        let mut shown = Vec::new();
        for spec in p.all("publish") {
            publish(&spec, &mut bindings, &mut shown)?;
        }
        if shown.len() > 64 {
            return Err(Failure::failed("at most 64 port publications are allowed"));
        }
        Ok(Ports {
            bindings: Value::Object(bindings),
            shown,
        })
    }
}

/// One `-p` spec: `[host-ip:]host-port:container-port[/proto]`, ranges allowed.
fn publish(
    spec: &str,
    bindings: &mut Map<String, Value>,
    shown: &mut Vec<Value>,
) -> Result<(), Failure> {
    let bad = || Failure::usage(format!("invalid publish specification {spec}"));
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p @ ("tcp" | "udp"))) => (b, p),
        Some(_) => return Err(bad()),
        None => (spec, "tcp"),
    };
    let (host_ip, rest) = if let Some(r) = body.strip_prefix('[') {
        let (ip, r) = r.split_once("]:").ok_or_else(bad)?;
        (ip.to_string(), r.to_string())
    } else {
        match body.matches(':').count() {
            1 => ("0.0.0.0".to_string(), body.to_string()),
            2 => {
                let (ip, r) = body.split_once(':').ok_or_else(bad)?;
                (ip.to_string(), r.to_string())
            }
            _ => return Err(bad()),
        }
    };
    let (h, c) = rest.split_once(':').ok_or_else(bad)?;
    let range = |s: &str| -> Result<(u16, u16), Failure> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let (a, b): (u16, u16) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a == 0 || b < a {
            return Err(bad());
        }
        Ok((a, b))
    };
    let ((h0, h1), (c0, c1)) = (range(h)?, range(c)?);
    if h1 - h0 != c1 - c0 {
        return Err(bad());
    }
    for i in 0..=(c1 - c0) {
        bindings
            .entry(format!("{}/{proto}", c0 + i))
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap()
            .push(json!({ "HostIp": host_ip, "HostPort": (h0 + i).to_string() }));
    }
    shown.push(json!({ "containerPort": c0, "count": c1 - c0 + 1, "hostAddress": host_ip, "hostPort": h0, "proto": proto }));
    Ok(())
}
