//! Showing an operation's events as they come: live spinners on a
//! terminal, plain lines otherwise, JSON lines with `--json`.

use anyhow::{Context, Result};
use bottlebar_core::events::{Event, Events};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Runs `op` with an event sink, rendering its events as they come. When
/// `launching` is given, it is set once a launch plan starts running. If this
/// future is dropped (Ctrl-C), the operation is aborted with it.
pub async fn with_events<F, Fut, T>(
    json: bool,
    launching: Option<Arc<AtomicBool>>,
    op: F,
) -> Result<T>
where
    F: FnOnce(Events) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    render_events(Renderer::new(json, "launching"), launching, op).await
}

/// [`with_events`] for `bottle build`, whose plan only builds.
pub async fn with_build_events<F, Fut, T>(json: bool, op: F) -> Result<T>
where
    F: FnOnce(Events) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    render_events(Renderer::new(json, "building the images of"), None, op).await
}

async fn render_events<F, Fut, T>(
    mut renderer: Renderer,
    launching: Option<Arc<AtomicBool>>,
    op: F,
) -> Result<T>
where
    F: FnOnce(Events) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut task = AbortOnDrop(tokio::spawn(op(Events::new(tx))));
    while let Some(e) = rx.recv().await {
        if let (Some(flag), Event::PlanStarted { .. }) = (&launching, &e) {
            flag.store(true, Ordering::SeqCst);
        }
        renderer.render(&e);
    }
    renderer.finish();
    (&mut task.0).await.context("the operation panicked")
}

struct Renderer {
    style: Style,
    /// What a plan's start says it does (`launching`).
    plan_verb: &'static str,
}

enum Style {
    Json,
    Plain,
    Live {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
}

impl Renderer {
    fn new(json: bool, plan_verb: &'static str) -> Self {
        let style = if json {
            Style::Json
        } else if std::io::stderr().is_terminal() {
            Style::Live {
                multi: MultiProgress::new(),
                bars: HashMap::new(),
            }
        } else {
            Style::Plain
        };
        Renderer { style, plan_verb }
    }

    fn render(&mut self, e: &Event) {
        let verb = self.plan_verb;
        match &mut self.style {
            Style::Json => println!("{}", serde_json::to_string(e).expect("events serialize")),
            Style::Plain => {
                if let Some(line) = plain_line(e, verb) {
                    eprintln!("{line}");
                }
            }
            Style::Live { multi, bars } => match e {
                Event::StepStarted { step, title, .. } => {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                            .expect("template"),
                    );
                    bar.set_message(title.clone());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bars.insert(step.clone(), bar);
                }
                Event::StepOutput { step, line } => {
                    // The title, then the output's latest line, shortened.
                    if let Some(bar) = bars.get(step) {
                        let title = bar.message();
                        let base = title.split(" │ ").next().unwrap_or("").to_string();
                        let latest: String = line.trim().chars().take(70).collect();
                        bar.set_message(format!("{base} │ {latest}"));
                    }
                }
                Event::StepRetrying { step, attempt, of } => {
                    if let Some(bar) = bars.get(step) {
                        let title = bar.message();
                        let base = title.split(" (attempt").next().unwrap_or("").to_string();
                        bar.set_message(format!("{base} (attempt {attempt}/{of})"));
                    }
                }
                Event::StepFinished {
                    step,
                    title,
                    duration_ms,
                } => done(
                    bars,
                    step,
                    format!("✓ {title}  {:.1}s", *duration_ms as f64 / 1000.0),
                ),
                Event::StepSkipped {
                    step,
                    title,
                    reason,
                } => done(bars, step, format!("– {title}  ({reason})")),
                Event::StepFailed { step, title, .. } => done(bars, step, format!("✗ {title}")),
                other => {
                    if let Some(line) = plain_line(other, verb) {
                        let _ = multi.println(line);
                    }
                }
            },
        }
    }

    fn finish(&mut self) {
        if let Style::Live { bars, .. } = &mut self.style {
            for (_, bar) in bars.drain() {
                if !bar.is_finished() {
                    bar.finish();
                }
            }
        }
    }
}

fn done(bars: &mut HashMap<String, ProgressBar>, step: &str, msg: String) {
    if let Some(bar) = bars.get(step) {
        bar.set_style(ProgressStyle::with_template("{msg}").expect("template"));
        bar.finish_with_message(msg);
    }
}

fn plain_line(e: &Event, plan_verb: &str) -> Option<String> {
    Some(match e {
        Event::PlanStarted {
            bottle,
            backend,
            steps,
        } => format!(
            "{plan_verb} `{bottle}` on {backend} ({} steps)",
            steps.len()
        ),
        Event::StepStarted { title, .. } => format!("  … {title}"),
        Event::StepRetrying { .. } => return None,
        Event::StepOutput { line, .. } => format!("    │ {line}"),
        Event::StepSkipped { title, reason, .. } => format!("  – {title} ({reason})"),
        Event::StepFinished {
            title, duration_ms, ..
        } => format!("  ✓ {title} {:.1}s", *duration_ms as f64 / 1000.0),
        Event::StepFailed { title, .. } => format!("  ✗ {title}"),
        Event::RollbackStarted { .. } => "rolling back what this launch created".into(),
        Event::RollbackStep {
            command, ok, error, ..
        } => {
            format!(
                "  {} {command}{}",
                if *ok { "✓" } else { "✗" },
                error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            )
        }
        Event::RollbackFinished { ok, .. } => (if *ok {
            "rollback complete"
        } else {
            "rollback incomplete; run `bottle cleanup`"
        })
        .into(),
        Event::Ready { .. } => return None,
        Event::SelfTest { summary, .. } => format!("  {summary}"),
        Event::Note { message, .. } => message.clone(),
        Event::Removed { kind, name, .. } => format!("  removed {kind} {name}"),
    })
}
