//! One module per command.

pub mod build;
pub mod cleanup;
pub mod doctor;
pub mod down;
pub mod exec;
pub mod logs;
pub mod ls;
pub mod new;
pub mod plan;
pub mod requests;
pub mod up;
pub mod verify;

/// `bottle up` and `bottle verify` exit with this when the self-test found a
/// way out (other failures exit 1).
pub const EXIT_ISOLATION_LEAK: u8 = 3;
