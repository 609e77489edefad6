//! Scanning a body as it streams, through a window: a secret split across
//! chunks is seen whole before any of it is released, and nothing is
//! buffered beyond that window.

use super::job::{ScanJob, Scanned};
use super::{Finding, Scanner};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// What to do with a body that carries a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stop the stream at the first secret.
    Block,
    /// Mask direct matches and carry on; a secret found only in a decoded
    /// view still stops the stream (it cannot be masked in place).
    Redact,
}

/// How deep a stream is looked into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Direct matches only (responses: fast, and enough to mask reflections).
    Direct,
    /// Direct matches and every decoded view (what the agent sends).
    Views,
}

/// Scans a stream chunk by chunk, releasing bytes only once no needle can
/// still end in them.
pub struct StreamScanner {
    scanner: Arc<Scanner>,
    mode: Mode,
    depth: Depth,
    held: BytesMut,
    /// Findings redacted so far.
    pub redacted: usize,
    /// A detached scan (redacting) has yet to bring back the window it
    /// masked, which goes before what was fed since.
    window_away: bool,
}

impl StreamScanner {
    /// A scanner for one stream.
    pub fn new(scanner: Arc<Scanner>, mode: Mode, depth: Depth) -> Self {
        Self {
            scanner,
            mode,
            depth,
            held: BytesMut::new(),
            redacted: 0,
            window_away: false,
        }
    }

    /// The scanner this stream uses.
    pub fn scanner(&self) -> &Arc<Scanner> {
        &self.scanner
    }

    /// Takes the next chunk; returns the bytes now safe to send, or the
    /// finding that blocks the stream.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, Finding> {
        self.feed(chunk);
        self.release()
    }

    /// Takes the next chunk without scanning yet: chunks fed together are
    /// scanned as one by the next [`StreamScanner::release`] (each scan
    /// also covers the held-back window again, so fewer scans cost less).
    pub fn feed(&mut self, chunk: &[u8]) {
        self.held.extend_from_slice(chunk);
    }

    /// Scans what was fed; returns the bytes now safe to send, or the
    /// finding that blocks the stream.
    pub fn release(&mut self) -> Result<Bytes, Finding> {
        debug_assert!(!self.window_away, "a detached scan is still away");
        if self.scanner.is_empty() {
            return Ok(self.held.split().freeze());
        }
        self.redacted += scan(&self.scanner, self.mode, self.depth, &mut self.held)?;
        let release = self.held.len() - keep(&self.scanner, self.depth, &self.held);
        Ok(self.held.split_to(release).freeze())
    }

    /// The end of the stream: whatever was held back, scanned.
    pub fn finish(&mut self) -> Result<Bytes, Finding> {
        debug_assert!(!self.window_away, "a detached scan is still away");
        self.redacted += scan(&self.scanner, self.mode, self.depth, &mut self.held)?;
        Ok(self.held.split().freeze())
    }

    /// What was fed, as a scan to run on another thread, or `None` when
    /// there is nothing to look for or a detached scan must come back
    /// first. Blocking, the bytes are not changed by a scan, so the window
    /// held back for the next one is known at once and scans of later
    /// pieces can run beside it; redacting, the next scan waits for the
    /// window this one masks ([`StreamScanner::rejoin`]).
    pub fn detach(&mut self) -> Option<ScanJob> {
        if self.window_away || self.scanner.is_empty() {
            return None;
        }
        let held = self.held.split();
        if self.mode == Mode::Block {
            let window = held.len() - keep(&self.scanner, self.depth, &held);
            self.held.extend_from_slice(&held[window..]);
        } else {
            self.window_away = true;
        }
        Some(ScanJob::new(
            self.scanner.clone(),
            self.mode,
            self.depth,
            held,
        ))
    }

    /// A detached scan is back, clean: its masks are counted, and the window
    /// it held back (redacting) goes before what was fed since.
    pub fn rejoin(&mut self, scanned: &mut Scanned) {
        self.redacted += scanned.redacted;
        if let Some(window) = scanned.window.take() {
            let mut held = BytesMut::with_capacity(window.len() + self.held.len());
            held.extend_from_slice(&window);
            held.extend_from_slice(&self.held);
            self.held = held;
            self.window_away = false;
        }
    }
}

/// Scans `held` for `mode` at `depth`: direct matches are masked when
/// redacting (how many is returned); the first finding left refuses it.
pub(super) fn scan(
    scanner: &Scanner,
    mode: Mode,
    depth: Depth,
    held: &mut [u8],
) -> Result<usize, Finding> {
    let mut masked = 0;
    let mut direct_clean = false;
    if mode == Mode::Redact {
        masked = scanner.redact(held);
        if depth == Depth::Direct {
            // Every direct match is masked; nothing is left to refuse.
            return Ok(masked);
        }
        // Nothing masked: the held bytes have no direct match, and are
        // unchanged; only the views are left to look at.
        direct_clean = masked == 0;
    }
    let found = match depth {
        Depth::Direct => scanner.first(held),
        Depth::Views if direct_clean => scanner.first_in_views(held),
        Depth::Views => scanner.first_deep(held),
    };
    found.map_or(Ok(masked), Err)
}

/// How many of `held`'s last bytes, once scanned, are held back for the
/// next scan: what could still become a match with more data.
pub(super) fn keep(scanner: &Scanner, depth: Depth, held: &[u8]) -> usize {
    match depth {
        // Only what could still become a match is held back, so a
        // stream of small events (SSE) is not delayed.
        Depth::Direct => scanner.open_tail(held),
        Depth::Views => scanner.deep_keep(held),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Needles;
    use super::*;
    use bottlebar_policy::HeldSecret;

    const SECRET: &str = "s3cr3t-Token_value/with+chars";

    fn scanner() -> Scanner {
        Scanner::new(
            &[HeldSecret {
                name: "api".into(),
                value: SECRET.into(),
                placeholder: None,
            }],
            Needles::SecretsAndTokens,
        )
    }

    #[test]
    fn a_secret_split_across_chunks_is_blocked_before_any_of_it_is_released() {
        let scanner = Arc::new(scanner());
        let data = format!("{}{SECRET}{}", "x".repeat(700), "y".repeat(50));
        for split in [1usize, 3, 7, 64, 701, 705] {
            let mut stream = StreamScanner::new(scanner.clone(), Mode::Block, Depth::Direct);
            let mut released = Vec::new();
            let mut blocked = false;
            for chunk in data.as_bytes().chunks(split) {
                match stream.push(chunk) {
                    Ok(b) => released.extend_from_slice(&b),
                    Err(_) => {
                        blocked = true;
                        break;
                    }
                }
            }
            if !blocked {
                blocked = stream.finish().is_err();
            }
            assert!(blocked, "chunk size {split}");
            let released = String::from_utf8(released).unwrap();
            assert!(
                !released.contains(&SECRET[..4]),
                "part of the secret left before the block (chunks of {split})"
            );
        }
    }

    #[test]
    fn redacting_stream_is_byte_for_byte_except_the_secret() {
        let scanner = Arc::new(scanner());
        let data = format!("{}{SECRET}{}", "x".repeat(1000), "y".repeat(1000));
        let expected = format!(
            "{}{}{}",
            "x".repeat(1000),
            "*".repeat(SECRET.len()),
            "y".repeat(1000)
        );
        for split in [1usize, 5, 100, 1024, 4096] {
            let mut stream = StreamScanner::new(scanner.clone(), Mode::Redact, Depth::Direct);
            let mut out = Vec::new();
            for chunk in data.as_bytes().chunks(split) {
                out.extend_from_slice(&stream.push(chunk).unwrap());
            }
            out.extend_from_slice(&stream.finish().unwrap());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                expected,
                "chunks of {split}"
            );
            assert_eq!(stream.redacted, 1, "chunks of {split}");
        }
    }

    #[test]
    fn clean_streams_pass_unchanged_with_bounded_holdback() {
        let scanner = Arc::new(scanner());
        let mut stream = StreamScanner::new(scanner.clone(), Mode::Block, Depth::Direct);
        let chunk = vec![b'z'; 64 * 1024];
        let first = stream.push(&chunk).unwrap();
        assert_eq!(first.len(), chunk.len() - (scanner.window() - 1));
        let rest = stream.finish().unwrap();
        assert_eq!(first.len() + rest.len(), chunk.len());
    }

    #[test]
    fn a_literal_only_stream_holds_back_just_a_possible_start() {
        let scanner = Arc::new(Scanner::new(
            &[HeldSecret {
                name: "api".into(),
                value: SECRET.into(),
                placeholder: None,
            }],
            Needles::SecretsOnly,
        ));
        let mut stream = StreamScanner::new(scanner.clone(), Mode::Redact, Depth::Direct);
        assert_eq!(
            &stream.push(b"data: event 1\n\n").unwrap()[..],
            b"data: event 1\n\n"
        );
        // The start of the secret is held until it can be told apart.
        let out = stream
            .push(format!("x {}", &SECRET[..6]).as_bytes())
            .unwrap();
        assert_eq!(&out[..], b"x ");
        let out = stream
            .push(format!("{} !", &SECRET[6..]).as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("{} !", "*".repeat(SECRET.len()))
        );
    }

    #[test]
    fn an_encoded_secret_split_across_chunks_is_blocked_by_the_deep_scan() {
        let scanner = Arc::new(scanner());
        let json_u: String = SECRET
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let data = format!("{}{json_u}{}", "x".repeat(3000), "y".repeat(100));
        for split in [1usize, 13, 500, 3001, 3100] {
            let mut stream = StreamScanner::new(scanner.clone(), Mode::Redact, Depth::Views);
            let mut blocked = false;
            for chunk in data.as_bytes().chunks(split) {
                if stream.push(chunk).is_err() {
                    blocked = true;
                    break;
                }
            }
            blocked = blocked || stream.finish().is_err();
            assert!(blocked, "chunks of {split}");
        }
    }
}

#[cfg(test)]
mod widest_encoding;

#[cfg(test)]
mod throughput {
    use super::super::Needles;
    use super::*;
    use base64::Engine;

    /// How fast a request body streams through deep scanning, by kind of
    /// body and chunk size (`cargo test --release -p bottlebar-sidecar --
    /// --ignored request_body_scanning_throughput --nocapture`). The first
    /// body is the one `bottlebar-bench` uploads through the sidecar.
    #[test]
    #[ignore]
    fn request_body_scanning_throughput() {
        // `SECRETS=a,b` holds those instead (a bottle often holds several).
        let values =
            std::env::var("SECRETS").unwrap_or_else(|_| "s3cr3t-Token_value/with+chars".into());
        let held = super::super::held_secrets(&values.split(',').collect::<Vec<_>>());
        let scanner = Arc::new(Scanner::new(&held, Needles::SecretsAndTokens));
        println!(
            "{} held secrets, deep window {} bytes",
            held.len(),
            scanner.deep_window()
        );
        // `BODY=source` measures only the bodies whose kind starts so.
        let only = std::env::var("BODY").unwrap_or_default();
        for (kind, body) in bodies(16 << 20) {
            if !kind.starts_with(only.as_str()) {
                continue;
            }
            let chunks: &[usize] = if kind.starts_with("bench") {
                &[1024, 8192, 16384, 65536]
            } else {
                &[65536]
            };
            // `CHUNK=65536` measures only that size (what the proxy scans).
            let size = std::env::var("CHUNK").ok();
            for &chunk in chunks {
                if size.as_ref().is_some_and(|s| *s != chunk.to_string()) {
                    continue;
                }
                let mb_s = body.len() as f64 / fastest_pass(&scanner, &body, chunk) / 1e6;
                println!("{kind:<44} chunk {chunk:>6}: {mb_s:>6.1} MB/s");
            }
        }
    }

    /// Seconds the fastest of three passes of `body` took, in `chunk`s
    /// (`PASSES=50` makes more of them, for a profiler to sample).
    fn fastest_pass(scanner: &Arc<Scanner>, body: &[u8], chunk: usize) -> f64 {
        let passes = std::env::var("PASSES").ok().and_then(|n| n.parse().ok());
        (0..passes.unwrap_or(3))
            .map(|_| {
                let started = std::time::Instant::now();
                let mut stream = StreamScanner::new(scanner.clone(), Mode::Redact, Depth::Views);
                let mut out = 0;
                for c in body.chunks(chunk) {
                    out += stream.push(c).unwrap().len();
                }
                out += stream.finish().unwrap().len();
                assert_eq!(out, body.len());
                started.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    }

    /// Bodies of `len` bytes an agent sends, by kind.
    fn bodies(len: usize) -> Vec<(&'static str, Vec<u8>)> {
        let repeat = |unit: &[u8]| -> Vec<u8> { unit.iter().copied().cycle().take(len).collect() };
        let bench = br#"{"path":"src/lib.rs","text":"fn main() {\n    println!(\"hello\");\n}\n","digest":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","blob":"aGVsbG8gd29ybGQsIHRoaXMgaXMgYSB0ZXN0IG9mIHRoZSBzY2FubmVy"}
"#;
        let source = include_bytes!("views/runs.rs");
        let message = serde_json::json!({
            "role": "user",
            "content": String::from_utf8_lossy(source),
        })
        .to_string();
        let noise = noise(len * 3 / 4);
        let image = base64::engine::general_purpose::STANDARD.encode(&noise);
        vec![
            ("bench (JSON, a hex and a base64 run a line)", repeat(bench)),
            ("source text", repeat(source)),
            ("source text in a JSON message", repeat(message.as_bytes())),
            ("base64 of random bytes (an image)", image.into_bytes()),
            ("random bytes", noise),
        ]
    }

    /// `len` bytes of deterministic noise (xorshift64).
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }
}
