//! Base64 cut into padded pieces and glued back to back (`czM=Y3I=M3Q=`):
//! what encoding a secret a few bytes at a time makes. No run between the
//! padding is long enough for the run decoders, and decoding the symbols
//! joined would misalign every piece after the first; so each piece is
//! decoded on its own, where its padding says its groups lie, and the
//! pieces' bytes are joined.

use super::runs::{decode_base64, is_base64_symbol, Decodings, Keep};

/// Padded pieces a chain needs before it is decoded: one alone is an
/// ordinary padded payload (its run is decoded as one), or `key=` in text.
const MIN_PIECES: usize = 2;

/// The decoding of every chain of at least [`MIN_PIECES`] padded base64
/// pieces in `data`, each piece decoded alone and the bytes joined (with
/// an unpadded last piece glued after them); each chain's decoding (what
/// `keep` keeps of it) ends with a NUL. `None` when there is none.
pub(super) fn padded_pieces(data: &[u8], keep: Keep) -> Option<Vec<u8>> {
    let mut decodings = Decodings::new(keep, 0, 0);
    let mut chain = Chain::default();
    for eq in memchr::memchr_iter(b'=', data) {
        // The second `=` of a piece already taken.
        if eq < chain.end {
            continue;
        }
        let Some(piece) = padded_piece(data, eq) else {
            continue;
        };
        // A piece not glued to the chain's last one starts a new chain.
        if piece.start != chain.end {
            chain.finish(data, &mut decodings);
            chain = Chain::default();
        }
        decode_base64(&data[piece.aligned..eq], &mut chain.bytes);
        chain.pieces += 1;
        chain.end = piece.end;
    }
    chain.finish(data, &mut decodings);
    decodings.finish()
}

/// A chain of padded pieces, each starting where the one before it ended.
#[derive(Default)]
struct Chain {
    /// The pieces' bytes, joined.
    bytes: Vec<u8>,
    pieces: usize,
    /// Where the last piece's padding ends.
    end: usize,
}

impl Chain {
    /// Adds the chain's bytes to `decodings` if it has enough pieces, with
    /// an unpadded last piece right after them (a secret's last bytes, when
    /// they fill whole groups, take no padding).
    fn finish(&mut self, data: &[u8], decodings: &mut Decodings) {
        if self.pieces < MIN_PIECES {
            return;
        }
        let tail = data[self.end..]
            .iter()
            .take_while(|&&b| is_base64_symbol(b))
            .count();
        let out = decodings.next();
        out.append(&mut self.bytes);
        decode_base64(&data[self.end..self.end + tail], out);
        decodings.end();
    }
}

/// One padded piece: the symbols before a `=` and its padding.
struct Piece {
    /// Where its symbols start.
    start: usize,
    /// Where its groups start: the symbols before, glued to it, are
    /// dropped so that they and the padding make whole groups.
    aligned: usize,
    /// Where its padding ends.
    end: usize,
}

/// The piece whose padding starts at `eq` (a `=`), if the symbols before
/// it fill the last group the padding leaves room for (two before `==`,
/// three before `=`).
fn padded_piece(data: &[u8], eq: usize) -> Option<Piece> {
    let pad = if data.get(eq + 1) == Some(&b'=') {
        2
    } else {
        1
    };
    let start = eq
        - data[..eq]
            .iter()
            .rev()
            .take_while(|&&b| is_base64_symbol(b))
            .count();
    let symbols = eq - start;
    (symbols >= 4 - pad).then(|| Piece {
        start,
        aligned: start + (symbols + pad) % 4,
        end: eq + pad,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    #[test]
    fn pieces_are_decoded_alone_and_joined() {
        let text = b"the quick brown fox jumps over";
        for piece in [1, 2, 4, 5] {
            let glued: String = text.chunks(piece).map(|c| STANDARD.encode(c)).collect();
            for data in [glued.clone(), format!("x{glued} y"), format!("ab{glued}")] {
                let got = padded_pieces(data.as_bytes(), Keep::All).expect(&data);
                assert_eq!(got, [text.as_slice(), b"\0"].concat(), "{data}");
            }
        }
        // An unpadded last piece (whole groups) is glued on.
        let data = format!(
            "{}{}",
            STANDARD.encode("ab"),
            STANDARD.encode("cd") + "ZWZn"
        );
        assert_eq!(
            padded_pieces(data.as_bytes(), Keep::All).unwrap(),
            b"abcdefg\0"
        );
    }

    #[test]
    fn a_lone_padded_run_or_text_with_equals_signs_is_no_chain() {
        for data in [
            "aGVsbG8=",
            "a=b&c==d&e=f",
            "key=value",
            "x == y",
            "===",
            "=",
            "abc= def=",
        ] {
            assert_eq!(padded_pieces(data.as_bytes(), Keep::All), None, "{data}");
        }
    }
}
