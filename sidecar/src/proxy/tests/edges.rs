//! The edges of the request path: malformed requests, refusals outside
//! tunnels, and the proxy's own endpoints.

use super::*;

#[tokio::test]
async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET http://localhost/ HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"GET ftp://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let reply = raw(fx.proxy, garbage).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{garbage:?}: {reply}");
    }
    // Every one of them is in the audit log (issue 10.12).
    let bad = fx
        .audit()
        .iter()
        .filter(|e| e["reason"] == "bad_request")
        .count();
    assert_eq!(bad, 4, "{:?}", fx.audit());
    let huge = format!(
        "GET http://localhost/ HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let reply = raw(fx.proxy, huge.as_bytes()).await;
    assert!(
        reply.starts_with("HTTP/1.1 431"),
        "{}",
        &reply[..reply.len().min(200)]
    );
    // Garbage inside an intercepted tunnel is answered there, too.
    let reply = raw(
        fx.proxy,
        format!(
            "CONNECT localhost:{} HTTP/1.1\r\n\r\nNOT HTTP AT ALL\r\n\r\n",
            fx.https_port
        )
        .as_bytes(),
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.contains("HTTP/1.1 400"),
        "{reply}"
    );
    assert_eq!(
        fx.client()
            .fetch(&fx.https("/"), &opts())
            .await
            .unwrap()
            .status,
        200
    );
}

#[tokio::test]
async fn denials_outside_tunnels_say_why() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let cases = [
        ("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n".to_string(), "host_not_allowed", "host not allowed"),
        (format!("GET http://localhost:{0}/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n", fx.https_port), "fronting", "domain fronting"),
        (format!("CONNECT 127.0.0.1:{} HTTP/1.1\r\n\r\n", fx.https_port), "ip_literal", "IP literal"),
        ("CONNECT localhost:22 HTTP/1.1\r\n\r\n".to_string(), "port_not_allowed", "port not allowed"),
        ("GET http://2130706433/ HTTP/1.1\r\nHost: 2130706433\r\nConnection: close\r\n\r\n".to_string(), "ip_literal", "IP literal"),
        ("CONNECT dns.google:443 HTTP/1.1\r\n\r\n".to_string(), "doh", "DoH"),
    ];
    for (req, code, text) in cases {
        let reply = raw(fx.proxy, req.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{req}: {reply}");
        assert!(
            reply.contains(&format!("x-bottlebar-deny: {code}")),
            "{req}: {reply}"
        );
        assert!(reply.contains(text), "{req}: {reply}");
    }
    assert_eq!(
        fx.audit()
            .iter()
            .filter(|e| e["decision"] == "deny")
            .count(),
        6
    );
}

#[tokio::test]
async fn own_endpoints_answer_in_origin_and_absolute_form() {
    let fx = fixture(|_, _| serde_json::json!([]), true).await;
    let health = raw(
        fx.proxy,
        format!("GET {HEALTH_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("\"status\":\"ok\""),
        "{health}"
    );
    let sup = raw(
        fx.proxy,
        format!(
            "GET http://{0}{STATUS_PATH} HTTP/1.1\r\nHost: {0}\r\nConnection: close\r\n\r\n",
            fx.proxy
        )
        .as_bytes(),
    )
    .await;
    assert!(
        sup.starts_with("HTTP/1.1 200")
            && sup.contains("\"bottle\":\"unit\"")
            && !sup.contains(SECRET),
        "{sup}"
    );
    let other = raw(
        fx.proxy,
        b"GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(other.starts_with("HTTP/1.1 400"), "{other}");
}
