//! XEP-0115: Entity Capabilities.
//!
//! A presence may carry `<c xmlns='http://jabber.org/protocol/caps' hash node ver/>`:
//! `ver` is the base64 hash of the sender's disco#info (identities, features and
//! extension forms in one canonical string, §5.1). Everyone with the same client and
//! plugins advertises the same `ver`, so one disco#info query answers for all of them,
//! once its answer is checked against the `ver` (§5.4). [`CapsCache`] does that
//! bookkeeping without IO: presences and disco#info answers in, the queries to send
//! out, and then "does this full JID support feature X?" without asking again.
//!
//! What is checked before a `ver` is trusted ([`check`]):
//! - the hash is SHA-1, the only one computed here (others are never trusted by
//!   `ver`; their answers count for the one JID that gave them, as §5.4 step 2 says);
//! - §5.4 step 3: no identity twice, no feature twice, no two forms with one
//!   `FORM_TYPE`; and, from the element only ([`check_forms`]: a parsed
//!   [`DataForm`](crate::dataforms::DataForm) keeps neither the type nor the extra
//!   values of `FORM_TYPE`), a `FORM_TYPE` field that is not hidden, two of them, or
//!   `FORM_TYPE` values that differ. The XEP says to ignore a form whose `FORM_TYPE`
//!   is not hidden and go on; such an answer is refused here instead (not trusted for
//!   anyone else; it still counts for its own JID). A form without `FORM_TYPE` is left
//!   out of the string, as the XEP says;
//! - beyond the XEP, the known ways to give a popular `ver` with other features
//!   (§9.3, "Caps Poisoning"): a `<` inside a name, a feature or a form value (it
//!   reads as a separator); an identity without category or type, or with `/` in its
//!   category, type or language (a feature could pose as one); and a first form that,
//!   after the features, reads as more features in order ([`Rejection::Ambiguous`]:
//!   otherwise a stranger could answer first for a popular `ver` with its last
//!   features moved into a form, and everyone on that client would seem to lack
//!   them). Honest forms do not read so: their field names sort before their
//!   `FORM_TYPE` URI. What is left: an answer whose forms do read as features (refused
//!   here) could be given as features by someone else, which adds features to that
//!   `ver` but hides none.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::disco::DiscoInfoResult;
use crate::error::{expect, req_attr, ParseError};
use crate::ns;
use crate::xml::Element;

/// The hash name of SHA-1 (mandatory, §9.1; the name in the IANA registry).
pub const SHA_1: &str = "sha-1";
/// The longest `node` and `ver` accepted, in bytes.
pub const MAX_ATTR: usize = 1024;
/// The longest `hash` name accepted, in bytes.
pub const MAX_HASH_NAME: usize = 64;
/// Verified `ver`s a [`CapsCache`] remembers (the least recently seen goes first).
pub const MAX_VERS: usize = 256;
/// Full JIDs a [`CapsCache`] remembers the caps of.
pub const MAX_JIDS: usize = 4096;
/// JIDs whose own (not cached by `ver`) answer a [`CapsCache`] keeps.
pub const MAX_UNVERIFIED: usize = 256;
/// Queries a [`CapsCache`] keeps track of at once.
pub const MAX_IN_FLIGHT: usize = 256;
/// Features kept of one answer (more and the answer is not kept at all).
pub const MAX_FEATURES: usize = 512;
/// Bytes of feature names kept of one answer (more and the answer is not kept).
pub const MAX_FEATURE_BYTES: usize = 16 * 1024;

const FORM_TYPE: &str = "FORM_TYPE";

/// `<c xmlns='http://jabber.org/protocol/caps' hash node ver/>`.
///
/// The legacy form (before version 1.4 of the XEP: no `hash`, `ver` a version number,
/// maybe `ext`) does not parse ([`ParseError::MissingAttr`] for `hash`): it says
/// nothing that can be checked. `ext` is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    pub hash: String,
    /// The software's URI, e.g. `http://code.google.com/p/exodus`.
    pub node: String,
    pub ver: String,
}

impl Caps {
    /// The disco#info node that asks for this `ver`: `node#ver` (§6.2).
    pub fn disco_node(&self) -> String {
        format!("{}#{}", self.node, self.ver)
    }

    /// Whether `hash` names SHA-1, the one hash computed here.
    pub fn is_sha1(&self) -> bool {
        self.hash.eq_ignore_ascii_case(SHA_1)
    }

    /// The first `<c/>` among a presence's payloads that parses.
    pub fn find(payloads: &[Element]) -> Option<Caps> {
        payloads.iter().find_map(|p| Caps::try_from(p).ok())
    }
}

fn bounded_attr<'a>(el: &'a Element, attr: &'static str, max: usize) -> Result<&'a str, ParseError> {
    let v = req_attr(el, "c", attr)?;
    if v.is_empty() {
        return Err(ParseError::invalid("c", format!("empty '{attr}'")));
    }
    if v.len() > max {
        return Err(ParseError::invalid("c", format!("'{attr}' is longer than {max} bytes")));
    }
    Ok(v)
}

impl TryFrom<&Element> for Caps {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Caps, ParseError> {
        expect(el, "c", ns::CAPS)?;
        Ok(Caps {
            hash: bounded_attr(el, "hash", MAX_HASH_NAME)?.to_owned(),
            node: bounded_attr(el, "node", MAX_ATTR)?.to_owned(),
            ver: bounded_attr(el, "ver", MAX_ATTR)?.to_owned(),
        })
    }
}

impl From<&Caps> for Element {
    fn from(c: &Caps) -> Element {
        Element::new("c", ns::CAPS)
            .with_attr("hash", c.hash.as_str())
            .with_attr("node", c.node.as_str())
            .with_attr("ver", c.ver.as_str())
    }
}

impl From<Caps> for Element {
    fn from(c: Caps) -> Element {
        Element::from(&c)
    }
}

// ------------------------------------------------------------------ the verification string

/// The factors of each form that counts (one with a `FORM_TYPE`), in the order of
/// §5.1: forms sorted by `FORM_TYPE`; in each, the `FORM_TYPE`, then each field (but
/// `FORM_TYPE`) sorted by var, with its values sorted. Ties (a `FORM_TYPE` or a var
/// twice, which [`check`] refuses) are broken by what follows, so that the order of
/// the answer never matters.
fn sorted_forms(info: &DiscoInfoResult) -> Vec<Vec<&str>> {
    let mut forms: Vec<Vec<&str>> = info
        .extensions
        .iter()
        .filter_map(|form| {
            let mut fields: Vec<(&str, Vec<&str>)> = form
                .fields
                .iter()
                .filter(|f| f.var != FORM_TYPE)
                .map(|f| {
                    let mut values: Vec<&str> = f.values.iter().map(String::as_str).collect();
                    values.sort_unstable();
                    (f.var.as_str(), values)
                })
                .collect();
            fields.sort_unstable();
            let mut factors = vec![form.form_type.as_deref()?];
            for (var, values) in fields {
                factors.push(var);
                factors.extend(values);
            }
            Some(factors)
        })
        .collect();
    forms.sort_unstable();
    forms
}

fn sorted_features(info: &DiscoInfoResult) -> Vec<&str> {
    let mut features: Vec<&str> = info.features.iter().map(String::as_str).collect();
    features.sort_unstable();
    features
}

/// The verification string S of §5.1 (before hashing): identities sorted by category,
/// type, language and name as `category/type/lang/name<`, then the features sorted,
/// each followed by `<`, then the forms with a `FORM_TYPE`, sorted by it, each as its
/// [`FORM_TYPE`, var, values…] factors followed by `<`. Sorting is by bytes ("i;octet").
pub fn ver_string(info: &DiscoInfoResult) -> String {
    let mut identities: Vec<_> = info
        .identities
        .iter()
        .map(|i| {
            (i.category.as_str(), i.kind.as_str(), i.lang.as_deref().unwrap_or(""), i.name.as_deref().unwrap_or(""))
        })
        .collect();
    identities.sort_unstable();
    let mut s = String::new();
    for (category, kind, lang, name) in identities {
        s.push_str(&[category, kind, lang, name].join("/"));
        s.push('<');
    }
    for factor in sorted_features(info).into_iter().chain(sorted_forms(info).into_iter().flatten()) {
        s.push_str(factor);
        s.push('<');
    }
    s
}

/// The SHA-1 `ver` of `info`: base64 (with padding) of the SHA-1 of [`ver_string`].
pub fn ver(info: &DiscoInfoResult) -> String {
    STANDARD.encode(Sha1::digest(ver_string(info).as_bytes()))
}

/// Our own `<c/>` for a presence: SHA-1 of our disco#info under our software's `node`.
/// `info` should pass [`check`] (no duplicates, no `<`), or others will not trust it.
pub fn our_caps(node: &str, info: &DiscoInfoResult) -> Caps {
    Caps { hash: SHA_1.to_owned(), node: node.to_owned(), ver: ver(info) }
}

// ------------------------------------------------------------------ checking (§5.4)

/// Why an answer is not trusted for a `ver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The `hash` is not SHA-1 (§5.4 step 2: ask, keep for that JID, never cache).
    UnsupportedHash,
    /// Two identities with the same category, type, language and name (§5.4 3.3).
    DuplicateIdentity,
    /// A feature twice (§5.4 3.4).
    DuplicateFeature,
    /// Two forms with the same `FORM_TYPE` (§5.4 3.5).
    DuplicateForm,
    /// A `FORM_TYPE` that is not hidden, given twice, or with values that differ.
    BadFormType,
    /// An identity without category or type, or with `/` in category, type or lang.
    BadIdentity,
    /// A `<` inside a factor, where it reads as a separator.
    Separator,
    /// The first form could be read as more features (see the module's doc).
    Ambiguous,
    /// The answer is well-formed but does not hash to the `ver`.
    Mismatch,
}

fn duplicates<T: Ord>(mut items: Vec<T>) -> bool {
    items.sort_unstable();
    items.windows(2).any(|w| w[0] == w[1])
}

/// The rules of §5.4 (and the ones added here) that `info` itself shows.
fn well_formed(info: &DiscoInfoResult) -> Result<(), Rejection> {
    let identity_keys = info.identities.iter().map(|i| (&i.category, &i.kind, &i.lang, &i.name)).collect();
    if duplicates(identity_keys) {
        return Err(Rejection::DuplicateIdentity);
    }
    if duplicates(info.features.iter().collect()) {
        return Err(Rejection::DuplicateFeature);
    }
    let forms = sorted_forms(info);
    if forms.windows(2).any(|w| w[0][0] == w[1][0]) {
        return Err(Rejection::DuplicateForm);
    }
    // A second FORM_TYPE field ends up among the fields.
    if info.extensions.iter().any(|form| form.form_type.is_some() && form.fields.iter().any(|f| f.var == FORM_TYPE)) {
        return Err(Rejection::BadFormType);
    }
    for i in &info.identities {
        let slash = [Some(&i.category), Some(&i.kind), i.lang.as_ref()].into_iter().flatten().any(|p| p.contains('/'));
        if i.category.is_empty() || i.kind.is_empty() || slash {
            return Err(Rejection::BadIdentity);
        }
    }
    let identity_parts =
        info.identities.iter().flat_map(|i| [Some(&i.category), Some(&i.kind), i.lang.as_ref(), i.name.as_ref()]);
    let features = info.features.iter().map(String::as_str);
    let form_parts = forms.iter().flatten().copied();
    if identity_parts.flatten().map(String::as_str).chain(features).chain(form_parts).any(|p| p.contains('<')) {
        return Err(Rejection::Separator);
    }
    if let Some(first) = forms.first() {
        let mut last = sorted_features(info).last().copied();
        let increasing = first.iter().all(|&f| {
            let after = last.is_none_or(|l| f > l);
            last = Some(f);
            after
        });
        if increasing {
            return Err(Rejection::Ambiguous);
        }
    }
    Ok(())
}

/// Whether `info`, the answer to a query for `caps`' node, may be trusted for
/// `caps.ver` (and so for everyone who advertises it): see the module's doc.
/// `info` comes parsed: the rules only the element shows are [`check_forms`]'s.
pub fn check(caps: &Caps, info: &DiscoInfoResult) -> Result<(), Rejection> {
    if !caps.is_sha1() {
        return Err(Rejection::UnsupportedHash);
    }
    well_formed(info)?;
    if ver(info) != caps.ver {
        return Err(Rejection::Mismatch);
    }
    Ok(())
}

/// [`check`] as a yes or no.
pub fn verify(caps: &Caps, info: &DiscoInfoResult) -> bool {
    check(caps, info).is_ok()
}

/// The `FORM_TYPE` rules of §5.4 that parsing into a
/// [`DataForm`](crate::dataforms::DataForm) hides, on the disco#info `<query/>`
/// element: in each form, at most one `FORM_TYPE` field, of type `hidden`, whose
/// values (if several) are all the same.
pub fn check_forms(query: &Element) -> Result<(), Rejection> {
    for form in query.children_named("x", ns::DATA_FORMS) {
        let mut form_types = form.children_named("field", ns::DATA_FORMS).filter(|f| f.attr("var") == Some(FORM_TYPE));
        let Some(field) = form_types.next() else { continue };
        let values: Vec<String> = field.children_named("value", ns::DATA_FORMS).map(Element::text).collect();
        let hidden = field.attr("type") == Some("hidden");
        if form_types.next().is_some() || !hidden || values.windows(2).any(|w| w[0] != w[1]) {
            return Err(Rejection::BadFormType);
        }
    }
    Ok(())
}

/// [`check_forms`] and [`check`] on a disco#info `<query/>` element (one that does not
/// parse: false).
pub fn verify_query(caps: &Caps, query: &Element) -> bool {
    DiscoInfoResult::try_from(query).is_ok_and(|info| check_forms(query).is_ok() && verify(caps, &info))
}

mod cache;

pub use self::cache::{CapsCache, Query};

#[cfg(test)]
mod tests;
