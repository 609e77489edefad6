//! The agent's request body on its way out: decoded if compressed, scanned
//! through a bounded window (every decoded view too), blocked or redacted,
//! and counted. A block is remembered so the audit line says so, even when
//! the upstream had already answered.

use super::scan_away::{Away, Back};
use crate::audit::{AuditLog, Entry};
use crate::dlp::decode::BodyDecoder;
use crate::dlp::{Finding, StreamScanner};
use crate::upstream::BoxError;
use bottlebar_policy::{ReasonCode, Verdict};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::HeaderMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// What the request body did, shared with the response side, which hands
/// over the exchange's audit line: it is written once both the response
/// and the request body are done, so a body stopped after the upstream
/// answered is still recorded as refused.
#[derive(Default)]
pub struct BodyReport {
    /// Bytes received from the agent.
    pub bytes_up: AtomicU64,
    /// Secrets masked.
    pub redacted: AtomicU64,
    /// Why the body was stopped, if it was.
    pub blocked: Mutex<Option<String>>,
    finish: Mutex<Finish>,
}

#[derive(Default)]
struct Finish {
    body_done: bool,
    entry: Option<(Entry, Arc<AuditLog>)>,
}

impl BodyReport {
    /// The reason the body was stopped, if it was.
    pub fn blocked(&self) -> Option<String> {
        self.blocked.lock().unwrap().clone()
    }

    /// The exchange's audit line, from the response side: written now if the
    /// request body is done, else as soon as it is.
    pub fn audit_when_done(&self, entry: Entry, audit: Arc<AuditLog>) {
        let mut f = self.finish.lock().unwrap();
        if f.body_done {
            drop(f);
            self.write(entry, &audit);
        } else {
            f.entry = Some((entry, audit));
        }
    }

    /// The request body ended (or was dropped).
    fn body_done(&self) {
        let pending = {
            let mut f = self.finish.lock().unwrap();
            f.body_done = true;
            f.entry.take()
        };
        if let Some((entry, audit)) = pending {
            self.write(entry, &audit);
        }
    }

    fn write(&self, mut e: Entry, audit: &AuditLog) {
        e.bytes_up = self.bytes_up.load(Ordering::Relaxed);
        e.redacted += self.redacted.load(Ordering::Relaxed) as usize;
        if let Some(why) = self.blocked() {
            // Stopped mid-body: a refusal, whatever the upstream said first.
            e.decision = Verdict::Deny;
            e.reason = Some(if why.contains("encoding") || why.contains("inflates") {
                ReasonCode::Uninspectable
            } else {
                ReasonCode::SecretDetected
            });
            e.detail = Some(why);
        }
        tracing::info!(
            method = e.method,
            host = e.host,
            port = e.port,
            status = e.status,
            "{}",
            e.decision.as_str()
        );
        audit.record(&e);
    }
}

/// The scanned body sent upstream (the agent's, `Incoming`, but for tests).
pub struct ScannedBody<B = Incoming> {
    inner: B,
    decoder: Option<BodyDecoder>,
    scanner: StreamScanner,
    /// Scans of whole pieces under way on blocking threads.
    away: Away,
    report: Arc<BodyReport>,
    /// Bytes fed to the scanner since its last scan.
    unscanned: usize,
    /// The agent's body ended, but not yet the scans: what ends ours.
    tail: Option<Tail>,
    finished: bool,
    trailers: Option<HeaderMap>,
}

/// How the agent's body ended.
enum Tail {
    End,
    Trailers(Option<HeaderMap>),
}

/// Bytes of body gathered before a scan while more keeps arriving: each
/// scan covers the held-back window again, so larger scans cost less
/// (measured: 16 KiB pieces ~66 MB/s, 64 KiB ~75 MB/s). A piece this large
/// is scanned on a blocking thread while the next one is read; a smaller
/// one (a body that paused or ended) is scanned at once, here.
const GATHER: usize = 64 * 1024;

type Out = Option<Result<Frame<Bytes>, BoxError>>;

impl<B> ScannedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    /// Wraps the agent's body.
    pub fn new(
        inner: B,
        decoder: Option<BodyDecoder>,
        scanner: StreamScanner,
        report: Arc<BodyReport>,
    ) -> Self {
        Self {
            inner,
            decoder,
            scanner,
            away: Away::default(),
            report,
            unscanned: 0,
            tail: None,
            finished: false,
            trailers: None,
        }
    }

    fn stop(&mut self, why: String) -> Out {
        *self.report.blocked.lock().unwrap() = Some(why.clone());
        self.finished = true;
        self.trailers = None;
        self.report.body_done();
        Some(Err(why.into()))
    }

    /// Takes the next piece of (encoded) body, decoded, for the scanner.
    /// `Some` only when decoding failed.
    fn take(&mut self, data: &[u8]) -> Out {
        self.report
            .bytes_up
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let decoded = match &mut self.decoder {
            None => None,
            Some(d) => match d.push(data) {
                Ok(v) => Some(v),
                Err(e) => return self.stop(format!("the request body's {e}")),
            },
        };
        let decoded = decoded.as_deref().unwrap_or(data);
        self.scanner.feed(decoded);
        self.unscanned += decoded.len();
        None
    }

    /// Sends a whole gathered piece's scan away, if there is room and the
    /// scanner can part with it; whether it did.
    fn send_away(&mut self) -> bool {
        if self.unscanned < GATHER || !self.away.has_room() {
            return false;
        }
        let Some(job) = self.scanner.detach() else {
            return false;
        };
        self.unscanned = 0;
        self.away.send(job);
        true
    }

    /// Scans what was gathered, here (no scan is away); what is safe goes.
    fn scan_here(&mut self) -> Out {
        self.unscanned = 0;
        let scanned = self.scanner.release();
        self.release(scanned)
    }

    /// The oldest scan away is back: what it cleared goes.
    fn scan_back(&mut self, back: Back) -> Out {
        match back {
            Err(lost) => self.stop(lost.into()),
            Ok(Err(finding)) => self.release(Err(finding)),
            Ok(Ok(mut scanned)) => {
                self.scanner.rejoin(&mut scanned);
                self.release(Ok(scanned.release))
            }
        }
    }

    /// The agent's body ended, trailers and all, and no scan is away.
    fn ended(&mut self, tail: Tail) -> Out {
        let out = self.end();
        if let Tail::Trailers(trailers) = tail {
            if self.report.blocked().is_none() {
                self.trailers = trailers;
            }
        }
        out
    }

    /// The end of the body: what the decoder and the scanner still hold.
    fn end(&mut self) -> Out {
        self.finished = true;
        let mut out = bytes::BytesMut::new();
        if let Some(d) = &mut self.decoder {
            let rest = match d.finish() {
                Ok(v) => v,
                Err(e) => return self.stop(format!("the request body's {e}")),
            };
            match self.scanner.push(&rest) {
                Ok(b) => out.extend_from_slice(&b),
                Err(f) => return self.release(Err(f)),
            }
        }
        match self.scanner.finish() {
            Ok(b) => {
                out.extend_from_slice(&b);
                self.release(Ok(out.freeze()))
            }
            Err(f) => self.release(Err(f)),
        }
    }

    fn release(&mut self, out: Result<Bytes, Finding>) -> Out {
        self.report
            .redacted
            .store(self.scanner.redacted as u64, Ordering::Relaxed);
        match out {
            Ok(b) if b.is_empty() => None,
            Ok(b) => Some(Ok(Frame::data(b))),
            Err(f) => self.stop(format!("the request body carries {}", f.kind)),
        }
    }

    /// What to do before reading the agent's body again: `Some` to return
    /// (a frame, or `Pending` until the oldest scan away is back), `None`
    /// to read on.
    fn before_reading(&mut self, cx: &mut Context<'_>) -> Option<Poll<Out>> {
        loop {
            if let Poll::Ready(Some(back)) = self.away.poll_oldest(cx) {
                match self.scan_back(back) {
                    Some(out) => return Some(Poll::Ready(Some(out))),
                    None => continue,
                }
            }
            if self.send_away() {
                continue;
            }
            if !self.away.is_empty() {
                // The next piece is read meanwhile, but not the one after
                // it, nor past the end.
                let wait = self.tail.is_some() || self.unscanned >= GATHER;
                return wait.then_some(Poll::Pending);
            }
            if let Some(tail) = self.tail.take() {
                return Some(Poll::Ready(self.ended(tail)));
            }
            // A whole piece the scanner would not part with (nothing to
            // look for): scanned here.
            if self.unscanned >= GATHER {
                if let Some(out) = self.scan_here() {
                    return Some(Poll::Ready(Some(out)));
                }
            }
            return None;
        }
    }
}

impl<B> Body for ScannedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if self.finished {
                let t = self.trailers.take();
                if t.is_none() {
                    self.report.body_done();
                }
                return Poll::Ready(t.map(|t| Ok(Frame::trailers(t))));
            }
            match self.before_reading(cx) {
                Some(Poll::Ready(None)) => continue,
                Some(poll) => return poll,
                None => {}
            }
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                // The oldest scan away wakes this task when it is back.
                Poll::Pending if !self.away.is_empty() => return Poll::Pending,
                // Nothing more ready now: what was gathered is scanned and
                // goes (a body that pauses is never held up).
                Poll::Pending if self.unscanned > 0 => match self.scan_here() {
                    Some(out) => return Poll::Ready(Some(out)),
                    None => continue,
                },
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(f))) => f,
                Poll::Ready(None) => {
                    self.tail = Some(Tail::End);
                    continue;
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    if let Some(out) = self.take(&data) {
                        return Poll::Ready(Some(out));
                    }
                }
                // Trailers end the body: what was held back goes first.
                Err(frame) => self.tail = Some(Tail::Trailers(frame.into_trailers().ok())),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // Redaction keeps lengths, and held-back bytes are all sent in the
        // end; a decoded body's length is not known in advance.
        if self.decoder.is_some() {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

impl<B> Drop for ScannedBody<B> {
    fn drop(&mut self) {
        self.report.body_done();
    }
}
