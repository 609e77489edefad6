//! Bad input changes nothing.

use super::*;

#[test]
fn bad_input_changes_nothing() {
    let h = Harness::new();
    h.write_bottle("e2e-bad", "[agent]\ntemplate = \"busybox\"\n[[mounts]]\nhost = \"relative/path\"\ncontainer = \"/w\"\n");
    let r = h.bottle(&["up", "e2e-bad"]);
    assert!(!r.ok());
    assert!(
        r.stderr.contains(
            "e2e-bad.toml:4:8: `mounts[0].host`: host path `relative/path` must be absolute"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(labelled("e2e-bad"), (vec![], vec![]));
    assert!(!h.state_dir("e2e-bad").exists());

    let r = h.bottle(&["up", "Bad_Name"]);
    assert!(
        !r.ok() && r.stderr.contains("bottle name `Bad_Name`"),
        "{}",
        r.stderr
    );
    let r = h.bottle(&["up", "no-such-bottle"]);
    assert!(
        !r.ok() && r.stderr.contains("no bottle named `no-such-bottle`"),
        "{}",
        r.stderr
    );
    let r = h.bottle(&["exec", "e2e-bad", "--", "true"]);
    assert!(
        !r.ok() && r.stderr.contains("is not running"),
        "{}",
        r.stderr
    );
    h.write_bottle(
        "e2e-gate",
        "git_gate = true\n[agent]\ntemplate = \"busybox\"\n",
    );
    let r = h.bottle(&["up", "e2e-gate"]);
    assert!(!r.ok() && r.stderr.contains("git_gate"), "{}", r.stderr);
    if engine().is_apple() {
        assert!(
            r.stderr.contains("not supported on the apple backend yet"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(labelled("e2e-gate"), (vec![], vec![]));
}
