//! `run`/`create` flags, read as Apple's CLI reads them (`Client/Flags.swift`,
//! `Client/Parser.swift`, per version), into a [`RunSpec`]: the container's
//! Apple configuration (what `inspect` prints) and the Docker Engine API
//! body that gives it the same effect. A flag is applied, or refused as
//! Apple refuses it, or — for the few that need a Mac (`--ssh`, Rosetta,
//! kernels) — refused saying the double cannot emulate it. Never accepted
//! and dropped.
//!
//! Reading the flags changes nothing; [`RunSpec::prepare`] makes what the
//! container needs on the host (named volumes, its resolv.conf) once the
//! caller knows the container will be made, and [`Prepared::undo`] takes
//! it back when it is not.

mod confinement;
mod flags;
mod mounts;
mod process;
mod values;

pub use flags::not_emulated;
pub use values::{env_file, Attachment, DEFAULT_MTU};

use super::args::parse;
use super::engine::{network_json, state_dir, CONTAINER_LABEL};
use super::system::normalize_reference;
use super::{Failure, Version};
use confinement::Confinement;
use mounts::{remove_volumes, Dns, Mounts};
use process::Process;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use values::{Ports, Resources};

/// Everything a `run`/`create` asked for.
pub struct RunSpec {
    pub id: String,
    image: String,
    /// The attachments in flag order (empty: `--network none`).
    pub networks: Vec<Attachment>,
    /// Published ports (they go on the namespace holder).
    pub ports: Value,
    published: Vec<Value>,
    labels: Map<String, Value>,
    resources: Resources,
    process: Process,
    confinement: Confinement,
    mounts: Mounts,
    dns: Dns,
    shown_paths: (Option<Vec<String>>, Option<Vec<String>>),
    pub detach: bool,
    pub interactive: bool,
    pub tty: bool,
    pub init: bool,
    pub remove: bool,
    pub cidfile: Option<String>,
}

/// What [`RunSpec::prepare`] made on the host.
pub struct Prepared {
    id: String,
    volumes: Vec<String>,
    resolv_conf: PathBuf,
}

impl Prepared {
    /// Removes what `prepare` made, for a container that was not made.
    pub fn undo(&self) {
        remove_volumes(&self.volumes);
        forget(&self.id);
    }
}

/// Reads `run`/`create` arguments into a spec, refusing what Apple refuses.
pub fn parse_run(args: &[String], v: Version, run: bool) -> Result<RunSpec, Failure> {
    let p = parse(args, flags::RUN_OPTS, true)?;
    flags::check(&p, v, run)?;
    let Some((image, cmd)) = p.positionals.split_first() else {
        return Err(Failure::usage("Missing expected argument '<image>'"));
    };
    let id = flags::container_id(&p)?;
    let networks = values::attachments(&p, v)?;
    let labels = flags::labels(&p)?;
    let resources = Resources::from_flags(&p)?;
    let process = Process::from_flags(&p, image, cmd)?;
    let confinement = Confinement::from_flags(&p, v)?;
    let mounts = Mounts::from_flags(&p)?;
    let ports = Ports::from_flags(&p)?;
    let first_gateway = networks.first().and_then(|n| gateway_of(&n.network));
    let dns = Dns::from_flags(&p, first_gateway.as_deref());
    let shown = |f: &str| p.has(f).then(|| p.all(f));
    Ok(RunSpec {
        id,
        image: image.clone(),
        networks,
        ports: ports.bindings,
        published: ports.shown,
        labels,
        resources,
        process,
        confinement,
        mounts,
        dns,
        shown_paths: (shown("masked-path"), shown("read-only-path")),
        detach: p.has("detach"),
        interactive: p.has("interactive"),
        tty: p.has("tty"),
        init: p.has("init"),
        remove: p.has("rm") || p.has("remove"),
        cidfile: p.one("cidfile"),
    })
}

impl RunSpec {
    /// Makes what the container needs on the host: missing named volumes
    /// (with Apple's warning) and the resolv.conf Apple would write.
    pub fn prepare(&mut self) -> Result<Prepared, Failure> {
        let volumes = self.mounts.create_volumes()?;
        let prepared = Prepared {
            id: self.id.clone(),
            volumes,
            resolv_conf: resolv_path(&self.id),
        };
        let written = prepared
            .resolv_conf
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&prepared.resolv_conf, &self.dns.resolv_conf));
        if let Err(e) = written {
            prepared.undo();
            return Err(Failure::failed(format!(
                "writing {}: {e}",
                prepared.resolv_conf.display()
            )));
        }
        Ok(prepared)
    }

    /// The Docker Engine API body for the workload, joined to `holder`'s
    /// network namespace. Apple's confinement (see `confinement`), a VM's
    /// kernel defaults, and the flags.
    pub fn docker_body(&self, holder: &str, prepared: &Prepared) -> Value {
        let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
        let mut mounts = self.mounts.docker.clone();
        mounts.push(json!({ "Type": "bind", "Source": prepared.resolv_conf.display().to_string(), "Target": "/etc/resolv.conf" }));
        let mut host_config = self.confinement.host_config();
        let extra = json!({
            "NetworkMode": format!("container:{holder}"),
            "AutoRemove": self.remove,
            "Init": self.init,
            "Memory": self.resources.memory,
            "NanoCpus": self.resources.cpus.clamp(1, host_cpus) * 1_000_000_000,
            "Mounts": mounts,
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            host_config[k] = v.clone();
        }
        if let Some(s) = self.resources.shm {
            host_config["ShmSize"] = json!(s);
        }
        let mut labels = self.labels.clone();
        labels.insert(CONTAINER_LABEL.into(), json!("1"));
        let p = &self.process;
        json!({
            "Image": self.image, "Entrypoint": [p.executable], "Cmd": p.arguments, "Env": p.env,
            "Labels": labels, "User": p.user, "WorkingDir": p.workdir,
            "Tty": self.tty, "OpenStdin": self.interactive,
            "StdinOnce": self.interactive, "AttachStdin": self.interactive,
            "AttachStdout": true, "AttachStderr": true,
            "HostConfig": host_config,
        })
    }

    /// Apple's `configuration` for this container (inspect prints it).
    pub fn configuration(&self) -> Value {
        let (p, c) = (&self.process, &self.confinement);
        let networks: Vec<Value> = self
            .networks
            .iter()
            .map(|n| {
                let mut o = json!({ "hostname": self.id, "mtu": n.mtu });
                if let Some(m) = &n.mac {
                    o["macAddress"] = json!(m);
                }
                json!({ "network": n.network, "options": o })
            })
            .collect();
        let mut cfg = json!({
            "capAdd": c.cap_add, "capDrop": c.cap_drop,
            "id": self.id,
            "image": { "descriptor": { "digest": "", "mediaType": "application/vnd.oci.image.index.v1+json", "size": 0 }, "reference": normalize_reference(&self.image) },
            "initProcess": {
                "arguments": p.arguments, "environment": p.env, "executable": p.executable, "rlimits": c.rlimits, "supplementalGroups": [],
                "terminal": self.tty, "user": p.user_shown, "workingDirectory": p.workdir,
            },
            "labels": self.labels, "mounts": self.mounts.shown,
            "networks": networks,
            "platform": { "architecture": "arm64", "os": "linux" }, "publishedPorts": self.published, "publishedSockets": [],
            "readOnly": c.read_only,
            "resources": { "cpuOverhead": 1, "cpus": self.resources.cpus, "memoryInBytes": self.resources.memory },
            "rosetta": false, "runtimeHandler": "container-runtime-linux", "ssh": false,
            "sysctls": { "vm.max_map_count": "262144", "vm.overcommit_memory": "1" },
            "useInit": self.init, "virtualization": false,
        });
        let optional = [
            ("dns", self.dns.shown.clone()),
            ("maskedPaths", self.shown_paths.0.as_ref().map(|v| json!(v))),
            (
                "readonlyPaths",
                self.shown_paths.1.as_ref().map(|v| json!(v)),
            ),
            ("shmSize", self.resources.shm.map(|s| json!(s))),
            (
                "stopSignal",
                Some(json!(p.stop_signal)).filter(|_| !p.stop_signal.is_empty()),
            ),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                cfg[key] = v;
            }
        }
        cfg
    }
}

/// The gateway of an Apple network (its subnet's first host address).
pub fn gateway_of(network: &str) -> Option<String> {
    network_json(network)?["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .map(String::from)
}

/// Where a container's Apple configuration is kept.
fn record_path(id: &str) -> PathBuf {
    state_dir().join("containers").join(format!("{id}.json"))
}

/// Where a container's resolv.conf is kept (bind-mounted into it).
fn resolv_path(id: &str) -> PathBuf {
    state_dir().join("resolv").join(id)
}

/// Keeps the Apple configuration of a container the double made.
pub fn save_record(id: &str, configuration: &Value) -> Result<(), Failure> {
    let path = record_path(id);
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))
        .map_err(|e| Failure::failed(e.to_string()))?;
    std::fs::write(&path, configuration.to_string()).map_err(|e| Failure::failed(e.to_string()))
}

/// The Apple configuration of a container the double made, if recorded.
pub fn load_record(id: &str) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(record_path(id)).ok()?).ok()
}

/// Forgets a container: its record and its resolv.conf.
pub fn forget(id: &str) {
    let _ = std::fs::remove_file(record_path(id));
    let _ = std::fs::remove_file(resolv_path(id));
}
