//! The `container` test double's flags *take effect*: for every flag of the
//! reference's `run`/`create`/`exec` tables, a container run through the
//! double shows it from inside (capabilities in `/proc/self/status`, a
//! `touch` on a read-only root, resolv.conf, `ip route`, limits, the user),
//! and every refusal has the reference's text and exit code. Each check
//! first finds the behaviour in `shared/reference/apple-container-cli.md`.

use bottlebar_e2e::double_kit::*;
use bottlebar_e2e::*;
use serde_json::Value;

/// A busybox image with every applet, built through the double once.
fn image(d: &Double) -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    const TAG: &str = "bottlebar-test/effects:1";
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("bin")).unwrap();
        let busybox = std::env::var_os("BOTTLEBAR_BUSYBOX")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/bin/busybox".into());
        std::fs::copy(busybox, ctx.path().join("bin/busybox")).unwrap();
        std::fs::write(ctx.path().join("secret"), "to be masked\n").unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY secret /etc/secret\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\nCMD [\"sh\"]\n",
        )
        .unwrap();
        d.run(&[
            "build",
            "--tag",
            TAG,
            "--label",
            TEST_LABEL,
            &ctx.path().display().to_string(),
        ])
        .expect_ok("building the effects image");
    });
    TAG
}

/// Runs `script` in a fresh foreground container with `flags`; its output.
fn run_sh(d: &Double, flags: &[&str], script: &str) -> Run {
    let img = image(d);
    let mut args = vec!["run", "--rm"];
    args.extend(flags);
    args.extend([img, "sh", "-c", script]);
    d.run(&args)
}

/// A running container for exec checks, removed on drop.
struct Running<'a> {
    d: &'a Double,
    id: String,
}

impl<'a> Running<'a> {
    fn start(d: &'a Double, tag: &str, flags: &[&str]) -> Self {
        let id = unique(tag);
        let img = image(d);
        let mut args = vec!["run", "-d", "--name", &id];
        args.extend(flags);
        args.extend([img, "sleep", "300"]);
        d.run(&args).expect_ok("starting a container");
        Running { d, id }
    }

    fn sh(&self, script: &str) -> String {
        self.d
            .run(&["exec", &self.id, "sh", "-c", script])
            .expect_ok(script)
            .stdout
    }

    fn inspect(&self) -> Value {
        let out = self.d.run(&["inspect", &self.id]).expect_ok("inspect");
        serde_json::from_str::<Value>(&out.stdout).unwrap()[0].clone()
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.d.run(&["delete", "--force", &self.id]);
    }
}

/// A capability set from `/proc/self/status` (`CapEff`, `CapBnd`, ...).
fn cap_set(status: &str, field: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or("")
        .trim();
    u64::from_str_radix(hex, 16).unwrap_or(u64::MAX)
}

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

#[test]
fn mounts_volumes_and_tmpfs_take_effect() {
    engine();
    let d = Double::new("1.2.2");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "hello").unwrap();
    let src = dir.path().display().to_string();
    documented("`readonly=false` still mounts read-only");
    let r = run_sh(
        &d,
        &[
            "--mount", &format!("type=bind,source={src},target=/m,readonly=false"),
            "-v", &format!("{src}:/v"),
            "-v", &format!("{src}/f:/single/f:ro"),
            "--mount", "type=tmpfs,destination=/t,size=1m,mode=700",
            "--tmpfs", "/t2",
        ],
        "cat /m/f; touch /m/x 2>&1 | grep -c Read-only; touch /v/written && echo rw; cat /single/f; grep ' /t ' /proc/mounts; grep -c ' /t2 tmpfs' /proc/mounts",
    );
    let out = r.stdout;
    assert!(out.starts_with("hello1\nrw\nhello"), "{out}");
    assert!(
        out.contains("tmpfs /t tmpfs") && out.contains("size=1024k") && out.contains("mode=700"),
        "{out}"
    );
    assert!(dir.path().join("written").exists(), "-v binds read-write");
    documented("(`path '<src>' does not exist`)");
    d.fails(
        &["run", "-v", "/nonexistent/bbdouble:/x", image(&d), "true"],
        1,
        "path '/nonexistent/bbdouble' does not exist",
    );
    documented("`Error: path '<src>' is not a directory`");
    d.fails(
        &[
            "run",
            "--mount",
            &format!("type=bind,source={src}/f,target=/x"),
            image(&d),
            "true",
        ],
        1,
        &format!("path '{src}/f' is not a directory"),
    );
    documented("Unknown keys fail with `unknown directive <k> when parsing mount <spec>`");
    d.fails(
        &["run", "--mount", "type=bind,bogus=1", image(&d), "true"],
        1,
        "unknown directive bogus when parsing mount",
    );
    documented("auto-created if missing with the warning `named volume was automatically created`");
    let vol = unique("vol");
    let r = run_sh(&d, &["-v", &format!("{vol}:/data")], "echo kept > /data/k");
    assert!(
        r.stderr.contains("named volume was automatically created"),
        "{r:?}"
    );
    assert_eq!(
        run_sh(&d, &["-v", &format!("{vol}:/data")], "cat /data/k").stdout,
        "kept\n"
    );
    let _ = docker(&["volume", "rm", &vol]);
}

#[test]
fn networks_dns_and_ports_are_apples() {
    engine();
    let d = Double::new("1.2.2");
    let (nat, host_only) = (unique("eg"), unique("int"));
    d.run(&["network", "create", &nat]).expect_ok("nat network");
    d.run(&["network", "create", "--internal", &host_only])
        .expect_ok("host-only network");
    let gw = |n: &str| -> String {
        let v: Value = serde_json::from_str(&d.run(&["network", "inspect", n]).stdout).unwrap();
        v[0]["status"]["ipv4Gateway"].as_str().unwrap().to_string()
    };
    documented("with several `--network` flags, eth0 is the first one and only it gets the");
    // The host-only network first, although Docker would sort it after the NAT one.
    let c = Running::start(
        &d,
        "order",
        &[
            "--network",
            &host_only,
            "--network",
            &format!("{nat},mtu=1500"),
        ],
    );
    let routes = c.sh("ip route");
    assert_eq!(routes.matches("default").count(), 1, "{routes}");
    assert!(
        routes.contains(&format!("default via {} dev eth0", gw(&host_only))),
        "{routes}"
    );
    let status = c.inspect()["status"].clone();
    let eth0_ip = status["networks"][0]["ipv4Address"]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(
        c.sh("ip -4 addr show eth0").contains(&eth0_ip),
        "eth0 is {host_only}"
    );
    documented("`mtu=` in 0.11.0 (range 1280–65535, default 1280)");
    assert_eq!(
        c.sh("cat /sys/class/net/eth0/mtu /sys/class/net/eth1/mtu")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["1280", "1500"]
    );
    // resolv.conf: the first network's gateway when no --dns is given.
    assert_eq!(
        c.sh("cat /etc/resolv.conf"),
        format!("nameserver {}\n", gw(&host_only))
    );
    assert_eq!(
        c.sh("cat /proc/sys/net/ipv4/ip_forward").trim(),
        "0",
        "a VM kernel's default"
    );
    documented("`--dns`: the container's resolv.conf holds only the given servers.");
    let r = run_sh(
        &d,
        &[
            "--network",
            &nat,
            "--dns",
            "192.0.2.53",
            "--dns",
            "192.0.2.54",
            "--dns-domain",
            "corp.test",
            "--dns-search",
            "a.test",
            "--dns-option",
            "ndots:2",
        ],
        "cat /etc/resolv.conf",
    );
    assert_eq!(r.stdout, "nameserver 192.0.2.53\nnameserver 192.0.2.54\ndomain corp.test\nsearch a.test\noptions ndots:2\n");
    assert_eq!(run_sh(&d, &["--no-dns"], "cat /etc/resolv.conf").stdout, "");
    documented("Combining `--no-dns` with any of those is a ValidationError.");
    d.fails(
        &["run", "--no-dns", "--dns", "1.2.3.4", image(&d), "true"],
        64,
        "--no-dns cannot be combined",
    );
    // mac=, none, default.
    let r = run_sh(
        &d,
        &["--network", &format!("{nat},mac=f2:00:00:00:00:01")],
        "cat /sys/class/net/eth0/address",
    );
    assert_eq!(r.stdout.trim(), "f2:00:00:00:00:01");
    documented("`--network none` (0.6.0+) must be the only `--network`");
    assert_eq!(
        run_sh(&d, &["--network", "none"], "ls /sys/class/net")
            .stdout
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["lo"]
    );
    d.fails(
        &[
            "run",
            "--network",
            "none",
            "--network",
            &nat,
            image(&d),
            "true",
        ],
        1,
        "--network none cannot be combined",
    );
    documented("Without `--network`, a container gets one attachment to `default`.");
    let dflt = Running::start(&d, "dflt", &[]);
    assert_eq!(
        dflt.inspect()["status"]["networks"][0]["network"],
        "default"
    );
    assert!(d
        .run(&["network", "ls", "-q"])
        .stdout
        .lines()
        .any(|l| l == "default"));
    // -p publishes to the host.
    documented("`-p/--publish [host-ip:]host-port:container-port[/tcp|udp]`");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let web = Running::start(
        &d,
        "pub",
        &["--network", &nat, "-p", &format!("127.0.0.1:{port}:7000")],
    );
    web.d
        .run(&[
            "exec",
            "-d",
            &web.id,
            "sh",
            "-c",
            "echo published | nc -l -p 7000",
        ])
        .expect_ok("listener");
    let got = (0..30).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut s, &mut buf).ok()?;
        buf.contains("published").then_some(buf)
    });
    assert!(got.is_some(), "the published port reaches the container");
    assert_eq!(
        web.inspect()["configuration"]["publishedPorts"][0]["hostPort"],
        port
    );
    drop((c, dflt, web));
    d.run(&["network", "delete", &nat, &host_only])
        .expect_ok("cleanup");
}

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

#[test]
fn lifecycle_commands_and_their_refusals() {
    engine();
    let d = Double::new("1.2.2");
    let img = image(&d);
    let id = unique("life");
    assert_eq!(
        d.run(&["create", "--name", &id, img, "sleep", "300"])
            .expect_ok("create")
            .stdout
            .trim(),
        id
    );
    let inspected: Value = serde_json::from_str(&d.run(&["inspect", &id]).stdout).unwrap();
    assert_eq!(inspected[0]["status"]["state"], "stopped");
    assert_eq!(inspected[0]["status"]["networks"], serde_json::json!([]));
    documented(
        "`start [-a|--attach] [-i|--interactive] <id>`: detached by default and prints the ID.",
    );
    assert_eq!(d.run(&["start", &id]).expect_ok("start").stdout.trim(), id);
    documented("Deleting a running container without `-f` fails with `container X is running and can not be deleted`");
    d.fails(&["delete", &id], 1, "is running and can not be deleted");
    documented("No IDs and no `--all` is an error.");
    d.fails(&["stop"], 1, "no containers specified");
    d.fails(&["delete"], 1, "no containers specified");
    d.fails(&["network", "delete"], 1, "no networks specified");
    documented("`kill [-a] [-s KILL] <id>...`");
    assert_eq!(
        d.run(&["kill", "-s", "KILL", &id])
            .expect_ok("kill")
            .stdout
            .trim(),
        id
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        d.run(&["delete", &id]).expect_ok("delete").stdout.trim(),
        id
    );
    documented("`Error: notFound: \"container with ID foo not found\"`");
    d.fails(
        &["stop", &id],
        1,
        &format!("notFound: \"container with ID {id} not found\""),
    );
    documented("`network delete` with one missing name\n  fails with `failed to delete one or more networks: [...]` and deletes nothing.");
    let net = unique("keep");
    d.run(&["network", "create", &net]).expect_ok("network");
    d.fails(
        &["network", "delete", &net, "bbdouble-missing"],
        1,
        "failed to delete one or more networks",
    );
    assert!(
        d.run(&["network", "inspect", &net]).ok(),
        "nothing was deleted"
    );
    d.run(&["network", "delete", &net])
        .expect_ok("delete network");
}

#[test]
fn a_refused_run_leaves_nothing_behind() {
    engine();
    let d = Double::new("1.2.2");
    let img = image(&d);
    // The same name again: refused, and the first container's resolv.conf
    // is not touched.
    let first = Running::start(&d, "same", &["--dns", "192.0.2.1"]);
    d.fails(
        &[
            "run",
            "-d",
            "--name",
            &first.id,
            "--dns",
            "192.0.2.9",
            img,
            "true",
        ],
        1,
        "already exists",
    );
    d.fails(
        &["create", "--name", &first.id, img, "true"],
        1,
        "container already exists",
    );
    assert_eq!(first.sh("cat /etc/resolv.conf"), "nameserver 192.0.2.1\n");
    // A bad flag after a new named volume: no volume is created.
    let vol = unique("novol");
    d.fails(
        &[
            "run",
            "-v",
            &format!("{vol}:/d"),
            "-p",
            "nonsense",
            img,
            "true",
        ],
        64,
        "invalid publish specification",
    );
    assert!(
        !docker(&["volume", "inspect", &vol]).ok(),
        "no volume for a refused run"
    );
    // The engine refuses the container after the volume was made: the
    // volume, the namespace holder and the record all go again.
    let name = unique("undone");
    let r = d.run(&[
        "run",
        "--name",
        &name,
        "-v",
        &format!("{vol}:relative"),
        img,
        "true",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        !docker(&["volume", "inspect", &vol]).ok(),
        "the auto-created volume is removed"
    );
    assert!(
        !docker(&["inspect", &format!("bbdouble-netns-{name}")]).ok(),
        "no holder left"
    );
    d.fails(&["inspect", &name], 1, "container not found");
    assert!(!d
        .state
        .path()
        .join("containers")
        .join(format!("{name}.json"))
        .exists());
}
