//! Skiff's batch manifest (`urn:x-skiff:batch:0`): the files offered together (a dropped
//! folder, a multi-select), announced once so that the receiver answers once, for a
//! folder of its choosing, and gets the tree as it was.
//!
//! The sender announces the batch in one or more IQ-sets, each a [`ManifestPart`]: the
//! batch's id, its name (the top-level folder's), how many files and bytes it holds,
//! and the next run of entries (relative path, size, SHA-256 when known). Each SI offer
//! of the batch then carries an [`InBatch`] marker naming the batch and the entry. A
//! client that does not advertise the namespace gets the files one by one, as before.
//!
//! Nothing a manifest says is taken on trust: [`ManifestAssembler`] refuses parts that
//! disagree, paths that leave the batch's folder (absolute, `..`, empty or `.`
//! components, control characters), duplicates, counts and sizes that do not add up,
//! and anything over the limits below, before anything is written.

use std::collections::HashSet;

use crate::error::ParseError;
use crate::xml::Element;

/// The namespace, also the disco feature a Skiff advertises.
pub const NS: &str = "urn:x-skiff:batch:0";

/// Most files one batch may hold.
pub const MAX_FILES: u64 = 20_000;
/// Most entries in one part (one IQ): about 100 bytes each keeps a part well under
/// the 256 KiB servers commonly allow for a stanza.
pub const MAX_PART_ENTRIES: usize = 1_000;
/// Deepest path, in components (the file itself included).
pub const MAX_DEPTH: usize = 32;
/// Longest path, in bytes.
pub const MAX_PATH_BYTES: usize = 1_024;
/// Longest component, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;
/// Longest batch id or name, in bytes.
const MAX_ID_BYTES: usize = 64;

/// Why a manifest (or a part of one) is refused, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the batch's part is malformed: {0}")]
    Malformed(String),
    #[error("the path {path:?} {why}")]
    BadPath { path: String, why: &'static str },
    #[error("{0:?} is listed twice")]
    Duplicate(String),
    #[error("the batch announces {0} files; at most {MAX_FILES} are taken")]
    TooManyFiles(u64),
    #[error("a part holds {0} entries; at most {MAX_PART_ENTRIES} are taken")]
    PartTooLarge(usize),
    #[error("a part of the batch disagrees with its first part about {0}")]
    Inconsistent(&'static str),
    #[error("the batch lists more files than the {0} it announced")]
    MoreFilesThanAnnounced(u64),
    #[error("the batch announced {announced} bytes but its files add up to {listed}")]
    SizeMismatch { announced: u64, listed: u64 },
    #[error("the batch announced {announced} files but listed {listed}")]
    CountMismatch { announced: u64, listed: u64 },
    #[error("a part starts at entry {got}, where entry {expected} was due")]
    OutOfOrder { expected: u64, got: u64 },
}

/// A path inside a batch, relative to its folder: components separated by `/`, none
/// empty, `.` or `..`, no control characters or backslashes, within the limits. What
/// each component becomes on disk (reserved names, characters a file system refuses)
/// is the receiver's to decide.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// `path` if it stays inside the batch's folder.
    pub fn new(path: &str) -> Result<RelPath, ManifestError> {
        let bad = |why| Err(ManifestError::BadPath { path: path.chars().take(200).collect(), why });
        if path.is_empty() {
            return bad("is empty");
        }
        if path.len() > MAX_PATH_BYTES {
            return bad("is too long");
        }
        if path.starts_with('/') {
            return bad("is absolute");
        }
        if path.chars().any(|c| c.is_control() || c == '\\') {
            return bad("holds control characters or backslashes");
        }
        let mut depth = 0;
        for component in path.split('/') {
            depth += 1;
            match component {
                "" => return bad("has an empty component"),
                "." | ".." => return bad("leaves or names its folder"),
                c if c.len() > MAX_COMPONENT_BYTES => return bad("has a component that is too long"),
                // `C:` and the like: absolute on Windows.
                c if depth == 1 && c.len() == 2 && c.ends_with(':') => return bad("is absolute"),
                _ => {}
            }
        }
        if depth > MAX_DEPTH {
            return bad("is too deep");
        }
        Ok(RelPath(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, outermost first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One file of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: RelPath,
    pub size: u64,
    /// Lowercase hex, when the sender had it when it announced the batch.
    pub sha256: Option<String>,
}

/// What every part of a batch repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchHead {
    /// The sender's id for the batch (unique per sender).
    pub id: String,
    /// The top-level folder's name (a multi-select of loose files: a name the sender
    /// makes up).
    pub name: String,
    /// Files in the whole batch.
    pub files: u64,
    /// Bytes in the whole batch.
    pub size: u64,
}

/// One IQ's worth of a manifest: the head and the entries from `first` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPart {
    pub head: BatchHead,
    /// Index of the first entry of this part in the whole batch.
    pub first: u64,
    pub entries: Vec<Entry>,
}

fn attr<'a>(el: &'a Element, name: &str) -> Result<&'a str, ManifestError> {
    el.attr(name).ok_or_else(|| ManifestError::Malformed(format!("<{}> has no {name}", el.name)))
}

fn number(el: &Element, name: &str) -> Result<u64, ManifestError> {
    let text = attr(el, name)?;
    text.parse().map_err(|_| ManifestError::Malformed(format!("{name}={text:?} is not a number")))
}

fn short_text(el: &Element, name: &str) -> Result<String, ManifestError> {
    let text = attr(el, name)?;
    if text.is_empty() || text.len() > MAX_ID_BYTES || text.chars().any(char::is_control) {
        return Err(ManifestError::Malformed(format!("{name} is empty, too long or holds control characters")));
    }
    Ok(text.to_owned())
}

impl TryFrom<&Element> for ManifestPart {
    type Error = ManifestError;

    fn try_from(el: &Element) -> Result<ManifestPart, ManifestError> {
        if el.name != "batch" || el.ns != NS {
            return Err(ManifestError::Malformed(format!("<{}> is not a batch", el.name)));
        }
        let head = BatchHead {
            id: short_text(el, "id")?,
            name: short_text(el, "name")?,
            files: number(el, "files")?,
            size: number(el, "size")?,
        };
        if head.files > MAX_FILES {
            return Err(ManifestError::TooManyFiles(head.files));
        }
        let first = el.attr("first").map(|_| number(el, "first")).transpose()?.unwrap_or(0);
        let children: Vec<&Element> = el.children_named("file", NS).collect();
        if children.len() > MAX_PART_ENTRIES {
            return Err(ManifestError::PartTooLarge(children.len()));
        }
        let mut entries = Vec::with_capacity(children.len());
        for f in children {
            let sha256 = f.attr("sha256").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            entries.push(Entry {
                path: RelPath::new(attr(f, "path")?)?,
                size: number(f, "size")?,
                sha256: sha256.map(str::to_ascii_lowercase),
            });
        }
        Ok(ManifestPart { head, first, entries })
    }
}

impl From<&ManifestPart> for Element {
    fn from(p: &ManifestPart) -> Element {
        let mut el = Element::new("batch", NS)
            .with_attr("id", &p.head.id)
            .with_attr("name", &p.head.name)
            .with_attr("files", p.head.files.to_string())
            .with_attr("size", p.head.size.to_string());
        if p.first > 0 {
            el = el.with_attr("first", p.first.to_string());
        }
        for e in &p.entries {
            let mut f =
                Element::new("file", NS).with_attr("path", e.path.as_str()).with_attr("size", e.size.to_string());
            if let Some(h) = &e.sha256 {
                f = f.with_attr("sha256", h);
            }
            el = el.with_child(f);
        }
        el
    }
}

/// A whole manifest, every check passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub head: BatchHead,
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// A manifest of `entries` (checked as a receiver would: no duplicates, within the
    /// limits), its count and size from them.
    pub fn new(id: &str, name: &str, entries: Vec<Entry>) -> Result<Manifest, ManifestError> {
        let head = BatchHead {
            id: id.to_owned(),
            name: name.to_owned(),
            files: entries.len() as u64,
            size: entries.iter().map(|e| e.size).fold(0u64, u64::saturating_add),
        };
        let mut a = ManifestAssembler::default();
        for part in (Manifest { head, entries }).parts(MAX_PART_ENTRIES) {
            if let Some(m) = a.add(part)? {
                return Ok(m);
            }
        }
        Err(ManifestError::CountMismatch { announced: 0, listed: 0 })
    }

    /// The parts to send, at most `per_part` entries each (at least one part, also for
    /// an empty batch).
    pub fn parts(&self, per_part: usize) -> Vec<ManifestPart> {
        let per_part = per_part.clamp(1, MAX_PART_ENTRIES);
        let mut parts: Vec<ManifestPart> = self
            .entries
            .chunks(per_part)
            .enumerate()
            .map(|(i, chunk)| ManifestPart {
                head: self.head.clone(),
                first: (i * per_part) as u64,
                entries: chunk.to_vec(),
            })
            .collect();
        if parts.is_empty() {
            parts.push(ManifestPart { head: self.head.clone(), first: 0, entries: Vec::new() });
        }
        parts
    }

    /// The entry at `path`.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path.as_str() == path)
    }
}

/// Puts a manifest together from its parts as they arrive, checking each as it comes:
/// the first part fixes the head, the others must repeat it and continue where the
/// last stopped. Sans-IO; the caller ends the batch on the first error.
#[derive(Debug, Default)]
pub struct ManifestAssembler {
    head: Option<BatchHead>,
    entries: Vec<Entry>,
    paths: HashSet<RelPath>,
    /// Paths that are folders of other entries' paths (a file may not be one).
    folders: HashSet<String>,
    listed_size: u64,
}

impl ManifestAssembler {
    /// Takes the next part: `Some` with the whole manifest once the last has come.
    pub fn add(&mut self, part: ManifestPart) -> Result<Option<Manifest>, ManifestError> {
        let head = self.head.get_or_insert_with(|| part.head.clone());
        if head.id != part.head.id {
            return Err(ManifestError::Inconsistent("its id"));
        }
        if head.name != part.head.name {
            return Err(ManifestError::Inconsistent("its name"));
        }
        if head.files != part.head.files {
            return Err(ManifestError::Inconsistent("how many files it holds"));
        }
        if head.size != part.head.size {
            return Err(ManifestError::Inconsistent("its size"));
        }
        let (files, size) = (head.files, head.size);
        let expected = self.entries.len() as u64;
        if part.first != expected {
            return Err(ManifestError::OutOfOrder { expected, got: part.first });
        }
        for e in part.entries {
            if self.entries.len() as u64 >= files {
                return Err(ManifestError::MoreFilesThanAnnounced(files));
            }
            self.check_place(&e.path)?;
            // More than announced, or more than any disk holds (the sum overflows).
            match self.listed_size.checked_add(e.size) {
                Some(listed) if listed <= size => self.listed_size = listed,
                listed => {
                    let listed = listed.unwrap_or(u64::MAX);
                    return Err(ManifestError::SizeMismatch { announced: size, listed });
                }
            }
            self.entries.push(e);
        }
        if (self.entries.len() as u64) < files {
            return Ok(None);
        }
        if self.listed_size != size {
            return Err(ManifestError::SizeMismatch { announced: size, listed: self.listed_size });
        }
        let head = self.head.clone().expect("set above");
        Ok(Some(Manifest { head, entries: std::mem::take(&mut self.entries) }))
    }

    /// `path` names a new file: not one listed already (ASCII case folded, as file
    /// systems that ignore case would merge them), not a folder of one, and none of
    /// its folders a file.
    fn check_place(&mut self, path: &RelPath) -> Result<(), ManifestError> {
        let folded = RelPath(path.as_str().to_ascii_lowercase());
        if self.paths.contains(&folded) || self.folders.contains(folded.as_str()) {
            return Err(ManifestError::Duplicate(path.to_string()));
        }
        let mut prefix = String::new();
        let components: Vec<&str> = folded.components().collect();
        for c in &components[..components.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(c);
            if self.paths.contains(&RelPath(prefix.clone())) {
                return Err(ManifestError::Duplicate(prefix));
            }
            self.folders.insert(prefix.clone());
        }
        self.paths.insert(folded);
        Ok(())
    }
}

/// The marker in an SI offer of a batch's files: which batch, and which run of its
/// entries the offered stream carries, one after the other (`first`, `first + 1`, ...,
/// `count` of them). Small files travel many to a stream, so that a folder of
/// thousands does not pay a negotiation per file; the offered size is the run's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InBatch {
    pub id: String,
    pub first: u64,
    pub count: u64,
}

impl InBatch {
    /// The entries of `m` this run names, or `None` when it runs outside the batch.
    pub fn entries<'a>(&self, m: &'a Manifest) -> Option<&'a [Entry]> {
        let first = usize::try_from(self.first).ok()?;
        let end = first.checked_add(usize::try_from(self.count).ok()?)?;
        m.entries.get(first..end)
    }
}

impl TryFrom<&Element> for InBatch {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<InBatch, ParseError> {
        if el.name != "in-batch" || el.ns != NS {
            return Err(ParseError::NotMine { expected: "in-batch", found: el.name.clone() });
        }
        let bad = |e: ManifestError| ParseError::Invalid { element: "in-batch", reason: e.to_string() };
        let id = short_text(el, "id").map_err(bad)?;
        let first = number(el, "first").map_err(bad)?;
        let count = el.attr("count").map(|_| number(el, "count")).transpose().map_err(bad)?.unwrap_or(1);
        if count == 0 || count > MAX_FILES || first >= MAX_FILES {
            return Err(ParseError::Invalid { element: "in-batch", reason: "the run is empty or too long".into() });
        }
        Ok(InBatch { id, first, count })
    }
}

impl From<&InBatch> for Element {
    fn from(m: &InBatch) -> Element {
        let el = Element::new("in-batch", NS).with_attr("id", &m.id).with_attr("first", m.first.to_string());
        if m.count == 1 {
            el
        } else {
            el.with_attr("count", m.count.to_string())
        }
    }
}

/// The receiver's answer to a batch announced again (to continue it): the runs of
/// entries it holds already, verified, which the sender need not send again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub id: String,
    /// `(first, count)` runs, in order, not overlapping.
    pub have: Vec<(u64, u64)>,
}

impl Received {
    /// The runs of `done` (one flag per entry) that are set.
    pub fn from_flags(id: &str, done: &[bool]) -> Received {
        let mut have: Vec<(u64, u64)> = Vec::new();
        for (i, d) in done.iter().enumerate() {
            if !*d {
                continue;
            }
            match have.last_mut() {
                Some((first, count)) if *first + *count == i as u64 => *count += 1,
                _ => have.push((i as u64, 1)),
            }
        }
        Received { id: id.to_owned(), have }
    }

    /// One flag per entry of a batch of `files`: whether the receiver holds it. Runs
    /// outside the batch are refused.
    pub fn flags(&self, files: u64) -> Result<Vec<bool>, ManifestError> {
        let mut out = vec![false; usize::try_from(files).unwrap_or(0)];
        for &(first, count) in &self.have {
            let end =
                first.checked_add(count).filter(|e| *e <= files).ok_or(ManifestError::MoreFilesThanAnnounced(files))?;
            for f in &mut out[first as usize..end as usize] {
                *f = true;
            }
        }
        Ok(out)
    }
}

impl TryFrom<&Element> for Received {
    type Error = ManifestError;

    fn try_from(el: &Element) -> Result<Received, ManifestError> {
        if el.name != "received" || el.ns != NS {
            return Err(ManifestError::Malformed(format!("<{}> is not a batch's receipt", el.name)));
        }
        let id = short_text(el, "id")?;
        let runs: Vec<&Element> = el.children_named("have", NS).collect();
        if runs.len() as u64 > MAX_FILES {
            return Err(ManifestError::TooManyFiles(runs.len() as u64));
        }
        let have = runs.iter().map(|r| Ok((number(r, "first")?, number(r, "count")?))).collect::<Result<_, _>>()?;
        Ok(Received { id, have })
    }
}

impl From<&Received> for Element {
    fn from(r: &Received) -> Element {
        Element::new("received", NS).with_attr("id", &r.id).with_children(r.have.iter().map(|(first, count)| {
            Element::new("have", NS).with_attr("first", first.to_string()).with_attr("count", count.to_string())
        }))
    }
}

#[cfg(test)]
mod tests;
