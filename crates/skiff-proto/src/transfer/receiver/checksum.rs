//! The receiver's end of the data: every byte in, then the sender's checksum awaited, compared and answered.

use super::*;

impl Receiver {
    /// Every byte is in: done, or first the checksum the offer announced (also when
    /// the offer carried the SHA-256: answering the checksum tells the sender that
    /// its file arrived intact).
    pub(super) fn data_received(&mut self, route: Route, now: Instant, out: &mut Vec<ReceiverAction>) {
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

    pub(super) fn on_checksum(&mut self, iq: Iq, out: &mut Vec<ReceiverAction>) {
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
}
