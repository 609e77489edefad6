//! Reading a bottle's audit log (written by its sidecar): one JSON line per
//! egress decision, in `state/<name>/audit/egress.jsonl` and its rotated
//! predecessors `egress.jsonl.1` (newer) … `.N` (older).

use crate::home::Home;
use crate::name::BottleName;
use crate::state::{StateDirs, AUDIT_FILE};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
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

/// Reads every entry so far, oldest first (`bottle logs`).
pub fn read_all(
    home: &Home,
    bottle: &BottleName,
) -> std::io::Result<Vec<Result<AuditEntry, String>>> {
    let mut out = Vec::new();
    for path in files(home, bottle) {
        let Some(file) = open(&path)? else { continue };
        for line in BufReader::new(file).split(b'\n') {
            let line = line.map_err(|e| in_file(&path, e))?;
            if !is_blank(&line) {
                out.push(parse_bytes(&line));
            }
        }
    }
    Ok(out)
}

/// Reads the newest `limit` entries, oldest first (the window's activity).
/// The files are read from their end backwards, newest file first, and
/// reading stops once `limit` lines are found: opening a busy bottle costs
/// the same as a quiet one, whose log may hold up to 60 MB.
pub fn read_last(
    home: &Home,
    bottle: &BottleName,
    limit: usize,
) -> std::io::Result<Vec<Result<AuditEntry, String>>> {
    let mut newest_first = Vec::new();
    for path in files(home, bottle).iter().rev() {
        if newest_first.len() >= limit {
            break;
        }
        let Some(file) = open(path)? else { continue };
        let want = limit - newest_first.len();
        newest_first.extend(last_lines(file, want, TAIL_CHUNK).map_err(|e| in_file(path, e))?);
    }
    Ok(newest_first.iter().rev().map(|l| parse_bytes(l)).collect())
}

/// How much of a file `read_last` reads at a time.
const TAIL_CHUNK: u64 = 64 * 1024;

/// The last `want` lines of a file that are not blank, newest first, read
/// backwards `chunk` bytes at a time.
fn last_lines(mut file: File, want: usize, chunk: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let mut lines = Vec::new();
    // The file's bytes from `start` on that are not yet split into lines:
    // the line that `start` falls in, whose beginning is not read yet.
    let mut unsplit = Vec::new();
    let mut start = file.metadata()?.len();
    while lines.len() < want && start > 0 {
        let read_from = start.saturating_sub(chunk);
        let mut bytes = vec![0; (start - read_from) as usize];
        file.seek(SeekFrom::Start(read_from))?;
        file.read_exact(&mut bytes)?;
        bytes.extend_from_slice(&unsplit);
        start = read_from;
        // Every piece after the first newline is a whole line; the first is
        // whole only at the start of the file.
        let mut pieces = bytes.split(|b| *b == b'\n').rev().peekable();
        while let Some(piece) = pieces.next() {
            if pieces.peek().is_none() && start > 0 {
                unsplit = piece.to_vec();
            } else if !is_blank(piece) {
                lines.push(piece.to_vec());
            }
        }
    }
    lines.truncate(want);
    Ok(lines)
}

/// Follows the current audit file across rotations, like `tail -F`.
pub struct Follower {
    path: PathBuf,
    reader: Option<(BufReader<File>, u64)>,
    partial: Vec<u8>,
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
            partial: Vec::new(),
        }
    }

    /// Lines written since the last call, without their newline (bytes, as
    /// a damaged file may hold bytes that are not UTF-8: see [`parse_bytes`]).
    pub fn poll(&mut self) -> Vec<Vec<u8>> {
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

/// Reads whole lines to the end of what is written; a line still being
/// written stays in `partial` for the next call.
fn read_lines(reader: &mut BufReader<File>, partial: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
    while let Ok(n) = reader.read_until(b'\n', partial) {
        if n == 0 || !partial.ends_with(b"\n") {
            return;
        }
        let mut line = std::mem::take(partial);
        line.pop();
        if !is_blank(&line) {
            out.push(line);
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
        let (_tmp, home, name, dir) = bottle_with_log();
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
        let hosts: Vec<_> = lines.iter().map(|l| parse_bytes(l).unwrap().host).collect();
        assert_eq!(hosts, ["e", "f"]);
    }

    /// The entries as text, to compare reads.
    fn shown(entries: &[Result<AuditEntry, String>]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Ok(e) => e.host.clone(),
                Err(bad) => bad.clone(),
            })
            .collect()
    }

    /// A home in a temporary directory with bottle `t`'s audit directory
    /// made: the directory (kept while it lives), the home, the bottle, the
    /// audit directory.
    fn bottle_with_log() -> (tempfile::TempDir, Home, BottleName, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        let name = BottleName::parse("t").unwrap();
        let dir = StateDirs::new(home.state_dir(&name)).audit;
        std::fs::create_dir_all(&dir).unwrap();
        (tmp, home, name, dir)
    }

    #[test]
    fn the_newest_entries_are_the_tail_of_every_entry_across_rotated_files() {
        let (_tmp, home, name, dir) = bottle_with_log();
        std::fs::write(dir.join("egress.jsonl.2"), entry("a") + &entry("b")).unwrap();
        std::fs::write(
            dir.join("egress.jsonl.1"),
            entry("c") + "\n  \n" + &entry("d"),
        )
        .unwrap();
        // The newest file ends in a line being written.
        let current = entry("e") + "not json\n" + &entry("f") + "{\"host\":\"g";
        std::fs::write(dir.join("egress.jsonl"), current).unwrap();
        let all = shown(&read_all(&home, &name).unwrap());
        assert_eq!(all.len(), 8, "{all:?}");
        for limit in 0..=all.len() + 2 {
            let last = shown(&read_last(&home, &name, limit).unwrap());
            assert_eq!(
                last,
                all[all.len().saturating_sub(limit)..],
                "limit {limit}"
            );
        }
    }

    #[test]
    fn lines_are_joined_across_the_chunks_read_backwards() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        let lines: Vec<String> = (0..40).map(|i| "x".repeat(i * 7 % 23)).collect();
        for ends_in_newline in [true, false] {
            let mut text = lines.join("\n");
            if ends_in_newline {
                text.push('\n');
            }
            std::fs::write(&path, &text).unwrap();
            let whole: Vec<&str> = lines
                .iter()
                .rev()
                .filter(|l| !l.is_empty())
                .map(String::as_str)
                .collect();
            for chunk in [1, 2, 3, 7, 22, 64, 1 << 20] {
                for want in [0, 1, 2, 5, whole.len() - 1, whole.len(), whole.len() + 3] {
                    let got = last_lines(File::open(&path).unwrap(), want, chunk).unwrap();
                    let got: Vec<&str> = got
                        .iter()
                        .map(|l| std::str::from_utf8(l).unwrap())
                        .collect();
                    assert_eq!(
                        got,
                        whole[..want.min(whole.len())],
                        "chunk {chunk}, want {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_newest_entries_are_read_without_opening_older_files() {
        let (_tmp, home, name, dir) = bottle_with_log();
        // An old file that cannot even be opened (a link to itself).
        std::os::unix::fs::symlink("egress.jsonl.2", dir.join("egress.jsonl.2")).unwrap();
        std::fs::write(dir.join("egress.jsonl.1"), entry("a")).unwrap();
        std::fs::write(dir.join("egress.jsonl"), entry("b") + &entry("c")).unwrap();
        assert_eq!(shown(&read_last(&home, &name, 3).unwrap()), ["a", "b", "c"]);
        let err = read_last(&home, &name, 4).unwrap_err().to_string();
        assert!(err.contains("egress.jsonl.2"), "{err}");
        let err = read_all(&home, &name).unwrap_err().to_string();
        assert!(err.contains("egress.jsonl.2"), "{err}");
    }

    #[test]
    fn bytes_that_are_not_utf8_spoil_only_their_line() {
        let (_tmp, home, name, dir) = bottle_with_log();
        let mut text = entry("a").into_bytes();
        text.extend_from_slice(b"{\"host\":\"\xff\xfe\"}\n");
        text.extend_from_slice(b"\n \n"); // blank lines are no entries
        text.extend_from_slice(entry("b").as_bytes());
        std::fs::write(dir.join("egress.jsonl"), &text).unwrap();
        let mut follow = Follower::from_end(&home, &name);
        for read in [read_all(&home, &name), read_last(&home, &name, 10)] {
            let read = shown(&read.unwrap());
            assert_eq!((read[0].as_str(), read[2].as_str()), ("a", "b"), "{read:?}");
            assert!(read[1].contains("unreadable audit line"), "{read:?}");
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("egress.jsonl"))
            .unwrap();
        f.write_all(b"\xff\n").unwrap();
        f.write_all(entry("c").as_bytes()).unwrap();
        let lines: Vec<_> = follow.poll().iter().map(|l| parse_bytes(l)).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0]
            .as_ref()
            .unwrap_err()
            .contains("unreadable audit line"));
        assert_eq!(lines[1].as_ref().unwrap().host, "c");
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
