//! Well-known token formats (AWS, GitHub, Anthropic, OpenAI, Slack, Google,
//! PEM private keys), each bounded in length. Their literal prefixes gate
//! the expressions, so clean data costs one fast literal pass.

use super::Finding;
use regex::bytes::Regex;

/// The token formats: their literal prefixes gate the expressions (clean
/// data costs one fast literal pass); one combined expression finds
/// candidates in a single pass; the individual ones name what was found.
pub(super) struct Tokens {
    /// The prefixes as one expression (its vectorised literal search skips
    /// clean text many times faster than an automaton would).
    prefixes: Regex,
    any: Regex,
    each: Vec<(&'static str, Regex)>,
}

/// The literal starts of [`TOKEN_PATTERNS`]: no token can occur where none of these does.
pub(super) const TOKEN_PREFIXES: &[&str] = &[
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

/// The formats, each with what people call it.
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
    pub(super) fn new() -> Self {
        let any = TOKEN_PATTERNS
            .iter()
            .map(|(_, p)| format!("(?:{p})"))
            .collect::<Vec<_>>()
            .join("|");
        Tokens {
            prefixes: Regex::new(&super::gates::alternation(TOKEN_PREFIXES))
                .expect("escaped prefixes compile"),
            any: Regex::new(&any).expect("built-in patterns compile"),
            each: TOKEN_PATTERNS
                .iter()
                .map(|(k, p)| (*k, Regex::new(p).expect("built-in pattern compiles")))
                .collect(),
        }
    }

    pub(super) fn is_match(&self, data: &[u8]) -> bool {
        self.prefixes.is_match(data) && self.any.is_match(data)
    }

    pub(super) fn find(&self, data: &[u8], out: &mut Vec<Finding>) {
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
