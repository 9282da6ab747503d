//! The receiving side of batches: the manifest as it arrives, the one decision, the
//! tree planned, then the batch's streams taken without asking and cut into files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use skiff_proto::batch::{InBatch, Manifest, ManifestAssembler, ManifestPart};
use skiff_proto::jid::Jid;
use skiff_proto::stanza::{Condition, Iq, IqKind, StanzaError};
use skiff_proto::transfer::Receiver;
use tokio::sync::mpsc;

use super::{continued, IncomingBatch, PlacedFile, Received, Slot, ASSEMBLY_TIME, IDLE};
use crate::event::Event;
use crate::files::{self, PackEntry, PackWriter};
use crate::store::{Direction, NewTransfer, TransferState, Verification};
use crate::transfer::driver::{Clock, Stop};
use crate::transfer::incoming::{drive, refuse, Landing};
use crate::transfer::{Completed, Decision, FailReason, Failure, Transfers};

/// Answers every manifest part: checked as it comes; the last one is answered once
/// the batch is accepted or declined.
pub(in crate::transfer) async fn manifest_loop(t: Transfers, mut rx: mpsc::Receiver<Iq>) {
    while let Some(iq) = rx.recv().await {
        if let Some(reply) = take_part(&t, &iq) {
            let _ = t.client().send(reply);
        }
    }
}

fn error(iq: &Iq, condition: Condition, text: impl Into<String>) -> Option<Iq> {
    Some(iq.error_for(StanzaError::new(condition).with_text(text.into())))
}

/// One part: the reply now, or `None` when the batch is complete and the reply waits
/// for the decision.
fn take_part(t: &Transfers, iq: &Iq) -> Option<Iq> {
    let Some(from) = iq.from.clone().filter(|f| !f.is_bare()) else {
        return error(iq, Condition::BadRequest, "a batch comes from a client");
    };
    if !matches!(iq.kind, IqKind::Set(_)) {
        return error(iq, Condition::BadRequest, "a batch is announced with an IQ set");
    }
    let part = match iq.request_payload().map(ManifestPart::try_from) {
        Some(Ok(p)) => p,
        Some(Err(e)) => return error(iq, Condition::BadRequest, e.to_string()),
        None => return error(iq, Condition::BadRequest, "no batch in the request"),
    };
    let key = (from.to_string(), part.head.id.clone());
    let mut batches = t.inner.batches.batches.lock().unwrap();
    // Announcements left unfinished free their place.
    batches.retain(|_, s| !matches!(s, Slot::Assembling { since, .. } if since.elapsed() > ASSEMBLY_TIME));
    // Announced again from the start by the same client: the sender lost the batch's
    // streams and continues it; the running attempt ends, interrupted.
    if part.first == 0 {
        if let Some(Slot::Accepted(old)) = batches.get(&key) {
            let old = old.clone();
            batches.remove(&key);
            old.end(t, Err(Failure::new(FailReason::Network, "the sender started the batch again", true)));
        }
    }
    match batches.get(&key) {
        None if part.first == 0 => {
            let pending = match t.admit(&from) {
                Ok(p) => p,
                Err(r) => return error(iq, r.condition, r.text),
            };
            let parts = Box::new(ManifestAssembler::default());
            batches.insert(key.clone(), Slot::Assembling { parts, _pending: pending, since: Instant::now() });
        }
        None => return error(iq, Condition::UnexpectedRequest, "no such batch is being announced"),
        Some(Slot::Assembling { .. }) => {}
        Some(_) => return error(iq, Condition::Conflict, "this batch was announced already"),
    }
    let Some(Slot::Assembling { parts, .. }) = batches.get_mut(&key) else { unreachable!("inserted above") };
    match parts.add(part) {
        Ok(None) => Some(iq.result_for(None)),
        Ok(Some(manifest)) => {
            let Some(Slot::Assembling { _pending, .. }) = batches.insert(key.clone(), Slot::Deciding) else {
                unreachable!("assembling above")
            };
            tokio::spawn(decide(t.clone(), iq.clone(), from, manifest, key, _pending));
            None
        }
        Err(e) => {
            batches.remove(&key);
            tracing::info!("refused a batch from {from}: {e}");
            error(iq, Condition::NotAcceptable, e.to_string())
        }
    }
}

/// Records the batch, asks (or the policy decides), and on acceptance plans the tree
/// and makes its folder; then answers the last part.
async fn decide(
    t: Transfers,
    iq: Iq,
    from: Jid,
    manifest: Manifest,
    key: (String, String),
    pending: Option<super::PendingSlot>,
) {
    let reply = match accept(&t, &from, manifest, &key, pending).await {
        Ok(receipt) => iq.result_for(receipt.as_ref().map(skiff_proto::xml::Element::from)),
        Err(e) => {
            t.inner.batches.batches.lock().unwrap().remove(&key);
            iq.error_for(e)
        }
    };
    let _ = t.client().send(reply);
}

async fn accept(
    t: &Transfers,
    from: &Jid,
    manifest: Manifest,
    key: &(String, String),
    pending: Option<super::PendingSlot>,
) -> Result<Option<skiff_proto::batch::Received>, StanzaError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::warn!("batch from {from}: {e}");
        StanzaError::new(Condition::InternalServerError).with_text("the batch could not be recorded")
    };
    let name = files::sanitize_file_name(&manifest.head.name);
    if let Some(earlier) = continued::earlier_attempt(t, from, &manifest) {
        drop(pending);
        return continued::resume(t, from, manifest, key, earlier).await.map_err(|e| *e);
    }
    let (id, file_ids) = record(t, from, &manifest, &name).map_err(|e| internal(&e))?;
    let asked = t.ask(id);
    t.emit(Event::TransferOffered {
        id,
        direction: Direction::Incoming,
        peer: from.to_string(),
        name: name.clone(),
        size: manifest.head.size,
        description: None,
        resume_from: 0,
        files: Some(manifest.head.files),
    });
    let decision = t.answer(id, from, asked).await;
    drop(pending);
    let dir = match decision {
        Decision::Reject => {
            super::record_stop(t, id, name, Stop::Declined("declined".into()));
            return Err(StanzaError::new(Condition::Forbidden).with_text("declined"));
        }
        Decision::Accept(dir) => dir.unwrap_or_else(|| t.cfg().download_dir.clone()),
    };
    let tree = make_room(t, id, &name, &dir, &manifest).map_err(|e| *e)?;
    let store = &t.inner.store;
    let _ = store.set_local_path(id, &tree.root.display().to_string());
    let _ = store.set_state(id, TransferState::Accepted, None);
    let files = manifest.entries.len();
    let start = Start { id, name, tree, file_ids, done: vec![false; files] };
    begin(t, from, manifest, key, start).map(|_| None).map_err(|e| *e)
}

/// The new folder for an accepted batch in `dir`, with room for it; else the batch
/// fails (said to the user) and the error answers the sender.
fn make_room(
    t: &Transfers,
    id: i64,
    name: &str,
    dir: &std::path::Path,
    manifest: &Manifest,
) -> Result<files::BatchTree, Box<StanzaError>> {
    let fail = |reason, sentence: String, condition, text: &str| {
        let _ = t.inner.store.set_open_files_state(id, TransferState::Failed, Some((reason, &sentence)));
        t.fail(id, name, Failure::new(reason, sentence, false));
        Box::new(StanzaError::new(condition).with_text(text))
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        let sentence = format!("cannot create {}: {e}", dir.display());
        return Err(fail(FailReason::Storage, sentence, Condition::InternalServerError, "cannot write the files"));
    }
    if let Err(sentence) = files::check_free_space(dir, manifest.head.size) {
        let text = "not enough disk space for these files";
        return Err(fail(FailReason::Storage, sentence, Condition::ResourceConstraint, text));
    }
    let tree = files::plan_batch(dir, manifest);
    if let Err(e) = std::fs::create_dir(&tree.root) {
        let sentence = format!("cannot create {}: {e}", tree.root.display());
        return Err(fail(FailReason::Storage, sentence, Condition::InternalServerError, "cannot write the files"));
    }
    Ok(tree)
}

/// A batch about to take its streams.
pub(super) struct Start {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) tree: files::BatchTree,
    pub(super) file_ids: Vec<i64>,
    /// Per entry: here already (an earlier attempt).
    pub(super) done: Vec<bool>,
}

/// Registers an accepted batch and starts its watcher.
pub(super) fn begin(
    t: &Transfers,
    from: &Jid,
    manifest: Manifest,
    key: &(String, String),
    s: Start,
) -> Result<Arc<IncomingBatch>, Box<StanzaError>> {
    let Some(owner) = t.claim(s.id) else {
        return Err(Box::new(StanzaError::new(Condition::Conflict).with_text("this batch is being received already")));
    };
    let busy = vec![false; s.done.len()];
    let batch = Arc::new(IncomingBatch {
        id: s.id,
        peer: from.clone(),
        name: s.name,
        manifest,
        tree: s.tree,
        file_ids: s.file_ids,
        cancel: owner.follow(),
        progress: std::sync::Mutex::new(Received {
            done: s.done,
            busy,
            transferred: 0,
            all_verified: true,
            route: None,
            ended: false,
        }),
        activity: tokio::sync::Notify::new(),
        started: Instant::now(),
    });
    t.inner.batches.batches.lock().unwrap().insert(key.clone(), Slot::Accepted(batch.clone()));
    tokio::spawn(watch(t.clone(), batch.clone(), owner, key.clone()));
    Ok(batch)
}

/// The batch and its files in the history, offered.
fn record(
    t: &Transfers,
    from: &Jid,
    manifest: &Manifest,
    name: &str,
) -> Result<(i64, Vec<i64>), crate::store::StoreError> {
    let rows = super::Rows { t, batch_id: &manifest.head.id, direction: Direction::Incoming, peer: from.to_string() };
    let row = |file_name: String, size, files, rel_path| rows.row(file_name, None, size, files, rel_path);
    let batch = row(name.to_owned(), manifest.head.size, Some(manifest.head.files), None);
    let entries: Vec<NewTransfer> = manifest
        .entries
        .iter()
        .map(|e| {
            let file_name = files::sanitize_file_name(e.path.components().last().unwrap_or_default());
            row(file_name, e.size, None, Some(e.path.to_string()))
        })
        .collect();
    t.inner.store.insert_batch(&batch, &entries)
}

/// Holds the batch's claim while it runs: ends it on Cancel, or when no stream came
/// for [`IDLE`] (the sender went away: interrupted, to continue later).
async fn watch(t: Transfers, b: Arc<IncomingBatch>, mut owner: crate::transfer::CancelGuard, key: (String, String)) {
    loop {
        let idle = tokio::time::sleep(IDLE);
        tokio::select! {
            _ = owner.cancelled() => {
                b.end(&t, Err(Failure { resumable: true, ..Failure::cancelled() }));
                break;
            }
            _ = b.activity.notified() => {
                if b.progress.lock().unwrap().ended {
                    break;
                }
            }
            _ = idle => {
                let busy = b.progress.lock().unwrap().busy.iter().any(|x| *x);
                if !busy {
                    let error = format!("{} sent nothing for {} seconds", b.peer, IDLE.as_secs());
                    b.end(&t, Err(Failure::new(FailReason::Network, error, true)));
                    break;
                }
            }
        }
    }
    // Only this batch's slot: the same batch announced again meanwhile has its own.
    let mut batches = t.inner.batches.batches.lock().unwrap();
    if matches!(batches.get(&key), Some(Slot::Accepted(now)) if Arc::ptr_eq(now, &b)) {
        batches.remove(&key);
    }
}

/// An SI offer carrying a batch's files: taken without asking when it belongs to a
/// batch accepted from this very client and names files still to come, with their
/// sizes; refused otherwise.
pub(in crate::transfer) async fn receive_run(t: Transfers, mut m: Receiver, clock: Clock, run: InBatch) {
    let key = (m.peer().to_string(), run.id.clone());
    let batch = match t.inner.batches.batches.lock().unwrap().get(&key) {
        Some(Slot::Accepted(b)) => Some(b.clone()),
        _ => None,
    };
    let Some(b) = batch else {
        let e = StanzaError::new(Condition::ItemNotFound).with_text("no such batch was accepted");
        return refuse(&t, &mut m, &clock, Some(e));
    };
    let (final_path, offset) = match b.claim_run(&run, m.offer().file.size) {
        Ok(place) => place,
        Err(text) => {
            tracing::info!("refused a stream of batch {} from {}: {text}", b.id, b.peer);
            return refuse(&t, &mut m, &clock, Some(StanzaError::new(Condition::BadRequest).with_text(text)));
        }
    };
    b.activity.notify_one();
    let landing = Landing::Batch { batch: b.clone(), run: run.clone() };
    let result = drive(&t, m, clock, b.cancel.follow(), b.id, final_path, offset, landing).await;
    b.release_run(&run);
    match result {
        Ok(()) => {}
        // Cancel ends the batch in its watcher.
        Err(Stop::Failed(f)) if f.reason == FailReason::Cancelled => {}
        Err(Stop::Failed(f)) => b.end(&t, Err(f)),
        Err(Stop::Declined(reason)) => b.end(&t, Err(Failure::new(FailReason::Protocol, reason, true))),
    }
}

impl IncomingBatch {
    /// Checks a stream's offer against the manifest and marks its files busy; where
    /// its bytes go (the file itself, or the run's pack) and from where (a `.part`
    /// left by an earlier attempt).
    fn claim_run(&self, run: &InBatch, offered: u64) -> Result<(PathBuf, u64), &'static str> {
        let entries = run.entries(&self.manifest).ok_or("the stream names files outside the batch")?;
        if entries.iter().map(|e| e.size).sum::<u64>() != offered {
            return Err("the stream's size is not its files' size");
        }
        if run.count > 1 && entries.iter().any(|e| e.sha256.is_none()) {
            return Err("files travelling together need their SHA-256 in the manifest");
        }
        let first = run.first as usize;
        let range = first..first + entries.len();
        let mut p = self.progress.lock().unwrap();
        if p.ended {
            return Err("the batch is over");
        }
        if p.done[range.clone()].iter().chain(&p.busy[range.clone()]).any(|x| *x) {
            return Err("these files are here or arriving already");
        }
        p.busy[range].iter_mut().for_each(|b| *b = true);
        drop(p);
        // Several files are written where they belong as they come, from the first.
        if run.count > 1 {
            return Ok((self.tree.root.clone(), 0));
        }
        let path = self.tree.files[first].clone();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let have = std::fs::symlink_metadata(files::part_path(&path)).ok().filter(|m| m.is_file()).map(|m| m.len());
        Ok((path, have.filter(|h| *h <= offered).unwrap_or(0)))
    }

    fn release_run(&self, run: &InBatch) {
        let first = run.first as usize;
        let mut p = self.progress.lock().unwrap();
        let end = (first + run.count as usize).min(p.busy.len());
        p.busy[first.min(end)..end].iter_mut().for_each(|b| *b = false);
        drop(p);
        self.activity.notify_one();
    }

    /// Writes a run of several files as its bytes arrive, each file checked against
    /// the manifest's SHA-256.
    pub(in crate::transfer) fn pack_writer(&self, run: &InBatch) -> PackWriter {
        let first = run.first as usize;
        let entries = run.entries(&self.manifest).unwrap_or_default();
        let pack = entries
            .iter()
            .enumerate()
            .map(|(i, e)| PackEntry {
                path: self.tree.files[first + i].clone(),
                size: e.size,
                sha256: e.sha256.clone().unwrap_or_default(),
            })
            .collect();
        PackWriter::new(pack)
    }

    /// A file of this batch that travelled alone, verified where it belongs already.
    pub(in crate::transfer) fn placed_alone(&self, run: &InBatch, done: files::Finished) -> PlacedFile {
        PlacedFile { index: run.first as usize, path: done.path, sha256: done.hashes.sha256, verified: done.verified }
    }

    /// A run of several files, all in: each checked, made durable, named.
    pub(in crate::transfer) async fn place_pack(
        &self,
        run: &InBatch,
        pack: PackWriter,
    ) -> Result<Vec<PlacedFile>, Stop> {
        match pack.finish().await {
            Ok(hashes) => Ok(self.placed(run, hashes)),
            Err(e @ files::UnpackError::HashMismatch { .. }) => Err(Stop::fatal(FailReason::Integrity, e.to_string())),
            Err(e @ files::UnpackError::SizeMismatch { .. }) => {
                Err(Stop::resumable(FailReason::Protocol, e.to_string()))
            }
            Err(e) => Err(Stop::fatal(FailReason::Storage, e.to_string())),
        }
    }

    /// The run's first files, by their SHA-256, as placed.
    fn placed(&self, run: &InBatch, hashes: Vec<String>) -> Vec<PlacedFile> {
        let first = run.first as usize;
        hashes
            .into_iter()
            .enumerate()
            .map(|(i, sha256)| PlacedFile {
                index: first + i,
                path: self.tree.files[first + i].clone(),
                sha256,
                verified: Verification::Sha256,
            })
            .collect()
    }

    /// A run of several files stopped early: those that arrived whole (`hashes`, from
    /// its first) are kept and recorded, so that a resume sends only the rest.
    pub(in crate::transfer) fn kept(&self, t: &Transfers, run: &InBatch, hashes: Vec<String>) {
        if hashes.is_empty() {
            return;
        }
        let bytes: u64 =
            run.entries(&self.manifest).unwrap_or_default().iter().take(hashes.len()).map(|e| e.size).sum();
        let placed = self.placed(run, hashes);
        tracing::info!("batch {}: kept {} files of a stream that stopped early", self.id, placed.len());
        let route = self.progress.lock().unwrap().route.unwrap_or(crate::store::Route::S5bDirect);
        self.run_done(t, placed, route, bytes);
    }

    /// A run's files are in: recorded, counted, announced; the batch completes with
    /// its last file.
    pub(in crate::transfer) fn run_done(
        &self,
        t: &Transfers,
        placed: Vec<PlacedFile>,
        route: crate::store::Route,
        transferred: u64,
    ) {
        let rows: Vec<_> = placed
            .iter()
            .map(|f| (self.file_ids[f.index], f.path.display().to_string(), f.sha256.clone(), f.verified))
            .collect();
        if let Err(e) = t.inner.store.complete_files(&rows) {
            tracing::warn!("history: {e}");
        }
        let (files_done, complete) = {
            let mut p = self.progress.lock().unwrap();
            for f in &placed {
                p.done[f.index] = true;
                p.all_verified &= f.verified.is_verified();
            }
            p.transferred += transferred;
            p.route = Some(route);
            let files_done = p.files_done();
            (files_done, files_done == self.manifest.head.files)
        };
        t.emit(Event::BatchProgress { id: self.id, files_done, files: self.manifest.head.files });
        if complete {
            self.end(t, Ok(()));
        }
    }

    /// Ends the batch once: completed, or failed (its files not yet here with it).
    pub(in crate::transfer) fn end(&self, t: &Transfers, outcome: Result<(), Failure>) {
        let (route, transferred, verified) = {
            let mut p = self.progress.lock().unwrap();
            if p.ended {
                return;
            }
            p.ended = true;
            let verified = if p.all_verified { Verification::Sha256 } else { Verification::None };
            (p.route, p.transferred, verified)
        };
        self.activity.notify_one();
        match outcome {
            Ok(()) => t.record_completed(Completed {
                id: self.id,
                name: self.name.clone(),
                path: self.tree.root.display().to_string(),
                size: self.manifest.head.size,
                bytes: transferred,
                md5: None,
                sha256: None,
                route: route.unwrap_or(crate::store::Route::S5bDirect),
                seconds: self.started.elapsed().as_secs_f64(),
                verified,
            }),
            Err(f) => super::record_stop(t, self.id, self.name.clone(), Stop::Failed(f)),
        }
    }
}
