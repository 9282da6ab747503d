//! The sending side: a file read from an offset, and what an offer says about it.

use std::io;
use std::path::Path;
use std::time::UNIX_EPOCH;

use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

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
    let mtime_ns = i64::try_from(skiff_proto::dates::unix_nanos(mtime)).unwrap_or(if mtime >= UNIX_EPOCH {
        i64::MAX
    } else {
        i64::MIN
    });
    Ok(FileMeta { size: meta.len(), mtime_ns, name, date: skiff_proto::dates::format_xep82(mtime) })
}

// ---------------------------------------------------------------------------------
// XEP-0082 dates
// ---------------------------------------------------------------------------------
