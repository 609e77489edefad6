//! A client killed mid-request does not stop the request halfway.

use super::*;

/// The CLI is a client of the apiserver, which does a request's work: a
/// `container run -d` killed halfway (as `bottle up` kills its engine
/// command when interrupted) must not leave half a container — a network
/// holder on the first network that `list` does not show, so the network
/// can never be deleted. Killed just after the holder is made, the request
/// still finishes: the container is listed, and once deleted, its
/// networks go too.
#[test]
fn a_killed_client_does_not_stop_a_request_halfway() {
    use std::io::BufRead;
    engine();
    documented("Server errors cross XPC as JSON `{code, message}`");
    let d = Double::new("1.2.2");
    let (egress, internal, c) = (
        unique("kill-egress"),
        unique("kill-int"),
        unique("kill-ctr"),
    );
    d.run(&["network", "create", &egress]).expect_ok("egress");
    d.run(&["network", "create", "--internal", &internal])
        .expect_ok("internal");
    // Docker tells when the holder is made; the client is killed right then.
    let mut events = Command::new("docker")
        .args([
            "events",
            "--filter",
            "event=create",
            "--filter",
            &format!("label={}={c}", bottlebar_e2e::double::HOLDER_LABEL),
            "--format",
            "{{.Actor.ID}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut client = d
        .command(&[
            "run",
            "-d",
            "--name",
            &c,
            "--network",
            &egress,
            "--network",
            &internal,
            upstream_image(),
            "sleep",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = events.stdout.take().unwrap();
    let (told, made) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = told.send(line);
    });
    let made = made.recv_timeout(std::time::Duration::from_secs(30));
    let _ = client.kill();
    let client_exit = client.wait().unwrap();
    let _ = events.kill();
    let _ = events.wait();
    assert!(
        made.is_ok_and(|l| !l.trim().is_empty()),
        "the holder of `{c}` was never made (client: {client_exit})"
    );

    let listed = || {
        d.run(&["list", "--all", "--quiet"])
            .stdout
            .lines()
            .any(|l| l == c)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !listed() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let finished = listed();
    d.run(&["delete", "--force", &c]);
    let networks = d.run(&["network", "delete", &egress, &internal]);
    // Leave the engine clean for the other tests, then fail.
    for _ in 0..20 {
        if networks.ok() || d.run(&["network", "delete", &egress, &internal]).ok() {
            break;
        }
        let _ = Command::new("docker")
            .args(["rm", "-f", &bottlebar_e2e::double::holder_name(&c)])
            .output();
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        finished,
        "the request of a killed client stopped halfway: `{c}` is not listed"
    );
    assert!(networks.ok(), "{networks:?}");
}
