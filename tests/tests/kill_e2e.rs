//! SIGKILL of the `bottle` CLI during each step of a launch in turn: the next
//! `bottle up` leaves a whole, verified bottle, and the next `bottle cleanup`
//! leaves nothing labelled. Never a half bottle.
//!
//! Its own test binary: `bottle cleanup` sweeps the whole engine, so it must
//! not run beside other suites' launches (cargo runs binaries one at a time).

use bottlebar_e2e::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

const NAME: &str = "e2e-kill";

/// Starts `bottle up --json` and kills it with SIGKILL right after the
/// `k`-th step (1-based, in the order the plan lists them, the self-test
/// last) has started; returns that step's id (`None` once every step has
/// had its turn, or if the launch finished first). Steps run concurrently,
/// so the order in which they start varies; naming the step does not.
fn kill_at_step(h: &Harness, k: usize) -> Option<String> {
    let mut child = h
        .bottle_cmd(&["up", NAME, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut target: Option<String> = None;
    let mut killed_at = None;
    for line in out.lines() {
        let Ok(line) = line else { break };
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["event"] == "plan_started" {
            let mut steps: Vec<String> = v["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["id"].as_str().map(String::from))
                .collect();
            steps.push("self-test".into());
            match steps.get(k - 1) {
                Some(step) => target = Some(step.clone()),
                None => break,
            }
        }
        if v["event"] == "step_started"
            && target.is_some()
            && v["step"] == target.as_deref().unwrap()
        {
            child.kill().unwrap(); // SIGKILL: no handler, no rollback
            killed_at = target.clone();
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    killed_at
}

fn ls_state(h: &Harness) -> (String, Value) {
    let b = h.ls_entry(NAME);
    (b["state"].as_str().unwrap_or("").to_string(), b)
}

#[test]
fn a_launch_killed_at_any_step_is_repaired_or_swept_whole() {
    let h = Harness::new();
    h.write_bottle(NAME, "[agent]\ntemplate = \"busybox\"\n");
    h.track(NAME);
    let started = Instant::now();
    let mut killed_steps = Vec::new();
    for k in 1.. {
        let Some(step) = kill_at_step(&h, k) else {
            break; // every step has had its turn
        };
        let (state, b) = ls_state(&h);
        assert_ne!(
            state, "running",
            "killed at `{step}` yet listed as running: {b:#}"
        );
        if k % 2 == 1 {
            // The next `up` repairs it into a whole, verified bottle.
            h.bottle(&["up", NAME])
                .expect_ok(&format!("up after a kill at `{step}`"));
            let (state, b) = ls_state(&h);
            assert_eq!(state, "running", "after a kill at `{step}`: {b:#}");
            assert_eq!(b["self_test"]["ready"], true, "{b:#}");
            assert!(h.agent_sh(NAME, "true").ok());
            h.bottle(&["down", NAME]).expect_ok("down");
        } else {
            // `cleanup` removes every labelled resource of it.
            h.bottle(&["cleanup"])
                .expect_ok(&format!("cleanup after a kill at `{step}`"));
        }
        assert_eq!(
            labelled(NAME),
            (vec![], vec![]),
            "after a kill at `{step}` and repair/cleanup"
        );
        killed_steps.push(step);
        assert!(k < 30, "the launch never finished before a kill");
    }
    // Every step of the plan, and the self-test, were interrupted once.
    for step in [
        "build-sidecar-image",
        "create-internal-network",
        "run-agent",
        "self-test",
    ] {
        assert!(
            killed_steps.iter().any(|s| s == step),
            "never killed during `{step}`: {killed_steps:?}"
        );
    }
    eprintln!(
        "killed at {} steps ({killed_steps:?}) in {:.1}s",
        killed_steps.len(),
        started.elapsed().as_secs_f64()
    );
}
