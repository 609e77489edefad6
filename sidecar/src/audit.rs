//! The audit log: one JSON line per egress decision, rotated by size so a
//! chatty agent cannot fill the disk (`egress.jsonl`, `egress.jsonl.1`, …).
//!
//! A failed write is logged, never fatal: enforcement must not depend on the
//! log disk, and denials are enforced either way.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

/// One audit line; the type is shared with the core, which reads the log.
pub use bottlebar_policy::AuditEntry as Entry;

struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
}

/// The audit log, rotated by size.
pub struct AuditLog {
    writer: Option<Mutex<Writer>>,
    max_bytes: u64,
    keep: u32,
}

impl AuditLog {
    /// Opens (or, with `None`, discards) the log at `path`.
    pub fn open(path: Option<&str>, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        let writer = match path {
            Some(p) => {
                let file = OpenOptions::new().create(true).append(true).open(p)?;
                let size = file.metadata()?.len();
                Some(Mutex::new(Writer {
                    path: PathBuf::from(p),
                    file,
                    size,
                }))
            }
            None => None,
        };
        Ok(Self {
            writer,
            max_bytes: max_bytes.max(4096),
            keep,
        })
    }

    /// Appends one line.
    pub fn record(&self, entry: &Entry) {
        let Some(writer) = &self.writer else { return };
        let mut line = match serde_json::to_vec(entry) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("audit entry not serializable: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.size + line.len() as u64 > self.max_bytes {
            if let Err(e) = self.rotate(&mut w) {
                tracing::warn!("audit log rotation failed: {e}");
            }
        }
        match w.file.write_all(&line) {
            Ok(()) => w.size += line.len() as u64,
            Err(e) => tracing::warn!("audit log write failed: {e}"),
        }
    }

    fn rotate(&self, w: &mut Writer) -> std::io::Result<()> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", w.path.display()));
        if self.keep == 0 {
            std::fs::remove_file(&w.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&w.path, numbered(1))?;
        }
        w.file = OpenOptions::new().create(true).append(true).open(&w.path)?;
        w.size = 0;
        Ok(())
    }
}

/// The time now, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_bounds_the_disk_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("egress.jsonl");
        let log = AuditLog::open(Some(path.to_str().unwrap()), 4096, 2).unwrap();
        let entry = Entry {
            host: "example.com".into(),
            path: "/".repeat(200),
            ..Default::default()
        };
        for _ in 0..500 {
            log.record(&entry);
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["egress.jsonl", "egress.jsonl.1", "egress.jsonl.2"]
        );
        for n in &names {
            let len = std::fs::metadata(dir.path().join(n)).unwrap().len();
            assert!(len <= 4096, "{n} is {len} bytes");
            let text = std::fs::read_to_string(dir.path().join(n)).unwrap();
            assert!(
                text.lines()
                    .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
                "whole lines only"
            );
        }
    }
}
