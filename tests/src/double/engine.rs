//! The double's plumbing: the Docker CLI and Engine API it drives, its own
//! state directory, and the network namespaces of its containers.
//!
//! Containers are created through the Engine API (over the Unix socket):
//! the CLI of Debian's Docker 20.10 cannot set masked or read-only paths,
//! which Apple's `--masked-path`/`--read-only-path` need.

use super::Failure;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Label keys the double keeps on Docker objects.
pub const DOUBLE_LABEL: &str = "com.apple.container.double";
/// On a network: its Apple mode (`nat` or `hostOnly`).
pub const MODE_LABEL: &str = "com.apple.container.double.mode";
/// On a container: the double made it (its record is in the state directory).
pub const CONTAINER_LABEL: &str = "com.apple.container.double.container";

/// Runs `docker ARGS`; its stdout, or its stderr as an internal error.
pub fn docker(args: &[&str]) -> Result<String, Failure> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::failed(format!("internalError: \"cannot run docker: {e}\"")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Failure::failed(format!(
            "internalError: \"{}\"",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `docker ARGS` parsed as JSON, or `None`.
pub fn docker_json(args: &[&str]) -> Option<Value> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// Docker's view of a container.
pub fn container_json(id: &str) -> Option<Value> {
    docker_json(&["inspect", "--type", "container", id]).and_then(|v| v.get(0).cloned())
}

/// Docker's name for an Apple network (Docker reserves `default`).
pub fn docker_network(apple: &str) -> String {
    if apple == "default" {
        "bbdouble-default".into()
    } else {
        apple.to_string()
    }
}

/// The Apple name of a Docker network the double made.
pub fn apple_network(docker: &str) -> String {
    if docker == "bbdouble-default" {
        "default".into()
    } else {
        docker.to_string()
    }
}

/// Docker's view of a network the double made (by its Apple name).
pub fn network_json(apple: &str) -> Option<Value> {
    docker_json(&["network", "inspect", &docker_network(apple)])
        .and_then(|v| v.get(0).cloned())
        .filter(|n| !n["Labels"][MODE_LABEL].is_null())
}

/// Where the double keeps what Docker does not record.
pub fn state_dir() -> PathBuf {
    let d = std::env::var_os("BOTTLEBAR_DOUBLE_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("bottlebar-container-double"));
    let _ = std::fs::create_dir_all(&d);
    d
}

/// Whether the emulated container service is stopped.
pub fn service_stopped() -> bool {
    let marker = state_dir().join("service-started");
    std::env::var("BOTTLEBAR_DOUBLE_SERVICE").as_deref() == Ok("stopped") && !marker.exists()
}

/// One request to the Docker Engine API; the response's status and JSON body.
pub fn api(method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value), Failure> {
    use http_body_util::{BodyExt, Full};
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(String::from))
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(e.to_string()))?;
    runtime.block_on(async {
        let failed = |e: String| Failure::failed(format!("internalError: \"docker API: {e}\""));
        let stream = tokio::net::UnixStream::connect(&socket)
            .await
            .map_err(|e| failed(format!("{socket}: {e}")))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(conn);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("/v1.41{path}"))
            .header("host", "docker")
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(bytes)))
            .map_err(|e| failed(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.to_string()))?
            .to_bytes();
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok((status, v))
    })
}

/// The Engine API's error message in a failed response.
pub fn api_message(v: &Value) -> String {
    v["message"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string())
}

/// Runs `ip ARGS` in the network namespace of the process `pid` (the
/// double runs as root in the test environment, as Docker does).
pub fn netns_ip(pid: u64, args: &[&str]) -> Result<String, Failure> {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "ip"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Failure::failed(format!("internalError: \"nsenter: {e}\"")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Failure::failed(format!(
            "internalError: \"ip {}: {}\"",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
