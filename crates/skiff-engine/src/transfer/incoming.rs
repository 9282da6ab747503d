//! Receiving: an SI offer becomes an event and waits for a decision (or a policy);
//! accepted, the bytes arrive over a SOCKS5 streamhost (tried in the offered order)
//! or in-band into a `.part` file, which is verified and renamed.

use std::path::PathBuf;
use std::time::Duration;

use skiff_proto::bytestreams::{dst_addr, StreamHostUsed, StreamHosts};
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::si::{self, FileOffer, Range, SiAccept};
use skiff_proto::stanza::{Condition, Iq, IqKind, StanzaError};
use skiff_proto::xml::Element;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::outgoing::Failure;
use super::{ibb, s5b, AcceptPolicy, Decision, Progress, Transfers};
use crate::event::Event;
use crate::files::{self, PartFile, VerifyError};
use crate::store::{Direction, NewTransfer, Route, TransferState};

/// How long an accepted transfer waits for the sender to open a stream.
const STREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Answers every SI request: malformed ones at once, good offers in their own task.
pub(super) async fn offer_loop(t: Transfers, mut rx: mpsc::Receiver<Iq>) {
    while let Some(iq) = rx.recv().await {
        let client = t.client();
        let bad = |text: String| StanzaError::new(Condition::BadRequest).with_text(text);
        let (Some(from), IqKind::Set(payload)) = (iq.from.clone(), &iq.kind) else {
            let _ = client.send(iq.error_for(bad("an SI offer is an IQ set from a full JID".into())));
            continue;
        };
        let offer = match FileOffer::try_from(payload) {
            Ok(o) => o,
            Err(e) if si::is_bad_profile(&e) => {
                let _ = client.send(iq.error_for(bad("unknown SI profile".into()).with_app(si::bad_profile())));
                continue;
            }
            Err(e) => {
                let _ = client.send(iq.error_for(bad(e.to_string())));
                continue;
            }
        };
        let ours: Vec<&str> = t.inner.cfg.methods.iter().map(|m| m.namespace()).collect();
        let Some(method) = offer.pick_method(&ours) else {
            let _ = client.send(iq.error_for(bad("no common stream method".into()).with_app(si::no_valid_streams())));
            continue;
        };
        let method = method.to_owned();
        tokio::spawn(receive(t.clone(), iq, offer, from, method));
    }
}

async fn receive(t: Transfers, iq: Iq, offer: FileOffer, from: Jid, method: String) {
    let name = files::sanitize_file_name(&offer.file.name);
    match prepare(&t, &iq, &offer, &from, &name).await {
        Ok(Some((id, final_path, offset))) => {
            let Some(mut cancel) = t.claim(id) else {
                let _ =
                    t.client().send(iq.error_for(
                        StanzaError::new(Condition::Conflict).with_text("this file is being received already"),
                    ));
                return;
            };
            let result = tokio::select! {
                r = run(&t, id, &iq, &offer, &from, &method, final_path, offset) => r,
                _ = cancel.cancelled() => Err(Failure::resumable("cancelled")),
            };
            if let Err(Failure::Failed { error, resumable }) = result {
                t.fail(id, &name, &error, resumable);
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!("offer of {name} from {from}: {e}");
            let _ = t
                .client()
                .send(iq.error_for(StanzaError::new(Condition::InternalServerError).with_text(e.to_string())));
        }
    }
}

/// Records the offer, announces it and waits for the decision. `None` when declined.
async fn prepare(
    t: &Transfers,
    iq: &Iq,
    offer: &FileOffer,
    from: &Jid,
    name: &str,
) -> Result<Option<(i64, PathBuf, u64)>, super::TransferError> {
    let store = &t.inner.store;
    let f = &offer.file;
    // The same file from the same peer, partly received before: resume it.
    let earlier = if f.range {
        store.find_resumable_incoming(
            &t.inner.account,
            &from.bare().to_string(),
            name,
            f.size,
            f.hash.as_deref(),
            f.date.as_deref(),
        )?
    } else {
        None
    };
    let resume = earlier.and_then(|rec| {
        let final_path = PathBuf::from(rec.local_path.as_ref()?);
        let have = std::fs::metadata(files::part_path(&final_path)).ok()?.len();
        (have <= f.size).then_some((rec.id, final_path, have))
    });
    let id = match &resume {
        Some((id, _, have)) => {
            store.start_attempt(*id, &offer.sid, &from.to_string(), *have)?;
            store.set_state(*id, TransferState::Offered, None)?;
            *id
        }
        None => store.insert(&NewTransfer {
            sid: offer.sid.clone(),
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
        })?,
    };
    // Ready for an answer before anyone can see the offer.
    let asked = (resume.is_none() && t.inner.cfg.accept == AcceptPolicy::Ask).then(|| {
        let (tx, rx) = oneshot::channel();
        t.inner.decisions.lock().unwrap().insert(id, tx);
        rx
    });
    t.emit(Event::TransferOffered {
        id,
        direction: "incoming".into(),
        peer: from.to_string(),
        name: name.to_owned(),
        size: f.size,
        description: f.desc.clone(),
        resume_from: resume.as_ref().map(|r| r.2).unwrap_or(0),
    });
    // A resumption of a transfer already accepted is accepted without asking again.
    let decision = match (&resume, t.inner.cfg.accept) {
        (Some(_), _) => Decision::Accept(None),
        (None, AcceptPolicy::All) => Decision::Accept(None),
        (None, AcceptPolicy::None) => Decision::Reject,
        (None, AcceptPolicy::Contacts) => {
            let bare = from.bare().to_string();
            if t.client().roster().iter().any(|c| c.jid == bare) {
                Decision::Accept(None)
            } else {
                Decision::Reject
            }
        }
        (None, AcceptPolicy::Ask) => {
            let d = match asked {
                Some(rx) => tokio::time::timeout(t.inner.cfg.offer_timeout, rx).await.ok().and_then(Result::ok),
                None => None,
            };
            t.inner.decisions.lock().unwrap().remove(&id);
            d.unwrap_or(Decision::Reject)
        }
    };
    match decision {
        Decision::Reject => {
            let _ = t.client().send(iq.error_for(StanzaError::new(Condition::Forbidden).with_text("Offer declined")));
            store.set_state(id, TransferState::Rejected, Some("declined"))?;
            t.emit(Event::TransferRejected { id, name: name.to_owned(), reason: "declined".into() });
            Ok(None)
        }
        Decision::Accept(dir) => Ok(Some(match resume {
            Some((id, final_path, have)) => (id, final_path, have),
            None => {
                let dir = dir.unwrap_or_else(|| t.inner.cfg.download_dir.clone());
                std::fs::create_dir_all(&dir)
                    .map_err(|e| super::TransferError::Other(format!("cannot create {}: {e}", dir.display())))?;
                (id, files::unique_path(&dir, name), 0)
            }
        })),
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    t: &Transfers,
    id: i64,
    iq: &Iq,
    offer: &FileOffer,
    from: &Jid,
    method: &str,
    final_path: PathBuf,
    offset: u64,
) -> Result<(), Failure> {
    let client = t.client().clone();
    let store = &t.inner.store;
    let size = offer.file.size;
    let part = if offset > 0 {
        PartFile::resume(final_path.clone(), offset, size).await
    } else {
        PartFile::create(final_path.clone(), size).await
    };
    let mut part = match part {
        Ok(p) => p,
        Err(e) => {
            let _ = client.send(
                iq.error_for(StanzaError::new(Condition::InternalServerError).with_text("cannot write the file")),
            );
            return Err(Failure::fatal(format!("cannot write {}: {e}", final_path.display())));
        }
    };
    let _ = store.set_local_path(id, &final_path.display().to_string());
    let mut route = t.route(&offer.sid, from);
    let range = (offset > 0).then_some(Range { offset, length: None });
    let accept = SiAccept { method: method.to_owned(), range };
    let _ = store.set_state(id, TransferState::Accepted, None);
    client.send(iq.result_for(Some(Element::from(&accept)))).map_err(|e| Failure::resumable(e.to_string()))?;
    let mut progress = Progress::new(t, id, size, offset);
    let me = client.jid().ok_or_else(|| Failure::resumable("signed out"))?;
    let used_route = loop {
        let req = match tokio::time::timeout(STREAM_TIMEOUT, route.rx.recv()).await {
            Ok(Some(req)) => req,
            Ok(None) => return Err(Failure::resumable("stopped")),
            Err(_) => {
                return Err(Failure::resumable(format!(
                    "the sender opened no stream within {} seconds",
                    STREAM_TIMEOUT.as_secs()
                )))
            }
        };
        let Some(payload) = req.request_payload() else { continue };
        if payload.is("open", ns::IBB) {
            started(t, id, Route::Ibb, None, offset);
            ibb::receive(t, req, &mut route, &mut part, &mut progress).await?;
            break Route::Ibb;
        }
        if payload.is("query", ns::BYTESTREAMS) {
            let hosts = match StreamHosts::try_from(payload) {
                Ok(h) => h,
                Err(e) => {
                    let _ =
                        client.send(req.error_for(StanzaError::new(Condition::BadRequest).with_text(e.to_string())));
                    continue;
                }
            };
            let dst = dst_addr(&offer.sid, &from.to_string(), &me.to_string());
            match s5b::connect_first(&hosts.hosts, &dst).await {
                Ok((host, sock)) => {
                    let used = StreamHostUsed { sid: Some(offer.sid.clone()), jid: host.jid.clone() };
                    let _ = client.send(req.result_for(Some(Element::from(&used))));
                    let r = if host.jid == from.to_string() { Route::S5bDirect } else { Route::S5bProxy };
                    started(t, id, r, Some(&host.jid), offset);
                    read_socket(sock, &mut part, &mut progress).await?;
                    break r;
                }
                Err(errors) => {
                    tracing::info!("no streamhost worked: {}", errors.join("; "));
                    let _ = client.send(req.error_for(
                        StanzaError::new(Condition::ItemNotFound).with_text("could not connect to any streamhost"),
                    ));
                    // The sender may fall back to in-band: keep waiting.
                }
            }
            continue;
        }
        let _ = client.send(req.error_for(StanzaError::new(Condition::UnexpectedRequest)));
    };
    drop(route);
    let transferred = part.written() - offset;
    match part.finish(offer.file.hash.as_deref()).await {
        Ok(done) => {
            let _ = store.set_local_path(id, &done.path.display().to_string());
            let _ = store.set_hashes(id, Some(&done.hashes.md5), Some(&done.hashes.sha256));
            let _ = store.set_progress(id, done.size);
            let _ = store.set_state(id, TransferState::Completed, None);
            t.emit(Event::TransferCompleted {
                id,
                name: done.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                path: done.path.display().to_string(),
                size: done.size,
                bytes: transferred,
                sha256: done.hashes.sha256,
                route: used_route.as_str().to_owned(),
                seconds: progress.seconds(),
            });
            Ok(())
        }
        Err(e @ VerifyError::SizeMismatch { .. }) => Err(Failure::resumable(e.to_string())),
        Err(e) => Err(Failure::fatal(e.to_string())),
    }
}

fn started(t: &Transfers, id: i64, route: Route, streamhost: Option<&str>, offset: u64) {
    let _ = t.inner.store.set_route(id, route, streamhost);
    let _ = t.inner.store.set_state(id, TransferState::Active, None);
    t.emit(Event::TransferStarted {
        id,
        route: route.as_str().to_owned(),
        streamhost: streamhost.map(str::to_owned),
        offset,
    });
}

/// Reads the bytestream into the part file until the announced size is reached.
async fn read_socket(mut sock: TcpStream, part: &mut PartFile, progress: &mut Progress) -> Result<(), Failure> {
    let mut buf = vec![0u8; 256 * 1024];
    let expected = part.expected_size();
    while part.written() < expected {
        let n = match tokio::time::timeout(ibb::IDLE_TIMEOUT, sock.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                return Err(Failure::resumable(format!("the connection broke after {} bytes: {e}", part.written())))
            }
            Err(_) => return Err(Failure::resumable(format!("no data for {} seconds", ibb::IDLE_TIMEOUT.as_secs()))),
        };
        if n == 0 {
            return Err(Failure::resumable(format!(
                "the sender closed the stream after {} of {} bytes",
                part.written(),
                expected
            )));
        }
        part.write(&buf[..n]).await.map_err(|e| Failure::fatal(format!("{e}")))?;
        progress.update(part.written());
    }
    // Anything beyond the announced size is a lie: do not accept the file.
    match tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => {
            Err(Failure::fatal(format!("the sender sent more than the {expected} bytes it announced")))
        }
        _ => Ok(()),
    }
}
