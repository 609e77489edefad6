//! The manifest as written: serde structures with spans (unknown keys are
//! errors), and the position helpers errors use.

use super::ManifestError;
use bottlebar_policy::EgressRule;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

// ---- raw, as written ----------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub(super) description: Option<String>,
    pub(super) backend: Option<Spanned<String>>,
    pub(super) agent: Spanned<RawAgent>,
    #[serde(default)]
    pub(super) mounts: Vec<Spanned<RawMount>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) egress: Vec<Spanned<EgressRule>>,
    #[serde(default)]
    pub(super) secrets: BTreeMap<String, Spanned<RawSecret>>,
    #[serde(default)]
    pub(super) tls: RawTls,
    #[serde(default)]
    pub(super) dns: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) hosts: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) git_gate: bool,
    #[serde(default)]
    pub(super) supervise: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) resources: RawResources,
    #[serde(default)]
    pub(super) isolation: RawIsolation,
    #[serde(default)]
    pub(super) allow_private_ranges: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIsolation {
    #[serde(default)]
    pub(super) accept_leaks: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) gvisor: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecret {
    pub(super) env: Option<Spanned<String>>,
    pub(super) file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) keychain: bool,
    pub(super) placeholder_env: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    #[serde(default)]
    pub(super) extra_roots: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    pub(super) template: Option<Spanned<String>>,
    pub(super) dockerfile: Option<Spanned<String>>,
    pub(super) context: Option<Spanned<String>>,
    pub(super) base: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) command: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMount {
    pub(super) host: Spanned<String>,
    pub(super) container: Spanned<String>,
    #[serde(default)]
    pub(super) readonly: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResources {
    pub(super) cpus: Option<Spanned<i64>>,
    pub(super) memory: Option<Spanned<String>>,
}

pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    /// The raw manifest, or the TOML error at its key and position.
    pub(super) fn deserialize(&self) -> Result<RawManifest, ManifestError> {
        toml::from_str(self.text).map_err(|e| {
            let span = e.span();
            let key = span
                .clone()
                .map(|s| key_at(self.text, s.start))
                .unwrap_or_default();
            self.err(span, &key, e.message().trim().to_string())
        })
    }

    /// An error at `span` (when known) about `key`.
    pub(super) fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        message: impl Into<String>,
    ) -> ManifestError {
        ManifestError {
            file: self.file.to_string(),
            position: span.map(|s| line_col(self.text, s.start)),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The key a parse error points at, read from the source: the text before `=`
/// on a key/value line (prefixed with the enclosing `[table]`), or the header
/// of a `[table]` line.
fn key_at(text: &str, offset: usize) -> String {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| {
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
    };
    if let Some(h) = header(line) {
        return h;
    }
    let Some((key, _)) = line.split_once('=') else {
        return String::new();
    };
    let key = key.trim().trim_matches('"');
    let table = text[..start].lines().rev().map(str::trim).find_map(header);
    match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    }
}
