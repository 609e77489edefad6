//! The `container` test double against the reference it imitates
//! (`shared/reference/apple-container-cli.md`): each check first finds the
//! behaviour in the reference, then makes the double show it. When either
//! drifts, a test fails, instead of the backend passing against a double
//! that no longer matches the real CLI.

use bottlebar_e2e::double_kit::*;
use bottlebar_e2e::*;
use serde_json::Value;
use std::process::Command;

#[test]
fn version_and_service_status() {
    documented("`container CLI version <X.Y.Z> (build: release|debug, commit: <7-hex>)`");
    let d = Double::new("1.2.2");
    let v = d.run(&["--version"]);
    let line = v.stdout.trim();
    let re_ok = line
        .strip_prefix("container CLI version 1.2.2 (build: release, commit: ")
        .and_then(|r| r.strip_suffix(')'))
        .is_some_and(|c| c.len() == 7 && c.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(re_ok, "{line}");

    documented(
        r#"`system status --format json`: `{"apiServerAppName","apiServerBuild","apiServerCommit","apiServerVersion","appRoot","installRoot","logRoot"?,"status"}`"#,
    );
    let st: Value =
        serde_json::from_str(&d.run(&["system", "status", "--format", "json"]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    for k in [
        "apiServerAppName",
        "apiServerBuild",
        "apiServerCommit",
        "apiServerVersion",
        "appRoot",
        "installRoot",
    ] {
        assert!(st.get(k).is_some(), "{k}");
    }
    documented("With no stdin it fails with `failed to read user input`");
    d.fails(&["system", "start"], 1, "failed to read user input");
    assert!(d.run(&["system", "start", "--enable-kernel-install"]).ok());
}

#[test]
fn usage_errors_exit_64_and_other_failures_exit_1() {
    documented("Parse errors and `ValidationError` print `Error: <msg>` plus usage, exit 64");
    documented("Any other thrown error exits 1, with `Error: <text>`");
    let d = Double::new("1.2.2");
    d.fails(
        &["run", "--no-such-flag", "x"],
        64,
        "Unknown option '--no-such-flag'",
    );
    d.fails(&["run", "--cpus", "two", "img"], 64, "invalid");
    documented("There is no `network connect` or `disconnect`");
    d.fails(&["network", "connect", "a", "b"], 64, "connect");
    documented("If any requested ID is missing, nothing is printed and it fails with `container not found: a, b` (exit 1)");
    let missing = d.run(&["inspect", "bbdouble-missing-a", "bbdouble-missing-b"]);
    assert_eq!((missing.code, missing.stdout.as_str()), (1, ""));
    assert!(
        missing
            .stderr
            .contains("container not found: bbdouble-missing-a, bbdouble-missing-b"),
        "{missing:?}"
    );
}

#[test]
fn networks_behave_like_the_real_cli() {
    engine();
    let d = Double::new("1.2.2");
    let net = unique("net");
    documented("`--internal` selects `hostOnly`");
    assert_eq!(
        d.run(&["network", "create", "--internal", "--label", "t=1", &net])
            .expect_ok("create")
            .stdout
            .trim(),
        net
    );
    documented("Creating a duplicate fails with `network X already exists`");
    d.fails(
        &["network", "create", &net],
        1,
        &format!("network {net} already exists"),
    );
    documented("`^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$` (lowercase only)");
    d.fails(
        &["network", "create", "Upper-Case"],
        1,
        "invalid network name",
    );
    let inspected = d.run(&["network", "inspect", &net]).expect_ok("inspect");
    let v: Value = serde_json::from_str(&inspected.stdout).unwrap();
    assert_eq!(v[0]["configuration"]["mode"], "hostOnly");
    assert_eq!(v[0]["configuration"]["labels"]["t"], "1");
    assert!(v[0]["status"]["ipv4Subnet"].as_str().unwrap().contains('/'));

    // A container still using it keeps it.
    let c = unique("user");
    d.run(&[
        "create",
        "--name",
        &c,
        "--network",
        &net,
        upstream_image(),
        "sh",
    ])
    .expect_ok("create container");
    documented(r#"exits 1 with `delete failed for one or more networks: ["x"]`"#);
    d.fails(
        &["network", "delete", &net],
        1,
        &format!("delete failed for one or more networks: [\"{net}\"]"),
    );
    d.run(&["delete", &c]).expect_ok("delete stopped container");
    assert_eq!(
        d.run(&["network", "delete", &net])
            .expect_ok("delete network")
            .stdout
            .trim(),
        net
    );
}

#[test]
fn containers_mounts_inspect_and_list_shapes() {
    engine();
    let d = Double::new("1.2.2");
    let (egress, internal, c) = (unique("egress"), unique("internal"), unique("ctr"));
    d.run(&["network", "create", &egress]).expect_ok("egress");
    d.run(&["network", "create", "--internal", &internal])
        .expect_ok("internal");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();

    documented(
        "rejects a file source in the CLI with the exact text `path '<src>' is not a directory`",
    );
    let bad_mount = format!("type=bind,source={},target=/f", file.display());
    d.fails(
        &[
            "run",
            "-d",
            "--name",
            &c,
            "--mount",
            &bad_mount,
            upstream_image(),
            "sleep",
            "60",
        ],
        1,
        &format!("path '{}' is not a directory", file.display()),
    );
    documented("Unknown keys fail with `unknown directive <k> when parsing mount <spec>`");
    d.fails(
        &[
            "run",
            "-d",
            "--name",
            &c,
            "--mount",
            "type=bind,colour=red",
            upstream_image(),
            "sleep",
            "60",
        ],
        1,
        "unknown directive colour when parsing mount",
    );

    let mount = format!(
        "type=bind,source={},target=/d,readonly",
        dir.path().display()
    );
    let id = d.run(&[
        "run",
        "-d",
        "--name",
        &c,
        "--label",
        "bottlebar.bottle=contract",
        "--network",
        &egress,
        "--network",
        &internal,
        "--dns",
        "192.0.2.53",
        "--mount",
        &mount,
        "--init",
        upstream_image(),
        "sleep",
        "60",
    ]);
    assert_eq!(id.expect_ok("run").stdout.trim(), c);
    documented("run: `container with id X already exists`");
    d.fails(
        &["run", "-d", "--name", &c, upstream_image(), "sleep", "1"],
        1,
        &format!("container with id {c} already exists"),
    );

    // inspect: pretty, sorted keys, `" : "`, `\/`, ISO-8601, CIDR addresses, networks in order.
    documented("Foundation pretty output uses 2-space indent and `\"key\" : value`");
    documented(r#"CIDRs print as `"192.168.64.3\/24"`"#);
    let raw = d.run(&["inspect", &c]).expect_ok("inspect").stdout;
    assert!(
        raw.starts_with("[\n  {\n    \"configuration\" : {"),
        "{}",
        &raw[..raw.len().min(200)]
    );
    assert!(
        raw.contains("\\/") && !raw.replace("\\/", "").contains('/'),
        "every slash is escaped"
    );
    let v: Value = serde_json::from_str(&raw).unwrap();
    let obj = v[0].as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        vec!["configuration", "id", "status"]
    );
    assert_eq!(v[0]["status"]["state"], "running");
    let started = v[0]["status"]["startedDate"].as_str().unwrap();
    assert!(
        started.len() == 20 && started.ends_with('Z') && started.as_bytes()[10] == b'T',
        "{started}"
    );
    let nets: Vec<&str> = v[0]["status"]["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["network"].as_str().unwrap())
        .collect();
    assert_eq!(
        nets,
        vec![egress.as_str(), internal.as_str()],
        "attachments keep the --network order"
    );
    let cidr = v[0]["status"]["networks"][1]["ipv4Address"]
        .as_str()
        .unwrap();
    assert!(
        cidr.contains('/')
            && cidr
                .split('/')
                .next()
                .unwrap()
                .parse::<std::net::Ipv4Addr>()
                .is_ok(),
        "{cidr}"
    );
    assert_eq!(
        v[0]["configuration"]["dns"]["nameservers"],
        serde_json::json!(["192.0.2.53"])
    );
    assert_eq!(v[0]["configuration"]["useInit"], true);
    assert_eq!(
        v[0]["configuration"]["mounts"][0]["type"],
        serde_json::json!({"virtiofs": {}})
    );
    assert_eq!(
        v[0]["configuration"]["mounts"][0]["options"],
        serde_json::json!(["ro"])
    );

    documented(
        "`--format json` prints the same element shape as inspect (1.x), but compact, single-line",
    );
    let ls = d
        .run(&["ls", "--all", "--format", "json"])
        .expect_ok("ls")
        .stdout;
    assert_eq!(ls.trim().lines().count(), 1);
    let list: Value = serde_json::from_str(&ls).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == c.as_str()));

    documented("`container <id> is not running`");
    documented("Deleting a running container without `-f` fails with `container X is running and can not be deleted`");
    d.fails(
        &["delete", &c],
        1,
        &format!("container {c} is running and can not be deleted"),
    );
    assert_eq!(
        d.run(&["exec", &c, "echo", "hi"]).expect_ok("exec").stdout,
        "hi\n"
    );
    assert_eq!(
        d.run(&["exec", &c, "sh", "-c", "exit 7"]).code,
        7,
        "the workload's exit code becomes the CLI's"
    );
    d.run(&["stop", &c]).expect_ok("stop");
    d.fails(
        &["exec", &c, "echo", "hi"],
        1,
        &format!("container {c} is not running"),
    );
    let stopped: Value = serde_json::from_str(&d.run(&["inspect", &c]).stdout).unwrap();
    documented("`status.networks` is empty (`[]`) unless the container is running");
    assert_eq!(stopped[0]["status"]["networks"], serde_json::json!([]));
    d.run(&["delete", "--force", &c]).expect_ok("delete");
    d.run(&["network", "delete", &egress, &internal])
        .expect_ok("delete networks");
}

#[test]
fn builder_dns_follows_the_version() {
    documented(
        "`container build --dns X` was silently ignored while a builder was already running",
    );
    documented("Since 1.2.1 (commit e87d3a03), `build` calls `BuilderStart.start` before dialing, so `--dns` on `build` recreates the builder.");
    engine();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\n", upstream_image()),
    )
    .unwrap();
    let ctx_s = ctx.path().display().to_string();
    let dns_of = |d: &Double| -> Value {
        serde_json::from_str::<Value>(&d.run(&["builder", "status", "--format", "json"]).stdout)
            .unwrap()[0]["configuration"]["dns"]["nameservers"]
            .clone()
    };
    for (version, expected) in [
        ("1.0.0", "192.0.2.1"),
        ("1.2.0", "192.0.2.1"),
        ("1.2.2", "192.0.2.2"),
    ] {
        let d = Double::new(version);
        assert_eq!(
            d.run(&["builder", "status", "--format", "json"])
                .stdout
                .trim(),
            "[]"
        );
        d.run(&["builder", "start", "--dns", "192.0.2.1"])
            .expect_ok("builder start");
        d.run(&[
            "build",
            "--quiet",
            "--dns",
            "192.0.2.2",
            "--tag",
            "bottlebar-test/double-build:1",
            &ctx_s,
        ])
        .expect_ok("build");
        assert_eq!(
            dns_of(&d),
            serde_json::json!([expected]),
            "container {version}"
        );
    }
    documented("(without `-f` on a running builder: `BuildKit container is not stopped, use --force to override`)");
    let d = Double::new("1.2.2");
    d.run(&["builder", "start"]).expect_ok("start");
    d.fails(
        &["builder", "delete"],
        1,
        "BuildKit container is not stopped, use --force to override",
    );
    d.run(&["builder", "delete", "--force"]).expect_ok("delete");
}

#[test]
fn version_0_12_3_prints_the_old_shapes() {
    documented("≤0.12.3: a compact JSON array of `PrintableContainer {status:\"running\", configuration, networks:[...], startedDate}`");
    documented("Missing IDs were silently omitted: `[]` with exit 0.");
    let d = Double::new("0.12.3");
    let r = d.run(&["inspect", "bbdouble-not-there"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "[]"));
    assert!(d
        .run(&["--version"])
        .stdout
        .starts_with("container CLI version 0.12.3 "));
}

/// `bottle up` through the double at each version where the behaviour
/// differs: the builder ends up with the bottle's DNS either way, and a
/// pre-1.0 CLI is refused before anything is created.
#[test]
fn bottles_launch_on_each_supported_version_and_older_ones_are_refused() {
    engine();
    // A fresh agent image each time, so the launch really builds (and the
    // builder's DNS matters).
    let manifest = "dns = [\"192.0.2.53\"]\n[agent]\ndockerfile = \"agent/Dockerfile\"\n";
    for version in ["1.0.0", "1.2.0", "1.2.2"] {
        let d = Double::new(version);
        d.run(&["builder", "start", "--dns", "192.0.2.1"])
            .expect_ok("a builder with other DNS");
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("bottles")).unwrap();
        std::fs::write(home.path().join("bottles/e2e-ver.toml"), manifest).unwrap();
        // Apple's host-only networks expose the host (see docs/security.md).
        std::fs::write(
            home.path().join("settings.toml"),
            "accept_leaks = [\"host\"]\n",
        )
        .unwrap();
        std::fs::create_dir_all(home.path().join("bottles/agent")).unwrap();
        std::fs::write(
            home.path().join("bottles/agent/Dockerfile"),
            format!(
                "FROM {}\nLABEL run=\"{}\"\nCMD [\"sh\"]\n",
                upstream_image(),
                token(version)
            ),
        )
        .unwrap();
        let bottle = |args: &[&str]| {
            let mut cmd = Command::new(bottle_bin());
            selftest_env(&mut cmd);
            cmd.args(args)
                .env("BOTTLEBAR_HOME", home.path())
                .env("BOTTLEBAR_BACKEND", "apple")
                .env("BOTTLEBAR_CONTAINER", double_bin())
                .env("BOTTLEBAR_DOUBLE_VERSION", version)
                .env("BOTTLEBAR_DOUBLE_STATE", d.state.path())
                .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin());
            run_stdin(&mut cmd, b"")
        };
        let up = bottle(&["up", "e2e-ver", "--json"]);
        let downed = bottle(&["down", "e2e-ver"]);
        let up = up.expect_ok(&format!("up on container {version}"));
        downed.expect_ok("down");
        let rebuilt = up.stdout.contains("\"step\":\"start-builder\"");
        assert_eq!(
            rebuilt,
            version != "1.2.2",
            "{version}: the builder is recreated only before 1.2.1\n{}",
            up.stdout
        );
        let status: Value =
            serde_json::from_str(&d.run(&["builder", "status", "--format", "json"]).stdout)
                .unwrap();
        assert_eq!(
            status[0]["configuration"]["dns"]["nameservers"],
            serde_json::json!(["192.0.2.53"]),
            "{version}"
        );
    }
    let d = Double::new("0.12.3");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(bottle_bin())
        .args(["up", "demo"])
        .env("BOTTLEBAR_HOME", home.path())
        .env("BOTTLEBAR_BACKEND", "apple")
        .env("BOTTLEBAR_CONTAINER", double_bin())
        .env("BOTTLEBAR_DOUBLE_VERSION", "0.12.3")
        .env("BOTTLEBAR_DOUBLE_STATE", d.state.path())
        .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("container 0.12.3 is too old: Bottlebar needs 1.0.0 or newer"),
        "{stderr}"
    );
    assert!(!home.path().join("state/demo").exists());
}

/// The CLI is a client of the apiserver, which does a request's work: a
/// `container run -d` killed halfway (as `bottle up` kills its engine
/// command when interrupted) must not leave half a container — a network
/// holder on the first network that `list` does not show, so the network
/// can never be deleted. Killed just after the holder is made, the request
/// still finishes: the container is listed, and once deleted, its
/// networks go too.
#[test]
fn a_killed_client_does_not_stop_a_request_halfway() {
    use std::io::BufRead;
    engine();
    documented("Server errors cross XPC as JSON `{code, message}`");
    let d = Double::new("1.2.2");
    let (egress, internal, c) = (
        unique("kill-egress"),
        unique("kill-int"),
        unique("kill-ctr"),
    );
    d.run(&["network", "create", &egress]).expect_ok("egress");
    d.run(&["network", "create", "--internal", &internal])
        .expect_ok("internal");
    // Docker tells when the holder is made; the client is killed right then.
    let mut events = Command::new("docker")
        .args([
            "events",
            "--filter",
            "event=create",
            "--filter",
            &format!("label={}={c}", bottlebar_e2e::double::HOLDER_LABEL),
            "--format",
            "{{.Actor.ID}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut client = d
        .command(&[
            "run",
            "-d",
            "--name",
            &c,
            "--network",
            &egress,
            "--network",
            &internal,
            upstream_image(),
            "sleep",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let (told, made) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = told.send(line);
    });
    let made = made.recv_timeout(std::time::Duration::from_secs(30));
    let _ = client.kill();
    let client_exit = client.wait().unwrap();
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        made.is_ok_and(|l| !l.trim().is_empty()),
        "the holder of `{c}` was never made (client: {client_exit})"
    );

    let listed = || {
        d.run(&["list", "--all", "--quiet"])
            .stdout
            .lines()
            .any(|l| l == c)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !listed() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let finished = listed();
    d.run(&["delete", "--force", &c]);
    let networks = d.run(&["network", "delete", &egress, &internal]);
    // Leave the engine clean for the other tests, then fail.
    for _ in 0..20 {
        if networks.ok() || d.run(&["network", "delete", &egress, &internal]).ok() {
            break;
        }
        let _ = Command::new("docker")
            .args(["rm", "-f", &bottlebar_e2e::double::holder_name(&c)])
            .output();
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        finished,
        "the request of a killed client stopped halfway: `{c}` is not listed"
    );
    assert!(networks.ok(), "{networks:?}");
}
