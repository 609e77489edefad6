//! Lifecycle commands, their refusals, and what a refused run leaves.

use super::*;

#[test]
fn lifecycle_commands_and_their_refusals() {
    engine();
    let d = Double::new("1.2.2");
    let img = image(&d);
    let id = unique("life");
    assert_eq!(
        d.run(&["create", "--name", &id, img, "sleep", "300"])
            .expect_ok("create")
            .stdout
            .trim(),
        id
    );
    let inspected: Value = serde_json::from_str(&d.run(&["inspect", &id]).stdout).unwrap();
    assert_eq!(inspected[0]["status"]["state"], "stopped");
    assert_eq!(inspected[0]["status"]["networks"], serde_json::json!([]));
    documented(
        "`start [-a|--attach] [-i|--interactive] <id>`: detached by default and prints the ID.",
    );
    assert_eq!(d.run(&["start", &id]).expect_ok("start").stdout.trim(), id);
    documented("Deleting a running container without `-f` fails with `container X is running and can not be deleted`");
    d.fails(&["delete", &id], 1, "is running and can not be deleted");
    documented("No IDs and no `--all` is an error.");
    d.fails(&["stop"], 1, "no containers specified");
    d.fails(&["delete"], 1, "no containers specified");
    d.fails(&["network", "delete"], 1, "no networks specified");
    documented("`kill [-a] [-s KILL] <id>...`");
    assert_eq!(
        d.run(&["kill", "-s", "KILL", &id])
            .expect_ok("kill")
            .stdout
            .trim(),
        id
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        d.run(&["delete", &id]).expect_ok("delete").stdout.trim(),
        id
    );
    documented("`Error: notFound: \"container with ID foo not found\"`");
    d.fails(
        &["stop", &id],
        1,
        &format!("notFound: \"container with ID {id} not found\""),
    );
    documented("`network delete` with one missing name\n  fails with `failed to delete one or more networks: [...]` and deletes nothing.");
    let net = unique("keep");
    d.run(&["network", "create", &net]).expect_ok("network");
    d.fails(
        &["network", "delete", &net, "bbdouble-missing"],
        1,
        "failed to delete one or more networks",
    );
    assert!(
        d.run(&["network", "inspect", &net]).ok(),
        "nothing was deleted"
    );
    d.run(&["network", "delete", &net])
        .expect_ok("delete network");
}

#[test]
fn a_refused_run_leaves_nothing_behind() {
    engine();
    let d = Double::new("1.2.2");
    let img = image(&d);
    // The same name again: refused, and the first container's resolv.conf
    // is not touched.
    let first = Running::start(&d, "same", &["--dns", "192.0.2.1"]);
    d.fails(
        &[
            "run",
            "-d",
            "--name",
            &first.id,
            "--dns",
            "192.0.2.9",
            img,
            "true",
        ],
        1,
        "already exists",
    );
    d.fails(
        &["create", "--name", &first.id, img, "true"],
        1,
        "container already exists",
    );
    assert_eq!(first.sh("cat /etc/resolv.conf"), "nameserver 192.0.2.1\n");
    // A bad flag after a new named volume: no volume is created.
    let vol = unique("novol");
    d.fails(
        &[
            "run",
            "-v",
            &format!("{vol}:/d"),
            "-p",
            "nonsense",
            img,
            "true",
        ],
        64,
        "invalid publish specification",
    );
    assert!(
        !docker(&["volume", "inspect", &vol]).ok(),
        "no volume for a refused run"
    );
    // The engine refuses the container after the volume was made: the
    // volume, the namespace holder and the record all go again.
    let name = unique("undone");
    let r = d.run(&[
        "run",
        "--name",
        &name,
        "-v",
        &format!("{vol}:relative"),
        img,
        "true",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        !docker(&["volume", "inspect", &vol]).ok(),
        "the auto-created volume is removed"
    );
    assert!(
        !docker(&["inspect", &format!("bbdouble-netns-{name}")]).ok(),
        "no holder left"
    );
    d.fails(&["inspect", &name], 1, "container not found");
    assert!(!d
        .state
        .path()
        .join("containers")
        .join(format!("{name}.json"))
        .exists());
}
