//! The window's New bottle from a template: what there is to choose from,
//! and making the bottle (its file, and its key in the OS keychain) through
//! `bottlebar_core::ops::new_bottle`. Launching it is the usual action.

use crate::{refresh, AppState};
use bottlebar_core::ops::{self, KeySource, NewBottle, NewBottleError};
use bottlebar_core::templates::{PRESETS, TEMPLATES};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tauri::{AppHandle, Manager, Runtime};

/// A template as the window offers it.
#[derive(Debug, Serialize)]
pub struct TemplateChoice {
    /// Its name in the bottle file.
    pub name: &'static str,
    /// For people.
    pub title: &'static str,
    /// One line on what it is.
    pub summary: &'static str,
    /// The ways it signs in (`id`, `label`); empty: no key.
    pub credentials: Vec<(&'static str, &'static str)>,
}

/// A preset as the window offers it.
#[derive(Debug, Serialize)]
pub struct PresetChoice {
    /// Its name.
    pub name: &'static str,
    /// For people.
    pub title: &'static str,
    /// The hosts it allows.
    pub hosts: &'static [&'static str],
    /// What its optional token is, if it takes one.
    pub token: Option<&'static str>,
}

/// Everything New bottle offers.
#[derive(Debug, Serialize)]
pub struct Choices {
    /// The templates, in order.
    pub templates: Vec<TemplateChoice>,
    /// The presets.
    pub presets: Vec<PresetChoice>,
    /// The bottles that exist (a suggested name avoids them).
    pub taken: Vec<String>,
}

/// What the window sends to make a bottle.
#[derive(Debug, Deserialize)]
pub struct NewBottleRequest {
    /// The bottle's name.
    pub name: String,
    /// The template.
    pub template: String,
    /// The workspace folder.
    pub workspace: String,
    /// `api-key` or `oauth`, where the template has both.
    pub auth: Option<String>,
    /// The key, for the keychain.
    pub key: Option<String>,
    /// Ticked presets.
    pub presets: Vec<String>,
    /// The GitHub preset's token, if given (for the keychain).
    pub github_token: Option<String>,
    /// Supervise on.
    pub supervise: bool,
}

/// An error the window shows beside a field (`name`, `template`,
/// `workspace`, `auth`, `key`, `preset`, or `form`).
#[derive(Debug, Serialize)]
pub struct NewBottleFieldError {
    /// The field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The templates, presets and existing names.
pub fn choices<R: Runtime>(app: &AppHandle<R>) -> Choices {
    let home = &app.state::<AppState>().home;
    Choices {
        templates: TEMPLATES
            .iter()
            .map(|t| TemplateChoice {
                name: t.name,
                title: t.title,
                summary: t.summary,
                credentials: t.credentials.iter().map(|c| (c.id, c.label)).collect(),
            })
            .collect(),
        presets: PRESETS
            .iter()
            .map(|p| PresetChoice {
                name: p.name,
                title: p.title,
                hosts: p.hosts,
                token: p.token.map(|t| t.label),
            })
            .collect(),
        taken: bottlebar_core::manifest::list_names(home)
            .0
            .iter()
            .map(|n| n.to_string())
            .collect(),
    }
}

/// Makes the bottle; the key (if its template has one) goes to the
/// keychain. Nothing is written when anything is wrong.
pub async fn create<R: Runtime>(
    app: &AppHandle<R>,
    req: NewBottleRequest,
) -> Result<String, NewBottleFieldError> {
    let choice = NewBottle {
        name: req.name.trim().to_string(),
        template: req.template,
        workspace: PathBuf::from(req.workspace.trim()),
        auth: req.auth.filter(|a| !a.is_empty()),
        key_source: KeySource::Keychain,
        github_token: req
            .github_token
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|_| KeySource::Keychain),
        presets: req.presets,
        base: None,
        extra_roots: Vec::new(),
        supervise: req.supervise,
    };
    let home = app.state::<AppState>().home.clone();
    let path = ops::new_bottle(
        &home,
        &choice,
        req.key.as_deref(),
        req.github_token.as_deref(),
    )
    .map_err(|e| {
        let field = match &e {
            NewBottleError::Invalid { field, .. } => field.to_string(),
            NewBottleError::MissingKey { .. } | NewBottleError::Keychain(_) => "key".into(),
            _ => "form".into(),
        };
        NewBottleFieldError {
            field,
            message: e.to_string(),
        }
    })?;
    refresh(app).await;
    Ok(path.display().to_string())
}
