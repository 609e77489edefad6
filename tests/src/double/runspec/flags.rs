//! Which `run`/`create` flags exist, per release, and the checks that need
//! only the flags themselves: Macs-only flags, version gates, combinations
//! Apple refuses, the container ID and labels.

use super::super::args::{flag, value, Opt, Parsed};
use super::super::{Failure, Version};
use serde_json::{json, Map, Value};

pub const RUN_OPTS: &[Opt] = &[
    flag("detach", Some('d')),
    value("name", None),
    value("label", Some('l')),
    value("network", None),
    value("dns", None),
    value("dns-domain", None),
    value("dns-search", None),
    value("dns-option", None),
    flag("no-dns", None),
    value("mount", None),
    value("volume", Some('v')),
    value("env", Some('e')),
    value("env-file", None),
    flag("init", None),
    value("cpus", Some('c')),
    value("memory", Some('m')),
    flag("remove", None),
    flag("rm", None),
    flag("interactive", Some('i')),
    flag("tty", Some('t')),
    value("entrypoint", None),
    value("user", Some('u')),
    value("uid", None),
    value("gid", None),
    value("workdir", Some('w')),
    value("cwd", None),
    flag("read-only", None),
    value("progress", None),
    value("publish", Some('p')),
    value("tmpfs", None),
    value("cap-add", None),
    value("cap-drop", None),
    value("ulimit", None),
    value("shm-size", None),
    value("masked-path", None),
    value("read-only-path", None),
    value("cidfile", None),
    flag("ssh", None),
    flag("virtualization", None),
    flag("rosetta", None),
    value("publish-socket", None),
    value("kernel-arg", None),
    value("kernel", Some('k')),
    value("init-image", None),
    value("runtime", None),
    value("arch", Some('a')),
    value("os", None),
    value("platform", None),
    value("scheme", None),
    value("max-concurrent-downloads", None),
];

/// Flags that need a Mac (a VM kernel, Rosetta, the host's SSH agent …).
const NOT_EMULATED: &[&str] = &[
    "ssh",
    "virtualization",
    "rosetta",
    "publish-socket",
    "kernel-arg",
    "kernel",
    "init-image",
    "runtime",
    "arch",
    "os",
    "platform",
];

/// Flags that arrived in a release: before it, Apple's parser does not
/// know them (exit 64).
const SINCE: &[(&str, Version)] = &[
    ("read-only", Version(0, 8, 0)),
    ("ulimit", Version(0, 9, 0)),
    ("init", Version(0, 10, 0)),
    ("cap-add", Version(0, 12, 0)),
    ("cap-drop", Version(0, 12, 0)),
    ("shm-size", Version(1, 0, 0)),
    ("masked-path", Version(1, 2, 1)),
    ("read-only-path", Version(1, 2, 1)),
];

/// Refuses flags that need a Mac, plainly.
pub fn not_emulated(p: &Parsed, flags: &[&str]) -> Result<(), Failure> {
    match flags.iter().find(|f| p.has(f)) {
        Some(f) => Err(Failure::failed(format!(
            "test double: --{f} needs Apple's runtime and is not emulated"
        ))),
        None => Ok(()),
    }
}

/// The checks that need only the flags: what needs a Mac, what release
/// `v` does not know, and combinations Apple refuses.
pub fn check(p: &Parsed, v: Version, run: bool) -> Result<(), Failure> {
    not_emulated(p, NOT_EMULATED)?;
    if let Some((flag, _)) = SINCE.iter().find(|(f, since)| p.has(f) && v < *since) {
        return Err(Failure::usage(format!("Unknown option '--{flag}'")));
    }
    if p.has("progress") && (!run || v < Version(0, 12, 0)) {
        return Err(Failure::usage("Unknown option '--progress'"));
    }
    let dns_flags = ["dns", "dns-domain", "dns-search", "dns-option"];
    if p.has("no-dns") && dns_flags.iter().any(|f| p.has(f)) {
        return Err(Failure::usage(
            "--no-dns cannot be combined with other DNS options",
        ));
    }
    check_fetch_flags(p)
}

/// `--scheme` and `--max-concurrent-downloads` shape an image pull, which
/// the double never makes (images are built here); their values are still
/// checked as Apple's parser checks them.
fn check_fetch_flags(p: &Parsed) -> Result<(), Failure> {
    if let Some(s) = p.one("scheme") {
        if !["http", "https", "auto"].contains(&s.as_str()) {
            return Err(Failure::failed(format!(
                "invalidArgument: \"unsupported scheme {s}\""
            )));
        }
    }
    if let Some(n) = p.one("max-concurrent-downloads") {
        if n.parse::<u32>().map_or(true, |n| n == 0) {
            return Err(Failure::usage(format!(
                "The value '{n}' is invalid for '--max-concurrent-downloads <max-concurrent-downloads>'"
            )));
        }
    }
    Ok(())
}

/// `--name`, or a fresh ID; Apple's pattern and length.
pub fn container_id(p: &Parsed) -> Result<String, Failure> {
    let id = p.one("name").unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{nanos:032x}")
    });
    let b = id.as_bytes();
    let valid = (2..=63).contains(&id.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c));
    if !valid {
        return Err(Failure::failed(format!("container ID {id} is not a valid container ID (must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$, at most 63 characters)")));
    }
    Ok(id)
}

/// `-l k[=v]`: a value holding `=` is refused (exit 1).
pub fn labels(p: &Parsed) -> Result<Map<String, Value>, Failure> {
    let mut labels = Map::new();
    for l in p.all("label") {
        let (k, val) = l.split_once('=').unwrap_or((&l, ""));
        if val.contains('=') {
            return Err(Failure::failed(format!("invalid label format {l}")));
        }
        labels.insert(k.to_string(), json!(val));
    }
    Ok(labels)
}
