//! Receiving by Jingle file transfer (XEP-0234): every `<jingle/>` request; a
//! session-initiate becomes an offer like an SI one (the same gate, event, decision
//! and history), the rest goes to its session. The session runs with the same
//! [`ReceiveDriver`] as SI.

use skiff_proto::jid::Jid;
use skiff_proto::jingle::{ft, JingleError, JingleInput, JingleSession};
use skiff_proto::si::FileInfo;
use skiff_proto::stanza::Iq;
use tokio::sync::mpsc;

use super::driver::{self, Clock, Inputs, Stop};
use super::incoming::{prepare, Decided};
use super::outgoing::session_config;
use super::receive::{Landing, ReceiveDriver};
use super::{FailReason, Failure, Transfers};
use crate::files;
use crate::store::TransferState;

/// Answers every Jingle request: new offers in their own task, the rest routed to
/// its session by sid (from the session's peer only) or refused as unknown.
pub(super) async fn jingle_loop(t: Transfers, mut rx: mpsc::Receiver<Iq>) {
    while let Some(iq) = rx.recv().await {
        let action = iq.request_payload().and_then(|p| p.attr("action")).unwrap_or_default();
        if action != "session-initiate" {
            if let Err(iq) = t.deliver(iq).await {
                let error = JingleError::UnknownSession.stanza_error("no such session");
                let _ = t.client().send(iq.error_for(error));
            }
            continue;
        }
        let client = t.client();
        let Some(me) = client.jid() else { continue };
        let clock = Clock::new();
        let cfg = session_config(&t.cfg(), false);
        match JingleSession::from_initiate(cfg, me, &iq, clock.now()) {
            Ok((m, ack)) => {
                let _ = client.send(ack);
                tokio::spawn(receive(t.clone(), m, clock));
            }
            Err(refusal) => {
                let from = iq.from.as_ref().map(ToString::to_string).unwrap_or_default();
                tracing::info!("refused a Jingle offer from {from}: {}", refusal.why);
                for reply in refusal.replies {
                    let _ = client.send(reply);
                }
            }
        }
    }
}

/// The offer's file as the engine's offers describe it.
fn file_info(f: &ft::File) -> FileInfo {
    FileInfo {
        name: f.name.clone().unwrap_or_default(),
        size: f.size.unwrap_or(0),
        date: f.date.clone(),
        hash: None,
        desc: f.desc.clone(),
        range: f.range.is_some(),
        sha256: f.sha256(),
        checksum_follows: false,
    }
}

/// Declines the offer (the session ends with `decline`).
fn decline(t: &Transfers, m: &mut JingleSession, clock: &Clock) {
    for a in m.handle(JingleInput::Reject, clock.now()) {
        if let skiff_proto::jingle::JingleAction::SendIq(iq) = a {
            let _ = t.client().send(iq);
        }
    }
}

async fn receive(t: Transfers, mut m: JingleSession, clock: Clock) {
    let from = m.peer().clone();
    let info = file_info(m.file());
    let name = files::sanitize_file_name(&info.name);
    let decided = match prepare(&t, m.sid(), &info, &from, &name).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("Jingle offer of {name} from {from}: {e}");
            return decline(&t, &mut m, &clock);
        }
    };
    let (id, final_path, offset) = match decided {
        Decided::Refused(_) => return decline(&t, &mut m, &clock),
        Decided::Declined { id } => {
            decline(&t, &mut m, &clock);
            return t.declined(id, name, "declined".into());
        }
        Decided::Accepted { id, final_path, offset } => (id, final_path, offset),
    };
    let dir = final_path.parent().unwrap_or_else(|| std::path::Path::new("."));
    if let Err(sentence) = files::check_free_space(dir, info.size.saturating_sub(offset)) {
        decline(&t, &mut m, &clock);
        return t.fail(id, &name, Failure::new(FailReason::Storage, sentence, offset > 0));
    }
    let Some(cancel) = t.claim(id) else { return decline(&t, &mut m, &clock) };
    if let Err(Stop::Failed(f)) = drive(&t, m, clock, cancel, (id, &from), final_path, offset, &info).await {
        t.fail(id, &name, f);
    }
}

/// Drives the receiving session once the offer is accepted.
#[allow(clippy::too_many_arguments)]
async fn drive(
    t: &Transfers,
    mut m: JingleSession,
    clock: Clock,
    mut cancel: super::CancelGuard,
    (id, from): (i64, &Jid),
    final_path: std::path::PathBuf,
    offset: u64,
    info: &FileInfo,
) -> Result<(), Stop> {
    let landing = Landing::File;
    let part = match landing.open(&final_path, offset, info.size).await {
        Ok(p) => p,
        Err(e) => {
            decline(t, &mut m, &clock);
            return Err(Stop::fatal(FailReason::Storage, format!("cannot write {}: {e}", final_path.display())));
        }
    };
    let _ = t.inner.store.set_local_path(id, &final_path.display().to_string());
    let _ = t.inner.store.set_state(id, TransferState::Accepted, None);
    // The session's requests reach us from now on (its in-band stream's too, once
    // there is one: the driver adds it).
    let mut route = t.route(m.sid(), from);
    let mut inputs = Inputs::new();
    let (results, jingle) = (inputs.tx.clone(), skiff_proto::transfer::Protocol::Jingle);
    let mut d = ReceiveDriver::new((t, id), results, info, (final_path, offset), part, landing, jingle);
    let first = JingleInput::Accept { offset };
    let result = driver::run(&mut m, &mut d, first, &clock, &mut cancel, &mut inputs, Some(&mut route)).await;
    d.stop_reading();
    drop(route);
    d.keep().await;
    result
}
