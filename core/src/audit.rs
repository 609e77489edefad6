//! Reading a bottle's audit log (written by its sidecar): one JSON line per
//! egress decision, in `state/<name>/audit/egress.jsonl` and its rotated
//! predecessors `egress.jsonl.1` (newer) … `.N` (older).
//!
//! [`read_all`] and [`read_last`] read what the log holds so far
//! (`read`); a [`Follower`] reads what is written after (`follow`).

mod follow;
mod read;
#[cfg(test)]
mod tests;

pub use follow::Follower;
pub use read::{read_all, read_last, Entries};

use crate::home::Home;
use crate::name::BottleName;
use crate::state::{StateDirs, AUDIT_FILE};
use std::fs::File;
use std::path::{Path, PathBuf};

pub use bottlebar_policy::AuditEntry;
use bottlebar_policy::AuditKind;

/// One audit line for a terminal.
pub fn render(e: &AuditEntry) -> String {
    if e.kind != AuditKind::Request {
        return render_supervise(e);
    }
    let default_port = match e.scheme.as_str() {
        "https" | "tunnel" => 443,
        _ => 80,
    };
    let port = if e.port == default_port {
        String::new()
    } else {
        format!(":{}", e.port)
    };
    let target = match e.scheme.as_str() {
        "tunnel" => format!("{}{port}", e.host),
        s => format!("{s}://{}{port}{}", e.host, e.path),
    };
    let mut line = format!(
        "{}  {:<5}  {:<7} {target}  {}",
        e.time,
        e.decision.as_str().to_uppercase(),
        e.method,
        e.status
    );
    if let Some(r) = &e.reason {
        line.push_str(&format!("  {r}"));
    }
    if let Some(rule) = e.rule {
        line.push_str(&format!("  rule #{rule}"));
    }
    if let Some(s) = &e.injected {
        line.push_str(&format!("  injected:{s}"));
    }
    if e.redacted > 0 {
        line.push_str(&format!("  redacted:{}", e.redacted));
    }
    if let Some(p) = &e.proposal {
        line.push_str(&format!("  grant:{p}"));
    }
    line
}

/// A step of the approval queue: a proposal, its decision, its expiry.
fn render_supervise(e: &AuditEntry) -> String {
    format!(
        "{}  {:<5}  {:<8} {} {}:{}  {}",
        e.time,
        e.decision.as_str().to_uppercase(),
        e.kind.as_str().to_uppercase(),
        e.proposal.as_deref().unwrap_or("-"),
        e.host,
        e.port,
        e.detail.as_deref().unwrap_or("")
    )
}

/// The file the sidecar writes to now (older ones are rotated away from it).
fn current_file(home: &Home, bottle: &BottleName) -> PathBuf {
    StateDirs::new(home.state_dir(bottle))
        .audit
        .join(AUDIT_FILE)
}

/// The audit files of a bottle, oldest first.
pub fn files(home: &Home, bottle: &BottleName) -> Vec<PathBuf> {
    let current = current_file(home, bottle);
    let dir = current.parent().expect("the audit file is in a directory");
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let n = name.strip_prefix(&format!("{AUDIT_FILE}."))?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if current.exists() {
        out.push(current);
    }
    out
}

/// A line that is not an audit entry (a torn write, a foreign file) is shown
/// as such rather than dropped silently.
pub fn parse_line(line: &str) -> Result<AuditEntry, String> {
    serde_json::from_str(line).map_err(|e| format!("unreadable audit line ({e}): {line}"))
}

/// A line as read from a file: bytes that are not UTF-8 (a damaged file)
/// make that line unreadable, not the whole log.
pub fn parse_bytes(line: &[u8]) -> Result<AuditEntry, String> {
    match std::str::from_utf8(line) {
        Ok(line) => parse_line(line),
        Err(e) => Err(format!(
            "unreadable audit line ({e}): {}",
            String::from_utf8_lossy(line)
        )),
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Opens an audit file; one rotated away since it was listed reads as empty.
fn open(path: &Path) -> std::io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(in_file(path, e)),
    }
}

/// An error reading `path`, naming it.
fn in_file(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
