//! A run of a batch's small files that travelled as one stream (a pack): once the
//! stream arrived whole and verified, it is cut into its files, each checked against
//! its own SHA-256 from the manifest, written to `<final>.part`, made durable, and
//! only then given its name (never over an existing file). Many small files thus cost
//! one negotiation, and each still lands only whole and verified.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::hash::{Hashes, StreamHasher};
use super::names::{exists_no_follow, part_path};
use super::sync_dir;

/// One file of a pack: where it goes, how long it is, and its SHA-256 (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackEntry {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

/// Why a pack could not be cut into its files. Nothing of it is left under a final
/// name then, and no `.part` of it either.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("{path} does not have the SHA-256 the sender announced for it (expected {expected}, got {got})")]
    HashMismatch { path: String, expected: String, got: String },
    #[error("the received files are {got} bytes, not the {expected} announced")]
    SizeMismatch { expected: u64, got: u64 },
    #[error("{0} exists already; nothing is written over it")]
    Exists(String),
    #[error("the received files could not be saved: {0}")]
    Io(#[from] io::Error),
}

/// Cuts the verified stream at `pack` into `entries` (blocking; see [`unpack`]). Returns
/// each file's digests, in order.
pub fn unpack_blocking(pack: &Path, entries: &[PackEntry]) -> Result<Vec<Hashes>, UnpackError> {
    let expected: u64 = entries.iter().map(|e| e.size).sum();
    let got = std::fs::metadata(pack)?.len();
    if got != expected {
        return Err(UnpackError::SizeMismatch { expected, got });
    }
    let mut written: Vec<PathBuf> = Vec::with_capacity(entries.len());
    let result = write_all(pack, entries, &mut written);
    if result.is_err() {
        for p in &written {
            let _ = std::fs::remove_file(p);
        }
    }
    let hashes = result?;
    place_all(entries)?;
    Ok(hashes)
}

/// [`unpack_blocking`] on a blocking thread.
pub async fn unpack(pack: PathBuf, entries: Vec<PackEntry>) -> Result<Vec<Hashes>, UnpackError> {
    tokio::task::spawn_blocking(move || unpack_blocking(&pack, &entries))
        .await
        .map_err(|e| UnpackError::Io(io::Error::other(format!("unpacking was interrupted: {e}"))))?
}

/// Writes every entry to its `.part` (recorded in `written` as it is created), checked
/// against its SHA-256, then makes them durable together.
fn write_all(pack: &Path, entries: &[PackEntry], written: &mut Vec<PathBuf>) -> Result<Vec<Hashes>, UnpackError> {
    let mut src = io::BufReader::with_capacity(super::IO_BUFFER, std::fs::File::open(pack)?);
    let mut buf = vec![0u8; 256 * 1024];
    let mut hashes = Vec::with_capacity(entries.len());
    let mut files = Vec::with_capacity(entries.len());
    // Each folder made once (a file system's slowest work here is making entries).
    let mut made: BTreeSet<&Path> = BTreeSet::new();
    for e in entries {
        if let Some(dir) = e.path.parent().filter(|d| !made.contains(d)) {
            std::fs::create_dir_all(dir)?;
            made.insert(dir);
        }
        // Nothing is written over: the `.part` must be new, and naming it later
        // refuses a taken name ([`place_all`]).
        let part = part_path(&e.path);
        let mut out = match std::fs::OpenOptions::new().write(true).create_new(true).open(&part) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                return Err(UnpackError::Exists(part.display().to_string()))
            }
            other => other?,
        };
        written.push(part);
        let mut hasher = StreamHasher::new();
        let mut left = e.size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = src.read(&mut buf[..want])?;
            if n == 0 {
                return Err(UnpackError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "the stream ended early")));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        let h = hasher.finish();
        if !h.sha256.eq_ignore_ascii_case(e.sha256.trim()) {
            return Err(UnpackError::HashMismatch {
                path: e.path.display().to_string(),
                expected: e.sha256.clone(),
                got: h.sha256,
            });
        }
        hashes.push(h);
        files.push(out);
    }
    sync_files(files)?;
    Ok(hashes)
}

/// `sync_data` for each file, a few at a time: the file system commits them together.
fn sync_files(files: Vec<std::fs::File>) -> io::Result<()> {
    const THREADS: usize = 8;
    let chunk = files.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        let jobs: Vec<_> =
            files.chunks(chunk).map(|c| s.spawn(move || c.iter().try_for_each(std::fs::File::sync_data))).collect();
        jobs.into_iter().try_for_each(|j| j.join().unwrap_or_else(|_| Err(io::Error::other("a sync thread failed"))))
    })
}

/// Gives each `.part` its final name, never replacing a file, then makes the folders
/// durable, each once.
fn place_all(entries: &[PackEntry]) -> Result<(), UnpackError> {
    let mut dirs = BTreeSet::new();
    for e in entries {
        let part = part_path(&e.path);
        match rename_no_replace(&part, &e.path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&part);
                return Err(UnpackError::Exists(e.path.display().to_string()));
            }
            Err(err) => return Err(err.into()),
        }
        if let Some(dir) = e.path.parent() {
            dirs.insert(dir.to_path_buf());
        }
    }
    for dir in dirs {
        sync_dir(&dir);
    }
    Ok(())
}

/// Renames `from` to `to` unless `to` exists (`AlreadyExists` then): one step where
/// the system has it (Linux), else a hard link and removing `from`; where neither
/// works (FAT, some shares), a rename after checking that the name is free.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(nix::errno::Errno::EEXIST) => return Err(io::ErrorKind::AlreadyExists.into()),
            // Not supported by this file system: the portable way below.
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) if !exists_no_follow(to) => std::fs::rename(from, to),
        Err(_) => Err(io::ErrorKind::AlreadyExists.into()),
    }
}
