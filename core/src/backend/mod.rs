//! Container engines: finding them, asking what runs, and removing resources.
//!
//! Planning lives in each backend module as a pure function; this module holds
//! the few engine queries the operations need, all run through a [`Runner`].

pub mod apple;
pub mod docker;

use crate::manifest::BackendKind;
use crate::name::Role;
use crate::runner::{Output, Runner};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where GUI apps find engines: they do not inherit a shell's PATH.
const DOCKER_PATHS: &[&str] = &[
    "/usr/local/bin/docker",
    "/usr/bin/docker",
    "/opt/homebrew/bin/docker",
    "/Applications/Docker.app/Contents/Resources/bin/docker",
    "~/.orbstack/bin/docker",
    "~/.rd/bin/docker",
];
const CONTAINER_PATHS: &[&str] = &["/usr/local/bin/container", "/opt/homebrew/bin/container"];

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{program} not found: looked on PATH and in {looked}")]
    NotFound {
        program: &'static str,
        looked: String,
    },
    #[error("`{command}` failed{}: {stderr}", code.map(|c| format!(" (exit code {c})")).unwrap_or_default())]
    Command {
        command: String,
        code: Option<i32>,
        stderr: String,
    },
    #[error("`{command}` printed output Bottlebar does not understand: {why}")]
    Parse { command: String, why: String },
    #[error("`{command}` failed: {message}")]
    Apple {
        command: String,
        failure: apple::CliFailure,
        message: String,
    },
    #[error("{kind} is not ready: {problem}; {fix}")]
    NotReady {
        kind: BackendKind,
        problem: String,
        fix: String,
    },
}

/// Runs an Apple CLI command, turning a failure into the CLI's own message.
async fn apple_checked<R: Runner>(runner: &R, argv: &[String]) -> Result<Output, EngineError> {
    let out = runner.run(argv).await;
    if out.success() {
        return Ok(out);
    }
    let failure = apple::interpret_failure(out.code, &out.stderr);
    let message = match &failure {
        apple::CliFailure::Usage(m) => format!("the CLI rejected the command line (exit 64): {m}"),
        apple::CliFailure::Failed(m) => m.clone(),
        apple::CliFailure::ServiceDown(m) => format!("{m} (start it with `container system start --enable-kernel-install` or `bottle doctor --fix`)"),
        apple::CliFailure::Other(code, m) => format!("exit {code:?}: {m}"),
    };
    Err(EngineError::Apple {
        command: crate::plan::display_command(argv),
        failure,
        message,
    })
}

/// Checks the engine answers and is recent enough; returns its version where
/// the plan depends on it (Apple's runtime).
pub async fn ensure_ready<R: Runner>(
    engine: &Engine,
    runner: &R,
) -> Result<Option<(u64, u64, u64)>, EngineError> {
    let st = status(engine.kind, runner).await;
    let problem = st
        .problem
        .clone()
        .or_else(|| (!st.running).then(|| "the service is not running".to_string()));
    if let Some(problem) = problem {
        return Err(EngineError::NotReady {
            kind: engine.kind,
            problem,
            fix: st.fix.unwrap_or_else(|| "run `bottle doctor`".into()),
        });
    }
    Ok(match engine.kind {
        BackendKind::Docker => None,
        BackendKind::Apple => st.client_version.as_deref().and_then(apple::parse_semver),
    })
}

/// A located engine CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Engine {
    pub kind: BackendKind,
    pub program: PathBuf,
}

impl Engine {
    pub fn program_str(&self) -> String {
        self.program.display().to_string()
    }

    /// The command that runs the isolation probe in `bottle`'s agent network,
    /// from the sidecar's image, with `targets` (JSON). `gvisor`: the agent
    /// runs under gVisor, whose network stack is its own (the probe then
    /// runs beside it under gVisor too).
    pub fn probe_argv(
        &self,
        bottle: &crate::name::BottleName,
        sidecar_image: &str,
        sidecar_ip: std::net::IpAddr,
        targets_json: &str,
        gvisor: bool,
    ) -> Vec<String> {
        let program = self.program_str();
        match self.kind {
            BackendKind::Docker if gvisor => docker::probe_beside_argv(
                &program,
                &bottle.resource(Role::Internal),
                &sidecar_ip.to_string(),
                sidecar_image,
                targets_json,
            ),
            BackendKind::Docker => docker::probe_argv(
                &program,
                &bottle.resource(Role::Agent),
                sidecar_image,
                targets_json,
            ),
            BackendKind::Apple => apple::probe_argv(
                &program,
                &bottle.resource(Role::Internal),
                &sidecar_ip.to_string(),
                sidecar_image,
                targets_json,
            ),
        }
    }

    /// The command that hands a running sidecar new live rules on stdin.
    pub fn reload_argv(&self, bottle: &crate::name::BottleName) -> Vec<String> {
        let program = self.program_str();
        let sidecar = bottle.resource(Role::Sidecar);
        match self.kind {
            BackendKind::Docker => docker::reload_argv(&program, &sidecar),
            BackendKind::Apple => apple::reload_argv(&program, &sidecar),
        }
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds `program` via an override variable, then PATH, then known install paths.
fn find_program(
    program: &'static str,
    override_var: &str,
    known: &[&str],
) -> Result<PathBuf, EngineError> {
    if let Some(p) = std::env::var_os(override_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(EngineError::NotFound {
                program,
                looked: format!("{override_var}={}", p.display()),
            })
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program));
    let known_paths = known.iter().map(|p| expand_home(p));
    on_path
        .chain(known_paths)
        .find(|p| is_executable(p))
        .ok_or_else(|| EngineError::NotFound {
            program,
            looked: known.join(", "),
        })
}

/// Locates the CLI for `kind`. `BOTTLEBAR_DOCKER` / `BOTTLEBAR_CONTAINER` override.
pub fn find_engine(kind: BackendKind) -> Result<Engine, EngineError> {
    let program = match kind {
        BackendKind::Docker => find_program("docker", "BOTTLEBAR_DOCKER", DOCKER_PATHS)?,
        BackendKind::Apple => find_program("container", "BOTTLEBAR_CONTAINER", CONTAINER_PATHS)?,
    };
    Ok(Engine { kind, program })
}

/// The runtimes Docker has registered (`runc`, `runsc`, …).
pub async fn docker_runtimes<R: Runner>(
    engine: &Engine,
    runner: &R,
) -> Result<Vec<String>, EngineError> {
    let out = checked(runner, &docker::runtimes_argv(&engine.program_str())).await?;
    docker::parse_runtimes(&out.stdout).map_err(|why| EngineError::Parse {
        command: "docker info".into(),
        why,
    })
}

/// Which backend to use when neither the command line nor the manifest says:
/// `BOTTLEBAR_BACKEND`, else Apple's runtime on macOS when installed, else Docker.
pub fn default_backend() -> BackendKind {
    if let Some(k) = std::env::var("BOTTLEBAR_BACKEND")
        .ok()
        .and_then(|v| BackendKind::parse(&v))
    {
        return k;
    }
    if cfg!(target_os = "macos") && find_engine(BackendKind::Apple).is_ok() {
        BackendKind::Apple
    } else {
        BackendKind::Docker
    }
}

/// A labelled container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveContainer {
    pub id: String,
    pub name: String,
    pub bottle: String,
    pub role: Option<Role>,
    pub running: bool,
    pub status: String,
    pub started_at: Option<String>,
    pub command: Vec<String>,
    pub image: String,
    /// Network name → IPv4 address.
    pub networks: BTreeMap<String, String>,
    /// Runs under gVisor (Docker's `runsc` runtime).
    pub gvisor: bool,
}

/// A labelled network as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveNetwork {
    pub id: String,
    pub name: String,
    pub bottle: String,
    pub role: Option<Role>,
    pub internal: bool,
    /// Names of the containers attached to it.
    pub attached: Vec<String>,
}

/// Every labelled resource the engine has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    pub containers: Vec<LiveContainer>,
    pub networks: Vec<LiveNetwork>,
}

impl Inventory {
    pub fn of_bottle(&self, bottle: &str) -> Inventory {
        Inventory {
            containers: self
                .containers
                .iter()
                .filter(|c| c.bottle == bottle)
                .cloned()
                .collect(),
            networks: self
                .networks
                .iter()
                .filter(|n| n.bottle == bottle)
                .cloned()
                .collect(),
        }
    }

    pub fn container(&self, role: Role) -> Option<&LiveContainer> {
        self.containers.iter().find(|c| c.role == Some(role))
    }

    pub fn network(&self, role: Role) -> Option<&LiveNetwork> {
        self.networks.iter().find(|n| n.role == Some(role))
    }

    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty()
    }

    /// Names of the bottles that own something.
    pub fn bottles(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .containers
            .iter()
            .map(|c| c.bottle.clone())
            .chain(self.networks.iter().map(|n| n.bottle.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

async fn checked<R: Runner>(runner: &R, argv: &[String]) -> Result<Output, EngineError> {
    let out = runner.run(argv).await;
    if out.success() {
        Ok(out)
    } else {
        Err(EngineError::Command {
            command: crate::plan::display_command(argv),
            code: out.code,
            stderr: out.stderr_tail(),
        })
    }
}

fn ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Lists every resource labelled `bottlebar.bottle`.
/// Docker: the IPv4 subnets of every network on the engine (any owner), so
/// a bottle's networks can be given free ones.
pub async fn docker_subnets<R: Runner>(
    engine: &Engine,
    runner: &R,
) -> Result<Vec<crate::subnets::Net>, EngineError> {
    let p = engine.program_str();
    let ls: Vec<String> = [p.as_str(), "network", "ls", "--quiet", "--no-trunc"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let network_ids = ids(&checked(runner, &ls).await?.stdout);
    if network_ids.is_empty() {
        return Ok(vec![]);
    }
    let argv = docker::network_inspect_argv(&p, &network_ids);
    // A network removed between listing and inspecting: use what was printed.
    let out = runner.run(&argv).await;
    docker::parse_subnets(&out.stdout).map_err(|why| EngineError::Parse {
        command: crate::plan::display_command(&argv),
        why,
    })
}

/// Every Bottlebar resource on the engine: labelled, *and* named as its
/// bottle and role say. Containers inherit their image's labels, so a
/// container someone runs from a `bottlebar/…` image carries a bottle's
/// labels; its name gives it away, and it is never managed (or removed) as
/// part of that bottle.
pub async fn inventory<R: Runner>(engine: &Engine, runner: &R) -> Result<Inventory, EngineError> {
    let mut inv = labelled_inventory(engine, runner).await?;
    let named_as_labelled = |name: &str, bottle: &str, role: Option<Role>| match (
        crate::name::BottleName::parse(bottle),
        role,
    ) {
        (Ok(b), Some(r)) => b.resource(r) == name,
        _ => false,
    };
    inv.containers
        .retain(|c| named_as_labelled(&c.name, &c.bottle, c.role));
    inv.networks
        .retain(|n| named_as_labelled(&n.name, &n.bottle, n.role));
    Ok(inv)
}

async fn labelled_inventory<R: Runner>(
    engine: &Engine,
    runner: &R,
) -> Result<Inventory, EngineError> {
    match engine.kind {
        BackendKind::Docker => {
            let p = engine.program_str();
            let (list_c, list_n) = docker::list_argv(&p);
            let container_ids = ids(&checked(runner, &list_c).await?.stdout);
            let network_ids = ids(&checked(runner, &list_n).await?.stdout);
            let mut inv = Inventory::default();
            if !container_ids.is_empty() {
                let argv = docker::inspect_argv(&p, &container_ids);
                // A container removed between listing and inspecting makes inspect
                // exit 1 while still printing the others; use what it printed.
                let out = runner.run(&argv).await;
                inv.containers = docker::parse_containers(&out.stdout).map_err(|why| {
                    if out.success() {
                        EngineError::Parse {
                            command: crate::plan::display_command(&argv),
                            why,
                        }
                    } else {
                        EngineError::Command {
                            command: crate::plan::display_command(&argv),
                            code: out.code,
                            stderr: out.stderr_tail(),
                        }
                    }
                })?;
            }
            if !network_ids.is_empty() {
                let argv = docker::network_inspect_argv(&p, &network_ids);
                let out = runner.run(&argv).await;
                inv.networks = docker::parse_networks(&out.stdout).map_err(|why| {
                    if out.success() {
                        EngineError::Parse {
                            command: crate::plan::display_command(&argv),
                            why,
                        }
                    } else {
                        EngineError::Command {
                            command: crate::plan::display_command(&argv),
                            code: out.code,
                            stderr: out.stderr_tail(),
                        }
                    }
                })?;
            }
            Ok(inv)
        }
        BackendKind::Apple => {
            let p = engine.program_str();
            let containers = apple_checked(
                runner,
                &[
                    p.clone(),
                    "ls".into(),
                    "--all".into(),
                    "--format".into(),
                    "json".into(),
                ],
            )
            .await?
            .stdout;
            let networks = apple_checked(
                runner,
                &[
                    p,
                    "network".into(),
                    "ls".into(),
                    "--format".into(),
                    "json".into(),
                ],
            )
            .await?
            .stdout;
            let parse_err = |command: &str| {
                let command = command.to_string();
                move |why| EngineError::Parse { command, why }
            };
            Ok(Inventory {
                containers: apple::parse_containers(&containers)
                    .map_err(parse_err("container ls --all --format json"))?,
                networks: apple::parse_networks(&networks, &containers)
                    .map_err(parse_err("container network ls --format json"))?,
            })
        }
    }
}

/// Removes the given containers, then networks (containers first, or the
/// networks would still be in use). Any other container still attached to one
/// of the networks (say, one a user connected by hand) is disconnected, not
/// removed: it is not Bottlebar's. Resources already gone are not errors.
pub async fn remove<R: Runner>(
    engine: &Engine,
    runner: &R,
    inv: &Inventory,
) -> Result<(), EngineError> {
    let p = engine.program_str();
    if engine.kind == BackendKind::Apple {
        return remove_apple(&p, runner, inv).await;
    }
    let containers: Vec<String> = inv.containers.iter().map(|c| c.name.clone()).collect();
    if !containers.is_empty() {
        tolerate_gone(runner, &docker::remove_containers_argv(&p, &containers)).await?;
    }
    for n in &inv.networks {
        for foreign in n.attached.iter().filter(|a| !containers.contains(a)) {
            tolerate_gone(runner, &docker::disconnect_argv(&p, &n.name, foreign)).await?;
        }
    }
    let networks: Vec<String> = inv.networks.iter().map(|n| n.name.clone()).collect();
    if !networks.is_empty() {
        tolerate_gone(runner, &docker::remove_networks_argv(&p, &networks)).await?;
    }
    Ok(())
}

/// Apple has no `network disconnect`: a foreign container still attached to
/// one of the bottle's networks keeps it from being deleted, which is reported.
async fn remove_apple<R: Runner>(p: &str, runner: &R, inv: &Inventory) -> Result<(), EngineError> {
    let containers: Vec<String> = inv.containers.iter().map(|c| c.name.clone()).collect();
    let networks: Vec<String> = inv.networks.iter().map(|n| n.name.clone()).collect();
    let mut del_c = vec![p.to_string(), "delete".into(), "--force".into()];
    del_c.extend(containers.iter().cloned());
    let mut del_n = vec![p.to_string(), "network".into(), "delete".into()];
    del_n.extend(networks.iter().cloned());
    for (names, argv) in [(containers, del_c), (networks, del_n)] {
        if names.is_empty() {
            continue;
        }
        match apple_checked(runner, &argv).await {
            Ok(_) => {}
            Err(EngineError::Apple { message, .. }) if is_gone(&message) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn tolerate_gone<R: Runner>(runner: &R, argv: &[String]) -> Result<(), EngineError> {
    let out = runner.run(argv).await;
    if out.success() || is_gone(&out.stderr) {
        Ok(())
    } else {
        Err(EngineError::Command {
            command: crate::plan::display_command(argv),
            code: out.code,
            stderr: out.stderr_tail(),
        })
    }
}

/// Does an engine error only say the resource does not exist (any more)?
fn is_gone(stderr: &str) -> bool {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    !lines.is_empty()
        && lines.iter().all(|l| {
            l.contains("No such container")
                || l.contains("No such network")
                || l.contains("not found")
                || l.contains("is not connected")
        })
}

/// Fixes what can be fixed without asking: starts Apple's container service
/// when it is installed, recent enough and stopped (non-interactively: the
/// kernel install is accepted up front, never prompted on stdin). Returns
/// what it did.
pub async fn fix<R: Runner>(runner: &R) -> Vec<String> {
    let mut done = Vec::new();
    let st = status(BackendKind::Apple, runner).await;
    if let (Some(program), false) = (&st.program, st.running) {
        let too_old = st
            .client_version
            .as_deref()
            .and_then(apple::parse_semver)
            .is_some_and(|v| v < apple::MIN_VERSION);
        if too_old {
            done.push("not starting Apple's container service: the CLI is older than 1.0.0; upgrade it first".into());
        } else {
            let argv = vec![
                program.display().to_string(),
                "system".into(),
                "start".into(),
                "--enable-kernel-install".into(),
            ];
            let out = runner.run(&argv).await;
            done.push(if out.success() {
                "started Apple's container service".to_string()
            } else {
                format!(
                    "`{}` failed: {}",
                    crate::plan::display_command(&argv),
                    out.stderr_tail()
                )
            });
        }
    }
    done
}

/// What `doctor` reports about one engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineStatus {
    pub kind: BackendKind,
    pub program: Option<PathBuf>,
    pub client_version: Option<String>,
    pub server_version: Option<String>,
    pub running: bool,
    /// What is wrong, if anything.
    pub problem: Option<String>,
    /// What to do about it.
    pub fix: Option<String>,
    /// What agents run in beyond a container: gVisor where Docker has it,
    /// a VM per container on Apple's runtime.
    pub sandbox: Option<String>,
}

/// Checks whether `kind` is installed and its service answers.
pub async fn status<R: Runner>(kind: BackendKind, runner: &R) -> EngineStatus {
    let mut st = EngineStatus {
        kind,
        program: None,
        client_version: None,
        server_version: None,
        running: false,
        problem: None,
        fix: None,
        sandbox: None,
    };
    let engine = match find_engine(kind) {
        Ok(e) => e,
        Err(e) => {
            st.problem = Some(e.to_string());
            st.fix = Some(match kind {
                BackendKind::Docker => "install Docker Engine (Debian: `apt-get install docker.io`; macOS: Docker Desktop, OrbStack or Colima), or run `scripts/setup`".into(),
                BackendKind::Apple => "install Apple's `container` (1.0 or newer) from github.com/apple/container releases; it needs macOS 26".into(),
            });
            return st;
        }
    };
    st.program = Some(engine.program.clone());
    let p = engine.program_str();
    match kind {
        BackendKind::Docker => {
            let out = runner
                .run(&[
                    p.clone(),
                    "version".into(),
                    "--format".into(),
                    "{{json .}}".into(),
                ])
                .await;
            let (client, server) = docker::parse_version(&out.stdout);
            st.client_version = client;
            st.server_version = server;
            st.running = out.success() && st.server_version.is_some();
            if !st.running {
                st.problem = Some(format!(
                    "the Docker daemon does not answer: {}",
                    out.stderr_tail()
                ));
                st.fix = Some("start Docker (Linux: `dockerd &` as root, or `scripts/setup`; macOS: open Docker Desktop / OrbStack / Colima)".into());
            } else {
                st.sandbox = Some(match docker_runtimes(&engine, runner).await {
                    Ok(r) if r.iter().any(|r| r == docker::GVISOR_RUNTIME) => format!(
                        "gVisor: agents run under `runsc` (turn off per bottle with `[isolation] gvisor = false`, or for all with {}=off)",
                        crate::launch::GVISOR_ENV
                    ),
                    Ok(_) => "runc only: install gVisor (Debian: `apt-get install runsc`) and register it in /etc/docker/daemon.json for a stronger agent sandbox".into(),
                    Err(e) => format!("unknown ({e})"),
                });
            }
        }
        BackendKind::Apple => {
            let out = runner.run(&[p.clone(), "--version".into()]).await;
            st.client_version =
                apple::parse_version(&out.stdout).map(|(a, b, c)| format!("{a}.{b}.{c}"));
            let status = runner
                .run(&[
                    p,
                    "system".into(),
                    "status".into(),
                    "--format".into(),
                    "json".into(),
                ])
                .await;
            let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap_or_default();
            st.running = v.get("status").and_then(|s| s.as_str()) == Some("running");
            st.server_version = v
                .get("apiServerVersion")
                .and_then(|s| s.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            st.sandbox = Some("each container is its own lightweight VM".into());
            match apple::parse_version(&out.stdout) {
                Some(v) if v < apple::MIN_VERSION => {
                    st.problem = Some(format!(
                        "container {}.{}.{} is too old: Bottlebar needs 1.0.0 or newer (before 1.0 a container cannot boot with two networks, and the JSON it prints changed)",
                        v.0, v.1, v.2
                    ));
                    st.fix = Some(
                        "upgrade Apple's `container` to 1.0 or newer (networks also need macOS 26)"
                            .into(),
                    );
                }
                None => {
                    st.problem = Some(format!(
                        "could not read the version from `container --version`: {}",
                        out.stdout.trim()
                    ))
                }
                _ if !st.running => {
                    st.problem = Some("the container system service is not running".into());
                    st.fix = Some("run `container system start --enable-kernel-install`".into());
                }
                _ => {}
            }
        }
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gone_resources_are_recognised() {
        assert!(is_gone("Error: No such container: bottlebar-x-agent\n"));
        assert!(is_gone(
            "Error: No such network: a\nError: No such network: b"
        ));
        assert!(!is_gone("Error response from daemon: error while removing network: network a has active endpoints"));
        assert!(!is_gone(""));
    }
}
