//! A test double of Apple's `container` CLI (1.x, and 0.12.3 for the version
//! refusal), running real containers through the local Docker Engine.
//!
//! It follows `shared/reference/apple-container-cli.md` — flags, strict
//! parsing (exit 64, `Error: …`), failures with the real CLI's texts and exit
//! codes, the 1.x JSON shapes — and, what matters most, the *effects*:
//!
//! - every flag it accepts takes effect with Apple's semantics (translated
//!   to Docker) and shows in `inspect`, or is refused as Apple refuses it;
//!   flags that need a Mac (`--ssh`, Rosetta, kernels, platforms) are
//!   refused saying the double cannot emulate them — never accepted and
//!   dropped (`runspec/`); a refused `run` leaves nothing behind;
//! - confinement is Apple's, not Docker's: no seccomp filter, no AppArmor, no
//!   `no-new-privileges`; `/proc` masked only from 1.2.0 (and per
//!   `--masked-path`/`--read-only-path`); the 14 default capabilities; IP
//!   forwarding off, as in a fresh VM kernel;
//! - the network is Apple's (`netns.rs`): interfaces in flag order, only
//!   `eth0` with a default route (host-only networks included), MTU 1280;
//!   resolv.conf holds exactly the `--dns` servers (else the first network's
//!   gateway);
//! - no `network connect`, no aliases; `--internal` networks are host-only
//!   (Docker `--internal`, the host keeps the `.1`); single files cannot be
//!   bind-mounted with `--mount`;
//! - requests that change state (`run -d`, `create`, `delete`, `network
//!   create|delete`) are done by a server process that a killed client does
//!   not stop halfway, as the apiserver does them (`server.rs`);
//! - images are never pulled (there is no registry here): a missing image is
//!   Apple's `notFound`, and `--scheme`/`--max-concurrent-downloads` are
//!   checked but have nothing to shape.
//!
//! What Docker cannot give: Apple's VM boundary itself (containers share
//! this machine's kernel), the `vm.*` sysctls Apple sets (inspect shows
//! them; they are not applied), more CPUs than this machine has (`-c` is
//! capped at the host's count). `docs/security.md` says where a result in the
//! apple column rests on the double.
//!
//! Environment: `BOTTLEBAR_DOUBLE_VERSION` (default 1.2.2),
//! `BOTTLEBAR_DOUBLE_STATE` (its records and emulated builder and service
//! state), `BOTTLEBAR_DOUBLE_SERVICE=stopped` (the service starts stopped),
//! `BOTTLEBAR_TESTKIT_BIN` (the static test kit, which holds namespaces).
//! Runs as root (it arranges namespaces with `nsenter`), as Docker does.
//! Not shipped to users.

mod args;
mod container;
mod engine;
mod inspect;
mod netns;
mod network;
mod output;
mod runspec;
mod server;
mod system;

pub use netns::{holder_name, HOLDER_LABEL};
pub use output::{compact, pretty};
pub use runspec::not_emulated;

/// How a command failed: exit 64 for usage errors, 1 for the rest.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: i32,
    /// What `Error: ` is followed by.
    pub message: String,
}

impl Failure {
    /// A parse or validation error (exit 64).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 64,
            message: message.into(),
        }
    }
    /// Any other failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

type Out = Result<i32, Failure>;

/// The version the double plays.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Version(pub u64, pub u64, pub u64);

impl Version {
    fn from_env() -> Self {
        let v = std::env::var("BOTTLEBAR_DOUBLE_VERSION").unwrap_or_else(|_| "1.2.2".into());
        let n: Vec<u64> = v.split('.').filter_map(|x| x.parse().ok()).collect();
        match n.as_slice() {
            [a, b, c] => Version(*a, *b, *c),
            _ => Version(1, 2, 2),
        }
    }

    fn text(self) -> String {
        format!("{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The double's `main`: runs one command, prints Apple's way, returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    let version = Version::from_env();
    match dispatch(&args, version) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("Error: {}", f.message);
            if f.code == 64 {
                eprintln!(
                    "Usage: container <subcommand>\n  See 'container --help' for more information."
                );
            }
            f.code
        }
    }
}

fn dispatch(args: &[String], v: Version) -> Out {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(Failure::usage("Missing expected argument '<subcommand>'"));
    };
    if cmd != "system" && cmd != "--version" && engine::service_stopped() {
        return Err(Failure::failed("interrupted: \"XPC connection error: Connection invalid\"\nEnsure container system service has been started with `container system start`."));
    }
    if !server::is_server() {
        netns::collect_garbage();
    }
    match cmd.as_str() {
        "--version" => {
            println!(
                "container CLI version {} (build: release, commit: d0b1e55)",
                v.text()
            );
            Ok(0)
        }
        "system" | "s" => system::system(rest, v),
        "builder" => system::builder(rest, v),
        "build" => system::build(rest, v),
        "image" | "i" => system::image(rest),
        "network" | "n" => network::network(rest, v),
        "run" => container::run_or_create(rest, v, true),
        "create" => container::run_or_create(rest, v, false),
        "start" => container::start(rest),
        "inspect" => inspect::inspect(rest, v),
        "list" | "ls" => inspect::list(rest, v),
        "exec" => container::exec(rest),
        "stop" => container::stop(rest),
        "kill" => container::kill(rest),
        "delete" | "rm" => container::delete(rest),
        "logs" => container::logs(rest),
        other => Err(Failure::usage(format!("Unexpected argument '{other}'"))),
    }
}
