use super::*;
use crate::ibb::Data;

const T0: Duration = Duration::ZERO;

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

fn me() -> Jid {
    jid("bob@example.com/skiff")
}

fn peer() -> Jid {
    jid("alice@example.com/psi")
}

fn el(s: &str) -> Element {
    s.parse().unwrap()
}

/// An offer IQ from the peer, as it arrives.
fn offer_iq(file_attrs: &str, file_children: &str, methods: &[&str]) -> Iq {
    let options: String = methods.iter().map(|m| format!("<option><value>{m}</value></option>")).collect();
    let xml = format!(
        "<iq xmlns='jabber:client' type='set' id='o1' from='alice@example.com/psi' to='bob@example.com/skiff'>\
         <si xmlns='http://jabber.org/protocol/si' id='s1' profile='http://jabber.org/protocol/si/profile/file-transfer'>\
         <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a.bin' {file_attrs}>{file_children}</file>\
         <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
         <field var='stream-method' type='list-single'>{options}</field></x></feature></si></iq>"
    );
    Iq::try_from(el(&xml)).unwrap()
}

fn offer(size: u64) -> Iq {
    offer_iq(&format!("size='{size}'"), "<range/>", &[ns::BYTESTREAMS, ns::IBB])
}

fn receiver(cfg: ReceiverConfig, size: u64) -> Receiver {
    Receiver::from_offer(cfg, me(), offer(size), T0).unwrap()
}

/// A request from the peer with this payload.
fn req(id: &str, payload: &str) -> ReceiverInput {
    let xml = format!(
        "<iq xmlns='jabber:client' type='set' id='{id}' from='alice@example.com/psi' to='bob@example.com/skiff'>{payload}</iq>"
    );
    ReceiverInput::Iq(Iq::try_from(el(&xml)).unwrap())
}

fn data(seq: u16, bytes: &[u8]) -> ReceiverInput {
    let d = Data { sid: "s1".into(), seq, data: bytes.to_vec() };
    req(&format!("d{seq}"), &Element::from(&d).to_xml())
}

const OPEN_4096: &str = "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s1' stanza='iq'/>";
const CLOSE: &str = "<close xmlns='http://jabber.org/protocol/ibb' sid='s1'/>";

/// The IQs among the actions, as XML.
fn sent(out: &[ReceiverAction]) -> Vec<String> {
    out.iter()
        .filter_map(|a| match a {
            ReceiverAction::SendIq(iq) => Some(Element::from(iq.clone()).to_xml()),
            _ => None,
        })
        .collect()
}

fn one_sent(out: &[ReceiverAction]) -> String {
    let s = sent(out);
    assert_eq!(s.len(), 1, "{out:?}");
    s[0].clone()
}

fn refusal(iq: Iq, cfg: ReceiverConfig) -> String {
    Element::from(Receiver::from_offer(cfg, me(), iq, T0).unwrap_err()).to_xml()
}

#[test]
fn offers_refused_at_once() {
    let cfg = ReceiverConfig::default();
    assert_eq!(
        refusal(offer_iq("size='x'", "", &[ns::IBB]), cfg.clone()),
        "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='error'><error type='modify'>\
         <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>&lt;file/&gt;: attribute 'size' has a bad value 'x'</text>\
         </error></iq>"
    );
    let mut other = offer(1);
    if let IqKind::Set(p) = &mut other.kind {
        p.set_attr("profile", "urn:other");
    }
    assert!(refusal(other, cfg.clone())
        .contains("unknown SI profile</text><bad-profile xmlns='http://jabber.org/protocol/si'/>"));
    assert!(refusal(offer_iq("size='1'", "", &["jabber:iq:oob"]), cfg.clone())
        .contains("no common stream method</text><no-valid-streams xmlns='http://jabber.org/protocol/si'/>"));
    let ibb_only = ReceiverConfig { methods: vec![Method::Ibb], ..cfg.clone() };
    assert!(refusal(offer_iq("size='1'", "", &[ns::BYTESTREAMS]), ibb_only).contains("no-valid-streams"));
    let mut get = offer(1);
    get.kind = IqKind::Get(get.request_payload().unwrap().clone());
    assert!(refusal(get, cfg.clone()).contains("an SI offer is an IQ set from a full JID"));
}

#[test]
fn offer_parsed_and_method_picked() {
    let r = receiver(ReceiverConfig::default(), 1022);
    assert_eq!(r.offer().file.size, 1022);
    assert_eq!(r.peer(), &peer());
    assert_eq!(r.method(), Method::S5b);
    assert_eq!(r.state(), ReceiverState::Deciding);
    assert_eq!(r.poll_timeout(), Some(Duration::from_secs(300)));
    // Our preference order decides, not the offer's.
    let ibb_first = ReceiverConfig { methods: vec![Method::Ibb, Method::S5b], ..ReceiverConfig::default() };
    assert_eq!(receiver(ibb_first, 1).method(), Method::Ibb);
    let r = Receiver::from_offer(
        ReceiverConfig::default(),
        me(),
        offer_iq("size='1'", "", &[ns::IBB, ns::BYTESTREAMS]),
        T0,
    )
    .unwrap();
    assert_eq!(r.method(), Method::S5b);
}

#[test]
fn accept_names_one_method_and_a_range_only_when_resuming() {
    let mut r = receiver(ReceiverConfig::default(), 100);
    assert_eq!(
        one_sent(&r.handle(ReceiverInput::Accept { offset: 0 }, T0)),
        "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='result'>\
         <si xmlns='http://jabber.org/protocol/si'><feature xmlns='http://jabber.org/protocol/feature-neg'>\
         <x xmlns='jabber:x:data' type='submit'><field var='stream-method'>\
         <value>http://jabber.org/protocol/bytestreams</value></field></x></feature></si></iq>"
    );
    assert_eq!(r.state(), ReceiverState::Waiting);
    assert_eq!(r.poll_timeout(), Some(Duration::from_secs(60)));
    let mut r = receiver(ReceiverConfig::default(), 100);
    let accept = one_sent(&r.handle(ReceiverInput::Accept { offset: 40 }, T0));
    assert!(accept
        .contains("<file xmlns='http://jabber.org/protocol/si/profile/file-transfer'><range offset='40'/></file>"));
    assert_eq!((r.offset(), r.written()), (40, 40));
    // No <range/> in the offer: no resume.
    let mut r =
        Receiver::from_offer(ReceiverConfig::default(), me(), offer_iq("size='100'", "", &[ns::IBB]), T0).unwrap();
    let accept = one_sent(&r.handle(ReceiverInput::Accept { offset: 40 }, T0));
    assert!(!accept.contains("range"));
    assert_eq!(r.offset(), 0);
    // An offset past the end is not a resume either.
    let mut r = receiver(ReceiverConfig::default(), 100);
    r.handle(ReceiverInput::Accept { offset: 101 }, T0);
    assert_eq!(r.offset(), 0);
}

#[test]
fn reject_cancel_and_decision_timeout_decline() {
    let declined = "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='error'><error type='auth'>\
        <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
        <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Offer declined</text></error></iq>";
    for (input, at) in
        [(ReceiverInput::Reject, T0), (ReceiverInput::Cancel, T0), (ReceiverInput::Tick, Duration::from_secs(300))]
    {
        let mut r = receiver(ReceiverConfig::default(), 1);
        let out = r.handle(input, at);
        assert_eq!(one_sent(&out), declined);
        assert_eq!(out.last(), Some(&ReceiverAction::Rejected));
        assert_eq!(r.state(), ReceiverState::Rejected);
        assert!(r.handle(ReceiverInput::Accept { offset: 0 }, at).is_empty());
    }
    let mut r = receiver(ReceiverConfig::default(), 1);
    assert!(r.handle(ReceiverInput::Tick, Duration::from_secs(299)).is_empty());
}

fn accepted(cfg: ReceiverConfig, size: u64) -> Receiver {
    let mut r = receiver(cfg, size);
    r.handle(ReceiverInput::Accept { offset: 0 }, T0);
    r
}

const STREAMHOSTS: &str = "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1' mode='tcp'>\
    <streamhost jid='alice@example.com/psi' host='192.168.1.101' port='1346'/>\
    <streamhost jid='proxy.example.com' host='10.0.0.1' port='7777'/></query>";

fn hosts() -> Vec<StreamHost> {
    vec![
        StreamHost { jid: "alice@example.com/psi".into(), host: "192.168.1.101".into(), port: 1346 },
        StreamHost { jid: "proxy.example.com".into(), host: "10.0.0.1".into(), port: 7777 },
    ]
}

#[test]
fn an_announced_checksum_is_awaited_after_the_data() {
    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let streaming = |file_extra: &str| {
        let offer = offer_iq("size='100'", &format!("<range/>{file_extra}"), &[ns::BYTESTREAMS, ns::IBB]);
        let mut r = Receiver::from_offer(ReceiverConfig::default(), me(), offer, T0).unwrap();
        r.handle(ReceiverInput::Accept { offset: 0 }, T0);
        r.handle(req("q1", STREAMHOSTS), T0);
        r.handle(ReceiverInput::CandidateConnected { jid: "alice@example.com/psi".into() }, T0);
        r
    };
    let follows = "<checksum-follows xmlns='urn:x-skiff:si-checksum:0' algo='sha-256'/>";
    let checksum = |sid: &str| {
        format!(
            "<checksum xmlns='urn:x-skiff:si-checksum:0' sid='{sid}'><hash xmlns='urn:xmpp:hashes:2' \
             algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></checksum>"
        )
    };
    let mut r = streaming(follows);
    // Every byte is in: the file stays unnamed until the checksum arrives.
    assert!(r.handle(ReceiverInput::SocketDone, T0).is_empty());
    assert_eq!(r.poll_timeout(), Some(CHECKSUM_WAIT));
    assert!(!r.is_finished());
    // One for another stream is not this one's.
    assert!(one_sent(&r.handle(req("c0", &checksum("other")), T0)).contains("item-not-found"));
    let out = r.handle(req("c1", &checksum("s1")), T0);
    let [ReceiverAction::Done { route: Route::S5bDirect, sha256: Some(sha), checksum: Some(iq) }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!((sha.as_str(), iq.id.as_str()), (SHA, "c1"));
    assert_eq!(checksum_matches(iq), iq.result_for(None));
    let differs = checksum_differs(iq);
    assert!(matches!(&differs.kind, IqKind::Error(e) if e.condition == Condition::NotAcceptable), "{differs:?}");
    // It comes before the driver reports the last bytes (SOCKS5): held, then used.
    let mut r = streaming(follows);
    assert!(r.handle(req("c3", &checksum("s1")), T0).is_empty());
    let out = r.handle(ReceiverInput::SocketDone, T0);
    assert!(
        matches!(&out[..], [ReceiverAction::Done { sha256: Some(_), checksum: Some(iq), .. }] if iq.id == "c3"),
        "{out:?}"
    );
    // It never comes: done after the wait, not verified.
    let mut r = streaming(follows);
    r.handle(ReceiverInput::SocketDone, T0);
    let out = r.handle(ReceiverInput::Tick, CHECKSUM_WAIT);
    assert_eq!(out, [ReceiverAction::Done { route: Route::S5bDirect, sha256: None, checksum: None }]);
    // The SHA-256 in the offer itself: nothing to wait for.
    let hash = "<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash>";
    let mut r = streaming(hash);
    let out = r.handle(ReceiverInput::SocketDone, T0);
    assert_eq!(out, [ReceiverAction::Done { route: Route::S5bDirect, sha256: Some(SHA.into()), checksum: None }]);
    // A checksum nobody announced is refused.
    let mut r = streaming("");
    r.handle(ReceiverInput::SocketDone, T0);
    assert!(one_sent(&r.handle(req("c2", &checksum("s1")), T0)).contains("item-not-found"));
}

#[test]
fn streamhosts_tried_then_used() {
    for (jid, route) in [("alice@example.com/psi", Route::S5bDirect), ("proxy.example.com", Route::S5bProxy)] {
        let mut r = accepted(ReceiverConfig::default(), 100);
        let out = r.handle(req("q1", STREAMHOSTS), T0);
        let dst = dst_addr("s1", "alice@example.com/psi", "bob@example.com/skiff");
        assert_eq!(out, [ReceiverAction::ConnectCandidates { hosts: hosts(), dst_addr: dst }]);
        assert_eq!(r.state(), ReceiverState::Connecting);
        assert_eq!(r.poll_timeout(), None, "the driver times the candidates");
        let out = r.handle(ReceiverInput::CandidateConnected { jid: jid.into() }, T0);
        assert_eq!(
            one_sent(&out),
            format!(
                "<iq xmlns='jabber:client' id='q1' to='alice@example.com/psi' type='result'>\
                 <query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><streamhost-used jid='{jid}'/></query></iq>"
            )
        );
        assert_eq!(
            out[1..],
            [
                ReceiverAction::Started { route, streamhost: Some(jid.into()), offset: 0 },
                ReceiverAction::ReadSocket { expected: 100 },
            ]
        );
        assert_eq!(
            r.handle(ReceiverInput::SocketDone, T0),
            [ReceiverAction::Done { route, sha256: None, checksum: None }]
        );
        assert_eq!(r.written(), 100);
    }
}

#[test]
fn streamhost_lists_are_capped_deduplicated_and_taken_once() {
    let mut r = accepted(ReceiverConfig::default(), 100);
    let mut list = String::from("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>");
    for i in 0..200 {
        // Every address twice (once in capitals), 100 distinct ones.
        let host = if i % 2 == 0 { format!("h{}.example", i / 2) } else { format!("H{}.EXAMPLE", i / 2) };
        list.push_str(&format!("<streamhost jid='alice@example.com/psi' host='{host}' port='1000'/>"));
    }
    list.push_str("</query>");
    let out = r.handle(req("q1", &list), T0);
    let [ReceiverAction::ConnectCandidates { hosts, .. }] = &out[..] else { panic!("{out:?}") };
    let names: Vec<&str> = hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(names, (0..MAX_STREAMHOSTS).map(|i| format!("h{i}.example")).collect::<Vec<_>>());
    // None worked: the sender hears so, and may fall back to in-band...
    let out = r.handle(ReceiverInput::CandidatesFailed("none".into()), T0);
    assert!(one_sent(&out).contains("item-not-found"), "{out:?}");
    // ...or try again with a new list (its proxy moved): taken once...
    let out = r.handle(req("q2", STREAMHOSTS), T0);
    assert!(matches!(&out[..], [ReceiverAction::ConnectCandidates { .. }]), "{out:?}");
    let out = r.handle(ReceiverInput::CandidatesFailed("none".into()), T0);
    assert!(one_sent(&out).contains("item-not-found"), "{out:?}");
    // ...but a third list for the same stream is refused without a connection.
    let out = r.handle(req("q3", STREAMHOSTS), T0);
    let reply = one_sent(&out);
    assert!(reply.contains("id='q3'") && reply.contains("not-acceptable"), "{reply}");
    assert!(reply.contains("already offered"), "{reply}");
    assert_eq!(r.state(), ReceiverState::Waiting);
}

#[test]
fn a_second_streamhost_list_is_refused_unless_the_first_failed() {
    let mut r = accepted(ReceiverConfig::default(), 100);
    let out = r.handle(req("q1", STREAMHOSTS), T0);
    assert!(matches!(&out[..], [ReceiverAction::ConnectCandidates { .. }]), "{out:?}");
    // One while the first is being tried waits for its outcome...
    assert!(r.handle(req("q2", STREAMHOSTS), T0).is_empty());
    // ...which worked: the second is refused then, and so is a later one.
    let out = r.handle(ReceiverInput::CandidateConnected { jid: "alice@example.com/psi".into() }, T0);
    let replies = sent(&out);
    assert!(replies.iter().any(|s| s.contains("id='q2'") && s.contains("type='error'")), "{replies:?}");
    let reply = one_sent(&r.handle(req("q3", STREAMHOSTS), T0));
    assert!(reply.contains("id='q3'") && reply.contains("type='error'"), "{reply}");
    assert!(!out
        .iter()
        .chain(r.handle(req("q4", STREAMHOSTS), T0).iter())
        .any(|a| { matches!(a, ReceiverAction::ConnectCandidates { .. }) }));
}

#[test]
fn socket_endings() {
    let streaming = || {
        let mut r = accepted(ReceiverConfig::default(), 100);
        r.handle(req("q1", STREAMHOSTS), T0);
        r.handle(ReceiverInput::CandidateConnected { jid: "proxy.example.com".into() }, T0);
        r
    };
    let mut r = streaming();
    assert_eq!(
        r.handle(ReceiverInput::SocketFailed("the sender closed the stream after 50 of 100 bytes".into()), T0),
        [ReceiverAction::Failed {
            reason: FailReason::Network,
            error: "the sender closed the stream after 50 of 100 bytes".into(),
            resumable: true
        }]
    );
    let mut r = streaming();
    assert_eq!(
        r.handle(ReceiverInput::SocketOverrun, T0),
        [ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender sent more than the 100 bytes it announced".into(),
            resumable: false
        }]
    );
    let mut r = streaming();
    assert_eq!(
        r.handle(ReceiverInput::WriteFailed("disk full".into()), T0),
        [ReceiverAction::Failed {
            reason: FailReason::Storage,
            error: "cannot store the data: disk full".into(),
            resumable: false
        }]
    );
    // A second bytestream request while streaming.
    let mut r = streaming();
    assert!(one_sent(&r.handle(req("q2", STREAMHOSTS), T0)).contains("unexpected-request"));
}

#[test]
fn candidates_fail_then_in_band() {
    let mut r = accepted(ReceiverConfig::default(), 3);
    r.handle(req("q1", STREAMHOSTS), Duration::from_secs(10));
    // The open arrives while connecting: it waits its turn.
    assert!(r.handle(req("o2", OPEN_4096), Duration::from_secs(11)).is_empty());
    let out = r.handle(ReceiverInput::CandidatesFailed("refused; refused".into()), Duration::from_secs(12));
    assert_eq!(
        sent(&out),
        [
            "<iq xmlns='jabber:client' id='q1' to='alice@example.com/psi' type='error'><error type='cancel'>\
             <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
             <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>could not connect to any streamhost</text>\
             </error></iq>",
            "<iq xmlns='jabber:client' id='o2' to='alice@example.com/psi' type='result'/>"
        ]
    );
    assert_eq!(out[2], ReceiverAction::Started { route: Route::Ibb, streamhost: None, offset: 0 });
    assert_eq!(r.state(), ReceiverState::Receiving(Route::Ibb));
    assert_eq!(r.poll_timeout(), Some(Duration::from_secs(72)));
}

#[test]
fn stream_timeout() {
    let mut r = accepted(ReceiverConfig::default(), 3);
    assert!(r.handle(ReceiverInput::Tick, Duration::from_secs(59)).is_empty());
    assert_eq!(
        r.handle(ReceiverInput::Tick, Duration::from_secs(60)),
        [ReceiverAction::Failed {
            reason: FailReason::Timeout,
            error: "the sender opened no stream within 60 seconds".into(),
            resumable: true
        }]
    );
}

#[test]
fn bad_opens() {
    let mut r = accepted(ReceiverConfig::default(), 3);
    let out = r.handle(
        req("o", "<open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='s1' stanza='message'/>"),
        T0,
    );
    assert!(one_sent(&out).contains(
        "<feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>only stanza='iq' is supported</text>"
    ));
    assert_eq!(
        out[1],
        ReceiverAction::Failed {
            reason: FailReason::Unsupported,
            error: "the sender wanted in-band data in messages, which Skiff does not take".into(),
            resumable: true
        }
    );
    let mut r = accepted(ReceiverConfig::default(), 3);
    let out = r.handle(req("o", "<open xmlns='http://jabber.org/protocol/ibb' block-size='0' sid='s1'/>"), T0);
    assert!(one_sent(&out).contains("bad-request"));
    assert_eq!(
        out[1],
        ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender's in-band open was malformed".into(),
            resumable: true
        }
    );
}

#[test]
fn too_large_blocks_are_refused_with_resource_constraint() {
    let mut r = accepted(ReceiverConfig { max_block_size: 8192, ..ReceiverConfig::default() }, 3);
    let out = r.handle(
        req("o1", "<open xmlns='http://jabber.org/protocol/ibb' block-size='65535' sid='s1' stanza='iq'/>"),
        T0,
    );
    assert_eq!(
        one_sent(&out),
        "<iq xmlns='jabber:client' id='o1' to='alice@example.com/psi' type='error'><error type='modify'>\
         <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>blocks of at most 8192 bytes</text>\
         </error></iq>"
    );
    assert_eq!(r.state(), ReceiverState::Waiting);
    let out = r
        .handle(req("o2", "<open xmlns='http://jabber.org/protocol/ibb' block-size='8192' sid='s1' stanza='iq'/>"), T0);
    assert_eq!(one_sent(&out), "<iq xmlns='jabber:client' id='o2' to='alice@example.com/psi' type='result'/>");
}

#[test]
fn methods_not_allowed_are_refused() {
    let mut r = accepted(ReceiverConfig { methods: vec![Method::S5b], ..ReceiverConfig::default() }, 3);
    assert!(one_sent(&r.handle(req("o", OPEN_4096), T0)).contains("in-band bytestreams are not allowed here"));
    let mut r = accepted(ReceiverConfig { methods: vec![Method::Ibb], ..ReceiverConfig::default() }, 3);
    assert!(one_sent(&r.handle(req("q", STREAMHOSTS), T0)).contains("SOCKS5 bytestreams are not allowed here"));
    assert_eq!(r.state(), ReceiverState::Waiting);
}

fn ibb(size: u64) -> Receiver {
    let mut r = accepted(ReceiverConfig::default(), size);
    r.handle(req("open", OPEN_4096), T0);
    r
}

#[test]
fn blocks_are_acked_after_they_are_written() {
    let mut r = ibb(5);
    assert_eq!(r.handle(data(0, b"abc"), T0), [ReceiverAction::Write(b"abc".to_vec())]);
    assert_eq!(r.poll_timeout(), None, "no idle timeout while writing");
    // The next block waits for the write.
    assert!(r.handle(data(1, b"de"), T0).is_empty());
    let out = r.handle(ReceiverInput::Written, Duration::from_secs(1));
    assert_eq!(
        out,
        [
            ReceiverAction::SendIq(
                Iq::try_from(el("<iq xmlns='jabber:client' id='d0' to='alice@example.com/psi' type='result'/>"))
                    .unwrap()
            ),
            ReceiverAction::Progress { bytes: 3 },
            ReceiverAction::Write(b"de".to_vec()),
        ]
    );
    let out = r.handle(ReceiverInput::Written, Duration::from_secs(2));
    assert_eq!(out[1], ReceiverAction::Progress { bytes: 5 });
    assert_eq!(r.poll_timeout(), Some(Duration::from_secs(62)));
    let out = r.handle(req("c", CLOSE), Duration::from_secs(3));
    assert_eq!(one_sent(&out), "<iq xmlns='jabber:client' id='c' to='alice@example.com/psi' type='result'/>");
    assert_eq!(out[1], ReceiverAction::Done { route: Route::Ibb, sha256: None, checksum: None });
    // Later requests: no such stream.
    assert!(one_sent(&r.handle(data(2, b"x"), T0)).contains("item-not-found"));
}

#[test]
fn reused_seq_is_refused_and_the_stream_goes_on() {
    let mut r = ibb(2);
    r.handle(data(0, b"a"), T0);
    r.handle(ReceiverInput::Written, T0);
    let out = r.handle(data(0, b"a"), T0);
    assert!(one_sent(&out).contains(
        "<unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
         <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>in-band block 0 received twice</text>"
    ));
    assert_eq!(out.len(), 1);
    assert_eq!(r.handle(data(1, b"b"), T0), [ReceiverAction::Write(b"b".to_vec())]);
}

#[test]
fn out_of_order_fails() {
    let mut r = ibb(2);
    let out = r.handle(data(1, b"a"), T0);
    assert!(one_sent(&out).contains("unexpected-request"));
    assert_eq!(
        out[1],
        ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "in-band block out of order: expected sequence number 0, got 1 (peers that do not wrap \
                    sequence numbers after block 65535 fail here; larger blocks avoid it)"
                .into(),
            resumable: true
        }
    );
}

#[test]
fn oversize_block_fails() {
    let mut r = accepted(ReceiverConfig::default(), 10_000);
    r.handle(req("open", "<open xmlns='http://jabber.org/protocol/ibb' block-size='4' sid='s1'/>"), T0);
    let out = r.handle(data(0, b"abcde"), T0);
    assert!(one_sent(&out).contains("block larger than the agreed block-size"));
    assert_eq!(
        out[1],
        ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender sent a 5-byte block over the agreed 4".into(),
            resumable: true
        }
    );
}

#[test]
fn more_bytes_than_announced_fails_for_good() {
    let mut r = ibb(4);
    r.handle(data(0, b"abc"), T0);
    r.handle(ReceiverInput::Written, T0);
    let out = r.handle(data(1, b"de"), T0);
    assert!(one_sent(&out).contains("not-acceptable"));
    assert_eq!(
        out[1],
        ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "cannot store the data: the sender sent more than the 4 bytes it announced (2 more after 3)".into(),
            resumable: false
        }
    );
}

#[test]
fn close_before_the_end_fails_resumable() {
    let mut r = ibb(4);
    r.handle(data(0, b"abc"), T0);
    r.handle(ReceiverInput::Written, T0);
    let out = r.handle(req("c", CLOSE), T0);
    assert!(one_sent(&out).contains("type='result'"));
    assert_eq!(
        out[1],
        ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender announced 4 bytes but sent 3".into(),
            resumable: true
        }
    );
}

#[test]
fn idle_timeout() {
    let mut r = ibb(4);
    r.handle(data(0, b"a"), Duration::from_secs(5));
    r.handle(ReceiverInput::Written, Duration::from_secs(6));
    assert!(r.handle(ReceiverInput::Tick, Duration::from_secs(65)).is_empty());
    assert_eq!(
        r.handle(ReceiverInput::Tick, Duration::from_secs(66)),
        [ReceiverAction::Failed {
            reason: FailReason::Timeout,
            error: "no in-band data for 60 seconds".into(),
            resumable: true
        }]
    );
}

#[test]
fn write_failure_refuses_the_block() {
    let mut r = ibb(4);
    r.handle(data(0, b"a"), T0);
    r.handle(data(1, b"b"), T0);
    let out = r.handle(ReceiverInput::WriteFailed("disk full".into()), T0);
    let sent = sent(&out);
    assert!(sent[0].contains("id='d0'") && sent[0].contains("not-acceptable") && sent[0].contains("disk full"));
    // The held block gets "no such stream".
    assert!(sent[1].contains("id='d1'") && sent[1].contains("item-not-found"));
    assert_eq!(
        out.last(),
        Some(&ReceiverAction::Failed {
            reason: FailReason::Storage,
            error: "cannot store the data: disk full".into(),
            resumable: false
        })
    );
    // A full disk keeps what was written for a resume, and the sender hears why.
    let mut r = ibb(4);
    r.handle(data(0, b"a"), T0);
    let out = r.handle(ReceiverInput::OutOfSpace("the disk holding /d is full".into()), T0);
    assert!(one_sent(&out).contains("resource-constraint"), "{out:?}");
    assert_eq!(
        out.last(),
        Some(&ReceiverAction::Failed {
            reason: FailReason::Storage,
            error: "the disk holding /d is full".into(),
            resumable: true
        })
    );
}

#[test]
fn cancel_answers_what_waits() {
    let mut r = accepted(ReceiverConfig::default(), 4);
    r.handle(req("q1", STREAMHOSTS), T0);
    let out = r.handle(ReceiverInput::Cancel, T0);
    assert!(one_sent(&out).contains("not-acceptable"), "bytestreams say not-acceptable");
    assert_eq!(
        out[1],
        ReceiverAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }
    );
    assert!(r.handle(ReceiverInput::CandidateConnected { jid: "proxy.example.com".into() }, T0).is_empty());
}

#[test]
fn strangers_and_other_streams() {
    let mut r = ibb(4);
    let stranger = Iq::try_from(el("<iq xmlns='jabber:client' type='set' id='x' from='mallory@example.com/m'>\
         <data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='s1'>YQ==</data></iq>"))
    .unwrap();
    assert!(one_sent(&r.handle(ReceiverInput::Iq(stranger), T0)).contains("item-not-found"));
    let other = Data { sid: "s2".into(), seq: 0, data: b"a".to_vec() };
    assert!(one_sent(&r.handle(req("y", &Element::from(&other).to_xml()), T0)).contains("item-not-found"));
    // Answers are not requests: ignored.
    let answer =
        Iq::try_from(el("<iq xmlns='jabber:client' type='result' id='z' from='alice@example.com/psi'/>")).unwrap();
    assert!(r.handle(ReceiverInput::Iq(answer), T0).is_empty());
    // Nothing of it touched the stream.
    assert_eq!(r.handle(data(0, b"a"), T0), [ReceiverAction::Write(b"a".to_vec())]);
}

#[test]
fn requests_before_accept_or_out_of_place() {
    let mut r = receiver(ReceiverConfig::default(), 4);
    assert!(one_sent(&r.handle(req("o", OPEN_4096), T0)).contains("item-not-found"));
    let mut r = accepted(ReceiverConfig::default(), 4);
    assert!(one_sent(&r.handle(data(0, b"a"), T0)).contains("unexpected-request"));
    assert!(one_sent(&r.handle(req("c", CLOSE), T0)).contains("unexpected-request"));
    let mut r = ibb(4);
    assert!(one_sent(&r.handle(req("o", OPEN_4096), T0)).contains("the stream is already open"));
    assert!(one_sent(&r.handle(req("q", STREAMHOSTS), T0)).contains("bad-request"));
}
