//! The text decoders: line breaks, percent escapes and string escapes, each
//! alone or all in one pass.

use super::runs::{hex_val, is_text, runs};
use super::{Decoded, Stretch, MIN_TEXT};
use std::ops::Range;

/// The bytes a rewrite stops at (up to four; repeat one to fill), found
/// sixteen bytes at a time on x86-64 (SSE2), eight elsewhere.
#[derive(Clone, Copy)]
struct Stops([u8; 4]);

impl Stops {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    /// The first stop at or after `from` (`data.len()` if none). Skipping
    /// many bytes a compare is what makes text with few escapes cheap to
    /// copy.
    fn next(self, data: &[u8], from: usize) -> usize {
        #[cfg(target_arch = "x86_64")]
        let from = match self.next_sixteen_at_a_time(data, from) {
            Ok(found) => return found,
            Err(rest) => rest,
        };
        self.next_eight_at_a_time(data, from)
    }

    /// The first stop at or after `from` in whole blocks of sixteen bytes;
    /// else where the blocks end.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn next_sixteen_at_a_time(self, data: &[u8], mut from: usize) -> Result<usize, usize> {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        // SAFETY: SSE2 is part of every x86-64; each load reads `block`,
        // 16 readable bytes, and an unaligned load needs no more.
        unsafe {
            let [a, b, c, d] = self.0.map(|s| _mm_set1_epi8(s as i8));
            while let Some(block) = data.get(from..from + 16) {
                let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
                let hits = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, a), _mm_cmpeq_epi8(v, b)),
                    _mm_or_si128(_mm_cmpeq_epi8(v, c), _mm_cmpeq_epi8(v, d)),
                );
                let mask = _mm_movemask_epi8(hits);
                if mask != 0 {
                    return Ok(from + mask.trailing_zeros() as usize);
                }
                from += 16;
            }
        }
        Err(from)
    }

    /// The first stop at or after `from`, eight bytes a word (SWAR).
    fn next_eight_at_a_time(self, data: &[u8], mut from: usize) -> usize {
        // A flag per zero byte; the lowest flag is exact (a borrow only
        // ever moves up, to later bytes).
        let zero = |v: u64| v.wrapping_sub(Self::LOW) & !v & Self::HIGH;
        let [a, b, c, d] = self.0.map(|s| Self::LOW * s as u64);
        while let Some(word) = data.get(from..from + 8) {
            let v = u64::from_le_bytes(word.try_into().expect("eight bytes"));
            let hits = zero(v ^ a) | zero(v ^ b) | zero(v ^ c) | zero(v ^ d);
            if hits != 0 {
                return from + hits.trailing_zeros() as usize / 8;
            }
            from += 8;
        }
        data[from..]
            .iter()
            .position(|b| self.0.contains(b))
            .map_or(data.len(), |i| from + i)
    }
}

/// What a rewrite does at a special byte: `Ok(n)` consumes `n` bytes (their
/// decoding, if any, pushed to the output), `Err(n)` copies `n` unchanged.
type Step = Result<usize, usize>;

/// How a rewrite reads its input: where it stops, and what it does there.
#[derive(Clone, Copy)]
struct Rewriter<F> {
    stops: Stops,
    /// Whether the whitespace just before a stop is stepped from with it:
    /// a line break stops the rewrite, and the spaces before it go with
    /// it, but a space on its own is never looked at (stopping at every
    /// space, as a byte-by-byte rewrite does, was most of its cost).
    lead_whitespace: bool,
    step: F,
}

/// Rewrites `data` left to right: at each stop, `step` either consumes some
/// bytes (pushing their decoding to `out`) or declines (bytes copied).
/// Runs of other bytes are copied whole. `None` when nothing changed; else
/// the rewritten bytes and the stretches of them copied unchanged, each
/// from one stretch of `data` (see `View::kept`).
fn rewrite<F: Fn(&[u8], usize, &mut Vec<u8>) -> Step>(
    data: &[u8],
    rewriter: Rewriter<F>,
) -> Option<Decoded> {
    let mut out = Vec::with_capacity(data.len());
    // Text breaks into a stretch about every word: sized for that at once.
    let mut kept = Kept {
        stretches: Vec::with_capacity(data.len() / 16),
        track: true,
        cut: false,
    };
    let changed = rewrite_into(data, &rewriter, &mut out, &mut kept);
    changed.then_some((out, kept.stretches))
}

/// [`rewrite`], appending to `out` (and `kept`); whether anything changed.
fn rewrite_into<F: Fn(&[u8], usize, &mut Vec<u8>) -> Step>(
    data: &[u8],
    rewriter: &Rewriter<F>,
    out: &mut Vec<u8>,
    kept: &mut Kept,
) -> bool {
    let mut changed = false;
    let (mut i, mut copied) = (0, 0);
    loop {
        i = rewriter.stops.next(data, i);
        if i == data.len() {
            break;
        }
        if rewriter.lead_whitespace {
            // Never back past what was copied or consumed: whitespace there
            // was already stepped from.
            while i > copied && data[i - 1].is_ascii_whitespace() {
                i -= 1;
            }
        }
        kept.copy(out, data, copied..i);
        match (rewriter.step)(data, i, out) {
            Ok(used) => {
                changed = true;
                kept.cut();
                i += used;
            }
            Err(unchanged) => {
                kept.copy(out, data, i..i + unchanged);
                i += unchanged;
            }
        }
        copied = i;
    }
    kept.copy(out, data, copied..data.len());
    changed
}

/// The stretches of a rewrite's output copied from its input.
struct Kept {
    stretches: Vec<Stretch>,
    /// Whether stretches are recorded at all.
    track: bool,
    /// Input was consumed (and decoded, or dropped) since the last copy:
    /// the next copy starts a stretch of its own.
    cut: bool,
}

impl Kept {
    /// Appends the bytes of the input `data` at `from` to `out`.
    fn copy(&mut self, out: &mut Vec<u8>, data: &[u8], from: Range<usize>) {
        if from.is_empty() {
            return;
        }
        let start = out.len();
        out.extend_from_slice(&data[from.clone()]);
        if !self.track {
            return;
        }
        match self.stretches.last_mut() {
            // Nothing consumed since: the input runs on too.
            Some(last) if !self.cut && last.at.end == start => {
                debug_assert_eq!(last.from + last.at.len(), from.start);
                last.at.end = out.len();
            }
            _ => self.stretches.push(Stretch {
                at: start..out.len(),
                from: from.start,
            }),
        }
        self.cut = false;
    }

    /// The input skips ahead of the output here.
    fn cut(&mut self) {
        self.cut = true;
    }
}

/// Whether `data` has a line break, raw or as a string escape: then the
/// whitespace around each is taken for wrapping and dropped.
fn has_breaks(data: &[u8]) -> bool {
    memchr::memchr2(b'\n', b'\r', data).is_some()
        || memchr::memchr_iter(b'\\', data).any(|i| matches!(data.get(i + 1), Some(b'n' | b'r')))
}

/// The whitespace at `i` (raw, or `\n`, `\r`, `\t` escapes): dropped
/// whole if it holds a line break — wrapping, and the indentation around
/// it, as in a PEM block inside YAML — and copied if it does not: spaces
/// between words on one line are text, and dropping them glued words into
/// token look-alikes (`"sk-folding-cube sk-cube1 sk-cube2"` read as an
/// OpenAI key). `None` when there is no whitespace at `i`.
fn whitespace_at(data: &[u8], i: usize) -> Option<Step> {
    let (mut end, mut line_break) = (i, false);
    loop {
        match data.get(end) {
            Some(b'\n' | b'\r') => line_break = true,
            Some(b) if b.is_ascii_whitespace() => {}
            Some(b'\\') => match data.get(end + 1) {
                Some(b'n' | b'r') => {
                    line_break = true;
                    end += 1;
                }
                Some(b't') => end += 1,
                _ => break,
            },
            _ => break,
        }
        end += 1;
    }
    let len = end - i;
    (len > 0).then_some(if line_break { Ok(len) } else { Err(len) })
}

/// A `%XX` escape at `i`, decoded into `out`.
fn percent_at(data: &[u8], i: usize, out: &mut Vec<u8>) -> Step {
    let digit = |at: usize| data.get(at).and_then(|&b| hex_val(b)).ok_or(1usize);
    let (h, l) = (digit(i + 1)?, digit(i + 2)?);
    out.push(h * 16 + l);
    Ok(3)
}

/// Line breaks, string escapes and percent escapes undone in one pass.
///
/// In binary data (a decoded base64 blob) only its stretches of text are
/// decoded, joined by NULs: everything an escaped needle is made of (the
/// escapes, percent escapes, whitespace, and the needle's own printable
/// bytes) is text, and no needle is shorter than [`MIN_TEXT`].
pub(super) fn unescape_text(data: &[u8]) -> Option<Decoded> {
    let breaks = has_breaks(data);
    if !breaks && memchr::memchr2(b'\\', b'%', data).is_none() {
        // Nothing to decode (a view already unescaped, mostly): found by
        // a vectorised search instead of a byte-by-byte rewrite.
        return None;
    }
    let rewriter = Rewriter {
        stops: if breaks {
            Stops([b'\\', b'%', b'\n', b'\r'])
        } else {
            Stops([b'\\', b'%', b'%', b'%'])
        },
        lead_whitespace: breaks,
        step: |d: &[u8], i: usize, out: &mut Vec<u8>| unescape_at(d, i, out, breaks),
    };
    if data.is_ascii() {
        // Text (the check is vectorised): decoded whole, control bytes and all.
        return rewrite(data, rewriter);
    }
    // Stretches of text joined by NULs: nothing is kept (every run in it is
    // decoded), which costs little, as binary views are short.
    let mut out = Vec::with_capacity(data.len());
    let mut untracked = Kept {
        stretches: Vec::new(),
        track: false,
        cut: false,
    };
    let mut changed = false;
    for r in runs(data, MIN_TEXT, is_text) {
        changed |= rewrite_into(&data[r], &rewriter, &mut out, &mut untracked);
        out.push(0);
    }
    changed.then_some((out, Vec::new()))
}

/// One step of [`unescape_text`] at `i`: a percent escape, a string
/// escape, or (when `data` has `breaks`) whitespace.
fn unescape_at(data: &[u8], i: usize, out: &mut Vec<u8>, breaks: bool) -> Step {
    match data[i] {
        b'%' => percent_at(data, i, out),
        b'\\' => whitespace_at(data, i)
            .filter(|_| breaks)
            .unwrap_or_else(|| escape_at(data, i, out).ok_or(1)),
        _ => whitespace_at(data, i).unwrap_or(Err(1)),
    }
}

/// Without line breaks (and the escaped ones of JSON strings), so
/// line-wrapped base64 (PEM's 64 columns, MIME's 76, any width) reads whole;
/// the whitespace around a break goes with it (see [`whitespace_at`]).
pub(super) fn strip_breaks(data: &[u8]) -> Option<Decoded> {
    if !has_breaks(data) {
        return None;
    }
    let rewriter = Rewriter {
        stops: Stops([b'\\', b'\n', b'\r', b'\r']),
        lead_whitespace: true,
        step: |d: &[u8], i: usize, _: &mut Vec<u8>| whitespace_at(d, i).unwrap_or(Err(1)),
    };
    rewrite(data, rewriter)
}

/// `%XX` escapes decoded wherever they are, so a secret partly encoded
/// (`%61tk…`) reads whole.
pub(super) fn percent(data: &[u8]) -> Option<Decoded> {
    memchr::memchr(b'%', data)?;
    let rewriter = Rewriter {
        stops: Stops([b'%'; 4]),
        lead_whitespace: false,
        step: percent_at,
    };
    rewrite(data, rewriter)
}

/// JSON and JavaScript string escapes: `\uXXXX` (surrogate pairs joined),
/// `\xXX`, `\/`, `\"`, `\\`, `\'`.
pub(super) fn escapes(data: &[u8]) -> Option<Decoded> {
    memchr::memchr(b'\\', data)?;
    let rewriter = Rewriter {
        stops: Stops([b'\\'; 4]),
        lead_whitespace: false,
        step: |d: &[u8], i: usize, out: &mut Vec<u8>| escape_at(d, i, out).ok_or(1),
    };
    rewrite(data, rewriter)
}

/// The string escape at `i` (a `\`), decoded into `out`: how many bytes it took.
fn escape_at(data: &[u8], i: usize, out: &mut Vec<u8>) -> Option<usize> {
    let hex4 = |at: usize| -> Option<u32> {
        data.get(at..at + 4)?
            .iter()
            .try_fold(0u32, |acc, b| Some(acc * 16 + hex_val(*b)? as u32))
    };
    match *data.get(i + 1)? {
        b'u' => {
            let hi = hex4(i + 2)?;
            if !(0xd800..0xdc00).contains(&hi) {
                push_char(out, hi);
                return Some(6);
            }
            let lo = (data.get(i + 6..i + 8) == Some(b"\\u"))
                .then(|| hex4(i + 8))
                .flatten()
                .filter(|lo| (0xdc00..0xe000).contains(lo));
            match lo {
                Some(lo) => {
                    push_char(out, 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
                    Some(12)
                }
                None => {
                    out.push(b'?');
                    Some(6)
                }
            }
        }
        b'x' => {
            let h = hex_val(*data.get(i + 2)?)?;
            let l = hex_val(*data.get(i + 3)?)?;
            out.push(h * 16 + l);
            Some(4)
        }
        c @ (b'/' | b'"' | b'\\' | b'\'') => {
            out.push(c);
            Some(2)
        }
        _ => None,
    }
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    let ch = char::from_u32(c).unwrap_or('?');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_bytes(seed: u64) -> impl FnMut() -> u8 {
        let mut random = crate::dlp::pseudo_random(seed);
        move || random() as u8
    }

    #[test]
    fn the_word_at_a_time_search_finds_the_first_stop() {
        // Pseudo-random bytes, stops sparse or dense, every offset: the
        // sixteen- and eight-at-a-time searches agree with a byte-by-byte
        // one.
        let mut next = random_bytes(0x51f1_5e5d);
        let all = [
            Stops([b'\\', b'%', b'\n', b'\r']),
            Stops([b'%'; 4]),
            Stops([b'\\', b'%', b'%', b'%']),
            Stops([0, 0x80, 0xff, 1]),
        ];
        for round in 0..400 {
            let len = round % 70;
            let rare = round % 3 == 0;
            let data: Vec<u8> = (0..len)
                .map(|_| match next() {
                    b if rare && b < 250 => b'a' + b % 26,
                    b => b,
                })
                .collect();
            for stops in all {
                for from in 0..=len {
                    let want = (from..len)
                        .find(|&i| stops.0.contains(&data[i]))
                        .unwrap_or(len);
                    assert_eq!(stops.next(&data, from), want, "{data:?} from {from}");
                    let eight = stops.next_eight_at_a_time(&data, from);
                    assert_eq!(eight, want, "eight at a time: {data:?} from {from}");
                }
            }
        }
    }

    /// What a rewrite makes, reading byte by byte: `step` at every byte
    /// `special` picks out, every other byte copied.
    fn byte_by_byte(
        data: &[u8],
        special: impl Fn(u8) -> bool,
        step: impl Fn(&[u8], usize, &mut Vec<u8>) -> Step,
    ) -> Option<Vec<u8>> {
        let (mut out, mut i, mut changed) = (Vec::new(), 0, false);
        while i < data.len() {
            if !special(data[i]) {
                out.push(data[i]);
                i += 1;
                continue;
            }
            match step(data, i, &mut out) {
                Ok(n) => {
                    changed = true;
                    i += n;
                }
                Err(n) => {
                    out.extend_from_slice(&data[i..i + n]);
                    i += n;
                }
            }
        }
        changed.then_some(out)
    }

    #[test]
    fn stopping_only_at_escapes_and_line_breaks_rewrites_as_reading_every_byte_does() {
        // Text dense in what the decoders read (whitespace of every kind,
        // raw and escaped, escapes, percent escapes, before and after one
        // another): the rewrite that stops only where a step can begin,
        // taking the whitespace before it along, makes what a rewrite
        // stepping at every special byte makes.
        let pieces: [&[u8]; 16] = [
            b" ", b"  ", b"\t", b"\n", b"\r\n", b"\r", b"\\n", b"\\t", b"\\r", b"\\\"", b"\\\\",
            b"%41", b"%zz", b"\\u0041", b"word", b"\x0c",
        ];
        let mut next = random_bytes(0x7e57_0b0e);
        for round in 0..3000 {
            let data: Vec<u8> = (0..round % 24)
                .flat_map(|_| pieces[next() as usize % pieces.len()].iter().copied())
                .collect();
            let breaks = has_breaks(&data);
            let special = |b: u8| matches!(b, b'\\' | b'%') || (breaks && b.is_ascii_whitespace());
            let want = byte_by_byte(&data, special, |d, i, out| unescape_at(d, i, out, breaks));
            let got = unescape_text(&data).map(|(out, _)| out);
            assert_eq!(got, want, "unescaped {:?}", String::from_utf8_lossy(&data));
            let special = |b: u8| b == b'\\' || b.is_ascii_whitespace();
            let want = breaks
                .then(|| {
                    byte_by_byte(&data, special, |d, i, _| {
                        whitespace_at(d, i).unwrap_or(Err(1))
                    })
                })
                .flatten();
            let got = strip_breaks(&data).map(|(out, _)| out);
            assert_eq!(
                got,
                want,
                "breaks stripped {:?}",
                String::from_utf8_lossy(&data)
            );
        }
    }
}
