//! `bottlebar-security-report OUT.md`: writes `docs/security.md` from the
//! escape suite's results (one JSON file per attack and backend, in
//! `security_results_dir()`), so the table is what the last test run saw.

use anyhow::{bail, Context, Result};
use bottlebar_e2e::security_results_dir;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const INTRO: &str = r#"# Security: isolation, and how it is tested

A bottle is worth exactly as much as its isolation. Bottlebar measures it at
every launch instead of assuming it, closes the holes it can close, and
attacks every bottle configuration it ships with the suite below.

## What keeps the agent in

- **One way out.** The agent is on an internal network only; the sidecar is
  on that network and on the egress network, and is the agent's only route
  anywhere (HTTP and CONNECT proxy on port 3128).
- **No host address on the agent's network (Docker).** The internal network
  is created with `com.docker.network.bridge.inhibit_ipv4=true`: the bridge
  has no IPv4 address, so the host is not the agent's gateway and host
  services, even ones bound to `0.0.0.0`, are out of reach; Docker's own
  rules for internal networks drop everything routed off the subnet.
  Measured before the change: an agent reached a host service through the
  bridge gateway and through the host's own address; after it, neither.
- **No resolver.** The agent's only nameserver is the sidecar, which serves
  no DNS, so the agent resolves nothing itself and a DNS tunnel has no
  channel; Docker's embedded resolver never forwards the agent's queries to
  the host's resolvers. The proxy resolves names, for allowed hosts only.
- **Policy in the sidecar**: allowlist by host, port, method and path; IP
  literals, DNS-over-HTTPS hosts and media types, and domain fronting (TLS
  name, CONNECT host and `Host` disagreeing) refused; TLS interception with a
  per-bottle CA whose key never leaves the sidecar; credentials injected by
  the sidecar (the agent holds placeholders); every request scanned for held
  secrets (raw, hex, base64, base64url, percent-encoded) and token patterns.

## The launch-time self-test

After the agent starts, the probe (the sidecar binary, mounted read-only
into the agent at `/.bottlebar/probe`) tries every direct way out and
reports each path as JSON: raw-IP TCP to outside addresses (v4 and v6), UDP
and TCP port 53 to resolvers (the configured ones, the gateways, the
agent's own resolv.conf), the gateways and every address of the host on
common service ports, the egress network (the sidecar's egress address),
and the proxy path, which must work. The bottle is **ready only if every
direct path fails and the proxy answers**. Otherwise it is stopped and
removed (fail closed), `bottle up` exits 3, `bottle ls` and the app show
**isolation leak** with the path that leaked, and the app notifies.
`bottle verify NAME` (or *Verify now* in the app) reruns it on a running
bottle; the last result and when it ran are shown in `ls --json` and the
app, and kept in `$BOTTLEBAR_HOME/selftest/NAME.json`.

A path is a leak when it connected, was answered, or was refused by the far
end (a TCP reset proves the path exists even with nothing listening).

### Leak classes, and accepting one knowingly

| class | what reached something |
|---|---|
| `outside-ipv4` | raw-IP TCP to an outside IPv4 address |
| `outside-ipv6` | raw-IP TCP to an outside IPv6 address |
| `dns` | a resolver answered (a DNS tunnel would have a channel) |
| `host` | the host: a gateway, or one of the host's addresses |
| `egress-network` | the egress network, bypassing the proxy |

The default is fail closed. A class can be accepted by name, per bottle
(`[isolation] accept_leaks = ["host"]` in the bottle file) or for every
bottle (`accept_leaks = ["host"]` in `$BOTTLEBAR_HOME/settings.toml`);
accepted paths are still listed in the record and the summary.

**Apple's runtime:** host-only (`--internal`) networks give the host the
`.1` address and make it the agent's default route, and nothing outside
the VM can take that away (apple/container#1320; host `pf` reportedly does
not filter vmnet bridges). On a Mac the self-test therefore reports the
`host` class; accept it only if no service on the Mac should be hidden from
the agent. Every other class still fails closed, including the raw-IP NAT
leak reported in apple/container#2062.

### Targets

Real-world defaults (well-known anycast resolvers on 443 and 53, v4 and v6,
and `example.com`) are used unless `BOTTLEBAR_SELFTEST_TARGETS` names a JSON
file with `outside`, `resolvers`, `dns_name` (and optionally `host_ports`).
Every test overrides them with the test's own "fake internet" (a network
and server the test creates); a test run (`BOTTLEBAR_TEST_RUN` set) without
the override is refused before anything is created.

## Faults

Also run by every test run (`tests/tests/faults_e2e.rs`, `kill_e2e.rs`, on
Docker):

- **The CLI killed (SIGKILL) during each launch step in turn**, including the
  self-test: the next `bottle up` leaves a whole, verified bottle, or the next
  `bottle cleanup` leaves no labelled resource. Engine commands inherit the
  bottle's lock, so a killed launch's last commands finish before anyone
  looks; a bottle counts as running only once a self-test has passed since
  its agent started.
- **The sidecar killed**: the agent has no egress at all (no proxy, no direct
  path), `bottle ls` and the app show the bottle as needing attention
  ("sidecar exited"), and `bottle up` repairs it.
- **The engine down**, or **going away as the agent starts**: a clear error
  naming the bottle and step; nothing is created, or what was created is
  repaired by the next `up` once the engine is back; running bottles and
  their state are untouched.
- **A full disk under the state directory**: the launch fails with the OS's
  reason before anything exists on the engine, leaves no half state
  directory, and the bottles already running keep every file.
- **Unreadable rules**: the sidecar closes egress until they are readable
  again; an unreadable bottle file is an error naming it, changing nothing.
- **Twenty bottles launched at once** all come up isolated: bottles' Docker
  networks get /28 subnets of Bottlebar's own pool (`BOTTLEBAR_SUBNET_POOL`,
  default `10.213.0.0/16`), since Docker's default pools hold only about
  fifteen bottles' worth of networks.
"#;

/// An attack's title (the same in every backend's result).
fn title_of(per_backend: &BTreeMap<String, Value>) -> &str {
    per_backend
        .values()
        .next()
        .and_then(|v| v["title"].as_str())
        .unwrap_or("")
}

fn main() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: bottlebar-security-report OUT.md")?;
    let dir = security_results_dir();
    // attack id -> backend -> result
    let mut results: BTreeMap<u64, BTreeMap<String, Value>> = BTreeMap::new();
    let mut backends: Vec<String> = Vec::new();
    for backend_dir in
        std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
    {
        for file in std::fs::read_dir(backend_dir?.path())? {
            let path = file?.path();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("reading {}", path.display()))?;
            let backend = v["backend"].as_str().unwrap_or("?").to_string();
            if !backends.contains(&backend) {
                backends.push(backend.clone());
            }
            results
                .entry(v["id"].as_u64().unwrap_or(0))
                .or_default()
                .insert(backend, v);
        }
    }
    if results.is_empty() {
        bail!(
            "no results in {}: run the escape suite first",
            dir.display()
        );
    }
    backends.sort();

    let mut md = String::from(INTRO);
    md.push_str("\n## Escape suite results\n\n");
    md.push_str("Generated by `scripts/test` from `tests/tests/escape_e2e.rs` (one test per attack, each run on every backend; an attack fails its test if it succeeds *or* if its controls show it could not be attempted).\n\n");
    write!(md, "| # | attack |")?;
    for b in &backends {
        write!(md, " {b} |")?;
    }
    md.push_str("\n|---|---|");
    for _ in &backends {
        md.push_str("---|");
    }
    md.push('\n');
    for (id, per) in &results {
        let title = title_of(per);
        write!(md, "| {id} | {title} |")?;
        for b in &backends {
            let cell = per
                .get(b)
                .map(|v| {
                    let n = v["attempts"].as_array().map_or(0, Vec::len);
                    format!("{} ({n} attempts)", v["outcome"].as_str().unwrap_or("?"))
                })
                .unwrap_or_else(|| "not run".into());
            write!(md, " {cell} |")?;
        }
        md.push('\n');
    }
    md.push_str("\n### What each attack tried\n");
    for (id, per) in &results {
        let title = title_of(per);
        write!(md, "\n**{id}. {title}**\n\n")?;
        for (b, v) in per {
            let list = |k: &str| -> Vec<String> {
                v[k].as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            };
            writeln!(md, "- {b}: {}", v["outcome"].as_str().unwrap_or("?"))?;
            for a in list("attempts") {
                let mark = if list("leaks").contains(&a) {
                    "LEAKED"
                } else if list("accepted").contains(&a) {
                    "accepted leak"
                } else {
                    "blocked"
                };
                writeln!(md, "  - {a} — {mark}")?;
            }
            for n in list("not_attempted") {
                writeln!(md, "  - could not be attempted: {n}")?;
            }
        }
    }
    std::fs::write(&out, md).with_context(|| format!("writing {out}"))?;
    println!(
        "wrote {out} ({} attacks × {} backends)",
        results.len(),
        backends.len()
    );
    Ok(())
}
