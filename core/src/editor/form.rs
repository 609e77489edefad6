//! The editor's form: what the app's "New / edit bottle" window shows and
//! sends back. List entries carry `origin`, where they came from in the
//! file, so saving edits that entry in place (keeping its comments and the
//! keys the form does not show) instead of writing a new one.

use serde::{Deserialize, Serialize};

/// The container path of the workspace folder chosen in the form.
pub const WORKSPACE_TARGET: &str = "/workspace";

/// A bottle as the form shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BottleForm {
    /// The bottle's name (the file's stem); read-only for an existing bottle.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `agent.template` (`busybox`), or empty when `dockerfile` is used.
    pub template: String,
    /// `agent.dockerfile`, relative to the bottles folder.
    pub dockerfile: String,
    /// `agent.command` as shell words (`claude --verbose`, `sh -c 'sleep 1'`),
    /// for "Start agent".
    pub agent_command: String,
    /// A host folder mounted read-write at `/workspace`.
    pub workspace: String,
    /// Where the workspace mount is in the file's `mounts`, if it is there.
    pub workspace_origin: Option<usize>,
    /// The other `mounts`.
    pub mounts: Vec<FormMount>,
    /// `egress` rules.
    pub egress: Vec<FormRule>,
    /// `env` variables.
    pub env: Vec<FormEnv>,
    /// `secrets`.
    pub secrets: Vec<FormSecret>,
    /// The file's text hash when the form was opened (empty for a new
    /// bottle): saving refuses if the file changed since.
    pub revision: String,
    /// What the file sets that the form does not show (`backend`, `[dns]`,
    /// `[hosts]`, …), kept as written on save. Shown, never sent back.
    #[serde(skip_deserializing)]
    pub kept: Vec<String>,
}

/// One `[[mounts]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormMount {
    /// `host`.
    pub host: String,
    /// `container`.
    pub container: String,
    /// `readonly`.
    pub readonly: bool,
    /// Its index in the file's `mounts`; `None` for a new one.
    pub origin: Option<usize>,
}

/// One `[[egress]]` rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormRule {
    /// `host`: `example.com` or `*.example.com`.
    pub host: String,
    /// `methods`, comma-separated, e.g. `GET, POST`.
    pub methods: String,
    /// `paths`, comma-separated path prefixes.
    pub paths: String,
    /// `inject.secret`: inject this secret into requests the rule allows.
    pub inject_secret: String,
    /// `inject.header` (default `authorization`, value `Bearer {secret}`).
    pub inject_header: String,
    /// Its index in the file's `egress`; `None` for a new one.
    pub origin: Option<usize>,
}

/// One `[env]` variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormEnv {
    /// The variable's name.
    pub key: String,
    /// Its value.
    pub value: String,
    /// Its name in the file; `None` for a new one.
    pub origin: Option<String>,
}

/// One `[secrets.NAME]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FormSecret {
    /// The secret's name.
    pub name: String,
    /// `placeholder_env`: the variable the agent sees a placeholder in.
    pub placeholder_env: String,
    /// A new value to store in the keychain; empty keeps the stored one.
    pub value: String,
    /// Where the value comes from, as people read it (`keychain`,
    /// `env API_KEY`, `file ~/.token`). Shown, never sent back.
    #[serde(skip_deserializing)]
    pub source: String,
    /// Its name in the file; `None` for a new one.
    pub origin: Option<String>,
}

/// Why a form could not be saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The form field it belongs to: `name`, `description`, `template`,
    /// `dockerfile`, `agent_command`, `workspace`, `mount-N`, `egress-N`,
    /// `env-N`, `secrets-N` (N: the row in the form), or `form`.
    pub field: String,
    /// The manifest key, e.g. `egress[1].host` (empty when none applies).
    pub key: String,
    /// What is wrong, in the CLI's words.
    pub message: String,
}

impl FieldError {
    /// An error about the whole form (not one field).
    pub fn form(message: impl Into<String>) -> Self {
        FieldError {
            field: "form".into(),
            key: String::new(),
            message: message.into(),
        }
    }
}

/// Splits a comma-separated form field into its trimmed, non-empty items.
pub(crate) fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}
