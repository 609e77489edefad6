//! Real bottles, end to end, on the engine `BOTTLEBAR_E2E_BACKEND` selects
//! (Docker, or the apple backend through its test double or the real CLI):
//! launch, attack from inside, break launches, check nothing is left behind.
//!
//! The "internet" is the test's own upstream container on the bottle's egress
//! network, reached by an address the bottle pins; no test sends traffic
//! anywhere else.

use bottlebar_core::manifest::DEMO_MANIFEST;
use bottlebar_e2e::*;
use serde_json::Value;
use std::time::Duration;

fn event_names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

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

#[test]
fn a_failure_in_a_middle_step_rolls_back_everything_it_created() {
    let e = engine();
    let h = Harness::new();
    h.write_bottle("e2e-fail", "[agent]\ntemplate = \"busybox\"\n");
    // Someone else's container already has the sidecar's name: the sidecar
    // step fails after the images and both networks exist.
    let squatter = "bottlebar-e2e-fail-sidecar";
    e.create_stopped(squatter, upstream_image())
        .expect_ok("create squatter");

    let (r, events) = h.up("e2e-fail");
    assert!(!r.ok(), "launch should fail");
    let step = if e.is_apple() {
        "run-sidecar"
    } else {
        "create-sidecar"
    };
    assert!(
        r.stderr.contains(&format!("step `{step}` failed")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("command: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("already"),
        "the engine's stderr is reported: {}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("everything this launch created was removed"),
        "{}",
        r.stderr
    );
    let names = event_names(&events);
    assert!(
        names.contains(&"step_failed".to_string())
            && names.contains(&"rollback_finished".to_string()),
        "{names:?}"
    );
    let mut undone: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "rollback_step")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    undone.sort_unstable();
    // Both networks; on Docker also the agent, which starts beside the
    // sidecar (its address is the plan's to give) and had finished starting.
    let mut created = vec!["create-egress-network", "create-internal-network"];
    if !e.is_apple() {
        created.push("run-agent");
    }
    assert_eq!(undone, created, "what the launch created is undone");

    assert_eq!(labelled("e2e-fail"), (vec![], vec![]));
    assert!(
        !h.state_dir("e2e-fail").exists(),
        "state created by the failed launch is removed"
    );
    // The launch never touches what it did not create.
    assert!(
        e.cli(&["inspect", squatter]).ok(),
        "the squatter must survive the rollback"
    );
    e.rm(squatter).expect_ok("remove squatter");
}

#[test]
fn two_bottles_run_side_by_side_with_their_own_mounts_and_rules() {
    let e = engine();
    let h = Harness::new();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("notes.txt"), "workspace file\n").unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("config");
    std::fs::write(&file, "single file\n").unwrap();
    std::fs::write(
        secrets.path().join("sibling-secret"),
        "must not be visible\n",
    )
    .unwrap();
    let manifest_a = format!(
        "[agent]\ntemplate = \"busybox\"\n\n[[mounts]]\nhost = \"{}\"\ncontainer = \"/workspace\"\nreadonly = true\n\n[[mounts]]\nhost = \"{}\"\ncontainer = \"/home/agent/config\"\n\n[env]\nGREETING = \"hello a\"\n\n[[egress]]\nhost = \"a.example.com\"\n",
        work.path().display(),
        file.display()
    );
    let manifest_b = "supervise = true\n[agent]\ntemplate = \"busybox\"\n\n[[egress]]\nhost = \"b.example.com\"\n";
    h.write_bottle("e2e-a", &manifest_a);
    h.write_bottle("e2e-b", manifest_b);

    // Launch both at once.
    h.track("e2e-a");
    let a = h
        .bottle_cmd(&["up", "e2e-a", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (rb, _) = h.up("e2e-b");
    let ra = a.wait_with_output().unwrap();
    assert!(
        ra.status.success(),
        "e2e-a: {}",
        String::from_utf8_lossy(&ra.stderr)
    );
    rb.expect_ok("up e2e-b");

    let tok_a = token("a");
    let tok_b = token("b");
    let ua = Upstream::start(
        "bottlebar-test-upstream-a",
        "bottlebar-e2e-a-egress",
        &tok_a,
    );
    let ub = Upstream::start(
        "bottlebar-test-upstream-b",
        "bottlebar-e2e-b-egress",
        &tok_b,
    );
    h.pin_hosts(
        "e2e-a",
        &manifest_a,
        &[("a.example.com", &ua.ip), ("b.example.com", &ua.ip)],
        || {
            h.agent_sh("e2e-a", "wget -q -O - http://a.example.com/")
                .stdout
                .contains(&tok_a)
        },
    );
    h.pin_hosts(
        "e2e-b",
        manifest_b,
        &[("a.example.com", &ub.ip), ("b.example.com", &ub.ip)],
        || {
            h.agent_sh("e2e-b", "wget -q -O - http://b.example.com/")
                .stdout
                .contains(&tok_b)
        },
    );

    // Each bottle follows its own rules and reaches its own upstream.
    assert_eq!(
        h.agent_sh("e2e-a", "wget -q -O - http://a.example.com/")
            .expect_ok("a→a")
            .stdout
            .trim(),
        tok_a
    );
    assert!(!h
        .agent_sh("e2e-a", "wget -q -O - http://b.example.com/")
        .ok());
    assert_eq!(
        h.agent_sh("e2e-b", "wget -q -O - http://b.example.com/")
            .expect_ok("b→b")
            .stdout
            .trim(),
        tok_b
    );
    assert!(!h
        .agent_sh("e2e-b", "wget -q -O - http://a.example.com/")
        .ok());

    // Mounts: the directory read-only, the single file at its path without its siblings.
    assert_eq!(
        h.agent_sh("e2e-a", "cat /workspace/notes.txt")
            .expect_ok("read workspace")
            .stdout,
        "workspace file\n"
    );
    assert!(
        !h.agent_sh("e2e-a", "touch /workspace/new").ok(),
        "read-only mount was writable"
    );
    assert_eq!(
        h.agent_sh("e2e-a", "cat /home/agent/config")
            .expect_ok("read file")
            .stdout,
        "single file\n"
    );
    assert_eq!(h.agent_sh("e2e-a", "ls -A /home/agent").stdout, "config\n");
    assert_eq!(h.agent_sh("e2e-a", "echo $GREETING").stdout, "hello a\n");

    // Supervise: the agent is told where, and an MCP server answers there
    // (supervise_e2e.rs drives it fully); the status page lists its rules.
    // `-Y off`: through a proxy, busybox wget sends a POST as a GET.
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"wget","version":"1"}}}"#;
    let sup = h
        .agent_sh(
            "e2e-b",
            &format!(
                "wget -Y off -q -O - --header 'Content-Type: application/json' \
                 --header 'Accept: application/json, text/event-stream' \
                 --post-data '{init}' \"$MCP_SUPERVISE_URL\""
            ),
        )
        .expect_ok("supervise endpoint");
    assert!(
        sup.stdout.contains("bottlebar-supervise") && sup.stdout.contains("2025-06-18"),
        "{}",
        sup.stdout
    );
    let status = h
        .agent_sh("e2e-b", "wget -q -O - \"$HTTP_PROXY/__bottlebar/status\"")
        .expect_ok("status page");
    assert!(
        status.stdout.contains("\"bottle\":\"e2e-b\"") && status.stdout.contains("b.example.com"),
        "{}",
        status.stdout
    );
    assert!(h.agent_sh("e2e-a", "test -z \"$MCP_SUPERVISE_URL\"").ok());

    // Bottle A's agent cannot reach bottle B's sidecar or agent.
    let b_sidecar_ip = e.ip("bottlebar-e2e-b-sidecar", "bottlebar-e2e-b-internal");
    let request = raw_http(
        &b_sidecar_ip,
        3128,
        &["GET http://b.example.com/ HTTP/1.0", "Host: b.example.com"],
    );
    let control = h.agent_sh("e2e-b", &request);
    assert!(
        control.stdout.contains(&tok_b),
        "control from bottle B failed, so the attack proves nothing: {control:?}"
    );
    let cross = h.agent_sh("e2e-a", &request);
    assert!(
        !cross.stdout.contains(&tok_b) && !cross.stdout.contains("HTTP/1.1"),
        "bottle A reached bottle B's sidecar: {cross:?}"
    );
    let b_agent_ip = e.ip("bottlebar-e2e-b-agent", "bottlebar-e2e-b-internal");
    e.exec_detached(
        "bottlebar-e2e-b-agent",
        &["nc", "-ll", "-p", "7000", "-e", "echo", "reached-b"],
    )
    .expect_ok("listener in agent B");
    let knock = format!("(sleep 1) | nc -w 3 {b_agent_ip} 7000");
    let control = h.agent_sh("e2e-b", "(sleep 1) | nc -w 3 127.0.0.1 7000");
    assert!(
        control.stdout.contains("reached-b"),
        "the listener in agent B does not answer, so the attack proves nothing: {control:?}"
    );
    let knock_b = h.agent_sh("e2e-a", &knock);
    assert!(
        !knock_b.stdout.contains("reached-b"),
        "bottle A reached bottle B's agent: {knock_b:?}"
    );

    drop((ua, ub));
    for name in ["e2e-a", "e2e-b"] {
        h.bottle(&["down", name]).expect_ok("down");
        assert_eq!(labelled(name), (vec![], vec![]));
        assert!(!h.state_dir(name).exists());
    }
}

#[test]
fn a_half_present_bottle_is_repaired_and_unchanged_images_are_not_rebuilt() {
    let e = engine();
    let h = Harness::new();
    h.write_bottle(
        "e2e-half",
        "[agent]\ntemplate = \"busybox\"\n[[egress]]\nhost = \"example.com\"\n",
    );
    h.up("e2e-half").0.expect_ok("first up");

    // Simulate a crash that took the sidecar with it.
    e.rm("bottlebar-e2e-half-sidecar").expect_ok("kill sidecar");
    let ls: Value = serde_json::from_str(&h.bottle(&["ls", "--json"]).stdout).unwrap();
    let st = ls["bottles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "e2e-half")
        .unwrap()
        .clone();
    assert_eq!(st["state"], "partial");
    assert!(
        st["problem"].as_str().unwrap().contains("sidecar missing"),
        "{st}"
    );

    let (r, events) = h.up("e2e-half");
    r.expect_ok("repairing up");
    assert!(events
        .iter()
        .any(|e| e["event"] == "note" && e["message"].as_str().unwrap().contains("half there")));
    let mut skipped: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        vec!["build-agent-image", "build-sidecar-image"],
        "{events:?}"
    );
    assert_eq!(events.last().unwrap()["event"], "ready");
    let (containers, networks) = labelled("e2e-half");
    assert_eq!((containers.len(), networks.len()), (2, 2));

    h.bottle(&["down", "e2e-half"]).expect_ok("down");
    assert_eq!(labelled("e2e-half"), (vec![], vec![]));
}

#[test]
fn bad_input_changes_nothing() {
    let h = Harness::new();
    h.write_bottle("e2e-bad", "[agent]\ntemplate = \"busybox\"\n[[mounts]]\nhost = \"relative/path\"\ncontainer = \"/w\"\n");
    let r = h.bottle(&["up", "e2e-bad"]);
    assert!(!r.ok());
    assert!(
        r.stderr.contains(
            "e2e-bad.toml:4:8: `mounts[0].host`: host path `relative/path` must be absolute"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(labelled("e2e-bad"), (vec![], vec![]));
    assert!(!h.state_dir("e2e-bad").exists());

    let r = h.bottle(&["up", "Bad_Name"]);
    assert!(
        !r.ok() && r.stderr.contains("bottle name `Bad_Name`"),
        "{}",
        r.stderr
    );
    let r = h.bottle(&["up", "no-such-bottle"]);
    assert!(
        !r.ok() && r.stderr.contains("no bottle named `no-such-bottle`"),
        "{}",
        r.stderr
    );
    let r = h.bottle(&["exec", "e2e-bad", "--", "true"]);
    assert!(
        !r.ok() && r.stderr.contains("is not running"),
        "{}",
        r.stderr
    );
    h.write_bottle(
        "e2e-gate",
        "git_gate = true\n[agent]\ntemplate = \"busybox\"\n",
    );
    let r = h.bottle(&["up", "e2e-gate"]);
    assert!(!r.ok() && r.stderr.contains("git_gate"), "{}", r.stderr);
    if engine().is_apple() {
        assert!(
            r.stderr.contains("not supported on the apple backend yet"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(labelled("e2e-gate"), (vec![], vec![]));
}

#[test]
fn interrupting_a_launch_removes_what_it_created() {
    let h = Harness::new();
    // An agent image whose build takes a while, so the interrupt lands mid-launch.
    let agent_dir = h.home.path().join("bottles/slow");
    std::fs::create_dir_all(&agent_dir).unwrap();
    std::fs::write(
        agent_dir.join("Dockerfile"),
        format!("FROM {}\nRUN sleep 4\n", upstream_image()),
    )
    .unwrap();
    h.write_bottle("e2e-intr", "[agent]\ndockerfile = \"slow/Dockerfile\"\n");
    h.track("e2e-intr");
    let child = h
        .bottle_cmd(&["up", "e2e-intr"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the launch has created its networks, then interrupt it.
    wait_until(
        Duration::from_secs(20),
        || labelled("e2e-intr").1.len() == 2,
        "the launch never created its networks",
    );
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("nothing of `e2e-intr` is left"), "{stderr}");
    assert_eq!(labelled("e2e-intr"), (vec![], vec![]));
    assert!(!h.state_dir("e2e-intr").exists());
}
