//! The audit log: one JSON line per egress decision.
//!
//! Writes are small and appended with `O_APPEND`, so a line is never split
//! between two writers; a failed write is logged, never fatal (egress must not
//! depend on the log disk, and denials are still enforced).

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

#[derive(Serialize, Debug)]
pub struct Entry<'a> {
    pub time: String,
    pub bottle: &'a str,
    pub method: &'a str,
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: u16,
    pub path: &'a str,
    /// 1-based index of the rule that allowed the request or refused it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    pub decision: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub status: u16,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub duration_ms: u64,
}

pub struct AuditLog {
    file: Option<Mutex<File>>,
}

impl AuditLog {
    pub fn open(path: Option<&str>) -> std::io::Result<Self> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                OpenOptions::new().create(true).append(true).open(p)?,
            )),
            None => None,
        };
        Ok(Self { file })
    }

    pub fn record(&self, entry: &Entry<'_>) {
        let Some(file) = &self.file else { return };
        let mut line = match serde_json::to_vec(entry) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("audit entry not serializable: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(&line) {
            tracing::warn!("audit log write failed: {e}");
        }
    }
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
