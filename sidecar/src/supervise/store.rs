//! Proposal files: `<requests_dir>/<id>.json`, one per proposal, and the
//! grants in force: `<requests_dir>/grants` (not `.json`, so it is never
//! taken for a proposal). Written atomically and readable by the host only
//! (0600). The sidecar is their only writer; the core reads them, and
//! records its decisions elsewhere.

use bottlebar_policy::supervise::{Grant, Proposal, GRANTS_FILE};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The proposals directory.
#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (made if missing).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes `p` (replacing an earlier version of it).
    pub fn write(&self, p: &Proposal) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(p).expect("a proposal serializes");
        self.replace(&format!("{}.json", p.id), &json)
    }

    /// Writes the grants in force, replacing the last list.
    pub fn write_grants(&self, grants: &[Grant]) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(grants).expect("grants serialize");
        self.replace(GRANTS_FILE, &json)
    }

    /// Replaces file `name` with `bytes` atomically (a temporary file
    /// renamed over it), 0600.
    fn replace(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(name))
    }

    /// Every proposal on file (unreadable files are skipped: the sidecar
    /// wrote them all, so one that does not parse was cut short).
    pub fn load(&self) -> Vec<Proposal> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<Proposal> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        v.sort_by(|a, b| a.created.cmp(&b.created));
        v
    }
}
