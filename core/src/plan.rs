//! The launch plan: pure data describing every engine command of a launch.
//!
//! A plan is a graph of [`Step`]s. Each step is one engine command as an argv
//! vector (never a shell string), the steps it must wait for, and how to undo
//! it. Values only known while running (the sidecar's IP) appear as
//! placeholders such as `{sidecar_ip}`, filled in by the executor from an
//! earlier step's [`Capture`]. Being data, a plan can be printed
//! (`bottle plan`), diffed, and golden-tested without an engine.

use crate::manifest::BackendKind;
use serde::Serialize;
use std::fmt::Write as _;

/// Placeholder for the sidecar's address on the internal network.
pub const SIDECAR_IP: &str = "{sidecar_ip}";
/// Placeholder for the sidecar's address on the egress network (read for
/// the self-test, which tries it from the agent's side).
pub const SIDECAR_EGRESS_IP: &str = "{sidecar_egress_ip}";

/// Every engine command of one launch, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The bottle.
    pub bottle: String,
    /// The backend the commands are for.
    pub backend: BackendKind,
    /// The steps; each comes after the ones it waits for.
    pub steps: Vec<Step>,
}

/// One engine command of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable identifier, e.g. `create-internal-network`.
    pub id: String,
    /// What the step does, for people.
    pub title: String,
    /// The command, as an argv vector (never a shell string).
    pub argv: Vec<String>,
    /// Steps that must finish first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// The command that removes what this step created, run on rollback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undo: Option<Vec<String>>,
    /// Skip the step when this probe says its result already exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_if: Option<Probe>,
    /// Retry while the command fails (or its capture finds nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// A value to read from the command's output for later steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    /// Its output is shown line by line as it runs (an image build).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub streams_output: bool,
}

impl Step {
    /// A step running `argv`, waiting for nothing, undoing nothing.
    pub fn new(id: &str, title: &str, argv: Vec<String>) -> Self {
        Step {
            id: id.into(),
            title: title.into(),
            argv,
            after: Vec::new(),
            undo: None,
            skip_if: None,
            retry: None,
            capture: None,
            streams_output: false,
        }
    }

    /// Waits for the steps `ids`.
    pub fn after(mut self, ids: &[&str]) -> Self {
        self.after = ids.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Undone on rollback by `argv`.
    pub fn undo(mut self, argv: Vec<String>) -> Self {
        self.undo = Some(argv);
        self
    }

    /// Skipped when `probe` says its result exists.
    pub fn skip_if(mut self, probe: Probe) -> Self {
        self.skip_if = Some(probe);
        self
    }

    /// Retried `attempts` times, `delay_ms` apart.
    pub fn retry(mut self, attempts: u32, delay_ms: u64) -> Self {
        self.retry = Some(Retry { attempts, delay_ms });
        self
    }

    /// Shows its output line by line as it runs.
    pub fn streams_output(mut self) -> Self {
        self.streams_output = true;
        self
    }

    /// Captures a value from its output.
    pub fn capture(mut self, capture: Capture) -> Self {
        self.capture = Some(capture);
        self
    }
}

/// A command whose output says whether a step's result already exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The probe's command.
    pub argv: Vec<String>,
    /// What its output must show.
    pub check: ProbeCheck,
}

/// What a probe's output must show for its step to be skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeCheck {
    /// The probe succeeds and its trimmed stdout equals this.
    /// The probe succeeds and its trimmed stdout equals `value`.
    StdoutEquals {
        /// The expected output.
        value: String,
    },
    /// `container image inspect` JSON carries this label on some variant.
    /// `container image inspect` JSON carries label `key=value` on some variant.
    AppleImageLabel {
        /// The label's key.
        key: String,
        /// Its value.
        value: String,
    },
    /// `container builder status --format json` shows a running builder using
    /// exactly these nameservers (or no builder at all, when `absent_ok`).
    AppleBuilderDns {
        /// The nameservers the builder must use.
        nameservers: Vec<String>,
        /// No builder at all also counts.
        absent_ok: bool,
    },
}

/// How often, and how far apart, a failing step is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// Attempts in all.
    pub attempts: u32,
    /// Pause between attempts.
    pub delay_ms: u64,
}

/// A value a step reads from its output for later steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Capture {
    /// The container's IPv4 address on `network`, from `docker inspect`.
    DockerNetworkIp {
        /// The network.
        network: String,
        /// The placeholder it fills (`{sidecar_ip}`).
        placeholder: String,
    },
    /// The container's IPv4 address on `network`, from `container inspect` (1.x shape).
    AppleNetworkIp {
        /// The network.
        network: String,
        /// The placeholder it fills.
        placeholder: String,
    },
}

impl Capture {
    /// The placeholder this capture fills.
    pub fn placeholder(&self) -> &str {
        match self {
            Capture::DockerNetworkIp { placeholder, .. }
            | Capture::AppleNetworkIp { placeholder, .. } => placeholder,
        }
    }
}

impl Plan {
    /// The step `id`, if the plan has it.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Checks the graph: unique ids, dependencies that exist and come earlier
    /// (so the listed order is a valid serial order and there are no cycles),
    /// and every placeholder captured by a step the user depends on.
    pub fn check(&self) -> Result<(), String> {
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.steps {
            if seen.contains(&s.id.as_str()) {
                return Err(format!("duplicate step id `{}`", s.id));
            }
            for d in &s.after {
                if !seen.contains(&d.as_str()) {
                    return Err(format!(
                        "step `{}` depends on `{d}`, which is not an earlier step",
                        s.id
                    ));
                }
            }
            for arg in &s.argv {
                if let Some(p) = find_placeholder(arg) {
                    let provided = self.ancestors(&s.id).iter().any(|a| {
                        self.step(a)
                            .and_then(|x| x.capture.as_ref())
                            .is_some_and(|c| c.placeholder() == p)
                    });
                    if !provided {
                        return Err(format!(
                            "step `{}` uses `{p}`, which no step it depends on captures",
                            s.id
                        ));
                    }
                }
            }
            seen.push(&s.id);
        }
        Ok(())
    }

    /// The plan cut down to the steps `ids` and every step they wait for,
    /// in the plan's order (so it is still a valid serial order). Ids the
    /// plan lacks are ignored.
    pub fn only(&self, ids: &[&str]) -> Plan {
        let mut keep: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        for id in ids {
            keep.extend(self.ancestors(id));
        }
        Plan {
            bottle: self.bottle.clone(),
            backend: self.backend,
            steps: self
                .steps
                .iter()
                .filter(|s| keep.contains(&s.id))
                .cloned()
                .collect(),
        }
    }

    fn ancestors(&self, id: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut todo = vec![id.to_string()];
        while let Some(cur) = todo.pop() {
            if let Some(s) = self.step(&cur) {
                for d in &s.after {
                    if !out.contains(d) {
                        out.push(d.clone());
                        todo.push(d.clone());
                    }
                }
            }
        }
        out
    }

    /// A human-readable listing, one step per block.
    pub fn render(&self) -> String {
        let mut out = format!("Plan for bottle `{}` on {}:\n", self.bottle, self.backend);
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "\n{:>2}. {} [{}]", i + 1, s.title, s.id);
            if !s.after.is_empty() {
                let _ = writeln!(out, "    after: {}", s.after.join(", "));
            }
            let _ = writeln!(out, "    $ {}", display_command(&s.argv));
            if let Some(p) = &s.skip_if {
                let _ = writeln!(out, "    skip if: {}", display_command(&p.argv));
            }
            if let Some(r) = &s.retry {
                let _ = writeln!(
                    out,
                    "    retry: {} attempts, {} ms apart",
                    r.attempts, r.delay_ms
                );
            }
            if let Some(c) = &s.capture {
                let _ = writeln!(out, "    captures: {}", c.placeholder());
            }
            if let Some(u) = &s.undo {
                let _ = writeln!(out, "    undo: {}", display_command(u));
            }
        }
        out
    }
}

fn find_placeholder(arg: &str) -> Option<&str> {
    let start = arg.find('{')?;
    let end = arg[start..].find('}')? + start;
    let inner = &arg[start + 1..end];
    (!inner.is_empty() && inner.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .then(|| &arg[start..=end])
}

/// Renders an argv for display, quoting what a POSIX shell would need quoted.
/// Display only: commands are always run as argv vectors, never through a shell.
pub fn display_command(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%{}".contains(&b));
    if plain {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, after: &[&str], argv: &[&str]) -> Step {
        Step::new(id, id, argv.iter().map(|s| s.to_string()).collect()).after(after)
    }

    #[test]
    fn check_rejects_forward_dependencies_and_orphan_placeholders() {
        let mut p = Plan {
            bottle: "x".into(),
            backend: BackendKind::Docker,
            steps: vec![step("a", &["b"], &["true"]), step("b", &[], &["true"])],
        };
        assert!(p.check().unwrap_err().contains("not an earlier step"));
        p.steps = vec![
            step("a", &[], &["true"]),
            step("b", &["a"], &["echo", "{sidecar_ip}"]),
        ];
        assert!(p.check().unwrap_err().contains("captures"));
        p.steps[0].capture = Some(Capture::DockerNetworkIp {
            network: "n".into(),
            placeholder: SIDECAR_IP.into(),
        });
        assert_eq!(p.check(), Ok(()));
        p.steps.push(step("a", &[], &["true"]));
        assert!(p.check().unwrap_err().contains("duplicate"));
    }

    #[test]
    fn only_keeps_the_steps_named_and_what_they_wait_for_in_order() {
        let p = Plan {
            bottle: "x".into(),
            backend: BackendKind::Apple,
            steps: vec![
                step("stop", &[], &["true"]),
                step("start", &["stop"], &["true"]),
                step("net", &[], &["true"]),
                step("build", &["start"], &["true"]),
                step("run", &["build", "net"], &["true"]),
            ],
        };
        let ids = |p: &Plan| p.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        let cut = p.only(&["build", "missing"]);
        assert_eq!(ids(&cut), ["stop", "start", "build"]);
        assert_eq!(cut.check(), Ok(()));
        assert_eq!(ids(&p.only(&["net"])), ["net"]);
        assert!(p.only(&[]).steps.is_empty());
    }

    #[test]
    fn display_quotes_only_what_needs_it() {
        let argv: Vec<String> = ["docker", "run", "-e", "A=b c", "it's", "{sidecar_ip}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            display_command(&argv),
            r#"docker run -e 'A=b c' 'it'\''s' {sidecar_ip}"#
        );
    }
}
