//! A half-present bottle is repaired, and unchanged images are not rebuilt.

use super::*;

#[test]
fn a_half_present_bottle_is_repaired_and_unchanged_images_are_not_rebuilt() {
    let e = engine();
    let h = Harness::new();
    h.write_bottle(
        "e2e-half",
        "[agent]\ntemplate = \"busybox\"\n[[egress]]\nhost = \"example.com\"\n",
    );
    h.up("e2e-half").0.expect_ok("first up");

    // Simulate a crash that took the sidecar with it.
    e.rm("bottlebar-e2e-half-sidecar").expect_ok("kill sidecar");
    let ls: Value = serde_json::from_str(&h.bottle(&["ls", "--json"]).stdout).unwrap();
    let st = ls["bottles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "e2e-half")
        .unwrap()
        .clone();
    assert_eq!(st["state"], "partial");
    assert!(
        st["problem"].as_str().unwrap().contains("sidecar missing"),
        "{st}"
    );

    let (r, events) = h.up("e2e-half");
    r.expect_ok("repairing up");
    assert!(events
        .iter()
        .any(|e| e["event"] == "note" && e["message"].as_str().unwrap().contains("half there")));
    let mut skipped: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "step_skipped")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        vec!["build-agent-image", "build-sidecar-image"],
        "{events:?}"
    );
    assert_eq!(events.last().unwrap()["event"], "ready");
    let (containers, networks) = labelled("e2e-half");
    assert_eq!((containers.len(), networks.len()), (2, 2));

    h.bottle(&["down", "e2e-half"]).expect_ok("down");
    assert_eq!(labelled("e2e-half"), (vec![], vec![]));
}
