//! `$BOTTLEBAR_HOME/settings.toml`: what applies to every bottle of a home.
//!
//! ```toml
//! accept_leaks = ["host"]            # leak classes accepted for every bottle
//!
//! [new_bottles]                      # what `bottle new` and New bottle write
//! base = "registry.example.com/debian:12"   # the Debian templates' base image
//! extra_roots = ["/etc/corp/ca.pem"]        # CAs every new bottle trusts
//! ```
//!
//! A missing file is empty settings; an unreadable or invalid one is an
//! error naming the file (never silently ignored).

use crate::home::Home;
use serde::Deserialize;
use std::path::PathBuf;

/// The settings file's name in a home.
pub const SETTINGS_FILE: &str = "settings.toml";

/// A home's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Leak classes accepted for every bottle.
    #[serde(default)]
    pub accept_leaks: Vec<String>,
    /// Defaults for new bottles.
    #[serde(default)]
    pub new_bottles: NewBottleDefaults,
}

/// What new bottles are made with, unless chosen otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBottleDefaults {
    /// The Debian templates' base image (a mirror of Debian's official one).
    pub base: Option<String>,
    /// CA certificates every new bottle trusts (`tls.extra_roots`): a
    /// network that inspects TLS needs its CA here.
    #[serde(default)]
    pub extra_roots: Vec<PathBuf>,
}

/// `home`'s settings.
pub fn load(home: &Home) -> Result<Settings, String> {
    let path = home.root().join(SETTINGS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_read_and_mistakes_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert_eq!(load(&home).unwrap(), Settings::default());
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            "accept_leaks = [\"host\"]\n[new_bottles]\nbase = \"mirror/debian:12\"\nextra_roots = [\"/ca.pem\"]\n",
        )
        .unwrap();
        let s = load(&home).unwrap();
        assert_eq!(s.new_bottles.base.as_deref(), Some("mirror/debian:12"));
        assert_eq!(s.new_bottles.extra_roots, [PathBuf::from("/ca.pem")]);
        std::fs::write(dir.path().join(SETTINGS_FILE), "[new_bottles]\nimage = 1\n").unwrap();
        let e = load(&home).unwrap_err();
        assert!(e.contains("settings.toml") && e.contains("image"), "{e}");
    }
}
