//! `bottle cleanup` sweeps every non-running bottle of its home. It runs in
//! its own test binary (cargo runs test binaries one at a time), never
//! beside other suites' launches, so a mistake in telling homes apart could
//! not hide behind another suite's timing.

use bottlebar_e2e::*;

/// The tests of this binary run one at a time: `cleanup` would sweep the
/// other test's bottle in the middle of its launch.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn cleanup_sweeps_broken_bottles_and_keeps_running_ones() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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
            && l.contains("Needs attention")
            && l.contains("no manifest")),
        "{}",
        ls.stdout
    );

    // A container someone made from the orphan's sidecar image: not the bottle's.
    let impostor = format!("bottlebar-test-orphan-impostor-{}", std::process::id());
    let image = engine().image_of("bottlebar-e2e-orphan-sidecar");
    engine()
        .cli(&["create", "--name", &impostor, "--label", TEST_LABEL, &image])
        .expect_ok("a container from the orphan's image");

    let r = h.bottle(&["cleanup", "--json"]).expect_ok("cleanup");
    assert!(
        r.stdout.contains("\"bottle\":\"e2e-orphan\""),
        "{}",
        r.stdout
    );
    assert!(
        !engine()
            .cli(&["inspect", &impostor])
            .stdout
            .trim()
            .is_empty()
            && engine().cli(&["inspect", &impostor]).ok(),
        "cleanup removed a container that only carries a bottle's image labels"
    );
    engine().rm(&impostor);
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

/// A container someone runs from a bottle's image inherits the image's
/// bottle labels; it is not part of the bottle, and neither `ls` nor `down`
/// treats it as such (`cleanup`: the test above, which must run alone).
#[test]
fn a_container_from_a_bottles_image_is_not_taken_for_the_bottle() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let e = engine();
    let h = Harness::new();
    h.write_bottle("e2e-image", "[agent]\ntemplate = \"busybox\"\n");
    h.up("e2e-image").0.expect_ok("up");
    let plan = h.bottle(&["plan", "e2e-image", "--json"]).expect_ok("plan");
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let run_agent: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "run-agent")
        .map(|s| serde_json::from_value(s["argv"].clone()).unwrap())
        .unwrap();
    let image = &run_agent[run_agent.len() - 3]; // `<image> sleep 2147483647`
    let impostor = format!("bottlebar-test-impostor-{}", std::process::id());
    e.cli(&[
        "run", "--detach", "--name", &impostor, "--label", TEST_LABEL, image, "sleep", "120",
    ])
    .expect_ok("a container from the bottle's agent image");
    assert_eq!(
        e.image_labels(&impostor)
            .get("bottlebar.bottle")
            .map(String::as_str),
        Some("e2e-image"),
        "the impostor should carry the image's labels for this test to mean anything"
    );
    // Not counted: the bottle is simply running.
    assert_eq!(h.ls_entry("e2e-image")["state"], "running");
    h.bottle(&["down", "e2e-image"]).expect_ok("down");
    assert!(
        e.running(&impostor),
        "down removed a container that is not the bottle's"
    );
    assert_eq!(labelled("e2e-image").1, Vec::<String>::new());
    e.rm(&impostor);
}
