//! Continuing a batch left unfinished here: the same batch from the same client is
//! taken up without asking again, and the files already here (recorded, or found
//! whole by their SHA-256 after a kill) are not asked for again.

use std::path::PathBuf;

use skiff_proto::batch::Manifest;
use skiff_proto::jid::Jid;
use skiff_proto::stanza::StanzaError;

use super::receive::{begin, Start};
use crate::event::Event;
use crate::files;
use crate::store::{Direction, TransferState, Verification};
use crate::transfer::Transfers;

/// The same batch from the same peer, left unfinished here, whose files are as the
/// manifest says: continued without asking again. Its record and files' records.
pub(super) fn earlier_attempt(
    t: &Transfers,
    from: &Jid,
    manifest: &Manifest,
) -> Option<(crate::store::TransferRecord, Vec<crate::store::TransferRecord>)> {
    let store = &t.inner.store;
    let rec = store.batch_by_sid(&t.inner.account, &manifest.head.id, Direction::Incoming).ok()??;
    let same_peer = rec.peer_jid.split('/').next() == Some(from.bare().to_string().as_str());
    let unfinished = rec.state.is_resumable();
    let same = rec.files == Some(manifest.head.files) && rec.size == manifest.head.size;
    let root_there = rec.local_path.as_deref().is_some_and(|p| std::path::Path::new(p).is_dir());
    if !(same_peer && unfinished && same && root_there) {
        return None;
    }
    let files = store.batch_files(rec.id).ok()?;
    let matches = files.len() == manifest.entries.len()
        && files
            .iter()
            .zip(&manifest.entries)
            .all(|(r, e)| r.rel_path.as_deref() == Some(e.path.as_str()) && r.size == e.size);
    matches.then_some((rec, files))
}

/// Which of an earlier attempt's files are here: those recorded complete and still on
/// disk, and small files found under their name with the manifest's size and SHA-256
/// (named just before the receiver was stopped, not yet recorded: recorded now).
async fn held_files(
    t: &Transfers,
    tree: &files::BatchTree,
    manifest: &Manifest,
    records: &[crate::store::TransferRecord],
) -> Vec<bool> {
    let checks: Vec<_> = records
        .iter()
        .zip(&tree.files)
        .zip(&manifest.entries)
        .map(|((r, path), e)| (r.state == TransferState::Completed, r.id, path.clone(), e.size, e.sha256.clone()))
        .collect();
    let found = tokio::task::spawn_blocking(move || {
        checks
            .into_iter()
            .map(|(recorded, id, path, size, sha256)| {
                let meta = std::fs::symlink_metadata(&path).ok().filter(|m| m.is_file());
                match (recorded, meta, sha256) {
                    (true, Some(_), _) => (true, None),
                    (false, Some(m), Some(sha)) if m.len() == size && size <= super::SMALL_FILE => {
                        let same =
                            files::hash_file_blocking(&path, None).is_ok_and(|h| h.sha256.eq_ignore_ascii_case(&sha));
                        (same, same.then(|| (id, path.display().to_string(), sha, Verification::Sha256)))
                    }
                    _ => (false, None),
                }
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let found_now: Vec<_> = found.iter().filter_map(|(_, row)| row.clone()).collect();
    if !found_now.is_empty() {
        tracing::info!("{} files of an earlier attempt were found whole by their SHA-256", found_now.len());
        if let Err(e) = t.inner.store.complete_files(&found_now) {
            tracing::warn!("history: {e}");
        }
    }
    let mut done: Vec<bool> = found.into_iter().map(|(d, _)| d).collect();
    done.resize(manifest.entries.len(), false);
    done
}

/// Continues an earlier attempt of a batch in its folder: the files here are kept
/// ([`held_files`]), the rest will come; the answer tells the sender which it may skip.
pub(super) async fn resume(
    t: &Transfers,
    from: &Jid,
    manifest: Manifest,
    key: &(String, String),
    (rec, files): (crate::store::TransferRecord, Vec<crate::store::TransferRecord>),
) -> Result<Option<skiff_proto::batch::Received>, Box<StanzaError>> {
    let tree = files::layout_batch(PathBuf::from(rec.local_path.clone().unwrap_or_default()), &manifest);
    let done = held_files(t, &tree, &manifest, &files).await;
    let receipt = skiff_proto::batch::Received::from_flags(&manifest.head.id, &done);
    let have: u64 = done.iter().zip(&manifest.entries).filter(|(d, _)| **d).map(|(_, e)| e.size).sum();
    let _ = t.inner.store.start_attempt(rec.id, &manifest.head.id, &from.to_string(), have);
    let name = rec.file_name.clone();
    t.emit(Event::TransferOffered {
        id: rec.id,
        direction: Direction::Incoming,
        peer: from.to_string(),
        name: name.clone(),
        size: manifest.head.size,
        description: None,
        resume_from: have,
        files: Some(manifest.head.files),
    });
    tracing::info!("continuing batch {} from {from}: {} of {} files here", rec.id, receipt.have.len(), files.len());
    let file_ids = files.iter().map(|r| r.id).collect();
    let batch = begin(t, from, manifest, key, Start { id: rec.id, name, tree, file_ids, done })?;
    // Everything was here already: done at once.
    if batch.progress.lock().unwrap().files_done() == batch.manifest.head.files {
        batch.end(t, Ok(()));
    }
    Ok(Some(receipt))
}
