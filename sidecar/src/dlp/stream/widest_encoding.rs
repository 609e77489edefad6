//! Encodings wider than the deep window, cut where a large body's pieces
//! are cut: each must be seen whole by one scan (see
//! [`Scanner::deep_keep`]).

use super::super::{Needles, MAX_DEEP_KEEP};
use super::*;
use bottlebar_policy::HeldSecret;

/// A token only a layered decoding finds.
const TOKEN: &str = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5";
/// A large body's pieces, as the proxy scans them.
const PIECE: usize = 64 * 1024;

fn scanner(secret: &str) -> Arc<Scanner> {
    Arc::new(Scanner::new(
        &[HeldSecret {
            name: "api".into(),
            value: secret.into(),
            placeholder: None,
        }],
        Needles::SecretsAndTokens,
    ))
}

/// JSON `\u` escapes of every character of `s`: six bytes a byte.
fn json_escaped(s: &str) -> String {
    s.chars().map(|c| format!("\\u{:04x}", c as u32)).collect()
}

/// UTF-16 of `s` in JSON `\u` escapes: twelve bytes a byte (`\u0073\u0000`).
fn utf16_json_escaped(s: &str) -> String {
    s.chars()
        .map(|c| format!("\\u{:04x}\\u0000", c as u32))
        .collect()
}

/// Lines of JSON an agent sends (punctuation every few bytes).
fn json_lines(len: usize) -> String {
    let line = r#"{"path":"src/lib.rs","text":"fn main() {}","digest":"9f86d081884c7d65"}"#;
    line.chars().cycle().take(len).collect()
}

/// Whether a body of `filler` (cut to fit), then `encoded` starting
/// `before` bytes before the end of the first piece, then more filler,
/// streamed in pieces, is stopped.
fn blocked_across_the_cut(
    scanner: &Arc<Scanner>,
    filler: &dyn Fn(usize) -> String,
    encoded: &str,
    before: usize,
) -> bool {
    let data = format!(
        "{} {encoded} {}",
        filler(PIECE - 1 - before),
        filler(20_000)
    );
    assert_eq!(&data[PIECE - before..PIECE - before + 8], &encoded[..8]);
    // As the proxy scans a body's pieces: detached, blocking and redacting.
    [Mode::Block, Mode::Redact].into_iter().all(|mode| {
        let mut stream = StreamScanner::new(scanner.clone(), mode, Depth::Views);
        data.as_bytes().chunks(PIECE).any(|piece| {
            stream.feed(piece);
            let job = stream.detach().expect("nothing away");
            job.run()
                .map(|mut scanned| stream.rejoin(&mut scanned))
                .is_err()
        }) || stream.finish().is_err()
    })
}

/// Encodings wider than twelve bytes a byte, each found whole, then cut at
/// points across their length, beside filler with and without punctuation.
fn assert_blocked_wherever_cut(scanner: &Arc<Scanner>, label: &str, encoded: &str) {
    let whole = format!("{{\"a\":\"{encoded}\"}}");
    assert!(
        scanner.first_deep(whole.as_bytes()).is_some(),
        "{label}: not found whole"
    );
    let spaced = |n: usize| "x ".repeat(n / 2 + 1)[..n].to_string();
    let fillers: [(&str, &dyn Fn(usize) -> String); 2] =
        [("JSON", &json_lines), ("words", &spaced)];
    for (kind, filler) in fillers {
        for before in (1..encoded.len()).step_by(encoded.len() / 9) {
            assert!(
                blocked_across_the_cut(scanner, filler, encoded, before),
                "{label} beside {kind}, cut {before} bytes into it ({} long)",
                encoded.len()
            );
        }
    }
}

#[test]
fn a_token_in_escapes_of_escapes_is_blocked_across_any_cut() {
    let scanner = scanner("s3cr3t-Token_value/with+chars");
    let triple = json_escaped(&json_escaped(&json_escaped(TOKEN)));
    assert_eq!(triple.len(), 216 * TOKEN.len());
    assert!(triple.len() > scanner.deep_window());
    assert_blocked_wherever_cut(&scanner, "escapes of escapes of escapes", &triple);
}

#[test]
fn a_token_split_by_a_long_indented_line_break_is_blocked_across_any_cut() {
    let scanner = scanner("s3cr3t-Token_value/with+chars");
    let split = format!("{}\n{}{}", &TOKEN[..20], " ".repeat(9_000), &TOKEN[20..]);
    assert_blocked_wherever_cut(&scanner, "a line break and indentation", &split);
}

#[test]
fn a_long_secret_in_hex_of_utf16_escapes_is_blocked_across_any_cut() {
    let secret: String = (0..300)
        .map(|i| (b'a' + (i * 11 % 26) as u8) as char)
        .collect();
    let scanner = scanner(&secret);
    let hex: String = utf16_json_escaped(&secret)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex.len(), 24 * secret.len());
    assert!(hex.len() > scanner.deep_window());
    assert_blocked_wherever_cut(&scanner, "hex of UTF-16 escapes", &hex);
}

#[test]
fn the_window_held_back_reaches_past_a_needles_worth_of_punctuation() {
    let scanner = scanner("s3cr3t-Token_value/with+chars");
    let floor = scanner.deep_window() - 1;
    // Text with punctuation: the deep window is enough.
    let json = json_lines(3 * PIECE);
    assert_eq!(scanner.deep_keep(json.as_bytes()), floor);
    // Letters, digits and encoding symbols only: as far as allowed.
    let dense = "QUJD+/09".repeat(3 * PIECE / 8);
    assert_eq!(scanner.deep_keep(dense.as_bytes()), MAX_DEEP_KEEP);
    assert_eq!(scanner.deep_keep(&dense.as_bytes()[..9000]), 9000);
    // Punctuation far back: kept from just before it (a token's worth and one more).
    let mixed = format!("{}{}", ".".repeat(600), "Q".repeat(20_000));
    assert_eq!(scanner.deep_keep(mixed.as_bytes()), 20_000 + 513);
    // A held secret with a NUL: decodings join with NULs, so always the most.
    let nul = Scanner::new(
        &[HeldSecret {
            name: "nul".into(),
            value: "abc\0defghijklmnop".into(),
            placeholder: None,
        }],
        Needles::SecretsAndTokens,
    );
    assert_eq!(nul.deep_keep(json.as_bytes()), MAX_DEEP_KEEP);
}

/// UTF-16 in JSON `\u` escapes, twelve bytes a byte (`\u0073\u0000`),
/// of a secret longer than the token window, is seen whole wherever the
/// pieces are cut.
#[test]
fn a_long_secret_in_utf16_json_escapes_is_blocked_across_any_cut() {
    let secret: String = (0..600)
        .map(|i| (b'A' + (i * 7 % 26) as u8) as char)
        .collect();
    let scanner = scanner(&secret);
    let escaped = utf16_json_escaped(&secret);
    assert_eq!(escaped.len(), 12 * secret.len());
    let data = format!(
        "{{\"a\":\"{}{escaped}{}\"}}",
        "x".repeat(5000),
        "y".repeat(3000)
    );
    for piece in [1000usize, 4096, 7000, 9001, 64 * 1024] {
        let mut stream = StreamScanner::new(scanner.clone(), Mode::Block, Depth::Views);
        let blocked = data
            .as_bytes()
            .chunks(piece)
            .any(|c| stream.push(c).is_err())
            || stream.finish().is_err();
        assert!(blocked, "pieces of {piece}");
    }
}

/// A scan that starts inside a run of escaped backslashes pairs them from
/// there: from the wrong byte, the escape after the run reads as a
/// literal. The window must reach back past the run (it has no
/// punctuation, so it does), not cut it.
#[test]
fn a_token_escaped_after_a_long_run_of_backslashes_is_blocked_across_any_cut() {
    let scanner = scanner("s3cr3t-Token_value/with+chars");
    let run = 10_000;
    let encoded = format!("{}{}", "\\\\".repeat(run / 2), json_escaped(TOKEN));
    let whole = format!("{{\"a\":\"x {encoded} y\"}}");
    assert!(scanner.first_deep(whole.as_bytes()).is_some());
    // Cut inside the escaped token, an odd step apart: the old window's
    // start fell inside the run at both parities.
    for before in (run + 1..encoded.len()).step_by(7) {
        assert!(
            blocked_across_the_cut(&scanner, &json_lines, &encoded, before),
            "cut {before} bytes into {} (a run of {run})",
            encoded.len()
        );
    }
}
