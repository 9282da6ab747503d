//! The digests of a file to send: from the cache, or computed in the background from
//! the moment the file is chosen; one job per file however many wait for it.

use super::*;

/// The file's digests, computed in the background from the offer on; awaited for
/// the checksum after the data and for the history.
#[derive(Debug)]
pub(super) struct HashJob {
    task: tokio::sync::Mutex<Option<JoinHandle<std::io::Result<Hashes>>>>,
    done: std::sync::OnceLock<Option<Hashes>>,
}

impl HashJob {
    pub(super) fn new(task: JoinHandle<std::io::Result<Hashes>>) -> HashJob {
        HashJob { task: tokio::sync::Mutex::new(Some(task)), done: std::sync::OnceLock::new() }
    }

    /// The digests (`None` when the file could not be read).
    pub(super) async fn get(&self) -> Option<Hashes> {
        let mut task = self.task.lock().await;
        if let Some(h) = self.done.get() {
            return h.clone();
        }
        let result = match task.take() {
            Some(j) => match j.await {
                Ok(Ok(h)) => Some(h),
                Ok(Err(e)) => {
                    tracing::warn!("hashing the file: {e}");
                    None
                }
                Err(e) => {
                    tracing::warn!("hashing the file: {e}");
                    None
                }
            },
            None => None,
        };
        let _ = self.done.set(result.clone());
        result
    }
}

/// A hashing job several waiters can share; the error says why the file could not be read.
pub(in crate::transfer) type SharedHashes =
    futures_util::future::Shared<futures_util::future::BoxFuture<'static, Result<Hashes, String>>>;

/// The job hashing the file at `path` (canonical, described by `meta`) now, cached as
/// it ends, or the one already running for this very file (same path, size and
/// modification time). `ahead` jobs wait for their turn ([`Transfers::prepare`]).
/// The caller has found the file missing from the hash cache.
pub(super) fn hash_job(t: &Transfers, path: PathBuf, meta: &files::FileMeta, ahead: bool) -> SharedHashes {
    use futures_util::FutureExt as _;
    let key = (path.clone(), meta.size, meta.mtime_ns);
    let mut hashing = t.inner.hashing.lock().unwrap();
    if let Some(job) = hashing.get(&key) {
        return job.clone();
    }
    let path_str = path.display().to_string();
    let st = t.clone();
    let slots = ahead.then(|| t.inner.prehash_slots.clone());
    let task = tokio::spawn({
        let key = key.clone();
        async move {
            let _turn = match slots {
                Some(s) => s.acquire_owned().await.ok(),
                None => None,
            };
            let result = files::hash_file(path.clone(), None).await;
            if let Ok(h) = &result {
                let _ = st.inner.store.hash_cache_put(&path_str, key.1, key.2, &h.md5, Some(&h.sha256));
            }
            st.inner.hashing.lock().unwrap().remove(&key);
            result
        }
    });
    let job = async move {
        match task.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("hashing was interrupted: {e}")),
        }
    }
    .boxed()
    .shared();
    hashing.insert(key, job.clone());
    job
}

/// Hashes `path` ahead of its offer (see [`Transfers::prepare`]), unless it is cached
/// already or cannot be read.
pub(in crate::transfer) fn hash_ahead(t: &Transfers, path: &Path) {
    let Ok(path) = std::fs::canonicalize(path) else { return };
    let Ok(meta) = files::file_meta(&path) else { return };
    let cached = t.inner.store.hash_cache_get(&path.display().to_string(), meta.size, meta.mtime_ns);
    if !matches!(cached, Ok(Some((_, Some(_))))) {
        // Runs to its end whether or not anyone waits (it fills the cache).
        let job = hash_job(t, path, &meta, true);
        tokio::spawn(async move {
            if let Err(e) = job.await {
                tracing::info!("hashing a file ahead of its offer: {e}");
            }
        });
    }
}

/// The digests for the offer and the job that computes them for the record: MD5 and
/// SHA-256 from the cache, or computed now if that is quick (within a second); else
/// the offer goes without (a Skiff gets the SHA-256 right after the last byte) and
/// the job goes on in the background.
pub(super) async fn offer_hashes(
    t: &Transfers,
    path: &Path,
    meta: &files::FileMeta,
) -> Result<(Option<String>, Option<String>, JoinHandle<std::io::Result<Hashes>>), TransferError> {
    let source_err =
        |e: std::io::Error| TransferError::Source { path: path.display().to_string(), reason: e.to_string() };
    let cached = t.inner.store.hash_cache_get(&path.display().to_string(), meta.size, meta.mtime_ns)?;
    if let Some((md5, Some(sha256))) = cached {
        let h = Hashes { md5, sha256 };
        return Ok((Some(h.md5.clone()), Some(h.sha256.clone()), tokio::spawn(async move { Ok(h) })));
    }
    // The job started when the file was chosen, or a new one (not queued behind
    // files hashed ahead: this one is being sent).
    let job = hash_job(t, path.to_path_buf(), meta, false);
    let mut task = tokio::spawn(async move { job.await.map_err(std::io::Error::other) });
    match tokio::time::timeout(Duration::from_secs(1), &mut task).await {
        Ok(Ok(Ok(h))) => Ok((Some(h.md5.clone()), Some(h.sha256.clone()), tokio::spawn(async move { Ok(h) }))),
        Ok(Ok(Err(e))) => Err(source_err(e)),
        Ok(Err(e)) => Err(TransferError::Other(e.to_string())),
        Err(_) => Ok((None, None, task)),
    }
}
