//! Homes: two `BOTTLEBAR_HOME`s on one engine (a test suite beside a
//! developer's bottles, a second account, a CI job) never list, stop or
//! sweep each other's bottles; and `bottle`, installed the way
//! `scripts/demo` installs it, works from a fresh shell with nothing set.

use bottlebar_e2e::*;
use std::path::Path;
use std::process::Command;

const MANIFEST: &str = "[agent]\ntemplate = \"busybox\"\n";

#[test]
fn two_homes_on_one_engine_see_and_touch_only_their_own_bottles() {
    let (a, b, c) = (Harness::new(), Harness::new(), Harness::new());
    for h in [&a, &b] {
        h.write_bottle("e2e-homes", MANIFEST);
    }
    a.up("e2e-homes").0.expect_ok("up in home A");
    let running = |h: &Harness| {
        h.ls_entry("e2e-homes")["state"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(running(&a), "running");

    // B has a bottle of that name too, but A's resources are not B's.
    assert_eq!(
        running(&b),
        "not_launched",
        "B does not see A's bottle as its own"
    );
    // C has no such bottle: A's is not listed at all (no "orphan").
    assert!(
        c.ls_entry("e2e-homes").is_null(),
        "{}",
        c.bottle(&["ls"]).stdout
    );

    // B's down and cleanup leave A's bottle alone.
    let down = b
        .bottle(&["down", "e2e-homes", "--json"])
        .expect_ok("down in B");
    assert!(
        down.stdout.contains("belongs to another Bottlebar home"),
        "{}",
        down.stdout
    );
    c.bottle(&["down", "e2e-homes"]).expect_ok("down in C");
    b.bottle(&["cleanup"]).expect_ok("cleanup in B");
    c.bottle(&["cleanup"]).expect_ok("cleanup in C");
    assert_eq!(running(&a), "running", "A's bottle survived B and C");

    // B launching the same name is refused, naming the other home; A's
    // bottle is untouched.
    let up = b.bottle(&["up", "e2e-homes"]);
    assert!(
        !up.ok() && up.stderr.contains("belongs to another Bottlebar home"),
        "{up:?}"
    );
    assert_eq!(running(&a), "running");

    // Every resource carries A's id.
    let id = std::fs::read_to_string(a.home.path().join("home-id")).unwrap();
    for name in ["bottlebar-e2e-homes-agent", "bottlebar-e2e-homes-sidecar"] {
        assert_eq!(
            engine().label(name, "bottlebar.home").trim(),
            id.trim(),
            "{name}"
        );
    }
    a.bottle(&["down", "e2e-homes"]).expect_ok("down in A");
    assert_eq!(running(&a), "not_launched");
}

#[test]
fn bottle_installed_as_the_demo_does_works_from_a_fresh_shell() {
    let h = Harness::new();
    let bin = tempfile::tempdir().unwrap();
    let install =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-cli"))
            .arg(bin.path())
            .arg(bottle_bin())
            .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin())
            .output()
            .unwrap();
    let install = Run::from(install).expect_ok("scripts/install-cli");
    assert_eq!(
        install.stdout.trim(),
        bin.path().join("bottle").display().to_string()
    );
    // A fresh shell: PATH with the install directory, HOME, and nothing of
    // Bottlebar's but what every test sets (its home, the engine, and the
    // self-test's own targets). No BOTTLEBAR_SIDECAR_BIN.
    let fresh = |args: &[&str]| {
        let mut cmd = Command::new("bottle");
        cmd.env_clear()
            .env(
                "PATH",
                format!(
                    "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    bin.path().display()
                ),
            )
            .env("HOME", h.home.path())
            .env("BOTTLEBAR_HOME", h.home.path())
            .args(args);
        selftest_env(&mut cmd);
        engine().bottle_env(&mut cmd);
        Run::from(cmd.output().unwrap())
    };
    h.track("demo");
    let plan = fresh(&["plan", "demo"]).expect_ok("bottle plan demo");
    assert!(
        plan.stdout.contains("Start agent on the internal network"),
        "{}",
        plan.stdout
    );
    fresh(&["up", "demo"]).expect_ok("bottle up demo");
    assert_eq!(h.ls_entry("demo")["state"], "running");
    fresh(&["down", "demo"]).expect_ok("bottle down demo");
    assert_eq!(h.ls_entry("demo")["state"], "not_launched");
}
