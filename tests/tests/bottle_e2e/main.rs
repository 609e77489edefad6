//! Real bottles, end to end, on the engine `BOTTLEBAR_E2E_BACKEND` selects
//! (Docker, or the apple backend through its test double or the real CLI):
//! launch, attack from inside, break launches, check nothing is left behind.
//!
//! The "internet" is the test's own upstream container on the bottle's egress
//! network, reached by an address the bottle pins; no test sends traffic
//! anywhere else.

use bottlebar_core::manifest::DEMO_MANIFEST;
use bottlebar_e2e::*;
use serde_json::Value;
use std::time::Duration;

mod bad_input;
mod build;
mod demo;
mod interrupt;
mod repair;
mod rollback;
mod side_by_side;

fn event_names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_string())
        .collect()
}
