//! Parsing what Apple's `container` CLI prints (1.x shapes; 0.x ones are
//! recognised to say the CLI is too old): `ls`, `network ls`, `inspect`,
//! `image inspect`, `builder status`, `--version`, and its failures.

use crate::backend::{LiveContainer, LiveNetwork};
use crate::name::{Role, LABEL_BOTTLE, LABEL_HOME, LABEL_ROLE};
use serde_json::Value;

/// Does `builder status --format json` show a running builder with exactly
/// `nameservers` (or, with `absent_ok`, no builder at all)?
pub fn builder_dns_matches(status_json: &str, nameservers: &[String], absent_ok: bool) -> bool {
    let Ok(Value::Array(builders)) = serde_json::from_str::<Value>(status_json) else {
        return false;
    };
    let Some(builder) = builders.first() else {
        return absent_ok;
    };
    let running = builder.pointer("/status/state").and_then(Value::as_str) == Some("running");
    let dns: Vec<&str> = builder
        .pointer("/configuration/dns/nameservers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    running && dns == nameservers.iter().map(String::as_str).collect::<Vec<_>>()
}

fn labels(v: &Value) -> std::collections::BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Containers from `container ls -a --format json` (1.x shape), Bottlebar's only.
pub fn parse_containers(json: &str) -> Result<Vec<LiveContainer>, String> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| format!("unexpected `container ls` output: {e}"))?;
    let list = v
        .as_array()
        .ok_or("`container ls` did not print a JSON array")?;
    let mut out = Vec::new();
    for c in list {
        let Some(status) = c.get("status").filter(|s| s.is_object()) else {
            return Err(
                "this is the container 0.x list format; Bottlebar needs container 1.0.0 or newer"
                    .into(),
            );
        };
        let config = c.get("configuration").cloned().unwrap_or_default();
        let labels = labels(config.get("labels").unwrap_or(&Value::Null));
        let Some(bottle) = labels.get(LABEL_BOTTLE).cloned() else {
            continue;
        };
        let state = status
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let init = config.get("initProcess").cloned().unwrap_or_default();
        let mut command: Vec<String> = init
            .get("executable")
            .and_then(Value::as_str)
            .map(|e| vec![e.to_string()])
            .unwrap_or_default();
        command.extend(
            init.get("arguments")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
        let networks = status
            .get("networks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some((
                    a.get("network")?.as_str()?.to_string(),
                    a.get("ipv4Address")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .to_string(),
                ))
            })
            .collect();
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        out.push(LiveContainer {
            name: id.clone(),
            id,
            bottle,
            role: labels.get(LABEL_ROLE).and_then(|r| Role::parse(r)),
            home: labels.get(LABEL_HOME).cloned(),
            running: state == "running",
            status: state,
            started_at: status
                .get("startedDate")
                .and_then(Value::as_str)
                .map(str::to_string),
            command,
            image: config
                .pointer("/image/reference")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            networks,
            gvisor: false,
        });
    }
    Ok(out)
}

/// Networks from `container network ls --format json` (1.x shape), Bottlebar's
/// only. The JSON lists no attachments; `containers_json` (from `ls -a`)
/// supplies them from each container's configuration.
pub fn parse_networks(json: &str, containers_json: &str) -> Result<Vec<LiveNetwork>, String> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| format!("unexpected `container network ls` output: {e}"))?;
    let list = v
        .as_array()
        .ok_or("`container network ls` did not print a JSON array")?;
    let containers: Value = serde_json::from_str(containers_json).unwrap_or(Value::Array(vec![]));
    let mut out = Vec::new();
    for n in list {
        let Some(config) = n.get("configuration") else {
            return Err("this is the container 0.x network format; Bottlebar needs container 1.0.0 or newer".into());
        };
        let labels = labels(config.get("labels").unwrap_or(&Value::Null));
        let Some(bottle) = labels.get(LABEL_BOTTLE).cloned() else {
            continue;
        };
        let name = config
            .get("name")
            .or_else(|| n.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let attached = containers
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| {
                c.pointer("/configuration/networks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|a| a.get("network").and_then(Value::as_str) == Some(&name))
            })
            .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        out.push(LiveNetwork {
            id: name.clone(),
            internal: config.get("mode").and_then(Value::as_str) == Some("hostOnly"),
            name,
            bottle,
            role: labels.get(LABEL_ROLE).and_then(|r| Role::parse(r)),
            home: labels.get(LABEL_HOME).cloned(),
            attached,
        });
    }
    Ok(out)
}

/// How the CLI failed, from its exit code and its `Error: …` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliFailure {
    /// Exit 64: the command line was not accepted (a Bottlebar bug, or a CLI too old for a flag).
    Usage(String),
    /// Exit 1: the CLI or its service refused or failed.
    Failed(String),
    /// The service is not running.
    ServiceDown(String),
    /// Anything else (killed, or the workload's own exit code).
    Other(Option<i32>, String),
}

/// Reads the CLI's own message out of its stderr (`Error: <message>`, without
/// the usage text that follows parse errors).
pub fn interpret_failure(code: Option<i32>, stderr: &str) -> CliFailure {
    let message = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Error: "))
        .map(str::to_string)
        .unwrap_or_else(|| stderr.trim().to_string());
    if stderr.contains("Ensure container system service has been started") {
        return CliFailure::ServiceDown(message);
    }
    match code {
        Some(64) => CliFailure::Usage(message),
        Some(1) => CliFailure::Failed(message),
        other => CliFailure::Other(other, message),
    }
}

/// The container's IPv4 address on `network` from `container inspect` output.
///
/// 1.x: `.[0].status.networks[] | select(.network == N) | .ipv4Address`,
/// CIDR suffix stripped. The 0.x shapes (`.[0].networks[]` with `ipv4Address`
/// or `address`) are recognised so an old CLI is reported as too old rather
/// than as unparseable.
pub fn container_ip(inspect_json: &str, network: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(inspect_json)
        .map_err(|e| format!("unexpected `container inspect` output: {e}"))?;
    let first = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or("`container inspect` returned no container")?;
    let attachments = match first
        .get("status")
        .and_then(|s| s.get("networks"))
        .and_then(Value::as_array)
    {
        Some(a) => a,
        None if first.get("networks").is_some() => {
            return Err("this is the container 0.x inspect format; Bottlebar needs container 1.0.0 or newer".into());
        }
        None => return Err("`container inspect` output has no status.networks".into()),
    };
    let cidr = attachments
        .iter()
        .find(|a| a.get("network").and_then(Value::as_str) == Some(network))
        .and_then(|a| a.get("ipv4Address"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the container has no address on network `{network}` yet"))?;
    let ip = cidr.split('/').next().unwrap_or_default();
    ip.parse::<std::net::Ipv4Addr>()
        .map_err(|_| format!("`{cidr}` is not an IPv4 address"))?;
    Ok(ip.to_string())
}

/// Whether `container image inspect` output shows label `key=value` on any variant.
pub fn image_has_label(inspect_json: &str, key: &str, value: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(inspect_json) else {
        return false;
    };
    let variants = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|img| img.get("variants").and_then(Value::as_array))
        .flatten();
    variants.into_iter().any(|variant| {
        let config = variant.get("config").and_then(|c| c.get("config"));
        config
            .and_then(|c| c.get("Labels"))
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            == Some(value)
    })
}

/// Parses `container --version`: `container CLI version 1.2.2 (build: …, commit: …)`.
pub fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let rest = text.trim().strip_prefix("container CLI version ")?;
    parse_semver(rest.split_whitespace().next()?)
}

/// `X.Y.Z` → (X, Y, Z).
pub fn parse_semver(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.split('.').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSPECT_1X: &str = r#"[
  {
    "configuration" : { "id" : "bottlebar-demo-sidecar" },
    "id" : "bottlebar-demo-sidecar",
    "status" : {
      "networks" : [
        { "hostname" : "bottlebar-demo-sidecar", "ipv4Address" : "192.168.64.3\/24", "ipv4Gateway" : "192.168.64.1", "network" : "bottlebar-demo-egress" },
        { "hostname" : "bottlebar-demo-sidecar", "ipv4Address" : "192.168.65.2\/24", "ipv4Gateway" : "192.168.65.1", "network" : "bottlebar-demo-internal" }
      ],
      "startedDate" : "2026-08-07T18:36:01Z",
      "state" : "running"
    }
  }
]"#;

    #[test]
    fn ip_from_1x_inspect_strips_the_cidr_suffix() {
        assert_eq!(
            container_ip(INSPECT_1X, "bottlebar-demo-internal").unwrap(),
            "192.168.65.2"
        );
        assert_eq!(
            container_ip(INSPECT_1X, "bottlebar-demo-egress").unwrap(),
            "192.168.64.3"
        );
        assert!(container_ip(INSPECT_1X, "other")
            .unwrap_err()
            .contains("no address"));
        let stopped = r#"[{"id":"x","status":{"networks":[],"state":"stopped"}}]"#;
        assert!(container_ip(stopped, "n").unwrap_err().contains("yet"));
    }

    #[test]
    fn old_inspect_shapes_are_reported_as_too_old() {
        let v0 = r#"[{"status":"running","networks":[{"network":"n","ipv4Address":"192.168.64.3/24"}],"configuration":{}}]"#;
        assert!(container_ip(v0, "n")
            .unwrap_err()
            .contains("1.0.0 or newer"));
        let v07 =
            r#"[{"status":"running","networks":[{"network":"n","address":"192.168.64.3/24"}]}]"#;
        assert!(container_ip(v07, "n")
            .unwrap_err()
            .contains("1.0.0 or newer"));
    }

    #[test]
    fn image_labels() {
        let json = r#"[{"id":"x","variants":[{"config":{"config":{"Labels":{"bottlebar.content-hash":"abc"}}}}]}]"#;
        assert!(image_has_label(json, "bottlebar.content-hash", "abc"));
        assert!(!image_has_label(json, "bottlebar.content-hash", "abd"));
        assert!(!image_has_label("nope", "k", "v"));
    }

    #[test]
    fn version_line() {
        assert_eq!(
            parse_version("container CLI version 1.2.2 (build: release, commit: af405ff)"),
            Some((1, 2, 2))
        );
        assert_eq!(
            parse_version("container CLI version 0.12.3"),
            Some((0, 12, 3))
        );
        assert_eq!(parse_version("Docker version 20.10"), None);
    }
}

#[cfg(test)]
mod shape_tests {
    //! Every JSON shape the reference shows, parsed.
    use super::*;

    const LS_1X: &str = r#"[{"configuration":{"id":"bottlebar-demo-agent","initProcess":{"arguments":["2147483647"],"executable":"sleep"},"labels":{"bottlebar.bottle":"demo","bottlebar.role":"agent"},"networks":[{"network":"bottlebar-demo-internal","options":{"hostname":"bottlebar-demo-agent","mtu":1280}}],"image":{"reference":"bottlebar\/demo-agent:abc"}},"id":"bottlebar-demo-agent","status":{"networks":[{"hostname":"bottlebar-demo-agent","ipv4Address":"192.168.65.3\/24","ipv4Gateway":"192.168.65.1","network":"bottlebar-demo-internal"}],"startedDate":"2026-08-07T18:36:01Z","state":"running"}},{"configuration":{"id":"buildkit","labels":{}},"id":"buildkit","status":{"networks":[],"state":"running"}}]"#;

    #[test]
    fn ls_1x_is_parsed_and_foreign_containers_skipped() {
        let c = parse_containers(LS_1X).unwrap();
        assert_eq!(c.len(), 1, "the builder carries no Bottlebar label");
        assert_eq!(c[0].name, "bottlebar-demo-agent");
        assert_eq!(c[0].command, vec!["sleep", "2147483647"]);
        assert!(c[0].running);
        assert_eq!(c[0].networks["bottlebar-demo-internal"], "192.168.65.3");
        assert_eq!(c[0].role, Some(Role::Agent));
        assert_eq!(c[0].started_at.as_deref(), Some("2026-08-07T18:36:01Z"));
    }

    #[test]
    fn ls_0x_is_refused_as_too_old() {
        let old = r#"[{"configuration":{"labels":{"bottlebar.bottle":"demo"}},"networks":[],"status":"running","startedDate":7.7e8}]"#;
        assert!(parse_containers(old)
            .unwrap_err()
            .contains("1.0.0 or newer"));
        assert!(parse_containers("nope").is_err());
    }

    #[test]
    fn network_ls_1x_with_attachments_from_containers() {
        let nets = r#"[{"configuration":{"creationDate":"2026-08-07T18:36:01Z","labels":{"bottlebar.bottle":"demo","bottlebar.role":"internal"},"mode":"hostOnly","name":"bottlebar-demo-internal","options":{},"plugin":"container-network-vmnet"},"id":"bottlebar-demo-internal","status":{"ipv4Gateway":"192.168.65.1","ipv4Subnet":"192.168.65.0\/24"}},{"configuration":{"labels":{"com.apple.container.resource.role":"builtin"},"mode":"nat","name":"default"},"id":"default","status":{}}]"#;
        let n = parse_networks(nets, LS_1X).unwrap();
        assert_eq!(n.len(), 1);
        assert!(n[0].internal);
        assert_eq!(n[0].attached, vec!["bottlebar-demo-agent"]);
        let old = r#"[{"config":{"id":"x","labels":{"bottlebar.bottle":"demo"},"mode":"nat"},"id":"x","state":"running"}]"#;
        assert!(parse_networks(old, "[]")
            .unwrap_err()
            .contains("1.0.0 or newer"));
    }

    #[test]
    fn builder_status_dns() {
        let running = r#"[{"configuration":{"dns":{"nameservers":["1.1.1.1"],"options":[],"searchDomains":[]},"id":"buildkit"},"id":"buildkit","status":{"networks":[],"state":"running"}}]"#;
        let dns = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(builder_dns_matches(running, &dns(&["1.1.1.1"]), false));
        assert!(!builder_dns_matches(running, &dns(&["9.9.9.9"]), true));
        assert!(builder_dns_matches("[]", &dns(&["1.1.1.1"]), true));
        assert!(!builder_dns_matches("[]", &dns(&["1.1.1.1"]), false));
        let stopped = running.replace("\"running\"", "\"stopped\"");
        assert!(
            !builder_dns_matches(&stopped, &dns(&["1.1.1.1"]), false),
            "a stopped builder would be recreated by build without DNS"
        );
    }

    #[test]
    fn failures_are_interpreted_from_exit_code_and_error_line() {
        assert_eq!(
            interpret_failure(
                Some(64),
                "Error: Unknown option '--bogus'\nUsage: container run ..."
            ),
            CliFailure::Usage("Unknown option '--bogus'".into())
        );
        assert_eq!(
            interpret_failure(Some(1), "Error: network x already exists\n"),
            CliFailure::Failed("network x already exists".into())
        );
        let down = "Error: XPC connection error: Connection invalid\nEnsure container system service has been started with `container system start`.";
        assert!(matches!(
            interpret_failure(Some(1), down),
            CliFailure::ServiceDown(_)
        ));
        assert!(matches!(
            interpret_failure(Some(7), "boom"),
            CliFailure::Other(Some(7), _)
        ));
    }
}
