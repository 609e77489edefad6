//! The command line: `bottle <command> [options]`.

use bottlebar_core::manifest::BackendKind;
use clap::{Parser, Subcommand, ValueEnum};

/// `bottle`: run AI coding agents in bottles.
#[derive(Parser)]
#[command(
    name = "bottle",
    version,
    about = "Run AI coding agents in bottles: containers whose only way out is an egress proxy."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `--backend`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Backend {
    Docker,
    Apple,
}

impl From<Backend> for BackendKind {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Docker => BackendKind::Docker,
            Backend::Apple => BackendKind::Apple,
        }
    }
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Make a bottle from a template: writes its file and keeps its API key
    /// in the OS keychain (read from the agent's usual variable, e.g.
    /// ANTHROPIC_API_KEY, or asked for).
    New(NewArgs),
    /// Launch a bottle (a no-op if it is already up).
    Up {
        name: String,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Build the agent's image afresh (a template fetches its CLI's newest
        /// release), replacing a running bottle.
        #[arg(long)]
        rebuild: bool,
        /// Print progress events as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Build a bottle's images now, without launching it (a template's
    /// first build takes minutes; `bottle up` then starts at once).
    Build {
        name: String,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Build the agent's image afresh (a template fetches its CLI's newest
        /// release); a running bottle uses it from its next launch.
        #[arg(long)]
        rebuild: bool,
        /// Print progress events as JSON lines, then the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove everything of a bottle: containers, networks, state. Idempotent.
    Down {
        name: String,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long)]
        json: bool,
    },
    /// List this home's bottles with their live state.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Print the launch plan without touching the engine.
    Plan {
        name: String,
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        /// Plan for this engine version (Apple's builder DNS steps depend on it);
        /// default: the newest known.
        #[arg(long, value_name = "X.Y.Z")]
        engine_version: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a bottle's egress audit log: every request its agent made and what the sidecar decided.
    Logs {
        name: String,
        /// Keep printing new entries as they arrive.
        #[arg(long, short)]
        follow: bool,
        /// Print the raw JSON lines.
        #[arg(long)]
        json: bool,
        /// Print only the newest N entries (read from the log's end).
        #[arg(long, short = 'n', value_name = "N")]
        lines: Option<usize>,
    },
    /// Run a command in a bottle's agent: `bottle exec NAME -- CMD...`.
    Exec {
        name: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Open an interactive shell in a bottle's agent.
    Shell { name: String },
    /// Check the container engines and say what to fix.
    Doctor {
        #[arg(long)]
        json: bool,
        /// Fix what can be fixed without questions (start Apple's container service).
        #[arg(long)]
        fix: bool,
    },
    /// Rerun the isolation self-test in a running bottle. A leak stops it.
    /// Exit 0 isolated, 3 isolation leak.
    Verify {
        name: String,
        /// Print the full record (every path tried) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the hosts agents asked for (supervise), pending first.
    Requests {
        /// Only this bottle's.
        name: Option<String>,
        /// Keep listing as requests arrive and are answered.
        #[arg(long)]
        watch: bool,
        #[arg(long)]
        json: bool,
    },
    /// Allow a pending request: once (the default), for a while, or always
    /// (adds the rule to the bottle's file).
    Allow {
        name: String,
        id: String,
        /// Exactly one request.
        #[arg(long, conflicts_with_all = ["for_", "always"])]
        once: bool,
        /// For this long, e.g. `10m`, `1h`, `2d`.
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "always")]
        for_: Option<String>,
        /// From now on: the rule goes into the bottle's file.
        #[arg(long)]
        always: bool,
    },
    /// Deny a pending request, optionally with a note the agent reads.
    Deny {
        name: String,
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Remove the resources of every one of this home's bottles that is not fully running.
    Cleanup {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long)]
        json: bool,
    },
}

/// What `bottle new` is given.
#[derive(clap::Args)]
pub struct NewArgs {
    pub name: String,
    /// claude-code, codex, dev or busybox.
    #[arg(long)]
    pub template: String,
    /// The folder the agent works in (mounted at /workspace).
    #[arg(long)]
    pub workspace: std::path::PathBuf,
    /// How the agent signs in: `api-key` (default) or `oauth` (Claude Code).
    #[arg(long)]
    pub auth: Option<String>,
    /// Also allow: github, npm, pypi, crates (repeatable).
    #[arg(long = "preset", value_name = "PRESET")]
    pub presets: Vec<String>,
    /// The Debian image the template is built on.
    #[arg(long)]
    pub base: Option<String>,
    /// Read the key at each launch from this variable instead of the keychain.
    #[arg(long, value_name = "VAR", conflicts_with = "key_file")]
    pub key_env: Option<String>,
    /// The GitHub preset's token: read at each launch from this variable
    /// (without it, `$GITHUB_TOKEN` when set goes to the keychain; else
    /// no token: public repositories only).
    #[arg(long, value_name = "VAR", requires = "presets")]
    pub github_token_env: Option<String>,
    /// Read the key at each launch from this file instead of the keychain.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<std::path::PathBuf>,
    /// Do not offer the agent the supervise MCP server.
    #[arg(long)]
    pub no_supervise: bool,
}
