//! The fake internet: upstream servers the tests start on networks they
//! made, and the outside world the self-test probes, never the real one.

use crate::{engine, testkit, testkit_image, upstream_image, Engine, TEST_LABEL};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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
