//! Batches (`urn:x-skiff:batch:0`, [`skiff_proto::batch`]): the files of a folder or a
//! multi-select offered together, between Skiffs, as one offer answered once.
//!
//! The sender announces the manifest in IQ-sets ([`send`]); the receiver checks it as
//! it comes ([`ManifestAssembler`]), records the batch and its files, asks once (or its
//! policy decides), plans the tree under a new folder and answers the last part. The
//! files then travel as SI streams whose offers carry an `<in-batch/>` marker: small
//! files many to a stream (one negotiation for hundreds of them), big ones alone. The
//! receiver takes those offers without asking, only from the same full JID, only for
//! runs of the batch not yet received, only with the sizes the manifest gave
//! ([`receive`]). Everything a batch's streams report comes under the batch's record.

mod continued;
mod receive;
mod send;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use skiff_proto::batch::{InBatch, Manifest, ManifestAssembler};
use skiff_proto::jid::Jid;

use super::admission::PendingSlot;
use super::CancelGuard;
use crate::files::BatchTree;
use crate::store::Verification;

pub(super) use receive::{manifest_loop, receive_run};
pub use send::NAME_FOR_LOOSE_FILES;
pub(super) use send::{resume as resume_outgoing, send_batch};

/// Files up to this size travel together in one stream.
pub(super) const SMALL_FILE: u64 = 4 << 20;
/// Most bytes in one stream of small files.
pub(super) const RUN_BYTES: u64 = 64 << 20;
/// Most files in one stream of small files.
pub(super) const RUN_FILES: u64 = 2_000;
/// How long an accepted batch waits for its next stream before it counts as
/// interrupted (the sender went away).
pub(super) const IDLE: std::time::Duration = std::time::Duration::from_secs(120);
/// How long a manifest may take to arrive whole.
pub(super) const ASSEMBLY_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// Batches being announced to us or received, by (sender's full JID, batch id).
#[derive(Default)]
pub(super) struct Registry {
    batches: Mutex<HashMap<(String, String), Slot>>,
}

enum Slot {
    /// Parts are arriving; the place among the offers waiting for an answer is held.
    Assembling { parts: Box<ManifestAssembler>, _pending: Option<PendingSlot>, since: Instant },
    /// Announced whole; the user (or the policy) is deciding.
    Deciding,
    /// Accepted: its streams are taken.
    Accepted(Arc<IncomingBatch>),
}

/// What a batch's record and its files' records share: its id (as `sid`), direction,
/// account, peer; a new record is offered.
pub(super) struct Rows<'a> {
    pub(super) t: &'a super::Transfers,
    pub(super) batch_id: &'a str,
    pub(super) direction: crate::store::Direction,
    pub(super) peer: String,
}

impl Rows<'_> {
    /// One record: the batch's (`files` set) or a file's (`rel_path` set).
    pub(super) fn row(
        &self,
        file_name: String,
        local_path: Option<String>,
        size: u64,
        files: Option<u64>,
        rel_path: Option<String>,
    ) -> crate::store::NewTransfer {
        crate::store::NewTransfer {
            sid: self.batch_id.to_owned(),
            direction: self.direction,
            account: self.t.inner.account.clone(),
            peer_jid: self.peer.clone(),
            file_name,
            local_path,
            size,
            md5: None,
            date: None,
            description: None,
            state: crate::store::TransferState::Offered,
            files,
            rel_path,
        }
    }
}

/// Records how batch `id` ended short of completion, for it and its files not yet
/// done (the same state), and announces it: declined, cancelled, or failed
/// (interrupted when it can go on).
pub(super) fn record_stop(t: &super::Transfers, id: i64, name: String, stop: super::driver::Stop) {
    use super::driver::Stop;
    use crate::store::TransferState;
    let store = &t.inner.store;
    match stop {
        Stop::Declined(reason) => {
            let _ =
                store.set_open_files_state(id, TransferState::Rejected, Some((super::FailReason::Declined, &reason)));
            t.declined(id, name, reason);
        }
        Stop::Failed(f) if f.reason == super::FailReason::Cancelled => {
            let _ = store.set_open_files_state(id, TransferState::Cancelled, Some((f.reason, &f.error)));
            t.cancelled(id, name, f.resumable);
        }
        Stop::Failed(f) => {
            let state = if f.resumable { TransferState::Interrupted } else { TransferState::Failed };
            let _ = store.set_open_files_state(id, state, Some((f.reason, &f.error)));
            t.fail(id, &name, f);
        }
    }
}

/// One file of a run, verified and under its name.
#[derive(Debug, Clone)]
pub(super) struct PlacedFile {
    /// Its index in the manifest.
    pub(super) index: usize,
    pub(super) path: PathBuf,
    pub(super) sha256: String,
    pub(super) verified: Verification,
}

/// A batch accepted here, while its streams arrive.
pub(super) struct IncomingBatch {
    pub(super) id: i64,
    pub(super) peer: Jid,
    pub(super) name: String,
    pub(super) manifest: Manifest,
    pub(super) tree: BatchTree,
    /// The files' records, in manifest order.
    pub(super) file_ids: Vec<i64>,
    /// A follower of the batch's cancel switch, for each stream.
    cancel: CancelGuard,
    progress: Mutex<Received>,
    /// Wakes the batch's watcher: a stream started or ended, or the batch ended.
    activity: tokio::sync::Notify,
    started: Instant,
}

/// What of a batch is here.
struct Received {
    /// Per entry: verified and named.
    done: Vec<bool>,
    /// Per entry: a stream carrying it is running.
    busy: Vec<bool>,
    /// Bytes that travelled in this attempt.
    transferred: u64,
    all_verified: bool,
    route: Option<crate::store::Route>,
    /// The batch is over (completed, failed, cancelled): nothing more is taken.
    ended: bool,
}

impl Received {
    /// Files verified and named so far.
    fn files_done(&self) -> u64 {
        self.done.iter().filter(|d| **d).count() as u64
    }

    /// Their bytes, by `manifest`.
    fn bytes_done(&self, manifest: &Manifest) -> u64 {
        self.done.iter().zip(&manifest.entries).filter(|(d, _)| **d).map(|(_, e)| e.size).sum()
    }
}

impl IncomingBatch {
    pub(super) fn size(&self) -> u64 {
        self.manifest.head.size
    }

    /// Bytes of the batch done so far (where a new stream's progress starts).
    pub(super) fn bytes_done(&self) -> u64 {
        self.progress.lock().unwrap().bytes_done(&self.manifest)
    }

    /// The manifest's SHA-256 of a run's only file.
    pub(super) fn sha256_of(&self, run: &InBatch) -> Option<String> {
        run.entries(&self.manifest).and_then(|e| e.first()).and_then(|e| e.sha256.clone())
    }
}
