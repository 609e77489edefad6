//! End to end on a real Docker Engine: launch bottles, attack them from inside,
//! break launches, and check nothing is left behind.
//!
//! The "internet" is the test's own upstream container on the bottle's egress
//! network; no test sends traffic anywhere else.

use bottlebar_e2e::*;
use serde_json::Value;

fn event_names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn networks_of(container: &str) -> Vec<String> {
    let v = inspect(container);
    let mut names: Vec<String> = v["NetworkSettings"]["Networks"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}

#[test]
fn demo_launches_isolated_and_comes_down_clean() {
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
    let sidecar_ip = events.last().unwrap()["sidecar_ip"]
        .as_str()
        .unwrap()
        .to_string();

    // The agent's main process is the keep-alive, under an init.
    let agent = inspect("bottlebar-demo-agent");
    assert_eq!(
        agent["Config"]["Cmd"],
        serde_json::json!(["sleep", "2147483647"])
    );
    assert_eq!(agent["HostConfig"]["Init"], Value::Bool(true));
    assert_eq!(agent["State"]["Running"], Value::Bool(true));
    let top = docker(&["top", "bottlebar-demo-agent"]).expect_ok("docker top");
    assert!(top.stdout.contains("sleep 2147483647"), "{}", top.stdout);

    // Topology: agent on the internal network only, sidecar on both.
    assert_eq!(
        networks_of("bottlebar-demo-agent"),
        vec!["bottlebar-demo-internal"]
    );
    assert_eq!(
        networks_of("bottlebar-demo-sidecar"),
        vec!["bottlebar-demo-egress", "bottlebar-demo-internal"]
    );
    assert_eq!(
        inspect("bottlebar-demo-internal")["Internal"],
        Value::Bool(true)
    );
    assert_eq!(
        inspect("bottlebar-demo-egress")["Internal"],
        Value::Bool(false)
    );
    for image in [
        agent["Config"]["Image"].as_str().unwrap(),
        inspect("bottlebar-demo-sidecar")["Config"]["Image"]
            .as_str()
            .unwrap(),
    ] {
        let img = inspect(image);
        assert_eq!(img["Config"]["Labels"]["bottlebar.bottle"], "demo");
        assert_eq!(
            img["Config"]["Labels"]["bottlebar.content-hash"]
                .as_str()
                .unwrap()
                .len(),
            64
        );
    }

    // Proxy settings point at the sidecar; no secret is visible in the agent's config.
    let env: Vec<String> = serde_json::from_value(agent["Config"]["Env"].clone()).unwrap();
    assert!(
        env.contains(&format!("HTTPS_PROXY=http://{sidecar_ip}:3128")),
        "{env:?}"
    );
    assert!(env.contains(&"SSL_CERT_FILE=/etc/bottlebar/ca/ca.crt".to_string()));
    let key = std::fs::read_to_string(h.state_dir("demo").join("sidecar/ca.key")).unwrap();
    let key_body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let agent_inspect = docker(&["inspect", "bottlebar-demo-agent"]).stdout;
    assert!(
        !agent_inspect.contains(&key_body) && !agent_inspect.contains("/sidecar"),
        "agent config mentions the sidecar state"
    );
    let listing = h
        .agent_sh("demo", "ls -A /etc/bottlebar/ca; cat /etc/bottlebar/ca/*")
        .expect_ok("list CA dir");
    assert!(listing.stdout.starts_with("ca.crt\n"), "{}", listing.stdout);
    assert!(!listing.stdout.contains("PRIVATE KEY"));

    // The fake internet answers as example.com on the egress network.
    let tok = token("demo");
    let upstream = Upstream::start(
        "bottlebar-test-upstream-demo",
        "bottlebar-demo-egress",
        &["example.com", "example.org"],
        &tok,
    );

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
    let ip = upstream.ip("bottlebar-demo-egress");
    assert!(!ip.is_empty());
    let request = raw_http(&ip, 80, &["GET / HTTP/1.0"]);
    let control = client_on("bottlebar-demo-egress", &request);
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
    let h = Harness::new();
    h.write_bottle("e2e-fail", "[agent]\ntemplate = \"busybox\"\n");
    // Someone else's container already has the sidecar's name: `create-sidecar` fails
    // after the images and both networks exist.
    let squatter = "bottlebar-e2e-fail-sidecar";
    let _ = docker(&["rm", "-f", squatter]);
    docker(&[
        "create",
        "--name",
        squatter,
        "--label",
        TEST_LABEL,
        upstream_image(),
        "sh",
    ])
    .expect_ok("create squatter");

    let (r, events) = h.up("e2e-fail");
    assert!(!r.ok(), "launch should fail");
    assert!(
        r.stderr.contains("step `create-sidecar` failed"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("command: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("is already in use"),
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
    let undone: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "rollback_step")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(undone.len(), 2, "both networks undone: {undone:?}");

    assert_eq!(labelled("e2e-fail"), (vec![], vec![]));
    assert!(
        !h.state_dir("e2e-fail").exists(),
        "state created by the failed launch is removed"
    );
    // The launch never touches what it did not create.
    assert!(
        docker(&["inspect", squatter]).ok(),
        "the squatter must survive the rollback"
    );
    docker(&["rm", "-f", squatter]).expect_ok("remove squatter");
}

#[test]
fn two_bottles_run_side_by_side_with_their_own_mounts_and_rules() {
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
    h.write_bottle(
        "e2e-a",
        &format!(
            "[agent]\ntemplate = \"busybox\"\n\n[[mounts]]\nhost = \"{}\"\ncontainer = \"/workspace\"\nreadonly = true\n\n[[mounts]]\nhost = \"{}\"\ncontainer = \"/home/agent/config\"\n\n[env]\nGREETING = \"hello a\"\n\n[[egress]]\nhost = \"a.example.com\"\n",
            work.path().display(),
            file.display()
        ),
    );
    h.write_bottle("e2e-b", "supervise = true\n[agent]\ntemplate = \"busybox\"\n\n[[egress]]\nhost = \"b.example.com\"\n");

    // Launch both at once.
    let a = h
        .bottle_cmd(&["up", "e2e-a", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let rb = h.bottle(&["up", "e2e-b", "--json"]);
    let ra = a.wait_with_output().unwrap();
    assert!(
        ra.status.success(),
        "e2e-a: {}",
        String::from_utf8_lossy(&ra.stderr)
    );
    rb.expect_ok("up e2e-b");

    let tok_a = token("a");
    let tok_b = token("b");
    let _ua = Upstream::start(
        "bottlebar-test-upstream-a",
        "bottlebar-e2e-a-egress",
        &["a.example.com", "b.example.com"],
        &tok_a,
    );
    let _ub = Upstream::start(
        "bottlebar-test-upstream-b",
        "bottlebar-e2e-b-egress",
        &["a.example.com", "b.example.com"],
        &tok_b,
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

    // Supervise: the agent is told where, and the sidecar answers with its rules.
    let sup = h
        .agent_sh("e2e-b", "wget -q -O - \"$MCP_SUPERVISE_URL\"")
        .expect_ok("supervise endpoint");
    assert!(
        sup.stdout.contains("\"bottle\":\"e2e-b\"") && sup.stdout.contains("b.example.com"),
        "{}",
        sup.stdout
    );
    assert!(h.agent_sh("e2e-a", "test -z \"$MCP_SUPERVISE_URL\"").ok());

    // Bottle A's agent cannot reach bottle B's sidecar or agent.
    let b_sidecar_ip = inspect("bottlebar-e2e-b-sidecar")["NetworkSettings"]["Networks"]
        ["bottlebar-e2e-b-internal"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
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
    let b_agent_ip = inspect("bottlebar-e2e-b-agent")["NetworkSettings"]["Networks"]
        ["bottlebar-e2e-b-internal"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    docker(&[
        "exec",
        "-d",
        "bottlebar-e2e-b-agent",
        "nc",
        "-ll",
        "-p",
        "7000",
        "-e",
        "echo",
        "reached-b",
    ])
    .expect_ok("listener in agent B");
    let knock = format!("(sleep 1) | nc -w 3 {b_agent_ip} 7000");
    let control = client_on("bottlebar-e2e-b-internal", &knock);
    assert!(
        control.stdout.contains("reached-b"),
        "control to agent B failed, so the attack proves nothing: {control:?}"
    );
    let knock_b = h.agent_sh("e2e-a", &knock);
    assert!(
        !knock_b.stdout.contains("reached-b"),
        "bottle A reached bottle B's agent: {knock_b:?}"
    );

    for name in ["e2e-a", "e2e-b"] {
        h.bottle(&["down", name]).expect_ok("down");
        assert_eq!(labelled(name), (vec![], vec![]));
        assert!(!h.state_dir(name).exists());
    }
}

#[test]
fn a_half_present_bottle_is_repaired_and_unchanged_images_are_not_rebuilt() {
    let h = Harness::new();
    h.write_bottle(
        "e2e-half",
        "[agent]\ntemplate = \"busybox\"\n[[egress]]\nhost = \"example.com\"\n",
    );
    h.up("e2e-half").0.expect_ok("first up");

    // Simulate a crash that took the sidecar with it.
    docker(&["rm", "-f", "bottlebar-e2e-half-sidecar"]).expect_ok("kill sidecar");
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
    let child = h
        .bottle_cmd(&["up", "e2e-intr"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the launch has created its networks, then interrupt it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while labelled("e2e-intr").1.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the launch never created its networks"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
