//! The `container` test double against the reference it imitates
//! (`shared/reference/apple-container-cli.md`): each check first finds the
//! behaviour in the reference, then makes the double show it. When either
//! drifts, a test fails, instead of the backend passing against a double
//! that no longer matches the real CLI.

use bottlebar_e2e::double_kit::*;
use bottlebar_e2e::*;
use serde_json::Value;
use std::process::Command;

mod clients;
mod containers;
mod networks;
mod service;
mod versions;
