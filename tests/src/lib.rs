//! Helpers for the end-to-end suites: a private `BOTTLEBAR_HOME`, the `bottle`
//! CLI, `docker`, and the fake "internet" (an upstream HTTP server container
//! that the tests attach to a bottle's egress network).
//!
//! The network rule: tests talk only to loopback and to containers they made.
//! The upstream answers for allowlisted names through Docker network aliases,
//! so a request for `example.com` from the sidecar reaches the test's own
//! container, never the real host.

pub mod testkit;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Image of the fake upstream: a static busybox running `httpd`.
pub const UPSTREAM_IMAGE: &str = "bottlebar-test/upstream:1";
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

fn run(cmd: &mut Command) -> Run {
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `docker` with `args`.
pub fn docker(args: &[&str]) -> Run {
    run(Command::new("docker").args(args))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The static sidecar binary (`scripts/build-sidecar` makes it).
pub fn sidecar_bin() -> PathBuf {
    let p = std::env::var_os("BOTTLEBAR_SIDECAR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("x86_64-unknown-linux-gnu/release/bottlebar-sidecar"));
    assert!(
        p.is_file(),
        "static sidecar binary not found at {}: run scripts/build-sidecar (scripts/test does)",
        p.display()
    );
    p
}

/// The static test kit (`scripts/build-static bottlebar-e2e bottlebar-testkit` makes it).
pub fn testkit_bin() -> PathBuf {
    let p = std::env::var_os("BOTTLEBAR_TESTKIT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("x86_64-unknown-linux-gnu/release/bottlebar-testkit"));
    assert!(p.is_file(), "static test kit not found at {}: run `scripts/build-static bottlebar-e2e bottlebar-testkit` (scripts/test does)", p.display());
    p
}

/// The `bottle` binary built next to this test executable.
pub fn bottle_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("bottle"))
        .unwrap();
    assert!(
        p.is_file(),
        "`bottle` not found at {}: run `cargo build -p bottlebar-core` first (scripts/test does)",
        p.display()
    );
    p
}

/// Fails loudly when Docker is not there: these suites must never pass by not running.
pub fn require_docker() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let v = docker(&["version", "--format", "{{.Server.Version}}"]);
        assert!(
            v.ok(),
            "the end-to-end suites need a running Docker Engine (scripts/test starts one): {}",
            v.stderr
        );
    });
}

/// A private Bottlebar home and the CLI pointed at it.
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
        require_docker();
        let home = tempfile::Builder::new()
            .prefix("bottlebar-e2e-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(home.path().join("bottles")).unwrap();
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

    /// A command for `bottle`, with this harness's home.
    pub fn bottle_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bottle_bin());
        c.args(args)
            .env("BOTTLEBAR_HOME", self.home.path())
            .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin())
            .env("BOTTLEBAR_BACKEND", "docker")
            .env_remove("BOTTLEBAR_DNS");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn bottle(&self, args: &[&str]) -> Run {
        run(&mut self.bottle_cmd(args))
    }

    /// `bottle up NAME --json`, returning the exit status and the events.
    /// Whatever it launched is taken down when the harness is dropped, so a
    /// failing test leaves nothing behind for the next one.
    pub fn up(&self, name: &str) -> (Run, Vec<serde_json::Value>) {
        self.launched.lock().unwrap().push(name.to_string());
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
        docker(&[
            "exec",
            &format!("bottlebar-{name}-agent"),
            "sh",
            "-c",
            script,
        ])
    }
}

/// Names of the containers and networks labelled as belonging to `bottle`.
pub fn labelled(bottle: &str) -> (Vec<String>, Vec<String>) {
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

/// `docker inspect` of one object as JSON.
pub fn inspect(what: &str) -> serde_json::Value {
    let r = docker(&["inspect", what]).expect_ok("docker inspect");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v[0].clone()
}

/// Builds the upstream image once per test binary.
pub fn upstream_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        let bin = ctx.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(ctx.path().join("rootfs/www")).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("a static busybox at /bin/busybox (Debian busybox-static)");
        for applet in ["sh", "httpd", "nc", "echo", "printf", "cat", "sleep"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n",
        )
        .unwrap();
        docker(&[
            "build",
            "--quiet",
            "--label",
            TEST_LABEL,
            "--tag",
            UPSTREAM_IMAGE,
            &ctx.path().display().to_string(),
        ])
        .expect_ok("building the upstream image");
    });
    UPSTREAM_IMAGE
}

/// The fake internet: an HTTP server answering `token` at `/`, attached to
/// `network` under each of `aliases`. Removed on drop.
pub struct Upstream {
    pub name: String,
}

impl Upstream {
    pub fn start(name: &str, network: &str, aliases: &[&str], token: &str) -> Self {
        let image = upstream_image();
        let _ = docker(&["rm", "-f", name]);
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--label",
            TEST_LABEL,
            "--network",
            network,
        ];
        for a in aliases {
            args.extend(["--network-alias", a]);
        }
        let script = format!("echo {token} > /www/index.html && exec httpd -f -p 80 -h /www");
        args.extend([image, "sh", "-c", &script]);
        docker(&args).expect_ok("starting the upstream");
        Self {
            name: name.to_string(),
        }
    }

    /// The upstream's IPv4 address on `network`.
    pub fn ip(&self, network: &str) -> String {
        let v = inspect(&self.name);
        v["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

/// Runs a throwaway client container on `network` (used as the control that
/// proves a target is reachable at all, so a blocked attack means isolation).
pub fn client_on(network: &str, script: &str) -> Run {
    docker(&[
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        "--network",
        network,
        upstream_image(),
        "sh",
        "-c",
        script,
    ])
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

/// The fake internet with TLS: the static test kit serving HTTP (80) and
/// HTTPS (443) with a certificate from `ca` for `names`, attached to
/// `network` under each name. Removed on drop.
pub struct TlsUpstream {
    pub name: String,
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
        static BUILT: OnceLock<()> = OnceLock::new();
        const IMAGE: &str = "bottlebar-test/tls-upstream:1";
        BUILT.get_or_init(|| {
            let ctx = tempfile::tempdir().unwrap();
            std::fs::copy(testkit_bin(), ctx.path().join("bottlebar-testkit")).unwrap();
            std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY bottlebar-testkit /bottlebar-testkit\nENTRYPOINT [\"/bottlebar-testkit\"]\n").unwrap();
            docker(&["build", "--quiet", "--label", TEST_LABEL, "--tag", IMAGE, &ctx.path().display().to_string()]).expect_ok("building the TLS upstream image");
        });
        let certs = tempfile::tempdir().unwrap();
        let (cert, key) = ca.leaf(names);
        std::fs::write(certs.path().join("cert.pem"), cert).unwrap();
        std::fs::write(certs.path().join("key.pem"), key).unwrap();
        let _ = docker(&["rm", "-f", name]);
        let mount = format!(
            "type=bind,source={},target=/certs,readonly",
            certs.path().display()
        );
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--label",
            TEST_LABEL,
            "--network",
            network,
            "--mount",
            &mount,
        ];
        for a in names {
            args.extend(["--network-alias", a]);
        }
        args.extend([
            IMAGE,
            "serve",
            "--cert",
            "/certs/cert.pem",
            "--key",
            "/certs/key.pem",
            "--token",
            token,
        ]);
        docker(&args).expect_ok("starting the TLS upstream");
        Self {
            name: name.to_string(),
            _certs: certs,
        }
    }

    pub fn ip(&self, network: &str) -> String {
        inspect(&self.name)["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}
