//! Which of the engine's Bottlebar resources belong to this home. Every
//! resource carries its home's id (`bottlebar.home`); one from before homes
//! were told apart carries none, and is this home's if this home has the
//! bottle's state directory (its sidecar mounts it), with a note saying so.
//! Another home's bottles are never listed, stopped or swept from here.

use crate::backend::{self, Engine, EngineError, Inventory};
use crate::home::{Home, HomeId};
use crate::runner::Runner;

/// The engine's resources, sorted by owner.
#[derive(Debug, Default)]
pub struct Owned {
    /// This home's (labelled with its id, or adopted).
    pub mine: Inventory,
    /// Other homes' (or unlabelled ones this home has no state for).
    pub foreign: Inventory,
    /// Bottles whose unlabelled resources were taken as this home's.
    pub adopted: Vec<String>,
}

impl Owned {
    /// A note for each adopted bottle.
    pub fn adoption_notes(&self) -> Vec<(String, String)> {
        self.adopted
            .iter()
            .map(|b| {
                (
                    b.clone(),
                    format!("bottle `{b}`: its resources carry no home label (made by an older Bottlebar); taken as this home's because its state directory is here. Relaunching it labels them."),
                )
            })
            .collect()
    }
}

/// Sorts `inv` by owner: `id`'s, and unlabelled ones of bottles for which
/// `has_state` holds, are mine.
pub fn split(inv: Inventory, id: &HomeId, has_state: impl Fn(&str) -> bool) -> Owned {
    let mut owned = Owned::default();
    let mut is_mine = |bottle: &str, home: Option<&String>| match home {
        Some(h) => h == id.as_str(),
        None if has_state(bottle) => {
            if !owned.adopted.iter().any(|b| b == bottle) {
                owned.adopted.push(bottle.to_string());
            }
            true
        }
        None => false,
    };
    let (mut mine, mut foreign) = (Inventory::default(), Inventory::default());
    for c in inv.containers {
        if is_mine(&c.bottle, c.home.as_ref()) {
            mine.containers.push(c);
        } else {
            foreign.containers.push(c);
        }
    }
    for n in inv.networks {
        if is_mine(&n.bottle, n.home.as_ref()) {
            mine.networks.push(n);
        } else {
            foreign.networks.push(n);
        }
    }
    owned.mine = mine;
    owned.foreign = foreign;
    owned
}

/// The engine's Bottlebar resources, sorted by owner for `home`.
pub async fn home_inventory<R: Runner>(
    home: &Home,
    id: &HomeId,
    engine: &Engine,
    runner: &R,
) -> Result<Owned, EngineError> {
    let inv = backend::inventory(engine, runner).await?;
    Ok(split(inv, id, |bottle| {
        crate::name::BottleName::parse(bottle)
            .is_ok_and(|b| home.state_dir(&b).join("sidecar").is_dir())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{LiveContainer, LiveNetwork};
    use crate::name::Role;

    fn container(bottle: &str, home: Option<&str>) -> LiveContainer {
        LiveContainer {
            id: bottle.into(),
            name: format!("bottlebar-{bottle}-agent"),
            bottle: bottle.into(),
            role: Some(Role::Agent),
            home: home.map(String::from),
            running: true,
            status: String::new(),
            started_at: None,
            command: vec![],
            image: String::new(),
            networks: Default::default(),
            gvisor: false,
        }
    }

    fn network(bottle: &str, home: Option<&str>) -> LiveNetwork {
        LiveNetwork {
            id: bottle.into(),
            name: format!("bottlebar-{bottle}-internal"),
            bottle: bottle.into(),
            role: Some(Role::Internal),
            home: home.map(String::from),
            internal: true,
            attached: vec![],
        }
    }

    #[test]
    fn resources_go_to_their_home_and_unlabelled_ones_to_the_home_with_their_state() {
        let dir = tempfile::tempdir().unwrap();
        let id = Home::at(dir.path()).id().unwrap();
        let other = "ffffffffffffffff";
        let inv = Inventory {
            containers: vec![
                container("mine", Some(id.as_str())),
                container("theirs", Some(other)),
                container("legacy", None),
                container("stranger", None),
            ],
            networks: vec![
                network("mine", Some(id.as_str())),
                network("legacy", None),
                network("theirs", Some(other)),
            ],
        };
        let owned = split(inv, &id, |b| b == "legacy");
        assert_eq!(owned.mine.bottles(), ["legacy", "mine"]);
        assert_eq!(owned.foreign.bottles(), ["stranger", "theirs"]);
        assert_eq!(owned.adopted, ["legacy"]);
        assert!(owned.adoption_notes()[0].1.contains("no home label"));
    }
}
