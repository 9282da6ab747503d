//! What `send_files` offers for the paths the user picked or dropped: a file is one
//! offer; a folder is one offer per file inside it (recursively, in name order), with
//! the path relative to the folder's parent (e.g. `photos/2024/a.jpg`) as the offer's
//! description, so the receiver sees where each file belongs. Symbolic links to
//! folders are not followed (no loops); links to files are sent as files.

use std::path::{Path, PathBuf};

use crate::error::{AppError, AppResult};

/// One file to offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub path: PathBuf,
    /// For files found inside a folder: their relative path, `/`-separated.
    pub description: Option<String>,
}

/// Expands files and folders into offers. Fails before anything is sent when a path
/// does not exist or a folder holds no file.
pub fn expand(paths: &[PathBuf]) -> AppResult<Vec<Offer>> {
    if paths.is_empty() {
        return Err(AppError::invalid("no file to send"));
    }
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| AppError::new(crate::error::ErrorCode::NotFound, format!("{}: {e}", p.display())))?;
        if meta.is_dir() {
            let root = p.parent().unwrap_or(Path::new(""));
            let before = out.len();
            walk(p, root, &mut out)?;
            if out.len() == before {
                return Err(AppError::invalid(format!("the folder {} holds no file", p.display())));
            }
        } else {
            out.push(Offer { path: p.clone(), description: None });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, root: &Path, out: &mut Vec<Offer>) -> AppResult<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| AppError::new(crate::error::ErrorCode::Io, format!("{}: {e}", dir.display())))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            walk(&path, root, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push(Offer { path, description: Some(rel.join("/")) });
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
        let single = tmp.path().join("notes.txt");
        std::fs::write(&single, b"n").unwrap();

        let offers = expand(&[single.clone(), photos.clone()]).unwrap();
        let got: Vec<(PathBuf, Option<&str>)> =
            offers.iter().map(|o| (o.path.clone(), o.description.as_deref())).collect();
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
        assert_eq!(expand(&[]).unwrap_err().code, "invalid");
        assert_eq!(expand(&[tmp.path().join("nope")]).unwrap_err().code, "not-found");
        std::fs::create_dir(tmp.path().join("empty")).unwrap();
        assert_eq!(expand(&[tmp.path().join("empty")]).unwrap_err().code, "invalid");
    }
}
