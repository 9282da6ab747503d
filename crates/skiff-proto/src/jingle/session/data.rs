//! The session's data phase: the socket copy, the in-band stream (an SI machine made
//! for it), the checksum and the end (XEP-0234 §§ checksum, ending the session).

use super::*;
use crate::si::FileInfo;
use crate::transfer::{ReceiverAction, ReceiverConfig, ReceiverInput, SenderAction, SenderConfig, SenderInput};

/// How long the sender waits, after its last byte (and checksum), for the receiver
/// to end the session.
pub const END_WAIT: Duration = Duration::from_secs(60);

/// The Jingle reason that tells the peer why we failed.
fn condition_for(reason: FailReason) -> ReasonCondition {
    match reason {
        FailReason::Cancelled | FailReason::Stopped | FailReason::Offline => ReasonCondition::Cancel,
        FailReason::Timeout => ReasonCondition::Timeout,
        FailReason::Network => ReasonCondition::ConnectivityError,
        FailReason::Integrity => ReasonCondition::MediaError,
        FailReason::Unsupported => ReasonCondition::UnsupportedTransports,
        FailReason::Source | FailReason::Storage => ReasonCondition::FailedApplication,
        _ => ReasonCondition::GeneralError,
    }
}

impl JingleSession {
    pub(super) fn on_data_input(&mut self, input: JingleInput, now: Instant, out: &mut Vec<JingleAction>) {
        if let State::SendingInBand(_) | State::ReceivingInBand(_) = self.state {
            return self.in_band_step(input, now, out);
        }
        let State::Streaming { route } = self.state else {
            if let (JingleInput::Checksum(h), State::Checksumming { route }) = (&input, &self.state) {
                let route = *route;
                self.on_checksum_computed(h.clone(), route, now, out);
            } else if let (JingleInput::Verified(ok), State::Verifying { route, sha256 }) = (&input, &self.state) {
                let (ok, route, sha256) = (*ok, *route, *sha256);
                self.on_verified(ok, route, sha256, now, out);
            }
            return;
        };
        let (c, r) = (Some(ReasonCondition::ConnectivityError), self.role);
        match input {
            JingleInput::SocketDone if r == Role::Sender => self.data_sent(route, now, out),
            JingleInput::SocketDone => self.all_in(route, now, out),
            JingleInput::SocketFailed(e) => self.fail(c, FailReason::Network, e, true, now, out),
            JingleInput::SocketOverrun if r == Role::Receiver => {
                let error = format!("{} sent more than the {} bytes it announced", self.peer, self.size);
                let condition = Some(ReasonCondition::MediaError);
                self.fail(condition, FailReason::Protocol, error, false, now, out);
            }
            JingleInput::ReadFailed(e) if r == Role::Sender => {
                self.fail(Some(ReasonCondition::FailedApplication), FailReason::Source, e, false, now, out)
            }
            JingleInput::WriteFailed(e) if r == Role::Receiver => {
                let error = format!("cannot store the data: {e}");
                self.fail(Some(ReasonCondition::FailedApplication), FailReason::Storage, error, false, now, out)
            }
            JingleInput::OutOfSpace(e) if r == Role::Receiver => {
                self.fail(Some(ReasonCondition::FailedApplication), FailReason::Storage, e, true, now, out)
            }
            _ => {}
        }
    }

    /// The agreed in-band transport starts: we open it (sender) or wait for its open.
    pub(super) fn start_in_band(&mut self, now: Instant, out: &mut Vec<JingleAction>) {
        let Some(t) = self.ibb.clone() else { return };
        match self.role {
            Role::Sender => {
                let cfg = SenderConfig {
                    methods: vec![Method::Ibb],
                    ibb_block_size: t.block_size,
                    ibb_window: self.cfg.ibb_window,
                    iq_timeout: self.cfg.iq_timeout,
                    // The block size is agreed already: no interop cap on top.
                    skiff_peer: true,
                    ..SenderConfig::default()
                };
                let name = self.file.name.clone().unwrap_or_default();
                let file = FileInfo::new(name, self.size);
                let (me, peer) = (self.me.clone(), self.peer.clone());
                let s = Sender::in_band(cfg, me, peer, t.sid, file, self.offset, self.length);
                self.state = State::SendingInBand(Box::new(s));
                self.in_band_step(JingleInput::Start, now, out);
            }
            Role::Receiver => {
                let cfg = ReceiverConfig {
                    stream_timeout: self.cfg.negotiate_timeout,
                    idle_timeout: self.cfg.idle_timeout,
                    max_block_size: t.block_size,
                    ..ReceiverConfig::default()
                };
                let (me, peer) = (self.me.clone(), self.peer.clone());
                let r = Receiver::in_band(cfg, me, peer, t.sid, self.size, self.offset, now);
                self.state = State::ReceivingInBand(Box::new(r));
            }
        }
    }

    /// An IQ that is not a Jingle request or answer (`None`: a tick), for the in-band
    /// machine if there is one.
    pub(super) fn in_band_input(&mut self, iq: Option<Iq>, now: Instant, out: &mut Vec<JingleAction>) {
        match (iq, &self.state) {
            (None, _) => self.in_band_step(JingleInput::Tick, now, out),
            (Some(iq), State::SendingInBand(_) | State::ReceivingInBand(_)) => {
                self.in_band_step(JingleInput::Iq(iq), now, out)
            }
            // A request for an in-band stream that is not (or no longer) open.
            (Some(iq), _) if iq.is_request() => {
                out.push(JingleAction::SendIq(crate::transfer::no_such_stream(&iq)));
            }
            _ => {}
        }
    }

    /// Feeds the in-band machine and carries its actions over.
    fn in_band_step(&mut self, input: JingleInput, now: Instant, out: &mut Vec<JingleAction>) {
        match &mut self.state {
            State::SendingInBand(s) => {
                let input = match input {
                    JingleInput::Start => SenderInput::Start,
                    JingleInput::Iq(iq) => SenderInput::Iq(iq),
                    JingleInput::Block(b) => SenderInput::Block(b),
                    JingleInput::ReadFailed(e) => SenderInput::ReadFailed(e),
                    JingleInput::Tick => SenderInput::Tick,
                    _ => return,
                };
                let actions = s.handle(input, now);
                for a in actions {
                    match a {
                        SenderAction::SendIq(iq) => out.push(JingleAction::SendIq(iq)),
                        SenderAction::ReadBlock { len } => out.push(JingleAction::ReadBlock { len }),
                        SenderAction::Started { route, streamhost, offset, length } => {
                            out.push(JingleAction::Started { route, streamhost, offset, length })
                        }
                        SenderAction::Progress { acked } => out.push(JingleAction::Progress { bytes: acked }),
                        SenderAction::Slow { bytes_per_sec } => out.push(JingleAction::Slow { bytes_per_sec }),
                        SenderAction::Done { route, .. } => self.data_sent(route, now, out),
                        SenderAction::Failed { reason, error, resumable } => {
                            self.fail(Some(condition_for(reason)), reason, error, resumable, now, out)
                        }
                        _ => {}
                    }
                }
            }
            State::ReceivingInBand(r) => {
                let input = match input {
                    JingleInput::Iq(iq) => ReceiverInput::Iq(iq),
                    JingleInput::Written => ReceiverInput::Written,
                    JingleInput::WriteFailed(e) => ReceiverInput::WriteFailed(e),
                    JingleInput::OutOfSpace(e) => ReceiverInput::OutOfSpace(e),
                    JingleInput::Tick => ReceiverInput::Tick,
                    _ => return,
                };
                let actions = r.handle(input, now);
                let length = self.length;
                for a in actions {
                    match a {
                        ReceiverAction::SendIq(iq) => out.push(JingleAction::SendIq(iq)),
                        ReceiverAction::Write(b) => out.push(JingleAction::Write(b)),
                        ReceiverAction::Started { route, streamhost, offset } => {
                            out.push(JingleAction::Started { route, streamhost, offset, length })
                        }
                        ReceiverAction::Progress { bytes } => out.push(JingleAction::Progress { bytes }),
                        ReceiverAction::Done { route, .. } => self.all_in(route, now, out),
                        ReceiverAction::Failed { reason, error, resumable } => {
                            self.fail(Some(condition_for(reason)), reason, error, resumable, now, out)
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Sender: every byte is out. The receiver needs a SHA-256 to check against:
    /// computed now unless the offer had it.
    pub(super) fn data_sent(&mut self, route: Route, now: Instant, out: &mut Vec<JingleAction>) {
        if self.sha256.is_some() {
            self.state = State::AwaitingEnd { route, deadline: now.saturating_add(END_WAIT) };
        } else {
            self.state = State::Checksumming { route };
            out.push(JingleAction::ComputeChecksum);
        }
    }

    fn on_checksum_computed(
        &mut self,
        sha256: Option<String>,
        route: Route,
        now: Instant,
        out: &mut Vec<JingleAction>,
    ) {
        if let Some(h) = sha256.filter(|h| crate::hashes::Hash::sha256_from_hex(h).is_some()) {
            let mut file = ft::File::default();
            if let Some(hash) = crate::hashes::Hash::sha256_from_hex(&h) {
                file.hashes.push(hash);
            }
            let checksum =
                ft::Checksum { version: self.version, content: Some((Creator::Initiator, self.content.clone())), file };
            let j = self.jingle(Action::SessionInfo).with_info(Element::from(&checksum));
            self.send_jingle(j, Pending::Other, out);
            self.sha256 = Some(h);
        }
        self.state = State::AwaitingEnd { route, deadline: now.saturating_add(END_WAIT) };
    }

    /// Receiver: every byte is in; checked once a SHA-256 is known.
    pub(super) fn all_in(&mut self, route: Route, now: Instant, out: &mut Vec<JingleAction>) {
        match self.sha256.clone() {
            Some(h) => self.verify(route, Some(h), out),
            None => {
                self.state = State::AwaitingChecksum { route, deadline: now.saturating_add(self.cfg.checksum_wait) };
            }
        }
    }

    pub(super) fn verify(&mut self, route: Route, sha256: Option<String>, out: &mut Vec<JingleAction>) {
        self.state = State::Verifying { route, sha256: sha256.is_some() };
        out.push(JingleAction::Verify { sha256 });
    }

    fn on_verified(&mut self, ok: bool, route: Route, sha256: bool, now: Instant, out: &mut Vec<JingleAction>) {
        if ok {
            self.terminate(Reason::new(ReasonCondition::Success), out);
            self.state = State::Done;
            out.push(JingleAction::Done { route, bytes: self.length, verified: sha256 });
        } else {
            let error = format!("the file from {} arrived damaged (its SHA-256 does not match)", self.peer);
            self.fail(Some(ReasonCondition::MediaError), FailReason::Integrity, error, false, now, out);
        }
    }

    /// A session-info: the sender's checksum, the receiver's `received`, or a ping.
    pub(super) fn on_session_info(&mut self, iq: &Iq, j: Jingle, now: Instant, out: &mut Vec<JingleAction>) {
        let Some(info) = j.info.first() else { return reply(iq, Ok(()), out) };
        if let Ok(c) = ft::Checksum::try_from(info) {
            let ours = c.content.as_ref().is_none_or(|(cr, n)| *cr == Creator::Initiator && *n == self.content);
            if self.role != Role::Receiver || !ours {
                return reply(iq, Err(StanzaError::new(Condition::BadRequest).with_text("no such file here")), out);
            }
            reply(iq, Ok(()), out);
            // The first SHA-256 given counts: a second one cannot move the goalposts.
            if self.sha256.is_none() {
                self.sha256 = c.file.sha256();
            }
            if let (State::AwaitingChecksum { route, .. }, Some(h)) = (&self.state, self.sha256.clone()) {
                let route = *route;
                self.verify(route, Some(h), out);
            }
            let _ = now;
            return;
        }
        if ft::Received::try_from(info).is_ok() {
            return reply(iq, Ok(()), out);
        }
        reply(iq, Err(JingleError::UnsupportedInfo.stanza_error("not understood")), out);
    }
}
