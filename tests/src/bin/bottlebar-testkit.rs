//! `bottlebar-testkit`: the test-only companion binary.
//!
//! - `serve`: the fake internet (HTTP, HTTPS, and DNS on port 53 over UDP and
//!   TCP) inside an upstream container;
//! - `fetch`: a request from inside an agent, through the bottle's proxy
//!   (`HTTPS_PROXY`/`HTTP_PROXY`, `SSL_CERT_FILE`), printed as one JSON object.

use anyhow::{Context, Result};
use bottlebar_e2e::testkit::{client, server};
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
        #[arg(long)]
        http2: bool,
        #[arg(long)]
        sni: Option<String>,
        #[arg(long)]
        connect_host: Option<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    match Cli::parse().command {
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
            http2,
            sni,
            connect_host,
        } => {
            let headers = headers
                .iter()
                .map(|h| {
                    h.split_once(':')
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .context("headers are `Name: value`")
                })
                .collect::<Result<Vec<_>>>()?;
            let opts = client::FetchOptions {
                method,
                headers,
                body: data.map(String::into_bytes),
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
    }
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
