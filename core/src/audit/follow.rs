//! Following a bottle's audit log as the sidecar writes it, like `tail -F`,
//! from where a read of its newest entries ends.

use super::read::{last_entries, whole_lines_end, Entries, Newest, TAIL_CHUNK};
use super::{current_file, files, in_file, is_blank, open};
use crate::home::Home;
use crate::name::BottleName;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Follows the current audit file across rotations.
pub struct Follower {
    path: PathBuf,
    /// The file read, and its inode (a different one under `path` means
    /// the sidecar rotated it away).
    reader: Option<(BufReader<File>, u64)>,
    /// A line still being written.
    partial: Vec<u8>,
}

impl Follower {
    /// The newest `limit` entries so far, oldest first, and a follower
    /// that starts right after them: each entry is either read here or
    /// returned by [`Follower::poll`], never both and never neither, so
    /// counts made from both are exact (`bottle logs -f`, the window's
    /// activity). A line still being written is left to the follower.
    ///
    /// The follower is made even when the entries cannot be read (a
    /// damaged or unreadable older file): the error then names the file.
    pub fn with_last(
        home: &Home,
        bottle: &BottleName,
        limit: usize,
    ) -> (Self, std::io::Result<Entries>) {
        let path = current_file(home, bottle);
        let (reader, read) = match open(&path) {
            Ok(Some(file)) => match Self::start_in(&file, &path) {
                Ok((reader, ino, end)) => {
                    let newest = Newest {
                        file: &file,
                        end,
                        path: &path,
                    };
                    let older = older_than(&files(home, bottle), Some(ino), &path);
                    (
                        Some((reader, ino)),
                        last_entries(Some(newest), &older, limit),
                    )
                }
                Err(e) => (None, Err(e)),
            },
            // Not written yet: every file listed now is older than the one
            // the follower will read from its start.
            Ok(None) => (
                None,
                last_entries(None, &older_than(&files(home, bottle), None, &path), limit),
            ),
            Err(e) => (None, Err(e)),
        };
        let follower = Self {
            path,
            reader,
            partial: Vec::new(),
        };
        (follower, read)
    }

    /// A reader of `file` (open at `path`) placed after its last whole
    /// line, its inode, and that place.
    fn start_in(file: &File, path: &Path) -> std::io::Result<(BufReader<File>, u64, u64)> {
        let named = |e| in_file(path, e);
        let meta = file.metadata().map_err(named)?;
        let end = whole_lines_end(file, meta.len(), TAIL_CHUNK).map_err(named)?;
        let mut own = file.try_clone().map_err(named)?;
        own.seek(SeekFrom::Start(end)).map_err(named)?;
        Ok((BufReader::new(own), meta.ino(), end))
    }

    /// Lines written since the last call, without their newline (bytes, as
    /// a damaged file may hold bytes that are not UTF-8: see
    /// [`super::parse_bytes`]).
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

/// The files of `listed` (oldest first) older than the one whose inode is
/// `ino`, opened at `current`: those before it. It may have been rotated
/// since it was opened, and the files after it are then newer, which the
/// follower reads. With none opened (`None`), or the one opened no longer
/// listed, every file but `current` is older.
pub(super) fn older_than(listed: &[PathBuf], ino: Option<u64>, current: &Path) -> Vec<PathBuf> {
    let same = |p: &PathBuf| std::fs::metadata(p).is_ok_and(|m| Some(m.ino()) == ino);
    match listed.iter().position(same) {
        Some(at) => listed[..at].to_vec(),
        None => listed.iter().filter(|p| *p != current).cloned().collect(),
    }
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
