//! Decoded views of outbound data: what a secret looks like once the
//! encodings an exfiltrating agent would wrap it in are peeled off.
//!
//! A view is never sent anywhere; it is only scanned. Each decoder runs only
//! when its trigger is present (a `%`, a `\`, whitespace, a long base64 or
//! hex run), views of views are taken up to [`MAX_DEPTH`] layers, and the
//! total is bounded by a byte budget, so a hostile input costs a bounded
//! multiple of its own size.
//!
//! Every view is scanned in full, so their number is what deep scanning
//! costs: [`Peeling::Combined`] undoes line breaks, string escapes and
//! percent escapes in one pass, one view where separate decoders make one
//! per decoder and per order of them.

mod runs;
#[cfg(test)]
mod tests;
mod text;

use runs::{base64_runs, hex_runs};
use text::{escapes, percent, strip_breaks, unescape_text};

/// Layers of encoding peeled off at most (e.g. percent inside base64 inside JSON).
pub const MAX_DEPTH: usize = 3;
/// Shortest base64 or hex run decoded (shorter ones are too common by chance).
pub(super) const MIN_RUN: usize = 16;
/// Shortest stretch of text unescaped inside binary data: no needle is
/// shorter, and decoding only shortens.
pub(super) const MIN_TEXT: usize = super::MIN_NEEDLE_LEN;

/// One decoded view and how it was reached, e.g. `base64-decoded, unescaped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The decoded bytes.
    pub data: Vec<u8>,
    /// The decodings applied, outermost first.
    pub how: String,
}

/// Which decoders peel each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peeling {
    /// Line breaks, string escapes and percent escapes undone in one pass,
    /// then base64 and hex runs. Layering reaches what one pass leaves (an
    /// escape that decodes to a `%XX`, an escape cut by a line break).
    Combined,
    /// Each decoder on its own, in every order: for a secret that the
    /// combined pass could change itself (see [`Peeling::for_secret`]).
    Separate,
}

type Decoder = fn(&[u8]) -> Option<Vec<u8>>;

impl Peeling {
    /// The peeling that cannot miss `secret` for having decoded its own
    /// bytes: separate when it holds a `%`, a `\`, whitespace or anything
    /// but printable ASCII, or starts like the tail of an escape (`u`, `x`,
    /// `/`, a quote).
    pub fn for_secret(secret: &[u8]) -> Peeling {
        let inside = secret
            .iter()
            .any(|b| matches!(b, b'%' | b'\\') || !b.is_ascii_graphic());
        let escape_tail = matches!(secret.first(), Some(b'u' | b'x' | b'/' | b'"' | b'\''));
        if inside || escape_tail {
            Peeling::Separate
        } else {
            Peeling::Combined
        }
    }

    fn decoders(self) -> &'static [(Decoder, &'static str)] {
        match self {
            Peeling::Combined => &[
                (unescape_text, "unescaped"),
                (base64_runs, "base64-decoded"),
                (hex_runs, "hex-decoded"),
            ],
            Peeling::Separate => &[
                (strip_breaks, "line breaks removed"),
                (percent, "percent-decoded"),
                (escapes, "escapes decoded"),
                (base64_runs, "base64-decoded"),
                (hex_runs, "hex-decoded"),
            ],
        }
    }
}

/// Every decoded view of `data`, up to [`MAX_DEPTH`] layers deep, at most
/// `budget` bytes in total. `data` itself is not included.
pub fn decoded(data: &[u8], budget: usize, peeling: Peeling) -> Vec<View> {
    let mut out: Vec<View> = Vec::new();
    let mut used = 0usize;
    // The first layer decodes `data` itself; later ones the views before them.
    peel(data, "", peeling, &mut out, &mut used, budget);
    let mut layer = 0..out.len();
    for _ in 1..MAX_DEPTH {
        let next_start = out.len();
        for i in layer {
            // Lent out while its own views are added after it.
            let view = std::mem::take(&mut out[i]);
            peel(&view.data, &view.how, peeling, &mut out, &mut used, budget);
            out[i] = view;
        }
        if out.len() == next_start {
            break;
        }
        layer = next_start..out.len();
    }
    out
}

/// Applies every decoder to `data`, adding the new views to `out`.
fn peel(
    data: &[u8],
    how: &str,
    peeling: Peeling,
    out: &mut Vec<View>,
    used: &mut usize,
    budget: usize,
) {
    for (decoder, label) in peeling.decoders() {
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
    }
}
