//! The sending side of one transfer: offer, then SOCKS5 (our streamhost, then a
//! proxy), or in-band when the receiver chose it or every streamhost failed.
//!
//! The flow, with the driver's part in brackets:
//!
//! ```text
//! Start -> SendIq(offer) -> accept
//!   bytestreams: GatherStreamhosts [Streamhosts] -> SendIq(streamhosts) -> streamhost-used
//!     ours:  AwaitDirect [DirectConnected] -> Started, StreamSocket [SocketDone]
//!     proxy: ConnectProxy [ProxyConnected] -> SendIq(activate) -> Started, StreamSocket [SocketDone]
//!     the receiver could use none and a proxy was among them: RefreshProxies
//!       [Streamhosts] -> SendIq(streamhosts) once more with the proxies found anew
//!       (unless they are the same)
//!     any failure, in-band allowed: FellBack, then as ibb
//!   ibb: Started, SendIq(open) (step down on resource-constraint)
//!     ReadBlock [Block] -> SendIq(data), up to the window in flight; each result acks
//!     all acked -> SendIq(close) -> Done
//!   when the offer said `checksum-follows`, after the data instead of Done:
//!     ComputeChecksum [Checksum] -> SendIq(checksum) -> result: Done
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use super::{
    answered_with, answers, earliest, no_answer, FailReason, Instant, Method, Route, INTEROP_BLOCK_SIZE, SLOW_AFTER,
    SLOW_RATE, STEP_DOWN, STREAMHOSTS_TIMEOUT,
};
use crate::bytestreams::{dst_addr, Activate, StreamHost, StreamHostUsed, StreamHosts};
use crate::ibb::{Close, Data, Open, SeqCounter, StanzaKind};
use crate::jid::Jid;
use crate::si::{FileInfo, FileOffer, SiAccept};
use crate::stanza::{Condition, Iq, IqKind, StanzaError};
use crate::xml::Element;

mod checksum;
mod ibb;
mod s5b;
mod si;
#[cfg(test)]
mod tests;

/// Settings of an outgoing transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// Allowed methods in preference order; the offer lists them in this order.
    pub methods: Vec<Method>,
    /// Largest in-band block asked for from a Skiff peer; other peers get at most
    /// [`INTEROP_BLOCK_SIZE`]. The receiver may make us step down ([`STEP_DOWN`]).
    pub ibb_block_size: u16,
    /// In-band data IQs in flight before waiting for acknowledgements (at least 1).
    pub ibb_window: usize,
    /// How long the offer waits for the receiver's answer (a user may be deciding).
    pub offer_timeout: Duration,
    /// How long every other request waits for its answer.
    pub iq_timeout: Duration,
    /// How long the streamhosts wait for `streamhost-used`.
    pub streamhosts_timeout: Duration,
    /// The receiver is Skiff: in-band blocks start at `ibb_block_size`.
    pub skiff_peer: bool,
    /// The stream carries these files of a batch (the offer says so).
    pub batch: Option<crate::batch::InBatch>,
}

impl Default for SenderConfig {
    /// The engine's defaults: bytestreams then in-band, 64 KiB blocks, 16 in flight,
    /// 5 minutes for the offer, 30 s per request, 60 s for the streamhosts.
    fn default() -> Self {
        SenderConfig {
            methods: vec![Method::S5b, Method::Ibb],
            ibb_block_size: 65535,
            ibb_window: 16,
            offer_timeout: Duration::from_secs(300),
            iq_timeout: Duration::from_secs(30),
            streamhosts_timeout: STREAMHOSTS_TIMEOUT,
            skiff_peer: false,
            batch: None,
        }
    }
}

/// What happened, for an outgoing transfer.
// Most values carry an IQ (the data blocks do): boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderInput {
    /// Send the offer.
    Start,
    /// An IQ result or error addressed to us. Answers to our own requests are matched
    /// by id (and `from`, when present); anything else is ignored.
    Iq(Iq),
    /// The answer to [`SenderAction::GatherStreamhosts`]: our listener's addresses
    /// (jid = our full JID) then the proxies, in preference order. Empty: no SOCKS5.
    Streamhosts(Vec<StreamHost>),
    /// After [`SenderAction::AwaitDirect`]: the receiver's connection arrived.
    DirectConnected,
    /// After [`SenderAction::AwaitDirect`]: it did not arrive in the driver's wait.
    DirectMissing,
    /// After [`SenderAction::ConnectProxy`]: connected, SOCKS5 handshake done.
    ProxyConnected,
    /// After [`SenderAction::ConnectProxy`]: the proxy could not be used.
    ProxyFailed(String),
    /// After [`SenderAction::StreamSocket`]: every byte written, the stream closed.
    SocketDone,
    /// After [`SenderAction::StreamSocket`]: the connection broke (resumable).
    SocketFailed(String),
    /// The source file cannot be read (not resumable): during
    /// [`SenderAction::StreamSocket`] or instead of a [`SenderInput::Block`].
    ReadFailed(String),
    /// After [`SenderAction::ReadBlock`]: the next bytes of the file, at most the
    /// length asked for. Empty: the file ended early.
    Block(Vec<u8>),
    /// After [`SenderAction::ComputeChecksum`]: the file's SHA-256 (lowercase hex), or
    /// `None` when it could not be computed.
    Checksum(Option<String>),
    /// The user stopped the transfer.
    Cancel,
    /// [`Sender::poll_timeout`] was reached.
    Tick,
}

/// What the driver must do, in order.
// Most values carry an IQ (the data blocks do): boxing it would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderAction {
    /// Send this IQ as it is (`id` and `to` are set).
    SendIq(Iq),
    /// Register `dst_addr` with our own listener (a connection naming it is this
    /// transfer's), collect the proxies and answer with [`SenderInput::Streamhosts`].
    GatherStreamhosts { dst_addr: String },
    /// The receiver could use none of the streamhosts and a proxy was among them: the
    /// proxy may have moved. Find the proxies anew (discovery and address query, no
    /// cache) and answer [`SenderInput::Streamhosts`] with the complete list again
    /// (our own addresses, `dst_addr` still registered, then the proxies). Asked once
    /// per transfer.
    RefreshProxies { dst_addr: String },
    /// The receiver used our streamhost: take the connection registered for the
    /// `dst_addr`, then answer [`SenderInput::DirectConnected`] or
    /// [`SenderInput::DirectMissing`].
    AwaitDirect,
    /// The receiver used this proxy: connect to it with the same `dst_addr`, then
    /// answer [`SenderInput::ProxyConnected`] or [`SenderInput::ProxyFailed`].
    ConnectProxy { host: String, port: u16, dst_addr: String },
    /// Write `length` bytes of the file from `offset` into the open socket, close it,
    /// then answer [`SenderInput::SocketDone`] or [`SenderInput::SocketFailed`].
    StreamSocket { offset: u64, length: u64 },
    /// Read the next `len` bytes of the file (from `offset` of [`SenderAction::Started`]
    /// on) and answer with [`SenderInput::Block`].
    ReadBlock { len: usize },
    /// The data phase begins: `length` bytes from `offset` over `route`.
    Started { route: Route, streamhost: Option<String>, offset: u64, length: u64 },
    /// In-band: the file is acknowledged up to this byte (absolute position).
    Progress { acked: u64 },
    /// SOCKS5 failed and in-band takes over; `reason` is worth a log line.
    FellBack { reason: String },
    /// In-band data moves slower than [`SLOW_RATE`]: the server throttles this
    /// connection. Said once per transfer; worth telling the user.
    Slow { bytes_per_sec: u64 },
    /// Every byte went out and the offer announced a checksum: compute the file's
    /// SHA-256 (or take it from the hashing that started with the offer) and answer
    /// [`SenderInput::Checksum`].
    ComputeChecksum,
    /// Finished: `bytes` of the file went over `route`. `verified`: the receiver
    /// confirmed the SHA-256 sent after the data (false without that step).
    Done { route: Route, bytes: u64, verified: bool },
    /// The receiver declined the offer.
    Rejected { reason: String },
    /// The transfer failed; `resumable` when a new offer can continue it.
    Failed { reason: FailReason, error: String, resumable: bool },
}

/// Where an outgoing transfer stands (coarse, for progress and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderState {
    /// Not started.
    Idle,
    /// The offer waits for an answer.
    Offered,
    /// Setting up a SOCKS5 bytestream.
    Negotiating,
    /// The in-band open waits for an answer.
    Opening,
    /// Data flows over this route.
    Sending(Route),
    /// In-band: everything is acknowledged, the close waits for its answer.
    Closing,
    Done,
    Rejected,
    Failed,
}

/// One in-band data IQ in flight.
#[derive(Debug)]
struct Block {
    id: String,
    len: u64,
    deadline: Instant,
    acked: bool,
}

/// The in-band stream once it is open.
#[derive(Debug)]
struct IbbSend {
    block_size: u16,
    seq: SeqCounter,
    /// Oldest first.
    in_flight: VecDeque<Block>,
    /// A [`SenderAction::ReadBlock`] of this length is outstanding.
    reading: Option<usize>,
    /// Bytes not yet read from the file.
    left: u64,
    /// The file is acknowledged up to here (absolute).
    acked: u64,
}

#[derive(Debug)]
enum State {
    Idle,
    Offered {
        id: String,
        deadline: Instant,
    },
    Gathering {
        dst: String,
        /// A second gathering after the first list failed: its hosts and why.
        retry_of: Option<(Vec<StreamHost>, String)>,
    },
    StreamhostsSent {
        id: String,
        deadline: Instant,
        dst: String,
        hosts: Vec<StreamHost>,
    },
    AwaitingDirect,
    ConnectingProxy {
        proxy: StreamHost,
    },
    Activating {
        id: String,
        deadline: Instant,
        proxy: Jid,
        name: String,
    },
    Streaming {
        route: Route,
    },
    /// The open waits; `rest` are the smaller sizes still to try.
    Opening {
        id: String,
        deadline: Instant,
        block_size: u16,
        rest: VecDeque<u16>,
    },
    Sending(Box<IbbSend>),
    Closing {
        id: String,
        deadline: Instant,
        acked: u64,
        block_size: u16,
    },
    /// The data is out; the checksum is being computed.
    Checksumming {
        route: Route,
    },
    /// The checksum waits for the receiver's answer.
    ChecksumSent {
        id: String,
        deadline: Instant,
        route: Route,
    },
    Done,
    Rejected,
    Failed,
}

/// How long the receiver may take to answer the checksum (it compares digests it
/// already has).
pub const CHECKSUM_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Which of our requests an answer belongs to.
#[derive(Debug, Clone, Copy)]
enum Answers {
    Offer,
    Streamhosts,
    Activate,
    Open,
    Data(usize),
    Close,
    Checksum,
}

/// One outgoing transfer (XEP-0096 over XEP-0065 or XEP-0047).
#[derive(Debug)]
pub struct Sender {
    cfg: SenderConfig,
    me: Jid,
    peer: Jid,
    sid: String,
    file: FileInfo,
    state: State,
    next_id: u64,
    /// The range the receiver asked for.
    offset: u64,
    length: u64,
    /// When the in-band attempt began (for [`SenderAction::Slow`]).
    ibb_started: Instant,
    slow_judged: bool,
    /// The first in-band sequence number (tests start near the wrap).
    seq_start: u16,
    /// [`SenderAction::RefreshProxies`] was asked (once per transfer).
    proxies_refreshed: bool,
    /// Made by [`Sender::in_band`]: Start opens the in-band stream, no offer.
    in_band_only: bool,
}

impl Sender {
    /// A transfer of `file` from `me` to `peer` (full JIDs) as stream `sid`. The offer
    /// carries `file` as given (Skiff sets `range: true`: it honours any range).
    pub fn new(cfg: SenderConfig, me: Jid, peer: Jid, sid: String, file: FileInfo, _now: Instant) -> Sender {
        let length = file.size;
        Sender {
            cfg,
            me,
            peer,
            sid,
            file,
            state: State::Idle,
            next_id: 0,
            offset: 0,
            length,
            ibb_started: Duration::ZERO,
            slow_judged: false,
            seq_start: 0,
            proxies_refreshed: false,
            in_band_only: false,
        }
    }

    /// Starts the in-band sequence numbers at `start` instead of 0 (to test the wrap).
    #[cfg(test)]
    pub(in crate::transfer) fn set_seq_start(&mut self, start: u16) {
        self.seq_start = start;
    }

    pub fn sid(&self) -> &str {
        &self.sid
    }

    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    pub fn file(&self) -> &FileInfo {
        &self.file
    }

    /// The part of the file being sent: `(offset, length)` (the whole file until the
    /// receiver asks for a range).
    pub fn range(&self) -> (u64, u64) {
        (self.offset, self.length)
    }

    /// The in-band block size, once the stream is open.
    pub fn block_size(&self) -> Option<u16> {
        match &self.state {
            State::Sending(ibb) => Some(ibb.block_size),
            State::Closing { block_size, .. } => Some(*block_size),
            _ => None,
        }
    }

    pub fn state(&self) -> SenderState {
        match &self.state {
            State::Idle => SenderState::Idle,
            State::Offered { .. } => SenderState::Offered,
            State::Gathering { .. }
            | State::StreamhostsSent { .. }
            | State::AwaitingDirect
            | State::ConnectingProxy { .. }
            | State::Activating { .. } => SenderState::Negotiating,
            State::Streaming { route } => SenderState::Sending(*route),
            State::Opening { .. } => SenderState::Opening,
            State::Sending(_) => SenderState::Sending(Route::Ibb),
            State::Closing { .. } | State::Checksumming { .. } | State::ChecksumSent { .. } => SenderState::Closing,
            State::Done => SenderState::Done,
            State::Rejected => SenderState::Rejected,
            State::Failed => SenderState::Failed,
        }
    }

    /// True once Done, Rejected or Failed was returned: nothing more will happen.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Rejected | State::Failed)
    }

    /// When [`SenderInput::Tick`] is due, if nothing else happens first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Offered { deadline, .. }
            | State::StreamhostsSent { deadline, .. }
            | State::Activating { deadline, .. }
            | State::Opening { deadline, .. }
            | State::Closing { deadline, .. }
            | State::ChecksumSent { deadline, .. } => Some(*deadline),
            State::Sending(ibb) => {
                ibb.in_flight.iter().filter(|b| !b.acked).map(|b| Some(b.deadline)).fold(None, earliest)
            }
            _ => None,
        }
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, input: SenderInput, now: Instant) -> Vec<SenderAction> {
        let mut out = Vec::new();
        if self.is_finished() {
            return out;
        }
        match input {
            SenderInput::Start => self.start(now, &mut out),
            SenderInput::Iq(iq) => self.on_iq(iq, now, &mut out),
            SenderInput::Streamhosts(hosts) => self.on_streamhosts(hosts, now, &mut out),
            SenderInput::DirectConnected => {
                if matches!(self.state, State::AwaitingDirect) {
                    let me = self.me.to_string();
                    self.begin_stream(Route::S5bDirect, Some(me), &mut out);
                }
            }
            SenderInput::DirectMissing => {
                if matches!(self.state, State::AwaitingDirect) {
                    let reason = "the receiver says it used our streamhost, but its connection never arrived";
                    self.s5b_failed(reason.into(), now, &mut out);
                }
            }
            SenderInput::ProxyConnected => self.on_proxy_connected(now, &mut out),
            SenderInput::ProxyFailed(e) => {
                if matches!(self.state, State::ConnectingProxy { .. }) {
                    self.s5b_failed(e, now, &mut out);
                }
            }
            SenderInput::SocketDone => {
                if let State::Streaming { route } = self.state {
                    self.data_sent(route, &mut out);
                }
            }
            SenderInput::Checksum(sha256) => self.on_checksum(sha256, now, &mut out),
            SenderInput::SocketFailed(e) => {
                if matches!(self.state, State::Streaming { .. }) {
                    self.fail(FailReason::Network, e, true, &mut out);
                }
            }
            SenderInput::ReadFailed(e) => {
                if matches!(self.state, State::Streaming { .. } | State::Sending(_)) {
                    self.abort(FailReason::Source, e, false, &mut out);
                }
            }
            SenderInput::Block(bytes) => self.on_block(bytes, now, &mut out),
            SenderInput::Cancel => self.abort(FailReason::Cancelled, "cancelled", true, &mut out),
            SenderInput::Tick => self.on_tick(now, &mut out),
        }
        out
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.sid, self.next_id)
    }

    /// Queues an IQ-set to `to`; returns its id.
    fn send_set(&mut self, to: Jid, payload: Element, out: &mut Vec<SenderAction>) -> String {
        let id = self.new_id();
        out.push(SenderAction::SendIq(Iq::set(id.clone(), Some(to), payload)));
        id
    }

    fn fail(&mut self, reason: FailReason, error: impl Into<String>, resumable: bool, out: &mut Vec<SenderAction>) {
        self.state = State::Failed;
        out.push(SenderAction::Failed { reason, error: error.into(), resumable });
    }

    fn start(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        if self.in_band_only {
            return self.start_ibb(now, out);
        }
        let offer = FileOffer {
            sid: self.sid.clone(),
            mime_type: None,
            file: self.file.clone(),
            methods: self.cfg.methods.iter().map(|m| m.namespace().to_owned()).collect(),
            batch: self.cfg.batch.clone(),
        };
        let id = self.send_set(self.peer.clone(), offer.into(), out);
        self.state = State::Offered { id, deadline: now.saturating_add(self.cfg.offer_timeout) };
    }

    /// Which request of ours `iq` answers, if any.
    fn answered(&self, iq: &Iq) -> Option<Answers> {
        let peer = &self.peer;
        match &self.state {
            State::Offered { id, .. } if answers(iq, id, peer) => Some(Answers::Offer),
            State::StreamhostsSent { id, .. } if answers(iq, id, peer) => Some(Answers::Streamhosts),
            State::Activating { id, proxy, .. } if answers(iq, id, proxy) => Some(Answers::Activate),
            State::Opening { id, .. } if answers(iq, id, peer) => Some(Answers::Open),
            State::Sending(ibb) => ibb.in_flight.iter().position(|b| answers(iq, &b.id, peer)).map(Answers::Data),
            State::Closing { id, .. } if answers(iq, id, peer) => Some(Answers::Close),
            State::ChecksumSent { id, .. } if answers(iq, id, peer) => Some(Answers::Checksum),
            _ => None,
        }
    }

    fn on_iq(&mut self, iq: Iq, now: Instant, out: &mut Vec<SenderAction>) {
        let Some(which) = self.answered(&iq) else { return };
        let answer = match iq.kind {
            IqKind::Result(payload) => Ok(payload),
            IqKind::Error(e) => Err(e),
            IqKind::Get(_) | IqKind::Set(_) => return,
        };
        match which {
            Answers::Offer => self.on_offer_answer(answer, now, out),
            Answers::Streamhosts => self.on_streamhosts_answer(answer, now, out),
            Answers::Activate => self.on_activate_answer(answer, now, out),
            Answers::Open => self.on_open_answer(answer, now, out),
            Answers::Data(pos) => self.on_data_answer(pos, answer, now, out),
            Answers::Close => self.on_close_answer(answer, out),
            Answers::Checksum => self.on_checksum_answer(answer, out),
        }
    }

    // --- Time and the user --------------------------------------------------------

    fn on_tick(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
        if self.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        let peer = self.peer.clone();
        let iq_timeout = self.cfg.iq_timeout;
        match &self.state {
            State::Offered { .. } => {
                let error = format!("the offer got no answer: {}", no_answer(&peer, self.cfg.offer_timeout));
                self.fail(FailReason::Timeout, error, false, out);
            }
            State::StreamhostsSent { .. } => {
                let why = no_answer(&peer, self.cfg.streamhosts_timeout);
                self.s5b_failed(format!("the receiver could not use any streamhost: {why}"), now, out);
            }
            State::Activating { proxy, .. } => {
                let why = no_answer(proxy, iq_timeout);
                self.s5b_failed(format!("the proxy refused to activate the stream: {why}"), now, out);
            }
            State::ChecksumSent { route, .. } => {
                let route = *route;
                self.state = State::Done;
                out.push(SenderAction::Done { route, bytes: self.length, verified: false });
            }
            State::Opening { .. } => {
                let error = format!("the receiver refused the in-band stream: {}", no_answer(&peer, iq_timeout));
                self.fail(FailReason::Timeout, error, true, out);
            }
            State::Sending(ibb) => {
                let error = broke(ibb.acked, &no_answer(&peer, iq_timeout));
                self.fail(FailReason::Timeout, error, true, out);
            }
            State::Closing { acked, .. } => {
                let error = broke(*acked, &no_answer(&peer, iq_timeout));
                self.fail(FailReason::Timeout, error, true, out);
            }
            _ => {}
        }
    }

    /// Fails for a reason on our side (the user, the file). An open (or opening)
    /// in-band stream is closed so the receiver stops waiting at once; the answer is
    /// not awaited. A socket is the driver's to drop.
    fn abort(&mut self, reason: FailReason, error: impl Into<String>, resumable: bool, out: &mut Vec<SenderAction>) {
        if matches!(self.state, State::Sending(_) | State::Opening { .. }) {
            let close = Close { sid: self.sid.clone() };
            self.send_set(self.peer.clone(), Element::from(&close), out);
        }
        self.fail(reason, error, resumable, out);
    }
}

/// The user-facing text of an in-band stream that failed after `acked` bytes.
fn broke(acked: u64, why: &str) -> String {
    format!("the in-band stream broke after {acked} bytes: {why}")
}
