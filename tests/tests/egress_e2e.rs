//! The sidecar's security core, end to end in a real bottle on Docker:
//! agent → sidecar (TLS interception with the bottle's CA) → the project's own
//! TLS upstream container (its own test CA, trusted through `tls.extra_roots`).
//! Every request is made by the static test kit inside the agent, through
//! the proxy settings the bottle gives it.

use bottlebar_e2e::escape::deny_code;
use bottlebar_e2e::testkit::pki::TestCa;
use bottlebar_e2e::*;
use serde_json::Value;

const BOTTLE: &str = "e2e-tls";
const AGENT: &str = "bottlebar-e2e-tls-agent";
const NET: &str = "bottlebar-e2e-tls-egress";
/// The real credential: the harness's environment only, never the agent's.
const SECRET: &str = "sk-e2e-real-credential-7d1f0c9a4b2e";
const PLACEHOLDER: &str = "bottlebar-placeholder-api";

struct Bottle {
    h: Harness,
}

/// Runs the test kit's `fetch` in the agent; `args` go through `sh -c` so
/// they can use the agent's environment (`$API_KEY`).
fn fetch(b: &Bottle, args: &str) -> Value {
    let r = b.h.agent_sh(
        BOTTLE,
        &format!("/opt/testkit/bottlebar-testkit fetch {args}"),
    );
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "fetch {args}: {e}\nstdout: {}\nstderr: {}",
            r.stdout, r.stderr
        )
    })
}

fn status(v: &Value) -> u64 {
    v["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("no status: {v}"))
}

fn echo(v: &Value) -> Value {
    assert_eq!(status(v), 200, "{v}");
    serde_json::from_str(v["body"].as_str().unwrap()).unwrap()
}

fn manifest(testkit_dir: &str, ca_path: &str, wildcard: bool) -> String {
    let mut m = format!(
        r#"[agent]
template = "busybox"

[[mounts]]
host = "{testkit_dir}"
container = "/opt/testkit"
readonly = true

[secrets.api]
env = "BOTTLEBAR_E2E_API_KEY"
placeholder_env = "API_KEY"

[tls]
extra_roots = ["{ca_path}"]

[[egress]]
host = "api.example.com"
methods = ["GET", "POST"]
paths = ["/echo", "/sse"]
inject = {{ header = "authorization", secret = "api", value = "Bearer {{secret}}" }}

[[egress]]
host = "redact.example.com"
dlp = "redact"
"#
    );
    if wildcard {
        m.push_str("\n[[egress]]\nhost = \"*.public.example.com\"\n");
    }
    m
}

#[test]
fn the_sidecar_inspects_injects_scans_and_audits_real_traffic() {
    let mut h = Harness::new();
    h.env.push(("BOTTLEBAR_E2E_API_KEY".into(), SECRET.into()));
    let kit = tempfile::tempdir().unwrap();
    std::fs::copy(testkit_bin(), kit.path().join("bottlebar-testkit")).unwrap();
    let ca = TestCa::new("Bottlebar e2e Internet CA");
    let ca_path = kit.path().join("internet-ca.pem");
    std::fs::write(&ca_path, &ca.cert_pem).unwrap();
    let manifest_text = manifest(
        &kit.path().display().to_string(),
        &ca_path.display().to_string(),
        true,
    );
    h.write_bottle(BOTTLE, &manifest_text);
    let b = Bottle { h };
    let (r, _) = b.h.up(BOTTLE);
    r.expect_ok("launch e2e-tls");

    let tok = token("tls");
    let names = [
        "api.example.com",
        "redact.example.com",
        "other.public.example.com",
        "dns.google",
        "example.org",
    ];
    let upstream = TlsUpstream::start("bottlebar-test-tls-upstream", NET, &names, &tok, &ca);
    let pins: Vec<(&str, &str)> = names.iter().map(|n| (*n, upstream.ip.as_str())).collect();
    b.h.pin_hosts(BOTTLE, &manifest_text, &pins, || {
        status(&fetch(&b, "https://other.public.example.com/")) == 200
    });

    // --- The credential never enters the agent; its placeholder does.
    let env = b.h.agent_sh(BOTTLE, "env").expect_ok("agent env").stdout;
    assert!(env.contains(&format!("API_KEY={PLACEHOLDER}")), "{env}");
    assert!(!env.contains(SECRET));
    assert!(
        !engine().raw_inspect(AGENT).contains(SECRET),
        "the secret is in the agent's container config"
    );
    let files =
        b.h.agent_sh(
            BOTTLE,
            &format!("grep -rl '{SECRET}' /etc /opt /tmp /workspace /root 2>/dev/null; true"),
        )
        .stdout;
    assert!(
        files.trim().is_empty(),
        "secret found in agent files: {files}"
    );

    // --- Allowed: intercepted, injected, passed on.
    let ok = fetch(
        &b,
        "https://api.example.com/echo -H \"Authorization: Bearer $API_KEY\"",
    );
    let e = echo(&ok);
    assert_eq!(e["token"], tok.as_str(), "answered by our upstream");
    assert_eq!(
        e["header_sha256"]["authorization"],
        serde_json::json!([bottlebar_e2e::testkit::server::sha256_hex(
            format!("Bearer {SECRET}").as_bytes()
        )]),
        "the real credential arrived upstream"
    );
    // The upstream echoed it back; the agent sees it masked (issue 10.2).
    assert_eq!(
        e["headers"]["authorization"],
        serde_json::json!([format!("Bearer {}", "*".repeat(SECRET.len()))]),
        "the reflected credential reached the agent"
    );
    assert!(!ok.to_string().contains(SECRET));
    let h2 = fetch(&b, "--http2 https://api.example.com/echo");
    assert_eq!(h2["version"], "HTTP/2.0");
    assert_eq!(echo(&h2)["version"], "HTTP/2.0");

    // --- Each denial class, with its reason.
    let ip = upstream.ip.clone();
    let cases: Vec<(String, &str)> = vec![
        (
            "-X DELETE https://api.example.com/echo".into(),
            "method_not_allowed",
        ),
        ("https://api.example.com/admin".into(), "path_not_allowed"),
        ("https://example.org/".into(), "host_not_allowed"),
        (format!("https://{ip}/"), "ip_literal"),
        ("https://dns.google/dns-query".into(), "doh"),
        (
            "-H 'content-type: application/dns-message' -X POST https://other.public.example.com/q"
                .into(),
            "doh",
        ),
        (
            "-H 'Host: api.example.com' https://other.public.example.com/echo".into(),
            "fronting",
        ),
        (
            "https://api.example.com:8443/echo".into(),
            "port_not_allowed",
        ),
        (
            "-H \"Authorization: Bearer $API_KEY\" https://other.public.example.com/echo".into(),
            "placeholder",
        ),
    ];
    for (args, code) in &cases {
        let v = fetch(&b, args);
        assert_eq!(
            (status(&v), deny_code(&v)),
            (403, code.to_string()),
            "{args}: {v}"
        );
        assert!(!v["body"].as_str().unwrap().contains(&tok), "{args}");
    }
    // SNI naming another host than CONNECT: the TLS handshake is refused.
    let sni = b.h.agent_sh(BOTTLE, "/opt/testkit/bottlebar-testkit fetch --sni other.public.example.com https://api.example.com/echo");
    assert!(!sni.ok() && sni.stdout.contains("error"), "{sni:?}");

    // --- Secret scanning: every encoding of the held secret, and token formats.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{{\"key\":\"{SECRET}\"}}"));
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("xx{SECRET}"));
    let hex: String = SECRET.bytes().map(|c| format!("{c:02x}")).collect();
    let pct: String = SECRET.bytes().map(|c| format!("%{c:02X}")).collect();
    let leaks = [
        format!("'https://other.public.example.com/echo?k={SECRET}'"),
        format!("-X POST --data '{b64}' https://other.public.example.com/echo"),
        format!("-X POST --data 'v={b64url}' https://other.public.example.com/echo"),
        format!("https://other.public.example.com/echo/{hex}"),
        format!("-H 'X-Data: {pct}' https://other.public.example.com/echo"),
        "-H 'X-Aws: AKIAIOSFODNN7EXAMPLE' https://other.public.example.com/echo".to_string(),
        "-X POST --data 'k=-----BEGIN OPENSSH PRIVATE KEY-----' https://other.public.example.com/echo".to_string(),
    ];
    for args in &leaks {
        let v = fetch(&b, args);
        assert_eq!(
            (status(&v), deny_code(&v)),
            (403, "secret_detected".to_string()),
            "{args}: {v}"
        );
    }
    // Redacting rule: masked and forwarded.
    let red = echo(&fetch(
        &b,
        &format!("-X POST --data 'before {SECRET} after' https://redact.example.com/echo"),
    ));
    assert_eq!(
        red["body"],
        format!("before {} after", "*".repeat(SECRET.len()))
    );

    // --- Streaming: server-sent events arrive as they are sent.
    let sse = fetch(&b, "'https://api.example.com/sse?n=5&ms=300'");
    assert_eq!(status(&sse), 200);
    let chunks: Vec<u64> = sse["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_u64().unwrap())
        .collect();
    assert!(
        chunks.len() >= 5 && chunks[0] < 250 && *chunks.last().unwrap() >= 1100,
        "events were buffered: {chunks:?}"
    );

    // --- Audit: a line per request, with reasons, and never the secret.
    let logs =
        b.h.bottle(&["logs", BOTTLE, "--json"])
            .expect_ok("bottle logs");
    assert!(
        !logs.stdout.contains(SECRET) && !logs.stdout.contains(&hex),
        "the audit log holds the secret"
    );
    let entries: Vec<Value> = logs
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (_, code) in &cases {
        assert!(
            entries.iter().any(|e| e["reason"] == *code),
            "no audit line for {code}"
        );
    }
    assert!(entries.iter().any(|e| e["reason"] == "fronting"
        && e["detail"]
            .as_str()
            .unwrap_or("")
            .contains("TLS server name")));
    assert!(
        entries
            .iter()
            .filter(|e| e["reason"] == "secret_detected")
            .count()
            >= leaks.len()
    );
    let allowed = entries
        .iter()
        .find(|e| e["decision"] == "allow" && e["injected"] == "api")
        .expect("an allowed, injected request");
    for field in [
        "time",
        "bottle",
        "method",
        "scheme",
        "host",
        "port",
        "path",
        "rule",
        "status",
        "bytes_up",
        "bytes_down",
        "duration_ms",
    ] {
        assert!(
            !allowed[field].is_null(),
            "audit line lacks {field}: {allowed}"
        );
    }
    let human = b.h.bottle(&["logs", BOTTLE]).expect_ok("bottle logs");
    assert!(
        human.stdout.contains("DENY") && human.stdout.contains("host_not_allowed"),
        "{}",
        human.stdout
    );
    // The newest entries only: the whole log's last lines.
    let every: Vec<&str> = human.stdout.lines().collect();
    for n in [1, 2] {
        let last =
            b.h.bottle(&["logs", BOTTLE, "-n", &n.to_string()])
                .expect_ok("bottle logs -n");
        assert_eq!(
            last.stdout.lines().collect::<Vec<_>>(),
            every[every.len() - n..]
        );
    }
    follows_the_log_from_its_newest_entry(&b, every.len());

    // --- Rules reload live: drop the wildcard rule, `bottle up` again.
    assert_eq!(status(&fetch(&b, "https://other.public.example.com/")), 200);
    let narrower = manifest(
        &kit.path().display().to_string(),
        &ca_path.display().to_string(),
        false,
    );
    b.h.pin_hosts(BOTTLE, &narrower, &pins, || {
        let v = fetch(&b, "https://other.public.example.com/");
        status(&v) == 403 && deny_code(&v) == "host_not_allowed"
    });
    assert_eq!(
        status(&fetch(&b, "https://api.example.com/echo")),
        200,
        "still-allowed hosts keep working"
    );

    drop(upstream);
    b.h.bottle(&["down", BOTTLE]).expect_ok("down");
    assert_eq!(labelled(BOTTLE), (vec![], vec![]));
}

#[test]
fn a_missing_secret_fails_the_launch_before_anything_exists() {
    let h = Harness::new();
    h.write_bottle(
        "e2e-nosecret",
        "[agent]\ntemplate = \"busybox\"\n[secrets.api]\nenv = \"BOTTLEBAR_E2E_UNSET_VARIABLE\"\n",
    );
    let r = h.bottle(&["up", "e2e-nosecret"]);
    assert!(!r.ok());
    assert!(
        r.stderr
            .contains("secret `api`: environment variable BOTTLEBAR_E2E_UNSET_VARIABLE is not set"),
        "{}",
        r.stderr
    );
    assert_eq!(labelled("e2e-nosecret"), (vec![], vec![]));
    assert!(!h.state_dir("e2e-nosecret").exists());
}

/// `bottle logs --follow -n 1`: the newest of the log's `entries`, then a
/// request made after it, each once.
fn follows_the_log_from_its_newest_entry(b: &Bottle, entries: usize) {
    use std::io::BufRead;
    let json =
        b.h.bottle(&["logs", BOTTLE, "--json"])
            .expect_ok("bottle logs --json");
    let newest = json.stdout.lines().last().expect("entries").to_string();
    assert_eq!(json.stdout.lines().count(), entries);
    let mut follow =
        b.h.bottle_cmd(&["logs", BOTTLE, "--follow", "--json", "-n", "1"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bottle logs --follow");
    let out = follow.stdout.take().unwrap();
    let (sent, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = sent.send(line);
        }
    });
    let next = || lines.recv_timeout(std::time::Duration::from_secs(20));
    assert_eq!(next().expect("the newest entry"), newest);
    // Waiting, it waits for the sidecar to write (file notifications): no
    // thread of it wakes on a timer (it looked every 250 ms before).
    let pid = follow.id();
    let before = procs::thread_wakeups(&[pid]);
    let every = std::time::Duration::from_millis(250);
    let timers = testkit::waits::timer_threads(pid, 8, every, &before);
    assert!(
        timers.is_empty(),
        "`bottle logs --follow` polls: {timers:?}"
    );
    assert_eq!(
        status(&fetch(b, "https://other.public.example.com/followed")),
        200
    );
    let followed: Value = serde_json::from_str(&next().expect("the request, followed")).unwrap();
    assert_eq!(followed["path"], "/followed", "{followed}");
    assert!(
        lines
            .recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "each entry once"
    );
    let _ = follow.kill();
    let _ = follow.wait();
}
