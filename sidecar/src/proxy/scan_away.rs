//! A request body's scans, each of a large piece, run on blocking threads
//! while the proxy's task reads the next piece (and sends the one before):
//! on two cores an upload's scanning overlaps its TLS and socket work, and
//! (blocking) the scans of several pieces overlap each other.

use crate::dlp::{Finding, ScanJob, Scanned};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::task::JoinHandle;

/// Scans away at once for one body, at most. More than the two cores here:
/// each scan waits on wake-ups and the sends around it, and measured on 1
/// MiB uploads, two at once gave ~187 MB/s, three ~215, four ~231 (one:
/// ~175). Bounded so that one body holds at most this many 64 KiB pieces;
/// past the blocking threads (one a core), they wait their turn.
pub(super) const MAX_AWAY: usize = 4;

/// Why a scan sent away did not come back.
pub(super) const LOST: &str = "the request body's scan failed";

/// What a scan brings back: the bytes that may go, or the finding; `Err`
/// when its thread failed (the body then stops: nothing goes unscanned).
pub(super) type Back = Result<Result<Scanned, Finding>, &'static str>;

enum Scan {
    Thread(JoinHandle<Result<Scanned, Finding>>),
    /// Run here (no runtime to send it to), not yet taken.
    Done(Option<Result<Scanned, Finding>>),
}

/// A body's scans under way, oldest first: their bytes go in that order.
#[derive(Default)]
pub(super) struct Away {
    scans: VecDeque<Scan>,
}

impl Away {
    /// Whether no scan is under way.
    pub fn is_empty(&self) -> bool {
        self.scans.is_empty()
    }

    /// Whether another scan may be sent.
    pub fn has_room(&self) -> bool {
        self.scans.len() < MAX_AWAY
    }

    /// Runs `job` on a blocking thread (here, without a runtime).
    pub fn send(&mut self, job: ScanJob) {
        let scan = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => Scan::Thread(runtime.spawn_blocking(move || job.run())),
            Err(_) => Scan::Done(Some(job.run())),
        };
        self.scans.push_back(scan);
    }

    /// The oldest scan's outcome, once it is back; `Ready(None)` when none
    /// is away.
    pub fn poll_oldest(&mut self, cx: &mut Context<'_>) -> Poll<Option<Back>> {
        let Some(oldest) = self.scans.front_mut() else {
            return Poll::Ready(None);
        };
        let back = match oldest {
            Scan::Done(done) => Ok(done.take().expect("taken once: popped below")),
            Scan::Thread(handle) => match Pin::new(handle).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(scanned)) => Ok(scanned),
                Poll::Ready(Err(e)) => {
                    tracing::error!("{LOST}: {e}");
                    Err(LOST)
                }
            },
        };
        self.scans.pop_front();
        Poll::Ready(Some(back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlp::{Depth, Mode, Needles, Scanner, StreamScanner, REDACTION_BYTE};
    use std::sync::Arc;

    const SECRET: &str = "held-secret-value-0123456789";

    fn stream(secrets: &[&str], mode: Mode) -> StreamScanner {
        let held = crate::dlp::held_secrets(secrets);
        let scanner = Arc::new(Scanner::new(&held, Needles::SecretsOnly));
        StreamScanner::new(scanner, mode, Depth::Views)
    }

    async fn oldest(away: &mut Away) -> Result<Scanned, Finding> {
        let back = std::future::poll_fn(|cx| away.poll_oldest(cx)).await;
        back.expect("a scan is away")
            .expect("its thread did not fail")
    }

    /// Pieces of `len` bytes of `a`, the secret at `at` (cut across pieces
    /// when `at` is near a piece's end).
    fn body(len: usize, at: usize) -> Vec<u8> {
        let mut data = vec![b'a'; len];
        data[at..at + SECRET.len()].copy_from_slice(SECRET.as_bytes());
        data
    }

    #[tokio::test]
    async fn blocking_two_pieces_are_scanned_at_once_and_come_back_in_order() {
        let piece = 64 * 1024;
        for at in [10, piece - 10, piece + 10, 2 * piece - SECRET.len()] {
            let data = body(2 * piece, at);
            let mut stream = stream(&[SECRET], Mode::Block);
            let mut away = Away::default();
            for p in data.chunks(piece) {
                stream.feed(p);
                away.send(stream.detach().expect("a needle to look for"));
            }
            assert!(away.has_room(), "two pieces away, room for more");
            let mut sent = Vec::new();
            let mut found = false;
            while !away.is_empty() {
                match oldest(&mut away).await {
                    Ok(mut s) if !found => {
                        stream.rejoin(&mut s);
                        sent.extend_from_slice(&s.release);
                    }
                    Ok(_) => {}
                    Err(_) => found = true,
                }
            }
            found = found || stream.finish().is_err();
            assert!(found, "secret at {at}: not found");
            assert!(
                sent.len() <= at,
                "secret at {at}: {} bytes went",
                sent.len()
            );
            assert!(sent == data[..sent.len()], "in order");
        }
    }

    #[tokio::test]
    async fn redacting_waits_for_the_masked_window_before_the_next_piece() {
        let piece = 64 * 1024;
        for at in [10, piece - 10] {
            let data = body(2 * piece, at);
            let mut stream = stream(&[SECRET], Mode::Redact);
            let mut away = Away::default();
            let mut sent = Vec::new();
            for p in data.chunks(piece) {
                stream.feed(p);
                let job = stream.detach().expect("the window is home");
                away.send(job);
                assert!(stream.detach().is_none(), "the window is away");
                let mut s = oldest(&mut away).await.expect("redacted, not refused");
                stream.rejoin(&mut s);
                sent.extend_from_slice(&s.release);
            }
            sent.extend_from_slice(&stream.finish().unwrap());
            let mut expected = data.clone();
            expected[at..at + SECRET.len()].fill(REDACTION_BYTE);
            assert!(sent == expected, "secret at {at}: not masked whole");
            assert_eq!(stream.redacted, 1, "secret at {at}");
        }
    }

    #[test]
    fn nothing_to_look_for_is_not_sent_away() {
        let mut stream = stream(&[], Mode::Block);
        stream.feed(b"anything at all");
        assert!(
            stream.detach().is_none(),
            "no needles: no thread is worth waking"
        );
        assert_eq!(&stream.release().unwrap()[..], b"anything at all");
    }

    #[test]
    fn without_a_runtime_the_scan_is_done_here() {
        let mut stream = stream(&[SECRET], Mode::Block);
        stream.feed(SECRET.as_bytes());
        let mut away = Away::default();
        away.send(stream.detach().unwrap());
        let waker = std::task::Waker::noop();
        let back = away.poll_oldest(&mut Context::from_waker(waker));
        assert!(
            matches!(back, Poll::Ready(Some(Ok(Err(_))))),
            "found, at once"
        );
        assert!(away.is_empty());
    }
}
