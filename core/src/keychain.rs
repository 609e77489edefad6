//! Secrets in the OS keychain: the macOS Keychain; on Linux the desktop's
//! Secret Service (gnome-keyring, KWallet) when the session has one, else
//! the kernel keyring (keyutils), which needs no daemon but does not survive
//! a reboot. Entries are service `bottlebar`, account `<bottle>/<secret>`.
//! The app writes them; launches read them.

use crate::name::BottleName;

/// The keychain service name of every Bottlebar entry.
pub const SERVICE: &str = "bottlebar";

/// A keychain operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("keychain entry `{account}`: {message}")]
pub struct KeychainError {
    /// The entry (`bottle/secret`).
    pub account: String,
    /// What went wrong.
    pub message: String,
}

/// Where this process keeps secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The macOS login Keychain.
    MacosKeychain,
    /// A freedesktop Secret Service on the session bus.
    SecretService,
    /// The Linux kernel keyring: used when no Secret Service answers.
    KernelKeyring,
    /// Whatever the `keyring` crate defaults to on this platform.
    PlatformDefault,
}

impl Store {
    /// A short description for the settings view and `bottle doctor`.
    pub fn describe(self) -> &'static str {
        match self {
            Store::MacosKeychain => "macOS Keychain",
            Store::SecretService => "Secret Service (desktop keyring)",
            Store::KernelKeyring => {
                "kernel keyring (no Secret Service on this session; secrets last until reboot)"
            }
            Store::PlatformDefault => "platform keychain",
        }
    }
}

/// The store in use, decided once per process.
pub fn store_in_use() -> Store {
    static STORE: std::sync::OnceLock<Store> = std::sync::OnceLock::new();
    *STORE.get_or_init(detect_store)
}

#[cfg(target_os = "macos")]
fn detect_store() -> Store {
    Store::MacosKeychain
}

#[cfg(target_os = "linux")]
fn detect_store() -> Store {
    // A lookup of an entry that never exists: `NoEntry` means a Secret
    // Service answered (and its collection is unlocked); anything else
    // (no session bus, no service, locked) means there is none to use.
    let probe = keyring::secret_service::SsCredential::new_with_target(
        None,
        SERVICE,
        "bottlebar-store-probe",
    );
    match probe.map(|c| keyring::Entry::new_with_credential(Box::new(c)).get_password()) {
        Ok(Err(keyring::Error::NoEntry)) | Ok(Ok(_)) => Store::SecretService,
        _ => Store::KernelKeyring,
    }
}

#[cfg(not(any(target_os = "macos", target_os = "linux")))]
fn detect_store() -> Store {
    Store::PlatformDefault
}

/// The keychain account of a bottle's secret: `bottle/secret`.
pub fn account(bottle: &BottleName, secret: &str) -> String {
    format!("{bottle}/{secret}")
}

fn failed(account: &str, e: impl std::fmt::Display) -> KeychainError {
    KeychainError {
        account: account.to_string(),
        message: e.to_string(),
    }
}

#[cfg(target_os = "linux")]
fn entry(bottle: &BottleName, secret: &str) -> Result<keyring::Entry, KeychainError> {
    let account = account(bottle, secret);
    let credential: Box<keyring::credential::Credential> = match store_in_use() {
        Store::SecretService => Box::new(
            keyring::secret_service::SsCredential::new_with_target(None, SERVICE, &account)
                .map_err(|e| failed(&account, e))?,
        ),
        _ => {
            // A process started outside a login session has no session
            // keyring, and the keyring crate will not create one. Create
            // it; the crate then links each key into the user's persistent
            // keyring, where later processes find it.
            use linux_keyutils::{KeyRing, KeyRingIdentifier};
            KeyRing::from_special_id(KeyRingIdentifier::Session, true).map_err(|e| {
                failed(
                    &account,
                    format!("no Secret Service and no kernel keyring available: {e}"),
                )
            })?;
            Box::new(
                keyring::keyutils::KeyutilsCredential::new_with_target(None, SERVICE, &account)
                    .map_err(|e| failed(&account, e))?,
            )
        }
    };
    Ok(keyring::Entry::new_with_credential(credential))
}

#[cfg(not(target_os = "linux"))]
fn entry(bottle: &BottleName, secret: &str) -> Result<keyring::Entry, KeychainError> {
    let account = account(bottle, secret);
    keyring::Entry::new(SERVICE, &account).map_err(|e| failed(&account, e))
}

/// Stores (or replaces) a secret's value.
pub fn store(bottle: &BottleName, secret: &str, value: &str) -> Result<(), KeychainError> {
    entry(bottle, secret)?
        .set_password(value)
        .map_err(|e| failed(&account(bottle, secret), e))
}

/// Reads a secret's value; `None` if there is no entry.
pub fn read(bottle: &BottleName, secret: &str) -> Result<Option<String>, KeychainError> {
    match entry(bottle, secret)?.get_password() {
        Ok(v) => Ok(Some(v)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(failed(&account(bottle, secret), e)),
    }
}

/// Removes a secret; a missing entry is fine.
pub fn delete(bottle: &BottleName, secret: &str) -> Result<(), KeychainError> {
    match entry(bottle, secret)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(failed(&account(bottle, secret), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `scripts/test` runs the tests under a D-Bus session with
    /// gnome-keyring and sets `BOTTLEBAR_EXPECT_SECRET_SERVICE=1`, so the
    /// Secret Service path cannot be silently replaced by the fallback.
    #[test]
    #[cfg(target_os = "linux")]
    fn secret_service_is_used_when_expected() {
        if std::env::var_os("BOTTLEBAR_EXPECT_SECRET_SERVICE").is_none() {
            eprintln!(
                "BOTTLEBAR_EXPECT_SECRET_SERVICE unset: store is {:?}",
                store_in_use()
            );
            return;
        }
        assert_eq!(store_in_use(), Store::SecretService);
        // Seen from outside the crate: `secret-tool` (libsecret) finds it.
        let b = BottleName::parse("keychain-test").unwrap();
        let name = format!("ss{}", std::process::id());
        store(&b, &name, "from-bottlebar").unwrap();
        let out = std::process::Command::new("secret-tool")
            .args([
                "lookup",
                "service",
                SERVICE,
                "username",
                &account(&b, &name),
            ])
            .output()
            .expect("secret-tool (libsecret-tools) runs");
        delete(&b, &name).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "from-bottlebar"
        );
    }

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
