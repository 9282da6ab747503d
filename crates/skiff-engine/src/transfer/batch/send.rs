//! The sending side of batches: the files chosen become a manifest, announced in
//! parts; once the receiver accepted it, the files go as SI streams, small ones many to
//! a stream.

use std::collections::HashSet;
use std::ops::Range;
use std::path::PathBuf;

use skiff_proto::batch::{Entry, InBatch, Manifest, Received, RelPath, MAX_PART_ENTRIES};
use skiff_proto::jid::Jid;
use skiff_proto::stanza::{Condition, Iq};

use super::{RUN_BYTES, RUN_FILES, SMALL_FILE};
use crate::event::Event;
use crate::files::{self, Chosen, Hashes, StreamHasher};
use crate::session::ClientError;
use crate::store::{Direction, NewTransfer, TransferState, Verification};
use crate::transfer::driver::Stop;
use crate::transfer::outgoing::{pick_resource, random_sid, send_run, PackRun, RunSpec};
use crate::transfer::{CancelGuard, Completed, FailReason, Failure, TransferError, Transfers};

/// The name a batch of loose files (not one folder) goes by, before its date.
pub const NAME_FOR_LOOSE_FILES: &str = "Files";

/// One file of a batch being sent.
#[derive(Debug, Clone)]
pub(in crate::transfer) struct BatchItem {
    pub(in crate::transfer) path: PathBuf,
    pub(in crate::transfer) rel: RelPath,
    pub(in crate::transfer) size: u64,
    pub(in crate::transfer) date: String,
}

/// What was chosen as a batch.
struct Selection {
    name: String,
    /// The folder, when one folder was chosen.
    folder: Option<PathBuf>,
    items: Vec<BatchItem>,
}

/// What was chosen as a batch: its name and files, each with its path in the batch.
/// One folder: its name, the paths inside it. Anything else: a made-up name, each
/// file by the path it was chosen with (loose files by their names, made distinct).
fn items(chosen: &[Chosen]) -> Result<Selection, TransferError> {
    let top = |c: &Chosen| c.rel.as_deref().and_then(|r| r.split_once('/')).map(|(top, _)| top.to_owned());
    let one_folder = top(&chosen[0]).filter(|f| chosen.iter().all(|c| top(c).as_deref() == Some(f.as_str())));
    let name = match &one_folder {
        Some(folder) => folder.clone(),
        None => {
            format!("{NAME_FOR_LOOSE_FILES} {}", &skiff_proto::dates::format_xep82(std::time::SystemTime::now())[..10])
        }
    };
    let mut taken = HashSet::new();
    let mut out = Vec::with_capacity(chosen.len());
    for c in chosen {
        let source =
            |e: std::io::Error| TransferError::Source { path: c.path.display().to_string(), reason: e.to_string() };
        let meta = files::file_meta(&c.path).map_err(source)?;
        let path = std::fs::canonicalize(&c.path).map_err(source)?;
        let within = match (&one_folder, &c.rel) {
            (Some(_), Some(rel)) => rel.split_once('/').map(|(_, r)| r.to_owned()).unwrap_or_default(),
            (None, Some(rel)) => rel.clone(),
            (_, None) => meta.name.clone(),
        };
        let rel = distinct(&within, &mut taken);
        let rel = RelPath::new(&rel).map_err(|e| TransferError::Other(format!("{}: {e}", c.path.display())))?;
        out.push(BatchItem { path, rel, size: meta.size, date: meta.date });
    }
    // The chosen folder: above the first file by as many steps as its path inside it.
    let folder = one_folder.and_then(|_| out[0].path.ancestors().nth(out[0].rel.components().count()).map(Into::into));
    Ok(Selection { name, folder, items: out })
}

/// `path`, or `path` with ` (n)` before its extension when taken (case folded).
fn distinct(path: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = path.to_owned();
    let (stem, ext) = match path.rfind('.').filter(|i| *i > path.rfind('/').map_or(0, |s| s + 1)) {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    let mut n = 0;
    while !taken.insert(candidate.to_lowercase()) {
        n += 1;
        candidate = format!("{stem} ({n}){ext}");
    }
    candidate
}

/// Consecutive small files share a stream (up to [`RUN_BYTES`] and [`RUN_FILES`]);
/// a bigger file has one to itself.
pub(in crate::transfer) fn plan_runs(sizes: &[u64]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    let mut bytes = 0u64;
    for (i, &size) in sizes.iter().enumerate() {
        let joins = match runs.last() {
            Some(r) if size <= SMALL_FILE => {
                let small_run = sizes[r.clone()].iter().all(|s| *s <= SMALL_FILE);
                small_run && ((r.len() as u64) < RUN_FILES) && bytes + size <= RUN_BYTES
            }
            _ => false,
        };
        if joins {
            runs.last_mut().expect("checked").end = i + 1;
            bytes += size;
        } else {
            runs.push(i..i + 1);
            bytes = size;
        }
    }
    runs
}

/// The runs of consecutive indexes whose flag is `value`.
fn ranges(flags: &[bool], value: bool) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, _) in flags.iter().enumerate().filter(|(_, f)| **f == value) {
        match out.last_mut() {
            Some(r) if r.end == i => r.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// The streams for the files the receiver lacks (`have`: one flag per file): runs
/// planned over each stretch of missing files.
pub(in crate::transfer) fn plan_missing(sizes: &[u64], have: &[bool]) -> Vec<Range<usize>> {
    ranges(have, false)
        .into_iter()
        .flat_map(|gap| plan_runs(&sizes[gap.clone()]).into_iter().map(move |r| r.start + gap.start..r.end + gap.start))
        .collect()
}

/// Starts sending `chosen` to `to` as one batch: the batch and its files are recorded
/// and announced (`TransferOffered` with `files`), the rest runs in the background.
/// [`TransferError::NoBatches`] when the contact's client does not take batches (then
/// send the files one by one).
pub(in crate::transfer) async fn send_batch(t: &Transfers, to: &Jid, chosen: &[Chosen]) -> Result<i64, TransferError> {
    if chosen.is_empty() {
        return Err(TransferError::Other("no file to send".into()));
    }
    let peer = pick_resource(t, to).await?;
    if !peer.batches {
        return Err(TransferError::NoBatches(peer.jid.to_string()));
    }
    let Selection { name, folder, items } = items(chosen)?;
    let wire_id = random_sid()[..20].to_owned();
    let rows = super::Rows { t, batch_id: &wire_id, direction: Direction::Outgoing, peer: peer.jid.to_string() };
    let row = |file_name: String, local_path: Option<String>, size, files, rel_path| {
        rows.row(file_name, local_path, size, files, rel_path)
    };
    let total: u64 = items.iter().map(|i| i.size).fold(0, u64::saturating_add);
    let folder = folder.map(|f| f.display().to_string());
    let batch = row(name.clone(), folder, total, Some(items.len() as u64), None);
    let files: Vec<NewTransfer> = items
        .iter()
        .map(|i| {
            let file_name = i.rel.components().last().unwrap_or_default().to_owned();
            row(file_name, Some(i.path.display().to_string()), i.size, None, Some(i.rel.to_string()))
        })
        .collect();
    let (id, file_ids) = t.inner.store.insert_batch(&batch, &files)?;
    let cancel = t.claim(id).ok_or(TransferError::AlreadyActive(id))?;
    Ok(Outgoing { t: t.clone(), id, wire_id, target: peer.jid, name, items, file_ids }.launch(cancel, total, 0))
}

/// Continues batch `rec` (ours, unfinished): announced again with the same id, so
/// that the receiver answers with what it holds; only the rest is sent.
pub(in crate::transfer) async fn resume(
    t: &Transfers,
    rec: crate::store::TransferRecord,
) -> Result<i64, TransferError> {
    let id = rec.id;
    let not = |reason: String| TransferError::NotResumable { id, reason };
    if rec.state == TransferState::Completed {
        return Err(not("it is already complete".into()));
    }
    let recorded = t.inner.store.batch_files(id)?;
    let mut items = Vec::with_capacity(recorded.len());
    for r in &recorded {
        let (Some(path), Some(rel)) = (r.local_path.as_deref(), r.rel_path.as_deref()) else {
            return Err(not("a file's source is unknown".into()));
        };
        let meta = files::file_meta(std::path::Path::new(path)).map_err(|e| not(format!("{path}: {e}")))?;
        if meta.size != r.size {
            return Err(not(format!("{path} changed since it was offered")));
        }
        let rel = RelPath::new(rel).map_err(|e| not(e.to_string()))?;
        items.push(BatchItem { path: PathBuf::from(path), rel, size: r.size, date: meta.date });
    }
    let peer_jid: Jid = rec.peer_jid.parse().map_err(|e| TransferError::Other(format!("stored peer address: {e}")))?;
    let to = if t.client().presence_of(&peer_jid.bare()).is_empty() { peer_jid } else { peer_jid.bare() };
    let peer = pick_resource(t, &to).await?;
    if !peer.batches {
        return Err(not(format!("{} no longer takes batches", peer.jid)));
    }
    let cancel = t.claim(id).ok_or(TransferError::AlreadyActive(id))?;
    t.inner.store.start_attempt(id, &rec.sid, &peer.jid.to_string(), 0)?;
    t.inner.store.set_state(id, TransferState::Offered, None)?;
    let resume_from = recorded.iter().filter(|r| r.state == TransferState::Completed).map(|r| r.size).sum();
    let file_ids = recorded.iter().map(|r| r.id).collect();
    let job = Outgoing { t: t.clone(), id, wire_id: rec.sid, target: peer.jid, name: rec.file_name, items, file_ids };
    Ok(job.launch(cancel, rec.size, resume_from))
}

/// A batch on its way.
struct Outgoing {
    t: Transfers,
    id: i64,
    wire_id: String,
    target: Jid,
    name: String,
    items: Vec<BatchItem>,
    file_ids: Vec<i64>,
}

impl Outgoing {
    /// Announces the batch (claimed by `cancel`; `resume_from` bytes already across)
    /// and runs it in the background. Returns its id.
    fn launch(self, cancel: CancelGuard, size: u64, resume_from: u64) -> i64 {
        let (t, id) = (self.t.clone(), self.id);
        t.emit(Event::TransferOffered {
            id,
            direction: Direction::Outgoing,
            peer: self.target.to_string(),
            name: self.name.clone(),
            size,
            description: None,
            resume_from,
            files: Some(self.items.len() as u64),
        });
        tokio::spawn(self.run(cancel));
        id
    }

    async fn run(self, mut cancel: CancelGuard) {
        let (t, id) = (self.t.clone(), self.id);
        let ended = self.send(&mut cancel).await;
        // Not running any more when its end is recorded.
        drop(cancel);
        if let Err(stop) = ended {
            super::record_stop(&t, id, self.name, stop);
        }
    }

    /// Sends the files `run` as one stream, `base` bytes into the batch, and records
    /// them completed.
    async fn send_one(
        &self,
        run: Range<usize>,
        hashes: Option<Hashes>,
        base: u64,
        batch_size: u64,
        file_hashes: &[Option<String>],
        cancel: &mut CancelGuard,
    ) -> Result<crate::transfer::outgoing::RunOutcome, Stop> {
        let spec = RunSpec {
            batch_id: self.id,
            target: self.target.clone(),
            name: format!("{}/{}", self.name, self.items[run.start].rel),
            date: self.items[run.start].date.clone(),
            hashes,
        };
        let pack = PackRun {
            files: self.items[run.clone()].iter().map(|i| (i.path.clone(), i.size)).collect(),
            marker: InBatch { id: self.wire_id.clone(), first: run.start as u64, count: run.len() as u64 },
            base,
            batch_size,
        };
        let outcome = send_run(&self.t, spec, pack, cancel).await?;
        let verified = if outcome.verified { Verification::Sha256 } else { Verification::None };
        let done: Vec<_> = run
            .map(|i| {
                let sha = file_hashes[i].clone().or_else(|| outcome.sha256.clone()).unwrap_or_default();
                (self.file_ids[i], self.items[i].path.display().to_string(), sha, verified)
            })
            .collect();
        if let Err(e) = self.t.inner.store.complete_files(&done) {
            tracing::warn!("history: {e}");
        }
        Ok(outcome)
    }

    /// Files the receiver holds from an earlier attempt: completed here too (`recorded`:
    /// the batch's files' records, in order).
    fn held(&self, run: Range<usize>, hashes: &[Option<String>], recorded: &[crate::store::TransferRecord]) {
        let store = &self.t.inner.store;
        let done: Vec<_> = run
            .filter_map(|i| {
                let rec = recorded.get(i).filter(|r| r.id == self.file_ids[i])?;
                let sha = hashes[i].clone().or(rec.sha256.clone()).unwrap_or_default();
                let verified = if rec.state == TransferState::Completed { rec.verified } else { Verification::Sha256 };
                Some((self.file_ids[i], self.items[i].path.display().to_string(), sha, verified))
            })
            .collect();
        if let Err(e) = store.complete_files(&done) {
            tracing::warn!("history: {e}");
        }
    }

    async fn send(&self, cancel: &mut CancelGuard) -> Result<(), Stop> {
        let started = std::time::Instant::now();
        let sizes: Vec<u64> = self.items.iter().map(|i| i.size).collect();
        let runs = plan_runs(&sizes);
        let cancelled = || Stop::Failed(Failure { resumable: false, ..Failure::cancelled() });
        let hashed = cancel.or_cancel(hash_runs(&self.t, &self.items, &runs)).await.ok_or_else(cancelled)??;
        let entries = self
            .items
            .iter()
            .zip(&hashed.files)
            .map(|(i, sha256)| Entry { path: i.rel.clone(), size: i.size, sha256: sha256.clone() })
            .collect();
        let manifest = Manifest::new(&self.wire_id, &self.name, entries)
            .map_err(|e| Stop::fatal(FailReason::Source, format!("the files cannot go as one batch: {e}")))?;
        let have = cancel.or_cancel(self.announce(&manifest)).await.ok_or_else(cancelled)??;
        let _ = self.t.inner.store.set_state(self.id, TransferState::Accepted, None);
        let (mut bytes, mut route, mut all_verified) = (0u64, None, true);
        // Held by the receiver from an earlier attempt: not sent again.
        let held = ranges(&have, true);
        if !held.is_empty() {
            let recorded = self.t.inner.store.batch_files(self.id).unwrap_or_default();
            held.into_iter().for_each(|run| self.held(run, &hashed.files, &recorded));
        }
        let mut files_done = have.iter().filter(|h| **h).count() as u64;
        // The rest, in runs planned over it (a run cut short before is not sent whole).
        for run in plan_missing(&sizes, &have) {
            // A run planned anew (part of it is held) is hashed as a stream again.
            let stream_hashes = match runs.iter().position(|r| *r == run) {
                Some(k) => hashed.runs[k].clone(),
                None => {
                    let again = hash_runs(&self.t, &self.items, std::slice::from_ref(&run));
                    cancel.or_cancel(again).await.ok_or_else(cancelled)??.runs.pop().flatten()
                }
            };
            let base: u64 = sizes[..run.start].iter().sum();
            let outcome =
                self.send_one(run.clone(), stream_hashes, base, manifest.head.size, &hashed.files, cancel).await?;
            bytes += outcome.bytes;
            route = Some(outcome.route);
            all_verified &= outcome.verified;
            files_done += run.len() as u64;
            let files = self.items.len() as u64;
            self.t.emit(Event::BatchProgress { id: self.id, files_done, files });
        }
        self.t.record_completed(Completed {
            id: self.id,
            name: self.name.clone(),
            path: self.t.inner.store.get(self.id).ok().and_then(|r| r.local_path).unwrap_or_default(),
            size: manifest.head.size,
            bytes,
            md5: None,
            sha256: None,
            route: route.unwrap_or(crate::store::Route::S5bDirect),
            seconds: started.elapsed().as_secs_f64(),
            verified: if all_verified { Verification::Sha256 } else { Verification::None },
        });
        Ok(())
    }

    /// Sends the manifest's parts; the last one's answer is the receiver's decision,
    /// with what it holds already when it continues an earlier attempt (one flag per
    /// file).
    async fn announce(&self, manifest: &Manifest) -> Result<Vec<bool>, Stop> {
        let client = self.t.client();
        let parts = manifest.parts(MAX_PART_ENTRIES);
        let last = parts.len() - 1;
        let mut have = vec![false; manifest.entries.len()];
        for (i, part) in parts.iter().enumerate() {
            let timeout = (i == last).then(|| self.t.cfg().offer_timeout);
            let iq = Iq::set("", Some(self.target.clone()), part.into());
            match client.iq_within(iq, timeout).await {
                Ok(Some(answer)) if i == last => {
                    let receipt = Received::try_from(&answer)
                        .and_then(|r| r.flags(manifest.head.files))
                        .map_err(|e| Stop::fatal(FailReason::Protocol, format!("the receiver's answer: {e}")))?;
                    have = receipt;
                }
                Ok(_) => {}
                Err(ClientError::Stanza { error, .. }) if error.condition == Condition::Forbidden => {
                    return Err(Stop::Declined(error.text.clone().unwrap_or_else(|| "declined".into())));
                }
                Err(ClientError::Stanza { error, .. }) => {
                    let why = error.text.clone().unwrap_or_else(|| error.condition.as_str().to_owned());
                    return Err(Stop::fatal(FailReason::Refused, format!("{} refused the batch: {why}", self.target)));
                }
                Err(e @ ClientError::Timeout { .. }) => return Err(Stop::fatal(FailReason::Timeout, e.to_string())),
                Err(e) => return Err(Stop::resumable(FailReason::Offline, e.to_string())),
            }
        }
        Ok(have)
    }
}

/// What is known of the files before they are announced: each small file's SHA-256
/// (files travelling together are checked one by one), and each run's digests as a
/// stream (for its offer); a file alone has its SHA-256 when the cache knows it.
struct Hashed {
    files: Vec<Option<String>>,
    runs: Vec<Option<Hashes>>,
}

async fn hash_runs(t: &Transfers, items: &[BatchItem], runs: &[Range<usize>]) -> Result<Hashed, Stop> {
    let mut files = vec![None; items.len()];
    let mut streams = Vec::with_capacity(runs.len());
    for run in runs {
        if run.len() == 1 {
            let i = &items[run.start];
            let cached = files::file_meta(&i.path).ok().and_then(|m| {
                t.inner.store.hash_cache_get(&i.path.display().to_string(), m.size, m.mtime_ns).ok().flatten()
            });
            files[run.start] = cached.and_then(|(_, sha256)| sha256);
            streams.push(None);
            continue;
        }
        let paths: Vec<(PathBuf, u64)> = items[run.clone()].iter().map(|i| (i.path.clone(), i.size)).collect();
        let (each, whole) = tokio::task::spawn_blocking(move || hash_together(&paths))
            .await
            .map_err(|e| Stop::fatal(FailReason::Source, format!("hashing was interrupted: {e}")))?
            .map_err(|e| Stop::fatal(FailReason::Source, e))?;
        for (slot, sha) in files[run.clone()].iter_mut().zip(each) {
            *slot = Some(sha);
        }
        streams.push(Some(whole));
    }
    Ok(Hashed { files, runs: streams })
}

/// Each file's SHA-256 and the digests of all of them as one stream, in one read.
fn hash_together(files: &[(PathBuf, u64)]) -> Result<(Vec<String>, Hashes), String> {
    use std::io::Read;
    let mut whole = StreamHasher::new();
    let mut each = Vec::with_capacity(files.len());
    let mut buf = vec![0u8; 256 * 1024];
    for (path, size) in files {
        let cannot = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
        let mut f = std::fs::File::open(path).map_err(cannot)?;
        let mut one = StreamHasher::new();
        let mut left = *size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = f.read(&mut buf[..want]).map_err(cannot)?;
            if n == 0 {
                return Err(format!("{} got shorter while it was being read", path.display()));
            }
            one.update(&buf[..n]);
            whole.update(&buf[..n]);
            left -= n as u64;
        }
        each.push(one.finish().sha256);
    }
    Ok((each, whole.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_share_streams_big_ones_go_alone() {
        let k = 1024;
        let runs = plan_runs(&[10, 20, SMALL_FILE + 1, 0, 5 * k, SMALL_FILE, 100 << 20]);
        assert_eq!(runs, [0..2, 2..3, 3..6, 6..7]);
        // Caps on bytes and files per stream.
        let runs = plan_runs(&vec![SMALL_FILE; 40]);
        assert_eq!(runs.len(), 3, "{runs:?}");
        assert!(runs.iter().all(|r| r.len() as u64 * SMALL_FILE <= RUN_BYTES));
        let runs = plan_runs(&vec![1; 4_500]);
        assert_eq!(runs, [0..2000, 2000..4000, 4000..4500]);
        assert!(plan_runs(&[]).is_empty());
    }

    #[test]
    fn only_missing_files_travel_again() {
        let big = SMALL_FILE + 1;
        let sizes = [1, 1, 1, 1, big, 1, 1];
        let none = [false; 7];
        assert_eq!(plan_missing(&sizes, &none), plan_runs(&sizes));
        // The first run arrived in part, the big file whole.
        let have = [true, true, false, false, true, false, false];
        assert_eq!(plan_missing(&sizes, &have), [2..4, 5..7]);
        assert!(plan_missing(&sizes, &[true; 7]).is_empty());
        assert_eq!(ranges(&have, true), [0..2, 4..5]);
        assert_eq!(plan_missing(&sizes, &[false, true, false, true, false, true, false]), [0..1, 2..3, 4..5, 6..7]);
    }

    #[test]
    fn loose_files_get_distinct_names() {
        let mut taken = HashSet::new();
        assert_eq!(distinct("a.txt", &mut taken), "a.txt");
        assert_eq!(distinct("A.txt", &mut taken), "A (1).txt");
        assert_eq!(distinct("a.txt", &mut taken), "a (2).txt");
        assert_eq!(distinct("d.x/f", &mut taken), "d.x/f");
        assert_eq!(distinct("d.x/f", &mut taken), "d.x/f (1)");
    }

    #[test]
    fn one_folder_is_the_batch_and_its_name() {
        let d = tempfile::tempdir().unwrap();
        let photos = d.path().join("photos");
        std::fs::create_dir_all(photos.join("2024")).unwrap();
        std::fs::write(photos.join("2024/a.jpg"), b"a").unwrap();
        std::fs::write(photos.join("b.jpg"), b"bb").unwrap();
        let chosen = files::expand(std::slice::from_ref(&photos)).unwrap();
        let Selection { name, folder, items: inside } = items(&chosen).unwrap();
        assert_eq!(name, "photos");
        assert_eq!(folder, Some(std::fs::canonicalize(&photos).unwrap()));
        let rels: Vec<_> = inside.iter().map(|i| i.rel.to_string()).collect();
        assert_eq!(rels, ["2024/a.jpg", "b.jpg"]);
        // Loose files and a folder: a made-up name, each by the path it was chosen with.
        std::fs::write(d.path().join("b.jpg"), b"other").unwrap();
        let chosen = files::expand(&[photos, d.path().join("b.jpg")]).unwrap();
        let Selection { name, folder, items: loose } = items(&chosen).unwrap();
        assert!(name.starts_with("Files 20"), "{name}");
        assert_eq!(folder, None, "no one folder was chosen");
        let rels: Vec<_> = loose.iter().map(|i| i.rel.to_string()).collect();
        assert_eq!(rels, ["photos/2024/a.jpg", "photos/b.jpg", "b.jpg"]);
    }
}
