//! The receiving side's `.part` writer: bytes land there, hashed as they are
//! written, and the file takes its final name only once size and digests check out.

use std::io;
use std::path::{Path, PathBuf};

use tokio::fs::File;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::hash::{hash_file, Hashes, PipelinedHasher};
use super::names::{exists_no_follow, part_path, unique_path};
use super::{human_bytes, sync_dir, IO_BUFFER, SYNC_EVERY};

/// Why a received file was not accepted by [`PartFile::finish`].
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The transfer ended with a size other than the announced one. The `.part` file
    /// is kept, for inspection or to resume.
    #[error("the sender announced {expected} bytes but sent {got}")]
    SizeMismatch {
        /// Size announced in the offer.
        expected: u64,
        /// Size of what arrived.
        got: u64,
    },
    /// The content does not have the announced digest. The `.part` file was removed.
    #[error(
        "the file's {algo} does not match what the sender announced (expected {expected}, got {got}): it was damaged \
         in transit; the partial file was removed"
    )]
    HashMismatch {
        /// `MD5` or `SHA-256`.
        algo: &'static str,
        /// Digest announced by the sender.
        expected: String,
        /// Digest of what arrived (lowercase hex).
        got: String,
    },
    /// Reading, syncing or moving the file failed.
    #[error("the received file could not be saved: {0}")]
    Io(#[from] io::Error),
}

/// A file that was received completely, verified and moved to its final name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Where the file is now: the requested final path, or `name (n).ext` when that
    /// was taken meanwhile.
    pub path: PathBuf,
    /// Digests of the whole file.
    pub hashes: Hashes,
    /// Its size in bytes.
    pub size: u64,
    /// What was checked beside the size.
    pub verified: crate::store::Verification,
}

/// The receiving side's writer: appends to `<final>.part`, refuses more bytes than
/// announced, and on [`finish`](PartFile::finish) verifies the file and moves it to a
/// free final name.
///
/// Writes go through a 1 MiB buffer. Dropping a `PartFile` without finishing it
/// leaves the `.part` file in place (call [`flush`](PartFile::flush) first to keep
/// everything written), so that the transfer can be resumed with
/// [`resume`](PartFile::resume).
#[derive(Debug)]
pub struct PartFile {
    final_path: PathBuf,
    part_path: PathBuf,
    writer: BufWriter<File>,
    written: u64,
    expected: u64,
    /// Bytes written since the last sync.
    unsynced: u64,
    /// Hashes what is written, on threads of their own, so that [`finish`] does not
    /// read the file again. `None` once it failed (then `finish` reads the file).
    hasher: Option<PipelinedHasher>,
}

impl PartFile {
    /// Starts a new transfer of `expected_size` bytes to `final_path`: creates
    /// `final_path.part`, failing (`AlreadyExists`) if it exists.
    pub async fn create(final_path: PathBuf, expected_size: u64) -> io::Result<PartFile> {
        let part_path = part_path(&final_path);
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&part_path).await?;
        Ok(PartFile::from_parts(final_path, part_path, file, 0, expected_size))
    }

    /// Continues a transfer of `expected_size` bytes to `final_path` at byte `offset`:
    /// opens the existing `final_path.part`, which must be a regular file holding at
    /// least `offset` bytes, cuts it to `offset` bytes and appends from there.
    ///
    /// The existing prefix is hashed on the hashing threads while new bytes arrive.
    pub async fn resume(final_path: PathBuf, offset: u64, expected_size: u64) -> io::Result<PartFile> {
        let part_path = part_path(&final_path);
        if offset > expected_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot resume at byte {offset}: the file has only {expected_size} bytes"),
            ));
        }
        let meta = tokio::fs::symlink_metadata(&part_path).await?;
        if !meta.file_type().is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot resume into {}: it is not a regular file", part_path.display()),
            ));
        }
        let mut file = tokio::fs::OpenOptions::new().write(true).open(&part_path).await?;
        let len = file.metadata().await?.len();
        if len < offset {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "cannot resume at byte {offset}: the partial file {} holds only {len} bytes",
                    part_path.display()
                ),
            ));
        }
        file.set_len(offset).await?;
        file.seek(io::SeekFrom::Start(offset)).await?;
        Ok(PartFile::from_parts(final_path, part_path, file, offset, expected_size))
    }

    fn from_parts(final_path: PathBuf, part_path: PathBuf, file: File, written: u64, expected: u64) -> PartFile {
        let hasher = match PipelinedHasher::start(&part_path, written) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!("no hashing thread ({e}); the file will be hashed at the end");
                None
            }
        };
        let writer = BufWriter::with_capacity(IO_BUFFER, file);
        PartFile { final_path, part_path, writer, written, expected, unsynced: 0, hasher }
    }

    /// Appends `data`. Fails with `InvalidData`, writing nothing, when the file would
    /// become larger than the announced size: a lying peer must not fill the disk.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let room = self.expected - self.written;
        if data.len() as u64 > room {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the sender sent more than the {} bytes it announced ({} more after {})",
                    self.expected,
                    data.len(),
                    self.written
                ),
            ));
        }
        if let Err(e) = self.writer.write_all(data).await {
            return Err(self.explain(e));
        }
        self.written += data.len() as u64;
        if let Some(h) = &self.hasher {
            if !h.update(data).await {
                self.hasher = None; // the thread ended: hash the file at the end
            }
        }
        self.unsynced += data.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    /// A write error in words: a full disk names the folder and says what is kept.
    fn explain(&self, e: io::Error) -> io::Error {
        if e.kind() != io::ErrorKind::StorageFull {
            return e;
        }
        let dir = self.final_path.parent().unwrap_or_else(|| Path::new("."));
        io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "the disk holding {} is full after {} of {}; what reached the disk is kept for a resume once there is room",
                dir.display(),
                human_bytes(self.written),
                human_bytes(self.expected)
            ),
        )
    }

    /// Sets the size the file must have, for a download whose size was not known
    /// when it started (the cap given to `create` until then).
    pub fn expect_size(&mut self, size: u64) {
        self.expected = size;
    }

    /// Bytes in the file, including a resumed prefix.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The size announced for the whole file.
    pub fn expected_size(&self) -> u64 {
        self.expected
    }

    /// Writes out the buffer and makes the data durable (`sync_data`), so that a
    /// resume record saved afterwards never points past what is on disk.
    pub async fn flush(&mut self) -> io::Result<()> {
        let r = match self.writer.flush().await {
            Ok(()) => self.writer.get_ref().sync_data().await,
            Err(e) => Err(e),
        };
        r.map_err(|e| self.explain(e))?;
        self.unsynced = 0;
        Ok(())
    }

    /// Where data is written until the file is complete.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// The name the file is meant to get once complete (it may end up at
    /// `name (n).ext` if this one is taken by then).
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Completes the transfer: flushes and syncs, checks the size (else
    /// [`VerifyError::SizeMismatch`], the `.part` is kept), takes the hashes of
    /// everything written (from the hashing threads; the file is read again only when
    /// a hashing thread failed),
    /// compares its MD5 with `expected_md5` case-insensitively when one is given (else
    /// [`VerifyError::HashMismatch`], the `.part` is deleted), then moves it to its
    /// final name without overwriting anything: if the final path is taken by now, a
    /// free `name (n).ext` is used instead.
    pub async fn finish(self, expected_md5: Option<&str>) -> Result<Finished, VerifyError> {
        self.finish_checked(expected_md5, &[]).await
    }

    /// [`finish`](PartFile::finish) that also compares the SHA-256 with each of
    /// `expected_sha256` (the offer's, the checksum sent after the data): all must
    /// match. [`Finished::verified`] tells the strongest check made.
    pub async fn finish_checked(
        mut self,
        expected_md5: Option<&str>,
        expected_sha256: &[&str],
    ) -> Result<Finished, VerifyError> {
        self.flush().await?;
        let PartFile { final_path, part_path, writer, expected, hasher, .. } = self;
        let file = writer.into_inner();
        let size = file.metadata().await?.len();
        drop(file);
        if size != expected {
            return Err(VerifyError::SizeMismatch { expected, got: size });
        }
        let streamed = match hasher {
            Some(h) => h.finish().await.map_err(|e| tracing::warn!("hashing thread: {e}; reading the file again")).ok(),
            None => None,
        };
        let hashes = match streamed {
            Some(h) => h,
            None => hash_file(part_path.clone(), None).await?,
        };
        let mismatch = expected_sha256
            .iter()
            .find(|h| !h.trim().eq_ignore_ascii_case(&hashes.sha256))
            .map(|h| ("SHA-256", h.trim().to_owned(), hashes.sha256.clone()))
            .or_else(|| {
                expected_md5
                    .filter(|m| !m.trim().eq_ignore_ascii_case(&hashes.md5))
                    .map(|m| ("MD5", m.trim().to_owned(), hashes.md5.clone()))
            });
        if let Some((algo, expected, got)) = mismatch {
            if let Err(e) = tokio::fs::remove_file(&part_path).await {
                tracing::warn!(path = %part_path.display(), error = %e, "could not remove a damaged partial file");
            }
            return Err(VerifyError::HashMismatch { algo, expected, got });
        }
        let verified = if !expected_sha256.is_empty() {
            crate::store::Verification::Sha256
        } else if expected_md5.is_some() {
            crate::store::Verification::Md5
        } else {
            crate::store::Verification::None
        };
        let path = tokio::task::spawn_blocking(move || move_into_place(&part_path, &final_path))
            .await
            .map_err(|e| io::Error::other(format!("moving the file was interrupted: {e}")))??;
        Ok(Finished { path, hashes, size, verified })
    }
}

/// Moves `part` to `final_path`, or to a free `name (n).ext` beside it when that is
/// taken, never overwriting an existing file. Returns where the file went.
///
/// A hard link followed by removing `part` is an atomic "rename unless the target
/// exists" on one file system. Where hard links are not supported (FAT, some network
/// shares) it falls back to a rename after checking that the target is free, which
/// leaves only a tiny race.
pub(super) fn move_into_place(part: &Path, final_path: &Path) -> io::Result<PathBuf> {
    /// Attempts before giving up when free names keep being taken by someone else.
    const MAX_ATTEMPTS: usize = 100;

    let dir = final_path.parent().unwrap_or_else(|| Path::new(""));
    let name = final_path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the destination has no file name"))?
        .to_string_lossy()
        .into_owned();
    let mut target = final_path.to_path_buf();
    let mut hard_links_work = true;
    for _ in 0..MAX_ATTEMPTS {
        if hard_links_work {
            match std::fs::hard_link(part, &target) {
                Ok(()) => {
                    if let Err(e) = std::fs::remove_file(part) {
                        // The file is complete at `target`; the extra name only wastes
                        // a directory entry, not space.
                        tracing::warn!(path = %part.display(), error = %e, "could not remove the partial file");
                    }
                    sync_dir(dir);
                    return Ok(target);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    target = unique_path(dir, &name);
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "hard link failed; falling back to rename");
                    hard_links_work = false;
                }
            }
        }
        if exists_no_follow(&target) {
            target = unique_path(dir, &name);
            continue;
        }
        std::fs::rename(part, &target)?;
        sync_dir(dir);
        return Ok(target);
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name for {} could be found in {}", name, dir.display()),
    ))
}
