//! The two images of a bottle and their build inputs.
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

/// Busybox applets linked into the `busybox` template's `/bin`.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "sleep", "wget", "nc", "cat", "ls", "echo", "env", "ps", "id", "grep", "sed",
    "awk", "head", "tail", "mkdir", "rm", "cp", "mv", "ln", "touch", "chmod", "printf", "test",
    "[", "true", "false", "kill", "uname", "hostname", "ip", "nslookup", "timeout", "vi", "find",
    "xargs", "wc", "sort", "tr", "cut", "tee", "which", "date",
];

/// Public base image used for the busybox template where no static busybox exists locally.
pub const BUSYBOX_FALLBACK_IMAGE: &str = "docker.io/library/busybox:1.37-musl";

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
    /// Copy of this host file, or a symlink to `link` when `from` is None.
    pub from: Option<PathBuf>,
    /// A symlink target instead of a file (busybox applets).
    pub link: Option<String>,
    /// Its mode bits.
    pub mode: u32,
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

/// Finds a static busybox for the `busybox` template: `$BOTTLEBAR_BUSYBOX`, else
/// the usual Debian paths. `None` means: use [`BUSYBOX_FALLBACK_IMAGE`].
pub fn find_static_busybox() -> Option<PathBuf> {
    let candidates = std::env::var_os("BOTTLEBAR_BUSYBOX")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/bin/busybox", "/usr/bin/busybox"].map(PathBuf::from));
    candidates
        .into_iter()
        .find(|p| check_static_linux_elf(p).is_ok())
}

/// A binary can run alone in a `FROM scratch` image only if it is a Linux ELF
/// executable with no program interpreter (i.e. statically linked).
pub fn check_static_linux_elf(path: &Path) -> Result<(), ImageError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let not = |why: &str| ImageError::NotStatic {
        path: path.to_path_buf(),
        why: why.into(),
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err(not("not a Linux (ELF) executable"));
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err(not("not a 64-bit little-endian ELF file"));
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let off = phoff + i * phentsize;
        if off + 4 > bytes.len() {
            return Err(not("truncated ELF program headers"));
        }
        if u32_at(off) == PT_INTERP {
            return Err(not(
                "dynamically linked (it needs a program interpreter); build it statically",
            ));
        }
    }
    Ok(())
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
) -> Result<ImageSpec, ImageError> {
    let mut h = Hasher::new(role.as_str());
    h.field("Dockerfile", dockerfile_text.as_bytes());
    for f in &files {
        match (&f.from, &f.link) {
            (Some(src), _) => h.field(&f.dest, &fs::read(src).map_err(io_err(src))?),
            (None, Some(target)) => h.field(&f.dest, format!("-> {target}").as_bytes()),
            (None, None) => h.field(&f.dest, b""),
        }
        h.field("mode", &f.mode.to_le_bytes());
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
    })
}

/// The sidecar image for `bottle`, built from `sidecar_bin` in `build_dir/sidecar`.
pub fn sidecar_image(
    bottle: &BottleName,
    sidecar_bin: &Path,
    build_dir: &Path,
) -> Result<ImageSpec, ImageError> {
    check_static_linux_elf(sidecar_bin)?;
    let files = vec![PreparedFile {
        dest: "bottlebar-sidecar".into(),
        from: Some(sidecar_bin.to_path_buf()),
        link: None,
        mode: 0o755,
    }];
    prepared_spec(
        bottle,
        Role::Sidecar,
        build_dir,
        SIDECAR_DOCKERFILE.into(),
        files,
    )
}

/// The `busybox` template: `FROM scratch` around a local static busybox, or the
/// public busybox image when there is none.
pub fn busybox_template_image(
    bottle: &BottleName,
    busybox: Option<&Path>,
    build_dir: &Path,
) -> Result<ImageSpec, ImageError> {
    let (dockerfile, files) = match busybox {
        Some(bb) => {
            let mut files = vec![PreparedFile {
                dest: "rootfs/bin/busybox".into(),
                from: Some(bb.to_path_buf()),
                link: None,
                mode: 0o755,
            }];
            files.extend(BUSYBOX_APPLETS.iter().map(|a| PreparedFile {
                dest: format!("rootfs/bin/{a}"),
                from: None,
                link: Some("busybox".into()),
                mode: 0o777,
            }));
            files.push(PreparedFile {
                dest: "rootfs/tmp/.keep".into(),
                from: None,
                link: None,
                mode: 0o644,
            });
            files.push(PreparedFile {
                dest: "rootfs/workspace/.keep".into(),
                from: None,
                link: None,
                mode: 0o644,
            });
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
    prepared_spec(bottle, Role::Agent, build_dir, dockerfile, files)
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
        match (&f.from, &f.link) {
            (Some(src), _) => {
                fs::copy(src, &dest).map_err(io_err(src))?;
                fs::set_permissions(&dest, fs::Permissions::from_mode(f.mode))
                    .map_err(io_err(&dest))?;
            }
            (None, Some(target)) => {
                std::os::unix::fs::symlink(target, &dest).map_err(io_err(&dest))?
            }
            (None, None) => fs::write(&dest, b"").map_err(io_err(&dest))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_binaries_are_refused() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().unwrap();
        let err = check_static_linux_elf(&me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let txt = dir.path().join("script");
        fs::write(&txt, "#!/bin/sh\necho hi\n").unwrap();
        assert!(check_static_linux_elf(&txt)
            .unwrap_err()
            .to_string()
            .contains("not a Linux"));
    }

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
