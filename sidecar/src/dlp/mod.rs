//! Secret scanning (data-loss prevention) of what crosses the proxy.
//!
//! Two kinds of needles:
//! - every secret the sidecar holds, in the encodings an exfiltrating agent
//!   would use: raw, hex (any case), base64 and base64url (at each of the
//!   three byte alignments, so a secret inside a longer base64 blob is still
//!   found), and percent-encoding (any case);
//! - well-known token formats (AWS, GitHub, Anthropic, OpenAI, Slack, Google,
//!   PEM private keys), each bounded in length.
//!
//! Direct matches can be masked in place ([`Scanner::redact`]). Beyond them,
//! [`Scanner::first_deep`] also looks through decoded views ([`views`]):
//! percent-decoding, JSON escapes, line breaks, base64 and hex runs, layered
//! up to three deep. A secret found only there cannot be masked in place, so
//! it always blocks.
//!
//! Bodies are scanned as they stream ([`stream`]); compressed bodies are
//! decoded first ([`decode`]).

pub mod decode;
pub mod stream;
pub mod views;

pub use stream::{Depth, Mode, StreamScanner};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use bottlebar_policy::HeldSecret;
use regex::bytes::Regex;

/// Longest token-pattern match considered; patterns are written to stay under it.
const MAX_PATTERN_LEN: usize = 512;
/// Encodings shorter than this are too likely to occur by chance to scan for.
const MIN_NEEDLE_LEN: usize = 8;
/// How much longer than its raw form an encoded secret may get before the
/// views still see it whole (a JSON `\u00XX` escape is six bytes per byte).
const MAX_EXPANSION: usize = 6;
/// What replaces each byte of a redacted secret (same length keeps framing valid).
pub const REDACTION_BYTE: u8 = b'*';

/// A secret found in data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// For people: "held secret `github` (base64)", "an AWS access key".
    pub kind: String,
    /// Where it starts (in the scanned data, or in a view).
    pub start: usize,
    /// Where it ends.
    pub end: usize,
}

/// Which needles a scanner looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needles {
    /// Held secrets and token formats: for what the agent sends.
    SecretsAndTokens,
    /// Held secrets only: for what comes back to the agent (responses carry
    /// tokens legitimately; only the bottle's own credentials must not reach it).
    SecretsOnly,
}

/// The held secrets' encodings, matched ignoring ASCII case: hex and
/// percent escapes mean the same in either case, and a case-changed copy of
/// any other encoding is as suspicious (and, at these lengths, never chance).
struct Literals {
    needles: Option<AhoCorasick>,
    kinds: Vec<String>,
    /// Every proper prefix of every needle, reversed, matched anchored: the
    /// longest one at the start of a reversed window is the longest end of
    /// the window that may still become a needle.
    prefixes_reversed: Option<AhoCorasick>,
}

/// The token formats: their literal prefixes gate the expressions (clean
/// data costs one fast literal pass); one combined expression finds
/// candidates in a single pass; the individual ones name what was found.
struct Tokens {
    prefixes: AhoCorasick,
    any: Regex,
    each: Vec<(&'static str, Regex)>,
}

/// The literal starts of [`TOKEN_PATTERNS`]: no token can occur where none of these does.
const TOKEN_PREFIXES: &[&str] = &[
    "AKIA",
    "ASIA",
    "AGPA",
    "AIDA",
    "AROA",
    "ANPA",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "sk-",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxo-",
    "xoxs-",
    "xoxr-",
    "AIza",
    "-----BEGIN ",
];

/// Finds secrets in bytes.
pub struct Scanner {
    literals: Literals,
    tokens: Option<Tokens>,
    /// Longest direct match.
    window: usize,
    /// Longest stretch the views must see whole.
    deep_window: usize,
}

const TOKEN_PATTERNS: &[(&str, &str)] = &[
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
];

impl Tokens {
    fn new() -> Self {
        let any = TOKEN_PATTERNS
            .iter()
            .map(|(_, p)| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        Tokens {
            prefixes: AhoCorasick::new(TOKEN_PREFIXES).expect("token prefixes build"),
            any: Regex::new(&any).expect("built-in patterns compile"),
            each: TOKEN_PATTERNS
                .iter()
                .map(|(k, p)| (*k, Regex::new(p).expect("built-in pattern compiles")))
                .collect(),
        }
    }

    fn is_match(&self, data: &[u8]) -> bool {
        self.prefixes.is_match(data) && self.any.is_match(data)
    }

    fn find(&self, data: &[u8], out: &mut Vec<Finding>) {
        if !self.prefixes.is_match(data) {
            return;
        }
        for m in self.any.find_iter(data) {
            // The longest individual match at this start names it.
            let named = self
                .each
                .iter()
                .filter_map(|(k, re)| {
                    re.find_at(data, m.start())
                        .filter(|x| x.start() == m.start())
                        .map(|x| (k, x.end()))
                })
                // Ties go to the pattern listed first (the more specific).
                .fold(None, |best: Option<(&&str, usize)>, (k, end)| match best {
                    Some((_, e)) if e >= end => best,
                    _ => Some((k, end)),
                });
            let (kind, end) = named.unwrap_or((&"a token", m.end()));
            out.push(Finding {
                kind: kind.to_string(),
                start: m.start(),
                end: end.max(m.end()),
            });
        }
    }
}

/// The encoded forms of `secret` worth scanning for, with a label for each
/// (forms that differ only in case are one: matching ignores case).
pub fn encodings(secret: &[u8]) -> Vec<(String, &'static str)> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out: Vec<(String, &'static str)> = Vec::new();
    if let Ok(raw) = std::str::from_utf8(secret) {
        out.push((raw.to_string(), "raw"));
    }
    out.push((secret.iter().map(|b| format!("{b:02x}")).collect(), "hex"));
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
    out.push((
        secret.iter().map(|b| format!("%{b:02x}")).collect(),
        "percent-encoded",
    ));
    out.push((
        percent_encoding::percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string(),
        "percent-encoded",
    ));
    let mut seen = std::collections::HashSet::new();
    out.retain(|(s, _)| s.len() >= MIN_NEEDLE_LEN && seen.insert(s.to_ascii_lowercase()));
    out
}

fn automaton(needles: &[String]) -> Option<AhoCorasick> {
    (!needles.is_empty()).then(|| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(needles)
            .expect("literal needles build")
    })
}

impl Scanner {
    /// A scanner for `secrets` (and, with [`Needles::SecretsAndTokens`], token formats).
    pub fn new(secrets: &[HeldSecret], needles: Needles) -> Self {
        let (mut all, mut kinds) = (Vec::new(), Vec::new());
        let mut longest_raw = 0;
        for s in secrets {
            longest_raw = longest_raw.max(s.value.len());
            for (needle, label) in encodings(s.value.as_bytes()) {
                all.push(needle);
                kinds.push(format!("held secret `{}` ({label})", s.name));
            }
        }
        let mut prefixes: Vec<Vec<u8>> = all
            .iter()
            .flat_map(|n| {
                (1..n.len()).map(|k| {
                    n.as_bytes()[..k]
                        .iter()
                        .rev()
                        .map(u8::to_ascii_lowercase)
                        .collect()
                })
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let tokens = (needles == Needles::SecretsAndTokens).then(Tokens::new);
        let longest_needle = all.iter().map(String::len).max().unwrap_or(0);
        let pattern_len = if tokens.is_some() { MAX_PATTERN_LEN } else { 0 };
        Self {
            literals: Literals {
                needles: automaton(&all),
                kinds,
                prefixes_reversed: (!prefixes.is_empty()).then(|| {
                    AhoCorasick::builder()
                        .match_kind(MatchKind::LeftmostLongest)
                        .start_kind(aho_corasick::StartKind::Anchored)
                        .ascii_case_insensitive(true)
                        .build(&prefixes)
                        .expect("prefixes build")
                }),
            },
            tokens,
            window: longest_needle.max(pattern_len),
            deep_window: longest_needle.max(MAX_EXPANSION * longest_raw.max(pattern_len)),
        }
    }

    /// Whether this scanner looks for anything at all.
    pub fn is_empty(&self) -> bool {
        self.literals.needles.is_none() && self.tokens.is_none()
    }

    /// The longest direct match this scanner can report.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The longest stretch of data an encoded secret may span (what a
    /// stream must hold back for [`Scanner::first_deep`] to see it whole).
    pub fn deep_window(&self) -> usize {
        self.deep_window
    }

    /// How many bytes at the end of `data` could still become a direct match
    /// once more data arrives: the longest tail that begins some needle.
    /// With token formats (not literal) it is the whole window less one.
    pub fn open_tail(&self, data: &[u8]) -> usize {
        if self.tokens.is_some() {
            return self.window.saturating_sub(1).min(data.len());
        }
        let Some(prefixes) = &self.literals.prefixes_reversed else {
            return 0;
        };
        let tail = &data[data.len().saturating_sub(self.window.saturating_sub(1))..];
        let reversed: Vec<u8> = tail.iter().rev().copied().collect();
        let input = aho_corasick::Input::new(&reversed).anchored(aho_corasick::Anchored::Yes);
        prefixes.find(input).map_or(0, |m| m.end())
    }

    /// Whether `data` holds any direct match (cheaper than finding them).
    pub fn is_match(&self, data: &[u8]) -> bool {
        self.literals
            .needles
            .as_ref()
            .is_some_and(|a| a.is_match(data))
            || self.tokens.as_ref().is_some_and(|t| t.is_match(data))
    }

    /// Every direct match in `data`, in position order, overlapping ones merged.
    pub fn find_all(&self, data: &[u8]) -> Vec<Finding> {
        if !self.is_match(data) {
            return Vec::new();
        }
        let mut found = Vec::new();
        if let Some(ac) = &self.literals.needles {
            for m in ac.find_iter(data) {
                found.push(Finding {
                    kind: self.literals.kinds[m.pattern().as_usize()].clone(),
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        if let Some(t) = &self.tokens {
            t.find(data, &mut found);
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

    /// The first direct match in `data`.
    pub fn first(&self, data: &[u8]) -> Option<Finding> {
        if !self.is_match(data) {
            return None;
        }
        self.find_all(data).into_iter().next()
    }

    /// The first match in `data` or in any of its decoded views (bounded to
    /// a few times the size of `data`). A finding in a view says how it was
    /// encoded, e.g. "an AWS access key (base64-decoded)".
    pub fn first_deep(&self, data: &[u8]) -> Option<Finding> {
        if let Some(f) = self.first(data) {
            return Some(f);
        }
        let budget = 4 * data.len() + 64 * 1024;
        views::decoded(data, budget)
            .into_iter()
            .find(|v| self.is_match(&v.data))
            .and_then(|v| {
                self.first(&v.data).map(|f| Finding {
                    kind: format!("{} ({})", f.kind, v.how),
                    ..f
                })
            })
    }

    /// Masks every direct finding in `data`; returns how many there were.
    pub fn redact(&self, data: &mut [u8]) -> usize {
        if !self.is_match(data) {
            return 0;
        }
        let found = self.find_all(data);
        for f in &found {
            data[f.start..f.end].fill(REDACTION_BYTE);
        }
        found.len()
    }

    /// `s` with every direct finding masked, and whether anything was.
    pub fn redact_str(&self, s: &str) -> (String, bool) {
        let mut bytes = s.as_bytes().to_vec();
        let n = self.redact(&mut bytes);
        if n == 0 {
            return (s.to_string(), false);
        }
        // Masking replaces whole matches, which the needles keep ASCII, with ASCII.
        (
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

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
        let s = Scanner::new(&[], Needles::SecretsAndTokens);
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
    fn mixed_case_hex_and_percent_are_direct_matches() {
        let s = scanner();
        let mixed: String = SECRET
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if i % 2 == 0 {
                    format!("{b:02X}")
                } else {
                    format!("{b:02x}")
                }
            })
            .collect();
        let pct: String = SECRET
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if i % 3 == 0 {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect();
        for form in [mixed, pct] {
            let mut data = format!("x={form}&y").into_bytes();
            assert!(s.first(&data).is_some(), "{form}");
            assert_eq!(s.redact(&mut data), 1);
            assert!(!String::from_utf8(data).unwrap().contains(&form));
        }
    }

    /// Every encoding the issue found leaking is caught by the deep scan.
    #[test]
    fn deep_scan_sees_through_layered_encodings() {
        let s = scanner();
        let b64 = STANDARD.encode(format!("{{\"k\":\"{SECRET}\"}}"));
        let mime: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n");
        let col9: String = b64
            .as_bytes()
            .chunks(9)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let json_u: String = SECRET
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect();
        let partly = format!("%{:02x}{}", SECRET.as_bytes()[0], &SECRET[1..]);
        let token_b64 = STANDARD.encode("key=AKIAIOSFODNN7EXAMPLE");
        let token_hex: String = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        for (form, want) in [
            (mime, "held secret"),
            (col9, "held secret"),
            (json_u, "held secret"),
            (partly, "held secret"),
            (token_b64, "AWS"),
            (token_hex, "GitHub"),
        ] {
            assert!(
                s.first(form.as_bytes()).is_none() || want == "held secret",
                "{form}"
            );
            let f = s
                .first_deep(format!("{{\"data\": \"{form}\"}}").as_bytes())
                .unwrap_or_else(|| panic!("missed {form}"));
            assert!(f.kind.contains(want), "{form}: {f:?}");
        }
        assert!(s
            .first_deep(b"{\"data\": \"a perfectly ordinary sentence\"}")
            .is_none());
    }

    #[test]
    fn a_secrets_only_scanner_ignores_token_formats() {
        let s = Scanner::new(
            &[HeldSecret {
                name: "api".into(),
                value: SECRET.into(),
                placeholder: None,
            }],
            Needles::SecretsOnly,
        );
        assert!(s.first(b"AKIAIOSFODNN7EXAMPLE").is_none());
        assert!(s.first(SECRET.as_bytes()).is_some());
        assert!(Scanner::new(&[], Needles::SecretsOnly).is_empty());
    }
}
