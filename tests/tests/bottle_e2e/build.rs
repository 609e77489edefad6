//! `bottle build`: a bottle's images built ahead, nothing launched; its
//! launch then skips the builds, and a running bottle is left as it is.

use super::*;

/// The `--json` run's events and, on its last line, its result.
fn json_lines(r: &Run) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let result = lines.pop().expect("a result line");
    (lines, result)
}

/// The steps that ran (`step_finished`) and were skipped (`step_skipped`).
fn ran_and_skipped(events: &[Value]) -> (Vec<String>, Vec<String>) {
    let ids = |kind: &str| {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .map(|e| e["step"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    (ids("step_finished"), ids("step_skipped"))
}

const BUILDS: [&str; 2] = ["build-sidecar-image", "build-agent-image"];

#[test]
fn build_makes_the_images_only_and_the_launch_then_skips_its_builds() {
    let e = engine();
    let h = Harness::new();
    const NAME: &str = "e2e-build";
    h.write_bottle(NAME, "[agent]\ntemplate = \"busybox\"\n");
    h.track(NAME);

    // Bad input changes nothing: no such bottle.
    let r = h.bottle(&["build", "e2e-no-such-bottle"]);
    assert!(
        !r.ok() && r.stderr.contains("e2e-no-such-bottle"),
        "{}",
        r.stderr
    );

    // Afresh (an earlier run's image may be there): the agent's is built.
    let r = h
        .bottle(&["build", NAME, "--rebuild", "--json"])
        .expect_ok("bottle build --rebuild");
    let (events, built) = json_lines(&r);
    let (ran, skipped) = ran_and_skipped(&events);
    assert!(ran.contains(&BUILDS[1].to_string()), "{ran:?} {skipped:?}");
    let every: Vec<String> = ran.iter().chain(&skipped).cloned().collect();
    let mut every_sorted = every.clone();
    every_sorted.sort_unstable();
    assert_eq!(
        every_sorted,
        [BUILDS[1], BUILDS[0]],
        "builds only: {every:?}"
    );
    let agent_image = built["agent_image"].as_str().expect("agent_image");
    for image in [agent_image, built["sidecar_image"].as_str().unwrap()] {
        assert!(e.cli(&["image", "inspect", image]).ok(), "{image} is built");
    }
    // Nothing launched, no state left behind.
    assert_eq!(labelled(NAME), (vec![], vec![]));
    assert!(!h.state_dir(NAME).exists(), "no state directory");

    // The launch finds both images and skips both builds.
    let (r, events) = h.up(NAME);
    r.expect_ok("bottle up after bottle build");
    let (ran, skipped) = ran_and_skipped(&events);
    for step in BUILDS {
        assert!(skipped.contains(&step.to_string()), "{step}: ran {ran:?}");
    }
    let running_on = e.image_of(&format!("bottlebar-{NAME}-agent"));
    assert!(
        running_on.ends_with(agent_image),
        "{running_on} is {agent_image}"
    );

    // Built again while it runs: nothing to do, and the bottle runs on.
    let r = h
        .bottle(&["build", NAME, "--json"])
        .expect_ok("bottle build while up");
    let (ran, skipped) = ran_and_skipped(&json_lines(&r).0);
    assert!(ran.is_empty() && skipped.len() == 2, "{ran:?} {skipped:?}");
    assert!(e.running(&format!("bottlebar-{NAME}-agent")));
    assert!(
        h.state_dir(NAME).join("sidecar").is_dir(),
        "its state is kept"
    );
    h.bottle(&["down", NAME]).expect_ok("bottle down");
}
