//! What of Bottlebar's runs on an engine (its labelled resources), and
//! removing it.

use super::engine::{apple_checked, checked, Engine, EngineError};
use super::{apple, docker};
use crate::manifest::BackendKind;
use crate::name::Role;
use crate::runner::Runner;
use serde::Serialize;
use std::collections::BTreeMap;

/// A labelled container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveContainer {
    /// The engine's id.
    pub id: String,
    /// Its name (`bottlebar-NAME-ROLE`).
    pub name: String,
    /// The bottle it belongs to (`bottlebar.bottle`).
    pub bottle: String,
    /// What it is to the bottle (`bottlebar.role`).
    pub role: Option<Role>,
    /// The id of the Bottlebar home that made it (`bottlebar.home`); `None`
    /// for resources made before homes were told apart.
    pub home: Option<String>,
    /// Whether it runs now.
    pub running: bool,
    /// The engine's word for its state (`exited`, …).
    pub status: String,
    /// When it started (RFC 3339), if running.
    pub started_at: Option<String>,
    /// Its command.
    pub command: Vec<String>,
    /// Its image.
    pub image: String,
    /// Network name → IPv4 address.
    pub networks: BTreeMap<String, String>,
    /// Runs under gVisor (Docker's `runsc` runtime).
    pub gvisor: bool,
}

/// A labelled network as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveNetwork {
    /// The engine's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The bottle it belongs to.
    pub bottle: String,
    /// What it is to the bottle.
    pub role: Option<Role>,
    /// The id of the Bottlebar home that made it; `None` before homes.
    pub home: Option<String>,
    /// Whether it is internal (no route out).
    pub internal: bool,
    /// Names of the containers attached to it.
    pub attached: Vec<String>,
}

/// Every labelled resource the engine has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Inventory {
    /// Labelled containers.
    pub containers: Vec<LiveContainer>,
    /// Labelled networks.
    pub networks: Vec<LiveNetwork>,
}

impl Inventory {
    /// What belongs to bottle `bottle`.
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

    /// The container in `role`, if any.
    pub fn container(&self, role: Role) -> Option<&LiveContainer> {
        self.containers.iter().find(|c| c.role == Some(role))
    }

    /// The network in `role`, if any.
    pub fn network(&self, role: Role) -> Option<&LiveNetwork> {
        self.networks.iter().find(|n| n.role == Some(role))
    }

    /// Whether nothing is there.
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

fn ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Docker: the IPv4 subnets of every network on the engine (any owner), so
/// a bottle's networks can be given free ones.
pub async fn docker_subnets<R: Runner>(
    engine: &Engine,
    runner: &R,
) -> Result<Vec<crate::subnets::Net>, EngineError> {
    let p = engine.program_str();
    let ls = docker::all_networks_argv(&p);
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
                inv.containers = tolerant(runner, &argv, docker::parse_containers).await?;
            }
            if !network_ids.is_empty() {
                let argv = docker::network_inspect_argv(&p, &network_ids);
                inv.networks = tolerant(runner, &argv, docker::parse_networks).await?;
            }
            Ok(inv)
        }
        BackendKind::Apple => {
            let p = engine.program_str();
            let containers = apple_checked(runner, &apple::list_argv(&p)).await?.stdout;
            let networks = apple_checked(runner, &apple::network_list_argv(&p))
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

/// Runs an `inspect` and parses what it printed even if it failed (a
/// resource removed between listing and inspecting makes it exit 1 while
/// still printing the others); an error only when nothing usable came out.
async fn tolerant<R: Runner, T>(
    runner: &R,
    argv: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, EngineError> {
    let out = runner.run(argv).await;
    parse(&out.stdout).map_err(|why| {
        let command = crate::plan::display_command(argv);
        if out.success() {
            EngineError::Parse { command, why }
        } else {
            EngineError::Command {
                command,
                code: out.code,
                stderr: out.stderr_tail(),
            }
        }
    })
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
    let del_c = apple::delete_argv(p, &containers);
    let del_n = apple::network_delete_argv(p, &networks);
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
