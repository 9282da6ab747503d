//! Skiff's engine: the running XMPP client on tokio. No GUI code here.
//!
//! `connection` turns an account into a signed-in stream (DNS SRV, TCP, TLS, SASL,
//! bind) by driving the sans-IO negotiator of `skiff-proto`; `session` routes stanzas
//! (IQ tracker, roster, presence, disco, keepalive, reconnection) and exposes the
//! [`Client`] command API; `event` is the contract with the shells (CLI, desktop).

/// `as_str` (the wire name, as in JSON and SQLite), `Display`, and comparison with a
/// wire name (`Route::Ibb == "ibb"`, for tests and logs) for a fieldless enum.
macro_rules! wire_names {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The wire name (JSON, SQLite, text output).
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

pub mod config;
pub mod connection;
pub mod event;
pub mod files;
pub mod session;
pub mod store;
pub mod transfer;
pub mod trust;

pub use config::{AccountConfig, AccountError, AccountForm, Secret, TlsMode};
pub use event::Event;
pub use session::{Client, ClientError};
