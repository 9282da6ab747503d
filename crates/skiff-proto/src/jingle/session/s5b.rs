//! The session's XEP-0260 negotiation: both sides offer candidates, each tries the
//! other's and says which it could use, the better of the two is nominated; a proxy
//! is activated by the side that offered it. When nothing works, the initiator moves
//! the transfer in-band (XEP-0261) with transport-replace.

use super::*;
use crate::bytestreams::Activate;
use crate::jingle::s5b::{nominate, priority, Candidate, CandidateType, Choice, Signal, Transport, MAX_CANDIDATES};

/// Most of the peer's candidates tried (the rest are ignored): each costs a
/// connection attempt to an address the peer picks.
pub const MAX_TRIED: usize = crate::transfer::MAX_STREAMHOSTS;

/// One SOCKS5 negotiation.
#[derive(Debug)]
pub(super) struct S5b {
    /// The transport's stream id (not the session's).
    pub(super) sid: String,
    /// Our side.
    us: Creator,
    /// What we offered.
    ours: Vec<Candidate>,
    /// What the peer offered, in the order we try them (priority, highest first).
    theirs: Vec<Candidate>,
    /// What we could use of theirs (`Some(None)`: none), once we know.
    mine: Option<Choice>,
    /// What they could use of ours, once they said.
    their: Option<Choice>,
    /// The nominated candidate and who offered it.
    nominated: Option<(Creator, Candidate)>,
    /// The proxy we are activating.
    pub(super) activating: Option<Jid>,
}

impl S5b {
    /// A negotiation on our side `us`, with the peer's candidates when known.
    pub(super) fn new(sid: String, us: Creator, theirs: Vec<Candidate>) -> S5b {
        let mut s = S5b {
            sid,
            us,
            ours: Vec::new(),
            theirs: Vec::new(),
            mine: None,
            their: None,
            nominated: None,
            activating: None,
        };
        s.set_theirs(theirs);
        s
    }

    fn set_theirs(&mut self, mut theirs: Vec<Candidate>) {
        // Highest priority first (stable: the peer's order on a tie); each address once.
        theirs.sort_by_key(|c| std::cmp::Reverse(c.priority));
        let mut seen = std::collections::HashSet::new();
        theirs.retain(|c| seen.insert((c.host.to_ascii_lowercase(), c.port)));
        theirs.truncate(MAX_TRIED);
        self.theirs = theirs;
    }

    /// Our transport element: the stream id and our candidates.
    pub(super) fn transport(&self) -> Transport {
        Transport { candidates: self.ours.clone(), ..Transport::new(self.sid.clone()) }
    }

    fn them(&self) -> Creator {
        match self.us {
            Creator::Initiator => Creator::Responder,
            Creator::Responder => Creator::Initiator,
        }
    }
}

/// The route a nominated candidate gives.
fn route_of(c: &Candidate) -> Route {
    if c.kind == CandidateType::Proxy {
        Route::S5bProxy
    } else {
        Route::S5bDirect
    }
}

impl JingleSession {
    /// The initiator's and the responder's JIDs, as DST.ADDR wants them.
    fn ends(&self) -> (String, String) {
        match self.role {
            Role::Sender => (self.me.to_string(), self.peer.to_string()),
            Role::Receiver => (self.peer.to_string(), self.me.to_string()),
        }
    }

    fn dst_of(&self, offered_by: Creator) -> String {
        let (i, r) = self.ends();
        let sid = self.s5b.as_ref().map_or("", |s| s.sid.as_str());
        crate::jingle::s5b::dst_addr(sid, offered_by, &i, &r)
    }

    /// Our candidates are known: the offer (sender) or the accept (receiver) goes out.
    pub(super) fn on_candidates(&mut self, hosts: Vec<StreamHost>, now: Instant, out: &mut Vec<JingleAction>) {
        if !matches!(self.state, State::Gathering) {
            return;
        }
        let me = self.me.to_string();
        let Some(s) = &mut self.s5b else { return };
        s.ours = hosts
            .into_iter()
            .take(MAX_CANDIDATES)
            .enumerate()
            .map(|(i, h)| {
                let kind = if h.jid == me { CandidateType::Direct } else { CandidateType::Proxy };
                let local = u16::try_from(MAX_CANDIDATES - i).unwrap_or(0);
                Candidate {
                    cid: format!("{}-c{i}", s.sid),
                    host: h.host,
                    jid: h.jid,
                    port: h.port,
                    priority: priority(kind, local),
                    kind,
                }
            })
            .collect();
        match self.role {
            Role::Sender => self.send_offer(now, out),
            Role::Receiver => {
                self.send_accept(out);
                self.begin_trying(now, out);
            }
        }
    }

    /// Both candidate lists are out: try the peer's.
    fn begin_trying(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        self.state = State::Negotiating { deadline: now.saturating_add(self.cfg.negotiate_timeout) };
        let Some(s) = &self.s5b else { return };
        if s.theirs.is_empty() {
            return self.on_connected(None, now, out);
        }
        let hosts =
            s.theirs.iter().map(|c| StreamHost { jid: c.jid.clone(), host: c.host.clone(), port: c.port }).collect();
        let dst_addr = self.dst_of(s.them());
        out.push(JingleAction::ConnectCandidates { hosts, dst_addr });
    }

    /// Sender: the receiver accepted; its range and transport.
    pub(super) fn on_session_accept(&mut self, iq: &Iq, j: Jingle, now: Instant, out: &mut Vec<JingleAction>) {
        if !matches!(self.state, State::Offered { .. }) {
            return reply(iq, Err(JingleError::OutOfOrder.stanza_error("the session is already accepted")), out);
        }
        let Some(c) = j.contents.into_iter().next() else {
            let why = "the session-accept has no content".to_owned();
            reply(iq, Err(StanzaError::new(Condition::BadRequest).with_text(why.clone())), out);
            return self.fail(Some(ReasonCondition::FailedApplication), FailReason::Protocol, why, false, now, out);
        };
        let range = c.description.as_ref().and_then(|d| Description::try_from(d).ok()).and_then(|d| d.file.range);
        let size = self.size;
        if let Some(r) = range {
            if r.offset > size {
                let why = format!("{} asked for data from byte {} of a {size}-byte file", self.peer, r.offset);
                reply(iq, Err(StanzaError::new(Condition::BadRequest).with_text(why.clone())), out);
                return self.fail(Some(ReasonCondition::FailedApplication), FailReason::Protocol, why, false, now, out);
            }
            self.offset = r.offset;
            self.length = r.length.unwrap_or(size - r.offset).min(size - r.offset);
        }
        let transport = c.transport.as_ref();
        match transport.map(|t| t.ns.as_str()) {
            Some(ns::JINGLE_S5B) if self.s5b.is_some() => {
                let t = transport.map(Transport::try_from);
                let our_sid = self.s5b.as_ref().map(|s| s.sid.clone());
                match t {
                    Some(Ok(t)) if Some(&t.sid) == our_sid.as_ref() && t.signal.is_none() => {
                        reply(iq, Ok(()), out);
                        if let Some(s) = &mut self.s5b {
                            s.set_theirs(t.candidates);
                        }
                        self.begin_trying(now, out);
                    }
                    _ => self.refuse_transport(iq, "accepted with a SOCKS5 transport that is not ours", now, out),
                }
            }
            Some(ns::JINGLE_IBB) if self.ibb.is_some() => {
                let t = transport.map(jibb::Transport::try_from);
                self.take_in_band(iq, t, "accepted with an in-band transport that is not ours", now, out);
            }
            _ => self.refuse_transport(iq, "accepted with a transport Skiff did not offer", now, out),
        }
    }

    /// The driver tried the peer's candidates: `index` connected, or none.
    pub(super) fn on_connected(&mut self, index: Option<usize>, now: Instant, out: &mut Vec<JingleAction>) {
        if !matches!(self.state, State::Negotiating { .. }) {
            return;
        }
        let Some(s) = &mut self.s5b else { return };
        if s.mine.is_some() {
            return;
        }
        let used = index.and_then(|i| s.theirs.get(i)).map(|c| (c.cid.clone(), c.priority));
        let signal = match &used {
            Some((cid, _)) => Signal::CandidateUsed(cid.clone()),
            None => Signal::CandidateError,
        };
        s.mine = Some(used);
        self.send_signal(signal, out);
        self.try_nominate(now, out);
    }

    fn send_signal(&mut self, signal: Signal, out: &mut Vec<JingleAction>) {
        let Some(s) = &self.s5b else { return };
        let t = Transport { signal: Some(signal), ..Transport::new(s.sid.clone()) };
        let j = self.jingle(Action::TransportInfo).with_content(self.content(None, Element::from(&t)));
        self.send_jingle(j, Pending::Other, out);
    }

    /// A transport-info from the peer: what it could use of ours, or its proxy work.
    pub(super) fn on_transport_info(&mut self, iq: &Iq, j: Jingle, now: Instant, out: &mut Vec<JingleAction>) {
        let t = j.contents.first().and_then(|c| c.transport.as_ref()).map(Transport::try_from);
        let (Some(Ok(t)), Some(s)) = (t, &mut self.s5b) else {
            return reply(iq, Err(JingleError::OutOfOrder.stanza_error("no SOCKS5 negotiation is under way")), out);
        };
        if t.sid != s.sid || !matches!(self.state, State::Negotiating { .. }) {
            return reply(iq, Err(JingleError::OutOfOrder.stanza_error("no such SOCKS5 negotiation now")), out);
        }
        match t.signal {
            Some(Signal::CandidateUsed(cid)) if s.their.is_none() => {
                let Some(c) = s.ours.iter().find(|c| c.cid == cid) else {
                    let why = format!("{} says it used a candidate Skiff never offered ({cid})", self.peer);
                    reply(iq, Err(StanzaError::new(Condition::BadRequest).with_text(why.clone())), out);
                    return self.fail(
                        Some(ReasonCondition::FailedTransport),
                        FailReason::Protocol,
                        why,
                        true,
                        now,
                        out,
                    );
                };
                s.their = Some(Some((cid, c.priority)));
                reply(iq, Ok(()), out);
                self.try_nominate(now, out);
            }
            Some(Signal::CandidateError) if s.their.is_none() => {
                s.their = Some(None);
                reply(iq, Ok(()), out);
                self.try_nominate(now, out);
            }
            Some(Signal::Activated(cid))
                if s.nominated
                    .as_ref()
                    .is_some_and(|(by, c)| *by != s.us && c.cid == cid && c.kind == CandidateType::Proxy) =>
            {
                reply(iq, Ok(()), out);
                if let Some((_, c)) = s.nominated.clone() {
                    self.ready(&c, now, out);
                }
            }
            Some(Signal::ProxyError) if s.nominated.is_some() => {
                reply(iq, Ok(()), out);
                let error = format!("{} could not use the SOCKS5 proxy", self.peer);
                self.s5b_failed(error, now, out);
            }
            _ => reply(iq, Err(JingleError::OutOfOrder.stanza_error("unexpected transport-info")), out),
        }
    }

    /// Once both sides said what they could use: the nominated candidate, or none.
    fn try_nominate(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        let Some(s) = &mut self.s5b else { return };
        let (Some(mine), Some(their)) = (&s.mine, &s.their) else { return };
        if s.nominated.is_some() {
            return;
        }
        let (by_initiator, by_responder) = match s.us {
            Creator::Initiator => (mine, their),
            Creator::Responder => (their, mine),
        };
        let Some((by, cid)) = nominate(by_initiator, by_responder) else {
            let error = format!("neither side could open a SOCKS5 connection to the other ({})", self.peer);
            return self.s5b_failed(error, now, out);
        };
        let list = if by == s.us { &s.ours } else { &s.theirs };
        let Some(c) = list.iter().find(|c| c.cid == cid).cloned() else { return };
        s.nominated = Some((by, c.clone()));
        if by == s.us {
            // The peer connected to our candidate.
            if c.kind == CandidateType::Proxy {
                let dst_addr = self.dst_of(by);
                out.push(JingleAction::ConnectProxy { host: c.host.clone(), port: c.port, dst_addr });
            } else {
                out.push(JingleAction::AwaitDirect);
            }
        } else if c.kind != CandidateType::Proxy {
            // We connected to the peer's: its socket carries the data.
            self.ready(&c, now, out);
        }
        // A proxy of the peer's: it activates it and says so (transport-info).
    }

    /// After AwaitDirect: the peer's connection to our streamhost is there or not.
    pub(super) fn on_own_ready(&mut self, arrived: bool, now: Instant, out: &mut Vec<JingleAction>) {
        let Some((by, c)) = self.s5b.as_ref().and_then(|s| s.nominated.clone()) else { return };
        if by == self.them() || c.kind == CandidateType::Proxy || !matches!(self.state, State::Negotiating { .. }) {
            return;
        }
        if arrived {
            self.ready(&c, now, out);
        } else {
            let error = format!("{} says it connected to our streamhost, but its connection never arrived", self.peer);
            self.s5b_failed(error, now, out);
        }
    }

    fn them(&self) -> Creator {
        self.s5b.as_ref().map_or(Creator::Responder, |s| s.them())
    }

    pub(super) fn on_proxy_connected(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        let Some((by, c)) = self.s5b.as_ref().and_then(|s| s.nominated.clone()) else { return };
        if by == self.them() || c.kind != CandidateType::Proxy || !matches!(self.state, State::Negotiating { .. }) {
            return;
        }
        let Ok(proxy) = c.jid.parse::<Jid>() else {
            return self.on_proxy_failed(format!("the proxy's address '{}' is not a JID", c.jid), now, out);
        };
        let sid = self.s5b.as_ref().map(|s| s.sid.clone()).unwrap_or_default();
        let activate = Activate { sid, target: self.peer.to_string() };
        let id = self.new_id();
        self.pending.insert(id.clone(), Pending::Activate);
        if let Some(s) = &mut self.s5b {
            s.activating = Some(proxy.clone());
        }
        out.push(JingleAction::SendIq(Iq::set(id, Some(proxy), Element::from(&activate))));
    }

    pub(super) fn on_proxy_failed(&mut self, error: String, now: Instant, out: &mut Vec<JingleAction>) {
        let ours = self.s5b.as_ref().and_then(|s| s.nominated.as_ref()).is_some_and(|(by, _)| *by != self.them());
        if !ours || !matches!(self.state, State::Negotiating { .. }) {
            return;
        }
        self.send_signal(Signal::ProxyError, out);
        self.s5b_failed(format!("the SOCKS5 proxy could not be used: {error}"), now, out);
    }

    /// The proxy answered our activation.
    pub(super) fn on_activated_by_proxy(
        &mut self,
        error: Option<StanzaError>,
        now: Instant,
        out: &mut Vec<JingleAction>,
    ) {
        let Some((_, c)) = self.s5b.as_ref().and_then(|s| s.nominated.clone()) else { return };
        if let Some(e) = error {
            return self.on_proxy_failed(format!("it refused to activate the stream: {e}"), now, out);
        }
        self.send_signal(Signal::Activated(c.cid.clone()), out);
        self.ready(&c, now, out);
    }

    /// The nominated connection is usable: the data phase begins.
    fn ready(&mut self, c: &Candidate, _now: Instant, out: &mut Vec<JingleAction>) {
        let route = route_of(c);
        let (offset, length) = (self.offset, self.length);
        self.s5b = None;
        self.state = State::Streaming { route };
        out.push(JingleAction::Started { route, streamhost: Some(c.jid.clone()), offset, length });
        match self.role {
            Role::Sender => out.push(JingleAction::StreamSocket { offset, length }),
            Role::Receiver => out.push(JingleAction::ReadSocket { expected: length }),
        }
    }

    /// SOCKS5 cannot carry this session: the initiator moves it in-band when allowed;
    /// the receiver waits for that.
    pub(super) fn s5b_failed(&mut self, reason: String, now: Instant, out: &mut Vec<JingleAction>) {
        self.s5b = None;
        if !self.allows(Method::Ibb) {
            return self.fail(Some(ReasonCondition::FailedTransport), FailReason::Network, reason, true, now, out);
        }
        if self.role == Role::Sender {
            let t = self.our_ibb();
            let j = self.jingle(Action::TransportReplace).with_content(self.content(None, Element::from(&t)));
            self.ibb = Some(t);
            self.send_jingle(j, Pending::Replace, out);
            out.push(JingleAction::FellBack { reason });
        }
        self.state = State::Replacing { deadline: now.saturating_add(self.cfg.negotiate_timeout) };
    }

    /// Receiver: the sender moves the transfer to another transport.
    pub(super) fn on_transport_replace(&mut self, iq: &Iq, j: Jingle, now: Instant, out: &mut Vec<JingleAction>) {
        let before_data =
            matches!(self.state, State::Negotiating { .. } | State::Replacing { .. } | State::Streaming { .. });
        if !before_data {
            return reply(iq, Err(JingleError::OutOfOrder.stanza_error("nothing to replace now")), out);
        }
        let t = j.contents.first().and_then(|c| c.transport.as_ref());
        let ibb = match t.filter(|t| t.ns == ns::JINGLE_IBB).map(jibb::Transport::try_from) {
            Some(Ok(t)) if self.allows(Method::Ibb) => t,
            _ => {
                reply(iq, Ok(()), out);
                let t = t.cloned().unwrap_or_else(|| Element::new("transport", ns::JINGLE_IBB));
                let j = self.jingle(Action::TransportReject).with_content(self.content(None, t));
                self.send_jingle(j, Pending::Other, out);
                return;
            }
        };
        reply(iq, Ok(()), out);
        if matches!(self.state, State::Streaming { .. }) {
            out.push(JingleAction::CloseSocket);
        }
        let block_size = ibb.block_size.clamp(1, self.cfg.ibb_block_size.max(1));
        let t = jibb::Transport { block_size, ..ibb };
        let accept = self.jingle(Action::TransportAccept).with_content(self.content(None, Element::from(&t)));
        self.ibb = Some(t);
        self.s5b = None;
        self.send_jingle(accept, Pending::Other, out);
        out.push(JingleAction::FellBack { reason: format!("{} moved the transfer in-band", self.peer) });
        self.start_in_band(now, out);
    }

    /// Sender: the receiver took the in-band transport we asked for.
    pub(super) fn on_transport_accept(&mut self, iq: &Iq, j: Jingle, now: Instant, out: &mut Vec<JingleAction>) {
        if !matches!(self.state, State::Replacing { .. }) {
            return reply(iq, Err(JingleError::OutOfOrder.stanza_error("no transport-replace is pending")), out);
        }
        let t = j.contents.first().and_then(|c| c.transport.as_ref()).map(jibb::Transport::try_from);
        self.take_in_band(iq, t, "accepted a transport Skiff did not propose", now, out);
    }

    /// Sender: the receiver's answer with an in-band transport: ours (its block size
    /// may be lower) starts the stream; anything else is refused with `lie`.
    fn take_in_band(
        &mut self,
        iq: &Iq,
        t: Option<Result<jibb::Transport, crate::error::ParseError>>,
        lie: &str,
        now: Instant,
        out: &mut Vec<JingleAction>,
    ) {
        match t {
            Some(Ok(t)) if Some(t.sid.as_str()) == self.ibb_sid() => {
                reply(iq, Ok(()), out);
                if let Some(ours) = &mut self.ibb {
                    ours.block_size = ours.block_size.min(t.block_size);
                }
                self.start_in_band(now, out);
            }
            _ => self.refuse_transport(iq, lie, now, out),
        }
    }

    /// The peer answered with a transport that is not the one agreed: refused, the
    /// session ends with `failed-transport`.
    fn refuse_transport(&mut self, iq: &Iq, lie: &str, now: Instant, out: &mut Vec<JingleAction>) {
        let why = format!("{} {lie}", self.peer);
        reply(iq, Err(StanzaError::new(Condition::BadRequest).with_text(why.clone())), out);
        self.fail(Some(ReasonCondition::FailedTransport), FailReason::Protocol, why, false, now, out);
    }
}
