//! The engine under test (`BOTTLEBAR_E2E_BACKEND`): Docker, the apple
//! backend through the `container` double, or Apple's own CLI; and what the
//! suites ask of it, in its own commands.

use crate::{run, run_stdin, sibling_bin, upstream_image, Run, TEST_LABEL};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Which engine the suites run against.
pub enum Engine {
    Docker,
    /// Apple's CLI, or its test double.
    Apple {
        program: PathBuf,
        double: bool,
    },
}

/// The engine chosen by `BOTTLEBAR_E2E_BACKEND`. Fails loudly when it is not
/// there: these suites must never pass by not running.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let e = match std::env::var("BOTTLEBAR_E2E_BACKEND").as_deref() {
            Ok("docker") | Err(_) => Engine::Docker,
            Ok("apple-double") => Engine::Apple {
                program: sibling_bin("container"),
                double: true,
            },
            Ok("apple") => Engine::Apple {
                program: std::env::var_os("BOTTLEBAR_CONTAINER")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| "container".into()),
                double: false,
            },
            Ok(other) => {
                panic!("BOTTLEBAR_E2E_BACKEND={other}: expected docker, apple-double or apple")
            }
        };
        let probe = match &e {
            Engine::Docker => {
                run(Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]))
            }
            Engine::Apple { program, .. } => {
                run(Command::new(program).args(["system", "status", "--format", "json"]))
            }
        };
        assert!(
            probe.ok(),
            "the end-to-end suites need a running engine (scripts/test starts Docker): {}",
            probe.stderr
        );
        e
    })
}

/// Runs `docker` with `args` (Docker itself, whatever the engine under test).
pub fn docker(args: &[&str]) -> Run {
    run(Command::new("docker").args(args))
}

/// The Docker container that owns `container`'s network namespace: itself
/// on Docker; on the apple double, its namespace holder (the double gives
/// each container Apple's interface order that way).
pub fn netns_owner(container: &str) -> String {
    match engine() {
        Engine::Apple { double: true, .. } => format!("bbdouble-netns-{container}"),
        _ => container.to_string(),
    }
}

/// Runs `docker` with `args` and `input` on its stdin.
pub fn docker_stdin(args: &[&str], input: &[u8]) -> Run {
    run_stdin(Command::new("docker").args(args), input)
}

fn json_of(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or(Value::Null)
}

impl Engine {
    /// The `--backend` name of this engine.
    pub fn backend(&self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Apple { .. } => "apple",
        }
    }

    pub fn is_apple(&self) -> bool {
        matches!(self, Engine::Apple { .. })
    }

    /// Runs the engine's CLI.
    pub fn cli(&self, args: &[&str]) -> Run {
        match self {
            Engine::Docker => docker(args),
            Engine::Apple { program, .. } => run(Command::new(program).args(args)),
        }
    }

    /// Environment for the `bottle` CLI so it drives this engine.
    pub fn bottle_env(&self, cmd: &mut Command) {
        cmd.env("BOTTLEBAR_BACKEND", self.backend());
        if let Engine::Apple { program, double } = self {
            cmd.env("BOTTLEBAR_CONTAINER", program);
            // The double's own settings (its state, the release it plays,
            // the test kit it holds namespaces with), for a command run
            // with a cleared environment.
            if *double {
                for (k, v) in std::env::vars() {
                    if k.starts_with("BOTTLEBAR_DOUBLE_") || k == "BOTTLEBAR_TESTKIT_BIN" {
                        cmd.env(k, v);
                    }
                }
            }
        }
    }

    pub fn exec(&self, container: &str, argv: &[&str]) -> Run {
        let mut a = vec!["exec", container];
        a.extend(argv);
        self.cli(&a)
    }

    pub fn exec_detached(&self, container: &str, argv: &[&str]) -> Run {
        let mut a = vec!["exec", "--detach", container];
        a.extend(argv);
        self.cli(&a)
    }

    /// Removes a container, running or not.
    pub fn rm(&self, name: &str) -> Run {
        match self {
            Engine::Docker => self.cli(&["rm", "-f", name]),
            Engine::Apple { .. } => self.cli(&["delete", "--force", name]),
        }
    }

    fn inspect(&self, container: &str) -> Value {
        json_of(&self.cli(&["inspect", container]))[0].clone()
    }

    /// The container's configuration as the engine prints it (to search for secrets).
    pub fn raw_inspect(&self, container: &str) -> String {
        self.cli(&["inspect", container]).stdout
    }

    /// Names of the networks a container is attached to, sorted.
    pub fn networks(&self, container: &str) -> Vec<String> {
        let v = self.inspect(container);
        let mut names: Vec<String> = match self {
            Engine::Docker => v["NetworkSettings"]["Networks"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            Engine::Apple { .. } => v["configuration"]["networks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["network"].as_str().map(String::from))
                .collect(),
        };
        names.sort();
        names
    }

    /// The networks in the order they were given (the first owns the default route).
    pub fn networks_in_order(&self, container: &str) -> Vec<String> {
        match self {
            Engine::Docker => self.networks(container),
            Engine::Apple { .. } => {
                let v = self.inspect(container);
                v["configuration"]["networks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n["network"].as_str().map(String::from))
                    .collect()
            }
        }
    }

    /// The container's IPv4 address on `network`.
    pub fn ip(&self, container: &str, network: &str) -> String {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["NetworkSettings"]["Networks"][network]["IPAddress"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Engine::Apple { .. } => v["status"]["networks"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["network"] == network)
                .and_then(|a| a["ipv4Address"].as_str())
                .map(|s| s.split('/').next().unwrap_or("").to_string())
                .unwrap_or_default(),
        }
    }

    /// Is the network internal (Docker `--internal`, Apple host-only)?
    pub fn network_internal(&self, network: &str) -> bool {
        match self {
            Engine::Docker => self.inspect(network)["Internal"] == true,
            Engine::Apple { .. } => {
                json_of(&self.cli(&["network", "inspect", network]))[0]["configuration"]["mode"]
                    == "hostOnly"
            }
        }
    }

    /// The container's main process, as argv.
    pub fn command(&self, container: &str) -> Vec<String> {
        let v = self.inspect(container);
        let list = |x: &Value| {
            x.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect::<Vec<_>>()
        };
        match self {
            Engine::Docker => list(&v["Config"]["Cmd"]),
            Engine::Apple { .. } => {
                let mut argv = vec![v["configuration"]["initProcess"]["executable"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()];
                argv.extend(list(&v["configuration"]["initProcess"]["arguments"]));
                argv
            }
        }
    }

    pub fn uses_init(&self, container: &str) -> bool {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["HostConfig"]["Init"] == true,
            Engine::Apple { .. } => v["configuration"]["useInit"] == true,
        }
    }

    pub fn running(&self, container: &str) -> bool {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["State"]["Running"] == true,
            Engine::Apple { .. } => v["status"]["state"] == "running",
        }
    }

    pub fn env(&self, container: &str) -> Vec<String> {
        let v = self.inspect(container);
        let e = match self {
            Engine::Docker => &v["Config"]["Env"],
            Engine::Apple { .. } => &v["configuration"]["initProcess"]["environment"],
        };
        e.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    }

    /// The image a container runs (its reference).
    /// The value of label `key` on a container (empty when it has none).
    pub fn label(&self, container: &str, key: &str) -> String {
        let v = self.inspect(container);
        let labels = match self {
            Engine::Docker => &v["Config"]["Labels"],
            Engine::Apple { .. } => &v["configuration"]["labels"],
        };
        labels[key].as_str().unwrap_or_default().to_string()
    }

    pub fn image_of(&self, container: &str) -> String {
        let v = self.inspect(container);
        match self {
            Engine::Docker => v["Config"]["Image"].as_str(),
            Engine::Apple { .. } => v["configuration"]["image"]["reference"].as_str(),
        }
        .unwrap_or_default()
        .to_string()
    }

    /// The labels of the image a container runs.
    pub fn image_labels(&self, container: &str) -> BTreeMap<String, String> {
        let v = self.inspect(container);
        let labels = match self {
            Engine::Docker => self.inspect(v["Config"]["Image"].as_str().unwrap_or(""))["Config"]
                ["Labels"]
                .clone(),
            Engine::Apple { .. } => {
                let image = v["configuration"]["image"]["reference"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                json_of(&self.cli(&["image", "inspect", &image]))[0]["variants"][0]["config"]
                    ["config"]["Labels"]
                    .clone()
            }
        };
        labels
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Names of the containers and networks labelled as belonging to `bottle`.
    pub fn labelled(&self, bottle: &str) -> (Vec<String>, Vec<String>) {
        match self {
            Engine::Docker => {
                let filter = format!("label=bottlebar.bottle={bottle}");
                let lines = |r: Run| {
                    r.stdout
                        .lines()
                        .map(str::to_string)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                };
                (
                    lines(
                        docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"])
                            .expect_ok("docker ps"),
                    ),
                    lines(
                        docker(&[
                            "network",
                            "ls",
                            "--filter",
                            &filter,
                            "--format",
                            "{{.Name}}",
                        ])
                        .expect_ok("docker network ls"),
                    ),
                )
            }
            Engine::Apple { .. } => {
                let ours = |v: Value| {
                    let mut names: Vec<String> = v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|x| x["configuration"]["labels"]["bottlebar.bottle"] == bottle)
                        .filter_map(|x| x["id"].as_str().map(String::from))
                        .collect();
                    names.sort();
                    names
                };
                (
                    ours(json_of(
                        &self
                            .cli(&["ls", "--all", "--format", "json"])
                            .expect_ok("container ls"),
                    )),
                    ours(json_of(
                        &self
                            .cli(&["network", "ls", "--format", "json"])
                            .expect_ok("container network ls"),
                    )),
                )
            }
        }
    }

    /// Builds `context` (a directory with a Dockerfile) as `tag`.
    pub fn build(&self, tag: &str, context: &Path) {
        let ctx = context.display().to_string();
        self.cli(&[
            "build", "--quiet", "--label", TEST_LABEL, "--tag", tag, &ctx,
        ])
        .expect_ok("building a test image");
    }

    /// Starts a detached container on `network`, with read-only directory mounts.
    pub fn run_detached(
        &self,
        name: &str,
        network: &str,
        image: &str,
        mounts: &[(&Path, &str)],
        argv: &[&str],
    ) -> Run {
        let _ = self.rm(name);
        let mounts: Vec<String> = mounts
            .iter()
            .map(|(h, t)| format!("type=bind,source={},target={t},readonly", h.display()))
            .collect();
        let mut a = vec![
            "run",
            "--detach",
            "--name",
            name,
            "--label",
            TEST_LABEL,
            "--network",
            network,
        ];
        for m in &mounts {
            a.extend(["--mount", m]);
        }
        a.push(image);
        a.extend(argv);
        self.cli(&a)
    }

    /// Creates a stopped container named `name` (to take a name a launch needs).
    pub fn create_stopped(&self, name: &str, image: &str) -> Run {
        let _ = self.rm(name);
        self.cli(&["create", "--name", name, "--label", TEST_LABEL, image, "sh"])
    }

    /// Runs `sh -c script` in a throwaway container on `network` (the control
    /// that proves a target is reachable at all, so a blocked attack means isolation).
    pub fn run_on(&self, network: &str, script: &str) -> Run {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("bottlebar-test-client-{}-{n}", std::process::id());
        let started = self.run_detached(&name, network, upstream_image(), &[], &["sleep", "60"]);
        started.expect_ok("starting a client container");
        let r = self.exec(&name, &["sh", "-c", script]);
        let _ = self.rm(&name);
        r
    }
}
