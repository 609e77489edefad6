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
mod gates;
pub mod job;
pub mod stream;
mod tokens;
pub mod views;

pub use job::{ScanJob, Scanned};
pub use stream::{Depth, Mode, StreamScanner};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use bottlebar_policy::HeldSecret;
use gates::Gates;
use tokens::Tokens;

/// Longest token-pattern match considered; patterns are written to stay under it.
const MAX_PATTERN_LEN: usize = 512;
/// Encodings shorter than this are too likely to occur by chance to scan for.
const MIN_NEEDLE_LEN: usize = 8;
/// How much longer than its raw form an encoded secret may get before the
/// views still see it whole: UTF-16 in JSON `\u` escapes is twelve bytes a
/// byte (`\u0073\u0000`; `\u00XX` alone is six).
const MAX_EXPANSION: usize = 12;
/// Most a deep scan holds back for the next (see [`Scanner::deep_keep`]):
/// an encoding with more than this of it before a piece's end is the one
/// a stream cut into pieces can still miss.
pub const MAX_DEEP_KEEP: usize = 64 * 1024;
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

/// Finds secrets in bytes.
pub struct Scanner {
    literals: Literals,
    tokens: Option<Tokens>,
    /// What rules out clean data before any needle is looked for.
    gates: Gates,
    /// How the views are peeled (separately only for secrets that need it).
    peeling: views::Peeling,
    /// Longest direct match.
    window: usize,
    /// Longest stretch the views must see whole.
    deep_window: usize,
    /// Most punctuation ([`views::is_punctuation`]) any needle holds;
    /// `None` when a held secret has a NUL, which decodings join their
    /// pieces with (a needle could then span a join, punctuation left out).
    punctuation: Option<usize>,
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
        let (mut all, mut kinds, mut each) = (Vec::new(), Vec::new(), Vec::new());
        let mut longest_raw = 0;
        for s in secrets {
            longest_raw = longest_raw.max(s.value.len());
            let first = all.len();
            for (needle, label) in encodings(s.value.as_bytes()) {
                all.push(needle);
                kinds.push(format!("held secret `{}` ({label})", s.name));
            }
            each.push(first..all.len());
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
        let by_secret: Vec<&[String]> = each.into_iter().map(|r| &all[r]).collect();
        let gates = Gates::new(
            &by_secret,
            tokens.is_some().then_some(tokens::TOKEN_PREFIXES),
        );
        let peeling = if secrets
            .iter()
            .any(|s| views::Peeling::for_secret(s.value.as_bytes()) == views::Peeling::Separate)
        {
            views::Peeling::Separate
        } else {
            views::Peeling::Combined
        };
        let longest_needle = all.iter().map(String::len).max().unwrap_or(0);
        let pattern_len = if tokens.is_some() { MAX_PATTERN_LEN } else { 0 };
        // Every needle but a raw secret is letters, digits and encoding
        // symbols; a token is counted as if it were all punctuation.
        let punctuation = secrets
            .iter()
            .map(|s| {
                let raw = s.value.as_bytes();
                (!raw.contains(&0)).then(|| punctuation_in(raw))
            })
            .try_fold(pattern_len, |most, n| Some(most.max(n?)));
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
            gates,
            peeling,
            window: longest_needle.max(pattern_len),
            deep_window: longest_needle.max(MAX_EXPANSION * longest_raw.max(pattern_len)),
            punctuation,
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

    /// How many of `held`'s last bytes a deep scan holds back for the next
    /// one: what an encoded secret crossing the cut may already have sent.
    ///
    /// At least the deep window, and further back until those bytes hold
    /// more punctuation than any needle: no decoding the views make drops
    /// or merges a byte of punctuation (see [`views::is_punctuation`]), so
    /// an encoding of a needle holds no more of it than the needle does,
    /// and one that began before them would hold them all. Layered
    /// encodings are wider than any fixed window (`\u` escapes of `\u`
    /// escapes, line breaks with indentation between a secret's halves);
    /// one is found however wide, unless more than [`MAX_DEEP_KEEP`] bytes
    /// of it come before the cut.
    pub fn deep_keep(&self, held: &[u8]) -> usize {
        let floor = self.deep_window.saturating_sub(1).min(held.len());
        let most = MAX_DEEP_KEEP.max(floor).min(held.len());
        let Some(bound) = self.punctuation else {
            return most;
        };
        let before = |keep: usize, len: usize| &held[held.len() - keep - len..held.len() - keep];
        let (mut keep, mut seen) = (floor, punctuation_in(before(0, floor)));
        // Further back a block at a time, counted where the compiler
        // vectorises it; the block that passes the bound byte by byte.
        while seen <= bound && keep < most {
            let block = before(keep, (most - keep).min(4096));
            let found = punctuation_in(block);
            if seen + found <= bound {
                (keep, seen) = (keep + block.len(), seen + found);
                continue;
            }
            for &b in block.iter().rev() {
                keep += 1;
                seen += usize::from(views::is_punctuation(b));
                if seen > bound {
                    break;
                }
            }
        }
        keep
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
        if self.gates.rules_out(data) {
            return false;
        }
        self.tokens.as_ref().is_some_and(|t| t.is_match(data)) || self.gates.any_secret(data)
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
        self.first(data).or_else(|| self.first_in_views(data))
    }

    /// The first match in a decoded view of `data` (not in `data` itself).
    pub fn first_in_views(&self, data: &[u8]) -> Option<Finding> {
        if self.is_empty() {
            return None;
        }
        // Every base64 run decodes at four alignments (three times its
        // size), then its payload's views: room for three layers of that.
        let budget = 8 * data.len() + 64 * 1024;
        views::decoded(data, budget, self.peeling)
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

/// How many bytes of `data` are punctuation ([`views::is_punctuation`]).
fn punctuation_in(data: &[u8]) -> usize {
    // Counted 64 bytes at a time into a byte, which vectorises.
    let blocks = data.chunks_exact(64);
    let rest = blocks.remainder();
    let count = |bytes: &[u8]| {
        bytes
            .iter()
            .fold(0u8, |n, &b| n + u8::from(views::is_punctuation(b)))
    };
    blocks.map(|block| usize::from(count(block))).sum::<usize>() + usize::from(count(rest))
}

/// `s` in hex, the case of its digits alternating (`6D0a…`): how the tests
/// spell a case-folded encoding.
#[cfg(test)]
pub(crate) fn mixed_case_hex(s: &str) -> String {
    s.bytes()
        .enumerate()
        .map(|(i, b)| {
            if i % 2 == 0 {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// Held secrets of these `values`, each named `api`: what the tests hold.
#[cfg(test)]
pub(crate) fn held_secrets(values: &[&str]) -> Vec<HeldSecret> {
    values
        .iter()
        .map(|v| HeldSecret {
            name: "api".into(),
            value: (*v).into(),
            placeholder: None,
        })
        .collect()
}

/// A small deterministic pseudo-random sequence for the tests' generated
/// inputs: the high 31 bits of a linear congruential generator.
#[cfg(test)]
pub(crate) fn pseudo_random(seed: u64) -> impl FnMut() -> usize {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    }
}

#[cfg(test)]
mod tests;
