//! One Jingle file-transfer session (XEP-0166 with XEP-0234, carried by XEP-0260
//! SOCKS5 or XEP-0261 in-band bytestreams), sans-IO, in the same handle/poll shape as
//! the SI [`crate::transfer::Sender`] and [`crate::transfer::Receiver`].
//!
//! Skiff's sessions are file offers: the initiator sends, the responder receives.
//! [`JingleSession::offer`] makes the sending side, [`JingleSession::from_initiate`]
//! the receiving side of an incoming `session-initiate`.
//!
//! ```text
//! sender (initiator)                          receiver (responder)
//! Start: GatherCandidates [Candidates]
//!   session-initiate (file, our candidates) ->  from_initiate: ack, Deciding
//!                                               Accept: GatherCandidates [Candidates]
//!                     <- session-accept (range, its candidates)
//!   both: ConnectCandidates (the other's) [CandidateConnected | CandidatesFailed]
//!         -> transport-info candidate-used / candidate-error
//!   both, once each side said: the nominated candidate (XEP-0260 §2.4)
//!     ours, direct: AwaitDirect; ours, proxy: ConnectProxy, activate, -> activated
//!     theirs, direct: the connected socket; theirs, proxy: wait for activated
//!   none: the initiator replaces the transport with in-band (transport-replace,
//!         transport-accept), then XEP-0047 as in SI
//!   StreamSocket / ReadBlock                    ReadSocket / Write
//!   ComputeChecksum -> session-info checksum    Verify [Verified] (hash of the offer
//!                                               or the checksum) -> session-terminate
//!   Done <- success                             success: Done; damaged: media-error
//! ```
//!
//! The byte-moving actions are the SI machines' (the engine's bytestream layer runs
//! both); the in-band phase runs an SI machine made for it ([`Sender::in_band`],
//! [`Receiver::in_band`]).

mod data;
mod requests;
mod s5b;
#[cfg(test)]
mod tests;
mod types;

use std::collections::HashMap;
use std::time::Duration;

use super::ft::{self, Description, FtVersion};
use super::{
    ibb as jibb, s5b as js5b, Action, Content, Creator, Jingle, JingleError, Reason, ReasonCondition, Senders,
};
use crate::bytestreams::StreamHost;
use crate::jid::Jid;
use crate::ns;
use crate::stanza::{Condition, Iq, IqKind, StanzaError};
use crate::transfer::{FailReason, Instant, Method, Receiver, Route, Sender};
use crate::xml::Element;

use requests::reply;
pub use types::{JingleAction, JingleConfig, JingleInput, JingleState, Role};

/// Which of our Jingle requests an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Initiate,
    Accept,
    /// Anything whose answer only needs to arrive (transport-info, session-info,
    /// session-terminate, transport-accept).
    Other,
    Replace,
    Activate,
}

#[derive(Debug)]
enum State {
    Idle,
    /// Our candidates are being gathered (then the offer, or the accept).
    Gathering,
    /// Sender: the offer waits for session-accept.
    Offered {
        deadline: Instant,
    },
    /// Receiver: the offer waits for the user.
    Deciding {
        deadline: Instant,
    },
    /// The SOCKS5 candidates are being exchanged and used ([`s5b::S5b`]).
    Negotiating {
        deadline: Instant,
    },
    /// Sender: transport-replace sent, waiting for transport-accept. Receiver:
    /// SOCKS5 failed, waiting for the sender's transport-replace.
    Replacing {
        deadline: Instant,
    },
    /// Bytes flow over the nominated socket.
    Streaming {
        route: Route,
    },
    /// Bytes flow in-band, through the SI machine made for it.
    SendingInBand(Box<Sender>),
    ReceivingInBand(Box<Receiver>),
    /// Sender: the data is out, its SHA-256 is being computed.
    Checksumming {
        route: Route,
    },
    /// Sender: the data is out; waiting for the receiver's session-terminate.
    AwaitingEnd {
        route: Route,
        deadline: Instant,
    },
    /// Receiver: every byte is in; waiting for the checksum.
    AwaitingChecksum {
        route: Route,
        deadline: Instant,
    },
    /// Receiver: Verify asked.
    Verifying {
        route: Route,
        sha256: bool,
    },
    Done,
    Rejected,
    Failed,
}

/// A refused `session-initiate`: the IQs to send (an error, or an ack and a
/// session-terminate) and why, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub replies: Vec<Iq>,
    pub why: String,
}

/// One Jingle file-transfer session.
#[derive(Debug)]
pub struct JingleSession {
    cfg: JingleConfig,
    role: Role,
    me: Jid,
    peer: Jid,
    sid: String,
    /// The file content: its name and (always) creator initiator.
    content: String,
    version: FtVersion,
    file: ft::File,
    size: u64,
    state: State,
    pending: HashMap<String, Pending>,
    next_id: u64,
    /// The part being sent: from `offset`, `length` bytes.
    offset: u64,
    length: u64,
    /// The SOCKS5 negotiation, while there is one.
    s5b: Option<s5b::S5b>,
    /// The in-band transport (sid, block size) once one is agreed or offered.
    ibb: Option<jibb::Transport>,
    /// The SHA-256 the receiver checks against (from the offer or a checksum), and
    /// whether the sender has given one.
    sha256: Option<String>,
}

/// The content name of Skiff's offers.
const CONTENT: &str = "file";

impl JingleSession {
    /// The sending side of a new session `sid` offering `file` (its size required)
    /// from `me` to `peer` (full JIDs). The offer carries `<range/>`: Skiff sends any
    /// part asked for.
    pub fn offer(cfg: JingleConfig, me: Jid, peer: Jid, sid: String, file: ft::File) -> JingleSession {
        let size = file.size.unwrap_or(0);
        let file = ft::File { range: Some(ft::Range::default()), size: Some(size), ..file };
        JingleSession::with(cfg, Role::Sender, (me, peer), sid, CONTENT.to_owned(), FtVersion::V5, file)
    }

    /// A session at its start, on `role`'s side of `file` (its size required).
    fn with(
        cfg: JingleConfig,
        role: Role,
        (me, peer): (Jid, Jid),
        sid: String,
        content: String,
        version: FtVersion,
        file: ft::File,
    ) -> JingleSession {
        let size = file.size.unwrap_or(0);
        JingleSession {
            cfg,
            role,
            me,
            peer,
            sid,
            content,
            version,
            sha256: file.sha256(),
            file,
            size,
            state: State::Idle,
            pending: HashMap::new(),
            next_id: 0,
            offset: 0,
            length: size,
            s5b: None,
            ibb: None,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn sid(&self) -> &str {
        &self.sid
    }

    pub fn peer(&self) -> &Jid {
        &self.peer
    }

    /// The file as the offer describes it.
    pub fn file(&self) -> &ft::File {
        &self.file
    }

    /// The file-transfer namespace version the peer speaks.
    pub fn version(&self) -> FtVersion {
        self.version
    }

    /// The part of the file that travels: `(offset, length)`.
    pub fn range(&self) -> (u64, u64) {
        (self.offset, self.length)
    }

    /// The in-band stream id, once an in-band transport is agreed (its requests are
    /// routed to this session too).
    pub fn ibb_sid(&self) -> Option<&str> {
        self.ibb.as_ref().map(|t| t.sid.as_str())
    }

    /// The SOCKS5 transport's stream id, while SOCKS5 is negotiated.
    pub fn s5b_sid(&self) -> Option<&str> {
        self.s5b.as_ref().map(|s| s.sid.as_str())
    }

    pub fn state(&self) -> JingleState {
        match &self.state {
            State::Idle => JingleState::Idle,
            State::Gathering if self.role == Role::Sender => JingleState::Idle,
            State::Gathering => JingleState::Negotiating,
            State::Offered { .. } => JingleState::Offered,
            State::Deciding { .. } => JingleState::Deciding,
            State::Negotiating { .. } | State::Replacing { .. } => JingleState::Negotiating,
            State::Streaming { route } => JingleState::Transferring(*route),
            State::SendingInBand(_) | State::ReceivingInBand(_) => JingleState::Transferring(Route::Ibb),
            State::Checksumming { .. }
            | State::AwaitingEnd { .. }
            | State::AwaitingChecksum { .. }
            | State::Verifying { .. } => JingleState::Finishing,
            State::Done => JingleState::Done,
            State::Rejected => JingleState::Rejected,
            State::Failed => JingleState::Failed,
        }
    }

    /// True once Done, Rejected or Failed was returned. A finished session still
    /// answers requests (unknown-session) until the driver drops it.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Done | State::Rejected | State::Failed)
    }

    /// When [`JingleInput::Tick`] is due, if nothing else happens first.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Offered { deadline }
            | State::Deciding { deadline }
            | State::Negotiating { deadline }
            | State::Replacing { deadline }
            | State::AwaitingEnd { deadline, .. }
            | State::AwaitingChecksum { deadline, .. } => Some(*deadline),
            State::SendingInBand(s) => s.poll_timeout(),
            State::ReceivingInBand(r) => r.poll_timeout(),
            _ => None,
        }
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, input: JingleInput, now: Instant) -> Vec<JingleAction> {
        let mut out = Vec::new();
        match input {
            JingleInput::Iq(iq) => self.on_iq(iq, now, &mut out),
            _ if self.is_finished() => {}
            JingleInput::Start => self.start(now, &mut out),
            JingleInput::Accept { offset } => self.accept(offset, now, &mut out),
            JingleInput::Reject => self.reject(&mut out),
            JingleInput::Candidates(hosts) => self.on_candidates(hosts, now, &mut out),
            JingleInput::CandidateConnected { index } => self.on_connected(Some(index), now, &mut out),
            JingleInput::CandidatesFailed(_) => self.on_connected(None, now, &mut out),
            JingleInput::DirectConnected => self.on_own_ready(true, now, &mut out),
            JingleInput::DirectMissing => self.on_own_ready(false, now, &mut out),
            JingleInput::ProxyConnected => self.on_proxy_connected(now, &mut out),
            JingleInput::ProxyFailed(e) => self.on_proxy_failed(e, now, &mut out),
            JingleInput::Cancel => self.cancel(now, &mut out),
            JingleInput::Tick => self.on_tick(now, &mut out),
            other => self.on_data_input(other, now, &mut out),
        }
        out
    }

    fn allows(&self, m: Method) -> bool {
        self.cfg.methods.contains(&m)
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-j{}", self.sid, self.next_id)
    }

    /// Sends a Jingle request to the peer; remembers what its answer is for.
    fn send_jingle(&mut self, j: Jingle, pending: Pending, out: &mut Vec<JingleAction>) {
        let id = self.new_id();
        self.pending.insert(id.clone(), pending);
        out.push(JingleAction::SendIq(Iq::set(id, Some(self.peer.clone()), Element::from(&j))));
    }

    fn jingle(&self, action: Action) -> Jingle {
        let mut j = Jingle::new(action, self.sid.clone());
        if matches!(action, Action::SessionInitiate) {
            j.initiator = Some(self.me.to_string());
        }
        if matches!(action, Action::SessionAccept) {
            j.responder = Some(self.me.to_string());
        }
        j
    }

    /// Our file content with this transport (and description, when given).
    fn content(&self, description: Option<Element>, transport: Element) -> Content {
        let mut c = Content::new(Creator::Initiator, self.content.clone());
        c.senders = Senders::Initiator;
        c.description = description;
        c.transport = Some(transport);
        c
    }

    /// Ends the session: `reason` goes to the peer in a session-terminate.
    fn terminate(&mut self, reason: Reason, out: &mut Vec<JingleAction>) {
        let j = self.jingle(Action::SessionTerminate).with_reason(reason);
        self.send_jingle(j, Pending::Other, out);
    }

    /// Fails the session, telling the peer why with `condition` (none: the peer ended
    /// it or is gone). An in-band stream of ours is closed first.
    fn fail(
        &mut self,
        condition: Option<ReasonCondition>,
        reason: FailReason,
        error: impl Into<String>,
        resumable: bool,
        now: Instant,
        out: &mut Vec<JingleAction>,
    ) {
        let error = error.into();
        // An in-band stream of ours is closed, requests it holds are answered; its own
        // Failed is ours to report.
        let closing: Vec<Iq> = match &mut self.state {
            State::SendingInBand(s) => s
                .handle(crate::transfer::SenderInput::Cancel, now)
                .into_iter()
                .filter_map(|a| match a {
                    crate::transfer::SenderAction::SendIq(iq) => Some(iq),
                    _ => None,
                })
                .collect(),
            State::ReceivingInBand(r) => r
                .handle(crate::transfer::ReceiverInput::Cancel, now)
                .into_iter()
                .filter_map(|a| match a {
                    crate::transfer::ReceiverAction::SendIq(iq) => Some(iq),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        // The reason first: the peer learns why before its in-band stream closes.
        if let Some(condition) = condition {
            self.terminate(Reason::new(condition).with_text(error.clone()), out);
        }
        out.extend(closing.into_iter().map(JingleAction::SendIq));
        if matches!(self.state, State::Streaming { .. }) && self.role == Role::Receiver {
            out.push(JingleAction::CloseSocket);
        }
        self.state = State::Failed;
        self.s5b = None;
        out.push(JingleAction::Failed { reason, error, resumable });
    }

    fn start(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        if !matches!(self.state, State::Idle) || self.role != Role::Sender {
            return;
        }
        if self.allows(Method::S5b) {
            let tsid = format!("{}-s5b", self.sid);
            let dst = js5b::dst_addr(&tsid, Creator::Initiator, &self.me.to_string(), &self.peer.to_string());
            self.s5b = Some(s5b::S5b::new(tsid, Creator::Initiator, Vec::new()));
            self.state = State::Gathering;
            out.push(JingleAction::GatherCandidates { dst_addr: dst });
        } else {
            self.ibb = Some(self.our_ibb());
            self.send_offer(now, out);
        }
    }

    /// The in-band transport we offer.
    fn our_ibb(&self) -> jibb::Transport {
        jibb::Transport {
            sid: format!("{}-ibb", self.sid),
            block_size: self.cfg.ibb_block_size.max(1),
            stanza_iq: true,
        }
    }

    fn send_offer(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        let transport = match (&self.s5b, &self.ibb) {
            (Some(s), _) => Element::from(&s.transport()),
            (None, Some(t)) => Element::from(t),
            (None, None) => return,
        };
        let description = Description { version: self.version, file: self.file.clone() };
        let j = self.jingle(Action::SessionInitiate).with_content(self.content(Some((&description).into()), transport));
        self.send_jingle(j, Pending::Initiate, out);
        self.state = State::Offered { deadline: now.saturating_add(self.cfg.offer_timeout) };
    }

    fn accept(&mut self, offset: u64, now: Instant, out: &mut Vec<JingleAction>) {
        if !matches!(self.state, State::Deciding { .. }) {
            return;
        }
        // A range only from a sender that said it takes them (its offer's <range/>).
        self.offset = if self.file.range.is_some() && offset <= self.size { offset } else { 0 };
        self.length = self.size - self.offset;
        if let Some(s) = &self.s5b {
            let dst = js5b::dst_addr(&s.sid, Creator::Responder, &self.peer.to_string(), &self.me.to_string());
            self.state = State::Gathering;
            out.push(JingleAction::GatherCandidates { dst_addr: dst });
        } else {
            self.send_accept(out);
            self.start_in_band(now, out);
        }
    }

    /// Receiver: the session-accept, with our candidates or the in-band transport.
    fn send_accept(&mut self, out: &mut Vec<JingleAction>) {
        let transport = match (&self.s5b, &mut self.ibb) {
            (Some(s), _) => Element::from(&s.transport()),
            (None, Some(t)) => {
                t.block_size = t.block_size.clamp(1, self.cfg.ibb_block_size.max(1));
                Element::from(&*t)
            }
            (None, None) => return,
        };
        let range = (self.offset > 0).then_some(ft::Range { offset: self.offset, length: None });
        let file = ft::File {
            name: self.file.name.clone(),
            size: Some(self.size),
            range,
            hashes: Vec::new(),
            ..Default::default()
        };
        let description = Description { version: self.version, file };
        let j = self.jingle(Action::SessionAccept).with_content(self.content(Some((&description).into()), transport));
        self.send_jingle(j, Pending::Accept, out);
    }

    fn reject(&mut self, out: &mut Vec<JingleAction>) {
        if !matches!(self.state, State::Deciding { .. }) {
            return;
        }
        self.terminate(Reason::new(ReasonCondition::Decline), out);
        self.state = State::Rejected;
        out.push(JingleAction::Rejected { reason: "declined".into() });
    }

    fn cancel(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        match self.state {
            State::Deciding { .. } => self.reject(out),
            _ => self.fail(Some(ReasonCondition::Cancel), FailReason::Cancelled, "cancelled", true, now, out),
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        if self.poll_timeout().is_none_or(|t| t > now) {
            return;
        }
        let peer = self.peer.clone();
        match &self.state {
            State::Offered { .. } => {
                let secs = self.cfg.offer_timeout.as_secs();
                let error = format!("{peer} did not answer the offer within {secs} seconds");
                self.fail(Some(ReasonCondition::Timeout), FailReason::Timeout, error, false, now, out);
            }
            State::Deciding { .. } => self.reject(out),
            State::Replacing { .. } => {
                let error = format!("{peer} did not agree on an in-band stream in time");
                self.fail(Some(ReasonCondition::Timeout), FailReason::Timeout, error, true, now, out);
            }
            State::AwaitingEnd { route, .. } => {
                // The receiver has every byte but did not say how it went.
                let (route, bytes) = (*route, self.length);
                self.state = State::Done;
                out.push(JingleAction::Done { route, bytes, verified: false });
            }
            State::AwaitingChecksum { route, .. } => {
                let route = *route;
                self.verify(route, None, out);
            }
            State::SendingInBand(_) | State::ReceivingInBand(_) => self.in_band_input(None, now, out),
            State::Negotiating { .. } => {
                let error = format!("setting up a SOCKS5 connection with {peer} took too long");
                self.s5b_failed(error, now, out);
            }
            _ => {}
        }
    }
}
