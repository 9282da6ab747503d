//! A run of a batch's small files that travels as one stream (a pack), cut into its
//! files as the bytes arrive: each file goes to `<final>.part`, is checked against its
//! own SHA-256 from the manifest, made durable together with the others, and only
//! then given its name (never over an existing file). Many small files thus cost one
//! negotiation and one pass over their bytes, and each still lands only whole and
//! verified.
//!
//! The cutting runs on a blocking thread of its own, fed through a bounded channel,
//! so that making the files overlaps with the network. The files that arrived whole
//! are named about every second, and those the run finished before it was
//! interrupted are kept ([`PackWriter::keep_whole`]): a resume then sends only the
//! rest, also after the receiver was killed (it finds the named files by their
//! SHA-256).

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

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

/// From this many files on, a pack is made durable with one `syncfs` of its file
/// system (where there is one) instead of one sync per file, which costs a journal
/// commit each.
const SYNC_TOGETHER_FROM: usize = 8;

/// Chunks in flight between the network and the cutting thread (of up to 256 KiB).
const CHANNEL_CHUNKS: usize = 32;

/// How often the files that arrived whole are made durable and named while the
/// stream goes on.
const NAME_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes a pack's bytes into its files as they come (see the module documentation).
#[derive(Debug)]
pub struct PackWriter {
    entries: Vec<PackEntry>,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    worker: Option<tokio::task::JoinHandle<Cut>>,
    /// What the cutting thread ended with, once it ended.
    ended: Option<Cut>,
    written: u64,
    expected: u64,
    /// Each file is synced as it is complete (few files, or no `syncfs` here).
    sync_each: bool,
}

/// What the cutting thread did: the files complete and verified (their SHA-256, in
/// order), how many of them are named already, every `.part` it created, and why it
/// stopped early.
#[derive(Debug, Default)]
struct Cut {
    whole: Vec<String>,
    named: usize,
    created: Vec<PathBuf>,
    error: Option<UnpackError>,
}

impl PackWriter {
    /// Starts cutting a stream into `entries` (on a blocking thread).
    pub fn new(entries: Vec<PackEntry>) -> PackWriter {
        let expected = entries.iter().map(|e| e.size).fold(0, u64::saturating_add);
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let for_worker = entries.clone();
        let sync_each = !cfg!(target_os = "linux") || entries.len() < SYNC_TOGETHER_FROM;
        let worker = tokio::task::spawn_blocking(move || cut(&for_worker, rx, sync_each));
        PackWriter { entries, tx: Some(tx), worker: Some(worker), ended: None, written: 0, expected, sync_each }
    }

    /// Bytes taken so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Takes the stream's next bytes. Fails when they pass the announced size, or when
    /// the files cannot be written (a full disk keeps its `StorageFull` kind).
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.written + data.len() as u64 > self.expected {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "more bytes than the files announced"));
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(data.to_vec()).await.is_ok(),
            None => false,
        };
        if !sent {
            self.end().await;
            let error = match self.ended.as_ref().and_then(|c| c.error.as_ref()) {
                Some(UnpackError::Io(e)) => io::Error::new(e.kind(), e.to_string()),
                Some(e) => io::Error::other(e.to_string()),
                None => io::Error::other("the files are closed"),
            };
            return Err(error);
        }
        self.written += data.len() as u64;
        Ok(())
    }

    /// Lets the cutting thread finish what it has and waits for it.
    async fn end(&mut self) {
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let cut = worker.await.unwrap_or_else(|e| Cut {
                error: Some(UnpackError::Io(io::Error::other(format!("writing the files was interrupted: {e}")))),
                ..Cut::default()
            });
            self.ended = Some(cut);
        }
    }

    /// Every byte is in: each file checked, all made durable, then named. Returns each
    /// file's SHA-256, in order. On any failure no `.part` of the pack is left.
    pub async fn finish(mut self) -> Result<Vec<String>, UnpackError> {
        self.end().await;
        let cut = self.ended.take().unwrap_or_default();
        let done = cut.whole.len();
        let failure = match cut.error {
            Some(e) => Some(e),
            None if done < self.entries.len() || self.written != self.expected => {
                Some(UnpackError::SizeMismatch { expected: self.expected, got: self.written })
            }
            None => None,
        };
        if let Some(e) = failure {
            remove_all(cut.created).await;
            return Err(e);
        }
        let rest = self.entries.split_off(cut.named);
        let sync_each = self.sync_each;
        let placed = blocking(move || name_together(&rest, sync_each)).await;
        match placed {
            Ok(()) => Ok(cut.whole),
            Err(e) => {
                remove_all(cut.created).await;
                Err(e)
            }
        }
    }

    /// The stream stopped early: the files that had arrived whole and verified are
    /// made durable and named; the rest (a file cut short) is removed. Returns how many
    /// of the pack's files, from its first, are in place, with their SHA-256.
    pub async fn keep_whole(mut self) -> Vec<String> {
        self.end().await;
        let cut = self.ended.take().unwrap_or_default();
        if cut.error.is_some() || cut.whole.is_empty() {
            remove_all(cut.created).await;
            return cut.whole.into_iter().take(cut.named).collect();
        }
        let kept: Vec<PackEntry> = self.entries[cut.named..cut.whole.len()].to_vec();
        let rest: Vec<PathBuf> = cut.created.iter().skip(cut.whole.len()).cloned().collect();
        remove_all(rest).await;
        let sync_each = self.sync_each;
        let placed = blocking(move || name_together(&kept, sync_each)).await;
        match placed {
            Ok(()) => cut.whole,
            Err(e) => {
                tracing::warn!("the files received before the stream stopped could not all be kept: {e}");
                remove_all(cut.created).await;
                cut.whole.into_iter().take(cut.named).collect()
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UnpackError> + Send + 'static,
) -> Result<T, UnpackError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| UnpackError::Io(io::Error::other(format!("writing the files was interrupted: {e}"))))?
}

/// Removes `.part` files (those already named are not among them any more).
async fn remove_all(paths: Vec<PathBuf>) {
    let _ = tokio::task::spawn_blocking(move || {
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    })
    .await;
}

/// The file being written.
struct Current {
    out: std::fs::File,
    hasher: Sha256,
    left: u64,
}

/// The cutting thread: the stream's chunks, in order, into the entries' `.part`s.
fn cut(entries: &[PackEntry], mut rx: mpsc::Receiver<Vec<u8>>, sync_each: bool) -> Cut {
    let mut c = Cut::default();
    let mut named_at = std::time::Instant::now();
    let mut folders = Folders::default();
    let mut next = 0usize;
    let mut current: Option<Current> = None;
    // Files of no bytes at the start are complete before any byte comes.
    if let Err(e) = open_next(entries, &mut next, &mut current, &mut c, &mut folders, sync_each) {
        return stopped(c, e, rx);
    }
    while let Some(chunk) = rx.blocking_recv() {
        let mut data = &chunk[..];
        while !data.is_empty() {
            let Some(cur) = current.as_mut() else {
                c.error = Some(UnpackError::SizeMismatch { expected: 0, got: data.len() as u64 });
                return c;
            };
            let n = data.len().min(usize::try_from(cur.left).unwrap_or(usize::MAX));
            cur.hasher.update(&data[..n]);
            if let Err(e) = cur.out.write_all(&data[..n]) {
                c.error = Some(e.into());
                return c;
            }
            cur.left -= n as u64;
            data = &data[n..];
            if cur.left == 0 {
                let done = current.take().expect("checked");
                let closed = close(entries, next - 1, done, &mut c, sync_each);
                let opened =
                    closed.and_then(|()| open_next(entries, &mut next, &mut current, &mut c, &mut folders, sync_each));
                if let Err(e) = opened {
                    return stopped(c, e, rx);
                }
            }
        }
        // Now and then, what is whole takes its name (a kill loses at most that much).
        if named_at.elapsed() >= NAME_EVERY && c.whole.len() > c.named {
            if let Err(e) = name_together(&entries[c.named..c.whole.len()], sync_each) {
                return stopped(c, e, rx);
            }
            c.named = c.whole.len();
            named_at = std::time::Instant::now();
        }
    }
    c
}

/// The cutting stopped on `e`. A damaged file lets the stream run to its end
/// unwritten, so that the transfer ends as damaged, not as a broken write; anything
/// else (a full disk) stops the stream at once.
fn stopped(mut c: Cut, e: UnpackError, mut rx: mpsc::Receiver<Vec<u8>>) -> Cut {
    let damaged = matches!(e, UnpackError::HashMismatch { .. });
    c.error = Some(e);
    if damaged {
        while rx.blocking_recv().is_some() {}
    }
    c
}

/// Opens the next entry's `.part`; entries of no bytes are completed on the way.
fn open_next(
    entries: &[PackEntry],
    next: &mut usize,
    current: &mut Option<Current>,
    c: &mut Cut,
    folders: &mut Folders,
    sync_each: bool,
) -> Result<(), UnpackError> {
    while let Some(e) = entries.get(*next) {
        folders.make(&e.path)?;
        // Naming it later refuses a taken name ([`place_all`]); a `.part` there is
        // what an earlier attempt of this batch left (never followed if a link).
        let part = part_path(&e.path);
        let out = open_part(&part)?;
        c.created.push(part);
        *next += 1;
        let file = Current { out, hasher: Sha256::new(), left: e.size };
        if e.size > 0 {
            *current = Some(file);
            return Ok(());
        }
        close(entries, *next - 1, file, c, sync_each)?;
    }
    Ok(())
}

/// Opens `part` empty, created or cut to nothing; a symbolic link there is refused.
fn open_part(part: &Path) -> Result<std::fs::File, UnpackError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, nix::libc::O_NOFOLLOW);
    match options.open(part) {
        Ok(f) if f.metadata()?.is_file() => Ok(f),
        Ok(_) => Err(UnpackError::Exists(part.display().to_string())),
        Err(e) if exists_no_follow(part) && !part.is_file() => {
            tracing::debug!("{}: {e}", part.display());
            Err(UnpackError::Exists(part.display().to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// A file's last byte is in: checked against its SHA-256 (and synced, when files are
/// synced one by one).
fn close(entries: &[PackEntry], index: usize, file: Current, c: &mut Cut, sync_each: bool) -> Result<(), UnpackError> {
    let e = &entries[index];
    let got = hex(&file.hasher.finalize());
    if !got.eq_ignore_ascii_case(e.sha256.trim()) {
        return Err(UnpackError::HashMismatch { path: e.path.display().to_string(), expected: e.sha256.clone(), got });
    }
    if sync_each {
        file.out.sync_data()?;
    }
    c.whole.push(got);
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Each folder made once (a file system's slowest work here is making entries).
#[derive(Default)]
struct Folders(BTreeSet<PathBuf>);

impl Folders {
    fn make(&mut self, file: &Path) -> io::Result<()> {
        if let Some(dir) = file.parent().filter(|d| !self.0.contains(*d)) {
            std::fs::create_dir_all(dir)?;
            self.0.insert(dir.to_path_buf());
        }
        Ok(())
    }
}

/// Makes written files durable (one `syncfs` of their file system, unless each was
/// synced as it was complete), then names them.
fn name_together(entries: &[PackEntry], sync_each: bool) -> Result<(), UnpackError> {
    #[cfg(target_os = "linux")]
    if !sync_each {
        if let Some(dir) = entries.first().and_then(|e| e.path.parent()) {
            let dir = std::fs::File::open(dir)?;
            nix::unistd::syncfs(&dir).map_err(io::Error::from)?;
        }
    }
    let _ = sync_each;
    place_all(entries)
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
