//! `system`, `builder`, `build` and `image`: the service, the image builder
//! (emulated: its DNS is what Bottlebar's plan cares about) and images
//! (built by Docker under Apple's normalised references).

use super::args::{flag, parse, value};
use super::engine::{docker, docker_json, service_stopped, state_dir};
use super::output::{compact, iso, pretty};
use super::{Failure, Out, Version};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

pub fn system(args: &[String], v: Version) -> Out {
    let Some((sub, rest)) = args.split_first() else {
        return Err(Failure::usage("Missing expected argument '<subcommand>'"));
    };
    match sub.as_str() {
        "status" => {
            let p = parse(
                rest,
                &[value("format", None), value("prefix", Some('p'))],
                false,
            )?;
            let running = !service_stopped();
            if p.one("format").as_deref() == Some("json") {
                let s = |x: &str| {
                    if running {
                        x.to_string()
                    } else {
                        String::new()
                    }
                };
                println!(
                    "{}",
                    compact(&json!({
                        "apiServerAppName": s("container-apiserver"), "apiServerBuild": s("release"), "apiServerCommit": s("d0b1e55"),
                        "apiServerVersion": s(&format!("container-apiserver version {} (build: release, commit: d0b1e55)", v.text())),
                        "appRoot": s("/Users/test/Library/Application Support/com.apple.container"), "installRoot": s("/usr/local"),
                        "status": if running { "running" } else { "not running" },
                    }))
                );
            } else {
                println!(
                    "FIELD   VALUE\nstatus  {}",
                    if running { "running" } else { "not running" }
                );
            }
            Ok(if running { 0 } else { 1 })
        }
        "start" => {
            let p = parse(
                rest,
                &[
                    flag("enable-kernel-install", None),
                    flag("disable-kernel-install", None),
                    value("timeout", None),
                    value("app-root", Some('a')),
                    value("install-root", None),
                    value("log-root", None),
                ],
                false,
            )?;
            if !p.has("enable-kernel-install") && !p.has("disable-kernel-install") {
                // The real CLI prompts on stdout and reads stdin; with none, it fails.
                print!("Install the recommended default kernel from [https://example.invalid/kernel]? [Y/n]: ");
                return Err(Failure::failed("failed to read user input"));
            }
            std::fs::write(state_dir().join("service-started"), b"")
                .map_err(|e| Failure::failed(e.to_string()))?;
            Ok(0)
        }
        other => Err(Failure::usage(format!("Unexpected argument '{other}'"))),
    }
}

fn builder_file() -> PathBuf {
    state_dir().join("builder.json")
}

/// The emulated builder: `{ "dns": [...], "running": bool }`, or absent.
fn builder_state() -> Option<Value> {
    serde_json::from_slice(&std::fs::read(builder_file()).ok()?).ok()
}

fn set_builder(dns: &[String], running: bool) {
    let _ = std::fs::write(
        builder_file(),
        json!({ "dns": dns, "running": running }).to_string(),
    );
}

/// Starts (or reconciles) the builder: one that differs in DNS is recreated.
fn builder_start(dns: &[String]) {
    set_builder(dns, true);
}

pub fn builder_json() -> Value {
    match builder_state() {
        None => json!([]),
        Some(b) => json!([{
            "configuration": {
                "dns": { "nameservers": b["dns"], "options": [], "searchDomains": [] },
                "id": "buildkit", "labels": {},
                "image": { "reference": "ghcr.io/apple/container-builder-shim/builder:0.6.1" },
            },
            "id": "buildkit",
            "status": { "networks": [], "state": if b["running"] == true { "running" } else { "stopped" } },
        }]),
    }
}

pub fn builder(args: &[String], _v: Version) -> Out {
    let Some((sub, rest)) = args.split_first() else {
        return Err(Failure::usage("Missing expected argument '<subcommand>'"));
    };
    match sub.as_str() {
        "start" => {
            let p = parse(
                rest,
                &[
                    value("dns", None),
                    value("dns-domain", None),
                    value("dns-option", None),
                    value("dns-search", None),
                    value("cpus", Some('c')),
                    value("memory", Some('m')),
                ],
                false,
            )?;
            builder_start(&p.all("dns"));
            Ok(0)
        }
        "stop" => {
            parse(rest, &[], false)?;
            if let Some(b) = builder_state() {
                set_builder(
                    &serde_json::from_value::<Vec<String>>(b["dns"].clone()).unwrap_or_default(),
                    false,
                );
            }
            Ok(0)
        }
        "delete" | "rm" => {
            let p = parse(rest, &[flag("force", Some('f'))], false)?;
            if let Some(b) = builder_state() {
                if b["running"] == true && !p.has("force") {
                    return Err(Failure::failed(
                        "BuildKit container is not stopped, use --force to override",
                    ));
                }
                let _ = std::fs::remove_file(builder_file());
            }
            Ok(0)
        }
        "status" => {
            let p = parse(
                rest,
                &[value("format", None), flag("quiet", Some('q'))],
                false,
            )?;
            if p.one("format").as_deref() == Some("json") {
                println!("{}", compact(&builder_json()));
            } else if builder_state().is_none() {
                println!("builder is not running");
            } else {
                println!(
                    "ID        STATE\nbuildkit  {}",
                    builder_json()[0]["status"]["state"].as_str().unwrap_or("")
                );
            }
            Ok(0)
        }
        other => Err(Failure::usage(format!("Unexpected argument '{other}'"))),
    }
}

pub fn build(args: &[String], v: Version) -> Out {
    let opts = [
        value("tag", Some('t')),
        value("file", Some('f')),
        value("label", Some('l')),
        value("build-arg", None),
        flag("no-cache", None),
        flag("pull", None),
        value("target", None),
        flag("quiet", Some('q')),
        value("progress", None),
        value("dns", None),
        value("cpus", Some('c')),
        value("memory", Some('m')),
        value("platform", None),
        value("arch", Some('a')),
        value("os", None),
        value("output", Some('o')),
    ];
    let p = parse(args, &opts, false)?;
    super::not_emulated(&p, &["platform", "arch", "os", "output", "pull"])?;
    let context = p.positionals.first().cloned().unwrap_or_else(|| ".".into());
    if !Path::new(&context).is_dir() {
        return Err(Failure::usage(format!(
            "context dir does not exist {context}"
        )));
    }
    let file = p
        .one("file")
        .unwrap_or_else(|| format!("{context}/Dockerfile"));
    if !Path::new(&file).is_file() {
        return Err(Failure::usage(format!("dockerfile does not exist {file}")));
    }
    // Builder DNS: since 1.2.1 `build` reconciles the builder with its own
    // `--dns`; before, `--dns` only counts when no builder is running (#402).
    let dns = p.all("dns");
    let running = builder_state().is_some_and(|b| b["running"] == true);
    if v >= Version(1, 2, 1) || !running {
        builder_start(&dns);
    }
    let tags = p.all("tag");
    let mut argv: Vec<String> = vec!["build".into(), "--quiet".into(), "--file".into(), file];
    for t in &tags {
        argv.extend(["--tag".into(), t.clone()]);
    }
    for l in p.all("label") {
        argv.extend(["--label".into(), l]);
    }
    for a in p.all("build-arg") {
        argv.extend(["--build-arg".into(), a]);
    }
    if p.has("no-cache") {
        argv.push("--no-cache".into());
    }
    if let Some(t) = p.one("target") {
        argv.extend(["--target".into(), t]);
    }
    argv.push(context);
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    docker(&refs).map_err(|f| Failure::failed(format!("build failed: {}", f.message)))?;
    for t in tags {
        println!("{}", normalize_reference(&t));
    }
    Ok(0)
}

/// `Reference.parse(...).normalize()`: a bare name gets the docker.io registry and `:latest`.
pub fn normalize_reference(r: &str) -> String {
    let (name, tag) = match r.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((n, t)) => (n.to_string(), t.to_string()),
        None => (r.to_string(), "latest".into()),
    };
    let first = name.split('/').next().unwrap_or("");
    let name = if first.contains('.') || first.contains(':') || first == "localhost" {
        name
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    format!("{name}:{tag}")
}

pub fn image(args: &[String]) -> Out {
    let Some((sub, rest)) = args.split_first() else {
        return Err(Failure::usage("Missing expected argument '<subcommand>'"));
    };
    match sub.as_str() {
        "inspect" => {
            let p = parse(rest, &[], false)?;
            let mut out = Vec::new();
            for r in &p.positionals {
                let Some(img) =
                    docker_json(&["image", "inspect", r]).and_then(|v| v.get(0).cloned())
                else {
                    return Err(Failure::failed(format!(
                        "notFound: \"image {} not found\"",
                        normalize_reference(r)
                    )));
                };
                out.push(json!({
                    "id": img["Id"],
                    "configuration": { "name": normalize_reference(r), "creationDate": iso(img["Created"].as_str().unwrap_or("")), "descriptor": { "digest": img["Id"], "mediaType": "application/vnd.oci.image.index.v1+json", "size": img["Size"] } },
                    "variants": [{ "platform": { "architecture": img["Architecture"], "os": img["Os"] }, "digest": img["Id"], "size": img["Size"], "config": { "config": { "Labels": img["Config"]["Labels"], "Env": img["Config"]["Env"], "Cmd": img["Config"]["Cmd"] } } }],
                }));
            }
            println!("{}", pretty(&Value::Array(out)));
            Ok(0)
        }
        other => Err(Failure::usage(format!("Unexpected argument '{other}'"))),
    }
}
