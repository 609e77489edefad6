//! `network`: NAT and host-only networks as Docker bridges (host-only is
//! Docker's `--internal`, where the host keeps its `.1` address, as vmnet's
//! host mode gives it), the builtin `default` network, and Apple's refusals.

use super::args::{flag, parse, value};
use super::engine::{apple_network, docker, docker_json, docker_network, network_json, MODE_LABEL};
use super::output::{compact, iso, pretty};
use super::server;
use super::{Failure, Out, Version};
use serde_json::{json, Map, Value};

const NETWORK_NAME_PATTERN: &str = "^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$";
/// The builtin network's label, as `container system start` sets it.
const BUILTIN_LABEL: &str = "com.apple.container.resource.role=builtin";
/// The builtin network's usual subnet (config.toml `[network] subnet`).
const DEFAULT_SUBNET: &str = "192.168.64.0/24";

fn valid_network_name(n: &str) -> bool {
    let b = n.as_bytes();
    !n.is_empty()
        && n.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

/// Makes sure the builtin `default` network exists (the service creates it
/// at start; the double on first use).
pub fn ensure_default() -> Result<(), Failure> {
    if network_json("default").is_some() {
        return Ok(());
    }
    // Many double processes run at once (tests run in parallel), and Docker
    // makes two networks of one name when asked at the same moment: one
    // process creates it, under a lock every double on this machine takes,
    // as the one service does on a Mac; the others then find it.
    let _creating = default_network_lock()?;
    if network_json("default").is_some() {
        return Ok(());
    }
    let name = docker_network("default");
    let mode = format!("{MODE_LABEL}=nat");
    let create = |subnet: &[&str]| {
        let mut argv = vec![
            "network",
            "create",
            "--label",
            &mode,
            "--label",
            BUILTIN_LABEL,
        ];
        argv.extend(subnet);
        argv.push(&name);
        docker(&argv)
    };
    // When the usual subnet is taken on this machine, Docker chooses.
    if create(&["--subnet", DEFAULT_SUBNET]).is_err() {
        create(&[])?;
    }
    Ok(())
}

/// The machine-wide lock held while the `default` network is created
/// (released when dropped). Docker's networks are the machine's, so the
/// lock is too, whatever state directory a double uses.
fn default_network_lock() -> Result<std::fs::File, Failure> {
    let path = std::env::temp_dir().join("bottlebar-container-double-default-network.lock");
    let file = std::fs::File::create(&path)
        .and_then(|f| f.lock().map(|()| f))
        .map_err(|e| Failure::failed(format!("locking {}: {e}", path.display())))?;
    Ok(file)
}

/// The 1.x network element for Docker's view of a network.
fn network_element(n: &Value) -> Value {
    let labels: Map<String, Value> = n["Labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("com.apple.container.double."))
        .collect();
    let mode = n["Labels"][MODE_LABEL]
        .as_str()
        .unwrap_or("nat")
        .to_string();
    let options: Map<String, Value> = n["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            k.strip_prefix("com.apple.container.double.option.")
                .map(|o| (o.to_string(), v.clone()))
        })
        .collect();
    let ipam = &n["IPAM"]["Config"][0];
    let name = apple_network(n["Name"].as_str().unwrap_or(""));
    json!({
        "configuration": { "creationDate": iso(n["Created"].as_str().unwrap_or("")), "labels": labels, "mode": mode, "name": name, "options": options, "plugin": "container-network-vmnet" },
        "id": name,
        "status": { "ipv4Gateway": ipam["Gateway"], "ipv4Subnet": ipam["Subnet"] },
    })
}

/// Every network the double made, sorted by ID.
fn all_networks() -> Vec<Value> {
    let names = docker(&[
        "network",
        "ls",
        "--format",
        "{{.Name}}",
        "--filter",
        &format!("label={MODE_LABEL}"),
    ])
    .unwrap_or_default();
    let mut list: Vec<Value> = names
        .lines()
        .filter_map(|n| docker_json(&["network", "inspect", n]).and_then(|v| v.get(0).cloned()))
        .map(|n| network_element(&n))
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    list
}

fn create(rest: &[String], v: Version) -> Out {
    let p = parse(
        rest,
        &[
            flag("internal", None),
            value("label", None),
            value("option", None),
            value("subnet", None),
            value("subnet-v6", None),
            value("plugin", None),
        ],
        false,
    )?;
    let [name] = p.positionals.as_slice() else {
        return Err(Failure::usage("Missing expected argument '<name>'"));
    };
    if p.has("option") && v < Version(1, 0, 0) {
        return Err(Failure::usage("Unknown option '--option'"));
    }
    if let Some(plugin) = p.one("plugin").filter(|p| p != "container-network-vmnet") {
        return Err(Failure::failed(format!("unknown network plugin {plugin}")));
    }
    if !valid_network_name(name) || name == "default" {
        return Err(Failure::failed(if name == "default" {
            "network default already exists".to_string()
        } else {
            format!("invalid network name {name}: must match {NETWORK_NAME_PATTERN}")
        }));
    }
    if network_json(name).is_some() {
        return Err(Failure::failed(format!("network {name} already exists")));
    }
    let mode = if p.has("internal") { "hostOnly" } else { "nat" };
    let mut argv = vec![
        "network".to_string(),
        "create".into(),
        "--label".into(),
        format!("{MODE_LABEL}={mode}"),
    ];
    if p.has("internal") {
        argv.push("--internal".into());
    }
    for l in p.all("label") {
        argv.extend(["--label".into(), l]);
    }
    for o in p.all("option") {
        let Some((k, val)) = o.split_once('=') else {
            return Err(Failure::usage(format!("invalid option format {o}")));
        };
        argv.extend([
            "--label".into(),
            format!("com.apple.container.double.option.{k}={val}"),
        ]);
    }
    let subnet = p.one("subnet");
    if let Some(s) = &subnet {
        argv.extend(["--subnet".into(), s.clone()]);
    }
    if let Some(s) = p.one("subnet-v6") {
        argv.extend(["--ipv6".into(), "--subnet".into(), s]);
    }
    argv.push(name.clone());
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    if let Err(f) = docker(&refs) {
        // Docker's "Pool overlaps" as Apple words it.
        if let (true, Some(s)) = (f.message.contains("overlaps"), &subnet) {
            let other = all_networks()
                .into_iter()
                .map(|n| n["status"]["ipv4Subnet"].as_str().unwrap_or("").to_string())
                .find(|o| !o.is_empty())
                .unwrap_or_default();
            return Err(Failure::failed(format!(
                "IPv4 subnet {s} overlaps an existing network with subnet {other}"
            )));
        }
        return Err(f);
    }
    println!("{name}");
    Ok(0)
}

/// `network delete`: refused whole when a name is missing; a network still
/// referenced by a container, running or stopped, is kept.
fn delete(rest: &[String]) -> Out {
    let p = parse(rest, &[flag("all", Some('a'))], false)?;
    let names: Vec<String> = if p.has("all") {
        all_networks()
            .into_iter()
            .filter_map(|n| n["id"].as_str().map(String::from))
            .filter(|n| n != "default")
            .collect()
    } else {
        p.positionals.clone()
    };
    if names.is_empty() && !p.has("all") {
        return Err(Failure::failed(
            "no networks specified and --all not supplied",
        ));
    }
    if names.iter().any(|n| n == "default") {
        return Err(Failure::failed("cannot delete a builtin network: default"));
    }
    let missing: Vec<String> = names
        .iter()
        .filter(|n| network_json(n).is_none())
        .map(|n| format!("\"{n}\""))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::failed(format!(
            "failed to delete one or more networks: [{}]",
            missing.join(", ")
        )));
    }
    let mut failed = Vec::new();
    for name in &names {
        let users = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("network={}", docker_network(name)),
        ])
        .unwrap_or_default();
        if !users.trim().is_empty() || docker(&["network", "rm", &docker_network(name)]).is_err() {
            eprintln!("failed to delete network {name}");
            failed.push(format!("\"{name}\""));
        } else {
            println!("{name}");
        }
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(Failure::failed(format!(
            "delete failed for one or more networks: [{}]",
            failed.join(", ")
        )))
    }
}

/// `network …`.
pub fn network(args: &[String], v: Version) -> Out {
    let Some((sub, rest)) = args.split_first() else {
        return Err(Failure::usage("Missing expected argument '<subcommand>'"));
    };
    ensure_default()?;
    match sub.as_str() {
        "create" => server::delegate().unwrap_or_else(|| create(rest, v)),
        "list" | "ls" => {
            let p = parse(
                rest,
                &[value("format", None), flag("quiet", Some('q'))],
                false,
            )?;
            let list = all_networks();
            match (p.has("quiet"), p.one("format").as_deref()) {
                (true, _) => list
                    .iter()
                    .for_each(|n| println!("{}", n["id"].as_str().unwrap_or(""))),
                (_, Some("json")) => println!("{}", compact(&Value::Array(list))),
                _ => {
                    println!("NETWORK  SUBNET");
                    for n in &list {
                        println!(
                            "{}  {}",
                            n["id"].as_str().unwrap_or(""),
                            n["status"]["ipv4Subnet"].as_str().unwrap_or("")
                        );
                    }
                }
            }
            Ok(0)
        }
        "inspect" => {
            let p = parse(rest, &[], false)?;
            let mut out = Vec::new();
            for name in &p.positionals {
                match network_json(name) {
                    Some(n) => out.push(network_element(&n)),
                    None => return Err(Failure::failed(format!("network not found: {name}"))),
                }
            }
            println!("{}", pretty(&Value::Array(out)));
            Ok(0)
        }
        "delete" | "rm" => server::delegate().unwrap_or_else(|| delete(rest)),
        other => Err(Failure::usage(format!("Unexpected argument '{other}'"))),
    }
}
