//! An interrupted launch removes what it created.

use super::*;

#[test]
fn interrupting_a_launch_removes_what_it_created() {
    let h = Harness::new();
    // An agent image whose build takes a while, so the interrupt lands mid-launch.
    let agent_dir = h.home.path().join("bottles/slow");
    std::fs::create_dir_all(&agent_dir).unwrap();
    std::fs::write(
        agent_dir.join("Dockerfile"),
        format!("FROM {}\nRUN sleep 4\n", upstream_image()),
    )
    .unwrap();
    h.write_bottle("e2e-intr", "[agent]\ndockerfile = \"slow/Dockerfile\"\n");
    h.track("e2e-intr");
    let child = h
        .bottle_cmd(&["up", "e2e-intr"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the launch has created its networks, then interrupt it.
    wait_until(
        Duration::from_secs(20),
        || labelled("e2e-intr").1.len() == 2,
        "the launch never created its networks",
    );
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("nothing of `e2e-intr` is left"), "{stderr}");
    assert_eq!(labelled("e2e-intr"), (vec![], vec![]));
    assert!(!h.state_dir("e2e-intr").exists());
}
