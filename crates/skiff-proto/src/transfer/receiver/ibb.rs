//! The receiver's in-band steps: the open (block size within our limit), data blocks in sequence and within the announced size, writes, close.

use super::*;

impl Receiver {
    pub(super) fn on_open(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
        let open = match iq.request_payload().map(Open::try_from) {
            Some(Ok(o)) => o,
            _ => {
                send(iq.error_for(StanzaError::new(Condition::BadRequest)), out);
                return self.fail(FailReason::Protocol, "the sender's in-band open was malformed", true, out);
            }
        };
        if open.stanza == StanzaKind::Message {
            send(error(&iq, Condition::FeatureNotImplemented, "only stanza='iq' is supported"), out);
            let error = "the sender wanted in-band data in messages, which Skiff does not take";
            return self.fail(FailReason::Unsupported, error, true, out);
        }
        if !self.cfg.methods.contains(&Method::Ibb) {
            return send(error(&iq, Condition::NotAcceptable, "in-band bytestreams are not allowed here"), out);
        }
        let max = self.cfg.max_block_size;
        if open.block_size > max {
            // XEP-0047 2.2: resource-constraint (modify) asks for a smaller block-size.
            let mut e =
                StanzaError::new(Condition::ResourceConstraint).with_text(format!("blocks of at most {max} bytes"));
            e.kind = ErrorType::Modify;
            return send(iq.error_for(e), out);
        }
        send(iq.result_for(None), out);
        out.push(ReceiverAction::Started { route: Route::Ibb, streamhost: None, offset: self.offset });
        let mut seq = SeqCheck::new();
        for s in 0..self.seq_start {
            let _ = seq.check(s);
        }
        let deadline = now.saturating_add(self.cfg.idle_timeout);
        self.state = State::Ibb(IbbRecv { block_size: open.block_size, seq, deadline, pending: None });
    }

    pub(super) fn on_ibb_request(&mut self, iq: Iq, now: Instant, out: &mut Vec<ReceiverAction>) {
        let size = self.offer.file.size;
        let written = self.written;
        let State::Ibb(ibb) = &mut self.state else { return };
        ibb.deadline = now.saturating_add(self.cfg.idle_timeout);
        let payload = match (&iq.kind, iq.request_payload().map(IbbPayload::try_from)) {
            (IqKind::Set(_), Some(Ok(p))) => p,
            _ => return send(iq.error_for(StanzaError::new(Condition::BadRequest)), out),
        };
        match payload {
            IbbPayload::Data(d) => {
                if let Err(e) = ibb.seq.check(d.seq) {
                    send(error(&iq, Condition::UnexpectedRequest, e.to_string()), out);
                    if let SeqError::OutOfOrder { .. } = e {
                        let error = format!(
                            "{e} (peers that do not wrap sequence numbers after block 65535 fail here; \
                             larger blocks avoid it)"
                        );
                        self.fail(FailReason::Protocol, error, true, out);
                    }
                    return;
                }
                let block_size = ibb.block_size;
                let len = d.data.len() as u64;
                if d.data.len() > max_data_len(block_size) {
                    send(error(&iq, Condition::BadRequest, "block larger than the agreed block-size"), out);
                    let error = format!("the sender sent a {len}-byte block over the agreed {block_size}");
                    return self.fail(FailReason::Protocol, error, true, out);
                }
                if len > size - written {
                    let e =
                        format!("the sender sent more than the {size} bytes it announced ({len} more after {written})");
                    send(error(&iq, Condition::NotAcceptable, e.clone()), out);
                    return self.fail(FailReason::Protocol, format!("cannot store the data: {e}"), false, out);
                }
                if len == 0 {
                    return send(iq.result_for(None), out);
                }
                ibb.pending = Some((iq, len));
                out.push(ReceiverAction::Write(d.data));
            }
            IbbPayload::Close(_) => {
                send(iq.result_for(None), out);
                if written == size {
                    self.data_received(Route::Ibb, now, out);
                } else {
                    let error = format!("the sender announced {size} bytes but sent {written}");
                    self.fail(FailReason::Protocol, error, true, out);
                }
            }
            IbbPayload::Open(_) => send(error(&iq, Condition::UnexpectedRequest, "the stream is already open"), out),
        }
    }

    pub(super) fn on_written(&mut self, now: Instant, out: &mut Vec<ReceiverAction>) {
        let State::Ibb(ibb) = &mut self.state else { return };
        let Some((iq, len)) = ibb.pending.take() else { return };
        ibb.deadline = now.saturating_add(self.cfg.idle_timeout);
        self.written += len;
        out.push(ReceiverAction::SendIq(iq.result_for(None)));
        out.push(ReceiverAction::Progress { bytes: self.written });
        self.drain(now, out);
    }

    pub(super) fn on_write_failed(&mut self, e: String, resumable: bool, out: &mut Vec<ReceiverAction>) {
        match &mut self.state {
            State::Ibb(ibb) => {
                let Some((iq, _)) = ibb.pending.take() else { return };
                let condition = if resumable { Condition::ResourceConstraint } else { Condition::NotAcceptable };
                send(error(&iq, condition, e.clone()), out);
            }
            State::Streaming { .. } => {}
            _ => return,
        }
        let error = if resumable { e } else { format!("cannot store the data: {e}") };
        self.fail(FailReason::Storage, error, resumable, out);
    }
}
