//! The expressions that rule out clean data, nearly all data, before any
//! needle is looked for: each a literal alternation, which the `regex`
//! crate searches with a vectorised prefilter (Teddy on the first bytes of
//! every case variant), an order of magnitude faster on text than an
//! automaton stepping byte by byte.
//!
//! That prefilter is not always there. Matching ignoring case makes each
//! letter at the start of a needle two variants, and past a few held
//! secrets the variants are too many: the expression then falls back to a
//! search several times slower. Measured on the bench's body (whole deep
//! scans, `request_body_scanning_throughput`, MB/s): one held secret 480,
//! an Anthropic key and a GitHub token 195, four secrets 173. So one
//! expression for everything is kept only while it has a fast prefilter,
//! and otherwise each held secret gets its own (each as fast as one).

use regex::bytes::{Regex, RegexBuilder};
use regex_automata::util::prefilter::Prefilter;

/// What rules out clean data, and then tells a held secret's encoding
/// from a token format's prefix.
pub(super) struct Gates {
    /// Every held secret's encodings (ignoring case) and every token
    /// format's prefix as one expression, when it has a fast prefilter.
    clean: Option<Regex>,
    /// One expression a held secret, matching its encodings ignoring case.
    secrets: Vec<Regex>,
}

impl Gates {
    /// The gates for `secrets` (each held secret's encodings) and, when
    /// given, the token formats' literal `prefixes`.
    pub(super) fn new(secrets: &[&[String]], prefixes: Option<&[&str]>) -> Self {
        let secrets: Vec<&[String]> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
        let clean = prefixes
            .filter(|_| !secrets.is_empty())
            .map(|prefixes| {
                let needles: Vec<&String> = secrets.iter().flat_map(|s| s.iter()).collect();
                format!("(?i:{})|{}", alternation(&needles), alternation(prefixes))
            })
            .filter(|pattern| has_fast_prefilter(pattern))
            .map(|pattern| build(&pattern, false));
        Gates {
            clean,
            secrets: secrets
                .iter()
                .map(|s| build(&alternation(s), true))
                .collect(),
        }
    }

    /// Whether `data` is clean for certain: no held secret's encoding, and
    /// no token prefix, can be in it. `false` says only "maybe".
    pub(super) fn rules_out(&self, data: &[u8]) -> bool {
        self.clean.as_ref().is_some_and(|g| !g.is_match(data))
    }

    /// Whether any held secret's encoding occurs in `data` (ignoring case).
    pub(super) fn any_secret(&self, data: &[u8]) -> bool {
        self.secrets.iter().any(|g| g.is_match(data))
    }

    /// Whether all of it is ruled out by one expression.
    #[cfg(test)]
    pub(super) fn is_one_pass(&self) -> bool {
        self.clean.is_some()
    }

    /// How many expressions the held secrets take.
    #[cfg(test)]
    pub(super) fn secret_expressions(&self) -> usize {
        self.secrets.len()
    }
}

/// Whether the `regex` crate searches `pattern` with a prefilter it calls
/// fast: the one its matcher is built on (the literal prefixes it extracts,
/// with the same options as [`build`]).
fn has_fast_prefilter(pattern: &str) -> bool {
    let Ok(hir) = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
    else {
        return false;
    };
    Prefilter::from_hir_prefix(regex_automata::MatchKind::LeftmostFirst, &hir)
        .is_some_and(|p| p.is_fast())
}

fn build(pattern: &str, ignore_case: bool) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .case_insensitive(ignore_case)
        .size_limit(64 << 20)
        .build()
        .expect("escaped literals compile")
}

/// `literals` as one regular expression that matches any of them exactly.
pub(super) fn alternation(literals: &[impl AsRef<str>]) -> String {
    literals
        .iter()
        .map(|l| regex::escape(l.as_ref()))
        .collect::<Vec<_>>()
        .join("|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dlp::{encodings, tokens::TOKEN_PREFIXES};

    /// Secrets a bottle running a coding agent holds: a made-up one, an
    /// Anthropic key, a GitHub token, an AWS key id.
    const HELD: [&str; 4] = [
        "s3cr3t-Token_value/with+chars",
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef",
        "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
        "AKIAIOSFODNN7EXAMPLE",
    ];

    fn needles(values: &[&str]) -> Vec<Vec<String>> {
        values
            .iter()
            .map(|v| {
                encodings(v.as_bytes())
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect()
            })
            .collect()
    }

    fn gates(values: &[&str]) -> Gates {
        let needles = needles(values);
        let by_secret: Vec<&[String]> = needles.iter().map(Vec::as_slice).collect();
        Gates::new(&by_secret, Some(TOKEN_PREFIXES))
    }

    #[test]
    fn one_secret_and_the_token_prefixes_are_one_fast_expression() {
        assert!(gates(&HELD[..1]).is_one_pass());
        assert!(!gates(&HELD[..1]).rules_out(b"sk-"));
        assert!(gates(&HELD[..1]).rules_out(b"plain words"));
    }

    #[test]
    fn secrets_too_many_for_one_fast_expression_get_one_each_and_each_is_fast() {
        // An Anthropic key and a GitHub token are already too many: as one
        // expression they lose the fast prefilter (the bench's body scanned
        // at 195 MB/s instead of 480).
        for held in [&HELD[1..3], &HELD[..]] {
            let g = gates(held);
            assert!(!g.is_one_pass(), "{held:?}");
            assert!(!g.rules_out(b"plain words"), "nothing is ruled out at once");
            for n in needles(held) {
                let pattern = format!("(?i:{})", alternation(&n));
                assert!(has_fast_prefilter(&pattern), "{pattern}");
            }
        }
    }

    #[test]
    fn the_prefilter_check_tells_fast_from_slow() {
        assert!(has_fast_prefilter("sk-|AKIA|ghp_"));
        // Single bytes: a prefilter, but not one that skips text fast.
        assert!(!has_fast_prefilter("a|b|c|d|e"));
        assert!(!has_fast_prefilter("(unclosed"));
    }
}
