//! The demo bottle: launched isolated, attacked from inside, brought down clean.

use super::*;

#[test]
fn demo_launches_isolated_and_comes_down_clean() {
    let e = engine();
    let h = Harness::new();
    let (r, events) = h.up("demo");
    let r = r.expect_ok("bottle up demo");
    let names = event_names(&events);
    assert_eq!(
        names.first().map(String::as_str),
        Some("plan_started"),
        "{}",
        r.stdout
    );
    assert_eq!(names.last().map(String::as_str), Some("ready"));
    assert!(!names.iter().any(|n| n == "step_failed"));
    // The self-test starts as soon as its probe can: on Docker once the
    // agent has started (the probe joins its network namespace), on Apple
    // once the sidecar's addresses are read, beside the agent's start.
    let at = |event: &str, step: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e["step"] == step)
            .unwrap_or_else(|| panic!("no {event} of {step}: {names:?}"))
    };
    let probe_started = at("step_started", "self-test");
    if e.is_apple() {
        assert!(
            probe_started < at("step_finished", "run-agent")
                && probe_started > at("step_finished", "discover-sidecar-egress-ip"),
            "{names:?}"
        );
    } else {
        assert!(
            probe_started > at("step_finished", "run-agent"),
            "{names:?}"
        );
    }
    let sidecar_ip = events.last().unwrap()["sidecar_ip"]
        .as_str()
        .unwrap()
        .to_string();

    // The agent's main process is the keep-alive, under an init.
    assert_eq!(
        e.command("bottlebar-demo-agent"),
        vec!["sleep", "2147483647"]
    );
    assert!(e.uses_init("bottlebar-demo-agent"));
    assert!(e.running("bottlebar-demo-agent"));
    let ps = h.agent_sh("demo", "ps").expect_ok("ps in the agent");
    assert!(ps.stdout.contains("sleep 2147483647"), "{}", ps.stdout);

    // Topology: agent on the internal network only, sidecar on both, egress first.
    assert_eq!(
        e.networks("bottlebar-demo-agent"),
        vec!["bottlebar-demo-internal"]
    );
    assert_eq!(
        e.networks("bottlebar-demo-sidecar"),
        vec!["bottlebar-demo-egress", "bottlebar-demo-internal"]
    );
    if e.is_apple() {
        assert_eq!(
            e.networks_in_order("bottlebar-demo-sidecar"),
            vec!["bottlebar-demo-egress", "bottlebar-demo-internal"]
        );
    }
    assert!(e.network_internal("bottlebar-demo-internal"));
    assert!(!e.network_internal("bottlebar-demo-egress"));
    for container in ["bottlebar-demo-agent", "bottlebar-demo-sidecar"] {
        let labels = e.image_labels(container);
        assert_eq!(
            labels.get("bottlebar.bottle").map(String::as_str),
            Some("demo"),
            "{container}: {labels:?}"
        );
        assert_eq!(
            labels.get("bottlebar.content-hash").map(String::len),
            Some(64),
            "{container}: {labels:?}"
        );
    }

    // Proxy settings point at the sidecar; no secret is visible in the agent's config.
    let env = e.env("bottlebar-demo-agent");
    assert!(
        env.contains(&format!("HTTPS_PROXY=http://{sidecar_ip}:3128")),
        "{env:?}"
    );
    assert!(env.contains(&"SSL_CERT_FILE=/etc/bottlebar/ca/ca.crt".to_string()));
    let key = std::fs::read_to_string(h.state_dir("demo").join("sidecar/ca.key")).unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let agent_config = e.raw_inspect("bottlebar-demo-agent").replace("\\/", "/");
    assert!(
        !agent_config.contains(&key_body) && !agent_config.contains("/sidecar"),
        "agent config mentions the sidecar state"
    );
    let listing = h
        .agent_sh("demo", "ls -A /etc/bottlebar/ca; cat /etc/bottlebar/ca/*")
        .expect_ok("list CA dir");
    assert!(listing.stdout.starts_with("ca.crt\n"), "{}", listing.stdout);
    assert!(!listing.stdout.contains("PRIVATE KEY"));

    // The fake internet on the egress network, answering for example.com and
    // example.org, pinned in the demo's rules (applied live).
    let tok = token("demo");
    let upstream = Upstream::start(
        "bottlebar-test-upstream-demo",
        "bottlebar-demo-egress",
        &tok,
    );
    let pins = [
        ("example.com", upstream.ip.as_str()),
        ("example.org", upstream.ip.as_str()),
    ];
    h.pin_hosts("demo", DEMO_MANIFEST, &pins, || {
        h.agent_sh("demo", "wget -q -O - http://example.com/")
            .stdout
            .contains(&tok)
    });

    // Allowed host through the proxy: plain HTTP and a CONNECT tunnel.
    let get = h
        .agent_sh("demo", "wget -q -O - http://example.com/")
        .expect_ok("GET example.com through the proxy");
    assert_eq!(get.stdout.trim(), tok);
    let tunnel = h.agent_sh(
        "demo",
        &raw_http(
            &sidecar_ip,
            3128,
            &[
                "CONNECT example.com:80 HTTP/1.1",
                "Host: example.com:80",
                "",
                "GET / HTTP/1.0",
                "Host: example.com",
            ],
        ),
    );
    assert!(tunnel.stdout.starts_with("HTTP/1.1 200"), "{tunnel:?}");
    assert!(tunnel.stdout.contains(&tok), "{tunnel:?}");

    // Another host gets the proxy's 403, naming the host and why; the upstream
    // answers as example.org too, so a 403 can only come from the proxy.
    let denied = h.agent_sh(
        "demo",
        &raw_http(
            &sidecar_ip,
            3128,
            &[
                "GET http://example.org/ HTTP/1.1",
                "Host: example.org",
                "Connection: close",
            ],
        ),
    );
    assert!(denied.stdout.starts_with("HTTP/1.1 403"), "{denied:?}");
    assert!(
        denied
            .stdout
            .contains("host `example.org` is not on this bottle's egress allowlist"),
        "{denied:?}"
    );
    assert!(!denied.stdout.contains(&tok));
    let denied_connect = h.agent_sh(
        "demo",
        &raw_http(
            &sidecar_ip,
            3128,
            &["CONNECT example.org:443 HTTP/1.1", "Host: example.org:443"],
        ),
    );
    assert!(
        denied_connect.stdout.starts_with("HTTP/1.1 403"),
        "{denied_connect:?}"
    );
    let wget_denied = h.agent_sh("demo", "wget -q -O - http://example.org/");
    assert!(!wget_denied.ok() && !wget_denied.stdout.contains(&tok));

    // Direct TCP from the agent to the upstream's IP fails, while the same
    // request from a container on the egress network works (so the attack was real).
    let request = raw_http(&upstream.ip, 80, &["GET / HTTP/1.0"]);
    let control = e.run_on("bottlebar-demo-egress", &request);
    assert!(
        control.stdout.contains(&tok),
        "control request failed, so the attack proves nothing: {control:?}"
    );
    let direct = h.agent_sh("demo", &request);
    assert!(
        !direct.ok() && !direct.stdout.contains(&tok),
        "agent reached the upstream directly: {direct:?}"
    );

    // The audit log recorded both decisions.
    let audit = std::fs::read_to_string(h.state_dir("demo").join("audit/egress.jsonl")).unwrap();
    assert!(audit.lines().any(|l| l.contains("\"host\":\"example.com\"") && l.contains("\"decision\":\"allow\"")), "{audit}");
    assert!(
        audit.lines().any(|l| l.contains("\"host\":\"example.org\"")
            && l.contains("\"reason\":\"host_not_allowed\"")),
        "{audit}"
    );

    // `ls` sees it running; a second `up` is a no-op that says so.
    let ls: Value =
        serde_json::from_str(&h.bottle(&["ls", "--json"]).expect_ok("ls").stdout).unwrap();
    let demo = ls["bottles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "demo")
        .unwrap()
        .clone();
    assert_eq!(demo["state"], "running");
    assert_eq!(demo["backend"], e.backend());
    assert_eq!(demo["keepalive_alive"], true);
    assert_eq!(demo["sidecar_ip"], sidecar_ip.as_str());
    let (again, events) = h.up("demo");
    again.expect_ok("second up");
    assert_eq!(event_names(&events), vec!["note"]);
    assert!(events[0]["message"]
        .as_str()
        .unwrap()
        .contains("already up"));

    drop(upstream);
    h.bottle(&["down", "demo"]).expect_ok("bottle down demo");
    assert_eq!(labelled("demo"), (vec![], vec![]));
    assert!(!h.state_dir("demo").exists());
    // Idempotent.
    h.bottle(&["down", "demo"]).expect_ok("second bottle down");
}
