//! The receiving side of one transfer: an SI offer waits for a decision; accepted, it
//! waits for the sender to open a stream (SOCKS5 candidates tried in the offered
//! order, or in-band, also as the fallback after every candidate failed).
//!
//! ```text
//! from_offer -> Accept -> SendIq(accept)
//!   streamhosts -> ConnectCandidates [CandidateConnected] -> SendIq(streamhost-used),
//!                  Started, ReadSocket [SocketDone] -> Done
//!                                    [CandidatesFailed] -> SendIq(item-not-found), wait on
//!   (an ibb open while reading the socket: CloseSocket, then as ibb)
//!   ibb open -> SendIq(result), Started
//!     data -> Write [Written] -> SendIq(result), Progress
//!     close -> SendIq(result), Done (or Failed when bytes are missing)
//! ```
//!
//! Requests that arrive while the driver works (connecting, writing a block) are held
//! and handled in order afterwards.

use std::collections::VecDeque;
use std::time::Duration;

use super::{error, no_such_stream, FailReason, Instant, Method, Route, IDLE_TIMEOUT, STREAM_TIMEOUT};
use crate::bytestreams::{dst_addr, StreamHost, StreamHostUsed, StreamHosts};
use crate::ibb::{max_data_len, IbbPayload, Open, SeqCheck, SeqError, StanzaKind};
use crate::jid::Jid;
use crate::ns;
use crate::si::{self, FileOffer, Range, SiAccept};
use crate::stanza::{Condition, ErrorType, Iq, IqKind, StanzaError};
use crate::xml::Element;

mod checksum;
mod ibb;
mod s5b;
#[cfg(test)]
mod tests;

/// Settings of an incoming transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Allowed methods in preference order: the accept picks the first the offer has.
    /// A stream of a method not listed here is refused.
    pub methods: Vec<Method>,
    /// How long an accepted transfer waits for the sender to open a stream (reset by
    /// every request of the sender).
    pub stream_timeout: Duration,
    /// How long an in-band stream waits for the next block.
    pub idle_timeout: Duration,
    /// The largest in-band block accepted; a larger open is answered
    /// `resource-constraint` (the sender steps down).
    pub max_block_size: u16,
    /// How long an offer waits for [`ReceiverInput::Accept`] or
    /// [`ReceiverInput::Reject`] before it is declined.
    pub decision_timeout: Duration,
}

impl Default for ReceiverConfig {
    /// The engine's defaults: bytestreams then in-band, 60 s to open, 60 s between
    /// blocks, blocks up to 65535 bytes, 5 minutes to decide.
    fn default() -> Self {
        ReceiverConfig {
            methods: vec![Method::S5b, Method::Ibb],
            stream_timeout: STREAM_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_block_size: u16::MAX,
            decision_timeout: Duration::from_secs(300),
        }
    }
}

/// What happened, for an incoming transfer.
// Most values carry an IQ (the data blocks do): boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverInput {
    /// The user (or a policy) accepted. `offset > 0` resumes: honoured only when the
    /// offer had `<range/>` and the offset is within the file, else 0 (see
    /// [`ReceiverAction::Started`]'s `offset`).
    Accept { offset: u64 },
    /// The user declined.
    Reject,
    /// A request of the peer for this stream: bytestreams streamhosts, IBB
    /// open/data/close. (Answers are ignored: the receiver sends no requests.)
    Iq(Iq),
    /// After [`ReceiverAction::ConnectCandidates`]: this streamhost (by its `jid`)
    /// accepted the SOCKS5 connection.
    CandidateConnected { jid: String },
    /// After [`ReceiverAction::ConnectCandidates`]: none did; the reasons.
    CandidatesFailed(String),
    /// After [`ReceiverAction::ReadSocket`]: every expected byte arrived.
    SocketDone,
    /// After [`ReceiverAction::ReadSocket`]: the connection broke or closed early.
    SocketFailed(String),
    /// After [`ReceiverAction::ReadSocket`]: the sender sent more than it announced.
    SocketOverrun,
    /// After [`ReceiverAction::Write`]: the block is stored.
    Written,
    /// After [`ReceiverAction::Write`] (or while reading a socket): storing failed.
    WriteFailed(String),
    /// Like [`ReceiverInput::WriteFailed`], but the disk is full: what was written is
    /// kept, and the transfer can resume once there is room.
    OutOfSpace(String),
    /// The user stopped the transfer.
    Cancel,
    /// [`Receiver::poll_timeout`] was reached.
    Tick,
}

/// What the driver must do, in order.
// Most values carry an IQ (the data blocks do): boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverAction {
    /// Send this IQ as it is (`id` and `to` are set).
    SendIq(Iq),
    /// Try these streamhosts in order (each with the driver's own timeout) with this
    /// DST.ADDR; answer [`ReceiverInput::CandidateConnected`] or
    /// [`ReceiverInput::CandidatesFailed`].
    ConnectCandidates { hosts: Vec<StreamHost>, dst_addr: String },
    /// Read exactly `expected` more bytes from the connected socket into the part
    /// file; answer [`ReceiverInput::SocketDone`], [`ReceiverInput::SocketFailed`] or
    /// [`ReceiverInput::SocketOverrun`].
    ReadSocket { expected: u64 },
    /// Stop reading the socket of [`ReceiverAction::ReadSocket`] and close it; its
    /// result no longer matters. The sender fell back to in-band before sending data
    /// (it does so only before its data phase); the part file continues at the
    /// `offset` of the [`ReceiverAction::Started`] that follows.
    CloseSocket,
    /// Append this in-band block to the part file; answer [`ReceiverInput::Written`]
    /// or [`ReceiverInput::WriteFailed`]. The block is acknowledged after that.
    Write(Vec<u8>),
    /// The data phase begins over `route`; the part file continues at `offset`.
    Started { route: Route, streamhost: Option<String>, offset: u64 },
    /// In-band: the part file holds this many bytes of the file.
    Progress { bytes: u64 },
    /// Every byte arrived (and the checksum, when one was announced). Verifying the
    /// size and digests and renaming is the driver's: MD5 and SHA-256 of the offer,
    /// or `sha256` sent after the data. `checksum` is that request: answer it with
    /// [`checksum_matches`] or [`checksum_differs`] once compared.
    Done { route: Route, sha256: Option<String>, checksum: Option<Iq> },
    /// The offer was declined (by the user, a cancel or the decision timeout).
    Rejected,
    /// The transfer failed; `resumable` when a new offer can continue it.
    Failed { reason: FailReason, error: String, resumable: bool },
}

/// Where an incoming transfer stands (coarse, for progress and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverState {
    /// The offer waits for a decision.
    Deciding,
    /// Accepted: waiting for the sender to open a stream.
    Waiting,
    /// Trying the sender's streamhosts.
    Connecting,
    /// Data arrives over this route.
    Receiving(Route),
    Done,
    Rejected,
    Failed,
}

/// An open in-band stream.
#[derive(Debug)]
struct IbbRecv {
    block_size: u16,
    seq: SeqCheck,
    /// When the stream is idle for too long (unused while a write is pending).
    deadline: Instant,
    /// The data IQ whose block is being written, and the block's length.
    pending: Option<(Iq, u64)>,
}

#[derive(Debug)]
enum State {
    Deciding {
        deadline: Instant,
    },
    Waiting {
        deadline: Instant,
    },
    /// The streamhosts request, answered once the driver reports.
    Connecting {
        request: Iq,
    },
    Streaming {
        route: Route,
    },
    Ibb(IbbRecv),
    /// Every byte is in; the announced checksum is awaited.
    AwaitingChecksum {
        route: Route,
        deadline: Instant,
    },
    Done,
    Rejected,
    Failed,
}

/// How long the receiver waits for a checksum announced in the offer after the last
/// byte: the sender may still be hashing a large file (SHA-256 runs at a few hundred
/// MB/s). Past it the file is kept, "received, not verified".
pub const CHECKSUM_WAIT: Duration = Duration::from_secs(600);

/// The answer to a checksum that matches the received file.
pub fn checksum_matches(request: &Iq) -> Iq {
    request.result_for(None)
}

/// The answer to a checksum that does not match: the file was damaged on the way.
pub fn checksum_differs(request: &Iq) -> Iq {
    error(request, Condition::NotAcceptable, "the received file does not have this SHA-256: it was damaged")
}

/// One incoming transfer (XEP-0096 over XEP-0065 or XEP-0047).
#[derive(Debug)]
pub struct Receiver {
    cfg: ReceiverConfig,
    me: Jid,
    peer: Jid,
    offer: FileOffer,
    /// The offer IQ, for the answer.
    offer_iq: Iq,
    method: Method,
    state: State,
    /// The accepted offset (resume).
    offset: u64,
    /// Bytes of the file the part file holds (absolute).
    written: u64,
    /// Requests held while the driver works.
    queue: VecDeque<Iq>,
    /// The first in-band sequence number expected (tests start near the wrap).
    seq_start: u16,
    /// Streamhost lists the sender gave for this stream, and whether the last one
    /// failed. One more list is taken only after a failed one (the sender found its
    /// proxy again, XEP-0065 §6.3.4 style retry), at most [`MAX_STREAMHOST_LISTS`]:
    /// each list costs connection attempts to addresses the sender picks.
    streamhost_lists: usize,
    last_list_failed: bool,
    /// The checksum, when it came before our driver reported the last bytes.
    early_checksum: Option<Iq>,
}

/// Streamhost lists taken for one stream: the first, and one retry after it failed.
pub const MAX_STREAMHOST_LISTS: usize = 2;

/// Most streamhosts tried for one stream; the rest of a longer list is ignored.
/// A sender offers its own addresses (a few) and a proxy or two.
pub const MAX_STREAMHOSTS: usize = 8;

impl Receiver {
    /// Reads an SI offer (an IQ-set). `Err` holds the answer when it must be refused at
    /// once: `bad-request` for a malformed offer, with `<bad-profile/>` for an unknown
    /// profile, with `<no-valid-streams/>` when no offered method is allowed.
    #[allow(clippy::result_large_err)] // the error is the reply to send, by value
    pub fn from_offer(cfg: ReceiverConfig, me: Jid, iq: Iq, now: Instant) -> Result<Receiver, Iq> {
        let bad = |text: &str| StanzaError::new(Condition::BadRequest).with_text(text);
        let (Some(peer), IqKind::Set(payload)) = (iq.from.clone(), &iq.kind) else {
            return Err(iq.error_for(bad("an SI offer is an IQ set from a full JID")));
        };
        let offer = match FileOffer::try_from(payload) {
            Ok(o) => o,
            Err(e) if si::is_bad_profile(&e) => {
                return Err(iq.error_for(bad("unknown SI profile").with_app(si::bad_profile())));
            }
            Err(e) => return Err(iq.error_for(bad(&e.to_string()))),
        };
        let ours: Vec<&str> = cfg.methods.iter().map(|m| m.namespace()).collect();
        let Some(method) = offer.pick_method(&ours).and_then(Method::from_namespace) else {
            return Err(iq.error_for(bad("no common stream method").with_app(si::no_valid_streams())));
        };
        let deadline = now.saturating_add(cfg.decision_timeout);
        Ok(Receiver {
            cfg,
            me,
            peer,
            offer,
            offer_iq: iq,
            method,
            state: State::Deciding { deadline },
            offset: 0,
            written: 0,
            queue: VecDeque::new(),
            seq_start: 0,
            streamhost_lists: 0,
            last_list_failed: false,
            early_checksum: None,
        })
    }

    /// Only the in-band data phase of a transfer negotiated elsewhere (a Jingle
    /// session whose transport is XEP-0261): waits for `peer` to open in-band stream
    /// `sid` and takes the file (`size` bytes in all) from `offset` on. Its Done
    /// carries no digest: checking the file is the caller's.
    pub fn in_band(
        cfg: ReceiverConfig,
        me: Jid,
        peer: Jid,
        sid: String,
        size: u64,
        offset: u64,
        now: Instant,
    ) -> Receiver {
        let cfg = ReceiverConfig { methods: vec![Method::Ibb], ..cfg };
        let offer = FileOffer {
            sid: sid.clone(),
            mime_type: None,
            file: si::FileInfo::new(String::new(), size),
            methods: vec![ns::IBB.to_owned()],
            batch: None,
        };
        let offset = offset.min(size);
        let deadline = now.saturating_add(cfg.stream_timeout);
        Receiver {
            offer_iq: Iq::set(sid, Some(peer.clone()), Element::from(&offer)),
            cfg,
            me,
            peer,
            offer,
            method: Method::Ibb,
            state: State::Waiting { deadline },
            offset,
            written: offset,
            queue: VecDeque::new(),
            seq_start: 0,
            streamhost_lists: 0,
            last_list_failed: false,
            early_checksum: None,
        }
    }

    /// Expects the in-band sequence numbers to start at `start` (to test the wrap).
    #[cfg(test)]
    pub(in crate::transfer) fn set_seq_start(&mut self, start: u16) {
        self.seq_start = start;
    }

    pub fn offer(&self) -> &FileOffer {
        &self.offer
    }

    /// The sender's full JID.
    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// The method the accept names.
    pub fn method(&self) -> Method {
        self.method
    }

    pub fn sid(&self) -> &str {
        &self.offer.sid
    }

    /// The accepted offset (0 unless resuming).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes of the file the part file holds, as far as this machine knows (in-band
    /// blocks written; all of them once a socket finished).
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn state(&self) -> ReceiverState {
        match &self.state {
            State::Deciding { .. } => ReceiverState::Deciding,
            State::Waiting { .. } => ReceiverState::Waiting,
            State::Connecting { .. } => ReceiverState::Connecting,
            State::Streaming { route } => ReceiverState::Receiving(*route),
            State::Ibb(_) => ReceiverState::Receiving(Route::Ibb),
            State::AwaitingChecksum { route, .. } => ReceiverState::Receiving(*route),
            State::Done => ReceiverState::Done,
            State::Rejected => ReceiverState::Rejected,
            State::Failed => ReceiverState::Failed,
        }
    }

    /// True once Done, Rejected or Failed was returned. A finished machine still
    /// answers requests (with "no such stream") until the driver drops it.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Rejected | State::Failed)
    }

    /// When [`ReceiverInput::Tick`] is due, if nothing else happens first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Deciding { deadline } | State::Waiting { deadline } => Some(*deadline),
            State::Ibb(ibb) if ibb.pending.is_none() => Some(ibb.deadline),
            State::AwaitingChecksum { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, input: ReceiverInput, now: Instant) -> Vec<ReceiverAction> {
        let mut out = Vec::new();
        match input {
            ReceiverInput::Iq(iq) => self.on_request(iq, now, &mut out),
            _ if self.is_finished() => {}
            ReceiverInput::Accept { offset } => self.accept(offset, now, &mut out),
            ReceiverInput::Reject => self.reject(&mut out),
            ReceiverInput::CandidateConnected { jid } => self.on_connected(jid, now, &mut out),
            ReceiverInput::CandidatesFailed(_) => {
                if let State::Connecting { request } = &self.state {
                    let reply = error(request, Condition::ItemNotFound, "could not connect to any streamhost");
                    out.push(ReceiverAction::SendIq(reply));
                    self.last_list_failed = true;
                    // The sender may fall back to in-band: keep waiting.
                    self.state = State::Waiting { deadline: now.saturating_add(self.cfg.stream_timeout) };
                    self.drain(now, &mut out);
                }
            }
            ReceiverInput::SocketDone => {
                if let State::Streaming { route } = self.state {
                    self.written = self.offer.file.size;
                    self.data_received(route, now, &mut out);
                }
            }
            ReceiverInput::SocketFailed(e) => {
                if matches!(self.state, State::Streaming { .. }) {
                    self.fail(FailReason::Network, e, true, &mut out);
                }
            }
            ReceiverInput::SocketOverrun => {
                if matches!(self.state, State::Streaming { .. }) {
                    let size = self.offer.file.size;
                    let error = format!("the sender sent more than the {size} bytes it announced");
                    self.fail(FailReason::Protocol, error, false, &mut out);
                }
            }
            ReceiverInput::Written => self.on_written(now, &mut out),
            ReceiverInput::WriteFailed(e) => self.on_write_failed(e, false, &mut out),
            ReceiverInput::OutOfSpace(e) => self.on_write_failed(e, true, &mut out),
            ReceiverInput::Cancel => match self.state {
                // Like the engine: cancelling an undecided offer declines it.
                State::Deciding { .. } => self.reject(&mut out),
                _ => self.fail(FailReason::Cancelled, "cancelled", true, &mut out),
            },
            ReceiverInput::Tick => self.on_tick(now, &mut out),
        }
        out
    }

    /// Ends the transfer in `state`; requests still waiting are answered "no such
    /// stream".
    fn finish(&mut self, state: State, out: &mut Vec<ReceiverAction>) {
        let outstanding = match std::mem::replace(&mut self.state, state) {
            State::Connecting { request } => Some(request),
            State::Ibb(IbbRecv { pending: Some((iq, _)), .. }) => Some(iq),
            _ => None,
        };
        for iq in outstanding.into_iter().chain(std::mem::take(&mut self.queue)) {
            out.push(ReceiverAction::SendIq(no_such_stream(&iq)));
        }
    }

    fn fail(&mut self, reason: FailReason, error: impl Into<String>, resumable: bool, out: &mut Vec<ReceiverAction>) {
        self.finish(State::Failed, out);
        out.push(ReceiverAction::Failed { reason, error: error.into(), resumable });
    }

    // --- The decision -------------------------------------------------------------

    fn accept(&mut self, offset: u64, now: Instant, out: &mut Vec<ReceiverAction>) {
        if !matches!(self.state, State::Deciding { .. }) {
            return;
        }
        let file = &self.offer.file;
        let offset = if file.range && offset <= file.size { offset } else { 0 };
        let range = (offset > 0).then_some(Range { offset, length: None });
        let accept = SiAccept { method: self.method.namespace().to_owned(), range };
        send(self.offer_iq.result_for(Some(Element::from(&accept))), out);
        self.offset = offset;
        self.written = offset;
        self.state = State::Waiting { deadline: now.saturating_add(self.cfg.stream_timeout) };
    }

    fn reject(&mut self, out: &mut Vec<ReceiverAction>) {
        if !matches!(self.state, State::Deciding { .. }) {
            return;
        }
        send(self.offer_iq.error_for(StanzaError::new(Condition::Forbidden).with_text("Offer declined")), out);
        self.finish(State::Rejected, out);
        out.push(ReceiverAction::Rejected);
    }

    // --- Requests -----------------------------------------------------------------

    fn on_request(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
        let Some(payload) = iq.request_payload() else { return };
        // The driver routes by sid and checks the sender; check again all the same.
        let ours = iq.from.as_ref() == Some(&self.peer) && payload.attr("sid") == Some(self.offer.sid.as_str());
        if !ours || self.is_finished() {
            return send(no_such_stream(&iq), out);
        }
        self.dispatch(iq, now, out);
    }

    /// True while the driver works and requests must wait their turn.
    fn busy(&self) -> bool {
        matches!(&self.state, State::Connecting { .. } | State::Ibb(IbbRecv { pending: Some(_), .. }))
    }

    fn dispatch(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
        if self.busy() {
            self.queue.push_back(iq);
            return;
        }
        if iq.request_payload().is_some_and(|p| p.is("checksum", ns::SKIFF_CHECKSUM)) {
            return self.on_checksum(iq, out);
        }
        match self.state {
            State::Waiting { .. } => self.on_waiting_request(iq, now, out),
            State::Ibb(_) => self.on_ibb_request(iq, now, out),
            // The sender gave up on SOCKS5 before its data phase (the proxy refused to
            // activate, our connection never reached its listener) and falls back.
            State::Streaming { .. } if iq.request_payload().is_some_and(|p| p.is("open", ns::IBB)) => {
                out.push(ReceiverAction::CloseSocket);
                self.on_waiting_request(iq, now, out);
            }
            State::Streaming { .. } => {
                send(error(&iq, Condition::UnexpectedRequest, "the stream is already open"), out)
            }
            // Before the accept the stream does not exist yet (as in the engine).
            _ => send(no_such_stream(&iq), out),
        }
    }

    /// Handles the held requests, in order, until the driver is busy again.
    fn drain(&mut self, now: Instant, out: &mut Vec<ReceiverAction>) {
        while !self.busy() {
            let Some(iq) = self.queue.pop_front() else { break };
            self.dispatch(iq, now, out);
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<ReceiverAction>) {
        if self.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        match self.state {
            State::Deciding { .. } => self.reject(out),
            State::Waiting { .. } => {
                let secs = self.cfg.stream_timeout.as_secs();
                self.fail(FailReason::Timeout, format!("the sender opened no stream within {secs} seconds"), true, out);
            }
            State::Ibb(_) => {
                let secs = self.cfg.idle_timeout.as_secs();
                self.fail(FailReason::Timeout, format!("no in-band data for {secs} seconds"), true, out);
            }
            // The announced checksum never came: the file is kept, not verified.
            State::AwaitingChecksum { route, .. } => {
                self.state = State::Done;
                out.push(ReceiverAction::Done { route, sha256: None, checksum: None });
            }
            _ => {}
        }
    }
}

/// Queues an IQ to send.
fn send(iq: Iq, out: &mut Vec<ReceiverAction>) {
    out.push(ReceiverAction::SendIq(iq));
}
