//! A private Bottlebar home per test, and the `bottle` CLI pointed at it.

use crate::{bottle_bin, engine, run, selftest_env, sidecar_bin, wait_until, Run};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A private Bottlebar home and the CLI pointed at it and at the engine.
pub struct Harness {
    pub home: tempfile::TempDir,
    /// Extra environment for the `bottle` CLI (e.g. secrets a manifest reads).
    pub env: Vec<(String, String)>,
    launched: std::sync::Mutex<Vec<String>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for name in self.launched.lock().unwrap().drain(..) {
            let _ = self.bottle(&["down", &name]);
        }
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        engine();
        let home = tempfile::Builder::new()
            .prefix("bottlebar-e2e-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(home.path().join("bottles")).unwrap();
        if engine().is_apple() {
            // Apple's host-only networks give the host the `.1` address and
            // nothing in Bottlebar can take it away (apple/container#1320);
            // the double reproduces that. The suites accept that one class,
            // as a Mac user would after reading docs/security.md; the
            // self-test still fails on every other leak.
            std::fs::write(
                home.path().join("settings.toml"),
                "accept_leaks = [\"host\"]\n",
            )
            .unwrap();
        }
        Self {
            home,
            env: Vec::new(),
            launched: Default::default(),
        }
    }

    pub fn write_bottle(&self, name: &str, toml: &str) {
        std::fs::write(
            self.home
                .path()
                .join("bottles")
                .join(format!("{name}.toml")),
            toml,
        )
        .unwrap();
    }

    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.home.path().join("state").join(name)
    }

    /// A command for `bottle`, with this harness's home and engine.
    pub fn bottle_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bottle_bin());
        c.args(args)
            .env("BOTTLEBAR_HOME", self.home.path())
            .env("BOTTLEBAR_SIDECAR_BIN", sidecar_bin())
            .env_remove("BOTTLEBAR_DNS");
        selftest_env(&mut c);
        engine().bottle_env(&mut c);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn bottle(&self, args: &[&str]) -> Run {
        run(&mut self.bottle_cmd(args))
    }

    /// `name`'s entry in `bottle ls --json` (`null` if not listed).
    pub fn ls_entry(&self, name: &str) -> Value {
        let ls = self.bottle(&["ls", "--json"]).expect_ok("bottle ls");
        let v: Value = serde_json::from_str(&ls.stdout).unwrap();
        v["bottles"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|b| b["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Takes `name` down when the harness is dropped (for launches started by hand).
    pub fn track(&self, name: &str) {
        self.launched.lock().unwrap().push(name.to_string());
    }

    /// `bottle up NAME --json`, returning the exit status and the events.
    /// Whatever it launched is taken down when the harness is dropped, so a
    /// failing test leaves nothing behind for the next one.
    pub fn up(&self, name: &str) -> (Run, Vec<Value>) {
        self.track(name);
        let r = self.bottle(&["up", name, "--json"]);
        let events = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (r, events)
    }

    /// Runs `sh -c script` in the bottle's agent.
    pub fn agent_sh(&self, name: &str, script: &str) -> Run {
        engine().exec(&format!("bottlebar-{name}-agent"), &["sh", "-c", script])
    }

    /// Gives a running bottle `manifest` plus `[hosts]` pins (the sidecar
    /// reloads them live), then waits until `ready` holds.
    pub fn pin_hosts(
        &self,
        name: &str,
        manifest: &str,
        pins: &[(&str, &str)],
        ready: impl Fn() -> bool,
    ) -> String {
        let mut text = manifest.to_string();
        text.push_str("\n[hosts]\n");
        for (host, ip) in pins {
            text.push_str(&format!("\"{host}\" = \"{ip}\"\n"));
        }
        self.write_bottle(name, &text);
        self.up(name).0.expect_ok("applying host pins");
        // Ask the sidecar itself until it holds every pin, so no request is
        // made (and no name looked up in DNS) before the pins are in force.
        let pinned = || {
            // busybox's wget, or Node.js in the Debian templates.
            let sup = self.agent_sh(
                name,
                "U=\"$HTTP_PROXY/__bottlebar/status\"; wget -q -O - \"$U\" 2>/dev/null \
                 || node -e 'fetch(process.argv[1]).then(r => r.text()).then(t => console.log(t))' \"$U\"",
            );
            let v: Value = serde_json::from_str(sup.stdout.trim()).unwrap_or(Value::Null);
            pins.iter().all(|(host, ip)| v["hosts"][*host] == *ip)
        };
        wait_until(
            Duration::from_secs(10),
            pinned,
            "the sidecar never picked up the host pins",
        );
        wait_until(
            Duration::from_secs(10),
            ready,
            "the pinned upstream never answered",
        );
        text
    }
}

/// Names of the containers and networks labelled as belonging to `bottle`.
pub fn labelled(bottle: &str) -> (Vec<String>, Vec<String>) {
    engine().labelled(bottle)
}
