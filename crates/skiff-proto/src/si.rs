//! XEP-0095: Stream Initiation, with the XEP-0096 SI File Transfer profile.
//!
//! The offer is an IQ-set `<si id mime-type profile>` holding a `<file/>` and a
//! feature-negotiation form listing the stream methods; the accept is an IQ-result
//! `<si>` whose submit form names exactly one method, optionally with a
//! `<file><range offset length/></file>` asking for part of the file (resume).
//! File names are exposed raw: the engine sanitises them.

use crate::dataforms::{DataForm, Field, FormType};
use crate::error::{expect, opt_parse, req_attr, req_parse, ParseError};
use crate::ns;
use crate::xml::Element;

/// The `reason` of the [`ParseError::Invalid`] returned for an unknown profile: the
/// caller answers `bad-request` with [`bad_profile()`] instead of a plain error.
pub const BAD_PROFILE: &str = "bad-profile";
/// The `var` of the feature-negotiation field.
pub const STREAM_METHOD: &str = "stream-method";
/// The mime-type written when the offer has none.
pub const DEFAULT_MIME_TYPE: &str = "application/octet-stream";

/// True when `err` is the unknown-profile error (answer with [`bad_profile()`]).
pub fn is_bad_profile(err: &ParseError) -> bool {
    matches!(err, ParseError::Invalid { reason, .. } if reason == BAD_PROFILE)
}

/// `<no-valid-streams xmlns='http://jabber.org/protocol/si'/>`, the application
/// condition of the `bad-request` error answering an offer with no usable method.
pub fn no_valid_streams() -> Element {
    Element::new("no-valid-streams", ns::SI)
}

/// `<bad-profile xmlns='http://jabber.org/protocol/si'/>`, the application condition
/// of the `bad-request` error answering an offer with an unknown profile.
pub fn bad_profile() -> Element {
    Element::new("bad-profile", ns::SI)
}

fn check_profile(si: &Element, required: bool) -> Result<(), ParseError> {
    match si.attr("profile") {
        Some(ns::SI_FILE_TRANSFER) => Ok(()),
        Some(_) => Err(ParseError::invalid("si", BAD_PROFILE)),
        None if required => Err(ParseError::MissingAttr { element: "si", attr: "profile" }),
        None => Ok(()),
    }
}

/// The data form inside `<feature xmlns='http://jabber.org/protocol/feature-neg'/>`.
fn feature_form(si: &Element) -> Result<DataForm, ParseError> {
    let feature =
        si.child("feature", ns::FEATURE_NEG).ok_or(ParseError::MissingChild { element: "si", child: "feature" })?;
    let x = feature.child("x", ns::DATA_FORMS).ok_or(ParseError::MissingChild { element: "feature", child: "x" })?;
    DataForm::try_from(x)
}

fn feature(form: DataForm) -> Element {
    Element::new("feature", ns::FEATURE_NEG).with_child(form.into())
}

/// The `<file/>` of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The name as the sender wrote it: not sanitised.
    pub name: String,
    pub size: u64,
    /// XEP-0082 date-time, as sent.
    pub date: Option<String>,
    /// MD5 of the contents, hex, as sent.
    pub hash: Option<String>,
    pub desc: Option<String>,
    /// An empty `<range/>` was present: the sender can send part of the file.
    pub range: bool,
    /// SHA-256 of the contents, lowercase hex: an XEP-0300 `<hash algo='sha-256'/>`
    /// child (a malformed one counts as none).
    pub sha256: Option<String>,
    /// The sender sends the SHA-256 after the data ([`crate::hashes`]): the receiver
    /// keeps the file unnamed until it arrives.
    pub checksum_follows: bool,
}

impl FileInfo {
    pub fn new(name: impl Into<String>, size: u64) -> FileInfo {
        FileInfo {
            name: name.into(),
            size,
            date: None,
            hash: None,
            desc: None,
            range: false,
            sha256: None,
            checksum_follows: false,
        }
    }
}

impl TryFrom<&Element> for FileInfo {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "file", ns::SI_FILE_TRANSFER)?;
        Ok(FileInfo {
            name: req_attr(el, "file", "name")?.to_owned(),
            size: req_parse(el, "file", "size")?,
            date: el.attr("date").map(str::to_owned),
            hash: el.attr("hash").map(str::to_owned),
            desc: el.child_text("desc", ns::SI_FILE_TRANSFER),
            range: el.child("range", ns::SI_FILE_TRANSFER).is_some(),
            sha256: crate::hashes::sha256_child(el),
            checksum_follows: crate::hashes::has_checksum_follows(el),
        })
    }
}

impl From<&FileInfo> for Element {
    fn from(f: &FileInfo) -> Element {
        let desc = f.desc.as_ref().map(|d| Element::new("desc", ns::SI_FILE_TRANSFER).with_text(d.as_str()));
        let range = f.range.then(|| Element::new("range", ns::SI_FILE_TRANSFER));
        Element::new("file", ns::SI_FILE_TRANSFER)
            .with_attr("name", f.name.as_str())
            .with_attr("size", f.size.to_string())
            .with_opt_attr("date", f.date.as_deref())
            .with_opt_attr("hash", f.hash.as_deref())
            .with_children(desc)
            .with_children(range)
            .with_children(
                f.sha256.as_deref().and_then(crate::hashes::Hash::sha256_from_hex).map(|h| Element::from(&h)),
            )
            .with_children(f.checksum_follows.then(crate::hashes::checksum_follows))
    }
}

/// A file-transfer offer (the IQ-set payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOffer {
    /// The SI `id`: it becomes the bytestream `sid`.
    pub sid: String,
    /// Written as `application/octet-stream` when `None`.
    pub mime_type: Option<String>,
    pub file: FileInfo,
    /// The stream methods offered, in the sender's order.
    pub methods: Vec<String>,
    /// Skiff's marker: the stream carries files of a batch announced before.
    pub batch: Option<crate::batch::InBatch>,
}

impl FileOffer {
    /// The first of `ours` (our preference order) that the offer lists.
    pub fn pick_method<'a>(&self, ours: &[&'a str]) -> Option<&'a str> {
        ours.iter().copied().find(|m| self.methods.iter().any(|o| o == m))
    }
}

impl TryFrom<&Element> for FileOffer {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "si", ns::SI)?;
        check_profile(el, true)?;
        let sid = req_attr(el, "si", "id")?.to_owned();
        let file =
            el.child("file", ns::SI_FILE_TRANSFER).ok_or(ParseError::MissingChild { element: "si", child: "file" })?;
        let file = FileInfo::try_from(file)?;
        let methods = feature_form(el)?.field(STREAM_METHOD).map(|f| f.options.clone()).unwrap_or_default();
        if methods.is_empty() {
            return Err(ParseError::invalid("si", "no stream methods"));
        }
        // The default type and none at all mean the same (so an offer reads back as
        // it was written).
        let mime_type = el.attr("mime-type").filter(|m| *m != DEFAULT_MIME_TYPE).map(str::to_owned);
        // A malformed marker refuses the offer: taken alone, it would ask the user
        // about a file that belongs to a batch.
        let batch = el.child("in-batch", crate::batch::NS).map(crate::batch::InBatch::try_from).transpose()?;
        Ok(FileOffer { sid, mime_type, file, methods, batch })
    }
}

impl From<&FileOffer> for Element {
    fn from(o: &FileOffer) -> Element {
        let field = Field { kind: Some("list-single".into()), options: o.methods.clone(), ..Field::new(STREAM_METHOD) };
        let form = DataForm { fields: vec![field], ..DataForm::new(FormType::Form) };
        Element::new("si", ns::SI)
            .with_attr("id", o.sid.as_str())
            .with_attr("mime-type", o.mime_type.as_deref().unwrap_or(DEFAULT_MIME_TYPE))
            .with_attr("profile", ns::SI_FILE_TRANSFER)
            .with_child((&o.file).into())
            .with_child(feature(form))
            .with_children(o.batch.as_ref().map(Element::from))
    }
}

impl From<FileOffer> for Element {
    fn from(o: FileOffer) -> Element {
        Element::from(&o)
    }
}

/// `<range offset length/>` in an accept: which part of the file to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    /// Defaults to 0.
    pub offset: u64,
    /// `None`: to the end of the file.
    pub length: Option<u64>,
}

impl TryFrom<&Element> for Range {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "range", ns::SI_FILE_TRANSFER)?;
        Ok(Range { offset: opt_parse(el, "range", "offset")?.unwrap_or(0), length: opt_parse(el, "range", "length")? })
    }
}

impl From<Range> for Element {
    fn from(r: Range) -> Element {
        Element::new("range", ns::SI_FILE_TRANSFER)
            .with_attr("offset", r.offset.to_string())
            .with_opt_attr("length", r.length.map(|l| l.to_string()))
    }
}

/// The accept (the IQ-result payload): the chosen method and an optional range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiAccept {
    pub method: String,
    /// `None`: send the whole file from 0.
    pub range: Option<Range>,
}

impl TryFrom<&Element> for SiAccept {
    type Error = ParseError;

    /// Tolerant of what peers differ on: `id` and `profile` may be present or not, the
    /// form type is not checked, `<file/>` may hold an empty `<range/>`.
    fn try_from(el: &Element) -> Result<Self, ParseError> {
        expect(el, "si", ns::SI)?;
        check_profile(el, false)?;
        let form = feature_form(el)?;
        let method = match form.field(STREAM_METHOD).map(|f| f.values.as_slice()) {
            Some([one]) => one.trim().to_owned(),
            Some([]) | None => return Err(ParseError::invalid("si", "the accept chooses no stream method")),
            Some(_) => return Err(ParseError::invalid("si", "the accept chooses several stream methods")),
        };
        let range = match el.child("file", ns::SI_FILE_TRANSFER).and_then(|f| f.child("range", ns::SI_FILE_TRANSFER)) {
            Some(r) => Some(Range::try_from(r)?),
            None => None,
        };
        Ok(SiAccept { method, range })
    }
}

impl From<&SiAccept> for Element {
    fn from(a: &SiAccept) -> Element {
        let field = Field { values: vec![a.method.clone()], ..Field::new(STREAM_METHOD) };
        let form = DataForm { fields: vec![field], ..DataForm::new(FormType::Submit) };
        let file = a.range.map(|r| Element::new("file", ns::SI_FILE_TRANSFER).with_child(r.into()));
        Element::new("si", ns::SI).with_children(file).with_child(feature(form))
    }
}

impl From<SiAccept> for Element {
    fn from(a: SiAccept) -> Element {
        Element::from(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    const SEED_OFFER: &str = r#"<si xmlns="http://jabber.org/protocol/si"
            id="MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr"
            profile="http://jabber.org/protocol/si/profile/file-transfer">
            <file xmlns="http://jabber.org/protocol/si/profile/file-transfer"
                date="2009-07-14T04:52:25.650Z"
                hash="076e3caed758a1c18c91a0e9cae3368f"
                name="Chrysanthemum.jpg"
                size="879394"/>
            <feature xmlns="http://jabber.org/protocol/feature-neg">
                <x xmlns="jabber:x:data" type="form">
                    <field type="list-single" var="stream-method">
                        <option><value>http://jabber.org/protocol/ibb</value></option>
                        <option><value>http://jabber.org/protocol/bytestreams</value></option>
                    </field>
                </x>
            </feature>
        </si>"#;

    const SEED_ACCEPT: &str = r#"<si xmlns="http://jabber.org/protocol/si"
            profile="http://jabber.org/protocol/si/profile/file-transfer">
            <feature xmlns="http://jabber.org/protocol/feature-neg">
                <x xmlns="jabber:x:data" type="submit">
                    <field type="list-single" var="stream-method">
                        <value>http://jabber.org/protocol/bytestreams</value>
                    </field>
                </x>
            </feature>
        </si>"#;

    /// An offer in the exact shape we write.
    const OFFER: &str = "<si xmlns='http://jabber.org/protocol/si' id='a0' mime-type='text/plain' \
        profile='http://jabber.org/protocol/si/profile/file-transfer'>\
        <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='test.txt' size='1022' \
        date='1969-07-21T02:56:15Z' hash='552da749930852c69ae5d2141d3766b1'>\
        <desc>This is a test. If this were a real file...</desc><range/></file>\
        <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
        <field var='stream-method' type='list-single'>\
        <option><value>http://jabber.org/protocol/bytestreams</value></option>\
        <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si>";

    fn offer_with_file(file_attrs: &str) -> Element {
        el(&format!(
            "<si xmlns='http://jabber.org/protocol/si' id='s' profile='http://jabber.org/protocol/si/profile/file-transfer'>\
             <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' {file_attrs}/>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
             <field var='stream-method' type='list-single'><option><value>m</value></option></field></x></feature></si>"
        ))
    }

    #[test]
    fn seed_offer_parses() {
        let o = FileOffer::try_from(&el(SEED_OFFER)).unwrap();
        assert_eq!(o.sid, "MsVtTkTuwqKQhMBxUsuM66qLgEG9r4Cr");
        assert_eq!(o.mime_type, None);
        assert_eq!(o.file.name, "Chrysanthemum.jpg");
        assert_eq!(o.file.size, 879394);
        assert_eq!(o.file.date.as_deref(), Some("2009-07-14T04:52:25.650Z"));
        assert_eq!(o.file.hash.as_deref(), Some("076e3caed758a1c18c91a0e9cae3368f"));
        assert_eq!(o.file.desc, None);
        assert!(!o.file.range);
        assert_eq!(o.methods, [ns::IBB, ns::BYTESTREAMS]);
        assert_eq!(o.pick_method(&[ns::BYTESTREAMS, ns::IBB]), Some(ns::BYTESTREAMS));
        assert_eq!(o.pick_method(&[ns::IQ_OOB]), None);
        // Written back, it gains the default mime-type and is the same offer.
        let written = Element::from(&o);
        assert_eq!(written.attr("mime-type"), Some(DEFAULT_MIME_TYPE));
        assert_eq!(FileOffer::try_from(&written).unwrap(), o);
    }

    #[test]
    fn an_offer_in_a_batch_says_so_and_a_bad_marker_refuses_it() {
        let mut o = FileOffer::try_from(&el(OFFER)).unwrap();
        assert_eq!(o.batch, None);
        o.batch = Some(crate::batch::InBatch { id: "b1".into(), first: 4, count: 2 });
        let written = Element::from(&o);
        assert!(written.to_xml().contains("<in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='4' count='2'/>"));
        assert_eq!(FileOffer::try_from(&written).unwrap(), o);
        let bad = OFFER.replace("</si>", "<in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='x'/></si>");
        assert!(FileOffer::try_from(&el(&bad)).is_err());
    }

    #[test]
    fn seed_accept_parses() {
        let a = SiAccept::try_from(&el(SEED_ACCEPT)).unwrap();
        assert_eq!(a, SiAccept { method: ns::BYTESTREAMS.into(), range: None });
    }

    #[test]
    fn offer_round_trip() {
        let o = FileOffer::try_from(&el(OFFER)).unwrap();
        assert_eq!(o.file.desc.as_deref(), Some("This is a test. If this were a real file..."));
        assert!(o.file.range);
        assert_eq!(o.mime_type.as_deref(), Some("text/plain"));
        assert_eq!(Element::from(o), el(OFFER));
    }

    #[test]
    fn large_size_is_64_bit() {
        let o = FileOffer::try_from(&offer_with_file("name='big.iso' size='5000000000'")).unwrap();
        assert_eq!(o.file.size, 5_000_000_000);
    }

    #[test]
    fn accept_round_trip() {
        let xml = "<si xmlns='http://jabber.org/protocol/si'>\
            <file xmlns='http://jabber.org/protocol/si/profile/file-transfer'><range offset='252' length='179'/></file>\
            <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='submit'>\
            <field var='stream-method'><value>http://jabber.org/protocol/bytestreams</value></field></x></feature></si>";
        let a = SiAccept::try_from(&el(xml)).unwrap();
        assert_eq!(a.range, Some(Range { offset: 252, length: Some(179) }));
        assert_eq!(Element::from(&a), el(xml));

        let plain = SiAccept { method: ns::IBB.into(), range: None };
        assert_eq!(
            Element::from(&plain).to_xml(),
            "<si xmlns='http://jabber.org/protocol/si'><feature xmlns='http://jabber.org/protocol/feature-neg'>\
             <x xmlns='jabber:x:data' type='submit'><field var='stream-method'>\
             <value>http://jabber.org/protocol/ibb</value></field></x></feature></si>"
        );
    }

    #[test]
    fn accept_variants_are_tolerated() {
        // With id, without profile, with an empty range: offset 0, rest of the file.
        let xml = "<si xmlns='http://jabber.org/protocol/si' id='x'>\
            <file xmlns='http://jabber.org/protocol/si/profile/file-transfer'><range/></file>\
            <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='submit'>\
            <field var='stream-method'><value>http://jabber.org/protocol/ibb</value></field></x></feature></si>";
        let a = SiAccept::try_from(&el(xml)).unwrap();
        assert_eq!(a, SiAccept { method: ns::IBB.into(), range: Some(Range::default()) });
    }

    #[test]
    fn offer_errors() {
        assert_eq!(
            FileOffer::try_from(&offer_with_file("size='10'")),
            Err(ParseError::MissingAttr { element: "file", attr: "name" })
        );
        assert_eq!(
            FileOffer::try_from(&offer_with_file("name='a'")),
            Err(ParseError::MissingAttr { element: "file", attr: "size" })
        );
        assert_eq!(
            FileOffer::try_from(&offer_with_file("name='a' size='-1'")),
            Err(ParseError::invalid("file", "attribute 'size' has a bad value '-1'"))
        );
        assert_eq!(
            FileOffer::try_from(&offer_with_file("name='a' size='ten'")),
            Err(ParseError::invalid("file", "attribute 'size' has a bad value 'ten'"))
        );
        let bad_profile = OFFER.replace("si/profile/file-transfer'>", "si/profile/other'>");
        let err = FileOffer::try_from(&el(&bad_profile)).unwrap_err();
        assert_eq!(err, ParseError::invalid("si", BAD_PROFILE));
        assert!(is_bad_profile(&err));
        let no_methods = OFFER
            .replace("<option><value>http://jabber.org/protocol/bytestreams</value></option>", "")
            .replace("<option><value>http://jabber.org/protocol/ibb</value></option>", "");
        assert_eq!(FileOffer::try_from(&el(&no_methods)), Err(ParseError::invalid("si", "no stream methods")));
        assert_eq!(
            FileOffer::try_from(&el("<si xmlns='http://jabber.org/protocol/si' id='s' profile='http://jabber.org/protocol/si/profile/file-transfer'/>")),
            Err(ParseError::MissingChild { element: "si", child: "file" })
        );
        assert!(FileOffer::try_from(&el("<query xmlns='http://jabber.org/protocol/bytestreams'/>"))
            .unwrap_err()
            .is_not_mine());
    }

    #[test]
    fn accept_errors() {
        let accept = |values: &str| {
            el(&format!(
                "<si xmlns='http://jabber.org/protocol/si'><feature xmlns='http://jabber.org/protocol/feature-neg'>\
                 <x xmlns='jabber:x:data' type='submit'><field var='stream-method'>{values}</field></x></feature></si>"
            ))
        };
        assert_eq!(
            SiAccept::try_from(&accept("")),
            Err(ParseError::invalid("si", "the accept chooses no stream method"))
        );
        assert_eq!(
            SiAccept::try_from(&accept("<value>a</value><value>b</value>")),
            Err(ParseError::invalid("si", "the accept chooses several stream methods"))
        );
        assert_eq!(
            SiAccept::try_from(&el("<si xmlns='http://jabber.org/protocol/si'/>")),
            Err(ParseError::MissingChild { element: "si", child: "feature" })
        );
        let bad_offset = "<si xmlns='http://jabber.org/protocol/si'>\
            <file xmlns='http://jabber.org/protocol/si/profile/file-transfer'><range offset='x'/></file>\
            <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='submit'>\
            <field var='stream-method'><value>m</value></field></x></feature></si>";
        assert_eq!(
            SiAccept::try_from(&el(bad_offset)),
            Err(ParseError::invalid("range", "attribute 'offset' has a bad value 'x'"))
        );
    }

    #[test]
    fn error_conditions() {
        assert_eq!(no_valid_streams().to_xml(), "<no-valid-streams xmlns='http://jabber.org/protocol/si'/>");
        assert_eq!(bad_profile().to_xml(), "<bad-profile xmlns='http://jabber.org/protocol/si'/>");
    }
}
