//! Finding an engine's CLI, checking it answers, and what `doctor` says
//! about it; the commands that run on a launched bottle (probe, reload,
//! exec, events).

use super::{apple, docker};
use crate::manifest::BackendKind;
use crate::name::{BottleName, Role};
use crate::runner::{Output, Runner};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Where GUI apps find engines: they do not inherit a shell's PATH.
const DOCKER_PATHS: &[&str] = &[
    "/usr/local/bin/docker",
    "/usr/bin/docker",
    "/opt/homebrew/bin/docker",
    "/Applications/Docker.app/Contents/Resources/bin/docker",
    "~/.orbstack/bin/docker",
    "~/.rd/bin/docker",
];
const CONTAINER_PATHS: &[&str] = &["/usr/local/bin/container", "/opt/homebrew/bin/container"];

/// Why an engine could not be found, asked, or understood.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine's CLI is not installed where Bottlebar looks.
    #[error("{program} not found: looked on PATH and in {looked}")]
    NotFound {
        /// `docker` or `container`.
        program: &'static str,
        /// Where it looked.
        looked: String,
    },
    /// A command failed.
    #[error("`{command}` failed{}: {stderr}", code.map(|c| format!(" (exit code {c})")).unwrap_or_default())]
    Command {
        /// The command line.
        command: String,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// The end of its stderr.
        stderr: String,
    },
    /// A command printed something Bottlebar cannot read.
    #[error("`{command}` printed output Bottlebar does not understand: {why}")]
    Parse {
        /// The command line.
        command: String,
        /// What was wrong with its output.
        why: String,
    },
    /// An Apple CLI command failed, as the CLI explained it.
    #[error("`{command}` failed: {message}")]
    Apple {
        /// The command line.
        command: String,
        /// How it failed (usage, refusal, service down).
        failure: apple::CliFailure,
        /// Its message, with advice.
        message: String,
    },
    /// The engine is installed but cannot run bottles now.
    #[error("{kind} is not ready: {problem}; {fix}")]
    NotReady {
        /// Which engine.
        kind: BackendKind,
        /// What is wrong.
        problem: String,
        /// What to do about it.
        fix: String,
    },
}

/// Runs an Apple CLI command, turning a failure into the CLI's own message.
pub(super) async fn apple_checked<R: Runner>(
    runner: &R,
    argv: &[String],
) -> Result<Output, EngineError> {
    let out = runner.run(argv).await;
    if out.success() {
        return Ok(out);
    }
    let failure = apple::interpret_failure(out.code, &out.stderr);
    let message = match &failure {
        apple::CliFailure::Usage(m) => format!("the CLI rejected the command line (exit 64): {m}"),
        apple::CliFailure::Failed(m) => m.clone(),
        apple::CliFailure::ServiceDown(m) => format!("{m} (start it with `container system start --enable-kernel-install` or `bottle doctor --fix`)"),
        apple::CliFailure::Other(code, m) => format!("exit {code:?}: {m}"),
    };
    Err(EngineError::Apple {
        command: crate::plan::display_command(argv),
        failure,
        message,
    })
}

/// Checks the engine answers and is recent enough; returns its version where
/// the plan depends on it (Apple's runtime).
pub async fn ensure_ready<R: Runner>(
    engine: &Engine,
    runner: &R,
) -> Result<Option<(u64, u64, u64)>, EngineError> {
    let st = status(engine.kind, runner).await;
    let problem = st
        .problem
        .clone()
        .or_else(|| (!st.running).then(|| "the service is not running".to_string()));
    if let Some(problem) = problem {
        return Err(EngineError::NotReady {
            kind: engine.kind,
            problem,
            fix: st.fix.unwrap_or_else(|| "run `bottle doctor`".into()),
        });
    }
    Ok(match engine.kind {
        BackendKind::Docker => None,
        BackendKind::Apple => st.client_version.as_deref().and_then(apple::parse_semver),
    })
}

/// A located engine CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Engine {
    /// Docker or Apple's runtime.
    pub kind: BackendKind,
    /// Its CLI.
    pub program: PathBuf,
}

impl Engine {
    /// The CLI's path, as argv[0].
    pub fn program_str(&self) -> String {
        self.program.display().to_string()
    }

    /// The command that runs the isolation probe in `bottle`'s agent network,
    /// from the sidecar's image, with `targets` (JSON). `gvisor`: the agent
    /// runs under gVisor, whose network stack is its own (the probe then
    /// runs beside it under gVisor too).
    pub fn probe_argv(
        &self,
        bottle: &BottleName,
        sidecar_image: &str,
        sidecar_ip: std::net::IpAddr,
        targets_json: &str,
        gvisor: bool,
    ) -> Vec<String> {
        let program = self.program_str();
        match self.kind {
            BackendKind::Docker if gvisor => docker::probe_beside_argv(
                &program,
                &bottle.resource(Role::Internal),
                &sidecar_ip.to_string(),
                sidecar_image,
                targets_json,
            ),
            BackendKind::Docker => docker::probe_argv(
                &program,
                &bottle.resource(Role::Agent),
                sidecar_image,
                targets_json,
            ),
            BackendKind::Apple => apple::probe_argv(
                &program,
                &bottle.resource(Role::Internal),
                &sidecar_ip.to_string(),
                sidecar_image,
                targets_json,
            ),
        }
    }

    /// The command that hands a running sidecar new live rules on stdin.
    pub fn reload_argv(&self, bottle: &BottleName) -> Vec<String> {
        super::shared::reload_argv(&self.program_str(), &bottle.resource(Role::Sidecar))
    }

    /// The command that hands a running sidecar the human's answer to a
    /// supervise request, on stdin.
    pub fn decide_argv(&self, bottle: &BottleName) -> Vec<String> {
        super::shared::decide_argv(&self.program_str(), &bottle.resource(Role::Sidecar))
    }

    /// The command that runs `command` in a bottle's agent with the caller's
    /// terminal attached (`-i`, and `-t` when `tty`).
    pub fn exec_argv(&self, bottle: &BottleName, command: &[String], tty: bool) -> Vec<String> {
        self.exec_with(bottle, command, tty, &[])
    }

    /// The command the app's terminal view runs in a bottle's agent: an
    /// interactive exec on a terminal that says it draws 256 colours and
    /// true colour, in UTF-8 (xterm.js does).
    pub fn terminal_argv(&self, bottle: &BottleName, command: &[String]) -> Vec<String> {
        self.exec_with(
            bottle,
            command,
            true,
            &["TERM=xterm-256color", "COLORTERM=truecolor", "LANG=C.UTF-8"],
        )
    }

    fn exec_with(
        &self,
        bottle: &BottleName,
        command: &[String],
        tty: bool,
        env: &[&str],
    ) -> Vec<String> {
        let mut argv = vec![self.program_str(), "exec".into(), "--interactive".into()];
        if tty {
            argv.push("--tty".into());
        }
        for var in env {
            argv.extend(["--env".to_string(), var.to_string()]);
        }
        argv.push(bottle.resource(Role::Agent));
        argv.extend(command.iter().cloned());
        argv
    }

    /// A stream that tells whenever one of `scope`'s containers changes,
    /// where the engine has one (Docker; Apple's CLI has no event stream).
    pub async fn events(
        &self,
        scope: &docker::EventScope,
    ) -> Option<std::io::Result<docker::EventFeed>> {
        match self.kind {
            BackendKind::Docker => Some(docker::EventFeed::open(&self.program_str(), scope).await),
            BackendKind::Apple => None,
        }
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Finds `program` via an override variable, then PATH, then known install paths.
fn find_program(
    program: &'static str,
    override_var: &str,
    known: &[&str],
) -> Result<PathBuf, EngineError> {
    if let Some(p) = std::env::var_os(override_var).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(EngineError::NotFound {
                program,
                looked: format!("{override_var}={}", p.display()),
            })
        };
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program));
    let known_paths = known.iter().map(|p| expand_home(p));
    on_path
        .chain(known_paths)
        .find(|p| is_executable(p))
        .ok_or_else(|| EngineError::NotFound {
            program,
            looked: known.join(", "),
        })
}

/// Locates the CLI for `kind`. `BOTTLEBAR_DOCKER` / `BOTTLEBAR_CONTAINER` override.
pub fn find_engine(kind: BackendKind) -> Result<Engine, EngineError> {
    let program = match kind {
        BackendKind::Docker => find_program("docker", "BOTTLEBAR_DOCKER", DOCKER_PATHS)?,
        BackendKind::Apple => find_program("container", "BOTTLEBAR_CONTAINER", CONTAINER_PATHS)?,
    };
    Ok(Engine { kind, program })
}

/// The runtimes Docker has registered (`runc`, `runsc`, …).
pub async fn docker_runtimes<R: Runner>(
    engine: &Engine,
    runner: &R,
) -> Result<Vec<String>, EngineError> {
    let out = checked(runner, &docker::runtimes_argv(&engine.program_str())).await?;
    docker::parse_runtimes(&out.stdout).map_err(|why| EngineError::Parse {
        command: "docker info".into(),
        why,
    })
}

/// Which backend to use when neither the command line nor the manifest says:
/// `BOTTLEBAR_BACKEND`, else Apple's runtime on macOS when installed, else Docker.
pub fn default_backend() -> BackendKind {
    if let Some(k) = std::env::var("BOTTLEBAR_BACKEND")
        .ok()
        .and_then(|v| BackendKind::parse(&v))
    {
        return k;
    }
    if cfg!(target_os = "macos") && find_engine(BackendKind::Apple).is_ok() {
        BackendKind::Apple
    } else {
        BackendKind::Docker
    }
}

pub(super) async fn checked<R: Runner>(runner: &R, argv: &[String]) -> Result<Output, EngineError> {
    let out = runner.run(argv).await;
    if out.success() {
        Ok(out)
    } else {
        Err(EngineError::Command {
            command: crate::plan::display_command(argv),
            code: out.code,
            stderr: out.stderr_tail(),
        })
    }
}

/// Fixes what can be fixed without asking: starts Apple's container service
/// when it is installed, recent enough and stopped (non-interactively: the
/// kernel install is accepted up front, never prompted on stdin). Returns
/// what it did.
pub async fn fix<R: Runner>(runner: &R) -> Vec<String> {
    let mut done = Vec::new();
    let st = status(BackendKind::Apple, runner).await;
    if let (Some(program), false) = (&st.program, st.running) {
        let too_old = st
            .client_version
            .as_deref()
            .and_then(apple::parse_semver)
            .is_some_and(|v| v < apple::MIN_VERSION);
        if too_old {
            done.push("not starting Apple's container service: the CLI is older than 1.0.0; upgrade it first".into());
        } else {
            let argv = apple::system_start_argv(&program.display().to_string());
            let out = runner.run(&argv).await;
            done.push(if out.success() {
                "started Apple's container service".to_string()
            } else {
                format!(
                    "`{}` failed: {}",
                    crate::plan::display_command(&argv),
                    out.stderr_tail()
                )
            });
        }
    }
    done
}

/// What `doctor` reports about one engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineStatus {
    /// Which engine.
    pub kind: BackendKind,
    /// Its CLI, when found.
    pub program: Option<PathBuf>,
    /// The CLI's version.
    pub client_version: Option<String>,
    /// The engine's (daemon's or service's) version.
    pub server_version: Option<String>,
    /// Whether it answers.
    pub running: bool,
    /// What is wrong, if anything.
    pub problem: Option<String>,
    /// What to do about it.
    pub fix: Option<String>,
    /// What agents run in beyond a container: gVisor where Docker has it,
    /// a VM per container on Apple's runtime.
    pub sandbox: Option<String>,
}

/// Checks whether `kind` is installed and its service answers.
pub async fn status<R: Runner>(kind: BackendKind, runner: &R) -> EngineStatus {
    let mut st = EngineStatus {
        kind,
        program: None,
        client_version: None,
        server_version: None,
        running: false,
        problem: None,
        fix: None,
        sandbox: None,
    };
    let engine = match find_engine(kind) {
        Ok(e) => e,
        Err(e) => {
            st.problem = Some(e.to_string());
            st.fix = Some(match kind {
                BackendKind::Docker => "install Docker Engine (Debian: `apt-get install docker.io`; macOS: Docker Desktop, OrbStack or Colima), or run `scripts/setup`".into(),
                BackendKind::Apple => "install Apple's `container` (1.0 or newer) from github.com/apple/container releases; it needs macOS 26".into(),
            });
            return st;
        }
    };
    st.program = Some(engine.program.clone());
    let p = engine.program_str();
    match kind {
        BackendKind::Docker => {
            let out = runner.run(&docker::version_argv(&p)).await;
            let (client, server) = docker::parse_version(&out.stdout);
            st.client_version = client;
            st.server_version = server;
            st.running = out.success() && st.server_version.is_some();
            if !st.running {
                st.problem = Some(format!(
                    "the Docker daemon does not answer: {}",
                    out.stderr_tail()
                ));
                st.fix = Some("start Docker (Linux: `dockerd &` as root, or `scripts/setup`; macOS: open Docker Desktop / OrbStack / Colima)".into());
            } else {
                st.sandbox = Some(match docker_runtimes(&engine, runner).await {
                    Ok(r) if r.iter().any(|r| r == docker::GVISOR_RUNTIME) => format!(
                        "gVisor: agents run under `runsc` (turn off per bottle with `[isolation] gvisor = false`, or for all with {}=off)",
                        crate::launch::GVISOR_ENV
                    ),
                    Ok(_) => "runc only: install gVisor (Debian: `apt-get install runsc`) and register it in /etc/docker/daemon.json for a stronger agent sandbox".into(),
                    Err(e) => format!("unknown ({e})"),
                });
            }
        }
        BackendKind::Apple => {
            let out = runner.run(&apple::version_argv(&p)).await;
            st.client_version =
                apple::parse_version(&out.stdout).map(|(a, b, c)| format!("{a}.{b}.{c}"));
            let status = runner.run(&apple::system_status_argv(&p)).await;
            let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap_or_default();
            st.running = v.get("status").and_then(|s| s.as_str()) == Some("running");
            st.server_version = v
                .get("apiServerVersion")
                .and_then(|s| s.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            st.sandbox = Some("each container is its own lightweight VM".into());
            match apple::parse_version(&out.stdout) {
                Some(v) if v < apple::MIN_VERSION => {
                    st.problem = Some(format!(
                        "container {}.{}.{} is too old: Bottlebar needs 1.0.0 or newer (before 1.0 a container cannot boot with two networks, and the JSON it prints changed)",
                        v.0, v.1, v.2
                    ));
                    st.fix = Some(
                        "upgrade Apple's `container` to 1.0 or newer (networks also need macOS 26)"
                            .into(),
                    );
                }
                None => {
                    st.problem = Some(format!(
                        "could not read the version from `container --version`: {}",
                        out.stdout.trim()
                    ))
                }
                _ if !st.running => {
                    st.problem = Some("the container system service is not running".into());
                    st.fix = Some("run `container system start --enable-kernel-install`".into());
                }
                _ => {}
            }
        }
    }
    st
}
