//! Runs of base64 and hex in data, found by probing, and decoded.

use base64::Engine as _;
use std::ops::Range;

use super::MIN_RUN;

/// Bytes of base64 and base64url, as a table (the run scan is per byte).
const BASE64_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'-' | b'_');
        b += 1;
    }
    t
};

/// Maximal runs of `pred` bytes at least `min` long, as ranges.
///
/// Text is mostly short words, so the scan probes: if the byte `min - 1`
/// ahead is not in the class, no long run can start before it, and the
/// bytes in between are never looked at.
pub(super) fn runs(data: &[u8], min: usize, pred: impl Fn(u8) -> bool) -> Vec<Range<usize>> {
    let mut v = Vec::new();
    let mut i = 0;
    while i + min <= data.len() {
        let probe = i + min - 1;
        if !pred(data[probe]) {
            i = probe + 1;
            continue;
        }
        let run = widen(data, probe, i, &pred);
        i = run.end + 1;
        if run.len() >= min {
            v.push(run);
        }
    }
    v
}

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
    kept: &[Range<usize>],
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
    for k in kept {
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

/// The long runs of base64-alphabet bytes in `data` that are not strictly
/// inside a `kept` stretch: found once per view and read by both run
/// decoders, as every hex run lies inside one of them (hex digits are
/// base64 bytes too).
pub(super) fn alphabet_runs(data: &[u8], kept: &[Range<usize>]) -> Vec<Range<usize>> {
    new_runs(data, kept, |b| BASE64_BYTES[b as usize])
}

/// Every run of `alphabet` (see [`alphabet_runs`]) base64-decoded; a run at
/// the very start may be cut mid-group (the data is a window into a
/// stream), so there every alignment is tried.
pub(super) fn base64_runs(data: &[u8], alphabet: &[Range<usize>]) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let total: usize = alphabet.iter().map(|r| r.len()).sum();
    // Room for every run decoded (a cut one four times, once per alignment).
    let mut out = Vec::with_capacity(total * 3 / 4 + 4 * alphabet.len() + 64);
    for r in alphabet {
        let run = &data[r.clone()];
        let offsets: &[usize] = if r.start == 0 { &[0, 1, 2, 3] } else { &[0] };
        for &off in offsets {
            let s = &run[off..];
            let s = &s[..s.len() - (s.len() % 4 == 1) as usize];
            let engine = if memchr::memchr2(b'-', b'_', s).is_some() {
                &URL_SAFE_NO_PAD
            } else {
                &STANDARD_NO_PAD
            };
            let before = out.len();
            match engine.decode_vec(s, &mut out) {
                Ok(()) => out.push(b'\n'),
                Err(_) => out.truncate(before),
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Every long hex run (either case, even mixed) decoded but those strictly
/// inside a `kept` stretch, looked for only inside the `alphabet` runs.
pub(super) fn hex_runs(
    data: &[u8],
    kept: &[Range<usize>],
    alphabet: &[Range<usize>],
) -> Option<Vec<u8>> {
    let total: usize = alphabet.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(total / 2 + alphabet.len());
    for a in alphabet {
        for r in runs(&data[a.clone()], MIN_RUN, |b| b.is_ascii_hexdigit()) {
            let r = a.start + r.start..a.start + r.end;
            if strictly_inside(kept, &r) {
                continue;
            }
            let pairs = data[r].chunks_exact(2);
            out.extend(pairs.map(|p| hex_val(p[0]).unwrap_or(0) * 16 + hex_val(p[1]).unwrap_or(0)));
            out.push(b'\n');
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether `r` lies inside one of the (ordered, disjoint) `kept`
/// stretches without touching its first or last byte.
fn strictly_inside(kept: &[Range<usize>], r: &Range<usize>) -> bool {
    let before = kept.partition_point(|k| k.start < r.start);
    before > 0 && r.end < kept[before - 1].end
}

/// The value of one hex digit, either case.
pub(super) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
