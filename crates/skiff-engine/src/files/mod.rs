//! The file side of transfers: safe names for what a peer offers, the `.part` writer
//! of the receiving side, the reader of the sending side, hashing and free space.
//!
//! Two rules hold for everything written here:
//!
//! * a name chosen by a remote peer never leads outside the download folder: it is
//!   reduced to a single harmless path component by [`sanitize_file_name`];
//! * nothing half-written ever appears under the final name: data goes to
//!   `<final>.part` ([`PartFile`]), and only a complete, verified file is moved to a
//!   final name that is free, without ever overwriting an existing file.

mod hash;
mod names;
mod pack;
mod part;
mod selection;
mod sink;
mod source;
#[cfg(test)]
mod tests;
mod tree;

use std::path::Path;

pub use hash::{hash_file, hash_file_blocking, Hashes, StreamHasher};
pub use names::{is_safe_file_name, part_path, sanitize_file_name, unique_path};
pub use pack::{PackEntry, PackWriter, UnpackError};
pub use part::{Finished, PartFile, VerifyError};
pub use selection::{expand, Chosen, SelectionError};
pub use sink::Sink;
pub use source::{file_meta, FileMeta, SourceFile};
pub use tree::{layout as layout_batch, plan as plan_batch, unique_dir, BatchTree};

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

pub use platform::free_space;

/// What differs between systems.
#[cfg(unix)]
mod platform {
    use std::io;
    use std::path::Path;

    /// Bytes free for us on the file system holding `dir` (what an unprivileged user
    /// may still write).
    pub fn free_space(dir: &Path) -> io::Result<u64> {
        let st = nix::sys::statvfs::statvfs(dir).map_err(io::Error::from)?;
        Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
    }
}

/// What differs between systems.
#[cfg(not(unix))]
mod platform {
    use std::io;
    use std::path::Path;

    /// Unknown here: [`super::check_free_space`] then lets the file come.
    pub fn free_space(_dir: &Path) -> io::Result<u64> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "free space is not measured on this system"))
    }
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
