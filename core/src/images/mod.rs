//! The two images of a bottle and their build inputs: the types, hashing,
//! the sidecar's image and writing a prepared context (`agent.rs` has the
//! agent's images, `elf.rs` the static-binary check).
//!
//! - The sidecar image is `FROM scratch` plus the static `bottlebar-sidecar`
//!   binary: no base image, no registry.
//! - The agent image comes from a built-in template or the bottle's own
//!   Dockerfile. The `busybox` template is built `FROM scratch` around a static
//!   busybox found on this machine (Debian's `busybox-static`); where none
//!   exists it falls back to a small public base image, which needs a registry.
//!
//! Each image is tagged with a hash of its inputs and labelled with it, so an
//! unchanged image is never rebuilt.

mod agent;
mod elf;

pub use agent::{
    busybox_template_image, debian_template_image, user_image, BUSYBOX_APPLETS,
    BUSYBOX_FALLBACK_IMAGE,
};
pub use elf::{check_static_linux_elf, find_static_busybox};

use crate::name::{BottleName, Role};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// Where the sidecar binary lives inside its image.
pub const SIDECAR_BIN_IN_IMAGE: &str = "/bottlebar-sidecar";
/// The sidecar config inside its container.
pub const SIDECAR_CONFIG_IN_CONTAINER: &str = "/etc/bottlebar/sidecar.json";

const SIDECAR_DOCKERFILE: &str = "FROM scratch\nCOPY bottlebar-sidecar /bottlebar-sidecar\nENTRYPOINT [\"/bottlebar-sidecar\"]\nCMD [\"serve\", \"--config\", \"/etc/bottlebar/sidecar.json\"]\n";

/// Why an image could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No sidecar binary where Bottlebar looks.
    #[error("the sidecar binary was not found (looked in: {looked}); build it with `scripts/build-sidecar` or set BOTTLEBAR_SIDECAR_BIN")]
    SidecarNotFound {
        /// Where it looked.
        looked: String,
    },
    /// A binary for a `FROM scratch` image is not a static Linux executable.
    #[error("{path} is not usable in a FROM scratch image: {why}")]
    NotStatic {
        /// The binary.
        path: PathBuf,
        /// What it is instead.
        why: String,
    },
    /// Reading or writing a file failed.
    #[error("reading build input {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
}

/// One image to build: where its inputs are and what it will be called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSpec {
    /// Which of the bottle's images.
    pub role: Role,
    /// `bottlebar/<bottle>-<role>:<hash prefix>`.
    pub tag: String,
    /// Hex SHA-256 of every build input; also the `bottlebar.content-hash` label.
    pub content_hash: String,
    /// The Dockerfile it is built from.
    pub dockerfile: PathBuf,
    /// The build context.
    pub context: PathBuf,
    /// Where the Dockerfile and context come from.
    pub source: ImageSource,
    /// `--build-arg NAME=VALUE`s (part of the hash).
    pub build_args: Vec<(String, String)>,
}

/// How the build context comes to exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// Context prepared by Bottlebar in the state directory from these files.
    Prepared {
        /// The Dockerfile's text.
        dockerfile_text: String,
        /// The files the build context holds.
        files: Vec<PreparedFile>,
    },
    /// The user's own Dockerfile and context, used in place.
    User,
}

/// A file put into a prepared build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreparedFile {
    /// Path inside the context.
    pub dest: String,
    /// What it holds.
    pub contents: FileContents,
    /// Its mode bits.
    pub mode: u32,
}

/// What a prepared file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileContents {
    /// A copy of this host file.
    Copy(PathBuf),
    /// This text (a template's own files).
    Text(String),
    /// A symlink to this target (busybox applets).
    Link(String),
    /// Nothing (a directory's placeholder).
    Empty,
}

impl PreparedFile {
    /// A file of `dest` holding `contents`, mode `mode`.
    pub fn new(dest: impl Into<String>, contents: FileContents, mode: u32) -> Self {
        PreparedFile {
            dest: dest.into(),
            contents,
            mode,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Finds the static sidecar binary: `$BOTTLEBAR_SIDECAR_BIN`, else next to the
/// running executable (how an installed app ships it).
pub fn find_sidecar_binary() -> Result<PathBuf, ImageError> {
    let mut looked = Vec::new();
    if let Some(p) = std::env::var_os("BOTTLEBAR_SIDECAR_BIN").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        looked.push(format!("BOTTLEBAR_SIDECAR_BIN={}", p.display()));
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(Path::to_path_buf));
    for p in exe_dir.iter().flat_map(|d| sidecar_places(d)) {
        if p.is_file() {
            return Ok(p);
        }
        looked.push(p.display().to_string());
    }
    Err(ImageError::SidecarNotFound {
        looked: looked.join(", "),
    })
}

/// Where the sidecar is, relative to the directory of the running program:
/// beside it (as `scripts/demo` installs them, and the app bundle), in an
/// installed `libexec`, or where the project's scripts build it (a static
/// build for the Linux target, beside the `release`/`debug` directory).
fn sidecar_places(exe_dir: &Path) -> Vec<PathBuf> {
    const BIN: &str = "bottlebar-sidecar";
    let mut v = vec![
        exe_dir.join(BIN),
        exe_dir.join("../libexec/bottlebar").join(BIN),
    ];
    for arch in ["x86_64", "aarch64"] {
        for libc in ["gnu", "musl"] {
            v.push(exe_dir.join(format!("../{arch}-unknown-linux-{libc}/release/{BIN}")));
        }
    }
    v
}

struct Hasher(Sha256);

impl Hasher {
    fn new(kind: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"bottlebar-image-v1\0");
        h.update(kind.as_bytes());
        Self(h)
    }
    fn field(&mut self, name: &str, data: &[u8]) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update((data.len() as u64).to_le_bytes());
        self.0.update(data);
    }
    fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn tag_for(bottle: &BottleName, role: Role, hash: &str) -> String {
    format!("{}:{}", bottle.image_repo(role), &hash[..16])
}

/// Hashes a prepared context (Dockerfile text plus file contents and links).
fn prepared_spec(
    bottle: &BottleName,
    role: Role,
    build_dir: &Path,
    dockerfile_text: String,
    files: Vec<PreparedFile>,
    build_args: Vec<(String, String)>,
) -> Result<ImageSpec, ImageError> {
    let mut h = Hasher::new(role.as_str());
    h.field("Dockerfile", dockerfile_text.as_bytes());
    for f in &files {
        match &f.contents {
            FileContents::Copy(src) => h.field(&f.dest, &fs::read(src).map_err(io_err(src))?),
            FileContents::Text(text) => h.field(&f.dest, text.as_bytes()),
            FileContents::Link(target) => h.field(&f.dest, format!("-> {target}").as_bytes()),
            FileContents::Empty => h.field(&f.dest, b""),
        }
        h.field("mode", &f.mode.to_le_bytes());
    }
    for (name, value) in &build_args {
        h.field(&format!("--build-arg {name}"), value.as_bytes());
    }
    let hash = h.finish();
    let context = build_dir.join(role.as_str());
    Ok(ImageSpec {
        role,
        tag: tag_for(bottle, role, &hash),
        content_hash: hash,
        dockerfile: context.join("Dockerfile"),
        context,
        source: ImageSource::Prepared {
            dockerfile_text,
            files,
        },
        build_args,
    })
}

/// The sidecar image for `bottle`, built from `sidecar_bin` in `build_dir/sidecar`.
pub fn sidecar_image(
    bottle: &BottleName,
    sidecar_bin: &Path,
    build_dir: &Path,
) -> Result<ImageSpec, ImageError> {
    check_static_linux_elf(sidecar_bin)?;
    let files = vec![PreparedFile::new(
        "bottlebar-sidecar",
        FileContents::Copy(sidecar_bin.to_path_buf()),
        0o755,
    )];
    prepared_spec(
        bottle,
        Role::Sidecar,
        build_dir,
        SIDECAR_DOCKERFILE.into(),
        files,
        Vec::new(),
    )
}

/// Writes a prepared context to disk (a no-op for user images). Replaces any
/// earlier context so a stale file can never end up in an image.
pub fn materialize(spec: &ImageSpec) -> Result<(), ImageError> {
    let ImageSource::Prepared {
        dockerfile_text,
        files,
    } = &spec.source
    else {
        return Ok(());
    };
    use std::os::unix::fs::PermissionsExt;
    let ctx = &spec.context;
    if ctx.exists() {
        fs::remove_dir_all(ctx).map_err(io_err(ctx))?;
    }
    fs::create_dir_all(ctx).map_err(io_err(ctx))?;
    fs::write(&spec.dockerfile, dockerfile_text).map_err(io_err(&spec.dockerfile))?;
    for f in files {
        let dest = ctx.join(&f.dest);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match &f.contents {
            FileContents::Copy(src) => {
                fs::copy(src, &dest).map_err(io_err(src))?;
            }
            FileContents::Text(text) => fs::write(&dest, text).map_err(io_err(&dest))?,
            FileContents::Link(target) => {
                std::os::unix::fs::symlink(target, &dest).map_err(io_err(&dest))?;
                continue;
            }
            FileContents::Empty => fs::write(&dest, b"").map_err(io_err(&dest))?,
        }
        fs::set_permissions(&dest, fs::Permissions::from_mode(f.mode)).map_err(io_err(&dest))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_follow_content_and_contexts_materialize() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bb");
        fs::write(&bin, b"one").unwrap();
        let name = BottleName::parse("t").unwrap();
        let a = busybox_template_image(&name, Some(&bin), dir.path()).unwrap();
        let b = busybox_template_image(&name, Some(&bin), dir.path()).unwrap();
        assert_eq!(a.content_hash, b.content_hash);
        assert!(a.tag.starts_with("bottlebar/t-agent:"));
        fs::write(&bin, b"two").unwrap();
        let c = busybox_template_image(&name, Some(&bin), dir.path()).unwrap();
        assert_ne!(a.content_hash, c.content_hash);

        materialize(&c).unwrap();
        assert_eq!(
            fs::read(c.context.join("rootfs/bin/busybox")).unwrap(),
            b"two"
        );
        assert_eq!(
            fs::read_link(c.context.join("rootfs/bin/sh")).unwrap(),
            Path::new("busybox")
        );
        // Materializing again replaces the context cleanly.
        materialize(&c).unwrap();
    }
}
