//! What a person chose to send (dropped, picked, named on the command line), expanded
//! into files: a file is itself; a folder is every file inside it, recursively and in
//! name order, each with its path relative to the folder's parent
//! (`photos/2024/a.jpg`), so that the receiver can see (and, in a batch, keep) where it
//! belongs. Symbolic links to folders are not followed (no loops); links to files
//! count as files. Both shells use this, so a folder means the same in each.

use std::path::{Path, PathBuf};

use skiff_proto::batch::MAX_FILES;

/// One file chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub path: PathBuf,
    /// For a file found inside a chosen folder: its path relative to that folder's
    /// parent, `/`-separated (the folder's own name first).
    pub rel: Option<String>,
}

/// Why nothing is sent: said before the first offer goes out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("no file to send")]
    Nothing,
    #[error("{path}: {reason}")]
    Missing { path: String, reason: String },
    #[error("cannot read the folder {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the folder {0} holds no file")]
    EmptyFolder(String),
    #[error("more than {MAX_FILES} files were chosen")]
    TooMany,
}

/// The files `paths` stand for. Fails before anything is sent when a path does not
/// exist, a folder holds no file or cannot be read, or there are too many.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Chosen>, SelectionError> {
    if paths.is_empty() {
        return Err(SelectionError::Nothing);
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| SelectionError::Missing { path: p.display().to_string(), reason: e.to_string() })?;
        if meta.is_dir() {
            let root = p.parent().unwrap_or(Path::new(""));
            let before = out.len();
            walk(p, root, &mut out)?;
            if out.len() == before {
                return Err(SelectionError::EmptyFolder(p.display().to_string()));
            }
        } else {
            push(&mut out, Chosen { path: p.clone(), rel: None })?;
        }
    }
    Ok(out)
}

fn push(out: &mut Vec<Chosen>, c: Chosen) -> Result<(), SelectionError> {
    if out.len() as u64 >= MAX_FILES {
        return Err(SelectionError::TooMany);
    }
    out.push(c);
    Ok(())
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<Chosen>) -> Result<(), SelectionError> {
    let unreadable =
        |e: std::io::Error| SelectionError::Unreadable { path: dir.display().to_string(), reason: e.to_string() };
    let mut entries: Vec<_> = std::fs::read_dir(dir).map_err(unreadable)?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk(&path, root, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            push(out, Chosen { path, rel: Some(rel.join("/")) })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_to_files_with_relative_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let photos = tmp.path().join("photos");
        std::fs::create_dir_all(photos.join("2024/summer")).unwrap();
        std::fs::create_dir_all(photos.join("empty")).unwrap();
        std::fs::write(photos.join("b.jpg"), b"b").unwrap();
        std::fs::write(photos.join("a.jpg"), b"a").unwrap();
        std::fs::write(photos.join("2024/summer/sea.jpg"), b"s").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&photos, photos.join("2024/loop")).unwrap();
        let single = tmp.path().join("notes.txt");
        std::fs::write(&single, b"n").unwrap();

        let chosen = expand(&[single.clone(), photos.clone()]).unwrap();
        let got: Vec<(PathBuf, Option<&str>)> = chosen.iter().map(|c| (c.path.clone(), c.rel.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (single, None),
                (photos.join("2024/summer/sea.jpg"), Some("photos/2024/summer/sea.jpg")),
                (photos.join("a.jpg"), Some("photos/a.jpg")),
                (photos.join("b.jpg"), Some("photos/b.jpg")),
            ]
        );
    }

    #[test]
    fn missing_paths_and_empty_folders_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(expand(&[]), Err(SelectionError::Nothing));
        assert!(matches!(expand(&[tmp.path().join("nope")]), Err(SelectionError::Missing { .. })));
        std::fs::create_dir(tmp.path().join("empty")).unwrap();
        assert!(matches!(expand(&[tmp.path().join("empty")]), Err(SelectionError::EmptyFolder(_))));
    }
}
