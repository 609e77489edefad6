//! The service's version and status, and the exit codes of usage errors and failures.

use super::*;

#[test]
fn version_and_service_status() {
    documented("`container CLI version <X.Y.Z> (build: release|debug, commit: <7-hex>)`");
    let d = Double::new("1.2.2");
    let v = d.run(&["--version"]);
    let line = v.stdout.trim();
    let re_ok = line
        .strip_prefix("container CLI version 1.2.2 (build: release, commit: ")
        .and_then(|r| r.strip_suffix(')'))
        .is_some_and(|c| c.len() == 7 && c.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(re_ok, "{line}");

    documented(
        r#"`system status --format json`: `{"apiServerAppName","apiServerBuild","apiServerCommit","apiServerVersion","appRoot","installRoot","logRoot"?,"status"}`"#,
    );
    let st: Value =
        serde_json::from_str(&d.run(&["system", "status", "--format", "json"]).stdout).unwrap();
    assert_eq!(st["status"], "running");
    for k in [
        "apiServerAppName",
        "apiServerBuild",
        "apiServerCommit",
        "apiServerVersion",
        "appRoot",
        "installRoot",
    ] {
        assert!(st.get(k).is_some(), "{k}");
    }
    documented("With no stdin it fails with `failed to read user input`");
    d.fails(&["system", "start"], 1, "failed to read user input");
    assert!(d.run(&["system", "start", "--enable-kernel-install"]).ok());
}

#[test]
fn usage_errors_exit_64_and_other_failures_exit_1() {
    documented("Parse errors and `ValidationError` print `Error: <msg>` plus usage, exit 64");
    documented("Any other thrown error exits 1, with `Error: <text>`");
    let d = Double::new("1.2.2");
    d.fails(
        &["run", "--no-such-flag", "x"],
        64,
        "Unknown option '--no-such-flag'",
    );
    d.fails(&["run", "--cpus", "two", "img"], 64, "invalid");
    documented("There is no `network connect` or `disconnect`");
    d.fails(&["network", "connect", "a", "b"], 64, "connect");
    documented("If any requested ID is missing, nothing is printed and it fails with `container not found: a, b` (exit 1)");
    let missing = d.run(&["inspect", "bbdouble-missing-a", "bbdouble-missing-b"]);
    assert_eq!((missing.code, missing.stdout.as_str()), (1, ""));
    assert!(
        missing
            .stderr
            .contains("container not found: bbdouble-missing-a, bbdouble-missing-b"),
        "{missing:?}"
    );
}
