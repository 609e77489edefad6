//! The Bottlebar sidecar: the egress proxy that is a bottle's only way out.
//!
//! The binary (`main.rs`) is a thin command line over [`proxy::run`]; the
//! library exists so the proxy can be driven in-process by tests, the
//! benchmark and the fuzz target (`sidecar/fuzz`).
//!
//! - [`config`]: the rules in force, taken once at start;
//! - [`control`]: how the core changes them (a socket no mount can reach);
//! - [`proxy`]: the layers from accept loop to upstream;
//! - [`netinfo`]: which interfaces are the agent's side;
//! - [`mitm`]: leaf certificates from the bottle's CA;
//! - [`upstream`]: resolving, connecting, TLS-verifying, pooling;
//! - [`dlp`]: secret scanning of everything sent out and masking of what comes back;
//! - [`audit`]: the rotated JSONL audit log;
//! - [`probe`]: the isolation self-test, run in the agent's network;
//! - [`supervise`]: the MCP server the agent asks for hosts through, and
//!   the approval queue behind it.

#![warn(missing_docs)]

pub mod audit;
pub mod config;
pub mod control;
pub mod dlp;
pub mod mitm;
pub mod netinfo;
pub mod probe;
pub mod proxy;
pub mod supervise;
pub mod upstream;
