//! Skiff's engine: the running XMPP client on tokio. No GUI code here.
//!
//! `connection` turns an account into a signed-in stream (DNS SRV, TCP, TLS, SASL,
//! bind) by driving the sans-IO negotiator of `skiff-proto`; `session` routes stanzas
//! (IQ tracker, roster, presence, disco, keepalive, reconnection) and exposes the
//! [`Client`] command API; `event` is the contract with the shells (CLI, desktop).

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
