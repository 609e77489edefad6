//! Decoded views of outbound data: what a secret looks like once the
//! encodings an exfiltrating agent would wrap it in are peeled off.
//!
//! A view is never sent anywhere; it is only scanned. Each decoder runs only
//! when its trigger is present (a `%`, a `\`, a line break, a long base64 or
//! hex run, a `=` for base64 in padded pieces, a NUL for UTF-16), views of
//! views are taken up to [`MAX_DEPTH`] layers, and the total is bounded by
//! a byte budget, so a hostile input costs a bounded multiple of its own
//! size. A view past the budget is still taken (and scanned) while a
//! second budget as large lasts, but not peeled further: filler that
//! inflates the views must fill both budgets before a layer goes unscanned.
//!
//! Every view is scanned in full, so their number is what deep scanning
//! costs: [`Peeling::Combined`] undoes line breaks, string escapes and
//! percent escapes in one pass, one view where separate decoders make one
//! per decoder and per order of them. Nor is a base64 or hex run decoded
//! twice: a text decoder says which stretches of its view it copied
//! unchanged ([`View::kept`]), and a run strictly inside one of them is a
//! run of the view it was peeled from, decoded with that view.

mod alphabet;
mod masks;
mod pieces;
mod runs;
#[cfg(test)]
mod tests;
mod text;
mod utf16;

use alphabet::{alphabet_runs, Alphabet};
use pieces::padded_pieces;
use runs::{base64_runs, hex_runs, Keep};
use std::cell::OnceCell;
use std::ops::Range;
use text::{escapes, percent, strip_breaks, unescape_text};
use utf16::utf16_view;

/// Layers of encoding peeled off at most (e.g. percent inside base64 inside JSON).
pub const MAX_DEPTH: usize = 3;
/// Shortest base64 or hex run decoded (shorter ones are too common by chance).
pub(super) const MIN_RUN: usize = 16;
/// Shortest stretch of text unescaped inside binary data: no needle is
/// shorter, and decoding only shortens.
pub(super) const MIN_TEXT: usize = super::MIN_NEEDLE_LEN;

/// Whether `b` is punctuation no decoding here drops or merges: printable
/// ASCII that is not a letter, a digit, whitespace, or a symbol of an
/// encoding the views undo (base64 of either alphabet and its padding,
/// `%` escapes, string escapes). Every decoder copies it as itself or, in
/// an escape (`\"`, `\'`), as itself once; the run decoders and the UTF-16
/// narrowing never read it (a run has none; a UTF-16 run's bytes are
/// copied). So an encoding, however layered, holds no more of it than
/// what it decodes to ([`super::Scanner::deep_keep`] rests on this).
///
/// Written without branches, so that counting it vectorises.
#[inline]
pub fn is_punctuation(b: u8) -> bool {
    let in_range = |first: u8, last: u8| b.wrapping_sub(first) <= last - first;
    let punctuation =
        in_range(b'!', b'/') | in_range(b':', b'@') | in_range(b'[', b'`') | in_range(b'{', b'~');
    let symbol = (b == b'+')
        | (b == b'/')
        | (b == b'-')
        | (b == b'_')
        | (b == b'=')
        | (b == b'%')
        | (b == b'\\');
    punctuation & !symbol
}

/// One decoded view and how it was reached, e.g. `base64-decoded, unescaped`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// The decoded bytes.
    pub data: Vec<u8>,
    /// The decodings applied, outermost first.
    pub how: String,
    /// Stretches of `data` copied unchanged, each from one stretch of the
    /// view (or data) this one was peeled from, in order. A base64 or hex
    /// run strictly inside one is, with the bytes around it, a run of that
    /// view too: decoded when it was peeled, at a shallower layer.
    kept: Vec<Stretch>,
    /// Taken past the budget: scanned, but not peeled.
    leaf: bool,
    /// Stretches of text joined by NULs (a decoding keeping only its text,
    /// `runs::Keep::Text`, which narrowed its UTF-16 as it was made): holds
    /// no UTF-16 run, as every stretch is at least [`MIN_TEXT`] long.
    joined_text: bool,
}

/// A stretch of a view copied unchanged from the view (or data) it was
/// peeled from (see [`View::kept`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stretch {
    /// Where it lies in the view.
    at: Range<usize>,
    /// Where it starts in the view (or data) it was copied from.
    from: usize,
}

/// What a decoder made: the decoded bytes, and the stretches of them copied
/// unchanged from its input (see [`View::kept`]).
type Decoded = (Vec<u8>, Vec<Stretch>);

/// Which decoders peel each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peeling {
    /// Line breaks, string escapes and percent escapes undone in one pass,
    /// then base64 and hex runs, of whose decodings only the text is kept
    /// (`runs::Keep::Text`: every needle is text then). Layering reaches
    /// what one pass leaves (an escape that decodes to a `%XX`, an escape
    /// cut by a line break).
    Combined,
    /// Each decoder on its own, in every order: for a secret that the
    /// combined pass could change itself (see [`Peeling::for_secret`]).
    Separate,
}

/// A decoder: reads one view, makes one.
type Decoder = fn(&Input) -> Option<Decoded>;

/// A decoder, the label of its views, and whether they are text joined by
/// NULs (see [`View::joined_text`]).
type Step = (Decoder, &'static str, bool);

/// What a decoder reads: a view, its kept stretches (runs strictly inside
/// them are not decoded again), and its base64-alphabet runs, found once
/// for both run decoders.
struct Input<'a> {
    data: &'a [u8],
    kept: &'a [Stretch],
    /// The base64-alphabet masks of what `kept` was copied from, when they
    /// were made: the runs at a stretch's edges are then read from them.
    parent_alphabet: Option<&'a [u64]>,
    joined_text: bool,
    alphabet: OnceCell<Alphabet>,
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8], kept: &'a [Stretch], parent_alphabet: Option<&'a [u64]>) -> Self {
        Input {
            data,
            kept,
            parent_alphabet,
            joined_text: false,
            alphabet: OnceCell::new(),
        }
    }

    fn alphabet(&self) -> &[Range<usize>] {
        &self
            .alphabet
            .get_or_init(|| alphabet_runs(self.data, self.kept, self.parent_alphabet))
            .runs
    }
}

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

    fn decoders(self) -> &'static [Step] {
        match self {
            Peeling::Combined => &[
                (|i| unescape_text(i.data), "unescaped", false),
                (|i| base64_view(i, Keep::Text), "base64-decoded", true),
                (
                    |i| pieces_view(i, Keep::Text),
                    "base64-decoded in pieces",
                    true,
                ),
                (|i| hex_view(i, Keep::Text), "hex-decoded", true),
                (utf16, "UTF-16 narrowed", false),
            ],
            Peeling::Separate => &[
                (|i| strip_breaks(i.data), "line breaks removed", false),
                (|i| percent(i.data), "percent-decoded", false),
                (|i| escapes(i.data), "escapes decoded", false),
                (|i| base64_view(i, Keep::All), "base64-decoded", false),
                (
                    |i| pieces_view(i, Keep::All),
                    "base64-decoded in pieces",
                    false,
                ),
                (|i| hex_view(i, Keep::All), "hex-decoded", false),
                (utf16, "UTF-16 narrowed", false),
            ],
        }
    }
}

fn utf16(i: &Input) -> Option<Decoded> {
    if i.joined_text {
        return None;
    }
    utf16_view(i.data).map(fresh)
}

fn base64_view(i: &Input, keep: Keep) -> Option<Decoded> {
    base64_runs(i.data, i.alphabet(), keep).map(fresh)
}

fn pieces_view(i: &Input, keep: Keep) -> Option<Decoded> {
    padded_pieces(i.data, keep).map(fresh)
}

fn hex_view(i: &Input, keep: Keep) -> Option<Decoded> {
    hex_runs(i.data, i.kept, i.alphabet(), keep).map(fresh)
}

/// Decoded bytes with nothing copied from their input.
fn fresh(data: Vec<u8>) -> Decoded {
    (data, Vec::new())
}

/// Every decoded view of `data`, up to [`MAX_DEPTH`] layers deep: at most
/// `budget` bytes of views that are peeled further, and as many again of
/// views that are not (see the module's documentation). `data` itself is
/// not included.
pub fn decoded(data: &[u8], budget: usize, peeling: Peeling) -> Vec<View> {
    let mut views = Views {
        out: Vec::new(),
        used: 0,
        leaves_used: 0,
        budget,
        dropped: false,
        peeling,
    };
    // The first layer decodes `data` itself; later ones the views before
    // them. The first layer's views copy stretches of `data`, whose
    // base64-alphabet masks, made once, give the runs at their edges.
    let data_alphabet = views.peel(Input::new(data, &[], None), "");
    let first_layer = 0..views.out.len();
    let mut layer = first_layer.clone();
    for _ in 1..MAX_DEPTH {
        let next_start = views.out.len();
        for i in layer {
            if views.out[i].leaf {
                continue;
            }
            // Lent out while its own views are added after it.
            let view = std::mem::take(&mut views.out[i]);
            // Only a first-layer view's kept stretches are copies of `data`
            // (one that kept none has its runs found from its own masks).
            let parent_alphabet = data_alphabet
                .as_deref()
                .filter(|_| first_layer.contains(&i));
            let input = Input {
                joined_text: view.joined_text,
                ..Input::new(&view.data, &view.kept, parent_alphabet)
            };
            views.peel(input, &view.how);
            views.out[i] = view;
        }
        if views.out.len() == next_start {
            break;
        }
        layer = next_start..views.out.len();
    }
    views.out
}

/// The views taken so far, and what they may still take.
struct Views {
    out: Vec<View>,
    /// Bytes of views so far that are peeled further.
    used: usize,
    /// Bytes of views past the budget (scanned, not peeled).
    leaves_used: usize,
    budget: usize,
    /// Whether a view was not peeled, or left out, for the budget: then a
    /// kept run may never have been decoded, and every run is decoded from
    /// then on.
    dropped: bool,
    peeling: Peeling,
}

impl Views {
    /// Applies every decoder to `input` (a view reached by `how`), adding
    /// the new views; returns `input`'s base64-alphabet masks if they were
    /// made.
    fn peel(&mut self, mut input: Input, how: &str) -> Option<Vec<u64>> {
        let data = input.data;
        for &(decoder, label, makes_joined_text) in self.peeling.decoders() {
            if self.dropped && !input.kept.is_empty() {
                input = Input {
                    joined_text: input.joined_text,
                    ..Input::new(data, &[], None)
                };
            }
            let Some((d, d_kept)) = decoder(&input) else {
                continue;
            };
            if d.is_empty() || d == data || self.out.iter().any(|o| o.data == d) {
                continue;
            }
            let leaf = self.used + d.len() > self.budget;
            if leaf {
                self.dropped = true;
                if self.leaves_used + d.len() > self.budget {
                    continue;
                }
                self.leaves_used += d.len();
            } else {
                self.used += d.len();
            }
            let how = if how.is_empty() {
                label.to_string()
            } else {
                format!("{how}, {label}")
            };
            self.out.push(View {
                data: d,
                how,
                kept: d_kept,
                leaf,
                joined_text: makes_joined_text,
            });
        }
        let masks = input.alphabet.into_inner().map(|a| a.masks);
        masks.filter(|m| !m.is_empty())
    }
}
