//! `/proc` masking, and flags that follow the release being doubled.

use super::*;

#[test]
fn proc_masking_and_flag_versions_follow_the_release() {
    engine();
    documented(
        "Default `/proc`\n  masking exists only from 1.2.0; 1.0 and 1.1 mask no `/proc` paths.",
    );
    let new = Double::new("1.2.2");
    let old = Double::new("1.1.0");
    let probe =
        "cat /proc/timer_list 2>/dev/null | wc -c; grep -c ' /proc/sys proc ro' /proc/mounts";
    let n: Vec<String> = run_sh(&new, &[], probe)
        .stdout
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        n,
        ["0", "1"],
        "1.2.x masks /proc/timer_list and mounts /proc/sys read-only"
    );
    let o: Vec<String> = run_sh(&old, &[], probe)
        .stdout
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_ne!(o[0], "0", "1.1 masks nothing");
    assert_eq!(o[1], "0", "1.1 leaves /proc/sys writable as mounted");
    documented("`--masked-path`/`--read-only-path` (1.2.1+ only, experimental; 1.2.0 rejects them with exit 64)");
    let r = run_sh(
        &new,
        &["--masked-path", "/etc/secret", "--read-only-path", "/etc"],
        "cat /etc/secret | wc -c; touch /etc/x 2>&1 | grep -c Read-only",
    );
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "1"],
        "{r:?}"
    );
    let r = run_sh(
        &new,
        &["--masked-path", "NONE"],
        "cat /proc/timer_list | wc -c",
    );
    assert_ne!(r.stdout.trim(), "0", "NONE unmasks the defaults");
    Double::new("1.2.0").fails(
        &["run", "--masked-path", "/x", image(&new), "true"],
        64,
        "Unknown option '--masked-path'",
    );
    Double::new("0.11.0").fails(
        &["run", "--cap-drop", "ALL", image(&new), "true"],
        64,
        "Unknown option '--cap-drop'",
    );
    Double::new("0.9.0").fails(
        &["run", "--init", image(&new), "true"],
        64,
        "Unknown option '--init'",
    );
    Double::new("0.12.3").fails(
        &["create", "--progress", "plain", image(&new), "true"],
        64,
        "Unknown option '--progress'",
    );
    documented("**Not accepted (exit 64):** `--security-opt`");
    for flag in [
        ["--security-opt", "no-new-privileges"].as_slice(),
        &["--privileged"],
        &["--pids-limit", "10"],
        &["--sysctl", "a=b"],
        &["--device", "/dev/null"],
        &["--group-add", "1"],
        &["--userns", "host"],
        &["--cgroupns", "host"],
        &["--hostname", "h"],
        &["--add-host", "a:1.2.3.4"],
        &["--memory-swap", "1g"],
        &["--cpu-shares", "2"],
        &["--restart", "always"],
        &["--pid", "host"],
        &["--ipc", "host"],
        &["--uts", "host"],
    ] {
        let mut args = vec!["run"];
        args.extend(flag);
        args.extend([image(&new), "true"]);
        new.fails(&args, 64, &format!("Unknown option '{}'", flag[0]));
    }
    // Pull flags are checked, though the double never pulls.
    new.fails(
        &["run", "--scheme", "gopher", image(&new), "true"],
        1,
        "unsupported scheme gopher",
    );
    assert!(new
        .run(&[
            "run",
            "--rm",
            "--scheme",
            "https",
            "--max-concurrent-downloads",
            "2",
            image(&new),
            "true"
        ])
        .ok());
    // Flags that need a Mac are refused, never accepted and dropped.
    for flag in [
        ["--ssh"].as_slice(),
        &["--rosetta"],
        &["--platform", "linux/amd64"],
        &["--kernel", "/k"],
        &["--arch", "amd64"],
        &["--os", "linux"],
        &["--virtualization"],
        &["--publish-socket", "/a:/b"],
        &["--kernel-arg", "x"],
        &["--init-image", "i"],
        &["--runtime", "r"],
    ] {
        let mut args = vec!["run"];
        args.extend(flag);
        args.extend([image(&new), "true"]);
        new.fails(&args, 1, "not emulated");
    }
}
