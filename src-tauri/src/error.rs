//! The one error type commands return: a stable `code` the UI branches on, and a
//! message in plain words for the user.

use serde::Serialize;
use skiff_engine::event::FatalCode;
use skiff_engine::session::ClientError;
use skiff_engine::store::StoreError;
use skiff_engine::transfer::TransferError;
use skiff_engine::trust::Untrusted;

/// The stable codes of [`AppError`] (a TypeScript union for the UI). The first ones
/// are the engine's sign-in failures ([`FatalCode`]), the rest the commands' own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    AuthFailed,
    Tls,
    Connect,
    Timeout,
    Resolve,
    CaFile,
    PlaintextRefused,
    CertificateUntrusted,
    CertificateChanged,
    PlainDowngrade,
    ServerAuthInvalid,
    Conflict,
    Protocol,
    /// Not signed in.
    Offline,
    /// The contact is offline (and nothing else could reach them).
    ContactOffline,
    /// The contact's clients take no file transfer we speak.
    NoFileTransfer,
    /// No such transfer, record or file.
    NotFound,
    /// The offer is no longer waiting for an answer.
    NotPending,
    /// The transfer is running.
    AlreadyActive,
    /// The transfer cannot be resumed.
    NotResumable,
    /// A command's argument is not valid.
    Invalid,
    /// Reading or writing a file failed.
    Io,
    /// The history database failed.
    Store,
    /// Anything else.
    Internal,
    /// The demo could not start.
    Demo,
}

impl ErrorCode {
    /// The wire name (`contact-offline`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthFailed => "auth-failed",
            ErrorCode::Tls => "tls",
            ErrorCode::Connect => "connect",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Resolve => "resolve",
            ErrorCode::CaFile => "ca-file",
            ErrorCode::PlaintextRefused => "plaintext-refused",
            ErrorCode::CertificateUntrusted => "certificate-untrusted",
            ErrorCode::CertificateChanged => "certificate-changed",
            ErrorCode::PlainDowngrade => "plain-downgrade",
            ErrorCode::ServerAuthInvalid => "server-auth-invalid",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Protocol => "protocol",
            ErrorCode::Offline => "offline",
            ErrorCode::ContactOffline => "contact-offline",
            ErrorCode::NoFileTransfer => "no-file-transfer",
            ErrorCode::NotFound => "not-found",
            ErrorCode::NotPending => "not-pending",
            ErrorCode::AlreadyActive => "already-active",
            ErrorCode::NotResumable => "not-resumable",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Io => "io",
            ErrorCode::Store => "store",
            ErrorCode::Internal => "internal",
            ErrorCode::Demo => "demo",
        }
    }
}

impl From<FatalCode> for ErrorCode {
    fn from(c: FatalCode) -> ErrorCode {
        match c {
            FatalCode::AuthFailed => ErrorCode::AuthFailed,
            FatalCode::Tls => ErrorCode::Tls,
            FatalCode::Connect => ErrorCode::Connect,
            FatalCode::Timeout => ErrorCode::Timeout,
            FatalCode::Resolve => ErrorCode::Resolve,
            FatalCode::CaFile => ErrorCode::CaFile,
            FatalCode::PlaintextRefused => ErrorCode::PlaintextRefused,
            FatalCode::CertificateUntrusted => ErrorCode::CertificateUntrusted,
            FatalCode::CertificateChanged => ErrorCode::CertificateChanged,
            FatalCode::PlainDowngrade => ErrorCode::PlainDowngrade,
            FatalCode::ServerAuthInvalid => ErrorCode::ServerAuthInvalid,
            FatalCode::Conflict => ErrorCode::Conflict,
            FatalCode::Protocol => ErrorCode::Protocol,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compares with the wire name, for tests.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error as the frontend sees it: `{ code, message }` (codes: [`ErrorCode`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// With `certificate-untrusted` and `certificate-changed`: the server's
    /// certificate, to show before the user trusts it (or to warn about a change).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub untrusted: Option<Box<Untrusted>>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError { code, message: message.into(), untrusted: None }
    }

    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Invalid, message)
    }

    pub fn offline() -> AppError {
        AppError::new(ErrorCode::Offline, "not signed in")
    }

    pub fn internal(message: impl std::fmt::Display) -> AppError {
        AppError::new(ErrorCode::Internal, message.to_string())
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for AppError {}

/// The code of a transfer error (that of its reason when only a turned-off upload
/// would have reached the contact).
fn transfer_code(e: &TransferError) -> ErrorCode {
    match e {
        TransferError::UploadTurnedOff { reason } => transfer_code(reason),
        TransferError::Offline(_) => ErrorCode::ContactOffline,
        TransferError::NoFileTransfer(_) | TransferError::NoBatches(_) => ErrorCode::NoFileTransfer,
        TransferError::Source { .. } => ErrorCode::Io,
        TransferError::Unknown(_) => ErrorCode::NotFound,
        TransferError::NotPending(_) => ErrorCode::NotPending,
        TransferError::AlreadyActive(_) => ErrorCode::AlreadyActive,
        TransferError::NotResumable { .. } => ErrorCode::NotResumable,
        TransferError::Store(StoreError::NotFound(_)) => ErrorCode::NotFound,
        TransferError::Store(_) => ErrorCode::Store,
        TransferError::Other(_) => ErrorCode::Internal,
    }
}

impl From<skiff_engine::files::SelectionError> for AppError {
    fn from(e: skiff_engine::files::SelectionError) -> AppError {
        use skiff_engine::files::SelectionError as E;
        let code = match &e {
            E::Missing { .. } => ErrorCode::NotFound,
            E::Unreadable { .. } => ErrorCode::Io,
            E::Nothing | E::EmptyFolder(_) | E::TooMany => ErrorCode::Invalid,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<skiff_engine::transfer::SettingsError> for AppError {
    fn from(e: skiff_engine::transfer::SettingsError) -> AppError {
        AppError::invalid(e.to_string())
    }
}

impl From<skiff_engine::AccountError> for AppError {
    fn from(e: skiff_engine::AccountError) -> AppError {
        AppError::invalid(e.to_string())
    }
}

impl From<TransferError> for AppError {
    fn from(e: TransferError) -> AppError {
        AppError::new(transfer_code(&e), e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> AppError {
        let code = match &e {
            StoreError::NotFound(_) => ErrorCode::NotFound,
            _ => ErrorCode::Store,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<ClientError> for AppError {
    fn from(e: ClientError) -> AppError {
        let code = match &e {
            ClientError::NotConnected | ClientError::Disconnected | ClientError::Stopped => ErrorCode::Offline,
            ClientError::Timeout { .. } => ErrorCode::Timeout,
            ClientError::Stanza { .. } => ErrorCode::Protocol,
            // The precise code of a failed sign-in comes with `Event::Fatal`; see
            // `AppError::from_fatal`.
            ClientError::Fatal(_) => ErrorCode::Connect,
        };
        AppError::new(code, e.to_string())
    }
}

impl AppError {
    /// The engine's `Event::Fatal { code, message, untrusted }`: its code is already stable.
    pub fn from_fatal(code: FatalCode, message: &str, untrusted: Option<Box<Untrusted>>) -> AppError {
        AppError { untrusted, ..AppError::new(code.into(), message) }
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> AppError {
        let code = if e.kind() == std::io::ErrorKind::NotFound { ErrorCode::NotFound } else { ErrorCode::Io };
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
        // Only a turned-off upload would have reached them: still "the contact is offline".
        let off = TransferError::UploadTurnedOff { reason: Box::new(TransferError::Offline("bob@x".into())) };
        let e = AppError::from(off);
        assert_eq!(e.code, ErrorCode::ContactOffline);
        assert!(e.message.contains("turned off in the settings"), "{}", e.message);
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
        assert_eq!(AppError::from_fatal(FatalCode::AuthFailed, "not-authorized", None).code, "auth-failed");
        let e = AppError::from(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        assert_eq!(e.code, "not-found");
    }

    #[test]
    fn serialises_as_code_and_message() {
        let e = AppError::new(ErrorCode::Tls, "bad certificate");
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"code":"tls","message":"bad certificate"}"#);
    }
}
