//! The sans-IO state machines of one file transfer: XEP-0096 SI File Transfer (over
//! XEP-0095 Stream Initiation) carried by XEP-0065 SOCKS5 Bytestreams (our streamhost,
//! then a proxy) or XEP-0047 In-Band Bytestreams.
//!
//! [`Sender`] runs one outgoing transfer, [`Receiver`] one incoming transfer. Both are
//! plain structs in the quinn-proto style: no sockets, no files, no clock. The driver
//! (the engine's tokio task) feeds them inputs with the current time and carries out
//! the actions they return:
//!
//! - `handle(input, now) -> Vec<Action>`: the actions are returned in the order they
//!   must be carried out (an IQ before the socket work that depends on it).
//! - `poll_timeout() -> Option<Instant>`: when the driver must call
//!   `handle(Tick, now)` next, if nothing else happens first.
//!
//! Time is an [`Instant`]: a [`Duration`] since an origin the driver picks; only
//! differences matter. Stanzas leave as [`Iq`] values with `id`
//! and `to` already set; the machines match answers to their own requests by id and
//! ignore anything else.
//!
//! What the machines leave to the driver: sockets (the SOCKS5 handshakes and their
//! per-candidate timeouts, our listener), file IO (the `.part` file, hashing, the final
//! size and MD5 check, the rename), progress throttling and the history.

mod receiver;
mod sender;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::jid::Jid;
use crate::ns;
use crate::stanza::{Condition, Iq, StanzaError};

pub use receiver::{
    checksum_differs, checksum_matches, Receiver, ReceiverAction, ReceiverConfig, ReceiverInput, ReceiverState,
    CHECKSUM_WAIT, MAX_STREAMHOSTS, MAX_STREAMHOST_LISTS,
};
pub use sender::{Sender, SenderAction, SenderConfig, SenderInput, SenderState, CHECKSUM_ANSWER_TIMEOUT};

/// A point in time: the time since an arbitrary origin chosen by the driver. This
/// crate has no clock; the driver passes `now` into every call.
pub type Instant = Duration;

/// In-band block sizes tried in turn when the receiver answers `resource-constraint`.
pub const STEP_DOWN: &[u16] = &[65535, 32768, 16384, 8192, 4096, 2048, 1024];

/// In-band block size for peers that are not Skiff: the XEP's recommendation. Some
/// clients (slixmpp) refuse more and cannot take a retry on the same stream.
pub const INTEROP_BLOCK_SIZE: u16 = 4096;

/// How long the sender waits for the answer to its streamhosts (the receiver tries
/// every candidate before it answers).
pub const STREAMHOSTS_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an accepted transfer waits for the sender to open a stream.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a receiver waits for the next in-band block.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// In-band data slower than this (bytes per second) after [`SLOW_AFTER`] is reported
/// once with [`SenderAction::Slow`]: the server is throttling the connection.
pub const SLOW_RATE: u64 = 64 * 1024;

/// When the in-band rate is first judged.
pub const SLOW_AFTER: Duration = Duration::from_secs(5);

/// A way to carry the bytes, in the SI `stream-method` sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Method {
    /// XEP-0065 SOCKS5 bytestreams (direct or through a proxy).
    S5b,
    /// XEP-0047 in-band bytestreams.
    Ibb,
}

impl Method {
    /// The `stream-method` value.
    pub fn namespace(self) -> &'static str {
        match self {
            Method::S5b => ns::BYTESTREAMS,
            Method::Ibb => ns::IBB,
        }
    }

    /// The method a `stream-method` value names, if it is one of ours.
    pub fn from_namespace(namespace: &str) -> Option<Method> {
        match namespace {
            ns::BYTESTREAMS => Some(Method::S5b),
            ns::IBB => Some(Method::Ibb),
            _ => None,
        }
    }
}

crate::wire_enum!(Method, "method", { S5b => "s5b", Ibb => "ibb" });

/// The signalling that set a transfer up: XEP-0096 SI file transfer, or XEP-0234
/// Jingle file transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Protocol {
    Si,
    Jingle,
}

crate::wire_enum!(Protocol, "protocol", { Si => "si", Jingle => "jingle" });

/// The way the bytes actually travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Route {
    /// SOCKS5 straight between the peers (the requester's own streamhost, XEP-0065).
    S5bDirect,
    /// SOCKS5 through a proxy streamhost (XEP-0065).
    S5bProxy,
    /// In-band, through the XMPP servers (XEP-0047).
    Ibb,
    /// An out-of-band URL (XEP-0066).
    Oob,
    /// HTTP upload to the server (XEP-0363).
    Upload,
}
crate::wire_enum!(Route, "route", {
    S5bDirect => "s5b-direct", S5bProxy => "s5b-proxy", Ibb => "ibb", Oob => "oob", Upload => "upload",
});

/// Why a transfer ended without the file: stable, for the shells to branch on and the
/// history to keep, beside the sentence that says it to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum FailReason {
    /// A user stopped it (ours, or the peer's when it says so).
    Cancelled,
    /// The receiver said no.
    Declined,
    /// The other side (or a proxy) did not answer in time.
    Timeout,
    /// The connection or the bytestream broke, or none could be set up.
    Network,
    /// The data arrived damaged: its size or hash does not match.
    Integrity,
    /// The file being sent changed, went away or cannot be read.
    Source,
    /// The received data cannot be stored (disk full, permissions, the folder gone).
    Storage,
    /// The other side refused the transfer or a step of it with an error.
    Refused,
    /// The other side has no transfer method or option in common with us.
    Unsupported,
    /// The other side broke the protocol (an answer that cannot be read, more data
    /// than announced, ...).
    Protocol,
    /// Our own rules forbid it (an address a link may not reach, uploads turned off,
    /// too large for the server, ...).
    Policy,
    /// We are signed out.
    Offline,
    /// Skiff stopped (quit, crashed, or was killed) while it ran.
    Stopped,
}
crate::wire_enum!(FailReason, "failure reason", {
    Cancelled => "cancelled", Declined => "declined", Timeout => "timeout", Network => "network",
    Integrity => "integrity", Source => "source", Storage => "storage", Refused => "refused",
    Unsupported => "unsupported", Protocol => "protocol", Policy => "policy", Offline => "offline",
    Stopped => "stopped",
});

/// How a transfer attempt failed: why, the sentence for the user, and whether what
/// arrived is kept so that a retry continues from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: FailReason,
    pub error: String,
    pub resumable: bool,
}

impl Failure {
    pub fn new(reason: FailReason, error: impl Into<String>, resumable: bool) -> Failure {
        Failure { reason, error: error.into(), resumable }
    }

    /// The user stopped it; what arrived is kept.
    pub fn cancelled() -> Failure {
        Failure::new(FailReason::Cancelled, "cancelled", true)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

/// The user-facing text of an error answer from `peer` (the engine's wording).
fn answered_with(peer: &Jid, error: &StanzaError) -> String {
    format!("{peer} answered with an error: {error}")
}

/// The user-facing text of a request `peer` did not answer within `timeout`.
fn no_answer(peer: &Jid, timeout: Duration) -> String {
    format!("no answer from {peer} within {} seconds", timeout.as_secs())
}

/// True when `iq` is the answer (result or error) to our request `id` sent to `to`.
/// An answer without `from` is accepted: only our own server can send one.
fn answers(iq: &Iq, id: &str, to: &Jid) -> bool {
    !iq.is_request() && iq.id == id && iq.from.as_ref().is_none_or(|f| f == to)
}

/// The answer to a request for a stream that does not exist (any more): XEP-0065 says
/// `not-acceptable`, XEP-0047 `item-not-found`.
pub fn no_such_stream(request: &Iq) -> Iq {
    let condition = if request.request_payload().is_some_and(|p| p.ns == ns::BYTESTREAMS) {
        Condition::NotAcceptable
    } else {
        Condition::ItemNotFound
    };
    request.error_for(StanzaError::new(condition).with_text("no such stream"))
}

/// An error answer with a text.
fn error(request: &Iq, condition: Condition, text: impl Into<String>) -> Iq {
    request.error_for(StanzaError::new(condition).with_text(text))
}

/// The earliest of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
