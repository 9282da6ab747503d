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
        let offer = FileOffer {
            sid: self.sid.clone(),
            mime_type: None,
            file: self.file.clone(),
            methods: self.cfg.methods.iter().map(|m| m.namespace().to_owned()).collect(),
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

    // --- SI -----------------------------------------------------------------------

    fn on_offer_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        now: Instant,
        out: &mut Vec<SenderAction>,
    ) {
        let accept = match answer {
            Ok(Some(el)) => match SiAccept::try_from(&el) {
                Ok(a) => a,
                Err(e) => {
                    let error = format!("{} answered the offer in a way Skiff cannot read: {e}", self.peer);
                    return self.fail(FailReason::Protocol, error, false, out);
                }
            },
            Ok(None) => {
                let error = format!("{} accepted without choosing a method", self.peer);
                return self.fail(FailReason::Protocol, error, false, out);
            }
            Err(error) => return self.refused(error, out),
        };
        let size = self.file.size;
        let offset = accept.range.map_or(0, |r| r.offset);
        if offset > size {
            let error = format!("the receiver asked for data from byte {offset} of a {size} byte file");
            return self.fail(FailReason::Protocol, error, false, out);
        }
        self.offset = offset;
        self.length = accept.range.and_then(|r| r.length).unwrap_or(size - offset).min(size - offset);
        match Method::from_namespace(&accept.method).filter(|m| self.cfg.methods.contains(m)) {
            Some(Method::S5b) => {
                let dst = dst_addr(&self.sid, &self.me.to_string(), &self.peer.to_string());
                out.push(SenderAction::GatherStreamhosts { dst_addr: dst.clone() });
                self.state = State::Gathering { dst, retry_of: None };
            }
            Some(Method::Ibb) => self.start_ibb(now, out),
            None => {
                let error = format!("the receiver chose a method that was not offered: {}", accept.method);
                self.fail(FailReason::Protocol, error, false, out)
            }
        }
    }

    /// The offer was answered with an error.
    fn refused(&mut self, error: StanzaError, out: &mut Vec<SenderAction>) {
        match error.condition {
            Condition::Forbidden | Condition::NotAcceptable | Condition::NotAllowed => {
                let reason = error.text.map_or_else(|| "declined".to_owned(), |t| format!("declined: {t}"));
                self.state = State::Rejected;
                out.push(SenderAction::Rejected { reason });
            }
            Condition::BadRequest if error.app.as_ref().is_some_and(|a| a.name == "no-valid-streams") => {
                let error = format!("{} supports none of the transfer methods offered", self.peer);
                self.fail(FailReason::Unsupported, error, false, out)
            }
            _ => {
                let error = format!("{} refused the offer: {error}", self.peer);
                self.fail(FailReason::Refused, error, false, out)
            }
        }
    }

    // --- SOCKS5 -------------------------------------------------------------------

    fn on_streamhosts(&mut self, hosts: Vec<StreamHost>, now: Instant, out: &mut Vec<SenderAction>) {
        let State::Gathering { dst, retry_of } = &self.state else { return };
        let (dst, retry_of) = (dst.clone(), retry_of.clone());
        if let Some((before, reason)) = retry_of {
            let proxies = |hs: &[StreamHost]| -> Vec<StreamHost> {
                let mut p: Vec<StreamHost> = hs.iter().filter(|h| !self.is_me(&h.jid)).cloned().collect();
                p.sort_by(|a, b| (&a.jid, &a.host, a.port).cmp(&(&b.jid, &b.host, b.port)));
                p
            };
            let found = proxies(&hosts);
            if found.is_empty() || found == proxies(&before) {
                return self.s5b_failed(reason, now, out);
            }
        }
        if hosts.is_empty() {
            let reason = "no streamhost to offer (no own address allowed and no proxy)";
            return self.s5b_failed(reason.into(), now, out);
        }
        let query = StreamHosts { sid: self.sid.clone(), mode_tcp: true, hosts };
        let id = self.send_set(self.peer.clone(), Element::from(&query), out);
        let deadline = now.saturating_add(self.cfg.streamhosts_timeout);
        self.state = State::StreamhostsSent { id, deadline, dst, hosts: query.hosts };
    }

    fn is_me(&self, jid: &str) -> bool {
        jid.parse::<Jid>().is_ok_and(|j| j == self.me)
    }

    fn on_streamhosts_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        now: Instant,
        out: &mut Vec<SenderAction>,
    ) {
        let State::StreamhostsSent { dst, hosts, .. } = &self.state else { return };
        let (dst, hosts) = (dst.clone(), hosts.clone());
        let used = match answer {
            Ok(Some(el)) => match StreamHostUsed::try_from(&el) {
                Ok(u) => u,
                Err(e) => return self.s5b_failed(e.to_string(), now, out),
            },
            Ok(None) => return self.s5b_failed("the receiver answered the streamhosts with nothing".into(), now, out),
            Err(e) => {
                let reason = format!("the receiver could not use any streamhost: {}", answered_with(&self.peer, &e));
                // A proxy among them may have moved: find it again, offer once more.
                if !self.proxies_refreshed && hosts.iter().any(|h| !self.is_me(&h.jid)) {
                    self.proxies_refreshed = true;
                    out.push(SenderAction::RefreshProxies { dst_addr: dst.clone() });
                    self.state = State::Gathering { dst, retry_of: Some((hosts, reason)) };
                    return;
                }
                return self.s5b_failed(reason, now, out);
            }
        };
        if self.is_me(&used.jid) {
            if hosts.iter().any(|h| self.is_me(&h.jid)) {
                out.push(SenderAction::AwaitDirect);
                self.state = State::AwaitingDirect;
            } else {
                let reason = "the receiver says it used our streamhost, but its connection never arrived";
                self.s5b_failed(reason.into(), now, out);
            }
            return;
        }
        let same =
            |a: &str, b: &str| a == b || matches!((a.parse::<Jid>(), b.parse::<Jid>()), (Ok(x), Ok(y)) if x == y);
        match hosts.iter().find(|h| !self.is_me(&h.jid) && same(&h.jid, &used.jid)) {
            Some(proxy) => {
                out.push(SenderAction::ConnectProxy { host: proxy.host.clone(), port: proxy.port, dst_addr: dst });
                self.state = State::ConnectingProxy { proxy: proxy.clone() };
            }
            None => {
                let reason = format!("the receiver used a streamhost we did not offer ({})", used.jid);
                self.s5b_failed(reason, now, out);
            }
        }
    }

    fn on_proxy_connected(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
        let State::ConnectingProxy { proxy } = &self.state else { return };
        let name = proxy.jid.clone();
        let jid = match name.parse::<Jid>() {
            Ok(j) => j,
            Err(e) => return self.s5b_failed(format!("proxy address: {e}"), now, out),
        };
        let activate = Activate { sid: self.sid.clone(), target: self.peer.to_string() };
        let id = self.send_set(jid.clone(), Element::from(&activate), out);
        self.state = State::Activating { id, deadline: now.saturating_add(self.cfg.iq_timeout), proxy: jid, name };
    }

    fn on_activate_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        now: Instant,
        out: &mut Vec<SenderAction>,
    ) {
        let State::Activating { proxy, name, .. } = &self.state else { return };
        let (proxy, name) = (proxy.clone(), name.clone());
        match answer {
            Ok(_) => self.begin_stream(Route::S5bProxy, Some(name), out),
            Err(e) => {
                let reason = format!("the proxy refused to activate the stream: {}", answered_with(&proxy, &e));
                self.s5b_failed(reason, now, out)
            }
        }
    }

    /// The SOCKS5 bytestream is open: the data phase begins.
    fn begin_stream(&mut self, route: Route, streamhost: Option<String>, out: &mut Vec<SenderAction>) {
        out.push(SenderAction::Started { route, streamhost, offset: self.offset, length: self.length });
        out.push(SenderAction::StreamSocket { offset: self.offset, length: self.length });
        self.state = State::Streaming { route };
    }

    /// SOCKS5 could not be set up: in-band if allowed, else the end.
    fn s5b_failed(&mut self, reason: String, now: Instant, out: &mut Vec<SenderAction>) {
        if self.cfg.methods.contains(&Method::Ibb) {
            out.push(SenderAction::FellBack { reason });
            self.start_ibb(now, out);
        } else {
            self.fail(FailReason::Network, reason, true, out);
        }
    }

    // --- In-band ------------------------------------------------------------------

    fn start_ibb(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
        let largest =
            if self.cfg.skiff_peer { self.cfg.ibb_block_size } else { self.cfg.ibb_block_size.min(INTEROP_BLOCK_SIZE) };
        let sizes = STEP_DOWN.iter().copied().filter(|&s| s <= largest.max(1024)).collect();
        out.push(SenderAction::Started {
            route: Route::Ibb,
            streamhost: None,
            offset: self.offset,
            length: self.length,
        });
        self.ibb_started = now;
        self.open_next(sizes, now, out);
    }

    /// Opens the in-band stream with the largest size left in `sizes`.
    fn open_next(&mut self, mut sizes: VecDeque<u16>, now: Instant, out: &mut Vec<SenderAction>) {
        let Some(block_size) = sizes.pop_front() else {
            let error = "the receiver accepts no in-band block size Skiff can use";
            return self.fail(FailReason::Unsupported, error, false, out);
        };
        let open = Open { sid: self.sid.clone(), block_size, stanza: StanzaKind::Iq };
        let id = self.send_set(self.peer.clone(), Element::from(&open), out);
        self.state = State::Opening { id, deadline: now.saturating_add(self.cfg.iq_timeout), block_size, rest: sizes };
    }

    fn on_open_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        now: Instant,
        out: &mut Vec<SenderAction>,
    ) {
        let State::Opening { block_size, rest, .. } = &mut self.state else { return };
        let block_size = *block_size;
        match answer {
            Ok(_) => {
                let mut seq = SeqCounter::new();
                for _ in 0..self.seq_start {
                    seq.next();
                }
                self.state = State::Sending(Box::new(IbbSend {
                    block_size,
                    seq,
                    in_flight: VecDeque::new(),
                    reading: None,
                    left: self.length,
                    acked: self.offset,
                }));
                self.pump(now, out);
            }
            Err(e) if e.condition == Condition::ResourceConstraint => {
                let rest = std::mem::take(rest);
                self.open_next(rest, now, out);
            }
            Err(e) => {
                let error = format!("the receiver refused the in-band stream: {}", answered_with(&self.peer, &e));
                self.fail(FailReason::Refused, error, true, out);
            }
        }
    }

    /// Asks for the next block when the window has room; closes when all is acked.
    fn pump(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
        let window = self.cfg.ibb_window.max(1);
        let State::Sending(ibb) = &mut self.state else { return };
        if ibb.reading.is_some() {
            return;
        }
        // The throttling notice: judged once, at the first step after SLOW_AFTER
        // (also while the last blocks drain).
        let elapsed = now.saturating_sub(self.ibb_started);
        if !self.slow_judged && elapsed >= SLOW_AFTER {
            self.slow_judged = true;
            let rate = ((ibb.acked - self.offset) as f64 / elapsed.as_secs_f64()) as u64;
            if rate < SLOW_RATE {
                out.push(SenderAction::Slow { bytes_per_sec: rate });
            }
        }
        if ibb.left > 0 {
            if ibb.in_flight.iter().filter(|b| !b.acked).count() >= window {
                return;
            }
            let len = usize::try_from(ibb.left.min(u64::from(ibb.block_size))).unwrap_or(usize::from(ibb.block_size));
            ibb.reading = Some(len);
            out.push(SenderAction::ReadBlock { len });
        } else if ibb.in_flight.is_empty() {
            let (acked, block_size) = (ibb.acked, ibb.block_size);
            let close = Close { sid: self.sid.clone() };
            let id = self.send_set(self.peer.clone(), Element::from(&close), out);
            self.state = State::Closing { id, deadline: now.saturating_add(self.cfg.iq_timeout), acked, block_size };
        }
    }

    fn on_block(&mut self, bytes: Vec<u8>, now: Instant, out: &mut Vec<SenderAction>) {
        let State::Sending(ibb) = &self.state else { return };
        let Some(want) = ibb.reading else { return };
        if bytes.is_empty() {
            let error = format!("{} got shorter while it was being sent", self.file.name);
            return self.abort(FailReason::Source, error, false, out);
        }
        if bytes.len() > want {
            let error = format!("reading {} returned {} bytes where {want} were asked", self.file.name, bytes.len());
            return self.abort(FailReason::Source, error, false, out);
        }
        let id = self.new_id();
        let deadline = now.saturating_add(self.cfg.iq_timeout);
        let State::Sending(ibb) = &mut self.state else { return };
        let len = bytes.len() as u64;
        let data = Data { sid: self.sid.clone(), seq: ibb.seq.next(), data: bytes };
        out.push(SenderAction::SendIq(Iq::set(id.clone(), Some(self.peer.clone()), Element::from(&data))));
        ibb.in_flight.push_back(Block { id, len, deadline, acked: false });
        ibb.reading = None;
        ibb.left -= len;
        self.pump(now, out);
    }

    fn on_data_answer(
        &mut self,
        pos: usize,
        answer: Result<Option<Element>, StanzaError>,
        now: Instant,
        out: &mut Vec<SenderAction>,
    ) {
        let State::Sending(ibb) = &mut self.state else { return };
        match answer {
            Ok(_) => {
                if let Some(b) = ibb.in_flight.get_mut(pos) {
                    b.acked = true;
                }
                let before = ibb.acked;
                while ibb.in_flight.front().is_some_and(|b| b.acked) {
                    if let Some(b) = ibb.in_flight.pop_front() {
                        ibb.acked += b.len;
                    }
                }
                if ibb.acked > before {
                    out.push(SenderAction::Progress { acked: ibb.acked });
                }
                self.pump(now, out);
            }
            Err(e) => {
                let error = broke(ibb.acked, &answered_with(&self.peer, &e));
                self.fail(FailReason::Network, error, true, out);
            }
        }
    }

    fn on_close_answer(&mut self, answer: Result<Option<Element>, StanzaError>, out: &mut Vec<SenderAction>) {
        let State::Closing { acked, .. } = self.state else { return };
        match answer {
            Ok(_) => self.data_sent(Route::Ibb, out),
            Err(e) => {
                let error = broke(acked, &answered_with(&self.peer, &e));
                self.fail(FailReason::Network, error, true, out);
            }
        }
    }

    // --- The checksum after the data ----------------------------------------------

    /// Every byte is out: done, or first the checksum the offer announced.
    fn data_sent(&mut self, route: Route, out: &mut Vec<SenderAction>) {
        if self.file.checksum_follows {
            self.state = State::Checksumming { route };
            out.push(SenderAction::ComputeChecksum);
        } else {
            self.state = State::Done;
            out.push(SenderAction::Done { route, bytes: self.length, verified: false });
        }
    }

    fn on_checksum(&mut self, sha256: Option<String>, now: Instant, out: &mut Vec<SenderAction>) {
        let State::Checksumming { route } = self.state else { return };
        let Some(sha256) = sha256.filter(|h| crate::hashes::Hash::sha256_from_hex(h).is_some()) else {
            // Nothing to send: the receiver keeps the file as "not verified".
            self.state = State::Done;
            out.push(SenderAction::Done { route, bytes: self.length, verified: false });
            return;
        };
        let payload = Element::from(&crate::hashes::Checksum { sid: self.sid.clone(), sha256 });
        let id = self.send_set(self.peer.clone(), payload, out);
        self.state = State::ChecksumSent { id, deadline: now.saturating_add(CHECKSUM_ANSWER_TIMEOUT), route };
    }

    fn on_checksum_answer(&mut self, answer: Result<Option<Element>, StanzaError>, out: &mut Vec<SenderAction>) {
        let State::ChecksumSent { route, .. } = self.state else { return };
        match answer {
            Ok(_) => {
                self.state = State::Done;
                out.push(SenderAction::Done { route, bytes: self.length, verified: true });
            }
            // The receiver's copy differs from the file: it was damaged on the way.
            Err(e) if e.condition == Condition::NotAcceptable => {
                let error =
                    format!("{} received the file damaged (its SHA-256 does not match); send it again", self.peer);
                self.fail(FailReason::Integrity, error, false, out);
            }
            Err(e) => {
                // Any other answer: the receiver could not check; not verified.
                let _ = e;
                self.state = State::Done;
                out.push(SenderAction::Done { route, bytes: self.length, verified: false });
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;
    use crate::si::Range;

    const SID: &str = "s1";

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn me() -> Jid {
        jid("alice@example.com/skiff")
    }

    fn peer() -> Jid {
        jid("bob@example.com/psi")
    }

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    fn file(size: u64) -> FileInfo {
        FileInfo { range: true, ..FileInfo::new("a.bin", size) }
    }

    fn sender(cfg: SenderConfig, size: u64) -> Sender {
        Sender::new(cfg, me(), peer(), SID.into(), file(size), Duration::ZERO)
    }

    fn sent(actions: &[SenderAction]) -> Vec<&Iq> {
        actions
            .iter()
            .filter_map(|a| match a {
                SenderAction::SendIq(iq) => Some(iq),
                _ => None,
            })
            .collect()
    }

    fn only_iq(actions: &[SenderAction]) -> Iq {
        let iqs = sent(actions);
        assert_eq!(iqs.len(), 1, "{actions:?}");
        iqs[0].clone()
    }

    fn result(req: &Iq, payload: Option<Element>) -> SenderInput {
        let mut r = req.result_for(payload);
        r.from = req.to.clone();
        r.to = Some(me());
        SenderInput::Iq(r)
    }

    fn error(req: &Iq, e: StanzaError) -> SenderInput {
        let mut r = req.error_for(e);
        r.from = req.to.clone();
        r.to = Some(me());
        SenderInput::Iq(r)
    }

    fn accept(method: &str, range: Option<Range>) -> Element {
        Element::from(&SiAccept { method: method.into(), range })
    }

    const T0: Duration = Duration::ZERO;

    /// Started and accepted with `method`; returns the machine and the actions.
    fn accepted(cfg: SenderConfig, size: u64, method: &str, range: Option<Range>) -> (Sender, Vec<SenderAction>) {
        let mut s = sender(cfg, size);
        let offer = only_iq(&s.handle(SenderInput::Start, T0));
        let out = s.handle(result(&offer, Some(accept(method, range))), T0);
        (s, out)
    }

    #[test]
    fn offer_is_what_the_engine_sends() {
        let mut s = sender(SenderConfig::default(), 1022);
        let iq = only_iq(&s.handle(SenderInput::Start, T0));
        assert_eq!(iq.id, "s1-1");
        assert_eq!(iq.to, Some(peer()));
        let IqKind::Set(p) = &iq.kind else { panic!() };
        assert_eq!(
            p,
            &el("<si xmlns='http://jabber.org/protocol/si' id='s1' mime-type='application/octet-stream' \
                 profile='http://jabber.org/protocol/si/profile/file-transfer'>\
                 <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a.bin' size='1022'><range/></file>\
                 <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
                 <field var='stream-method' type='list-single'>\
                 <option><value>http://jabber.org/protocol/bytestreams</value></option>\
                 <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si>")
        );
        assert_eq!(s.state(), SenderState::Offered);
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(300)));
        // A second Start does nothing.
        assert!(s.handle(SenderInput::Start, T0).is_empty());
    }

    #[test]
    fn accept_with_bytestreams_gathers_streamhosts() {
        let (s, out) = accepted(SenderConfig::default(), 10, ns::BYTESTREAMS, None);
        let dst = dst_addr(SID, "alice@example.com/skiff", "bob@example.com/psi");
        assert_eq!(out, [SenderAction::GatherStreamhosts { dst_addr: dst }]);
        assert_eq!(s.state(), SenderState::Negotiating);
        assert_eq!(s.poll_timeout(), None, "gathering is the driver's to time");
    }

    #[test]
    fn range_is_honoured_and_checked() {
        let (s, out) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 40, length: None }));
        assert_eq!(out[0], SenderAction::Started { route: Route::Ibb, streamhost: None, offset: 40, length: 60 });
        assert_eq!(s.range(), (40, 60));
        let (s, _) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 40, length: Some(10) }));
        assert_eq!(s.range(), (40, 10));
        // A length past the end is cut to the end.
        let (s, _) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 90, length: Some(50) }));
        assert_eq!(s.range(), (90, 10));
        let (s, out) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 101, length: None }));
        assert_eq!(
            out,
            [SenderAction::Failed {
                reason: FailReason::Protocol,
                error: "the receiver asked for data from byte 101 of a 100 byte file".into(),
                resumable: false
            }]
        );
        assert_eq!(s.state(), SenderState::Failed);
    }

    #[test]
    fn method_not_offered_fails() {
        let cfg = SenderConfig { methods: vec![Method::Ibb], ..SenderConfig::default() };
        let (_, out) = accepted(cfg, 1, ns::BYTESTREAMS, None);
        assert_eq!(
            out,
            [SenderAction::Failed {
                reason: FailReason::Protocol,
                error: "the receiver chose a method that was not offered: http://jabber.org/protocol/bytestreams"
                    .into(),
                resumable: false
            }]
        );
    }

    #[test]
    fn bad_accepts() {
        let mut s = sender(SenderConfig::default(), 1);
        let offer = only_iq(&s.handle(SenderInput::Start, T0));
        let out = s.handle(result(&offer, None), T0);
        assert_eq!(
            out,
            [SenderAction::Failed {
                reason: FailReason::Protocol,
                error: "bob@example.com/psi accepted without choosing a method".into(),
                resumable: false
            }]
        );
        let mut s = sender(SenderConfig::default(), 1);
        let offer = only_iq(&s.handle(SenderInput::Start, T0));
        let out = s.handle(result(&offer, Some(el("<si xmlns='http://jabber.org/protocol/si'/>"))), T0);
        assert_eq!(
            out,
            [SenderAction::Failed {
                reason: FailReason::Protocol,
                error: "bob@example.com/psi answered the offer in a way Skiff cannot read: \
                        <si/> lacks the required child <feature/>"
                    .into(),
                resumable: false
            }]
        );
    }

    #[test]
    fn refusals() {
        let refuse = |e: StanzaError| {
            let mut s = sender(SenderConfig::default(), 1);
            let offer = only_iq(&s.handle(SenderInput::Start, T0));
            s.handle(error(&offer, e), T0)
        };
        assert_eq!(
            refuse(StanzaError::new(Condition::Forbidden).with_text("Offer declined")),
            [SenderAction::Rejected { reason: "declined: Offer declined".into() }]
        );
        assert_eq!(
            refuse(StanzaError::new(Condition::NotAcceptable)),
            [SenderAction::Rejected { reason: "declined".into() }]
        );
        assert_eq!(
            refuse(StanzaError::new(Condition::NotAllowed)),
            [SenderAction::Rejected { reason: "declined".into() }]
        );
        assert_eq!(
            refuse(StanzaError::new(Condition::BadRequest).with_app(crate::si::no_valid_streams())),
            [SenderAction::Failed {
                reason: FailReason::Unsupported,
                error: "bob@example.com/psi supports none of the transfer methods offered".into(),
                resumable: false
            }]
        );
        assert_eq!(
            refuse(StanzaError::new(Condition::ServiceUnavailable)),
            [SenderAction::Failed {
                reason: FailReason::Refused,
                error: "bob@example.com/psi refused the offer: service-unavailable".into(),
                resumable: false
            }]
        );
    }

    #[test]
    fn offer_times_out() {
        let cfg = SenderConfig { offer_timeout: Duration::from_secs(10), ..SenderConfig::default() };
        let mut s = sender(cfg, 1);
        s.handle(SenderInput::Start, T0);
        assert!(s.handle(SenderInput::Tick, Duration::from_secs(9)).is_empty());
        assert_eq!(
            s.handle(SenderInput::Tick, Duration::from_secs(10)),
            [SenderAction::Failed {
                reason: FailReason::Timeout,
                error: "the offer got no answer: no answer from bob@example.com/psi within 10 seconds".into(),
                resumable: false
            }]
        );
        assert!(s.is_finished());
        assert!(s.handle(SenderInput::Tick, Duration::from_secs(11)).is_empty());
    }

    #[test]
    fn unknown_ids_and_strangers_are_ignored() {
        let mut s = sender(SenderConfig::default(), 1);
        let offer = only_iq(&s.handle(SenderInput::Start, T0));
        let mut other = offer.result_for(Some(accept(ns::IBB, None)));
        other.id = "s1-99".into();
        other.from = Some(peer());
        assert!(s.handle(SenderInput::Iq(other), T0).is_empty());
        // The right id from someone else.
        let mut spoof = offer.result_for(Some(accept(ns::IBB, None)));
        spoof.from = Some(jid("mallory@example.com/x"));
        assert!(s.handle(SenderInput::Iq(spoof), T0).is_empty());
        // A request is not an answer.
        let req = Iq { from: Some(peer()), ..Iq::set("s1-1", Some(me()), accept(ns::IBB, None)) };
        assert!(s.handle(SenderInput::Iq(req), T0).is_empty());
        assert_eq!(s.state(), SenderState::Offered);
    }

    fn streamhosts() -> Vec<StreamHost> {
        vec![
            StreamHost { jid: "alice@example.com/skiff".into(), host: "127.0.0.1".into(), port: 5086 },
            StreamHost { jid: "proxy.example.com".into(), host: "10.0.0.1".into(), port: 7777 },
        ]
    }

    /// Accepted over bytestreams, streamhosts sent: the machine and the query IQ.
    fn streamhosts_sent(cfg: SenderConfig) -> (Sender, Iq) {
        let (mut s, _) = accepted(cfg, 10, ns::BYTESTREAMS, None);
        let q = only_iq(&s.handle(SenderInput::Streamhosts(streamhosts()), T0));
        (s, q)
    }

    #[test]
    fn streamhosts_query() {
        let (s, q) = streamhosts_sent(SenderConfig::default());
        let IqKind::Set(p) = &q.kind else { panic!() };
        assert_eq!(
            p,
            &el("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1' mode='tcp'>\
                 <streamhost jid='alice@example.com/skiff' host='127.0.0.1' port='5086'/>\
                 <streamhost jid='proxy.example.com' host='10.0.0.1' port='7777'/></query>")
        );
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn the_checksum_follows_the_data_when_announced() {
        const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let streaming = || {
            let file = FileInfo { checksum_follows: true, ..file(10) };
            let mut s = Sender::new(SenderConfig::default(), me(), peer(), SID.into(), file, Duration::ZERO);
            let offer = only_iq(&s.handle(SenderInput::Start, T0));
            let IqKind::Set(p) = &offer.kind else { panic!() };
            assert!(p.to_string().contains("<checksum-follows xmlns='urn:x-skiff:si-checksum:0' algo='sha-256'/>"));
            s.handle(result(&offer, Some(accept(ns::BYTESTREAMS, None))), T0);
            let q = only_iq(&s.handle(SenderInput::Streamhosts(streamhosts()), T0));
            let used = el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='alice@example.com/skiff'/></query>");
            s.handle(result(&q, Some(used)), T0);
            s.handle(SenderInput::DirectConnected, T0);
            s
        };
        // Data out, checksum computed and sent; the receiver's result: verified.
        let mut s = streaming();
        assert_eq!(s.handle(SenderInput::SocketDone, T0), [SenderAction::ComputeChecksum]);
        let c = only_iq(&s.handle(SenderInput::Checksum(Some(SHA.into())), T0));
        let IqKind::Set(p) = &c.kind else { panic!() };
        assert_eq!(crate::hashes::Checksum::try_from(p).unwrap().sha256, SHA);
        assert_eq!(s.poll_timeout(), Some(CHECKSUM_ANSWER_TIMEOUT));
        assert_eq!(
            s.handle(result(&c, None), T0),
            [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: true }]
        );
        // The receiver's copy differs: failed, not resumable (it was removed).
        let mut s = streaming();
        s.handle(SenderInput::SocketDone, T0);
        let c = only_iq(&s.handle(SenderInput::Checksum(Some(SHA.into())), T0));
        let out = s.handle(error(&c, StanzaError::new(Condition::NotAcceptable)), T0);
        assert!(
            matches!(&out[..], [SenderAction::Failed { reason: FailReason::Integrity, error, resumable: false }] if error.contains("damaged")),
            "{out:?}"
        );
        // No answer, or no checksum to send: done, not verified.
        let mut s = streaming();
        s.handle(SenderInput::SocketDone, T0);
        only_iq(&s.handle(SenderInput::Checksum(Some(SHA.into())), T0));
        let out = s.handle(SenderInput::Tick, CHECKSUM_ANSWER_TIMEOUT);
        assert_eq!(out, [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: false }]);
        let mut s = streaming();
        s.handle(SenderInput::SocketDone, T0);
        let out = s.handle(SenderInput::Checksum(Some("not hex".into())), T0);
        assert_eq!(out, [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: false }]);
    }

    #[test]
    fn direct_route() {
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        let used = el("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>\
                       <streamhost-used jid='alice@example.com/skiff'/></query>");
        assert_eq!(s.handle(result(&q, Some(used)), T0), [SenderAction::AwaitDirect]);
        assert_eq!(
            s.handle(SenderInput::DirectConnected, T0),
            [
                SenderAction::Started {
                    route: Route::S5bDirect,
                    streamhost: Some("alice@example.com/skiff".into()),
                    offset: 0,
                    length: 10
                },
                SenderAction::StreamSocket { offset: 0, length: 10 },
            ]
        );
        assert_eq!(s.state(), SenderState::Sending(Route::S5bDirect));
        assert_eq!(
            s.handle(SenderInput::SocketDone, T0),
            [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: false }]
        );
    }

    #[test]
    fn proxy_route() {
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        let used = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='proxy.example.com'/></query>",
        );
        let dst = dst_addr(SID, "alice@example.com/skiff", "bob@example.com/psi");
        assert_eq!(
            s.handle(result(&q, Some(used)), T0),
            [SenderAction::ConnectProxy { host: "10.0.0.1".into(), port: 7777, dst_addr: dst }]
        );
        let act = only_iq(&s.handle(SenderInput::ProxyConnected, T0));
        assert_eq!(act.to, Some(jid("proxy.example.com")));
        let IqKind::Set(p) = &act.kind else { panic!() };
        assert_eq!(
            p,
            &el("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><activate>bob@example.com/psi</activate></query>")
        );
        // The activation answer must come from the proxy.
        let mut wrong = act.result_for(None);
        wrong.from = Some(peer());
        assert!(s.handle(SenderInput::Iq(wrong), T0).is_empty());
        let out = s.handle(result(&act, None), T0);
        assert_eq!(
            out[0],
            SenderAction::Started {
                route: Route::S5bProxy,
                streamhost: Some("proxy.example.com".into()),
                offset: 0,
                length: 10
            }
        );
        assert_eq!(
            s.handle(SenderInput::SocketFailed("the connection broke after 5 bytes: reset".into()), T0),
            [SenderAction::Failed {
                reason: FailReason::Network,
                error: "the connection broke after 5 bytes: reset".into(),
                resumable: true
            }]
        );
    }

    fn fell_back(out: &[SenderAction]) -> &str {
        match out.first() {
            Some(SenderAction::FellBack { reason }) => reason,
            other => panic!("no fallback: {other:?}"),
        }
    }

    #[test]
    fn fallbacks_to_ibb() {
        // item-not-found from the receiver.
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        let out = s.handle(
            error(&q, StanzaError::new(Condition::ItemNotFound).with_text("could not connect to any streamhost")),
            T0,
        );
        // A proxy was among them: found again first; the same one again is no retry.
        assert!(matches!(&out[..], [SenderAction::RefreshProxies { .. }]), "{out:?}");
        let out = s.handle(SenderInput::Streamhosts(streamhosts()), T0);
        assert_eq!(
            fell_back(&out),
            "the receiver could not use any streamhost: bob@example.com/psi answered with an error: \
             item-not-found: could not connect to any streamhost"
        );
        assert!(matches!(out[1], SenderAction::Started { route: Route::Ibb, .. }));
        assert_eq!(s.state(), SenderState::Opening);
        // No answer within 60 s.
        let (mut s, _) = streamhosts_sent(SenderConfig::default());
        let out = s.handle(SenderInput::Tick, Duration::from_secs(60));
        assert_eq!(
            fell_back(&out),
            "the receiver could not use any streamhost: no answer from bob@example.com/psi within 60 seconds"
        );
        // Our connection never arrived.
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        let used = el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='alice@example.com/skiff'/></query>");
        s.handle(result(&q, Some(used)), T0);
        let out = s.handle(SenderInput::DirectMissing, T0);
        assert_eq!(fell_back(&out), "the receiver says it used our streamhost, but its connection never arrived");
        // A streamhost we never offered.
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        let used = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='evil.example.com'/></query>",
        );
        let out = s.handle(result(&q, Some(used)), T0);
        assert_eq!(fell_back(&out), "the receiver used a streamhost we did not offer (evil.example.com)");
        // The proxy fails, or refuses to activate.
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        let used = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='proxy.example.com'/></query>",
        );
        s.handle(result(&q, Some(used.clone())), T0);
        let out = s.handle(SenderInput::ProxyFailed("cannot connect to 10.0.0.1:7777: refused".into()), T0);
        assert_eq!(fell_back(&out), "cannot connect to 10.0.0.1:7777: refused");
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        s.handle(result(&q, Some(used)), T0);
        let act = only_iq(&s.handle(SenderInput::ProxyConnected, T0));
        let out = s.handle(error(&act, StanzaError::new(Condition::NotAllowed)), T0);
        assert_eq!(
            fell_back(&out),
            "the proxy refused to activate the stream: proxy.example.com answered with an error: not-allowed"
        );
        // No streamhost at all.
        let (mut s, _) = accepted(SenderConfig::default(), 10, ns::BYTESTREAMS, None);
        let out = s.handle(SenderInput::Streamhosts(Vec::new()), T0);
        assert_eq!(fell_back(&out), "no streamhost to offer (no own address allowed and no proxy)");
    }

    #[test]
    fn a_moved_proxy_is_found_again_and_offered_once_more() {
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        let out = s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
        let [SenderAction::RefreshProxies { dst_addr }] = &out[..] else { panic!("{out:?}") };
        assert_eq!(dst_addr, &dst_addr_of_s1());
        // The proxy's new port: the whole list goes out again, same stream.
        let mut moved = streamhosts();
        moved[1].port = 7778;
        let q2 = only_iq(&s.handle(SenderInput::Streamhosts(moved), T0));
        let IqKind::Set(p) = &q2.kind else { panic!() };
        assert!(p.attr("sid") == Some("s1") && p.elements().nth(1).unwrap().attr("port") == Some("7778"), "{p:?}");
        assert_ne!(q2.id, q.id);
        // This time the receiver used it.
        let used = el(
            "<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='proxy.example.com'/></query>",
        );
        let out = s.handle(result(&q2, Some(used)), T0);
        assert!(matches!(&out[..], [SenderAction::ConnectProxy { port: 7778, .. }]), "{out:?}");
        // A second failure is not retried again.
        let (mut s, q) = streamhosts_sent(SenderConfig::default());
        s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
        let mut moved = streamhosts();
        moved[1].host = "10.0.0.2".into();
        let q2 = only_iq(&s.handle(SenderInput::Streamhosts(moved), T0));
        let out = s.handle(error(&q2, StanzaError::new(Condition::ItemNotFound)), T0);
        assert!(fell_back(&out).contains("could not use any streamhost"), "{out:?}");
        // Without a proxy among them there is nothing to find again.
        let (mut s, _) = accepted(SenderConfig::default(), 10, ns::BYTESTREAMS, None);
        let q = only_iq(&s.handle(SenderInput::Streamhosts(streamhosts()[..1].to_vec()), T0));
        let out = s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
        fell_back(&out);
    }

    fn dst_addr_of_s1() -> String {
        dst_addr("s1", "alice@example.com/skiff", "bob@example.com/psi")
    }

    #[test]
    fn no_fallback_without_ibb() {
        let cfg = SenderConfig { methods: vec![Method::S5b], ..SenderConfig::default() };
        let (mut s, q) = streamhosts_sent(cfg);
        let out = s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
        assert!(matches!(&out[..], [SenderAction::RefreshProxies { .. }]), "{out:?}");
        // Nothing found this time.
        let out = s.handle(SenderInput::Streamhosts(streamhosts()[..1].to_vec()), T0);
        assert_eq!(
            out,
            [SenderAction::Failed {
                reason: FailReason::Network,
                error: "the receiver could not use any streamhost: bob@example.com/psi answered with an error: \
                        item-not-found"
                    .into(),
                resumable: true
            }]
        );
    }

    fn open_of(iq: &Iq) -> Open {
        let IqKind::Set(p) = &iq.kind else { panic!("{iq:?}") };
        Open::try_from(p).unwrap()
    }

    #[test]
    fn block_size_by_peer_and_step_down() {
        // Another client: the XEP's 4096.
        let (_, out) = accepted(SenderConfig::default(), 10, ns::IBB, None);
        assert_eq!(open_of(&only_iq(&out)).block_size, 4096);
        // Skiff: the configured largest, stepping down on resource-constraint.
        let cfg = SenderConfig { skiff_peer: true, ..SenderConfig::default() };
        let (mut s, out) = accepted(cfg, 10, ns::IBB, None);
        let mut open = only_iq(&out);
        let mut tried = vec![open_of(&open).block_size];
        for _ in 0..3 {
            let out = s.handle(error(&open, StanzaError::new(Condition::ResourceConstraint)), T0);
            open = only_iq(&out);
            tried.push(open_of(&open).block_size);
        }
        assert_eq!(tried, [65535, 32768, 16384, 8192]);
        assert_eq!(s.handle(result(&open, None), T0), [SenderAction::ReadBlock { len: 10 }]);
        assert_eq!(s.block_size(), Some(8192));
        // A size between steps starts at the next step below it.
        let cfg = SenderConfig { skiff_peer: true, ibb_block_size: 5000, ..SenderConfig::default() };
        let (_, out) = accepted(cfg, 10, ns::IBB, None);
        assert_eq!(open_of(&only_iq(&out)).block_size, 4096);
    }

    #[test]
    fn step_down_runs_out() {
        let cfg = SenderConfig { ibb_block_size: 1024, ..SenderConfig::default() };
        let (mut s, out) = accepted(cfg, 10, ns::IBB, None);
        let open = only_iq(&out);
        assert_eq!(
            s.handle(error(&open, StanzaError::new(Condition::ResourceConstraint)), T0),
            [SenderAction::Failed {
                reason: FailReason::Unsupported,
                error: "the receiver accepts no in-band block size Skiff can use".into(),
                resumable: false
            }]
        );
    }

    #[test]
    fn open_refused_or_unanswered() {
        let (mut s, out) = accepted(SenderConfig::default(), 10, ns::IBB, None);
        let open = only_iq(&out);
        assert_eq!(
            s.handle(error(&open, StanzaError::new(Condition::NotAcceptable)), T0),
            [SenderAction::Failed {
                reason: FailReason::Refused,
                error: "the receiver refused the in-band stream: bob@example.com/psi answered with an error: \
                        not-acceptable"
                    .into(),
                resumable: true
            }]
        );
        let (mut s, _) = accepted(SenderConfig::default(), 10, ns::IBB, None);
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(
            s.handle(SenderInput::Tick, Duration::from_secs(30)),
            [SenderAction::Failed {
                reason: FailReason::Timeout,
                error: "the receiver refused the in-band stream: no answer from bob@example.com/psi within 30 seconds"
                    .into(),
                resumable: true
            }]
        );
    }

    /// An in-band stream open with 1024-byte blocks (the smallest step).
    fn ibb_open(size: u64, window: usize) -> Sender {
        let cfg = SenderConfig { ibb_block_size: 1024, ibb_window: window, ..SenderConfig::default() };
        let (mut s, out) = accepted(cfg, size, ns::IBB, None);
        let open = only_iq(&out);
        s.handle(result(&open, None), T0);
        s
    }

    fn data_of(iq: &Iq) -> Data {
        let IqKind::Set(p) = &iq.kind else { panic!("{iq:?}") };
        Data::try_from(p).unwrap()
    }

    #[test]
    fn window_of_blocks() {
        let mut s = ibb_open(5000, 2);
        let d0 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
        let out = s.handle(SenderInput::Block(vec![1; 1024]), T0);
        let d1 = only_iq(&out);
        // The window is full: no read until an ack.
        assert!(!out.iter().any(|a| matches!(a, SenderAction::ReadBlock { .. })), "{out:?}");
        assert_eq!((data_of(&d0).seq, data_of(&d1).seq), (0, 1));
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(30)));
        // The second is acked first: no progress yet, but room for one read.
        assert_eq!(s.handle(result(&d1, None), T0), [SenderAction::ReadBlock { len: 1024 }]);
        // A duplicate answer is ignored.
        assert!(s.handle(result(&d1, None), T0).is_empty());
        assert_eq!(s.handle(result(&d0, None), T0), [SenderAction::Progress { acked: 2048 }]);
        // A short read is fine; the next read asks for what is left.
        let out = s.handle(SenderInput::Block(vec![2; 1000]), T0);
        assert_eq!(out[1], SenderAction::ReadBlock { len: 1024 });
    }

    #[test]
    fn last_ack_closes_then_done() {
        let mut s = ibb_open(1500, 4);
        let d0 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
        let out = s.handle(SenderInput::Block(vec![0; 476]), T0);
        let d1 = only_iq(&out);
        assert_eq!(out.len(), 1, "nothing left to read");
        s.handle(result(&d0, None), T0);
        let out = s.handle(result(&d1, None), T0);
        assert_eq!(out[0], SenderAction::Progress { acked: 1500 });
        let close = only_iq(&out);
        let IqKind::Set(p) = &close.kind else { panic!() };
        assert_eq!(p, &el("<close xmlns='http://jabber.org/protocol/ibb' sid='s1'/>"));
        assert_eq!(s.state(), SenderState::Closing);
        assert_eq!(
            s.handle(result(&close, None), T0),
            [SenderAction::Done { route: Route::Ibb, bytes: 1500, verified: false }]
        );
    }

    #[test]
    fn empty_file_over_ibb_closes_at_once() {
        let cfg = SenderConfig::default();
        let (mut s, out) = accepted(cfg, 0, ns::IBB, None);
        let open = only_iq(&out);
        let close = only_iq(&s.handle(result(&open, None), T0));
        assert!(close.request_payload().unwrap().is("close", ns::IBB));
    }

    #[test]
    fn data_error_and_timeout_break_the_stream() {
        let mut s = ibb_open(5000, 4);
        let d0 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
        let d1 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
        s.handle(result(&d0, None), T0);
        assert_eq!(
            s.handle(error(&d1, StanzaError::new(Condition::ItemNotFound).with_text("no such stream")), T0),
            [SenderAction::Failed {
                reason: FailReason::Network,
                error: "the in-band stream broke after 1024 bytes: bob@example.com/psi answered with an error: \
                        item-not-found: no such stream"
                    .into(),
                resumable: true
            }]
        );
        let mut s = ibb_open(5000, 4);
        s.handle(SenderInput::Block(vec![0; 1024]), Duration::from_secs(1));
        assert_eq!(s.poll_timeout(), Some(Duration::from_secs(31)));
        assert_eq!(
            s.handle(SenderInput::Tick, Duration::from_secs(31)),
            [SenderAction::Failed {
                reason: FailReason::Timeout,
                error: "the in-band stream broke after 0 bytes: no answer from bob@example.com/psi within 30 seconds"
                    .into(),
                resumable: true
            }]
        );
    }

    #[test]
    fn file_shorter_than_announced() {
        // The in-band stream is closed on the way out.
        let closed_then = |out: Vec<SenderAction>| {
            assert!(only_iq(&out).request_payload().unwrap().is("close", ns::IBB));
            out[1].clone()
        };
        let mut s = ibb_open(5000, 4);
        assert_eq!(
            closed_then(s.handle(SenderInput::Block(Vec::new()), T0)),
            SenderAction::Failed {
                reason: FailReason::Source,
                error: "a.bin got shorter while it was being sent".into(),
                resumable: false
            }
        );
        let mut s = ibb_open(5000, 4);
        assert_eq!(
            closed_then(s.handle(SenderInput::Block(vec![0; 1025]), T0)),
            SenderAction::Failed {
                reason: FailReason::Source,
                error: "reading a.bin returned 1025 bytes where 1024 were asked".into(),
                resumable: false
            }
        );
        let mut s = ibb_open(5000, 4);
        assert_eq!(
            closed_then(s.handle(SenderInput::ReadFailed("cannot read a.bin: gone".into()), T0)),
            SenderAction::Failed {
                reason: FailReason::Source,
                error: "cannot read a.bin: gone".into(),
                resumable: false
            }
        );
    }

    #[test]
    fn slow_in_band_is_reported_once() {
        let mut s = ibb_open(100_000, 1);
        let mut now = T0;
        let mut told = Vec::new();
        for _ in 0..10 {
            let d = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), now));
            now += Duration::from_secs(1);
            for a in s.handle(result(&d, None), now) {
                if let SenderAction::Slow { bytes_per_sec } = a {
                    told.push(bytes_per_sec);
                }
            }
        }
        assert_eq!(told, [1024], "5 blocks of 1024 in 5 s, told once");
    }

    #[test]
    fn cancel() {
        let mut s = sender(SenderConfig::default(), 1);
        s.handle(SenderInput::Start, T0);
        assert_eq!(
            s.handle(SenderInput::Cancel, T0),
            [SenderAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }]
        );
        assert!(s.handle(SenderInput::Cancel, T0).is_empty());
        // In-band: the stream is closed on the way out.
        let mut s = ibb_open(5000, 4);
        s.handle(SenderInput::Block(vec![0; 1024]), T0);
        let out = s.handle(SenderInput::Cancel, T0);
        assert!(only_iq(&out).request_payload().unwrap().is("close", ns::IBB));
        assert_eq!(
            out[1],
            SenderAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn inputs_out_of_place_are_ignored() {
        let mut s = sender(SenderConfig::default(), 1);
        for input in [
            SenderInput::Streamhosts(streamhosts()),
            SenderInput::DirectConnected,
            SenderInput::DirectMissing,
            SenderInput::ProxyConnected,
            SenderInput::ProxyFailed("x".into()),
            SenderInput::SocketDone,
            SenderInput::SocketFailed("x".into()),
            SenderInput::ReadFailed("x".into()),
            SenderInput::Block(vec![1]),
            SenderInput::Tick,
        ] {
            assert!(s.handle(input, T0).is_empty());
        }
        assert_eq!(s.state(), SenderState::Idle);
    }
}
