//! XEP-0300: Use of Cryptographic Hash Functions in XMPP (`urn:xmpp:hashes:2`):
//! `<hash algo='sha-256'>base64</hash>`, and the SHA-256 checksum Skiff sends after
//! the last byte of an SI transfer whose hash was not ready when it was offered.
//!
//! Skiff's own extension (namespace [`ns::SKIFF_CHECKSUM`], advertised in disco#info):
//! - in the offer's `<file>`: `<checksum-follows xmlns='urn:x-skiff:si-checksum:0'
//!   algo='sha-256'/>`: the sender will send the checksum after the data, so the
//!   receiver holds the file under its `.part` name until it arrives;
//! - after the data: an IQ-set `<checksum xmlns='urn:x-skiff:si-checksum:0' sid='SID'>
//!   <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>…</hash></checksum>`, answered
//!   with an empty result (or `not-acceptable` when the file does not match), as
//!   Jingle File Transfer's `checksum` session-info does (XEP-0234 §7.4).
//!
//! Digests are lowercase hex in Skiff's types and base64 on the wire.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::error::{expect, req_attr, ParseError};
use crate::ns;
use crate::xml::Element;

/// The algorithm name of SHA-256 (XEP-0300 §4, from the IANA registry).
pub const SHA_256: &str = "sha-256";

/// One `<hash/>`: its algorithm as named, and the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash {
    pub algo: String,
    pub digest: Vec<u8>,
}

impl Hash {
    /// A SHA-256 from its lowercase hex form; `None` when `hex` is not 32 bytes of hex.
    pub fn sha256_from_hex(hex: &str) -> Option<Hash> {
        let digest = hex::decode(hex.trim()).ok().filter(|d| d.len() == 32)?;
        Some(Hash { algo: SHA_256.into(), digest })
    }

    /// The digest as lowercase hex, if this is a well-formed SHA-256.
    pub fn sha256_hex(&self) -> Option<String> {
        (self.algo.eq_ignore_ascii_case(SHA_256) && self.digest.len() == 32).then(|| hex::encode(&self.digest))
    }
}

impl TryFrom<&Element> for Hash {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Hash, ParseError> {
        expect(el, "hash", ns::HASHES)?;
        let algo = req_attr(el, "hash", "algo")?.to_owned();
        let text: String = el.text().chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let digest = STANDARD
            .decode(text.as_bytes())
            .map_err(|e| ParseError::Invalid { element: "hash", reason: format!("not base64: {e}") })?;
        Ok(Hash { algo, digest })
    }
}

impl From<&Hash> for Element {
    fn from(h: &Hash) -> Element {
        Element::new("hash", ns::HASHES).with_attr("algo", h.algo.as_str()).with_text(STANDARD.encode(&h.digest))
    }
}

/// The SHA-256 among the `<hash/>` children of `el` (others are ignored, as are
/// malformed ones: an unusable hash is no hash).
pub fn sha256_child(el: &Element) -> Option<String> {
    el.children_named("hash", ns::HASHES).filter_map(|h| Hash::try_from(h).ok()).find_map(|h| h.sha256_hex())
}

/// `<checksum-follows/>` in an offer's `<file>`.
pub fn checksum_follows() -> Element {
    Element::new("checksum-follows", ns::SKIFF_CHECKSUM).with_attr("algo", SHA_256)
}

/// Whether an offer's `<file>` announces a SHA-256 checksum after the data.
pub fn has_checksum_follows(file: &Element) -> bool {
    file.child("checksum-follows", ns::SKIFF_CHECKSUM)
        .is_some_and(|c| c.attr("algo").is_none_or(|a| a.eq_ignore_ascii_case(SHA_256)))
}

/// The checksum sent after the data of stream `sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub sid: String,
    /// Lowercase hex.
    pub sha256: String,
}

impl TryFrom<&Element> for Checksum {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Checksum, ParseError> {
        expect(el, "checksum", ns::SKIFF_CHECKSUM)?;
        let sid = req_attr(el, "checksum", "sid")?.to_owned();
        let sha256 = sha256_child(el)
            .ok_or_else(|| ParseError::Invalid { element: "checksum", reason: "no SHA-256 hash in it".into() })?;
        Ok(Checksum { sid, sha256 })
    }
}

impl From<&Checksum> for Element {
    fn from(c: &Checksum) -> Element {
        let hash = Hash::sha256_from_hex(&c.sha256).map(|h| Element::from(&h));
        Element::new("checksum", ns::SKIFF_CHECKSUM).with_attr("sid", c.sid.as_str()).with_children(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_element(s: &str) -> Result<Element, crate::stream::XmlError> {
        s.parse()
    }

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn xep_0300_example() {
        // XEP-0300 Example 1 (sha-256 of the empty string... the XEP's own value).
        let el = parse_element(
            "<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash>",
        )
        .unwrap();
        let h = Hash::try_from(&el).unwrap();
        assert_eq!(h.sha256_hex().as_deref(), Some(EMPTY_SHA256));
        assert_eq!(Element::from(&h), el);
        assert_eq!(Hash::sha256_from_hex(EMPTY_SHA256), Some(h));
    }

    #[test]
    fn bad_hashes_are_no_hashes() {
        for bad in [
            "<file xmlns='x'><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>not base64!</hash></file>",
            "<file xmlns='x'><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>AAAA</hash></file>",
            "<file xmlns='x'><hash xmlns='urn:xmpp:hashes:2'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file>",
            "<file xmlns='x'><hash xmlns='urn:xmpp:hashes:1' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file>",
        ] {
            assert_eq!(sha256_child(&parse_element(bad).unwrap()), None, "{bad}");
        }
        let two = "<file xmlns='x'><hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>2jmj7l5rSw0yVb/vlWAYkK/YBwk=</hash>\
                   <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file>";
        assert_eq!(sha256_child(&parse_element(two).unwrap()).as_deref(), Some(EMPTY_SHA256));
        assert_eq!(Hash::sha256_from_hex("abcd"), None);
    }

    #[test]
    fn checksum_round_trip() {
        let c = Checksum { sid: "s1".into(), sha256: EMPTY_SHA256.into() };
        let el = Element::from(&c);
        assert_eq!(
            el.to_string(),
            "<checksum xmlns='urn:x-skiff:si-checksum:0' sid='s1'><hash xmlns='urn:xmpp:hashes:2' \
             algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></checksum>"
        );
        assert_eq!(Checksum::try_from(&el), Ok(c));
        let no_hash = parse_element("<checksum xmlns='urn:x-skiff:si-checksum:0' sid='s1'/>").unwrap();
        assert!(Checksum::try_from(&no_hash).is_err());
        let file = parse_element(
            "<file xmlns='x'><checksum-follows xmlns='urn:x-skiff:si-checksum:0' algo='sha-256'/></file>",
        )
        .unwrap();
        assert!(has_checksum_follows(&file));
        let md5 =
            parse_element("<file xmlns='x'><checksum-follows xmlns='urn:x-skiff:si-checksum:0' algo='md5'/></file>")
                .unwrap();
        assert!(!has_checksum_follows(&md5));
    }
}
