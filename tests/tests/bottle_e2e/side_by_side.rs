//! Two bottles side by side, each with its own mounts and rules.

use super::*;

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
