//! The bottle editor: the app's "New / edit bottle" form over the same
//! TOML file the CLI reads, edited in place.
//!
//! Opening reads the file into a [`BottleForm`]; a file that is not valid
//! TOML is refused with the parse error (line and column) and its text, for
//! the text editor, never shown as an empty form. Saving writes only the
//! keys the form owns into the file's own document (`toml_edit`), so
//! comments, order and every key the form does not show stay byte for byte
//! (which keys the form owns is `manifest::schema`); validates the result
//! with the manifest parser, pointing each error at its form field; refuses
//! when the file changed since it was opened; stores secret values in the
//! OS keychain, never in the file; and replaces the file atomically,
//! keeping the previous version as `NAME.toml.bak`.

mod form;
mod read;
mod rule;
mod write;

pub use form::{
    BottleForm, FieldError, FormEnv, FormMount, FormRule, FormSecret, WORKSPACE_TARGET,
};
pub use rule::add_rule;

use crate::home::Home;
use crate::manifest::{self, ManifestError};
use crate::name::BottleName;
use crate::state::write_private;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use toml_edit::DocumentMut;
use write::Layout;

/// The first line of a file the app creates.
const NEW_FILE_HEADER: &str =
    "# Written by the Bottlebar app; the CLI reads it too (docs/manifest.md).\n";

/// Why a bottle cannot be opened in the form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpenError {
    /// The name is not a bottle name.
    #[error("{message}")]
    BadName {
        /// Why.
        message: String,
    },
    /// No file, and not the built-in demo.
    #[error("no bottle named `{name}` (expected {path})")]
    NotFound {
        /// The bottle.
        name: String,
        /// Where its file would be.
        path: String,
    },
    /// The file could not be read.
    #[error("reading {path}: {message}")]
    Unreadable {
        /// The file.
        path: String,
        /// The OS's reason.
        message: String,
    },
    /// The file is not valid TOML: the form cannot show it without losing
    /// what it holds. `text` is the file, for the text editor.
    #[error("{path}:{line}:{column}: {message}")]
    Unparseable {
        /// The file.
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's message.
        message: String,
        /// The file's text.
        text: String,
        /// Its revision, for saving the text back.
        revision: String,
    },
}

/// A bottle's file as text, for the text editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BottleText {
    /// The file (or the built-in demo's text, or empty for a new bottle).
    pub text: String,
    /// Its revision: saving refuses if the file changed since.
    pub revision: String,
}

/// The text a bottle's form and text editor start from: the file, the
/// built-in demo's manifest when it has none, or nothing for a new bottle.
fn base_text(home: &Home, name: &BottleName) -> Result<(PathBuf, Option<String>), OpenError> {
    let path = home.bottle_file(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, Some(text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let demo = name.as_str() == manifest::DEMO_BOTTLE;
            Ok((path, demo.then(|| manifest::DEMO_MANIFEST.to_string())))
        }
        Err(e) => Err(OpenError::Unreadable {
            path: path.display().to_string(),
            message: e.to_string(),
        }),
    }
}

/// A text's revision: a hash of it; empty for no file.
fn revision(text: Option<&str>) -> String {
    text.map(|t| format!("{:x}", Sha256::digest(t.as_bytes()))[..16].to_string())
        .unwrap_or_default()
}

fn bottle_name(name: &str) -> Result<BottleName, OpenError> {
    BottleName::parse(name).map_err(|e| OpenError::BadName {
        message: e.to_string(),
    })
}

/// The form for bottle `name`; an empty name is a new bottle.
pub fn open(home: &Home, name: &str) -> Result<BottleForm, OpenError> {
    if name.is_empty() {
        return Ok(BottleForm {
            template: "busybox".into(),
            ..Default::default()
        });
    }
    let bottle = bottle_name(name)?;
    let (path, text) = base_text(home, &bottle)?;
    let Some(text) = text else {
        return Err(OpenError::NotFound {
            name: name.into(),
            path: path.display().to_string(),
        });
    };
    let doc = parse_document(&path, &text)?;
    Ok(read::form(name, &doc, revision(Some(&text))))
}

/// The file of bottle `name` as text, for the text editor.
pub fn open_text(home: &Home, name: &str) -> Result<BottleText, OpenError> {
    let bottle = bottle_name(name)?;
    let (_, text) = base_text(home, &bottle)?;
    Ok(BottleText {
        revision: revision(text.as_deref()),
        text: text.unwrap_or_default(),
    })
}

fn parse_document(path: &Path, text: &str) -> Result<DocumentMut, OpenError> {
    text.parse::<DocumentMut>().map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| manifest::line_col(text, s.start))
            .unwrap_or((1, 1));
        OpenError::Unparseable {
            path: path.display().to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
            text: text.to_string(),
            revision: revision(Some(text)),
        }
    })
}

/// Validates the form as the CLI would and, if it passes, stores new secret
/// values in the keychain and writes the form into the bottle's file.
pub fn save(home: &Home, form: &BottleForm) -> Result<PathBuf, Vec<FieldError>> {
    let name = BottleName::parse(form.name.trim()).map_err(|e| {
        vec![FieldError {
            field: "name".into(),
            key: "name".into(),
            message: e.to_string(),
        }]
    })?;
    check_duplicates(form)?;
    let (path, base) = base_text(home, &name).map_err(|e| vec![FieldError::form(e.to_string())])?;
    check_revision(&name, base.as_deref(), &form.revision)?;
    let mut doc = match &base {
        Some(text) => parse_document(&path, text).map_err(|e| {
            vec![FieldError::form(format!(
                "{e}; the form cannot edit this file without losing what it holds; fix it in the text editor"
            ))]
        })?,
        None => DocumentMut::new(),
    };
    let layout = write::apply(&mut doc, form).map_err(|e| vec![e])?;
    let text = match base {
        Some(_) => doc.to_string(),
        None => format!("{NEW_FILE_HEADER}{doc}"),
    };
    let parsed = manifest::parse(&name, &path.display().to_string(), &text, home)
        .map_err(|e| vec![field_error(e, &layout)])?;
    store_secret_values(&name, form, &parsed, &layout)?;
    if base.as_deref() == Some(text.as_str()) {
        return Ok(path);
    }
    write_with_backup(home, &path, &text).map_err(|e| vec![FieldError::form(e)])?;
    Ok(path)
}

/// Validates `text` as bottle `name`'s manifest and, if it passes, writes
/// it (the text editor's save). Errors carry the line and column.
pub fn save_text(
    home: &Home,
    name: &str,
    text: &str,
    base_revision: &str,
) -> Result<PathBuf, Vec<FieldError>> {
    let bottle = BottleName::parse(name).map_err(|e| vec![FieldError::form(e.to_string())])?;
    let (path, base) =
        base_text(home, &bottle).map_err(|e| vec![FieldError::form(e.to_string())])?;
    check_revision(&bottle, base.as_deref(), base_revision)?;
    manifest::parse(&bottle, &path.display().to_string(), text, home)
        .map_err(|e| vec![FieldError::form(e.to_string())])?;
    write_with_backup(home, &path, text).map_err(|e| vec![FieldError::form(e)])?;
    Ok(path)
}

/// Refuses to save over a file that changed since the form was opened, or
/// over an existing bottle from the "New bottle" form.
fn check_revision(
    name: &BottleName,
    base: Option<&str>,
    opened: &str,
) -> Result<(), Vec<FieldError>> {
    let now = revision(base);
    if now == opened {
        return Ok(());
    }
    let (field, message) = if opened.is_empty() {
        (
            "name",
            format!("a bottle named `{name}` already exists; open it to edit it"),
        )
    } else {
        (
            "form",
            format!("`{name}` changed on disk since it was opened; reopen it to see the changes (nothing was saved)"),
        )
    };
    Err(vec![FieldError {
        field: field.into(),
        key: String::new(),
        message,
    }])
}

/// Two rows with one name would write one key twice.
fn check_duplicates(form: &BottleForm) -> Result<(), Vec<FieldError>> {
    let dup = |names: Vec<&str>, what: &str, field: &str| {
        for (i, n) in names.iter().enumerate() {
            if !n.is_empty() && names[..i].contains(n) {
                return Err(vec![FieldError {
                    field: format!("{field}-{i}"),
                    key: String::new(),
                    message: format!("{what} `{n}` is listed twice"),
                }]);
            }
        }
        Ok(())
    };
    dup(
        form.env.iter().map(|e| e.key.trim()).collect(),
        "the variable",
        "env",
    )?;
    dup(
        form.secrets.iter().map(|s| s.name.trim()).collect(),
        "the secret",
        "secrets",
    )
}

/// New values typed for keychain secrets go to the keychain; a secret that
/// comes from elsewhere (an env var, a file) cannot take one.
fn store_secret_values(
    name: &BottleName,
    form: &BottleForm,
    parsed: &manifest::Manifest,
    layout: &Layout,
) -> Result<(), Vec<FieldError>> {
    let field_of = |secret: &str| {
        layout
            .secrets
            .iter()
            .find(|(n, _)| n == secret)
            .map_or_else(|| "form".to_string(), |(_, f)| f.clone())
    };
    for s in form.secrets.iter().filter(|s| !s.value.is_empty()) {
        let secret = s.name.trim();
        let error = |message: String| {
            vec![FieldError {
                field: field_of(secret),
                key: format!("secrets.{secret}"),
                message,
            }]
        };
        match parsed
            .secrets
            .iter()
            .find(|p| p.name == secret)
            .map(|p| &p.source)
        {
            Some(manifest::SecretSource::Keychain) => {}
            Some(other) => {
                return Err(error(format!(
                    "this secret's value comes from {}; set it there",
                    other.describe()
                )))
            }
            None => return Err(error("no such secret in the file".into())),
        }
        crate::keychain::store(name, secret, &s.value).map_err(|e| error(e.to_string()))?;
    }
    Ok(())
}

/// Replaces `path` with `text` atomically (a temporary file renamed over
/// it), first copying the version it replaces to `NAME.toml.bak`.
fn write_with_backup(home: &Home, path: &Path, text: &str) -> Result<(), String> {
    let dir = home.bottles_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    if let Ok(previous) = std::fs::read(path) {
        let mut backup = path.as_os_str().to_owned();
        backup.push(".bak");
        write_private(Path::new(&backup), &previous, 0o600).map_err(|e| e.to_string())?;
    }
    write_private(path, text.as_bytes(), 0o600).map_err(|e| e.to_string())
}

/// Points a manifest error at the form field it belongs to.
fn field_error(e: ManifestError, layout: &Layout) -> FieldError {
    let field = field_for_key(&e.key, layout);
    let message = match (field.as_str(), e.position) {
        // An error in a part the form does not show: say where it is.
        ("form", Some((line, col))) => format!("line {line}:{col}: {}", e.message),
        _ => e.message,
    };
    FieldError {
        field,
        key: e.key,
        message,
    }
}

/// The form field a manifest key (`mounts[2].host`, `env.PATH`) belongs
/// to, or `form` for the keys the form does not show.
fn field_for_key(key: &str, layout: &Layout) -> String {
    let index =
        |rest: &str| -> Option<usize> { rest.strip_prefix('[')?.split(']').next()?.parse().ok() };
    let head = key.split(['.', '[']).next().unwrap_or("");
    let rest = &key[head.len()..];
    let named = |list: &[(String, String)]| {
        let name = rest.trim_start_matches('.').split('.').next().unwrap_or("");
        list.iter().find(|(n, _)| n == name).map(|(_, f)| f.clone())
    };
    let field = match head {
        "name" | "description" => Some(head.to_string()),
        "agent" => Some(
            match rest {
                ".template" => "template",
                r if r.starts_with(".command") => "agent_command",
                _ => "dockerfile",
            }
            .to_string(),
        ),
        "mounts" => index(rest).and_then(|i| layout.mounts.get(i).cloned()),
        "egress" => index(rest).and_then(|i| layout.egress.get(i).cloned()),
        "env" => named(&layout.env),
        "secrets" => named(&layout.secrets),
        _ => None,
    };
    field.unwrap_or_else(|| "form".into())
}

#[cfg(test)]
mod tests;
