//! MD5 and SHA-256 of files: whole, incrementally, or beside the writer on threads
//! of their own.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use sha2::Sha256;

use super::IO_BUFFER;

/// Digests of a file, as lowercase hexadecimal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hashes {
    /// MD5, which is what XEP-0096 offers announce.
    pub md5: String,
    /// SHA-256, for XEP-0234 offers and the history.
    pub sha256: String,
}

/// MD5 and SHA-256 of a stream, computed incrementally.
#[derive(Clone, Default)]
pub struct StreamHasher {
    md5: Md5,
    sha256: Sha256,
    bytes: u64,
}

impl fmt::Debug for StreamHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamHasher").field("bytes", &self.bytes).finish_non_exhaustive()
    }
}

impl StreamHasher {
    /// A hasher that has seen nothing yet.
    pub fn new() -> StreamHasher {
        StreamHasher::default()
    }

    /// Adds `data` to both digests.
    pub fn update(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        self.md5.update(data);
        self.sha256.update(data);
    }

    /// Number of bytes seen so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The digests of everything seen.
    pub fn finish(self) -> Hashes {
        Hashes { md5: hex::encode(self.md5.finalize()), sha256: hex::encode(self.sha256.finalize()) }
    }
}

/// Hashes the file at `path`, or only its first `len` bytes, reading 1 MiB at a time.
///
/// Blocking: on the async side use [`hash_file`]. Fails with `UnexpectedEof` when the
/// file is shorter than `len`.
pub fn hash_file_blocking(path: &Path, len: Option<u64>) -> io::Result<Hashes> {
    let mut hasher = StreamHasher::new();
    read_chunks(path, len, |b| hasher.update(b))?;
    Ok(hasher.finish())
}

/// Feeds the file at `path`, or only its first `len` bytes, to `f`, 1 MiB at a time.
/// Fails with `UnexpectedEof` when the file is shorter than `len`.
fn read_chunks(path: &Path, len: Option<u64>, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; IO_BUFFER];
    let mut remaining = len;
    loop {
        let want = match remaining {
            Some(0) => break,
            Some(r) => usize::try_from(r).map_or(buf.len(), |r| r.min(buf.len())),
            None => buf.len(),
        };
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        f(&buf[..n]);
        if let Some(r) = remaining.as_mut() {
            *r -= n as u64;
        }
    }
    if let Some(r) = remaining.filter(|&r| r > 0) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} is {} bytes shorter than the {} bytes to hash", path.display(), r, len.unwrap_or(0)),
        ));
    }
    Ok(())
}

/// [`hash_file_blocking`] on tokio's blocking thread pool.
pub async fn hash_file(path: PathBuf, len: Option<u64>) -> io::Result<Hashes> {
    tokio::task::spawn_blocking(move || hash_file_blocking(&path, len))
        .await
        .map_err(|e| io::Error::other(format!("hashing was interrupted: {e}")))?
}

/// MD5 and SHA-256 each on a thread of their own, fed the written chunks through
/// bounded channels: hashing runs beside the network copy (and the two digests beside
/// each other) instead of after it, and slow hashing slows the writer down rather
/// than piling up memory.
#[derive(Debug)]
pub(super) struct PipelinedHasher {
    md5: HashThread,
    sha256: HashThread,
}

#[derive(Debug)]
struct HashThread {
    tx: tokio::sync::mpsc::Sender<std::sync::Arc<[u8]>>,
    thread: std::thread::JoinHandle<io::Result<Vec<u8>>>,
}

/// Chunks in flight to each hashing thread (each at most one write's worth).
const HASH_QUEUE: usize = 16;

impl HashThread {
    /// A thread computing `D` over the first `prefix` bytes of `path` (a resumed
    /// `.part`), then over whatever is sent.
    fn start<D: Digest + Send + 'static>(name: &str, path: &Path, prefix: u64) -> io::Result<HashThread> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::sync::Arc<[u8]>>(HASH_QUEUE);
        let path = path.to_owned();
        let thread = std::thread::Builder::new().name(format!("skiff-{name}")).spawn(move || {
            let mut d = D::new();
            if prefix > 0 {
                read_chunks(&path, Some(prefix), |b| d.update(b))?;
            }
            while let Some(chunk) = rx.blocking_recv() {
                d.update(&chunk);
            }
            Ok(d.finalize().to_vec())
        })?;
        Ok(HashThread { tx, thread })
    }

    async fn finish(self) -> io::Result<Vec<u8>> {
        drop(self.tx);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| io::Error::other(format!("hashing was interrupted: {e}")))?
            .map_err(|_| io::Error::other("a hashing thread failed"))?
    }
}

impl PipelinedHasher {
    pub(super) fn start(path: &Path, prefix: u64) -> io::Result<PipelinedHasher> {
        Ok(PipelinedHasher {
            md5: HashThread::start::<Md5>("md5", path, prefix)?,
            sha256: HashThread::start::<Sha256>("sha256", path, prefix)?,
        })
    }

    /// False when a thread has ended (the file is then hashed at the end).
    pub(super) async fn update(&self, data: &[u8]) -> bool {
        let chunk: std::sync::Arc<[u8]> = std::sync::Arc::from(data);
        self.md5.tx.send(chunk.clone()).await.is_ok() && self.sha256.tx.send(chunk).await.is_ok()
    }

    pub(super) async fn finish(self) -> io::Result<Hashes> {
        let (md5, sha256) = tokio::join!(self.md5.finish(), self.sha256.finish());
        Ok(Hashes { md5: hex::encode(md5?), sha256: hex::encode(sha256?) })
    }
}
