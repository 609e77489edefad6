//! The proxy on loopback, end to end: a test upstream (HTTP and HTTPS, its own
//! test CA), the proxy with a bottle CA, and a client that trusts only the
//! bottle CA, as an agent does. Loopback only.

use super::*;
use bottlebar_e2e::testkit::client::{Client, FetchOptions, Fetched};
use bottlebar_e2e::testkit::pki::TestCa;
use bottlebar_e2e::testkit::server;
use bottlebar_e2e::testkit::server::sha256_hex;
use bottlebar_policy::{HEALTH_PATH, SUPERVISE_PATH};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "sk-test-injected-credential-0123456789";
const PLACEHOLDER: &str = "bottlebar-placeholder-api-5f2a";

struct Fixture {
    dir: tempfile::TempDir,
    live: Arc<Live>,
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

    /// Puts new rules in force, as the core's push through the control socket does.
    fn apply_rules(&self, rules: serde_json::Value) -> Result<usize, String> {
        let mut next = self
            .live
            .config
            .live_rules(self.live.current().secrets.clone());
        next.rules = serde_json::from_value(rules).unwrap();
        self.live.apply(next)
    }
}

/// Starts an upstream and a proxy whose rules are `rules` (the JSON array;
/// `PORT`/`HTTPPORT` in hosts' ports are filled in by the caller).
async fn fixture(
    rules: impl FnOnce(u16, u16) -> serde_json::Value,
    trust_upstream: bool,
) -> Fixture {
    fixture_with(rules, trust_upstream, Limits::default()).await
}

async fn fixture_with(
    rules: impl FnOnce(u16, u16) -> serde_json::Value,
    trust_upstream: bool,
    limits: Limits,
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
    // `localhost` is pinned, as the bottles of the e2e suites pin their
    // upstreams: a name that resolves to loopback is refused otherwise.
    let mut cfg = serde_json::json!({
        "bottle": "unit", "listen": "127.0.0.1:0", "rules": rules(https_port, http_port),
        "audit_file": p("egress.jsonl"), "ca_cert_file": p("ca.crt"), "ca_key_file": p("ca.key"),
        "secrets_file": p("secrets.json"), "hosts": {"localhost": "127.0.0.1"},
    });
    if trust_upstream {
        cfg["extra_roots_file"] = p("extra-roots.pem").into();
    }
    std::fs::write(p("sidecar.json"), cfg.to_string()).unwrap();
    let live = Arc::new(Live::load(&dir.path().join("sidecar.json"), vec![]).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = Arc::new(Proxy::new(live.clone()).unwrap().with_limits(limits));
    tokio::spawn(async move {
        serve_with(served, listener, async {
            let _ = rx.await;
        })
        .await
        .unwrap()
    });
    Fixture {
        dir,
        live,
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

// ---- Issue 10: the boundary, attacked ------------------------------------

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
    let audit = std::fs::read_to_string(fx.dir.path().join("egress.jsonl")).unwrap();
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
    let mixed_hex: String = SECRET
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            if i % 2 == 0 {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect();
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
    let audit = std::fs::read_to_string(fx.dir.path().join("egress.jsonl")).unwrap();
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
