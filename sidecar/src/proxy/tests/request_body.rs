//! The scanned request body on its own (no sockets): whole and in order
//! when clean, masked when redacting, and stopped before any byte of a
//! secret (or after it) goes, wherever it falls among the pieces scanned.

use super::super::request_body::{BodyReport, ScannedBody};
use super::SECRET;
use crate::dlp::{Depth, Mode, Needles, Scanner, StreamScanner};
use bottlebar_policy::HeldSecret;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

/// An agent's body: frames handed out in order, every other poll `Pending`
/// when `pausing` (waking at once: a body that pauses is scanned as far as
/// it came).
struct Frames {
    frames: VecDeque<Frame<Bytes>>,
    pausing: bool,
    paused: bool,
}

impl Frames {
    fn new(data: &[u8], frame: usize, trailers: bool, pausing: bool) -> Self {
        let mut frames: VecDeque<_> = data
            .chunks(frame)
            .map(|c| Frame::data(Bytes::copy_from_slice(c)))
            .collect();
        if trailers {
            let mut t = hyper::HeaderMap::new();
            t.insert("x-digest", "abc".parse().unwrap());
            frames.push_back(Frame::trailers(t));
        }
        Frames {
            frames,
            pausing,
            paused: false,
        }
    }
}

impl Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.pausing && !self.paused {
            self.paused = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.paused = false;
        Poll::Ready(self.frames.pop_front().map(Ok))
    }
}

fn scanned(body: Frames, mode: Mode) -> (ScannedBody<Frames>, Arc<BodyReport>) {
    let scanner = Arc::new(Scanner::new(
        &[HeldSecret {
            name: "api".into(),
            value: SECRET.into(),
            placeholder: None,
        }],
        Needles::SecretsAndTokens,
    ));
    let report = Arc::new(BodyReport::default());
    let stream = StreamScanner::new(scanner, mode, Depth::Views);
    (ScannedBody::new(body, None, stream, report.clone()), report)
}

/// What went out: the data, the trailers, and the error that stopped it.
#[derive(Default)]
struct Sent {
    data: Vec<u8>,
    trailers: Option<hyper::HeaderMap>,
    error: Option<String>,
}

async fn send(mut body: ScannedBody<Frames>) -> Sent {
    let mut sent = Sent::default();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => sent.data.extend_from_slice(&d),
                Err(f) => sent.trailers = f.into_trailers().ok(),
            },
            Err(e) => {
                sent.error = Some(e.to_string());
                break;
            }
        }
    }
    sent
}

/// Source text in JSON, with hex and base64 runs (what the benchmark sends).
fn text(len: usize) -> Vec<u8> {
    let line = br#"{"path":"src/lib.rs","text":"fn main() {}\n","digest":"9f86d081884c7d659a2feaa0c55ad015","blob":"aGVsbG8gd29ybGQsIHRoaXMgaXMgYSB0ZXN0"}
"#;
    line.iter().copied().cycle().take(len).collect()
}

#[tokio::test]
async fn a_clean_body_goes_out_whole_in_order_with_its_trailers() {
    let data = text(700 * 1024 + 123);
    for (frame, trailers, pausing) in [
        (16 * 1024, true, false),
        (16 * 1024, false, true),
        (100 * 1024, true, true),
        (1000, false, false),
    ] {
        let (body, report) = scanned(Frames::new(&data, frame, trailers, pausing), Mode::Block);
        let sent = send(body).await;
        let case = format!("frames of {frame}, trailers {trailers}, pausing {pausing}");
        assert_eq!(sent.error, None, "{case}");
        assert!(sent.data == data, "{case}: the body changed on the way");
        assert_eq!(sent.trailers.is_some(), trailers, "{case}");
        assert_eq!(report.blocked(), None, "{case}");
        assert_eq!(report.bytes_up.load(Ordering::Relaxed), data.len() as u64);
    }
}

#[tokio::test]
async fn a_secret_anywhere_stops_the_body_before_any_byte_of_it_goes() {
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{{\"key\":\"{SECRET}\"}}"),
    );
    let len = 600 * 1024;
    // In the first piece, across the first pieces' border, mid-body, and
    // in the last bytes.
    for at in [10, 64 * 1024 - 20, 300 * 1024 + 7, len - encoded.len() - 1] {
        for pausing in [false, true] {
            let mut data = text(len);
            data[at..at + encoded.len()].copy_from_slice(encoded.as_bytes());
            let (body, report) = scanned(Frames::new(&data, 16 * 1024, true, pausing), Mode::Block);
            let sent = send(body).await;
            let case = format!("secret at {at}, pausing {pausing}");
            let error = sent.error.unwrap_or_else(|| panic!("{case}: not stopped"));
            assert!(error.contains("held secret `api`"), "{case}: {error}");
            assert!(
                sent.data.len() <= at,
                "{case}: {} bytes went, the secret starts at {at}",
                sent.data.len()
            );
            assert!(sent.data == data[..sent.data.len()], "{case}");
            assert_eq!(sent.trailers, None, "{case}: trailers after a block");
            assert!(report.blocked().is_some(), "{case}");
        }
    }
}

#[tokio::test]
async fn redacting_masks_every_direct_match_in_every_piece() {
    let mut data = text(500 * 1024);
    let at = [5, 64 * 1024 - 10, 200 * 1024, 499 * 1024];
    for a in at {
        data[a..a + SECRET.len()].copy_from_slice(SECRET.as_bytes());
    }
    let mut expected = data.clone();
    for a in at {
        expected[a..a + SECRET.len()].fill(crate::dlp::REDACTION_BYTE);
    }
    let (body, report) = scanned(Frames::new(&data, 16 * 1024, false, false), Mode::Redact);
    let sent = send(body).await;
    assert_eq!(sent.error, None);
    assert!(sent.data == expected, "the masked body differs");
    assert_eq!(report.redacted.load(Ordering::Relaxed), at.len() as u64);
}

#[tokio::test]
async fn a_body_ending_while_a_piece_is_scanned_away_waits_for_that_scan() {
    // One whole piece (scanned on a blocking thread), then a short rest and
    // the trailers, which arrive while that scan is away.
    let mut data = text(64 * 1024 + 500);
    for secret_in_rest in [false, true] {
        if secret_in_rest {
            let at = 64 * 1024 + 100;
            data[at..at + SECRET.len()].copy_from_slice(SECRET.as_bytes());
        }
        let (body, report) = scanned(Frames::new(&data, 64 * 1024, true, false), Mode::Block);
        let sent = send(body).await;
        let case = format!("secret in the rest {secret_in_rest}");
        if secret_in_rest {
            assert!(sent.error.is_some(), "{case}: not stopped");
            assert!(sent.data.len() <= 64 * 1024 + 100, "{case}");
            assert_eq!(sent.trailers, None, "{case}");
        } else {
            assert_eq!(sent.error, None, "{case}");
            assert!(sent.data == data, "{case}: the body changed on the way");
            assert!(sent.trailers.is_some(), "{case}: the trailers were lost");
            assert_eq!(report.blocked(), None, "{case}");
        }
    }
}
