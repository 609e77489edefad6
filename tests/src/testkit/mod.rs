//! The test kit: the fake internet's server, a proxy-aware client, an MCP
//! client, a bare `CONNECT` relay (the benchmark's floor), and test certificates. Built into the `bottlebar-testkit` binary (statically, so it
//! runs in `FROM scratch` containers) and used in-process by unit tests and the
//! benchmark.

pub mod client;
pub mod mcp;
pub mod model_api;
pub mod pki;
pub mod raw;
pub mod relay;
pub mod server;
