//! What a bottle's audit log holds so far: all of it (`bottle logs`), or
//! its newest entries, read backwards from the end (the window).

use super::{files, in_file, is_blank, open, parse_bytes, AuditEntry};
use crate::home::Home;
use crate::name::BottleName;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Entries as read: each parsed, or the line that could not be.
pub type Entries = Vec<Result<AuditEntry, String>>;

/// Reads every entry so far, oldest first (`bottle logs`).
pub fn read_all(home: &Home, bottle: &BottleName) -> std::io::Result<Entries> {
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
pub fn read_last(home: &Home, bottle: &BottleName, limit: usize) -> std::io::Result<Entries> {
    last_entries(None, &files(home, bottle), limit)
}

/// The first `end` bytes of an open audit file, read as the newest part of
/// a log (see [`last_entries`]).
pub(super) struct Newest<'a> {
    pub file: &'a File,
    pub end: u64,
    pub path: &'a Path,
}

/// The newest `limit` entries, oldest first, of `newest` (when given) and
/// then of the `older` files (oldest first), each read backwards.
pub(super) fn last_entries(
    newest: Option<Newest>,
    older: &[PathBuf],
    limit: usize,
) -> std::io::Result<Entries> {
    let mut newest_first = Vec::new();
    if let Some(n) = newest {
        newest_first =
            last_lines(n.file, n.end, limit, TAIL_CHUNK).map_err(|e| in_file(n.path, e))?;
    }
    for path in older.iter().rev() {
        if newest_first.len() >= limit {
            break;
        }
        let Some(file) = open(path)? else { continue };
        let want = limit - newest_first.len();
        let end = file.metadata().map_err(|e| in_file(path, e))?.len();
        newest_first
            .extend(last_lines(&file, end, want, TAIL_CHUNK).map_err(|e| in_file(path, e))?);
    }
    Ok(newest_first.iter().rev().map(|l| parse_bytes(l)).collect())
}

/// How much of a file is read at a time, backwards.
pub(super) const TAIL_CHUNK: u64 = 64 * 1024;

/// The last `want` lines of `file`'s first `end` bytes that are not blank,
/// newest first, read backwards `chunk` bytes at a time (at offsets: the
/// file's position is not moved, so a follower may share it).
pub(super) fn last_lines(
    file: &File,
    end: u64,
    want: usize,
    chunk: u64,
) -> std::io::Result<Vec<Vec<u8>>> {
    let mut lines = Vec::new();
    // The file's bytes from `start` on that are not yet split into lines:
    // the line that `start` falls in, whose beginning is not read yet.
    let mut unsplit = Vec::new();
    let mut start = end;
    while lines.len() < want && start > 0 {
        let read_from = start.saturating_sub(chunk);
        let mut bytes = vec![0; (start - read_from) as usize];
        file.read_exact_at(&mut bytes, read_from)?;
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

/// Where the whole lines of `file`'s first `len` bytes end: just after
/// their last newline (0 when there is none). What follows is a line the
/// sidecar is still writing.
pub(super) fn whole_lines_end(file: &File, len: u64, chunk: u64) -> std::io::Result<u64> {
    let mut end = len;
    while end > 0 {
        let from = end.saturating_sub(chunk);
        let mut bytes = vec![0; (end - from) as usize];
        file.read_exact_at(&mut bytes, from)?;
        if let Some(i) = bytes.iter().rposition(|&b| b == b'\n') {
            return Ok(from + i as u64 + 1);
        }
        end = from;
    }
    Ok(0)
}
