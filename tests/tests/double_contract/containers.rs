//! Containers, mounts, and the shapes of `inspect` and `list`.

use super::*;

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
