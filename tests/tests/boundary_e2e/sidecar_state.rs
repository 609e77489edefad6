//! Attack 10: reaching the sidecar's private state.

use super::*;

#[test]
fn attack_10_reaching_the_sidecars_private_state() {
    let f = fixture("e2e-esc10");
    let mut a = Attack::new(
        10,
        "Mounting Bottlebar's home or an engine socket; rewriting the rules; faking the self-test",
    );
    a.control(
        status(&f.fetch(&format!("https://{ALLOWED}/"))) == 200,
        "a bottle with an ordinary directory mount launches",
    );
    // Mounts that overlap the home (a parent: the common `$HOME` mount),
    // the home itself, an engine socket's directory, `/`.
    let home = f.h.home.path().to_path_buf();
    let parent = home.parent().unwrap().to_path_buf();
    for (what, host) in [
        (
            "a parent of the Bottlebar home",
            parent.display().to_string(),
        ),
        ("the Bottlebar home", home.display().to_string()),
        (
            "the bottle's own state directory",
            f.h.state_dir(&f.name).display().to_string(),
        ),
        (
            "/var/run (the Docker socket's directory)",
            "/var/run".into(),
        ),
        ("/", "/".into()),
    ] {
        let name = "e2e-esc10m";
        f.h.write_bottle(
            name,
            &format!("[agent]\ntemplate = \"busybox\"\n[[mounts]]\nhost = \"{host}\"\ncontainer = \"/x\"\n"),
        );
        let r = f.h.bottle(&["up", name]);
        a.blocked(
            !r.ok() && r.stderr.contains("cannot be mounted") && labelled(name) == (vec![], vec![]),
            format!("mounting {what} into the agent"),
        );
    }
    // The rules file rewritten (as an agent with a stray mount would):
    // the sidecar does not read it again.
    let rules = f.h.state_dir(&f.name).join("sidecar/sidecar.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&rules).unwrap()).unwrap();
    cfg["rules"] = serde_json::json!([{"host": DENIED}, {"host": ALLOWED}]);
    std::fs::write(&rules, cfg.to_string()).unwrap();
    a.control(
        std::fs::read_to_string(&rules).unwrap().contains(DENIED),
        "the rules file can be rewritten",
    );
    std::thread::sleep(Duration::from_millis(2000));
    a.blocked(
        refused(&f.fetch(&format!("https://{DENIED}/"))),
        "a host added by rewriting the sidecar's rules file",
    );
    // The old self-test ran a probe from the agent's filesystem: put a fake
    // one where it was; `bottle verify` must run the real one regardless.
    let fake = r#"{"paths":[],"proxy_ok":true,"proxy_detail":"ok","elapsed_ms":1}"#;
    let planted = f.sh(&format!(
        "mkdir -p /.bottlebar/probe && printf '#!/bin/sh\\necho %s\\n' '{fake}' > /.bottlebar/probe/bottlebar-sidecar && chmod +x /.bottlebar/probe/bottlebar-sidecar && /.bottlebar/probe/bottlebar-sidecar"
    ));
    a.control(
        planted.stdout.contains("proxy_ok"),
        "a fake probe can be planted in the agent and runs",
    );
    let v = f.h.bottle(&["verify", &f.name, "--json"]);
    let rec: Value = serde_json::from_str(v.stdout.trim()).unwrap_or_default();
    let paths = rec["report"]["paths"].as_array().map(Vec::len).unwrap_or(0);
    let gateways = rec["report"]["gateways"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    // The real probe judged the agent's gateways and waited at least for
    // ARP (docs/security.md, "How long it takes"); the fake says 1 ms.
    a.blocked(
        v.ok()
            && paths >= 10
            && gateways >= 1
            && rec["report"]["elapsed_ms"].as_u64().unwrap_or(0) >= 100,
        format!("faking the self-test from inside the agent (real probe tried {paths} paths)"),
    );
    a.finish();
}
