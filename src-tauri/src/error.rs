//! The one error type commands return: a stable `code` the UI branches on, and a
//! message in plain words for the user.

use serde::Serialize;
use skiff_engine::session::ClientError;
use skiff_engine::store::StoreError;
use skiff_engine::transfer::TransferError;
use skiff_engine::trust::Untrusted;

/// An error as the frontend sees it: `{ code, message }`.
///
/// Codes: `auth-failed`, `tls`, `connect`, `timeout`, `resolve`, `ca-file`,
/// `plaintext-refused`, `certificate-untrusted`, `certificate-changed` (with
/// `untrusted`), `plain-downgrade`, `server-auth-invalid`, `conflict`, `protocol` (from
/// the engine's `Event::Fatal`),
/// `offline` (not signed in, or the contact is offline), `no-file-transfer`,
/// `not-found`, `not-pending`, `already-active`, `not-resumable`, `invalid`, `io`,
/// `store`, `internal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AppError {
    pub code: String,
    pub message: String,
    /// With `certificate-untrusted` and `certificate-changed`: the server's
    /// certificate, to show before the user trusts it (or to warn about a change).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub untrusted: Option<Box<Untrusted>>,
}

impl AppError {
    pub fn new(code: &str, message: impl Into<String>) -> AppError {
        AppError { code: code.to_owned(), message: message.into(), untrusted: None }
    }

    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::new("invalid", message)
    }

    pub fn offline() -> AppError {
        AppError::new("offline", "not signed in")
    }

    pub fn internal(message: impl std::fmt::Display) -> AppError {
        AppError::new("internal", message.to_string())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for AppError {}

impl From<TransferError> for AppError {
    fn from(e: TransferError) -> AppError {
        let code = match &e {
            TransferError::Offline(_) => "contact-offline",
            TransferError::NoFileTransfer(_) => "no-file-transfer",
            TransferError::Source { .. } => "io",
            TransferError::Unknown(_) => "not-found",
            TransferError::NotPending(_) => "not-pending",
            TransferError::AlreadyActive(_) => "already-active",
            TransferError::NotResumable { .. } => "not-resumable",
            TransferError::Store(StoreError::NotFound(_)) => "not-found",
            TransferError::Store(_) => "store",
            TransferError::Other(_) => "internal",
        };
        AppError::new(code, e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        let code = match &e {
            StoreError::NotFound(_) => "not-found",
            _ => "store",
        };
        AppError::new(code, e.to_string())
    }
}

impl From<ClientError> for AppError {
    fn from(e: ClientError) -> AppError {
        let code = match &e {
            ClientError::NotConnected | ClientError::Disconnected | ClientError::Stopped => "offline",
            ClientError::Timeout { .. } => "timeout",
            ClientError::Stanza { .. } => "protocol",
            // The precise code of a failed sign-in comes with `Event::Fatal`; see
            // `AppError::from_fatal`.
            ClientError::Fatal(_) => "connect",
        };
        AppError::new(code, e.to_string())
    }
}

impl AppError {
    /// The engine's `Event::Fatal { code, message, untrusted }`: its code is already stable.
    pub fn from_fatal(code: &str, message: &str, untrusted: Option<Box<Untrusted>>) -> AppError {
        AppError { untrusted, ..AppError::new(code, message) }
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> AppError {
        let code = if e.kind() == std::io::ErrorKind::NotFound { "not-found" } else { "io" };
        AppError::new(code, e.to_string())
    }
}

pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_errors_keep_a_code() {
        assert_eq!(AppError::from(TransferError::Unknown(7)).code, "not-found");
        assert_eq!(AppError::from(TransferError::Offline("bob@x".into())).code, "contact-offline");
        assert_eq!(AppError::from(TransferError::NotPending(3)).code, "not-pending");
        let e = AppError::from(TransferError::NotResumable { id: 1, reason: "done".into() });
        assert_eq!(e.code, "not-resumable");
        assert!(e.message.contains("done"));
        assert_eq!(AppError::from(StoreError::NotFound(9)).code, "not-found");
        assert_eq!(AppError::from(TransferError::Store(StoreError::NotFound(9))).code, "not-found");
    }

    #[test]
    fn client_errors_and_fatal() {
        assert_eq!(AppError::from(ClientError::NotConnected).code, "offline");
        assert_eq!(AppError::from_fatal("auth-failed", "not-authorized", None).code, "auth-failed");
        let e = AppError::from(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        assert_eq!(e.code, "not-found");
    }

    #[test]
    fn serialises_as_code_and_message() {
        let e = AppError::new("tls", "bad certificate");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"code":"tls","message":"bad certificate"}"#);
    }
}
