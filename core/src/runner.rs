//! Running engine commands: argv in, exit status and output back.
//!
//! Everything that talks to an engine goes through [`Runner`], so tests can
//! substitute a scripted runner, and nothing ever goes through a shell.

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

/// How long one engine command may run before it is killed. Image builds of a
/// user's Dockerfile can be slow; everything else is quick.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Bytes of stderr kept for error reports.
pub const STDERR_TAIL_BYTES: usize = 2000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// `None` when the command could not be started or was killed.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last [`STDERR_TAIL_BYTES`] of stderr, on a character boundary.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr, STDERR_TAIL_BYTES)
    }
}

pub fn tail(s: &str, max: usize) -> String {
    let s = s.trim_end();
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

pub trait Runner: Send + Sync + 'static {
    fn run(&self, argv: &[String]) -> impl Future<Output = Output> + Send;
}

/// Runs commands as child processes with stdin closed and output captured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessRunner;

impl Runner for ProcessRunner {
    async fn run(&self, argv: &[String]) -> Output {
        let Some((program, args)) = argv.split_first() else {
            return Output {
                code: None,
                stdout: String::new(),
                stderr: "empty command".into(),
            };
        };
        let child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                return Output {
                    code: None,
                    stdout: String::new(),
                    stderr: format!("could not start `{program}`: {e}"),
                }
            }
        };
        match tokio::time::timeout(DEFAULT_COMMAND_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(out)) => Output {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Ok(Err(e)) => Output {
                code: None,
                stdout: String::new(),
                stderr: format!("waiting for `{program}` failed: {e}"),
            },
            Err(_) => Output {
                code: None,
                stdout: String::new(),
                stderr: format!(
                    "`{program}` did not finish within {} s and was killed",
                    DEFAULT_COMMAND_TIMEOUT.as_secs()
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc\n", 10), "abc");
        assert_eq!(tail("aébcd", 4), "…bcd");
    }

    #[tokio::test]
    async fn process_runner_reports_missing_programs() {
        let out = ProcessRunner
            .run(&["/nonexistent/bottlebar-test-program".to_string()])
            .await;
        assert_eq!(out.code, None);
        assert!(out.stderr.contains("could not start"));
        let out = ProcessRunner
            .run(&[
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 3".into(),
            ])
            .await;
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr_tail(), "err");
    }
}
