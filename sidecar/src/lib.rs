//! The Bottlebar sidecar: the egress proxy that is a bottle's only way out.
//!
//! The binary (`main.rs`) is a thin command line over [`proxy::run`]; the
//! library exists so the proxy can be driven in-process by tests, the
//! benchmark and the fuzz target (`sidecar/fuzz`).
//!
//! - [`config`]: rules and secrets, reloaded live, failing closed;
//! - [`proxy`]: the layers from accept loop to upstream;
//! - [`mitm`]: leaf certificates from the bottle's CA;
//! - [`upstream`]: resolving, connecting, TLS-verifying, pooling;
//! - [`dlp`]: secret scanning of everything sent out;
//! - [`audit`]: the rotated JSONL audit log;
//! - [`probe`]: the isolation self-test, run inside the agent.

pub mod audit;
pub mod config;
pub mod dlp;
pub mod mitm;
pub mod probe;
pub mod proxy;
pub mod upstream;
