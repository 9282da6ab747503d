//! The session's side of the wire: Jingle requests from the peer, answers to ours,
//! and the peer's end of the session.

use super::*;

impl JingleSession {
    /// The receiving side of an incoming `session-initiate`, with the ack to send.
    /// Refused at once (with the IQs that say so): anything but a file offer from a
    /// full JID with one content created by the initiator, a size, and a transport we
    /// allow.
    pub fn from_initiate(cfg: JingleConfig, me: Jid, iq: &Iq, now: Instant) -> Result<(JingleSession, Iq), Refusal> {
        let bad = |why: String| Refusal {
            replies: vec![iq.error_for(StanzaError::new(Condition::BadRequest).with_text(why.clone()))],
            why,
        };
        let (Some(peer), IqKind::Set(payload)) = (iq.from.clone(), &iq.kind) else {
            return Err(bad("a session-initiate is an IQ set from a full JID".into()));
        };
        if peer.resource().is_none() {
            return Err(bad("a session-initiate comes from a full JID".into()));
        }
        let j = Jingle::try_from(payload).map_err(|e| bad(e.to_string()))?;
        if j.action != Action::SessionInitiate {
            return Err(bad(format!("expected session-initiate, got {}", j.action.as_str())));
        }
        let [c] = j.contents.as_slice() else {
            return Err(bad(format!("one file per session, this offer has {} contents", j.contents.len())));
        };
        if c.creator != Creator::Initiator {
            return Err(bad("a content in a session-initiate is created by the initiator".into()));
        }
        // From here the offer is well-formed Jingle: what we cannot take is said with
        // an ack and a session-terminate (XEP-0166 §6.3.2).
        let to = peer.clone();
        let end = |condition: ReasonCondition, why: &str| {
            let terminate =
                Jingle::new(Action::SessionTerminate, j.sid.clone()).with_reason(Reason::new(condition).with_text(why));
            Refusal {
                replies: vec![
                    iq.result_for(None),
                    Iq::set(format!("{}-refused", j.sid), Some(to.clone()), Element::from(&terminate)),
                ],
                why: why.to_owned(),
            }
        };
        let desc = match c.description.as_ref().map(Description::try_from) {
            Some(Ok(d)) => d,
            Some(Err(e)) if !matches!(e, crate::error::ParseError::NotMine { .. }) => {
                return Err(end(ReasonCondition::FailedApplication, &format!("the file offer cannot be read: {e}")));
            }
            _ => return Err(end(ReasonCondition::UnsupportedApplications, "not a file transfer")),
        };
        if c.senders != Senders::Initiator && c.senders != Senders::Both {
            return Err(end(ReasonCondition::UnsupportedApplications, "Skiff takes file offers, not requests"));
        }
        if desc.file.size.is_none() {
            return Err(end(ReasonCondition::FailedApplication, "the offer does not say the file's size"));
        }
        let (sid, content) = (j.sid.clone(), c.name.clone());
        let mut session = JingleSession::with(cfg, Role::Receiver, (me, peer), sid, content, desc.version, desc.file);
        session.state = State::Deciding { deadline: now.saturating_add(session.cfg.decision_timeout) };
        let transport = c.transport.as_ref();
        match transport.map(|t| t.ns.as_str()) {
            Some(ns::JINGLE_S5B) if session.allows(Method::S5b) => {
                let t = transport.map(js5b::Transport::try_from);
                let Some(Ok(t)) = t else {
                    return Err(end(ReasonCondition::FailedTransport, "the SOCKS5 transport cannot be read"));
                };
                session.s5b = Some(s5b::S5b::new(t.sid, Creator::Responder, t.candidates));
            }
            Some(ns::JINGLE_IBB) if session.allows(Method::Ibb) => {
                let t = transport.map(jibb::Transport::try_from);
                let Some(Ok(t)) = t else {
                    return Err(end(ReasonCondition::FailedTransport, "the in-band transport cannot be read"));
                };
                session.ibb = Some(t);
            }
            _ => return Err(end(ReasonCondition::UnsupportedTransports, "no transport Skiff allows here")),
        }
        Ok((session, iq.result_for(None)))
    }

    pub(super) fn on_iq(&mut self, iq: Iq, now: Instant, out: &mut Vec<JingleAction>) {
        if !iq.is_request() {
            if !self.is_finished() {
                self.on_answer(iq, now, out);
            }
            return;
        }
        let Some(payload) = iq.request_payload() else { return };
        if !payload.is("jingle", ns::JINGLE) {
            // In-band requests go to the in-band machine; the rest is not ours.
            return self.in_band_input(Some(iq), now, out);
        }
        let from_peer = iq.from.as_ref() == Some(&self.peer);
        let j = match Jingle::try_from(payload) {
            Ok(j) if from_peer && j.sid == self.sid && !self.is_finished() => j,
            Ok(_) => return reply(&iq, Err(JingleError::UnknownSession.stanza_error("no such session")), out),
            Err(e) => return reply(&iq, Err(StanzaError::new(Condition::BadRequest).with_text(e.to_string())), out),
        };
        // Every action but the end is about our one content, named as we know it.
        if let Some(c) = j.contents.iter().find(|c| c.creator != Creator::Initiator || c.name != self.content) {
            let why = format!("no content '{}' created by the {} in this session", c.name, c.creator.as_str());
            reply(&iq, Err(StanzaError::new(Condition::BadRequest).with_text(why.clone())), out);
            if j.action == Action::SessionAccept {
                self.fail(Some(ReasonCondition::FailedApplication), FailReason::Protocol, why, false, now, out);
            }
            return;
        }
        match j.action {
            Action::SessionTerminate | Action::ContentRemove => {
                reply(&iq, Ok(()), out);
                self.on_terminate(j.reason, now, out);
            }
            Action::SessionAccept if self.role == Role::Sender => self.on_session_accept(&iq, j, now, out),
            Action::TransportInfo => self.on_transport_info(&iq, j, now, out),
            Action::TransportReplace if self.role == Role::Receiver => self.on_transport_replace(&iq, j, now, out),
            Action::TransportAccept if self.role == Role::Sender => self.on_transport_accept(&iq, j, now, out),
            Action::TransportReject if self.role == Role::Sender => {
                reply(&iq, Ok(()), out);
                let error = format!("{} refused to move the transfer in-band", self.peer);
                self.fail(Some(ReasonCondition::FailedTransport), FailReason::Network, error, true, now, out);
            }
            Action::SessionInfo => self.on_session_info(&iq, j, now, out),
            _ => reply(&iq, Err(JingleError::OutOfOrder.stanza_error("not expected now")), out),
        }
    }

    fn on_answer(&mut self, iq: Iq, now: Instant, out: &mut Vec<JingleAction>) {
        let from_ok = |who: &Jid| iq.from.as_ref().is_none_or(|f| f == who);
        let Some(&which) = self.pending.get(&iq.id) else {
            return self.in_band_input(Some(iq), now, out);
        };
        if which == Pending::Activate {
            let proxy = self.s5b.as_ref().and_then(|s| s.activating.clone());
            if proxy.as_ref().is_none_or(|p| !from_ok(p)) {
                return;
            }
        } else if !from_ok(&self.peer) {
            return;
        }
        self.pending.remove(&iq.id);
        let error = match iq.kind {
            IqKind::Error(e) => Some(e),
            IqKind::Result(_) => None,
            _ => return,
        };
        match (which, error) {
            (Pending::Activate, e) => self.on_activated_by_proxy(e, now, out),
            (Pending::Initiate, Some(e)) if matches!(self.state, State::Offered { .. }) => {
                let (reason, text) = match e.condition {
                    Condition::ServiceUnavailable | Condition::FeatureNotImplemented => {
                        (FailReason::Unsupported, format!("{} does not take Jingle file transfers", self.peer))
                    }
                    _ => (FailReason::Refused, format!("{} refused the offer: {e}", self.peer)),
                };
                self.fail(None, reason, text, false, now, out);
            }
            (Pending::Accept, Some(e)) => {
                let error = format!("{} refused our accept: {e}", self.peer);
                self.fail(None, FailReason::Refused, error, true, now, out);
            }
            (Pending::Replace, Some(e)) => {
                let error = format!("{} refused to move the transfer in-band: {e}", self.peer);
                self.fail(Some(ReasonCondition::FailedTransport), FailReason::Network, error, true, now, out);
            }
            _ => {}
        }
    }

    /// The peer ended the session (or removed our content).
    fn on_terminate(&mut self, reason: Option<Reason>, now: Instant, out: &mut Vec<JingleAction>) {
        let condition = reason.as_ref().map_or(ReasonCondition::Success, |r| r.condition);
        let said = reason.as_ref().and_then(|r| r.text.clone()).map(|t| format!(": {t}")).unwrap_or_default();
        let peer = self.peer.clone();
        if let State::AwaitingEnd { route, .. } | State::Checksumming { route } = self.state {
            if condition == ReasonCondition::Success {
                let verified = self.sha256.is_some();
                self.state = State::Done;
                out.push(JingleAction::Done { route, bytes: self.length, verified });
                return;
            }
        }
        if matches!(self.state, State::Offered { .. })
            && matches!(condition, ReasonCondition::Decline | ReasonCondition::Busy)
        {
            self.state = State::Rejected;
            out.push(JingleAction::Rejected { reason: format!("declined{said}") });
            return;
        }
        let (why, text, resumable) = match condition {
            ReasonCondition::Cancel | ReasonCondition::Decline | ReasonCondition::Busy => {
                (FailReason::Cancelled, format!("{peer} cancelled the transfer{said}"), true)
            }
            ReasonCondition::MediaError if self.role == Role::Sender => {
                (FailReason::Integrity, format!("{peer} received the file damaged{said}; send it again"), false)
            }
            ReasonCondition::FailedTransport | ReasonCondition::ConnectivityError | ReasonCondition::Gone => {
                (FailReason::Network, format!("{peer} lost the connection{said}"), true)
            }
            ReasonCondition::Timeout | ReasonCondition::Expired => {
                (FailReason::Timeout, format!("{peer} gave up waiting{said}"), true)
            }
            ReasonCondition::UnsupportedApplications
            | ReasonCondition::UnsupportedTransports
            | ReasonCondition::IncompatibleParameters => {
                (FailReason::Unsupported, format!("{peer} cannot take this transfer{said}"), false)
            }
            ReasonCondition::Success => {
                (FailReason::Protocol, format!("{peer} ended the session before the file was complete"), true)
            }
            _ => (FailReason::Refused, format!("{peer} ended the transfer ({}){said}", condition.as_str()), true),
        };
        self.fail(None, why, text, resumable, now, out);
    }
}

/// Answers a Jingle request: a result, or this error.
pub(super) fn reply(iq: &Iq, answer: Result<(), StanzaError>, out: &mut Vec<JingleAction>) {
    out.push(JingleAction::SendIq(match answer {
        Ok(()) => iq.result_for(None),
        Err(e) => iq.error_for(e),
    }));
}
