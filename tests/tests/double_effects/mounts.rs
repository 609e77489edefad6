//! Mounts, volumes and tmpfs, seen from inside.

use super::*;

#[test]
fn mounts_volumes_and_tmpfs_take_effect() {
    engine();
    let d = Double::new("1.2.2");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), "hello").unwrap();
    let src = dir.path().display().to_string();
    documented("`readonly=false` still mounts read-only");
    let r = run_sh(
        &d,
        &[
            "--mount", &format!("type=bind,source={src},target=/m,readonly=false"),
            "-v", &format!("{src}:/v"),
            "-v", &format!("{src}/f:/single/f:ro"),
            "--mount", "type=tmpfs,destination=/t,size=1m,mode=700",
            "--tmpfs", "/t2",
        ],
        "cat /m/f; touch /m/x 2>&1 | grep -c Read-only; touch /v/written && echo rw; cat /single/f; grep ' /t ' /proc/mounts; grep -c ' /t2 tmpfs' /proc/mounts",
    );
    let out = r.stdout;
    assert!(out.starts_with("hello1\nrw\nhello"), "{out}");
    assert!(
        out.contains("tmpfs /t tmpfs") && out.contains("size=1024k") && out.contains("mode=700"),
        "{out}"
    );
    assert!(dir.path().join("written").exists(), "-v binds read-write");
    documented("(`path '<src>' does not exist`)");
    d.fails(
        &["run", "-v", "/nonexistent/bbdouble:/x", image(&d), "true"],
        1,
        "path '/nonexistent/bbdouble' does not exist",
    );
    documented("`Error: path '<src>' is not a directory`");
    d.fails(
        &[
            "run",
            "--mount",
            &format!("type=bind,source={src}/f,target=/x"),
            image(&d),
            "true",
        ],
        1,
        &format!("path '{src}/f' is not a directory"),
    );
    documented("Unknown keys fail with `unknown directive <k> when parsing mount <spec>`");
    d.fails(
        &["run", "--mount", "type=bind,bogus=1", image(&d), "true"],
        1,
        "unknown directive bogus when parsing mount",
    );
    documented("auto-created if missing with the warning `named volume was automatically created`");
    let vol = unique("vol");
    let r = run_sh(&d, &["-v", &format!("{vol}:/data")], "echo kept > /data/k");
    assert!(
        r.stderr.contains("named volume was automatically created"),
        "{r:?}"
    );
    assert_eq!(
        run_sh(&d, &["-v", &format!("{vol}:/data")], "cat /data/k").stdout,
        "kept\n"
    );
    let _ = docker(&["volume", "rm", &vol]);
}
