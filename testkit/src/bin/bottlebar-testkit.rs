//! `bottlebar-testkit`: the test-only companion binary.
//!
//! - `serve`: the fake internet (HTTP, HTTPS, and DNS on port 53 over UDP and
//!   TCP) inside an upstream container;
//! - `fetch`: a request from inside an agent, through the bottle's proxy
//!   (`HTTPS_PROXY`/`HTTP_PROXY`, `SSL_CERT_FILE`), printed as one JSON object;
//! - `flood`: many half-open tunnels to the proxy, then a real request;
//! - `rawframe`, `sniff`: crafted Ethernet frames, sent and watched for;
//! - `idle`: does nothing, forever (a container that only holds a namespace);
//! - `agents-ca`: the agents suite's CA, made once, its path printed;
//! - `relay`: a bare `CONNECT` relay to one loopback upstream, for the
//!   benchmark to measure the sidecar against (two TCP legs, nothing read);
//! - `intercept`: a bare intercepting proxy to one loopback upstream (TLS
//!   ended both ways, HTTP parsed and passed on, nothing else), the
//!   benchmark's second floor;
//! - `mcp`: an MCP client (the official Rust SDK's) for the supervise
//!   endpoint: `conformance`, or `call NAME --args JSON`, printed as JSON.

use anyhow::{Context, Result};
use bottlebar_testkit::{client, intercept, mcp, raw, relay, server};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bottlebar-testkit")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Serve {
        #[arg(long, default_value_t = 80)]
        http_port: u16,
        #[arg(long, default_value_t = 443)]
        https_port: u16,
        #[arg(long)]
        cert: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        token: String,
        /// Port of the DNS server (UDP and TCP); 0 for none.
        #[arg(long, default_value_t = 53)]
        dns_port: u16,
        /// Port of a fake SSH server (sends a banner, as a git remote's
        /// sshd would); 0 for none.
        #[arg(long, default_value_t = 22)]
        ssh_port: u16,
        /// The address every DNS answer gives.
        #[arg(long, default_value = "198.51.100.7")]
        dns_answer: std::net::Ipv4Addr,
    },
    Fetch {
        url: String,
        #[arg(short = 'X', long)]
        method: Option<String>,
        /// `Name: value`, repeatable.
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        #[arg(long)]
        data: Option<String>,
        /// Send the data gzip-compressed (`Content-Encoding: gzip`).
        #[arg(long)]
        gzip: bool,
        #[arg(long)]
        http2: bool,
        #[arg(long)]
        sni: Option<String>,
        #[arg(long)]
        connect_host: Option<String>,
    },
    /// Opens `count` connections to the proxy, each a `CONNECT target`
    /// followed by one TLS byte and nothing more; then fetches `url`
    /// through the proxy; then waits `wait` seconds and counts how many of
    /// the stalled connections the proxy closed. Prints one JSON object.
    Flood {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        target: String,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 15)]
        wait: u64,
    },
    /// Sends a crafted IPv4 frame (UDP with a marker, or a TCP SYN).
    Rawframe {
        #[arg(long, default_value = "eth0")]
        iface: String,
        #[arg(long)]
        dst_mac: String,
        #[arg(long)]
        src_ip: std::net::Ipv4Addr,
        #[arg(long)]
        dst_ip: std::net::Ipv4Addr,
        #[arg(long)]
        dst_port: u16,
        /// Tag the frame with this 802.1Q VLAN id (0 = priority tag).
        #[arg(long)]
        vlan: Option<u16>,
        #[arg(long)]
        syn: bool,
        #[arg(long, default_value = "bottlebar-raw-marker")]
        payload: String,
        #[arg(long, default_value_t = 3)]
        count: u32,
    },
    /// Watches every interface for the marker or a SYN to `syn_port`.
    Sniff {
        #[arg(long)]
        marker: String,
        #[arg(long)]
        syn_port: u16,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Sleeps forever.
    Idle,
    /// Prints the path of the agents suite's CA certificate (made the
    /// first time), for `scripts/warm-images`.
    AgentsCa,
    /// Relays every `CONNECT` on `listen` to `to` (a loopback address),
    /// copying bytes only; on one runtime thread, as the sidecar runs.
    Relay {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        to: std::net::SocketAddr,
    },
    /// Ends every `CONNECT`'s TLS on `listen` with `cert` (PEM, with its
    /// `key`) and sends each request on to `to` (a loopback address, its
    /// certificate checked against `roots`, for `localhost`); on one runtime
    /// thread, as the sidecar runs.
    Intercept {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long)]
        to: std::net::SocketAddr,
        #[arg(long)]
        cert: std::path::PathBuf,
        #[arg(long)]
        key: std::path::PathBuf,
        #[arg(long)]
        roots: std::path::PathBuf,
    },
    /// Talks MCP to the supervise endpoint.
    Mcp {
        /// The endpoint (default: `$MCP_SUPERVISE_URL`).
        #[arg(long)]
        url: Option<String>,
        /// The protocol revision to ask for.
        #[arg(long, default_value = "2025-06-18")]
        protocol: String,
        #[command(subcommand)]
        action: McpAction,
    },
}

#[derive(Subcommand)]
enum McpAction {
    /// Initialize, list the tools, call each; print what was seen.
    Conformance,
    /// Call one tool with arguments (a JSON object).
    Call {
        name: String,
        #[arg(long, default_value = "{}")]
        args: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The relay is measured beside the sidecar, so it runs as the sidecar
    // does (one worker thread, the blocking pool beside it); every other
    // tool needs only one thread.
    let runtime = match cli.command {
        Command::Relay { .. } | Command::Intercept { .. } => {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?
        }
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Mcp {
            url,
            protocol,
            action,
        } => {
            let url = match url {
                Some(u) => u,
                None => std::env::var("MCP_SUPERVISE_URL")
                    .context("give --url or set MCP_SUPERVISE_URL")?,
            };
            let v = mcp::version(&protocol)?;
            let out = match action {
                McpAction::Conformance => mcp::conformance(&url, v).await?,
                McpAction::Call { name, args } => {
                    let args: serde_json::Value =
                        serde_json::from_str(&args).context("--args is a JSON object")?;
                    let s = mcp::connect(&url, v).await?;
                    let r = mcp::call(&s, &name, args).await?;
                    let _ = s.cancel().await;
                    r
                }
            };
            println!("{out}");
            Ok(())
        }
        Command::Relay { listen, to } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            relay::serve(listener, to).await
        }
        Command::Intercept {
            listen,
            to,
            cert,
            key,
            roots,
        } => {
            let read = |p: &std::path::Path| {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
            };
            let interceptor = intercept::Interceptor::new(
                &read(&cert)?,
                &read(&key)?,
                read(&roots)?.as_bytes(),
                to,
            )?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            std::sync::Arc::new(interceptor).serve(listener).await
        }
        Command::Serve {
            http_port,
            https_port,
            cert,
            key,
            token,
            dns_port,
            dns_answer,
            ssh_port,
        } => {
            let cert = std::fs::read_to_string(&cert).with_context(|| format!("reading {cert}"))?;
            let key = std::fs::read_to_string(&key).with_context(|| format!("reading {key}"))?;
            let config = server::tls_config(&cert, &key)?;
            let http = tcp_any(http_port).await?;
            let https = tcp_any(https_port).await?;
            tokio::spawn(server::serve_http(http, token.clone()));
            if ssh_port != 0 {
                let ssh = tcp_any(ssh_port).await?;
                tokio::spawn(server::serve_ssh_banner(ssh));
            }
            if dns_port != 0 {
                let udp = udp_any(dns_port).await?;
                let tcp = tcp_any(dns_port).await?;
                tokio::spawn(server::serve_dns(udp, tcp, dns_answer));
            }
            server::serve_https(https, config, token).await;
            Ok(())
        }
        Command::Fetch {
            url,
            method,
            headers,
            data,
            gzip,
            http2,
            sni,
            connect_host,
        } => {
            let mut headers = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .context("headers are `Name: value`")
                })
                .collect::<Result<Vec<_>>>()?;
            let body = match (data, gzip) {
                (Some(d), true) => {
                    use std::io::Write;
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    e.write_all(d.as_bytes())?;
                    headers.push(("Content-Encoding".into(), "gzip".into()));
                    Some(e.finish()?)
                }
                (d, _) => d.map(String::into_bytes),
            };
            let opts = client::FetchOptions {
                method,
                headers,
                body,
                http2,
                sni,
                connect_host,
            };
            let c = client::Client::from_env(url.starts_with("https://"))?;
            match c.fetch(&url, &opts).await {
                Ok(f) => println!("{}", f.to_json()),
                Err(e) => {
                    println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
                    std::process::exit(2);
                }
            }
            Ok(())
        }
        Command::Flood {
            count,
            target,
            url,
            wait,
        } => flood(count, &target, &url, wait).await,
        Command::Rawframe {
            iface,
            dst_mac,
            src_ip,
            dst_ip,
            dst_port,
            vlan,
            syn,
            payload,
            count,
        } => {
            let src_mac = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
                .with_context(|| format!("reading {iface}'s MAC"))?;
            let spec = raw::FrameSpec {
                dst_mac: raw::parse_mac(&dst_mac)?,
                src_mac: raw::parse_mac(src_mac.trim())?,
                vlan,
                src_ip,
                dst_ip,
                dst_port,
                tcp_syn: syn,
                payload: payload.into_bytes(),
            };
            raw::send(&iface, &raw::build(&spec), count)?;
            println!("sent");
            Ok(())
        }
        Command::Sniff {
            marker,
            syn_port,
            seconds,
        } => raw::sniff(marker.as_bytes(), syn_port, seconds),
        Command::AgentsCa => {
            let (_, cert) = bottlebar_testkit::agents_suite_ca();
            println!("{}", cert.display());
            Ok(())
        }
        Command::Idle => loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        },
    }
}

/// The stalled-tunnel flood: see [`Command::Flood`].
async fn flood(count: usize, target: &str, url: &str, wait: u64) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = std::env::var("HTTPS_PROXY")
        .or_else(|_| std::env::var("HTTP_PROXY"))
        .context("HTTPS_PROXY is not set")?;
    let addr = proxy
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        let Ok(mut s) = tokio::net::TcpStream::connect(&addr).await else {
            break;
        };
        if s.write_all(
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n\x16").as_bytes(),
        )
        .await
        .is_ok()
        {
            held.push(s);
        }
    }
    let opened = held.len();
    let started = std::time::Instant::now();
    let c = client::Client::from_env(url.starts_with("https://"))?;
    let fetched = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        c.fetch(url, &client::FetchOptions::default()),
    )
    .await;
    let fetch_ms = started.elapsed().as_millis() as u64;
    let status = match fetched {
        Ok(Ok(f)) => serde_json::json!(f.status),
        Ok(Err(e)) => serde_json::json!(format!("error: {e:#}")),
        Err(_) => serde_json::json!("timed out"),
    };
    // How many stalled tunnels the proxy closes within `wait` seconds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    let mut closed = 0;
    for mut s in held {
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed += 1;
                    break;
                }
                Ok(Ok(_)) => continue, // the 200 for the CONNECT
                Err(_) => break,
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({ "opened": opened, "fetch_status": status, "fetch_ms": fetch_ms, "closed": closed })
    );
    Ok(())
}

/// Listens on every address, IPv6 and IPv4 (dual stack), or IPv4 only where
/// the container has no IPv6.
async fn tcp_any(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(("::", port)).await {
        Ok(l) => Ok(l),
        Err(_) => tokio::net::TcpListener::bind(("0.0.0.0", port)).await,
    }
}

async fn udp_any(port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    match tokio::net::UdpSocket::bind(("::", port)).await {
        Ok(s) => Ok(s),
        Err(_) => tokio::net::UdpSocket::bind(("0.0.0.0", port)).await,
    }
}
