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

/// A fuzz target: arbitrary bytes in, a panic on a broken invariant.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/`, `fuzz/seeds/` and
/// `fuzz/regressions/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("stream", stream),
    ("si", si),
    ("bytestreams", bytestreams),
    ("ibb", ibb),
    ("oob", oob),
    ("disco", disco),
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

// ------------------------------------------------------------------ SOCKS5

/// Reads the input bytes as a sequence of small numbers.
struct Bytes<'a>(&'a [u8]);

/// The clock before a tick: to the machine's `deadline`, or a little later than `now`,
/// as the data says.
fn tick(now: Duration, deadline: Option<Duration>, b: &mut Bytes<'_>) -> Duration {
    match deadline {
        Some(t) if b.or(0) & 1 == 0 => now.max(t),
        _ => now + Duration::from_millis(u64::from(b.or(0)) * 100),
    }
}

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn or(&mut self, default: u8) -> u8 {
        self.byte().unwrap_or(default)
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.or(0), self.or(0)])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Chunk sizes (1..=16) read from `seed`, over and over.
fn chunker(seed: &[u8]) -> impl FnMut() -> usize + '_ {
    let mut i = 0;
    move || {
        i += 1;
        if seed.is_empty() {
            1
        } else {
            usize::from(seed[i % seed.len()] % 16) + 1
        }
    }
}

/// The end of a server handshake: what it wrote in all, and how it ended (a request
/// with everything after it, or the failure).
type ServerEnd = (Vec<u8>, Result<Option<(socks5::ConnectRequest, Vec<u8>)>, socks5::Socks5Error>);

fn run_server(input: &[u8], mut sizes: impl FnMut() -> usize) -> ServerEnd {
    let mut hs = ServerHandshake::new();
    let (mut sent, mut rest) = (Vec::new(), input);
    while !rest.is_empty() {
        let n = sizes().clamp(1, rest.len());
        let (chunk, after) = rest.split_at(n);
        rest = after;
        match hs.on_bytes(chunk) {
            Ok(ServerStep::NeedMore { send }) => sent.extend(send),
            Ok(ServerStep::Request { send, request, mut leftover }) => {
                sent.extend(send);
                leftover.extend_from_slice(rest);
                // The handshake is over: more bytes are refused.
                assert!(hs.on_bytes(b"x").is_err());
                return (sent, Ok(Some((request, leftover))));
            }
            Err(failure) => {
                sent.extend(failure.send);
                return (sent, Err(failure.error));
            }
        }
    }
    (sent, Ok(None))
}

/// The end of a client handshake: what it wrote after its greeting, and how it ended.
type ClientEnd = (Vec<u8>, Result<Option<(socks5::Reply, socks5::Echo, Vec<u8>)>, socks5::Socks5Error>);

fn run_client(dst: &str, input: &[u8], mut sizes: impl FnMut() -> usize) -> ClientEnd {
    let mut hs = ClientHandshake::new(dst);
    assert_eq!(hs.initial_bytes(), socks5::client_greeting());
    let (mut sent, mut rest) = (Vec::new(), input);
    let mut flush = false;
    while !rest.is_empty() || flush {
        // After CONNECT is written, what came with the method selection is looked at
        // before reading on. (The engine reads on at once: a proxy that sends its reply
        // before our CONNECT makes it wait for its timeout. Harmless; docs/fuzzing.md.)
        let chunk = if std::mem::take(&mut flush) {
            &[][..]
        } else {
            let n = sizes().clamp(1, rest.len());
            let (chunk, after) = rest.split_at(n);
            rest = after;
            chunk
        };
        match hs.on_bytes(chunk) {
            Ok(ClientStep::NeedMore) => {}
            Ok(ClientStep::Send(bytes)) => {
                // CONNECT, once, never pipelined: it is all the client ever writes.
                assert!(sent.is_empty(), "a second write");
                assert_eq!(bytes, socks5::connect_request(dst));
                sent.extend(bytes);
                flush = true;
            }
            Ok(ClientStep::Done { reply, echo, mut leftover }) => {
                assert!(!sent.is_empty(), "done before CONNECT was sent");
                leftover.extend_from_slice(rest);
                assert!(hs.on_bytes(b"x").is_err());
                return (sent, Ok(Some((reply, echo, leftover))));
            }
            Err(e) => return (sent, Err(e)),
        }
    }
    (sent, Ok(None))
}

/// Both SOCKS5 handshakes on arbitrary bytes: the same outcome (bytes written, request
/// or reply, leftover, error) whether the bytes come at once or in chunks of 1 to 16
/// bytes whose sizes the first bytes of the data pick; the parsers never read past the
/// input.
pub fn socks5(data: &[u8]) {
    let (seed, input) = data.split_at(data.len().min(4));
    let server = run_server(input, || usize::MAX);
    assert_eq!(run_server(input, chunker(seed)), server, "chunking changed the server handshake");
    assert_eq!(run_server(input, || 1), server, "byte by byte changed the server handshake");
    if let (_, Ok(Some((request, _)))) = &server {
        let dst = request.dst_addr().map(str::to_owned);
        if let Some(dst) = &dst {
            assert!(request.check_dst(dst).is_ok(), "{dst} is not its own DST.ADDR");
        }
        let _ = request.reply(socks5::REP_SUCCEEDED);
    }
    // The DST.ADDR the client asks for: the usual 40 hex digits, or a name from the data.
    let dst = match seed.first() {
        Some(&n) if n & 0x80 != 0 => String::from_utf8_lossy(&input[..input.len().min(usize::from(n & 0x7f))])
            .chars()
            .take(60)
            .collect::<String>(),
        _ => "0123456789abcdef0123456789abcdef01234567".to_owned(),
    };
    let client = run_client(&dst, input, || usize::MAX);
    assert_eq!(run_client(&dst, input, chunker(seed)), client, "chunking changed the client handshake");
    assert_eq!(run_client(&dst, input, || 1), client, "byte by byte changed the client handshake");
    // The one-shot parsers: what they consume is within the input.
    if let Ok(Some(n)) = socks5::parse_method_selection(input) {
        assert!(n <= input.len());
    }
    if let Ok(Some((_, n))) = socks5::parse_greeting(input) {
        assert!(n <= input.len());
    }
    if let Ok(Some((_, n))) = socks5::parse_connect_request(input) {
        assert!(n <= input.len());
    }
    if let Ok(Some((reply, n))) = socks5::parse_reply(input) {
        assert!(n <= input.len());
        let _ = reply.check_echo(&dst);
    }
    let _ = socks5::reply_meaning(seed.first().copied().unwrap_or(0));
}

// ------------------------------------------------------------------ transfers

const PEER: &str = "alice@example.com/psi";
const ME: &str = "bob@example.com/skiff";
const PROXY: &str = "proxy.example.com";
const STRANGER: &str = "mallory@evil.example/x";
const SID: &str = "s1";

/// Inputs per run: enough for a whole small transfer, few enough to stay fast.
const MAX_STEPS: usize = 300;

/// The JIDs of a run, parsed once.
struct Jids {
    me: Jid,
    peer: Jid,
    proxy: Jid,
    stranger: Jid,
}

impl Jids {
    fn new() -> Jids {
        let j = |s: &str| s.parse::<Jid>().expect("a fixed JID");
        Jids { me: j(ME), peer: j(PEER), proxy: j(PROXY), stranger: j(STRANGER) }
    }
}

/// Stanza errors a peer or proxy answers with.
const CONDITIONS: &[Condition] = &[
    Condition::ItemNotFound,
    Condition::ResourceConstraint,
    Condition::NotAcceptable,
    Condition::Forbidden,
    Condition::ServiceUnavailable,
    Condition::FeatureNotImplemented,
    Condition::BadRequest,
    Condition::UnexpectedRequest,
    Condition::RemoteServerNotFound,
];

fn pick<'a, T>(b: &mut Bytes<'_>, from: &'a [T]) -> &'a T {
    &from[usize::from(b.or(0)) % from.len()]
}

/// A stanza from the data itself: an element of up to 255 bytes read as an IQ.
fn garbage_iq(b: &mut Bytes<'_>) -> Option<Iq> {
    let n = usize::from(b.or(0));
    Iq::try_from(parse_element(b.take(n)).ok()?).ok()
}

/// An error with a condition the data picks.
fn stanza_error(b: &mut Bytes<'_>) -> StanzaError {
    let condition = pick(b, CONDITIONS).clone();
    let e = StanzaError::new(condition);
    if b.or(0) & 1 == 0 {
        e
    } else {
        e.with_app(crate::si::no_valid_streams())
    }
}

/// `SKIFF_FUZZ_TRACE=1` prints the inputs and actions of the transfer target (to
/// write seeds: `cargo test -p skiff-proto --test fuzz_properties -- --nocapture`).
fn tracing() -> bool {
    std::env::var_os("SKIFF_FUZZ_TRACE").is_some()
}

/// What the data says happens to a transfer: the sender's or the receiver's run.
pub fn transfer(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    if which & 1 == 0 {
        sender(rest)
    } else {
        receiver(rest)
    }
}

/// The sending machine fed a sequence of inputs: answers (results, errors, garbage)
/// to the requests it sent, requests of its own, socket and file outcomes, cancels and
/// the clock.
fn sender(data: &[u8]) {
    let jids = Jids::new();
    let mut b = Bytes(data);
    let size = u64::from(b.u16() % 20_000);
    let flags = b.or(0);
    let mut file = FileInfo::new("a.bin", size);
    file.range = flags & 1 != 0;
    let methods = match flags >> 1 & 3 {
        0 => vec![crate::transfer::Method::S5b, crate::transfer::Method::Ibb],
        1 => vec![crate::transfer::Method::Ibb],
        2 => vec![crate::transfer::Method::S5b],
        _ => vec![crate::transfer::Method::Ibb, crate::transfer::Method::S5b],
    };
    let cfg = SenderConfig {
        methods,
        ibb_block_size: 16 + b.u16() % 4096,
        ibb_window: usize::from(flags >> 3 & 3) + 1,
        skiff_peer: flags & 0x20 != 0,
        ..SenderConfig::default()
    };
    let mut s = Sender::new(cfg, jids.me.clone(), jids.peer.clone(), SID.into(), file, Duration::ZERO);
    let mut now = Duration::ZERO;
    // Requests sent and not answered yet (id, to); every request id, to check they are
    // unique; what the streamhosts offered.
    let mut pending: Vec<(String, Option<Jid>)> = Vec::new();
    let mut ids = HashSet::new();
    let mut ended = false;
    let mut acked = 0u64;
    let mut want = 0usize;
    let trace = tracing();
    let mut feed = |s: &mut Sender, input: SenderInput, now: Duration, pending: &mut Vec<_>, want: &mut usize| {
        let finished = s.is_finished();
        if trace {
            eprintln!("{now:?} -> {input:?}");
        }
        let actions = s.handle(input, now);
        if trace {
            eprintln!("   <- {actions:?}");
        }
        if finished {
            assert!(actions.is_empty(), "a finished sender still acts: {actions:?}");
        }
        for a in &actions {
            match a {
                SenderAction::SendIq(iq) if iq.is_request() => {
                    assert!(ids.insert(iq.id.clone()), "request id {} used twice", iq.id);
                    pending.push((iq.id.clone(), iq.to.clone()));
                }
                SenderAction::ReadBlock { len } => {
                    assert!(*len > 0, "a read of nothing");
                    *want = *len;
                }
                SenderAction::StreamSocket { offset, length } => {
                    assert!(offset.checked_add(*length).is_some_and(|end| end <= size), "{offset}+{length} > {size}");
                }
                SenderAction::Started { offset, length, .. } => {
                    assert!(offset.checked_add(*length).is_some_and(|end| end <= size), "{offset}+{length} > {size}");
                }
                SenderAction::Progress { acked: n } => {
                    assert!(*n <= size, "progress {n} past the size {size}");
                    assert!(*n >= acked, "progress went back from {acked} to {n}");
                    acked = *n;
                }
                SenderAction::Done { bytes, .. } => {
                    assert!(*bytes <= size, "done with {bytes} of {size} bytes");
                }
                _ => {}
            }
            if matches!(a, SenderAction::Done { .. } | SenderAction::Rejected { .. } | SenderAction::Failed { .. }) {
                assert!(!ended, "finished twice: {actions:?}");
                ended = true;
            }
        }
        assert_eq!(s.is_finished(), ended, "is_finished() disagrees with the actions: {actions:?}");
        let _ = (s.state(), s.range(), s.block_size(), s.poll_timeout());
    };
    feed(&mut s, SenderInput::Start, now, &mut pending, &mut want);
    for _ in 0..MAX_STEPS {
        let Some(op) = b.byte() else { break };
        let input = match op % 20 {
            // Answers to what it asked, from whom it asked, or from someone else.
            0..=6 if !pending.is_empty() => {
                let (id, to) = pending.remove(usize::from(b.or(0)) % pending.len());
                let from = match b.or(0) % 8 {
                    0 => Some(jids.stranger.clone()),
                    1 => None,
                    _ => to,
                };
                let kind = match op % 7 {
                    0 | 1 => IqKind::Result(None),
                    2 => {
                        let method = *pick(&mut b, &[ns::BYTESTREAMS, ns::IBB, ns::IQ_OOB, ""]);
                        let range = match b.or(0) % 4 {
                            0 => None,
                            1 => Some(Range { offset: u64::from(b.u16()), length: None }),
                            2 => Some(Range { offset: u64::from(b.u16()), length: Some(u64::from(b.u16())) }),
                            _ => Some(Range { offset: u64::MAX - u64::from(b.or(0)), length: Some(u64::MAX) }),
                        };
                        IqKind::Result(Some(Element::from(&SiAccept { method: method.to_owned(), range })))
                    }
                    3 => {
                        let jid = *pick(&mut b, &[ME, PROXY, PEER, "nobody.example"]);
                        IqKind::Result(Some(Element::from(&StreamHostUsed { sid: Some(SID.into()), jid: jid.into() })))
                    }
                    4 => IqKind::Error(stanza_error(&mut b)),
                    5 => match garbage_iq(&mut b) {
                        Some(iq) => iq.kind,
                        None => continue,
                    },
                    _ => IqKind::Result(Some(Element::new("query", ns::BYTESTREAMS))),
                };
                SenderInput::Iq(Iq { id, from, to: Some(jids.me.clone()), kind })
            }
            // Requests: the receiver closes the in-band stream, or anything at all.
            7 => {
                let close = IbbPayload::Close(Close { sid: (*pick(&mut b, &[SID, "other"])).into() });
                let from = if b.or(0) & 1 == 0 { jids.peer.clone() } else { jids.stranger.clone() };
                SenderInput::Iq(Iq { from: Some(from), ..Iq::set("c1", Some(jids.me.clone()), close.into()) })
            }
            8 => match garbage_iq(&mut b) {
                Some(iq) => SenderInput::Iq(iq),
                None => continue,
            },
            9 => {
                let n = usize::from(b.or(0) % 4);
                let hosts = (0..n)
                    .map(|i| StreamHost {
                        jid: if i == 0 { ME.into() } else { PROXY.into() },
                        host: "127.0.0.1".into(),
                        port: 7777 + i as u16,
                    })
                    .collect();
                SenderInput::Streamhosts(hosts)
            }
            10 => SenderInput::DirectConnected,
            11 => SenderInput::DirectMissing,
            12 => SenderInput::ProxyConnected,
            13 => SenderInput::ProxyFailed("refused".into()),
            14 => match b.or(0) % 3 {
                0 => SenderInput::SocketDone,
                1 => SenderInput::SocketFailed("reset".into()),
                _ => SenderInput::ReadFailed("i/o error".into()),
            },
            15 | 16 => {
                // Mostly what was asked, sometimes less (the file shrank), rarely more.
                let len = match b.or(0) % 8 {
                    0 => 0,
                    1 => want / 2,
                    2 => want + 1,
                    _ => want,
                };
                SenderInput::Block(vec![0x55; len])
            }
            17 => SenderInput::Cancel,
            18 => {
                now = tick(now, s.poll_timeout(), &mut b);
                SenderInput::Tick
            }
            _ => {
                now += Duration::from_millis(u64::from(op));
                continue;
            }
        };
        feed(&mut s, input, now, &mut pending, &mut want);
    }
}

/// The receiving machine, from an offer the data shapes, fed a sequence of inputs:
/// the user's decision, the sender's requests (in-band open/data/close with right and
/// wrong sequence numbers, streamhosts, from the peer or a stranger, for this stream
/// or another), socket and disk outcomes, cancels and the clock.
fn receiver(data: &[u8]) {
    let jids = Jids::new();
    let mut b = Bytes(data);
    let size = u64::from(b.u16() % 20_000);
    let flags = b.or(0);
    let mut file = FileInfo::new("a.bin", size);
    file.range = flags & 1 != 0;
    let methods: &[&str] = match flags >> 1 & 3 {
        0 => &[ns::BYTESTREAMS, ns::IBB],
        1 => &[ns::IBB],
        2 => &[ns::BYTESTREAMS],
        _ => &[ns::IQ_OOB],
    };
    let offer = FileOffer {
        sid: SID.into(),
        mime_type: None,
        file,
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
    };
    let iq = Iq { from: Some(jids.peer.clone()), ..Iq::set("offer1", Some(jids.me.clone()), Element::from(&offer)) };
    let cfg = ReceiverConfig { max_block_size: 64 + b.u16() % 8192, ..ReceiverConfig::default() };
    let mut r = match Receiver::from_offer(cfg, jids.me.clone(), iq, Duration::ZERO) {
        Ok(r) => r,
        Err(refusal) => {
            assert!(matches!(refusal.kind, IqKind::Error(_)), "a refusal that is no error: {refusal:?}");
            return;
        }
    };
    let mut now = Duration::ZERO;
    let mut ended = false;
    let mut seq = SeqCounter::new();
    let mut written = 0u64;
    let mut offset = 0u64;
    let trace = tracing();
    let mut feed = |r: &mut Receiver, input: ReceiverInput, now: Duration| {
        let finished = r.is_finished();
        let request = matches!(&input, ReceiverInput::Iq(iq) if iq.is_request());
        if trace {
            eprintln!("{now:?} -> {input:?}");
        }
        let actions = r.handle(input, now);
        if trace {
            eprintln!("   <- {actions:?}");
        }
        for a in &actions {
            if finished {
                // Once finished, requests get "no such stream", and nothing else happens.
                match a {
                    ReceiverAction::SendIq(Iq { kind: IqKind::Error(_), .. }) if request => {}
                    other => panic!("a finished receiver still acts: {other:?}"),
                }
            }
            match a {
                ReceiverAction::Started { offset: o, .. } => {
                    assert!(*o <= size, "starts at {o} of {size}");
                    offset = *o;
                    written = *o;
                }
                ReceiverAction::Write(bytes) => {
                    written += bytes.len() as u64;
                    assert!(written <= size, "{written} bytes written of {size}");
                }
                ReceiverAction::ReadSocket { expected } => {
                    assert!(offset + expected <= size, "expects {expected} bytes from {offset} of {size}");
                }
                ReceiverAction::Progress { bytes } => assert!(*bytes <= size, "progress {bytes} of {size}"),
                _ => {}
            }
            if matches!(a, ReceiverAction::Done { .. } | ReceiverAction::Rejected | ReceiverAction::Failed { .. }) {
                assert!(!ended, "finished twice: {actions:?}");
                ended = true;
            }
        }
        assert_eq!(r.is_finished(), ended, "is_finished() disagrees with the actions: {actions:?}");
        assert!(r.written() <= size, "{} of {size} bytes", r.written());
        let _ = (r.state(), r.offset(), r.poll_timeout(), r.method(), r.offer(), r.peer(), r.sid());
    };
    for _ in 0..MAX_STEPS {
        let Some(op) = b.byte() else { break };
        let request = |payload: Element, b: &mut Bytes<'_>| {
            let from = match b.or(0) % 16 {
                0 => Some(jids.stranger.clone()),
                1 => None,
                _ => Some(jids.peer.clone()),
            };
            let id = format!("r{}", b.or(0));
            ReceiverInput::Iq(Iq { from, ..Iq::set(id, Some(jids.me.clone()), payload) })
        };
        let sid = |b: &mut Bytes<'_>| if b.or(0).is_multiple_of(8) { "other".to_owned() } else { SID.to_owned() };
        let input = match op % 20 {
            0 => ReceiverInput::Accept {
                offset: match b.or(0) % 4 {
                    0 => 0,
                    1 => size / 2,
                    2 => size + 1,
                    _ => u64::from(b.u16()),
                },
            },
            1 => ReceiverInput::Reject,
            2 => {
                let block_size = *pick(&mut b, &[4096, 1024, 65535, 0, 16, 8192]);
                let open = Open { sid: sid(&mut b), block_size, stanza: crate::ibb::StanzaKind::Iq };
                request(Element::from(&open), &mut b)
            }
            3..=5 => {
                // The next block, mostly in turn, of up to 2 KiB.
                let n = match b.or(0) % 8 {
                    0 => b.u16(),
                    1 => seq.next().wrapping_sub(1),
                    _ => seq.next(),
                };
                let len = usize::from(b.or(0)) * 8;
                let data = Data { sid: sid(&mut b), seq: n, data: vec![0xaa; len] };
                request(Element::from(&data), &mut b)
            }
            6 => request(Element::from(&IbbPayload::Close(Close { sid: sid(&mut b) })), &mut b),
            7 => {
                let n = usize::from(b.or(0) % 4);
                let hosts = (0..n)
                    .map(|i| StreamHost {
                        jid: if i == 0 { PEER.into() } else { PROXY.into() },
                        host: "127.0.0.1".into(),
                        port: 7777 + i as u16,
                    })
                    .collect();
                let hosts = StreamHosts { sid: sid(&mut b), mode_tcp: true, hosts };
                request(Element::from(&hosts), &mut b)
            }
            8 => match garbage_iq(&mut b) {
                Some(iq) => ReceiverInput::Iq(iq),
                None => continue,
            },
            9 => {
                // An answer to nothing it asked.
                let kind = if b.or(0) & 1 == 0 { IqKind::Result(None) } else { IqKind::Error(stanza_error(&mut b)) };
                ReceiverInput::Iq(Iq { id: "x".into(), from: Some(jids.peer.clone()), to: Some(jids.me.clone()), kind })
            }
            10 => ReceiverInput::CandidateConnected { jid: (*pick(&mut b, &[PEER, PROXY, STRANGER])).into() },
            11 => ReceiverInput::CandidatesFailed("none answered".into()),
            12 => match b.or(0) % 3 {
                0 => ReceiverInput::SocketDone,
                1 => ReceiverInput::SocketFailed("reset".into()),
                _ => ReceiverInput::SocketOverrun,
            },
            13 | 14 => ReceiverInput::Written,
            15 => match b.or(0) % 2 {
                0 => ReceiverInput::WriteFailed("i/o error".into()),
                _ => ReceiverInput::OutOfSpace("disk full".into()),
            },
            16 => ReceiverInput::Cancel,
            17 => {
                now = tick(now, r.poll_timeout(), &mut b);
                ReceiverInput::Tick
            }
            _ => {
                now += Duration::from_millis(u64::from(op));
                continue;
            }
        };
        feed(&mut r, input, now);
    }
    let _ = jids.proxy;
}

// ------------------------------------------------------------------ sign-in

/// The sign-in negotiation fed stream headers and elements cut from the data (0xff
/// separates them; an empty piece is a stream header, a piece of one byte `0xfe` the
/// stream's end); a StartTls action is answered by the TLS upgrade. The first byte
/// picks the TLS policy.
pub fn negotiation(data: &[u8]) {
    let Some((&first, data)) = data.split_first() else { return };
    let policy = match first % 3 {
        0 => TlsMode::Direct,
        1 => TlsMode::StartTls,
        _ => TlsMode::Plaintext,
    };
    let jid: Jid = "user@example.com/skiff".parse().expect("jid");
    // With bit 8, an XEP-0198 resumption is asked instead of binding.
    let old: Jid = "user@example.com/old".parse().expect("jid");
    let resume = (first & 8 != 0).then(|| (crate::sm::ResumeRequest { previd: "sm-1".into(), h: 3 }, old.clone()));
    let asked = resume.is_some();
    let mut n = Negotiator::new(jid, "pencil", policy).require_scram(first & 4 != 0).resume(resume);
    let mut done = false;
    for piece in data.split(|&b| b == 0xff).take(64) {
        let event = match piece {
            [] => StreamEvent::Open(StreamHeader { attrs: Vec::new(), default_ns: ns::CLIENT.into() }),
            [0xfe] => StreamEvent::Close,
            _ => match parse_element(piece) {
                Ok(el) => StreamEvent::Stanza(el),
                Err(_) => continue,
            },
        };
        let _ = n.is_expensive(&event);
        match n.handle(event) {
            Ok(actions) => {
                for a in actions {
                    match a {
                        Action::StartTls => {
                            let again = n.tls_established();
                            assert!(again.contains(&Action::RestartStream));
                        }
                        Action::Done(result) => {
                            assert!(!done, "negotiated twice");
                            done = true;
                            let _ = result.jid.to_string();
                            assert_eq!(result.resumption.is_some(), asked, "{result:?}");
                            if matches!(result.resumption, Some(crate::negotiation::Resumption::Resumed { .. })) {
                                assert_eq!(result.jid, old, "a resumed session keeps its address");
                            }
                        }
                        Action::Send(el) => reparse(&el),
                        _ => {}
                    }
                }
            }
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
}

// ------------------------------------------------------------- XEP-0198 stream management

/// XEP-0198: the stream management elements round-trip; the counting machine driven by
/// a sequence of operations (sends, receipts, the server's elements with chosen or
/// arbitrary `h`, drops, resumptions) keeps its books: an acknowledgement drops exactly
/// the copies it covers or changes nothing, a resumption sends again exactly what was
/// not acknowledged, and nothing is kept beyond the cap.
pub fn sm(data: &[u8]) {
    use crate::sm::{SmElement, StreamManagement, MAX_UNACKED, NS};
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        for el in elements(rest) {
            round_trip::<SmElement>(&el);
            let mut m = StreamManagement::new();
            m.enable();
            let _ = m.handle(&el);
            let _ = m.handle(&el);
        }
        return;
    }
    let msg = Element::new("message", crate::ns::CLIENT).with_attr("id", "m");
    let mut m = StreamManagement::new();
    let mut b = Bytes(rest);
    // What the server has acknowledged so far (our model of `h`), once enabled.
    let mut acked: u32 = 0;
    while let Some(op) = b.byte() {
        let before = m.unacked();
        match op % 12 {
            0 => {
                m.enable();
                acked = 0;
                assert_eq!(m.unacked(), 0);
            }
            1 => {
                m.sent(&msg);
                assert!(m.unacked() == before + 1 || m.unacked() == 0 || !m.is_on() || m.unacked() == before);
            }
            2 => {
                m.sent(&Element::new("r", NS));
                assert_eq!(m.unacked(), before, "not a stanza");
            }
            3 => m.received(),
            4 => {
                let el = Element::new("enabled", NS).with_attr("id", "x").with_attr("resume", "true");
                let _ = m.handle(&el);
            }
            5 | 6 => {
                // An acknowledgement of `n` more (possibly more than was sent), or of
                // any h at all.
                let h = if op % 12 == 5 { acked.wrapping_add(u32::from(b.or(0) % 24)) } else { u32::from(b.u16()) };
                let el = Element::new("a", NS).with_attr("h", h.to_string());
                match m.handle(&el) {
                    Ok(_) => {
                        let newly = h.wrapping_sub(acked) as usize;
                        assert!(m.unacked() == before - newly.min(before), "{before} - {newly} != {}", m.unacked());
                        acked = h;
                    }
                    Err(_) => assert_eq!(m.unacked(), before, "a refused ack changes nothing"),
                }
            }
            7 => {
                if let Ok(out) = m.handle(&Element::new("r", NS)) {
                    assert_eq!(out.len(), 1);
                }
            }
            8 => {
                let _ = m.handle(&Element::new("failed", NS));
            }
            9 => {
                let force = b.or(0) & 1 == 1;
                let _ = m.request_ack(force);
            }
            10 => {
                if let Some(req) = m.resume_request() {
                    assert!(m.is_resumable());
                    let _ = Element::from(&req);
                    let h = acked.wrapping_add(u32::from(b.or(0) % 24));
                    match m.resumed(h) {
                        Ok(again) => {
                            let newly = h.wrapping_sub(acked) as usize;
                            assert_eq!(again.len(), before - newly + 1, "what was not acknowledged, and an <r/>");
                            assert!(again.last().is_some_and(|r| r.is("r", NS)));
                            assert!(m.is_unconfirmed() && m.resume_request().is_none());
                            acked = h;
                        }
                        Err(_) => assert_eq!(m.unacked(), before),
                    }
                }
            }
            _ => {
                let h = (b.or(0) & 1 == 1).then(|| acked.wrapping_add(u32::from(b.or(0) % 24)));
                let lost = m.resume_failed(h);
                assert!(lost.len() <= before);
                assert!(!m.is_on() && m.unacked() == 0);
            }
        }
        assert!(m.unacked() <= MAX_UNACKED);
        if m.resume_request().is_some() {
            assert!(m.is_resumable() && !m.is_unconfirmed());
        }
    }
}
