//! Safe names for what a peer offers, free names in the download folder, `.part` paths.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{FALLBACK_NAME, MAX_KEPT_EXTENSION_BYTES, MAX_NAME_BYTES, PART_SUFFIX};

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
pub(super) fn split_extension(name: &str) -> (&str, &str) {
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
pub(super) fn exists_no_follow(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The path data is written to before the file is complete: `final_path` + `.part`.
pub fn part_path(final_path: &Path) -> PathBuf {
    let mut s: OsString = final_path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}
