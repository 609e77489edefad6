//! `build`: a bottle's images, built now and nothing else created. A
//! template's first build takes minutes; built ahead, the bottle's launch
//! finds its images and skips its build steps (they are skipped by the same
//! content-hash probe). The plan is the launch plan's build part
//! ([`backend::image_plan`]), so the images are the very ones `up` builds.

use super::lock::{lock_waiting, LOCK_WAIT};
use super::up::{preflight, StateGuard};
use super::{image_err, OpError, UpOptions};
use crate::backend;
use crate::events::Events;
use crate::executor;
use crate::home::Home;
use crate::images;
use crate::launch::{self, BuildInputs};
use crate::runner::Runner;
use serde::Serialize;
use std::sync::Arc;

/// What `build` made ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Built {
    /// The agent's image.
    pub agent_image: String,
    /// The sidecar's image.
    pub sidecar_image: String,
    /// How long the builds took (the skipped ones next to nothing).
    pub duration_ms: u64,
}

/// Builds the images `name`'s launch would build (skipping those built
/// already, unless `opts.rebuild` asks for the agent's afresh). Creates no
/// container or network, and leaves no state directory it did not find: a
/// running bottle keeps running on the image it started with.
pub async fn build<R: Runner>(
    home: &Home,
    name: &str,
    opts: UpOptions,
    runner: Arc<R>,
    events: &Events,
) -> Result<Built, OpError> {
    let pre = preflight(home, name, &opts, runner.as_ref()).await?;
    let m = &pre.manifest;
    let bottle = &m.name;
    // A launch of the same bottle writes the same build contexts.
    let _lock = lock_waiting(home, bottle, LOCK_WAIT, events).await?;
    let inputs = match opts.inputs {
        Some(i) => i,
        None => BuildInputs::locate().map_err(image_err(bottle))?,
    };
    let program = pre.engine.program_str();
    let target = launch::Target {
        backend: pre.kind,
        program: &program,
        version: pre.version,
    };
    let dns = launch::choose_dns(m, pre.kind);
    let mut spec =
        launch::describe(home, &pre.home_id, m, target, &inputs, dns).map_err(image_err(bottle))?;
    spec.rebuild_agent = opts.rebuild;
    let _contexts = StateGuard::new(&spec.state);
    for image in [&spec.sidecar_image, &spec.agent_image] {
        images::materialize(image).map_err(image_err(bottle))?;
    }
    let outcome = executor::execute(&backend::image_plan(&spec), runner, events)
        .await
        .map_err(OpError::Build)?;
    Ok(Built {
        agent_image: spec.agent_image.tag.clone(),
        sidecar_image: spec.sidecar_image.tag.clone(),
        duration_ms: outcome.duration.as_millis() as u64,
    })
}
