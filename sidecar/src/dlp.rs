//! Secret scanning (data-loss prevention) of what the agent sends out.
//!
//! Two kinds of needles:
//! - every secret the sidecar holds, in the encodings an exfiltrating agent
//!   would use: raw, hex, base64 and base64url (at each of the three byte
//!   alignments, so a secret inside a longer base64 blob is still found), and
//!   percent-encoding;
//! - well-known token formats (AWS, GitHub, Anthropic, OpenAI, Slack, Google,
//!   PEM private keys), each bounded in length.
//!
//! Bodies are scanned as they stream, through a window of the longest needle:
//! [`StreamScanner`] holds back just enough bytes that a needle split across
//! chunks is seen whole before any of it is released, so nothing is buffered
//! beyond that window.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use bottlebar_policy::HeldSecret;
use bytes::{Bytes, BytesMut};
use regex::bytes::Regex;

/// Longest token-pattern match considered; patterns are written to stay under it.
const MAX_PATTERN_LEN: usize = 512;
/// Encodings shorter than this are too likely to occur by chance to scan for.
const MIN_NEEDLE_LEN: usize = 8;
/// What replaces each byte of a redacted secret (same length keeps framing valid).
pub const REDACTION_BYTE: u8 = b'*';

/// A secret found in outbound data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// For people: "held secret `github` (base64)", "an AWS access key".
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

pub struct Scanner {
    literals: Option<AhoCorasick>,
    literal_kinds: Vec<String>,
    patterns: Vec<(&'static str, Regex)>,
    window: usize,
}

fn token_patterns() -> Vec<(&'static str, Regex)> {
    [
        (
            "an AWS access key",
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b",
        ),
        (
            "a GitHub token",
            r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b",
        ),
        ("a GitHub token", r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b"),
        ("an Anthropic API key", r"\bsk-ant-[A-Za-z0-9_\-]{20,255}"),
        (
            "an OpenAI API key",
            r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,255}",
        ),
        ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,255}"),
        ("a Google API key", r"\bAIza[0-9A-Za-z_\-]{35}"),
        (
            "a PEM private key",
            r"-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY-----",
        ),
    ]
    .into_iter()
    .map(|(kind, re)| (kind, Regex::new(re).expect("built-in pattern compiles")))
    .collect()
}

/// The encoded forms of `secret` worth scanning for, with a label for each.
pub fn encodings(secret: &[u8]) -> Vec<(String, &'static str)> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out: Vec<(String, &'static str)> = Vec::new();
    if let Ok(raw) = std::str::from_utf8(secret) {
        out.push((raw.to_string(), "raw"));
    }
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    out.push((hex.to_ascii_uppercase(), "hex"));
    out.push((hex, "hex"));
    // base64 depends on where the secret falls in 3-byte groups: encode it at
    // each alignment and keep only the characters fixed by the secret's own bytes.
    for (engine, label) in [
        (&STANDARD_NO_PAD, "base64"),
        (&URL_SAFE_NO_PAD, "base64url"),
    ] {
        for offset in 0..3usize {
            let mut buf = vec![0u8; offset];
            buf.extend_from_slice(secret);
            let enc = engine.encode(&buf);
            let start = if offset == 0 { 0 } else { 4 };
            let full_groups = buf.len() / 3;
            let end = full_groups * 4;
            if end > start {
                out.push((enc[start..end].to_string(), label));
            }
            if offset == 0 {
                out.push((enc, label)); // the whole secret encoded on its own
            }
        }
    }
    let all_upper: String = secret.iter().map(|b| format!("%{b:02X}")).collect();
    out.push((all_upper.to_ascii_lowercase(), "percent-encoded"));
    out.push((all_upper, "percent-encoded"));
    out.push((
        percent_encoding::percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string(),
        "percent-encoded",
    ));
    let mut seen = std::collections::HashSet::new();
    out.retain(|(s, _)| s.len() >= MIN_NEEDLE_LEN && seen.insert(s.clone()));
    out
}

impl Scanner {
    pub fn new(secrets: &[HeldSecret]) -> Self {
        let mut needles = Vec::new();
        let mut kinds = Vec::new();
        for s in secrets {
            for (needle, label) in encodings(s.value.as_bytes()) {
                needles.push(needle);
                kinds.push(format!("held secret `{}` ({label})", s.name));
            }
        }
        let window = needles
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(MAX_PATTERN_LEN);
        let literals = (!needles.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&needles)
                .expect("literal needles build")
        });
        Self {
            literals,
            literal_kinds: kinds,
            patterns: token_patterns(),
            window,
        }
    }

    /// The longest match this scanner can report; the streaming window.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Every secret in `data`, in position order, overlapping ones merged.
    pub fn find_all(&self, data: &[u8]) -> Vec<Finding> {
        let mut found = Vec::new();
        if let Some(ac) = &self.literals {
            for m in ac.find_iter(data) {
                found.push(Finding {
                    kind: self.literal_kinds[m.pattern().as_usize()].clone(),
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        for (kind, re) in &self.patterns {
            for m in re.find_iter(data) {
                found.push(Finding {
                    kind: kind.to_string(),
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        // Overlapping findings (a secret that also looks like a token, or two
        // encodings of one) become one region, named by the earliest, longest.
        found.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
        let mut merged: Vec<Finding> = Vec::with_capacity(found.len());
        for f in found {
            match merged.last_mut() {
                Some(last) if f.start < last.end => last.end = last.end.max(f.end),
                _ => merged.push(f),
            }
        }
        merged
    }

    pub fn first(&self, data: &[u8]) -> Option<Finding> {
        self.find_all(data).into_iter().next()
    }

    /// Masks every finding in `data`; returns how many there were.
    pub fn redact(&self, data: &mut [u8]) -> usize {
        let found = self.find_all(data);
        for f in &found {
            data[f.start..f.end].fill(REDACTION_BYTE);
        }
        found.len()
    }

    /// `s` with every finding masked, and whether anything was.
    pub fn redact_str(&self, s: &str) -> (String, bool) {
        let mut bytes = s.as_bytes().to_vec();
        let n = self.redact(&mut bytes);
        // Masking replaces whole matches, which the needles keep ASCII, with ASCII.
        (
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            n > 0,
        )
    }
}

/// What to do with a body that carries a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Block,
    Redact,
}

/// Scans a stream chunk by chunk, releasing bytes only once no needle can
/// still end in them.
pub struct StreamScanner {
    scanner: std::sync::Arc<Scanner>,
    mode: Mode,
    held: BytesMut,
    /// Findings redacted so far.
    pub redacted: usize,
}

impl StreamScanner {
    pub fn new(scanner: std::sync::Arc<Scanner>, mode: Mode) -> Self {
        Self {
            scanner,
            mode,
            held: BytesMut::new(),
            redacted: 0,
        }
    }

    /// Takes the next chunk; returns the bytes now safe to send, or the
    /// finding that blocks the stream.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Bytes, Finding> {
        self.held.extend_from_slice(chunk);
        self.scan_held()?;
        let keep = (self.scanner.window().saturating_sub(1)).min(self.held.len());
        let release = self.held.len() - keep;
        Ok(self.held.split_to(release).freeze())
    }

    /// The end of the stream: whatever was held back, scanned.
    pub fn finish(&mut self) -> Result<Bytes, Finding> {
        self.scan_held()?;
        Ok(self.held.split().freeze())
    }

    fn scan_held(&mut self) -> Result<(), Finding> {
        match self.mode {
            Mode::Block => match self.scanner.first(&self.held) {
                Some(f) => Err(f),
                None => Ok(()),
            },
            Mode::Redact => {
                self.redacted += self.scanner.redact(&mut self.held);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use std::sync::Arc;

    const SECRET: &str = "s3cr3t-Token_value/with+chars";

    fn scanner() -> Scanner {
        Scanner::new(&[HeldSecret {
            name: "api".into(),
            value: SECRET.into(),
            placeholder: None,
        }])
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn finds_a_held_secret_in_every_encoding_and_alignment() {
        let s = scanner();
        let mut forms = vec![
            SECRET.to_string(),
            hex(SECRET.as_bytes()),
            hex(SECRET.as_bytes()).to_uppercase(),
            percent_encoding::percent_encode(SECRET.as_bytes(), percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
            SECRET.bytes().map(|b| format!("%{b:02x}")).collect(),
        ];
        // The secret inside a longer base64 payload, at each alignment.
        for prefix in ["", "a", "ab", "abc", "abcd"] {
            let payload = format!("{prefix}{{\"key\":\"{SECRET}\"}}");
            forms.push(STANDARD.encode(&payload));
            forms.push(URL_SAFE_NO_PAD.encode(&payload));
        }
        for form in forms {
            let data = format!("junk before {form} junk after");
            let f = s
                .first(data.as_bytes())
                .unwrap_or_else(|| panic!("missed {form}"));
            assert!(f.kind.contains("held secret `api`"), "{form}: {f:?}");
        }
        assert!(s.first(b"nothing to see here, just text").is_none());
    }

    #[test]
    fn finds_token_formats() {
        let s = Scanner::new(&[]);
        for (token, kind) in [
            ("AKIAIOSFODNN7EXAMPLE", "AWS"),
            ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "GitHub"),
            ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "Anthropic"),
            ("sk-proj-abcdefghijklmnopqrstuvwxyz012345", "OpenAI"),
            ("xoxb-123456789012-abcdefghij", "Slack"),
            ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "Google"),
            ("-----BEGIN RSA PRIVATE KEY-----", "PEM"),
            ("-----BEGIN PRIVATE KEY-----", "PEM"),
        ] {
            let data = format!("x={token}&y=1");
            let f = s
                .first(data.as_bytes())
                .unwrap_or_else(|| panic!("missed {token}"));
            assert!(f.kind.contains(kind), "{token}: {f:?}");
        }
        assert!(s.first(b"-----BEGIN CERTIFICATE-----").is_none());
        assert!(s.first(b"AKIA is a prefix; sk-short").is_none());
    }

    #[test]
    fn redaction_keeps_length_and_masks_only_the_secret() {
        let s = scanner();
        let (out, changed) = s.redact_str(&format!("a={SECRET}&b=2"));
        assert!(changed);
        assert_eq!(out, format!("a={}&b=2", "*".repeat(SECRET.len())));
    }

    #[test]
    fn a_secret_split_across_chunks_is_blocked_before_any_of_it_is_released() {
        let scanner = Arc::new(scanner());
        let data = format!("{}{SECRET}{}", "x".repeat(700), "y".repeat(50));
        for split in [1usize, 3, 7, 64, 701, 705] {
            let mut stream = StreamScanner::new(scanner.clone(), Mode::Block);
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
            let mut stream = StreamScanner::new(scanner.clone(), Mode::Redact);
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
        let mut stream = StreamScanner::new(scanner.clone(), Mode::Block);
        let chunk = vec![b'z'; 64 * 1024];
        let first = stream.push(&chunk).unwrap();
        assert_eq!(first.len(), chunk.len() - (scanner.window() - 1));
        let rest = stream.finish().unwrap();
        assert_eq!(first.len() + rest.len(), chunk.len());
    }
}
