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

mod attack;
pub mod desktop_portal;
pub mod double;
pub mod double_kit;
mod engine;
pub mod escape;
mod harness;
mod images;
mod internet;
pub mod session_bus;
pub mod webdriver;

// The test kit is a crate of its own (the static builds compile only it);
// the suites reach it as `bottlebar_e2e::testkit`.
pub use bottlebar_testkit as testkit;
pub use bottlebar_testkit::{agents_suite_ca, free_port, procs, target_dir};

pub use attack::{backend_label, gvisor_run, security_results_dir, Attack};
pub use engine::{docker, docker_stdin, engine, netns_owner, Engine};
pub use harness::{labelled, Harness};
pub use images::{debian_base, git_agent_context, machine_roots, testkit_image, upstream_image};
pub use internet::{
    fake_internet, selftest_env, FakeInternet, TlsUpstream, Upstream, OUTSIDE_NAME,
};

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
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

pub(crate) fn run(cmd: &mut Command) -> Run {
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

/// The static test kit (`scripts/build-static bottlebar-testkit` makes it).
pub fn testkit_bin() -> PathBuf {
    static_bin(
        "BOTTLEBAR_TESTKIT_BIN",
        "bottlebar-testkit",
        "run `scripts/build-static bottlebar-testkit`",
    )
}

/// A binary built next to this executable (`bottle`, the `container`
/// double): beside it (a tool in `target/debug`), or one level up (a test
/// in `target/debug/deps`).
pub(crate) fn sibling_bin(name: &str) -> PathBuf {
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

/// Polls `cond` until it holds, up to `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, cond: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(200));
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
