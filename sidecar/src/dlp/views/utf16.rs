//! Text in UTF-16, narrowed to the bytes it spells: `s\0e\0c\0` (little
//! endian, what Windows tools write and PowerShell's `-EncodedCommand`
//! base64-encodes) or `\0s\0e\0c` (big endian) is `sec`. Without it, a
//! secret re-encoded as UTF-16 — raw, or under base64, hex, percent or
//! `\u0000` escapes — matches no needle, and a decoding keeping only its
//! text (`runs::Keep::Text`) would drop every one of its bytes.

use super::masks::has_nul_chain;
use super::runs::is_text;
use super::MIN_TEXT;

/// Appends to `out` every run of at least [`MIN_TEXT`] UTF-16 code units
/// of `data` that are text (either byte order, at either byte parity),
/// narrowed to one byte a unit, each followed by a NUL; returns whether it
/// appended any.
///
/// Such a run is a chain of NULs two bytes apart with text between them,
/// so only the NULs are looked at (found by `memchr`), and only chains
/// long enough are read: text and text joined by NULs cost next to nothing.
#[inline]
pub(super) fn narrow_utf16(data: &[u8], out: &mut Vec<u8>) -> bool {
    match first_nul_probed(data) {
        Some(from) => narrow_chains(data, from, out),
        None => false,
    }
}

/// Whether [`narrow_utf16`] could find anything in `data`: a run of
/// [`MIN_TEXT`] units has at least `MIN_TEXT - 1` NULs two apart. Asked
/// once of many decodings gathered together (a NUL between each two can
/// only add to a chain), it spares probing each one.
pub(super) fn may_hold_utf16(data: &[u8]) -> bool {
    has_nul_chain(data, MIN_TEXT - 1)
}

/// [`narrow_utf16`] past the probes: the chains of NULs from `from` on
/// (no run starts more than one byte before it).
#[inline(never)]
fn narrow_chains(data: &[u8], from: usize, out: &mut Vec<u8>) -> bool {
    let before = out.len();
    // The first and last NUL of the chain so far.
    let mut chain: Option<(usize, usize)> = None;
    let nuls = memchr::memchr_iter(0, &data[from..]).map(|z| from + z);
    for z in nuls {
        chain = match chain {
            Some((first, last)) if z == last + 2 => Some((first, z)),
            Some((first, last)) => {
                narrow_chain(data, first, last, out);
                Some((z, z))
            }
            None => Some((z, z)),
        };
    }
    if let Some((first, last)) = chain {
        narrow_chain(data, first, last, out);
    }
    out.len() > before
}

/// Where the chains of NULs [`narrow_utf16`] reads may begin (`None` if
/// `data` cannot hold a run it keeps): the first NUL of a long view; in a
/// short one (most calls are on one decoding of a run, ~40 bytes, without
/// a NUL, where a search costs more than a few probes), the start if a NUL
/// is in one of two bytes probed in every [`PROBE_EVERY`].
#[inline]
fn first_nul_probed(data: &[u8]) -> Option<usize> {
    if data.len() > PROBED_UP_TO {
        // A long view: a vectorised search outruns the probes.
        return memchr::memchr(0, data);
    }
    (0..data.len().saturating_sub(1))
        .step_by(PROBE_EVERY)
        .any(|p| data[p] == 0 || data[p + 1] == 0)
        .then_some(0)
}

/// The longest data probed for NULs; longer data is searched (`memchr`),
/// which outruns the probes there.
pub(super) const PROBED_UP_TO: usize = 256;

/// The shortest stretch kept is `MIN_TEXT` text bytes with a NUL between
/// each two (15 bytes), in which every two neighbouring bytes hold a NUL;
/// any 14 positions in a row hold a multiple of 14, so a pair probed there
/// lies inside it.
const PROBE_EVERY: usize = 2 * MIN_TEXT - 2;

/// The text beside a chain of NULs two apart (`first` to `last`): the byte
/// before each NUL and the one after the last, which covers both byte
/// orders at once (`s\0e\0` and `\0s\0e`; either may gain one neighbouring
/// byte, which can only add a match). Stretches of at least [`MIN_TEXT`]
/// text bytes are appended to `out`, each followed by a NUL.
fn narrow_chain(data: &[u8], first: usize, last: usize, out: &mut Vec<u8>) {
    // A chain of `n` NULs has at most `n + 1` bytes of text beside it.
    if (last - first) / 2 + 2 < MIN_TEXT {
        return;
    }
    let from = if first == 0 { 1 } else { first - 1 };
    let beside = data
        .get(from..=(last + 1).min(data.len() - 1))
        .unwrap_or_default();
    // Each stretch is written straight to `out`, then cut back if short.
    let mut start = out.len();
    for &b in beside.iter().step_by(2) {
        if is_text(b) {
            out.push(b);
            continue;
        }
        end_stretch(out, start);
        start = out.len();
    }
    end_stretch(out, start);
}

/// Ends the stretch written to `out` from `start`: kept, followed by a NUL,
/// if it holds at least [`MIN_TEXT`] bytes; cut away if not.
fn end_stretch(out: &mut Vec<u8>, start: usize) {
    if out.len() - start >= MIN_TEXT {
        out.push(0);
    } else {
        out.truncate(start);
    }
}

/// The view of every UTF-16 text run in `data`, narrowed (`None` if none).
pub(super) fn utf16_view(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    narrow_utf16(data, &mut out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn be(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_be_bytes).collect()
    }

    fn narrowed(data: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        narrow_utf16(data, &mut out);
        out.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect()
    }

    #[test]
    fn text_in_either_byte_order_at_either_parity_is_narrowed() {
        let text = "key=s3cr3t value\twith\r\n";
        for prefix in [&b""[..], b"x", b"\xff\xfe", b"\x00\x00\x00"] {
            for (order, units) in [("le", le(text)), ("be", be(text))] {
                let data = [prefix, &units, b"\x01\x02tail"].concat();
                // A byte beside the run may be taken with it (big endian
                // after an odd byte here); the text is never cut.
                let has = |n: &Vec<u8>| n.windows(text.len()).any(|w| w == text.as_bytes());
                assert!(
                    narrowed(&data).iter().any(has),
                    "{order} after {prefix:?}: {:?}",
                    narrowed(&data)
                );
            }
        }
    }

    #[test]
    fn short_runs_and_other_data_give_nothing() {
        // Seven units: shorter than any needle.
        assert!(narrowed(&le("seven77")).is_empty());
        assert!(narrowed(b"plain text without a single NUL byte").is_empty());
        // NULs, but not between text: binary, and text joined by NULs.
        assert!(narrowed(&[0u8; 64]).is_empty());
        assert!(narrowed(b"first stretch\0second stretch\0").is_empty());
        let mut out = Vec::new();
        assert!(!narrow_utf16(b"no nul here", &mut out) && out.is_empty());
    }

    #[test]
    fn non_ascii_units_end_a_run() {
        // "é" is one unit whose high byte is not a NUL; the text on either
        // side is long enough to be kept on its own.
        let n = narrowed(&le("left side é right side"));
        assert!(n.iter().any(|s| s == b"left side "), "{n:?}");
        assert!(n.iter().any(|s| s == b" right side"), "{n:?}");
    }
}
