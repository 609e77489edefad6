//! Resource limits and process flags, seen from inside.

use super::*;

#[test]
fn limits_resources_and_process_flags_take_effect() {
    engine();
    let d = Double::new("1.2.2");
    documented("`--ulimit type=soft[:hard]` (0.9.0+:");
    let r = run_sh(
        &d,
        &["--ulimit", "nofile=100:200", "--ulimit", "nproc=50"],
        "ulimit -n; ulimit -Hn; ulimit -u",
    );
    assert_eq!(
        r.stdout.split_whitespace().collect::<Vec<_>>(),
        ["100", "200", "50"],
        "{r:?}"
    );
    documented("decimals and `MiB`/`mb` suffixes accepted, a bare number is bytes");
    let c = Running::start(
        &d,
        "res",
        &[
            "-m",
            "1.5g",
            "-c",
            "1",
            "--shm-size",
            "64m",
            "-w",
            "/tmp",
            "-e",
            "A=1",
            "--init",
        ],
    );
    let mem: u64 = c.sh("cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes").trim().parse().unwrap();
    assert_eq!(mem, 3 << 29, "1.5g");
    assert!(
        c.sh("df -k /dev/shm").contains("65536"),
        "{}",
        c.sh("df -k /dev/shm")
    );
    assert_eq!(c.sh("pwd").trim(), "/tmp");
    assert_eq!(c.sh("echo $A").trim(), "1");
    documented("`--init` (0.10.0+) runs an init");
    assert!(
        c.sh("cat /proc/1/cmdline").contains("init"),
        "PID 1 is an init"
    );
    let cfg = &c.inspect()["configuration"];
    assert_eq!(cfg["resources"]["memoryInBytes"], 3u64 << 29);
    assert_eq!(cfg["resources"]["cpus"], 1);
    assert_eq!(cfg["shmSize"], 64u64 << 20);
    assert_eq!(cfg["useInit"], true);
    assert!(d
        .run(&["run", "--rm", "-m", "512MiB", image(&d), "true"])
        .ok());
    documented("Exit 1, not 64, for: a bad label (`a=b=c`), a bad `-m`");
    d.fails(
        &["run", "-m", "lots", image(&d), "true"],
        1,
        "invalid memory size",
    );
    d.fails(
        &["run", "-m", "100m", image(&d), "true"],
        1,
        "below the minimum of 200 MiB",
    );
    d.fails(
        &["run", "-l", "a=b=c", image(&d), "true"],
        1,
        "invalid label format",
    );
    assert_eq!(
        c.inspect()["configuration"]["labels"],
        serde_json::json!({})
    );
    let labelled = Running::start(&d, "lbl", &["-l", "team=red", "-l", "bare"]);
    assert_eq!(
        labelled.inspect()["configuration"]["labels"],
        serde_json::json!({"bare": "", "team": "red"})
    );
    documented("`-c/--cpus <Int64>` takes integers only");
    d.fails(
        &["run", "-c", "1.5", image(&d), "true"],
        64,
        "is invalid for '-c <cpus>'",
    );
    // Environment: image, env files, -e; the last key wins; a bare -e inherits.
    documented("Merge order: image env, then env files, then `-e`. The last key wins.");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "# comment\nX=from-file\nY=file\n").unwrap();
    let out = d
        .run(&[
            "run",
            "--rm",
            "--env-file",
            &file.path().display().to_string(),
            "-e",
            "Y=flag",
            "-e",
            "HOME",
            image(&d),
            "sh",
            "-c",
            "echo $X $Y $HOME",
        ])
        .expect_ok("env");
    assert_eq!(
        out.stdout.trim(),
        format!("from-file flag {}", std::env::var("HOME").unwrap())
    );
    documented("If set and no args are given, the image CMD is dropped.");
    let r = d.run(&["run", "--rm", "--entrypoint", "echo", image(&d)]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "\n"), "{r:?}");
    documented(
        "Foreground `run` (no `-d`) streams the workload's output and exits with its exit code.",
    );
    assert_eq!(run_sh(&d, &[], "echo out; exit 7").code, 7);
    assert_eq!(run_sh(&d, &[], "echo out; exit 7").stdout, "out\n");
    // -i: stdin reaches the workload; -t: the init process has a terminal.
    let r = d.run_stdin(&["run", "--rm", "-i", image(&d), "cat"], "through stdin\n");
    assert_eq!(r.stdout, "through stdin\n", "{r:?}");
    let t = Running::start(&d, "tty", &["-t"]);
    assert!(t.sh("readlink /proc/1/fd/0").contains("/dev/pts/"));
    assert_eq!(
        t.inspect()["configuration"]["initProcess"]["terminal"],
        true
    );
    documented("`-d/--detach`, which prints the ID");
    let ex = d.run(&["exec", "-d", &t.id, "sleep", "1"]);
    assert_eq!(ex.stdout.trim(), t.id);
    let ef = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ef.path(), "Z=from-exec-file\n").unwrap();
    let out = d.run(&[
        "exec",
        "--env-file",
        &ef.path().display().to_string(),
        "-e",
        "Q=flag",
        "--cwd",
        "/bin",
        &t.id,
        "sh",
        "-c",
        "echo $Z $Q; pwd",
    ]);
    assert_eq!(out.stdout, "from-exec-file flag\n/bin\n");
    let r = d.run_stdin(&["exec", "-i", &t.id, "cat"], "exec stdin\n");
    assert_eq!(r.stdout, "exec stdin\n", "{r:?}");
    let r = d.run(&["exec", "-t", &t.id, "sh", "-c", "readlink /proc/self/fd/0"]);
    assert!(
        r.stdout.contains("/dev/pts/"),
        "exec -t gives a terminal: {r:?}"
    );
    documented("The exit code of the exec'd process becomes the CLI exit code.");
    assert_eq!(d.run(&["exec", &t.id, "sh", "-c", "exit 5"]).code, 5);
    documented("`exec` on a\n  missing container: `get failed: container X not found`");
    d.fails(
        &["exec", "bbdouble-no-such", "true"],
        1,
        "get failed: container bbdouble-no-such not found",
    );
    // --cidfile and --rm.
    let cid_dir = tempfile::tempdir().unwrap();
    let cid = cid_dir.path().join("cid");
    let name = unique("rm");
    assert!(d
        .run(&[
            "run",
            "--remove",
            "--name",
            &name,
            "--cidfile",
            &cid.display().to_string(),
            image(&d),
            "true"
        ])
        .ok());
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), name);
    d.fails(&["inspect", &name], 1, "container not found");
}
