//! Sending by Jingle file transfer (XEP-0234): which clients get it, and the session
//! run by the same [`SendDriver`] as SI.

use skiff_proto::jingle::{ft, JingleConfig, JingleInput, JingleSession};
use skiff_proto::transfer::{Protocol, INTEROP_BLOCK_SIZE};

use super::*;
use crate::transfer::{CancelGuard, TransferConfig};

/// A client that takes Jingle file transfer over a transport Skiff has.
pub(in crate::transfer) fn takes_jingle(info: &DiscoInfoResult) -> bool {
    info.has_feature(ns::JINGLE)
        && info.has_feature(ns::JINGLE_FT5)
        && (info.has_feature(ns::JINGLE_S5B) || info.has_feature(ns::JINGLE_IBB))
}

/// Whether a file to `peer` goes by Jingle: as the settings force; else as the
/// attempt before (`earlier`) went, if the client still takes it; else whenever the
/// client takes Jingle file transfer (SI for one that takes only SI). Batches between
/// Skiffs are SI's own extension and do not come here. A forced protocol the client
/// does not take is an error.
pub(in crate::transfer) fn chosen(
    cfg: &TransferConfig,
    peer: &Peer,
    earlier: Option<Protocol>,
) -> Result<bool, TransferError> {
    match cfg.protocol {
        None if earlier == Some(Protocol::Jingle) && peer.jingle => Ok(true),
        None if earlier == Some(Protocol::Si) && peer.si => Ok(false),
        Some(Protocol::Jingle) if peer.jingle => Ok(true),
        Some(Protocol::Si) if peer.si => Ok(false),
        Some(p) => {
            Err(TransferError::Other(format!("{} does not take {} file transfer", peer.jid, p.as_str().to_uppercase())))
        }
        None => Ok(peer.jingle),
    }
}

/// A new attempt of `resume_id` goes by the signalling of the one before (when the
/// peer still takes it): the receiver continues what that one left.
pub(super) async fn pick(t: &Transfers, to: &Jid, resume_id: Option<i64>) -> Result<(Peer, bool), TransferError> {
    let earlier = resume_id.and_then(|id| t.inner.store.get(id).ok()).and_then(|r| r.protocol);
    let peer = pick_resource(t, to).await?;
    let jingle = chosen(&t.cfg(), &peer, earlier)?;
    Ok((peer, jingle))
}

/// The session's settings from the engine's.
pub(in crate::transfer) fn session_config(cfg: &TransferConfig, skiff_peer: bool) -> JingleConfig {
    JingleConfig {
        methods: cfg.methods.clone(),
        // Other clients take the XEP's recommended block size; another Skiff more.
        ibb_block_size: if skiff_peer { cfg.ibb_block_size } else { INTEROP_BLOCK_SIZE },
        ibb_window: cfg.ibb_window,
        offer_timeout: cfg.offer_timeout,
        ..JingleConfig::default()
    }
}

impl Outgoing {
    /// Drives a sending Jingle session with a [`SendDriver`].
    pub(super) async fn transfer_jingle(&self, cancel: &mut CancelGuard) -> Result<(), Stop> {
        let cfg = self.t.cfg();
        let me = self.t.inner.client.jid().ok_or_else(|| Stop::resumable(FailReason::Offline, "signed out"))?;
        let mut file = ft::File {
            name: Some(self.name.clone()),
            size: Some(self.size),
            date: Some(self.date.clone()),
            desc: self.description.clone(),
            ..Default::default()
        };
        file.hashes.extend(self.sha256.as_deref().and_then(skiff_proto::hashes::Hash::sha256_from_hex));
        let clock = Clock::new();
        let jcfg = session_config(&cfg, self.skiff_peer);
        let mut m = JingleSession::offer(jcfg, me.clone(), self.target.clone(), self.sid.clone(), file);
        // The receiver's requests (accept, transport-info, the end) come by the sid.
        let mut route = self.t.route(&self.sid, &self.target);
        let mut inputs = Inputs::new();
        let mut d = SendDriver::new(self, cfg, me, inputs.tx.clone());
        driver::run(&mut m, &mut d, JingleInput::Start, &clock, cancel, &mut inputs, Some(&mut route)).await
    }
}
