//! Skiff's protocol core. Sans-IO: no sockets, no files, no clock, no tokio.
//!
//! Bytes and stanzas go in, typed values, stanzas and actions come out. The engine
//! (`skiff-engine`) is the thin tokio layer that moves bytes between these types and
//! the network.

pub mod error;
pub mod ns;
pub mod xml;
pub mod stream;
pub mod jid;
pub mod stanza;
pub mod stream_error;
pub mod negotiation;
pub mod roster;
pub mod ping;
pub mod dataforms; // helper-3
pub mod disco; // helper-3
pub mod si; // helper-3
pub mod bytestreams; // helper-3
pub mod socks5; // helper-3
pub mod ibb; // helper-3
pub mod oob; // helper-3
