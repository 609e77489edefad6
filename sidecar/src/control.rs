//! The control socket: how the core changes a running sidecar's rules and
//! answers its agent's requests for hosts.
//!
//! An abstract Unix socket ([`bottlebar_policy::CONTROL_SOCKET`]) exists only
//! in the sidecar's network namespace and has no path, so no mount can
//! share it and the agent (in its own namespace) cannot reach it. The core
//! runs `bottlebar-sidecar reload` (new [`LiveRules`]) or `bottlebar-sidecar
//! decide` (a supervise [`Decision`]) in the sidecar through the engine's
//! `exec`, the message as JSON on stdin; that process hands it to the proxy
//! here and prints the answer. A message is its verb on the first line
//! (`rules` or `decide`), then the JSON.

use crate::config::Live;
use crate::supervise::Supervisor;
use anyhow::{bail, Context, Result};
use bottlebar_policy::supervise::Decision;
use bottlebar_policy::LiveRules;
use std::os::linux::net::SocketAddrExt;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest rules message accepted.
const MAX_MESSAGE: u64 = 16 * 1024 * 1024;

fn address(name: &str) -> Result<std::os::unix::net::SocketAddr> {
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .with_context(|| format!("control socket name `{name}`"))
}

/// What a control message asks for.
pub enum Verb {
    /// New rules (`bottlebar-sidecar reload`).
    Rules,
    /// The human's answer to a proposal (`bottlebar-sidecar decide`).
    Decide,
}

impl Verb {
    fn word(&self) -> &'static str {
        match self {
            Verb::Rules => "rules",
            Verb::Decide => "decide",
        }
    }
}

/// Serves the control socket `name` until the process ends.
pub fn spawn(live: Arc<Live>, supervisor: Option<Arc<Supervisor>>, name: &str) -> Result<()> {
    let std_listener = std::os::unix::net::UnixListener::bind_addr(&address(name)?)
        .with_context(|| format!("binding the control socket @{name}"))?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::UnixListener::from_std(std_listener)?;
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let (live, supervisor) = (live.clone(), supervisor.clone());
            tokio::spawn(async move {
                let mut text = Vec::new();
                let reply = match (&mut stream).take(MAX_MESSAGE).read_to_end(&mut text).await {
                    Err(e) => format!("error: reading the message: {e}\n"),
                    Ok(_) => answer(&live, supervisor.as_deref(), &text),
                };
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(())
}

/// The answer to one message.
fn answer(live: &Live, supervisor: Option<&Supervisor>, message: &[u8]) -> String {
    let (verb, body) = match message.iter().position(|b| *b == b'\n') {
        Some(i) if !message.starts_with(b"{") => (&message[..i], &message[i + 1..]),
        // A bare JSON message is rules (what `reload` sent before verbs).
        _ => (&b"rules"[..], message),
    };
    match verb {
        b"rules" => apply_rules(live, body),
        b"decide" => match (supervisor, serde_json::from_slice::<Decision>(body)) {
            (None, _) => "error: supervise is off for this bottle\n".into(),
            (_, Err(e)) => format!("error: the decision is not valid JSON: {e}\n"),
            (Some(sup), Ok(d)) => match sup.decide(d) {
                Ok(ok) => format!("{ok}\n"),
                Err(e) => format!("error: {e}\n"),
            },
        },
        other => format!("error: unknown verb `{}`\n", String::from_utf8_lossy(other)),
    }
}

/// New rules; refused ones close egress. Never echoes the message: it
/// holds credentials.
fn apply_rules(live: &Live, text: &[u8]) -> String {
    match serde_json::from_slice::<LiveRules>(text) {
        Err(e) => {
            let why = format!(
                "the rules are not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            );
            live.apply_closed(&why);
            format!("error: {why}; egress is closed\n")
        }
        Ok(rules) => match live.apply(rules) {
            Ok(n) => format!("ok: {n} rules in force\n"),
            Err(e) => format!("error: {e}; egress is closed\n"),
        },
    }
}

/// `bottlebar-sidecar reload` and `decide`: sends `body` (JSON) to the
/// proxy on the control socket `name` and returns its answer; an error if
/// it refused it.
pub fn send(name: &str, verb: Verb, body: &[u8]) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect_addr(&address(name)?)
        .context("connecting to the sidecar's control socket (is the proxy running?)")?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    stream.write_all(format!("{}\n", verb.word()).as_bytes())?;
    stream.write_all(body)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.take(64 * 1024).read_to_string(&mut reply)?;
    let reply = reply.trim().to_string();
    if !reply.starts_with("ok") {
        bail!("the sidecar refused the {}: {reply}", verb.word());
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rules_arrive_through_the_socket_and_bad_ones_close_egress() {
        let cfg: bottlebar_policy::SidecarConfig = serde_json::from_value(serde_json::json!({
            "bottle": "t", "listen": "127.0.0.1:0", "rules": [{"host": "a.example.com"}],
        }))
        .unwrap();
        let live = Arc::new(Live::new(cfg.clone(), vec![], vec![]).unwrap());
        let name = format!("bottlebar-test-control-{}", std::process::id());
        spawn(live.clone(), None, &name).unwrap();
        let mut next = cfg.live_rules(vec![]);
        next.rules[0].host = "b.example.com".into();
        let json = serde_json::to_vec(&next).unwrap();
        let n = name.clone();
        let reply = tokio::task::spawn_blocking(move || send(&n, Verb::Rules, &json))
            .await
            .unwrap();
        assert_eq!(reply.unwrap(), "ok: 1 rules in force");
        assert_eq!(live.current().rules[0].host, "b.example.com");

        let n = name.clone();
        let err = tokio::task::spawn_blocking(move || send(&n, Verb::Rules, b"{ not json"))
            .await
            .unwrap()
            .unwrap_err();
        assert!(format!("{err:#}").contains("not valid JSON"), "{err:#}");
        assert!(live.current().error.is_some(), "egress must be closed");
    }
}
