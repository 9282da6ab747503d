//! Fuzz targets: one function per parser or state machine, fed arbitrary bytes, that
//! must never panic and must keep the invariants checked here. The cargo-fuzz targets
//! in `fuzz/` call these; so does the deterministic property test of the normal test
//! suite (`tests/fuzz_properties.rs`), over the seed corpora and their mutations.

use std::fmt::Debug;
use std::time::Duration;

use crate::bytestreams::{Activate, ProxyInfo, ProxyQuery, StreamHost, StreamHostUsed, StreamHosts};
use crate::dataforms::{DataForm, Field};
use crate::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item};
use crate::ibb::{Close, Data, IbbPayload, Open};
use crate::jid::Jid;
use crate::negotiation::{Negotiator, TlsPolicy};
use crate::oob::{IqOob, XOob};
use crate::roster::{Roster, RosterItem};
use crate::si::{FileInfo, FileOffer, SiAccept};
use crate::socks5::{ClientHandshake, ServerHandshake};
use crate::stanza::{Iq, Stanza, StanzaError};
use crate::stream::{parse_element, StreamEvent, StreamHeader, StreamParser};
use crate::stream_error::StreamError;
use crate::transfer::{Receiver, ReceiverConfig, ReceiverInput, Sender, SenderConfig, SenderInput};
use crate::xml::Element;

/// A fuzz target: arbitrary bytes in, a panic on a broken invariant.
pub type Target = fn(&[u8]);

/// The targets, by name (for the property test and `bench/fuzz.sh`).
pub const TARGETS: &[(&str, Target)] = &[
    ("stream", stream),
    ("payloads", payloads),
    ("jid", jid),
    ("socks5", socks5),
    ("receiver", receiver),
    ("sender", sender),
    ("negotiation", negotiation),
];

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s1' version='1.0'>";

/// Events and the final error of `input` fed in the chunks `sizes` gives.
fn stream_events(input: &[u8], mut sizes: impl FnMut() -> usize) -> (Vec<StreamEvent>, Option<String>) {
    let mut p = StreamParser::new(64 * 1024);
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

/// The stream reader: the same events however the bytes are chunked; what parses
/// serialises to XML that parses to the same tree.
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
            if let StreamEvent::Stanza(el) = e {
                reparse(el);
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

/// `T` parsed from `el` writes an element that parses to the same `T`.
fn round_trip<T>(el: &Element)
where
    T: for<'a> TryFrom<&'a Element> + PartialEq + Debug,
    for<'a> Element: From<&'a T>,
{
    if let Ok(v) = T::try_from(el) {
        let back = Element::from(&v);
        let again: Option<T> = T::try_from(&back).ok();
        match again {
            Some(again) => assert_eq!(again, v, "{}", back.to_xml()),
            None => panic!("what we write does not parse: {}", back.to_xml()),
        }
    }
}

/// Every payload parser on the element `data` parses to (and on each of its children).
pub fn payloads(data: &[u8]) {
    let Ok(root) = parse_element(data) else { return };
    let mut all = vec![&root];
    all.extend(root.elements());
    for el in all {
        round_trip::<FileInfo>(el);
        round_trip::<FileOffer>(el);
        round_trip::<SiAccept>(el);
        round_trip::<StreamHost>(el);
        round_trip::<StreamHosts>(el);
        round_trip::<StreamHostUsed>(el);
        round_trip::<Activate>(el);
        round_trip::<ProxyQuery>(el);
        round_trip::<ProxyInfo>(el);
        round_trip::<Open>(el);
        round_trip::<Data>(el);
        round_trip::<Close>(el);
        round_trip::<IbbPayload>(el);
        round_trip::<IqOob>(el);
        round_trip::<XOob>(el);
        round_trip::<Identity>(el);
        round_trip::<Item>(el);
        round_trip::<DiscoInfoResult>(el);
        round_trip::<DiscoItemsResult>(el);
        round_trip::<Field>(el);
        round_trip::<DataForm>(el);
        round_trip::<RosterItem>(el);
        round_trip::<Roster>(el);
        round_trip::<StanzaError>(el);
        let _ = crate::upload::Slot::try_from(el);
        if let Ok(info) = DiscoInfoResult::try_from(el) {
            let _ = crate::upload::service_limit(&info);
        }
        let _ = StreamError::from_element(el).map(|e| e.to_string());
        if let Ok(s) = Stanza::try_from(el.clone()) {
            let back = Element::from(s.clone());
            let again = Stanza::try_from(back.clone()).unwrap_or_else(|e| panic!("{e}: {}", back.to_xml()));
            assert_eq!(again, s, "{}", back.to_xml());
        }
    }
}

/// JIDs: what parses displays as a string that parses to the same JID.
pub fn jid(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(j) = s.parse::<Jid>() {
        let shown = j.to_string();
        let again: Jid = shown.parse().unwrap_or_else(|e| panic!("{shown}: {e}"));
        assert_eq!(again, j);
        assert_eq!(again.bare().to_string().parse::<Jid>().ok(), Some(j.bare()));
    }
}

/// Both SOCKS5 handshakes on arbitrary bytes, split where the data says.
pub fn socks5(data: &[u8]) {
    let split = usize::from(data.first().copied().unwrap_or(0));
    let (a, b) = data.split_at(split.min(data.len()));
    let mut server = ServerHandshake::new();
    for part in [a, b] {
        if server.on_bytes(part).is_err() {
            break;
        }
    }
    let mut client = ClientHandshake::new("0123456789abcdef0123456789abcdef01234567");
    let _ = client.initial_bytes();
    for part in [a, b] {
        if client.on_bytes(part).is_err() {
            break;
        }
    }
}

/// Reads the input bytes as a sequence of small numbers.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

const PEER: &str = "alice@example.com/psi";
const ME: &str = "bob@example.com/skiff";

fn iq(xml: &str) -> Option<Iq> {
    Iq::try_from(parse_element(xml.as_bytes()).ok()?).ok()
}

/// A request or answer of the kind a transfer sees, picked and filled from `b`.
fn transfer_iq(b: &mut Bytes<'_>, kind: u8) -> Option<Iq> {
    let n = b.byte().unwrap_or(0);
    let sid = if n & 1 == 0 { "s1" } else { "other" };
    let id = format!("i{}", n >> 1);
    let from = if n & 0x80 == 0 { PEER } else { "mallory@evil.example/x" };
    let head = format!("<iq xmlns='jabber:client' from='{from}' to='{ME}' id='{id}'");
    let xml = match kind % 8 {
        0 => {
            let block = u16::from(b.byte().unwrap_or(16)) * 64;
            format!("{head} type='set'><open xmlns='http://jabber.org/protocol/ibb' sid='{sid}' block-size='{block}'/></iq>")
        }
        1 => {
            let seq = u16::from(b.byte().unwrap_or(0));
            let len = usize::from(b.byte().unwrap_or(0));
            let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b.take(len));
            format!("{head} type='set'><data xmlns='http://jabber.org/protocol/ibb' sid='{sid}' seq='{seq}'>{data}</data></iq>")
        }
        2 => format!("{head} type='set'><close xmlns='http://jabber.org/protocol/ibb' sid='{sid}'/></iq>"),
        3 => format!(
            "{head} type='set'><query xmlns='http://jabber.org/protocol/bytestreams' sid='{sid}'>\
             <streamhost jid='{PEER}' host='127.0.0.1' port='{}'/><streamhost jid='proxy.example.com' host='proxy.example.com' port='7777'/></query></iq>",
            u16::from(b.byte().unwrap_or(1)) + 1
        ),
        4 => format!("{head} type='result'/>"),
        5 => format!(
            "{head} type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        ),
        6 => format!(
            "{head} type='result'><si xmlns='http://jabber.org/protocol/si'><feature xmlns='http://jabber.org/protocol/feature-neg'>\
             <x xmlns='jabber:x:data' type='submit'><field var='stream-method'><value>{}</value></field></x></feature>\
             {}</si></iq>",
            if n & 2 == 0 { crate::ns::BYTESTREAMS } else { crate::ns::IBB },
            if n & 4 == 0 { "" } else { "<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'><range offset='10'/></file>" }
        ),
        _ => format!(
            "{head} type='result'><query xmlns='http://jabber.org/protocol/bytestreams' sid='{sid}'><streamhost-used jid='{}'/></query></iq>",
            if n & 2 == 0 { ME } else { "proxy.example.com" }
        ),
    };
    iq(&xml)
}

/// The receiving state machine fed an arbitrary sequence of inputs; progress never
/// passes the announced size.
pub fn receiver(data: &[u8]) {
    const SIZE: u64 = 1000;
    let offer = format!(
        "<iq xmlns='jabber:client' type='set' id='offer1' from='{PEER}' to='{ME}'>\
         <si xmlns='http://jabber.org/protocol/si' id='s1' profile='http://jabber.org/protocol/si/profile/file-transfer'>\
         <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a.bin' size='{SIZE}'><range/></file>\
         <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
         <field var='stream-method' type='list-single'><option><value>{}</value></option><option><value>{}</value></option></field>\
         </x></feature></si></iq>",
        crate::ns::BYTESTREAMS,
        crate::ns::IBB
    );
    let me: Jid = ME.parse().expect("jid");
    let Ok(mut r) = Receiver::from_offer(ReceiverConfig::default(), me, iq(&offer).expect("offer"), Duration::ZERO)
    else {
        panic!("the offer is refused")
    };
    let mut b = Bytes(data);
    let mut now = Duration::ZERO;
    while let Some(op) = b.byte() {
        now += Duration::from_millis(u64::from(op & 0x0f) * 997);
        let input = match op >> 4 {
            0 => ReceiverInput::Accept { offset: u64::from(b.byte().unwrap_or(0)) * 8 },
            1 => ReceiverInput::Reject,
            2..=6 => match transfer_iq(&mut b, op) {
                Some(iq) => ReceiverInput::Iq(iq),
                None => continue,
            },
            7 => ReceiverInput::CandidateConnected { jid: PEER.into() },
            8 => ReceiverInput::CandidatesFailed("none".into()),
            9 => ReceiverInput::SocketDone,
            10 => ReceiverInput::SocketFailed("broke".into()),
            11 => ReceiverInput::Written,
            12 => ReceiverInput::WriteFailed("disk".into()),
            13 => ReceiverInput::OutOfSpace("full".into()),
            14 => ReceiverInput::Cancel,
            _ => ReceiverInput::Tick,
        };
        let _ = r.handle(input, now);
        assert!(r.written() <= SIZE, "{} of {SIZE} bytes", r.written());
    }
}

/// The sending state machine fed an arbitrary sequence of inputs.
pub fn sender(data: &[u8]) {
    let file = FileInfo::new("a.bin", 1000);
    let (me, peer) = (ME.parse().expect("jid"), PEER.parse().expect("jid"));
    let mut s = Sender::new(SenderConfig::default(), me, peer, "s1".into(), file, Duration::ZERO);
    let mut b = Bytes(data);
    let mut now = Duration::ZERO;
    let _ = s.handle(SenderInput::Start, now);
    while let Some(op) = b.byte() {
        now += Duration::from_millis(u64::from(op & 0x0f) * 997);
        let input = match op >> 4 {
            0..=5 => match transfer_iq(&mut b, op) {
                Some(iq) => SenderInput::Iq(iq),
                None => continue,
            },
            6 => SenderInput::Streamhosts(vec![StreamHost { jid: ME.into(), host: "127.0.0.1".into(), port: 1 }]),
            7 => SenderInput::Streamhosts(Vec::new()),
            8 => SenderInput::DirectConnected,
            9 => SenderInput::DirectMissing,
            10 => SenderInput::ProxyConnected,
            11 => SenderInput::ProxyFailed("no".into()),
            12 => SenderInput::SocketDone,
            13 => {
                let len = usize::from(b.byte().unwrap_or(0)) * 8;
                SenderInput::Block(vec![0; len])
            }
            14 => SenderInput::Cancel,
            _ => SenderInput::Tick,
        };
        let _ = s.handle(input, now);
    }
}

/// The sign-in negotiation fed headers and elements cut from the data (0xff
/// separates them; an empty piece is a stream header).
pub fn negotiation(data: &[u8]) {
    let jid: Jid = "user@example.com/skiff".parse().expect("jid");
    let mut n = Negotiator::new(jid, "pencil", TlsPolicy::Direct);
    for piece in data.split(|&b| b == 0xff) {
        let event = if piece.is_empty() {
            StreamEvent::Open(StreamHeader { attrs: Vec::new(), default_ns: crate::ns::CLIENT.into() })
        } else {
            match parse_element(piece) {
                Ok(el) => StreamEvent::Stanza(el),
                Err(_) => continue,
            }
        };
        if n.handle(event).is_err() {
            return;
        }
    }
}
