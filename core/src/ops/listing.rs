//! `bottle ls` and the app's list: every bottle of this home, with what
//! the engine has of each (`status` evaluates one).

use super::choose_backend;
use super::ownership::{home_inventory, Owned};
use super::status::{evaluate, unknown, with_host_records, BottleStatus};
use crate::backend;
use crate::home::Home;
use crate::manifest::{self, BackendKind};
use crate::name::BottleName;
use crate::runner::Runner;
use serde::Serialize;

/// `bottle ls`: every bottle with a manifest, plus any labelled resources
/// whose bottle has none.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// This home's bottles.
    pub bottles: Vec<BottleStatus>,
    /// Manifests that could not be read, with why.
    pub problems: Vec<String>,
    /// Things worth knowing that are not problems (resources adopted from
    /// an older Bottlebar).
    pub notes: Vec<String>,
    /// Bottles of this home whose resources carry no home label (made by an
    /// older Bottlebar, taken as this home's): an event stream of this
    /// home's alone would not see them.
    pub adopted: Vec<String>,
}

/// This home's bottles and what the engine has of each. Another home's
/// bottles on the same engine are not listed.
pub async fn list<R: Runner>(home: &Home, runner: &R) -> Listing {
    let (names, mut problems) = manifest::list_names(home);
    let default_kind = choose_backend(None, None);
    let mut entries = Vec::new();
    for name in &names {
        match manifest::load(home, name.as_str()) {
            Ok(m) => entries.push((name, choose_backend(None, m.backend), m.source)),
            Err(e) => {
                problems.push(e.to_string());
                entries.push((
                    name,
                    default_kind,
                    home.bottle_file(name).display().to_string(),
                ));
            }
        }
    }
    // Ask each backend in use once.
    let mut kinds: Vec<BackendKind> = entries.iter().map(|e| e.1).chain([default_kind]).collect();
    kinds.sort_by_key(|k| k.as_str());
    kinds.dedup();
    let mut inventories = Vec::new();
    let mut notes = Vec::new();
    let mut adopted = Vec::new();
    for kind in kinds {
        let inv = match (backend::find_engine(kind), home.id()) {
            (Ok(engine), Ok(id)) => home_inventory(home, &id, &engine, runner)
                .await
                .map(|owned: Owned| {
                    notes.extend(owned.adoption_notes().into_iter().map(|(_, n)| n));
                    adopted.extend(owned.adopted);
                    owned.mine
                })
                .map_err(|e| e.to_string()),
            (Err(e), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
        };
        inventories.push((kind, inv));
    }
    let inventory_of = |kind: BackendKind| {
        &inventories
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("queried above")
            .1
    };

    let mut bottles: Vec<BottleStatus> = entries
        .into_iter()
        .map(|(name, kind, source)| match inventory_of(kind) {
            Ok(inv) => with_host_records(
                home,
                name,
                evaluate(name, kind, Some(source), &inv.of_bottle(name.as_str())),
            ),
            Err(e) => unknown(name, kind, Some(source), e.clone()),
        })
        .collect();
    // Labelled resources of bottles without a manifest (e.g. a deleted file).
    if let Ok(inv) = inventory_of(default_kind) {
        for orphan in inv.bottles() {
            if names.iter().any(|n| n.as_str() == orphan) {
                continue;
            }
            if let Ok(name) = BottleName::parse(&orphan) {
                let mut st = evaluate(&name, default_kind, None, &inv.of_bottle(&orphan));
                st.problem =
                    Some("no manifest; remove with `bottle down` or `bottle cleanup`".into());
                bottles.push(st);
            }
        }
    }
    notes.dedup();
    adopted.sort();
    adopted.dedup();
    Listing {
        bottles,
        problems,
        notes,
        adopted,
    }
}
