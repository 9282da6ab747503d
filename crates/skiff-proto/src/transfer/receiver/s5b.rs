//! The receiver's SOCKS5 steps: the sender's streamhost lists (capped, once each) and the one it connected to.

use super::*;

impl Receiver {
    pub(super) fn on_waiting_request(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
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

    pub(super) fn on_connected(&mut self, jid: String, now: Instant, out: &mut Vec<ReceiverAction>) {
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
}
