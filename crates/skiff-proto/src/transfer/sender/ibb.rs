//! The sender's in-band steps: open (stepping the block size down), the window of blocks, close.

use super::*;

impl Sender {
    /// Only the in-band data phase of a transfer negotiated elsewhere (a Jingle
    /// session whose transport is XEP-0261): on Start it opens in-band stream `sid`
    /// to `peer` and sends `length` bytes of `file` from `offset`, then ends with
    /// Done once the close is acknowledged (no offer, no checksum step). `file.size`
    /// is the whole file's.
    pub fn in_band(
        cfg: SenderConfig,
        me: Jid,
        peer: Jid,
        sid: String,
        file: FileInfo,
        offset: u64,
        length: u64,
    ) -> Sender {
        let file = FileInfo { checksum_follows: false, ..file };
        let length = length.min(file.size.saturating_sub(offset));
        let mut s = Sender::new(cfg, me, peer, sid, file, Duration::ZERO);
        s.offset = offset;
        s.length = length;
        s.in_band_only = true;
        s
    }

    pub(super) fn start_ibb(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
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
    pub(super) fn open_next(&mut self, mut sizes: VecDeque<u16>, now: Instant, out: &mut Vec<SenderAction>) {
        let Some(block_size) = sizes.pop_front() else {
            let error = "the receiver accepts no in-band block size Skiff can use";
            return self.fail(FailReason::Unsupported, error, false, out);
        };
        let open = Open { sid: self.sid.clone(), block_size, stanza: StanzaKind::Iq };
        let id = self.send_set(self.peer.clone(), Element::from(&open), out);
        self.state = State::Opening { id, deadline: now.saturating_add(self.cfg.iq_timeout), block_size, rest: sizes };
    }

    pub(super) fn on_open_answer(
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
    pub(super) fn pump(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
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

    pub(super) fn on_block(&mut self, bytes: Vec<u8>, now: Instant, out: &mut Vec<SenderAction>) {
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

    pub(super) fn on_data_answer(
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

    pub(super) fn on_close_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        out: &mut Vec<SenderAction>,
    ) {
        let State::Closing { acked, .. } = self.state else { return };
        match answer {
            Ok(_) => self.data_sent(Route::Ibb, out),
            Err(e) => {
                let error = broke(acked, &answered_with(&self.peer, &e));
                self.fail(FailReason::Network, error, true, out);
            }
        }
    }
}
