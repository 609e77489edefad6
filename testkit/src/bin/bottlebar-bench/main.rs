//! `bottlebar-bench`: the added latency and throughput of the sidecar, on
//! loopback only.
//!
//! One small HTTPS request (`GET /bytes?n=SIZE`), over a kept-alive
//! connection, several ways side by side in one run:
//! - direct to the upstream;
//! - through the real `bottlebar-sidecar` binary (TLS interception, rules,
//!   secret scanning and audit all on, as in a bottle);
//! - through a bare `CONNECT` relay (`bottlebar-testkit relay`, with
//!   `--relay`): a second TCP leg and nothing else, the floor any proxy
//!   starts from on the machine at hand;
//! - through a bare intercepting proxy (`bottlebar-testkit intercept`, with
//!   `--relay` too): TLS ended both ways and HTTP passed on, nothing else,
//!   the floor any proxy that reads HTTPS starts from;
//! - through mitmproxy's `mitmdump`, when it is installed;
//! - through nginx with one worker, when it is installed: a widely used C
//!   proxy ending TLS and sending each request on over TLS of its own, in
//!   the upstream's place (a reverse proxy: no `CONNECT`).
//!
//! Latency, throughput and uploads are each measured in rounds in which the
//! paths take turns, so that a noisy moment on the machine is shared by all
//! of them (`measure`); the spread of a path's ratio to direct over the
//! rounds says how steady the machine was. Beside each path's throughput, the CPU
//! time a request took in the bench (client and upstream) and in the proxy:
//! on a machine whose cores are the limit, the proxy's share of it is what
//! its throughput against direct's follows.
//!
//! Every loop is bounded in count and time.

use anyhow::{bail, Context, Result};
use bottlebar_testkit::bench_inputs::{held_secrets, UploadBody};
use bottlebar_testkit::client::Client;
use bottlebar_testkit::free_port;
use bottlebar_testkit::pki::TestCa;
use bottlebar_testkit::procs::Killed;
use bottlebar_testkit::server;
use clap::Parser;
use measure::{percentile, Figure};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

mod measure;
mod peers;
mod report;

#[derive(Parser)]
#[command(name = "bottlebar-bench")]
struct Args {
    /// The sidecar binary to measure.
    #[arg(long)]
    sidecar: PathBuf,
    /// Sequential requests measured per path (after the warm-up).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Latency rounds: each path gets `requests / rounds` requests per
    /// round, the paths taking turns (in alternating order), so that a noisy
    /// second on this machine lands on every path alike instead of on
    /// whichever one happened to be measuring then.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Concurrent connections for the throughput run.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds the throughput run lasts, per path.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Rounds the throughput run and the uploads are split into, the paths
    /// taking turns in each (as the latency rounds do).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    throughput_rounds: u16,
    /// Response body size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Uploads measured per path (a request body of `--upload-kib`, through
    /// the sidecar's secret scanning); 0 skips them.
    #[arg(long, default_value_t = 100)]
    uploads: usize,
    /// Size of each upload's body, in KiB.
    #[arg(long, default_value_t = 1024)]
    upload_kib: usize,
    /// What each upload's body is.
    #[arg(long, value_enum, default_value_t = UploadBody::Json)]
    upload_body: UploadBody,
    /// Secrets the sidecar holds: the bench's own, then (from 2) the kinds
    /// of key a bottle running a coding agent holds (made-up values of an
    /// Anthropic key, a GitHub token, an AWS key id), up to 4.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    secrets: u8,
    /// The `bottlebar-testkit` binary, to measure a bare `CONNECT` relay
    /// and a bare intercepting proxy too (the floors of any proxy, and of
    /// any proxy that reads HTTPS, here); none skips them.
    #[arg(long)]
    relay: Option<PathBuf>,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

struct Stats {
    name: String,
    p50_us: f64,
    p99_us: f64,
    mean_us: f64,
    sequential_rps: f64,
    /// Requests a second on several connections, with the CPU a request took.
    throughput: Figure,
    /// MB/s of uploads (0 when skipped), with the CPU an upload took.
    uploads: Figure,
}

/// One path under measurement: where its requests go.
struct Path {
    name: String,
    client: Client,
    /// The upstream's address as this path's client asks for it (a
    /// reverse proxy is asked in the upstream's place).
    url: String,
    /// The proxy's process, if any.
    pid: Option<u32>,
}

impl Path {
    /// A path through the `CONNECT` proxy on loopback `port` (process
    /// `pid`), whose client trusts `roots`.
    fn through_proxy(name: &str, port: u16, roots: &[u8], url: &str, pid: u32) -> Result<Self> {
        Ok(Path {
            name: name.into(),
            client: Client::new(Some(format!("127.0.0.1:{port}")), roots)?,
            url: url.into(),
            pid: Some(pid),
        })
    }
}

/// Every figure of every path, each measurement in rounds taking turns
/// (see `measure`).
async fn measure(paths: &[Path], args: &Args) -> Result<Vec<Stats>> {
    let latencies = measure::latencies(paths, args).await?;
    let throughputs = measure::throughput(paths, args).await?;
    let uploads = measure::uploads(paths, args).await?;
    let stats = paths
        .iter()
        .zip(latencies)
        .zip(throughputs.into_iter().zip(uploads))
        .map(|((p, (samples, sequential_rps)), (throughput, uploads))| {
            let mean_us =
                samples.iter().map(|d| d.as_secs_f64()).sum::<f64>() / samples.len() as f64 * 1e6;
            Stats {
                name: p.name.clone(),
                p50_us: percentile(&samples, 0.50),
                p99_us: percentile(&samples, 0.99),
                mean_us,
                sequential_rps,
                throughput,
                uploads,
            }
        })
        .collect();
    Ok(stats)
}

async fn wait_for_port(port: u16, what: &str) -> Result<()> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not start listening on port {port}")
}

/// Starts `command` (its output dropped), which is to listen on loopback
/// `port`, and waits until it does; the process ends when dropped.
async fn start_listening(command: &mut Command, port: u16, what: &str) -> Result<Killed> {
    let child = command
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let child = Killed(child);
    wait_for_port(port, what).await?;
    Ok(child)
}

/// Starts `bottlebar-testkit ROLE` on a free loopback port (with the
/// arguments `more`) and waits until it listens.
async fn start_floor(
    testkit: &std::path::Path,
    role: &str,
    more: &[&str],
) -> Result<(Killed, u16)> {
    let port = free_port()?;
    let mut command = Command::new(testkit);
    command
        .args([role, "--listen", &format!("127.0.0.1:{port}")])
        .args(more);
    let what = format!("{} {role}", testkit.display());
    Ok((start_listening(&mut command, port, &what).await?, port))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let p = |f: &str| dir.path().join(f);

    // The upstream, with its own test CA.
    let (internet, upstream) = server::spawn_https_upstream("Bench Internet CA", "bench").await?;
    let up_port = upstream.port();
    std::fs::write(p("internet-ca.pem"), &internet.cert_pem)?;
    let url = format!("https://localhost:{up_port}/");

    // The sidecar, configured as in a bottle.
    let bottle_ca = TestCa::new("Bottlebar CA for bottle bench");
    std::fs::write(p("ca.crt"), &bottle_ca.cert_pem)?;
    std::fs::write(p("ca.key"), &bottle_ca.key_pem)?;
    std::fs::write(p("secrets.json"), held_secrets(args.secrets).to_string())?;
    let proxy_port = free_port()?;
    let config = serde_json::json!({
        "bottle": "bench", "listen": format!("127.0.0.1:{proxy_port}"),
        "rules": [{"host": "localhost", "ports": [up_port]}],
        "audit_file": p("egress.jsonl").display().to_string(),
        "ca_cert_file": p("ca.crt").display().to_string(), "ca_key_file": p("ca.key").display().to_string(),
        "extra_roots_file": p("internet-ca.pem").display().to_string(),
        "secrets_file": p("secrets.json").display().to_string(),
        "hosts": {"localhost": "127.0.0.1"},
    });
    std::fs::write(p("sidecar.json"), config.to_string())?;
    let sidecar = Command::new(&args.sidecar)
        .args(["serve", "--config"])
        .arg(p("sidecar.json"))
        .env("BOTTLEBAR_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", args.sidecar.display()))?;
    let _sidecar = Killed(sidecar);
    wait_for_port(proxy_port, "the sidecar").await?;

    let mut paths = vec![
        Path {
            name: "direct".into(),
            client: Client::new(None, internet.cert_pem.as_bytes())?,
            url: url.clone(),
            pid: None,
        },
        Path::through_proxy(
            "bottlebar-sidecar",
            proxy_port,
            bottle_ca.cert_pem.as_bytes(),
            &url,
            _sidecar.0.id(),
        )?,
    ];

    // The two floors. The bare relay: TLS end to end, so the client trusts
    // the upstream's CA. The bare interceptor: TLS ended with a certificate
    // of the bottle's CA, as the sidecar ends it.
    // The proxies' processes beside the sidecar, ended when dropped.
    let mut _proxies = Vec::new();
    if let Some(testkit) = &args.relay {
        let to = format!("127.0.0.1:{up_port}");
        let (relay, port) = start_floor(testkit, "relay", &["--to", &to]).await?;
        let roots = internet.cert_pem.as_bytes();
        paths.push(Path::through_proxy(
            "bare relay",
            port,
            roots,
            &url,
            relay.0.id(),
        )?);
        _proxies.push(relay);
        let (cert, key) = bottle_ca.leaf(&["localhost"]);
        std::fs::write(p("floor.crt"), cert)?;
        std::fs::write(p("floor.key"), key)?;
        let [cert, key, roots] =
            ["floor.crt", "floor.key", "internet-ca.pem"].map(|f| p(f).display().to_string());
        let more = [
            "--to", &to, "--cert", &cert, "--key", &key, "--roots", &roots,
        ];
        let (interceptor, port) = start_floor(testkit, "intercept", &more).await?;
        let (roots, pid) = (bottle_ca.cert_pem.as_bytes(), interceptor.0.id());
        paths.push(Path::through_proxy(
            "bare interception",
            port,
            roots,
            &url,
            pid,
        )?);
        _proxies.push(interceptor);
    }

    // Other proxies, when installed, verifying the upstream the same way.
    let mut notes = Vec::new();
    let internet_ca = p("internet-ca.pem");
    for peer in [
        peers::mitmproxy(dir.path(), &internet_ca, &url).await?,
        peers::nginx(dir.path(), &bottle_ca, &internet_ca, up_port).await?,
    ] {
        match peer {
            peers::Peer::Running(path, child) => {
                paths.push(path);
                _proxies.push(child);
            }
            peers::Peer::Skipped(why) => notes.push(why),
        }
    }
    let results = measure(&paths, &args).await?;
    report::print(&results, &args, &notes);
    Ok(())
}
