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

    fn on_waiting_request(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
        self.state = State::Waiting { deadline: now.saturating_add(self.cfg.stream_timeout) };
        let IqKind::Set(payload) = &iq.kind else {
            return send(error(&iq, Condition::BadRequest, "expected an IQ set"), out);
        };
        if payload.is("open", ns::IBB) {
            return self.on_open(iq, now, out);
        }
        if !payload.is("query", ns::BYTESTREAMS) {
            return send(iq.error_for(StanzaError::new(Condition::UnexpectedRequest)), out);
        }
        if !self.cfg.methods.contains(&Method::S5b) {
            return send(error(&iq, Condition::NotAcceptable, "SOCKS5 bytestreams are not allowed here"), out);
        }
        if self.streamhost_lists > 0 && (!self.last_list_failed || self.streamhost_lists >= MAX_STREAMHOST_LISTS) {
            let text = "streamhosts were already offered for this stream";
            return send(error(&iq, Condition::NotAcceptable, text), out);
        }
        if !matches!(self.state, State::Waiting { .. }) {
            return send(iq.error_for(StanzaError::new(Condition::UnexpectedRequest)), out);
        }
        let hosts = match StreamHosts::try_from(payload) {
            Ok(h) => h.hosts,
            Err(e) => return send(error(&iq, Condition::BadRequest, e.to_string()), out),
        };
        self.streamhost_lists += 1;
        self.last_list_failed = false;
        // Each address once, at most MAX_STREAMHOSTS of them, in the sender's order.
        let mut hosts = hosts;
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert((h.host.to_ascii_lowercase(), h.port)));
        hosts.truncate(MAX_STREAMHOSTS);
        let dst_addr = dst_addr(&self.offer.sid, &self.peer.to_string(), &self.me.to_string());
        out.push(ReceiverAction::ConnectCandidates { hosts, dst_addr });
        self.state = State::Connecting { request: iq };
    }

    fn on_connected(&mut self, jid: String, now: Instant, out: &mut Vec<ReceiverAction>) {
        let State::Connecting { request } = &self.state else { return };
        let used = StreamHostUsed { sid: Some(self.offer.sid.clone()), jid: jid.clone() };
        send(request.result_for(Some(Element::from(&used))), out);
        let direct = jid.parse::<Jid>().is_ok_and(|j| j == self.peer);
        let route = if direct { Route::S5bDirect } else { Route::S5bProxy };
        out.push(ReceiverAction::Started { route, streamhost: Some(jid), offset: self.offset });
        out.push(ReceiverAction::ReadSocket { expected: self.offer.file.size - self.written });
        self.state = State::Streaming { route };
        self.drain(now, out);
    }

    fn on_open(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
        let open = match iq.request_payload().map(Open::try_from) {
            Some(Ok(o)) => o,
            _ => {
                send(iq.error_for(StanzaError::new(Condition::BadRequest)), out);
                return self.fail(FailReason::Protocol, "the sender's in-band open was malformed", true, out);
            }
        };
        if open.stanza == StanzaKind::Message {
            send(error(&iq, Condition::FeatureNotImplemented, "only stanza='iq' is supported"), out);
            let error = "the sender wanted in-band data in messages, which Skiff does not take";
            return self.fail(FailReason::Unsupported, error, true, out);
        }
        if !self.cfg.methods.contains(&Method::Ibb) {
            return send(error(&iq, Condition::NotAcceptable, "in-band bytestreams are not allowed here"), out);
        }
        let max = self.cfg.max_block_size;
        if open.block_size > max {
            // XEP-0047 2.2: resource-constraint (modify) asks for a smaller block-size.
            let mut e =
                StanzaError::new(Condition::ResourceConstraint).with_text(format!("blocks of at most {max} bytes"));
            e.kind = ErrorType::Modify;
            return send(iq.error_for(e), out);
        }
        send(iq.result_for(None), out);
        out.push(ReceiverAction::Started { route: Route::Ibb, streamhost: None, offset: self.offset });
        let mut seq = SeqCheck::new();
        for s in 0..self.seq_start {
            let _ = seq.check(s);
        }
        let deadline = now.saturating_add(self.cfg.idle_timeout);
        self.state = State::Ibb(IbbRecv { block_size: open.block_size, seq, deadline, pending: None });
    }

    fn on_ibb_request(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
        let size = self.offer.file.size;
        let written = self.written;
        let State::Ibb(ibb) = &mut self.state else { return };
        ibb.deadline = now.saturating_add(self.cfg.idle_timeout);
        let payload = match (&iq.kind, iq.request_payload().map(IbbPayload::try_from)) {
            (IqKind::Set(_), Some(Ok(p))) => p,
            _ => return send(iq.error_for(StanzaError::new(Condition::BadRequest)), out),
        };
        match payload {
            IbbPayload::Data(d) => {
                if let Err(e) = ibb.seq.check(d.seq) {
                    send(error(&iq, Condition::UnexpectedRequest, e.to_string()), out);
                    if let SeqError::OutOfOrder { .. } = e {
                        let error = format!(
                            "{e} (peers that do not wrap sequence numbers after block 65535 fail here; \
                             larger blocks avoid it)"
                        );
                        self.fail(FailReason::Protocol, error, true, out);
                    }
                    return;
                }
                let block_size = ibb.block_size;
                let len = d.data.len() as u64;
                if d.data.len() > max_data_len(block_size) {
                    send(error(&iq, Condition::BadRequest, "block larger than the agreed block-size"), out);
                    let error = format!("the sender sent a {len}-byte block over the agreed {block_size}");
                    return self.fail(FailReason::Protocol, error, true, out);
                }
                if len > size - written {
                    let e =
                        format!("the sender sent more than the {size} bytes it announced ({len} more after {written})");
                    send(error(&iq, Condition::NotAcceptable, e.clone()), out);
                    return self.fail(FailReason::Protocol, format!("cannot store the data: {e}"), false, out);
                }
                if len == 0 {
                    return send(iq.result_for(None), out);
                }
                ibb.pending = Some((iq, len));
                out.push(ReceiverAction::Write(d.data));
            }
            IbbPayload::Close(_) => {
                send(iq.result_for(None), out);
                if written == size {
                    self.data_received(Route::Ibb, now, out);
                } else {
                    let error = format!("the sender announced {size} bytes but sent {written}");
                    self.fail(FailReason::Protocol, error, true, out);
                }
            }
            IbbPayload::Open(_) => send(error(&iq, Condition::UnexpectedRequest, "the stream is already open"), out),
        }
    }

    /// Every byte is in: done, or first the checksum the offer announced (also when
    /// the offer carried the SHA-256: answering the checksum tells the sender that
    /// its file arrived intact).
    fn data_received(&mut self, route: Route, now: Instant, out: &mut Vec<ReceiverAction>) {
        let file = &self.offer.file;
        if file.checksum_follows {
            self.finish(State::AwaitingChecksum { route, deadline: now.saturating_add(CHECKSUM_WAIT) }, out);
            if let Some(iq) = self.early_checksum.take() {
                self.on_checksum(iq, out);
            }
        } else {
            let sha256 = file.sha256.clone();
            self.finish(State::Done, out);
            out.push(ReceiverAction::Done { route, sha256, checksum: None });
        }
    }

    fn on_checksum(&mut self, iq: Iq, out: &mut Vec<ReceiverAction>) {
        // Over SOCKS5 the sender sends it once its socket is drained, which can be
        // before our driver reports the last bytes: held until they are in.
        if self.offer.file.checksum_follows
            && matches!(self.state, State::Streaming { .. })
            && self.early_checksum.is_none()
        {
            self.early_checksum = Some(iq);
            return;
        }
        let State::AwaitingChecksum { route, .. } = self.state else {
            return send(error(&iq, Condition::UnexpectedRequest, "no checksum is awaited for this stream"), out);
        };
        let parsed = iq.request_payload().map(crate::hashes::Checksum::try_from);
        match parsed {
            Some(Ok(c)) if c.sid == self.offer.sid => {
                self.state = State::Done;
                out.push(ReceiverAction::Done { route, sha256: Some(c.sha256), checksum: Some(iq) });
            }
            Some(Ok(_)) => send(no_such_stream(&iq), out),
            Some(Err(e)) => send(error(&iq, Condition::BadRequest, e.to_string()), out),
            None => send(error(&iq, Condition::BadRequest, "expected an IQ set"), out),
        }
    }

    fn on_written(&mut self, now: Instant, out: &mut Vec<ReceiverAction>) {
        let State::Ibb(ibb) = &mut self.state else { return };
        let Some((iq, len)) = ibb.pending.take() else { return };
        ibb.deadline = now.saturating_add(self.cfg.idle_timeout);
        self.written += len;
        out.push(ReceiverAction::SendIq(iq.result_for(None)));
        out.push(ReceiverAction::Progress { bytes: self.written });
        self.drain(now, out);
    }

    fn on_write_failed(&mut self, e: String, resumable: bool, out: &mut Vec<ReceiverAction>) {
        match &mut self.state {
            State::Ibb(ibb) => {
                let Some((iq, _)) = ibb.pending.take() else { return };
                let condition = if resumable { Condition::ResourceConstraint } else { Condition::NotAcceptable };
                send(error(&iq, condition, e.clone()), out);
            }
            State::Streaming { .. } => {}
            _ => return,
        }
        let error = if resumable { e } else { format!("cannot store the data: {e}") };
        self.fail(FailReason::Storage, error, resumable, out);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ibb::Data;

    const T0: Duration = Duration::ZERO;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn me() -> Jid {
        jid("bob@example.com/skiff")
    }

    fn peer() -> Jid {
        jid("alice@example.com/psi")
    }

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    /// An offer IQ from the peer, as it arrives.
    fn offer_iq(file_attrs: &str, file_children: &str, methods: &[&str]) -> Iq {
        let options: String = methods.iter().map(|m| format!("<option><value>{m}</value></option>")).collect();
        let xml = format!(
            "<iq xmlns='jabber:client' type='set' id='o1' from='alice@example.com/psi' to='bob@example.com/skiff'>\
             <si xmlns='http://jabber.org/protocol/si' id='s1' profile='http://jabber.org/protocol/si/profile/file-transfer'>\
             <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a.bin' {file_attrs}>{file_children}</file>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
             <field var='stream-method' type='list-single'>{options}</field></x></feature></si></iq>"
        );
        Iq::try_from(el(&xml)).unwrap()
    }

    fn offer(size: u64) -> Iq {
        offer_iq(&format!("size='{size}'"), "<range/>", &[ns::BYTESTREAMS, ns::IBB])
    }

    fn receiver(cfg: ReceiverConfig, size: u64) -> Receiver {
        Receiver::from_offer(cfg, me(), offer(size), T0).unwrap()
    }

    /// A request from the peer with this payload.
    fn req(id: &str, payload: &str) -> ReceiverInput {
        let xml = format!(
            "<iq xmlns='jabber:client' type='set' id='{id}' from='alice@example.com/psi' to='bob@example.com/skiff'>{payload}</iq>"
        );
        ReceiverInput::Iq(Iq::try_from(el(&xml)).unwrap())
    }

    fn data(seq: u16, bytes: &[u8]) -> ReceiverInput {
        let d = Data { sid: "s1".into(), seq, data: bytes.to_vec() };
        req(&format!("d{seq}"), &Element::from(&d).to_xml())
    }

    const OPEN_4096: &str = "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s1' stanza='iq'/>";
    const CLOSE: &str = "<close xmlns='http://jabber.org/protocol/ibb' sid='s1'/>";

    /// The IQs among the actions, as XML.
    fn sent(out: &[ReceiverAction]) -> Vec<String> {
        out.iter()
            .filter_map(|a| match a {
                ReceiverAction::SendIq(iq) => Some(Element::from(iq.clone()).to_xml()),
                _ => None,
            })
            .collect()
    }

    fn one_sent(out: &[ReceiverAction]) -> String {
        let s = sent(out);
        assert_eq!(s.len(), 1, "{out:?}");
        s[0].clone()
    }

    fn refusal(iq: Iq, cfg: ReceiverConfig) -> String {
        Element::from(Receiver::from_offer(cfg, me(), iq, T0).unwrap_err()).to_xml()
    }

    #[test]
    fn offers_refused_at_once() {
        let cfg = ReceiverConfig::default();
        assert_eq!(
            refusal(offer_iq("size='x'", "", &[ns::IBB]), cfg.clone()),
            "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='error'><error type='modify'>\
             <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>&lt;file/&gt;: attribute 'size' has a bad value 'x'</text>\
             </error></iq>"
        );
        let mut other = offer(1);
        if let IqKind::Set(p) = &mut other.kind {
            p.set_attr("profile", "urn:other");
        }
        assert!(refusal(other, cfg.clone())
            .contains("unknown SI profile</text><bad-profile xmlns='http://jabber.org/protocol/si'/>"));
        assert!(refusal(offer_iq("size='1'", "", &["jabber:iq:oob"]), cfg.clone())
            .contains("no common stream method</text><no-valid-streams xmlns='http://jabber.org/protocol/si'/>"));
        let ibb_only = ReceiverConfig { methods: vec![Method::Ibb], ..cfg.clone() };
        assert!(refusal(offer_iq("size='1'", "", &[ns::BYTESTREAMS]), ibb_only).contains("no-valid-streams"));
        let mut get = offer(1);
        get.kind = IqKind::Get(get.request_payload().unwrap().clone());
        assert!(refusal(get, cfg.clone()).contains("an SI offer is an IQ set from a full JID"));
    }

    #[test]
    fn offer_parsed_and_method_picked() {
        let r = receiver(ReceiverConfig::default(), 1022);
        assert_eq!(r.offer().file.size, 1022);
        assert_eq!(r.peer(), &peer());
        assert_eq!(r.method(), Method::S5b);
        assert_eq!(r.state(), ReceiverState::Deciding);
        assert_eq!(r.poll_timeout(), Some(Duration::from_secs(300)));
        // Our preference order decides, not the offer's.
        let ibb_first = ReceiverConfig { methods: vec![Method::Ibb, Method::S5b], ..ReceiverConfig::default() };
        assert_eq!(receiver(ibb_first, 1).method(), Method::Ibb);
        let r = Receiver::from_offer(
            ReceiverConfig::default(),
            me(),
            offer_iq("size='1'", "", &[ns::IBB, ns::BYTESTREAMS]),
            T0,
        )
        .unwrap();
        assert_eq!(r.method(), Method::S5b);
    }

    #[test]
    fn accept_names_one_method_and_a_range_only_when_resuming() {
        let mut r = receiver(ReceiverConfig::default(), 100);
        assert_eq!(
            one_sent(&r.handle(ReceiverInput::Accept { offset: 0 }, T0)),
            "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='result'>\
             <si xmlns='http://jabber.org/protocol/si'><feature xmlns='http://jabber.org/protocol/feature-neg'>\
             <x xmlns='jabber:x:data' type='submit'><field var='stream-method'>\
             <value>http://jabber.org/protocol/bytestreams</value></field></x></feature></si></iq>"
        );
        assert_eq!(r.state(), ReceiverState::Waiting);
        assert_eq!(r.poll_timeout(), Some(Duration::from_secs(60)));
        let mut r = receiver(ReceiverConfig::default(), 100);
        let accept = one_sent(&r.handle(ReceiverInput::Accept { offset: 40 }, T0));
        assert!(accept
            .contains("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'><range offset='40'/></file>"));
        assert_eq!((r.offset(), r.written()), (40, 40));
        // No <range/> in the offer: no resume.
        let mut r =
            Receiver::from_offer(ReceiverConfig::default(), me(), offer_iq("size='100'", "", &[ns::IBB]), T0).unwrap();
        let accept = one_sent(&r.handle(ReceiverInput::Accept { offset: 40 }, T0));
        assert!(!accept.contains("range"));
        assert_eq!(r.offset(), 0);
        // An offset past the end is not a resume either.
        let mut r = receiver(ReceiverConfig::default(), 100);
        r.handle(ReceiverInput::Accept { offset: 101 }, T0);
        assert_eq!(r.offset(), 0);
    }

    #[test]
    fn reject_cancel_and_decision_timeout_decline() {
        let declined = "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='error'><error type='auth'>\
            <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
            <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Offer declined</text></error></iq>";
        for (input, at) in
            [(ReceiverInput::Reject, T0), (ReceiverInput::Cancel, T0), (ReceiverInput::Tick, Duration::from_secs(300))]
        {
            let mut r = receiver(ReceiverConfig::default(), 1);
            let out = r.handle(input, at);
            assert_eq!(one_sent(&out), declined);
            assert_eq!(out.last(), Some(&ReceiverAction::Rejected));
            assert_eq!(r.state(), ReceiverState::Rejected);
            assert!(r.handle(ReceiverInput::Accept { offset: 0 }, at).is_empty());
        }
        let mut r = receiver(ReceiverConfig::default(), 1);
        assert!(r.handle(ReceiverInput::Tick, Duration::from_secs(299)).is_empty());
    }

    fn accepted(cfg: ReceiverConfig, size: u64) -> Receiver {
        let mut r = receiver(cfg, size);
        r.handle(ReceiverInput::Accept { offset: 0 }, T0);
        r
    }

    const STREAMHOSTS: &str = "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1' mode='tcp'>\
        <streamhost jid='alice@example.com/psi' host='192.168.1.101' port='1346'/>\
        <streamhost jid='proxy.example.com' host='10.0.0.1' port='7777'/></query>";

    fn hosts() -> Vec<StreamHost> {
        vec![
            StreamHost { jid: "alice@example.com/psi".into(), host: "192.168.1.101".into(), port: 1346 },
            StreamHost { jid: "proxy.example.com".into(), host: "10.0.0.1".into(), port: 7777 },
        ]
    }

    #[test]
    fn an_announced_checksum_is_awaited_after_the_data() {
        const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let streaming = |file_extra: &str| {
            let offer = offer_iq("size='100'", &format!("<range/>{file_extra}"), &[ns::BYTESTREAMS, ns::IBB]);
            let mut r = Receiver::from_offer(ReceiverConfig::default(), me(), offer, T0).unwrap();
            r.handle(ReceiverInput::Accept { offset: 0 }, T0);
            r.handle(req("q1", STREAMHOSTS), T0);
            r.handle(ReceiverInput::CandidateConnected { jid: "alice@example.com/psi".into() }, T0);
            r
        };
        let follows = "<checksum-follows xmlns='urn:x-skiff:si-checksum:0' algo='sha-256'/>";
        let checksum = |sid: &str| {
            format!(
                "<checksum xmlns='urn:x-skiff:si-checksum:0' sid='{sid}'><hash xmlns='urn:xmpp:hashes:2' \
                 algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></checksum>"
            )
        };
        let mut r = streaming(follows);
        // Every byte is in: the file stays unnamed until the checksum arrives.
        assert!(r.handle(ReceiverInput::SocketDone, T0).is_empty());
        assert_eq!(r.poll_timeout(), Some(CHECKSUM_WAIT));
        assert!(!r.is_finished());
        // One for another stream is not this one's.
        assert!(one_sent(&r.handle(req("c0", &checksum("other")), T0)).contains("item-not-found"));
        let out = r.handle(req("c1", &checksum("s1")), T0);
        let [ReceiverAction::Done { route: Route::S5bDirect, sha256: Some(sha), checksum: Some(iq) }] = &out[..] else {
            panic!("{out:?}")
        };
        assert_eq!((sha.as_str(), iq.id.as_str()), (SHA, "c1"));
        assert_eq!(checksum_matches(iq), iq.result_for(None));
        let differs = checksum_differs(iq);
        assert!(matches!(&differs.kind, IqKind::Error(e) if e.condition == Condition::NotAcceptable), "{differs:?}");
        // It comes before the driver reports the last bytes (SOCKS5): held, then used.
        let mut r = streaming(follows);
        assert!(r.handle(req("c3", &checksum("s1")), T0).is_empty());
        let out = r.handle(ReceiverInput::SocketDone, T0);
        assert!(
            matches!(&out[..], [ReceiverAction::Done { sha256: Some(_), checksum: Some(iq), .. }] if iq.id == "c3"),
            "{out:?}"
        );
        // It never comes: done after the wait, not verified.
        let mut r = streaming(follows);
        r.handle(ReceiverInput::SocketDone, T0);
        let out = r.handle(ReceiverInput::Tick, CHECKSUM_WAIT);
        assert_eq!(out, [ReceiverAction::Done { route: Route::S5bDirect, sha256: None, checksum: None }]);
        // The SHA-256 in the offer itself: nothing to wait for.
        let hash = "<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash>";
        let mut r = streaming(hash);
        let out = r.handle(ReceiverInput::SocketDone, T0);
        assert_eq!(out, [ReceiverAction::Done { route: Route::S5bDirect, sha256: Some(SHA.into()), checksum: None }]);
        // A checksum nobody announced is refused.
        let mut r = streaming("");
        r.handle(ReceiverInput::SocketDone, T0);
        assert!(one_sent(&r.handle(req("c2", &checksum("s1")), T0)).contains("item-not-found"));
    }

    #[test]
    fn streamhosts_tried_then_used() {
        for (jid, route) in [("alice@example.com/psi", Route::S5bDirect), ("proxy.example.com", Route::S5bProxy)] {
            let mut r = accepted(ReceiverConfig::default(), 100);
            let out = r.handle(req("q1", STREAMHOSTS), T0);
            let dst = dst_addr("s1", "alice@example.com/psi", "bob@example.com/skiff");
            assert_eq!(out, [ReceiverAction::ConnectCandidates { hosts: hosts(), dst_addr: dst }]);
            assert_eq!(r.state(), ReceiverState::Connecting);
            assert_eq!(r.poll_timeout(), None, "the driver times the candidates");
            let out = r.handle(ReceiverInput::CandidateConnected { jid: jid.into() }, T0);
            assert_eq!(
                one_sent(&out),
                format!(
                    "<iq xmlns='jabber:client' id='q1' to='alice@example.com/psi' type='result'>\
                     <query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><streamhost-used jid='{jid}'/></query></iq>"
                )
            );
            assert_eq!(
                out[1..],
                [
                    ReceiverAction::Started { route, streamhost: Some(jid.into()), offset: 0 },
                    ReceiverAction::ReadSocket { expected: 100 },
                ]
            );
            assert_eq!(
                r.handle(ReceiverInput::SocketDone, T0),
                [ReceiverAction::Done { route, sha256: None, checksum: None }]
            );
            assert_eq!(r.written(), 100);
        }
    }

    #[test]
    fn streamhost_lists_are_capped_deduplicated_and_taken_once() {
        let mut r = accepted(ReceiverConfig::default(), 100);
        let mut list = String::from("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>");
        for i in 0..200 {
            // Every address twice (once in capitals), 100 distinct ones.
            let host = if i % 2 == 0 { format!("h{}.example", i / 2) } else { format!("H{}.EXAMPLE", i / 2) };
            list.push_str(&format!("<streamhost jid='alice@example.com/psi' host='{host}' port='1000'/>"));
        }
        list.push_str("</query>");
        let out = r.handle(req("q1", &list), T0);
        let [ReceiverAction::ConnectCandidates { hosts, .. }] = &out[..] else { panic!("{out:?}") };
        let names: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(names, (0..MAX_STREAMHOSTS).map(|i| format!("h{i}.example")).collect::<Vec<_>>());
        // None worked: the sender hears so, and may fall back to in-band...
        let out = r.handle(ReceiverInput::CandidatesFailed("none".into()), T0);
        assert!(one_sent(&out).contains("item-not-found"), "{out:?}");
        // ...or try again with a new list (its proxy moved): taken once...
        let out = r.handle(req("q2", STREAMHOSTS), T0);
        assert!(matches!(&out[..], [ReceiverAction::ConnectCandidates { .. }]), "{out:?}");
        let out = r.handle(ReceiverInput::CandidatesFailed("none".into()), T0);
        assert!(one_sent(&out).contains("item-not-found"), "{out:?}");
        // ...but a third list for the same stream is refused without a connection.
        let out = r.handle(req("q3", STREAMHOSTS), T0);
        let reply = one_sent(&out);
        assert!(reply.contains("id='q3'") && reply.contains("not-acceptable"), "{reply}");
        assert!(reply.contains("already offered"), "{reply}");
        assert_eq!(r.state(), ReceiverState::Waiting);
    }

    #[test]
    fn a_second_streamhost_list_is_refused_unless_the_first_failed() {
        let mut r = accepted(ReceiverConfig::default(), 100);
        let out = r.handle(req("q1", STREAMHOSTS), T0);
        assert!(matches!(&out[..], [ReceiverAction::ConnectCandidates { .. }]), "{out:?}");
        // One while the first is being tried waits for its outcome...
        assert!(r.handle(req("q2", STREAMHOSTS), T0).is_empty());
        // ...which worked: the second is refused then, and so is a later one.
        let out = r.handle(ReceiverInput::CandidateConnected { jid: "alice@example.com/psi".into() }, T0);
        let replies = sent(&out);
        assert!(replies.iter().any(|s| s.contains("id='q2'") && s.contains("type='error'")), "{replies:?}");
        let reply = one_sent(&r.handle(req("q3", STREAMHOSTS), T0));
        assert!(reply.contains("id='q3'") && reply.contains("type='error'"), "{reply}");
        assert!(!out
            .iter()
            .chain(r.handle(req("q4", STREAMHOSTS), T0).iter())
            .any(|a| { matches!(a, ReceiverAction::ConnectCandidates { .. }) }));
    }

    #[test]
    fn socket_endings() {
        let streaming = || {
            let mut r = accepted(ReceiverConfig::default(), 100);
            r.handle(req("q1", STREAMHOSTS), T0);
            r.handle(ReceiverInput::CandidateConnected { jid: "proxy.example.com".into() }, T0);
            r
        };
        let mut r = streaming();
        assert_eq!(
            r.handle(ReceiverInput::SocketFailed("the sender closed the stream after 50 of 100 bytes".into()), T0),
            [ReceiverAction::Failed {
                reason: FailReason::Network,
                error: "the sender closed the stream after 50 of 100 bytes".into(),
                resumable: true
            }]
        );
        let mut r = streaming();
        assert_eq!(
            r.handle(ReceiverInput::SocketOverrun, T0),
            [ReceiverAction::Failed {
                reason: FailReason::Protocol,
                error: "the sender sent more than the 100 bytes it announced".into(),
                resumable: false
            }]
        );
        let mut r = streaming();
        assert_eq!(
            r.handle(ReceiverInput::WriteFailed("disk full".into()), T0),
            [ReceiverAction::Failed {
                reason: FailReason::Storage,
                error: "cannot store the data: disk full".into(),
                resumable: false
            }]
        );
        // A second bytestream request while streaming.
        let mut r = streaming();
        assert!(one_sent(&r.handle(req("q2", STREAMHOSTS), T0)).contains("unexpected-request"));
    }

    #[test]
    fn candidates_fail_then_in_band() {
        let mut r = accepted(ReceiverConfig::default(), 3);
        r.handle(req("q1", STREAMHOSTS), Duration::from_secs(10));
        // The open arrives while connecting: it waits its turn.
        assert!(r.handle(req("o2", OPEN_4096), Duration::from_secs(11)).is_empty());
        let out = r.handle(ReceiverInput::CandidatesFailed("refused; refused".into()), Duration::from_secs(12));
        assert_eq!(
            sent(&out),
            [
                "<iq xmlns='jabber:client' id='q1' to='alice@example.com/psi' type='error'><error type='cancel'>\
                 <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
                 <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>could not connect to any streamhost</text>\
                 </error></iq>",
                "<iq xmlns='jabber:client' id='o2' to='alice@example.com/psi' type='result'/>"
            ]
        );
        assert_eq!(out[2], ReceiverAction::Started { route: Route::Ibb, streamhost: None, offset: 0 });
        assert_eq!(r.state(), ReceiverState::Receiving(Route::Ibb));
        assert_eq!(r.poll_timeout(), Some(Duration::from_secs(72)));
    }

    #[test]
    fn stream_timeout() {
        let mut r = accepted(ReceiverConfig::default(), 3);
        assert!(r.handle(ReceiverInput::Tick, Duration::from_secs(59)).is_empty());
        assert_eq!(
            r.handle(ReceiverInput::Tick, Duration::from_secs(60)),
            [ReceiverAction::Failed {
                reason: FailReason::Timeout,
                error: "the sender opened no stream within 60 seconds".into(),
                resumable: true
            }]
        );
    }

    #[test]
    fn bad_opens() {
        let mut r = accepted(ReceiverConfig::default(), 3);
        let out = r.handle(
            req("o", "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s1' stanza='message'/>"),
            T0,
        );
        assert!(one_sent(&out).contains(
            "<feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>only stanza='iq' is supported</text>"
        ));
        assert_eq!(
            out[1],
            ReceiverAction::Failed {
                reason: FailReason::Unsupported,
                error: "the sender wanted in-band data in messages, which Skiff does not take".into(),
                resumable: true
            }
        );
        let mut r = accepted(ReceiverConfig::default(), 3);
        let out = r.handle(req("o", "<open xmlns='http://jabber.org/protocol/ibb' block-size='0' sid='s1'/>"), T0);
        assert!(one_sent(&out).contains("bad-request"));
        assert_eq!(
            out[1],
            ReceiverAction::Failed {
                reason: FailReason::Protocol,
                error: "the sender's in-band open was malformed".into(),
                resumable: true
            }
        );
    }

    #[test]
    fn too_large_blocks_are_refused_with_resource_constraint() {
        let mut r = accepted(ReceiverConfig { max_block_size: 8192, ..ReceiverConfig::default() }, 3);
        let out = r.handle(
            req("o1", "<open xmlns='http://jabber.org/protocol/ibb' block-size='65535' sid='s1' stanza='iq'/>"),
            T0,
        );
        assert_eq!(
            one_sent(&out),
            "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='error'><error type='modify'>\
             <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>blocks of at most 8192 bytes</text>\
             </error></iq>"
        );
        assert_eq!(r.state(), ReceiverState::Waiting);
        let out = r.handle(
            req("o2", "<open xmlns='http://jabber.org/protocol/ibb' block-size='8192' sid='s1' stanza='iq'/>"),
            T0,
        );
        assert_eq!(one_sent(&out), "<iq xmlns='jabber:client' id='o2' to='alice@example.com/psi' type='result'/>");
    }

    #[test]
    fn methods_not_allowed_are_refused() {
        let mut r = accepted(ReceiverConfig { methods: vec![Method::S5b], ..ReceiverConfig::default() }, 3);
        assert!(one_sent(&r.handle(req("o", OPEN_4096), T0)).contains("in-band bytestreams are not allowed here"));
        let mut r = accepted(ReceiverConfig { methods: vec![Method::Ibb], ..ReceiverConfig::default() }, 3);
        assert!(one_sent(&r.handle(req("q", STREAMHOSTS), T0)).contains("SOCKS5 bytestreams are not allowed here"));
        assert_eq!(r.state(), ReceiverState::Waiting);
    }

    fn ibb(size: u64) -> Receiver {
        let mut r = accepted(ReceiverConfig::default(), size);
        r.handle(req("open", OPEN_4096), T0);
        r
    }

    #[test]
    fn blocks_are_acked_after_they_are_written() {
        let mut r = ibb(5);
        assert_eq!(r.handle(data(0, b"abc"), T0), [ReceiverAction::Write(b"abc".to_vec())]);
        assert_eq!(r.poll_timeout(), None, "no idle timeout while writing");
        // The next block waits for the write.
        assert!(r.handle(data(1, b"de"), T0).is_empty());
        let out = r.handle(ReceiverInput::Written, Duration::from_secs(1));
        assert_eq!(
            out,
            [
                ReceiverAction::SendIq(
                    Iq::try_from(el("<iq xmlns='jabber:client' id='d0' to='alice@example.com/psi' type='result'/>"))
                        .unwrap()
                ),
                ReceiverAction::Progress { bytes: 3 },
                ReceiverAction::Write(b"de".to_vec()),
            ]
        );
        let out = r.handle(ReceiverInput::Written, Duration::from_secs(2));
        assert_eq!(out[1], ReceiverAction::Progress { bytes: 5 });
        assert_eq!(r.poll_timeout(), Some(Duration::from_secs(62)));
        let out = r.handle(req("c", CLOSE), Duration::from_secs(3));
        assert_eq!(one_sent(&out), "<iq xmlns='jabber:client' id='c' to='alice@example.com/psi' type='result'/>");
        assert_eq!(out[1], ReceiverAction::Done { route: Route::Ibb, sha256: None, checksum: None });
        // Later requests: no such stream.
        assert!(one_sent(&r.handle(data(2, b"x"), T0)).contains("item-not-found"));
    }

    #[test]
    fn reused_seq_is_refused_and_the_stream_goes_on() {
        let mut r = ibb(2);
        r.handle(data(0, b"a"), T0);
        r.handle(ReceiverInput::Written, T0);
        let out = r.handle(data(0, b"a"), T0);
        assert!(one_sent(&out).contains(
            "<unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>in-band block 0 received twice</text>"
        ));
        assert_eq!(out.len(), 1);
        assert_eq!(r.handle(data(1, b"b"), T0), [ReceiverAction::Write(b"b".to_vec())]);
    }

    #[test]
    fn out_of_order_fails() {
        let mut r = ibb(2);
        let out = r.handle(data(1, b"a"), T0);
        assert!(one_sent(&out).contains("unexpected-request"));
        assert_eq!(
            out[1],
            ReceiverAction::Failed {
                reason: FailReason::Protocol,
                error: "in-band block out of order: expected sequence number 0, got 1 (peers that do not wrap \
                        sequence numbers after block 65535 fail here; larger blocks avoid it)"
                    .into(),
                resumable: true
            }
        );
    }

    #[test]
    fn oversize_block_fails() {
        let mut r = accepted(ReceiverConfig::default(), 10_000);
        r.handle(req("open", "<open xmlns='http://jabber.org/protocol/ibb' block-size='4' sid='s1'/>"), T0);
        let out = r.handle(data(0, b"abcde"), T0);
        assert!(one_sent(&out).contains("block larger than the agreed block-size"));
        assert_eq!(
            out[1],
            ReceiverAction::Failed {
                reason: FailReason::Protocol,
                error: "the sender sent a 5-byte block over the agreed 4".into(),
                resumable: true
            }
        );
    }

    #[test]
    fn more_bytes_than_announced_fails_for_good() {
        let mut r = ibb(4);
        r.handle(data(0, b"abc"), T0);
        r.handle(ReceiverInput::Written, T0);
        let out = r.handle(data(1, b"de"), T0);
        assert!(one_sent(&out).contains("not-acceptable"));
        assert_eq!(
            out[1],
            ReceiverAction::Failed {
                reason: FailReason::Protocol,
                error: "cannot store the data: the sender sent more than the 4 bytes it announced (2 more after 3)"
                    .into(),
                resumable: false
            }
        );
    }

    #[test]
    fn close_before_the_end_fails_resumable() {
        let mut r = ibb(4);
        r.handle(data(0, b"abc"), T0);
        r.handle(ReceiverInput::Written, T0);
        let out = r.handle(req("c", CLOSE), T0);
        assert!(one_sent(&out).contains("type='result'"));
        assert_eq!(
            out[1],
            ReceiverAction::Failed {
                reason: FailReason::Protocol,
                error: "the sender announced 4 bytes but sent 3".into(),
                resumable: true
            }
        );
    }

    #[test]
    fn idle_timeout() {
        let mut r = ibb(4);
        r.handle(data(0, b"a"), Duration::from_secs(5));
        r.handle(ReceiverInput::Written, Duration::from_secs(6));
        assert!(r.handle(ReceiverInput::Tick, Duration::from_secs(65)).is_empty());
        assert_eq!(
            r.handle(ReceiverInput::Tick, Duration::from_secs(66)),
            [ReceiverAction::Failed {
                reason: FailReason::Timeout,
                error: "no in-band data for 60 seconds".into(),
                resumable: true
            }]
        );
    }

    #[test]
    fn write_failure_refuses_the_block() {
        let mut r = ibb(4);
        r.handle(data(0, b"a"), T0);
        r.handle(data(1, b"b"), T0);
        let out = r.handle(ReceiverInput::WriteFailed("disk full".into()), T0);
        let sent = sent(&out);
        assert!(sent[0].contains("id='d0'") && sent[0].contains("not-acceptable") && sent[0].contains("disk full"));
        // The held block gets "no such stream".
        assert!(sent[1].contains("id='d1'") && sent[1].contains("item-not-found"));
        assert_eq!(
            out.last(),
            Some(&ReceiverAction::Failed {
                reason: FailReason::Storage,
                error: "cannot store the data: disk full".into(),
                resumable: false
            })
        );
        // A full disk keeps what was written for a resume, and the sender hears why.
        let mut r = ibb(4);
        r.handle(data(0, b"a"), T0);
        let out = r.handle(ReceiverInput::OutOfSpace("the disk holding /d is full".into()), T0);
        assert!(one_sent(&out).contains("resource-constraint"), "{out:?}");
        assert_eq!(
            out.last(),
            Some(&ReceiverAction::Failed {
                reason: FailReason::Storage,
                error: "the disk holding /d is full".into(),
                resumable: true
            })
        );
    }

    #[test]
    fn cancel_answers_what_waits() {
        let mut r = accepted(ReceiverConfig::default(), 4);
        r.handle(req("q1", STREAMHOSTS), T0);
        let out = r.handle(ReceiverInput::Cancel, T0);
        assert!(one_sent(&out).contains("not-acceptable"), "bytestreams say not-acceptable");
        assert_eq!(
            out[1],
            ReceiverAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }
        );
        assert!(r.handle(ReceiverInput::CandidateConnected { jid: "proxy.example.com".into() }, T0).is_empty());
    }

    #[test]
    fn strangers_and_other_streams() {
        let mut r = ibb(4);
        let stranger = Iq::try_from(el("<iq xmlns='jabber:client' type='set' id='x' from='mallory@example.com/m'>\
             <data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s1'>YQ==</data></iq>"))
        .unwrap();
        assert!(one_sent(&r.handle(ReceiverInput::Iq(stranger), T0)).contains("item-not-found"));
        let other = Data { sid: "s2".into(), seq: 0, data: b"a".to_vec() };
        assert!(one_sent(&r.handle(req("y", &Element::from(&other).to_xml()), T0)).contains("item-not-found"));
        // Answers are not requests: ignored.
        let answer =
            Iq::try_from(el("<iq xmlns='jabber:client' type='result' id='z' from='alice@example.com/psi'/>")).unwrap();
        assert!(r.handle(ReceiverInput::Iq(answer), T0).is_empty());
        // Nothing of it touched the stream.
        assert_eq!(r.handle(data(0, b"a"), T0), [ReceiverAction::Write(b"a".to_vec())]);
    }

    #[test]
    fn requests_before_accept_or_out_of_place() {
        let mut r = receiver(ReceiverConfig::default(), 4);
        assert!(one_sent(&r.handle(req("o", OPEN_4096), T0)).contains("item-not-found"));
        let mut r = accepted(ReceiverConfig::default(), 4);
        assert!(one_sent(&r.handle(data(0, b"a"), T0)).contains("unexpected-request"));
        assert!(one_sent(&r.handle(req("c", CLOSE), T0)).contains("unexpected-request"));
        let mut r = ibb(4);
        assert!(one_sent(&r.handle(req("o", OPEN_4096), T0)).contains("the stream is already open"));
        assert!(one_sent(&r.handle(req("q", STREAMHOSTS), T0)).contains("bad-request"));
    }
}
