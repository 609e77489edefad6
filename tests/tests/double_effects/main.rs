//! The `container` test double's flags *take effect*: for every flag of the
//! reference's `run`/`create`/`exec` tables, a container run through the
//! double shows it from inside (capabilities in `/proc/self/status`, a
//! `touch` on a read-only root, resolv.conf, `ip route`, limits, the user),
//! and every refusal has the reference's text and exit code. Each check
//! first finds the behaviour in `shared/reference/apple-container-cli.md`.

use bottlebar_e2e::double_kit::*;
use bottlebar_e2e::*;
use serde_json::Value;

mod identity;
mod lifecycle;
mod limits;
mod mounts;
mod networks;
mod releases;

/// A busybox image with every applet, built through the double once.
fn image(d: &Double) -> &'static str {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    const TAG: &str = "bottlebar-test/effects:1";
    BUILT.get_or_init(|| {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("bin")).unwrap();
        let busybox = std::env::var_os("BOTTLEBAR_BUSYBOX")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/bin/busybox".into());
        std::fs::copy(busybox, ctx.path().join("bin/busybox")).unwrap();
        std::fs::write(ctx.path().join("secret"), "to be masked\n").unwrap();
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY bin/busybox /bin/busybox\nCOPY secret /etc/secret\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\nCMD [\"sh\"]\n",
        )
        .unwrap();
        d.run(&[
            "build",
            "--tag",
            TAG,
            "--label",
            TEST_LABEL,
            &ctx.path().display().to_string(),
        ])
        .expect_ok("building the effects image");
    });
    TAG
}

/// Runs `script` in a fresh foreground container with `flags`; its output.
fn run_sh(d: &Double, flags: &[&str], script: &str) -> Run {
    let img = image(d);
    let mut args = vec!["run", "--rm"];
    args.extend(flags);
    args.extend([img, "sh", "-c", script]);
    d.run(&args)
}

/// A running container for exec checks, removed on drop.
struct Running<'a> {
    d: &'a Double,
    id: String,
}

impl<'a> Running<'a> {
    fn start(d: &'a Double, tag: &str, flags: &[&str]) -> Self {
        let id = unique(tag);
        let img = image(d);
        let mut args = vec!["run", "-d", "--name", &id];
        args.extend(flags);
        args.extend([img, "sleep", "300"]);
        d.run(&args).expect_ok("starting a container");
        Running { d, id }
    }

    fn sh(&self, script: &str) -> String {
        self.d
            .run(&["exec", &self.id, "sh", "-c", script])
            .expect_ok(script)
            .stdout
    }

    fn inspect(&self) -> Value {
        let out = self.d.run(&["inspect", &self.id]).expect_ok("inspect");
        serde_json::from_str::<Value>(&out.stdout).unwrap()[0].clone()
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.d.run(&["delete", "--force", &self.id]);
    }
}

/// A capability set from `/proc/self/status` (`CapEff`, `CapBnd`, ...).
fn cap_set(status: &str, field: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or("")
        .trim();
    u64::from_str_radix(hex, 16).unwrap_or(u64::MAX)
}
