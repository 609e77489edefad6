//! `cleanup`: sweep this home's bottles that are not fully running
//! (crashed launches, stopped or broken bottles).

use super::lock::{lock_waiting, CLEANUP_LOCK_WAIT};
use super::ownership::home_inventory;
use super::status::{evaluate, with_host_records, BottleState};
use super::{choose_backend, down::remove_resources, engine_err, OpError};
use crate::backend::{self, Inventory};
use crate::events::{Event, Events};
use crate::home::Home;
use crate::manifest::{self, BackendKind};
use crate::name::BottleName;
use crate::runner::Runner;
use crate::state::{self, StateDirs};

/// Removes the resources of every bottle that is not fully running (crashed
/// launches, stopped or broken bottles), skipping bottles whose launch is in
/// progress. Returns the names of the bottles swept.
pub async fn cleanup<R: Runner>(
    home: &Home,
    backend_override: Option<BackendKind>,
    runner: &R,
    events: &Events,
) -> Result<Vec<String>, OpError> {
    let kind = choose_backend(backend_override, None);
    let sweeper = BottleName::parse("cleanup").expect("valid");
    let engine = backend::find_engine(kind).map_err(engine_err(&sweeper))?;
    let id = home.id()?;
    let owned = home_inventory(home, &id, &engine, runner)
        .await
        .map_err(engine_err(&sweeper))?;
    for (bottle, message) in owned.adoption_notes() {
        events.emit(Event::Note { bottle, message });
    }
    let inv = owned.mine;
    let mut swept = Vec::new();
    // This home's bottles on the engine, and those with a manifest here: a
    // launch of one of them that was killed may still have engine commands
    // creating things. Another home's are never touched.
    let mut owners = inv.bottles();
    for name in manifest::list_names(home).0 {
        if !owners.iter().any(|o| o == name.as_str()) {
            owners.push(name.to_string());
        }
    }
    for owner in owners {
        let Ok(bottle) = BottleName::parse(&owner) else {
            // Not a name Bottlebar would create; leave it alone rather than guess.
            events.emit(Event::Note {
                bottle: owner.clone(),
                message: format!("skipping resources labelled with invalid bottle name `{owner}`"),
            });
            continue;
        };
        // Bottles of this home must also have passed their self-test; a
        // bottle from elsewhere (its record is not here) only has to run.
        let running = |mine: &Inventory| {
            let mut status = evaluate(&bottle, kind, None, mine);
            if home.bottle_file(&bottle).is_file() {
                status = with_host_records(home, &bottle, status);
            }
            status.state == BottleState::Running
        };
        if running(&inv.of_bottle(&owner)) {
            continue;
        }
        // A launch may be under way (or its commands still finishing after
        // it was killed): wait for it, then look again.
        let Ok(_lock) = lock_waiting(home, &bottle, CLEANUP_LOCK_WAIT, events).await else {
            events.emit(Event::Note {
                bottle: owner.clone(),
                message: format!("skipping `{owner}`: a launch is in progress"),
            });
            continue;
        };
        let mine = home_inventory(home, &id, &engine, runner)
            .await
            .map_err(engine_err(&sweeper))?
            .mine
            .of_bottle(&owner);
        if mine.is_empty() || running(&mine) {
            continue;
        }
        remove_resources(&engine, runner, &bottle, &mine, events).await?;
        let dirs = StateDirs::new(home.state_dir(&bottle));
        let _ = state::remove(&dirs);
        swept.push(owner);
    }
    Ok(swept)
}
