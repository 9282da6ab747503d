//! The account password behind "Remember password": kept in the OS keyring only
//! (Secret Service on Linux, the Keychain on macOS, Credential Manager on Windows),
//! never in the app's files. Without a keyring service the password is simply not
//! kept, and the user is told so in one sentence.

use keyring::Entry;

/// The keyring's service name for Skiff's entries (the account is the user name).
pub const SERVICE: &str = "skiff";

/// Why the keyring could not be used, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No keyring service answers (no Secret Service on the session bus, no session
    /// bus at all), or it is locked and refused to open.
    #[error(
        "your password was not saved: no keyring service is available on this computer (on Linux, a Secret Service \
         such as GNOME Keyring or KWallet); you will be asked for it next time. Nothing was written to disk"
    )]
    Unavailable(String),
    #[error("the keyring refused the password: {0}")]
    Other(String),
}

fn classify(e: keyring::Error) -> KeyringError {
    match e {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
            KeyringError::Unavailable(e.to_string())
        }
        other => KeyringError::Other(other.to_string()),
    }
}

fn entry(account: &str) -> Result<Entry, KeyringError> {
    Entry::new(SERVICE, account).map_err(classify)
}

/// Keeps `password` for `account` (a bare JID), replacing an earlier one.
pub fn save(account: &str, password: &str) -> Result<(), KeyringError> {
    entry(account)?.set_password(password).map_err(classify)
}

/// The kept password of `account`; `Ok(None)` when there is none.
pub fn load(account: &str) -> Result<Option<String>, KeyringError> {
    match entry(account)?.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

/// Forgets the kept password of `account` (nothing when there is none).
pub fn forget(account: &str) -> Result<(), KeyringError> {
    match entry(account)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(classify(e)),
    }
}

/// [`save`], [`load`] and [`forget`] on a blocking thread (the Secret Service client
/// waits on D-Bus).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
