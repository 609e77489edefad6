//! Capabilities, the user and a read-only root, seen from inside.

use super::*;

#[test]
fn capabilities_user_and_read_only_root_take_effect() {
    engine();
    let d = Double::new("1.2.2");
    documented("drop ALL empties the");
    let c = Running::start(
        &d,
        "caps",
        &[
            "--cap-drop",
            "ALL",
            "--cap-add",
            "cap_net_bind_service",
            "--read-only",
            "--uid",
            "1234",
            "--gid",
            "2345",
        ],
    );
    // A non-root user has no effective set; the bounding set is what the
    // flags shaped.
    assert_eq!(
        cap_set(&c.sh("cat /proc/self/status"), "CapBnd"),
        1 << 10,
        "only NET_BIND_SERVICE"
    );
    assert_eq!(
        c.sh("id -u; id -g").split_whitespace().collect::<Vec<_>>(),
        ["1234", "2345"]
    );
    documented("`--read-only` (0.8.0+) makes the rootfs read-only");
    assert!(c
        .sh("touch /x 2>&1; echo rc=$?")
        .contains("Read-only file system"));
    let cfg = &c.inspect()["configuration"];
    assert_eq!(cfg["readOnly"], true);
    assert_eq!(cfg["capDrop"], serde_json::json!(["ALL"]));
    assert_eq!(cfg["capAdd"], serde_json::json!(["NET_BIND_SERVICE"]));
    assert_eq!(
        cfg["initProcess"]["user"]["id"],
        serde_json::json!({"gid": 2345, "uid": 1234})
    );
    // -u by name, exec's own user flags.
    assert_eq!(
        d.run(&["exec", "--uid", "7", "--gid", "8", &c.id, "id", "-u"])
            .stdout
            .trim(),
        "7"
    );
    assert_eq!(
        d.run(&["exec", "-u", "9:9", &c.id, "id", "-g"])
            .stdout
            .trim(),
        "9"
    );
    documented("a bad name → exit 1, `invalid CapabilityName 'X'`");
    d.fails(
        &["run", "--cap-drop", "NOPE", image(&d), "true"],
        1,
        "invalid CapabilityName 'NOPE'",
    );
    // The default set is Apple's 14 (Docker's too), and Apple's confinement
    // has no seccomp filter and no no-new-privileges.
    documented("No seccomp filter at all");
    let status = run_sh(&d, &[], "cat /proc/self/status").stdout;
    assert_eq!(cap_set(&status, "CapEff").count_ones(), 14, "{status}");
    assert!(status.contains("Seccomp:\t0"), "{status}");
    assert!(status.contains("NoNewPrivs:\t0"), "{status}");
}
