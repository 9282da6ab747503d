//! The sending side: a file read from an offset, and what an offer says about it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The sending side's reader: a file, or several read one after the other (a run of
/// a batch's small files, sent as one stream), opened at an offset and read in blocks.
#[derive(Debug)]
pub struct SourceFile {
    /// The files and the size each had when the offer was made.
    files: Vec<(PathBuf, u64)>,
    /// The file being read, its index and how much of it is left.
    current: Option<(usize, File, u64)>,
    /// Index of the next file to open.
    next: usize,
    /// A small file of several, read whole at once, and how much of it was sent.
    buffered: Option<(Vec<u8>, usize)>,
    size: u64,
    position: u64,
}

/// Files of several up to this size are read whole, in one step each (opening and
/// reading a small file step by step costs more than the bytes).
const READ_WHOLE: u64 = 1 << 20;

impl SourceFile {
    /// Opens `path` for sending from byte `offset` (0 for a new transfer). Fails with
    /// `InvalidInput` when `offset` is past the end of the file.
    pub async fn open(path: &Path, offset: u64) -> io::Result<SourceFile> {
        let size = regular_file_len(path).await?;
        SourceFile::open_many(vec![(path.to_path_buf(), size)], offset).await
    }

    /// Opens `files` (each with the size it was announced with) as one stream, from
    /// byte `offset` of the whole. A file whose size is no longer the announced one
    /// fails the read that reaches it.
    pub async fn open_many(files: Vec<(PathBuf, u64)>, offset: u64) -> io::Result<SourceFile> {
        let size = files.iter().map(|f| f.1).fold(0u64, u64::saturating_add);
        if offset > size {
            let what = match files.as_slice() {
                [(p, _)] => p.display().to_string(),
                _ => format!("{} files", files.len()),
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send {what} from byte {offset}: it has only {size} bytes"),
            ));
        }
        let mut src = SourceFile { files, current: None, next: 0, buffered: None, size, position: offset };
        // Skip the files wholly before `offset`; open the one it falls in there.
        let mut skip = offset;
        while src.next < src.files.len() {
            let len = src.files[src.next].1;
            if skip < len || (skip == 0 && len == 0) {
                src.open_next(skip).await?;
                break;
            }
            skip -= len;
            src.next += 1;
        }
        Ok(src)
    }

    /// Opens the next file at `at`, checking it still has its announced size.
    async fn open_next(&mut self, at: u64) -> io::Result<()> {
        let index = self.next;
        let (path, len) = &self.files[index];
        let mut file = File::open(path).await?;
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", path.display()),
            ));
        }
        if self.files.len() > 1 && meta.len() != *len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} changed size after it was offered ({len} bytes then, {} now)", path.display(), meta.len()),
            ));
        }
        if at > meta.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send {} from byte {at}: it has only {} bytes", path.display(), meta.len()),
            ));
        }
        file.seek(io::SeekFrom::Start(at)).await?;
        // A single file is sent as it is now (its end is where reading stops).
        let left = if self.files.len() > 1 { len - at } else { u64::MAX };
        self.current = Some((index, file, left));
        self.next = index + 1;
        Ok(())
    }

    /// Reads the next (small) file whole, checking it still has its announced size.
    async fn read_whole(&mut self) -> io::Result<()> {
        let (path, len) = self.files[self.next].clone();
        let data = tokio::task::spawn_blocking(move || -> io::Result<Vec<u8>> {
            let data = std::fs::read(&path)?;
            if data.len() as u64 != len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} changed size after it was offered ({len} bytes then, {} now)",
                        path.display(),
                        data.len()
                    ),
                ));
            }
            Ok(data)
        })
        .await
        .map_err(io::Error::other)??;
        self.next += 1;
        if !data.is_empty() {
            self.buffered = Some((data, 0));
        }
        Ok(())
    }

    /// Reads the next block into `buf`, filling it unless the end comes first. Returns
    /// the number of bytes read; 0 at the end.
    pub async fn read_block(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            if let Some((data, sent)) = self.buffered.as_mut() {
                let n = (buf.len() - filled).min(data.len() - *sent);
                buf[filled..filled + n].copy_from_slice(&data[*sent..*sent + n]);
                *sent += n;
                filled += n;
                if *sent == data.len() {
                    self.buffered = None;
                }
                continue;
            }
            let Some((index, file, left)) = self.current.as_mut() else {
                if self.next >= self.files.len() {
                    break;
                }
                if self.files.len() > 1 && self.files[self.next].1 <= READ_WHOLE {
                    self.read_whole().await?;
                } else {
                    self.open_next(0).await?;
                }
                continue;
            };
            let want = (buf.len() - filled).min(usize::try_from(*left).unwrap_or(usize::MAX));
            let n = if want == 0 {
                0
            } else {
                match file.read(&mut buf[filled..filled + want]).await {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                if self.files.len() > 1 && *left > 0 {
                    let path = self.files[*index].0.display().to_string();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{path} got shorter while it was being sent"),
                    ));
                }
                self.current = None;
                if self.files.len() == 1 {
                    break;
                }
                continue;
            }
            *left -= n as u64;
            filled += n;
        }
        self.position += filled as u64;
        Ok(filled)
    }

    /// Size of the file (or of the files together) when opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Offset of the next byte [`read_block`](SourceFile::read_block) returns.
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// The size of the regular file at `path`.
async fn regular_file_len(path: &Path) -> io::Result<u64> {
    let meta = tokio::fs::metadata(path).await?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    Ok(meta.len())
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
