//! The proxy on loopback, end to end: a test upstream (HTTP and HTTPS, its own
//! test CA), the proxy with a bottle CA, and a client that trusts only the
//! bottle CA, as an agent does. Loopback only. `traffic`: what the proxy
//! does with ordinary requests; `boundary`: the attacks of issue 10;
//! `request_body`: the scanned request body alone, without sockets.

mod boundary;
mod edges;
mod request_body;
mod supervise;
mod traffic;

use super::*;
use bottlebar_e2e::testkit::client::{Client, FetchOptions, Fetched};
use bottlebar_e2e::testkit::pki::TestCa;
use bottlebar_e2e::testkit::server;
use bottlebar_e2e::testkit::server::sha256_hex;
use bottlebar_policy::{HEALTH_PATH, STATUS_PATH, SUPERVISE_PATH};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SECRET: &str = "sk-test-injected-credential-0123456789";
const PLACEHOLDER: &str = "bottlebar-placeholder-api-5f2a";

struct Fixture {
    dir: tempfile::TempDir,
    live: Arc<Live>,
    supervisor: Option<Arc<crate::supervise::Supervisor>>,
    proxy: SocketAddr,
    https_port: u16,
    http_port: u16,
    bottle_ca: String,
    audit_log: Arc<AuditLog>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Fixture {
    fn client(&self) -> Client {
        Client::new(Some(self.proxy.to_string()), self.bottle_ca.as_bytes()).unwrap()
    }

    fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    /// The audit log's text, once every line handed to its writer is written.
    fn audit_text(&self) -> String {
        self.audit_log.flush();
        std::fs::read_to_string(self.dir.path().join("egress.jsonl")).unwrap_or_default()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        self.audit_text()
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
    fixture_cfg(rules, trust_upstream, limits, serde_json::json!({})).await
}

/// As [`fixture_with`], with `extra` merged into the sidecar's configuration.
async fn fixture_cfg(
    rules: impl FnOnce(u16, u16) -> serde_json::Value,
    trust_upstream: bool,
    limits: Limits,
    extra: serde_json::Value,
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
    for (k, v) in extra.as_object().into_iter().flatten() {
        cfg[k] = v.clone();
    }
    if let Some(s) = cfg.get_mut("supervise") {
        s["requests_dir"] = p("requests").into();
    }
    std::fs::write(p("sidecar.json"), cfg.to_string()).unwrap();
    let live = Arc::new(Live::load(&dir.path().join("sidecar.json"), vec![]).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = Arc::new(Proxy::new(live.clone()).unwrap().with_limits(limits));
    let supervisor = served.supervisor.clone();
    let audit_log = served.audit.clone();
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
        supervisor,
        proxy,
        https_port,
        http_port,
        bottle_ca: bottle_ca.cert_pem,
        audit_log,
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

/// Sends raw bytes and reads until the peer closes or 3 s pass.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
