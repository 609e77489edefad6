//! Mounts: `--mount`, `-v`, `--tmpfs`, and the resolv.conf Apple writes.
//! Reading them checks every source but creates nothing; named volumes are
//! created (with Apple's warning) only when the container is made
//! ([`Mounts::create_volumes`]), so a refused `run` leaves nothing behind.

use super::super::args::Parsed;
use super::super::engine::docker;
use super::super::Failure;
use super::values::memory_bytes;
use serde_json::{json, Map, Value};

/// The container's mounts, for Docker and as Apple shows them.
#[derive(Default)]
pub struct Mounts {
    pub docker: Vec<Value>,
    pub shown: Vec<Value>,
    /// Named volumes, by index into `shown` (their `source` is the
    /// volume's path, known once it exists).
    volumes: Vec<(usize, String)>,
}

impl Mounts {
    pub fn from_flags(p: &Parsed) -> Result<Self, Failure> {
        let mut m = Mounts::default();
        for spec in p.all("mount") {
            m.push(mount(&spec)?);
        }
        for spec in p.all("volume") {
            m.push(volume(&spec)?);
        }
        for t in p.all("tmpfs") {
            m.push(Mount {
                docker: json!({ "Type": "tmpfs", "Target": t }),
                shown: json!({ "destination": t, "options": [], "source": "tmpfs", "type": { "tmpfs": {} } }),
                volume: None,
            });
        }
        Ok(m)
    }

    fn push(&mut self, m: Mount) {
        if let Some(name) = m.volume {
            self.volumes.push((self.shown.len(), name));
        }
        self.docker.push(m.docker);
        self.shown.push(m.shown);
    }

    /// Creates the missing named volumes (Apple warns on stderr) and fills
    /// in their paths. Returns the ones it created, for undoing.
    pub fn create_volumes(&mut self) -> Result<Vec<String>, Failure> {
        let mut created = Vec::new();
        for (i, name) in &self.volumes {
            if docker(&["volume", "inspect", name]).is_err() {
                if let Err(e) = docker(&["volume", "create", "--label", "bottlebar-test=1", name]) {
                    remove_volumes(&created);
                    return Err(e);
                }
                eprintln!("Warning! named volume was automatically created");
                created.push(name.clone());
            }
            self.shown[*i]["source"] = json!(volume_path(name));
        }
        Ok(created)
    }
}

/// Removes volumes the double created for a container it then could not make.
pub fn remove_volumes(names: &[String]) {
    for n in names {
        let _ = docker(&["volume", "rm", n]);
    }
}

/// One mount, for Docker and as Apple shows it.
struct Mount {
    docker: Value,
    shown: Value,
    volume: Option<String>,
}

/// Apple's `FSType` for a named volume.
fn volume_type(name: &str) -> Value {
    json!({ "volume": { "cache": { "on": {} }, "format": "ext4", "name": name, "sync": { "fsync": {} } } })
}

/// Where a volume's data lives (Apple: its ext4 image; the double: Docker's directory).
fn volume_path(name: &str) -> String {
    docker(&["volume", "inspect", "--format", "{{.Mountpoint}}", name])
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn named(name: &str, target: &str, ro: bool, options: Value) -> Mount {
    Mount {
        docker: json!({ "Type": "volume", "Source": name, "Target": target, "ReadOnly": ro }),
        shown: json!({ "destination": target, "options": options, "source": "", "type": volume_type(name) }),
        volume: Some(name.to_string()),
    }
}

fn bind(source: &str, target: &str, ro: bool, options: Value) -> Mount {
    Mount {
        docker: json!({ "Type": "bind", "Source": source, "Target": target, "ReadOnly": ro }),
        shown: json!({ "destination": target, "options": options, "source": source, "type": { "virtiofs": {} } }),
        volume: None,
    }
}

/// One `--mount` spec.
fn mount(spec: &str) -> Result<Mount, Failure> {
    let (mut kind, mut source, mut target, mut ro) = ("virtiofs".to_string(), None, None, false);
    let (mut size, mut mode) = (None, None);
    for part in spec.split(',') {
        let (k, v) = part
            .split_once('=')
            .map(|(k, v)| (k, Some(v)))
            .unwrap_or((part, None));
        match (k, v) {
            ("type", Some(t)) => kind = t.to_string(),
            ("source" | "src", Some(s)) => source = Some(s.to_string()),
            ("destination" | "dst" | "target", Some(t)) => target = Some(t.to_string()),
            // A bare word or any value: `readonly=false` still mounts read-only.
            ("readonly" | "ro", _) => ro = true,
            ("size", Some(s)) => size = Some(s.to_string()),
            ("mode", Some(m)) => mode = Some(m.to_string()),
            _ => {
                return Err(Failure::failed(format!(
                    "unknown directive {k} when parsing mount {spec}"
                )))
            }
        }
    }
    let target = target
        .ok_or_else(|| Failure::failed(format!("invalid mount {spec}: needs a destination")))?;
    let opts = if ro { json!(["ro"]) } else { json!([]) };
    match kind.as_str() {
        "bind" | "virtiofs" => {
            let source = source
                .ok_or_else(|| Failure::failed(format!("invalid mount {spec}: needs a source")))?;
            let meta = std::fs::metadata(&source)
                .map_err(|_| Failure::failed(format!("path '{source}' does not exist")))?;
            if !meta.is_dir() {
                return Err(Failure::failed(format!(
                    "path '{source}' is not a directory"
                )));
            }
            Ok(bind(&source, &target, ro, opts))
        }
        "tmpfs" => {
            let mut t = Map::new();
            if let Some(s) = &size {
                let bytes = memory_bytes(s)
                    .ok_or_else(|| Failure::failed(format!("invalid size {s} in mount {spec}")))?;
                t.insert("SizeBytes".into(), json!(bytes));
            }
            if let Some(m) = &mode {
                let bits = u32::from_str_radix(m, 8)
                    .map_err(|_| Failure::failed(format!("invalid mode {m} in mount {spec}")))?;
                t.insert("Mode".into(), json!(bits));
            }
            Ok(Mount {
                docker: json!({ "Type": "tmpfs", "Target": target, "ReadOnly": ro, "TmpfsOptions": t }),
                shown: json!({ "destination": target, "options": opts, "source": "tmpfs", "type": { "tmpfs": {} } }),
                volume: None,
            })
        }
        "volume" => {
            let name = source.ok_or_else(|| {
                Failure::failed(format!("invalid mount {spec}: needs a volume name"))
            })?;
            Ok(named(&name, &target, ro, opts))
        }
        other => Err(Failure::failed(format!(
            "unsupported mount type {other} in mount {spec}"
        ))),
    }
}

/// One `-v` spec: `src:dst[:opts]` (bind when `src` is a path), `name:dst`
/// (named volume), or `/dst` (anonymous volume).
fn volume(spec: &str) -> Result<Mount, Failure> {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [dst] => Ok(Mount {
            docker: json!({ "Type": "volume", "Target": dst }),
            shown: json!({ "destination": dst, "options": [], "source": "", "type": volume_type("") }),
            volume: None,
        }),
        [src, dst, rest @ ..] if rest.len() <= 1 => {
            let opts: Vec<&str> = rest
                .first()
                .map(|o| o.split(',').collect())
                .unwrap_or_default();
            let ro = opts.contains(&"ro");
            if src.contains('/') || *src == "." || *src == ".." {
                let abs = std::fs::canonicalize(src)
                    .map_err(|_| Failure::failed(format!("path '{src}' does not exist")))?;
                Ok(bind(&abs.display().to_string(), dst, ro, json!(opts)))
            } else {
                Ok(named(src, dst, ro, json!(opts)))
            }
        }
        _ => Err(Failure::usage(format!("invalid volume format {spec}"))),
    }
}

/// The resolv.conf Apple writes and its `dns` element.
pub struct Dns {
    pub resolv_conf: String,
    /// `None` with `--no-dns` (inspect then has no `dns` key).
    pub shown: Option<Value>,
}

impl Dns {
    /// Exactly the given servers (the first network's gateway when none is
    /// given), domain, search and options; nothing with `--no-dns`.
    pub fn from_flags(p: &Parsed, first_gateway: Option<&str>) -> Self {
        if p.has("no-dns") {
            return Dns {
                resolv_conf: String::new(),
                shown: None,
            };
        }
        let mut servers = p.all("dns");
        if servers.is_empty() {
            servers.extend(first_gateway.map(String::from));
        }
        let (search, options, domain) = (
            p.all("dns-search"),
            p.all("dns-option"),
            p.one("dns-domain"),
        );
        let mut text = String::new();
        for s in &servers {
            text.push_str(&format!("nameserver {s}\n"));
        }
        if let Some(d) = &domain {
            text.push_str(&format!("domain {d}\n"));
        }
        if !search.is_empty() {
            text.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.is_empty() {
            text.push_str(&format!("options {}\n", options.join(" ")));
        }
        let shown = json!({ "domain": domain, "nameservers": p.all("dns"), "options": options, "searchDomains": search });
        Dns {
            resolv_conf: text,
            shown: Some(shown),
        }
    }
}
