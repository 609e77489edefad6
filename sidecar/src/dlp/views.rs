//! Decoded views of outbound data: what a secret looks like once the
//! encodings an exfiltrating agent would wrap it in are peeled off.
//!
//! A view is never sent anywhere; it is only scanned. Each decoder runs only
//! when its trigger is present (a `%`, a `\`, whitespace, a long base64 or
//! hex run), views of views are taken up to [`MAX_DEPTH`] layers, and the
//! total is bounded by a byte budget, so a hostile input costs a bounded
//! multiple of its own size.

use base64::Engine as _;

/// Layers of encoding peeled off at most (e.g. percent inside base64 inside JSON).
pub const MAX_DEPTH: usize = 3;
/// Shortest base64 or hex run decoded (shorter ones are too common by chance).
const MIN_RUN: usize = 16;

/// One decoded view and how it was reached, e.g. `base64-decoded, percent-decoded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The decoded bytes.
    pub data: Vec<u8>,
    /// The decodings applied, outermost first.
    pub how: String,
}

/// Every decoded view of `data`, up to [`MAX_DEPTH`] layers deep, at most
/// `budget` bytes in total. `data` itself is not included.
pub fn decoded(data: &[u8], budget: usize) -> Vec<View> {
    let mut out: Vec<View> = Vec::new();
    let mut used = 0usize;
    // The first layer decodes `data` itself; later ones the views before them.
    let mut layer = peel(data, "", &mut out, &mut used, budget);
    for _ in 1..MAX_DEPTH {
        let mut next = Vec::new();
        for i in layer {
            let (d, how) = (out[i].data.clone(), out[i].how.clone());
            next.extend(peel(&d, &how, &mut out, &mut used, budget));
        }
        if next.is_empty() {
            break;
        }
        layer = next;
    }
    out
}

/// Applies every decoder to `data`, adding new views to `out`; returns their indices.
fn peel(
    data: &[u8],
    how: &str,
    out: &mut Vec<View>,
    used: &mut usize,
    budget: usize,
) -> Vec<usize> {
    let mut added = Vec::new();
    for (decoder, label) in DECODERS {
        let Some(d) = decoder(data) else { continue };
        if d.is_empty() || d == data || *used + d.len() > budget || out.iter().any(|o| o.data == d)
        {
            continue;
        }
        *used += d.len();
        let how = if how.is_empty() {
            label.to_string()
        } else {
            format!("{how}, {label}")
        };
        out.push(View { data: d, how });
        added.push(out.len() - 1);
    }
    added
}

type Decoder = fn(&[u8]) -> Option<Vec<u8>>;

const DECODERS: &[(Decoder, &str)] = &[
    (strip_breaks, "line breaks removed"),
    (percent, "percent-decoded"),
    (escapes, "escapes decoded"),
    (base64_runs, "base64-decoded"),
    (hex_runs, "hex-decoded"),
];

/// Without line breaks (and the escaped ones of JSON strings), so
/// line-wrapped base64 (PEM's 64 columns, MIME's 76, any width) reads whole;
/// other whitespace goes too once a break is there.
fn strip_breaks(data: &[u8]) -> Option<Vec<u8>> {
    let escaped = data.windows(2).any(|w| w == b"\\n" || w == b"\\r");
    if !escaped && !data.iter().any(|b| matches!(b, b'\n' | b'\r' | b'\t')) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'\\' && matches!(data.get(i + 1), Some(b'n' | b'r' | b't')) {
            i += 2;
            continue;
        }
        if !b.is_ascii_whitespace() {
            out.push(b);
        }
        i += 1;
    }
    Some(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` escapes decoded wherever they are, so a secret partly encoded
/// (`%61tk…`) reads whole.
fn percent(data: &[u8]) -> Option<Vec<u8>> {
    if !data.contains(&b'%') {
        return None;
    }
    let out = bottlebar_policy::path::percent_decode_once(data);
    (out.len() != data.len()).then_some(out)
}

/// JSON and JavaScript string escapes: `\uXXXX` (surrogate pairs joined),
/// `\xXX`, `\/`, `\"`, `\\`.
fn escapes(data: &[u8]) -> Option<Vec<u8>> {
    if !data.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    let mut changed = false;
    let hex4 = |s: &[u8]| -> Option<u32> {
        (s.len() >= 4).then_some(())?;
        s[..4]
            .iter()
            .try_fold(0u32, |acc, b| Some(acc * 16 + hex_val(*b)? as u32))
    };
    while i < data.len() {
        if data[i] != b'\\' || i + 1 >= data.len() {
            out.push(data[i]);
            i += 1;
            continue;
        }
        match data[i + 1] {
            b'u' => match hex4(&data[i + 2..]) {
                Some(hi) if (0xd800..0xdc00).contains(&hi) => {
                    let lo = (data.get(i + 6..i + 8) == Some(b"\\u"))
                        .then(|| hex4(&data[i + 8..]))
                        .flatten()
                        .filter(|lo| (0xdc00..0xe000).contains(lo));
                    match lo {
                        Some(lo) => {
                            let c = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
                            push_char(&mut out, c);
                            i += 12;
                        }
                        None => {
                            out.push(b'?');
                            i += 6;
                        }
                    }
                    changed = true;
                }
                Some(c) => {
                    push_char(&mut out, c);
                    i += 6;
                    changed = true;
                }
                None => {
                    out.push(data[i]);
                    i += 1;
                }
            },
            b'x' => match (
                data.get(i + 2).copied().and_then(hex_val),
                data.get(i + 3).copied().and_then(hex_val),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 4;
                    changed = true;
                }
                _ => {
                    out.push(data[i]);
                    i += 1;
                }
            },
            c @ (b'/' | b'"' | b'\\' | b'\'') => {
                out.push(c);
                i += 2;
                changed = true;
            }
            _ => {
                out.push(data[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    let ch = char::from_u32(c).unwrap_or('?');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// Maximal runs of `pred` bytes at least [`MIN_RUN`] long, as ranges.
fn runs(data: &[u8], pred: impl Fn(u8) -> bool) -> Vec<std::ops::Range<usize>> {
    let mut v = Vec::new();
    let mut start = None;
    for (i, &b) in data.iter().enumerate() {
        match (pred(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= MIN_RUN {
                    v.push(s..i);
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        if data.len() - s >= MIN_RUN {
            v.push(s..data.len());
        }
    }
    v
}

/// Every long base64 (or base64url) run decoded; a run at the very start may
/// be cut mid-group (the data is a window into a stream), so there every
/// alignment is tried.
fn base64_runs(data: &[u8]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    for r in runs(data, is_b64) {
        let run = &data[r.clone()];
        let offsets: &[usize] = if r.start == 0 { &[0, 1, 2, 3] } else { &[0] };
        for &off in offsets {
            let s = &run[off..];
            let s = &s[..s.len() - (s.len() % 4 == 1) as usize];
            let url = s.iter().any(|b| matches!(b, b'-' | b'_'));
            let engine = if url {
                &URL_SAFE_NO_PAD
            } else {
                &STANDARD_NO_PAD
            };
            if let Ok(d) = engine.decode(s) {
                out.extend_from_slice(&d);
                out.push(b'\n');
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Every long hex run decoded (either case, even mixed).
fn hex_runs(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for r in runs(data, |b| b.is_ascii_hexdigit()) {
        let run = &data[r];
        for pair in run.chunks_exact(2) {
            out.push(hex_val(pair[0]).unwrap_or(0) * 16 + hex_val(pair[1]).unwrap_or(0));
        }
        out.push(b'\n');
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(views: &[View], needle: &str) -> bool {
        views
            .iter()
            .any(|v| v.data.windows(needle.len()).any(|w| w == needle.as_bytes()))
    }

    const S: &str = "atkreal-0123456789abcdef";

    #[test]
    fn each_encoding_is_peeled() {
        use base64::engine::general_purpose::STANDARD;
        let b64 = STANDARD.encode(format!("{{\"k\":\"{S}\"}}"));
        let wrapped9: String = b64
            .as_bytes()
            .chunks(9)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let json_escaped: String = S.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let mixed_hex: String = S
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
        for input in [
            format!("x=%61{}", &S[1..]),
            format!("{{\"k\":\"{json_escaped}\"}}"),
            wrapped9,
            format!("data {b64} end"),
            format!("h={mixed_hex}"),
            STANDARD.encode(format!("k=%61{}", &S[1..])),
        ] {
            let views = decoded(input.as_bytes(), 1 << 20);
            assert!(contains(&views, S), "not found in {input:?}: {views:#?}");
        }
    }

    #[test]
    fn plain_text_has_no_views_and_budget_bounds_work() {
        assert!(decoded(b"hello", 1 << 20).is_empty());
        let big = "QUJD".repeat(10_000);
        let views = decoded(big.as_bytes(), 1000);
        assert!(views.iter().map(|v| v.data.len()).sum::<usize>() <= 1000);
    }

    #[test]
    fn a_stream_window_cut_mid_group_still_decodes() {
        use base64::engine::general_purpose::STANDARD;
        let b64 = STANDARD.encode(format!("prefix-bytes {S} suffix"));
        for cut in 1..4 {
            let views = decoded(&b64.as_bytes()[cut..], 1 << 20);
            assert!(contains(&views, S), "cut {cut}");
        }
    }
}
