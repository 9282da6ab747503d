//! The session's vocabulary: its settings, inputs, actions and coarse states.

use std::time::Duration;

use crate::bytestreams::StreamHost;
use crate::stanza::Iq;
use crate::transfer::{FailReason, Method, Route};

/// Settings of a Jingle file-transfer session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JingleConfig {
    /// Allowed transports in preference order: the sender offers the first, falls
    /// back to in-band when it is allowed; the receiver refuses the others.
    pub methods: Vec<Method>,
    /// The in-band block size the sender offers (the receiver may lower it), and the
    /// largest the receiver takes.
    pub ibb_block_size: u16,
    /// In-band data IQs in flight before waiting for acknowledgements.
    pub ibb_window: usize,
    /// How long the offer waits for the receiver's decision.
    pub offer_timeout: Duration,
    /// How long every other request waits for its answer.
    pub iq_timeout: Duration,
    /// How long the candidate exchange (and a transport-replace) may take.
    pub negotiate_timeout: Duration,
    /// How long an offer waits for Accept or Reject.
    pub decision_timeout: Duration,
    /// How long an in-band stream waits for the next block.
    pub idle_timeout: Duration,
    /// How long the receiver waits, after the last byte, for a checksum that was not
    /// in the offer; past it the file is kept, not verified.
    pub checksum_wait: Duration,
}

impl Default for JingleConfig {
    fn default() -> Self {
        JingleConfig {
            methods: vec![Method::S5b, Method::Ibb],
            ibb_block_size: crate::transfer::INTEROP_BLOCK_SIZE,
            ibb_window: 16,
            offer_timeout: Duration::from_secs(300),
            iq_timeout: Duration::from_secs(30),
            negotiate_timeout: Duration::from_secs(60),
            decision_timeout: Duration::from_secs(300),
            idle_timeout: crate::transfer::IDLE_TIMEOUT,
            checksum_wait: Duration::from_secs(10),
        }
    }
}

/// What happened, for a Jingle session.
// The data blocks are carried by value: boxing them would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JingleInput {
    /// Sender: begin (gather candidates, then offer).
    Start,
    /// Receiver: the user (or a policy) accepted; `offset > 0` resumes when the offer
    /// said the sender takes ranges.
    Accept { offset: u64 },
    /// Receiver: the user declined.
    Reject,
    /// Any IQ of this session: Jingle requests, in-band requests, answers to ours.
    Iq(Iq),
    /// After [`JingleAction::GatherCandidates`]: our listener's addresses (jid = our
    /// full JID) then the proxies, in preference order. Empty: we offer none.
    Candidates(Vec<StreamHost>),
    /// After [`JingleAction::ConnectCandidates`]: the host at this index of the list
    /// took the SOCKS5 connection (the driver keeps it).
    CandidateConnected { index: usize },
    /// After [`JingleAction::ConnectCandidates`]: none did; the reasons.
    CandidatesFailed(String),
    /// After [`JingleAction::AwaitDirect`]: the peer's connection arrived.
    DirectConnected,
    /// After [`JingleAction::AwaitDirect`]: it did not.
    DirectMissing,
    /// After [`JingleAction::ConnectProxy`]: connected, handshake done.
    ProxyConnected,
    /// After [`JingleAction::ConnectProxy`]: the proxy could not be used.
    ProxyFailed(String),
    /// The socket copy finished: every byte written (sender) or read (receiver).
    SocketDone,
    /// The socket broke.
    SocketFailed(String),
    /// Receiver: the peer sent more than the file's size.
    SocketOverrun,
    /// Sender: the file cannot be read.
    ReadFailed(String),
    /// Sender, in-band: the next bytes of the file.
    Block(Vec<u8>),
    /// Receiver, in-band: the block is stored.
    Written,
    /// Receiver: storing failed.
    WriteFailed(String),
    /// Receiver: the disk is full (what arrived is kept).
    OutOfSpace(String),
    /// Sender: after [`JingleAction::ComputeChecksum`], the file's SHA-256 (hex).
    Checksum(Option<String>),
    /// Receiver: after [`JingleAction::Verify`], whether the file is whole (size, and
    /// the SHA-256 when one was given).
    Verified(bool),
    /// The user stopped it.
    Cancel,
    /// [`JingleSession::poll_timeout`] was reached.
    Tick,
}

/// What the driver must do, in order.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JingleAction {
    /// Send this IQ as it is (`id` and `to` are set).
    SendIq(Iq),
    /// Register `dst_addr` with our listener (a connection naming it is this
    /// session's), collect the proxies, answer [`JingleInput::Candidates`].
    GatherCandidates { dst_addr: String },
    /// Try the peer's candidates in this order with this DST.ADDR; keep the first
    /// that connects and answer [`JingleInput::CandidateConnected`] or
    /// [`JingleInput::CandidatesFailed`].
    ConnectCandidates { hosts: Vec<StreamHost>, dst_addr: String },
    /// The peer used our own streamhost: take its connection (registered at
    /// GatherCandidates); it replaces the socket of ConnectCandidates. Answer
    /// [`JingleInput::DirectConnected`] or [`JingleInput::DirectMissing`].
    AwaitDirect,
    /// The peer used our proxy: connect to it with this DST.ADDR (replacing the
    /// socket of ConnectCandidates); answer ProxyConnected or ProxyFailed.
    ConnectProxy { host: String, port: u16, dst_addr: String },
    /// The data phase begins over `route`: `length` bytes from `offset`.
    Started { route: Route, streamhost: Option<String>, offset: u64, length: u64 },
    /// Sender: write `length` bytes of the file from `offset` into the socket, close
    /// it; answer SocketDone, SocketFailed or ReadFailed.
    StreamSocket { offset: u64, length: u64 },
    /// Receiver: read exactly `expected` bytes from the socket into the part file;
    /// answer SocketDone, SocketFailed, SocketOverrun or WriteFailed.
    ReadSocket { expected: u64 },
    /// Receiver: drop the socket (the sender moved to in-band).
    CloseSocket,
    /// Sender, in-band: read the next `len` bytes; answer [`JingleInput::Block`].
    ReadBlock { len: usize },
    /// Receiver, in-band: append this block; answer Written or WriteFailed.
    Write(Vec<u8>),
    /// The file has got this far (absolute position).
    Progress { bytes: u64 },
    /// SOCKS5 failed and in-band takes over.
    FellBack { reason: String },
    /// In-band data moves slower than the server allows for more.
    Slow { bytes_per_sec: u64 },
    /// Sender: compute the file's SHA-256; answer [`JingleInput::Checksum`].
    ComputeChecksum,
    /// Receiver: every byte is in; check the size and, when given, the SHA-256
    /// (lowercase hex); answer [`JingleInput::Verified`]. Nothing is named yet.
    Verify { sha256: Option<String> },
    /// Finished: `bytes` travelled over `route`. Receiver: the file was checked and
    /// may take its name. `verified`: checked against a SHA-256 (both sides).
    Done { route: Route, bytes: u64, verified: bool },
    /// The receiver declined.
    Rejected { reason: String },
    /// The session failed; `resumable` when a new session can continue it.
    Failed { reason: FailReason, error: String, resumable: bool },
}

/// Where a session stands (coarse, for progress and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JingleState {
    Idle,
    Offered,
    Deciding,
    Negotiating,
    Transferring(Route),
    Finishing,
    Done,
    Rejected,
    Failed,
}

/// Which side of the file this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sender,
    Receiver,
}
