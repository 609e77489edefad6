//! Docker's event stream for Bottlebar's containers: what wakes the app.
//!
//! It carries one home's containers only (`EventScope::Home`), so another
//! home's bottles on the same engine (a CLI with its own home, a test
//! suite) wake nothing; every Bottlebar container only while some of the
//! home's carry no home label (`EventScope::AllBottles`).
//!
//! The app keeps this stream open all the time it runs. Read through a
//! `docker events` process, that process alone costs ~22 MiB (PSS), a third
//! of the idle app's budget, so where Docker is the plain local daemon
//! (`DOCKER_HOST` unset or `unix://…`, no CLI context chosen, the CLI not
//! overridden) the Engine API's socket is read directly. Anything else
//! (contexts, TCP, TLS, SSH) keeps the CLI, which knows how to reach it.

use crate::name::{LABEL_BOTTLE, LABEL_HOME};
use crate::runner::LineStream;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Where the local daemon listens when nothing says otherwise.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The longest response head or chunk-size line accepted from the daemon.
const MAX_LINE: usize = 8 * 1024;
/// The largest chunk accepted (an event is a few hundred bytes).
const MAX_CHUNK: usize = 1 << 20;

/// Whose containers' events a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventScope {
    /// One home's, by its id (`bottlebar.home=ID`).
    Home(String),
    /// Every Bottlebar container (`bottlebar.bottle`): for a home some of
    /// whose bottles' resources carry no home label (made by an older
    /// Bottlebar, taken as the home's; relaunching them labels them).
    AllBottles,
}

impl EventScope {
    /// The label filter, `key` or `key=value`, for the API and the CLI.
    pub fn label_filter(&self) -> String {
        match self {
            EventScope::Home(id) => format!("{LABEL_HOME}={id}"),
            EventScope::AllBottles => LABEL_BOTTLE.to_string(),
        }
    }
}

/// A stream that says, each time, that Bottlebar's containers changed.
pub enum EventFeed {
    /// The Engine API's socket.
    Socket(EventSocket),
    /// A `docker events` process (see [`super::events_argv`]).
    Cli(Box<LineStream>),
}

impl EventFeed {
    /// Opens the stream of `scope`'s containers for the `docker` CLI at
    /// `program`: through the local daemon's socket where that is where the
    /// CLI would go, else through the CLI.
    pub async fn open(program: &str, scope: &EventScope) -> std::io::Result<EventFeed> {
        let config = std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".docker/config.json"))
            .and_then(|p| std::fs::read_to_string(p).ok());
        let socket = local_socket(&Environment {
            docker_host: std::env::var("DOCKER_HOST").ok(),
            docker_context: std::env::var("DOCKER_CONTEXT").ok(),
            cli_config: config,
            cli_overridden: std::env::var_os("BOTTLEBAR_DOCKER").is_some_and(|v| !v.is_empty()),
        });
        match socket {
            Some(path) => Ok(EventFeed::Socket(EventSocket::connect(&path, scope).await?)),
            None => Ok(EventFeed::Cli(Box::new(LineStream::start(
                &super::events_argv(program, scope),
            )?))),
        }
    }

    /// Waits for the next change; `None` once the stream has ended (the
    /// daemon went away).
    pub async fn next(&mut self) -> Option<()> {
        match self {
            EventFeed::Socket(s) => s.next().await,
            EventFeed::Cli(lines) => lines.next_line().await.map(|_| ()),
        }
    }

    /// Lets go of the stream (and waits for its process, if it has one).
    pub async fn close(self) {
        if let EventFeed::Cli(lines) = self {
            lines.wait().await;
        }
    }
}

/// What decides where the CLI would reach Docker.
#[derive(Debug, Default)]
pub struct Environment {
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// `~/.docker/config.json`, when it could be read.
    pub cli_config: Option<String>,
    /// `BOTTLEBAR_DOCKER` names another CLI (whose daemon is its own affair).
    pub cli_overridden: bool,
}

/// The local daemon's socket, when that is where the CLI would go.
pub fn local_socket(env: &Environment) -> Option<PathBuf> {
    if env.cli_overridden || env.docker_context.as_deref().is_some_and(|c| !c.is_empty()) {
        return None;
    }
    match env.docker_host.as_deref().filter(|h| !h.is_empty()) {
        Some(host) => host.strip_prefix("unix://").map(PathBuf::from),
        None => {
            let context = env
                .cli_config
                .as_deref()
                .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
                .and_then(|c| c["currentContext"].as_str().map(str::to_owned));
            match context.as_deref() {
                None | Some("") | Some("default") => Some(PathBuf::from(DEFAULT_SOCKET)),
                Some(_) => None,
            }
        }
    }
}

/// `GET /events` on the Engine API, filtered to a scope's containers.
pub struct EventSocket {
    body: BufReader<UnixStream>,
    chunked: bool,
}

impl EventSocket {
    /// Connects to the daemon at `socket` and asks for the event stream of
    /// `scope`'s containers; an answer other than 200 is an error naming it.
    pub async fn connect(socket: &Path, scope: &EventScope) -> std::io::Result<EventSocket> {
        let mut stream = UnixStream::connect(socket).await?;
        let request = format!(
            "GET /events?filters={} HTTP/1.1\r\nHost: docker\r\nUser-Agent: bottlebar\r\n\r\n",
            percent_encode(&events_filter(scope))
        );
        stream.write_all(request.as_bytes()).await?;
        let mut body = BufReader::new(stream);
        let status = read_line(&mut body).await?;
        if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
            return Err(std::io::Error::other(format!(
                "the Docker daemon at {} refused the event stream: {}",
                socket.display(),
                status.trim_end()
            )));
        }
        let mut chunked = false;
        loop {
            let header = read_line(&mut body).await?;
            if header.trim_end().is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            chunked |= lower.starts_with("transfer-encoding:") && lower.contains("chunked");
        }
        Ok(EventSocket { body, chunked })
    }

    /// Waits for the next event; `None` at the end of the stream, or when
    /// the daemon sends what is not HTTP.
    pub async fn next(&mut self) -> Option<()> {
        if !self.chunked {
            let mut buf = [0u8; 4096];
            return match self.body.read(&mut buf).await {
                Ok(n) if n > 0 => Some(()),
                _ => None,
            };
        }
        loop {
            let size_line = read_line(&mut self.body).await.ok()?;
            let size = size_line.trim_end().split(';').next()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 || size > MAX_CHUNK {
                return None;
            }
            let mut chunk = vec![0u8; size + 2];
            self.body.read_exact(&mut chunk).await.ok()?;
            if chunk.iter().any(|b| !b.is_ascii_whitespace()) {
                return Some(());
            }
        }
    }
}

/// One line of the response head or a chunk's size, CRLF kept; bounded.
async fn read_line(r: &mut BufReader<UnixStream>) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = (&mut *r)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\n") {
        return Err(std::io::Error::other(
            "the Docker daemon sent a line too long",
        ));
    }
    String::from_utf8(line).map_err(std::io::Error::other)
}

/// The API's filter: container events of `scope`'s containers (what
/// `events_argv` asks the CLI for).
fn events_filter(scope: &EventScope) -> String {
    serde_json::json!({ "type": ["container"], "label": [scope.label_filter()] }).to_string()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    fn env(host: Option<&str>, context: Option<&str>, config: Option<&str>) -> Environment {
        Environment {
            docker_host: host.map(Into::into),
            docker_context: context.map(Into::into),
            cli_config: config.map(Into::into),
            cli_overridden: false,
        }
    }

    #[test]
    fn the_socket_is_read_only_where_the_cli_would_go_to_the_local_daemon() {
        let default = Some(PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(local_socket(&env(None, None, None)), default);
        assert_eq!(local_socket(&env(Some(""), Some(""), Some("{}"))), default);
        assert_eq!(
            local_socket(&env(None, None, Some(r#"{"currentContext":"default"}"#))),
            default
        );
        assert_eq!(
            local_socket(&env(Some("unix:///run/user/1000/docker.sock"), None, None)),
            Some(PathBuf::from("/run/user/1000/docker.sock"))
        );
        // Everything else is the CLI's to reach.
        assert_eq!(
            local_socket(&env(Some("tcp://10.0.0.1:2376"), None, None)),
            None
        );
        assert_eq!(local_socket(&env(Some("ssh://me@box"), None, None)), None);
        assert_eq!(local_socket(&env(None, Some("colima"), None)), None);
        assert_eq!(
            local_socket(&env(None, None, Some(r#"{"currentContext":"rootless"}"#))),
            None
        );
        let overridden = Environment {
            cli_overridden: true,
            ..Environment::default()
        };
        assert_eq!(local_socket(&overridden), None);
    }

    /// A daemon on a socket of the test's own: answers the request it gets
    /// with `response`, in the pieces given.
    async fn daemon(
        pieces: Vec<&'static str>,
    ) -> (tempfile::TempDir, PathBuf, tokio::task::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let served = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let n = conn.read(&mut request).await.unwrap();
            for piece in pieces {
                conn.write_all(piece.as_bytes()).await.unwrap();
                conn.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            String::from_utf8_lossy(&request[..n]).into_owned()
        });
        (dir, path, served)
    }

    #[tokio::test]
    async fn each_event_is_told_across_split_chunks_until_the_stream_ends() {
        let (_dir, path, served) = daemon(vec![
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            "d\r\n{\"a\":\"st",
            "art\"}\r\n",
            "d\r\n{\"b\":\"stop\"}\n\r\n0\r\n\r\n",
        ])
        .await;
        let home = EventScope::Home("h-1a2b".into());
        let mut events = EventSocket::connect(&path, &home).await.unwrap();
        assert_eq!(events.next().await, Some(()));
        assert_eq!(events.next().await, Some(()));
        assert_eq!(events.next().await, None);
        let request = served.await.unwrap();
        let filter = percent_encode(&events_filter(&home));
        assert!(
            request.starts_with(&format!("GET /events?filters={filter} HTTP/1.1\r\n")),
            "{request}"
        );
        assert!(!filter.contains('"'), "{filter}");
    }

    #[test]
    fn a_stream_carries_its_home_s_containers_or_every_bottle_s() {
        let filter = |scope| serde_json::from_str::<serde_json::Value>(&events_filter(&scope));
        assert_eq!(
            filter(EventScope::Home("h-1a2b".into())).unwrap(),
            serde_json::json!({ "type": ["container"], "label": ["bottlebar.home=h-1a2b"] })
        );
        assert_eq!(
            filter(EventScope::AllBottles).unwrap(),
            serde_json::json!({ "type": ["container"], "label": ["bottlebar.bottle"] })
        );
        assert_eq!(
            super::super::events_argv("docker", &EventScope::Home("h-1a2b".into()))[6..],
            ["--filter", "label=bottlebar.home=h-1a2b"]
        );
    }

    #[tokio::test]
    async fn a_refusal_or_garbage_from_the_daemon_is_an_error_or_the_end() {
        let (_dir, path, _served) = daemon(vec![
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let err = EventSocket::connect(&path, &EventScope::AllBottles)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("400 Bad Request"), "{err}");

        let (_dir, path, _served) = daemon(vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "zz\r\nnot a chunk\r\n",
        ])
        .await;
        let mut events = EventSocket::connect(&path, &EventScope::AllBottles)
            .await
            .unwrap();
        assert_eq!(events.next().await, None);

        let missing = Path::new("/nonexistent/bottlebar/docker.sock");
        assert!(EventSocket::connect(missing, &EventScope::AllBottles)
            .await
            .is_err());
    }
}
