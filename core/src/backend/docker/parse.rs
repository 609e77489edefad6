//! Parsing what the `docker` CLI prints: `inspect` of containers and
//! networks, `version`, `info`'s runtimes.

use crate::backend::{LiveContainer, LiveNetwork};
use crate::name::{Role, LABEL_BOTTLE, LABEL_HOME, LABEL_ROLE};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The runtime names in `docker info --format '{{json .Runtimes}}'` output.
pub fn parse_runtimes(json: &str) -> Result<Vec<String>, String> {
    let v: BTreeMap<String, serde_json::Value> = serde_json::from_str(json.trim())
        .map_err(|e| format!("unexpected runtimes list ({e}): {}", json.trim()))?;
    Ok(v.into_keys().collect())
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
            let gvisor = c
                .host_config
                .is_some_and(|h| h.runtime == super::GVISOR_RUNTIME);
            Some(LiveContainer {
                id: c.id,
                name: c.name.trim_start_matches('/').to_string(),
                bottle,
                role: labels.get(LABEL_ROLE).and_then(|r| Role::parse(r)),
                home: labels.get(LABEL_HOME).cloned(),
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
                home: labels.get(LABEL_HOME).cloned(),
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
