//! Incoming offers before they run: the gate (strangers, caps on offers waiting for
//! an answer) and the decision (the policy's, or the user's).

use super::*;

/// An answer to an incoming offer.
#[derive(Debug)]
pub(super) enum Decision {
    Accept(Option<PathBuf>),
    Reject,
}

/// A place among the offers waiting for an answer, freed when dropped.
pub(super) struct PendingSlot {
    t: Transfers,
    peer: String,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut pending = self.t.inner.pending.lock().unwrap();
        if let Some(n) = pending.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&self.peer);
            }
        }
    }
}

/// Why a new offer is refused before it is recorded or shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub condition: skiff_proto::stanza::Condition,
    pub text: &'static str,
}

impl Transfers {
    /// Accepts an incoming offer, into `dir` (default: the download folder).
    pub fn accept(&self, id: i64, dir: Option<PathBuf>) -> Result<(), TransferError> {
        self.decide(id, Decision::Accept(dir))
    }

    /// Declines an incoming offer (the sender sees `forbidden`).
    pub fn reject(&self, id: i64) -> Result<(), TransferError> {
        self.decide(id, Decision::Reject)
    }

    /// Whether the bare JID of `from` is in the roster: a contact. A roster item of any
    /// subscription counts (`none` too: the user added them, or approved them); someone
    /// who only asked to see our presence is not one (a pending inbound request is not
    /// a roster item, RFC 6121 3.1.3).
    pub fn is_contact(&self, from: &Jid) -> bool {
        let bare = from.bare().to_string();
        self.client().roster().iter().any(|c| c.jid == bare)
    }

    /// The gate before a new incoming offer is recorded: strangers refused when the
    /// setting says so, and, when offers wait for the user, the caps on waiting offers
    /// per peer and (for strangers) in total. The slot is held until the offer is
    /// answered. Refusals over a cap are reported once per burst and peer, not one by
    /// one.
    pub(super) fn admit(&self, from: &Jid) -> Result<Option<PendingSlot>, Refusal> {
        use skiff_proto::stanza::Condition;
        let cfg = self.cfg();
        // Refused at once, not recorded: by the stranger setting, or because only
        // contacts' offers are accepted anyway (a flood then writes no history).
        let stranger = !self.is_contact(from);
        let contacts_only = cfg.strangers == StrangerPolicy::Refuse || cfg.accept == AcceptPolicy::Contacts;
        if contacts_only && stranger {
            tracing::info!("refused an offer from {from}: not a contact");
            return Err(Refusal { condition: Condition::Forbidden, text: "files are accepted from contacts only" });
        }
        if cfg.accept != AcceptPolicy::Ask {
            return Ok(None);
        }
        let peer = from.bare().to_string();
        let mut pending = self.inner.pending.lock().unwrap();
        let total: usize = pending.values().sum();
        let mine = pending.get(&peer).copied().unwrap_or(0);
        if mine >= cfg.max_pending_per_peer || (stranger && total >= cfg.max_pending) {
            drop(pending);
            self.refused_over_cap(peer);
            return Err(Refusal {
                condition: Condition::ResourceConstraint,
                text: "too many offers are waiting for an answer; try again later",
            });
        }
        *pending.entry(peer.clone()).or_default() += 1;
        Ok(Some(PendingSlot { t: self.clone(), peer }))
    }

    /// Counts a refusal over the caps; the first of a burst schedules one report a
    /// second later with the count.
    pub(super) fn refused_over_cap(&self, peer: String) {
        let mut refused = self.inner.refused.lock().unwrap();
        let n = refused.entry(peer.clone()).or_default();
        *n += 1;
        if *n > 1 {
            return;
        }
        let t = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let count = t.inner.refused.lock().unwrap().remove(&peer).unwrap_or(0);
            tracing::info!("refused {count} offers from {peer}: too many waiting");
            t.emit(Event::OffersRefused { peer, count: count as u64, reason: "too many offers waiting".into() });
        });
    }

    /// Offers waiting for an answer now, in total.
    pub fn pending_offers(&self) -> usize {
        self.inner.pending.lock().unwrap().values().sum()
    }

    /// When the policy is to ask: the channel the answer to offer `id` will come on,
    /// registered before the offer is announced (so an answer cannot come too early).
    pub(super) fn ask(&self, id: i64) -> Option<oneshot::Receiver<Decision>> {
        (self.cfg().accept == AcceptPolicy::Ask).then(|| {
            let (tx, rx) = oneshot::channel();
            self.inner.decisions.lock().unwrap().insert(id, tx);
            rx
        })
    }

    /// The answer to a new offer `id` from `from`: the policy's, or the user's (a
    /// decline when none comes within the offer timeout).
    pub(super) async fn answer(&self, id: i64, from: &Jid, asked: Option<oneshot::Receiver<Decision>>) -> Decision {
        match self.cfg().accept {
            AcceptPolicy::All => Decision::Accept(None),
            AcceptPolicy::None => Decision::Reject,
            AcceptPolicy::Contacts => {
                if self.is_contact(from) {
                    Decision::Accept(None)
                } else {
                    Decision::Reject
                }
            }
            AcceptPolicy::Ask => {
                let d = match asked {
                    Some(rx) => tokio::time::timeout(self.cfg().offer_timeout, rx).await.ok().and_then(Result::ok),
                    None => None,
                };
                self.inner.decisions.lock().unwrap().remove(&id);
                d.unwrap_or(Decision::Reject)
            }
        }
    }

    pub(super) fn decide(&self, id: i64, d: Decision) -> Result<(), TransferError> {
        let tx = self.inner.decisions.lock().unwrap().remove(&id).ok_or(TransferError::NotPending(id))?;
        tx.send(d).map_err(|_| TransferError::NotPending(id))
    }
}
