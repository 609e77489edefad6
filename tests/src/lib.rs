//! Helpers for the end-to-end suites: a private `BOTTLEBAR_HOME`, the `bottle`
//! CLI, the engine under test, and the fake "internet" (upstream server
//! containers that the tests start on a bottle's egress network).
//!
//! One suite, three engines, chosen by `BOTTLEBAR_E2E_BACKEND`:
//! - `docker` (default): Docker Engine;
//! - `apple-double`: the apple backend through the `container` test double
//!   (`double`), which runs real containers on Docker;
//! - `apple`: the apple backend through the real `container` CLI (on a Mac).
//!
//! The network rule: tests talk only to loopback and to containers they made.
//! Upstreams are reached by address: a bottle pins the test's host names to
//! the upstream's IP (`[hosts]`), so no name is ever looked up outside.

pub mod double;
pub mod double_kit;
pub mod escape;
pub mod procs;
pub mod testkit;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Label on everything the tests create outside a bottle, for cleanup.
pub const TEST_LABEL: &str = "bottlebar-test=1";

/// A finished command.
#[derive(Debug, Clone)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    #[track_caller]
    pub fn expect_ok(self, what: &str) -> Self {
        assert!(
            self.ok(),
            "{what} failed (exit {}):\nstdout: {}\nstderr: {}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn run(cmd: &mut Command) -> Run {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
        .into()
}

/// Runs `cmd` with `input` on its stdin.
pub fn run_stdin(cmd: &mut Command, input: &[u8]) -> Run {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap().into()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Where cargo builds (and where the suites keep what outlives a run).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn static_bin(var: &str, name: &str, how: &str) -> PathBuf {
    let p = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        target_dir()
            .join("x86_64-unknown-linux-gnu/release")
            .join(name)
    });
    assert!(
        p.is_file(),
        "{name} not found at {}: {how} (scripts/test does), or set {var}",
        p.display()
    );
    p
}

/// The static sidecar binary (`scripts/build-sidecar` makes it).
pub fn sidecar_bin() -> PathBuf {
    static_bin(
        "BOTTLEBAR_SIDECAR_BIN",
        "bottlebar-sidecar",
        "run scripts/build-sidecar",
    )
}

/// The static test kit (`scripts/build-static bottlebar-e2e bottlebar-testkit` makes it).
pub fn testkit_bin() -> PathBuf {
    static_bin(
        "BOTTLEBAR_TESTKIT_BIN",
        "bottlebar-testkit",
        "run `scripts/build-static bottlebar-e2e bottlebar-testkit`",
    )
}

/// A binary built next to this executable (`bottle`, the `container`
/// double): beside it (a tool in `target/debug`), or one level up (a test
/// in `target/debug/deps`).
fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let p = [dir, dir.parent().unwrap_or(dir)]
        .iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| dir.join(name));
    assert!(
        p.is_file(),
        "`{name}` not found at {}: run `cargo build --workspace` first (scripts/test does)",
        p.display()
    );
    p
}

pub fn bottle_bin() -> PathBuf {
    sibling_bin("bottle")
}

/// The `container` test double.
pub fn double_bin() -> PathBuf {
    sibling_bin("container")
}

/// Which engine the suites run against.
pub enum Engine {
    Docker,
    /// Apple's CLI, or its test double.
    Apple {
        program: PathBuf,
        double: bool,
    },
}

/// The engine chosen by `BOTTLEBAR_E2E_BACKEND`. Fails loudly when it is not
/// there: these suites must never pass by not running.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let e = match std::env::var("BOTTLEBAR_E2E_BACKEND").as_deref() {
            Ok("docker") | Err(_) => Engine::Docker,
            Ok("apple-double") => Engine::Apple {
                program: sibling_bin("container"),
                double: true,
            },
            Ok("apple") => Engine::Apple {
                program: std::env::var_os("BOTTLEBAR_CONTAINER")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "container".into()),
                double: false,
            },
            Ok(other) => {
                panic!("BOTTLEBAR_E2E_BACKEND={other}: expected docker, apple-double or apple")
            }
        };
        let probe = match &e {
            Engine::Docker => {
                run(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
            }
            Engine::Apple { program, .. } => {
                run(Command::new(program).args(["system", "status", "--format", "json"]))
            }
        };
        assert!(
            probe.ok(),
            "the end-to-end suites need a running engine (scripts/test starts Docker): {}",
            probe.stderr
        );
        e
    })
}

/// Runs `docker` with `args` (Docker itself, whatever the engine under test).
pub fn docker(args: &[&str]) -> Run {
    run(Command::new("docker").args(args))
}

/// The Docker container that owns `container`'s network namespace: itself
/// on Docker; on the apple double, its namespace holder (the double gives
/// each container Apple's interface order that way).
pub fn netns_owner(container: &str) -> String {
    match engine() {
        Engine::Apple { double: true, .. } => format!("bbdouble-netns-{container}"),
        _ => container.to_string(),
    }
}

/// Runs `docker` with `args` and `input` on its stdin.
pub fn docker_stdin(args: &[&str], input: &[u8]) -> Run {
    run_stdin(Command::new("docker").args(args), input)
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or(Value::Null)
}

impl Engine {
    /// The `--backend` name of this engine.
    pub fn backend(&self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Apple { .. } => "apple",
        }
    }

    pub fn is_apple(&self) -> bool {
        matches!(self, Engine::Apple { .. })
    }

    /// Runs the engine's CLI.
    pub fn cli(&self, args: &[&str]) -> Run {
        match self {
            Engine::Docker => docker(args),
            Engine::Apple { program, .. } => run(Command::new(program).args(args)),
        }
    }

    /// Environment for the `bottle` CLI so it drives this engine.
    pub fn bottle_env(&self, cmd: &mut Command) {
        cmd.env("BOTTLEBAR_BACKEND", self.backend());
        if let Engine::Apple { program, double } = self {
            cmd.env("BOTTLEBAR_CONTAINER", program);
            // The double's own settings (its state, the release it plays,
            // the test kit it holds namespaces with), for a command run
            // with a cleared environment.
            if *double {
                for (k, v) in std::env::vars() {
                    if k.starts_with("BOTTLEBAR_DOUBLE_") || k == "BOTTLEBAR_TESTKIT_BIN" {
                        cmd.env(k, v);
                    }
                }
            }
        }
    }

    pub fn exec(&self, container: &str, argv: &[&str]) -> Run {
        let mut a = vec!["exec", container];
        a.extend(argv);
        self.cli(&a)
    }

    pub fn exec_detached(&self, container: &str, argv: &[&str]) -> Run {
        let mut a = vec!["exec", "--detach", container];
        a.extend(argv);
        self.cli(&a)
    }

    /// Removes a container, running or not.
    pub fn rm(&self, name: &str) -> Run {
        match self {
            Engine::Docker => self.cli(&["rm", "-f", name]),
            Engine::Apple { .. } => self.cli(&["delete", "--force", name]),
        }
    }

    fn inspect(&self, container: &str) -> Value {
        json_of(&self.cli(&["inspect", container]))[0].clone()
    }

    /// The container's configuration as the engine prints it (to search for secrets).
    pub fn raw_inspect(&self, container: &str) -> String {
        self.cli(&["inspect", container]).stdout
    }

    /// Names of the networks a container is attached to, sorted.
    pub fn networks(&self, container: &str) -> Vec<String> {
        let v = self.inspect(container);
        let mut names: Vec<String> = match self {
            Engine::Docker => v["NetworkSettings"]["Networks"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            Engine::Apple { .. } => v["configuration"]["networks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["network"].as_str().map(String::from))
                .collect(),
        };
        names.sort();
        names
    }

    /// The networks in the order they were given (the first owns the default route).
    pub fn networks_in_order(&self, container: &str) -> Vec<String> {
        match self {
            Engine::Docker => self.networks(container),
            Engine::Apple { .. } => {
                let v = self.inspect(container);
                v["configuration"]["networks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["network"].as_str().map(String::from))
                    .collect()
            }
        }
    }

    /// The container's IPv4 address on `network`.
    pub fn ip(&self, container: &str, network: &str) -> String {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["NetworkSettings"]["Networks"][network]["IPAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Engine::Apple { .. } => v["status"]["networks"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["network"] == network)
                .and_then(|a| a["ipv4Address"].as_str())
                .map(|s| s.split('/').next().unwrap_or("").to_string())
                .unwrap_or_default(),
        }
    }

    /// Is the network internal (Docker `--internal`, Apple host-only)?
    pub fn network_internal(&self, network: &str) -> bool {
        match self {
            Engine::Docker => self.inspect(network)["Internal"] == true,
            Engine::Apple { .. } => {
                json_of(&self.cli(&["network", "inspect", network]))[0]["configuration"]["mode"]
                    == "hostOnly"
            }
        }
    }

    /// The container's main process, as argv.
    pub fn command(&self, container: &str) -> Vec<String> {
        let v = self.inspect(container);
        let list = |x: &Value| {
            x.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect::<Vec<_>>()
        };
        match self {
            Engine::Docker => list(&v["Config"]["Cmd"]),
            Engine::Apple { .. } => {
                let mut argv = vec![v["configuration"]["initProcess"]["executable"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()];
                argv.extend(list(&v["configuration"]["initProcess"]["arguments"]));
                argv
            }
        }
    }

    pub fn uses_init(&self, container: &str) -> bool {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["HostConfig"]["Init"] == true,
            Engine::Apple { .. } => v["configuration"]["useInit"] == true,
        }
    }

    pub fn running(&self, container: &str) -> bool {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["State"]["Running"] == true,
            Engine::Apple { .. } => v["status"]["state"] == "running",
        }
    }

    pub fn env(&self, container: &str) -> Vec<String> {
        let v = self.inspect(container);
        let e = match self {
            Engine::Docker => &v["Config"]["Env"],
            Engine::Apple { .. } => &v["configuration"]["initProcess"]["environment"],
        };
        e.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    }

    /// The image a container runs (its reference).
    /// The value of label `key` on a container (empty when it has none).
    pub fn label(&self, container: &str, key: &str) -> String {
        let v = self.inspect(container);
        let labels = match self {
            Engine::Docker => &v["Config"]["Labels"],
            Engine::Apple { .. } => &v["configuration"]["labels"],
        };
        labels[key].as_str().unwrap_or_default().to_string()
    }

    pub fn image_of(&self, container: &str) -> String {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["Config"]["Image"].as_str(),
            Engine::Apple { .. } => v["configuration"]["image"]["reference"].as_str(),
        }
        .unwrap_or_default()
        .to_string()
    }

    /// The labels of the image a container runs.
    pub fn image_labels(&self, container: &str) -> BTreeMap<String, String> {
        let v = self.inspect(container);
        let labels = match self {
            Engine::Docker => self.inspect(v["Config"]["Image"].as_str().unwrap_or(""))["Config"]
                ["Labels"]
                .clone(),
            Engine::Apple { .. } => {
                let image = v["configuration"]["image"]["reference"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                json_of(&self.cli(&["image", "inspect", &image]))[0]["variants"][0]["config"]
                    ["config"]["Labels"]
                    .clone()
            }
        };
        labels
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Names of the containers and networks labelled as belonging to `bottle`.
    pub fn labelled(&self, bottle: &str) -> (Vec<String>, Vec<String>) {
        match self {
            Engine::Docker => {
                let filter = format!("label=bottlebar.bottle={bottle}");
                let lines = |r: Run| {
                    r.stdout
                        .lines()
                        .map(str::to_string)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                };
                (
                    lines(
                        docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
                            .expect_ok("docker ps"),
                    ),
                    lines(
                        docker(&[
                            "network",
                            "ls",
                            "--filter",
                            &filter,
                            "--format",
                            "{{.Name}}",
                        ])
                        .expect_ok("docker network ls"),
                    ),
                )
            }
            Engine::Apple { .. } => {
                let ours = |v: Value| {
                    let mut names: Vec<String> = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|x| x["configuration"]["labels"]["bottlebar.bottle"] == bottle)
                        .filter_map(|x| x["id"].as_str().map(String::from))
                        .collect();
                    names.sort();
                    names
                };
                (
                    ours(json_of(
                        &self
                            .cli(&["ls", "--all", "--format", "json"])
                            .expect_ok("container ls"),
                    )),
                    ours(json_of(
                        &self
                            .cli(&["network", "ls", "--format", "json"])
                            .expect_ok("container network ls"),
                    )),
                )
            }
        }
    }

    /// Builds `context` (a directory with a Dockerfile) as `tag`.
    pub fn build(&self, tag: &str, context: &Path) {
        let ctx = context.display().to_string();
        self.cli(&[
            "build", "--quiet", "--label", TEST_LABEL, "--tag", tag, &ctx,
        ])
        .expect_ok("building a test image");
    }

    /// Starts a detached container on `network`, with read-only directory mounts.
    pub fn run_detached(
        &self,
        name: &str,
        network: &str,
        image: &str,
        mounts: &[(&Path, &str)],
        argv: &[&str],
    ) -> Run {
        let _ = self.rm(name);
        let mounts: Vec<String> = mounts
            .iter()
            .map(|(h, t)| format!("type=bind,source={},target={t},readonly", h.display()))
            .collect();
        let mut a = vec![
            "run",
            "--detach",
            "--name",
            name,
            "--label",
            TEST_LABEL,
            "--network",
            network,
        ];
        for m in &mounts {
            a.extend(["--mount", m]);
        }
        a.push(image);
        a.extend(argv);
        self.cli(&a)
    }

    /// Creates a stopped container named `name` (to take a name a launch needs).
    pub fn create_stopped(&self, name: &str, image: &str) -> Run {
        let _ = self.rm(name);
        self.cli(&["create", "--name", name, "--label", TEST_LABEL, image, "sh"])
    }

    /// Runs `sh -c script` in a throwaway container on `network` (the control
    /// that proves a target is reachable at all, so a blocked attack means isolation).
    pub fn run_on(&self, network: &str, script: &str) -> Run {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("bottlebar-test-client-{}-{n}", std::process::id());
        let started = self.run_detached(&name, network, upstream_image(), &[], &["sleep", "60"]);
        started.expect_ok("starting a client container");
        let r = self.exec(&name, &["sh", "-c", script]);
        let _ = self.rm(&name);
        r
    }
}

/// A private Bottlebar home and the CLI pointed at it and at the engine.
pub struct Harness {
    pub home: tempfile::TempDir,
    /// Extra environment for the `bottle` CLI (e.g. secrets a manifest reads).
    pub env: Vec<(String, String)>,
    launched: std::sync::Mutex<Vec<String>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for name in self.launched.lock().unwrap().drain(..) {
            let _ = self.bottle(&["down", &name]);
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        engine();
        let home = tempfile::Builder::new()
            .prefix("bottlebar-e2e-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(home.path().join("bottles")).unwrap();
        if engine().is_apple() {
            // Apple's host-only networks give the host the `.1` address and
            // nothing in Bottlebar can take it away (apple/container#1320);
            // the double reproduces that. The suites accept that one class,
            // as a Mac user would after reading docs/security.md; the
            // self-test still fails on every other leak.
            std::fs::write(
                home.path().join("settings.toml"),
                "accept_leaks = [\"host\"]\n",
            )
            .unwrap();
        }
        Self {
            home,
            env: Vec::new(),
            launched: Default::default(),
        }
    }

    pub fn write_bottle(&self, name: &str, toml: &str) {
        std::fs::write(
            self.home
                .path()
                .join("bottles")
                .join(format!("{name}.toml")),
            toml,
        )
        .unwrap();
    }

    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.home.path().join("state").join(name)
    }

    /// A command for `bottle`, with this harness's home and engine.
    pub fn bottle_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bottle_bin());
        c.args(args)
            .env("BOTTLEBAR_HOME", self.home.path())
            .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin())
            .env_remove("BOTTLEBAR_DNS");
        selftest_env(&mut c);
        engine().bottle_env(&mut c);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn bottle(&self, args: &[&str]) -> Run {
        run(&mut self.bottle_cmd(args))
    }

    /// `name`'s entry in `bottle ls --json` (`null` if not listed).
    pub fn ls_entry(&self, name: &str) -> Value {
        let ls = self.bottle(&["ls", "--json"]).expect_ok("bottle ls");
        let v: Value = serde_json::from_str(&ls.stdout).unwrap();
        v["bottles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Takes `name` down when the harness is dropped (for launches started by hand).
    pub fn track(&self, name: &str) {
        self.launched.lock().unwrap().push(name.to_string());
    }

    /// `bottle up NAME --json`, returning the exit status and the events.
    /// Whatever it launched is taken down when the harness is dropped, so a
    /// failing test leaves nothing behind for the next one.
    pub fn up(&self, name: &str) -> (Run, Vec<Value>) {
        self.track(name);
        let r = self.bottle(&["up", name, "--json"]);
        let events = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (r, events)
    }

    /// Runs `sh -c script` in the bottle's agent.
    pub fn agent_sh(&self, name: &str, script: &str) -> Run {
        engine().exec(&format!("bottlebar-{name}-agent"), &["sh", "-c", script])
    }

    /// Gives a running bottle `manifest` plus `[hosts]` pins (the sidecar
    /// reloads them live), then waits until `ready` holds.
    pub fn pin_hosts(
        &self,
        name: &str,
        manifest: &str,
        pins: &[(&str, &str)],
        ready: impl Fn() -> bool,
    ) -> String {
        let mut text = manifest.to_string();
        text.push_str("\n[hosts]\n");
        for (host, ip) in pins {
            text.push_str(&format!("\"{host}\" = \"{ip}\"\n"));
        }
        self.write_bottle(name, &text);
        self.up(name).0.expect_ok("applying host pins");
        // Ask the sidecar itself until it holds every pin, so no request is
        // made (and no name looked up in DNS) before the pins are in force.
        let pinned = || {
            // busybox's wget, or Node.js in the Debian templates.
            let sup = self.agent_sh(
                name,
                "U=\"$HTTP_PROXY/__bottlebar/status\"; wget -q -O - \"$U\" 2>/dev/null \
                 || node -e 'fetch(process.argv[1]).then(r => r.text()).then(t => console.log(t))' \"$U\"",
            );
            let v: Value = serde_json::from_str(sup.stdout.trim()).unwrap_or(Value::Null);
            pins.iter().all(|(host, ip)| v["hosts"][*host] == *ip)
        };
        wait_until(
            Duration::from_secs(10),
            pinned,
            "the sidecar never picked up the host pins",
        );
        wait_until(
            Duration::from_secs(10),
            ready,
            "the pinned upstream never answered",
        );
        text
    }
}

/// Polls `cond` until it holds, up to `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, cond: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Names of the containers and networks labelled as belonging to `bottle`.
pub fn labelled(bottle: &str) -> (Vec<String>, Vec<String>) {
    engine().labelled(bottle)
}

/// The busybox image the plain upstreams and client containers use, built once.
pub fn upstream_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    const IMAGE: &str = "bottlebar-test/upstream:1";
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        let bin = ctx.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(ctx.path().join("rootfs/www")).unwrap();
        let busybox = std::env::var_os("BOTTLEBAR_BUSYBOX")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/bin/busybox".into());
        std::fs::copy(&busybox, bin.join("busybox"))
            .expect("a static busybox (Debian busybox-static, or set BOTTLEBAR_BUSYBOX)");
        for applet in ["sh", "httpd", "nc", "echo", "printf", "cat", "sleep", "ps"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n",
        )
        .unwrap();
        engine().build(IMAGE, ctx.path());
    });
    IMAGE
}

/// A build context for an agent with the real `git` and `ssh` of this
/// machine: each binary and every shared library it loads (by `ldd`), the
/// dynamic loader, and a static busybox for the shell, `FROM scratch` (no
/// registry). The escape suite attacks with it as an agent would.
pub fn git_agent_context() -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    let root = ctx.path().join("rootfs");
    let output = |cmd: &str| {
        let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
        assert!(
            o.status.success(),
            "`{cmd}` failed: run scripts/setup (git, openssh-client)"
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let exec_path = output("git --exec-path");
    let bins = [
        output("command -v git"),
        format!("{exec_path}/git-remote-https"),
        output("command -v ssh"),
    ];
    let copy = |from: &str| {
        let to = root.join(from.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copying {from}: {e}"));
    };
    for bin in &bins {
        copy(bin);
        for line in output(&format!("ldd {bin}")).lines() {
            // `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
            let path = line
                .split("=>")
                .last()
                .and_then(|r| r.split_whitespace().next())
                .filter(|p| p.starts_with('/'));
            if let Some(lib) = path {
                copy(lib);
            }
        }
    }
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = std::env::var_os("BOTTLEBAR_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/bin/busybox".into());
    std::fs::copy(&busybox, bin.join("busybox")).unwrap();
    for applet in [
        "sh", "sleep", "nc", "cat", "echo", "printf", "env", "grep", "head", "ls", "timeout",
        "wget", "tr", "mkdir", "ps",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for dir in ["etc", "tmp", "root"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    // ssh refuses to run for a user it cannot look up.
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/root GIT_EXEC_PATH={exec_path}\n"
        ),
    )
    .unwrap();
    ctx
}

/// The fake internet, plain HTTP: busybox `httpd` answering `token` at `/`,
/// on `network`. Removed on drop.
pub struct Upstream {
    pub name: String,
    pub ip: String,
}

impl Upstream {
    pub fn start(name: &str, network: &str, token: &str) -> Self {
        let script = format!("echo {token} > /www/index.html && exec httpd -f -p 80 -h /www");
        engine()
            .run_detached(name, network, upstream_image(), &[], &["sh", "-c", &script])
            .expect_ok("starting the upstream");
        let ip = wait_for_ip(name, network);
        Self {
            name: name.to_string(),
            ip,
        }
    }
}

fn wait_for_ip(name: &str, network: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ip = engine().ip(name, network);
        if !ip.is_empty() {
            return ip;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never got an address on {network}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = engine().rm(&self.name);
    }
}

/// The fake internet with TLS: the static test kit serving HTTP (80) and
/// HTTPS (443) with a certificate from `ca` for `names`, on `network`.
/// Removed on drop.
pub struct TlsUpstream {
    pub name: String,
    pub ip: String,
    _certs: tempfile::TempDir,
}

impl TlsUpstream {
    pub fn start(
        name: &str,
        network: &str,
        names: &[&str],
        token: &str,
        ca: &testkit::pki::TestCa,
    ) -> Self {
        let certs = tempfile::tempdir().unwrap();
        let (cert, key) = ca.leaf(names);
        std::fs::write(certs.path().join("cert.pem"), cert).unwrap();
        std::fs::write(certs.path().join("key.pem"), key).unwrap();
        serve_testkit(name, network, certs.path(), token);
        let ip = wait_for_ip(name, network);
        Self {
            name: name.to_string(),
            ip,
            _certs: certs,
        }
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = engine().rm(&self.name);
    }
}

/// The image of the static test kit (built once per test process).
pub fn testkit_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    const IMAGE: &str = "bottlebar-test/tls-upstream:2";
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(testkit_bin(), ctx.path().join("bottlebar-testkit")).unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY bottlebar-testkit /bottlebar-testkit\nENTRYPOINT [\"/bottlebar-testkit\"]\n").unwrap();
        engine().build(IMAGE, ctx.path());
    });
    IMAGE
}

/// Starts the test kit's server (HTTP, HTTPS with `certs/{cert,key}.pem`,
/// DNS, SSH banner) as container `name` on `network`.
fn serve_testkit(name: &str, network: &str, certs: &Path, token: &str) {
    engine()
        .run_detached(
            name,
            network,
            testkit_image(),
            &[(certs, "/certs")],
            &[
                "serve",
                "--cert",
                "/certs/cert.pem",
                "--key",
                "/certs/key.pem",
                "--token",
                token,
            ],
        )
        .expect_ok("starting the test kit's server");
}

/// The outside world of this test process: a network of its own (not any
/// bottle's) with the test kit serving HTTP, HTTPS and DNS, plus a service on
/// this host bound to 0.0.0.0. The self-test's targets point here, never at
/// the real world. Swept by `scripts/test` (label `bottlebar-test=1`).
pub struct FakeInternet {
    pub network: String,
    pub server: String,
    pub ip: String,
    /// Its IPv6 address on the network's own unique-local subnet.
    pub ip6: String,
    /// The `BOTTLEBAR_SELFTEST_TARGETS` file naming the above.
    pub targets_file: PathBuf,
    /// A TCP service on this host, bound to 0.0.0.0 (accepts and closes).
    pub host_service_port: u16,
}

/// Points a `bottle` command's self-test at this process's fake internet,
/// and marks it a test run (which refuses real-world targets).
pub fn selftest_env(cmd: &mut Command) {
    cmd.env("BOTTLEBAR_TEST_RUN", "1")
        .env("BOTTLEBAR_SELFTEST_TARGETS", &fake_internet().targets_file);
}

/// The name every DNS probe of the tests asks for.
pub const OUTSIDE_NAME: &str = "outside.bottlebar.test";

pub fn fake_internet() -> &'static FakeInternet {
    static NET: OnceLock<FakeInternet> = OnceLock::new();
    NET.get_or_init(|| {
        let pid = std::process::id();
        let network = format!("bbtest-internet-{pid}");
        let server = format!("bbtest-internet-{pid}-server");
        let _ = engine().rm(&server);
        let _ = engine().cli(&["network", "rm", &network]);
        // A unique-local IPv6 subnet of its own, so the v6 paths have a
        // target the tests created; the server is its first address.
        let subnet_v6 = format!("fd42:b0:{:x}::/64", pid & 0xffff);
        let ip6 = format!("fd42:b0:{:x}::2", pid & 0xffff);
        let v6_flags: [&str; 2] = match engine() {
            Engine::Docker => ["--ipv6", "--subnet"],
            Engine::Apple { .. } => ["--subnet-v6", ""],
        };
        let mut create = vec!["network", "create", "--label", TEST_LABEL];
        create.extend(v6_flags.iter().filter(|f| !f.is_empty()));
        create.extend([subnet_v6.as_str(), network.as_str()]);
        engine()
            .cli(&create)
            .expect_ok("creating the fake internet's network");
        let ca = testkit::pki::TestCa::new("fake internet");
        let (cert, key) = ca.leaf(&["outside.bottlebar.test"]);
        let certs = tempfile::tempdir().unwrap().keep();
        std::fs::write(certs.join("cert.pem"), cert).unwrap();
        std::fs::write(certs.join("key.pem"), key).unwrap();
        serve_testkit(&server, &network, &certs, "fake-internet");
        let ip = wait_for_ip(&server, &network);
        let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let host_service_port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
        let targets_file =
            std::env::temp_dir().join(format!("bottlebar-selftest-targets-{pid}.json"));
        let targets = serde_json::json!({
            "outside": [format!("{ip}:443"), format!("{ip}:80"), format!("[{ip6}]:443")],
            "resolvers": [ip, ip6],
            "dns_name": OUTSIDE_NAME,
            "host_ports": [22, 53, 80, 443, 2375, 8080, host_service_port],
        });
        std::fs::write(&targets_file, targets.to_string()).unwrap();
        // Removed when the test process exits (the test harness exits
        // through `exit`, which runs `atexit` handlers): a leftover network
        // per test process would soon use up Docker's address pools.
        extern "C" fn remove_fake_internet() {
            if let Some(net) = NET.get() {
                let _ = engine().rm(&net.server);
                let _ = engine().cli(&["network", "rm", &net.network]);
                let _ = std::fs::remove_file(&net.targets_file);
            }
        }
        // SAFETY: registering a plain `extern "C"` function.
        unsafe {
            libc::atexit(remove_fake_internet);
        }
        FakeInternet {
            network,
            server,
            ip,
            ip6,
            targets_file,
            host_service_port,
        }
    })
}

/// Whether this run puts agents under gVisor (`BOTTLEBAR_GVISOR=on`).
pub fn gvisor_run() -> bool {
    std::env::var("BOTTLEBAR_GVISOR").as_deref() == Ok("on")
}

/// The engine as the security report names it.
pub fn backend_label() -> &'static str {
    match engine() {
        Engine::Docker if gvisor_run() => "docker + gVisor",
        Engine::Docker => "docker",
        Engine::Apple { double: true, .. } => "apple (double)",
        Engine::Apple { double: false, .. } => "apple",
    }
}

/// Where the escape suite writes one JSON result per attack and backend;
/// `bottlebar-security-report` turns them into `docs/security.md`.
pub fn security_results_dir() -> PathBuf {
    std::env::var_os("BOTTLEBAR_SECURITY_RESULTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("security-results"))
}

/// One attack of the escape suite: controls prove it could be attempted,
/// checks prove it failed. Written out on [`Attack::finish`], which fails
/// the test on a leak or on an attack that could not be attempted.
pub struct Attack {
    id: u32,
    title: &'static str,
    attempts: Vec<String>,
    leaks: Vec<String>,
    not_attempted: Vec<String>,
    accepted: Vec<String>,
}

impl Attack {
    pub fn new(id: u32, title: &'static str) -> Self {
        Self {
            id,
            title,
            attempts: vec![],
            leaks: vec![],
            not_attempted: vec![],
            accepted: vec![],
        }
    }

    /// An attempt that got through in a leak class the bottle accepts
    /// knowingly (e.g. `host` on Apple): reported as such, not hidden.
    pub fn accepted_leak(&mut self, what: impl Into<String>) {
        let what = what.into();
        self.accepted.push(what.clone());
        self.attempts.push(what);
    }

    /// A control: the target answers where it should (else the attack
    /// could not really be attempted, and a "block" would prove nothing).
    pub fn control(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.not_attempted.push(what.into());
        }
    }

    /// One attempt; `blocked` must hold.
    pub fn blocked(&mut self, blocked: bool, what: impl Into<String>) {
        let what = what.into();
        if !blocked {
            self.leaks.push(what.clone());
        }
        self.attempts.push(what);
    }

    #[track_caller]
    pub fn finish(self) {
        let outcome = if !self.leaks.is_empty() {
            "LEAKED"
        } else if !self.not_attempted.is_empty() || self.attempts.is_empty() {
            "NOT ATTEMPTED"
        } else if !self.accepted.is_empty() {
            "blocked, except accepted leaks"
        } else {
            "blocked"
        };
        let dir = security_results_dir().join(backend_label().replace([' ', '(', ')'], ""));
        std::fs::create_dir_all(&dir).unwrap();
        let v = serde_json::json!({
            "id": self.id,
            "title": self.title,
            "backend": backend_label(),
            "outcome": outcome,
            "attempts": self.attempts,
            "leaks": self.leaks,
            "not_attempted": self.not_attempted,
            "accepted": self.accepted,
        });
        std::fs::write(
            dir.join(format!("{:02}.json", self.id)),
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
        assert!(
            self.leaks.is_empty(),
            "attack {} succeeded: {:?}",
            self.id,
            self.leaks
        );
        assert!(
            self.not_attempted.is_empty() && !self.attempts.is_empty(),
            "attack {} could not be attempted: {:?}",
            self.id,
            self.not_attempted
        );
    }
}

/// A unique token for one test, so a response proves which server sent it.
pub fn token(tag: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("bottlebar-{tag}-{}-{nanos}", std::process::id())
}

/// A shell script that sends `request` (lines joined with CRLF, ending in a
/// blank line) to `host:port` with busybox `nc` and prints the reply. The
/// pause keeps `nc` from closing before the reply arrives.
pub fn raw_http(host: &str, port: u16, request_lines: &[&str]) -> String {
    let mut req = request_lines.join("\\r\\n");
    req.push_str("\\r\\n\\r\\n");
    format!("(printf '{req}'; sleep 1) | nc -w 5 {host} {port}")
}

/// The Debian image the agent templates are built on here (made by
/// `scripts/make-debian-base`, no registry). Fails loudly when it is missing.
pub fn debian_base() -> String {
    let base = std::env::var("BOTTLEBAR_DEBIAN_BASE")
        .unwrap_or_else(|_| "bottlebar-local/debian:bookworm".into());
    assert!(
        docker(&["image", "inspect", &base]).ok(),
        "no Debian base image {base}: `scripts/make-debian-base` makes it (scripts/test runs it)"
    );
    base
}

/// The CA certificates this machine added to its own trust store (a network
/// that inspects TLS has one): the template builds need them to reach npm.
pub fn machine_roots() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/usr/local/share/ca-certificates")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    v.sort();
    v
}
