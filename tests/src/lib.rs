//! End-to-end test support for Skiff: real servers and peers run as child
//! processes on the loopback interface.
//!
//! [`Prosody`] starts a throw-away Prosody XMPP server (c2s with STARTTLS or
//! plaintext, a SOCKS5 bytestream proxy, HTTP file upload) with accounts and
//! contacts already in place:
//!
//! ```no_run
//! use skiff_tests::{Prosody, ProsodyOptions};
//!
//! let server = Prosody::start(ProsodyOptions::default())?;
//! let alice = server.jid("alice"); // "alice@localhost"
//! let password = server.password("alice"); // "alice-pw"
//! // connect to 127.0.0.1:server.c2s_port, trusting server.ca_file
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod cli;
#[cfg(feature = "desktop")]
pub mod desktop;
pub mod peer;
pub mod raw;
pub mod relay;
pub mod slix;

/// The Prosody launcher lives in `skiff-devserver` (the desktop demo uses it too).
pub use skiff_devserver::prosody;
pub use skiff_devserver::{free_port, Prosody, ProsodyOptions, TlsMode};
