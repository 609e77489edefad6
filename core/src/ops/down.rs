//! `down`: remove a bottle's containers, networks and state; and removing
//! what the engine has of a bottle, for the other operations.

use super::lock::{lock_waiting, LOCK_WAIT};
use super::ownership::home_inventory;
use super::{backend_of, engine_err, state_err, OpError};
use crate::backend::{self, Engine, Inventory};
use crate::events::{Event, Events};
use crate::home::Home;
use crate::manifest::BackendKind;
use crate::name::BottleName;
use crate::runner::Runner;
use crate::state::{self, StateDirs};

/// Removes every container, network and state file of a bottle. Idempotent;
/// works without a manifest (the manifest itself is kept).
pub async fn down<R: Runner>(
    home: &Home,
    name: &str,
    backend_override: Option<BackendKind>,
    runner: &R,
    events: &Events,
) -> Result<(), OpError> {
    let bottle = BottleName::parse(name)?;
    let kind = backend_of(home, &bottle, backend_override);
    let engine = backend::find_engine(kind).map_err(engine_err(&bottle))?;
    let id = home.id()?;
    let _lock = lock_waiting(home, &bottle, LOCK_WAIT, events).await?;
    let owned = home_inventory(home, &id, &engine, runner)
        .await
        .map_err(engine_err(&bottle))?;
    let live = owned.mine.of_bottle(bottle.as_str());
    if live.is_empty() && !owned.foreign.of_bottle(bottle.as_str()).is_empty() {
        events.emit(Event::Note {
            bottle: bottle.to_string(),
            message: format!(
                "bottle `{bottle}` on this engine belongs to another Bottlebar home; left alone"
            ),
        });
    }
    remove_resources(&engine, runner, &bottle, &live, events).await?;
    let dirs = StateDirs::new(home.state_dir(&bottle));
    if state::remove(&dirs).map_err(state_err(&bottle))? {
        events.emit(Event::Removed {
            bottle: bottle.to_string(),
            kind: "state".into(),
            name: dirs.root.display().to_string(),
        });
    }
    if live.is_empty() {
        events.emit(Event::Note {
            bottle: bottle.to_string(),
            message: format!("bottle `{bottle}` had nothing running"),
        });
    }
    Ok(())
}

/// Removes what the engine has of a bottle, saying what went.
pub(super) async fn remove_resources<R: Runner>(
    engine: &Engine,
    runner: &R,
    bottle: &BottleName,
    inv: &Inventory,
    events: &Events,
) -> Result<(), OpError> {
    backend::remove(engine, runner, inv)
        .await
        .map_err(engine_err(bottle))?;
    for c in &inv.containers {
        events.emit(Event::Removed {
            bottle: bottle.to_string(),
            kind: "container".into(),
            name: c.name.clone(),
        });
    }
    for n in &inv.networks {
        events.emit(Event::Removed {
            bottle: bottle.to_string(),
            kind: "network".into(),
            name: n.name.clone(),
        });
    }
    Ok(())
}
