//! Apple's `container` CLI (macOS 26, container ≥ 1.0): planning and output
//! parsing. See `shared/reference/apple-container-cli.md` for every flag and
//! JSON shape used here.
//!
//! Differences from Docker that shape the plan: no `network connect` (the
//! sidecar gets both `--network` flags on one `run`, egress first so it owns
//! the default route), no network aliases (the agent is given an IP), no
//! single-file binds (files are staged into directories), and `--internal`
//! means host-only.

use crate::launch::{
    self, agent_env, agent_mounts, env_arg, label_args, sidecar_mounts, LaunchSpec,
};
use crate::name::{Role, LABEL_CONTENT_HASH};
use crate::plan::{Capture, Plan, Probe, ProbeCheck, Retry, Step, SIDECAR_IP};
use serde_json::Value;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The launch plan on Apple's runtime.
pub fn plan(spec: &LaunchSpec) -> Plan {
    let c = spec.engine.as_str();
    let b = &spec.bottle;
    let internal = b.resource(Role::Internal);
    let egress = b.resource(Role::Egress);
    let sidecar = b.resource(Role::Sidecar);
    let agent = b.resource(Role::Agent);

    let build = |img: &crate::images::ImageSpec, id: &str, title: &str| {
        let mut argv = s(&[c, "build", "--quiet", "--tag", &img.tag]);
        argv.extend(label_args(b, img.role));
        argv.extend([
            "--label".into(),
            format!("{LABEL_CONTENT_HASH}={}", img.content_hash),
        ]);
        argv.extend([
            "--file".into(),
            img.dockerfile.display().to_string(),
            img.context.display().to_string(),
        ]);
        Step {
            id: id.into(),
            title: title.into(),
            argv,
            after: vec![],
            undo: None,
            skip_if: Some(Probe {
                argv: s(&[c, "image", "inspect", &img.tag]),
                check: ProbeCheck::AppleImageLabel {
                    key: LABEL_CONTENT_HASH.into(),
                    value: img.content_hash.clone(),
                },
            }),
            retry: None,
            capture: None,
        }
    };
    let network = |id: &str, title: &str, name: &str, role: Role, internal_only: bool| {
        let mut argv = s(&[c, "network", "create"]);
        if internal_only {
            argv.push("--internal".into());
        }
        argv.extend(label_args(b, role));
        argv.push(name.into());
        Step {
            id: id.into(),
            title: title.into(),
            argv,
            after: vec![],
            undo: Some(s(&[c, "network", "delete", name])),
            skip_if: None,
            retry: None,
            capture: None,
        }
    };

    let mut run_sidecar = s(&[c, "run", "--detach", "--name", &sidecar]);
    run_sidecar.extend(label_args(b, Role::Sidecar));
    run_sidecar.extend(s(&["--network", &egress, "--network", &internal]));
    for ns in &spec.dns {
        run_sidecar.extend(s(&["--dns", ns]));
    }
    for m in sidecar_mounts(spec) {
        run_sidecar.extend(["--mount".into(), m.mount_arg()]);
    }
    run_sidecar.push(spec.sidecar_image.tag.clone());
    run_sidecar.extend(launch::sidecar_serve_argv());

    let mut health = s(&[c, "exec", &sidecar]);
    health.extend(launch::sidecar_health_argv());

    let mut run_agent = s(&[c, "run", "--detach", "--name", &agent]);
    run_agent.extend(label_args(b, Role::Agent));
    run_agent.extend(s(&["--network", &internal, "--init"]));
    if let Some(n) = spec.resources.cpus {
        run_agent.extend(["--cpus".into(), n.to_string()]);
    }
    if let Some(m) = spec.resources.memory_mib {
        run_agent.extend(["--memory".into(), format!("{m}M")]);
    }
    for e in agent_env(spec) {
        run_agent.extend(["--env".into(), env_arg(&e)]);
    }
    for m in agent_mounts(spec) {
        run_agent.extend(["--mount".into(), m.mount_arg()]);
    }
    run_agent.push(spec.agent_image.tag.clone());
    run_agent.extend(launch::agent_keepalive_command());

    let step = |id: &str, title: &str, argv: Vec<String>, after: &[&str]| Step {
        id: id.into(),
        title: title.into(),
        argv,
        after: s(after),
        undo: None,
        skip_if: None,
        retry: None,
        capture: None,
    };
    let steps = vec![
        build(
            &spec.sidecar_image,
            "build-sidecar-image",
            "Build sidecar image",
        ),
        build(&spec.agent_image, "build-agent-image", "Build agent image"),
        network(
            "create-internal-network",
            "Create internal (host-only) network",
            &internal,
            Role::Internal,
            true,
        ),
        network(
            "create-egress-network",
            "Create egress (NAT) network",
            &egress,
            Role::Egress,
            false,
        ),
        Step {
            undo: Some(s(&[c, "delete", "--force", &sidecar])),
            ..step(
                "run-sidecar",
                "Start sidecar on egress, then internal network",
                run_sidecar,
                &[
                    "build-sidecar-image",
                    "create-internal-network",
                    "create-egress-network",
                ],
            )
        },
        Step {
            retry: Some(Retry {
                attempts: 50,
                delay_ms: 200,
            }),
            ..step(
                "wait-sidecar-healthy",
                "Wait for the sidecar proxy to answer",
                health,
                &["run-sidecar"],
            )
        },
        Step {
            retry: Some(Retry {
                attempts: 20,
                delay_ms: 250,
            }),
            capture: Some(Capture::AppleNetworkIp {
                network: internal.clone(),
                placeholder: SIDECAR_IP.into(),
            }),
            ..step(
                "discover-sidecar-ip",
                "Read the sidecar's internal IP",
                s(&[c, "inspect", &sidecar]),
                &["run-sidecar"],
            )
        },
        Step {
            undo: Some(s(&[c, "delete", "--force", &agent])),
            ..step(
                "run-agent",
                "Start agent on the internal network",
                run_agent,
                &[
                    "build-agent-image",
                    "wait-sidecar-healthy",
                    "discover-sidecar-ip",
                ],
            )
        },
    ];
    Plan {
        bottle: b.to_string(),
        backend: spec.backend,
        steps,
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
    let ver = rest.split_whitespace().next()?;
    let mut parts = ver.split('.').map(|p| p.parse::<u64>().ok());
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
