use super::*;
use std::time::Instant;

fn entry(path: &str) -> Entry {
    Entry {
        host: "example.com".into(),
        path: path.into(),
        ..Default::default()
    }
}

/// The paths of the lines in the log's files, oldest first.
fn paths_logged(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // egress.jsonl.N is older the larger N is; egress.jsonl is the newest.
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        std::cmp::Reverse(name.rsplit('.').next().unwrap().parse::<u32>().unwrap_or(0))
    });
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Entry>(l).unwrap().path)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn rotation_bounds_the_disk_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.jsonl");
    let log = AuditLog::open(Some(path.to_str().unwrap()), 4096, 2).unwrap();
    let long = "/".repeat(200);
    for _ in 0..500 {
        log.record(&entry(&long));
    }
    log.flush();
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

#[test]
fn lines_from_many_threads_are_all_written_whole_and_in_each_thread_s_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.jsonl");
    let log = Arc::new(AuditLog::open(Some(path.to_str().unwrap()), 64 << 10, 1000).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for n in 0..2_500 {
                    log.record(&entry(&format!("/{t}/{n}")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    log.flush();
    let logged = paths_logged(dir.path());
    assert_eq!(logged.len(), 10_000);
    for t in 0..4 {
        let mine: Vec<_> = logged
            .iter()
            .filter(|p| p.starts_with(&format!("/{t}/")))
            .cloned()
            .collect();
        let expected: Vec<_> = (0..2_500).map(|n| format!("/{t}/{n}")).collect();
        assert_eq!(mine, expected, "thread {t}'s lines in its order");
    }
}

#[test]
fn a_line_reaches_the_disk_by_itself_soon_after_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.jsonl");
    let log = AuditLog::open(Some(path.to_str().unwrap()), 1 << 20, 2).unwrap();
    for round in 0..3 {
        // The writer is asleep (the last batch long written): a line wakes it.
        std::thread::sleep(Duration::from_millis(50));
        let started = Instant::now();
        log.record(&entry(&format!("/{round}")));
        while paths_logged(dir.path()).len() <= round {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "line {round} not written without a flush"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn closing_or_dropping_the_log_writes_what_was_handed_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.jsonl");
    let log = AuditLog::open(Some(path.to_str().unwrap()), 1 << 20, 2).unwrap();
    for n in 0..1_000 {
        log.record(&entry(&format!("/{n}")));
    }
    drop(log);
    assert_eq!(paths_logged(dir.path()).len(), 1_000);

    let log = AuditLog::open(Some(path.to_str().unwrap()), 1 << 20, 2).unwrap();
    log.record(&entry("/before"));
    log.close();
    log.record(&entry("/after"));
    log.flush();
    let logged = paths_logged(dir.path());
    assert_eq!(logged.len(), 1_001);
    assert_eq!(
        logged.last().unwrap(),
        "/before",
        "a line after the close is dropped"
    );
}

#[test]
fn a_discarded_log_takes_lines_and_flushes_at_once() {
    let log = AuditLog::open(None, 4096, 2).unwrap();
    log.record(&entry("/"));
    log.flush();
    log.close();
}

#[test]
fn lines_past_the_memory_bound_wait_for_the_writer_and_are_all_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.jsonl");
    // A bound of four lines.
    let log = AuditLog::open_holding(Some(path.to_str().unwrap()), 64 << 20, 2, 4_000).unwrap();
    let long = "/".repeat(1_000);
    // Forty lines are handed over in far less than the writer's 2 ms of
    // gathering: without the bound all would be held at once.
    for _ in 0..40 {
        log.record(&entry(&long));
        let held = log.shared.as_ref().unwrap().lock().pending.len();
        assert!(held < 4_000 + 1_200, "{held} bytes held past the bound");
    }
    log.flush();
    assert_eq!(paths_logged(dir.path()).len(), 40);
}
