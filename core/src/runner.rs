//! Running engine commands: argv in, exit status and output back.
//!
//! Everything that talks to an engine goes through [`Runner`], so tests can
//! substitute a scripted runner, and nothing ever goes through a shell.

pub mod pty;

use std::future::Future;
use std::process::Stdio;
use std::time::Duration;

/// How long one engine command may run before it is killed. Image builds of a
/// user's Dockerfile can be slow; everything else is quick.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Bytes of stderr kept for error reports.
pub const STDERR_TAIL_BYTES: usize = 2000;

/// What a finished command printed and returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// `None` when the command could not be started or was killed.
    pub code: Option<i32>,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

impl Output {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last [`STDERR_TAIL_BYTES`] of stderr, on a character boundary.
    pub fn stderr_tail(&self) -> String {
        tail(&self.stderr, STDERR_TAIL_BYTES)
    }
}

/// The last `max` bytes of `s`, trimmed, on a character boundary.
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

/// Runs engine commands.
pub trait Runner: Send + Sync + 'static {
    /// Runs `argv` with stdin closed.
    fn run(&self, argv: &[String]) -> impl Future<Output = Output> + Send;
    /// Runs `argv` with `input` on its stdin (e.g. rules for a sidecar:
    /// never on the command line, where `ps` would show them).
    fn run_input(&self, argv: &[String], input: Vec<u8>) -> impl Future<Output = Output> + Send;
    /// Runs `argv` with stdin closed, telling `line` each line of its
    /// output (stdout and stderr) as it comes: a long build's progress.
    /// By default (scripted runners), the lines once it has finished.
    fn run_lines(
        &self,
        argv: &[String],
        line: impl Fn(String) + Send + Sync,
    ) -> impl Future<Output = Output> + Send {
        async move {
            let out = self.run(argv).await;
            for l in out.stdout.lines().chain(out.stderr.lines()) {
                line(l.to_string());
            }
            out
        }
    }
}

/// Runs commands as child processes with output captured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessRunner;

impl Runner for ProcessRunner {
    async fn run(&self, argv: &[String]) -> Output {
        spawn(argv, None).await
    }

    async fn run_input(&self, argv: &[String], input: Vec<u8>) -> Output {
        spawn(argv, Some(input)).await
    }

    async fn run_lines(&self, argv: &[String], line: impl Fn(String) + Send + Sync) -> Output {
        spawn_lines(argv, &line).await
    }
}

/// The command for `argv` (no shell) with `stdin`, its output piped, killed
/// when dropped, holding the locks this process holds; and its program.
/// An empty `argv` is the error's output.
fn command(argv: &[String], stdin: Stdio) -> Result<(tokio::process::Command, &str), Output> {
    let Some((program, args)) = argv.split_first() else {
        return Err(Output {
            code: None,
            stdout: String::new(),
            stderr: "empty command".into(),
        });
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    inherit_held_locks(&mut cmd);
    Ok((cmd, program.as_str()))
}

/// Spawns `argv` (no shell, stdin closed), telling `line` each line of its
/// stdout and stderr as it arrives, and collects both.
async fn spawn_lines(argv: &[String], line: &(impl Fn(String) + Send + Sync)) -> Output {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let (mut cmd, program) = match command(argv, Stdio::null()) {
        Ok(c) => c,
        Err(out) => return out,
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return not_started(program, &e),
    };
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        unreachable!("both are piped");
    };
    // Read both pipes at once (a full one would stall the child), in order
    // within each; a build writes its progress to either.
    let (mut out_lines, mut err_lines) = (
        BufReader::new(stdout).lines(),
        BufReader::new(stderr).lines(),
    );
    let (mut out, mut err) = (String::new(), String::new());
    let (mut out_open, mut err_open) = (true, true);
    let reading = async {
        while out_open || err_open {
            tokio::select! {
                l = out_lines.next_line(), if out_open => match l {
                    Ok(Some(l)) => { line(l.clone()); out.push_str(&l); out.push('\n'); }
                    _ => out_open = false,
                },
                l = err_lines.next_line(), if err_open => match l {
                    Ok(Some(l)) => { line(l.clone()); err.push_str(&l); err.push('\n'); }
                    _ => err_open = false,
                },
            }
        }
        child.wait().await
    };
    match tokio::time::timeout(DEFAULT_COMMAND_TIMEOUT, reading).await {
        Ok(Ok(status)) => Output {
            code: status.code(),
            stdout: out,
            stderr: err,
        },
        Ok(Err(e)) => unfinished(program, out, Some(e)),
        Err(_) => unfinished(program, out, None),
    }
}

/// Spawns `argv` (no shell), feeds it `input` if any, and collects its output.
async fn spawn(argv: &[String], input: Option<Vec<u8>>) -> Output {
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let (mut cmd, program) = match command(argv, stdin) {
        Ok(c) => c,
        Err(out) => return out,
    };
    let child = cmd.spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return not_started(program, &e),
    };
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        // Written from its own task, so a child that reads slowly cannot
        // deadlock against its own full stdout pipe.
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
            let _ = stdin.shutdown().await;
        });
    }
    match tokio::time::timeout(DEFAULT_COMMAND_TIMEOUT, child.wait_with_output()).await {
        Ok(Ok(out)) => Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Ok(Err(e)) => unfinished(program, String::new(), Some(e)),
        Err(_) => unfinished(program, String::new(), None),
    }
}

/// A command that could not be started.
fn not_started(program: &str, e: &std::io::Error) -> Output {
    Output {
        code: None,
        stdout: String::new(),
        stderr: format!("could not start `{program}`: {e}"),
    }
}

/// A command that gave no exit status: waiting for it failed (`Some`), or
/// it outran [`DEFAULT_COMMAND_TIMEOUT`] and was killed (`None`). `stdout`
/// is what it printed before.
fn unfinished(program: &str, stdout: String, wait_error: Option<std::io::Error>) -> Output {
    let stderr = match wait_error {
        Some(e) => format!("waiting for `{program}` failed: {e}"),
        None => format!(
            "`{program}` did not finish within {} s and was killed",
            DEFAULT_COMMAND_TIMEOUT.as_secs()
        ),
    };
    Output {
        code: None,
        stdout,
        stderr,
    }
}

/// Runs `argv` with this process's stdin, stdout and stderr (an
/// interactive `exec` into a bottle); its exit code (1 if killed).
pub fn run_attached(argv: &[String]) -> std::io::Result<i32> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let status = std::process::Command::new(program).args(args).status()?;
    Ok(status.code().unwrap_or(1))
}

/// A long-running engine command whose stdout is read line by line (an
/// event stream); the process is killed when this is dropped.
pub struct LineStream {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl LineStream {
    /// Starts `argv` with stdin closed and stderr discarded.
    pub fn start(argv: &[String]) -> std::io::Result<Self> {
        use tokio::io::AsyncBufReadExt;
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty command"))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        Ok(LineStream {
            child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        })
    }

    /// The next line; `None` when the command has ended.
    pub async fn next_line(&mut self) -> Option<String> {
        self.lines.next_line().await.ok().flatten()
    }

    /// Waits for the command to end.
    pub async fn wait(mut self) {
        let _ = self.child.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_stream_yields_lines_until_the_command_ends() {
        let argv: Vec<String> = ["sh", "-c", "echo a; echo b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut s = LineStream::start(&argv).unwrap();
        assert_eq!(s.next_line().await.as_deref(), Some("a"));
        assert_eq!(s.next_line().await.as_deref(), Some("b"));
        assert_eq!(s.next_line().await, None);
        assert_eq!(run_attached(&["true".to_string()]).unwrap(), 0);
    }

    #[tokio::test]
    async fn a_run_tells_its_lines_as_they_come_and_keeps_them() {
        let argv: Vec<String> = [
            "sh",
            "-c",
            "echo one; echo two >&2; sleep 0.2; echo three; exit 3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let seen = std::sync::Mutex::new(Vec::new());
        let started = std::time::Instant::now();
        let out = ProcessRunner
            .run_lines(&argv, |l| seen.lock().unwrap().push((l, started.elapsed())))
            .await;
        let seen = seen.into_inner().unwrap();
        let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
        assert!(
            lines.contains(&"one") && lines.contains(&"two"),
            "{lines:?}"
        );
        assert_eq!(lines.last(), Some(&"three"));
        // "one" was told before the command slept, not when it ended.
        let one = seen.iter().find(|(l, _)| l == "one").unwrap().1;
        assert!(one < std::time::Duration::from_millis(150), "{one:?}");
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "one\nthree\n", "two\n")
        );
    }

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

// ---- bottle locks outlive a killed process's engine commands -------------
//
// A launch holds its bottle's lock (an flock) while it runs. If the process
// is killed with SIGKILL, the kernel releases the lock at once, but the
// engine commands it started (`docker network create`, …) run on and may
// create resources after the next `bottle up` has looked. So engine commands
// inherit the lock: it is released only when the last of them has exited,
// and the next `up` or `cleanup` waits for that (`ops::lock_waiting`).

#[cfg(unix)]
static HELD_LOCKS: std::sync::Mutex<Vec<std::os::fd::RawFd>> = std::sync::Mutex::new(Vec::new());

/// Records a lock file this process holds (see above).
pub fn lock_taken(file: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        HELD_LOCKS.lock().unwrap().push(file.as_raw_fd());
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Forgets a lock file this process no longer holds.
pub fn lock_released(file: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        HELD_LOCKS.lock().unwrap().retain(|f| *f != fd);
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// Lets the child inherit every held lock file (clears close-on-exec on
/// those descriptors in the child only, between fork and exec).
fn inherit_held_locks(cmd: &mut tokio::process::Command) {
    #[cfg(unix)]
    {
        let fds = HELD_LOCKS.lock().unwrap().clone();
        if fds.is_empty() {
            return;
        }
        // SAFETY: only `fcntl`, which is async-signal-safe, runs in the
        // forked child, on descriptors copied before the fork.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &fds {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                    }
                }
                Ok(())
            });
        }
    }
    #[cfg(not(unix))]
    let _ = cmd;
}

#[cfg(all(test, target_os = "linux"))]
mod lock_inheritance_tests {
    use super::*;

    /// Engine commands hold the bottle's lock until they exit, even when the
    /// process that took it is killed.
    #[tokio::test]
    async fn engine_commands_inherit_held_locks() {
        let dir = tempfile::tempdir().unwrap();
        let home = crate::home::Home::at(dir.path());
        let name = crate::name::BottleName::parse("inherit").unwrap();
        let lock = crate::ops::lock(&home, &name).unwrap();
        let argv: Vec<String> = ["sh", "-c", "ls -l /proc/$$/fd"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = ProcessRunner.run(&argv).await;
        assert!(out.stdout.contains("inherit.lock"), "{}", out.stdout);
        drop(lock);
        let out = ProcessRunner.run(&argv).await;
        assert!(!out.stdout.contains("inherit.lock"), "{}", out.stdout);
    }
}
