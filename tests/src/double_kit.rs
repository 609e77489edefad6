//! Driving the `container` test double from tests: its reference, a
//! handle that runs it as one version with its own state.

use crate::{double_bin, run_stdin, Run};
use std::path::PathBuf;
use std::process::Command;

/// The Apple CLI reference the double imitates.
pub fn reference() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/apple-container-cli.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "the reference {} is needed to check the double: {e}",
                path.display()
            )
        })
    })
}

/// Asserts the reference still says `text` (so a check and its source drift together).
#[track_caller]
pub fn documented(text: &str) {
    assert!(
        reference().contains(text),
        "the reference no longer says {text:?}; update the double and this test together"
    );
}

/// Runs the double as `version`, with its own builder state.
pub struct Double {
    version: &'static str,
    /// Where this double keeps its records and emulated state.
    pub state: tempfile::TempDir,
}

impl Double {
    /// A double playing `version`, with its own state.
    pub fn new(version: &'static str) -> Self {
        Self {
            version,
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// The double's command line, playing this version with this state.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(double_bin());
        cmd.args(args)
            .env("BOTTLEBAR_DOUBLE_VERSION", self.version)
            .env("BOTTLEBAR_DOUBLE_STATE", self.state.path());
        cmd
    }

    /// Runs it.
    pub fn run(&self, args: &[&str]) -> Run {
        run_stdin(&mut self.command(args), b"")
    }

    /// Runs it with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Run {
        run_stdin(&mut self.command(args), input.as_bytes())
    }

    /// Asserts `args` fail with `code` and `message`.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32, message: &str) {
        let r = self.run(args);
        assert_eq!(r.code, code, "{args:?}: {r:?}");
        assert!(
            r.stderr.lines().any(|l| l.starts_with("Error: ")),
            "{args:?}: {r:?}"
        );
        assert!(
            r.stderr.contains(message),
            "{args:?}: expected {message:?} in {r:?}"
        );
    }
}

/// A name unique to this test process.
pub fn unique(tag: &str) -> String {
    format!("bbdouble-{tag}-{}", std::process::id())
}
