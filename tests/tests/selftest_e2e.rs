//! The isolation self-test (launch step 8) in real bottles, on the engine
//! `BOTTLEBAR_E2E_BACKEND` selects.
//!
//! Its targets are this test process's fake internet (`fake_internet()`: a
//! network of its own with a server answering HTTP, HTTPS and DNS on v4 and
//! v6) and a service on this host bound to 0.0.0.0. Each check that a path is
//! blocked is paired with a control showing the same target answers from
//! where it should, so "blocked" means isolation, not a dead target.

use bottlebar_e2e::*;
use serde_json::Value;

const BOTTLE: &str = r#"
[agent]
template = "busybox"
"#;

fn record(h: &Harness, name: &str) -> Value {
    let path = h.home.path().join("selftest").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no self-test record at {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn paths(rec: &Value) -> Vec<Value> {
    rec["report"]["paths"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn outcome_of(rec: &Value, path: &str) -> String {
    paths(rec)
        .iter()
        .find(|p| p["path"] == path)
        .unwrap_or_else(|| panic!("the probe never tried `{path}`: {rec:#}"))["outcome"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The targets answer from where they should: the fake internet from its own
/// network, the host service from the host.
fn controls_answer(net: &FakeInternet) {
    let e = engine();
    let c = e.run_on(
        &net.network,
        &format!(
            "nc -w 3 {ip} 443 </dev/null && echo tcp-ok; nslookup {OUTSIDE_NAME} {ip}",
            ip = net.ip
        ),
    );
    assert!(c.stdout.contains("tcp-ok"), "control TCP: {c:?}");
    assert!(c.stdout.contains("198.51.100.7"), "control DNS: {c:?}");
    let host = std::net::TcpStream::connect(("127.0.0.1", net.host_service_port));
    assert!(host.is_ok(), "the host service does not answer on the host");
}

#[test]
fn a_bottle_is_ready_only_after_its_self_test_finds_no_way_out() {
    let net = fake_internet();
    controls_answer(net);
    let h = Harness::new();
    h.write_bottle("e2e-st", BOTTLE);
    let (r, events) = h.up("e2e-st");
    r.expect_ok("bottle up e2e-st");
    // The self-test is a step of the launch, before `ready`.
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    let st = names
        .iter()
        .position(|n| *n == "self_test")
        .expect("a self_test event");
    assert!(st < names.iter().position(|n| *n == "ready").unwrap());
    assert!(events
        .iter()
        .any(|e| e["event"] == "step_finished" && e["step"] == "self-test"));

    let rec = record(&h, "e2e-st");
    assert_eq!(rec["verdict"], "isolated", "{rec:#}");
    assert_eq!(rec["report"]["proxy_ok"], true, "{rec:#}");
    // Every class of direct path was tried, and each failed.
    let ip = &net.ip;
    let ip6 = &net.ip6;
    for p in [
        format!("tcp {ip}:443"),
        format!("tcp {ip}:80"),
        format!("tcp [{ip6}]:443"),
        format!("udp {ip}:53 {OUTSIDE_NAME}"),
        format!("tcp {ip}:53 {OUTSIDE_NAME}"),
        format!("udp [{ip6}]:53 {OUTSIDE_NAME}"),
    ] {
        assert_eq!(outcome_of(&rec, &p), "blocked", "{p}");
    }
    // The host's own addresses, including the service bound to 0.0.0.0.
    let host_paths: Vec<Value> = paths(&rec)
        .into_iter()
        .filter(|p| p["class"] == "host")
        .collect();
    let service = format!(":{}", net.host_service_port);
    let tried: Vec<&Value> = host_paths
        .iter()
        .filter(|p| p["path"].as_str().unwrap().ends_with(&service))
        .collect();
    assert!(!tried.is_empty(), "host service never tried: {rec:#}");
    if !engine().is_apple() {
        // Docker: closed by the internal network having no host address.
        for p in &host_paths {
            assert_eq!(p["outcome"], "blocked", "{p}");
        }
        assert_eq!(rec["accepted"], Value::Array(vec![]));
    } else {
        // Apple: the host is `.1` on the network; accepted in settings.
        assert!(
            rec["accepted"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["class"] == "host"),
            "{rec:#}"
        );
    }
    // How fast, and why (docs/security.md, "How long it takes"): on Docker
    // nobody holds the internal network's gateway, the probe finds so, and
    // every path that could only have been handed to it fails at once; on
    // Apple the host holds `.1` and every path goes through it.
    let gateways = rec["report"]["gateways"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!gateways.is_empty(), "no gateway in the report: {rec:#}");
    if !engine().is_apple() {
        for g in &gateways {
            assert_eq!(g["held"], false, "{g}");
            assert!(g["detail"].as_str().unwrap().contains("ARP"), "{g}");
        }
        let outside = paths(&rec)
            .into_iter()
            .find(|p| p["path"] == format!("tcp {ip}:443"))
            .unwrap();
        assert!(
            outside["detail"].as_str().unwrap().contains("unreachable"),
            "{outside}"
        );
        assert!(outside["ms"].as_u64().unwrap() < 100, "{outside}");
        let elapsed = rec["report"]["elapsed_ms"].as_u64().unwrap();
        assert!(elapsed < 1000, "the probe took {elapsed} ms: {rec:#}");
    } else {
        assert!(gateways.iter().any(|g| g["held"] == true), "{rec:#}");
    }

    // The agent's resolver knows no outside name.
    let ns = h.agent_sh("e2e-st", &format!("nslookup {OUTSIDE_NAME} 2>&1"));
    assert!(!ns.stdout.contains("198.51.100.7"), "{ns:?}");
    let fake_logs = engine().cli(&["logs", &net.server]).stdout;
    let agent_ip = engine().ip("bottlebar-e2e-st-agent", "bottlebar-e2e-st-internal");
    assert!(
        !fake_logs.contains(&agent_ip),
        "the fake internet's resolver heard from the agent: {fake_logs}"
    );

    // `ls` shows when it ran and what it found.
    let b = h.ls_entry("e2e-st");
    assert_eq!(b["state"], "running");
    assert_eq!(b["self_test"]["ready"], true, "{b:#}");
    assert_eq!(b["self_test"]["at"], rec["at"]);

    // `bottle verify` reruns it on the running bottle.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v = h
        .bottle(&["verify", "e2e-st", "--json"])
        .expect_ok("bottle verify");
    let again: Value = serde_json::from_str(&v.stdout).unwrap();
    assert_eq!(again["verdict"], "isolated");
    assert_ne!(again["at"], rec["at"], "verify did not run a new self-test");
}

#[test]
fn a_leak_stops_the_bottle_names_the_path_and_fails_closed() {
    let net = fake_internet();
    let e = engine();
    let h = Harness::new();
    h.write_bottle("e2e-leak", BOTTLE);
    h.up("e2e-leak").0.expect_ok("bottle up e2e-leak");
    // Make a real leak: Docker — wire the agent straight to the fake
    // internet; Apple — stop accepting the host's presence on `.1`.
    let expected_class = if e.is_apple() {
        std::fs::remove_file(h.home.path().join("settings.toml")).unwrap();
        "host"
    } else {
        e.cli(&[
            "network",
            "connect",
            &net.network,
            "bottlebar-e2e-leak-agent",
        ])
        .expect_ok("connecting the agent to the fake internet");
        "outside-ipv4"
    };
    let v = h.bottle(&["verify", "e2e-leak"]);
    assert_eq!(v.code, 3, "verify must exit 3 on a leak: {v:?}");
    assert!(v.stderr.contains("isolation leak"), "{}", v.stderr);
    let rec = record(&h, "e2e-leak");
    assert_eq!(rec["verdict"], "leak");
    let leaks = rec["leaks"].as_array().unwrap();
    assert!(
        leaks.iter().any(|p| p["class"] == expected_class),
        "{rec:#}"
    );
    let first = leaks[0]["path"].as_str().unwrap();
    assert!(
        v.stderr.contains(first),
        "the error must name {first}: {}",
        v.stderr
    );
    // Fail closed: nothing of the bottle runs; `ls` says why.
    let (containers, networks) = e.labelled("e2e-leak");
    assert!(
        containers.is_empty() && networks.is_empty(),
        "{containers:?} {networks:?}"
    );
    let b = h.ls_entry("e2e-leak");
    assert_eq!(b["state"], "isolation_leak", "{b:#}");
    assert!(b["problem"].as_str().unwrap().contains(first), "{b:#}");

    // Launching again measures again: Docker's fresh bottle is isolated; on
    // Apple the host leak stays until the user accepts it.
    let (r, _) = h.up("e2e-leak");
    if e.is_apple() {
        assert_eq!(r.code, 3, "{r:?}");
        let (c, n) = e.labelled("e2e-leak");
        assert!(c.is_empty() && n.is_empty(), "{c:?} {n:?}");
        h.write_bottle(
            "e2e-leak",
            &format!("{BOTTLE}\n[isolation]\naccept_leaks = [\"host\"]\n"),
        );
        h.up("e2e-leak")
            .0
            .expect_ok("launch with the host class accepted");
        let rec = record(&h, "e2e-leak");
        assert_eq!(rec["verdict"], "isolated");
        assert!(
            rec["summary"].as_str().unwrap().contains("accepted"),
            "{rec:#}"
        );
    } else {
        r.expect_ok("relaunch after the leak");
        assert_eq!(h.ls_entry("e2e-leak")["state"], "running");
    }
}

#[test]
fn accepting_a_leak_class_is_by_name_and_only_that_class() {
    if engine().is_apple() {
        return; // Shown for Apple by the test above (the host class).
    }
    let net = fake_internet();
    let e = engine();
    let h = Harness::new();
    // Launched accepting `classes`, then wired straight to the fake internet.
    let leaky_bottle = |classes: &str| {
        h.write_bottle(
            "e2e-accept",
            &format!("{BOTTLE}\n[isolation]\naccept_leaks = [{classes}]\n"),
        );
        h.up("e2e-accept").0.expect_ok("bottle up");
        e.cli(&[
            "network",
            "connect",
            &net.network,
            "bottlebar-e2e-accept-agent",
        ])
        .expect_ok("connecting the agent to the fake internet");
    };
    // Wired to the fake internet, the agent reaches it on v4, v6 and DNS,
    // and the host as that network's gateway. Accept the two outside
    // classes and it still fails, on the others.
    leaky_bottle("\"outside-ipv4\", \"outside-ipv6\"");
    let v = h.bottle(&["verify", "e2e-accept"]);
    assert_eq!(v.code, 3, "{v:?}");
    let rec = record(&h, "e2e-accept");
    let leaks = rec["leaks"].as_array().unwrap();
    assert!(
        leaks
            .iter()
            .all(|p| p["class"] == "dns" || p["class"] == "host"),
        "{rec:#}"
    );
    assert!(leaks.iter().any(|p| p["class"] == "dns"), "{rec:#}");

    leaky_bottle("\"outside-ipv4\", \"outside-ipv6\", \"dns\", \"host\"");
    let v = h
        .bottle(&["verify", "e2e-accept"])
        .expect_ok("verify with the classes accepted");
    assert!(v.stdout.contains("accepted"), "{v:?}");
}

#[test]
fn a_test_run_without_its_own_targets_is_refused_before_anything_exists() {
    let h = Harness::new();
    h.write_bottle("e2e-guard", BOTTLE);
    h.track("e2e-guard");
    let mut cmd = h.bottle_cmd(&["up", "e2e-guard"]);
    cmd.env_remove("BOTTLEBAR_SELFTEST_TARGETS");
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("BOTTLEBAR_SELFTEST_TARGETS") && stderr.contains("real-world"),
        "{stderr}"
    );
    let (c, n) = engine().labelled("e2e-guard");
    assert!(c.is_empty() && n.is_empty(), "{c:?} {n:?}");
}
