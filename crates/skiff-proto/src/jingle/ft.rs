//! XEP-0234: Jingle File Transfer, the application format: the `<description/>` of a
//! file offer (name, size, date, media type, description, hashes, range), and the
//! `checksum` and `received` session-info payloads.
//!
//! Namespace `urn:xmpp:jingle:apps:file-transfer:5`, and the older ones clients still
//! send, read alike and answered in the version they came in:
//! - `:5` (XEP-0234 0.18+): hashes in `urn:xmpp:hashes:2`, base64;
//! - `:4` (0.16–0.17): the same shape, hashes in `urn:xmpp:hashes:1`;
//! - `:3` (0.14–0.15): the `<file/>` wrapped in `<offer/>` (or `<request/>`), hashes in
//!   `urn:xmpp:hashes:1`.
//!
//! Hashes in `urn:xmpp:hashes:1` were written as hex by some clients and as base64 by
//! others: both are read. File names are exposed raw: the engine sanitises them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::Creator;
use crate::error::{expect, opt_parse, req_attr, ParseError};
use crate::hashes::Hash;
use crate::ns;
use crate::xml::Element;

/// Most `<hash/>`s read from one `<file/>`.
pub const MAX_HASHES: usize = 8;

/// Which version of the namespace a payload came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FtVersion {
    V5,
    V4,
    V3,
}

impl FtVersion {
    /// Newest first.
    pub const ALL: [FtVersion; 3] = [FtVersion::V5, FtVersion::V4, FtVersion::V3];

    pub fn ns(self) -> &'static str {
        match self {
            FtVersion::V5 => ns::JINGLE_FT5,
            FtVersion::V4 => ns::JINGLE_FT4,
            FtVersion::V3 => ns::JINGLE_FT3,
        }
    }

    pub fn of(namespace: &str) -> Option<FtVersion> {
        FtVersion::ALL.into_iter().find(|v| v.ns() == namespace)
    }

    fn hashes_ns(self) -> &'static str {
        match self {
            FtVersion::V5 => ns::HASHES,
            FtVersion::V4 | FtVersion::V3 => ns::HASHES_1,
        }
    }
}

/// `<range offset length/>`: where the bytes start and how many come (the rest when
/// `length` is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    pub offset: u64,
    pub length: Option<u64>,
}

/// A `<file/>`: what the sender says of it. Every field is optional on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct File {
    pub name: Option<String>,
    pub size: Option<u64>,
    /// XEP-0082 date-time, as sent.
    pub date: Option<String>,
    pub media_type: Option<String>,
    pub desc: Option<String>,
    /// Present (maybe empty): the sender can send part of the file.
    pub range: Option<Range>,
    pub hashes: Vec<Hash>,
}

impl File {
    /// The SHA-256, lowercase hex, if one well-formed is among the hashes.
    pub fn sha256(&self) -> Option<String> {
        self.hashes.iter().find_map(Hash::sha256_hex)
    }

    fn parse(el: &Element, version: FtVersion) -> Result<File, ParseError> {
        expect(el, "file", version.ns())?;
        let text = |name: &str| el.child(name, version.ns()).map(Element::text);
        let size = match text("size") {
            None => None,
            Some(s) => Some(s.trim().parse().map_err(|_| ParseError::invalid("size", format!("not a size: '{s}'")))?),
        };
        let range = match el.child("range", version.ns()) {
            None => None,
            Some(r) => Some(Range {
                offset: opt_parse(r, "range", "offset")?.unwrap_or(0),
                length: opt_parse(r, "range", "length")?,
            }),
        };
        let mut hashes = Vec::new();
        for h in el.elements().filter(|e| e.name == "hash" && (e.ns == ns::HASHES || e.ns == ns::HASHES_1)) {
            if hashes.len() == MAX_HASHES {
                return Err(ParseError::invalid("file", format!("more than {MAX_HASHES} hashes")));
            }
            // An unusable hash is no hash (the file is then checked by what is left).
            if let Some(h) = read_hash(h) {
                hashes.push(h);
            }
        }
        Ok(File {
            name: text("name"),
            size,
            date: text("date"),
            media_type: text("media-type"),
            desc: text("desc"),
            range,
            hashes,
        })
    }

    fn write(&self, version: FtVersion) -> Element {
        let v = version.ns();
        let field =
            |name: &str, value: &Option<String>| value.as_ref().map(|t| Element::new(name, v).with_text(t.clone()));
        let mut el = Element::new("file", v);
        el.children.extend(
            [
                field("date", &self.date),
                field("desc", &self.desc),
                field("media-type", &self.media_type),
                field("name", &self.name),
                self.size.map(|s| Element::new("size", v).with_text(s.to_string())),
            ]
            .into_iter()
            .flatten()
            .map(crate::xml::Node::Element),
        );
        if let Some(r) = &self.range {
            let offset = (r.offset > 0).then(|| r.offset.to_string());
            el.push_child(
                Element::new("range", v)
                    .with_opt_attr("offset", offset)
                    .with_opt_attr("length", r.length.map(|l| l.to_string())),
            );
        }
        for h in &self.hashes {
            el.push_child(
                Element::new("hash", version.hashes_ns())
                    .with_attr("algo", h.algo.as_str())
                    .with_text(STANDARD.encode(&h.digest)),
            );
        }
        el
    }
}

/// The digest length of the algorithms clients use (XEP-0300's registry).
fn digest_len(algo: &str) -> Option<usize> {
    Some(match algo.to_ascii_lowercase().as_str() {
        "md5" => 16,
        "sha-1" => 20,
        "sha-224" | "sha3-224" => 28,
        "sha-256" | "sha3-256" | "blake2b-256" => 32,
        "sha-384" | "sha3-384" => 48,
        "sha-512" | "sha3-512" | "blake2b-512" => 64,
        _ => return None,
    })
}

/// A `<hash/>` of either namespace: base64, or hex where `urn:xmpp:hashes:1` was
/// written so (told apart by length: hex is always longer); `None` when it is
/// neither, has no algorithm, or has the wrong length for its algorithm.
fn read_hash(el: &Element) -> Option<Hash> {
    let algo = el.attr("algo")?.to_owned();
    let text: String = el.text().chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let want = digest_len(&algo);
    let hex = el.ns == ns::HASHES_1 && want.is_some_and(|n| text.len() == 2 * n);
    let digest = if hex { hex::decode(&text).ok()? } else { STANDARD.decode(text.as_bytes()).ok()? };
    if want.is_some_and(|n| digest.len() != n) {
        return None;
    }
    Some(Hash { algo, digest })
}

/// The application `<description/>` of a file offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    pub version: FtVersion,
    pub file: File,
}

impl TryFrom<&Element> for Description {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Description, ParseError> {
        let version = version_of(el, "description")?;
        let holder = match version {
            FtVersion::V3 => el
                .child("offer", version.ns())
                .ok_or(ParseError::MissingChild { element: "description", child: "offer" })?,
            _ => el,
        };
        let mut files = holder.children_named("file", version.ns());
        let file = files.next().ok_or(ParseError::MissingChild { element: "description", child: "file" })?;
        if files.next().is_some() {
            return Err(ParseError::invalid("description", "more than one <file/>"));
        }
        Ok(Description { version, file: File::parse(file, version)? })
    }
}

impl From<&Description> for Element {
    fn from(d: &Description) -> Element {
        let file = d.file.write(d.version);
        let el = Element::new("description", d.version.ns());
        match d.version {
            FtVersion::V3 => el.with_child(Element::new("offer", d.version.ns()).with_child(file)),
            _ => el.with_child(file),
        }
    }
}

/// The namespace version of `<name/>` in one of the file-transfer namespaces.
fn version_of(el: &Element, name: &'static str) -> Result<FtVersion, ParseError> {
    FtVersion::of(&el.ns)
        .filter(|_| el.name == name)
        .ok_or_else(|| ParseError::NotMine { expected: name, found: format!("{{{}}}{}", el.ns, el.name) })
}

fn content_ref(el: &Element, element: &'static str) -> Result<(Creator, String), ParseError> {
    let creator = req_attr(el, element, "creator")?
        .parse()
        .map_err(|e: crate::vocab::UnknownValue| ParseError::invalid(element, e.to_string()))?;
    let name = req_attr(el, element, "name")?;
    if name.is_empty() || name.len() > super::MAX_ID {
        return Err(ParseError::invalid(element, "bad content name"));
    }
    Ok((creator, name.to_owned()))
}

/// The `checksum` session-info: the file's hashes, sent once they are known (after
/// the offer, maybe after the data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub version: FtVersion,
    /// The content it is about (`creator`, `name`). The XEP wants both; Gajim sends
    /// neither (its sessions hold one file): `None` then.
    pub content: Option<(Creator, String)>,
    pub file: File,
}

impl TryFrom<&Element> for Checksum {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Checksum, ParseError> {
        let version = version_of(el, "checksum")?;
        let content = match (el.attr("creator"), el.attr("name")) {
            (None, None) => None,
            _ => Some(content_ref(el, "checksum")?),
        };
        let file =
            el.child("file", version.ns()).ok_or(ParseError::MissingChild { element: "checksum", child: "file" })?;
        Ok(Checksum { version, content, file: File::parse(file, version)? })
    }
}

impl From<&Checksum> for Element {
    fn from(c: &Checksum) -> Element {
        let mut el = Element::new("checksum", c.version.ns());
        if let Some((creator, name)) = &c.content {
            el = el.with_attr("creator", creator.as_str()).with_attr("name", name.as_str());
        }
        el.with_child(c.file.write(c.version))
    }
}

/// The `received` session-info: the receiver has the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub version: FtVersion,
    pub creator: Creator,
    pub name: String,
}

impl TryFrom<&Element> for Received {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Received, ParseError> {
        let version = version_of(el, "received")?;
        let (creator, name) = content_ref(el, "received")?;
        Ok(Received { version, creator, name })
    }
}

impl From<&Received> for Element {
    fn from(r: &Received) -> Element {
        Element::new("received", r.version.ns())
            .with_attr("creator", r.creator.as_str())
            .with_attr("name", r.name.as_str())
    }
}

/// XEP-0234's own reason conditions, carried inside a Jingle `<reason/>`.
pub fn file_not_found(version: FtVersion) -> Element {
    Element::new("file-not-found", version.ns())
}

/// The file is larger than the receiver takes.
pub fn file_too_large(version: FtVersion) -> Element {
    Element::new("file-too-large", version.ns())
}
