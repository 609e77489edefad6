//! Docker Engine, through the `docker` CLI.
//!
//! Topology: an `--internal` network for the agent and a NAT bridge for egress.
//! The sidecar is created on the egress network (so that network gives it its
//! default route), connected to the internal one, and only then started: the
//! Debian 20.10 CLI cannot take two `--network` flags on `run`.

use super::{LiveContainer, LiveNetwork};
use crate::launch::{
    self, agent_env, agent_mounts, env_arg, label_args, sidecar_mounts, LaunchSpec,
};
use crate::name::{Role, LABEL_BOTTLE, LABEL_CONTENT_HASH, LABEL_ROLE};
use crate::plan::{Capture, Plan, Probe, ProbeCheck, Retry, Step, SIDECAR_IP};
use serde::Deserialize;
use std::collections::BTreeMap;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The launch plan on Docker.
pub fn plan(spec: &LaunchSpec) -> Plan {
    let d = spec.engine.as_str();
    let b = &spec.bottle;
    let internal = b.resource(Role::Internal);
    let egress = b.resource(Role::Egress);
    let sidecar = b.resource(Role::Sidecar);
    let agent = b.resource(Role::Agent);

    let build = |img: &crate::images::ImageSpec, id: &str, title: &str| {
        let mut argv = s(&[d, "build", "--quiet", "--tag", &img.tag]);
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
            undo: None, // images are a cache shared by later launches, not launch state
            skip_if: Some(Probe {
                argv: s(&[
                    d,
                    "image",
                    "inspect",
                    "--format",
                    &format!("{{{{ index .Config.Labels \"{LABEL_CONTENT_HASH}\" }}}}"),
                    &img.tag,
                ]),
                check: ProbeCheck::StdoutEquals {
                    value: img.content_hash.clone(),
                },
            }),
            retry: None,
            capture: None,
        }
    };
    let network = |id: &str, title: &str, name: &str, role: Role, internal_only: bool| {
        let mut argv = s(&[d, "network", "create"]);
        if let Some((internal, egress)) = &spec.subnets {
            argv.extend(s(&[
                "--subnet",
                if internal_only { internal } else { egress },
            ]));
        }
        if internal_only {
            // No route out, and no host address on the bridge: without its
            // IPv4 address the host is not the agent's gateway, so host
            // services (even ones bound to 0.0.0.0) are out of reach.
            argv.extend(s(&[
                "--internal",
                "--opt",
                "com.docker.network.bridge.inhibit_ipv4=true",
            ]));
        }
        argv.extend(label_args(b, role));
        argv.push(name.into());
        Step {
            id: id.into(),
            title: title.into(),
            argv,
            after: vec![],
            undo: Some(s(&[d, "network", "rm", name])),
            skip_if: None,
            retry: None,
            capture: None,
        }
    };
    let simple = |id: &str, title: &str, argv: Vec<String>, after: &[&str]| Step {
        id: id.into(),
        title: title.into(),
        argv,
        after: s(after),
        undo: None,
        skip_if: None,
        retry: None,
        capture: None,
    };

    let mut create_sidecar = s(&[d, "create", "--name", &sidecar]);
    create_sidecar.extend(label_args(b, Role::Sidecar));
    create_sidecar.extend(s(&["--network", &egress]));
    create_sidecar.extend(sidecar_confinement(spec));
    for ns in &spec.dns {
        create_sidecar.extend(s(&["--dns", ns]));
    }
    for m in sidecar_mounts(spec) {
        create_sidecar.extend(["--mount".into(), m.mount_arg()]);
    }
    create_sidecar.push(spec.sidecar_image.tag.clone());
    create_sidecar.extend(launch::sidecar_serve_argv());

    let mut health = s(&[d, "exec", &sidecar]);
    health.extend(launch::sidecar_health_argv());

    let mut run_agent = s(&[d, "run", "--detach", "--name", &agent]);
    run_agent.extend(label_args(b, Role::Agent));
    run_agent.extend(s(&["--network", &internal, "--init"]));
    run_agent.extend(agent_confinement(spec));
    run_agent.extend(launch::agent_dns_args());
    if let Some(c) = spec.resources.cpus {
        run_agent.extend(["--cpus".into(), c.to_string()]);
    }
    if let Some(m) = spec.resources.memory_mib {
        run_agent.extend(["--memory".into(), format!("{m}m")]);
    }
    for e in agent_env(spec) {
        run_agent.extend(["--env".into(), env_arg(&e)]);
    }
    for m in agent_mounts(spec) {
        run_agent.extend(["--mount".into(), m.mount_arg()]);
    }
    run_agent.push(spec.agent_image.tag.clone());
    run_agent.extend(launch::agent_keepalive_command());

    let steps = vec![
        build(
            &spec.sidecar_image,
            "build-sidecar-image",
            "Build sidecar image",
        ),
        build(&spec.agent_image, "build-agent-image", "Build agent image"),
        network(
            "create-internal-network",
            "Create internal network",
            &internal,
            Role::Internal,
            true,
        ),
        network(
            "create-egress-network",
            "Create egress network",
            &egress,
            Role::Egress,
            false,
        ),
        Step {
            undo: Some(s(&[d, "rm", "--force", &sidecar])),
            ..simple(
                "create-sidecar",
                "Create sidecar on the egress network",
                create_sidecar,
                &[
                    "build-sidecar-image",
                    "create-internal-network",
                    "create-egress-network",
                ],
            )
        },
        simple(
            "connect-sidecar-internal",
            "Attach sidecar to the internal network",
            s(&[d, "network", "connect", &internal, &sidecar]),
            &["create-sidecar"],
        ),
        simple(
            "start-sidecar",
            "Start sidecar",
            s(&[d, "start", &sidecar]),
            &["connect-sidecar-internal"],
        ),
        Step {
            retry: Some(Retry {
                attempts: 50,
                delay_ms: 200,
            }),
            ..simple(
                "wait-sidecar-healthy",
                "Wait for the sidecar proxy to answer",
                health,
                &["start-sidecar"],
            )
        },
        Step {
            retry: Some(Retry {
                attempts: 20,
                delay_ms: 250,
            }),
            capture: Some(Capture::DockerNetworkIp {
                network: internal.clone(),
                placeholder: SIDECAR_IP.into(),
            }),
            ..simple(
                "discover-sidecar-ip",
                "Read the sidecar's internal IP",
                s(&[d, "inspect", &sidecar]),
                &["start-sidecar"],
            )
        },
        Step {
            undo: Some(s(&[d, "rm", "--force", &agent])),
            ..simple(
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

/// The agent's confinement: only the capabilities it needs (no `NET_RAW`),
/// no privilege gain through setuid binaries, a process limit, and gVisor
/// when asked for.
fn agent_confinement(spec: &LaunchSpec) -> Vec<String> {
    let mut v = s(&["--cap-drop", "ALL"]);
    for c in launch::AGENT_CAPABILITIES {
        v.extend(s(&["--cap-add", c]));
    }
    v.extend(s(&["--security-opt", "no-new-privileges"]));
    v.extend(["--pids-limit".into(), launch::AGENT_PIDS_LIMIT.to_string()]);
    if spec.gvisor {
        v.extend(s(&["--runtime", GVISOR_RUNTIME]));
    }
    v
}

/// The sidecar's confinement: no capabilities, a read-only root, a
/// non-root user, limits, and IP forwarding off in its namespace (which
/// would otherwise inherit the host's), so a frame addressed to it is
/// never routed onto the egress network.
fn sidecar_confinement(spec: &LaunchSpec) -> Vec<String> {
    let (uid, gid) = spec.sidecar_user;
    let mut v = s(&[
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
    ]);
    v.extend(["--user".into(), format!("{uid}:{gid}")]);
    v.extend([
        "--pids-limit".into(),
        launch::SIDECAR_PIDS_LIMIT.to_string(),
    ]);
    v.extend([
        "--memory".into(),
        format!("{}m", launch::SIDECAR_MEMORY_MIB),
    ]);
    v.extend([
        "--ulimit".into(),
        format!("nofile={0}:{0}", launch::SIDECAR_NOFILE),
    ]);
    v.extend(s(&["--sysctl", "net.ipv4.ip_forward=0"]));
    v
}

/// The isolation probe: a short-lived container from the sidecar's image,
/// joined to the agent's network namespace. The agent can neither replace
/// it (its image is not the agent's to write) nor trace it (another
/// container); it has no capabilities and runs as nobody.
pub fn probe_argv(
    engine: &str,
    agent: &str,
    sidecar_image: &str,
    targets_json: &str,
) -> Vec<String> {
    let mut v = s(&[
        engine,
        "run",
        "--rm",
        "--network",
        &format!("container:{agent}"),
    ]);
    v.extend(s(&[
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
    ]));
    v.extend(["--user".into(), format!("{0}:{0}", launch::PROBE_USER)]);
    v.extend(s(&["--pids-limit", "64", "--memory", "64m", sidecar_image]));
    v.extend(launch::probe_command(targets_json));
    v
}

/// The probe for an agent under gVisor, whose network stack lives in its
/// sandbox (a runc container joined to its namespace would see none of
/// it): a sibling on the agent's network, under gVisor too, configured as
/// the agent is (the sidecar its only nameserver).
pub fn probe_beside_argv(
    engine: &str,
    internal_network: &str,
    sidecar_ip: &str,
    sidecar_image: &str,
    targets_json: &str,
) -> Vec<String> {
    let mut v = s(&[engine, "run", "--rm", "--runtime", GVISOR_RUNTIME]);
    v.extend(s(&["--network", internal_network, "--dns", sidecar_ip]));
    v.extend(s(&[
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--read-only",
    ]));
    v.extend(["--user".into(), format!("{0}:{0}", launch::PROBE_USER)]);
    v.extend(s(&["--pids-limit", "64", "--memory", "64m", sidecar_image]));
    v.extend(launch::probe_command(targets_json));
    v
}

/// Docker's name for gVisor's runtime.
pub const GVISOR_RUNTIME: &str = "runsc";

/// `docker info` asking for the registered runtimes.
pub fn runtimes_argv(engine: &str) -> Vec<String> {
    s(&[engine, "info", "--format", "{{json .Runtimes}}"])
}

/// The runtime names in `docker info --format '{{json .Runtimes}}'` output.
pub fn parse_runtimes(json: &str) -> Result<Vec<String>, String> {
    let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(json.trim())
        .map_err(|e| format!("unexpected runtimes list ({e}): {}", json.trim()))?;
    Ok(v.into_keys().collect())
}

/// `docker exec -i SIDECAR bottlebar-sidecar reload`, fed the rules on stdin.
pub fn reload_argv(engine: &str, sidecar: &str) -> Vec<String> {
    let mut v = s(&[engine, "exec", "-i", sidecar]);
    v.extend(launch::sidecar_reload_argv());
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    host_config: Option<HostConfig>,
    #[serde(default)]
    config: Option<InspectConfig>,
    #[serde(default)]
    state: Option<InspectState>,
    network_settings: Option<NetworkSettings>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    image: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct HostConfig {
    #[serde(default)]
    runtime: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct InspectState {
    #[serde(default)]
    status: String,
    #[serde(default)]
    running: bool,
    #[serde(default)]
    started_at: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    #[serde(default)]
    networks: Option<BTreeMap<String, Endpoint>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Endpoint {
    #[serde(rename = "IPAddress", default)]
    ip_address: String,
}

/// Every IPv4 subnet of every Docker network, from `docker network inspect`.
pub fn parse_subnets(inspect_json: &str) -> Result<Vec<crate::subnets::Net>, String> {
    #[derive(Deserialize)]
    struct Network {
        #[serde(rename = "IPAM", default)]
        ipam: Option<Ipam>,
    }
    #[derive(Deserialize)]
    struct Ipam {
        #[serde(rename = "Config", default)]
        config: Option<Vec<IpamConfig>>,
    }
    #[derive(Deserialize)]
    struct IpamConfig {
        #[serde(rename = "Subnet", default)]
        subnet: String,
    }
    let parsed: Vec<Network> = serde_json::from_str(inspect_json)
        .map_err(|e| format!("unexpected `docker network inspect` output: {e}"))?;
    Ok(parsed
        .into_iter()
        .filter_map(|n| n.ipam?.config)
        .flatten()
        .filter_map(|c| crate::subnets::Net::parse(&c.subnet))
        .collect())
}

/// The container's IPv4 address on `network` from `docker inspect` output.
pub fn container_ip(inspect_json: &str, network: &str) -> Result<String, String> {
    let parsed: Vec<Inspect> = serde_json::from_str(inspect_json)
        .map_err(|e| format!("unexpected `docker inspect` output: {e}"))?;
    let first = parsed
        .first()
        .ok_or("`docker inspect` returned no container")?;
    let ip = first
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| n.get(network))
        .map(|e| e.ip_address.clone())
        .unwrap_or_default();
    if ip.is_empty() || ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!(
            "the container has no address on network `{network}` yet"
        ));
    }
    Ok(ip)
}

/// Containers from `docker inspect` output (only those labelled by Bottlebar).
pub fn parse_containers(inspect_json: &str) -> Result<Vec<LiveContainer>, String> {
    let parsed: Vec<Inspect> = serde_json::from_str(inspect_json)
        .map_err(|e| format!("unexpected `docker inspect` output: {e}"))?;
    Ok(parsed
        .into_iter()
        .filter_map(|c| {
            let config = c.config.unwrap_or_default();
            let labels = config.labels.unwrap_or_default();
            let bottle = labels.get(LABEL_BOTTLE)?.clone();
            let state = c.state.unwrap_or_default();
            let gvisor = c.host_config.is_some_and(|h| h.runtime == GVISOR_RUNTIME);
            Some(LiveContainer {
                id: c.id,
                name: c.name.trim_start_matches('/').to_string(),
                bottle,
                role: labels.get(LABEL_ROLE).and_then(|r| Role::parse(r)),
                running: state.running,
                status: state.status,
                started_at: (!state.started_at.starts_with("0001-"))
                    .then_some(state.started_at)
                    .filter(|s| !s.is_empty()),
                command: config.cmd.unwrap_or_default(),
                image: config.image,
                networks: c
                    .network_settings
                    .and_then(|n| n.networks)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.ip_address))
                    .collect(),
                gvisor,
            })
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkInspect {
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    containers: Option<BTreeMap<String, AttachedContainer>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttachedContainer {
    #[serde(default)]
    name: String,
}

/// Networks from `docker network inspect` output (only those labelled by Bottlebar).
pub fn parse_networks(inspect_json: &str) -> Result<Vec<LiveNetwork>, String> {
    let parsed: Vec<NetworkInspect> = serde_json::from_str(inspect_json)
        .map_err(|e| format!("unexpected `docker network inspect` output: {e}"))?;
    Ok(parsed
        .into_iter()
        .filter_map(|n| {
            let labels = n.labels.unwrap_or_default();
            Some(LiveNetwork {
                bottle: labels.get(LABEL_BOTTLE)?.clone(),
                role: labels.get(LABEL_ROLE).and_then(|r| Role::parse(r)),
                name: n.name,
                id: n.id,
                internal: n.internal,
                attached: n
                    .containers
                    .unwrap_or_default()
                    .into_values()
                    .map(|c| c.name)
                    .filter(|n| !n.is_empty())
                    .collect(),
            })
        })
        .collect())
}

/// The commands that list labelled resources: (ids of containers, ids of networks).
pub fn list_argv(engine: &str) -> (Vec<String>, Vec<String>) {
    let filter = format!("label={LABEL_BOTTLE}");
    (
        s(&[
            engine,
            "ps",
            "--all",
            "--quiet",
            "--no-trunc",
            "--filter",
            &filter,
        ]),
        s(&[
            engine,
            "network",
            "ls",
            "--quiet",
            "--no-trunc",
            "--filter",
            &filter,
        ]),
    )
}

pub fn inspect_argv(engine: &str, ids: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "inspect", "--type", "container"]);
    v.extend(ids.iter().cloned());
    v
}

pub fn network_inspect_argv(engine: &str, ids: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "network", "inspect"]);
    v.extend(ids.iter().cloned());
    v
}

pub fn remove_containers_argv(engine: &str, names: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "rm", "--force"]);
    v.extend(names.iter().cloned());
    v
}

/// Detaches a container from a network even if it is not Bottlebar's.
pub fn disconnect_argv(engine: &str, network: &str, container: &str) -> Vec<String> {
    s(&[
        engine,
        "network",
        "disconnect",
        "--force",
        network,
        container,
    ])
}

pub fn remove_networks_argv(engine: &str, names: &[String]) -> Vec<String> {
    let mut v = s(&[engine, "network", "rm"]);
    v.extend(names.iter().cloned());
    v
}

/// Parses `docker version --format '{{json .}}'`: (client version, server version).
pub fn parse_version(json: &str) -> (Option<String>, Option<String>) {
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_default();
    let get = |k: &str| {
        v.get(k)
            .and_then(|x| x.get("Version"))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    (get("Client"), get("Server"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_is_read_from_the_named_network() {
        let json = r#"[{"NetworkSettings":{"Networks":{"a":{"IPAddress":"172.18.0.2"},"b":{"IPAddress":"172.19.0.3"}}}}]"#;
        assert_eq!(container_ip(json, "b").unwrap(), "172.19.0.3");
        assert!(container_ip(json, "c")
            .unwrap_err()
            .contains("no address on network `c`"));
        assert!(container_ip(
            r#"[{"NetworkSettings":{"Networks":{"b":{"IPAddress":""}}}}]"#,
            "b"
        )
        .is_err());
        assert!(container_ip("not json", "b")
            .unwrap_err()
            .contains("unexpected"));
        assert!(container_ip("[]", "b").is_err());
    }

    #[test]
    fn containers_without_our_label_are_ignored() {
        let json = r#"[
          {"Id":"1","Name":"/bottlebar-x-agent","Config":{"Labels":{"bottlebar.bottle":"x","bottlebar.role":"agent"},"Cmd":["sleep","2147483647"],"Image":"i"},
           "State":{"Status":"running","Running":true,"StartedAt":"2026-11-26T10:00:00.123Z"},
           "NetworkSettings":{"Networks":{"bottlebar-x-internal":{"IPAddress":"10.0.0.3"}}}},
          {"Id":"2","Name":"/other","Config":{"Labels":null},"State":{"Running":true},"NetworkSettings":{"Networks":{}}}
        ]"#;
        let c = parse_containers(json).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].name, "bottlebar-x-agent");
        assert_eq!(c[0].role, Some(Role::Agent));
        assert_eq!(c[0].command, vec!["sleep", "2147483647"]);
        assert_eq!(c[0].networks["bottlebar-x-internal"], "10.0.0.3");
    }

    #[test]
    fn version_parsing_tolerates_a_missing_server() {
        assert_eq!(
            parse_version(r#"{"Client":{"Version":"28.2.2"},"Server":null}"#),
            (Some("28.2.2".into()), None)
        );
        assert_eq!(
            parse_version(
                r#"{"Client":{"Version":"20.10.24"},"Server":{"Version":"20.10.24+dfsg1"}}"#
            )
            .1
            .as_deref(),
            Some("20.10.24+dfsg1")
        );
        assert_eq!(parse_version("garbage"), (None, None));
    }
}
