//! A test double of Apple's `container` CLI (1.x, and 0.12.3 for the version
//! refusal), running real containers through the local Docker Engine.
//!
//! It follows `shared/reference/apple-container-cli.md`: the flags the
//! backend uses, strict parsing (exit 64, `Error: …`), failures with the real
//! CLI's texts (exit 1), the 1.x JSON shapes (inspect pretty-printed with
//! sorted keys, `" : "` and `\/`; `ls` compact), and the quirks that matter for
//! security: no `network connect`, no network aliases, `--internal` networks
//! are host-only (Docker `--internal`), single files cannot be bind-mounted.
//!
//! Environment: `BOTTLEBAR_DOUBLE_VERSION` (default 1.2.2),
//! `BOTTLEBAR_DOUBLE_STATE` (where the emulated builder and service state
//! live), `BOTTLEBAR_DOUBLE_SERVICE=stopped` (the service starts stopped).
//! Not shipped to users.

mod args;

use args::{flag, parse, value, Opt};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Label keys the double keeps on Docker objects for what Docker does not record.
const NETWORKS_LABEL: &str = "com.apple.container.double.networks";
const DNS_LABEL: &str = "com.apple.container.double.dns";
const MODE_LABEL: &str = "com.apple.container.double.mode";
const CONTAINER_ID_PATTERN: &str = "^[a-zA-Z0-9][a-zA-Z0-9_.-]+$";
const NETWORK_NAME_PATTERN: &str = "^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$";

/// How a command failed: exit 64 for usage errors, 1 for the rest.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 64,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

type Out = Result<i32, Failure>;

/// The version the double plays.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    fn from_env() -> Self {
        let v = std::env::var("BOTTLEBAR_DOUBLE_VERSION").unwrap_or_else(|_| "1.2.2".into());
        let p: Vec<u64> = v.split('.').filter_map(|x| x.parse().ok()).collect();
        Version(
            p.first().copied().unwrap_or(1),
            p.get(1).copied().unwrap_or(2),
            p.get(2).copied().unwrap_or(2),
        )
    }
    fn text(self) -> String {
        format!("{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Runs the double with `args` (without the program name); returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let version = Version::from_env();
    match dispatch(&args, version) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("Error: {}", f.message);
            if f.code == 64 {
                eprintln!(
                    "Usage: container <subcommand>\n  See 'container --help' for more information."
                );
            }
            f.code
        }
    }
}

fn dispatch(args: &[String], v: Version) -> Out {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(Failure::usage("Missing expected argument '<subcommand>'"));
    };
    if cmd != "system" && cmd != "--version" && service_stopped() {
        return Err(Failure::failed("XPC connection error: Connection invalid\nEnsure container system service has been started with `container system start`."));
    }
    match cmd.as_str() {
        "--version" => {
            println!(
                "container CLI version {} (build: release, commit: d0b1e55)",
                v.text()
            );
            Ok(0)
        }
        "system" | "s" => system(rest, v),
        "builder" => builder(rest, v),
        "build" => build(rest, v),
        "image" | "i" => image(rest),
        "network" | "n" => network(rest, v),
        "run" => run_or_create(rest, v, true),
        "create" => run_or_create(rest, v, false),
        "inspect" => inspect(rest, v),
        "list" | "ls" => list(rest, v),
        "exec" => exec(rest),
        "stop" => stop(rest),
        "delete" | "rm" => delete(rest),
        "logs" => logs(rest),
        other => Err(Failure::usage(format!("Unexpected argument '{other}'"))),
    }
}

// ---- docker plumbing --------------------------------------------------------

fn docker(args: &[&str]) -> Result<String, Failure> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::failed(format!("internalError: \"cannot run docker: {e}\"")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Failure::failed(format!(
            "internalError: \"{}\"",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn docker_json(args: &[&str]) -> Option<Value> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

fn container_json(id: &str) -> Option<Value> {
    docker_json(&["inspect", "--type", "container", id]).and_then(|v| v.get(0).cloned())
}

fn network_json(name: &str) -> Option<Value> {
    docker_json(&["network", "inspect", name]).and_then(|v| v.get(0).cloned())
}

fn state_dir() -> PathBuf {
    let d = std::env::var_os("BOTTLEBAR_DOUBLE_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("bottlebar-container-double"));
    let _ = std::fs::create_dir_all(&d);
    d
}

fn service_stopped() -> bool {
    let marker = state_dir().join("service-started");
    std::env::var("BOTTLEBAR_DOUBLE_SERVICE").as_deref() == Ok("stopped") && !marker.exists()
}

// ---- output -----------------------------------------------------------------

/// Foundation's pretty JSON: two-space indent, `"key" : value`, sorted keys, `/` escaped.
struct FoundationPretty<'a> {
    inner: serde_json::ser::PrettyFormatter<'a>,
}

impl serde_json::ser::Formatter for FoundationPretty<'_> {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b" : ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object_value(w)
    }
}

/// Pretty output as `inspect` prints it.
pub fn pretty(v: &Value) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        FoundationPretty {
            inner: serde_json::ser::PrettyFormatter::with_indent(b"  "),
        },
    );
    serde::Serialize::serialize(v, &mut ser).expect("JSON serializes");
    // Slashes only occur inside strings, where Foundation escapes them.
    String::from_utf8(buf).expect("UTF-8").replace('/', "\\/")
}

/// Compact output as `ls --format json` prints it (sorted keys, `/` escaped).
pub fn compact(v: &Value) -> String {
    serde_json::to_string(v)
        .expect("JSON serializes")
        .replace('/', "\\/")
}

/// Docker's RFC 3339 with nanoseconds → ISO-8601 seconds, as Foundation writes them.
fn iso(docker_time: &str) -> String {
    let base = docker_time
        .split('.')
        .next()
        .unwrap_or(docker_time)
        .trim_end_matches('Z');
    format!("{base}Z")
}

// ---- system and builder -------------------------------------------------------

fn system(args: &[String], v: Version) -> Out {
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

fn builder_json() -> Value {
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

fn builder(args: &[String], _v: Version) -> Out {
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

fn build(args: &[String], v: Version) -> Out {
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
    argv.push(context);
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    docker(&refs).map_err(|f| Failure::failed(format!("build failed: {}", f.message)))?;
    for t in tags {
        println!("{}", normalize_reference(&t));
    }
    Ok(0)
}

/// `Reference.parse(...).normalize()`: a bare name gets the docker.io registry and `:latest`.
fn normalize_reference(r: &str) -> String {
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

fn image(args: &[String]) -> Out {
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

// ---- networks -------------------------------------------------------------------

fn valid_network_name(n: &str) -> bool {
    let b = n.as_bytes();
    !n.is_empty()
        && n.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

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
        .unwrap_or(if n["Internal"] == true {
            "hostOnly"
        } else {
            "nat"
        })
        .to_string();
    let ipam = &n["IPAM"]["Config"][0];
    json!({
        "configuration": { "creationDate": iso(n["Created"].as_str().unwrap_or("")), "labels": labels, "mode": mode, "name": n["Name"], "options": {}, "plugin": "container-network-vmnet" },
        "id": n["Name"],
        "status": { "ipv4Gateway": ipam["Gateway"], "ipv4Subnet": ipam["Subnet"] },
    })
}

fn network(args: &[String], _v: Version) -> Out {
    let Some((sub, rest)) = args.split_first() else {
        return Err(Failure::usage("Missing expected argument '<subcommand>'"));
    };
    match sub.as_str() {
        "create" => {
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
            if !valid_network_name(name) {
                return Err(Failure::failed(format!(
                    "invalid network name {name}: must match {NETWORK_NAME_PATTERN}"
                )));
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
            if let Some(s) = p.one("subnet") {
                argv.extend(["--subnet".into(), s]);
            }
            if let Some(s) = p.one("subnet-v6") {
                argv.extend(["--ipv6".into(), "--subnet".into(), s]);
            }
            argv.push(name.clone());
            let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
            docker(&refs)?;
            println!("{name}");
            Ok(0)
        }
        "list" | "ls" => {
            let p = parse(
                rest,
                &[value("format", None), flag("quiet", Some('q'))],
                false,
            )?;
            let names = docker(&[
                "network",
                "ls",
                "--format",
                "{{.Name}}",
                "--filter",
                &format!("label={MODE_LABEL}"),
            ])?;
            let mut list: Vec<Value> = names
                .lines()
                .filter_map(network_json)
                .map(|n| network_element(&n))
                .collect();
            list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            match (p.has("quiet"), p.one("format").as_deref()) {
                (true, _) => list
                    .iter()
                    .for_each(|n| println!("{}", n["id"].as_str().unwrap_or(""))),
                (_, Some("json")) => println!("{}", compact(&Value::Array(list))),
                _ => {
                    println!("NETWORK  SUBNET");
                    list.iter().for_each(|n| {
                        println!(
                            "{}  {}",
                            n["id"].as_str().unwrap_or(""),
                            n["status"]["ipv4Subnet"].as_str().unwrap_or("")
                        )
                    });
                }
            }
            Ok(0)
        }
        "inspect" => {
            let p = parse(rest, &[], false)?;
            let mut out = Vec::new();
            for name in &p.positionals {
                match network_json(name).filter(|n| !n["Labels"][MODE_LABEL].is_null()) {
                    Some(n) => out.push(network_element(&n)),
                    None => return Err(Failure::failed(format!("network not found: {name}"))),
                }
            }
            println!("{}", pretty(&Value::Array(out)));
            Ok(0)
        }
        "delete" | "rm" => {
            let p = parse(rest, &[flag("all", Some('a'))], false)?;
            let mut failed = Vec::new();
            for name in &p.positionals {
                if name == "default" {
                    return Err(Failure::failed("cannot delete a builtin network: default"));
                }
                // Containers that still reference it, running or stopped, keep it.
                let users = docker(&["ps", "-aq", "--filter", &format!("network={name}")])
                    .unwrap_or_default();
                if network_json(name).is_none()
                    || !users.trim().is_empty()
                    || docker(&["network", "rm", name]).is_err()
                {
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
        "connect" | "disconnect" => Err(Failure::usage(format!("Unexpected argument '{sub}'"))),
        other => Err(Failure::usage(format!("Unexpected argument '{other}'"))),
    }
}

// ---- containers -----------------------------------------------------------------

fn valid_container_id(id: &str) -> bool {
    let b = id.as_bytes();
    id.len() >= 2
        && id.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(c))
}

const RUN_OPTS: &[Opt] = &[
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
    value("workdir", Some('w')),
    value("cwd", None),
    flag("read-only", None),
    value("progress", None),
    value("publish", Some('p')),
    value("tmpfs", None),
    value("cap-add", None),
    value("cap-drop", None),
    value("uid", None),
    value("gid", None),
    value("ulimit", None),
];

/// Linux capability names, as Apple's `CapabilityName` knows them.
const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A `--cap-add`/`--cap-drop` value as Apple reads it: case-insensitive,
/// `CAP_` optional, or `ALL`.
fn capability(name: &str) -> Result<String, Failure> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" || CAPABILITIES.contains(&bare) {
        Ok(bare.to_string())
    } else {
        Err(Failure::failed(format!("invalid CapabilityName '{name}'")))
    }
}

/// A `--ulimit type=soft[:hard]` value, checked as Apple checks it.
fn ulimit(spec: &str) -> Result<(String, u64, u64), Failure> {
    let bad = || {
        Failure::usage(format!(
            "The value '{spec}' is invalid for '--ulimit <ulimit>'"
        ))
    };
    let (kind, limits) = spec.split_once('=').ok_or_else(bad)?;
    let known = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !known.contains(&kind) {
        return Err(bad());
    }
    let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
    let n = |v: &str| v.parse::<u64>().map_err(|_| bad());
    let (soft, hard) = (n(soft)?, n(hard)?);
    if soft > hard {
        return Err(bad());
    }
    Ok((kind.to_string(), soft, hard))
}

/// `--mount type=bind,source=…,target=…[,readonly]` → Docker's `--mount`.
fn translate_mount(spec: &str) -> Result<String, Failure> {
    let (mut kind, mut source, mut target, mut ro) = ("virtiofs".to_string(), None, None, false);
    for part in spec.split(',') {
        let (k, v) = part
            .split_once('=')
            .map(|(k, v)| (k, Some(v)))
            .unwrap_or((part, None));
        match (k, v) {
            ("type", Some(t)) => kind = t.to_string(),
            ("source" | "src", Some(s)) => source = Some(s.to_string()),
            ("destination" | "dst" | "target", Some(t)) => target = Some(t.to_string()),
            ("readonly" | "ro", None) => ro = true,
            _ => {
                return Err(Failure::failed(format!(
                    "unknown directive {k} when parsing mount {spec}"
                )))
            }
        }
    }
    if kind != "bind" && kind != "virtiofs" {
        return Err(Failure::failed(format!(
            "unsupported mount type {kind} in the test double"
        )));
    }
    let (Some(source), Some(target)) = (source, target) else {
        return Err(Failure::failed(format!(
            "invalid mount {spec}: needs source and target"
        )));
    };
    let meta = std::fs::metadata(&source)
        .map_err(|_| Failure::failed(format!("path '{source}' does not exist")))?;
    if !meta.is_dir() {
        return Err(Failure::failed(format!(
            "path '{source}' is not a directory"
        )));
    }
    Ok(format!(
        "type=bind,source={source},target={target}{}",
        if ro { ",readonly" } else { "" }
    ))
}

/// `-m` sizes: a number with an optional K/M/G/T/P suffix → bytes.
fn memory_bytes(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_suffix('B').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1u64 << 10),
        'M' => (&s[..s.len() - 1], 1 << 20),
        'G' => (&s[..s.len() - 1], 1 << 30),
        'T' => (&s[..s.len() - 1], 1 << 40),
        'P' => (&s[..s.len() - 1], 1 << 50),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn run_or_create(args: &[String], v: Version, start: bool) -> Out {
    let p = parse(args, RUN_OPTS, true)?;
    let Some((image, cmd)) = p.positionals.split_first() else {
        return Err(Failure::usage("Missing expected argument '<image>'"));
    };
    let id = p.one("name").unwrap_or_else(|| {
        format!(
            "{:032x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        )
    });
    if !valid_container_id(&id) {
        return Err(Failure::failed(format!("container ID {id} is not a valid container ID (must match {CONTAINER_ID_PATTERN}, at most 63 characters)")));
    }
    if container_json(&id).is_some() {
        return Err(Failure::failed(if start {
            format!("container with id {id} already exists")
        } else {
            format!("exists: \"container already exists: {id}\"")
        }));
    }
    let networks = p.all("network");
    if networks.iter().any(|n| n == "none") && networks.len() > 1 {
        return Err(Failure::usage("--network none must be the only network"));
    }
    if networks.len() > 1 && v < Version(1, 0, 0) {
        // Before cz PR #697 every interface got a default route and boot failed.
        return Err(Failure::failed(
            "internalError: \"failed to create container: ipRouteAddDefault\"",
        ));
    }
    for n in &networks {
        if network_json(n)
            .filter(|x| !x["Labels"][MODE_LABEL].is_null())
            .is_none()
        {
            return Err(Failure::failed(format!("network not found: {n}")));
        }
    }
    if p.has("no-dns")
        && (p.has("dns") || p.has("dns-domain") || p.has("dns-search") || p.has("dns-option"))
    {
        return Err(Failure::usage(
            "--no-dns cannot be combined with other DNS options",
        ));
    }
    // Each Apple container is its own VM, whose kernel starts with IP
    // forwarding off; a Docker namespace would inherit the host's.
    let mut argv: Vec<String> = vec![
        "create".into(),
        "--name".into(),
        id.clone(),
        "--sysctl".into(),
        "net.ipv4.ip_forward=0".into(),
    ];
    for l in p.all("label") {
        if l.split_once('=').is_some_and(|(_, v)| v.contains('=')) {
            return Err(Failure::usage(format!("invalid label format {l}")));
        }
        argv.extend(["--label".into(), l]);
    }
    argv.extend([
        "--label".into(),
        format!("{NETWORKS_LABEL}={}", networks.join(",")),
        "--label".into(),
        format!("{DNS_LABEL}={}", p.all("dns").join(",")),
    ]);
    match networks.first() {
        Some(first) => argv.extend(["--network".into(), first.clone()]),
        None => argv.extend(["--network".into(), "bridge".into()]),
    }
    if let Some(c) = p.one("cpus") {
        let n: i64 = c
            .parse()
            .map_err(|_| Failure::usage(format!("The value '{c}' is invalid for '-c <cpus>'")))?;
        argv.extend(["--cpus".into(), n.to_string()]);
    }
    if let Some(m) = p.one("memory") {
        let bytes = memory_bytes(&m).ok_or_else(|| {
            Failure::usage(format!("The value '{m}' is invalid for '-m <memory>'"))
        })?;
        if bytes < 200 << 20 {
            return Err(Failure::failed(format!(
                "invalidArgument: \"memory {m} is below the minimum of 200 MiB\""
            )));
        }
        argv.extend(["--memory".into(), format!("{}b", bytes)]);
    }
    for m in p.all("mount") {
        argv.extend(["--mount".into(), translate_mount(&m)?]);
    }
    for e in p.all("env") {
        argv.extend(["--env".into(), e]);
    }
    if p.has("init") {
        if v < Version(0, 10, 0) {
            return Err(Failure::usage("Unknown option '--init'"));
        }
        argv.push("--init".into());
    }
    if let Some(w) = p.one("workdir").or(p.one("cwd")) {
        argv.extend(["--workdir".into(), w]);
    }
    match (p.one("user"), p.one("uid"), p.one("gid")) {
        (Some(u), _, _) => argv.extend(["--user".into(), u]),
        (None, Some(uid), gid) => argv.extend([
            "--user".into(),
            format!("{uid}:{}", gid.unwrap_or_else(|| "0".into())),
        ]),
        (None, None, Some(gid)) => argv.extend(["--user".into(), format!("0:{gid}")]),
        (None, None, None) => {}
    }
    if p.has("cap-add") || p.has("cap-drop") {
        if v < Version(0, 12, 0) {
            return Err(Failure::usage("Unknown option '--cap-drop'"));
        }
        for (flag, docker_flag) in [("cap-drop", "--cap-drop"), ("cap-add", "--cap-add")] {
            for c in p.all(flag) {
                argv.extend([docker_flag.into(), capability(&c)?]);
            }
        }
    }
    for u in p.all("ulimit") {
        if v < Version(0, 9, 0) {
            return Err(Failure::usage("Unknown option '--ulimit'"));
        }
        let (kind, soft, hard) = ulimit(&u)?;
        argv.extend(["--ulimit".into(), format!("{kind}={soft}:{hard}")]);
    }
    if p.has("read-only") {
        argv.push("--read-only".into());
    }
    if p.has("rm") || p.has("remove") {
        argv.push("--rm".into());
    }
    if let Some(e) = p.one("entrypoint") {
        argv.extend(["--entrypoint".into(), e]);
    }
    argv.push(image.clone());
    argv.extend(cmd.iter().cloned());
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    docker(&refs)?;
    // No `network connect` in Apple's CLI; the double attaches the later
    // networks before start, so they exist from boot, in order.
    let cleanup = |e: Failure| {
        let _ = docker(&["rm", "-f", &id]);
        e
    };
    for n in networks.iter().skip(1) {
        docker(&["network", "connect", n, &id]).map_err(cleanup)?;
    }
    if start && !p.has("detach") {
        // Foreground: the workload's output streams, and its exit code is the CLI's.
        let status = Command::new("docker")
            .args(["start", "--attach", &id])
            .stdin(Stdio::null())
            .status()
            .map_err(|e| cleanup(Failure::failed(e.to_string())))?;
        return Ok(status.code().unwrap_or(1));
    }
    if start {
        docker(&["start", &id]).map_err(cleanup)?;
    }
    println!("{id}");
    Ok(0)
}

/// The 1.x `ManagedContainer` for a Docker container.
fn managed(c: &Value) -> Value {
    let id = container_id(c);
    let labels: Map<String, Value> = c["Config"]["Labels"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("com.apple.container.double."))
        .collect();
    let order: Vec<String> = c["Config"]["Labels"][NETWORKS_LABEL]
        .as_str()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let dns: Vec<String> = c["Config"]["Labels"][DNS_LABEL]
        .as_str()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let running = c["State"]["Running"] == true;
    let attachments: Vec<Value> = if running {
        order
            .iter()
            .filter_map(|n| {
                let ep = &c["NetworkSettings"]["Networks"][n];
                ep.is_object().then(|| {
                    json!({
                        "hostname": id, "ipv4Address": format!("{}/{}", ep["IPAddress"].as_str().unwrap_or(""), ep["IPPrefixLen"]),
                        "ipv4Gateway": ep["Gateway"], "macAddress": ep["MacAddress"], "mtu": 1280, "network": n, "variant": "reserved",
                    })
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let mounts: Vec<Value> = c["Mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| json!({ "destination": m["Destination"], "options": if m["RW"] == false { json!(["ro"]) } else { json!([]) }, "source": m["Source"], "type": { "virtiofs": {} } }))
        .collect();
    let mut status =
        json!({ "networks": attachments, "state": if running { "running" } else { "stopped" } });
    if running {
        status["startedDate"] = json!(iso(c["State"]["StartedAt"].as_str().unwrap_or("")));
    }
    let caps = |k: &str| c["HostConfig"][k].as_array().cloned().unwrap_or_default();
    let (uid, gid) = {
        let user = c["Config"]["User"].as_str().unwrap_or("");
        let (u, g) = user.split_once(':').unwrap_or((user, "0"));
        (u.parse::<u64>().unwrap_or(0), g.parse::<u64>().unwrap_or(0))
    };
    let rlimits: Vec<Value> = c["HostConfig"]["Ulimits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| json!({ "hard": u["Hard"], "limit": u["Name"], "soft": u["Soft"] }))
        .collect();
    json!({
        "configuration": {
            "capAdd": caps("CapAdd"), "capDrop": caps("CapDrop"), "creationDate": iso(c["Created"].as_str().unwrap_or("")),
            "dns": { "nameservers": dns, "options": [], "searchDomains": [] },
            "id": id,
            "image": { "descriptor": { "digest": c["Image"], "mediaType": "application/vnd.oci.image.index.v1+json", "size": 0 }, "reference": c["Config"]["Image"] },
            "initProcess": {
                "arguments": c["Args"], "environment": c["Config"]["Env"], "executable": c["Path"], "rlimits": rlimits, "supplementalGroups": [],
                "terminal": c["Config"]["Tty"], "user": { "id": { "gid": gid, "uid": uid } }, "workingDirectory": if c["Config"]["WorkingDir"] == "" { json!("/") } else { c["Config"]["WorkingDir"].clone() },
            },
            "labels": labels, "mounts": mounts,
            "networks": order.iter().map(|n| json!({ "network": n, "options": { "hostname": id, "mtu": 1280 } })).collect::<Vec<_>>(),
            "platform": { "architecture": "arm64", "os": "linux" }, "publishedPorts": [], "publishedSockets": [], "readOnly": c["HostConfig"]["ReadonlyRootfs"] == true,
            "resources": { "cpuOverhead": 1, "cpus": 4, "memoryInBytes": 1073741824u64 }, "rosetta": false, "runtimeHandler": "container-runtime-linux",
            "ssh": false, "sysctls": {}, "useInit": c["HostConfig"]["Init"] == true, "virtualization": false,
        },
        "id": id,
        "status": status,
    })
}

/// The 0.x (≤0.12.3) `PrintableContainer`: status a string, networks at the top.
fn printable_0x(c: &Value) -> Value {
    let m = managed(c);
    json!({ "configuration": m["configuration"], "networks": m["status"]["networks"], "status": m["status"]["state"], "startedDate": 7.7e8 })
}

/// Our containers: the ones the double made (they carry its networks label).
fn double_containers(all: bool) -> Vec<Value> {
    let mut argv = vec!["ps", "-q", "--no-trunc", "--filter"];
    let filter = format!("label={NETWORKS_LABEL}");
    argv.push(&filter);
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

fn inspect(args: &[String], v: Version) -> Out {
    let p = parse(args, &[], false)?;
    if p.positionals.is_empty() {
        return Err(Failure::usage(
            "Missing expected argument '<containers> ...'",
        ));
    }
    let found: Vec<(String, Option<Value>)> = p
        .positionals
        .iter()
        .map(|id| {
            (
                id.clone(),
                container_json(id).filter(|c| !c["Config"]["Labels"][NETWORKS_LABEL].is_null()),
            )
        })
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

fn list(args: &[String], v: Version) -> Out {
    let p = parse(
        args,
        &[
            flag("all", Some('a')),
            value("format", None),
            flag("quiet", Some('q')),
        ],
        false,
    )?;
    let containers = double_containers(p.has("all"));
    let mut list: Vec<Value> = containers
        .iter()
        .map(if v < Version(1, 0, 0) {
            printable_0x
        } else {
            managed
        })
        .collect();
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
                println!(
                    "{}  {}  linux  arm64  {}",
                    c["id"].as_str().unwrap_or(""),
                    c["configuration"]["image"]["reference"]
                        .as_str()
                        .unwrap_or(""),
                    c["status"]["state"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(0)
}

fn require_container(id: &str) -> Result<Value, Failure> {
    container_json(id)
        .filter(|c| !c["Config"]["Labels"][NETWORKS_LABEL].is_null())
        .ok_or_else(|| Failure::failed(format!("container not found: {id}")))
}

fn exec(args: &[String]) -> Out {
    let opts = [
        flag("interactive", Some('i')),
        flag("tty", Some('t')),
        flag("detach", Some('d')),
        value("env", Some('e')),
        value("env-file", None),
        value("user", Some('u')),
        value("workdir", Some('w')),
        value("cwd", None),
    ];
    let p = parse(args, &opts, true)?;
    let Some((id, cmd)) = p.positionals.split_first() else {
        return Err(Failure::usage("Missing expected argument '<container-id>'"));
    };
    if cmd.is_empty() {
        return Err(Failure::failed("no command specified for exec"));
    }
    let c = require_container(id)?;
    if c["State"]["Running"] != true {
        return Err(Failure::failed(format!("container {id} is not running")));
    }
    let mut argv: Vec<String> = vec!["exec".into()];
    for (k, d) in [("interactive", "-i"), ("tty", "-t"), ("detach", "-d")] {
        if p.has(k) {
            argv.push(d.into());
        }
    }
    for e in p.all("env") {
        argv.extend(["-e".into(), e]);
    }
    if let Some(u) = p.one("user") {
        argv.extend(["-u".into(), u]);
    }
    if let Some(w) = p.one("workdir").or(p.one("cwd")) {
        argv.extend(["-w".into(), w]);
    }
    argv.push(id.clone());
    argv.extend(cmd.iter().cloned());
    // The workload's exit code becomes the CLI's.
    let status = Command::new("docker")
        .args(&argv)
        .status()
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(status.code().unwrap_or(1))
}

fn stop(args: &[String]) -> Out {
    let p = parse(
        args,
        &[
            flag("all", Some('a')),
            value("signal", Some('s')),
            value("time", Some('t')),
        ],
        false,
    )?;
    let ids = if p.has("all") {
        double_containers(false).iter().map(container_id).collect()
    } else {
        p.positionals.clone()
    };
    if ids.is_empty() && !p.has("all") {
        return Err(Failure::usage(
            "no containers specified and --all not supplied",
        ));
    }
    let mut errors = Vec::new();
    for id in &ids {
        match require_container(id) {
            Ok(_) => {
                let t = p.one("time").unwrap_or_else(|| "5".into());
                docker(&["stop", "-t", &t, id])?;
                println!("{id}");
            }
            Err(_) => errors.push(format!("notFound: \"container with ID {id} not found\"")),
        }
    }
    aggregate(errors)
}

/// A container's ID: its Docker name without the leading `/`.
fn container_id(c: &Value) -> String {
    c["Name"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string()
}

/// Per-ID failures, reported together as `AggregateError` does: one line each.
fn aggregate(errors: Vec<String>) -> Out {
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(Failure::failed(errors.join("\n")))
    }
}

fn delete(args: &[String]) -> Out {
    let p = parse(
        args,
        &[flag("all", Some('a')), flag("force", Some('f'))],
        false,
    )?;
    let ids: Vec<String> = if p.has("all") {
        double_containers(true)
            .iter()
            .filter(|c| p.has("force") || c["State"]["Running"] != true)
            .map(container_id)
            .collect()
    } else {
        p.positionals.clone()
    };
    if ids.is_empty() && !p.has("all") {
        return Err(Failure::usage(
            "no containers specified and --all not supplied",
        ));
    }
    let mut errors = Vec::new();
    for id in &ids {
        match require_container(id) {
            Ok(c) if c["State"]["Running"] == true && !p.has("force") => errors.push(format!(
                "invalidState: \"container {id} is running and can not be deleted\""
            )),
            Ok(_) => {
                docker(&["rm", "-f", id])?;
                println!("{id}");
            }
            Err(_) => errors.push(format!("notFound: \"container with ID {id} not found\"")),
        }
    }
    aggregate(errors)
}

fn logs(args: &[String]) -> Out {
    let p = parse(
        args,
        &[
            flag("follow", Some('f')),
            value("n", Some('n')),
            flag("boot", None),
        ],
        false,
    )?;
    let [id] = p.positionals.as_slice() else {
        return Err(Failure::usage("Missing expected argument '<container-id>'"));
    };
    require_container(id)?;
    let mut argv = vec!["logs".to_string()];
    if p.has("follow") {
        argv.push("--follow".into());
    }
    if let Some(n) = p.one("n") {
        argv.extend(["--tail".into(), n]);
    }
    argv.push(id.clone());
    let status = Command::new("docker")
        .args(&argv)
        .status()
        .map_err(|e| Failure::failed(e.to_string()))?;
    Ok(status.code().unwrap_or(1))
}
