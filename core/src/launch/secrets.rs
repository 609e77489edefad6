//! Reading a bottle's secrets at launch, from the environment, a file or
//! the OS keychain; their values go to the sidecar only.

use crate::manifest::{SecretSource, SecretSpec};
use crate::name::BottleName;
use bottlebar_policy::HeldSecret;
use std::path::PathBuf;

/// A secret that could not be read at launch.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret's environment variable is unset or empty.
    #[error("secret `{name}`: environment variable {var} is not set (or is empty) in the process launching the bottle")]
    EnvMissing {
        /// The secret.
        name: String,
        /// The variable.
        var: String,
    },
    /// The secret's file could not be read.
    #[error("secret `{name}`: reading {path}: {source}")]
    File {
        /// The secret.
        name: String,
        /// The file.
        path: PathBuf,
        /// The OS's reason.
        source: std::io::Error,
    },
    /// The keychain has no entry for the secret.
    #[error("secret `{name}`: the OS keychain has no entry `{account}` (service `bottlebar`); set it in the app's bottle editor")]
    KeychainMissing {
        /// The secret.
        name: String,
        /// The entry looked for.
        account: String,
    },
    /// The keychain could not be read.
    #[error("secret `{name}`: reading the OS keychain: {message}")]
    Keychain {
        /// The secret.
        name: String,
        /// The keychain's reason.
        message: String,
    },
    /// The secret is empty.
    #[error("secret `{name}` is empty")]
    Empty {
        /// The secret.
        name: String,
    },
    /// The secret holds a control character (it could split a header).
    #[error("secret `{name}` contains a line break or other control character, so it cannot be sent in a header")]
    Control {
        /// The secret.
        name: String,
    },
}

/// Reads every secret's value from its source.
pub fn resolve_secrets(
    bottle: &BottleName,
    specs: &[SecretSpec],
) -> Result<Vec<HeldSecret>, SecretError> {
    specs
        .iter()
        .map(|s| {
            let value = match &s.source {
                SecretSource::Env(var) => std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| SecretError::EnvMissing {
                        name: s.name.clone(),
                        var: var.clone(),
                    })?,
                SecretSource::Keychain => crate::keychain::read(bottle, &s.name)
                    .map_err(|e| SecretError::Keychain {
                        name: s.name.clone(),
                        message: e.to_string(),
                    })?
                    .ok_or_else(|| SecretError::KeychainMissing {
                        name: s.name.clone(),
                        account: crate::keychain::account(bottle, &s.name),
                    })?,
                SecretSource::File(path) => std::fs::read_to_string(path)
                    .map_err(|source| SecretError::File {
                        name: s.name.clone(),
                        path: path.clone(),
                        source,
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            };
            if value.is_empty() {
                return Err(SecretError::Empty {
                    name: s.name.clone(),
                });
            }
            if value.chars().any(char::is_control) {
                return Err(SecretError::Control {
                    name: s.name.clone(),
                });
            }
            Ok(HeldSecret {
                name: s.name.clone(),
                value,
                placeholder: s.placeholder_env.as_ref().map(|_| s.placeholder()),
            })
        })
        .collect()
}
