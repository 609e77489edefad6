//! Reading a bottle's audit log (written by its sidecar): one JSON line per
//! egress decision, in `state/<name>/audit/egress.jsonl` and its rotated
//! predecessors `egress.jsonl.1` (newer) … `.N` (older).

use crate::home::Home;
use crate::name::BottleName;
use crate::state::{StateDirs, AUDIT_FILE};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
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

/// The audit files of a bottle, oldest first.
pub fn files(home: &Home, bottle: &BottleName) -> Vec<PathBuf> {
    let dir = StateDirs::new(home.state_dir(bottle)).audit;
    let current = dir.join(AUDIT_FILE);
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
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

/// Reads every entry so far, oldest first.
pub fn read_all(
    home: &Home,
    bottle: &BottleName,
) -> std::io::Result<Vec<Result<AuditEntry, String>>> {
    let mut out = Vec::new();
    for f in files(home, bottle) {
        for line in BufReader::new(File::open(&f)?).lines() {
            let line = line?;
            if !line.trim().is_empty() {
                out.push(parse_line(&line));
            }
        }
    }
    Ok(out)
}

/// Follows the current audit file across rotations, like `tail -F`.
pub struct Follower {
    path: PathBuf,
    reader: Option<(BufReader<File>, u64)>,
    partial: String,
}

impl Follower {
    /// Starts at the end of what exists now.
    pub fn from_end(home: &Home, bottle: &BottleName) -> Self {
        let path = StateDirs::new(home.state_dir(bottle))
            .audit
            .join(AUDIT_FILE);
        let reader = open_at_end(&path);
        Self {
            path,
            reader,
            partial: String::new(),
        }
    }

    /// Lines written since the last call.
    pub fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some((reader, _)) = &mut self.reader {
            read_lines(reader, &mut self.partial, &mut lines);
        }
        // Rotated (a new file under the name) or created since: drain the old
        // file (done above, it is still open), then read the new one from the start.
        let current_ino = std::fs::metadata(&self.path).ok().map(|m| m.ino());
        let open_ino = self.reader.as_ref().map(|(_, ino)| *ino);
        if current_ino.is_some() && current_ino != open_ino {
            if let Ok(f) = File::open(&self.path) {
                let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                let mut reader = BufReader::new(f);
                self.partial.clear();
                read_lines(&mut reader, &mut self.partial, &mut lines);
                self.reader = Some((reader, ino));
            }
        }
        lines
    }
}

fn open_at_end(path: &Path) -> Option<(BufReader<File>, u64)> {
    let mut f = File::open(path).ok()?;
    let ino = f.metadata().ok()?.ino();
    f.seek(SeekFrom::End(0)).ok()?;
    Some((BufReader::new(f), ino))
}

fn read_lines(reader: &mut BufReader<File>, partial: &mut String, out: &mut Vec<String>) {
    loop {
        let mut buf = String::new();
        match reader.read_line(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                partial.push_str(&buf);
                if partial.ends_with('\n') {
                    let line = std::mem::take(partial);
                    if !line.trim().is_empty() {
                        out.push(line.trim_end().to_string());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn entry(host: &str) -> String {
        serde_json::to_string(&AuditEntry {
            host: host.into(),
            decision: bottlebar_policy::Verdict::Allow,
            scheme: "https".into(),
            port: 443,
            method: "GET".into(),
            path: "/".into(),
            status: 200,
            ..Default::default()
        })
        .unwrap()
            + "\n"
    }

    #[test]
    fn reads_rotated_files_oldest_first_and_follows_across_rotation() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let name = BottleName::parse("t").unwrap();
        let dir = StateDirs::new(home.state_dir(&name)).audit;
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("egress.jsonl.2"), entry("a")).unwrap();
        std::fs::write(dir.join("egress.jsonl.1"), entry("b")).unwrap();
        std::fs::write(dir.join("egress.jsonl"), entry("c") + "not json\n").unwrap();
        let all = read_all(&home, &name).unwrap();
        let hosts: Vec<String> = all
            .iter()
            .filter_map(|e| e.as_ref().ok())
            .map(|e| e.host.clone())
            .collect();
        assert_eq!(hosts, vec!["a", "b", "c"]);
        assert!(all[3]
            .as_ref()
            .unwrap_err()
            .contains("unreadable audit line"));

        let mut follow = Follower::from_end(&home, &name);
        assert!(follow.poll().is_empty());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("egress.jsonl"))
            .unwrap();
        f.write_all(entry("d").as_bytes()).unwrap();
        f.write_all(b"{\"host\":\"e\"").unwrap(); // half a line: not yet
        assert_eq!(follow.poll().len(), 1);
        f.write_all(b"}\n").unwrap();
        // Rotate: the old file moves away, a new one appears.
        std::fs::rename(dir.join("egress.jsonl"), dir.join("egress.jsonl.1")).unwrap();
        std::fs::write(dir.join("egress.jsonl"), entry("f")).unwrap();
        let lines = follow.poll();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("\"e\"") && lines[1].contains("\"f\""));
    }

    #[test]
    fn rendering() {
        let e = AuditEntry {
            time: "T".into(),
            decision: bottlebar_policy::Verdict::Deny,
            method: "GET".into(),
            scheme: "http".into(),
            host: "example.org".into(),
            port: 80,
            path: "/x".into(),
            status: 403,
            reason: Some(bottlebar_policy::ReasonCode::HostNotAllowed),
            ..Default::default()
        };
        assert_eq!(
            render(&e),
            "T  DENY   GET     http://example.org/x  403  host_not_allowed"
        );
        let granted = AuditEntry {
            decision: bottlebar_policy::Verdict::Allow,
            status: 200,
            reason: None,
            proposal: Some("p-1".into()),
            ..e.clone()
        };
        assert!(render(&granted).ends_with("200  grant:p-1"));
        let decision = AuditEntry {
            kind: AuditKind::Decision,
            decision: bottlebar_policy::Verdict::Allow,
            scheme: "supervise".into(),
            port: 443,
            proposal: Some("p-1".into()),
            detail: Some("allowed for 2s by cli: example.org port 443".into()),
            ..e
        };
        assert_eq!(
            render(&decision),
            "T  ALLOW  DECISION p-1 example.org:443  allowed for 2s by cli: example.org port 443"
        );
    }
}
