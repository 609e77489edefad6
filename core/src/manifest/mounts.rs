//! Validating `[[mounts]]`: host paths that exist, outside Bottlebar's home
//! and the engine's sockets; container paths that are absolute, distinct and
//! not reserved.

use super::raw::*;
use super::*;
use std::collections::BTreeSet;
use std::path::{Component, Path};
use toml::Spanned;

/// Characters that would break a `--mount type=bind,source=…,target=…` spec.
fn bad_mount_char(s: &str) -> Option<char> {
    s.chars()
        .find(|c| matches!(c, ',' | '"' | '\'' | '=' | '\n' | '\r' | '\0'))
}

pub(super) fn mounts(
    cx: &Ctx<'_>,
    mounts: &[Spanned<RawMount>],
    home: &Path,
) -> Result<Vec<Mount>, ManifestError> {
    let mut out = Vec::with_capacity(mounts.len());
    let mut targets = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let m = m.get_ref();
        let hkey = format!("mounts[{i}].host");
        let ckey = format!("mounts[{i}].container");
        let host = m.host.get_ref();
        let hspan = Some(m.host.span());
        if let Some(c) = bad_mount_char(host) {
            return Err(cx.err(hspan, &hkey, format!("host path may not contain {c:?}")));
        }
        let host_path = Path::new(host);
        if !host_path.is_absolute() {
            return Err(cx.err(hspan, &hkey, format!("host path `{host}` must be absolute")));
        }
        let meta = std::fs::metadata(host_path).map_err(|e| {
            cx.err(
                hspan.clone(),
                &hkey,
                format!("host path `{host}` is not accessible: {e}"),
            )
        })?;
        if !meta.is_dir() && !meta.is_file() {
            return Err(cx.err(
                hspan,
                &hkey,
                format!("host path `{host}` is neither a directory nor a regular file"),
            ));
        }
        if let Some(why) = crate::boundary::forbidden_mount(host_path, home) {
            return Err(cx.err(
                hspan,
                &hkey,
                format!("host path `{host}` cannot be mounted: {why}"),
            ));
        }

        let container = m.container.get_ref();
        let cspan = Some(m.container.span());
        if let Some(c) = bad_mount_char(container) {
            return Err(cx.err(
                cspan,
                &ckey,
                format!("container path may not contain {c:?}"),
            ));
        }
        let cpath = Path::new(container);
        let normal = cpath.is_absolute()
            && cpath
                .components()
                .skip(1)
                .all(|c| matches!(c, Component::Normal(_)))
            && !container.contains("//")
            && (container.len() == 1 || !container.ends_with('/'));
        if !normal || container == "/" {
            return Err(cx.err(cspan, &ckey, format!("container path `{container}` must be an absolute, normalised path other than `/` (no `.`, `..`, `//` or trailing `/`)")));
        }
        if let Some(r) = RESERVED_CONTAINER_DIRS
            .iter()
            .find(|r| cpath.starts_with(r))
        {
            return Err(cx.err(
                cspan,
                &ckey,
                format!("container path `{container}` is inside `{r}`, which Bottlebar reserves"),
            ));
        }
        if !targets.insert(container.clone()) {
            return Err(cx.err(
                cspan,
                &ckey,
                format!("container path `{container}` is mounted twice"),
            ));
        }
        out.push(Mount {
            host: host_path.to_path_buf(),
            container: container.clone(),
            readonly: m.readonly,
            is_file: meta.is_file(),
        });
    }
    // Single files are staged into a directory mounted at their container parent,
    // so no other mount may sit at or under that parent, and vice versa.
    for (i, f) in out.iter().enumerate().filter(|(_, m)| m.is_file) {
        let parent = Path::new(&f.container).parent().unwrap_or(Path::new("/"));
        if parent == Path::new("/") {
            return Err(cx.err(Some(mounts[i].get_ref().container.span()), &format!("mounts[{i}].container"), format!("single file `{}` cannot be mounted directly under `/`: Bottlebar mounts files through their parent directory, so choose a directory such as `/data/...`", f.container)));
        }
        for (j, d) in out.iter().enumerate().filter(|(_, m)| !m.is_file) {
            let dp = Path::new(&d.container);
            if dp.starts_with(parent) || parent.starts_with(dp) {
                return Err(cx.err(Some(mounts[i].get_ref().container.span()), &format!("mounts[{i}].container"), format!("file `{}` is mounted through its directory `{}`, which overlaps the directory mount `{}` (mounts[{j}])", f.container, parent.display(), d.container)));
            }
        }
    }
    Ok(out)
}
