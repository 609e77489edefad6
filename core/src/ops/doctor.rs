//! `bottle doctor` and the app's Settings: one report of what this machine
//! has (engines, the sidecar binary, the demo's busybox, the secrets store)
//! and whether the chosen backend is ready. The CLI and the app render the
//! same report.

use super::choose_backend;
use crate::backend::{self, EngineStatus};
use crate::images;
use crate::manifest::BackendKind;
use crate::runner::Runner;
use serde::Serialize;

/// What `doctor` found.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// The backend bottles use unless they say otherwise.
    pub default_backend: BackendKind,
    /// Why that one.
    pub reason: String,
    /// Each engine this machine can have (Apple's only on macOS, or when
    /// installed).
    pub engines: Vec<EngineStatus>,
    /// The sidecar binary images are built from.
    pub sidecar: Check,
    /// The static busybox the demo template is built from.
    pub busybox: Check,
    /// Where secrets typed into the app are kept.
    pub secrets_store: String,
    /// What `fix` did, when asked to.
    pub fixed: Vec<String>,
    /// The default backend answers and the sidecar binary is there.
    pub ready: bool,
}

/// One thing checked: whether it is fine, and the path or the problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Fine.
    pub ok: bool,
    /// Where it is, or what is wrong and what to do.
    pub detail: String,
}

/// Checks this machine; with `fix`, first fixes what can be fixed without
/// asking (starting Apple's container service).
pub async fn doctor<R: Runner>(runner: &R, fix: bool) -> DoctorReport {
    let fixed = if fix {
        backend::fix(runner).await
    } else {
        Vec::new()
    };
    let mut engines = Vec::new();
    for kind in [BackendKind::Docker, BackendKind::Apple] {
        // Apple's runtime only exists on macOS: no nagging on Linux.
        if kind == BackendKind::Apple
            && !cfg!(target_os = "macos")
            && backend::find_engine(kind).is_err()
        {
            continue;
        }
        engines.push(backend::status(kind, runner).await);
    }
    let default_backend = choose_backend(None, None);
    let sidecar = match images::find_sidecar_binary()
        .and_then(|p| images::check_static_linux_elf(&p).map(|_| p))
    {
        Ok(p) => Check {
            ok: true,
            detail: p.display().to_string(),
        },
        Err(e) => Check {
            ok: false,
            detail: e.to_string(),
        },
    };
    let busybox = match images::find_static_busybox() {
        Some(p) => Check {
            ok: true,
            detail: p.display().to_string(),
        },
        None => Check {
            ok: false,
            detail: format!(
                "no static busybox; the demo template will pull {}",
                images::BUSYBOX_FALLBACK_IMAGE
            ),
        },
    };
    let backend_ready = engines
        .iter()
        .any(|e| e.kind == default_backend && e.running && e.problem.is_none());
    DoctorReport {
        default_backend,
        reason: reason(default_backend),
        ready: backend_ready && sidecar.ok,
        engines,
        sidecar,
        busybox,
        secrets_store: crate::keychain::store_in_use().describe().to_string(),
        fixed,
    }
}

fn reason(chosen: BackendKind) -> String {
    if std::env::var("BOTTLEBAR_BACKEND").is_ok() {
        "set by BOTTLEBAR_BACKEND".into()
    } else if chosen == BackendKind::Apple {
        "Apple's container runtime is installed on this Mac".into()
    } else {
        "Docker is the runtime on this machine (Apple's runtime needs macOS 26)".into()
    }
}
