//! Where Bottlebar keeps things: `$BOTTLEBAR_HOME`, by default `~/.bottlebar`.
//!
//! ```text
//! home-id                 this home's id, on every resource it makes
//! bottles/<name>.toml     bottle manifests (the only place bottles load from)
//! state/<name>/           per-bottle state (see `state.rs`)
//! locks/<name>.lock       held while a launch or teardown of <name> runs
//! ```

use crate::name::BottleName;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// No home directory could be found.
#[derive(Debug, thiserror::Error)]
#[error("cannot find Bottlebar's home: set BOTTLEBAR_HOME or HOME")]
pub struct NoHome;

/// A Bottlebar home: one user's (or one test's) bottles, state and locks.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// A home's stable id (16 hex digits), made once and kept in `home-id`.
/// Resources carry it as a label, so a second home on the same engine (a
/// test suite, another account, a CI job) never lists or removes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HomeId(String);

impl fmt::Display for HomeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl HomeId {
    /// The id as it appears in labels.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        (t.len() == 16
            && t.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
        .then(|| HomeId(t.to_string()))
    }
}

/// The home id could not be read or made.
#[derive(Debug, thiserror::Error)]
pub enum HomeIdError {
    /// Reading or writing `home-id` failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// `home-id` holds something else than an id (edited by hand?).
    #[error("{path} holds {found:?}, not a home id (16 lowercase hex digits); restore it, or delete it to give this home a new id (its running bottles are then no longer recognised as its own)")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What it holds.
        found: String,
    },
}

impl Home {
    /// `$BOTTLEBAR_HOME`, else `$HOME/.bottlebar`. A GUI app launched from
    /// Finder still has HOME, so this works there too.
    pub fn from_env() -> Result<Self, NoHome> {
        if let Some(h) = std::env::var_os("BOTTLEBAR_HOME").filter(|h| !h.is_empty()) {
            return Ok(Self::at(PathBuf::from(h)));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .ok_or(NoHome)?;
        Ok(Self::at(PathBuf::from(home).join(".bottlebar")))
    }

    /// The home at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Its directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where its bottle files are.
    pub fn bottles_dir(&self) -> PathBuf {
        self.root.join("bottles")
    }

    /// Bottle `name`'s file.
    pub fn bottle_file(&self, name: &BottleName) -> PathBuf {
        self.bottles_dir().join(format!("{name}.toml"))
    }

    /// Bottle `name`'s state directory.
    pub fn state_dir(&self, name: &BottleName) -> PathBuf {
        self.root.join("state").join(name.as_str())
    }

    /// Bottle `name`'s lock file.
    pub fn lock_file(&self, name: &BottleName) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }

    /// This home's id, made on first use. Two processes making it at once
    /// agree: the file is created exclusively, and the loser reads it.
    pub fn id(&self) -> Result<HomeId, HomeIdError> {
        let path = self.root.join("home-id");
        let io = |source| HomeIdError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return HomeId::parse(&text).ok_or_else(|| HomeIdError::Damaged {
                    path: path.clone(),
                    found: text.trim().chars().take(40).collect(),
                })
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            Err(_) => {}
        }
        std::fs::create_dir_all(&self.root).map_err(io)?;
        let id = fresh_id(&self.root);
        // Written whole to a file of its own, then linked into place: the
        // id file appears complete or not at all, so a launch racing this
        // one never reads it half-written; the loser reads the winner's.
        let tmp = self
            .root
            .join(format!(".home-id.{}.{id}.tmp", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(format!("{id}\n").as_bytes()).map(|()| f))
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => self.id(),
            Err(e) => Err(io(e)),
        }
    }
}

/// A new id: a hash of the home's path, the time, the process and the
/// address of a stack value, so two homes made at once still differ.
fn fresh_id(root: &Path) -> HomeId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let local = 0u8;
    let seed = format!(
        "{}|{nanos}|{}|{:p}",
        root.display(),
        std::process::id(),
        &local
    );
    HomeId(format!("{:x}", Sha256::digest(seed.as_bytes()))[..16].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_keeps_its_id_and_two_homes_differ() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ha, hb) = (Home::at(a.path().join("h")), Home::at(b.path()));
        let id = ha.id().unwrap();
        assert_eq!(ha.id().unwrap(), id, "stable");
        assert_ne!(hb.id().unwrap(), id);
        assert_eq!(id.as_str().len(), 16);
    }

    /// Launches racing in a fresh home (the e2e suites start several at
    /// once) all read the one id, never a half-written file.
    #[test]
    fn launches_racing_in_a_fresh_home_agree_on_its_id() {
        for _ in 0..100 {
            let dir = tempfile::tempdir().unwrap();
            let ids: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| Home::at(dir.path()).id()))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let first = ids[0].as_ref().unwrap().to_string();
            for id in &ids {
                assert_eq!(id.as_ref().map(|i| i.to_string()).unwrap(), first);
            }
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name())
                .collect();
            assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
        }
    }

    #[test]
    fn a_damaged_id_is_an_error_not_a_new_id() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("home-id"), "not an id\n").unwrap();
        let e = Home::at(d.path()).id().unwrap_err();
        assert!(e.to_string().contains("not a home id"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("home-id")).unwrap(),
            "not an id\n"
        );
    }
}
