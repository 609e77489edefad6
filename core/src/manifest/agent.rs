//! `[agent]`: a built-in template (with the base image of a Debian one)
//! or the bottle's own Dockerfile and build context.

use super::raw::RawAgent;
use super::{AgentImage, Ctx, ManifestError};
use crate::templates;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// `[agent]` checked: the template exists (and takes a `base`), or the
/// Dockerfile and its context do.
pub(super) fn agent(
    cx: &Ctx<'_>,
    agent: &Spanned<RawAgent>,
    base_dir: &Path,
) -> Result<AgentImage, ManifestError> {
    let a = agent.get_ref();
    let names = templates::names().join(", ");
    match (&a.template, &a.dockerfile) {
        (Some(_), Some(d)) => Err(cx.err(Some(d.span()), "agent.dockerfile", "give either `template` or `dockerfile`, not both")),
        (None, None) => Err(cx.err(Some(agent.span()), "agent", format!("needs `template` (one of: {names}) or `dockerfile` (a path relative to the bottle file)"))),
        (Some(t), None) => {
            if let Some(c) = &a.context {
                return Err(cx.err(Some(c.span()), "agent.context", "`context` goes with `dockerfile`, not with `template`"));
            }
            let Some(template) = templates::find(t.get_ref()) else {
                return Err(cx.err(Some(t.span()), "agent.template", format!("unknown template `{}`; built-in templates: {names}", t.get_ref())));
            };
            let base = match &a.base {
                None => None,
                Some(b) if !template.is_debian() => {
                    return Err(cx.err(Some(b.span()), "agent.base", format!("the `{}` template is built without a base image; `base` goes with the Debian templates", template.name)))
                }
                Some(b) => Some(image_reference(b.get_ref()).map_err(|m| cx.err(Some(b.span()), "agent.base", m))?),
            };
            Ok(AgentImage::Template { name: template.name.to_string(), base })
        }
        (None, Some(d)) => {
            if let Some(b) = &a.base {
                return Err(cx.err(Some(b.span()), "agent.base", "`base` goes with a Debian `template`; a Dockerfile names its own `FROM`"));
            }
            let dockerfile = resolve_from(base_dir, d.get_ref());
            if !dockerfile.is_file() {
                return Err(cx.err(Some(d.span()), "agent.dockerfile", format!("no such file: {}", dockerfile.display())));
            }
            let context = match &a.context {
                Some(c) => {
                    let p = resolve_from(base_dir, c.get_ref());
                    if !p.is_dir() {
                        return Err(cx.err(Some(c.span()), "agent.context", format!("no such directory: {}", p.display())));
                    }
                    p
                }
                None => dockerfile.parent().map(Path::to_path_buf).unwrap_or_else(|| base_dir.to_path_buf()),
            };
            Ok(AgentImage::Dockerfile { dockerfile, context })
        }
    }
}

/// An image reference as `docker build --build-arg` passes it on: a
/// registry path, tag and digest characters only.
fn image_reference(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && !s.starts_with(['-', '.', '/', ':', '@'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not an image reference like `debian:bookworm-slim` or `registry.example.com/debian:12`"))
    }
}

fn resolve_from(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
