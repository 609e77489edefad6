//! The audit log's readers, on files laid out as the sidecar writes them.

use super::read::last_lines;
use super::*;
use std::io::Write;
use std::os::unix::fs::MetadataExt;

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

    let mut follow = following(&home, &name);
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

/// A follower from the end of what is written (of whole lines).
fn following(home: &Home, name: &BottleName) -> Follower {
    let (follower, read) = Follower::with_last(home, name, 0);
    assert!(read.unwrap().is_empty(), "none asked for");
    follower
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
                let len = text.len() as u64;
                let got = last_lines(&File::open(&path).unwrap(), len, want, chunk).unwrap();
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
    let mut follow = following(&home, &name);
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

/// Appends `text` to the audit file `path`.
fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The hosts of polled lines.
fn polled(follow: &mut Follower) -> Vec<String> {
    follow
        .poll()
        .iter()
        .map(|l| parse_bytes(l).map_or_else(|bad| bad, |e| e.host))
        .collect()
}

#[test]
fn the_newest_entries_and_what_follows_them_are_every_entry_once() {
    // A log across rotated files whose newest file ends in a line being
    // written: for every limit, the entries read then those polled are
    // the tail of every entry, none twice and none left out, the line
    // being written among the polled ones once it is whole.
    let (_tmp, home, name, dir) = bottle_with_log();
    std::fs::write(dir.join("egress.jsonl.2"), entry("a") + &entry("b")).unwrap();
    std::fs::write(dir.join("egress.jsonl.1"), entry("c") + "\n").unwrap();
    let current = dir.join("egress.jsonl");
    for limit in 0..=7 {
        std::fs::write(&current, entry("d") + &entry("e") + "{\"host\":\"f\"").unwrap();
        let (mut follow, read) = Follower::with_last(&home, &name, limit);
        let mut seen = shown(&read.unwrap());
        append(&current, ",\"decision\":\"allow\"}\n");
        append(&current, &entry("g"));
        seen.extend(polled(&mut follow));
        // Rotated: the rest of the old file, then the new one.
        append(&current, &entry("h"));
        std::fs::rename(&current, dir.join("egress.jsonl.0")).unwrap();
        std::fs::write(&current, entry("i")).unwrap();
        seen.extend(polled(&mut follow));
        std::fs::remove_file(dir.join("egress.jsonl.0")).unwrap();
        let all = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let before = 5usize.saturating_sub(limit);
        assert_eq!(seen, all[before..], "limit {limit}");
    }
}

#[test]
fn a_file_rotated_before_the_listing_bounds_the_older_files() {
    // The current file is opened, then rotated away before the files are
    // listed: only the files listed before it are older; the new current
    // file is the follower's to read.
    let (_tmp, home, name, dir) = bottle_with_log();
    std::fs::write(dir.join("egress.jsonl.1"), entry("a")).unwrap();
    let current = dir.join("egress.jsonl");
    std::fs::write(&current, entry("b")).unwrap();
    let ino = std::fs::metadata(&current).unwrap().ino();
    std::fs::rename(dir.join("egress.jsonl.1"), dir.join("egress.jsonl.2")).unwrap();
    std::fs::rename(&current, dir.join("egress.jsonl.1")).unwrap();
    std::fs::write(&current, entry("c")).unwrap();
    let listed = files(&home, &name);
    assert_eq!(
        follow::older_than(&listed, Some(ino), &current),
        [dir.join("egress.jsonl.2")]
    );
    // The one opened not there at all (removed meanwhile), or none
    // opened: every file but the current one.
    for ino in [Some(u64::MAX), None] {
        assert_eq!(
            follow::older_than(&listed, ino, &current),
            [dir.join("egress.jsonl.2"), dir.join("egress.jsonl.1")]
        );
    }
}

#[test]
fn a_log_not_written_yet_is_followed_from_its_first_line() {
    let (_tmp, home, name, dir) = bottle_with_log();
    std::fs::write(dir.join("egress.jsonl.1"), entry("a")).unwrap();
    let (mut follow, read) = Follower::with_last(&home, &name, 10);
    assert_eq!(shown(&read.unwrap()), ["a"]);
    assert!(follow.poll().is_empty());
    std::fs::write(dir.join("egress.jsonl"), entry("b")).unwrap();
    assert_eq!(polled(&mut follow), ["b"]);
}

#[test]
fn an_unreadable_older_file_is_named_and_the_log_still_followed() {
    let (_tmp, home, name, dir) = bottle_with_log();
    std::os::unix::fs::symlink("egress.jsonl.1", dir.join("egress.jsonl.1")).unwrap();
    let current = dir.join("egress.jsonl");
    std::fs::write(&current, entry("a")).unwrap();
    let (mut follow, read) = Follower::with_last(&home, &name, 10);
    let err = read.unwrap_err().to_string();
    assert!(err.contains("egress.jsonl.1"), "{err}");
    append(&current, &entry("b"));
    assert_eq!(polled(&mut follow), ["b"]);
}
