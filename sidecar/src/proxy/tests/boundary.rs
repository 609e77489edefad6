//! Issue 10: the boundary, attacked — credentials in the clear or
//! reflected, encodings, audit integrity, limits, path tricks, private
//! answers.

use super::*;

fn injecting(port: u16) -> serde_json::Value {
    serde_json::json!({"host": "localhost", "ports": [port], "inject": {"header": "authorization", "secret": "api", "value": "Bearer {secret}"}})
}

/// 10.1: a credential never travels in the clear: not in absolute-form
/// `http://`, not inside a tunnel whose first bytes are plain HTTP.
#[tokio::test]
async fn injection_is_refused_over_plain_http_however_it_is_asked_for() {
    let fx = fixture(|_, hp| serde_json::json!([injecting(hp)]), true).await;
    let absolute = raw(
        fx.proxy,
        format!("GET http://localhost:{0}/echo HTTP/1.1\r\nHost: localhost:{0}\r\nConnection: close\r\n\r\n", fx.http_port).as_bytes(),
    )
    .await;
    assert!(absolute.starts_with("HTTP/1.1 403"), "{absolute}");
    assert!(
        absolute.contains("x-bottlebar-deny: injection_needs_tls"),
        "{absolute}"
    );
    assert!(!absolute.contains(SECRET));
    let tunnel = raw(
        fx.proxy,
        format!("CONNECT localhost:{0} HTTP/1.1\r\nHost: localhost:{0}\r\n\r\nGET /echo HTTP/1.1\r\nHost: localhost:{0}\r\nConnection: close\r\n\r\n", fx.http_port).as_bytes(),
    )
    .await;
    assert!(
        tunnel.contains("x-bottlebar-deny: injection_needs_tls"),
        "{tunnel}"
    );
    assert!(
        !tunnel.contains(SECRET) && !tunnel.contains("tok-upstream"),
        "{tunnel}"
    );
    assert!(fx.audit().iter().all(|e| e["injected"].is_null()));
}

/// 10.1: plain HTTP inside a tunnel to port 443 goes upstream over verified
/// TLS (the port decides, not the agent's first byte), so injection works
/// and the credential is never in the clear.
#[tokio::test]
async fn a_plaintext_tunnel_to_port_443_is_carried_over_tls() {
    let listener = match TcpListener::bind("127.0.0.1:443").await {
        Ok(l) => l,
        Err(e) => panic!(
            "this test needs to bind 127.0.0.1:443 (run as root, as the test command does): {e}"
        ),
    };
    let upstream_ca = TestCa::new("Test Internet CA");
    let (cert, key) = upstream_ca.leaf(&["localhost"]);
    tokio::spawn(server::serve_https(
        listener,
        server::tls_config(&cert, &key).unwrap(),
        "tok-443".into(),
    ));
    let fx = fixture(|_, _| serde_json::json!([injecting(443)]), true).await;
    std::fs::write(fx.dir.path().join("extra-roots.pem"), &upstream_ca.cert_pem).unwrap();
    // The fixture trusts its own upstream CA; this upstream has another.
    let proxy = {
        let mut cfg = fx.live.config.clone();
        cfg.extra_roots_file = Some(fx.dir.path().join("extra-roots.pem").display().to_string());
        let live = Arc::new(Live::new(cfg, fx.live.current().secrets.clone(), vec![]).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(live, listener, std::future::pending()));
        addr
    };
    let reply = raw(
        proxy,
        b"CONNECT localhost:443 HTTP/1.1\r\nHost: localhost:443\r\n\r\nGET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.contains("tok-443"), "{reply}");
    let real = sha256_hex(format!("Bearer {SECRET}").as_bytes());
    assert!(
        reply.contains(&real),
        "the upstream got the credential over TLS: {reply}"
    );
    assert!(!reply.contains(SECRET), "{reply}");
}

/// 10.2: an upstream that echoes the request hands nothing back: headers,
/// JSON body, gzip-compressed body, HTTP/1.1 and HTTP/2; TRACE is refused.
#[tokio::test]
async fn reflected_credentials_are_masked_in_every_response() {
    let fx = fixture(|p, _| serde_json::json!([injecting(p)]), true).await;
    let c = fx.client();
    let real = sha256_hex(format!("Bearer {SECRET}").as_bytes());
    for (path, http2) in [
        ("/echo", false),
        ("/echo", true),
        ("/echo?gzip=1", false),
        ("/echo?gzip=1", true),
    ] {
        let got = c
            .fetch(&fx.https(path), &FetchOptions { http2, ..opts() })
            .await
            .unwrap();
        assert_eq!(got.status, 200, "{path}: {got:?}");
        assert!(
            !got.body.contains(SECRET),
            "{path} http2={http2}: {}",
            got.body
        );
        assert!(
            got.headers.iter().all(|(_, v)| !v.contains(SECRET)),
            "{path}: {:?}",
            got.headers
        );
        assert_eq!(
            got.header("x-echo-authorization"),
            Some(&*format!("Bearer {}", "*".repeat(SECRET.len())))
        );
        let e: serde_json::Value = serde_json::from_str(&got.body).unwrap();
        assert_eq!(
            e["header_sha256"]["authorization"],
            serde_json::json!([real]),
            "{path}"
        );
    }
    let trace = c
        .fetch(
            &fx.https("/echo"),
            &FetchOptions {
                method: Some("TRACE".into()),
                ..opts()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (trace.status, trace.header("x-bottlebar-deny")),
        (403, Some("trace_refused"))
    );
    let audit = fx.audit_text();
    assert!(audit.contains("\"redacted_in_response\""), "{audit}");
}

/// 10.8: every encoding the attack used to slip a secret past the scanner.
#[tokio::test]
async fn secrets_in_any_part_of_the_request_and_any_encoding_are_caught() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use std::io::Write;
    let fx = fixture(
        |p, _| serde_json::json!([localhost(p), {"host": "*.localhost", "ports": [p]}]),
        true,
    )
    .await;
    let c = fx.client();
    let mixed_hex = crate::dlp::mixed_case_hex(SECRET);
    let partly = format!("%{:02x}{}", SECRET.as_bytes()[0], &SECRET[1..]);
    let b64 = STANDARD.encode(format!("{{\"key\":\"{SECRET}\"}}"));
    let wrap = |w: usize| -> String {
        b64.as_bytes()
            .chunks(w)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let json_u: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let token_b64 = STANDARD.encode("aws=AKIAIOSFODNN7EXAMPLE");
    let (first, second) = SECRET.split_at(SECRET.len() / 2);
    let post = |headers: Vec<(String, String)>, body: Vec<u8>| FetchOptions {
        method: Some("POST".into()),
        headers,
        body: Some(body),
        ..opts()
    };
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(format!("x={SECRET}").as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let df = {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(format!("x={SECRET}").as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let br = {
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        w.write_all(format!("x={SECRET}").as_bytes()).unwrap();
        drop(w);
        out
    };
    let enc = |e: &str| vec![("Content-Encoding".to_string(), e.to_string())];
    let cases: Vec<(&str, String, FetchOptions)> = vec![
        (
            "mixed-case hex in the path",
            format!("/echo/{mixed_hex}"),
            opts(),
        ),
        (
            "partly percent-encoded query",
            format!("/echo?k={partly}"),
            opts(),
        ),
        (
            "header name",
            "/echo".into(),
            FetchOptions {
                headers: vec![(format!("x-{}", mixed_hex.to_lowercase()), "1".into())],
                ..opts()
            },
        ),
        (
            "split across two headers",
            "/echo".into(),
            FetchOptions {
                headers: vec![("x-a".into(), first.into()), ("x-b".into(), second.into())],
                ..opts()
            },
        ),
        (
            "token inside base64 header",
            "/echo".into(),
            FetchOptions {
                headers: vec![("x-t".into(), token_b64.clone())],
                ..opts()
            },
        ),
        (
            "base64 wrapped at 9 columns",
            "/echo".into(),
            post(vec![], wrap(9).into_bytes()),
        ),
        (
            "base64 wrapped at 76 columns",
            "/echo".into(),
            post(vec![], wrap(76).into_bytes()),
        ),
        (
            "JSON \\u escapes",
            "/echo".into(),
            post(vec![], format!("{{\"k\":\"{json_u}\"}}").into_bytes()),
        ),
        (
            "token inside base64 body",
            "/echo".into(),
            post(vec![], format!("data={token_b64}").into_bytes()),
        ),
        ("gzip body", "/echo".into(), post(enc("gzip"), gz)),
        ("deflate body", "/echo".into(), post(enc("deflate"), df)),
        ("br body", "/echo".into(), post(enc("br"), br)),
    ];
    for (what, path, o) in cases {
        let got = c.fetch(&fx.https(&path), &o).await.unwrap();
        assert_eq!(
            (got.status, got.header("x-bottlebar-deny")),
            (403, Some("secret_detected")),
            "{what}: {got:?}"
        );
    }
    // An encoding the proxy cannot undo is refused, not sent blind.
    let got = c
        .fetch(&fx.https("/echo"), &post(enc("zstd"), b"whatever".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        (got.status, got.header("x-bottlebar-deny")),
        (403, Some("uninspectable")),
        "{got:?}"
    );
    // A secret in the method, or as a label of an allowed wildcard, is refused
    // before any name is looked up; the audit log keeps it masked.
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let label = &hex[..60];
    let reply = raw(
        fx.proxy,
        format!(
            "CONNECT {label}.{}.localhost:{} HTTP/1.1\r\n\r\n",
            &hex[60..],
            fx.https_port
        )
        .as_bytes(),
    )
    .await;
    assert!(
        reply.contains("x-bottlebar-deny: secret_detected"),
        "{reply}"
    );
    let reply = raw(fx.proxy, format!("{hex} http://localhost:{0}/ HTTP/1.1\r\nHost: localhost:{0}\r\nConnection: close\r\n\r\n", fx.http_port).as_bytes()).await;
    assert!(reply.contains("secret_detected"), "{reply}");
    // A clean compressed body is decoded and sent on: what was scanned is what leaves.
    let clean = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"hello upstream").unwrap();
        e.finish().unwrap()
    };
    let e = echo(
        &c.fetch(&fx.https("/echo"), &post(enc("gzip"), clean))
            .await
            .unwrap(),
    );
    assert_eq!(e["body"], "hello upstream");
    let audit = fx.audit_text();
    assert!(
        !audit.contains(SECRET) && !audit.contains(&hex) && !audit.contains(&mixed_hex),
        "{audit}"
    );
}

/// 10.9: a body stopped mid-way is audited as refused, even when the
/// upstream answered before reading it.
#[tokio::test]
async fn a_body_blocked_after_the_upstream_answered_is_audited_as_denied() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let mut big = "x".repeat(60_000);
    big.insert_str(30_000, SECRET);
    let _ = fx
        .client()
        .fetch(
            &fx.https("/early"),
            &FetchOptions {
                method: Some("POST".into()),
                body: Some(big.into_bytes()),
                ..opts()
            },
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audit = fx.audit();
    let last = audit
        .iter()
        .rev()
        .find(|e| e["path"] == "/early")
        .expect("audited");
    assert_eq!(
        (last["decision"].as_str(), last["reason"].as_str()),
        (Some("deny"), Some("secret_detected")),
        "{last}"
    );
}

/// 10.10: half-open tunnels count in the limit, stalled handshakes time out,
/// and the proxy keeps serving under the flood.
#[tokio::test]
async fn stalled_tunnels_cannot_starve_the_proxy() {
    let limits = Limits {
        max_connections: 32,
        handshake_timeout: Duration::from_millis(1500),
        header_timeout: Duration::from_secs(5),
    };
    let fx = fixture_with(|p, _| serde_json::json!([localhost(p)]), true, limits).await;
    let mut stalled = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(fx.proxy).await.unwrap();
        s.write_all(format!("CONNECT localhost:{} HTTP/1.1\r\n\r\n\x16", fx.https_port).as_bytes())
            .await
            .unwrap();
        stalled.push(s);
    }
    // Real requests still get through, promptly.
    for _ in 0..3 {
        let t = Instant::now();
        let got = tokio::time::timeout(
            Duration::from_secs(3),
            fx.client().fetch(&fx.https("/echo"), &opts()),
        )
        .await
        .expect("served under the flood")
        .unwrap();
        assert_eq!(got.status, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    // Every stalled tunnel is closed: evicted, or timed out.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for (i, mut s) in stalled.into_iter().enumerate() {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_millis(500), s.read_to_end(&mut buf)).await;
        assert!(matches!(r, Ok(Ok(_)) | Ok(Err(_))), "tunnel {i} still open");
    }
}

/// 10.11: path prefixes end at a segment boundary; `;` and double encoding
/// cannot climb out.
#[tokio::test]
async fn path_rules_cannot_be_walked_around() {
    let fx = fixture(
        |p, _| serde_json::json!([{"host": "localhost", "ports": [p], "paths": ["/echo"]}]),
        true,
    )
    .await;
    let c = fx.client();
    assert_eq!(
        c.fetch(&fx.https("/echo/x"), &opts()).await.unwrap().status,
        200
    );
    for path in [
        "/echo-admin",
        "/echo.bak",
        "/echo/..;/admin",
        "/echo/.;/admin",
        "/echo/%252e%252e/admin",
    ] {
        let got = c.fetch(&fx.https(path), &opts()).await.unwrap();
        assert_eq!(
            (got.status, got.header("x-bottlebar-deny")),
            (403, Some("path_not_allowed")),
            "{path}"
        );
    }
}

/// 10.12: absolute-form `https://` (busybox wget's way) is served, with TLS
/// originated and verified by the proxy.
#[tokio::test]
async fn absolute_form_https_is_served_with_verified_tls() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let reply = raw(
        fx.proxy,
        format!("GET https://localhost:{0}/echo HTTP/1.1\r\nHost: localhost:{0}\r\nConnection: close\r\n\r\n", fx.https_port).as_bytes(),
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.contains("tok-upstream"),
        "{reply}"
    );
    let last = fx.audit().pop().unwrap();
    assert_eq!(
        (last["scheme"].as_str(), last["decision"].as_str()),
        (Some("https"), Some("allow"))
    );
}

/// 10.13: an allowed name that resolves to loopback (or any private or
/// link-local address) is refused unless pinned or allowed by range.
#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let mut next = fx.live.config.live_rules(fx.live.current().secrets.clone());
    next.hosts.clear(); // `localhost` now goes to DNS (/etc/hosts): 127.0.0.1
    fx.live.apply(next.clone()).unwrap();
    let got = fx
        .client()
        .fetch(&fx.https("/echo"), &opts())
        .await
        .unwrap();
    assert_eq!(
        (got.status, got.header("x-bottlebar-deny")),
        (403, Some("private_address")),
        "{got:?}"
    );
    assert!(got.body.contains("127.0.0.1 (loopback)"), "{}", got.body);
    next.allow_private_ranges = vec!["127.0.0.0/8".into()];
    fx.live.apply(next).unwrap();
    assert_eq!(
        fx.client()
            .fetch(&fx.https("/echo"), &opts())
            .await
            .unwrap()
            .status,
        200
    );
}

/// busybox wget sends its request and shuts its write side: the answer must still come.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let mut s = TcpStream::connect(fx.proxy).await.unwrap();
    s.write_all(format!("GET https://localhost:{}/echo HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n", fx.https_port).as_bytes()).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("tok-upstream"),
        "{out}"
    );
}
