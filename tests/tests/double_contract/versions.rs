//! What follows the version being doubled: builder DNS, the old shapes, and which versions a bottle launches on.

use super::*;

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
