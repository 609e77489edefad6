//! The long runs of the base64 alphabet in a view, found once per view and
//! read by both run decoders. A view peeled from another is searched only
//! where it is new: at the edges of the stretches it kept of that view, and
//! in the bytes it decoded. How far a run reaches into a stretch is read
//! from the masks of what the stretch was copied from, when they were made.

use std::ops::Range;

use super::masks::{block_mask, class_masks, long_runs_in_masks, BLOCK};
use super::runs::{is_base64_symbol, runs};
use super::{Stretch, MIN_RUN};

/// The run of `pred` bytes around `at` (itself one), not reaching back
/// before `floor`.
fn widen(data: &[u8], at: usize, floor: usize, pred: &impl Fn(u8) -> bool) -> Range<usize> {
    let mut start = at;
    while start > floor && pred(data[start - 1]) {
        start -= 1;
    }
    let mut end = at + 1;
    while end < data.len() && pred(data[end]) {
        end += 1;
    }
    start..end
}

/// Runs of `data` that are not strictly inside a `kept` stretch (those were
/// decoded with the view `data` was peeled from; see `View::kept`).
///
/// Such a run holds a byte that is no stretch's inside: a stretch's first
/// or last byte, or a decoded byte. Only those are looked at, each widened
/// to the run around it, so the kept text is never scanned again.
pub(super) fn new_runs(
    data: &[u8],
    kept: &[Stretch],
    pred: impl Fn(u8) -> bool,
) -> Vec<Range<usize>> {
    if kept.is_empty() {
        return runs(data, MIN_RUN, pred);
    }
    let mut found = Vec::new();
    // Bytes before `done` are decided.
    let mut done = 0;
    let look = |at: usize, found: &mut Vec<Range<usize>>, done: &mut usize| {
        if at < *done || !pred(data[at]) {
            return;
        }
        let run = widen(data, at, *done, &pred);
        *done = run.end + 1;
        if run.len() >= MIN_RUN {
            found.push(run);
        }
    };
    let mut decoded_from = 0;
    for k in kept.iter().map(|k| &k.at) {
        // Decoded bytes before this stretch, then its first and last byte.
        for at in decoded_from..k.start {
            look(at, &mut found, &mut done);
        }
        look(k.start, &mut found, &mut done);
        look(k.end - 1, &mut found, &mut done);
        decoded_from = k.end;
    }
    for at in decoded_from..data.len() {
        look(at, &mut found, &mut done);
    }
    found
}

/// [`new_runs`] of the base64 alphabet, for a view whose `kept` stretches
/// were copied from data whose alphabet masks are `parent` (see
/// [`class_masks`]): how far the runs at a stretch's edges reach into it
/// is read from those masks, a word at a time, where looking byte by byte
/// cost as much as finding every run of a whole view (the unescaped view
/// of JSON or source text has a stretch about every 35 bytes). Only the
/// decoded bytes between stretches are looked at one by one.
fn alphabet_runs_through(data: &[u8], kept: &[Stretch], parent: &[u64]) -> Vec<Range<usize>> {
    let mut runs = RunsAcross::default();
    let mut decoded_from = 0;
    for k in kept {
        runs.decoded(data, decoded_from..k.at.start);
        decoded_from = k.at.end;
        let len = k.at.len();
        let lead = ones_from(parent, k.from, len);
        if lead > 0 {
            runs.reach(k.at.start);
        }
        if lead == len {
            continue;
        }
        runs.end(k.at.start + lead);
        // A byte outside the alphabet ends the lead: the trail is another run.
        let trail = ones_before(parent, k.from + len, len - lead - 1);
        if trail > 0 {
            runs.reach(k.at.end - trail);
        }
    }
    runs.decoded(data, decoded_from..data.len());
    runs.end(data.len());
    runs.found
}

/// The long runs found so far, left to right, and where the one reaching
/// the bytes looked at so far started.
#[derive(Default)]
struct RunsAcross {
    found: Vec<Range<usize>>,
    open: Option<usize>,
}

impl RunsAcross {
    /// Byte `at` is in the class: a run reaches it.
    fn reach(&mut self, at: usize) {
        self.open.get_or_insert(at);
    }

    /// Byte `at` is outside the class: the run reaching it, if any, ends.
    fn end(&mut self, at: usize) {
        if let Some(start) = self.open.take() {
            if at - start >= MIN_RUN {
                self.found.push(start..at);
            }
        }
    }

    /// The decoded bytes of `data` at `between`, looked at one by one.
    fn decoded(&mut self, data: &[u8], between: Range<usize>) {
        for (at, &b) in data
            .iter()
            .enumerate()
            .take(between.end)
            .skip(between.start)
        {
            if is_base64_symbol(b) {
                self.reach(at);
            } else {
                self.end(at);
            }
        }
    }
}

/// The long runs of base64-alphabet bytes of a view, and the masks they
/// were found from, when they were.
pub(super) struct Alphabet {
    pub(super) runs: Vec<Range<usize>>,
    /// Empty unless the masks of every byte were made ([`class_masks`]).
    pub(super) masks: Vec<u64>,
}

/// The long runs of base64-alphabet bytes in `data` that are not strictly
/// inside a `kept` stretch: found once per view and read by both run
/// decoders, as every hex run lies inside one of them (hex digits are
/// base64 bytes too). `parent` holds the alphabet masks of what `kept`
/// was copied from, if they were made.
pub(super) fn alphabet_runs(data: &[u8], kept: &[Stretch], parent: Option<&[u64]>) -> Alphabet {
    if kept.is_empty() {
        let masks = class_masks(data, is_base64_symbol);
        let mut runs = Vec::new();
        long_runs_in_masks(&masks, data.len(), MIN_RUN, &mut runs);
        return Alphabet { runs, masks };
    }
    let runs = match parent {
        Some(parent) => alphabet_runs_through(data, kept, parent),
        None => new_runs(data, kept, is_base64_symbol),
    };
    Alphabet {
        runs,
        masks: Vec::new(),
    }
}

/// How many bytes from `at` on, at most `most`, are in the class whose
/// `masks` ([`class_masks`]) are given: a word at a time.
fn ones_from(masks: &[u64], at: usize, most: usize) -> usize {
    let mut n = 0;
    while n < most {
        let shift = (at + n) % BLOCK;
        // Bits shifted in from above are outside the class.
        let ones = (!(block_mask(masks, at + n) >> shift)).trailing_zeros() as usize;
        n += ones;
        if ones < BLOCK - shift {
            break;
        }
    }
    n.min(most)
}

/// How many bytes before `end`, at most `most`, are in the class whose
/// `masks` ([`class_masks`]) are given: a word at a time.
fn ones_before(masks: &[u64], end: usize, most: usize) -> usize {
    let mut n = 0;
    while n < most.min(end) {
        let last = end - 1 - n;
        let shift = BLOCK - 1 - last % BLOCK;
        // Bits shifted in from below are outside the class.
        let ones = (!(block_mask(masks, last) << shift)).leading_zeros() as usize;
        n += ones;
        if ones < BLOCK - shift {
            break;
        }
    }
    n.min(most)
}

#[cfg(test)]
mod tests {
    use super::super::masks::long_runs;
    use super::super::runs::{hex_runs, hex_val, Keep};
    use super::super::tests::BASE64_SYMBOLS;
    use super::super::text::{escapes, percent, strip_breaks, unescape_text};
    use super::super::Decoded;
    use super::*;

    #[test]
    fn runs_and_edges_read_from_masks_made_once_are_those_of_the_bytes() {
        // Stretches of the class of every length, across block bounds:
        // the runs found from the masks made once are the runs found
        // reading the bytes, and the class bytes counted from and before
        // every byte, up to every bound, are those a byte-by-byte count
        // gives.
        let mut next = crate::dlp::pseudo_random(0x6a09_e667);
        let class = |b: u8| b < 0x80;
        for _ in 0..400usize {
            let len = next() % 400;
            let stretch = 1 + next() % 90;
            let data: Vec<u8> = (0..len)
                .map(|i| {
                    let b = (next() % 256) as u8;
                    if (i / stretch).is_multiple_of(2) && !next().is_multiple_of(50) {
                        b & 0x7f
                    } else {
                        b | 0x80
                    }
                })
                .collect();
            let masks = class_masks(&data, class);
            for min in [1usize, 16, 64] {
                let mut found = Vec::new();
                long_runs_in_masks(&masks, len, min, &mut found);
                assert_eq!(found, long_runs(&data, min, class), "{min} in {data:?}");
            }
            for at in 0..=len {
                for most in [0, 1, 5, 63, 64, 65, 200, len] {
                    let from = data[at..].iter().take(most).take_while(|&&b| class(b));
                    assert_eq!(ones_from(&masks, at, most), from.count(), "from {at}");
                    let before = data[..at].iter().rev().take(most);
                    let before = before.take_while(|&&b| class(b)).count();
                    assert_eq!(ones_before(&masks, at, most), before, "before {at}");
                }
            }
        }
    }

    #[test]
    fn only_runs_not_inside_a_kept_stretch_are_new() {
        // Pseudo-random hex text (with base64 bytes that are not hex) and kept
        // stretches: `new_runs` (which looks only at the stretches' edges and
        // the bytes between them) finds just the runs that are not strictly
        // inside a stretch, and `hex_runs`, looking only inside the base64
        // runs, decodes just those, at both alignments of their digit pairs.
        let mut next = crate::dlp::pseudo_random(0x9e37_79b9);
        for _ in 0..3000 {
            let len = next() % 300;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    if next().is_multiple_of(29) {
                        b' '
                    } else {
                        b"0a9F0a9Fz+"[next() % 10]
                    }
                })
                .collect();
            let mut kept = Vec::new();
            let mut at = 0;
            while at < len {
                let start = at + next() % 40;
                let end = (start + 1 + next() % 120).min(len);
                if start >= end {
                    break;
                }
                kept.push(Stretch {
                    at: start..end,
                    from: start,
                });
                at = end + next() % 3;
            }
            let all = runs(&data, MIN_RUN, |b| b.is_ascii_hexdigit());
            let want: Vec<_> = all
                .into_iter()
                .filter(|r| {
                    !kept
                        .iter()
                        .any(|k| k.at.start < r.start && r.end < k.at.end)
                })
                .collect();
            assert_eq!(
                new_runs(&data, &kept, |b| b.is_ascii_hexdigit()),
                want,
                "{:?} kept {kept:?}",
                String::from_utf8_lossy(&data)
            );
            let decoded: Vec<u8> = want
                .iter()
                .flat_map(|r| [r.start..r.end, r.start + 1..r.end])
                .flat_map(|r| {
                    let pairs = data[r].chunks_exact(2);
                    let bytes = pairs.map(|p| hex_val(p[0]).unwrap() * 16 + hex_val(p[1]).unwrap());
                    bytes.chain([0])
                })
                .collect();
            assert_eq!(
                hex_runs(
                    &data,
                    &kept,
                    &alphabet_runs(&data, &kept, None).runs,
                    Keep::All
                ),
                (!decoded.is_empty()).then_some(decoded),
                "{:?} kept {kept:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }

    /// A text decoder.
    type Decoder = fn(&[u8]) -> Option<Decoded>;

    #[test]
    fn the_runs_at_stretch_edges_read_from_the_parents_masks_are_those_found_by_looking() {
        // Text dense in what the text decoders undo and in base64 runs short
        // and long, cut by escapes, line breaks and percent escapes: every
        // decoder's kept stretches are copies of its input where they say,
        // and the new runs of its view read from its input's masks are the
        // ones looking at each edge byte by byte finds.
        let pieces: [&[u8]; 16] = [
            b" ",
            b"\n",
            b"\n    ",
            b"\t",
            b"\\n",
            b"\\t",
            b"\\\\",
            b"\\\"",
            b"%41",
            b"%4",
            b"\\u0041",
            b"\\x41",
            b"\\r\\n  ",
            b"\"}",
            b".",
            b"\\xc3\\xa9",
        ];
        let mut next = crate::dlp::pseudo_random(0x2545_f491);
        for round in 0..3000 {
            let mut data = Vec::new();
            for _ in 0..round % 40 {
                if next().is_multiple_of(2) {
                    data.extend_from_slice(pieces[next() % pieces.len()]);
                } else {
                    // A word of the base64 alphabet, now and then a long one.
                    let len = 1 + next() % if next().is_multiple_of(4) { 90 } else { 12 };
                    data.extend((0..len).map(|_| BASE64_SYMBOLS[next() % 64]));
                }
            }
            let masks = class_masks(&data, is_base64_symbol);
            let decoders: [(&str, Decoder); 4] = [
                ("unescaped", unescape_text),
                ("breaks stripped", strip_breaks),
                ("percent-decoded", percent),
                ("escapes decoded", escapes),
            ];
            for (how, decoder) in decoders {
                let Some((view, kept)) = decoder(&data) else {
                    continue;
                };
                let text = String::from_utf8_lossy(&data);
                for k in &kept {
                    assert_eq!(
                        view[k.at.clone()],
                        data[k.from..k.from + k.at.len()],
                        "{how}: {k:?} of {text:?}"
                    );
                }
                assert_eq!(
                    alphabet_runs(&view, &kept, Some(&masks)).runs,
                    new_runs(&view, &kept, is_base64_symbol),
                    "{how}: {text:?} kept {kept:?}"
                );
            }
        }
    }
}
