//! The audit log: one JSON line per egress decision, rotated by size so a
//! chatty agent cannot fill the disk (`egress.jsonl`, `egress.jsonl.1`, …).
//!
//! Lines are written by a thread of their own, a batch at a time. A request
//! hands its line over in memory, so the proxy's runtime thread never waits
//! on the disk: an append that waited behind the file system's journal was
//! in the proxy's tail latency, and one `write` a line was ~5 % of its CPU
//! on 8 connections (docs/performance.md, the thirty-fifth round). The
//! writer wakes on the first line into an empty batch, gathers for
//! [`GATHER`], then writes them all; with nothing to write it sleeps
//! without a timer. [`AuditLog::flush`] waits until every line handed over
//! is written, and the log is flushed when it is closed or dropped.
//!
//! A failed write is logged, never fatal: enforcement must not depend on the
//! log disk, and denials are enforced either way.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// One audit line; the type is shared with the core, which reads the log.
pub use bottlebar_policy::AuditEntry as Entry;

/// How long the writer gathers lines after the first of a batch: a line
/// reaches the disk this much after its request at most (plus the write).
const GATHER: Duration = Duration::from_millis(2);
/// Lines held in memory at most; past it a request waits for the writer,
/// as every request waited for the disk before (a stalled disk must not
/// grow the sidecar without bound).
const MAX_PENDING: usize = 4 << 20;

/// The audit log, rotated by size.
pub struct AuditLog {
    /// `None`: lines are discarded.
    shared: Option<Arc<Shared>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// What the proxy's threads and the writer share.
struct Shared {
    state: Mutex<State>,
    /// [`MAX_PENDING`] (smaller in tests).
    max_pending: usize,
    /// The writer waits here for lines (or a hurry, or the close).
    wake: Condvar,
    /// Flushes wait here for lines written.
    written: Condvar,
}

#[derive(Default)]
struct State {
    /// Whole lines handed over and not yet taken by the writer.
    pending: Vec<u8>,
    /// Lines handed over so far, and lines written (or failed) so far.
    queued: u64,
    done: u64,
    /// The writer waits for a first line (and must be woken for one).
    asleep: bool,
    /// Someone waits for the lines: write without gathering.
    hurry: bool,
    closing: bool,
}

/// The open file, owned by the writer thread.
struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl AuditLog {
    /// Opens (or, with `None`, discards) the log at `path`; its writer
    /// thread starts here.
    pub fn open(path: Option<&str>, max_bytes: u64, keep: u32) -> std::io::Result<Self> {
        Self::open_holding(path, max_bytes, keep, MAX_PENDING)
    }

    /// [`AuditLog::open`], holding at most `max_pending` bytes of lines.
    fn open_holding(
        path: Option<&str>,
        max_bytes: u64,
        keep: u32,
        max_pending: usize,
    ) -> std::io::Result<Self> {
        let Some(p) = path else {
            return Ok(Self {
                shared: None,
                writer: Mutex::new(None),
            });
        };
        let file = OpenOptions::new().create(true).append(true).open(p)?;
        let size = file.metadata()?.len();
        let writer = Writer {
            path: PathBuf::from(p),
            file,
            size,
            max_bytes: max_bytes.max(4096),
            keep,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            max_pending,
            wake: Condvar::new(),
            written: Condvar::new(),
        });
        let thread = std::thread::Builder::new().name("audit".into()).spawn({
            let shared = shared.clone();
            move || writer.run(&shared)
        })?;
        Ok(Self {
            shared: Some(shared),
            writer: Mutex::new(Some(thread)),
        })
    }

    /// Hands one line over to the writer.
    pub fn record(&self, entry: &Entry) {
        let Some(shared) = &self.shared else { return };
        let mut line = match serde_json::to_vec(entry) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("audit entry not serializable: {e}");
                return;
            }
        };
        line.push(b'\n');
        let mut state = shared.lock();
        loop {
            // Checked after every wait too: the writer may have ended
            // meanwhile, and a line it will never write must not be counted.
            if state.closing {
                return;
            }
            if state.pending.len() < shared.max_pending {
                break;
            }
            state = shared.wait_for_writer(state);
        }
        state.pending.extend_from_slice(&line);
        state.queued += 1;
        if state.asleep {
            state.asleep = false;
            shared.wake.notify_one();
        }
    }

    /// Waits until every line handed over so far is written (or failed).
    pub fn flush(&self) {
        let Some(shared) = &self.shared else { return };
        let mut state = shared.lock();
        let target = state.queued;
        while state.done < target {
            state = shared.wait_for_writer(state);
        }
    }

    /// Writes what is left and ends the writer thread; lines handed over
    /// later are discarded.
    pub fn close(&self) {
        let Some(shared) = &self.shared else { return };
        shared.lock().closing = true;
        shared.wake.notify_one();
        let thread = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the writer to write now, without gathering, and waits until it
    /// has written a batch.
    fn wait_for_writer<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.hurry = true;
        state.asleep = false;
        self.wake.notify_one();
        self.written.wait(state).unwrap_or_else(|p| p.into_inner())
    }
}

impl Writer {
    /// The writer thread: a batch at a time until the log is closed.
    fn run(mut self, shared: &Shared) {
        while let Some((batch, upto)) = Self::next_batch(shared) {
            self.write_lines(&batch);
            let mut state = shared.lock();
            state.done = upto;
            shared.written.notify_all();
        }
    }

    /// The next batch of lines and the count they bring the written lines
    /// to; `None` once the log is closed and everything is written.
    fn next_batch(shared: &Shared) -> Option<(Vec<u8>, u64)> {
        let mut state = shared.lock();
        while state.pending.is_empty() {
            if state.closing {
                return None;
            }
            state.asleep = true;
            state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if !state.hurry && !state.closing {
            state = shared
                .wake
                .wait_timeout_while(state, GATHER, |s| !s.hurry && !s.closing)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.hurry = false;
        state.asleep = false;
        Some((std::mem::take(&mut state.pending), state.queued))
    }

    /// Appends whole lines, a file's worth per write, rotating before a
    /// line that would take the file past its size.
    fn write_lines(&mut self, batch: &[u8]) {
        let mut run = 0..0;
        for line in batch.split_inclusive(|&b| b == b'\n') {
            let held = self.size + run.len() as u64;
            if held > 0 && held + line.len() as u64 > self.max_bytes {
                self.append(&batch[run.clone()]);
                if let Err(e) = self.rotate() {
                    tracing::warn!("audit log rotation failed: {e}");
                }
                run = run.end..run.end;
            }
            run.end += line.len();
        }
        self.append(&batch[run]);
    }

    fn append(&mut self, lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        match self.file.write_all(lines) {
            Ok(()) => self.size += lines.len() as u64,
            Err(e) => tracing::warn!("audit log write failed: {e}"),
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.keep));
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(numbered(n), numbered(n + 1));
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The time now, RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests;
