//! The XEP examples (XEP-0234 §5 example 1, XEP-0260 examples 1, 5 and 7, XEP-0261
//! example 1), round trips, and what hostile elements get.

use super::ft::{Checksum, Description, File, FtVersion, Range, Received};
use super::s5b::{self, Candidate, CandidateType, Signal};
use super::*;
use crate::stream::parse_element;

fn el(xml: &str) -> Element {
    parse_element(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}: {xml}"))
}

fn jingle_of(iq: &str) -> Jingle {
    let iq = el(iq);
    Jingle::try_from(iq.child("jingle", ns::JINGLE).expect("jingle")).expect("parses")
}

/// `T` from an element writes an element that reads back to the same `T`.
fn round_trip<T>(v: &T) -> Element
where
    T: for<'a> TryFrom<&'a Element, Error = ParseError> + PartialEq + std::fmt::Debug,
    for<'a> Element: From<&'a T>,
{
    let e = Element::from(v);
    let again = parse_element(e.to_xml().as_bytes()).expect("our XML parses");
    assert_eq!(&T::try_from(&again).expect("our element parses"), v, "{}", e.to_xml());
    e
}

const XEP_0234_EX1: &str = "<iq xmlns='jabber:client' from='romeo@montague.example/dr4hcr0st3lup4c' id='nzu25s8' \
    to='juliet@capulet.example/yn0cl4bnw0yr3vym' type='set'>
  <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.example/dr4hcr0st3lup4c' sid='851ba2'>
    <content creator='initiator' name='a-file-offer' senders='initiator'>
      <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'>
        <file>
          <date>1969-07-21T02:56:15Z</date>
          <desc>This is a test. If this were a real file...</desc>
          <media-type>text/plain</media-type>
          <name>test.txt</name>
          <range/>
          <size>6144</size>
          <hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>w0mcJylzCn+AfvuGdqkty2+KP48=</hash>
        </file>
      </description>
      <transport xmlns='urn:xmpp:jingle:transports:s5b:1' mode='tcp' sid='vj3hs98y'>
        <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5086' priority='8257636' type='direct'/>
        <candidate cid='hutr46fe' host='24.24.24.1' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5087' priority='8258636' type='direct'/>
      </transport>
    </content>
  </jingle>
</iq>";

#[test]
fn xep_0234_file_offer() {
    let j = jingle_of(XEP_0234_EX1);
    assert_eq!(j.action, Action::SessionInitiate);
    assert_eq!(j.sid, "851ba2");
    assert_eq!(j.initiator.as_deref(), Some("romeo@montague.example/dr4hcr0st3lup4c"));
    let c = j.content(Creator::Initiator, "a-file-offer").expect("content");
    assert_eq!(c.senders, Senders::Initiator);
    let d = Description::try_from(c.description.as_ref().unwrap()).unwrap();
    assert_eq!(d.version, FtVersion::V5);
    assert_eq!(d.file.name.as_deref(), Some("test.txt"));
    assert_eq!(d.file.size, Some(6144));
    assert_eq!(d.file.media_type.as_deref(), Some("text/plain"));
    assert_eq!(d.file.date.as_deref(), Some("1969-07-21T02:56:15Z"));
    assert_eq!(d.file.range, Some(Range::default()));
    assert_eq!(d.file.hashes.len(), 1);
    assert_eq!(d.file.hashes[0].algo, "sha-1");
    assert_eq!(d.file.sha256(), None, "only a SHA-1");
    let t = s5b::Transport::try_from(c.transport.as_ref().unwrap()).unwrap();
    assert_eq!(t.sid, "vj3hs98y");
    assert_eq!(t.candidates.len(), 2);
    assert_eq!(t.candidates[1].port, 5087);
    assert_eq!(t.candidates[1].priority, 8258636);
    round_trip(&j);
    round_trip(&d);
    round_trip(&t);
}

#[test]
fn xep_0260_candidates_signals_and_dst_addr() {
    let t = s5b::Transport::try_from(&el("<transport xmlns='urn:xmpp:jingle:transports:s5b:1' \
        dstaddr='972b7bf47291ca609517f67f86b5081086052dad' mode='tcp' sid='vj3hs98y'>\
        <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.lit/orchard' port='5086' priority='8257636' type='direct'/>\
        <candidate cid='xmdh4b7i' host='123.456.7.8' jid='streamer.shakespeare.lit' port='7625' priority='7878787' type='proxy'/>\
        </transport>"))
    .unwrap();
    assert_eq!(t.candidates[1].kind, CandidateType::Proxy);
    // The example's dstaddr is the initiator's: SHA-1(sid + initiator + responder).
    let dst = s5b::dst_addr("vj3hs98y", Creator::Initiator, "romeo@montague.lit/orchard", "juliet@capulet.lit/balcony");
    assert_eq!(t.dstaddr.as_deref(), Some(dst.as_str()));
    let theirs =
        s5b::dst_addr("vj3hs98y", Creator::Responder, "romeo@montague.lit/orchard", "juliet@capulet.lit/balcony");
    assert_eq!(
        theirs,
        crate::bytestreams::dst_addr("vj3hs98y", "juliet@capulet.lit/balcony", "romeo@montague.lit/orchard")
    );
    round_trip(&t);
    // The suggested priorities.
    assert_eq!(s5b::priority(CandidateType::Direct, 0), 126 << 16);
    assert!(s5b::priority(CandidateType::Proxy, 65535) < s5b::priority(CandidateType::Tunnel, 0));
    for (xml, signal) in [
        ("<candidate-used cid='hr65dqyd'/>", Signal::CandidateUsed("hr65dqyd".into())),
        ("<candidate-error/>", Signal::CandidateError),
        ("<activated cid='hr65dqyd'/>", Signal::Activated("hr65dqyd".into())),
        ("<proxy-error/>", Signal::ProxyError),
    ] {
        let t = s5b::Transport::try_from(&el(&format!(
            "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'>{xml}</transport>"
        )))
        .unwrap();
        assert_eq!(t.signal, Some(signal));
        round_trip(&t);
    }
}

#[test]
fn nomination_follows_priorities_and_the_initiator_on_ties() {
    let used = |cid: &str, p: u32| Some((cid.to_owned(), p));
    assert_eq!(s5b::nominate(&None, &None), None);
    assert_eq!(s5b::nominate(&used("r1", 5), &None), Some((Creator::Responder, "r1".into())));
    assert_eq!(s5b::nominate(&None, &used("i1", 5)), Some((Creator::Initiator, "i1".into())));
    assert_eq!(s5b::nominate(&used("r1", 5), &used("i1", 9)), Some((Creator::Initiator, "i1".into())));
    assert_eq!(s5b::nominate(&used("r1", 9), &used("i1", 5)), Some((Creator::Responder, "r1".into())));
    assert_eq!(
        s5b::nominate(&used("r1", 7), &used("i1", 7)),
        Some((Creator::Responder, "r1".into())),
        "the initiator's choice"
    );
}

#[test]
fn xep_0261_transport() {
    let t = ibb::Transport::try_from(&el(
        "<transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='ch3d9s71'/>",
    ))
    .unwrap();
    assert_eq!((t.block_size, t.sid.as_str(), t.stanza_iq), (4096, "ch3d9s71", true));
    round_trip(&t);
    for bad in [
        "block-size='0' sid='x'",
        "block-size='65536' sid='x'",
        "sid='x'",
        "block-size='10'",
        "block-size='10' sid='x' stanza='presence'",
    ] {
        let e = el(&format!("<transport xmlns='urn:xmpp:jingle:transports:ibb:1' {bad}/>"));
        assert!(ibb::Transport::try_from(&e).is_err(), "{bad}");
    }
}

#[test]
fn checksum_received_and_reasons() {
    let c = Checksum::try_from(&el("<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='a-file-offer'>\
        <file><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file></checksum>"))
    .unwrap();
    assert_eq!(c.file.sha256().as_deref(), Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    assert_eq!(c.content, Some((Creator::Initiator, "a-file-offer".to_owned())));
    round_trip(&c);
    // As Gajim sends it: no creator or name (its sessions hold one file).
    let g = Checksum::try_from(&el("<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5'>\
        <file><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file></checksum>"))
    .unwrap();
    assert_eq!((g.content.is_none(), g.file.sha256().is_some()), (true, true));
    round_trip(&g);
    // One of the two is not enough.
    assert!(Checksum::try_from(&el(
        "<checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' name='x'><file/></checksum>"
    ))
    .is_err());
    let r = Received::try_from(&el(
        "<received xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='a-file-offer'/>",
    ))
    .unwrap();
    assert_eq!((r.creator, r.name.as_str()), (Creator::Initiator, "a-file-offer"));
    round_trip(&r);
    assert!(Received::try_from(&el(
        "<received xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='nobody' name='x'/>"
    ))
    .is_err());
    let j = jingle_of("<iq xmlns='jabber:client' type='set'><jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='a73'>\
        <reason><cancel /><text>bye</text><file-too-large xmlns='urn:xmpp:jingle:apps:file-transfer:5'/></reason></jingle></iq>");
    let reason = j.reason.clone().unwrap();
    assert_eq!(reason.condition, ReasonCondition::Cancel);
    assert_eq!(reason.text.as_deref(), Some("bye"));
    assert_eq!(reason.app, Some(ft::file_too_large(FtVersion::V5)));
    round_trip(&j);
    assert!(Reason::try_from(&el("<reason xmlns='urn:xmpp:jingle:1'><text>no condition</text></reason>")).is_err());
}

#[test]
fn older_namespaces_are_read_and_written_alike() {
    // :3 wraps the file in <offer/>; hashes:1 in hex (as some clients wrote it) or base64.
    let v3 = el("<description xmlns='urn:xmpp:jingle:apps:file-transfer:3'><offer><file><name>a.txt</name><size>3</size>\
        <hash xmlns='urn:xmpp:hashes:1' algo='sha-256'>e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855</hash>\
        </file></offer></description>");
    let d = Description::try_from(&v3).unwrap();
    assert_eq!(d.version, FtVersion::V3);
    assert_eq!(d.file.sha256().as_deref(), Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    let written = round_trip(&d);
    assert!(written.child("offer", ns::JINGLE_FT3).is_some());
    let v4 = el("<description xmlns='urn:xmpp:jingle:apps:file-transfer:4'><file><name>a.txt</name>\
        <hash xmlns='urn:xmpp:hashes:1' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file></description>");
    let d4 = Description::try_from(&v4).unwrap();
    assert_eq!(d4.file.sha256(), d.file.sha256());
    round_trip(&d4);
    // A hash of the wrong length for its algorithm is no hash.
    let short = el("<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>\
        <hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>AAAA</hash></file></description>");
    assert!(Description::try_from(&short).unwrap().file.hashes.is_empty());
    // Ranges with offset and length.
    let f = File {
        name: Some("x".into()),
        size: Some(10),
        range: Some(Range { offset: 4, length: Some(3) }),
        ..File::default()
    };
    round_trip(&Description { version: FtVersion::V5, file: f });
}

#[test]
fn hostile_jingle_is_refused() {
    let wrap =
        |inner: &str| format!("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s'>{inner}</jingle>");
    let content = |name: &str, creator: &str| format!("<content creator='{creator}' name='{name}'/>");
    let many: String = (0..=MAX_CONTENTS).map(|i| content(&format!("c{i}"), "initiator")).collect();
    let long = "x".repeat(MAX_ID + 1);
    for (what, xml) in [
        ("duplicate content names", wrap(&format!("{}{}", content("a", "initiator"), content("a", "initiator")))),
        ("bad creator", wrap(&content("a", "someone"))),
        ("no creator", wrap("<content name='a'/>")),
        ("too many contents", wrap(&many)),
        ("unknown action", "<jingle xmlns='urn:xmpp:jingle:1' action='session-explode' sid='s'/>".to_owned()),
        ("no sid", "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate'/>".to_owned()),
        ("long sid", format!("<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='{long}'/>")),
        ("two reasons", "<jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='s'><reason><busy/></reason><reason><gone/></reason></jingle>".to_owned()),
        ("bad senders", wrap("<content creator='initiator' name='a' senders='everyone'/>")),
        ("two transports", wrap("<content creator='initiator' name='a'><transport xmlns='urn:xmpp:jingle:transports:ibb:1'/><transport xmlns='urn:xmpp:jingle:transports:ibb:1'/></content>")),
    ] {
        assert!(Jingle::try_from(&el(&xml)).is_err(), "{what}");
    }
    // Same name, other creator: two contents.
    let ok =
        Jingle::try_from(&el(&wrap(&format!("{}{}", content("a", "initiator"), content("a", "responder"))))).unwrap();
    assert_eq!(ok.contents.len(), 2);
    let s5b =
        |inner: &str| el(&format!("<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t'>{inner}</transport>"));
    let cand = |cid: &str| format!("<candidate cid='{cid}' host='127.0.0.1' jid='a@b/c' port='1' priority='1'/>");
    let many: String = (0..=s5b::MAX_CANDIDATES).map(|i| cand(&format!("c{i}"))).collect();
    for (what, t) in [
        ("too many candidates", s5b(&many)),
        ("duplicate cid", s5b(&format!("{}{}", cand("a"), cand("a")))),
        ("two signals", s5b("<candidate-error/><proxy-error/>")),
        ("candidates with a signal", s5b(&format!("{}<candidate-error/>", cand("a")))),
        ("bad port", s5b("<candidate cid='a' host='h' jid='j' port='70000' priority='1'/>")),
        ("bad type", s5b("<candidate cid='a' host='h' jid='j' port='1' priority='1' type='magic'/>")),
        ("udp", el("<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t' mode='udp'/>")),
    ] {
        assert!(s5b::Transport::try_from(&t).is_err(), "{what}");
    }
    let too_many_hashes: String =
        (0..=ft::MAX_HASHES).map(|_| "<hash xmlns='urn:xmpp:hashes:2' algo='x'>AA==</hash>").collect();
    let d = el(&format!(
        "<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file>{too_many_hashes}</file></description>"
    ));
    assert!(Description::try_from(&d).is_err());
    let bad_size =
        el("<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><size>-1</size></file></description>");
    assert!(Description::try_from(&bad_size).is_err());
    let two_files = el("<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file/><file/></description>");
    assert!(Description::try_from(&two_files).is_err());
}

#[test]
fn errors_and_tie_breaks() {
    for e in [JingleError::OutOfOrder, JingleError::TieBreak, JingleError::UnknownSession, JingleError::UnsupportedInfo]
    {
        let stanza = e.stanza_error("why");
        let parsed = crate::stanza::StanzaError::try_from(&Element::from(&stanza)).unwrap();
        assert_eq!(JingleError::of(&parsed), Some(e));
    }
    assert_eq!(JingleError::UnknownSession.stanza_error("").condition, Condition::ItemNotFound);
    assert_eq!(JingleError::TieBreak.stanza_error("").condition, Condition::Conflict);
    assert!(initiate_wins("a1", "b0", "z@x/y", "a@x/y"));
    assert!(!initiate_wins("b0", "a1", "a@x/y", "z@x/y"));
    assert!(initiate_wins("same", "same", "a@x/y", "b@x/y"));
    assert!(!initiate_wins("same", "same", "b@x/y", "a@x/y"));
}

#[test]
fn candidates_round_trip() {
    let c = Candidate {
        cid: "c1".into(),
        host: "::1".into(),
        jid: "proxy.localhost".into(),
        port: 7777,
        priority: s5b::priority(CandidateType::Proxy, 3),
        kind: CandidateType::Proxy,
    };
    round_trip(&c);
}
