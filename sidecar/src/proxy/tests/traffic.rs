//! Ordinary traffic: interception, HTTP/2, tunnels, injection, DLP,
//! streaming, live rules, malformed requests, the proxy's own endpoints.

use super::*;

#[tokio::test]
async fn https_is_intercepted_with_a_leaf_from_the_bottle_ca_and_verified_upstream() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let got = fx
        .client()
        .fetch(&fx.https("/echo?x=1"), &opts())
        .await
        .unwrap();
    let e = echo(&got);
    assert_eq!(e["token"], "tok-upstream");
    assert_eq!(e["path"], "/echo");
    assert_eq!(e["query"], "x=1");
    let audit = fx.audit();
    let last = audit.last().unwrap();
    assert_eq!(
        (
            last["scheme"].as_str(),
            last["decision"].as_str(),
            last["status"].as_u64()
        ),
        (Some("https"), Some("allow"), Some(200))
    );
    assert!(last["bytes_down"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn each_leg_speaks_what_the_agent_speaks() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let got = fx
        .client()
        .fetch(
            &fx.https("/echo"),
            &FetchOptions {
                http2: true,
                ..opts()
            },
        )
        .await
        .unwrap();
    assert_eq!(got.version, "HTTP/2.0");
    assert_eq!(
        echo(&got)["version"],
        "HTTP/2.0",
        "the upstream leg uses HTTP/2 too"
    );
    let h1 = fx
        .client()
        .fetch(&fx.https("/echo"), &opts())
        .await
        .unwrap();
    assert_eq!(h1.version, "HTTP/1.1");
    assert_eq!(
        echo(&h1)["version"],
        "HTTP/1.1",
        "the upstream leg speaks what the agent speaks"
    );
}

#[tokio::test]
async fn keep_alive_reuses_one_leaf_and_one_connection() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let client = fx.client();
    let mut session = client
        .session(&fx.https("/"), &opts())
        .await
        .unwrap()
        .unwrap();
    for _ in 0..20 {
        assert_eq!(session.request("/", &opts()).await.unwrap().status, 200);
    }
    // A second connection to the same host reuses the cached leaf.
    client.fetch(&fx.https("/"), &opts()).await.unwrap();
    let sup = Client::new(None, b"")
        .unwrap()
        .fetch(&format!("http://{}{STATUS_PATH}", fx.proxy), &opts())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&sup.body).unwrap();
    assert_eq!(v["leaf_certificates_minted"], 1, "{v}");
    assert_eq!(v["allowed"], 21);
}

#[tokio::test]
async fn requests_inside_a_tunnel_are_checked_by_method_and_path() {
    let fx = fixture(|p, _| serde_json::json!([{"host": "localhost", "ports": [p], "methods": ["GET"], "paths": ["/echo"]}]), true).await;
    let c = fx.client();
    assert_eq!(
        c.fetch(&fx.https("/echo"), &opts()).await.unwrap().status,
        200
    );
    let post = c
        .fetch(
            &fx.https("/echo"),
            &FetchOptions {
                method: Some("POST".into()),
                ..opts()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (post.status, post.header("x-bottlebar-deny")),
        (403, Some("method_not_allowed")),
        "{post:?}"
    );
    assert!(post.body.contains("method not allowed"));
    let path = c.fetch(&fx.https("/other"), &opts()).await.unwrap();
    assert_eq!(
        (path.status, path.header("x-bottlebar-deny")),
        (403, Some("path_not_allowed"))
    );
    assert!(path.body.contains("rule #1"), "{}", path.body);
    let audit = fx.audit();
    assert!(audit
        .iter()
        .any(|e| e["reason"] == "method_not_allowed" && e["rule"] == 1 && e["scheme"] == "https"));
}

#[tokio::test]
async fn fronting_by_host_header_or_sni_is_refused() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p), {"host": "127.0.0.1", "ports": [p]}, {"host": "evil.example"}]), true).await;
    let c = fx.client();
    let host = c
        .fetch(
            &fx.https("/"),
            &FetchOptions {
                headers: vec![("Host".into(), "127.0.0.1".into())],
                ..opts()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (host.status, host.header("x-bottlebar-deny")),
        (403, Some("fronting")),
        "{host:?}"
    );
    // TLS for another name than the CONNECT host: the handshake is refused.
    let sni = c
        .fetch(
            &fx.https("/"),
            &FetchOptions {
                sni: Some("evil.example".into()),
                ..opts()
            },
        )
        .await;
    assert!(sni.is_err(), "{sni:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        fx.audit().iter().any(|e| e["reason"] == "fronting"
            && e["detail"].as_str().unwrap().contains("TLS server name")),
        "{:?}",
        fx.audit()
    );
}

#[tokio::test]
async fn credentials_are_injected_and_placeholders_fail_closed_elsewhere() {
    let fx = fixture(
        |p, _| serde_json::json!([{"host": "localhost", "ports": [p], "inject": {"header": "authorization", "secret": "api", "value": "Bearer {secret}"}}, {"host": "127.0.0.1", "ports": [p]}]),
        true,
    )
    .await;
    let c = fx.client();
    let sent = FetchOptions {
        headers: vec![("Authorization".into(), format!("Bearer {PLACEHOLDER}"))],
        ..opts()
    };
    // The upstream saw the real credential (its digest proves it); the
    // echo of it that comes back is masked.
    let real = sha256_hex(format!("Bearer {SECRET}").as_bytes());
    for sent in [sent.clone(), opts()] {
        let got = c.fetch(&fx.https("/echo"), &sent).await.unwrap();
        assert!(!got.body.contains(SECRET), "{}", got.body);
        let e = echo(&got);
        assert_eq!(
            e["header_sha256"]["authorization"],
            serde_json::json!([real])
        );
    }
    // The placeholder to a host whose rule does not inject is refused.
    let other = c
        .fetch(&format!("https://127.0.0.1:{}/echo", fx.https_port), &sent)
        .await
        .unwrap();
    assert_eq!(
        (other.status, other.header("x-bottlebar-deny")),
        (403, Some("placeholder")),
        "{other:?}"
    );
    let audit = fx.audit_text();
    assert!(
        !audit.contains(SECRET),
        "the audit log must never hold a secret"
    );
    assert!(audit.contains("\"injected\":\"api\""));
}

#[tokio::test]
async fn secrets_in_path_query_headers_and_body_are_blocked() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let c = fx.client();
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{{\"k\":\"{SECRET}\"}}"),
    );
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let cases = [
        (format!("/echo/{hex}"), vec![], None, "path"),
        (
            format!(
                "/echo?q={}",
                percent_encoding::utf8_percent_encode(SECRET, percent_encoding::NON_ALPHANUMERIC)
            ),
            vec![],
            None,
            "query",
        ),
        (
            "/echo".to_string(),
            vec![("X-Leak".to_string(), "AKIAIOSFODNN7EXAMPLE".to_string())],
            None,
            "header `x-leak`",
        ),
        (
            "/echo".to_string(),
            vec![],
            Some(format!("payload={b64}")),
            "body",
        ),
    ];
    for (path, headers, body, location) in cases {
        let got = c
            .fetch(
                &fx.https(&path),
                &FetchOptions {
                    method: Some("POST".into()),
                    headers,
                    body: body.map(String::into_bytes),
                    ..opts()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (got.status, got.header("x-bottlebar-deny")),
            (403, Some("secret_detected")),
            "{location}: {got:?}"
        );
        assert!(got.body.contains(location), "{location}: {}", got.body);
        assert!(!got.body.contains(SECRET));
    }
    // A large body with the secret split across many small chunks is still caught.
    let mut big = "x".repeat(100_000);
    big.insert_str(70_000, SECRET);
    let got = c
        .fetch(
            &fx.https("/echo"),
            &FetchOptions {
                method: Some("POST".into()),
                body: Some(big.into_bytes()),
                ..opts()
            },
        )
        .await
        .unwrap();
    assert_eq!(got.status, 403, "{}", got.body);
    let audit = fx.audit_text();
    assert!(!audit.contains(SECRET) && !audit.contains(&hex));
}

#[tokio::test]
async fn redact_rules_mask_secrets_and_forward() {
    let fx = fixture(
        |p, _| serde_json::json!([{"host": "localhost", "ports": [p], "dlp": "redact"}]),
        true,
    )
    .await;
    let body = format!("before {SECRET} after");
    let got = fx
        .client()
        .fetch(
            &fx.https(&format!("/echo?k={SECRET}")),
            &FetchOptions {
                method: Some("POST".into()),
                headers: vec![("X-Key".into(), SECRET.into())],
                body: Some(body.into_bytes()),
                ..opts()
            },
        )
        .await
        .unwrap();
    let e = echo(&got);
    let mask = "*".repeat(SECRET.len());
    assert_eq!(e["body"], format!("before {mask} after"));
    assert_eq!(e["query"], format!("k={mask}"));
    assert_eq!(e["headers"]["x-key"], serde_json::json!([mask]));
    let audit = fx.audit();
    assert_eq!(audit.last().unwrap()["redacted"], 3, "{audit:?}");
}

#[tokio::test]
async fn server_sent_events_stream_through_as_they_arrive() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    for http2 in [false, true] {
        let got = fx
            .client()
            .fetch(
                &fx.https("/sse?n=5&ms=250"),
                &FetchOptions { http2, ..opts() },
            )
            .await
            .unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body.matches("data: event").count(), 5);
        let first = got.chunks.first().unwrap().0;
        let last = got.chunks.last().unwrap().0;
        assert!(got.chunks.len() >= 5, "{:?}", got.chunks);
        assert!(
            first < 200,
            "first event waited for the stream: {:?}",
            got.chunks
        );
        assert!(last >= 900, "events were not spread out: {:?}", got.chunks);
    }
}

#[tokio::test]
async fn an_unverifiable_upstream_is_a_502_with_the_reason() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), false).await;
    let got = fx
        .client()
        .fetch(&fx.https("/echo"), &opts())
        .await
        .unwrap();
    assert_eq!(got.status, 502, "{got:?}");
    assert!(
        got.body.contains("TLS verification of localhost failed")
            && got.body.contains("UnknownIssuer"),
        "{}",
        got.body
    );
    assert_eq!(fx.audit().last().unwrap()["reason"], "upstream_tls_verify");
}

#[tokio::test]
async fn rules_change_live_without_dropping_connections() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let client = fx.client();
    let mut session = client
        .session(&fx.https("/"), &opts())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.request("/echo", &opts()).await.unwrap().status, 200);
    let new =
        serde_json::json!([{"host": "localhost", "ports": [fx.https_port], "paths": ["/allowed"]}]);
    assert_eq!(fx.apply_rules(new), Ok(1));
    let r = session
        .request("/echo", &opts())
        .await
        .expect("the connection survives the change");
    assert_eq!(
        (r.status, r.header("x-bottlebar-deny")),
        (403, Some("path_not_allowed"))
    );
    // Rules that fail validation close egress.
    assert!(fx
        .apply_rules(serde_json::json!([{"host": "Not A Host"}]))
        .is_err());
    let r = session.request("/allowed", &opts()).await.unwrap();
    assert_eq!(r.header("x-bottlebar-deny"), Some("rules_unreadable"));
}

/// Issue 10.4: an agent that could write the sidecar's rules file (through
/// a mount that slipped through) must not change the rules in force.
#[tokio::test]
async fn a_rewritten_rules_file_is_not_read_by_the_running_proxy() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let path = fx.dir.path().join("sidecar.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["rules"] =
        serde_json::json!([{"host": "localhost", "ports": [fx.https_port], "paths": ["/nothing"]}]);
    std::fs::write(&path, cfg.to_string()).unwrap();
    // The old sidecar polled every 500 ms; wait well past that.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = fx
        .client()
        .fetch(&fx.https("/echo"), &opts())
        .await
        .unwrap();
    assert_eq!(got.status, 200, "the rewritten file took effect: {got:?}");
}

#[tokio::test]
async fn plain_http_and_plain_http_inside_a_tunnel_are_checked_too() {
    let fx = fixture(|_, hp| serde_json::json!([localhost(hp)]), true).await;
    let c = fx.client();
    let plain = c
        .fetch(&format!("http://localhost:{}/echo", fx.http_port), &opts())
        .await
        .unwrap();
    assert_eq!(echo(&plain)["token"], "tok-upstream");
    // CONNECT then plain HTTP inside.
    let mut s = TcpStream::connect(fx.proxy).await.unwrap();
    s.write_all(format!("CONNECT localhost:{0} HTTP/1.1\r\nHost: localhost:{0}\r\n\r\nGET /echo HTTP/1.1\r\nHost: localhost:{0}\r\nConnection: close\r\n\r\n", fx.http_port).as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.starts_with("HTTP/1.1 200") && out.contains("tok-upstream"),
        "{out}"
    );
}
