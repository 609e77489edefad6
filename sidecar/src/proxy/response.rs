//! Layer 5: the upstream's response on its way to the agent.
//!
//! Every held secret is masked before the agent sees it — in header values
//! (a header whose name carries one is dropped), in the body as it streams
//! (through the scanner's window), in trailers — so an upstream that echoes
//! the request (debug endpoints, TRACE, verbose errors) cannot hand an
//! injected credential back. A compressed body is decoded first and sent
//! on decoded; one the proxy cannot decode is refused. The exchange is
//! audited when the body ends (or is dropped): as allowed, or as blocked if
//! the request body was stopped on the way.

use super::checks::{redact_header_values, strip_hop_by_hop};
use super::request_body::BodyReport;
use crate::audit::{now_rfc3339, AuditLog, Entry};
use crate::config::Snapshot;
use crate::dlp::decode::BodyDecoder;
use crate::dlp::{Depth, Finding, Mode, StreamScanner};
use crate::upstream::BoxError;
use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::http::response::Parts;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// Cleans the response head: hop-by-hop headers removed, held secrets
/// masked, and a decoder chosen if the body is compressed and secrets are
/// held. Returns the decoder and how many secrets were masked; `Err` when
/// the body's encoding cannot be inspected.
pub fn prepare_head(
    parts: &mut Parts,
    snap: &Snapshot,
) -> Result<(Option<BodyDecoder>, usize), String> {
    strip_hop_by_hop(&mut parts.headers);
    if snap.reflection.is_empty() {
        return Ok((None, 0));
    }
    let tainted: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|n| snap.reflection.first(n.as_str().as_bytes()).is_some())
        .cloned()
        .collect();
    let mut masked = tainted.len();
    for n in tainted {
        parts.headers.remove(n);
    }
    masked += redact_header_values(&mut parts.headers, &snap.reflection, true).unwrap_or(0);
    let encoding = parts
        .headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    let decoder = BodyDecoder::for_header(&encoding).map_err(|e| {
        format!("the response's {e}, so it cannot be checked for the bottle's secrets")
    })?;
    if decoder.is_some() {
        parts.headers.remove(header::CONTENT_ENCODING);
        parts.headers.remove(header::CONTENT_LENGTH);
    }
    Ok((decoder, masked))
}

/// The response body the agent reads.
pub struct ResponseBody {
    inner: Incoming,
    decoder: Option<BodyDecoder>,
    scanner: Option<StreamScanner>,
    entry: Option<Entry>,
    started: Instant,
    bytes_down: u64,
    request: Arc<BodyReport>,
    audit: Arc<AuditLog>,
    finished: bool,
    trailers: Option<HeaderMap>,
    failure: Option<String>,
}

impl ResponseBody {
    /// Wraps the upstream's body; `entry` is written to `audit` when it ends.
    pub fn new(
        inner: Incoming,
        decoder: Option<BodyDecoder>,
        snap: &Snapshot,
        entry: Entry,
        started: Instant,
        request: Arc<BodyReport>,
        audit: Arc<AuditLog>,
    ) -> Self {
        let scanner = (!snap.reflection.is_empty())
            .then(|| StreamScanner::new(snap.reflection.clone(), Mode::Redact, Depth::Direct));
        Self {
            inner,
            decoder,
            scanner,
            entry: Some(entry),
            started,
            bytes_down: 0,
            request,
            audit,
            finished: false,
            trailers: None,
            failure: None,
        }
    }

    fn fail(&mut self, why: String) -> Option<Result<Frame<Bytes>, BoxError>> {
        self.failure = Some(why.clone());
        self.finished = true;
        Some(Err(why.into()))
    }

    fn scan(&mut self, data: &[u8]) -> Result<Bytes, Finding> {
        match &mut self.scanner {
            Some(s) => s.push(data),
            None => Ok(Bytes::copy_from_slice(data)),
        }
    }

    fn take(&mut self, data: Bytes) -> Option<Result<Frame<Bytes>, BoxError>> {
        let out = match &mut self.decoder {
            Some(d) => match d.push(&data) {
                Ok(v) => self.scan(&v),
                Err(e) => return self.fail(format!("the response's {e}")),
            },
            None if self.scanner.is_none() => Ok(data),
            None => self.scan(&data),
        };
        self.emit(out)
    }

    fn end(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        self.finished = true;
        let mut out = BytesMut::new();
        if let Some(d) = &mut self.decoder {
            match d.finish() {
                Ok(v) => match self.scan(&v) {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(f) => return self.emit(Err(f)),
                },
                Err(e) => return self.fail(format!("the response's {e}")),
            }
        }
        if let Some(s) = &mut self.scanner {
            match s.finish() {
                Ok(b) => out.extend_from_slice(&b),
                Err(f) => return self.emit(Err(f)),
            }
        }
        if let (Some(t), Some(s)) = (&mut self.trailers, &self.scanner) {
            let _ = redact_header_values(t, &reflection_of(s), true);
        }
        self.emit(Ok(out.freeze()))
    }

    fn emit(&mut self, out: Result<Bytes, Finding>) -> Option<Result<Frame<Bytes>, BoxError>> {
        match out {
            Ok(b) if b.is_empty() => None,
            Ok(b) => {
                self.bytes_down += b.len() as u64;
                Some(Ok(Frame::data(b)))
            }
            // Redacting scanners never refuse; kept total for safety.
            Err(f) => self.fail(format!("the response carries {}", f.kind)),
        }
    }

    fn record(&mut self) {
        let Some(mut e) = self.entry.take() else {
            return;
        };
        e.bytes_down = self.bytes_down;
        if let Some(s) = &self.scanner {
            e.redacted_in_response += s.redacted;
        }
        if let Some(why) = &self.failure {
            e.detail = Some(why.clone());
        }
        e.time = now_rfc3339();
        e.duration_ms = self.started.elapsed().as_millis() as u64;
        self.request.audit_when_done(e, self.audit.clone());
    }
}

/// The scanner a redacting stream uses (for the trailers).
fn reflection_of(s: &StreamScanner) -> Arc<crate::dlp::Scanner> {
    s.scanner().clone()
}

impl Body for ResponseBody {
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
                    self.record();
                }
                return Poll::Ready(t.map(|t| Ok(Frame::trailers(t))));
            }
            let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => {
                    self.failure = Some(format!("the upstream's body failed: {e}"));
                    self.finished = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Ready(Some(Ok(f))) => f,
                Poll::Ready(None) => match self.end() {
                    Some(out) => return Poll::Ready(Some(out)),
                    None => continue,
                },
            };
            match frame.into_data() {
                Ok(data) => {
                    if let Some(out) = self.take(data) {
                        return Poll::Ready(Some(out));
                    }
                }
                Err(frame) => {
                    self.trailers = frame.into_trailers().ok();
                    if let Some(out) = self.end() {
                        return Poll::Ready(Some(out));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_none() && self.scanner.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.decoder.is_some() {
            SizeHint::default()
        } else {
            // Masking keeps lengths.
            self.inner.size_hint()
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        self.record();
    }
}
