//! Runs a [`Plan`]: independent steps concurrently, events for each, and on
//! failure a rollback of what this run created, in reverse order.

use crate::events::{Event, Events, StepInfo};
use crate::plan::{display_command, Plan, Step};
use crate::runner::{Output, Runner};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// A launch step failed; the rollback has already run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bottle `{bottle}`: step `{step}` failed{}\n  command: {command}\n{}{}",
    exit_code.map(|c| format!(" (exit code {c})")).unwrap_or_default(),
    if stderr_tail.is_empty() { String::new() } else { format!("  stderr: {}\n", stderr_tail.replace('\n', "\n          ")) },
    if *rollback_ok { "  everything this launch created was removed" } else { "  rollback was incomplete; run `bottle cleanup`" })]
pub struct StepFailed {
    /// The bottle.
    pub bottle: String,
    /// The step that failed.
    pub step: String,
    /// Its command line.
    pub command: String,
    /// Its exit code, if it exited.
    pub exit_code: Option<i32>,
    /// The end of its stderr.
    pub stderr_tail: String,
    /// Whether the rollback removed everything the launch created.
    pub rollback_ok: bool,
}

/// What a successful run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Captured values, by placeholder (e.g. `{sidecar_ip}` → `172.20.0.2`).
    pub captured: HashMap<String, String>,
    /// How long the plan took.
    pub duration: Duration,
}

/// A point in a plan someone waits for: once every one of its steps has
/// finished (or been skipped as done), the waiter is told the values
/// captured so far. A step that fails, or never runs, never tells it: the
/// waiter's receiver then ends with an error when the run ends.
#[derive(Debug)]
pub struct Milestone {
    steps: Vec<String>,
    reached: Option<oneshot::Sender<HashMap<String, String>>>,
}

impl Milestone {
    /// The milestone "all of `steps` done", and where it is told.
    pub fn new(steps: &[&str]) -> (Self, oneshot::Receiver<HashMap<String, String>>) {
        let (tx, rx) = oneshot::channel();
        let steps = steps.iter().map(|s| s.to_string()).collect();
        (
            Self {
                steps,
                reached: Some(tx),
            },
            rx,
        )
    }

    /// Tells the waiter if every step is now done.
    fn check(&mut self, finished: &[String], vars: &HashMap<String, String>) {
        if self.steps.iter().all(|s| finished.contains(s)) {
            if let Some(tx) = self.reached.take() {
                let _ = tx.send(vars.clone());
            }
        }
    }
}

enum StepResult {
    Done { captured: Option<(String, String)> },
    Skipped { reason: String },
    Failed { command: String, output: Output },
}

/// Runs `plan` to completion or rolls it back.
pub async fn execute<R: Runner>(
    plan: &Plan,
    runner: Arc<R>,
    events: &Events,
) -> Result<Outcome, StepFailed> {
    execute_with(plan, runner, events, Vec::new()).await
}

/// [`execute`], telling each of `milestones` when the plan reaches it.
pub async fn execute_with<R: Runner>(
    plan: &Plan,
    runner: Arc<R>,
    events: &Events,
    mut milestones: Vec<Milestone>,
) -> Result<Outcome, StepFailed> {
    if let Err(e) = plan.check() {
        // A malformed plan is a bug in the planner; refuse before touching anything.
        return Err(StepFailed {
            bottle: plan.bottle.clone(),
            step: "plan".into(),
            command: String::new(),
            exit_code: None,
            stderr_tail: e,
            rollback_ok: true,
        });
    }
    let started = Instant::now();
    events.emit(Event::PlanStarted {
        bottle: plan.bottle.clone(),
        backend: plan.backend.to_string(),
        steps: plan
            .steps
            .iter()
            .map(|s| StepInfo {
                id: s.id.clone(),
                title: s.title.clone(),
                after: s.after.clone(),
            })
            .collect(),
    });

    let mut vars: HashMap<String, String> = HashMap::new();
    let mut finished: Vec<String> = Vec::new(); // completion order, for rollback
    let mut started_ids: Vec<String> = Vec::new();
    let mut running: JoinSet<(String, StepResult, Duration)> = JoinSet::new();
    let mut failure: Option<(String, String, Output)> = None;

    loop {
        if failure.is_none() {
            for step in &plan.steps {
                let ready = !started_ids.contains(&step.id)
                    && step.after.iter().all(|d| finished.contains(d));
                if !ready {
                    continue;
                }
                started_ids.push(step.id.clone());
                let argv = substitute(&step.argv, &vars);
                events.emit(Event::StepStarted {
                    step: step.id.clone(),
                    title: step.title.clone(),
                    command: display_command(&argv),
                });
                let step = step.clone();
                let runner = runner.clone();
                let events = events.clone();
                running.spawn(async move {
                    let t = Instant::now();
                    let result = run_step(&step, argv, runner.as_ref(), &events).await;
                    (step.id, result, t.elapsed())
                });
            }
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (id, result, took) = joined.expect("step task panicked");
        let step = plan.step(&id).expect("step from plan");
        match result {
            StepResult::Done { captured } => {
                if let Some((k, v)) = captured {
                    vars.insert(k, v);
                }
                finished.push(id.clone());
                events.emit(Event::StepFinished {
                    step: id,
                    title: step.title.clone(),
                    duration_ms: took.as_millis() as u64,
                });
                milestones
                    .iter_mut()
                    .for_each(|m| m.check(&finished, &vars));
            }
            StepResult::Skipped { reason } => {
                finished.push(id.clone());
                events.emit(Event::StepSkipped {
                    step: id,
                    title: step.title.clone(),
                    reason,
                });
                milestones
                    .iter_mut()
                    .for_each(|m| m.check(&finished, &vars));
            }
            StepResult::Failed { command, output } => {
                events.emit(Event::StepFailed {
                    step: id.clone(),
                    title: step.title.clone(),
                    command: command.clone(),
                    exit_code: output.code,
                    stderr_tail: output.stderr_tail(),
                    duration_ms: took.as_millis() as u64,
                });
                // Keep the first failure; later ones are usually its consequences.
                failure.get_or_insert((id, command, output));
                // A plan rolling back reaches nothing: its waiters are let go.
                milestones.clear();
            }
        }
    }

    match failure {
        None => Ok(Outcome {
            captured: vars,
            duration: started.elapsed(),
        }),
        Some((step, command, output)) => {
            let rollback_ok = rollback(plan, &finished, &vars, runner.as_ref(), events).await;
            Err(StepFailed {
                bottle: plan.bottle.clone(),
                step,
                command,
                exit_code: output.code,
                stderr_tail: output.stderr_tail(),
                rollback_ok,
            })
        }
    }
}

async fn run_step<R: Runner>(
    step: &Step,
    argv: Vec<String>,
    runner: &R,
    events: &Events,
) -> StepResult {
    if let Some(probe) = &step.skip_if {
        let out = runner.run(&probe.argv).await;
        if out.success() && crate::backend::probe_matches(&probe.check, &out.stdout) {
            return StepResult::Skipped {
                reason: "already up to date".into(),
            };
        }
    }
    let attempts = step.retry.map_or(1, |r| r.attempts.max(1));
    let delay = Duration::from_millis(step.retry.map_or(0, |r| r.delay_ms));
    let command = display_command(&argv);
    let mut last = Output::default();
    for attempt in 1..=attempts {
        if attempt > 1 {
            events.emit(Event::StepRetrying {
                step: step.id.clone(),
                attempt,
                of: attempts,
            });
            tokio::time::sleep(delay).await;
        }
        let out = if step.streams_output {
            let id = step.id.clone();
            runner
                .run_lines(&argv, |line| {
                    events.emit(Event::StepOutput {
                        step: id.clone(),
                        line,
                    })
                })
                .await
        } else {
            runner.run(&argv).await
        };
        if !out.success() {
            last = out;
            continue;
        }
        let Some(capture) = &step.capture else {
            return StepResult::Done { captured: None };
        };
        match crate::backend::capture(capture, &out.stdout) {
            Ok(value) => {
                return StepResult::Done {
                    captured: Some((capture.placeholder().to_string(), value)),
                }
            }
            Err(why) => {
                last = Output {
                    code: out.code,
                    stdout: out.stdout,
                    stderr: why,
                };
            }
        }
    }
    if attempts > 1 {
        last.stderr = format!("{} (after {attempts} attempts)", last.stderr.trim_end());
    }
    StepResult::Failed {
        command,
        output: last,
    }
}

fn substitute(argv: &[String], vars: &HashMap<String, String>) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let mut a = a.clone();
            for (k, v) in vars {
                if a.contains(k.as_str()) {
                    a = a.replace(k.as_str(), v);
                }
            }
            a
        })
        .collect()
}

/// Undoes the finished steps that have an undo command, newest first.
/// Returns false if any undo failed.
async fn rollback<R: Runner>(
    plan: &Plan,
    finished: &[String],
    vars: &HashMap<String, String>,
    runner: &R,
    events: &Events,
) -> bool {
    events.emit(Event::RollbackStarted {
        bottle: plan.bottle.clone(),
    });
    let mut ok = true;
    for id in finished.iter().rev() {
        let Some(undo) = plan.step(id).and_then(|s| s.undo.as_ref()) else {
            continue;
        };
        let argv = substitute(undo, vars);
        let out = runner.run(&argv).await;
        let error = (!out.success()).then(|| out.stderr_tail());
        ok &= error.is_none();
        events.emit(Event::RollbackStep {
            step: id.clone(),
            command: display_command(&argv),
            ok: error.is_none(),
            error,
        });
    }
    events.emit(Event::RollbackFinished {
        bottle: plan.bottle.clone(),
        ok,
    });
    ok
}

#[cfg(test)]
mod tests;
