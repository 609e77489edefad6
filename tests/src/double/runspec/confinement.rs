//! Apple's confinement, translated for Docker: capabilities, ulimits, the
//! read-only root, and `/proc` masking per release. What Apple never
//! applies — a seccomp filter, an AppArmor profile, no-new-privileges —
//! the double turns off in Docker too, so an escape attempt through it
//! meets what a Mac would.

use super::super::args::Parsed;
use super::super::{Failure, Version};
use super::values::{capability, ulimit};
use serde_json::{json, Value};

/// `/proc` and `/sys` paths masked and made read-only by default from
/// 1.2.0 (the OCI defaults containerization applies); none before.
const DEFAULT_MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const DEFAULT_READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the flags ask of the container's confinement.
pub struct Confinement {
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// Docker's `Ulimits` and Apple's `rlimits`.
    pub ulimits: Vec<Value>,
    pub rlimits: Vec<Value>,
    pub read_only: bool,
    /// Effective masked and read-only paths (defaults per release, the
    /// flags, or none after `NONE`).
    pub masked: Vec<String>,
    pub readonly_paths: Vec<String>,
}

impl Confinement {
    pub fn from_flags(p: &Parsed, v: Version) -> Result<Self, Failure> {
        let caps = |flag: &str| -> Result<Vec<String>, Failure> {
            p.all(flag).iter().map(|c| capability(c)).collect()
        };
        let (mut ulimits, mut rlimits) = (Vec::new(), Vec::new());
        for u in p.all("ulimit") {
            let (kind, soft, hard) = ulimit(&u)?;
            ulimits.push(json!({ "Name": kind, "Soft": soft, "Hard": hard }));
            rlimits.push(json!({ "hard": hard, "limit": format!("RLIMIT_{}", kind.to_ascii_uppercase()), "soft": soft }));
        }
        Ok(Confinement {
            cap_add: caps("cap-add")?,
            cap_drop: caps("cap-drop")?,
            ulimits,
            rlimits,
            read_only: p.has("read-only"),
            masked: paths(p, v, "masked-path", DEFAULT_MASKED),
            readonly_paths: paths(p, v, "read-only-path", DEFAULT_READONLY),
        })
    }

    /// The Docker `HostConfig` fields that carry it.
    pub fn host_config(&self) -> Value {
        json!({
            "ReadonlyRootfs": self.read_only,
            "CapAdd": self.cap_add, "CapDrop": self.cap_drop,
            "Ulimits": self.ulimits,
            "MaskedPaths": self.masked, "ReadonlyPaths": self.readonly_paths,
            "SecurityOpt": ["seccomp=unconfined", "apparmor=unconfined"],
        })
    }
}

/// The release's defaults plus the flag's paths; `NONE` clears them all.
fn paths(p: &Parsed, v: Version, flag: &str, defaults: &[&str]) -> Vec<String> {
    let given = p.all(flag);
    if given.iter().any(|g| g == "NONE") {
        return Vec::new();
    }
    let base = if v >= Version(1, 2, 0) { defaults } else { &[] };
    base.iter().map(|s| s.to_string()).chain(given).collect()
}
