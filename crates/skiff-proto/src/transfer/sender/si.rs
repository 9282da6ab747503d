//! The sender's SI step: the receiver's answer to the offer (method, range) or its refusal.

use super::*;

impl Sender {
    pub(super) fn on_offer_answer(
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
    pub(super) fn refused(&mut self, error: StanzaError, out: &mut Vec<SenderAction>) {
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
}
