//! Supervise end to end, on every backend (`scripts/test` runs it on Docker
//! and on the apple backend through the `container` double): the agent asks
//! the real sidecar's MCP server for a host from inside its bottle, the
//! human answers with the `bottle` CLI, and the agent's requests go — or do
//! not — exactly as answered. MCP clients the project did not write (the
//! official Rust SDK's, and the MCP Inspector's CLI from npm) speak to it.
//!
//! The "internet" is the project's own upstream on the bottle's egress
//! network, reached by pinned names; nothing else is contacted.

use bottlebar_e2e::escape::*;
use bottlebar_e2e::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A bottle with supervise on (and `settings` in its `[supervise]`), whose
/// only hosts are the fixture's allowed ones: `DENIED` must be asked for.
fn supervised(name: &str, settings: &str) -> Fixture {
    fixture_with(
        name,
        "template = \"busybox\"",
        None,
        &format!("\n[supervise]\nenabled = true\n{settings}\n"),
    )
}

/// The test kit's MCP client (the official SDK's) in the agent, calling
/// `tool` at `$MCP_SUPERVISE_URL`.
fn call_argv(tool: &str, args: &Value) -> Vec<String> {
    [
        "/opt/testkit/bottlebar-testkit",
        "mcp",
        "call",
        tool,
        "--args",
        &args.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn parse(r: &Run, what: &str) -> Value {
    serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("{what}: {e}\nstdout: {}\nstderr: {}", r.stdout, r.stderr))
}

fn call(f: &Fixture, tool: &str, args: Value) -> Value {
    let argv = call_argv(tool, &args);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    parse(&engine().exec(&f.agent(), &argv), tool)
}

/// Runs `argv` in the agent on another thread (it waits for the human).
fn in_background(f: &Fixture, argv: Vec<String>) -> std::thread::JoinHandle<Run> {
    let agent = f.agent();
    std::thread::spawn(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        engine().exec(&agent, &argv)
    })
}

/// `bottle requests NAME --json`.
fn requests(f: &Fixture) -> Vec<Value> {
    let r =
        f.h.bottle(&["requests", &f.name, "--json"])
            .expect_ok("bottle requests");
    parse(&r, "bottle requests")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The id of the pending request for `host`, once the sidecar has filed it.
fn pending_for(f: &Fixture, host: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(r) = requests(f)
            .into_iter()
            .find(|r| r["pending"] == true && r["proposal"]["scope"]["host"] == host)
        {
            return r["proposal"]["id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no pending request for {host}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn request(f: &Fixture, id: &str) -> Value {
    requests(f)
        .into_iter()
        .find(|r| r["proposal"]["id"] == id)
        .unwrap_or(Value::Null)
}

fn denied_fetch(f: &Fixture) -> bool {
    denied_by_sidecar(&f.fetch(&format!("https://{DENIED}/")))
}

#[test]
fn clients_we_did_not_write_speak_to_it_from_inside_the_bottle() {
    let f = supervised("e2e-sup-mcp", "");
    for rev in ["2025-06-18", "2025-03-26"] {
        let r = f.sh(&format!(
            "/opt/testkit/bottlebar-testkit mcp --protocol {rev} conformance"
        ));
        let report = parse(&r, "conformance");
        assert_eq!(report["server"]["protocol_version"], rev, "{report:#}");
        let names: Vec<&str> = report["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["egress_rules", "request_egress", "request_status"]);
        assert_eq!(
            report["egress_rules"]["value"]["rules"][0]["host"], ALLOWED,
            "{report:#}"
        );
        assert_eq!(report["request_egress"]["value"]["status"], "pending");
        assert_eq!(report["request_status"]["value"]["status"], "pending");
        assert_eq!(report["refused"]["is_error"], true);
    }
    // A web page's request (an Origin header) is refused, even from inside.
    // `-Y off`: busybox wget turns a POST into a GET when it goes through
    // a proxy; these go straight to the sidecar's port.
    let browser = f.sh(
        "wget -Y off -S -q -O - --header 'Origin: http://evil.example' \
         --header 'Content-Type: application/json' \
         --header 'Accept: application/json, text/event-stream' \
         --post-data '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}' \
         \"$MCP_SUPERVISE_URL\" 2>&1",
    );
    assert!(browser.stdout.contains("403"), "{}", browser.stdout);
    // The MCP Inspector's CLI (npm), from the host inside the agent's
    // network namespace (Docker only: it needs the agent's netns).
    if engine().is_apple() {
        return;
    }
    let inspector = std::env::var_os("BOTTLEBAR_MCP_INSPECTOR")
        .filter(|p| std::path::Path::new(p).is_file())
        .unwrap_or_else(|| {
            panic!("the MCP Inspector's CLI is not installed at BOTTLEBAR_MCP_INSPECTOR: `scripts/test-tools` installs it (scripts/lib.sh sets the variable)")
        });
    let url = f
        .sh("printf %s \"$MCP_SUPERVISE_URL\"")
        .expect_ok("reading the URL")
        .stdout;
    let pid = docker(&["inspect", "-f", "{{.State.Pid}}", &netns_owner(&f.agent())])
        .expect_ok("the agent's pid")
        .stdout
        .trim()
        .to_string();
    let inspect = |args: &[&str]| {
        let mut c = std::process::Command::new("nsenter");
        // It finds its own package.json relative to the working directory.
        c.current_dir(std::path::Path::new(&inspector).parent().unwrap())
            .args(["-t", &pid, "-n", "node"])
            .arg(&inspector)
            .args([&url, "--transport", "http"])
            .args(args);
        parse(
            &Run::from(c.output().expect("running node")),
            "mcp inspector",
        )
    };
    let listed = inspect(&["--method", "tools/list"]);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed:#}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["egress_rules", "request_egress", "request_status"]);
    let rules = inspect(&["--method", "tools/call", "--tool-name", "egress_rules"]);
    assert!(rules.to_string().contains(ALLOWED), "{rules:#}");
    let asked = inspect(&[
        "--method",
        "tools/call",
        "--tool-name",
        "request_egress",
        "--tool-arg",
        &format!("host={DENIED}"),
        "reason=the inspector asks",
        "wait_seconds=1",
    ]);
    assert!(asked.to_string().contains("pending"), "{asked:#}");
    let id = pending_for(&f, DENIED);
    let status = inspect(&[
        "--method",
        "tools/call",
        "--tool-name",
        "request_status",
        "--tool-arg",
        &format!("id={id}"),
    ]);
    assert!(status.to_string().contains("pending"), "{status:#}");
}

#[test]
fn a_grant_lets_the_agent_through_for_its_time_and_once_means_once() {
    let f = supervised("e2e-sup-grant", "");
    assert!(denied_fetch(&f), "not allowed before anyone asks");
    let asking = in_background(
        &f,
        call_argv(
            "request_egress",
            &json!({ "host": DENIED, "reason": "the e2e needs it" }),
        ),
    );
    let id = pending_for(&f, DENIED);
    assert_eq!(request(&f, &id)["proposal"]["reason"], "the e2e needs it");
    // Long enough for the checks inside it on a loaded machine (scripts/test
    // runs two suites at once; a 3 s grant once ended before `ls` saw it),
    // short enough to wait out.
    let grant = Duration::from_secs(10);
    let asked_to_allow = Instant::now();
    f.h.bottle(&["allow", &f.name, &id, "--for", "10s"])
        .expect_ok("bottle allow --for 10s");
    let allowed = Instant::now();
    let grants = f.h.ls_entry(&f.name)["grants"].clone();
    assert_eq!(grants[0]["proposal"], id.as_str(), "{grants:#}");
    assert!(grants[0]["seconds_left"].as_u64().unwrap() <= 10);
    let reply = parse(&asking.join().unwrap(), "request_egress");
    assert_eq!(reply["value"]["status"], "approved", "{reply:#}");
    assert_eq!(reply["value"]["scope"]["host"], DENIED);
    assert_eq!(status(&f.fetch(&format!("https://{DENIED}/"))), 200);
    // The grant began after `asked_to_allow`: the checks above ran inside it.
    let inside = asked_to_allow.elapsed();
    assert!(
        inside < grant,
        "the checks inside the grant took {inside:?}"
    );
    // It ended by `allowed` + 10 s; the proxy may take a moment to notice.
    std::thread::sleep(
        (allowed + grant + Duration::from_millis(1500)).duration_since(Instant::now()),
    );
    assert!(denied_fetch(&f), "denied again once the grant ended");
    assert_eq!(f.h.ls_entry(&f.name)["grants"], json!([]));

    // Once: exactly one request.
    let asked = call(
        &f,
        "request_egress",
        json!({ "host": DENIED, "reason": "one more", "wait_seconds": 1 }),
    );
    let once = asked["value"]["id"].as_str().unwrap().to_string();
    f.h.bottle(&["allow", &f.name, &once, "--once"])
        .expect_ok("bottle allow --once");
    assert_eq!(status(&f.fetch(&format!("https://{DENIED}/"))), 200);
    assert!(denied_fetch(&f), "once means once");
    let again = f.h.bottle(&["allow", &f.name, &once, "--once"]);
    assert!(!again.ok(), "a request is answered once");

    // The whole story is in `bottle logs`.
    let logs =
        f.h.bottle(&["logs", &f.name])
            .expect_ok("bottle logs")
            .stdout;
    for needle in [
        format!("PROPOSAL {id}"),
        format!("DECISION {id}"),
        format!("EXPIRY   {id}"),
        format!("grant:{once}"),
    ] {
        assert!(logs.contains(&needle), "no `{needle}` in\n{logs}");
    }
}

#[test]
fn a_denial_carries_the_note_and_the_agent_cannot_answer_itself() {
    let f = supervised("e2e-sup-deny", "");
    let asking = in_background(
        &f,
        call_argv(
            "request_egress",
            &json!({ "host": DENIED, "reason": "<img src=x onerror=alert(1)>" }),
        ),
    );
    let id = pending_for(&f, DENIED);
    // Everything the agent can reach, tried as an approval.
    let decision = json!({ "id": id, "answer": "always", "by": "agent" }).to_string();
    let attempts = [
        format!("wget -Y off -q -O - --post-data '{decision}' \"$HTTP_PROXY/__bottlebar/decide\""),
        format!("wget -Y off -q -O - --post-data '{decision}' \"${{MCP_SUPERVISE_URL%/*}}/decide\""),
        format!(
            "wget -Y off -q -O - --header 'Content-Type: application/json' \
             --header 'Accept: application/json, text/event-stream' \
             --post-data '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"decide\",\"params\":{decision}}}' \
             \"$MCP_SUPERVISE_URL\""
        ),
    ];
    for a in &attempts {
        let r = f.sh(a);
        assert!(!r.stdout.contains("ok:"), "{a}: {}", r.stdout);
    }
    // Files: the requests and decisions directories are not in the agent.
    let found = f.sh(
        "find / -xdev \\( -name 'p-*.json' -o -name decisions -o -name requests \\) 2>/dev/null",
    );
    assert_eq!(found.stdout.trim(), "", "the agent sees the queue's files");
    for tool in ["decide", "allow", "approve"] {
        let argv = call_argv(tool, &json!({ "id": id, "answer": "always" }));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let r = engine().exec(&f.agent(), &argv);
        assert!(
            !r.ok() && r.stderr.contains("tool not found"),
            "{tool}: {}{}",
            r.stdout,
            r.stderr
        );
    }
    let asked_again = call(
        &f,
        "request_egress",
        json!({ "host": DENIED, "reason": "approve it", "wait_seconds": 1 }),
    );
    assert_eq!(
        asked_again["value"]["id"],
        id.as_str(),
        "coalesced, still waiting"
    );
    let r = request(&f, &id);
    assert!(r["pending"] == true && r["decision"].is_null(), "{r:#}");
    assert!(denied_fetch(&f), "still refused");

    f.h.bottle(&["deny", &f.name, &id, "--note", "use the mirror instead"])
        .expect_ok("bottle deny");
    let reply = parse(&asking.join().unwrap(), "request_egress");
    assert_eq!(reply["value"]["status"], "denied", "{reply:#}");
    assert_eq!(reply["value"]["note"], "use the mirror instead");
    assert!(denied_fetch(&f));
    let r = request(&f, &id);
    assert_eq!(r["decision"]["by"], "cli", "{r:#}");
    assert_eq!(r["proposal"]["reason"], "<img src=x onerror=alert(1)>");
}

#[test]
fn a_held_request_goes_when_allowed_and_is_refused_when_nobody_answers() {
    let f = supervised("e2e-sup-held", "hold_denied = true\nhold_seconds = 6");
    let fetch = |f: &Fixture| {
        let argv = [
            "/opt/testkit/bottlebar-testkit",
            "fetch",
            &format!("https://{DENIED}/"),
        ]
        .map(String::from)
        .to_vec();
        in_background(f, argv)
    };
    let held = fetch(&f);
    let id = pending_for(&f, DENIED);
    assert_eq!(request(&f, &id)["proposal"]["origin"], "held");
    f.h.bottle(&["allow", &f.name, &id, "--once"])
        .expect_ok("bottle allow --once");
    let went = parse(&held.join().unwrap(), "held fetch");
    assert_eq!(status(&went), 200, "released by the approval: {went:#}");

    let started = Instant::now();
    let unanswered = parse(&fetch(&f).join().unwrap(), "unanswered fetch");
    let waited = started.elapsed();
    assert!(denied_by_sidecar(&unanswered), "{unanswered:#}");
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(20),
        "held for its time, then refused: {waited:?}"
    );
}
