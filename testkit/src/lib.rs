//! The test kit: the fake internet's server, a proxy-aware client, an MCP
//! client, a bare `CONNECT` relay and a bare intercepting proxy (the
//! benchmark's two floors), test certificates,
//! raw packets, the proxy benchmark's inputs, and process facts from `/proc`
//! (`procs`; `waits`: which threads wait on a timer).
//!
//! Its two binaries are built statically (`scripts/build-static`), so they
//! run in `FROM scratch` containers and beside the sidecar:
//! `bottlebar-testkit` (one program, a subcommand per role) and
//! `bottlebar-bench` (the proxy benchmark). The end-to-end suites
//! (`bottlebar-e2e`) use the same modules in-process.
//!
//! A crate of its own so that the static builds, which are on a cold
//! `scripts/test`'s critical path, compile only this and its dependencies:
//! not the suites, the `container` double or the WebDriver client
//! (docs/performance.md, the thirty-first round).

pub mod bench_inputs;
pub mod client;
pub mod intercept;
pub mod mcp;
pub mod model_api;
pub mod pki;
pub mod procs;
pub mod raw;
pub mod relay;
pub mod server;
pub mod waits;

use std::path::{Path, PathBuf};

/// A loopback port free at the time of asking.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where cargo builds (and where the suites keep what outlives a run, such
/// as the agents suite's CA).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The repository's root: this crate's parent directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testkit crate sits in the workspace")
        .to_path_buf()
}

/// The CA that stands in for the public PKI in the agents suite, and where
/// its certificate is kept: in the target directory, so the template images
/// that trust it stay cached from run to run (and `scripts/warm-images`
/// can build them ahead, with the path `bottlebar-testkit agents-ca` prints).
pub fn agents_suite_ca() -> (pki::TestCa, PathBuf) {
    let dir = target_dir().join("agents-test-ca");
    let ca = pki::TestCa::cached(&dir, "Bottlebar agents-suite CA");
    (ca, pki::TestCa::cached_cert(&dir))
}
