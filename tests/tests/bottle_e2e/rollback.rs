//! A launch that fails in a middle step undoes everything it created.

use super::*;

#[test]
fn a_failure_in_a_middle_step_rolls_back_everything_it_created() {
    let e = engine();
    let h = Harness::new();
    h.write_bottle("e2e-fail", "[agent]\ntemplate = \"busybox\"\n");
    // Someone else's container already has the sidecar's name: the sidecar
    // step fails after the images and both networks exist.
    let squatter = "bottlebar-e2e-fail-sidecar";
    e.create_stopped(squatter, upstream_image())
        .expect_ok("create squatter");

    let (r, events) = h.up("e2e-fail");
    assert!(!r.ok(), "launch should fail");
    let step = if e.is_apple() {
        "run-sidecar"
    } else {
        "create-sidecar"
    };
    assert!(
        r.stderr.contains(&format!("step `{step}` failed")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("command: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("already"),
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
    let mut undone: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "rollback_step")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    undone.sort_unstable();
    // Both networks; on Docker also the agent, which starts beside the
    // sidecar (its address is the plan's to give) and had finished starting.
    let mut created = vec!["create-egress-network", "create-internal-network"];
    if !e.is_apple() {
        created.push("run-agent");
    }
    assert_eq!(undone, created, "what the launch created is undone");

    assert_eq!(labelled("e2e-fail"), (vec![], vec![]));
    assert!(
        !h.state_dir("e2e-fail").exists(),
        "state created by the failed launch is removed"
    );
    // The launch never touches what it did not create.
    assert!(
        e.cli(&["inspect", squatter]).ok(),
        "the squatter must survive the rollback"
    );
    e.rm(squatter).expect_ok("remove squatter");
}
