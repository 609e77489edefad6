//! The agent's image: a built-in template (`busybox` `FROM scratch`; the
//! Debian templates of `crate::templates` on their `BASE`), or the bottle's
//! own Dockerfile.

use super::{
    io_err, prepared_spec, tag_for, FileContents, Hasher, ImageError, ImageSource, ImageSpec,
    PreparedFile,
};
use crate::name::{BottleName, Role};
use crate::templates::Template;
use std::fs;
use std::path::Path;

/// Busybox applets linked into the `busybox` template's `/bin`.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "sleep", "wget", "nc", "cat", "ls", "echo", "env", "ps", "id", "grep", "sed",
    "awk", "head", "tail", "mkdir", "rm", "cp", "mv", "ln", "touch", "chmod", "printf", "test",
    "[", "true", "false", "kill", "uname", "hostname", "ip", "nslookup", "timeout", "vi", "find",
    "xargs", "wc", "sort", "tr", "cut", "tee", "which", "date",
];

/// Public base image used for the busybox template where no static busybox exists locally.
pub const BUSYBOX_FALLBACK_IMAGE: &str = "docker.io/library/busybox:1.37-musl";

/// The `busybox` template: `FROM scratch` around a local static busybox, or the
/// public busybox image when there is none.
pub fn busybox_template_image(
    bottle: &BottleName,
    busybox: Option<&Path>,
    build_dir: &Path,
) -> Result<ImageSpec, ImageError> {
    let (dockerfile, files) = match busybox {
        Some(bb) => {
            let mut files = vec![PreparedFile::new(
                "rootfs/bin/busybox",
                FileContents::Copy(bb.to_path_buf()),
                0o755,
            )];
            files.extend(BUSYBOX_APPLETS.iter().map(|a| {
                PreparedFile::new(
                    format!("rootfs/bin/{a}"),
                    FileContents::Link("busybox".into()),
                    0o777,
                )
            }));
            for keep in ["rootfs/tmp/.keep", "rootfs/workspace/.keep"] {
                files.push(PreparedFile::new(keep, FileContents::Empty, 0o644));
            }
            (
                "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\nWORKDIR /workspace\nCMD [\"sh\"]\n"
                    .to_string(),
                files,
            )
        }
        None => (
            format!("FROM {BUSYBOX_FALLBACK_IMAGE}\nWORKDIR /workspace\nCMD [\"sh\"]\n"),
            Vec::new(),
        ),
    };
    prepared_spec(
        bottle,
        Role::Agent,
        build_dir,
        dockerfile,
        files,
        Vec::new(),
    )
}

/// A Debian template (`claude-code`, `codex`, `dev`) built on `base`, with
/// the agent user's uid `agent_uid`, trusting `extra_roots` (PEM files) too
/// while it builds.
pub fn debian_template_image(
    bottle: &BottleName,
    template: &Template,
    base: &str,
    agent_uid: u32,
    extra_roots: &[std::path::PathBuf],
    build_dir: &Path,
) -> Result<ImageSpec, ImageError> {
    let mut roots = String::new();
    for path in extra_roots {
        roots.push_str(&fs::read_to_string(path).map_err(io_err(path))?);
        if !roots.ends_with('\n') {
            roots.push('\n');
        }
    }
    let dockerfile = template.dockerfile().ok_or_else(|| ImageError::Io {
        path: build_dir.to_path_buf(),
        source: std::io::Error::other(format!("`{}` is not a Debian template", template.name)),
    })?;
    let files = template
        .context_files(&roots)
        .into_iter()
        .map(|f| PreparedFile::new(f.name, FileContents::Text(f.text), f.mode))
        .collect();
    let build_args = vec![
        ("BASE".to_string(), base.to_string()),
        ("AGENT_UID".to_string(), agent_uid.to_string()),
    ];
    prepared_spec(
        bottle,
        Role::Agent,
        build_dir,
        dockerfile,
        files,
        build_args,
    )
}

/// The bottle's own Dockerfile. The hash covers the Dockerfile's bytes and, for
/// every file in the context, its path, size, mode and modification time:
/// reading a whole workspace on every launch would be too slow, and a changed
/// file changes its mtime.
pub fn user_image(
    bottle: &BottleName,
    dockerfile: &Path,
    context: &Path,
) -> Result<ImageSpec, ImageError> {
    let mut h = Hasher::new("agent-user");
    h.field(
        "Dockerfile",
        &fs::read(dockerfile).map_err(io_err(dockerfile))?,
    );
    let mut entries = Vec::new();
    walk(context, context, &mut entries)?;
    entries.sort();
    for (rel, meta) in entries {
        h.field(&rel, meta.as_bytes());
    }
    let hash = h.finish();
    Ok(ImageSpec {
        role: Role::Agent,
        tag: tag_for(bottle, Role::Agent, &hash),
        content_hash: hash,
        dockerfile: dockerfile.to_path_buf(),
        context: context.to_path_buf(),
        source: ImageSource::User,
        build_args: Vec::new(),
    })
}

/// Upper bound on files hashed in a user build context.
const MAX_CONTEXT_FILES: usize = 200_000;

fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), ImageError> {
    use std::os::unix::fs::MetadataExt;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else {
            out.push((
                rel,
                format!(
                    "{} {:o} {}.{}",
                    meta.len(),
                    meta.mode(),
                    meta.mtime(),
                    meta.mtime_nsec()
                ),
            ));
        }
        if out.len() > MAX_CONTEXT_FILES {
            return Err(ImageError::Io {
                path: root.to_path_buf(),
                source: std::io::Error::other(format!("build context has more than {MAX_CONTEXT_FILES} files; point `agent.context` at a smaller directory")),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_context_hash_sees_new_files() {
        let dir = tempfile::tempdir().unwrap();
        let df = dir.path().join("Dockerfile");
        fs::write(&df, "FROM scratch\n").unwrap();
        let name = BottleName::parse("t").unwrap();
        let a = user_image(&name, &df, dir.path()).unwrap();
        fs::write(dir.path().join("new.txt"), "x").unwrap();
        let b = user_image(&name, &df, dir.path()).unwrap();
        assert_ne!(a.content_hash, b.content_hash);
    }
}
