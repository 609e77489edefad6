//! Other proxies measured beside the sidecar when they are installed:
//! mitmproxy (`mitmdump`), an intercepting proxy as the sidecar is, and
//! nginx with one worker, a widely used C proxy ending TLS and sending each
//! request on over TLS of its own. Both check the upstream's certificate
//! against the same CA the sidecar does, and listen on loopback only.

use super::{start_listening, Path};
use anyhow::{Context, Result};
use bottlebar_testkit::client::Client;
use bottlebar_testkit::free_port;
use bottlebar_testkit::pki::TestCa;
use bottlebar_testkit::procs::Killed;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Command, Stdio};

/// A proxy measured beside the sidecar, or why it is not.
pub enum Peer {
    /// Running: its path, and its process (ended when dropped).
    Running(Path, Killed),
    /// Not installed: what the report says instead.
    Skipped(String),
}

/// mitmproxy's `mitmdump`, trusting `internet_ca` for the upstream at `url`.
pub async fn mitmproxy(dir: &FsPath, internet_ca: &FsPath, url: &str) -> Result<Peer> {
    let Some(mitmdump) = which("mitmdump") else {
        return Ok(Peer::Skipped(
            "mitmdump not installed (pip install mitmproxy) — skipped".into(),
        ));
    };
    let port = free_port()?;
    let confdir = dir.join("mitmproxy");
    std::fs::create_dir_all(&confdir)?;
    let mut command = Command::new(mitmdump);
    command
        .args(["--quiet", "--listen-host", "127.0.0.1", "--listen-port"])
        .arg(port.to_string())
        .arg("--set")
        .arg(format!("confdir={}", confdir.display()))
        .arg("--set")
        .arg(format!(
            "ssl_verify_upstream_trusted_ca={}",
            internet_ca.display()
        ))
        .stderr(Stdio::null());
    let child = start_listening(&mut command, port, "mitmdump").await?;
    let ca = std::fs::read(confdir.join("mitmproxy-ca-cert.pem")).context("mitmproxy's CA")?;
    let path = Path::through_proxy("mitmproxy (mitmdump)", port, &ca, url, child.0.id())?;
    Ok(Peer::Running(path, child))
}

/// nginx in one process (one worker, as the sidecar runs one thread) in
/// the place of the upstream on `up_port`: it ends the client's TLS with a
/// certificate of `ca` for `localhost` and sends each request on over
/// kept-alive TLS, the upstream's certificate checked against
/// `internet_ca`, bodies streamed both ways.
pub async fn nginx(dir: &FsPath, ca: &TestCa, internet_ca: &FsPath, up_port: u16) -> Result<Peer> {
    let Some(nginx) = which("nginx") else {
        return Ok(Peer::Skipped(
            "nginx not installed (apt install nginx-light) — skipped".into(),
        ));
    };
    let home = dir.join("nginx");
    std::fs::create_dir_all(home.join("tmp"))?;
    let (cert, key) = ca.leaf(&["localhost"]);
    std::fs::write(home.join("leaf.crt"), cert)?;
    std::fs::write(home.join("leaf.key"), key)?;
    let port = free_port()?;
    let config = nginx_config(&home, internet_ca, port, up_port);
    std::fs::write(home.join("nginx.conf"), config)?;
    let mut command = Command::new(nginx);
    command
        .arg("-p")
        .arg(&home)
        .arg("-e")
        .arg(home.join("error.log"))
        .arg("-c")
        .arg(home.join("nginx.conf"))
        .stderr(Stdio::null());
    let child = start_listening(&mut command, port, "nginx").await?;
    let path = Path {
        name: "nginx (one worker)".into(),
        client: Client::new(None, ca.cert_pem.as_bytes())?,
        url: format!("https://localhost:{port}/"),
        pid: Some(child.0.id()),
    };
    Ok(Peer::Running(path, child))
}

/// nginx's configuration: in the foreground, one process, files under
/// `home`, listening on loopback `port` in front of the upstream; its
/// connections kept alive as long as the bench's (nginx ends one after
/// 1,000 requests unless told otherwise).
fn nginx_config(home: &FsPath, internet_ca: &FsPath, port: u16, up_port: u16) -> String {
    let h = home.display();
    format!(
        "daemon off;
master_process off;
pid {h}/nginx.pid;
error_log {h}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {h}/tmp/body; proxy_temp_path {h}/tmp/proxy;
  fastcgi_temp_path {h}/tmp/fcgi; uwsgi_temp_path {h}/tmp/uwsgi; scgi_temp_path {h}/tmp/scgi;
  upstream bench {{ server 127.0.0.1:{up_port}; keepalive 32; keepalive_requests 10000000; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    keepalive_requests 10000000; keepalive_timeout 600s;
    ssl_certificate {h}/leaf.crt; ssl_certificate_key {h}/leaf.key;
    client_max_body_size 0;
    location / {{
      proxy_pass https://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_ssl_server_name on; proxy_ssl_name localhost;
      proxy_ssl_verify on; proxy_ssl_trusted_certificate {ca};
      proxy_ssl_session_reuse on;
      proxy_buffering off; proxy_request_buffering off;
    }}
  }}
}}
",
        ca = internet_ca.display()
    )
}

/// `program` on the `PATH`, if it is there.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
