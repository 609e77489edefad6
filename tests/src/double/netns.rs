//! Each container's network, as Apple's runtime gives it: interfaces in
//! flag order (`eth0` is the first `--network`), only `eth0` with a default
//! route (via its network's gateway, host-only networks included: vmnet
//! gives the host the `.1` address), MTU 1280 unless `mtu=` says otherwise,
//! and IP forwarding off (a fresh VM kernel's default).
//!
//! Docker decides interface order itself and gives internal networks no
//! default route, so the double puts the network in a namespace holder: a
//! small container (the test kit, idling) that joins the networks, is
//! arranged with `ip` (through `nsenter`), and only then does the workload
//! start, joined to it (`--network container:HOLDER`). Nothing of the
//! workload runs before its network is Apple's.

use super::engine::{
    api, api_message, container_json, docker, docker_network, netns_ip, DOUBLE_LABEL,
};
use super::runspec::{gateway_of, Attachment, RunSpec};
use super::Failure;
use serde_json::{json, Value};

/// The holder's image: the static test kit, idling.
const HOLDER_IMAGE: &str = "bbdouble/netns:1";
/// On a holder: the ID of the container whose network it holds.
pub const HOLDER_LABEL: &str = "com.apple.container.double.holder";

/// The holder of container `id`'s network.
pub fn holder_name(id: &str) -> String {
    format!("bbdouble-netns-{id}")
}

fn holder_image() -> Result<&'static str, Failure> {
    if docker(&["image", "inspect", HOLDER_IMAGE]).is_ok() {
        return Ok(HOLDER_IMAGE);
    }
    let bin = std::env::var_os("BOTTLEBAR_TESTKIT_BIN").ok_or_else(|| {
        Failure::failed(
            "test double: set BOTTLEBAR_TESTKIT_BIN to the static test kit (scripts/lib.sh does)",
        )
    })?;
    let ctx = std::env::temp_dir().join(format!("bbdouble-netns-{}", std::process::id()));
    std::fs::create_dir_all(&ctx).map_err(|e| Failure::failed(e.to_string()))?;
    std::fs::copy(&bin, ctx.join("bottlebar-testkit"))
        .map_err(|e| Failure::failed(e.to_string()))?;
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY bottlebar-testkit /bottlebar-testkit\nENTRYPOINT [\"/bottlebar-testkit\", \"idle\"]\n",
    )
    .map_err(|e| Failure::failed(e.to_string()))?;
    let built = docker(&[
        "build",
        "-q",
        "--label",
        "bottlebar-test=1",
        "-t",
        HOLDER_IMAGE,
        &ctx.display().to_string(),
    ]);
    let _ = std::fs::remove_dir_all(&ctx);
    built.map(|_| HOLDER_IMAGE)
}

/// Creates the holder of `spec`'s network, attached to every network (not started).
pub fn create(spec: &RunSpec) -> Result<String, Failure> {
    let name = holder_name(&spec.id);
    let image = holder_image()?;
    let mut exposed = serde_json::Map::new();
    for port in spec.ports.as_object().into_iter().flat_map(|m| m.keys()) {
        exposed.insert(port.clone(), json!({}));
    }
    let first = spec.networks.first().map(|n| docker_network(&n.network));
    let body = json!({
        "Image": image,
        "Hostname": spec.id,
        "Labels": { HOLDER_LABEL: spec.id, DOUBLE_LABEL: "holder" },
        "ExposedPorts": exposed,
        "HostConfig": {
            "NetworkMode": first.clone().unwrap_or_else(|| "none".into()),
            "PortBindings": spec.ports,
            "Sysctls": { "net.ipv4.ip_forward": "0" },
            "CapDrop": ["ALL"],
            "Memory": 16 << 20,
        },
    });
    let (status, v) = api(
        "POST",
        &format!("/containers/create?name={name}"),
        Some(&body),
    )?;
    if status >= 300 {
        return Err(Failure::failed(format!(
            "internalError: \"creating the network of {}: {}\"",
            spec.id,
            api_message(&v)
        )));
    }
    for n in spec.networks.iter().skip(1) {
        let (status, v) = api(
            "POST",
            &format!("/networks/{}/connect", docker_network(&n.network)),
            Some(&json!({ "Container": name })),
        )?;
        if status >= 300 {
            remove(&spec.id);
            return Err(Failure::failed(format!(
                "internalError: \"attaching {} to {}: {}\"",
                spec.id,
                n.network,
                api_message(&v)
            )));
        }
    }
    Ok(name)
}

/// Starts the holder of container `id` and arranges its interfaces as
/// Apple's runtime would (`attachments` in flag order).
pub fn start(id: &str, attachments: &[Attachment]) -> Result<(), Failure> {
    let name = holder_name(id);
    let running = container_json(&name).is_some_and(|c| c["State"]["Running"] == true);
    if !running {
        let (status, v) = api("POST", &format!("/containers/{name}/start"), None)?;
        if status >= 300 && status != 304 {
            return Err(Failure::failed(format!(
                "internalError: \"starting the network of {id}: {}\"",
                api_message(&v)
            )));
        }
    }
    arrange(&name, attachments)
}

/// The interface names in the holder's namespace, by MAC address.
fn links(pid: u64) -> Result<Vec<(String, String)>, Failure> {
    let out = netns_ip(pid, &["-o", "link"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let name = l.split(": ").nth(1)?.split('@').next()?.to_string();
            let mac = l
                .split("link/ether ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_string();
            Some((mac, name))
        })
        .collect())
}

fn arrange(holder: &str, attachments: &[Attachment]) -> Result<(), Failure> {
    if attachments.is_empty() {
        return Ok(());
    }
    let c = container_json(holder)
        .ok_or_else(|| Failure::failed(format!("internalError: \"{holder} is gone\"")))?;
    let pid = c["State"]["Pid"].as_u64().unwrap_or(0);
    let present = links(pid)?;
    let mut current: Vec<String> = Vec::new();
    for a in attachments {
        let mac = c["NetworkSettings"]["Networks"][docker_network(&a.network)]["MacAddress"]
            .as_str()
            .unwrap_or("")
            .to_ascii_lowercase();
        let name = present
            .iter()
            .find(|(m, _)| *m == mac)
            .map(|(_, n)| n.clone())
            .ok_or_else(|| {
                Failure::failed(format!("internalError: \"no interface for {}\"", a.network))
            })?;
        current.push(name);
    }
    // Names in flag order: eth0 is the first network.
    for (i, name) in current.iter().enumerate() {
        netns_ip(pid, &["link", "set", name, "down"])?;
        netns_ip(pid, &["link", "set", name, "name", &format!("bbtmp{i}")])?;
    }
    for (i, a) in attachments.iter().enumerate() {
        let (tmp, eth) = (format!("bbtmp{i}"), format!("eth{i}"));
        netns_ip(pid, &["link", "set", &tmp, "name", &eth])?;
        netns_ip(pid, &["link", "set", &eth, "mtu", &a.mtu.to_string()])?;
        if let Some(mac) = &a.mac {
            netns_ip(pid, &["link", "set", &eth, "address", mac])?;
        }
        netns_ip(pid, &["link", "set", &eth, "up"])?;
    }
    // One default route, through the first network's gateway.
    while netns_ip(pid, &["route", "del", "default"]).is_ok() {}
    if let Some(gw) = gateway_of(&attachments[0].network) {
        netns_ip(pid, &["route", "add", "default", "via", &gw, "dev", "eth0"])?;
    }
    Ok(())
}

/// Stops the holder of container `id` (its addresses are released, as on stop).
pub fn stop(id: &str) {
    let _ = api(
        "POST",
        &format!("/containers/{}/stop?t=0", holder_name(id)),
        None,
    );
}

/// Removes the holder of container `id`.
pub fn remove(id: &str) {
    let _ = api(
        "DELETE",
        &format!("/containers/{}?force=true", holder_name(id)),
        None,
    );
}

/// The holder's view (networks and addresses) of container `id`.
pub fn view(id: &str) -> Option<Value> {
    container_json(&holder_name(id))
}

/// Removes running holders whose container is gone (a `--rm` container
/// that exited on its own), with their records. A holder being set up is
/// not running yet, so a concurrent launch is never disturbed.
pub fn collect_garbage() {
    let Ok(out) = docker(&[
        "ps",
        "--filter",
        &format!("label={HOLDER_LABEL}"),
        "--filter",
        "status=running",
        "--format",
        &format!("{{{{.Label \"{HOLDER_LABEL}\"}}}}"),
    ]) else {
        return;
    };
    for id in out.lines().filter(|l| !l.is_empty()) {
        if container_json(id).is_none() {
            remove(id);
            super::runspec::forget(id);
        }
    }
}
