//! Bottle names, and the engine resource names derived from them.
//!
//! A bottle's name becomes part of container, network and image names on every
//! backend, so it must satisfy the strictest of them: Apple's network names
//! (`^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$`, at most 63 characters) once
//! prefixed with `bottlebar-` and suffixed with the longest role (`-internal`).

use serde::Serialize;
use std::fmt;

/// Longest bottle name: `bottlebar-` (10) + name + `-internal` (9) stays within 63.
pub const MAX_BOTTLE_NAME_LEN: usize = 40;

/// Prefix of every engine resource Bottlebar creates.
pub const RESOURCE_PREFIX: &str = "bottlebar";

/// Why a string is not a bottle name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing given.
    #[error("bottle name is empty")]
    Empty,
    /// Longer than the engines allow.
    #[error("bottle name `{0}` is longer than {MAX_BOTTLE_NAME_LEN} characters")]
    TooLong(String),
    /// Characters the engines' names do not take.
    #[error("bottle name `{0}` must start with a lowercase letter and contain only lowercase letters, digits and single `-` between them")]
    BadCharacters(String),
}

/// A validated bottle name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct BottleName(String);

impl BottleName {
    /// Checks `name` against the rules above.
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_BOTTLE_NAME_LEN {
            return Err(NameError::TooLong(name.to_string()));
        }
        let b = name.as_bytes();
        let ok = b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && !name.ends_with('-')
            && !name.contains("--");
        if !ok {
            return Err(NameError::BadCharacters(name.to_string()));
        }
        Ok(Self(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The engine name of one of this bottle's resources, e.g. `bottlebar-demo-agent`.
    pub fn resource(&self, role: Role) -> String {
        format!("{RESOURCE_PREFIX}-{}-{}", self.0, role.as_str())
    }

    /// The image repository for one of this bottle's images, e.g. `bottlebar/demo-agent`.
    pub fn image_repo(&self, role: Role) -> String {
        format!("{RESOURCE_PREFIX}/{}-{}", self.0, role.as_str())
    }
}

impl fmt::Display for BottleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a labelled resource is to its bottle (the `bottlebar.role` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The agent container.
    Agent,
    /// The sidecar container.
    Sidecar,
    /// The internal network (the agent's only one).
    Internal,
    /// The egress network (the sidecar's way out).
    Egress,
}

impl Role {
    /// The role as labels and names spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Sidecar => "sidecar",
            Role::Internal => "internal",
            Role::Egress => "egress",
        }
    }

    /// The role a label names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agent" => Role::Agent,
            "sidecar" => Role::Sidecar,
            "internal" => Role::Internal,
            "egress" => Role::Egress,
            _ => return None,
        })
    }
}

/// Label keys put on every resource.
pub const LABEL_BOTTLE: &str = "bottlebar.bottle";
/// Label: what the resource is to its bottle.
pub const LABEL_ROLE: &str = "bottlebar.role";
/// Label on images: the hash of every build input.
pub const LABEL_CONTENT_HASH: &str = "bottlebar.content-hash";
/// Label carrying the id of the Bottlebar home that made a resource, so
/// two homes on one engine never list or remove each other's bottles.
pub const LABEL_HOME: &str = "bottlebar.home";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_names() {
        for n in ["demo", "a", "my-agent-2", &"a".repeat(MAX_BOTTLE_NAME_LEN)] {
            assert!(BottleName::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(BottleName::parse(""), Err(NameError::Empty));
        assert!(matches!(
            BottleName::parse(&"a".repeat(MAX_BOTTLE_NAME_LEN + 1)),
            Err(NameError::TooLong(_))
        ));
        for n in [
            "Demo", "1demo", "-demo", "demo-", "de--mo", "de_mo", "de.mo", "dé", "de mo", "../x",
        ] {
            assert!(
                matches!(BottleName::parse(n), Err(NameError::BadCharacters(_))),
                "{n}"
            );
        }
    }

    #[test]
    fn longest_resource_name_fits_apple_limits() {
        let n = BottleName::parse(&"a".repeat(MAX_BOTTLE_NAME_LEN)).unwrap();
        for role in [Role::Agent, Role::Sidecar, Role::Internal, Role::Egress] {
            assert!(n.resource(role).len() <= 63, "{}", n.resource(role));
        }
    }
}
