use super::*;
use crate::manifest::BackendKind;
use crate::plan::{Capture, Probe, ProbeCheck, Retry, SIDECAR_IP};
use std::sync::Mutex;

/// A scripted engine: records every argv; fails commands whose argv[1] is
/// in `fail`; answers `inspect` with a container on network `int`.
#[derive(Default)]
struct Scripted {
    log: Mutex<Vec<Vec<String>>>,
    fail: Vec<String>,
    probe_stdout: String,
    inspect_failures_left: Mutex<u32>,
}

impl Runner for Scripted {
    async fn run_input(&self, argv: &[String], _input: Vec<u8>) -> Output {
        self.run(argv).await
    }

    async fn run(&self, argv: &[String]) -> Output {
        self.log.lock().unwrap().push(argv.to_vec());
        let verb = argv.get(1).cloned().unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(5)).await;
        if self.fail.contains(&verb) {
            return Output {
                code: Some(1),
                stdout: String::new(),
                stderr: format!("Error: {verb} exploded"),
            };
        }
        match verb.as_str() {
            "probe" => Output {
                code: Some(0),
                stdout: self.probe_stdout.clone(),
                stderr: String::new(),
            },
            "inspect" => {
                let mut left = self.inspect_failures_left.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return Output {
                        code: Some(0),
                        stdout: r#"[{"NetworkSettings":{"Networks":{}}}]"#.into(),
                        stderr: String::new(),
                    };
                }
                Output {
                    code: Some(0),
                    stdout:
                        r#"[{"NetworkSettings":{"Networks":{"int":{"IPAddress":"10.9.0.2"}}}}]"#
                            .into(),
                    stderr: String::new(),
                }
            }
            _ => Output {
                code: Some(0),
                stdout: String::new(),
                stderr: String::new(),
            },
        }
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn step(id: &str, after: &[&str], verb: &str) -> Step {
    Step::new(id, id, s(&["eng", verb, id]))
        .after(after)
        .undo(s(&["eng", "undo", id]))
}

fn plan() -> Plan {
    let mut ip = step("ip", &["net"], "inspect");
    ip.undo = None;
    ip.capture = Some(Capture::DockerNetworkIp {
        network: "int".into(),
        placeholder: SIDECAR_IP.into(),
    });
    ip.retry = Some(Retry {
        attempts: 5,
        delay_ms: 1,
    });
    let mut agent = step("agent", &["ip", "img"], "run");
    agent
        .argv
        .push(format!("HTTP_PROXY=http://{SIDECAR_IP}:3128"));
    Plan {
        bottle: "t".into(),
        backend: BackendKind::Docker,
        steps: vec![
            step("img", &[], "build"),
            step("net", &[], "create"),
            ip,
            agent,
        ],
    }
}

fn collect() -> (Events, tokio::sync::mpsc::UnboundedReceiver<Event>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Events::new(tx), rx)
}

fn drain(mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>) -> Vec<Event> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

#[tokio::test]
async fn runs_everything_substitutes_captures_and_retries() {
    let runner = Arc::new(Scripted {
        inspect_failures_left: Mutex::new(2),
        ..Default::default()
    });
    let (ev, rx) = collect();
    let out = execute(&plan(), runner.clone(), &ev).await.unwrap();
    assert_eq!(out.captured[SIDECAR_IP], "10.9.0.2");
    let log = runner.log.lock().unwrap().clone();
    assert_eq!(log.iter().filter(|a| a[1] == "inspect").count(), 3);
    assert_eq!(
        log.last().unwrap().last().unwrap(),
        "HTTP_PROXY=http://10.9.0.2:3128"
    );
    let events = drain(rx);
    assert!(matches!(events[0], Event::PlanStarted { .. }));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::StepFinished { .. }))
            .count(),
        4
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::StepRetrying { .. }))
            .count(),
        2
    );
}

#[tokio::test]
async fn independent_steps_start_before_either_finishes() {
    let runner = Arc::new(Scripted::default());
    let (ev, rx) = collect();
    execute(&plan(), runner, &ev).await.unwrap();
    let events = drain(rx);
    let pos = |f: &dyn Fn(&Event) -> bool| events.iter().position(f).unwrap();
    let net_started = pos(&|e| matches!(e, Event::StepStarted { step, .. } if step == "net"));
    let img_finished = pos(&|e| matches!(e, Event::StepFinished { step, .. } if step == "img"));
    assert!(net_started < img_finished, "{events:#?}");
}

#[tokio::test]
async fn failure_rolls_back_finished_steps_newest_first() {
    let runner = Arc::new(Scripted {
        fail: vec!["run".into()],
        ..Default::default()
    });
    let (ev, rx) = collect();
    let err = execute(&plan(), runner.clone(), &ev).await.unwrap_err();
    assert_eq!(err.step, "agent");
    assert_eq!(err.exit_code, Some(1));
    assert_eq!(err.stderr_tail, "Error: run exploded");
    assert!(err.command.contains("HTTP_PROXY=http://10.9.0.2:3128"));
    assert!(err.rollback_ok);
    let log = runner.log.lock().unwrap().clone();
    let undone: Vec<&str> = log
        .iter()
        .filter(|a| a[1] == "undo")
        .map(|a| a[2].as_str())
        .collect();
    // `img` and `net` finished in some order; both are undone, in reverse.
    assert_eq!(undone.len(), 2);
    let finished: Vec<String> = drain(rx)
        .into_iter()
        .filter_map(|e| match e {
            Event::StepFinished { step, .. } => Some(step),
            _ => None,
        })
        .filter(|s| s != "ip")
        .collect();
    let mut expect: Vec<&str> = finished.iter().map(String::as_str).collect();
    expect.reverse();
    assert_eq!(undone, expect);
}

#[tokio::test]
async fn failure_in_the_first_layer_waits_for_siblings_and_undoes_them() {
    let runner = Arc::new(Scripted {
        fail: vec!["build".into()],
        ..Default::default()
    });
    let err = execute(&plan(), runner.clone(), &Events::none())
        .await
        .unwrap_err();
    assert_eq!(err.step, "img");
    let log = runner.log.lock().unwrap().clone();
    let verbs: Vec<&str> = log.iter().map(|a| a[1].as_str()).collect();
    assert_eq!(
        verbs.iter().filter(|v| **v == "undo").count(),
        1,
        "{verbs:?}"
    );
    assert!(
        !verbs.contains(&"inspect"),
        "no step after a failure may start: {verbs:?}"
    );
}

#[tokio::test]
async fn capture_that_never_appears_fails_with_reason() {
    let runner = Arc::new(Scripted {
        inspect_failures_left: Mutex::new(100),
        ..Default::default()
    });
    let err = execute(&plan(), runner, &Events::none()).await.unwrap_err();
    assert_eq!(err.step, "ip");
    assert!(
        err.stderr_tail.contains("no address on network `int`"),
        "{}",
        err.stderr_tail
    );
    assert!(err.stderr_tail.contains("after 5 attempts"));
}

#[tokio::test]
async fn probe_skips_steps_whose_result_exists() {
    let runner = Arc::new(Scripted {
        probe_stdout: "abc\n".into(),
        ..Default::default()
    });
    let mut p = plan();
    p.steps[0].skip_if = Some(Probe {
        argv: s(&["eng", "probe"]),
        check: ProbeCheck::StdoutEquals {
            value: "abc".into(),
        },
    });
    let (ev, rx) = collect();
    execute(&p, runner.clone(), &ev).await.unwrap();
    assert!(!runner.log.lock().unwrap().iter().any(|a| a[1] == "build"));
    assert!(drain(rx)
        .iter()
        .any(|e| matches!(e, Event::StepSkipped { step, .. } if step == "img")));
}

#[tokio::test]
async fn a_milestone_is_told_the_captures_once_its_steps_are_done_before_the_plan_ends() {
    let runner = Arc::new(Scripted::default());
    let (after_ip, reached) = Milestone::new(&["ip", "img"]);
    let (never, never_reached) = Milestone::new(&["no-such-step"]);
    let (events, _rx) = collect();
    let plan = plan();
    let run = execute_with(&plan, runner.clone(), &events, vec![after_ip, never]);
    tokio::pin!(run);
    // Told while the agent's step is still to come or running.
    let vars = tokio::select! {
        v = reached => v.expect("reached"),
        _ = &mut run => panic!("the plan ended before telling the milestone"),
    };
    assert_eq!(vars[SIDECAR_IP], "10.9.0.2");
    run.await.unwrap();
    assert!(
        never_reached.await.is_err(),
        "a step that never ran tells nothing"
    );
}

#[tokio::test]
async fn a_failing_plan_never_tells_a_milestone_past_its_failure() {
    let runner = Arc::new(Scripted {
        fail: vec!["inspect".into()],
        ..Default::default()
    });
    let (after_agent, reached) = Milestone::new(&["agent"]);
    let (events, _rx) = collect();
    assert!(execute_with(&plan(), runner, &events, vec![after_agent])
        .await
        .is_err());
    assert!(reached.await.is_err());
}
