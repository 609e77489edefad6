//! `inspect` and `list`: Apple's `ManagedContainer` (1.x) or
//! `PrintableContainer` (≤0.12.3) for each container the double made — the
//! configuration it recorded, and the status as Docker sees it.

use super::args::{flag, parse, value};
use super::engine::{container_json, docker, docker_json, CONTAINER_LABEL};
use super::netns;
use super::output::{compact, iso, pretty};
use super::runspec::{load_record, Attachment, DEFAULT_MTU};
use super::system::builder_json;
use super::{Failure, Out, Version};
use serde_json::{json, Value};

/// The attachments a container was made with, from its record.
pub fn attachments(id: &str) -> Vec<Attachment> {
    load_record(id)
        .and_then(|r| r["networks"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|n| Attachment {
            network: n["network"].as_str().unwrap_or("").to_string(),
            mac: n["options"]["macAddress"].as_str().map(String::from),
            mtu: n["options"]["mtu"]
                .as_u64()
                .map(|m| m as u32)
                .unwrap_or(DEFAULT_MTU),
        })
        .collect()
}

/// A container the double made, or Apple's not-found error.
pub fn require(id: &str) -> Result<Value, Failure> {
    container_json(id)
        .filter(|c| !c["Config"]["Labels"][CONTAINER_LABEL].is_null())
        .ok_or_else(|| Failure::failed(format!("container not found: {id}")))
}

/// The 1.x `ManagedContainer`: the recorded configuration, and the status
/// as Docker sees it (addresses from the namespace holder, in flag order).
fn managed(c: &Value) -> Value {
    let id = c["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    let mut configuration = load_record(&id).unwrap_or_else(|| json!({ "id": id }));
    configuration["creationDate"] = json!(iso(c["Created"].as_str().unwrap_or("")));
    configuration["image"]["descriptor"]["digest"] = c["Image"].clone();
    let running = c["State"]["Running"] == true;
    let holder = netns::view(&id).unwrap_or_default();
    let attachments: Vec<Value> = if running {
        attachments(&id)
            .iter()
            .filter_map(|a| {
                let ep = &holder["NetworkSettings"]["Networks"][super::engine::docker_network(&a.network)];
                ep.is_object().then(|| {
                    json!({
                        "hostname": id, "ipv4Address": format!("{}/{}", ep["IPAddress"].as_str().unwrap_or(""), ep["IPPrefixLen"]),
                        "ipv4Gateway": ep["Gateway"], "macAddress": a.mac.clone().map(Value::from).unwrap_or_else(|| ep["MacAddress"].clone()),
                        "mtu": a.mtu, "network": a.network, "variant": "reserved",
                    })
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut status =
        json!({ "networks": attachments, "state": if running { "running" } else { "stopped" } });
    if running {
        status["startedDate"] = json!(iso(c["State"]["StartedAt"].as_str().unwrap_or("")));
    }
    json!({ "configuration": configuration, "id": id, "status": status })
}

/// The 0.x (≤0.12.3) `PrintableContainer`: status a string, networks at the top.
fn printable_0x(c: &Value) -> Value {
    let m = managed(c);
    json!({ "configuration": m["configuration"], "networks": m["status"]["networks"], "status": m["status"]["state"], "startedDate": 7.7e8 })
}

/// The double's containers (running only, unless `all`).
pub fn containers(all: bool) -> Vec<Value> {
    let filter = format!("label={CONTAINER_LABEL}");
    let mut argv = vec!["ps", "-q", "--no-trunc", "--filter", &filter];
    if all {
        argv.push("-a");
    }
    let ids = docker(&argv).unwrap_or_default();
    let ids: Vec<&str> = ids.lines().filter(|l| !l.is_empty()).collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["inspect", "--type", "container"];
    args.extend(ids);
    docker_json(&args)
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

pub fn container_id(c: &Value) -> String {
    c["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// `inspect ID…`.
pub fn inspect(args: &[String], v: Version) -> Out {
    let p = parse(args, &[], false)?;
    if p.positionals.is_empty() {
        return Err(Failure::usage(
            "Missing expected argument '<containers> ...'",
        ));
    }
    let found: Vec<(String, Option<Value>)> = p
        .positionals
        .iter()
        .map(|id| (id.clone(), require(id).ok()))
        .collect();
    if v < Version(1, 0, 0) {
        // 0.x: missing IDs are silently left out; compact output.
        let list: Vec<Value> = found
            .iter()
            .filter_map(|(_, c)| c.as_ref().map(printable_0x))
            .collect();
        println!("{}", serde_json::to_string(&list).unwrap());
        return Ok(0);
    }
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(id, _)| id.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Failure::failed(format!(
            "container not found: {}",
            missing.join(", ")
        )));
    }
    let list: Vec<Value> = found
        .iter()
        .filter_map(|(_, c)| c.as_ref().map(managed))
        .collect();
    println!("{}", pretty(&Value::Array(list)));
    Ok(0)
}

/// `list|ls [-a] [--format json|table] [-q]`.
pub fn list(args: &[String], v: Version) -> Out {
    let p = parse(
        args,
        &[
            flag("all", Some('a')),
            value("format", None),
            flag("quiet", Some('q')),
        ],
        false,
    )?;
    let shape = if v < Version(1, 0, 0) {
        printable_0x
    } else {
        managed
    };
    let mut list: Vec<Value> = containers(p.has("all")).iter().map(shape).collect();
    if let Some(b) = builder_json()
        .get(0)
        .filter(|b| p.has("all") || b["status"]["state"] == "running")
    {
        list.push(b.clone());
    }
    match (p.has("quiet"), p.one("format").as_deref()) {
        (true, _) => list
            .iter()
            .for_each(|c| println!("{}", c["id"].as_str().unwrap_or(""))),
        (_, Some("json")) => println!("{}", compact(&Value::Array(list))),
        (_, Some(other)) if other != "table" => {
            return Err(Failure::usage(format!(
                "The value '{other}' is invalid for '--format <format>'"
            )))
        }
        _ => {
            println!("ID  IMAGE  OS  ARCH  STATE  IP  CPUS  MEMORY  STARTED");
            for c in &list {
                let cfg = &c["configuration"];
                println!(
                    "{}  {}  linux  arm64  {}  {}  {}  {}",
                    c["id"].as_str().unwrap_or(""),
                    cfg["image"]["reference"].as_str().unwrap_or(""),
                    c["status"]["state"].as_str().unwrap_or(""),
                    c["status"]["networks"][0]["ipv4Address"]
                        .as_str()
                        .unwrap_or(""),
                    cfg["resources"]["cpus"],
                    cfg["resources"]["memoryInBytes"],
                );
            }
        }
    }
    Ok(0)
}
