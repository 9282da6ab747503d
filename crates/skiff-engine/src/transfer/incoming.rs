//! Receiving: an SI offer becomes an event and waits for a decision (or a policy);
//! accepted, the bytes arrive over a SOCKS5 streamhost (tried in the offered order)
//! or in-band into a `.part` file, which is verified and renamed.

use std::path::PathBuf;

use skiff_proto::jid::Jid;
use skiff_proto::si::FileInfo;
use skiff_proto::stanza::{Condition, Iq, IqKind, StanzaError};
use skiff_proto::transfer::{Receiver, ReceiverAction, ReceiverConfig, ReceiverInput};
use tokio::sync::mpsc;

use super::driver::{self, Clock, Inputs, Stop};
pub(super) use super::receive::Landing;
use super::receive::ReceiveDriver;
use super::{Decision, FailReason, Failure, Transfers};
use crate::event::Event;
use crate::files;
use crate::store::{Direction, NewTransfer, TransferState};

/// Answers every SI request: malformed ones at once, good offers in their own task.
pub(super) async fn offer_loop(t: Transfers, mut rx: mpsc::Receiver<Iq>) {
    while let Some(iq) = rx.recv().await {
        let client = t.client();
        let Some(me) = client.jid() else { continue };
        let clock = Clock::new();
        let cfg = ReceiverConfig { methods: t.cfg().methods.clone(), ..ReceiverConfig::default() };
        match Receiver::from_offer(cfg, me, iq, clock.now()) {
            Ok(m) => {
                tokio::spawn(receive(t.clone(), m, clock));
            }
            Err(reply) => {
                let _ = client.send(reply);
            }
        }
    }
}

/// The outcome of the decision about an offer.
pub(super) enum Decided {
    Accepted {
        id: i64,
        final_path: PathBuf,
        offset: u64,
    },
    Declined {
        id: i64,
    },
    /// Refused before it was recorded or shown (a stranger, too many waiting).
    Refused(super::Refusal),
}

async fn receive(t: Transfers, mut m: Receiver, clock: Clock) {
    if let Some(marker) = m.offer().batch.clone() {
        return super::batch::receive_run(t, m, clock, marker).await;
    }
    let offer = m.offer().clone();
    let from = m.peer().clone();
    let name = files::sanitize_file_name(&offer.file.name);
    let decided = match prepare(&t, &offer.sid, &offer.file, &from, &name).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("offer of {name} from {from}: {e}");
            refuse(&t, &mut m, &clock, Some(StanzaError::new(Condition::InternalServerError).with_text(e.to_string())));
            return;
        }
    };
    let (id, final_path, offset) = match decided {
        Decided::Refused(r) => {
            let error = StanzaError::new(r.condition).with_text(r.text);
            return refuse(&t, &mut m, &clock, Some(error));
        }
        Decided::Declined { id } => {
            refuse(&t, &mut m, &clock, None);
            return t.declined(id, name, "declined".into());
        }
        Decided::Accepted { id, final_path, offset } => (id, final_path, offset),
    };
    // Room for what is still to come, before anything is promised to the sender.
    let dir = final_path.parent().unwrap_or_else(|| std::path::Path::new("."));
    if let Err(sentence) = files::check_free_space(dir, offer.file.size.saturating_sub(offset)) {
        let text = "not enough disk space for this file";
        refuse(&t, &mut m, &clock, Some(StanzaError::new(Condition::ResourceConstraint).with_text(text)));
        t.fail(id, &name, Failure::new(FailReason::Storage, sentence, offset > 0));
        return;
    }
    let Some(cancel) = t.claim(id) else {
        refuse(
            &t,
            &mut m,
            &clock,
            Some(StanzaError::new(Condition::Conflict).with_text("this file is being received already")),
        );
        return;
    };
    if let Err(Stop::Failed(f)) = drive(&t, m, clock, cancel, id, final_path, offset, Landing::File).await {
        t.fail(id, &name, f);
    }
}

/// Answers the offer with an error: the machine's `forbidden`, or `error` instead.
pub(super) fn refuse(t: &Transfers, m: &mut Receiver, clock: &Clock, error: Option<StanzaError>) {
    for a in m.handle(ReceiverInput::Reject, clock.now()) {
        if let ReceiverAction::SendIq(mut iq) = a {
            if let (Some(e), IqKind::Error(_)) = (&error, &iq.kind) {
                iq.kind = IqKind::Error(e.clone());
            }
            let _ = t.client().send(iq);
        }
    }
}

/// Records the offer, announces it and waits for the decision. `None` when declined.
pub(super) async fn prepare(
    t: &Transfers,
    sid: &str,
    f: &FileInfo,
    from: &Jid,
    name: &str,
) -> Result<Decided, super::TransferError> {
    let store = &t.inner.store;
    // The gate first, in memory only (strangers, the caps on offers waiting for an
    // answer), so that a flood of offers costs no history lookup. A new offer keeps
    // its place until it is answered; a resumption gives it back below. (A resumption
    // arriving while that peer's offers fill the cap is refused like any other offer;
    // it is offered again later.)
    let slot = match t.admit(from) {
        Ok(slot) => slot,
        Err(r) => return Ok(Decided::Refused(r)),
    };
    let resume = earlier_part(t, f, from, name)?;
    // A resumption of one accepted before does not ask again, nor wait.
    let _slot = if resume.is_some() { None } else { slot };
    let id = match &resume {
        Some((id, _, have)) => {
            store.start_attempt(*id, sid, &from.to_string(), *have)?;
            store.set_state(*id, TransferState::Offered, None)?;
            *id
        }
        None => record_offer(t, sid, f, from, name)?,
    };
    // Ready for an answer before anyone can see the offer.
    let asked = if resume.is_none() { t.ask(id) } else { None };
    t.emit(Event::TransferOffered {
        id,
        direction: crate::store::Direction::Incoming,
        peer: from.to_string(),
        name: name.to_owned(),
        size: f.size,
        description: f.desc.clone(),
        resume_from: resume.as_ref().map(|r| r.2).unwrap_or(0),
        files: None,
    });
    // A resumption of a transfer already accepted is accepted without asking again.
    let decision = if resume.is_some() { Decision::Accept(None) } else { t.answer(id, from, asked).await };
    match decision {
        Decision::Reject => Ok(Decided::Declined { id }),
        Decision::Accept(dir) => Ok(match resume {
            Some((id, final_path, have)) => Decided::Accepted { id, final_path, offset: have },
            None => {
                let dir = dir.unwrap_or_else(|| t.cfg().download_dir.clone());
                std::fs::create_dir_all(&dir)
                    .map_err(|e| super::TransferError::Other(format!("cannot create {}: {e}", dir.display())))?;
                Decided::Accepted { id, final_path: files::unique_path(&dir, name), offset: 0 }
            }
        }),
    }
}

/// The same file from the same peer, partly received before (its record, where it
/// goes, what is there): resumed rather than asked about again.
fn earlier_part(
    t: &Transfers,
    f: &FileInfo,
    from: &Jid,
    name: &str,
) -> Result<Option<(i64, PathBuf, u64)>, super::TransferError> {
    if !f.range {
        return Ok(None);
    }
    let bare = from.bare().to_string();
    let (hash, date) = (f.hash.as_deref(), f.date.as_deref());
    let earlier = t.inner.store.find_resumable_incoming(&t.inner.account, &bare, name, f.size, hash, date)?;
    Ok(earlier.and_then(|rec| {
        let final_path = PathBuf::from(rec.local_path.as_ref()?);
        let have = std::fs::metadata(files::part_path(&final_path)).ok()?.len();
        (have <= f.size).then_some((rec.id, final_path, have))
    }))
}

/// A new incoming offer in the history.
fn record_offer(t: &Transfers, sid: &str, f: &FileInfo, from: &Jid, name: &str) -> Result<i64, super::TransferError> {
    Ok(t.inner.store.insert(&NewTransfer {
        sid: sid.to_owned(),
        direction: Direction::Incoming,
        account: t.inner.account.clone(),
        peer_jid: from.to_string(),
        file_name: name.to_owned(),
        local_path: None,
        size: f.size,
        md5: f.hash.clone(),
        date: f.date.clone(),
        description: f.desc.clone(),
        state: TransferState::Offered,
        files: None,
        rel_path: None,
    })?)
}

/// Drives the sans-IO [`Receiver`] machine once the offer is accepted.
#[allow(clippy::too_many_arguments)]
pub(super) async fn drive(
    t: &Transfers,
    mut m: Receiver,
    clock: Clock,
    mut cancel: super::CancelGuard,
    id: i64,
    final_path: PathBuf,
    offset: u64,
    landing: Landing,
) -> Result<(), Stop> {
    let file = m.offer().file.clone();
    let part = match landing.open(&final_path, offset, file.size).await {
        Ok(p) => p,
        Err(e) => {
            let error = StanzaError::new(Condition::InternalServerError).with_text("cannot write the file");
            refuse(t, &mut m, &clock, Some(error));
            return Err(Stop::fatal(FailReason::Storage, format!("cannot write {}: {e}", final_path.display())));
        }
    };
    if let Landing::File = landing {
        let _ = t.inner.store.set_local_path(id, &final_path.display().to_string());
        let _ = t.inner.store.set_state(id, TransferState::Accepted, None);
    }
    // IQs for this stream reach us from now on (before the accept goes out).
    let mut route = t.route(m.sid(), m.peer());
    let mut inputs = Inputs::new();
    let (results, si) = (inputs.tx.clone(), skiff_proto::transfer::Protocol::Si);
    let mut d = ReceiveDriver::new((t, id), results, &file, (final_path, offset), part, landing, si);
    let first = ReceiverInput::Accept { offset };
    let mut result = driver::run(&mut m, &mut d, first, &clock, &mut cancel, &mut inputs, Some(&mut route)).await;
    d.stop_reading();
    // The stream is over: IQs for it are answered as for an unknown stream while the
    // file is checked.
    drop(route);
    if let Some((route, sha256, checksum)) = d.all_in.take() {
        result = d.done(route, sha256, checksum).await;
    }
    d.keep().await;
    result
}
