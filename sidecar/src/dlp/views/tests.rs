//! Every encoding, alone and layered, is peeled by both peelings.

use base64::Engine as _;

use super::alphabet::alphabet_runs;
use super::runs::{hex_runs, hex_val, is_base64_symbol, runs, Keep};
use super::*;

fn contains(views: &[View], needle: &str) -> bool {
    views
        .iter()
        .any(|v| v.data.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

const S: &str = "atkreal-0123456789abcdef";

/// The standard base64 alphabet, for generated runs.
pub(super) const BASE64_SYMBOLS: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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
    let mixed_hex = crate::dlp::mixed_case_hex(S);
    for input in [
        format!("x=%61{}", &S[1..]),
        format!("{{\"k\":\"{json_escaped}\"}}"),
        wrapped9,
        format!("data {b64} end"),
        format!("h={mixed_hex}"),
        STANDARD.encode(format!("k=%61{}", &S[1..])),
        // Layers one decoding leaves to the next: an escape that
        // decodes to a percent escape, and the other way round; an
        // escape cut by a line break; wrapped base64 in a JSON string.
        format!("{{\"k\":\"\\u0025{:02x}{}\"}}", S.as_bytes()[0], &S[1..]),
        format!("k=%5Cu00{:02x}{}", S.as_bytes()[0], &S[1..]),
        // An escaped secret inside binary, base64-encoded.
        STANDARD.encode(
            [
                &[0u8, 200, 13, 7, 255][..],
                format!("\\u00{:02x}{}", S.as_bytes()[0], &S[1..]).as_bytes(),
                &[1, 2, 250],
            ]
            .concat(),
        ),
        format!("\\u00\n{:02x}{}", S.as_bytes()[0], &S[1..]),
        format!(
            "{{\"b\":\"{}\"}}",
            b64.as_bytes()
                .chunks(20)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join("\\n")
        ),
    ] {
        for peeling in [Peeling::Combined, Peeling::Separate] {
            let views = decoded(input.as_bytes(), 1 << 20, peeling);
            assert!(
                contains(&views, S),
                "{peeling:?}: not found in {input:?}: {views:#?}"
            );
        }
    }
}

#[test]
fn plain_text_has_no_views_and_budget_bounds_work() {
    for peeling in [Peeling::Combined, Peeling::Separate] {
        assert!(decoded(b"hello", 1 << 20, peeling).is_empty());
        let big = "QUJD".repeat(10_000);
        let views = decoded(big.as_bytes(), 1000, peeling);
        let peeled: usize = views.iter().filter(|v| !v.leaf).map(|v| v.data.len()).sum();
        let leaves: usize = views.iter().filter(|v| v.leaf).map(|v| v.data.len()).sum();
        assert!(peeled <= 1000 && leaves <= 1000, "{peeled} {leaves}");
    }
}

#[test]
fn runs_found_by_masks_are_what_a_byte_by_byte_scan_finds() {
    let naive = |data: &[u8], min: usize, class: &dyn Fn(u8) -> bool| {
        let mut v = Vec::new();
        let mut start = None;
        for (i, &b) in data.iter().chain(std::iter::once(&b'\0')).enumerate() {
            match (class(b), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    if i - s >= min {
                        v.push(s..i);
                    }
                    start = None;
                }
                _ => {}
            }
        }
        v
    };
    let hex = |b: u8| b.is_ascii_hexdigit();
    let alphabet = |b: u8| alphabet_runs(&[b; MIN_RUN], &[], None).runs.len() == 1;
    let classes: [(&str, &dyn Fn(u8) -> bool); 3] = [
        ("hex", &hex),
        ("text", &runs::is_text),
        ("base64", &alphabet),
    ];
    // Pseudo-random strings of class bytes and others, with runs of every
    // length around each minimum, at every position and across blocks.
    let mut next = crate::dlp::pseudo_random(0x2545_f491);
    for len in (0..300).chain([1000, 4096]) {
        for round in 0..24 {
            // Sparse and dense breaks: runs near the minimum, and runs
            // over several blocks.
            let every = [5, 9, 17, 23, 70, 301][round % 6];
            let data: Vec<u8> = (0..len)
                .map(|_| match next() {
                    r if r.is_multiple_of(every) => b"\x00 \x80.=\x7f\xff\t"[(r >> 9) % 8],
                    r => b"0a9FzZ+/-_~ "[(r >> 7) % 12],
                })
                .collect();
            for (name, class) in classes {
                for min in [MIN_TEXT, MIN_RUN] {
                    let want = naive(&data, min, class);
                    let text = String::from_utf8_lossy(&data);
                    assert_eq!(runs(&data, min, class), want, "{name} {min} {text:?}");
                }
            }
        }
    }
    // Every byte, each class judged by its definition.
    for b in 0..=255u8 {
        let symbol = b.is_ascii_alphanumeric() || b"+/-_".contains(&b);
        assert_eq!(alphabet(b), symbol, "{b:#x}");
    }
}

#[test]
fn a_stream_window_cut_mid_group_still_decodes() {
    use base64::engine::general_purpose::STANDARD;
    let b64 = STANDARD.encode(format!("prefix-bytes {S} suffix"));
    for cut in 1..4 {
        let views = decoded(&b64.as_bytes()[cut..], 1 << 20, Peeling::Combined);
        assert!(contains(&views, S), "cut {cut}");
    }
}

#[test]
fn the_lenient_base64_decoder_agrees_with_a_strict_one_where_that_one_decodes() {
    // Pseudo-random symbols of both alphabets, every length: where the
    // strict decoder of the symbols' own alphabet accepts them, the
    // lenient one gives the same bytes; where it refuses (stray low bits,
    // a lone last symbol), the lenient one still decodes every whole byte.
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut next = crate::dlp::pseudo_random(0x2545_f491);
    for round in 0..5000 {
        // Across the packer's blocks of eight and of 64 symbols.
        let len = round % 150;
        let url = round % 2 == 0;
        let symbols: Vec<u8> = (0..len)
            .map(|_| match BASE64_SYMBOLS[next() % 64] {
                b'+' if url => b'-',
                b'/' if url => b'_',
                b => b,
            })
            .collect();
        let mut lenient = Vec::new();
        runs::decode_base64(&symbols, &mut lenient);
        assert_eq!(lenient.len(), len * 6 / 8, "{symbols:?}");
        let engine = if url {
            &URL_SAFE_NO_PAD
        } else {
            &STANDARD_NO_PAD
        };
        if let Ok(strict) = engine.decode(&symbols) {
            assert_eq!(lenient, strict, "{symbols:?}");
        }
        // The bytes encode back to the symbols, but for the last one's
        // stray low bits (and a lone last symbol).
        let whole = len - usize::from(len % 4 == 1);
        let again = engine.encode(&lenient);
        assert_eq!(again.len(), whole, "{symbols:?}");
        let exact = if whole % 4 == 0 { whole } else { whole - 1 };
        assert_eq!(&again.as_bytes()[..exact], &symbols[..exact], "{symbols:?}");
    }
    // Mixed alphabets in one run decode as either would.
    let mut mixed = Vec::new();
    runs::decode_base64(b"+/-_", &mut mixed);
    assert_eq!(mixed, STANDARD_NO_PAD.decode("+/+/").unwrap());
}

#[test]
fn every_alignment_of_a_base64_run_is_its_own_decoding() {
    // Runs of every length and content: `base64_runs`, which decodes each
    // run once and shifts the bits for the other alignments, gives what
    // decoding the run from each of its first four symbols would.
    let mut next = crate::dlp::pseudo_random(0x6a09_e667);
    let symbols = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_";
    for len in MIN_RUN..MIN_RUN + 40 {
        let run: Vec<u8> = (0..len).map(|_| symbols[next() % symbols.len()]).collect();
        let mut want = Vec::new();
        for k in 0..4 {
            runs::decode_base64(&run[k..], &mut want);
            want.push(0);
        }
        let data = [b"{".as_slice(), &run, b"}"].concat();
        let alphabet = alphabet_runs(&data, &[], None).runs;
        assert_eq!(alphabet.len(), 1);
        assert_eq!(alphabet[0], 1..1 + len);
        assert_eq!(
            runs::base64_runs(&data, &alphabet, Keep::All),
            Some(want),
            "{run:?}"
        );
    }
}

#[test]
fn a_view_past_the_budget_is_still_taken_but_not_peeled() {
    // Layer one (the filler and the payload base64-decoded) fits the
    // budget; layer two (where the payload shows) does not: it is taken
    // anyway, as a leaf, and nothing is peeled from it. The filler is text
    // twice encoded, so that both of its layers are text, kept in full.
    use base64::engine::general_purpose::STANDARD;
    let data = format!(
        "{} {}",
        STANDARD.encode("QUJD".repeat(500)),
        STANDARD.encode(STANDARD.encode(S))
    );
    let first_layer: usize = decoded(data.as_bytes(), 1 << 20, Peeling::Combined)
        .iter()
        .filter(|v| !v.how.contains(", "))
        .map(|v| v.data.len())
        .sum();
    // Room for the first layer; the second layer's view (the base64
    // one, 1.5 kB) only as a leaf.
    let views = decoded(data.as_bytes(), first_layer + 100, Peeling::Combined);
    let leaves: Vec<View> = views.iter().filter(|v| v.leaf).cloned().collect();
    assert!(contains(&leaves, S), "{views:#?}");
    assert!(views.iter().all(|v| v.how.matches(", ").count() <= 1));
}

#[test]
fn utf16_text_of_the_shortest_length_kept_is_kept_with_one_nul_fewer() {
    // Decodings are ruled out for UTF-16 together, by their chains of
    // NULs. The shortest text kept, `MIN_TEXT` bytes, can come with one
    // NUL fewer: its last unit's high byte need not be a NUL (`⁙` is
    // `Y` and a space, little endian), and must still be looked into.
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let units: Vec<u8> = "s3cr3tX\u{2059}"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(units.iter().filter(|&&b| b == 0).count(), MIN_TEXT - 1);
    let data = STANDARD_NO_PAD.encode(&units).into_bytes();
    let kept = runs::base64_runs(&data, &alphabet_runs(&data, &[], None).runs, Keep::Text)
        .unwrap_or_default();
    assert!(
        kept.windows(MIN_TEXT).any(|w| w == b"s3cr3tXY"),
        "{:?}",
        String::from_utf8_lossy(&kept)
    );
}

#[test]
fn keeping_text_keeps_every_long_stretch_of_text_of_each_decoding() {
    // Runs of pseudo-random symbols, some of them base64 of text: what
    // `Keep::Text` keeps of each decoding is exactly its stretches of text
    // at least `MIN_TEXT` long (joined and ended by NULs), and a decoding
    // with none leaves nothing; one run at a time and all in one view.
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    const TEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyz {}\":,.-_0123456789";
    let mut next = crate::dlp::pseudo_random(0xbb67_ae85);
    let (mut all_data, mut all_want) = (Vec::<u8>::new(), Vec::new());
    for round in 0..400 {
        let len = MIN_RUN + round % 90;
        let run: Vec<u8> = if round % 3 == 0 {
            let text: Vec<u8> = (0..len)
                .map(|_| match next() % 40 {
                    0 => 0xc3,
                    1 => b'\n',
                    n => TEXT[n % TEXT.len()],
                })
                .collect();
            STANDARD_NO_PAD.encode(text).into_bytes()
        } else {
            (0..len).map(|_| BASE64_SYMBOLS[next() % 64]).collect()
        };
        let data = [b"{".as_slice(), &run, b"}"].concat();
        let alphabet = alphabet_runs(&data, &[], None).runs;
        let mut want = Vec::new();
        for k in 0..4 {
            let mut decoding = Vec::new();
            runs::decode_base64(&run[k..], &mut decoding);
            let text: Vec<&[u8]> = runs(&decoding, MIN_TEXT, runs::is_text)
                .into_iter()
                .map(|r| &decoding[r])
                .collect();
            if !text.is_empty() {
                want.extend(text.join(&0u8));
                want.push(0);
            }
        }
        assert_eq!(
            runs::base64_runs(&data, &alphabet, Keep::Text),
            (!want.is_empty()).then_some(want.clone()),
            "{:?}",
            String::from_utf8_lossy(&run)
        );
        all_data.push(b',');
        all_data.extend_from_slice(&run);
        all_want.extend(want);
    }
    // All the runs in one view: their decodings (~70 kB) are searched for
    // text a few kB at a time, and what is kept is the same, in order.
    let alphabet = alphabet_runs(&all_data, &[], None).runs;
    assert_eq!(alphabet.len(), 400);
    assert_eq!(
        runs::base64_runs(&all_data, &alphabet, Keep::Text),
        Some(all_want)
    );
}

#[test]
fn the_shortest_text_is_kept_from_every_alignment_of_base64_and_hex() {
    // Decodings that cannot hold `MIN_TEXT` bytes below 0x80 in a row are
    // left out before they are shifted out of the packed bits: text of
    // exactly that length, between bytes that are no text, is still kept,
    // whichever alignment it is encoded at and whatever surrounds it.
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut next = crate::dlp::pseudo_random(0xa54f_f53a);
    let text = b"s3cr3t-X";
    assert_eq!(text.len(), MIN_TEXT);
    for round in 0..300usize {
        // Bytes with their top bit set: never text, nor a NUL.
        let mut noise = |n: usize| -> Vec<u8> { (0..n).map(|_| 0x80 | next() as u8).collect() };
        // At least four bytes around it make a base64 run `MIN_RUN` long.
        let (before, after) = (round % 7, 4 + round % 5);
        let payload = [noise(before), text.to_vec(), noise(after)].concat();
        let encoded = [
            STANDARD_NO_PAD.encode(&payload).into_bytes(),
            payload
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
                .into_bytes(),
        ];
        for (kind, run) in encoded.iter().enumerate() {
            // Symbols glued before the run shift its alignment (`a` is
            // both a base64 symbol and a hex digit).
            let glued = &b"aaa"[..round % if kind == 0 { 4 } else { 2 }];
            let data = [b"{", glued, run.as_slice(), b"}"].concat();
            let alphabet = alphabet_runs(&data, &[], None).runs;
            let kept = if kind == 0 {
                runs::base64_runs(&data, &alphabet, Keep::Text)
            } else {
                hex_runs(&data, &[], &alphabet, Keep::Text)
            }
            .unwrap_or_default();
            assert!(
                kept.windows(MIN_TEXT).any(|w| w == text),
                "{:?} kept {:?}",
                String::from_utf8_lossy(&data),
                String::from_utf8_lossy(&kept)
            );
        }
    }
}

#[test]
fn a_digest_decoded_at_every_alignment_is_noise_not_kept_by_the_combined_peeling() {
    // A SHA-256 in hex is a hex run and a base64 run: every decoding of it
    // is binary noise. The combined peeling (whose needles are all text)
    // keeps none of it; the separate one keeps it all.
    let body = b"{\"digest\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}";
    assert!(decoded(body, 1 << 20, Peeling::Combined).is_empty());
    let separate = decoded(body, 1 << 20, Peeling::Separate);
    assert!(separate.iter().any(|v| v.how == "base64-decoded"));
    assert!(separate.iter().any(|v| v.how == "hex-decoded"));
}

/// What `Scanner::deep_keep` rests on: every text decoder keeps each byte
/// of punctuation (making more from escapes is fine), the UTF-16
/// narrowing keeps a run's, and no run decoder's alphabet has any.
#[test]
fn no_decoding_drops_or_merges_punctuation() {
    let count = crate::dlp::punctuation_in;
    // Escape-heavy text: every escape, half-escapes, whitespace around
    // line breaks, and punctuation among them.
    let pieces: &[&str] = &[
        "\\", "\\u", "\\x", "\\\"", "\\'", "\\/", "\\n", "\\r", "\\t", "%", "%2", "%22", "u00",
        "5c", "41", "d83d", "\n", " ", "  \r\n", "\"", "'", ",", ".", ":", "{", "}", "a", "Z", "9",
    ];
    let mut next = crate::dlp::pseudo_random(0x510e_527f);
    for _ in 0..3000 {
        let text: String = (0..next() % 40)
            .map(|_| pieces[next() % pieces.len()])
            .collect();
        let data = text.as_bytes();
        let decoders: [(&str, Option<Vec<u8>>); 4] = [
            ("unescaped", unescape_text(data).map(|d| d.0)),
            ("line breaks removed", strip_breaks(data).map(|d| d.0)),
            ("percent-decoded", percent(data).map(|d| d.0)),
            ("escapes decoded", escapes(data).map(|d| d.0)),
        ];
        for (how, out) in decoders {
            if let Some(out) = out {
                assert!(count(&out) >= count(data), "{how} of {text:?}: {out:?}");
            }
        }
        // The same text as UTF-16 (a run, as every byte is text): narrowed whole.
        let wide: Vec<u8> = data.iter().flat_map(|&b| [b, 0]).collect();
        if data.len() >= 8 {
            let narrowed = utf16_view(&wide).expect("a UTF-16 run");
            assert!(count(&narrowed) >= count(data), "UTF-16 of {text:?}");
        }
    }
    for b in 0..=255u8 {
        if is_base64_symbol(b) || b == b'=' || hex_val(b).is_some() {
            assert!(!is_punctuation(b), "{b:#04x} is in a run's alphabet");
        }
    }
}

#[test]
fn punctuation_is_printable_ascii_outside_every_encodings_alphabet() {
    for b in 0..=255u8 {
        let expected = b.is_ascii_punctuation()
            && !matches!(b, b'+' | b'/' | b'-' | b'_' | b'=' | b'%' | b'\\');
        assert_eq!(is_punctuation(b), expected, "byte {b:#04x}");
    }
}
