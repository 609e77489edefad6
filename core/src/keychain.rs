//! Secrets in the OS keychain: the macOS Keychain, the kernel keyring
//! (keyutils) on Linux. Entries are service `bottlebar`, account
//! `<bottle>/<secret>`. The app writes them; launches read them.

use crate::name::BottleName;

/// The keychain service name of every Bottlebar entry.
pub const SERVICE: &str = "bottlebar";

#[derive(Debug, thiserror::Error)]
#[error("keychain entry `{account}`: {message}")]
pub struct KeychainError {
    pub account: String,
    pub message: String,
}

pub fn account(bottle: &BottleName, secret: &str) -> String {
    format!("{bottle}/{secret}")
}

fn entry(bottle: &BottleName, secret: &str) -> Result<keyring::Entry, KeychainError> {
    let account = account(bottle, secret);
    #[cfg(target_os = "linux")]
    {
        // A process started outside a login session has no session keyring,
        // and the keyring crate will not create one. Create it; the crate then
        // links each key into the user's persistent keyring, where later
        // processes find it.
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        KeyRing::from_special_id(KeyRingIdentifier::Session, true).map_err(|e| KeychainError {
            account: account.clone(),
            message: format!("no kernel keyring available: {e}"),
        })?;
    }
    keyring::Entry::new(SERVICE, &account).map_err(|e| KeychainError {
        account,
        message: e.to_string(),
    })
}

/// Stores (or replaces) a secret's value.
pub fn store(bottle: &BottleName, secret: &str, value: &str) -> Result<(), KeychainError> {
    entry(bottle, secret)?
        .set_password(value)
        .map_err(|e| KeychainError {
            account: account(bottle, secret),
            message: e.to_string(),
        })
}

/// Reads a secret's value; `None` if there is no entry.
pub fn read(bottle: &BottleName, secret: &str) -> Result<Option<String>, KeychainError> {
    match entry(bottle, secret)?.get_password() {
        Ok(v) => Ok(Some(v)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(KeychainError {
            account: account(bottle, secret),
            message: e.to_string(),
        }),
    }
}

/// Removes a secret; a missing entry is fine.
pub fn delete(bottle: &BottleName, secret: &str) -> Result<(), KeychainError> {
    match entry(bottle, secret)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(KeychainError {
            account: account(bottle, secret),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_read_delete_round_trip() {
        let b = BottleName::parse("keychain-test").unwrap();
        let name = format!("t{}", std::process::id());
        store(&b, &name, "s3cr3t").unwrap();
        assert_eq!(read(&b, &name).unwrap().as_deref(), Some("s3cr3t"));
        store(&b, &name, "other").unwrap();
        assert_eq!(read(&b, &name).unwrap().as_deref(), Some("other"));
        delete(&b, &name).unwrap();
        assert_eq!(read(&b, &name).unwrap(), None);
        delete(&b, &name).unwrap();
    }
}
