//! Networks behave as the real CLI's do.

use super::*;

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
