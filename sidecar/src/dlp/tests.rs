use super::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const SECRET: &str = "s3cr3t-Token_value/with+chars";

fn scanner() -> Scanner {
    Scanner::new(
        &[HeldSecret {
            name: "api".into(),
            value: SECRET.into(),
            placeholder: None,
        }],
        Needles::SecretsAndTokens,
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn finds_a_held_secret_in_every_encoding_and_alignment() {
    let s = scanner();
    let mut forms = vec![
        SECRET.to_string(),
        hex(SECRET.as_bytes()),
        hex(SECRET.as_bytes()).to_uppercase(),
        percent_encoding::percent_encode(SECRET.as_bytes(), percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        SECRET.bytes().map(|b| format!("%{b:02x}")).collect(),
    ];
    // The secret inside a longer base64 payload, at each alignment.
    for prefix in ["", "a", "ab", "abc", "abcd"] {
        let payload = format!("{prefix}{{\"key\":\"{SECRET}\"}}");
        forms.push(STANDARD.encode(&payload));
        forms.push(URL_SAFE_NO_PAD.encode(&payload));
    }
    for form in forms {
        let data = format!("junk before {form} junk after");
        let f = s
            .first(data.as_bytes())
            .unwrap_or_else(|| panic!("missed {form}"));
        assert!(f.kind.contains("held secret `api`"), "{form}: {f:?}");
    }
    assert!(s.first(b"nothing to see here, just text").is_none());
}

/// One token of each format, and a word its kind is named by.
const TOKEN_SAMPLES: &[(&str, &str)] = &[
    ("AKIAIOSFODNN7EXAMPLE", "AWS"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "GitHub"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "GitHub"),
    ("sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "Anthropic"),
    ("sk-proj-abcdefghijklmnopqrstuvwxyz012345", "OpenAI"),
    ("xoxb-123456789012-abcdefghij", "Slack"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "Google"),
    ("-----BEGIN RSA PRIVATE KEY-----", "PEM"),
    ("-----BEGIN PRIVATE KEY-----", "PEM"),
];

#[test]
fn finds_token_formats() {
    let s = Scanner::new(&[], Needles::SecretsAndTokens);
    for (token, kind) in TOKEN_SAMPLES {
        let data = format!("x={token}&y=1");
        let f = s
            .first(data.as_bytes())
            .unwrap_or_else(|| panic!("missed {token}"));
        assert!(f.kind.contains(kind), "{token}: {f:?}");
    }
    assert!(s.first(b"-----BEGIN CERTIFICATE-----").is_none());
    assert!(s.first(b"AKIA is a prefix; sk-short").is_none());
}

#[test]
fn the_gates_let_through_every_token_and_every_encoding_of_every_secret_in_any_case() {
    // Clean data is ruled out by the token prefixes and one expression a
    // held secret: nothing the needles or the formats find may be. Several
    // secrets (API keys beside a held token), so that a gate left out or
    // built from the wrong secret's needles shows.
    let values = [
        SECRET,
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdef",
        "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
        "p@ss w0rd%with\\escapes",
    ];
    let held = held_secrets(&values);
    let s = Scanner::new(&held, Needles::SecretsAndTokens);
    assert_eq!(s.gates.secret_expressions(), values.len(), "one a secret");
    for (token, kind) in TOKEN_SAMPLES {
        let data = format!("x={token}&y=1");
        let f = s.first(data.as_bytes());
        assert!(f.is_some_and(|f| f.kind.contains(kind)), "{token}");
    }
    for value in values {
        for (needle, label) in encodings(value.as_bytes()) {
            for form in [needle.to_lowercase(), needle.to_uppercase()] {
                let data = format!("junk {form} junk");
                assert!(s.is_match(data.as_bytes()), "{value} {label}: {form}");
                assert!(s.first(data.as_bytes()).is_some(), "{value} {label}");
            }
        }
    }
    assert!(!s.is_match(b"nothing to see here, just text"));
    let answers = Scanner::new(&held, Needles::SecretsOnly);
    assert!(!answers.is_match(TOKEN_SAMPLES[0].0.as_bytes()));
    assert!(answers.is_match(values[3].as_bytes()));
}

#[test]
fn redaction_keeps_length_and_masks_only_the_secret() {
    let s = scanner();
    let (out, changed) = s.redact_str(&format!("a={SECRET}&b=2"));
    assert!(changed);
    assert_eq!(out, format!("a={}&b=2", "*".repeat(SECRET.len())));
}

#[test]
fn mixed_case_hex_and_percent_are_direct_matches() {
    let s = scanner();
    let mixed = super::mixed_case_hex(SECRET);
    let pct: String = SECRET
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            if i % 3 == 0 {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect();
    for form in [mixed, pct] {
        let mut data = format!("x={form}&y").into_bytes();
        assert!(s.first(&data).is_some(), "{form}");
        assert_eq!(s.redact(&mut data), 1);
        assert!(!String::from_utf8(data).unwrap().contains(&form));
    }
}

/// Every encoding the issue found leaking is caught by the deep scan.
#[test]
fn deep_scan_sees_through_layered_encodings() {
    let s = scanner();
    let b64 = STANDARD.encode(format!("{{\"k\":\"{SECRET}\"}}"));
    let mime: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    let col9: String = b64
        .as_bytes()
        .chunks(9)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let json_u: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let partly = format!("%{:02x}{}", SECRET.as_bytes()[0], &SECRET[1..]);
    let token_b64 = STANDARD.encode("key=AKIAIOSFODNN7EXAMPLE");
    let token_hex: String = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    for (form, want) in [
        (mime, "held secret"),
        (col9, "held secret"),
        (json_u, "held secret"),
        (partly, "held secret"),
        (token_b64, "AWS"),
        (token_hex, "GitHub"),
    ] {
        assert!(
            s.first(form.as_bytes()).is_none() || want == "held secret",
            "{form}"
        );
        let f = s
            .first_deep(format!("{{\"data\": \"{form}\"}}").as_bytes())
            .unwrap_or_else(|| panic!("missed {form}"));
        assert!(f.kind.contains(want), "{form}: {f:?}");
    }
    assert!(s
        .first_deep(b"{\"data\": \"a perfectly ordinary sentence\"}")
        .is_none());
}

#[test]
fn a_secrets_only_scanner_ignores_token_formats() {
    let s = Scanner::new(
        &[HeldSecret {
            name: "api".into(),
            value: SECRET.into(),
            placeholder: None,
        }],
        Needles::SecretsOnly,
    );
    assert!(s.first(b"AKIAIOSFODNN7EXAMPLE").is_none());
    assert!(s.first(SECRET.as_bytes()).is_some());
    assert!(Scanner::new(&[], Needles::SecretsOnly).is_empty());
}

/// A base64 or hex run is decoded wherever the encoded payload starts in
/// it and however it ends: alphanumerics glued before it (which shift its
/// 4-byte groups), a tail whose last symbol has stray low bits, the two
/// base64 alphabets mixed in one run, a hex payload at an odd offset.
/// Each of these once hid a token (or a layered secret) from the views.
#[test]
fn runs_are_decoded_at_every_alignment_and_however_they_end() {
    let s = scanner();
    let aws = "key=AKIAIOSFODNN7EXAMPLE";
    let json_u: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let layered = format!("{{\"k\":\"{json_u}\"}}");
    let b64 = |plain: &[u8]| STANDARD.encode(plain).trim_end_matches('=').to_string();
    let mut forms: Vec<(String, &str)> = Vec::new();
    for (plain, want) in [(aws.as_bytes(), "AWS"), (layered.as_bytes(), "held secret")] {
        let enc = b64(plain);
        for glued in ["x", "xy", "xyz", "0", "Zz9"] {
            forms.push((format!("{glued}{enc}"), want));
        }
        for tail in ["BB", "BBB", "B", "-x", "_AA", "9z"] {
            forms.push((format!("{enc}{tail}"), want));
        }
    }
    // `+` and `/` from the standard alphabet, then a url-safe byte (and the
    // other way round).
    let std_bytes = b64(&[b"\xfb\xff".as_slice(), aws.as_bytes()].concat());
    assert!(std_bytes.contains('+') && std_bytes.contains('/'));
    forms.push((format!("{std_bytes}-"), "AWS"));
    forms.push((format!("{std_bytes}_x"), "AWS"));
    forms.push((format!("{}+", std_bytes.replace('+', "-")), "AWS"));
    let ghp = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    for glued in ["a", "abc", "0"] {
        forms.push((format!("{glued}{}", hex(ghp.as_bytes())), "GitHub"));
        forms.push((
            format!("{glued}{}", hex(ghp.as_bytes()).to_uppercase()),
            "GitHub",
        ));
    }
    for (form, want) in forms {
        for data in [format!("{{\"data\": \"{form}\"}}"), format!("v={form}&x=1")] {
            let f = s
                .first_deep(data.as_bytes())
                .unwrap_or_else(|| panic!("missed {form} in {data}"));
            assert!(f.kind.contains(want), "{form}: {f:?}");
        }
    }
}

#[test]
fn filler_that_inflates_the_views_does_not_hide_a_nested_payload() {
    // Base64 filler (whose decoding is base64 again) fills the stream's
    // whole window before a token base64-encoded twice, or hex over base64.
    let s = scanner();
    let token = "key=AKIAIOSFODNN7EXAMPLE";
    let twice = STANDARD.encode(STANDARD.encode(token));
    let hex_b64 = hex(STANDARD.encode(token).as_bytes());
    for pad in [0usize, 1000, 30_000, 60_000] {
        let b64_filler: String = "QUJD".chars().cycle().take(pad).collect();
        let hex_filler: String = "0123456789abcdef".chars().cycle().take(pad).collect();
        for data in [
            format!("{b64_filler} {twice}"),
            format!("{hex_filler}{hex_b64}"),
        ] {
            let f = s
                .first_deep(data.as_bytes())
                .unwrap_or_else(|| panic!("missed after {pad} bytes of filler"));
            assert!(f.kind.contains("AWS"), "{f:?}");
        }
    }
}

/// Whitespace is dropped only around line breaks: words on one line are
/// not glued into token look-alikes, while wrapped and indented encodings
/// still read whole.
#[test]
fn words_are_not_glued_into_tokens_but_wrapped_lines_are_joined() {
    let s = scanner();
    for clean in [
        "{\"html\":\"<div class=\\\"sk-folding-cube sk-cube1 sk-cube2\\\"></div>\\n\"}",
        "{\"t\":\"sk-learn is great for all the models we train\\n\"}",
        "import x\n# sk-learn is great for all the models we train\n",
        "locale: sk-SK  default for the whole installation\n",
    ] {
        assert_eq!(s.first_deep(clean.as_bytes()), None, "{clean}");
    }
    let token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    let b64 = STANDARD.encode(format!("token={token}"));
    let indented: String = b64
        .as_bytes()
        .chunks(16)
        .map(|c| format!("    {}", std::str::from_utf8(c).unwrap()))
        .collect::<Vec<_>>()
        .join(" \n");
    for wrapped in [
        format!("key: |\n{indented}\n"),
        format!("{{\"k\":\"{}\\n    {}\"}}", &token[..20], &token[20..]),
        format!("{}\r\n\t{}", &token[..20], &token[20..]),
    ] {
        let f = s
            .first_deep(wrapped.as_bytes())
            .unwrap_or_else(|| panic!("missed {wrapped}"));
        assert!(f.kind.contains("GitHub"), "{wrapped}: {f:?}");
    }
}

#[test]
fn finds_a_secret_or_token_re_encoded_as_utf16() {
    let le = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let be = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_be_bytes).collect() };
    // The combined peeling (SECRET), the separate one (a secret with a `%`),
    // and a token format.
    let odd = "pa%ss-word-0123456789";
    let with_odd = Scanner::new(
        &[HeldSecret {
            name: "odd".into(),
            value: odd.into(),
            placeholder: None,
        }],
        Needles::SecretsAndTokens,
    );
    for (s, value, kind) in [
        (scanner(), SECRET, "held secret `api`"),
        (with_odd, odd, "held secret `odd`"),
        (scanner(), "AKIAIOSFODNN7EXAMPLE", "AWS"),
    ] {
        let payload = format!("key={value}");
        let units_json: String = payload.chars().map(|c| format!("{c}\\u0000")).collect();
        let units_percent: String = le(&payload).iter().map(|b| format!("%{b:02x}")).collect();
        let forms: Vec<(&str, Vec<u8>)> = vec![
            ("raw, little endian", le(&payload)),
            ("raw, big endian", be(&payload)),
            ("base64", STANDARD.encode(le(&payload)).into_bytes()),
            (
                "base64 at another alignment",
                STANDARD
                    .encode([b"x".as_slice(), &le(&payload)].concat())
                    .into_bytes(),
            ),
            (
                "base64, big endian",
                STANDARD.encode(be(&payload)).into_bytes(),
            ),
            ("hex", hex(&le(&payload)).into_bytes()),
            (
                "JSON escapes",
                format!("{{\"k\":\"{units_json}\"}}").into_bytes(),
            ),
            ("percent escapes", units_percent.into_bytes()),
        ];
        for (how, form) in forms {
            let data = [b"powershell -enc ".as_slice(), &form, b" end"].concat();
            let f = s
                .first_deep(&data)
                .unwrap_or_else(|| panic!("{value} as UTF-16, {how}: missed"));
            assert!(f.kind.contains(kind), "{value} as UTF-16, {how}: {f:?}");
        }
    }
}

/// A secret base64-encoded a few bytes at a time, each piece padded and the
/// pieces glued (`czM=Y3I=…`): no run between the padding is long enough
/// to decode, so each piece is decoded where its padding says it ends, and
/// the pieces' bytes are joined.
#[test]
fn base64_cut_into_padded_pieces_is_joined_again() {
    let s = scanner();
    let token = "key=AKIAIOSFODNN7EXAMPLE";
    for (secret, want) in [(SECRET, "held secret"), (token, "AWS")] {
        for piece in [1, 2, 4, 5, 7] {
            let pieces: String = secret
                .as_bytes()
                .chunks(piece)
                .map(|c| STANDARD.encode(c))
                .collect();
            // Bare, glued after a word (which the first piece's padding
            // tells apart), in JSON, and URL-safe.
            for data in [
                pieces.clone(),
                format!("token{pieces}"),
                format!("{{\"data\": \"{pieces}\"}}"),
                pieces.replace('+', "-").replace('/', "_"),
            ] {
                let f = s
                    .first_deep(data.as_bytes())
                    .unwrap_or_else(|| panic!("missed {piece}-byte pieces in {data}"));
                assert!(f.kind.contains(want), "{data}: {f:?}");
            }
        }
    }
    // Padding in ordinary text, and one padded payload, find nothing new.
    for clean in [
        "a=b&c==d&e=f",
        "x == y; z = w;",
        "aGVsbG8=d29ybGQ=",
        "QUJD=REVG==R0hJ=",
    ] {
        assert_eq!(s.first_deep(clean.as_bytes()), None, "{clean}");
    }
}
