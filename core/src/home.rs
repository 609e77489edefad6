//! Where Bottlebar keeps things: `$BOTTLEBAR_HOME`, by default `~/.bottlebar`.
//!
//! ```text
//! bottles/<name>.toml     bottle manifests (the only place bottles load from)
//! state/<name>/           per-bottle state (see `state.rs`)
//! locks/<name>.lock       held while a launch or teardown of <name> runs
//! ```

use crate::name::BottleName;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot find Bottlebar's home: set BOTTLEBAR_HOME or HOME")]
pub struct NoHome;

#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
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

    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn bottles_dir(&self) -> PathBuf {
        self.root.join("bottles")
    }

    pub fn bottle_file(&self, name: &BottleName) -> PathBuf {
        self.bottles_dir().join(format!("{name}.toml"))
    }

    pub fn state_dir(&self, name: &BottleName) -> PathBuf {
        self.root.join("state").join(name.as_str())
    }

    pub fn lock_file(&self, name: &BottleName) -> PathBuf {
        self.root.join("locks").join(format!("{name}.lock"))
    }
}
