//! Skiff's protocol core. Sans-IO: no sockets, no files, no clock, no tokio.
//!
//! Bytes and stanzas go in, typed values, stanzas and actions come out. The engine
//! (`skiff-engine`) is the thin tokio layer that moves bytes between these types and
//! the network.

pub mod batch;
pub mod bytestreams;
pub mod caps;
pub mod dataforms;
pub mod dates;
pub mod disco;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hashes;
pub mod ibb;
pub mod iq;
pub mod jid;
pub mod jingle;
pub mod negotiation;
pub mod ns;
pub mod oob;
pub mod ping;
pub mod roster;
pub mod si;
pub mod sm;
pub mod socks5;
pub mod stanza;
pub mod stream;
pub mod stream_error;
pub mod transfer;
pub mod upload;
pub mod vocab;
pub mod xml;
