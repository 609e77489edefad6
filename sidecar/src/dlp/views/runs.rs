//! Runs of base64 and hex in data, found and decoded.

use std::ops::Range;

use super::masks::{has_long_run, has_long_run_in_block, long_runs, long_runs_into, BLOCK};
use super::utf16::{may_hold_utf16, narrow_utf16, PROBED_UP_TO};
use super::{Stretch, MIN_RUN, MIN_TEXT};

/// Maximal runs of `pred` bytes at least `min` long, as ranges, found 64
/// bytes at a time (see `masks`). Even for one base64 run's decoding,
/// shorter than a block, a mask costs fewer instructions than probing
/// (callgrind on the bench's body).
#[inline(always)]
pub(super) fn runs(data: &[u8], min: usize, pred: impl Fn(u8) -> bool) -> Vec<Range<usize>> {
    long_runs(data, min, pred)
}

/// What a run decoder keeps of each decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Every byte.
    All,
    /// Only its stretches of text ([`is_text`]) at least [`MIN_TEXT`]
    /// long, joined by NULs. Under combined peeling every needle is text
    /// (held secrets are then printable ASCII, see `Peeling::for_secret`;
    /// token formats are text), and so is everything a later layer decodes
    /// (escapes, percent escapes, base64 and hex runs, line breaks): no
    /// other byte of a decoding can be part of a finding. A run decoded at
    /// an alignment that is not its own is noise, nearly all of it
    /// dropped here instead of scanned and peeled again.
    Text,
}

/// Collects a run decoder's decodings, keeping what [`Keep`] says; each
/// decoding kept ends with a NUL (not a line break, which the next layer
/// would take for wrapping and drop, gluing one decoding to the next, and
/// make an unescaped copy of the whole view for).
///
/// When only text is kept, decodings are gathered apart by NULs (no text
/// run crosses one) and their text found a few KiB at a time: a decoding
/// is ~40 bytes, and searching each alone cost a fixed price (a padded
/// block, a mask, a `Vec`) several times over its bytes. A few KiB stay
/// in the nearest cache; gathering a whole view's (three times its size)
/// was slower, for all its fewer instructions.
pub(super) struct Decodings {
    keep: Keep,
    out: Vec<u8>,
    /// Decodings not yet searched, each followed by a NUL, when only their
    /// text is kept.
    gathered: Vec<u8>,
    /// Where each decoding in `gathered` lies.
    decodings: Vec<Range<usize>>,
    /// The stretches of text in `gathered` (kept to spare an allocation
    /// each time).
    text: Vec<Range<usize>>,
}

/// Bytes of decodings gathered before their text is searched.
const GATHERED: usize = 4096;

impl Decodings {
    /// Room for `bytes` decoded bytes in `decodings` decodings.
    pub(super) fn new(keep: Keep, bytes: usize, decodings: usize) -> Self {
        let capacity = match keep {
            Keep::All => bytes + decodings,
            // Noise is dropped; a text payload is usually one alignment of four.
            Keep::Text => bytes / 4 + decodings,
        };
        Decodings {
            keep,
            out: Vec::with_capacity(capacity),
            gathered: Vec::new(),
            decodings: Vec::new(),
            text: Vec::new(),
        }
    }

    /// Where the next decoding is appended, then [`Decodings::end`].
    pub(super) fn next(&mut self) -> &mut Vec<u8> {
        match self.keep {
            Keep::All => &mut self.out,
            Keep::Text => {
                let at = self.gathered.len();
                self.decodings.push(at..at);
                &mut self.gathered
            }
        }
    }

    /// Appends the decoding of the `len` bytes that start `bit` bits into
    /// the packed `bits` (see [`append_shifted`]), unless only text is
    /// kept and it [cannot hold any](may_hold_text): most alignments of a
    /// run are noise, and are then neither shifted out nor searched.
    ///
    /// The look is inlined into each run decoder, which writes its
    /// alignments out: each bit offset, and so the bit looked at, is then
    /// a constant. Only a decoding kept is appended out of line.
    #[inline(always)]
    pub(super) fn push_shifted(&mut self, bits: &[u8], bit: usize, len: usize) {
        if self.keep == Keep::Text && !may_hold_text(bits, bit, len) {
            return;
        }
        self.append(bits, bit, len);
    }

    /// [`Decodings::push_shifted`]'s decoding, appended and ended.
    #[inline(never)]
    fn append(&mut self, bits: &[u8], bit: usize, len: usize) {
        append_shifted(bits, bit, len, self.next());
        self.end();
    }

    /// The decoding appended since [`Decodings::next`] is whole.
    pub(super) fn end(&mut self) {
        match self.keep {
            Keep::All => self.out.push(0),
            Keep::Text => {
                let end = self.gathered.len();
                if let Some(d) = self.decodings.last_mut() {
                    d.end = end;
                }
                self.gathered.push(0);
                if self.gathered.len() >= GATHERED {
                    self.keep_text();
                }
            }
        }
    }

    /// The text of the decodings gathered, kept; then none is gathered.
    fn keep_text(&mut self) {
        self.text.clear();
        long_runs_into(&self.gathered, MIN_TEXT, is_text, &mut self.text);
        for r in &self.text {
            self.out.extend_from_slice(&self.gathered[r.clone()]);
            self.out.push(0);
        }
        // UTF-16 text is no text byte by byte (every other one is a NUL),
        // and is read in each decoding alone: the NUL after one could chain
        // it to the next. Nearly always none holds any, which one look
        // over many short decodings says at once; long ones are searched
        // faster alone (by `memchr`).
        let short = self.gathered.len() < PROBED_UP_TO * self.decodings.len();
        if !short || may_hold_utf16(&self.gathered) {
            for d in &self.decodings {
                narrow_utf16(&self.gathered[d.clone()], &mut self.out);
            }
        }
        self.gathered.clear();
        self.decodings.clear();
    }

    pub(super) fn finish(mut self) -> Option<Vec<u8>> {
        self.keep_text();
        (!self.out.is_empty()).then_some(self.out)
    }
}

/// Whether the `len` bytes that start `bit` bits into the packed `bits`
/// could hold a stretch [`Keep::Text`] keeps: text, and UTF-16 text (its
/// NULs included), is bytes below 0x80, and a stretch kept is at least
/// [`MIN_TEXT`] of them in a row (UTF-16's at least `2 * MIN_TEXT - 1`).
/// Each byte's top bit is one bit of one packed byte, so they are read in
/// place, a block of 64 at a time, before any byte is shifted out.
#[inline(always)]
fn may_hold_text(bits: &[u8], bit: usize, len: usize) -> bool {
    let top = 0x80 >> (bit % 8);
    let (from, class) = (bit / 8, |b: u8| b & top == 0);
    match bits.get(from..from + BLOCK) {
        // Nearly always: a run's decodings are shorter than a block, and
        // its bits are padded (`pad_for_reading_in_place`).
        Some(block) if len <= BLOCK => has_long_run_in_block(block, len, MIN_TEXT, class),
        _ => has_long_run(&bits[from..from + len], MIN_TEXT, class),
    }
}

/// Zeros after a base64 or hex run's packed bits, so that each
/// alignment's top bits are judged in place ([`may_hold_text`]) rather
/// than copied into a padded block once per alignment. Decoding reads no
/// byte past the run's.
fn pad_for_reading_in_place(bits: &mut Vec<u8>) {
    bits.extend_from_slice(&[0; BLOCK]);
}

/// Printable ASCII and the whitespace of text.
pub(super) fn is_text(b: u8) -> bool {
    matches!(b, b' '..=b'~' | b'\t' | b'\n' | b'\r')
}

/// Every run of `alphabet` (see [`alphabet_runs`]) base64-decoded at each
/// of the four alignments of its groups: alphanumerics glued before an
/// encoded payload (`key` + base64) shift where its groups start, and the
/// data may be a window cut mid-group. Each decoding (what `keep` keeps of
/// it) ends with a NUL.
pub(super) fn base64_runs(data: &[u8], alphabet: &[Range<usize>], keep: Keep) -> Option<Vec<u8>> {
    let total: usize = alphabet.iter().map(|r| r.len()).sum();
    // Each alignment decodes to three bytes per four.
    let mut decodings = Decodings::new(keep, 3 * total, 4 * alphabet.len());
    let mut bits = Vec::new();
    for r in alphabet {
        bits.clear();
        pack_base64(&data[r.clone()], &mut bits);
        pad_for_reading_in_place(&mut bits);
        // Starting `k` symbols in is starting `6k` bits into the same bits
        // (written out: each offset is then a constant where its top bits
        // are judged, see `Decodings::push_shifted`).
        let n = r.len();
        decodings.push_shifted(&bits, 0, 6 * n / 8);
        decodings.push_shifted(&bits, 6, 6 * (n - 1) / 8);
        decodings.push_shifted(&bits, 12, 6 * (n - 2) / 8);
        decodings.push_shifted(&bits, 18, 6 * (n - 3) / 8);
    }
    decodings.finish()
}

/// A symbol of either base64 alphabet, by ranges (a table lookup does not
/// vectorise).
pub(super) fn is_base64_symbol(b: u8) -> bool {
    matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'-' | b'_')
}

/// Values of base64 symbols, both alphabets at once (`+` and `-` are 62,
/// `/` and `_` 63); `NOT_BASE64` for every other byte.
const BASE64_VALUES: [u8; 256] = {
    let mut t = [NOT_BASE64; 256];
    let symbols = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        t[symbols[i] as usize] = i as u8;
        i += 1;
    }
    t[b'-' as usize] = 62;
    t[b'_' as usize] = 63;
    t
};
const NOT_BASE64: u8 = 0xff;

/// Decodes `symbols` (base64 of either alphabet, even mixed, without
/// padding), appending to `out`. Never fails, unlike a strict decoder: a
/// last symbol with stray low bits or a lone trailing symbol would make
/// one refuse the whole run, and an agent could append one to any
/// payload. The stray bits, and the lone symbol, are dropped.
pub(super) fn decode_base64(symbols: &[u8], out: &mut Vec<u8>) {
    let whole = out.len() + symbols.len() * 6 / 8;
    pack_base64(symbols, out);
    out.truncate(whole);
}

/// The bits of `symbols` (base64 of either alphabet, even mixed), packed
/// into bytes appended to `out`; a last byte only partly filled holds its
/// bits at the top. Never fails, unlike a strict decoder: a last symbol
/// with stray low bits or a lone trailing symbol would make one refuse the
/// whole run, and an agent could append one to any payload.
fn pack_base64(symbols: &[u8], out: &mut Vec<u8>) {
    // Eight symbols' 48 bits are one word's top six bytes: written as a
    // whole word, its last two bytes overwritten by the next (or cut).
    let eights = symbols.chunks_exact(8);
    let rest = eights.remainder();
    let mut at = out.len();
    out.resize(at + eights.len() * 6 + 2, 0);
    for g in eights {
        let n = g.iter().fold(0, |n, &b| n << 6 | base64_value(b));
        out[at..at + 8].copy_from_slice(&(n << 16).to_be_bytes());
        at += 6;
    }
    out.truncate(at);
    // Fewer than eight left: their bits, the last byte's at its top.
    let n = rest
        .iter()
        .enumerate()
        .fold(0, |n, (i, &b)| n | base64_value(b) << (58 - 6 * i));
    out.extend_from_slice(&n.to_be_bytes()[..(rest.len() * 6).div_ceil(8)]);
}

/// The six bits of a base64 symbol (of either alphabet), in a word.
fn base64_value(symbol: u8) -> u64 {
    let v = BASE64_VALUES[symbol as usize];
    debug_assert!(v != NOT_BASE64, "{symbol:#x} is not base64");
    u64::from(v & 63)
}

/// Appends the `len` bytes that start `bit` bits into `bits` (which holds
/// at least `bit + 8 * len` bits).
fn append_shifted(bits: &[u8], bit: usize, len: usize, out: &mut Vec<u8>) {
    let (from, shift) = (bit / 8, bit % 8);
    if shift == 0 {
        out.extend_from_slice(&bits[from..from + len]);
        return;
    }
    // A partial first byte means one more byte is read than written.
    let (high, low) = (&bits[from..from + len], &bits[from + 1..from + 1 + len]);
    out.extend(
        high.iter()
            .zip(low)
            .map(|(h, l)| h << shift | l >> (8 - shift)),
    );
}

/// Every long hex run (either case, even mixed) decoded but those strictly
/// inside a `kept` stretch, looked for only inside the `alphabet` runs;
/// each at both alignments of its digit pairs (a hex digit glued before a
/// hex payload shifts them), each decoding (what `keep` keeps of it)
/// ending with a NUL.
pub(super) fn hex_runs(
    data: &[u8],
    kept: &[Stretch],
    alphabet: &[Range<usize>],
    keep: Keep,
) -> Option<Vec<u8>> {
    let total: usize = alphabet.iter().map(|r| r.len()).sum();
    let mut decodings = Decodings::new(keep, total, 2 * alphabet.len());
    let (mut bits, mut hex) = (Vec::new(), Vec::new());
    for a in alphabet {
        hex.clear();
        long_runs_into(
            &data[a.clone()],
            MIN_RUN,
            |b| b.is_ascii_hexdigit(),
            &mut hex,
        );
        for r in &hex {
            let r = a.start + r.start..a.start + r.end;
            if strictly_inside(kept, &r) {
                continue;
            }
            bits.clear();
            let digits = data[r.clone()].chunks_exact(2);
            let odd = digits
                .remainder()
                .first()
                .map(|&d| HEX_VALUES[d as usize] << 4);
            bits.extend(digits.map(|p| HEX_VALUES[p[0] as usize] << 4 | HEX_VALUES[p[1] as usize]));
            bits.extend(odd);
            pad_for_reading_in_place(&mut bits);
            // One digit in is four bits in (written out, as for base64).
            decodings.push_shifted(&bits, 0, r.len() / 2);
            decodings.push_shifted(&bits, 4, (r.len() - 1) / 2);
        }
    }
    decodings.finish()
}

/// Values of hex digits, either case (0 for every other byte: only digits
/// are looked up).
const HEX_VALUES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        if let Some(v) = hex_val(b as u8) {
            t[b] = v;
        }
        b += 1;
    }
    t
};

/// Whether `r` lies inside one of the (ordered, disjoint) `kept`
/// stretches without touching its first or last byte.
fn strictly_inside(kept: &[Stretch], r: &Range<usize>) -> bool {
    let before = kept.partition_point(|k| k.at.start < r.start);
    before > 0 && r.end < kept[before - 1].at.end
}

/// The value of one hex digit, either case.
pub(super) const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
