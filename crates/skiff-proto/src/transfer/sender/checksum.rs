//! The sender's checksum after the data: computed, sent, and the receiver's verdict.

use super::*;

impl Sender {
    /// Every byte is out: done, or first the checksum the offer announced.
    pub(super) fn data_sent(&mut self, route: Route, out: &mut Vec<SenderAction>) {
        if self.file.checksum_follows {
            self.state = State::Checksumming { route };
            out.push(SenderAction::ComputeChecksum);
        } else {
            self.state = State::Done;
            out.push(SenderAction::Done { route, bytes: self.length, verified: false });
        }
    }

    pub(super) fn on_checksum(&mut self, sha256: Option<String>, now: Instant, out: &mut Vec<SenderAction>) {
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

    pub(super) fn on_checksum_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        out: &mut Vec<SenderAction>,
    ) {
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
}
