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

/// The way the bytes actually travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// SOCKS5 straight between the peers (the requester's own streamhost).
    S5bDirect,
    /// SOCKS5 through a proxy streamhost.
    S5bProxy,
    /// In-band, through the XMPP servers.
    Ibb,
}

impl Route {
    /// The name the history and the events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::S5bDirect => "s5b-direct",
            Route::S5bProxy => "s5b-proxy",
            Route::Ibb => "ibb",
        }
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
