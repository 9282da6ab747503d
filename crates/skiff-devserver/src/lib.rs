//! A local Prosody for Skiff, shared by the end-to-end tests (`skiff-tests`), the
//! `skiff-devserver` binary (trying Skiff by hand, `scripts/run.sh`) and the desktop
//! app's demo mode. No test code and no test dependencies: the desktop links it.
//!
//! [`Prosody`] starts a throw-away or persistent Prosody XMPP server (c2s with
//! STARTTLS or plaintext, a SOCKS5 bytestream proxy, HTTP file upload, stream
//! management) on loopback, with accounts and contacts already in place:
//!
//! ```no_run
//! use skiff_devserver::{Prosody, ProsodyOptions};
//!
//! let server = Prosody::start(ProsodyOptions::default())?;
//! let alice = server.jid("alice"); // "alice@localhost"
//! let password = server.password("alice"); // "alice-pw"
//! // connect to 127.0.0.1:server.c2s_port, trusting server.ca_file
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! [`demo`] is the demo's server: its accounts (alice, bob, carol, mutual contacts),
//! its folder and its ports.

pub mod demo;
pub mod prosody;

pub use prosody::{free_port, Prosody, ProsodyOptions, TlsMode};
