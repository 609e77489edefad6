//! One scan of a stream's piece, detached from its [`StreamScanner`] to
//! run on another thread (see [`StreamScanner::detach`]).
//!
//! [`StreamScanner`]: super::StreamScanner
//! [`StreamScanner::detach`]: super::StreamScanner::detach

use super::stream::{keep, scan, Depth, Mode};
use super::{Finding, Scanner};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// The bytes one scan covers (the window held back before them, then the
/// piece), and how to scan them.
pub struct ScanJob {
    scanner: Arc<Scanner>,
    mode: Mode,
    depth: Depth,
    held: BytesMut,
}

/// A clean scan's outcome.
#[derive(Debug)]
pub struct Scanned {
    /// The bytes now safe to send (masked, when redacting).
    pub release: Bytes,
    /// Redacting: the masked window held back, which the stream takes back.
    pub(super) window: Option<Bytes>,
    /// Direct matches masked.
    pub(super) redacted: usize,
}

impl ScanJob {
    pub(super) fn new(scanner: Arc<Scanner>, mode: Mode, depth: Depth, held: BytesMut) -> Self {
        Self {
            scanner,
            mode,
            depth,
            held,
        }
    }

    /// Scans: the bytes that may go, or the finding that stops the stream.
    pub fn run(mut self) -> Result<Scanned, Finding> {
        let redacted = scan(&self.scanner, self.mode, self.depth, &mut self.held)?;
        let keep = keep(&self.scanner, self.depth, &self.held);
        let release = self.held.len() - keep;
        let (release, window) = match self.mode {
            // The stream kept a copy of the window when it detached this.
            Mode::Block => (self.held.freeze().slice(..release), None),
            Mode::Redact => {
                let window = self.held.split_off(release).freeze();
                (self.held.freeze(), Some(window))
            }
        };
        Ok(Scanned {
            release,
            window,
            redacted,
        })
    }
}
