//! The proxy on loopback, end to end: a test upstream (HTTP and HTTPS, its own
//! test CA), the proxy with a bottle CA, and a client that trusts only the
//! bottle CA, as an agent does. Loopback only.

use super::*;
use bottlebar_e2e::testkit::client::{Client, FetchOptions, Fetched};
use bottlebar_e2e::testkit::pki::TestCa;
use bottlebar_e2e::testkit::server;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "sk-test-injected-credential-0123456789";
const PLACEHOLDER: &str = "bottlebar-placeholder-api-5f2a";

struct Fixture {
    dir: tempfile::TempDir,
    proxy: SocketAddr,
    https_port: u16,
    http_port: u16,
    bottle_ca: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Fixture {
    fn client(&self) -> Client {
        Client::new(Some(self.proxy.to_string()), self.bottle_ca.as_bytes()).unwrap()
    }

    fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("egress.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn write_rules(&self, rules: serde_json::Value) {
        let path = self.dir.path().join("sidecar.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        cfg["rules"] = rules;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, cfg.to_string()).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }
}

/// Starts an upstream and a proxy whose rules are `rules` (the JSON array;
/// `PORT`/`HTTPPORT` in hosts' ports are filled in by the caller).
async fn fixture(
    rules: impl FnOnce(u16, u16) -> serde_json::Value,
    trust_upstream: bool,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let upstream_ca = TestCa::new("Test Internet CA");
    let (cert, key) = upstream_ca.leaf(&["localhost", "127.0.0.1"]);
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (https_port, http_port) = (
        https.local_addr().unwrap().port(),
        http.local_addr().unwrap().port(),
    );
    tokio::spawn(server::serve_https(
        https,
        server::tls_config(&cert, &key).unwrap(),
        "tok-upstream".into(),
    ));
    tokio::spawn(server::serve_http(http, "tok-upstream".into()));

    let bottle_ca = TestCa::new("Bottlebar CA for bottle unit");
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(p("ca.crt"), &bottle_ca.cert_pem).unwrap();
    std::fs::write(p("ca.key"), &bottle_ca.key_pem).unwrap();
    std::fs::write(p("extra-roots.pem"), &upstream_ca.cert_pem).unwrap();
    std::fs::write(p("secrets.json"), serde_json::json!({"secrets": [{"name": "api", "value": SECRET, "placeholder": PLACEHOLDER}]}).to_string()).unwrap();
    let mut cfg = serde_json::json!({
        "bottle": "unit", "listen": "127.0.0.1:0", "rules": rules(https_port, http_port),
        "audit_file": p("egress.jsonl"), "ca_cert_file": p("ca.crt"), "ca_key_file": p("ca.key"),
        "secrets_file": p("secrets.json"),
    });
    if trust_upstream {
        cfg["extra_roots_file"] = p("extra-roots.pem").into();
    }
    std::fs::write(p("sidecar.json"), cfg.to_string()).unwrap();
    let live = Arc::new(Live::load(&dir.path().join("sidecar.json")).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(live, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap()
    });
    Fixture {
        dir,
        proxy,
        https_port,
        http_port,
        bottle_ca: bottle_ca.cert_pem,
        _stop: tx,
    }
}

fn localhost(port: u16) -> serde_json::Value {
    serde_json::json!({"host": "localhost", "ports": [port]})
}

fn echo(f: &Fetched) -> serde_json::Value {
    assert_eq!(f.status, 200, "{f:?}");
    serde_json::from_str(&f.body).unwrap_or_else(|e| panic!("{e}: {}", f.body))
}

fn opts() -> FetchOptions {
    FetchOptions::default()
}

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
async fn http2_is_used_on_both_sides_when_offered() {
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
        .fetch(&format!("http://{}{SUPERVISE_PATH}", fx.proxy), &opts())
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
    let e = echo(&c.fetch(&fx.https("/echo"), &sent).await.unwrap());
    assert_eq!(
        e["headers"]["authorization"],
        serde_json::json!([format!("Bearer {SECRET}")])
    );
    // Injected even when the agent sent nothing.
    let e = echo(&c.fetch(&fx.https("/echo"), &opts()).await.unwrap());
    assert_eq!(
        e["headers"]["authorization"],
        serde_json::json!([format!("Bearer {SECRET}")])
    );
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
    let audit = std::fs::read_to_string(fx.dir.path().join("egress.jsonl")).unwrap();
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
    let audit = std::fs::read_to_string(fx.dir.path().join("egress.jsonl")).unwrap();
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
async fn rules_reload_live_without_dropping_connections() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    let client = fx.client();
    let mut session = client
        .session(&fx.https("/"), &opts())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.request("/echo", &opts()).await.unwrap().status, 200);
    fx.write_rules(
        serde_json::json!([{"host": "localhost", "ports": [fx.https_port], "paths": ["/allowed"]}]),
    );
    let mut reloaded = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = session
            .request("/echo", &opts())
            .await
            .expect("the connection survives the reload");
        if r.status == 403 {
            assert_eq!(r.header("x-bottlebar-deny"), Some("path_not_allowed"));
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the new rules never took effect");
    // An unreadable rules file closes egress.
    std::fs::write(fx.dir.path().join("sidecar.json"), "{ broken").unwrap();
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = session.request("/allowed", &opts()).await.unwrap();
        if r.header("x-bottlebar-deny") == Some("rules_unreadable") {
            closed = true;
            break;
        }
    }
    assert!(closed, "a broken rules file must close egress");
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

#[tokio::test]
async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
    let fx = fixture(|p, _| serde_json::json!([localhost(p)]), true).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET http://localhost/ HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"GET https://localhost/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let reply = raw(fx.proxy, garbage).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{garbage:?}: {reply}");
    }
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
            "GET http://{0}{SUPERVISE_PATH} HTTP/1.1\r\nHost: {0}\r\nConnection: close\r\n\r\n",
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

/// Sends raw bytes and reads until the peer closes or 3 s pass.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn host_header_parsing() {
    assert_eq!(host_of_header("Example.com:8080"), "example.com");
    assert_eq!(host_of_header("example.com"), "example.com");
    assert_eq!(host_of_header("[::1]:80"), "::1");
}

#[test]
fn hop_by_hop_headers_are_removed() {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONNECTION,
        HeaderValue::from_static("x-secret, keep-alive"),
    );
    h.insert("x-secret", HeaderValue::from_static("1"));
    h.insert(
        header::PROXY_AUTHORIZATION,
        HeaderValue::from_static("Basic x"),
    );
    h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
    h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    strip_hop_by_hop(&mut h);
    assert_eq!(h.len(), 1);
    assert!(h.contains_key(header::ACCEPT));
}
