//! `bottle new` and the app's New bottle: a bottle file from a template,
//! and its credential in the OS keychain. Either both happen or neither: a
//! file that exists is never replaced, and a key stored for a file that
//! could not be written is removed again.

mod file;

pub use file::{new_bottle_file, KeySource, NewBottle, NewBottleError};

use crate::home::Home;
use crate::keychain;
use crate::name::BottleName;
use std::io::Write;
use std::path::PathBuf;

/// Writes the bottle file `choice` describes — with the home's defaults for
/// new bottles (`settings.toml` `[new_bottles]`: base image, extra roots)
/// where it names none — and, when its credential comes from the keychain,
/// stores `key` there first. Returns the file's path.
pub fn new_bottle(
    home: &Home,
    choice: &NewBottle,
    key: Option<&str>,
    github_token: Option<&str>,
) -> Result<PathBuf, NewBottleError> {
    // The home's defaults for new bottles, where the choice says nothing.
    let defaults = crate::settings::load(home)
        .map_err(|message| NewBottleError::Invalid {
            field: "form",
            message,
        })?
        .new_bottles;
    let mut choice = choice.clone();
    let debian = crate::templates::find(&choice.template).is_some_and(|t| t.is_debian());
    if choice.base.is_none() && debian {
        choice.base = defaults.base;
    }
    if choice.extra_roots.is_empty() {
        choice.extra_roots = defaults.extra_roots;
    }
    let choice = &choice;
    let (text, credential) = new_bottle_file(home, choice)?;
    let name = BottleName::parse(&choice.name).expect("checked by new_bottle_file");
    let path = home.bottle_file(&name);
    // Every key for the keychain first, checked, then stored; all removed
    // again if any store or the file fails.
    let mut to_store = Vec::new();
    if let (Some(c), KeySource::Keychain) = (credential, &choice.key_source) {
        let key = key
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(NewBottleError::MissingKey { label: c.label })?;
        to_store.push((c.secret, key));
    }
    if let Some(KeySource::Keychain) = &choice.github_token {
        let tok = crate::templates::preset("github")
            .and_then(|p| p.token)
            .expect("github has a token");
        let token = github_token
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(NewBottleError::MissingKey { label: tok.label })?;
        to_store.push((tok.secret, token));
    }
    let mut stored = Vec::new();
    let mut result = Ok(());
    for (secret, value) in to_store {
        match keychain::store(&name, secret, value) {
            Ok(()) => stored.push(secret),
            Err(e) => {
                result = Err(NewBottleError::from(e));
                break;
            }
        }
    }
    let result = result.and_then(|()| write_new(&path, &text));
    if result.is_err() {
        for secret in stored {
            let _ = keychain::delete(&name, secret);
        }
    }
    result.map(|()| path)
}

/// Creates `path` with `text`; never replaces a file.
fn write_new(path: &PathBuf, text: &str) -> Result<(), NewBottleError> {
    let err = |source| NewBottleError::Write {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_bottle_never_replaces_a_file_and_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let ws = tempfile::tempdir().unwrap();
        let mut choice = NewBottle {
            name: "work".into(),
            template: "codex".into(),
            workspace: ws.path().to_path_buf(),
            auth: None,
            key_source: KeySource::Keychain,
            presets: vec![],
            github_token: None,
            base: None,
            extra_roots: vec![],
            supervise: false,
        };
        let missing = new_bottle(&home, &choice, Some("  "), None).unwrap_err();
        assert!(
            missing.to_string().contains("OpenAI API key is needed"),
            "{missing}"
        );
        assert!(!home
            .bottle_file(&BottleName::parse("work").unwrap())
            .exists());
        choice.key_source = KeySource::Env("OPENAI_API_KEY".into());
        let path = new_bottle(&home, &choice, None, None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let again = new_bottle(&home, &choice, None, None).unwrap_err();
        assert!(again.to_string().contains("exists already"), "{again}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "untouched");
    }
}
