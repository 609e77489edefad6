//! Faults on Docker: a killed sidecar, the engine down or going away
//! mid-launch, a full disk under the state directory, unreadable rules, and
//! twenty bottles launched at once. Each fault gets a clear error, a
//! rollback, and nothing lost from the bottles already running.
//!
//! (The SIGKILLed CLI is `kill_e2e.rs`: it runs `bottle cleanup`, which must
//! not run beside other launches.)

use bottlebar_e2e::*;
use std::path::Path;
use std::time::{Duration, Instant};

const BOTTLE: &str = "[agent]\ntemplate = \"busybox\"\n";

fn docker_only() -> bool {
    if engine().is_apple() {
        eprintln!("faults_e2e drives Docker itself; skipped on the apple backend");
        return false;
    }
    true
}

/// The proxy answers the agent (its health endpoint, through `HTTP_PROXY`).
fn proxy_answers(h: &Harness, name: &str) -> bool {
    h.agent_sh(
        name,
        "timeout 5 wget -q -O - \"$HTTP_PROXY/__bottlebar/health\" && echo PROXY-OK",
    )
    .stdout
    .contains("PROXY-OK")
}

/// Everything a running bottle keeps in its state directory, by path.
fn state_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["sidecar", "agent-ca"] {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// A fake `docker` that passes through to the real one until `down` exists
/// next to it, then answers as Docker does when its daemon is gone. With
/// `stop_on` set, the first command starting with that word creates `down`
/// (the engine stops just as that step begins).
fn engine_wrapper(dir: &Path, stop_on: Option<&str>) -> std::path::PathBuf {
    let real = which_docker();
    let script = format!(
        "#!/bin/sh\n\
         d=\"$(dirname \"$0\")\"\n\
         {stop}\
         if [ -e \"$d/down\" ]; then\n\
           echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2\n\
           exit 1\n\
         fi\n\
         exec {real} \"$@\"\n",
        stop = stop_on
            .map(|w| format!("if [ \"$1\" = \"{w}\" ]; then touch \"$d/down\"; fi\n"))
            .unwrap_or_default(),
    );
    let path = dir.join("docker");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn which_docker() -> String {
    let r = std::process::Command::new("sh")
        .args(["-c", "command -v docker"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&r.stdout).trim().to_string()
}

#[test]
fn a_killed_sidecar_fails_closed_shows_degraded_and_relaunch_repairs() {
    if !docker_only() {
        return;
    }
    let h = Harness::new();
    h.write_bottle("e2e-sckill", BOTTLE);
    h.up("e2e-sckill").0.expect_ok("up");
    assert!(proxy_answers(&h, "e2e-sckill"));
    docker(&["kill", "bottlebar-e2e-sckill-sidecar"]).expect_ok("killing the sidecar");

    // Fail closed: no proxy, and no other way out either.
    assert!(!proxy_answers(&h, "e2e-sckill"), "the proxy still answers");
    let net = fake_internet();
    let direct = h.agent_sh(
        "e2e-sckill",
        &format!("timeout 5 wget -q -O - http://{}/ && echo OUT", net.ip),
    );
    assert!(!direct.stdout.contains("OUT"), "{direct:?}");
    // Degraded, with the reason.
    let b = h.ls_entry("e2e-sckill");
    assert_eq!(b["state"], "partial", "{b:#}");
    assert!(b["problem"].as_str().unwrap().contains("sidecar"), "{b:#}");
    let verify = h.bottle(&["verify", "e2e-sckill"]);
    assert!(!verify.ok(), "verify on a degraded bottle: {verify:?}");

    // `bottle up` repairs it: running, verified, the proxy answers.
    h.up("e2e-sckill").0.expect_ok("relaunch");
    let b = h.ls_entry("e2e-sckill");
    assert_eq!(b["state"], "running", "{b:#}");
    assert_eq!(b["self_test"]["ready"], true);
    assert!(proxy_answers(&h, "e2e-sckill"));
}

#[test]
fn an_engine_that_is_down_or_goes_away_mid_launch_loses_nothing() {
    if !docker_only() {
        return;
    }
    let mut h = Harness::new();
    h.write_bottle("e2e-eng-keep", BOTTLE);
    h.write_bottle("e2e-eng", BOTTLE);
    h.bottle(&["down", "e2e-eng"])
        .expect_ok("removing leftovers");
    h.up("e2e-eng-keep")
        .0
        .expect_ok("up the bottle that must survive");
    let kept = state_files(&h.state_dir("e2e-eng-keep"));

    // Not running at all: a clear error before anything is made.
    let wrap = tempfile::tempdir().unwrap();
    let fake = engine_wrapper(wrap.path(), None);
    std::fs::write(wrap.path().join("down"), "").unwrap();
    h.env
        .push(("BOTTLEBAR_DOCKER".into(), fake.display().to_string()));
    let r = h.bottle(&["up", "e2e-eng"]);
    assert!(!r.ok());
    assert!(
        r.stderr.contains("e2e-eng") && r.stderr.to_lowercase().contains("docker"),
        "{}",
        r.stderr
    );
    assert!(!h.state_dir("e2e-eng").exists(), "state was created");
    assert_eq!(labelled("e2e-eng"), (vec![], vec![]));

    // Going away as the agent is started: the launch fails, names the step,
    // and cannot roll back (the engine is gone) — and says so.
    let wrap = tempfile::tempdir().unwrap();
    let fake = engine_wrapper(wrap.path(), Some("run"));
    h.env.retain(|(k, _)| k != "BOTTLEBAR_DOCKER");
    h.env
        .push(("BOTTLEBAR_DOCKER".into(), fake.display().to_string()));
    h.track("e2e-eng");
    let r = h.bottle(&["up", "e2e-eng"]);
    assert!(!r.ok());
    // The sidecar is created while the agent starts: the engine's going
    // away fails whichever of the two is in flight, and that one is named.
    assert!(
        r.stderr.contains("run-agent") || r.stderr.contains("create-sidecar"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Cannot connect to the Docker daemon"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("bottle cleanup"), "{}", r.stderr);

    // The engine is back: the next `up` repairs the half bottle.
    std::fs::remove_file(wrap.path().join("down")).unwrap();
    std::fs::write(
        wrap.path().join("docker"),
        format!("#!/bin/sh\nexec {} \"$@\"\n", which_docker()),
    )
    .unwrap();
    h.up("e2e-eng").0.expect_ok("up once the engine is back");
    assert_eq!(h.ls_entry("e2e-eng")["state"], "running");

    // The bottle that was running throughout is untouched.
    assert_eq!(h.ls_entry("e2e-eng-keep")["state"], "running");
    assert_eq!(state_files(&h.state_dir("e2e-eng-keep")), kept);
    // Both are taken down by the harness, through the real engine (the
    // wrapper's directory goes before the harness does).
    h.env.retain(|(k, _)| k != "BOTTLEBAR_DOCKER");
    h.track("e2e-eng-keep");
}

#[test]
fn a_full_disk_under_the_state_directory_fails_cleanly() {
    if !docker_only() {
        return;
    }
    // A small tmpfs as BOTTLEBAR_HOME (the tests run as root; scripts/test does).
    let mnt = tempfile::tempdir().unwrap();
    let m = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=96m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(
        m.success(),
        "mounting a tmpfs needs root (scripts/test runs as root)"
    );
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let home = mnt.path().join("home");
    std::fs::create_dir_all(home.join("bottles")).unwrap();
    let mut h = Harness::new();
    h.env
        .push(("BOTTLEBAR_HOME".into(), home.display().to_string()));
    let in_home = |name: &str| home.join("state").join(name);
    std::fs::write(home.join("bottles/e2e-disk-keep.toml"), BOTTLE).unwrap();
    std::fs::write(home.join("bottles/e2e-disk.toml"), BOTTLE).unwrap();
    h.up("e2e-disk-keep")
        .0
        .expect_ok("up before the disk fills");
    let kept = state_files(&in_home("e2e-disk-keep"));

    // Fill the disk.
    let fill = home.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", fill.display()))
        .stderr(std::process::Stdio::null())
        .status();
    h.track("e2e-disk");
    let r = h.bottle(&["up", "e2e-disk"]);
    assert!(!r.ok());
    assert!(
        r.stderr.contains("e2e-disk") && r.stderr.contains("No space left on device"),
        "{}",
        r.stderr
    );
    assert_eq!(labelled("e2e-disk"), (vec![], vec![]));
    assert!(
        !in_home("e2e-disk").exists(),
        "a half state directory was left"
    );
    // The running bottle lost nothing, and still runs.
    assert_eq!(state_files(&in_home("e2e-disk-keep")), kept);
    assert_eq!(h.ls_entry("e2e-disk-keep")["state"], "running");
    assert!(proxy_answers(&h, "e2e-disk-keep"));

    std::fs::remove_file(&fill).unwrap();
    h.up("e2e-disk").0.expect_ok("up once there is room");
    for n in ["e2e-disk", "e2e-disk-keep"] {
        h.bottle(&["down", n]).expect_ok("down");
    }
}

#[test]
fn bad_rules_close_egress_a_rewritten_rules_file_changes_nothing_and_an_unreadable_manifest_changes_nothing(
) {
    if !docker_only() {
        return;
    }
    // One allowed name, pinned to the sidecar's own loopback where nothing
    // listens: allowed requests get the proxy's 502, refused ones its 403.
    const RULED: &str = "[agent]\ntemplate = \"busybox\"\n[[egress]]\nhost = \"allowed.bottlebar.test\"\n[hosts]\n\"allowed.bottlebar.test\" = \"127.0.0.1\"\n";
    let h = Harness::new();
    h.write_bottle("e2e-rules", RULED);
    h.up("e2e-rules").0.expect_ok("up");
    let answer = |h: &Harness| {
        h.agent_sh(
            "e2e-rules",
            "timeout 5 wget -S -O /dev/null http://allowed.bottlebar.test/ 2>&1",
        )
        .stdout
    };
    let allowed = |out: &str| out.contains("502");
    assert!(
        allowed(&answer(&h)),
        "{}",
        h.bottle(&["logs", "e2e-rules", "--json"]).stdout
    );

    // The rules file rewritten behind the sidecar's back (what an agent
    // with a stray mount would do, issue 10.4): nothing changes.
    let rules = h.state_dir("e2e-rules").join("sidecar/sidecar.json");
    let good = std::fs::read(&rules).unwrap();
    std::fs::write(&rules, b"{ not json").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(allowed(&answer(&h)), "the sidecar read the rewritten file");

    // Rules the sidecar cannot take, pushed the way the core pushes: no
    // egress at all (fail closed), and the refusal says why.
    let pushed = docker_stdin(
        &[
            "exec",
            "-i",
            "bottlebar-e2e-rules-sidecar",
            "/bottlebar-sidecar",
            "reload",
        ],
        b"{ not json",
    );
    assert!(
        !pushed.ok() && pushed.stderr.contains("not valid JSON"),
        "{pushed:?}"
    );
    let closed = answer(&h);
    let logs = h.bottle(&["logs", "e2e-rules", "--json"]).stdout;
    let last: serde_json::Value = serde_json::from_str(logs.lines().last().unwrap()).unwrap();
    assert!(closed.contains("403"), "{closed}");
    assert_eq!(last["reason"], "rules_unreadable", "{logs}");

    // `bottle up` on the running bottle pushes its rules again: egress is back.
    std::fs::write(&rules, &good).unwrap();
    h.up("e2e-rules").0.expect_ok("up on the running bottle");
    assert!(allowed(&answer(&h)), "{}", answer(&h));

    // An unreadable manifest (not UTF-8): a clear error naming the file; the
    // running bottle and its state are untouched.
    let kept = state_files(&h.state_dir("e2e-rules"));
    std::fs::write(
        h.home.path().join("bottles/e2e-rules.toml"),
        b"[agent]\ntemplate = \"\xff\xfe\"\n",
    )
    .unwrap();
    let r = h.bottle(&["up", "e2e-rules"]);
    assert!(!r.ok());
    assert!(r.stderr.contains("e2e-rules.toml"), "{}", r.stderr);
    assert_eq!(state_files(&h.state_dir("e2e-rules")), kept);

    // Repaired: a good manifest and `up` push the rules; egress is back
    // under them.
    h.write_bottle("e2e-rules", RULED);
    h.up("e2e-rules").0.expect_ok("up after repair");
    assert!(allowed(&answer(&h)));
    assert_eq!(h.ls_entry("e2e-rules")["state"], "running");
}

#[test]
fn twenty_bottles_launched_at_once_come_up_isolated_or_fail_cleanly() {
    if !docker_only() {
        return;
    }
    const N: usize = 20;
    let h = Harness::new();
    let names: Vec<String> = (0..N).map(|i| format!("e2e-many-{i:02}")).collect();
    for n in &names {
        h.write_bottle(n, BOTTLE);
        h.track(n);
    }
    let started = Instant::now();
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            h.bottle_cmd(&["up", n])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let results: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let wall = started.elapsed();
    let mut up = 0;
    let mut failures = Vec::new();
    for (n, out) in names.iter().zip(&results) {
        if out.status.success() {
            let b = h.ls_entry(n);
            assert_eq!(b["state"], "running", "{n}: {b:#}");
            assert_eq!(b["self_test"]["ready"], true, "{n}: {b:#}");
            up += 1;
        } else {
            // Failed cleanly: a reason naming the bottle, nothing left.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(n.as_str()), "{n}: {err}");
            assert_eq!(labelled(n), (vec![], vec![]), "{n} left resources: {err}");
            // The whole reason: a self-test's verdict is on its first line.
            failures.push(format!("{n}: {}", err.trim_end()));
        }
    }
    eprintln!(
        "{N} concurrent launches: {up} up and isolated, {} failed cleanly, wall time {:.1}s",
        failures.len(),
        wall.as_secs_f64()
    );
    for f in &failures {
        eprintln!("  {f}");
    }
    // Bottlebar's own subnet pool has room for all of them (Docker's
    // default pools ran out after about a dozen bottles).
    assert_eq!(up, N, "not every bottle came up: {failures:#?}");
    let started = Instant::now();
    let downs: Vec<_> = names
        .iter()
        .map(|n| h.bottle_cmd(&["down", n]).spawn().unwrap())
        .collect();
    for mut d in downs {
        assert!(d.wait().unwrap().success());
    }
    eprintln!(
        "{N} concurrent removals: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for n in &names {
        assert_eq!(labelled(n), (vec![], vec![]), "{n}");
    }
}
