use super::*;
use crate::ns;
use crate::si::Range;

const SID: &str = "s1";

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

fn me() -> Jid {
    jid("alice@example.com/skiff")
}

fn peer() -> Jid {
    jid("bob@example.com/psi")
}

fn el(s: &str) -> Element {
    s.parse().unwrap()
}

fn file(size: u64) -> FileInfo {
    FileInfo { range: true, ..FileInfo::new("a.bin", size) }
}

fn sender(cfg: SenderConfig, size: u64) -> Sender {
    Sender::new(cfg, me(), peer(), SID.into(), file(size), Duration::ZERO)
}

fn sent(actions: &[SenderAction]) -> Vec<&Iq> {
    actions
        .iter()
        .filter_map(|a| match a {
            SenderAction::SendIq(iq) => Some(iq),
            _ => None,
        })
        .collect()
}

fn only_iq(actions: &[SenderAction]) -> Iq {
    let iqs = sent(actions);
    assert_eq!(iqs.len(), 1, "{actions:?}");
    iqs[0].clone()
}

fn result(req: &Iq, payload: Option<Element>) -> SenderInput {
    let mut r = req.result_for(payload);
    r.from = req.to.clone();
    r.to = Some(me());
    SenderInput::Iq(r)
}

fn error(req: &Iq, e: StanzaError) -> SenderInput {
    let mut r = req.error_for(e);
    r.from = req.to.clone();
    r.to = Some(me());
    SenderInput::Iq(r)
}

fn accept(method: &str, range: Option<Range>) -> Element {
    Element::from(&SiAccept { method: method.into(), range })
}

const T0: Duration = Duration::ZERO;

/// Started and accepted with `method`; returns the machine and the actions.
fn accepted(cfg: SenderConfig, size: u64, method: &str, range: Option<Range>) -> (Sender, Vec<SenderAction>) {
    let mut s = sender(cfg, size);
    let offer = only_iq(&s.handle(SenderInput::Start, T0));
    let out = s.handle(result(&offer, Some(accept(method, range))), T0);
    (s, out)
}

#[test]
fn offer_is_what_the_engine_sends() {
    let mut s = sender(SenderConfig::default(), 1022);
    let iq = only_iq(&s.handle(SenderInput::Start, T0));
    assert_eq!(iq.id, "s1-1");
    assert_eq!(iq.to, Some(peer()));
    let IqKind::Set(p) = &iq.kind else { panic!() };
    assert_eq!(
        p,
        &el("<si xmlns='http://jabber.org/protocol/si' id='s1' mime-type='application/octet-stream' \
             profile='http://jabber.org/protocol/si/profile/file-transfer'>\
             <file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a.bin' size='1022'><range/></file>\
             <feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'>\
             <field var='stream-method' type='list-single'>\
             <option><value>http://jabber.org/protocol/bytestreams</value></option>\
             <option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si>")
    );
    assert_eq!(s.state(), SenderState::Offered);
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(300)));
    // A second Start does nothing.
    assert!(s.handle(SenderInput::Start, T0).is_empty());
}

#[test]
fn accept_with_bytestreams_gathers_streamhosts() {
    let (s, out) = accepted(SenderConfig::default(), 10, ns::BYTESTREAMS, None);
    let dst = dst_addr(SID, "alice@example.com/skiff", "bob@example.com/psi");
    assert_eq!(out, [SenderAction::GatherStreamhosts { dst_addr: dst }]);
    assert_eq!(s.state(), SenderState::Negotiating);
    assert_eq!(s.poll_timeout(), None, "gathering is the driver's to time");
}

#[test]
fn range_is_honoured_and_checked() {
    let (s, out) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 40, length: None }));
    assert_eq!(out[0], SenderAction::Started { route: Route::Ibb, streamhost: None, offset: 40, length: 60 });
    assert_eq!(s.range(), (40, 60));
    let (s, _) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 40, length: Some(10) }));
    assert_eq!(s.range(), (40, 10));
    // A length past the end is cut to the end.
    let (s, _) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 90, length: Some(50) }));
    assert_eq!(s.range(), (90, 10));
    let (s, out) = accepted(SenderConfig::default(), 100, ns::IBB, Some(Range { offset: 101, length: None }));
    assert_eq!(
        out,
        [SenderAction::Failed {
            reason: FailReason::Protocol,
            error: "the receiver asked for data from byte 101 of a 100 byte file".into(),
            resumable: false
        }]
    );
    assert_eq!(s.state(), SenderState::Failed);
}

#[test]
fn method_not_offered_fails() {
    let cfg = SenderConfig { methods: vec![Method::Ibb], ..SenderConfig::default() };
    let (_, out) = accepted(cfg, 1, ns::BYTESTREAMS, None);
    assert_eq!(
        out,
        [SenderAction::Failed {
            reason: FailReason::Protocol,
            error: "the receiver chose a method that was not offered: http://jabber.org/protocol/bytestreams".into(),
            resumable: false
        }]
    );
}

#[test]
fn bad_accepts() {
    let mut s = sender(SenderConfig::default(), 1);
    let offer = only_iq(&s.handle(SenderInput::Start, T0));
    let out = s.handle(result(&offer, None), T0);
    assert_eq!(
        out,
        [SenderAction::Failed {
            reason: FailReason::Protocol,
            error: "bob@example.com/psi accepted without choosing a method".into(),
            resumable: false
        }]
    );
    let mut s = sender(SenderConfig::default(), 1);
    let offer = only_iq(&s.handle(SenderInput::Start, T0));
    let out = s.handle(result(&offer, Some(el("<si xmlns='http://jabber.org/protocol/si'/>"))), T0);
    assert_eq!(
        out,
        [SenderAction::Failed {
            reason: FailReason::Protocol,
            error: "bob@example.com/psi answered the offer in a way Skiff cannot read: \
                    <si/> lacks the required child <feature/>"
                .into(),
            resumable: false
        }]
    );
}

#[test]
fn refusals() {
    let refuse = |e: StanzaError| {
        let mut s = sender(SenderConfig::default(), 1);
        let offer = only_iq(&s.handle(SenderInput::Start, T0));
        s.handle(error(&offer, e), T0)
    };
    assert_eq!(
        refuse(StanzaError::new(Condition::Forbidden).with_text("Offer declined")),
        [SenderAction::Rejected { reason: "declined: Offer declined".into() }]
    );
    assert_eq!(
        refuse(StanzaError::new(Condition::NotAcceptable)),
        [SenderAction::Rejected { reason: "declined".into() }]
    );
    assert_eq!(refuse(StanzaError::new(Condition::NotAllowed)), [SenderAction::Rejected { reason: "declined".into() }]);
    assert_eq!(
        refuse(StanzaError::new(Condition::BadRequest).with_app(crate::si::no_valid_streams())),
        [SenderAction::Failed {
            reason: FailReason::Unsupported,
            error: "bob@example.com/psi supports none of the transfer methods offered".into(),
            resumable: false
        }]
    );
    assert_eq!(
        refuse(StanzaError::new(Condition::ServiceUnavailable)),
        [SenderAction::Failed {
            reason: FailReason::Refused,
            error: "bob@example.com/psi refused the offer: service-unavailable".into(),
            resumable: false
        }]
    );
}

#[test]
fn offer_times_out() {
    let cfg = SenderConfig { offer_timeout: Duration::from_secs(10), ..SenderConfig::default() };
    let mut s = sender(cfg, 1);
    s.handle(SenderInput::Start, T0);
    assert!(s.handle(SenderInput::Tick, Duration::from_secs(9)).is_empty());
    assert_eq!(
        s.handle(SenderInput::Tick, Duration::from_secs(10)),
        [SenderAction::Failed {
            reason: FailReason::Timeout,
            error: "the offer got no answer: no answer from bob@example.com/psi within 10 seconds".into(),
            resumable: false
        }]
    );
    assert!(s.is_finished());
    assert!(s.handle(SenderInput::Tick, Duration::from_secs(11)).is_empty());
}

#[test]
fn unknown_ids_and_strangers_are_ignored() {
    let mut s = sender(SenderConfig::default(), 1);
    let offer = only_iq(&s.handle(SenderInput::Start, T0));
    let mut other = offer.result_for(Some(accept(ns::IBB, None)));
    other.id = "s1-99".into();
    other.from = Some(peer());
    assert!(s.handle(SenderInput::Iq(other), T0).is_empty());
    // The right id from someone else.
    let mut spoof = offer.result_for(Some(accept(ns::IBB, None)));
    spoof.from = Some(jid("mallory@example.com/x"));
    assert!(s.handle(SenderInput::Iq(spoof), T0).is_empty());
    // A request is not an answer.
    let req = Iq { from: Some(peer()), ..Iq::set("s1-1", Some(me()), accept(ns::IBB, None)) };
    assert!(s.handle(SenderInput::Iq(req), T0).is_empty());
    assert_eq!(s.state(), SenderState::Offered);
}

fn streamhosts() -> Vec<StreamHost> {
    vec![
        StreamHost { jid: "alice@example.com/skiff".into(), host: "127.0.0.1".into(), port: 5086 },
        StreamHost { jid: "proxy.example.com".into(), host: "10.0.0.1".into(), port: 7777 },
    ]
}

/// Accepted over bytestreams, streamhosts sent: the machine and the query IQ.
fn streamhosts_sent(cfg: SenderConfig) -> (Sender, Iq) {
    let (mut s, _) = accepted(cfg, 10, ns::BYTESTREAMS, None);
    let q = only_iq(&s.handle(SenderInput::Streamhosts(streamhosts()), T0));
    (s, q)
}

#[test]
fn streamhosts_query() {
    let (s, q) = streamhosts_sent(SenderConfig::default());
    let IqKind::Set(p) = &q.kind else { panic!() };
    assert_eq!(
        p,
        &el("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1' mode='tcp'>\
             <streamhost jid='alice@example.com/skiff' host='127.0.0.1' port='5086'/>\
             <streamhost jid='proxy.example.com' host='10.0.0.1' port='7777'/></query>")
    );
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(60)));
}

#[test]
fn the_checksum_follows_the_data_when_announced() {
    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let streaming = || {
        let file = FileInfo { checksum_follows: true, ..file(10) };
        let mut s = Sender::new(SenderConfig::default(), me(), peer(), SID.into(), file, Duration::ZERO);
        let offer = only_iq(&s.handle(SenderInput::Start, T0));
        let IqKind::Set(p) = &offer.kind else { panic!() };
        assert!(p.to_string().contains("<checksum-follows xmlns='urn:x-skiff:si-checksum:0' algo='sha-256'/>"));
        s.handle(result(&offer, Some(accept(ns::BYTESTREAMS, None))), T0);
        let q = only_iq(&s.handle(SenderInput::Streamhosts(streamhosts()), T0));
        let used = el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='alice@example.com/skiff'/></query>");
        s.handle(result(&q, Some(used)), T0);
        s.handle(SenderInput::DirectConnected, T0);
        s
    };
    // Data out, checksum computed and sent; the receiver's result: verified.
    let mut s = streaming();
    assert_eq!(s.handle(SenderInput::SocketDone, T0), [SenderAction::ComputeChecksum]);
    let c = only_iq(&s.handle(SenderInput::Checksum(Some(SHA.into())), T0));
    let IqKind::Set(p) = &c.kind else { panic!() };
    assert_eq!(crate::hashes::Checksum::try_from(p).unwrap().sha256, SHA);
    assert_eq!(s.poll_timeout(), Some(CHECKSUM_ANSWER_TIMEOUT));
    assert_eq!(
        s.handle(result(&c, None), T0),
        [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: true }]
    );
    // The receiver's copy differs: failed, not resumable (it was removed).
    let mut s = streaming();
    s.handle(SenderInput::SocketDone, T0);
    let c = only_iq(&s.handle(SenderInput::Checksum(Some(SHA.into())), T0));
    let out = s.handle(error(&c, StanzaError::new(Condition::NotAcceptable)), T0);
    assert!(
        matches!(&out[..], [SenderAction::Failed { reason: FailReason::Integrity, error, resumable: false }] if error.contains("damaged")),
        "{out:?}"
    );
    // No answer, or no checksum to send: done, not verified.
    let mut s = streaming();
    s.handle(SenderInput::SocketDone, T0);
    only_iq(&s.handle(SenderInput::Checksum(Some(SHA.into())), T0));
    let out = s.handle(SenderInput::Tick, CHECKSUM_ANSWER_TIMEOUT);
    assert_eq!(out, [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: false }]);
    let mut s = streaming();
    s.handle(SenderInput::SocketDone, T0);
    let out = s.handle(SenderInput::Checksum(Some("not hex".into())), T0);
    assert_eq!(out, [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: false }]);
}

#[test]
fn direct_route() {
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    let used = el("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'>\
                   <streamhost-used jid='alice@example.com/skiff'/></query>");
    assert_eq!(s.handle(result(&q, Some(used)), T0), [SenderAction::AwaitDirect]);
    assert_eq!(
        s.handle(SenderInput::DirectConnected, T0),
        [
            SenderAction::Started {
                route: Route::S5bDirect,
                streamhost: Some("alice@example.com/skiff".into()),
                offset: 0,
                length: 10
            },
            SenderAction::StreamSocket { offset: 0, length: 10 },
        ]
    );
    assert_eq!(s.state(), SenderState::Sending(Route::S5bDirect));
    assert_eq!(
        s.handle(SenderInput::SocketDone, T0),
        [SenderAction::Done { route: Route::S5bDirect, bytes: 10, verified: false }]
    );
}

#[test]
fn proxy_route() {
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    let used =
        el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='proxy.example.com'/></query>");
    let dst = dst_addr(SID, "alice@example.com/skiff", "bob@example.com/psi");
    assert_eq!(
        s.handle(result(&q, Some(used)), T0),
        [SenderAction::ConnectProxy { host: "10.0.0.1".into(), port: 7777, dst_addr: dst }]
    );
    let act = only_iq(&s.handle(SenderInput::ProxyConnected, T0));
    assert_eq!(act.to, Some(jid("proxy.example.com")));
    let IqKind::Set(p) = &act.kind else { panic!() };
    assert_eq!(
        p,
        &el("<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><activate>bob@example.com/psi</activate></query>")
    );
    // The activation answer must come from the proxy.
    let mut wrong = act.result_for(None);
    wrong.from = Some(peer());
    assert!(s.handle(SenderInput::Iq(wrong), T0).is_empty());
    let out = s.handle(result(&act, None), T0);
    assert_eq!(
        out[0],
        SenderAction::Started {
            route: Route::S5bProxy,
            streamhost: Some("proxy.example.com".into()),
            offset: 0,
            length: 10
        }
    );
    assert_eq!(
        s.handle(SenderInput::SocketFailed("the connection broke after 5 bytes: reset".into()), T0),
        [SenderAction::Failed {
            reason: FailReason::Network,
            error: "the connection broke after 5 bytes: reset".into(),
            resumable: true
        }]
    );
}

fn fell_back(out: &[SenderAction]) -> &str {
    match out.first() {
        Some(SenderAction::FellBack { reason }) => reason,
        other => panic!("no fallback: {other:?}"),
    }
}

#[test]
fn fallbacks_to_ibb() {
    // item-not-found from the receiver.
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    let out = s.handle(
        error(&q, StanzaError::new(Condition::ItemNotFound).with_text("could not connect to any streamhost")),
        T0,
    );
    // A proxy was among them: found again first; the same one again is no retry.
    assert!(matches!(&out[..], [SenderAction::RefreshProxies { .. }]), "{out:?}");
    let out = s.handle(SenderInput::Streamhosts(streamhosts()), T0);
    assert_eq!(
        fell_back(&out),
        "the receiver could not use any streamhost: bob@example.com/psi answered with an error: \
         item-not-found: could not connect to any streamhost"
    );
    assert!(matches!(out[1], SenderAction::Started { route: Route::Ibb, .. }));
    assert_eq!(s.state(), SenderState::Opening);
    // No answer within 60 s.
    let (mut s, _) = streamhosts_sent(SenderConfig::default());
    let out = s.handle(SenderInput::Tick, Duration::from_secs(60));
    assert_eq!(
        fell_back(&out),
        "the receiver could not use any streamhost: no answer from bob@example.com/psi within 60 seconds"
    );
    // Our connection never arrived.
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    let used = el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='alice@example.com/skiff'/></query>");
    s.handle(result(&q, Some(used)), T0);
    let out = s.handle(SenderInput::DirectMissing, T0);
    assert_eq!(fell_back(&out), "the receiver says it used our streamhost, but its connection never arrived");
    // A streamhost we never offered.
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    let used =
        el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='evil.example.com'/></query>");
    let out = s.handle(result(&q, Some(used)), T0);
    assert_eq!(fell_back(&out), "the receiver used a streamhost we did not offer (evil.example.com)");
    // The proxy fails, or refuses to activate.
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    let used =
        el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='proxy.example.com'/></query>");
    s.handle(result(&q, Some(used.clone())), T0);
    let out = s.handle(SenderInput::ProxyFailed("cannot connect to 10.0.0.1:7777: refused".into()), T0);
    assert_eq!(fell_back(&out), "cannot connect to 10.0.0.1:7777: refused");
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    s.handle(result(&q, Some(used)), T0);
    let act = only_iq(&s.handle(SenderInput::ProxyConnected, T0));
    let out = s.handle(error(&act, StanzaError::new(Condition::NotAllowed)), T0);
    assert_eq!(
        fell_back(&out),
        "the proxy refused to activate the stream: proxy.example.com answered with an error: not-allowed"
    );
    // No streamhost at all.
    let (mut s, _) = accepted(SenderConfig::default(), 10, ns::BYTESTREAMS, None);
    let out = s.handle(SenderInput::Streamhosts(Vec::new()), T0);
    assert_eq!(fell_back(&out), "no streamhost to offer (no own address allowed and no proxy)");
}

#[test]
fn a_moved_proxy_is_found_again_and_offered_once_more() {
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    let out = s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
    let [SenderAction::RefreshProxies { dst_addr }] = &out[..] else { panic!("{out:?}") };
    assert_eq!(dst_addr, &dst_addr_of_s1());
    // The proxy's new port: the whole list goes out again, same stream.
    let mut moved = streamhosts();
    moved[1].port = 7778;
    let q2 = only_iq(&s.handle(SenderInput::Streamhosts(moved), T0));
    let IqKind::Set(p) = &q2.kind else { panic!() };
    assert!(p.attr("sid") == Some("s1") && p.elements().nth(1).unwrap().attr("port") == Some("7778"), "{p:?}");
    assert_ne!(q2.id, q.id);
    // This time the receiver used it.
    let used =
        el("<query xmlns='http://jabber.org/protocol/bytestreams'><streamhost-used jid='proxy.example.com'/></query>");
    let out = s.handle(result(&q2, Some(used)), T0);
    assert!(matches!(&out[..], [SenderAction::ConnectProxy { port: 7778, .. }]), "{out:?}");
    // A second failure is not retried again.
    let (mut s, q) = streamhosts_sent(SenderConfig::default());
    s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
    let mut moved = streamhosts();
    moved[1].host = "10.0.0.2".into();
    let q2 = only_iq(&s.handle(SenderInput::Streamhosts(moved), T0));
    let out = s.handle(error(&q2, StanzaError::new(Condition::ItemNotFound)), T0);
    assert!(fell_back(&out).contains("could not use any streamhost"), "{out:?}");
    // Without a proxy among them there is nothing to find again.
    let (mut s, _) = accepted(SenderConfig::default(), 10, ns::BYTESTREAMS, None);
    let q = only_iq(&s.handle(SenderInput::Streamhosts(streamhosts()[..1].to_vec()), T0));
    let out = s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
    fell_back(&out);
}

fn dst_addr_of_s1() -> String {
    dst_addr("s1", "alice@example.com/skiff", "bob@example.com/psi")
}

#[test]
fn no_fallback_without_ibb() {
    let cfg = SenderConfig { methods: vec![Method::S5b], ..SenderConfig::default() };
    let (mut s, q) = streamhosts_sent(cfg);
    let out = s.handle(error(&q, StanzaError::new(Condition::ItemNotFound)), T0);
    assert!(matches!(&out[..], [SenderAction::RefreshProxies { .. }]), "{out:?}");
    // Nothing found this time.
    let out = s.handle(SenderInput::Streamhosts(streamhosts()[..1].to_vec()), T0);
    assert_eq!(
        out,
        [SenderAction::Failed {
            reason: FailReason::Network,
            error: "the receiver could not use any streamhost: bob@example.com/psi answered with an error: \
                    item-not-found"
                .into(),
            resumable: true
        }]
    );
}

fn open_of(iq: &Iq) -> Open {
    let IqKind::Set(p) = &iq.kind else { panic!("{iq:?}") };
    Open::try_from(p).unwrap()
}

#[test]
fn block_size_by_peer_and_step_down() {
    // Another client: the XEP's 4096.
    let (_, out) = accepted(SenderConfig::default(), 10, ns::IBB, None);
    assert_eq!(open_of(&only_iq(&out)).block_size, 4096);
    // Skiff: the configured largest, stepping down on resource-constraint.
    let cfg = SenderConfig { skiff_peer: true, ..SenderConfig::default() };
    let (mut s, out) = accepted(cfg, 10, ns::IBB, None);
    let mut open = only_iq(&out);
    let mut tried = vec![open_of(&open).block_size];
    for _ in 0..3 {
        let out = s.handle(error(&open, StanzaError::new(Condition::ResourceConstraint)), T0);
        open = only_iq(&out);
        tried.push(open_of(&open).block_size);
    }
    assert_eq!(tried, [65535, 32768, 16384, 8192]);
    assert_eq!(s.handle(result(&open, None), T0), [SenderAction::ReadBlock { len: 10 }]);
    assert_eq!(s.block_size(), Some(8192));
    // A size between steps starts at the next step below it.
    let cfg = SenderConfig { skiff_peer: true, ibb_block_size: 5000, ..SenderConfig::default() };
    let (_, out) = accepted(cfg, 10, ns::IBB, None);
    assert_eq!(open_of(&only_iq(&out)).block_size, 4096);
}

#[test]
fn step_down_runs_out() {
    let cfg = SenderConfig { ibb_block_size: 1024, ..SenderConfig::default() };
    let (mut s, out) = accepted(cfg, 10, ns::IBB, None);
    let open = only_iq(&out);
    assert_eq!(
        s.handle(error(&open, StanzaError::new(Condition::ResourceConstraint)), T0),
        [SenderAction::Failed {
            reason: FailReason::Unsupported,
            error: "the receiver accepts no in-band block size Skiff can use".into(),
            resumable: false
        }]
    );
}

#[test]
fn open_refused_or_unanswered() {
    let (mut s, out) = accepted(SenderConfig::default(), 10, ns::IBB, None);
    let open = only_iq(&out);
    assert_eq!(
        s.handle(error(&open, StanzaError::new(Condition::NotAcceptable)), T0),
        [SenderAction::Failed {
            reason: FailReason::Refused,
            error: "the receiver refused the in-band stream: bob@example.com/psi answered with an error: \
                    not-acceptable"
                .into(),
            resumable: true
        }]
    );
    let (mut s, _) = accepted(SenderConfig::default(), 10, ns::IBB, None);
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(30)));
    assert_eq!(
        s.handle(SenderInput::Tick, Duration::from_secs(30)),
        [SenderAction::Failed {
            reason: FailReason::Timeout,
            error: "the receiver refused the in-band stream: no answer from bob@example.com/psi within 30 seconds"
                .into(),
            resumable: true
        }]
    );
}

/// An in-band stream open with 1024-byte blocks (the smallest step).
fn ibb_open(size: u64, window: usize) -> Sender {
    let cfg = SenderConfig { ibb_block_size: 1024, ibb_window: window, ..SenderConfig::default() };
    let (mut s, out) = accepted(cfg, size, ns::IBB, None);
    let open = only_iq(&out);
    s.handle(result(&open, None), T0);
    s
}

fn data_of(iq: &Iq) -> Data {
    let IqKind::Set(p) = &iq.kind else { panic!("{iq:?}") };
    Data::try_from(p).unwrap()
}

#[test]
fn window_of_blocks() {
    let mut s = ibb_open(5000, 2);
    let d0 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
    let out = s.handle(SenderInput::Block(vec![1; 1024]), T0);
    let d1 = only_iq(&out);
    // The window is full: no read until an ack.
    assert!(!out.iter().any(|a| matches!(a, SenderAction::ReadBlock { .. })), "{out:?}");
    assert_eq!((data_of(&d0).seq, data_of(&d1).seq), (0, 1));
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(30)));
    // The second is acked first: no progress yet, but room for one read.
    assert_eq!(s.handle(result(&d1, None), T0), [SenderAction::ReadBlock { len: 1024 }]);
    // A duplicate answer is ignored.
    assert!(s.handle(result(&d1, None), T0).is_empty());
    assert_eq!(s.handle(result(&d0, None), T0), [SenderAction::Progress { acked: 2048 }]);
    // A short read is fine; the next read asks for what is left.
    let out = s.handle(SenderInput::Block(vec![2; 1000]), T0);
    assert_eq!(out[1], SenderAction::ReadBlock { len: 1024 });
}

#[test]
fn last_ack_closes_then_done() {
    let mut s = ibb_open(1500, 4);
    let d0 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
    let out = s.handle(SenderInput::Block(vec![0; 476]), T0);
    let d1 = only_iq(&out);
    assert_eq!(out.len(), 1, "nothing left to read");
    s.handle(result(&d0, None), T0);
    let out = s.handle(result(&d1, None), T0);
    assert_eq!(out[0], SenderAction::Progress { acked: 1500 });
    let close = only_iq(&out);
    let IqKind::Set(p) = &close.kind else { panic!() };
    assert_eq!(p, &el("<close xmlns='http://jabber.org/protocol/ibb' sid='s1'/>"));
    assert_eq!(s.state(), SenderState::Closing);
    assert_eq!(
        s.handle(result(&close, None), T0),
        [SenderAction::Done { route: Route::Ibb, bytes: 1500, verified: false }]
    );
}

#[test]
fn empty_file_over_ibb_closes_at_once() {
    let cfg = SenderConfig::default();
    let (mut s, out) = accepted(cfg, 0, ns::IBB, None);
    let open = only_iq(&out);
    let close = only_iq(&s.handle(result(&open, None), T0));
    assert!(close.request_payload().unwrap().is("close", ns::IBB));
}

#[test]
fn data_error_and_timeout_break_the_stream() {
    let mut s = ibb_open(5000, 4);
    let d0 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
    let d1 = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), T0));
    s.handle(result(&d0, None), T0);
    assert_eq!(
        s.handle(error(&d1, StanzaError::new(Condition::ItemNotFound).with_text("no such stream")), T0),
        [SenderAction::Failed {
            reason: FailReason::Network,
            error: "the in-band stream broke after 1024 bytes: bob@example.com/psi answered with an error: \
                    item-not-found: no such stream"
                .into(),
            resumable: true
        }]
    );
    let mut s = ibb_open(5000, 4);
    s.handle(SenderInput::Block(vec![0; 1024]), Duration::from_secs(1));
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(31)));
    assert_eq!(
        s.handle(SenderInput::Tick, Duration::from_secs(31)),
        [SenderAction::Failed {
            reason: FailReason::Timeout,
            error: "the in-band stream broke after 0 bytes: no answer from bob@example.com/psi within 30 seconds"
                .into(),
            resumable: true
        }]
    );
}

#[test]
fn file_shorter_than_announced() {
    // The in-band stream is closed on the way out.
    let closed_then = |out: Vec<SenderAction>| {
        assert!(only_iq(&out).request_payload().unwrap().is("close", ns::IBB));
        out[1].clone()
    };
    let mut s = ibb_open(5000, 4);
    assert_eq!(
        closed_then(s.handle(SenderInput::Block(Vec::new()), T0)),
        SenderAction::Failed {
            reason: FailReason::Source,
            error: "a.bin got shorter while it was being sent".into(),
            resumable: false
        }
    );
    let mut s = ibb_open(5000, 4);
    assert_eq!(
        closed_then(s.handle(SenderInput::Block(vec![0; 1025]), T0)),
        SenderAction::Failed {
            reason: FailReason::Source,
            error: "reading a.bin returned 1025 bytes where 1024 were asked".into(),
            resumable: false
        }
    );
    let mut s = ibb_open(5000, 4);
    assert_eq!(
        closed_then(s.handle(SenderInput::ReadFailed("cannot read a.bin: gone".into()), T0)),
        SenderAction::Failed { reason: FailReason::Source, error: "cannot read a.bin: gone".into(), resumable: false }
    );
}

#[test]
fn slow_in_band_is_reported_once() {
    let mut s = ibb_open(100_000, 1);
    let mut now = T0;
    let mut told = Vec::new();
    for _ in 0..10 {
        let d = only_iq(&s.handle(SenderInput::Block(vec![0; 1024]), now));
        now += Duration::from_secs(1);
        for a in s.handle(result(&d, None), now) {
            if let SenderAction::Slow { bytes_per_sec } = a {
                told.push(bytes_per_sec);
            }
        }
    }
    assert_eq!(told, [1024], "5 blocks of 1024 in 5 s, told once");
}

#[test]
fn cancel() {
    let mut s = sender(SenderConfig::default(), 1);
    s.handle(SenderInput::Start, T0);
    assert_eq!(
        s.handle(SenderInput::Cancel, T0),
        [SenderAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }]
    );
    assert!(s.handle(SenderInput::Cancel, T0).is_empty());
    // In-band: the stream is closed on the way out.
    let mut s = ibb_open(5000, 4);
    s.handle(SenderInput::Block(vec![0; 1024]), T0);
    let out = s.handle(SenderInput::Cancel, T0);
    assert!(only_iq(&out).request_payload().unwrap().is("close", ns::IBB));
    assert_eq!(
        out[1],
        SenderAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn inputs_out_of_place_are_ignored() {
    let mut s = sender(SenderConfig::default(), 1);
    for input in [
        SenderInput::Streamhosts(streamhosts()),
        SenderInput::DirectConnected,
        SenderInput::DirectMissing,
        SenderInput::ProxyConnected,
        SenderInput::ProxyFailed("x".into()),
        SenderInput::SocketDone,
        SenderInput::SocketFailed("x".into()),
        SenderInput::ReadFailed("x".into()),
        SenderInput::Block(vec![1]),
        SenderInput::Tick,
    ] {
        assert!(s.handle(input, T0).is_empty());
    }
    assert_eq!(s.state(), SenderState::Idle);
}
