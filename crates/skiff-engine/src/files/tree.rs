//! Where a batch lands: one new folder in the download folder, named for the batch (a
//! clash renames that folder, `photos (1)`, never a file inside), and each file's
//! place in it. Every component a peer sent is made safe as a single name would be;
//! names that become alike on the way (`a:b` and `ab`, `A` and `a`) get ` (n)` within
//! the new folder, which is empty, so nothing is ever written over.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use skiff_proto::batch::Manifest;

use super::names::{exists_no_follow, sanitize_file_name, split_extension};

/// A batch's places on disk: the new folder, and one path per manifest entry (same
/// order), each inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTree {
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
}

/// `dir/name`, or `dir/name (n)` with the first `n` that is free.
pub fn unique_dir(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !exists_no_follow(&first) {
        return first;
    }
    (1u64..).map(|n| dir.join(format!("{name} ({n})"))).find(|p| !exists_no_follow(p)).expect("a free name")
}

/// Plans where `manifest`'s files go under a new folder in `dir` (nothing is created).
pub fn plan(dir: &Path, manifest: &Manifest) -> BatchTree {
    layout(unique_dir(dir, &sanitize_file_name(&manifest.head.name)), manifest)
}

/// Where `manifest`'s files go under `root`: the same for the same manifest, so a
/// batch resumed later finds its files where the first attempt put them.
pub fn layout(root: PathBuf, manifest: &Manifest) -> BatchTree {
    let safe: Vec<Vec<String>> =
        manifest.entries.iter().map(|e| e.path.components().map(sanitize_file_name).collect::<Vec<_>>()).collect();
    // Folders first: a file may then take a name of its own, a folder never has to.
    let fold = |parts: &[String]| parts.join("/").to_lowercase();
    let mut folders: HashSet<String> = HashSet::new();
    for parts in &safe {
        for depth in 1..parts.len() {
            folders.insert(fold(&parts[..depth]));
        }
    }
    let mut taken: HashSet<String> = HashSet::new();
    let mut files = Vec::with_capacity(safe.len());
    for parts in safe {
        let (folder, name) = parts.split_at(parts.len() - 1);
        let mut name = name[0].clone();
        let (stem, ext) = split_extension(&name);
        let (stem, ext) = (stem.to_owned(), ext.to_owned());
        let mut n = 0u64;
        loop {
            let key = fold(&[folder, std::slice::from_ref(&name)].concat());
            if !folders.contains(&key) && taken.insert(key) {
                break;
            }
            n += 1;
            name = format!("{stem} ({n}){ext}");
        }
        let mut path = root.clone();
        path.extend(folder);
        path.push(name);
        files.push(path);
    }
    BatchTree { root, files }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_proto::batch::{Entry, RelPath};

    fn manifest(name: &str, paths: &[&str]) -> Manifest {
        let entries = paths.iter().map(|p| Entry { path: RelPath::new(p).unwrap(), size: 1, sha256: None }).collect();
        Manifest::new("b1", name, entries).unwrap()
    }

    fn relative(t: &BatchTree) -> Vec<String> {
        t.files.iter().map(|f| f.strip_prefix(&t.root).unwrap().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn the_tree_is_kept_under_one_new_folder() {
        let d = tempfile::tempdir().unwrap();
        let m = manifest("photos", &["2024/a.jpg", "2023/a.jpg", "empty.txt", "日本/写真.jpg"]);
        let t = plan(d.path(), &m);
        assert_eq!(t.root, d.path().join("photos"));
        assert_eq!(relative(&t), ["2024/a.jpg", "2023/a.jpg", "empty.txt", "日本/写真.jpg"]);
        assert!(t.files.iter().all(|f| f.starts_with(&t.root)));
    }

    #[test]
    fn a_clash_renames_the_folder_never_a_file_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("photos")).unwrap();
        std::fs::write(d.path().join("photos (1)"), b"a file of that name").unwrap();
        let t = plan(d.path(), &manifest("photos", &["a.jpg"]));
        assert_eq!(t.root, d.path().join("photos (2)"));
        assert_eq!(relative(&t), ["a.jpg"]);
        // Dots in a folder's name are not an extension.
        std::fs::create_dir(d.path().join("v1.2")).unwrap();
        assert_eq!(plan(d.path(), &manifest("v1.2", &["x"])).root, d.path().join("v1.2 (1)"));
    }

    #[test]
    fn names_made_safe_stay_distinct_and_inside() {
        let d = tempfile::tempdir().unwrap();
        // Hidden, reserved and Windows-illegal names are made safe like single names;
        // the batch's own name too.
        // Names the manifest keeps apart but that become alike once made safe get
        // ` (n)`; a file never takes a folder's name.
        let m = manifest(".ssh", &[".bashrc", "aux/CON.txt", "a:b.txt", "ab.txt", "A?", "a", "x./y", "x"]);
        let t = plan(d.path(), &m);
        assert_eq!(t.root, d.path().join("_ssh"));
        assert_eq!(relative(&t), ["_bashrc", "_aux/_CON.txt", "ab.txt", "ab (1).txt", "A", "a (1)", "x/y", "x (1)"]);
        assert!(t.files.iter().all(|f| f.starts_with(&t.root)));
    }
}
