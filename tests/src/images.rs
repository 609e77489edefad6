//! The images the suites build here (no registry): busybox upstreams, the
//! test kit, an agent with this machine's `git` and `ssh`; and the Debian
//! base and trust roots the template builds need.

use crate::{docker, engine, testkit_bin};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The busybox image the plain upstreams and client containers use, built once.
pub fn upstream_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    const IMAGE: &str = "bottlebar-test/upstream:1";
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        let bin = ctx.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(ctx.path().join("rootfs/www")).unwrap();
        let busybox = std::env::var_os("BOTTLEBAR_BUSYBOX")
            .map(PathBuf::from)
            .unwrap_or_else(|| "/bin/busybox".into());
        std::fs::copy(&busybox, bin.join("busybox"))
            .expect("a static busybox (Debian busybox-static, or set BOTTLEBAR_BUSYBOX)");
        for applet in ["sh", "httpd", "nc", "echo", "printf", "cat", "sleep", "ps"] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\nENV PATH=/bin\n",
        )
        .unwrap();
        engine().build(IMAGE, ctx.path());
    });
    IMAGE
}

/// A build context for an agent with the real `git` and `ssh` of this
/// machine: each binary and every shared library it loads (by `ldd`), the
/// dynamic loader, and a static busybox for the shell, `FROM scratch` (no
/// registry). The escape suite attacks with it as an agent would.
pub fn git_agent_context() -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    let root = ctx.path().join("rootfs");
    let output = |cmd: &str| {
        let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
        assert!(
            o.status.success(),
            "`{cmd}` failed: run scripts/setup (git, openssh-client)"
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let exec_path = output("git --exec-path");
    let bins = [
        output("command -v git"),
        format!("{exec_path}/git-remote-https"),
        output("command -v ssh"),
    ];
    let copy = |from: &str| {
        let to = root.join(from.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copying {from}: {e}"));
    };
    for bin in &bins {
        copy(bin);
        for line in output(&format!("ldd {bin}")).lines() {
            // `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
            let path = line
                .split("=>")
                .last()
                .and_then(|r| r.split_whitespace().next())
                .filter(|p| p.starts_with('/'));
            if let Some(lib) = path {
                copy(lib);
            }
        }
    }
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let busybox = std::env::var_os("BOTTLEBAR_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/bin/busybox".into());
    std::fs::copy(&busybox, bin.join("busybox")).unwrap();
    for applet in [
        "sh", "sleep", "nc", "cat", "echo", "printf", "env", "grep", "head", "ls", "timeout",
        "wget", "tr", "mkdir", "ps",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for dir in ["etc", "tmp", "root"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    // ssh refuses to run for a user it cannot look up.
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin HOME=/root GIT_EXEC_PATH={exec_path}\n"
        ),
    )
    .unwrap();
    ctx
}

/// The image of the static test kit (built once per test process).
pub fn testkit_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    const IMAGE: &str = "bottlebar-test/tls-upstream:2";
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::copy(testkit_bin(), ctx.path().join("bottlebar-testkit")).unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY bottlebar-testkit /bottlebar-testkit\nENTRYPOINT [\"/bottlebar-testkit\"]\n").unwrap();
        engine().build(IMAGE, ctx.path());
    });
    IMAGE
}

/// The Debian image the agent templates are built on here (made by
/// `scripts/make-debian-base`, no registry). Fails loudly when it is missing.
pub fn debian_base() -> String {
    let base = std::env::var("BOTTLEBAR_DEBIAN_BASE")
        .unwrap_or_else(|_| "bottlebar-local/debian:bookworm".into());
    assert!(
        docker(&["image", "inspect", &base]).ok(),
        "no Debian base image {base}: `scripts/make-debian-base` makes it (scripts/test runs it)"
    );
    base
}

/// The CA certificates this machine added to its own trust store (a network
/// that inspects TLS has one): the template builds need them to reach npm.
pub fn machine_roots() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/usr/local/share/ca-certificates")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    v.sort();
    v
}
