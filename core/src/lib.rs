//! Bottlebar's engine.
//!
//! A bottle manifest ([`manifest`]) becomes a [`launch::LaunchSpec`], which
//! becomes a pure-data [`plan::Plan`] for one backend ([`backend`]); the
//! [`executor`] runs it with a [`runner::Runner`], emitting [`events`]. The
//! [`ops`] module is what the CLI and the app call; [`selftest`] measures a
//! launched bottle's isolation. Nothing here knows about
//! any user interface.

#![warn(missing_docs)]

pub mod audit;
pub mod backend;
pub mod boundary;
pub mod dir_watch;
pub mod editor;
pub mod events;
pub mod executor;
pub mod home;
pub mod images;
pub mod keychain;
pub mod launch;
pub mod manifest;
pub mod name;
pub mod ops;
pub mod plan;
pub mod runner;
pub mod selftest;
pub mod settings;
pub mod state;
pub mod subnets;
pub mod supervise;
pub mod templates;
pub mod terminal;

/// The current time as RFC 3339 (UTC, seconds), for records shown to people.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
