//! The file side of transfers: safe names for what a peer offers, the `.part` writer
//! of the receiving side, the reader of the sending side, hashing, and XEP-0082 dates.
//!
//! Two rules hold for everything written here:
//!
//! * a name chosen by a remote peer never leads outside the download folder: it is
//!   reduced to a single harmless path component by [`sanitize_file_name`];
//! * nothing half-written ever appears under the final name: data goes to
//!   `<final>.part` ([`PartFile`]), and only a complete, verified file is moved to a
//!   final name that is free, without ever overwriting an existing file.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

/// Longest file name [`sanitize_file_name`] produces, in bytes (most file systems
/// allow 255; the rest leaves room for ` (n)` and `.part`).
pub const MAX_NAME_BYTES: usize = 200;

/// Longest extension (with its dot, in bytes) kept when a long name is shortened.
const MAX_KEPT_EXTENSION_BYTES: usize = 16;

/// Name used when nothing usable is left of what the peer sent.
const FALLBACK_NAME: &str = "file";

/// Suffix of the file a transfer writes to until it is complete and verified.
const PART_SUFFIX: &str = ".part";

/// Buffer size for hashing and for the receiving side's writer.
const IO_BUFFER: usize = 1024 * 1024;

/// A `.part` file is made durable (`sync_data`) after every this many bytes, so that a
/// power cut loses at most this much of a transfer (and a resume record never points
/// past what is on disk by more).
pub const SYNC_EVERY: u64 = 32 << 20;

/// Bytes free for us on the file system holding `dir` (what an unprivileged user may
/// still write).
pub fn free_space(dir: &Path) -> io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

/// `Err(sentence)` when `dir` (or, while it does not exist yet, its nearest existing
/// parent) has less than `needed` bytes free. Unknown free space passes.
pub fn check_free_space(dir: &Path, needed: u64) -> Result<(), String> {
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    let Ok(free) = free_space(existing) else { return Ok(()) };
    if free >= needed {
        return Ok(());
    }
    Err(format!(
        "not enough space in {}: the file needs {}, only {} are free ({} short)",
        dir.display(),
        human_bytes(needed),
        human_bytes(free),
        human_bytes(needed - free)
    ))
}

/// Sizes in sentences: binary units, one decimal (`512 B`, `1.5 KiB`, `3.0 GiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Makes a directory's entries durable (after a rename into it), so that a power cut
/// cannot lose a file that was reported complete. Failures are only logged (some file
/// systems cannot sync directories).
fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(dir = %dir.display(), error = %e, "could not sync the folder");
    }
}

/// Characters that Windows does not allow in file names (besides controls and the
/// path separators, which are handled separately).
const WINDOWS_ILLEGAL: &[char] = &['<', '>', ':', '"', '|', '?', '*'];

/// Invisible characters that reorder text: a name such as `invoice\u{202E}fdp.exe`
/// would otherwise be displayed as `invoiceexe.pdf`.
const BIDI_CONTROLS: &[char] = &[
    '\u{061C}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}',
    '\u{2067}', '\u{2068}', '\u{2069}',
];

/// Device names that Windows reserves, with or without an extension.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "COM¹", "COM²", "COM³", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹",
    "LPT²", "LPT³",
];

// ---------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------

/// Turns a file name sent by a peer into a safe single path component.
///
/// In order:
/// 1. only the last component after any `/` or `\` is kept (`../../evil` → `evil`,
///    `C:\x\y.txt` → `y.txt`);
/// 2. control characters (including NUL, CR, LF, DEL), the characters Windows forbids
///    (`<>:"|?*`) and the invisible bidirectional-text controls are removed;
/// 3. leading and trailing whitespace and trailing dots are trimmed;
/// 4. if nothing (or only dots) is left, the name becomes `file`;
/// 5. a leading `.` becomes `_`, so that nothing arrives hidden (`.bashrc` →
///    `_bashrc`);
/// 6. Windows device names (`CON`, `PRN`, `AUX`, `NUL`, `COM1`–`COM9`, `LPT1`–`LPT9`,
///    …, in any case, with or without an extension) get a `_` prefix;
/// 7. names longer than [`MAX_NAME_BYTES`] bytes are shortened at a UTF-8 character
///    boundary, keeping the extension when it is at most 16 bytes long.
///
/// Anything else, including non-ASCII letters, is kept: `résumé 2024.pdf` and
/// `文件.txt` come out unchanged. The function is idempotent.
pub fn sanitize_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !WINDOWS_ILLEGAL.contains(c) && !BIDI_CONTROLS.contains(c))
        .collect();
    let trimmed = trim_name_end(cleaned.trim_start());
    if trimmed.is_empty() {
        return FALLBACK_NAME.to_owned();
    }
    let mut name = match trimmed.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None => trimmed.to_owned(),
    };
    if is_windows_reserved(&name) {
        name.insert(0, '_');
    }
    truncate_name(&name, MAX_NAME_BYTES)
}

/// True when `name` is already a safe single path component, that is when
/// [`sanitize_file_name`] would leave it unchanged.
pub fn is_safe_file_name(name: &str) -> bool {
    sanitize_file_name(name) == name
}

/// Removes trailing whitespace and dots (Windows drops them silently, which would
/// make two different names meet, and `name.` looks like a typo).
fn trim_name_end(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_whitespace() || c == '.')
}

/// True for Windows device names, which cannot be used as file names there even with
/// an extension (`con.txt`) or trailing spaces before it (`CON .txt`).
fn is_windows_reserved(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    WINDOWS_RESERVED.iter().any(|reserved| reserved.eq_ignore_ascii_case(stem))
}

/// Splits `name` at its last dot into stem and extension (with the dot); a name
/// whose only dot is its first character has no extension.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends at a char boundary.
fn floor_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Shortens `name` to at most `max` bytes, keeping a short extension.
fn truncate_name(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = split_extension(name);
    if !ext.is_empty() && ext.len() <= MAX_KEPT_EXTENSION_BYTES {
        let stem = floor_char_boundary(stem, max - ext.len());
        format!("{stem}{ext}")
    } else {
        // No extension worth keeping: cut the whole name, and do not end it with the
        // dot or space the cut may have exposed.
        trim_name_end(floor_char_boundary(name, max)).to_owned()
    }
}

/// A path in `dir` for a new file named `name` that is free: neither the file nor its
/// `.part` exists.
///
/// `dir/name` when it is free, else `name (1).ext`, `name (2).ext`, … The name is split
/// at its **last** dot, unless that dot is its first character: `archive.tar.gz`
/// becomes `archive.tar (1).gz`, `.profile` becomes `.profile (1)`, `notes` becomes
/// `notes (1)`. A path counts as taken when anything is there, even a dangling
/// symbolic link. `name` should be a single component from [`sanitize_file_name`].
///
/// Being free now does not reserve the name: [`PartFile::create`] creates the `.part`
/// with `create_new`, and [`PartFile::finish`] re-checks the final name.
pub fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if is_free(&first) {
        return first;
    }
    let (stem, ext) = split_extension(name);
    let mut n: u64 = 1;
    loop {
        let candidate = dir.join(format!("{stem} ({n}){ext}"));
        if is_free(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

/// True when neither `path` nor its `.part` exists (symbolic links are not followed).
fn is_free(path: &Path) -> bool {
    !exists_no_follow(path) && !exists_no_follow(&part_path(path))
}

/// True when something, even a dangling symbolic link, is at `path`.
fn exists_no_follow(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The path data is written to before the file is complete: `final_path` + `.part`.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut s: OsString = final_path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}

// ---------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------
// Receiving: the .part writer
// ---------------------------------------------------------------------------------

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

/// MD5 and SHA-256 each on a thread of their own, fed the written chunks through
/// bounded channels: hashing runs beside the network copy (and the two digests beside
/// each other) instead of after it, and slow hashing slows the writer down rather
/// than piling up memory.
#[derive(Debug)]
struct PipelinedHasher {
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
    fn start(path: &Path, prefix: u64) -> io::Result<PipelinedHasher> {
        Ok(PipelinedHasher {
            md5: HashThread::start::<Md5>("md5", path, prefix)?,
            sha256: HashThread::start::<Sha256>("sha256", path, prefix)?,
        })
    }

    /// False when a thread has ended (the file is then hashed at the end).
    async fn update(&self, data: &[u8]) -> bool {
        let chunk: std::sync::Arc<[u8]> = std::sync::Arc::from(data);
        self.md5.tx.send(chunk.clone()).await.is_ok() && self.sha256.tx.send(chunk).await.is_ok()
    }

    async fn finish(self) -> io::Result<Hashes> {
        let (md5, sha256) = tokio::join!(self.md5.finish(), self.sha256.finish());
        Ok(Hashes { md5: hex::encode(md5?), sha256: hex::encode(sha256?) })
    }
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
fn move_into_place(part: &Path, final_path: &Path) -> io::Result<PathBuf> {
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

// ---------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------

/// The sending side's reader: a file opened at an offset, read in blocks.
#[derive(Debug)]
pub struct SourceFile {
    file: File,
    size: u64,
    position: u64,
}

impl SourceFile {
    /// Opens `path` for sending from byte `offset` (0 for a new transfer). Fails with
    /// `InvalidInput` when `offset` is past the end of the file.
    pub async fn open(path: &Path, offset: u64) -> io::Result<SourceFile> {
        let mut file = File::open(path).await?;
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        let size = meta.len();
        if offset > size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send {} from byte {offset}: it has only {size} bytes", path.display()),
            ));
        }
        file.seek(io::SeekFrom::Start(offset)).await?;
        Ok(SourceFile { file, size, position: offset })
    }

    /// Reads the next block into `buf`, filling it unless the end of the file comes
    /// first. Returns the number of bytes read; 0 at the end of the file.
    pub async fn read_block(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.file.read(&mut buf[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.position += filled as u64;
        Ok(filled)
    }

    /// Size of the file when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Offset of the next byte [`read_block`](SourceFile::read_block) returns.
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// What an offer says about a file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, in nanoseconds since the Unix epoch (saturating).
    pub mtime_ns: i64,
    /// The file's name (lossily converted to UTF-8).
    pub name: String,
    /// The modification time as an XEP-0082 UTC date-time, e.g.
    /// `2009-07-14T04:52:25.650Z`.
    pub date: String,
}

/// Size, modification time and name of the regular file at `path` (blocking: a single
/// `stat`). Fails with `InvalidInput` for directories and paths without a file name.
pub fn file_meta(path: &Path) -> io::Result<FileMeta> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} has no file name", path.display())))?
        .to_string_lossy()
        .into_owned();
    let mtime = meta.modified()?;
    let mtime_ns = i64::try_from(unix_nanos(mtime)).unwrap_or(if mtime >= UNIX_EPOCH { i64::MAX } else { i64::MIN });
    Ok(FileMeta { size: meta.len(), mtime_ns, name, date: format_xep82(mtime) })
}

// ---------------------------------------------------------------------------------
// XEP-0082 dates
// ---------------------------------------------------------------------------------

/// Signed nanoseconds between the Unix epoch and `t`.
fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => i128::try_from(e.duration().as_nanos()).map_or(i128::MIN, |n| -n),
    }
}

/// Formats `t` as an XEP-0082 date-time in UTC with milliseconds, e.g.
/// `2009-07-14T04:52:25.650Z` (sub-millisecond digits are truncated). Times outside
/// the years 0001–9999 are clamped to that range.
pub fn format_xep82(t: SystemTime) -> String {
    let min = time::macros::datetime!(0001-01-01 00:00:00 UTC).unix_timestamp_nanos();
    let max = time::macros::datetime!(9999-12-31 23:59:59.999_999_999 UTC).unix_timestamp_nanos();
    let nanos = unix_nanos(t).clamp(min, max);
    let dt = time::OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.millisecond()
    )
}

/// Parses an XEP-0082 date-time such as `2009-07-14T04:52:25.650Z`,
/// `2009-07-14T04:52:25Z` or `2009-07-14T06:52:25+02:00` (any number of fractional
/// digits; `Z` or a `±hh:mm` offset). Surrounding whitespace is ignored. Returns
/// `None` for anything else.
pub fn parse_xep82(s: &str) -> Option<SystemTime> {
    let dt = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    let secs = dt.unix_timestamp();
    let nanos = Duration::from_nanos(u64::from(dt.nanosecond()));
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))?.checked_add(nanos)
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))?.checked_add(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_MD5: &str = "5d41402abc4b2a76b9719d911017c592";
    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// 2009-07-14T04:52:25Z in seconds since the Unix epoch.
    const SAMPLE_SECS: u64 = 1_247_547_145;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temporary directory")
    }

    /// Deterministic bytes that are not all alike.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
    }

    // --- sanitize_file_name ------------------------------------------------------

    #[test]
    fn sanitize_strips_directories() {
        assert_eq!(sanitize_file_name("../../evil"), "evil");
        assert_eq!(sanitize_file_name("/etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("/abs/path"), "path");
        assert_eq!(sanitize_file_name("C:\\Windows\\x.exe"), "x.exe");
        assert_eq!(sanitize_file_name("C:\\x\\y.txt"), "y.txt");
        assert_eq!(sanitize_file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitize_file_name("a/b\\c/d.txt"), "d.txt");
        assert_eq!(sanitize_file_name("dir/"), "file");
        assert_eq!(sanitize_file_name("dir/.."), "file");
    }

    #[test]
    fn sanitize_dots_and_empty() {
        assert_eq!(sanitize_file_name(".."), "file");
        assert_eq!(sanitize_file_name("."), "file");
        assert_eq!(sanitize_file_name("..."), "file");
        assert_eq!(sanitize_file_name(""), "file");
        assert_eq!(sanitize_file_name("   "), "file");
        assert_eq!(sanitize_file_name("\0\r\n"), "file");
        assert_eq!(sanitize_file_name("???"), "file");
        assert_eq!(sanitize_file_name(". ."), "file");
    }

    #[test]
    fn sanitize_hidden_files() {
        assert_eq!(sanitize_file_name(".hidden"), "_hidden");
        assert_eq!(sanitize_file_name(".bashrc"), "_bashrc");
        assert_eq!(sanitize_file_name("..foo"), "_.foo");
        assert_eq!(sanitize_file_name("  .ssh"), "_ssh");
        assert_eq!(sanitize_file_name("/home/u/.ssh/authorized_keys"), "authorized_keys");
    }

    #[test]
    fn sanitize_trailing_dots_and_whitespace() {
        assert_eq!(sanitize_file_name("name."), "name");
        assert_eq!(sanitize_file_name("name..."), "name");
        assert_eq!(sanitize_file_name("name. . "), "name");
        assert_eq!(sanitize_file_name("  report.pdf \t"), "report.pdf");
        assert_eq!(sanitize_file_name("a b  c.txt"), "a b  c.txt");
    }

    #[test]
    fn sanitize_windows_reserved_names() {
        assert_eq!(sanitize_file_name("CON"), "_CON");
        assert_eq!(sanitize_file_name("con.txt"), "_con.txt");
        assert_eq!(sanitize_file_name("nul"), "_nul");
        assert_eq!(sanitize_file_name("Prn.tar.gz"), "_Prn.tar.gz");
        assert_eq!(sanitize_file_name("aux"), "_aux");
        assert_eq!(sanitize_file_name("COM1"), "_COM1");
        assert_eq!(sanitize_file_name("com9.log"), "_com9.log");
        assert_eq!(sanitize_file_name("LPT1"), "_LPT1");
        assert_eq!(sanitize_file_name("lpt5.doc"), "_lpt5.doc");
        assert_eq!(sanitize_file_name("CON .txt"), "_CON .txt");
        assert_eq!(sanitize_file_name("COM¹"), "_COM¹");
        // Not reserved: longer names, COM0/COM10, reserved words inside a name.
        assert_eq!(sanitize_file_name("console.txt"), "console.txt");
        assert_eq!(sanitize_file_name("COM10"), "COM10");
        assert_eq!(sanitize_file_name("nullable.rs"), "nullable.rs");
        assert_eq!(sanitize_file_name("my con.txt"), "my con.txt");
    }

    #[test]
    fn sanitize_removes_control_and_illegal_characters() {
        assert_eq!(sanitize_file_name("a\0b"), "ab");
        assert_eq!(sanitize_file_name("line\r\nbreak.txt"), "linebreak.txt");
        assert_eq!(sanitize_file_name("del\u{7f}.txt"), "del.txt");
        assert_eq!(sanitize_file_name("tab\there"), "tabhere");
        assert_eq!(sanitize_file_name("c1\u{85}\u{9b}.txt"), "c1.txt");
        assert_eq!(sanitize_file_name("what?<is>:this\"|*.txt"), "whatisthis.txt");
        assert_eq!(sanitize_file_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(sanitize_file_name("\u{2066}a\u{2069}.txt"), "a.txt");
    }

    #[test]
    fn sanitize_keeps_unicode() {
        for name in ["résumé 2024.pdf", "文件.txt", "Привет мир.docx", "😀 party.png", "naïve café", "ملف.txt"]
        {
            assert_eq!(sanitize_file_name(name), name);
            assert!(is_safe_file_name(name), "{name}");
        }
    }

    #[test]
    fn sanitize_caps_long_names_keeping_the_extension() {
        let long = format!("{}.txt", "a".repeat(300));
        let out = sanitize_file_name(&long);
        assert_eq!(out.len(), MAX_NAME_BYTES);
        assert_eq!(out, format!("{}.txt", "a".repeat(196)));

        // Multi-byte characters are never cut in half.
        let long = format!("{}.txt", "文".repeat(100));
        let out = sanitize_file_name(&long);
        assert!(out.len() <= MAX_NAME_BYTES);
        assert_eq!(out, format!("{}.txt", "文".repeat(65)));
        let long = format!("{}.pdf", "é".repeat(150));
        assert_eq!(sanitize_file_name(&long), format!("{}.pdf", "é".repeat(98)));

        // A long extension is not kept: the whole name is cut.
        let long = format!("a.{}", "b".repeat(300));
        let out = sanitize_file_name(&long);
        assert_eq!(out, format!("a.{}", "b".repeat(198)));

        // A cut that exposes a space or dot at the end removes it.
        let long = format!("{} {}", "a".repeat(199), "b".repeat(100));
        assert_eq!(sanitize_file_name(&long), "a".repeat(199));

        // Exactly the limit is left alone.
        let exact = "x".repeat(MAX_NAME_BYTES);
        assert_eq!(sanitize_file_name(&exact), exact);
    }

    #[test]
    fn sanitize_is_idempotent_and_agrees_with_is_safe() {
        let long = format!("{}.txt", "文".repeat(100));
        let inputs = [
            "../../evil",
            "/abs/path",
            "C:\\Windows\\x.exe",
            "..",
            ".",
            "",
            ".hidden",
            "CON",
            "con.txt",
            "nul",
            "a\0b",
            "name.",
            ". foo",
            " .foo. ",
            "..foo",
            "résumé 2024.pdf",
            long.as_str(),
        ];
        for raw in inputs {
            let once = sanitize_file_name(raw);
            assert_eq!(sanitize_file_name(&once), once, "not idempotent for {raw:?}");
            assert!(is_safe_file_name(&once), "{once:?}");
            assert!(!once.is_empty() && !once.contains(['/', '\\']) && once != "." && once != "..");
        }
    }

    #[test]
    fn is_safe_file_name_rejects_unsafe_names() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "CON", "nul.txt", "a\0b", "name.", " x", "x "] {
            assert!(!is_safe_file_name(bad), "{bad:?}");
        }
        for good in ["report.pdf", "archive.tar.gz", "_hidden", "_CON", "notes", "a (1).txt"] {
            assert!(is_safe_file_name(good), "{good:?}");
        }
        assert!(!is_safe_file_name(&"a".repeat(MAX_NAME_BYTES + 1)));
    }

    // --- unique_path / part_path -------------------------------------------------

    #[test]
    fn part_path_appends_the_suffix() {
        assert_eq!(part_path(Path::new("/d/x.txt")), PathBuf::from("/d/x.txt.part"));
        assert_eq!(part_path(Path::new("noext")), PathBuf::from("noext.part"));
    }

    #[test]
    fn unique_path_free_name_is_kept() {
        let d = dir();
        assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a.txt"));
    }

    #[test]
    fn unique_path_skips_existing_files_and_parts() {
        let d = dir();
        std::fs::write(d.path().join("a.txt"), b"x").expect("write");
        assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a (1).txt"));
        std::fs::write(d.path().join("a (1).txt.part"), b"x").expect("write");
        assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a (2).txt"));
        std::fs::write(d.path().join("a (2).txt"), b"x").expect("write");
        assert_eq!(unique_path(d.path(), "a.txt"), d.path().join("a (3).txt"));

        // Only a .part of the name itself also makes it taken.
        std::fs::write(d.path().join("b.bin.part"), b"x").expect("write");
        assert_eq!(unique_path(d.path(), "b.bin"), d.path().join("b (1).bin"));
    }

    #[test]
    fn unique_path_splits_at_the_last_dot() {
        let d = dir();
        for name in ["archive.tar.gz", "notes", "_profile", ".profile"] {
            std::fs::write(d.path().join(name), b"x").expect("write");
        }
        assert_eq!(unique_path(d.path(), "archive.tar.gz"), d.path().join("archive.tar (1).gz"));
        assert_eq!(unique_path(d.path(), "notes"), d.path().join("notes (1)"));
        assert_eq!(unique_path(d.path(), ".profile"), d.path().join(".profile (1)"));
    }

    #[cfg(unix)]
    #[test]
    fn unique_path_counts_a_dangling_symlink_as_taken() {
        let d = dir();
        std::os::unix::fs::symlink(d.path().join("nowhere"), d.path().join("link.txt")).expect("symlink");
        assert_eq!(unique_path(d.path(), "link.txt"), d.path().join("link (1).txt"));
    }

    // --- hashing -----------------------------------------------------------------

    #[test]
    fn stream_hasher_known_values() {
        let mut h = StreamHasher::new();
        h.update(b"he");
        h.update(b"");
        h.update(b"llo");
        assert_eq!(h.bytes(), 5);
        assert_eq!(h.finish(), Hashes { md5: HELLO_MD5.into(), sha256: HELLO_SHA256.into() });
        let empty = StreamHasher::new().finish();
        assert_eq!((empty.md5.as_str(), empty.sha256.as_str()), (EMPTY_MD5, EMPTY_SHA256));
    }

    #[test]
    fn stream_hasher_large_blocks_match_small_ones() {
        let data = pattern(3 * 1024 * 1024 + 17);
        let mut big = StreamHasher::new();
        big.update(&data);
        let mut small = StreamHasher::new();
        for chunk in data.chunks(4093) {
            small.update(chunk);
        }
        assert_eq!(big.bytes(), data.len() as u64);
        assert_eq!(big.finish(), small.finish());
    }

    #[test]
    fn hash_file_whole_and_prefix() {
        let d = dir();
        let path = d.path().join("hw.txt");
        std::fs::write(&path, b"hello world").expect("write");
        let prefix = hash_file_blocking(&path, Some(5)).expect("hash");
        assert_eq!((prefix.md5.as_str(), prefix.sha256.as_str()), (HELLO_MD5, HELLO_SHA256));
        let whole = hash_file_blocking(&path, None).expect("hash");
        assert_eq!(whole.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(hash_file_blocking(&path, Some(11)).expect("hash"), whole);
        assert_eq!(hash_file_blocking(&path, Some(0)).expect("hash").md5, EMPTY_MD5);
        let err = hash_file_blocking(&path, Some(12)).expect_err("file too short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = hash_file_blocking(&d.path().join("missing"), None).expect_err("missing");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn hash_file_async_matches_blocking() {
        let d = dir();
        let path = d.path().join("big.bin");
        let data = pattern(2 * IO_BUFFER + 5);
        std::fs::write(&path, &data).expect("write");
        let mut h = StreamHasher::new();
        h.update(&data);
        assert_eq!(hash_file(path.clone(), None).await.expect("hash"), h.finish());
        assert_eq!(hash_file(path.clone(), None).await.expect("hash"), hash_file_blocking(&path, None).expect("hash"));
    }

    #[test]
    fn free_space_sentences() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10 << 20), "10.0 MiB");
        let dir = tempfile::tempdir().unwrap();
        let free = free_space(dir.path()).unwrap();
        assert!(free > 0);
        assert_eq!(check_free_space(dir.path(), 0), Ok(()));
        // A folder not made yet is judged by the nearest one that exists.
        assert_eq!(check_free_space(&dir.path().join("a/b"), 1), Ok(()));
        let err = check_free_space(&dir.path().join("a"), u64::MAX / 2).unwrap_err();
        assert!(err.starts_with(&format!("not enough space in {}: the file needs", dir.path().join("a").display())));
        assert!(err.contains("short)"), "{err}");
    }

    // --- PartFile ----------------------------------------------------------------

    #[tokio::test]
    async fn part_file_happy_path() {
        let d = dir();
        let final_path = d.path().join("hello.txt");
        let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
        assert_eq!(pf.final_path(), final_path);
        assert_eq!(pf.part_path(), d.path().join("hello.txt.part"));
        assert!(pf.part_path().exists());
        assert!(!final_path.exists());
        pf.write(b"hel").await.expect("write");
        pf.write(b"lo").await.expect("write");
        assert_eq!(pf.written(), 5);
        assert_eq!(pf.expected_size(), 5);
        // The announced MD5 is compared case-insensitively.
        let done = pf.finish(Some(&HELLO_MD5.to_uppercase())).await.expect("finish");
        assert_eq!(done.path, final_path);
        assert_eq!(done.size, 5);
        assert_eq!(done.hashes, Hashes { md5: HELLO_MD5.into(), sha256: HELLO_SHA256.into() });
        assert_eq!(std::fs::read(&final_path).expect("read"), b"hello");
        assert!(!d.path().join("hello.txt.part").exists());
    }

    #[tokio::test]
    async fn part_file_without_md5_and_empty_file() {
        let d = dir();
        let pf = PartFile::create(d.path().join("empty"), 0).await.expect("create");
        let done = pf.finish(None).await.expect("finish");
        assert_eq!((done.size, done.hashes.md5.as_str()), (0, EMPTY_MD5));
        assert_eq!(std::fs::read(d.path().join("empty")).expect("read"), b"");
    }

    #[tokio::test]
    async fn part_file_large_write_is_complete() {
        let d = dir();
        let data = pattern(3 * IO_BUFFER + 12_345);
        let final_path = d.path().join("big.bin");
        let mut pf = PartFile::create(final_path.clone(), data.len() as u64).await.expect("create");
        // Mixed block sizes: some smaller than the buffer, one larger.
        let (a, rest) = data.split_at(1000);
        let (b, c) = rest.split_at(2 * IO_BUFFER + 7);
        for block in [a, b] {
            pf.write(block).await.expect("write");
        }
        for block in c.chunks(65_536) {
            pf.write(block).await.expect("write");
        }
        let mut h = StreamHasher::new();
        h.update(&data);
        let expected = h.finish();
        let done = pf.finish(Some(&expected.md5)).await.expect("finish");
        assert_eq!(done.hashes, expected);
        assert_eq!(std::fs::read(&final_path).expect("read"), data);
    }

    #[tokio::test]
    async fn part_file_too_few_bytes_is_a_size_mismatch() {
        let d = dir();
        let final_path = d.path().join("short.txt");
        let mut pf = PartFile::create(final_path.clone(), 10).await.expect("create");
        pf.write(b"hello").await.expect("write");
        let err = pf.finish(Some(HELLO_MD5)).await.expect_err("too short");
        assert!(matches!(err, VerifyError::SizeMismatch { expected: 10, got: 5 }), "{err:?}");
        assert_eq!(err.to_string(), "the sender announced 10 bytes but sent 5");
        assert!(!final_path.exists());
        // The partial file stays, complete up to what arrived, for a resume.
        assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"hello");
    }

    #[tokio::test]
    async fn part_file_refuses_more_than_announced() {
        let d = dir();
        let final_path = d.path().join("liar.txt");
        let mut pf = PartFile::create(final_path.clone(), 3).await.expect("create");
        let err = pf.write(b"hello").await.expect_err("too many bytes");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("more than the 3 bytes it announced"), "{err}");
        assert_eq!(pf.written(), 0);
        pf.write(b"hel").await.expect("write within the size");
        assert!(pf.write(b"l").await.is_err());
        pf.flush().await.expect("flush");
        assert_eq!(std::fs::metadata(pf.part_path()).expect("metadata").len(), 3);
        let done = pf.finish(None).await.expect("finish");
        assert_eq!(std::fs::read(done.path).expect("read"), b"hel");
    }

    #[tokio::test]
    async fn part_file_wrong_md5_removes_the_part() {
        let d = dir();
        let final_path = d.path().join("damaged.txt");
        let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
        pf.write(b"hellp").await.expect("write");
        let err = pf.finish(Some(HELLO_MD5)).await.expect_err("damaged");
        match &err {
            VerifyError::HashMismatch { expected, got, .. } => {
                assert_eq!(expected, HELLO_MD5);
                assert_ne!(got, HELLO_MD5);
                assert_eq!(got.len(), 32);
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.starts_with("the file's MD5 does not match what the sender announced (expected 5d41"), "{msg}");
        assert!(msg.ends_with("it was damaged in transit; the partial file was removed"), "{msg}");
        assert!(!final_path.exists());
        assert!(!part_path(&final_path).exists());
    }

    #[tokio::test]
    async fn part_file_never_overwrites_a_file_that_appeared_meanwhile() {
        let d = dir();
        let final_path = d.path().join("hello.txt");
        let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
        pf.write(b"hello").await.expect("write");
        std::fs::write(&final_path, b"precious").expect("write");
        let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
        assert_eq!(done.path, d.path().join("hello (1).txt"));
        assert_eq!(std::fs::read(&done.path).expect("read"), b"hello");
        assert_eq!(std::fs::read(&final_path).expect("read"), b"precious");
        assert!(!part_path(&final_path).exists());
    }

    #[test]
    fn move_into_place_skips_taken_names() {
        let d = dir();
        let final_path = d.path().join("x.txt");
        let part = part_path(&final_path);
        std::fs::write(&part, b"new").expect("write");
        std::fs::write(&final_path, b"old").expect("write");
        std::fs::write(d.path().join("x (1).txt"), b"old1").expect("write");
        let landed = move_into_place(&part, &final_path).expect("move");
        assert_eq!(landed, d.path().join("x (2).txt"));
        assert_eq!(std::fs::read(&landed).expect("read"), b"new");
        assert_eq!(std::fs::read(&final_path).expect("read"), b"old");
        assert!(!part.exists());
    }

    #[tokio::test]
    async fn part_file_create_fails_when_the_part_exists() {
        let d = dir();
        let final_path = d.path().join("a.bin");
        std::fs::write(part_path(&final_path), b"earlier").expect("write");
        let err = PartFile::create(final_path.clone(), 5).await.expect_err("exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"earlier");
    }

    #[tokio::test]
    async fn part_file_resume_after_a_partial_write() {
        let d = dir();
        let final_path = d.path().join("hello.txt");
        let mut pf = PartFile::create(final_path.clone(), 5).await.expect("create");
        pf.write(b"hel").await.expect("write");
        pf.flush().await.expect("flush");
        drop(pf);
        assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"hel");

        let mut pf = PartFile::resume(final_path.clone(), 3, 5).await.expect("resume");
        assert_eq!(pf.written(), 3);
        assert!(pf.write(b"lo!").await.is_err());
        pf.write(b"lo").await.expect("write");
        assert_eq!(pf.written(), 5);
        let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
        assert_eq!(done.hashes.sha256, HELLO_SHA256);
        assert_eq!(std::fs::read(&final_path).expect("read"), b"hello");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn part_file_hashes_while_writing_many_chunks_and_after_a_resume() {
        let d = dir();
        let final_path = d.path().join("big.bin");
        let data: Vec<u8> = (0..3_000_017u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let cut = 1_234_567;
        let mut pf = PartFile::create(final_path.clone(), data.len() as u64).await.expect("create");
        for chunk in data[..cut].chunks(7_001) {
            pf.write(chunk).await.expect("write");
        }
        pf.flush().await.expect("flush");
        drop(pf);
        let mut pf = PartFile::resume(final_path.clone(), cut as u64, data.len() as u64).await.expect("resume");
        for chunk in data[cut..].chunks(65_536) {
            pf.write(chunk).await.expect("write");
        }
        let mut h = StreamHasher::new();
        h.update(&data);
        let want = h.finish();
        let done = pf.finish(Some(&want.md5.to_uppercase())).await.expect("finish");
        assert_eq!(done.hashes, want);
        assert_eq!(hash_file_blocking(&final_path, None).expect("hash"), want);
    }

    #[tokio::test]
    async fn part_file_resume_truncates_to_the_offset() {
        let d = dir();
        let final_path = d.path().join("hello.txt");
        // More on disk than the resume record vouches for: the tail is dropped.
        std::fs::write(part_path(&final_path), b"helXXXX").expect("write");
        let mut pf = PartFile::resume(final_path.clone(), 3, 5).await.expect("resume");
        pf.write(b"lo").await.expect("write");
        let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
        assert_eq!(done.path, final_path);
        assert_eq!(std::fs::read(&final_path).expect("read"), b"hello");
    }

    #[tokio::test]
    async fn part_file_resume_errors() {
        let d = dir();
        let final_path = d.path().join("r.bin");
        let err = PartFile::resume(final_path.clone(), 0, 5).await.expect_err("no part");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);

        std::fs::write(part_path(&final_path), b"he").expect("write");
        let err = PartFile::resume(final_path.clone(), 3, 5).await.expect_err("offset past the part");
        assert!(err.to_string().contains("holds only 2 bytes"), "{err}");
        let err = PartFile::resume(final_path.clone(), 6, 5).await.expect_err("offset past the size");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // The failed attempts left the part alone.
        assert_eq!(std::fs::read(part_path(&final_path)).expect("read"), b"he");

        std::fs::create_dir(part_path(&d.path().join("dir.bin"))).expect("mkdir");
        let err = PartFile::resume(d.path().join("dir.bin"), 0, 5).await.expect_err("directory");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn part_file_resume_at_the_end_finishes() {
        let d = dir();
        let final_path = d.path().join("done.txt");
        std::fs::write(part_path(&final_path), b"hello").expect("write");
        let pf = PartFile::resume(final_path.clone(), 5, 5).await.expect("resume");
        let done = pf.finish(Some(HELLO_MD5)).await.expect("finish");
        assert_eq!(done.size, 5);
    }

    // --- SourceFile / file_meta --------------------------------------------------

    #[tokio::test]
    async fn source_file_reads_from_an_offset() {
        let d = dir();
        let path = d.path().join("digits");
        std::fs::write(&path, b"0123456789").expect("write");
        let mut src = SourceFile::open(&path, 4).await.expect("open");
        assert_eq!((src.size(), src.position()), (10, 4));
        let mut buf = [0u8; 4];
        assert_eq!(src.read_block(&mut buf).await.expect("read"), 4);
        assert_eq!(&buf, b"4567");
        assert_eq!(src.read_block(&mut buf).await.expect("read"), 2);
        assert_eq!(&buf[..2], b"89");
        assert_eq!(src.read_block(&mut buf).await.expect("read"), 0);
        assert_eq!(src.position(), 10);

        let mut at_end = SourceFile::open(&path, 10).await.expect("open at the end");
        assert_eq!(at_end.read_block(&mut buf).await.expect("read"), 0);

        let err = SourceFile::open(&path, 11).await.expect_err("past the end");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("from byte 11"), "{err}");
        assert!(SourceFile::open(d.path(), 0).await.is_err());
    }

    #[tokio::test]
    async fn source_file_fills_whole_blocks() {
        let d = dir();
        let path = d.path().join("big.bin");
        let data = pattern(5 * IO_BUFFER / 2);
        std::fs::write(&path, &data).expect("write");
        let mut src = SourceFile::open(&path, 0).await.expect("open");
        let mut buf = vec![0u8; IO_BUFFER];
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        loop {
            let n = src.read_block(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            sizes.push(n);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(sizes, [IO_BUFFER, IO_BUFFER, IO_BUFFER / 2]);
        assert_eq!(got, data);
    }

    #[test]
    fn file_meta_reports_size_name_and_date() {
        let d = dir();
        let path = d.path().join("résumé.pdf");
        std::fs::write(&path, b"hello").expect("write");
        let mtime = parse_xep82("2009-07-14T04:52:25.650Z").expect("date");
        std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(mtime)).expect("set mtime");
        let meta = file_meta(&path).expect("meta");
        assert_eq!(meta.size, 5);
        assert_eq!(meta.name, "résumé.pdf");
        assert_eq!(meta.mtime_ns, 1_247_547_145_650_000_000);
        assert_eq!(meta.date, "2009-07-14T04:52:25.650Z");
        assert_eq!(file_meta(d.path()).expect_err("directory").kind(), io::ErrorKind::InvalidInput);
        assert_eq!(file_meta(&d.path().join("missing")).expect_err("missing").kind(), io::ErrorKind::NotFound);
    }

    // --- XEP-0082 ----------------------------------------------------------------

    #[test]
    fn xep82_parses_the_sample() {
        let expected = UNIX_EPOCH + Duration::from_millis(SAMPLE_SECS * 1000 + 650);
        assert_eq!(parse_xep82("2009-07-14T04:52:25.650Z"), Some(expected));
        assert_eq!(parse_xep82(" 2009-07-14T04:52:25.650Z\n"), Some(expected));
        assert_eq!(parse_xep82("2009-07-14T06:52:25.650+02:00"), Some(expected));
        assert_eq!(parse_xep82("2009-07-13T23:52:25.65-05:00"), Some(expected));
        assert_eq!(parse_xep82("2009-07-14T04:52:25Z"), Some(UNIX_EPOCH + Duration::from_secs(SAMPLE_SECS)));
        assert_eq!(parse_xep82("2009-07-14T04:52:25+00:00"), Some(UNIX_EPOCH + Duration::from_secs(SAMPLE_SECS)));
        assert_eq!(
            parse_xep82("2009-07-14T04:52:25.123456789Z"),
            Some(UNIX_EPOCH + Duration::new(SAMPLE_SECS, 123_456_789))
        );
    }

    #[test]
    fn xep82_rejects_malformed_dates() {
        for bad in ["", "garbage", "2009-07-14", "2009-07-14T04:52:25", "2009-07-14T04:52Z", "2009-13-14T04:52:25Z"] {
            assert_eq!(parse_xep82(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn xep82_formats_utc_with_milliseconds() {
        assert_eq!(format_xep82(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::new(SAMPLE_SECS, 650_999_999);
        assert_eq!(format_xep82(t), "2009-07-14T04:52:25.650Z");
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(format_xep82(before), "1969-12-31T23:59:59.500Z");
    }

    #[test]
    fn xep82_round_trips() {
        for s in [
            "2009-07-14T04:52:25.650Z",
            "1969-12-31T23:59:59.500Z",
            "2024-02-29T12:00:00.001Z",
            "1970-01-01T00:00:00.000Z",
        ] {
            let t = parse_xep82(s).expect("parse");
            assert_eq!(format_xep82(t), s);
        }
        let now = SystemTime::now();
        let back = parse_xep82(&format_xep82(now)).expect("parse");
        let diff = now.duration_since(back).expect("not later");
        assert!(diff < Duration::from_millis(1));
    }
}
