//! `bottlebar-sidecar`: the egress proxy that is a bottle's only way out.
//!
//! It runs as the only process of a `FROM scratch` image, so it is linked
//! statically and resolves names itself (no libc resolver, no NSS).
//!
//! - `serve --config FILE` runs the proxy described by a `SidecarConfig`.
//! - `health [--addr ADDR]` asks a running proxy whether it is up; the launch
//!   runs it through `exec` inside the sidecar container, which works the same
//!   on every backend (the host may not be able to reach container addresses).
//! - `probe --targets JSON` runs the isolation self-test in the agent's
//!   network (a short-lived container from this image, joined to the
//!   agent's network namespace) and prints a JSON report; exit 0 isolated,
//!   3 a direct path reached something, 4 no proxy path.
//! - `reload` reads new live rules (JSON) on stdin and hands them to the
//!   running proxy through its control socket; the core runs it through
//!   the engine's `exec` when a bottle's rules change.
//! - `decide` reads the human's answer to a supervise proposal (JSON) on
//!   stdin and hands it to the proxy the same way.

use anyhow::{bail, Context, Result};
use bottlebar_policy::{HEALTH_PATH, PROXY_PORT};
use bottlebar_sidecar::control::Verb;
use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "bottlebar-sidecar", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the egress proxy.
    Serve {
        /// The sidecar configuration written by the core (JSON).
        #[arg(long, default_value = "/etc/bottlebar/sidecar.json")]
        config: PathBuf,
    },
    /// Exit 0 if the proxy at ADDR answers its health endpoint.
    Health {
        #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], PROXY_PORT)))]
        addr: SocketAddr,
    },
    /// Try every direct way out and the proxy path; print a JSON report.
    Probe {
        /// The targets (JSON `ProbeTargets`), chosen by the core.
        #[arg(long)]
        targets: String,
    },
    /// Give the running proxy new live rules (JSON `LiveRules` on stdin).
    Reload,
    /// Give the running proxy the human's answer to a request for a host
    /// (JSON `Decision` on stdin).
    Decide,
}

/// Lets glibc keep freed heap instead of handing it back at once: scanning
/// a body allocates and frees a few hundred KiB of decoded views per 64 KiB
/// window, and with the default thresholds every window faulted those pages
/// in again (the scan alone: 220 MB/s, 300 with the heap kept; through the
/// proxy 3–8 %). Up to 16 MiB stays mapped. See docs/performance.md (ninth
/// round).
fn keep_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tunables; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            keep_freed_heap();
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("BOTTLEBAR_LOG")
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            // One worker thread: the proxy's own work (TLS, HTTP, policy)
            // is small a request, and with bodies' scans on threads of
            // their own a second worker only added wake-ups across
            // threads (8 connections on two cores: ~25.5 k req/s against
            // ~23.6 k, every alternated pair; uploads and latency the
            // same, on a busy machine too; docs/performance.md, the
            // twenty-seventh round).
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                // Request bodies are scanned on blocking threads (a few
                // pieces at a time a body), as many as there are cores:
                // more only took turns on them, colder (1 MiB uploads on
                // two cores: 16 threads ~238 MB/s, 4 ~270, 2 ~280;
                // docs/performance.md, the seventeenth round).
                .max_blocking_threads(scan_threads())
                .enable_all()
                .build()?;
            runtime.block_on(bottlebar_sidecar::proxy::run(&config))
        }
        Command::Health { addr } => health(addr),
        Command::Probe { targets } => probe(&targets),
        Command::Reload => send(Verb::Rules),
        Command::Decide => send(Verb::Decide),
    }
}

/// Hands stdin to the running proxy's control socket under `verb`.
fn send(verb: Verb) -> Result<()> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("reading the message from stdin")?;
    let reply = bottlebar_sidecar::control::send(bottlebar_policy::CONTROL_SOCKET, verb, &body)?;
    println!("{reply}");
    Ok(())
}

/// Threads for request bodies' scans: one a core this process may use
/// (its cgroup's CPU quota counts), at least two.
fn scan_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

fn health(addr: SocketAddr) -> Result<()> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to the proxy at {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {HEALTH_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.take(4096).read_to_string(&mut reply)?;
    if !reply.starts_with("HTTP/1.1 200") {
        bail!(
            "proxy at {addr} answered: {}",
            reply.lines().next().unwrap_or("")
        );
    }
    println!("ok");
    Ok(())
}

fn probe(targets: &str) -> Result<()> {
    use bottlebar_policy::selftest::{self, ProbeTargets};
    let targets: ProbeTargets =
        serde_json::from_str(targets).context("reading --targets (JSON ProbeTargets)")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bottlebar_sidecar::probe::run(&targets));
    println!("{}", serde_json::to_string(&report)?);
    let code = if report.leaks().next().is_some() {
        selftest::PROBE_EXIT_LEAK
    } else if !report.proxy_ok {
        selftest::PROBE_EXIT_NO_PROXY
    } else {
        selftest::PROBE_EXIT_ISOLATED
    };
    std::process::exit(code)
}
