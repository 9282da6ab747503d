//! Two Jingle sessions, a sender and a receiver, talking through an in-memory network
//! on a virtual clock: every route, the fallback, resume, and hostile input.

use std::collections::VecDeque;

use sha2::{Digest, Sha256};

use super::*;
use crate::jingle::s5b::{Signal, Transport};

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

fn alice() -> Jid {
    jid("alice@example.com/skiff")
}

fn bob() -> Jid {
    jid("bob@example.com/skiff")
}

const PROXY: &str = "proxy.example.com";
const SID: &str = "js1";
const ALICE_PORT: u16 = 1001;
const BOB_PORT: u16 = 2001;
const PROXY_PORT: u16 = 7777;

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Rewrites an IQ on its way.
type Tamper = Box<dyn FnMut(&mut Iq)>;

/// The simulated network and peers.
#[derive(Debug, Clone)]
struct Net {
    /// The receiver reaches the sender's own streamhost.
    to_sender: bool,
    /// The sender reaches the receiver's own streamhost.
    to_receiver: bool,
    /// The sender offers a proxy, which both reach.
    proxy: bool,
    /// The proxy activates.
    activation: bool,
    /// A byte is flipped on the way (any route).
    damage: bool,
    /// The sender knows the SHA-256 at offer time.
    hash_in_offer: bool,
    /// The sender never sends a checksum (a client that does not).
    no_checksum: bool,
    /// The receiver says it connected to the sender's streamhost, but the connection
    /// never arrives there (a lie, or a wrong DST.ADDR our listener refused).
    direct_lost: bool,
}

impl Default for Net {
    fn default() -> Self {
        Net {
            to_sender: true,
            to_receiver: true,
            proxy: false,
            activation: true,
            damage: false,
            hash_in_offer: false,
            no_checksum: false,
            direct_lost: false,
        }
    }
}

#[derive(Debug)]
enum Ev {
    S(JingleInput),
    R(JingleInput),
}

struct Harness {
    now: Instant,
    net: Net,
    s: JingleSession,
    r: Option<JingleSession>,
    rcfg: JingleConfig,
    decision: Option<JingleInput>,
    file: Vec<u8>,
    part: Vec<u8>,
    queue: VecDeque<Ev>,
    /// What each side did.
    s_log: Vec<JingleAction>,
    r_log: Vec<JingleAction>,
    /// Every IQ that went over the wire, with its sender.
    wire: Vec<(Jid, Iq)>,
    /// Sender's socket copy and the receiver's read, waiting for each other.
    streaming: Option<(u64, u64)>,
    reading: Option<u64>,
    /// Where in-band reading is.
    read_pos: usize,
    /// Refusal of the initiate, if any.
    refusal: Option<Refusal>,
    /// Rewrites IQs from the receiver before the sender sees them.
    tamper_to_sender: Option<Tamper>,
}

fn file_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 % 251) as u8).collect()
}

impl Harness {
    fn new(scfg: JingleConfig, rcfg: JingleConfig, size: usize, net: Net) -> Harness {
        let file = file_bytes(size);
        let mut f = ft::File { name: Some("a.bin".into()), size: Some(size as u64), ..Default::default() };
        if net.hash_in_offer {
            f.hashes.push(crate::hashes::Hash::sha256_from_hex(&sha(&file)).unwrap());
        }
        let s = JingleSession::offer(scfg, alice(), bob(), SID.into(), f);
        Harness {
            now: Duration::ZERO,
            net,
            s,
            r: None,
            rcfg,
            decision: Some(JingleInput::Accept { offset: 0 }),
            file,
            part: Vec::new(),
            queue: VecDeque::new(),
            s_log: Vec::new(),
            r_log: Vec::new(),
            wire: Vec::new(),
            streaming: None,
            reading: None,
            read_pos: 0,
            refusal: None,
            tamper_to_sender: None,
        }
    }

    fn default_run(size: usize, net: Net) -> Harness {
        Harness::new(JingleConfig::default(), JingleConfig::default(), size, net).run()
    }

    fn run(mut self) -> Harness {
        self.queue.push_back(Ev::S(JingleInput::Start));
        self.pump();
        self
    }

    fn pump(&mut self) {
        for _ in 0..200_000 {
            if let Some(ev) = self.queue.pop_front() {
                self.deliver(ev);
                continue;
            }
            // Nothing in flight: time moves to the next deadline.
            let next =
                [self.s.poll_timeout(), self.r.as_ref().and_then(|r| r.poll_timeout())].into_iter().flatten().min();
            match next {
                Some(t) if !self.finished() => {
                    self.now = self.now.max(t);
                    self.queue.push_back(Ev::S(JingleInput::Tick));
                    self.queue.push_back(Ev::R(JingleInput::Tick));
                }
                _ => return,
            }
        }
        panic!("the sessions did not settle");
    }

    fn finished(&self) -> bool {
        self.s.is_finished() && self.r.as_ref().is_none_or(|r| r.is_finished())
    }

    fn deliver(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::S(input) => {
                for a in self.s.handle(input, now) {
                    self.s_log.push(a.clone());
                    self.sender_action(a);
                }
            }
            Ev::R(input) => {
                let Some(r) = self.r.as_mut() else { return };
                for a in r.handle(input, now) {
                    self.r_log.push(a.clone());
                    self.receiver_action(a);
                }
            }
        }
    }

    fn sender_action(&mut self, a: JingleAction) {
        match a {
            JingleAction::SendIq(mut iq) => {
                self.wire.push((alice(), iq.clone()));
                if iq.to.as_ref().is_some_and(|t| t.to_string() == PROXY) {
                    let kind = if self.net.activation {
                        IqKind::Result(None)
                    } else {
                        IqKind::Error(StanzaError::new(Condition::ItemNotFound))
                    };
                    let answer = Iq { id: iq.id, from: Some(jid(PROXY)), to: Some(alice()), kind };
                    return self.queue.push_back(Ev::S(JingleInput::Iq(answer)));
                }
                iq.from = Some(alice());
                if self.r.is_none() && self.refusal.is_none() && iq.is_request() {
                    match JingleSession::from_initiate(self.rcfg.clone(), bob(), &iq, self.now) {
                        Ok((r, ack)) => {
                            self.r = Some(r);
                            self.send_to_sender(ack);
                            if let Some(d) = self.decision.take() {
                                self.queue.push_back(Ev::R(d));
                            }
                        }
                        Err(refusal) => {
                            for reply in refusal.replies.clone() {
                                self.send_to_sender(reply);
                            }
                            self.refusal = Some(refusal);
                        }
                    }
                    return;
                }
                self.queue.push_back(Ev::R(JingleInput::Iq(iq)));
            }
            JingleAction::GatherCandidates { .. } => {
                let mut hosts =
                    vec![StreamHost { jid: alice().to_string(), host: "127.0.0.1".into(), port: ALICE_PORT }];
                if self.net.proxy {
                    hosts.push(StreamHost { jid: PROXY.into(), host: "127.0.0.1".into(), port: PROXY_PORT });
                }
                self.queue.push_back(Ev::S(JingleInput::Candidates(hosts)));
            }
            JingleAction::ConnectCandidates { hosts, dst_addr } => {
                let expect = crate::jingle::s5b::dst_addr(
                    self.r.as_ref().and_then(|r| r.s5b_sid()).unwrap_or(""),
                    Creator::Responder,
                    &alice().to_string(),
                    &bob().to_string(),
                );
                assert_eq!(dst_addr, expect, "the sender's DST.ADDR for the receiver's candidates");
                let i = hosts.iter().position(|h| self.reachable(h.port, BOB_PORT, self.net.to_receiver));
                self.queue.push_back(Ev::S(match i {
                    Some(index) => JingleInput::CandidateConnected { index },
                    None => JingleInput::CandidatesFailed("refused".into()),
                }));
            }
            JingleAction::AwaitDirect => self.queue.push_back(Ev::S(if self.net.to_sender && !self.net.direct_lost {
                JingleInput::DirectConnected
            } else {
                JingleInput::DirectMissing
            })),
            JingleAction::ConnectProxy { .. } => self.queue.push_back(Ev::S(JingleInput::ProxyConnected)),
            JingleAction::StreamSocket { offset, length } => {
                self.streaming = Some((offset, length));
                self.copy_socket();
            }
            JingleAction::ReadBlock { len } => {
                let pos = self.read_pos;
                let mut block = self.file[pos..pos + len].to_vec();
                if self.net.damage && pos == 0 {
                    block[0] ^= 1;
                }
                self.read_pos += len;
                self.queue.push_back(Ev::S(JingleInput::Block(block)));
            }
            JingleAction::Started { offset, .. } => self.read_pos = offset as usize,
            JingleAction::ComputeChecksum => {
                let h = (!self.net.no_checksum).then(|| sha(&self.file));
                self.queue.push_back(Ev::S(JingleInput::Checksum(h)));
            }
            _ => {}
        }
    }

    fn reachable(&self, port: u16, own: u16, direct: bool) -> bool {
        (port == own && direct) || (port == PROXY_PORT && self.net.proxy)
    }

    fn send_to_sender(&mut self, mut iq: Iq) {
        self.wire.push((bob(), iq.clone()));
        iq.from = Some(bob());
        if let Some(t) = self.tamper_to_sender.as_mut() {
            t(&mut iq);
        }
        self.queue.push_back(Ev::S(JingleInput::Iq(iq)));
    }

    fn receiver_action(&mut self, a: JingleAction) {
        match a {
            JingleAction::SendIq(iq) => self.send_to_sender(iq),
            JingleAction::GatherCandidates { .. } => {
                let hosts = vec![StreamHost { jid: bob().to_string(), host: "127.0.0.1".into(), port: BOB_PORT }];
                self.queue.push_back(Ev::R(JingleInput::Candidates(hosts)));
            }
            JingleAction::ConnectCandidates { hosts, dst_addr } => {
                let sid = self.s.s5b_sid().unwrap_or("").to_owned();
                let expect =
                    crate::jingle::s5b::dst_addr(&sid, Creator::Initiator, &alice().to_string(), &bob().to_string());
                assert_eq!(dst_addr, expect, "the receiver's DST.ADDR for the sender's candidates");
                let i = hosts.iter().position(|h| self.reachable(h.port, ALICE_PORT, self.net.to_sender));
                self.queue.push_back(Ev::R(match i {
                    Some(index) => JingleInput::CandidateConnected { index },
                    None => JingleInput::CandidatesFailed("refused".into()),
                }));
            }
            JingleAction::AwaitDirect => self.queue.push_back(Ev::R(if self.net.to_receiver {
                JingleInput::DirectConnected
            } else {
                JingleInput::DirectMissing
            })),
            JingleAction::ReadSocket { expected } => {
                self.reading = Some(expected);
                self.copy_socket();
            }
            JingleAction::CloseSocket => self.reading = None,
            JingleAction::Write(b) => {
                self.part.extend_from_slice(&b);
                self.queue.push_back(Ev::R(JingleInput::Written));
            }
            JingleAction::Verify { sha256 } => {
                let size = self.r.as_ref().map_or(0, |r| r.size);
                let ok = self.part.len() as u64 == size && sha256.is_none_or(|h| h == sha(&self.part));
                self.queue.push_back(Ev::R(JingleInput::Verified(ok)));
            }
            _ => {}
        }
    }

    /// The socket copy, once both ends are at it.
    fn copy_socket(&mut self) {
        let (Some((offset, length)), Some(expected)) = (self.streaming, self.reading) else { return };
        assert_eq!(length, expected, "the sender writes what the receiver reads");
        let mut bytes = self.file[offset as usize..(offset + length) as usize].to_vec();
        if self.net.damage && !bytes.is_empty() {
            bytes[0] ^= 1;
        }
        self.part.extend_from_slice(&bytes);
        self.streaming = None;
        self.reading = None;
        self.queue.push_back(Ev::S(JingleInput::SocketDone));
        self.queue.push_back(Ev::R(JingleInput::SocketDone));
    }

    fn s_end(&self) -> &JingleAction {
        self.s_log.iter().rev().find(|a| is_end(a)).expect("the sender ended")
    }

    fn r_end(&self) -> &JingleAction {
        self.r_log.iter().rev().find(|a| is_end(a)).expect("the receiver ended")
    }

    fn assert_complete(&self, route: Route, verified: bool) {
        assert_eq!(self.part, self.file, "the receiver holds the file");
        assert!(
            matches!(self.s_end(), JingleAction::Done { route: r, verified: v, .. } if *r == route && *v == verified),
            "{:?}",
            self.s_end()
        );
        assert!(
            matches!(self.r_end(), JingleAction::Done { route: r, verified: v, .. } if *r == route && *v == verified),
            "{:?}",
            self.r_end()
        );
        assert_eq!(self.s_log.iter().filter(|a| is_end(a)).count(), 1);
        assert_eq!(self.r_log.iter().filter(|a| is_end(a)).count(), 1);
    }

    /// The Jingle requests `from` sent with this action.
    fn jingles(&self, from: &Jid, action: Action) -> Vec<Jingle> {
        self.wire
            .iter()
            .filter(|(f, _)| f == from)
            .filter_map(|(_, iq)| iq.request_payload().and_then(|p| Jingle::try_from(p).ok()))
            .filter(|j| j.action == action)
            .collect()
    }

    fn terminate_reason(&self, from: &Jid) -> Option<ReasonCondition> {
        self.jingles(from, Action::SessionTerminate).last().and_then(|j| j.reason.as_ref().map(|r| r.condition))
    }

    fn errors_from(&self, from: &Jid) -> Vec<StanzaError> {
        self.wire
            .iter()
            .filter(|(f, _)| f == from)
            .filter_map(|(_, iq)| match &iq.kind {
                IqKind::Error(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }
}

fn is_end(a: &JingleAction) -> bool {
    matches!(a, JingleAction::Done { .. } | JingleAction::Failed { .. } | JingleAction::Rejected { .. })
}

fn ibb_only() -> JingleConfig {
    JingleConfig { methods: vec![Method::Ibb], ..JingleConfig::default() }
}

// --- Routes -----------------------------------------------------------------------

#[test]
fn direct_both_ways_uses_the_initiators_choice_and_checks_the_checksum() {
    let h = Harness::default_run(100_000, Net::default());
    h.assert_complete(Route::S5bDirect, true);
    // A tie (both direct): the initiator's choice, the receiver's candidate.
    let started = h.s_log.iter().find_map(|a| match a {
        JingleAction::Started { streamhost, .. } => streamhost.clone(),
        _ => None,
    });
    assert_eq!(started.as_deref(), Some(bob().to_string().as_str()));
    assert!(h.s_log.contains(&JingleAction::ComputeChecksum));
    assert_eq!(h.terminate_reason(&bob()), Some(ReasonCondition::Success));
    // Both said what they used.
    assert_eq!(h.jingles(&alice(), Action::TransportInfo).len(), 1);
    assert_eq!(h.jingles(&bob(), Action::TransportInfo).len(), 1);
}

#[test]
fn direct_to_the_senders_streamhost_when_only_that_works() {
    let net = Net { to_receiver: false, ..Net::default() };
    let h = Harness::default_run(70_000, net);
    h.assert_complete(Route::S5bDirect, true);
    assert!(h.s_log.contains(&JingleAction::AwaitDirect));
}

#[test]
fn a_candidate_used_whose_connection_never_arrives_falls_back_to_in_band() {
    let net = Net { to_receiver: false, direct_lost: true, ..Net::default() };
    let h = Harness::default_run(30_000, net);
    h.assert_complete(Route::Ibb, true);
    assert!(h.s_log.contains(&JingleAction::AwaitDirect));
    let fell = h.s_log.iter().find_map(|a| match a {
        JingleAction::FellBack { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(fell.as_deref().is_some_and(|r| r.contains("never arrived")), "{fell:?}");
}

#[test]
fn through_the_senders_proxy_activated_by_the_sender() {
    let net = Net { to_sender: false, to_receiver: false, proxy: true, ..Net::default() };
    let h = Harness::default_run(50_000, net);
    h.assert_complete(Route::S5bProxy, true);
    assert!(h.s_log.iter().any(|a| matches!(a, JingleAction::ConnectProxy { port: PROXY_PORT, .. })));
    let activated = h.jingles(&alice(), Action::TransportInfo).iter().any(|j| {
        let t = j.contents[0].transport.as_ref().map(Transport::try_from);
        matches!(t, Some(Ok(Transport { signal: Some(Signal::Activated(_)), .. })))
    });
    assert!(activated, "the sender said it activated the proxy");
}

#[test]
fn falls_back_to_in_band_by_transport_replace_when_no_candidate_works() {
    let net = Net { to_sender: false, to_receiver: false, ..Net::default() };
    let h = Harness::default_run(30_000, net);
    h.assert_complete(Route::Ibb, true);
    assert_eq!(h.jingles(&alice(), Action::TransportReplace).len(), 1);
    assert_eq!(h.jingles(&bob(), Action::TransportAccept).len(), 1);
    assert!(h.s_log.iter().any(|a| matches!(a, JingleAction::FellBack { .. })));
}

#[test]
fn falls_back_when_the_proxy_will_not_activate() {
    let net = Net { to_sender: false, to_receiver: false, proxy: true, activation: false, ..Net::default() };
    let h = Harness::default_run(20_000, net);
    h.assert_complete(Route::Ibb, true);
    let proxy_error = h.jingles(&alice(), Action::TransportInfo).iter().any(|j| {
        let t = j.contents[0].transport.as_ref().map(Transport::try_from);
        matches!(t, Some(Ok(Transport { signal: Some(Signal::ProxyError), .. })))
    });
    assert!(proxy_error);
}

#[test]
fn in_band_only_from_the_start() {
    let h = Harness::new(ibb_only(), ibb_only(), 10_000, Net::default()).run();
    h.assert_complete(Route::Ibb, true);
    assert!(h.jingles(&alice(), Action::TransportReplace).is_empty());
    // The agreed block size: XEP-0261's default for peers that are not Skiff.
    let blocks =
        h.wire.iter().filter(|(f, iq)| *f == alice() && iq.request_payload().is_some_and(|p| p.is("data", ns::IBB)));
    assert_eq!(blocks.count(), 10_000usize.div_ceil(4096));
}

#[test]
fn without_in_band_a_failed_negotiation_ends_the_session() {
    let s5b_only = JingleConfig { methods: vec![Method::S5b], ..JingleConfig::default() };
    let net = Net { to_sender: false, to_receiver: false, ..Net::default() };
    let h = Harness::new(s5b_only.clone(), s5b_only, 1000, net).run();
    assert!(matches!(h.s_end(), JingleAction::Failed { reason: FailReason::Network, resumable: true, .. }));
    assert!(matches!(h.r_end(), JingleAction::Failed { .. }));
    assert!(h.part.is_empty());
}

#[test]
fn the_hash_in_the_offer_needs_no_checksum() {
    let net = Net { hash_in_offer: true, ..Net::default() };
    let h = Harness::default_run(5_000, net);
    h.assert_complete(Route::S5bDirect, true);
    assert!(!h.s_log.contains(&JingleAction::ComputeChecksum));
    assert!(h.r_log.iter().any(|a| matches!(a, JingleAction::Verify { sha256: Some(_) })));
}

#[test]
fn without_any_hash_the_file_is_kept_unverified_after_the_wait() {
    let net = Net { no_checksum: true, ..Net::default() };
    let h = Harness::default_run(5_000, net);
    h.assert_complete(Route::S5bDirect, false);
    assert!(h.r_log.contains(&JingleAction::Verify { sha256: None }));
    assert!(h.now >= JingleConfig::default().checksum_wait);
}

#[test]
fn empty_file() {
    Harness::default_run(0, Net::default()).assert_complete(Route::S5bDirect, true);
    Harness::new(ibb_only(), ibb_only(), 0, Net::default()).run().assert_complete(Route::Ibb, true);
}

// --- Resume -------------------------------------------------------------------------

fn resumed(scfg: JingleConfig, rcfg: JingleConfig, held: usize) -> Harness {
    let mut h = Harness::new(scfg, rcfg, 40_000, Net::default());
    h.part = h.file[..held].to_vec();
    h.decision = Some(JingleInput::Accept { offset: held as u64 });
    h.run()
}

#[test]
fn resume_by_range_sends_only_the_rest_over_socks5_and_in_band() {
    for (cfg, route) in [(JingleConfig::default(), Route::S5bDirect), (ibb_only(), Route::Ibb)] {
        let h = resumed(cfg.clone(), cfg, 12_345);
        h.assert_complete(route, true);
        assert_eq!(h.s.range(), (12_345, 40_000 - 12_345));
        let accept = &h.jingles(&bob(), Action::SessionAccept)[0];
        let d = Description::try_from(accept.contents[0].description.as_ref().unwrap()).unwrap();
        assert_eq!(d.file.range, Some(ft::Range { offset: 12_345, length: None }));
        assert!(h.s_log.iter().any(|a| matches!(a, JingleAction::Started { offset: 12_345, length: 27_655, .. })));
    }
}

#[test]
fn no_range_is_asked_of_a_sender_that_did_not_offer_ranges() {
    let (r, _) = from_xml(&initiate_xml("<range/>", "")).unwrap();
    assert!(r.file().range.is_some());
    let (mut r, _) = from_xml(&initiate_xml("", "")).unwrap();
    let out = r.handle(JingleInput::Accept { offset: 500 }, Duration::ZERO);
    assert!(out.iter().any(|a| matches!(a, JingleAction::GatherCandidates { .. })));
    assert_eq!(r.range(), (0, 1000));
}

// --- Decisions and the user ----------------------------------------------------------

#[test]
fn a_declined_offer_is_rejected_on_both_sides() {
    let mut h = Harness::new(JingleConfig::default(), JingleConfig::default(), 100, Net::default());
    h.decision = Some(JingleInput::Reject);
    let h = h.run();
    assert!(matches!(h.s_end(), JingleAction::Rejected { .. }));
    assert!(matches!(h.r_end(), JingleAction::Rejected { .. }));
    assert_eq!(h.terminate_reason(&bob()), Some(ReasonCondition::Decline));
}

#[test]
fn an_undecided_offer_times_out_as_declined() {
    // The receiver's wait is shorter than the sender's, as in the engine.
    let rcfg = JingleConfig { decision_timeout: Duration::from_secs(200), ..JingleConfig::default() };
    let mut h = Harness::new(JingleConfig::default(), rcfg, 100, Net::default());
    h.decision = None;
    let h = h.run();
    assert_eq!(h.now, Duration::from_secs(200));
    assert!(matches!(h.r_end(), JingleAction::Rejected { .. }));
    assert!(matches!(h.s_end(), JingleAction::Rejected { .. }));
}

#[test]
fn cancel_in_band_closes_the_stream_and_ends_both() {
    let mut h = Harness::new(ibb_only(), ibb_only(), 100_000, Net::default());
    h.queue.push_back(Ev::S(JingleInput::Start));
    // Run until a few blocks are through, then the sender's user cancels.
    while h.part.len() < 10_000 {
        let ev = h.queue.pop_front().expect("running");
        h.deliver(ev);
    }
    h.queue.push_front(Ev::S(JingleInput::Cancel));
    h.pump();
    assert!(matches!(h.s_end(), JingleAction::Failed { reason: FailReason::Cancelled, .. }));
    assert!(matches!(h.r_end(), JingleAction::Failed { reason: FailReason::Cancelled, resumable: true, .. }));
    assert_eq!(h.terminate_reason(&alice()), Some(ReasonCondition::Cancel));
    assert!(h.wire.iter().any(|(f, iq)| *f == alice() && iq.request_payload().is_some_and(|p| p.is("close", ns::IBB))));
}

// --- Hostile input ------------------------------------------------------------------

#[test]
fn a_damaged_file_is_refused_with_media_error_and_not_named() {
    for cfg in [JingleConfig::default(), ibb_only()] {
        let net = Net { damage: true, ..Net::default() };
        let h = Harness::new(cfg.clone(), cfg, 9_000, net).run();
        assert!(matches!(h.r_end(), JingleAction::Failed { reason: FailReason::Integrity, resumable: false, .. }));
        assert!(matches!(h.s_end(), JingleAction::Failed { reason: FailReason::Integrity, .. }));
        assert_eq!(h.terminate_reason(&bob()), Some(ReasonCondition::MediaError));
        assert!(!h.r_log.iter().any(|a| matches!(a, JingleAction::Done { .. })), "nothing takes its name");
    }
}

#[test]
fn a_range_past_the_end_is_refused() {
    let mut h = Harness::new(JingleConfig::default(), JingleConfig::default(), 1000, Net::default());
    h.tamper_to_sender = Some(Box::new(|iq: &mut Iq| {
        let Some(mut j) = iq.request_payload().and_then(|p| Jingle::try_from(p).ok()) else { return };
        if j.action != Action::SessionAccept {
            return;
        }
        let file = ft::File { range: Some(ft::Range { offset: 5000, length: None }), ..Default::default() };
        j.contents[0].description = Some((&Description { version: FtVersion::V5, file }).into());
        iq.kind = IqKind::Set(Element::from(&j));
    }));
    let h = h.run();
    assert!(matches!(h.s_end(), JingleAction::Failed { reason: FailReason::Protocol, .. }));
    assert!(matches!(h.r_end(), JingleAction::Failed { .. }));
    assert_eq!(h.terminate_reason(&alice()), Some(ReasonCondition::FailedApplication));
    assert!(h.errors_from(&alice()).iter().any(|e| e.condition == Condition::BadRequest));
    assert!(h.part.is_empty(), "nothing written");
}

#[test]
fn candidate_used_for_a_candidate_never_offered_is_refused() {
    let mut h = Harness::new(JingleConfig::default(), JingleConfig::default(), 1000, Net::default());
    h.tamper_to_sender = Some(Box::new(|iq: &mut Iq| {
        let Some(mut j) = iq.request_payload().and_then(|p| Jingle::try_from(p).ok()) else { return };
        let Some(Ok(mut t)) = j.contents.first().and_then(|c| c.transport.as_ref()).map(Transport::try_from) else {
            return;
        };
        if let Some(Signal::CandidateUsed(_)) = t.signal {
            t.signal = Some(Signal::CandidateUsed("10.0.0.1".into()));
            j.contents[0].transport = Some(Element::from(&t));
            iq.kind = IqKind::Set(Element::from(&j));
        }
    }));
    let h = h.run();
    assert!(matches!(h.s_end(), JingleAction::Failed { reason: FailReason::Protocol, .. }), "{:?}", h.s_end());
    assert_eq!(h.terminate_reason(&alice()), Some(ReasonCondition::FailedTransport));
    assert!(h.part.is_empty(), "nothing written");
}

#[test]
fn requests_for_other_sessions_contents_or_senders_are_refused_and_the_session_goes_on() {
    let mut h = Harness::new(JingleConfig::default(), JingleConfig::default(), 1000, Net::default());
    h.decision = None;
    h.queue.push_back(Ev::S(JingleInput::Start));
    while h.r.is_none() {
        let ev = h.queue.pop_front().unwrap();
        h.deliver(ev);
    }
    let accept = |sid: &str, name: &str, creator: Creator| {
        let mut c = Content::new(creator, name);
        c.transport = Some(Element::from(&Transport::new(format!("{SID}-s5b"))));
        let mut j = Jingle::new(Action::SessionAccept, sid);
        j.contents.push(c);
        Element::from(&j)
    };
    let cases = [
        (bob(), accept("other", "file", Creator::Initiator), Condition::ItemNotFound),
        (jid("mallory@example.com/x"), accept(SID, "file", Creator::Initiator), Condition::ItemNotFound),
        (bob(), accept(SID, "file", Creator::Responder), Condition::BadRequest),
    ];
    for (i, (from, payload, condition)) in cases.into_iter().enumerate() {
        let iq = Iq { from: Some(from), ..Iq::set(format!("x{i}"), Some(alice()), payload) };
        let out = h.s.handle(JingleInput::Iq(iq), h.now);
        let err = out.iter().find_map(|a| match a {
            JingleAction::SendIq(Iq { kind: IqKind::Error(e), .. }) => Some(e.clone()),
            _ => None,
        });
        assert_eq!(err.map(|e| e.condition), Some(condition), "case {i}");
        if i < 2 {
            assert_eq!(h.s.state(), JingleState::Offered, "case {i}: the session goes on");
        }
    }
    // The last one (our session, a content that is not ours) ends it.
    assert_eq!(h.s.state(), JingleState::Failed);
}

#[test]
fn a_transport_info_before_the_accept_is_out_of_order() {
    let mut s = JingleSession::offer(
        JingleConfig::default(),
        alice(),
        bob(),
        SID.into(),
        ft::File { size: Some(10), ..Default::default() },
    );
    let _ = s.handle(JingleInput::Start, Duration::ZERO);
    let _ = s.handle(JingleInput::Candidates(Vec::new()), Duration::ZERO);
    let t = Transport { signal: Some(Signal::CandidateError), ..Transport::new(format!("{SID}-s5b")) };
    let mut c = Content::new(Creator::Initiator, "file");
    c.transport = Some(Element::from(&t));
    let j = Jingle::new(Action::TransportInfo, SID).with_content(c);
    let iq = Iq { from: Some(bob()), ..Iq::set("t1", Some(alice()), Element::from(&j)) };
    let out = s.handle(JingleInput::Iq(iq), Duration::ZERO);
    let Some(JingleAction::SendIq(Iq { kind: IqKind::Error(e), .. })) = out.first() else { panic!("{out:?}") };
    assert_eq!(JingleError::of(e), Some(JingleError::OutOfOrder));
    assert_eq!(s.state(), JingleState::Offered);
}

// --- Incoming offers as other clients write them --------------------------------------

fn initiate_xml(range: &str, extra_content: &str) -> String {
    format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='alice@example.com/g' sid='g1'>\
         <content creator='initiator' name='file0' senders='initiator'>\
         <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'><file><name>x.txt</name><size>1000</size>\
         <date>2026-11-29T10:00:00+00:00Z</date>{range}</file></description>\
         <transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='t9' mode='tcp'>\
         <candidate cid='c1' host='127.0.0.1' jid='alice@example.com/g' port='28011' priority='8257536' type='direct'/>\
         </transport></content>{extra_content}</jingle>"
    )
}

fn from_xml(xml: &str) -> Result<(JingleSession, Iq), Refusal> {
    let el = crate::stream::parse_element(xml.as_bytes()).unwrap();
    let iq = Iq { from: Some(jid("alice@example.com/g")), ..Iq::set("i1", Some(bob()), el) };
    JingleSession::from_initiate(JingleConfig::default(), bob(), &iq, Duration::ZERO)
}

#[test]
fn an_offer_as_gajim_writes_it_is_taken() {
    let (r, ack) = from_xml(&initiate_xml("", "")).unwrap();
    assert!(matches!(ack.kind, IqKind::Result(None)));
    assert_eq!(r.file().name.as_deref(), Some("x.txt"));
    assert_eq!(r.s5b_sid(), Some("t9"));
    assert_eq!(r.state(), JingleState::Deciding);
}

#[test]
fn malformed_offers_are_refused_with_the_right_answer() {
    let dup = "<content creator='initiator' name='file0' senders='initiator'/>";
    let e = from_xml(&initiate_xml("", dup)).unwrap_err();
    assert!(
        matches!(&e.replies[..], [Iq { kind: IqKind::Error(e), .. }] if e.condition == Condition::BadRequest),
        "{e:?}"
    );
    let wrong_creator = initiate_xml("", "").replace("creator='initiator'", "creator='responder'");
    let e = from_xml(&wrong_creator).unwrap_err();
    assert!(
        matches!(&e.replies[..], [Iq { kind: IqKind::Error(e), .. }] if e.condition == Condition::BadRequest),
        "{e:?}"
    );
    // Well-formed but not for us: an ack, then a session-terminate saying why.
    let cases = [
        (
            initiate_xml("", "").replace("urn:xmpp:jingle:transports:s5b:1", "urn:example:udp"),
            ReasonCondition::UnsupportedTransports,
        ),
        (initiate_xml("", "").replace("<size>1000</size>", ""), ReasonCondition::FailedApplication),
        (
            initiate_xml("", "").replace("senders='initiator'", "senders='responder'"),
            ReasonCondition::UnsupportedApplications,
        ),
        (
            initiate_xml("", "").replace("urn:xmpp:jingle:apps:file-transfer:5", "urn:xmpp:jingle:apps:rtp:1"),
            ReasonCondition::UnsupportedApplications,
        ),
    ];
    for (xml, condition) in cases {
        let e = from_xml(&xml).unwrap_err();
        let [ack, term] = &e.replies[..] else { panic!("{e:?}") };
        assert!(matches!(ack.kind, IqKind::Result(None)));
        let j = Jingle::try_from(term.request_payload().unwrap()).unwrap();
        assert_eq!(j.action, Action::SessionTerminate);
        assert_eq!(j.reason.map(|r| r.condition), Some(condition), "{xml}");
    }
}

#[test]
fn a_finished_session_ignores_answers_and_refuses_requests() {
    // Found by the fuzz target: an error answer to our accept after the session had
    // ended failed it a second time.
    let (mut r, _) = from_xml(&initiate_xml("", "")).unwrap();
    let t = Duration::ZERO;
    let _ = r.handle(JingleInput::Accept { offset: 0 }, t);
    let out = r.handle(JingleInput::Candidates(Vec::new()), t);
    let accept_id = out
        .iter()
        .find_map(|a| match a {
            JingleAction::SendIq(iq) if iq.is_request() => Some(iq.id.clone()),
            _ => None,
        })
        .unwrap();
    let out = r.handle(JingleInput::Cancel, t);
    assert!(out.iter().any(|a| matches!(a, JingleAction::Failed { .. })));
    let late = Iq {
        id: accept_id,
        from: Some(jid("alice@example.com/g")),
        to: Some(bob()),
        kind: IqKind::Error(StanzaError::new(Condition::ServiceUnavailable)),
    };
    assert!(r.handle(JingleInput::Iq(late), t).is_empty());
    let j = Jingle::new(Action::SessionInfo, "g1");
    let ping = Iq { from: Some(jid("alice@example.com/g")), ..Iq::set("p", Some(bob()), Element::from(&j)) };
    let out = r.handle(JingleInput::Iq(ping), t);
    assert!(matches!(&out[..], [JingleAction::SendIq(Iq { kind: IqKind::Error(_), .. })]), "{out:?}");
}
