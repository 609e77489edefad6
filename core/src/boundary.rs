//! What a bottle may never mount into its agent: anything that would let the
//! agent reach the sidecar's or the core's private state, or drive a
//! container engine.
//!
//! - the Bottlebar home, any directory inside it, or any parent of it (a
//!   mount of `$HOME` is a parent of `~/.bottlebar`): it holds every
//!   bottle's CA key, secrets, rules, audit logs and self-test records;
//! - a container engine's control socket, or any directory holding one
//!   (`/var/run` holds `docker.sock`; Apple's container service keeps its
//!   state under `~/Library/Application Support/com.apple.container`);
//! - `/` itself.
//!
//! Paths are compared after resolving symlinks, in both directions.

use std::path::{Path, PathBuf};

/// Socket (and service state) paths of the container engines Bottlebar
/// knows, plus `$DOCKER_HOST`'s socket when it names one.
pub fn engine_control_paths() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run/containerd/containerd.sock",
        "/run/containerd/containerd.sock",
        "/run/podman/podman.sock",
        "/var/run/podman/podman.sock",
        "/run/crio/crio.sock",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let home = PathBuf::from(home);
        for rel in [
            ".docker/run/docker.sock",
            ".docker/desktop/docker.sock",
            ".colima/default/docker.sock",
            ".colima/docker.sock",
            ".orbstack/run/docker.sock",
            ".rd/docker.sock",
            ".lima/default/sock/docker.sock",
            "Library/Application Support/com.apple.container",
            "Library/Containers/com.docker.docker",
        ] {
            v.push(home.join(rel));
        }
    }
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|h| !h.is_empty()) {
        let run = PathBuf::from(run);
        v.push(run.join("docker.sock"));
        v.push(run.join("podman/podman.sock"));
    }
    if let Ok(host) = std::env::var("DOCKER_HOST") {
        if let Some(p) = host.strip_prefix("unix://") {
            v.push(PathBuf::from(p));
        }
    }
    v
}

/// Socket file names that mark a directory as holding an engine's control socket.
const ENGINE_SOCKET_NAMES: &[&str] =
    &["docker.sock", "containerd.sock", "podman.sock", "crio.sock"];

/// `p` with symlinks resolved as far as it exists (a missing tail is kept as written).
fn resolved(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) if parent != p => resolved(parent).join(name),
        _ => p.to_path_buf(),
    }
}

/// Whether `a` and `b` overlap: one is the other or inside it.
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Why `host` may not be mounted into an agent, if it may not.
/// `home` is the Bottlebar home.
pub fn forbidden_mount(host: &Path, home: &Path) -> Option<String> {
    let real = resolved(host);
    if real == Path::new("/") {
        return Some("`/` would give the agent the whole machine, the Bottlebar home and the container engine's socket included".into());
    }
    for home_form in [home.to_path_buf(), resolved(home)] {
        if overlaps(&real, &home_form) || overlaps(host, &home_form) {
            let how = if real.starts_with(&home_form) || host.starts_with(&home_form) {
                "is inside"
            } else {
                "contains"
            };
            return Some(format!(
                "it {how} the Bottlebar home {}, which holds every bottle's keys, secrets and rules; mount a project directory instead",
                home.display()
            ));
        }
    }
    for sock in engine_control_paths() {
        for form in [sock.clone(), resolved(&sock)] {
            if form.starts_with(&real) || form.starts_with(host) {
                return Some(format!(
                    "it exposes {}, a container engine's control socket or state, which would let the agent start containers outside the bottle",
                    sock.display()
                ));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(&real) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if ENGINE_SOCKET_NAMES.contains(&name.as_ref()) {
                return Some(format!(
                    "it holds {name}, a container engine's control socket, which would let the agent start containers outside the bottle"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_home_its_parents_and_its_children_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let user = tmp.path().join("user");
        let home = user.join(".bottlebar");
        std::fs::create_dir_all(home.join("state/demo/sidecar")).unwrap();
        std::fs::create_dir_all(user.join("src")).unwrap();
        let link = tmp.path().join("link-to-home");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        for p in [&user, &home, &home.join("state/demo/sidecar"), &link] {
            let why =
                forbidden_mount(p, &home).unwrap_or_else(|| panic!("{} accepted", p.display()));
            assert!(why.contains("Bottlebar home"), "{why}");
        }
        assert_eq!(forbidden_mount(&user.join("src"), &home), None);
        assert!(forbidden_mount(Path::new("/"), &home)
            .unwrap()
            .contains("whole machine"));
    }

    #[test]
    fn engine_sockets_and_their_directories_are_refused() {
        let home = Path::new("/nonexistent/.bottlebar");
        for p in ["/var/run", "/run", "/var/run/docker.sock"] {
            let why = forbidden_mount(Path::new(p), home).unwrap();
            assert!(why.contains("control socket"), "{p}: {why}");
        }
        // A directory with an engine socket in it, wherever it is.
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("docker.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(forbidden_mount(tmp.path(), home)
            .unwrap()
            .contains("docker.sock"));
    }
}
