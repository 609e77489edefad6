//! `bottle cleanup` sweeps every non-running bottle on the engine, so it runs
//! in its own test binary (cargo runs test binaries one at a time), never
//! beside other suites' launches.

use bottlebar_e2e::*;

#[test]
fn cleanup_sweeps_broken_bottles_and_keeps_running_ones() {
    let h = Harness::new();
    h.write_bottle("e2e-keep", "[agent]\ntemplate = \"busybox\"\n");
    h.write_bottle("e2e-orphan", "[agent]\ntemplate = \"busybox\"\n");
    h.up("e2e-keep").0.expect_ok("up keep");
    h.up("e2e-orphan").0.expect_ok("up orphan");

    // A crash left the orphan without its agent, and its manifest was deleted.
    engine()
        .rm("bottlebar-e2e-orphan-agent")
        .expect_ok("remove agent");
    std::fs::remove_file(h.home.path().join("bottles/e2e-orphan.toml")).unwrap();
    let ls = h.bottle(&["ls"]).expect_ok("ls");
    assert!(
        ls.stdout.lines().any(|l| l.starts_with("e2e-orphan")
            && l.contains("partial")
            && l.contains("no manifest")),
        "{}",
        ls.stdout
    );

    let r = h.bottle(&["cleanup", "--json"]).expect_ok("cleanup");
    assert!(
        r.stdout.contains("\"bottle\":\"e2e-orphan\""),
        "{}",
        r.stdout
    );
    assert_eq!(labelled("e2e-orphan"), (vec![], vec![]));
    assert!(!h.state_dir("e2e-orphan").exists());
    let (containers, networks) = labelled("e2e-keep");
    assert_eq!(
        (containers.len(), networks.len()),
        (2, 2),
        "a running bottle must survive cleanup"
    );

    h.bottle(&["down", "e2e-keep"]).expect_ok("down keep");
    assert_eq!(labelled("e2e-keep"), (vec![], vec![]));
}
