//! Supervise, end to end on loopback: the MCP server spoken to by the
//! official SDK's client (both protocol revisions), the endpoint's
//! refusals, and the approval queue's grants acting on real requests.

use super::*;
use bottlebar_e2e::testkit::mcp;
use bottlebar_policy::supervise::{Answer, Decision, Scope, Status};
use serde_json::json;

fn supervised(extra: serde_json::Value) -> serde_json::Value {
    let mut s = json!({ "request_timeout_seconds": 20, "max_pending": 3, "per_minute": 5 });
    for (k, v) in extra.as_object().into_iter().flatten() {
        s[k] = v.clone();
    }
    json!({ "supervise": s })
}

/// A proxy whose only rule is for another host: `localhost` must be asked for.
async fn bottle(extra: serde_json::Value) -> Fixture {
    fixture_cfg(
        |_, _| json!([{"host": "elsewhere.example.com"}]),
        true,
        Limits::default(),
        supervised(extra),
    )
    .await
}

impl Fixture {
    fn mcp_url(&self) -> String {
        format!("http://{}{SUPERVISE_PATH}", self.proxy)
    }

    fn sup(&self) -> &crate::supervise::Supervisor {
        self.supervisor.as_deref().expect("supervise is on")
    }

    /// The id of the pending proposal for `host`, once one is filed.
    async fn pending_for(&self, host: &str) -> String {
        let dir = self.dir.path().join("requests");
        for _ in 0..100 {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let Ok(p) = serde_json::from_slice::<bottlebar_policy::supervise::Proposal>(
                    &std::fs::read(e.path()).unwrap_or_default(),
                ) else {
                    continue;
                };
                if p.scope.host == host && p.status == Status::Pending {
                    return p.id;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no proposal for {host}");
    }

    fn answer(&self, id: &str, answer: Answer, scope: Scope) -> Result<String, String> {
        self.sup().decide(Decision {
            id: id.into(),
            answer,
            by: "test".into(),
            at: "t".into(),
            scope,
        })
    }

    /// How many proposals are on file.
    fn proposal_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("requests"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .count()
    }

    /// The grants the sidecar published for the host.
    fn published_grants(&self) -> Vec<bottlebar_policy::supervise::Grant> {
        let path = self
            .dir
            .path()
            .join("requests")
            .join(bottlebar_policy::supervise::GRANTS_FILE);
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    async fn get(&self) -> u16 {
        self.client()
            .fetch(&self.https("/x"), &opts())
            .await
            .unwrap()
            .status
    }
}

/// `request_egress` with `args` from the official client, on a task (it
/// waits for the human).
fn ask_in_background(
    url: String,
    args: serde_json::Value,
) -> tokio::task::JoinHandle<serde_json::Value> {
    tokio::spawn(async move {
        let s = mcp::connect(&url, mcp::version("2025-06-18").unwrap())
            .await
            .unwrap();
        mcp::call(&s, "request_egress", args).await.unwrap()
    })
}

fn localhost_scope(port: u16) -> Scope {
    Scope {
        host: "localhost".into(),
        port,
        methods: vec![],
        paths: vec![],
    }
}

#[tokio::test]
async fn the_official_client_speaks_to_it_in_both_protocol_revisions() {
    let fx = bottle(json!({})).await;
    for rev in ["2025-06-18", "2025-03-26"] {
        let report = mcp::conformance(&fx.mcp_url(), mcp::version(rev).unwrap())
            .await
            .unwrap();
        assert_eq!(report["server"]["protocol_version"], rev, "{report:#}");
        assert_eq!(report["server"]["name"], "bottlebar-supervise");
        assert!(report["server"]["instructions"]
            .as_str()
            .unwrap()
            .contains("request_egress"));
        let names: Vec<&str> = report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["egress_rules", "request_egress", "request_status"]);
        let ask = &report["tools"][1]["input_schema"];
        assert_eq!(ask["required"], json!(["host", "reason"]), "{ask:#}");
        assert!(ask["properties"]["paths"]["description"]
            .as_str()
            .unwrap()
            .contains("start"));
        assert_eq!(
            report["egress_rules"]["value"]["rules"][0]["host"],
            "elsewhere.example.com"
        );
        assert_eq!(
            report["request_egress"]["value"]["status"], "pending",
            "{report:#}"
        );
        assert_eq!(report["request_egress"]["value"]["timed_out"], true);
        assert_eq!(report["request_status"]["value"]["status"], "pending");
        assert_eq!(report["unknown_status"]["is_error"], true);
        assert_eq!(report["refused"]["is_error"], true);
        assert!(report["refused"]["value"]["message"]
            .as_str()
            .unwrap()
            .contains("address"));
    }
    // The two identical asks (one per revision) were one proposal.
    assert_eq!(fx.proposal_files(), 1, "identical requests are coalesced");
}

#[tokio::test]
async fn sessions_have_ids_and_browsers_and_foreign_hosts_are_refused() {
    let fx = bottle(json!({})).await;
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let post = |host: &str, extra: &str| {
        format!(
            "POST {SUPERVISE_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{init}",
            init.len()
        )
    };
    let ok = raw(fx.proxy, post(&fx.proxy.to_string(), "").as_bytes()).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.to_ascii_lowercase().contains("mcp-session-id:"), "{ok}");
    let browser = raw(
        fx.proxy,
        post(&fx.proxy.to_string(), "Origin: http://evil.example\r\n").as_bytes(),
    )
    .await;
    assert!(browser.starts_with("HTTP/1.1 403"), "{browser}");
    let rebound = raw(
        fx.proxy,
        post(&format!("evil.example:{}", fx.proxy.port()), "").as_bytes(),
    )
    .await;
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    // Without supervise, the path says so.
    let off = fixture(|_, _| json!([]), true).await;
    let r = raw(off.proxy, post(&off.proxy.to_string(), "").as_bytes()).await;
    assert!(
        r.starts_with("HTTP/1.1 404") && r.contains("supervise is off"),
        "{r}"
    );
}

#[tokio::test]
async fn an_approval_lets_requests_through_once_or_for_a_while() {
    let fx = bottle(json!({})).await;
    assert_eq!(fx.get().await, 403);
    let url = fx.mcp_url();
    let port = fx.https_port;
    // The agent asks, and waits; the human allows once.
    let asking = ask_in_background(
        url,
        json!({ "host": "localhost", "port": port, "reason": "tests need it" }),
    );
    let id = fx.pending_for("localhost").await;
    assert_eq!(
        fx.answer(&id, Answer::Once, localhost_scope(port)).unwrap(),
        format!("ok: {id} allowed once")
    );
    let reply = asking.await.unwrap();
    assert_eq!(reply["value"]["status"], "approved", "{reply:#}");
    assert_eq!(reply["value"]["grant"], "once: exactly one request");
    assert_eq!(fx.published_grants().len(), 1);
    assert_eq!(fx.get().await, 200, "the approved request goes");
    assert_eq!(fx.get().await, 403, "once means once");
    assert!(
        fx.published_grants().is_empty(),
        "a used grant is unpublished"
    );
    assert!(fx
        .answer(&id, Answer::Once, localhost_scope(port))
        .unwrap_err()
        .contains("already"));

    // For two seconds: twice in time, then refused again.
    let s = mcp::connect(&fx.mcp_url(), mcp::version("2025-06-18").unwrap())
        .await
        .unwrap();
    let asked = mcp::call(
        &s,
        "request_egress",
        json!({ "host": "localhost", "port": port, "reason": "again", "wait_seconds": 1 }),
    )
    .await
    .unwrap();
    let id2 = asked["value"]["id"].as_str().unwrap().to_string();
    assert_ne!(id2, id);
    fx.answer(&id2, Answer::For { seconds: 2 }, localhost_scope(port))
        .unwrap();
    assert_eq!(fx.get().await, 200);
    assert_eq!(fx.get().await, 200);
    let rules = mcp::call(&s, "egress_rules", json!({})).await.unwrap();
    assert_eq!(rules["value"]["grants"][0]["request"], id2, "{rules:#}");
    // The host sees the grant, with when it ends.
    let published = fx.published_grants();
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].proposal, id2);
    assert!(published[0].expires_unix.is_some());
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert_eq!(fx.get().await, 403, "expired");
    assert!(
        fx.published_grants().is_empty(),
        "an ended grant is unpublished"
    );
    let status = mcp::call(&s, "request_status", json!({ "id": id2 }))
        .await
        .unwrap();
    assert_eq!(status["value"]["status"], "approved");
    // The whole story is in the audit log.
    let audit = fx.audit();
    let kinds: Vec<&str> = audit.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"proposal") && kinds.contains(&"decision") && kinds.contains(&"expiry"),
        "{kinds:?}"
    );
    assert!(audit
        .iter()
        .any(|e| e["proposal"] == id2.as_str() && e["decision"] == "allow" && e["status"] == 200));
}

#[tokio::test]
async fn a_denial_carries_the_note_and_unanswered_requests_expire() {
    let fx = bottle(json!({ "proposal_ttl_seconds": 2 })).await;
    let url = fx.mcp_url();
    let asking = ask_in_background(
        url,
        json!({ "host": "localhost", "reason": "<script>alert(1)</script> please" }),
    );
    let id = fx.pending_for("localhost").await;
    fx.answer(
        &id,
        Answer::Deny {
            note: Some("not today".into()),
        },
        localhost_scope(443),
    )
    .unwrap();
    let reply = asking.await.unwrap();
    assert_eq!(
        (
            reply["value"]["status"].as_str(),
            reply["value"]["note"].as_str()
        ),
        (Some("denied"), Some("not today"))
    );
    // Nobody answers the next one: it expires (and the file says so).
    let s = mcp::connect(&fx.mcp_url(), mcp::version("2025-06-18").unwrap())
        .await
        .unwrap();
    let asked = mcp::call(
        &s,
        "request_egress",
        json!({ "host": "other.example.com", "reason": "r", "wait_seconds": 5 }),
    )
    .await
    .unwrap();
    assert_eq!(asked["value"]["status"], "expired", "{asked:#}");
    let id2 = asked["value"]["id"].as_str().unwrap();
    let filed: bottlebar_policy::supervise::Proposal = serde_json::from_slice(
        &std::fs::read(fx.dir.path().join(format!("requests/{id2}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(filed.status, Status::Expired);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(fx.dir.path().join(format!("requests/{id2}.json")))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn held_requests_go_when_allowed_in_time_and_fail_otherwise() {
    let fx = bottle(json!({ "hold_denied": true, "hold_seconds": 5 })).await;
    let (client, url) = (fx.client(), fx.https("/held"));
    let held = tokio::spawn(async move { client.fetch(&url, &opts()).await.unwrap().status });
    let id = fx.pending_for("localhost").await;
    let filed = fx.sup().status(&id).unwrap().0;
    assert!(
        filed.reason.starts_with("held request: CONNECT localhost:"),
        "{}",
        filed.reason
    );
    fx.answer(&id, Answer::For { seconds: 30 }, filed.scope.clone())
        .unwrap();
    assert_eq!(held.await.unwrap(), 200, "released by the approval");

    let short = bottle(json!({ "hold_denied": true, "hold_seconds": 1 })).await;
    let started = Instant::now();
    assert_eq!(short.get().await, 403, "not answered in time");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "it was held"
    );
}

#[tokio::test]
async fn a_held_plain_request_is_described_by_its_method_and_masked_url() {
    let fx = bottle(json!({ "hold_denied": true, "hold_seconds": 5 })).await;
    let url = format!("http://localhost:{}/held/{SECRET}?q=1", fx.http_port);
    let client = fx.client();
    let held = tokio::spawn(async move { client.fetch(&url, &opts()).await.unwrap().status });
    let id = fx.pending_for("localhost").await;
    let filed = fx.sup().status(&id).unwrap().0;
    let port = fx.http_port;
    assert!(
        filed
            .reason
            .starts_with(&format!("held request: GET http://localhost:{port}/held/")),
        "{}",
        filed.reason
    );
    assert!(!filed.reason.contains(SECRET), "{}", filed.reason);
    assert_eq!(filed.scope.methods, vec!["GET".to_string()]);
    assert_eq!(filed.scope.port, port);
    fx.answer(&id, Answer::Deny { note: None }, filed.scope.clone())
        .unwrap();
    assert_eq!(held.await.unwrap(), 403, "refused by the answer");
}

#[tokio::test]
async fn limits_refuse_floods_without_bothering_the_human() {
    let fx = bottle(json!({})).await;
    let s = mcp::connect(&fx.mcp_url(), mcp::version("2025-06-18").unwrap())
        .await
        .unwrap();
    let ask = |host: String| {
        let s = &s;
        async move {
            mcp::call(
                s,
                "request_egress",
                json!({ "host": host, "reason": "r", "wait_seconds": 0 }),
            )
            .await
            .unwrap()
        }
    };
    for i in 0..3 {
        assert_eq!(
            ask(format!("h{i}.example.com")).await["value"]["status"],
            "pending"
        );
    }
    let over = ask("h3.example.com".into()).await;
    assert_eq!(over["is_error"], true);
    assert!(
        over["value"]["message"]
            .as_str()
            .unwrap()
            .contains("already waiting"),
        "{over:#}"
    );
    assert_eq!(fx.proposal_files(), 3, "the refused one was never filed");
    for bad in [
        json!({ "host": "dns.google", "reason": "r" }),
        json!({ "host": "*.example.com", "reason": "r" }),
        json!({ "host": "a.example.com", "reason": "x".repeat(600) }),
    ] {
        assert_eq!(
            mcp::call(&s, "request_egress", bad).await.unwrap()["is_error"],
            true
        );
    }
}
