//! Fuzz targets: one function per parser or state machine, fed arbitrary bytes, that
//! must never panic and must keep the invariants checked here. The cargo-fuzz targets
//! in `fuzz/` call these (`bench/fuzz.sh`); so does the deterministic property test of
//! the normal test suite (`tests/fuzz_properties.rs`), over the seed corpora, the saved
//! crash inputs and mutations of them. `docs/fuzzing.md` has the figures.
//!
//! The invariants:
//! - nothing panics; a parser error is an `Err`;
//! - the stream reader gives the same events however the bytes are chunked, and every
//!   element it gives writes XML that reads back to the same element;
//! - a payload value parsed from an element writes an element that parses to the same
//!   value (and our own XML always parses);
//! - a JID displays as a string that parses to the same JID;
//! - the SOCKS5 handshakes come to the same end however the bytes are chunked;
//! - the transfer machines do nothing once finished (the receiver still refuses
//!   requests), finish once, and never count more than the announced size;
//! - the sign-in negotiation fails with an `Err`, not a panic.

use std::collections::HashSet;
use std::fmt::Debug;
use std::time::Duration;

use crate::bytestreams::{
    Activate, BytestreamsPayload, ProxyInfo, ProxyQuery, StreamHost, StreamHostUsed, StreamHosts,
};
use crate::dataforms::{DataForm, Field};
use crate::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult, Identity, Item};
use crate::ibb::{Close, Data, IbbPayload, Open, SeqCheck, SeqCounter, SeqError};
use crate::jid::Jid;
use crate::negotiation::{Action, Negotiator, TlsMode};
use crate::ns;
use crate::oob::{IqOob, XOob};
use crate::roster::{Roster, RosterItem};
use crate::si::{FileInfo, FileOffer, Range, SiAccept};
use crate::socks5::{self, ClientHandshake, ClientStep, ServerHandshake, ServerStep};
use crate::stanza::{Condition, Iq, IqKind, Message, Presence, Stanza, StanzaError};
use crate::stream::StreamParser;
use crate::stream::{parse_element, stream_error as write_stream_error, write_stanza, StreamEvent, StreamHeader};
use crate::stream_error::StreamError;
use crate::transfer::{
    Receiver, ReceiverAction, ReceiverConfig, ReceiverInput, Sender, SenderAction, SenderConfig, SenderInput,
};
use crate::upload::{service_limit, Slot};
use crate::xml::Element;

mod handshakes;
mod jingle_session;
mod session;
mod transfer;

pub use self::handshakes::socks5;
use self::handshakes::*;
pub use self::jingle_session::jingle_session;
pub use self::session::{negotiation, sm};
pub use self::transfer::transfer;

/// A fuzz target: arbitrary bytes in, a panic on a broken invariant.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/`, `fuzz/seeds/` and
/// `fuzz/regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("stream", stream),
    ("batch", batch),
    ("jingle", jingle),
    ("jingle_session", jingle_session),
    ("si", si),
    ("bytestreams", bytestreams),
    ("ibb", ibb),
    ("oob", oob),
    ("disco", disco),
    ("caps", caps),
    ("dataforms", dataforms),
    ("upload", upload),
    ("roster", roster),
    ("stanza", stanza),
    ("stream_error", stream_error),
    ("jid", jid),
    ("socks5", socks5),
    ("transfer", transfer),
    ("negotiation", negotiation),
    ("hashes", hashes),
    ("sm", sm),
];

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s1' version='1.0'>";

/// The stanza size cap of the fuzzed readers (the engine's is larger; a smaller one
/// reaches the cap more often).
const MAX_STANZA: usize = 64 * 1024;

// ------------------------------------------------------------------ the stream reader

/// Events and the final error of `input` fed in the chunks `sizes` gives.
fn stream_events(input: &[u8], sizes: impl FnMut() -> usize) -> (Vec<StreamEvent>, Option<String>) {
    stream_events_capped(input, MAX_STANZA, sizes)
}

fn stream_events_capped(
    input: &[u8],
    cap: usize,
    mut sizes: impl FnMut() -> usize,
) -> (Vec<StreamEvent>, Option<String>) {
    let mut p = StreamParser::new(cap);
    let (mut events, mut rest) = (Vec::new(), input);
    loop {
        loop {
            match p.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e.to_string())),
            }
        }
        if rest.is_empty() {
            return (events, None);
        }
        let n = sizes().clamp(1, rest.len());
        p.feed(&rest[..n]);
        rest = &rest[n..];
    }
}

/// The stream reader: the same events however the bytes are chunked; every element it
/// gives (and `parse_element`'s) writes XML that parses to the same tree.
pub fn stream(data: &[u8]) {
    // As a whole stream after a header (most inputs are stanza bodies), and as is.
    let mut with_header = HEADER.to_vec();
    with_header.extend_from_slice(data);
    for input in [&with_header[..], data] {
        let whole = stream_events(input, || usize::MAX);
        let mut i = 0usize;
        let chunked = stream_events(input, || {
            i += 1;
            usize::from(data.get(i % data.len().max(1)).copied().unwrap_or(1) % 17) + 1
        });
        assert_eq!(whole, chunked, "chunking changed the events");
        for e in &whole.0 {
            match e {
                StreamEvent::Stanza(el) => {
                    reparse(el);
                    restream(el);
                }
                StreamEvent::Open(h) => {
                    let _ = (h.id(), h.from());
                }
                _ => {}
            }
        }
    }
    if let Ok(el) = parse_element(data) {
        reparse(&el);
    }
}

/// What we write of `el` parses back to `el`.
fn reparse(el: &Element) {
    let xml = el.to_xml();
    let again = parse_element(xml.as_bytes()).unwrap_or_else(|e| panic!("our own XML does not parse ({e}): {xml}"));
    assert_eq!(&again, el, "{xml}");
}

/// `el` written as a stanza on a `jabber:client` stream reads back as `el`.
fn restream(el: &Element) {
    let mut input = HEADER.to_vec();
    input.extend_from_slice(write_stanza(el).as_bytes());
    // Escaping can make what we write longer than what was read: no size cap here.
    let (events, error) = stream_events_capped(&input, input.len(), || usize::MAX);
    assert_eq!(error, None, "{}", write_stanza(el));
    match events.as_slice() {
        [StreamEvent::Open(_), StreamEvent::Stanza(again)] => assert_eq!(again, el, "{}", write_stanza(el)),
        // Over a structural limit (tolerated: what we write may declare namespaces the
        // input inherited).
        [StreamEvent::Open(_), StreamEvent::Dropped(_)] => {}
        other => panic!("{} read as {other:?}", write_stanza(el)),
    }
}

// ------------------------------------------------------------------ payloads

/// The element `data` parses to and all its descendants (in document order, at most
/// 512), after checking that the element writes XML that reads back the same.
fn elements(data: &[u8]) -> Vec<Element> {
    let Ok(root) = parse_element(data) else { return Vec::new() };
    reparse(&root);
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(el) = stack.pop() {
        if out.len() == 512 {
            break;
        }
        let at = stack.len();
        stack.extend(el.elements().cloned());
        stack[at..].reverse();
        out.push(el);
    }
    out
}

/// `T` parsed from `el` writes an element that parses to the same `T`.
fn round_trip<T>(el: &Element) -> Option<T>
where
    T: for<'a> TryFrom<&'a Element> + PartialEq + Debug,
    for<'a> Element: From<&'a T>,
{
    let v = T::try_from(el).ok()?;
    let back = Element::from(&v);
    reparse(&back);
    match T::try_from(&back) {
        Ok(again) => assert_eq!(again, v, "{}", back.to_xml()),
        Err(_) => panic!("what we write does not parse: {} (from {v:?})", back.to_xml()),
    }
    Some(v)
}

/// [`round_trip`] for types written by value.
fn round_trip_owned<T>(el: &Element) -> Option<T>
where
    T: for<'a> TryFrom<&'a Element> + PartialEq + Debug + Clone,
    Element: From<T>,
{
    let v = T::try_from(el).ok()?;
    let back = Element::from(v.clone());
    reparse(&back);
    match T::try_from(&back) {
        Ok(again) => assert_eq!(again, v, "{}", back.to_xml()),
        Err(_) => panic!("what we write does not parse: {} (from {v:?})", back.to_xml()),
    }
    Some(v)
}

/// XEP-0095/0096 offers and accepts.
pub fn si(data: &[u8]) {
    for el in elements(data) {
        round_trip::<FileInfo>(&el);
        round_trip_owned::<Range>(&el);
        if let Some(offer) = round_trip::<FileOffer>(&el) {
            let _ = offer.pick_method(&[ns::BYTESTREAMS, ns::IBB]);
        }
        round_trip::<SiAccept>(&el);
        if let Err(e) = FileOffer::try_from(&el) {
            let _ = crate::si::is_bad_profile(&e);
        }
    }
}

/// XEP-0065 payloads, alone and as told apart by IQ type.
pub fn bytestreams(data: &[u8]) {
    for el in elements(data) {
        round_trip::<StreamHost>(&el);
        round_trip::<StreamHosts>(&el);
        round_trip::<StreamHostUsed>(&el);
        round_trip::<Activate>(&el);
        round_trip::<ProxyQuery>(&el);
        round_trip::<ProxyInfo>(&el);
        for kind in ["get", "set", "result", "error"] {
            if let Ok(p) = BytestreamsPayload::parse(&el, kind) {
                let back = Element::from(&p);
                let again = BytestreamsPayload::parse(&back, kind)
                    .unwrap_or_else(|e| panic!("{e}: {} (from {p:?})", back.to_xml()));
                assert_eq!(again, p, "{}", back.to_xml());
            }
        }
    }
    // DST.ADDR from any strings.
    let s = String::from_utf8_lossy(data);
    let mut parts = s.splitn(3, '\u{0}');
    let (a, b, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    assert_eq!(crate::bytestreams::dst_addr(a, b, c).len(), 40);
}

/// XEP-0047 open/data/close, and the sequence numbers.
pub fn ibb(data: &[u8]) {
    for el in elements(data) {
        round_trip::<Open>(&el);
        if let Some(d) = round_trip::<Data>(&el) {
            for size in [1, 4096, u16::MAX] {
                let _ = d.check_len(size);
            }
        }
        round_trip::<Close>(&el);
        if let Some(p) = round_trip::<IbbPayload>(&el) {
            let _ = p.sid();
        }
    }
    // Sequence numbers: what a counter hands out is always accepted in turn; anything
    // else is refused, as reused only right after its block.
    let (mut counter, mut check, mut mirror) = (SeqCounter::new(), SeqCheck::new(), SeqCheck::new());
    for pair in data.chunks(2).take(256) {
        let n = u16::from_le_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
        let next = counter.next();
        assert_eq!(check.check(next), Ok(()));
        match mirror.check(n) {
            Ok(()) => assert_eq!(n, next, "accepted {n} where {next} was due"),
            Err(SeqError::Reused(s)) => assert_eq!(s.wrapping_add(1), mirror.expected()),
            Err(SeqError::OutOfOrder { expected, got }) => assert_ne!(expected, got),
        }
        mirror = check.clone();
    }
}

/// XEP-0300 hashes and Skiff's checksum after the data.
pub fn hashes(data: &[u8]) {
    for el in elements(data) {
        if let Some(h) = round_trip::<crate::hashes::Hash>(&el) {
            if let Some(hex) = h.sha256_hex() {
                assert_eq!(crate::hashes::Hash::sha256_from_hex(&hex).and_then(|h| h.sha256_hex()), Some(hex));
            }
        }
        if let Some(c) = round_trip::<crate::hashes::Checksum>(&el) {
            assert_eq!(c.sha256.len(), 64, "{c:?}");
        }
        if let Some(sha) = crate::hashes::sha256_child(&el) {
            assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()), "{sha}");
        }
        let _ = crate::hashes::has_checksum_follows(&el);
    }
}

/// Skiff's batch manifest: parts and offer markers round-trip; whatever the
/// assembler makes of the parts found holds its promises (the announced count and
/// size, distinct paths that stay inside the batch).
/// Jingle (XEP-0166) and what rides in it (XEP-0234, XEP-0260, XEP-0261): every
/// payload round-trips; what is accepted keeps the caps (contents, candidates,
/// hashes) and unique names.
pub fn jingle(data: &[u8]) {
    use crate::jingle::{ft, ibb, s5b, Jingle, Reason, MAX_CONTENTS};
    for el in elements(data) {
        if let Some(j) = round_trip::<Jingle>(&el) {
            assert!(j.contents.len() <= MAX_CONTENTS);
            let names: HashSet<_> = j.contents.iter().map(|c| (c.creator, c.name.clone())).collect();
            assert_eq!(names.len(), j.contents.len(), "content names are unique");
            for c in &j.contents {
                if let Some(d) = c.description.as_ref().and_then(|d| ft::Description::try_from(d).ok()) {
                    assert!(d.file.hashes.len() <= ft::MAX_HASHES);
                }
                if let Some(t) = c.transport.as_ref().and_then(|t| s5b::Transport::try_from(t).ok()) {
                    assert!(t.candidates.len() <= s5b::MAX_CANDIDATES);
                    assert!(t.signal.is_none() || t.candidates.is_empty());
                }
            }
        }
        round_trip::<ft::Description>(&el);
        round_trip::<ft::Checksum>(&el);
        round_trip::<ft::Received>(&el);
        round_trip::<s5b::Transport>(&el);
        round_trip::<s5b::Candidate>(&el);
        round_trip::<ibb::Transport>(&el);
        round_trip::<Reason>(&el);
    }
}

pub fn batch(data: &[u8]) {
    use crate::batch::{InBatch, ManifestAssembler, ManifestPart, Received, RelPath, MAX_FILES};
    let mut assembler = ManifestAssembler::default();
    for el in elements(data) {
        round_trip::<InBatch>(&el);
        // A receipt names runs inside the batch or is refused; what it names, it names
        // again when written from its flags.
        if let Some(r) = round_trip::<Received>(&el) {
            if let Ok(flags) = r.flags(MAX_FILES) {
                assert_eq!(Received::from_flags(&r.id, &flags).flags(MAX_FILES).unwrap(), flags);
            }
        }
        let Ok(part) = ManifestPart::try_from(&el) else { continue };
        let back = ManifestPart::try_from(&Element::from(&part)).expect("what we write parses");
        assert_eq!(back, part);
        match assembler.add(part) {
            Ok(Some(m)) => {
                assert_eq!(m.entries.len() as u64, m.head.files);
                assert_eq!(m.entries.iter().map(|e| e.size).sum::<u64>(), m.head.size);
                let mut seen = HashSet::new();
                for e in &m.entries {
                    assert!(seen.insert(e.path.as_str().to_ascii_lowercase()), "{} twice", e.path);
                    assert_eq!(RelPath::new(e.path.as_str()).as_ref(), Ok(&e.path));
                    assert!(e.path.components().all(|c| !c.is_empty() && c != "." && c != ".."));
                }
                assembler = ManifestAssembler::default();
            }
            Ok(None) => {}
            Err(_) => assembler = ManifestAssembler::default(),
        }
    }
}

/// XEP-0066 `jabber:iq:oob` and `jabber:x:oob`.
pub fn oob(data: &[u8]) {
    for el in elements(data) {
        round_trip::<IqOob>(&el);
        round_trip::<XOob>(&el);
    }
}

/// XEP-0030 requests and results.
pub fn disco(data: &[u8]) {
    for el in elements(data) {
        round_trip_owned::<DiscoInfoQuery>(&el);
        round_trip_owned::<DiscoItemsQuery>(&el);
        round_trip::<Identity>(&el);
        round_trip::<Item>(&el);
        if let Some(info) = round_trip::<DiscoInfoResult>(&el) {
            let _ = service_limit(&info);
        }
        round_trip::<DiscoItemsResult>(&el);
    }
}

/// XEP-0115: `<c/>` round-trips; the verification string of any disco#info result does
/// not depend on the order of its parts, and our own caps for it are refused only for a
/// rule, never as a mismatch; a small cache fed the input's presences, answers and
/// errors in turn asks only about caps it was given, stays within its bounds, keeps
/// features sorted, and caches no `ver` but the SHA-1 of a well-formed answer it saw.
pub fn caps(data: &[u8]) {
    use crate::caps::{self, Caps, CapsCache, Rejection};
    let (mut cache, mut good) = (CapsCache::with_limits(4, 8), HashSet::new());
    let romeo: Jid = "romeo@montague.lit/orchard".parse().unwrap();
    // The ver of a well-formed answer (our own caps for it are refused for a rule only).
    let well_formed = |q: &Element| {
        let info = DiscoInfoResult::try_from(q).ok()?;
        let ours = caps::our_caps("n", &info);
        match caps::check(&ours, &info) {
            Ok(()) => caps::check_forms(q).is_ok().then_some(ours.ver),
            Err(r) => {
                assert_ne!(r, Rejection::Mismatch, "{}", q.to_xml());
                None
            }
        }
    };
    for (i, el) in elements(data).into_iter().enumerate() {
        let from = el.attr("from").and_then(|f| f.parse::<Jid>().ok()).unwrap_or_else(|| romeo.clone());
        let c = round_trip::<Caps>(&el);
        if let Ok(info) = DiscoInfoResult::try_from(&el) {
            let mut mixed = info.clone();
            mixed.identities.reverse();
            mixed.features.reverse();
            mixed.extensions.reverse();
            for form in &mut mixed.extensions {
                form.fields.reverse();
                form.fields.iter_mut().for_each(|f| f.values.reverse());
            }
            assert_eq!(caps::ver_string(&mixed), caps::ver_string(&info));
            good.extend(well_formed(&el));
        }
        let payloads: Vec<Element> = el.elements().cloned().collect();
        let query = el.child("query", ns::DISCO_INFO);
        let (asked, of) = match (el.name.as_str(), el.attr("type"), query) {
            ("presence", kind, _) => {
                let found = Caps::find(&payloads);
                (cache.on_presence(&from, found.as_ref(), kind != Some("unavailable")), found)
            }
            ("iq", Some("result"), Some(q)) => {
                good.extend(well_formed(q));
                cache.on_disco_element(&from, q);
                (None, None)
            }
            ("iq", Some("error"), q) => {
                cache.on_disco_error(&from, q.and_then(|q| q.attr("node")));
                (None, None)
            }
            // A bare <c/>: as a presence from Romeo.
            _ if i == 0 => (c.as_ref().and_then(|c| cache.on_presence(&romeo, Some(c), true)), c.clone()),
            _ => (None, None),
        };
        if let Some(q) = asked {
            assert_eq!(Some(q.node), of.map(|c| c.disco_node()));
        }
        while let Some(q) = cache.poll_query() {
            assert_eq!(Some(q.node), cache.caps(&q.to).map(Caps::disco_node));
        }
        let (vers, jids, unverified, in_flight) = cache.sizes();
        assert!(vers <= 4 && jids <= 8 && unverified <= 8 && in_flight <= 4);
        for (ver, features) in cache.verified() {
            assert!(good.contains(ver), "{ver} cached for {}", el.to_xml());
            assert!(features.windows(2).all(|w| w[0] < w[1]));
        }
        let features = cache.features(&from).unwrap_or_default();
        assert!(features.windows(2).all(|w| w[0] < w[1]));
    }
}

/// XEP-0004 forms and fields.
pub fn dataforms(data: &[u8]) {
    for el in elements(data) {
        round_trip::<Field>(&el);
        if let Some(form) = round_trip::<DataForm>(&el) {
            for f in &form.fields {
                let _ = form.field(&f.var).and_then(Field::value);
            }
        }
    }
}

/// XEP-0363 slots (read only: we never write one, so the XML is written here as a
/// service would) and the upload limit of a disco#info result.
pub fn upload(data: &[u8]) {
    for el in elements(data) {
        if let Ok(slot) = Slot::try_from(&el) {
            let headers = slot.put_headers.iter().map(|(name, value)| {
                Element::new("header", ns::HTTP_UPLOAD).with_attr("name", name.as_str()).with_text(value.as_str())
            });
            let put =
                Element::new("put", ns::HTTP_UPLOAD).with_attr("url", slot.put_url.as_str()).with_children(headers);
            let get = Element::new("get", ns::HTTP_UPLOAD).with_attr("url", slot.get_url.as_str());
            let back = Element::new("slot", ns::HTTP_UPLOAD).with_child(put).with_child(get);
            reparse(&back);
            let again = Slot::try_from(&back).unwrap_or_else(|e| panic!("{e}: {}", back.to_xml()));
            assert_eq!(again, slot, "{}", back.to_xml());
            for (_, value) in &slot.put_headers {
                assert!(!value.contains(['\r', '\n']), "a line break in a header: {value:?}");
            }
        }
        if let Ok(info) = DiscoInfoResult::try_from(&el) {
            let _ = service_limit(&info);
        }
    }
}

/// RFC 6121 roster queries, results and pushes.
pub fn roster(data: &[u8]) {
    for el in elements(data) {
        round_trip::<RosterItem>(&el);
        round_trip::<Roster>(&el);
    }
}

/// RFC 6120 stanzas and stanza errors; a stanza also travels through a stream.
pub fn stanza(data: &[u8]) {
    fn owned<T>(el: &Element) -> Option<T>
    where
        T: TryFrom<Element> + Into<Element> + PartialEq + Debug + Clone,
        T::Error: std::fmt::Display,
    {
        let v = T::try_from(el.clone()).ok()?;
        let back: Element = v.clone().into();
        reparse(&back);
        let again = T::try_from(back.clone()).unwrap_or_else(|e| panic!("{e}: {} (from {v:?})", back.to_xml()));
        assert_eq!(again, v, "{}", back.to_xml());
        Some(v)
    }
    for el in elements(data) {
        if let Some(s) = owned::<Stanza>(&el) {
            restream(&Element::from(s));
        }
        if let Some(iq) = owned::<Iq>(&el) {
            let _ = (iq.request_payload(), iq.is_request(), iq.type_str());
            if iq.is_request() {
                let answer = iq.error_for(StanzaError::new(Condition::ServiceUnavailable).with_text("no"));
                owned::<Iq>(&Element::from(answer));
                owned::<Iq>(&Element::from(iq.result_for(None)));
            }
        }
        owned::<Message>(&el);
        owned::<Presence>(&el);
        if let Some(e) = round_trip::<StanzaError>(&el) {
            let _ = e.to_string();
        }
    }
}

/// RFC 6120 stream errors: what reads from an element reads the same from what our
/// stream writer sends for it.
pub fn stream_error(data: &[u8]) {
    for el in elements(data) {
        let Some(e) = StreamError::from_element(&el) else { continue };
        let _ = (e.explain(), e.to_string());
        let mut input = HEADER.to_vec();
        input.extend_from_slice(write_stream_error(&e.condition, e.text.as_deref()).as_bytes());
        let (events, error) = stream_events_capped(&input, input.len(), || usize::MAX);
        assert_eq!(error, None);
        match events.as_slice() {
            [StreamEvent::Open(_), StreamEvent::Stanza(written)] => {
                assert_eq!(StreamError::from_element(written), Some(e.clone()), "{}", written.to_xml());
            }
            [StreamEvent::Open(_), StreamEvent::Dropped(_)] => {}
            other => panic!("{e:?} written reads as {other:?}"),
        }
    }
}

// ------------------------------------------------------------------ JIDs

/// JIDs: what parses displays as a string that parses to the same JID.
pub fn jid(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(j) = s.parse::<Jid>() {
        let shown = j.to_string();
        let again: Jid = shown.parse().unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(again, j);
        assert_eq!(again.to_string(), shown);
        assert_eq!(again.bare().to_string().parse::<Jid>().ok(), Some(j.bare()));
        assert!(j.bare().resource().is_none());
        let _ = format!("{j:?}");
    }
}
