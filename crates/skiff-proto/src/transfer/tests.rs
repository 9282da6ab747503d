//! Two peers in memory: a [`Sender`] and a [`Receiver`] wired together the way the
//! server and the drivers would (quinn-proto's `tests/util.rs` in spirit).
//!
//! The harness routes IQs between the machines (setting `from`), plays the proxy's
//! activation, simulates the sockets on a [`Net`] with switches, serves the file from
//! a `Vec`, writes the part file into another, and advances a virtual clock to the next
//! `poll_timeout` whenever nothing else is pending.

use std::collections::VecDeque;
use std::time::Duration;

use super::*;
use crate::bytestreams::StreamHost;
use crate::ibb::{Data, SEQ_SPACE};
use crate::si::FileInfo;
use crate::stanza::IqKind;
use crate::xml::Element;

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
const SID: &str = "sid1";

/// The simulated network.
#[derive(Debug, Clone)]
struct Net {
    /// The sender offers its own streamhost.
    offer_direct: bool,
    /// The sender offers the proxy.
    offer_proxy: bool,
    /// The receiver reaches the sender's streamhost.
    direct_works: bool,
    /// The sender's listener loses the connection (AwaitDirect -> DirectMissing).
    direct_lost: bool,
    /// Both peers reach the proxy.
    proxy_works: bool,
    /// The proxy activates the stream.
    activation_works: bool,
    /// The sender's socket carries this many bytes more than it should.
    s5b_extra: usize,
    /// The sender's socket closes this many bytes early.
    s5b_short: usize,
}

impl Default for Net {
    fn default() -> Self {
        Net {
            offer_direct: true,
            offer_proxy: true,
            direct_works: true,
            direct_lost: false,
            proxy_works: true,
            activation_works: true,
            s5b_extra: 0,
            s5b_short: 0,
        }
    }
}

/// The receiver's user.
#[derive(Debug, Clone, Copy)]
enum Decision {
    Accept(u64),
    Reject,
    /// Never answers.
    Ignore,
}

#[derive(Debug)]
enum Ev {
    ToSender(SenderInput),
    ToReceiver(ReceiverInput),
}

/// What the sender's data IQs go through on the way (the "server"): returns the IQs
/// to deliver instead (none = dropped, several = replayed).
type Tamper = Box<dyn FnMut(Iq) -> Vec<Iq>>;

struct Harness {
    now: Instant,
    sender: Sender,
    receiver: Option<Receiver>,
    receiver_cfg: ReceiverConfig,
    receiver_seq_start: u16,
    decision: Decision,
    net: Net,
    /// The file being sent.
    file: Vec<u8>,
    /// The receiver's part file.
    part: Vec<u8>,
    queue: VecDeque<Ev>,
    /// The sender's read position in `file`.
    read_pos: usize,
    /// Reads answered before the sender's disk stalls.
    reads_left: Option<usize>,
    /// The receiver's disk is slow: a write completes only when nothing else is
    /// pending (so the sender fills its window first).
    slow_disk: bool,
    held_writes: usize,
    /// The DST.ADDR registered with the sender's listener, and whether the receiver's
    /// connection for it arrived.
    registered: Option<String>,
    direct_arrived: bool,
    /// The DST.ADDRs the proxy has seen (receiver, sender).
    proxy_dst: (Option<String>, Option<String>),
    sender_socket: Option<(u64, u64)>,
    receiver_socket: Option<u64>,
    tamper: Option<Tamper>,
    /// Everything sent, in order: (from, iq).
    wire: Vec<(Jid, Iq)>,
    /// The non-IQ actions of each side, with the time.
    sender_log: Vec<(Instant, SenderAction)>,
    receiver_log: Vec<(Instant, ReceiverAction)>,
}

fn file_bytes(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 251) as u8).collect()
}

impl Harness {
    fn new(sender_cfg: SenderConfig, receiver_cfg: ReceiverConfig, size: usize) -> Harness {
        let file = file_bytes(size);
        let info = FileInfo { range: true, hash: Some("md5".into()), ..FileInfo::new("f.bin", size as u64) };
        let sender = Sender::new(sender_cfg, alice(), bob(), SID.into(), info, Duration::ZERO);
        Harness {
            now: Duration::ZERO,
            sender,
            receiver: None,
            receiver_cfg,
            receiver_seq_start: 0,
            decision: Decision::Accept(0),
            net: Net::default(),
            file,
            part: Vec::new(),
            queue: VecDeque::new(),
            read_pos: 0,
            reads_left: None,
            slow_disk: false,
            held_writes: 0,
            registered: None,
            direct_arrived: false,
            proxy_dst: (None, None),
            sender_socket: None,
            receiver_socket: None,
            tamper: None,
            wire: Vec::new(),
            sender_log: Vec::new(),
            receiver_log: Vec::new(),
        }
    }

    fn with_net(mut self, net: Net) -> Harness {
        self.net = net;
        self
    }

    fn with_decision(mut self, d: Decision) -> Harness {
        self.decision = d;
        self
    }

    /// Starts and runs until nothing is left to happen.
    fn run(mut self) -> Harness {
        self.queue.push_back(Ev::ToSender(SenderInput::Start));
        self.run_until(|_| false);
        self
    }

    /// Processes events until `stop` holds (checked between events) or nothing is
    /// left; the clock jumps to the next timeout when idle.
    fn run_until(&mut self, mut stop: impl FnMut(&Harness) -> bool) {
        for _ in 0..2_000_000 {
            if stop(self) {
                return;
            }
            if let Some(ev) = self.queue.pop_front() {
                self.deliver(ev);
                continue;
            }
            if self.sender_socket.is_some() && self.receiver_socket.is_some() {
                self.pump_sockets();
                continue;
            }
            if self.held_writes > 0 {
                self.held_writes -= 1;
                self.queue.push_back(Ev::ToReceiver(ReceiverInput::Written));
                continue;
            }
            let next = earliest(self.sender.poll_timeout(), self.receiver.as_ref().and_then(Receiver::poll_timeout));
            let Some(t) = next else { return };
            self.now = self.now.max(t);
            if self.sender.poll_timeout().is_some_and(|t| t <= self.now) {
                self.queue.push_back(Ev::ToSender(SenderInput::Tick));
            }
            if self.receiver.as_ref().and_then(Receiver::poll_timeout).is_some_and(|t| t <= self.now) {
                self.queue.push_back(Ev::ToReceiver(ReceiverInput::Tick));
            }
        }
        panic!("the transfer did not settle");
    }

    fn deliver(&mut self, ev: Ev) {
        match ev {
            Ev::ToSender(input) => {
                let actions = self.sender.handle(input, self.now);
                for a in actions {
                    self.sender_action(a);
                }
            }
            Ev::ToReceiver(input) => {
                let Some(r) = self.receiver.as_mut() else { return };
                let actions = r.handle(input, self.now);
                for a in actions {
                    self.receiver_action(a);
                }
            }
        }
    }

    // --- The sender's driver and the server -----------------------------------------

    fn sender_action(&mut self, a: SenderAction) {
        match a {
            SenderAction::SendIq(mut iq) => {
                iq.from = Some(alice());
                self.wire.push((alice(), iq.clone()));
                if iq.to == Some(jid(PROXY)) {
                    return self.proxy_answers(iq);
                }
                let iqs = match self.tamper.as_mut() {
                    Some(t) if iq.request_payload().is_some_and(|p| p.is("data", ns::IBB)) => t(iq),
                    _ => vec![iq],
                };
                for iq in iqs {
                    self.deliver_to_receiver(iq);
                }
            }
            SenderAction::GatherStreamhosts { dst_addr } | SenderAction::RefreshProxies { dst_addr } => {
                self.registered = Some(dst_addr);
                let mut hosts = Vec::new();
                if self.net.offer_direct {
                    hosts.push(StreamHost { jid: alice().to_string(), host: "127.0.0.1".into(), port: 5086 });
                }
                if self.net.offer_proxy {
                    hosts.push(StreamHost { jid: PROXY.into(), host: "10.0.0.1".into(), port: 7777 });
                }
                self.queue.push_back(Ev::ToSender(SenderInput::Streamhosts(hosts)));
            }
            SenderAction::AwaitDirect => {
                let input = if self.direct_arrived && !self.net.direct_lost {
                    SenderInput::DirectConnected
                } else {
                    SenderInput::DirectMissing
                };
                self.queue.push_back(Ev::ToSender(input));
            }
            SenderAction::ConnectProxy { host, port, dst_addr } => {
                let input = if self.net.proxy_works {
                    self.proxy_dst.1 = Some(dst_addr);
                    SenderInput::ProxyConnected
                } else {
                    SenderInput::ProxyFailed(format!("cannot connect to {host}:{port}: connection refused"))
                };
                self.queue.push_back(Ev::ToSender(input));
            }
            SenderAction::StreamSocket { offset, length } => self.sender_socket = Some((offset, length)),
            SenderAction::ReadBlock { len } => {
                if let Some(left) = self.reads_left.as_mut() {
                    if *left == 0 {
                        self.sender_log.push((self.now, a));
                        return; // the disk stalls
                    }
                    *left -= 1;
                }
                let end = (self.read_pos + len).min(self.file.len());
                let block = self.file[self.read_pos.min(end)..end].to_vec();
                self.read_pos = end;
                self.queue.push_back(Ev::ToSender(SenderInput::Block(block)));
            }
            SenderAction::Started { offset, .. } => {
                self.read_pos = usize::try_from(offset).unwrap();
                self.sender_log.push((self.now, a));
            }
            other => self.sender_log.push((self.now, other)),
        }
    }

    /// The server delivers a sender's IQ to the receiver (creating it for the offer).
    fn deliver_to_receiver(&mut self, iq: Iq) {
        if self.receiver.is_none() {
            match Receiver::from_offer(self.receiver_cfg.clone(), bob(), iq, self.now) {
                Ok(mut r) => {
                    r.set_seq_start(self.receiver_seq_start);
                    self.receiver = Some(r);
                    let input = match self.decision {
                        Decision::Accept(offset) => {
                            self.part = self.file[..usize::try_from(offset).unwrap()].to_vec();
                            Some(ReceiverInput::Accept { offset })
                        }
                        Decision::Reject => Some(ReceiverInput::Reject),
                        Decision::Ignore => None,
                    };
                    self.queue.extend(input.map(Ev::ToReceiver));
                }
                Err(reply) => self.receiver_action(ReceiverAction::SendIq(reply)),
            }
            return;
        }
        self.queue.push_back(Ev::ToReceiver(ReceiverInput::Iq(iq)));
    }

    /// The proxy answers the activation.
    fn proxy_answers(&mut self, iq: Iq) {
        let paired = self.proxy_dst.0.is_some() && self.proxy_dst.0 == self.proxy_dst.1;
        let mut answer = if self.net.activation_works && paired {
            iq.result_for(None)
        } else {
            iq.error_for(crate::stanza::StanzaError::new(Condition::NotAllowed))
        };
        answer.from = Some(jid(PROXY));
        self.wire.push((jid(PROXY), answer.clone()));
        self.queue.push_back(Ev::ToSender(SenderInput::Iq(answer)));
    }

    // --- The receiver's driver -----------------------------------------------------

    fn receiver_action(&mut self, a: ReceiverAction) {
        match a {
            ReceiverAction::SendIq(mut iq) => {
                iq.from = Some(bob());
                self.wire.push((bob(), iq.clone()));
                self.queue.push_back(Ev::ToSender(SenderInput::Iq(iq)));
            }
            ReceiverAction::ConnectCandidates { hosts, dst_addr } => {
                let mut input = ReceiverInput::CandidatesFailed("every streamhost refused".into());
                for h in hosts {
                    let works = if h.jid == alice().to_string() {
                        // Our listener takes only the DST.ADDR the sender registered.
                        self.net.direct_works && self.registered.as_deref() == Some(dst_addr.as_str())
                    } else {
                        self.net.proxy_works
                    };
                    if works {
                        if h.jid == alice().to_string() {
                            self.direct_arrived = true;
                        } else {
                            self.proxy_dst.0 = Some(dst_addr.clone());
                        }
                        input = ReceiverInput::CandidateConnected { jid: h.jid };
                        break;
                    }
                }
                self.queue.push_back(Ev::ToReceiver(input));
            }
            ReceiverAction::ReadSocket { expected } => self.receiver_socket = Some(expected),
            ReceiverAction::CloseSocket => {
                self.receiver_socket = None;
                self.receiver_log.push((self.now, a));
            }
            ReceiverAction::Write(bytes) => {
                self.part.extend_from_slice(&bytes);
                if self.slow_disk {
                    self.held_writes += 1;
                } else {
                    self.queue.push_back(Ev::ToReceiver(ReceiverInput::Written));
                }
            }
            ReceiverAction::Started { offset, .. } => {
                self.part.truncate(usize::try_from(offset).unwrap());
                self.receiver_log.push((self.now, a));
            }
            other => self.receiver_log.push((self.now, other)),
        }
    }

    /// Both ends of a SOCKS5 bytestream are in their data phase: move the bytes.
    fn pump_sockets(&mut self) {
        let (Some((offset, length)), Some(expected)) = (self.sender_socket.take(), self.receiver_socket.take()) else {
            return;
        };
        let (offset, length) = (usize::try_from(offset).unwrap(), usize::try_from(length).unwrap());
        let mut bytes = self.file[offset..offset + length - self.net.s5b_short].to_vec();
        bytes.extend(std::iter::repeat_n(0xEE, self.net.s5b_extra));
        let expected = usize::try_from(expected).unwrap();
        let take = bytes.len().min(expected);
        self.part.extend_from_slice(&bytes[..take]);
        let input = match bytes.len().cmp(&expected) {
            std::cmp::Ordering::Equal => ReceiverInput::SocketDone,
            std::cmp::Ordering::Less => ReceiverInput::SocketFailed(format!(
                "the sender closed the stream after {} of {} bytes",
                self.part.len(),
                self.receiver.as_ref().map_or(0, |r| r.offer().file.size)
            )),
            std::cmp::Ordering::Greater => ReceiverInput::SocketOverrun,
        };
        self.queue.push_back(Ev::ToReceiver(input));
        self.queue.push_back(Ev::ToSender(SenderInput::SocketDone));
    }

    // --- Looking at the outcome ----------------------------------------------------

    fn receiver(&self) -> &Receiver {
        self.receiver.as_ref().expect("the offer reached the receiver")
    }

    /// The sender's last action (its outcome once it is finished).
    fn sender_end(&self) -> &SenderAction {
        &self.sender_log.last().expect("the sender did something").1
    }

    fn receiver_end(&self) -> &ReceiverAction {
        &self.receiver_log.last().expect("the receiver did something").1
    }

    fn sender_started(&self) -> Vec<&SenderAction> {
        self.sender_log.iter().map(|(_, a)| a).filter(|a| matches!(a, SenderAction::Started { .. })).collect()
    }

    fn receiver_started(&self) -> Vec<&ReceiverAction> {
        self.receiver_log.iter().map(|(_, a)| a).filter(|a| matches!(a, ReceiverAction::Started { .. })).collect()
    }

    fn fell_back(&self) -> Option<&str> {
        self.sender_log.iter().find_map(|(_, a)| match a {
            SenderAction::FellBack { reason } => Some(reason.as_str()),
            _ => None,
        })
    }

    /// The IQs `from` sent whose payload is `<name xmlns=ns>`.
    fn sent(&self, from: &Jid, name: &str, namespace: &str) -> Vec<&Iq> {
        self.wire
            .iter()
            .filter(|(f, iq)| f == from && iq.request_payload().is_some_and(|p| p.is(name, namespace)))
            .map(|(_, iq)| iq)
            .collect()
    }

    /// The in-band blocks the sender sent.
    fn blocks(&self) -> Vec<Data> {
        self.sent(&alice(), "data", ns::IBB)
            .iter()
            .map(|iq| Data::try_from(iq.request_payload().unwrap()).unwrap())
            .collect()
    }

    /// The error answers `from` sent, as text.
    fn errors(&self, from: &Jid) -> Vec<String> {
        self.wire
            .iter()
            .filter(|(f, _)| f == from)
            .filter_map(|(_, iq)| match &iq.kind {
                IqKind::Error(e) => Some(e.to_string()),
                _ => None,
            })
            .collect()
    }

    fn assert_complete(&self, route: Route) {
        let bytes = self.sender.range().1;
        assert_eq!(self.sender_end(), &SenderAction::Done { route, bytes, verified: false }, "{:#?}", self.sender_log);
        assert_eq!(
            self.receiver_end(),
            &ReceiverAction::Done { route, sha256: None, checksum: None },
            "{:#?}",
            self.receiver_log
        );
        assert_eq!(self.part.len(), self.file.len());
        assert!(self.part == self.file, "the part file differs from the file");
        assert!(self.sender.is_finished() && self.receiver().is_finished());
    }
}

fn ibb_only() -> ReceiverConfig {
    ReceiverConfig { methods: vec![Method::Ibb], ..ReceiverConfig::default() }
}

fn skiff_sender() -> SenderConfig {
    SenderConfig { skiff_peer: true, ..SenderConfig::default() }
}

// --- Full transfers over each route --------------------------------------------------

#[test]
fn direct_route_transfers_every_size() {
    for size in [0, 1, 70_000] {
        let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), size).run();
        h.assert_complete(Route::S5bDirect);
        let host = Some(alice().to_string());
        assert_eq!(
            h.sender_started(),
            [&SenderAction::Started {
                route: Route::S5bDirect,
                streamhost: host.clone(),
                offset: 0,
                length: size as u64
            }]
        );
        assert_eq!(
            h.receiver_started(),
            [&ReceiverAction::Started { route: Route::S5bDirect, streamhost: host, offset: 0 }]
        );
        assert!(h.sent(&alice(), "open", ns::IBB).is_empty());
        assert_eq!(h.now, Duration::ZERO, "no timeout was needed");
    }
}

#[test]
fn proxy_route_transfers_every_size() {
    for size in [0, 1, 70_000] {
        let net = Net { direct_works: false, ..Net::default() };
        let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), size).with_net(net).run();
        h.assert_complete(Route::S5bProxy);
        assert_eq!(
            h.receiver_started(),
            [&ReceiverAction::Started { route: Route::S5bProxy, streamhost: Some(PROXY.into()), offset: 0 }]
        );
        let activations = h.sent(&alice(), "query", ns::BYTESTREAMS);
        let activate = activations.last().unwrap();
        assert_eq!(activate.to, Some(jid(PROXY)));
        assert_eq!(
            activate.request_payload().unwrap().child_text("activate", ns::BYTESTREAMS).as_deref(),
            Some("bob@example.com/skiff")
        );
        // Both ends named the same DST.ADDR at the proxy.
        assert_eq!(h.proxy_dst.0, h.proxy_dst.1);
    }
}

#[test]
fn in_band_route_transfers_every_size() {
    for size in [0, 1, 70_000] {
        // A Skiff peer takes 64 KiB blocks.
        let h = Harness::new(skiff_sender(), ibb_only(), size).run();
        h.assert_complete(Route::Ibb);
        let blocks = h.blocks();
        assert_eq!(blocks.len(), size.div_ceil(65535));
        assert!(blocks.iter().all(|b| b.data.len() <= 65535 && !b.data.is_empty()));
        assert_eq!(h.sent(&alice(), "close", ns::IBB).len(), 1);
        // Another client gets the XEP's 4096 and a window of 16 in flight.
        let h = Harness::new(SenderConfig::default(), ibb_only(), size).run();
        h.assert_complete(Route::Ibb);
        let seqs: Vec<u16> = h.blocks().iter().map(|b| b.seq).collect();
        assert_eq!(seqs, (0..size.div_ceil(4096) as u16).collect::<Vec<_>>());
        let opens = h.sent(&alice(), "open", ns::IBB);
        assert_eq!(opens[0].request_payload().unwrap().attr("block-size"), Some("4096"));
        // Progress ends at the file size.
        let last_progress = h.sender_log.iter().rev().find_map(|(_, a)| match a {
            SenderAction::Progress { acked } => Some(*acked),
            _ => None,
        });
        assert_eq!(last_progress, (size > 0).then_some(size as u64));
    }
}

#[test]
fn in_band_window_bounds_the_data_in_flight() {
    let cfg = SenderConfig { ibb_window: 3, ..SenderConfig::default() };
    let mut h = Harness::new(cfg, ibb_only(), 40_000);
    h.slow_disk = true;
    h.queue.push_back(Ev::ToSender(SenderInput::Start));
    let mut most = 0;
    h.run_until(|h| {
        most = most.max(outstanding(h));
        false
    });
    h.assert_complete(Route::Ibb);
    assert_eq!(most, 3);
}

/// Data IQs the sender sent that the receiver has not answered yet.
fn outstanding(h: &Harness) -> usize {
    let answered: Vec<&str> =
        h.wire.iter().filter(|(f, iq)| *f == bob() && !iq.is_request()).map(|(_, iq)| iq.id.as_str()).collect();
    h.sent(&alice(), "data", ns::IBB).iter().filter(|iq| !answered.contains(&iq.id.as_str())).count()
}

#[test]
fn sequence_numbers_wrap_past_65535() {
    // Started near the wrap instead of sending 65536 blocks.
    let cfg = SenderConfig { ibb_block_size: 1024, skiff_peer: true, ..SenderConfig::default() };
    let size = 20 * 1024 + 5;
    let mut h = Harness::new(cfg, ibb_only(), size);
    h.sender.set_seq_start(65530);
    h.receiver_seq_start = 65530;
    let h = h.run();
    h.assert_complete(Route::Ibb);
    let seqs: Vec<u64> = h.blocks().iter().map(|b| u64::from(b.seq)).collect();
    let expected: Vec<u64> = (65530..65530 + 21).map(|s| s % SEQ_SPACE).collect();
    assert_eq!(seqs, expected);
    assert_eq!(seqs[6], 0);
}

// --- Fallback and negotiation -------------------------------------------------------

#[test]
fn falls_back_to_in_band_when_every_candidate_fails() {
    let net = Net { direct_works: false, proxy_works: false, ..Net::default() };
    let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 70_000).with_net(net).run();
    h.assert_complete(Route::Ibb);
    assert_eq!(
        h.fell_back(),
        Some(
            "the receiver could not use any streamhost: bob@example.com/skiff answered with an error: \
             item-not-found: could not connect to any streamhost"
        )
    );
    assert_eq!(h.receiver().method(), Method::S5b, "the accept named bytestreams");
    assert_eq!(h.receiver_started(), [&ReceiverAction::Started { route: Route::Ibb, streamhost: None, offset: 0 }]);
}

#[test]
fn falls_back_when_the_proxy_refuses_activation() {
    let net = Net { direct_works: false, activation_works: false, ..Net::default() };
    let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 10_000).with_net(net).run();
    h.assert_complete(Route::Ibb);
    assert_eq!(
        h.fell_back(),
        Some("the proxy refused to activate the stream: proxy.example.com answered with an error: not-allowed")
    );
    // The receiver had connected to the proxy; it drops that socket for the open.
    let r: Vec<&ReceiverAction> = h.receiver_log.iter().map(|(_, a)| a).collect();
    assert!(matches!(r[0], ReceiverAction::Started { route: Route::S5bProxy, .. }));
    assert_eq!(r[1], &ReceiverAction::CloseSocket);
    assert!(matches!(r[2], ReceiverAction::Started { route: Route::Ibb, .. }));
}

#[test]
fn falls_back_when_the_direct_connection_is_lost() {
    let net = Net { direct_lost: true, ..Net::default() };
    let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 5000).with_net(net).run();
    h.assert_complete(Route::Ibb);
    assert_eq!(h.fell_back(), Some("the receiver says it used our streamhost, but its connection never arrived"));
}

#[test]
fn falls_back_when_the_proxy_cannot_be_reached_by_the_sender() {
    // No own streamhost offered; the proxy works for the receiver only.
    let net = Net { offer_direct: false, ..Net::default() };
    let mut h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 5000).with_net(net);
    h.queue.push_back(Ev::ToSender(SenderInput::Start));
    h.run_until(|h| h.proxy_dst.0.is_some());
    h.net.proxy_works = false;
    h.run_until(|_| false);
    h.assert_complete(Route::Ibb);
    assert_eq!(h.fell_back(), Some("cannot connect to 10.0.0.1:7777: connection refused"));
}

#[test]
fn without_in_band_a_failed_bytestream_fails() {
    let sender = SenderConfig { methods: vec![Method::S5b], ..SenderConfig::default() };
    let net = Net { direct_works: false, proxy_works: false, ..Net::default() };
    let h = Harness::new(sender, ReceiverConfig::default(), 100).with_net(net).run();
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed {
            reason: FailReason::Network,
            error: "the receiver could not use any streamhost: bob@example.com/skiff answered with an error: \
                    item-not-found: could not connect to any streamhost"
                .into(),
            resumable: true
        }
    );
    // The receiver waits for a fallback that never comes.
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Timeout,
            error: "the sender opened no stream within 60 seconds".into(),
            resumable: true
        }
    );
    assert_eq!(h.now, Duration::from_secs(60));
}

#[test]
fn block_size_steps_down_on_resource_constraint() {
    let receiver = ReceiverConfig { max_block_size: 8192, ..ibb_only() };
    let h = Harness::new(skiff_sender(), receiver, 70_000).run();
    h.assert_complete(Route::Ibb);
    let sizes: Vec<&str> = h
        .sent(&alice(), "open", ns::IBB)
        .iter()
        .map(|iq| iq.request_payload().unwrap().attr("block-size").unwrap())
        .collect();
    assert_eq!(sizes, ["65535", "32768", "16384", "8192"]);
    assert_eq!(h.errors(&bob()).len(), 3);
    assert!(h.blocks().iter().all(|b| b.data.len() <= 8192));
    assert_eq!(h.blocks().len(), 70_000usize.div_ceil(8192));
}

#[test]
fn no_common_method_is_refused_at_once() {
    let sender = SenderConfig { methods: vec![Method::S5b], ..SenderConfig::default() };
    let h = Harness::new(sender, ibb_only(), 10).run();
    assert!(h.receiver.is_none());
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed {
            reason: FailReason::Unsupported,
            error: "bob@example.com/skiff supports none of the transfer methods offered".into(),
            resumable: false
        }
    );
}

// --- Resume, rejection, timeouts ---------------------------------------------------

#[test]
fn resume_sends_only_the_tail() {
    for (net, receiver, route) in [
        (Net::default(), ReceiverConfig::default(), Route::S5bDirect),
        (Net { direct_works: false, ..Net::default() }, ReceiverConfig::default(), Route::S5bProxy),
        (Net::default(), ibb_only(), Route::Ibb),
    ] {
        let h = Harness::new(SenderConfig::default(), receiver, 70_000)
            .with_net(net)
            .with_decision(Decision::Accept(30_000))
            .run();
        h.assert_complete(route);
        assert_eq!(h.sender.range(), (30_000, 40_000));
        assert_eq!(h.sender_end(), &SenderAction::Done { route, bytes: 40_000, verified: false });
        let started = h.sender_started();
        assert!(matches!(started[..], [SenderAction::Started { offset: 30_000, length: 40_000, .. }]));
        assert!(matches!(h.receiver_started()[..], [ReceiverAction::Started { offset: 30_000, .. }]));
        if route == Route::Ibb {
            assert_eq!(h.blocks().iter().map(|b| b.data.len()).sum::<usize>(), 40_000);
        }
    }
}

#[test]
fn rejection() {
    let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 10).with_decision(Decision::Reject).run();
    assert_eq!(h.sender_end(), &SenderAction::Rejected { reason: "declined: Offer declined".into() });
    assert_eq!(h.receiver_end(), &ReceiverAction::Rejected);
    assert_eq!(h.sender.state(), SenderState::Rejected);
}

#[test]
fn offer_timeout_on_the_virtual_clock() {
    let sender = SenderConfig { offer_timeout: Duration::from_secs(120), ..SenderConfig::default() };
    let h = Harness::new(sender, ReceiverConfig::default(), 10).with_decision(Decision::Ignore).run();
    let (at, end) = h.sender_log.last().unwrap();
    assert_eq!(*at, Duration::from_secs(120));
    assert_eq!(
        end,
        &SenderAction::Failed {
            reason: FailReason::Timeout,
            error: "the offer got no answer: no answer from bob@example.com/skiff within 120 seconds".into(),
            resumable: false
        }
    );
    // The receiver's own decision timeout declines later; the sender ignores the answer.
    assert_eq!(h.receiver_log.last(), Some(&(Duration::from_secs(300), ReceiverAction::Rejected)));
    assert_eq!(h.sender.state(), SenderState::Failed);
}

#[test]
fn receiver_idle_timeout_when_the_sender_stalls() {
    let mut h = Harness::new(SenderConfig::default(), ibb_only(), 70_000);
    h.reads_left = Some(5);
    let mut h = h.run();
    let (at, end) = h.receiver_log.last().unwrap().clone();
    assert_eq!(
        end,
        ReceiverAction::Failed {
            reason: FailReason::Timeout,
            error: "no in-band data for 60 seconds".into(),
            resumable: true
        }
    );
    assert_eq!(at, Duration::from_secs(60));
    assert_eq!(h.receiver().written(), 5 * 4096);
    // The disk comes back: the next block meets a closed stream.
    h.reads_left = None;
    h.queue.push_back(Ev::ToSender(SenderInput::Block(vec![1; 10])));
    h.run_until(|_| false);
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed {
            reason: FailReason::Network,
            error: "the in-band stream broke after 20480 bytes: bob@example.com/skiff answered with an error: \
                    item-not-found: no such stream"
                .into(),
            resumable: true
        }
    );
}

#[test]
fn sender_times_out_data_the_receiver_never_answers() {
    let mut h = Harness::new(SenderConfig::default(), ibb_only(), 70_000);
    // The server drops every block after the third.
    let mut n = 0;
    h.tamper = Some(Box::new(move |iq| {
        n += 1;
        if n > 3 {
            Vec::new()
        } else {
            vec![iq]
        }
    }));
    let h = h.run();
    let (at, end) = h.sender_log.last().unwrap();
    assert_eq!(*at, Duration::from_secs(30));
    assert_eq!(
        end,
        &SenderAction::Failed {
            reason: FailReason::Timeout,
            error: "the in-band stream broke after 12288 bytes: no answer from bob@example.com/skiff within 30 seconds"
                .into(),
            resumable: true
        }
    );
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Timeout,
            error: "no in-band data for 60 seconds".into(),
            resumable: true
        }
    );
}

// --- A misbehaving sender ----------------------------------------------------------

fn tampered(size: usize, tamper: Tamper) -> Harness {
    let mut h = Harness::new(skiff_sender(), ibb_only(), size);
    h.tamper = Some(tamper);
    h.run()
}

#[test]
fn out_of_order_block_fails_both() {
    let mut n = 0;
    let cfg = SenderConfig { ibb_block_size: 1024, ..skiff_sender() };
    let mut h = Harness::new(cfg, ibb_only(), 10_000);
    h.tamper = Some(Box::new(move |mut iq| {
        n += 1;
        if n == 2 {
            set_data(&mut iq, |d| d.seq = 5);
        }
        vec![iq]
    }));
    let h = h.run();
    let error = "in-band block out of order: expected sequence number 1, got 5";
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: format!(
                "{error} (peers that do not wrap sequence numbers after block 65535 fail here; larger blocks avoid it)"
            ),
            resumable: true
        }
    );
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed {
            reason: FailReason::Network,
            error: format!(
                "the in-band stream broke after 1024 bytes: bob@example.com/skiff answered with an error: \
                 unexpected-request: {error}"
            ),
            resumable: true
        }
    );
}

fn set_data(iq: &mut Iq, f: impl FnOnce(&mut Data)) {
    let IqKind::Set(p) = &mut iq.kind else { panic!() };
    let mut d = Data::try_from(&*p).unwrap();
    f(&mut d);
    *p = Element::from(&d);
}

#[test]
fn reused_seq_is_refused_and_the_transfer_completes() {
    let mut n = 0;
    let h = tampered(
        100_000,
        Box::new(move |iq| {
            n += 1;
            // The server replays the first block.
            if n == 1 {
                vec![iq.clone(), iq]
            } else {
                vec![iq]
            }
        }),
    );
    h.assert_complete(Route::Ibb);
    assert_eq!(h.errors(&bob()), ["unexpected-request: in-band block 0 received twice"]);
}

#[test]
fn oversize_block_fails_both() {
    let cfg = SenderConfig { ibb_block_size: 1024, ..skiff_sender() };
    let mut h = Harness::new(cfg, ibb_only(), 10_000);
    h.tamper = Some(Box::new(|mut iq| {
        set_data(&mut iq, |d| d.data.push(0));
        vec![iq]
    }));
    let h = h.run();
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender sent a 1025-byte block over the agreed 1024".into(),
            resumable: true
        }
    );
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed {
            reason: FailReason::Network,
            error: "the in-band stream broke after 0 bytes: bob@example.com/skiff answered with an error: \
                    bad-request: block larger than the agreed block-size"
                .into(),
            resumable: true
        }
    );
}

#[test]
fn more_bytes_than_announced_in_band() {
    let h = tampered(
        100,
        Box::new(|mut iq| {
            set_data(&mut iq, |d| d.data.extend([1, 2, 3]));
            vec![iq]
        }),
    );
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "cannot store the data: the sender sent more than the 100 bytes it announced (103 more after 0)"
                .into(),
            resumable: false
        }
    );
    assert!(matches!(h.sender_end(), SenderAction::Failed { resumable: true, .. }));
    assert!(h.part.is_empty(), "nothing of it was stored");
}

#[test]
fn fewer_bytes_than_announced_in_band() {
    let h = tampered(
        100,
        Box::new(|mut iq| {
            set_data(&mut iq, |d| {
                d.data.pop();
            });
            vec![iq]
        }),
    );
    // The sender believes it is done; the receiver knows better.
    assert_eq!(h.sender_end(), &SenderAction::Done { route: Route::Ibb, bytes: 100, verified: false });
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender announced 100 bytes but sent 99".into(),
            resumable: true
        }
    );
}

#[test]
fn size_lies_over_a_bytestream() {
    let net = Net { s5b_extra: 7, ..Net::default() };
    let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 1000).with_net(net).run();
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender sent more than the 1000 bytes it announced".into(),
            resumable: false
        }
    );
    let net = Net { s5b_short: 10, ..Net::default() };
    let h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 1000).with_net(net).run();
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Network,
            error: "the sender closed the stream after 990 of 1000 bytes".into(),
            resumable: true
        }
    );
}

#[test]
fn a_file_shorter_than_announced_stops_the_sender() {
    let mut h = Harness::new(SenderConfig::default(), ibb_only(), 10_000);
    h.file.truncate(5000);
    let h = h.run();
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed {
            reason: FailReason::Source,
            error: "f.bin got shorter while it was being sent".into(),
            resumable: false
        }
    );
    // The sender closes the stream: the receiver knows at once.
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed {
            reason: FailReason::Protocol,
            error: "the sender announced 10000 bytes but sent 5000".into(),
            resumable: true
        }
    );
    assert_eq!(h.now, Duration::ZERO);
}

// --- Cancel and stray answers -------------------------------------------------------

#[test]
fn sender_cancels_mid_stream() {
    let mut h = Harness::new(SenderConfig::default(), ibb_only(), 70_000);
    h.queue.push_back(Ev::ToSender(SenderInput::Start));
    h.run_until(|h| h.receiver.as_ref().is_some_and(|r| r.written() >= 3 * 4096));
    h.queue.push_back(Ev::ToSender(SenderInput::Cancel));
    h.run_until(|_| false);
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }
    );
    // The close tells the receiver at once (no idle timeout needed).
    assert_eq!(h.now, Duration::ZERO);
    let ReceiverAction::Failed { reason: FailReason::Protocol, error, resumable: true } = h.receiver_end() else {
        panic!("{:?}", h.receiver_end())
    };
    assert!(error.starts_with("the sender announced 70000 bytes but sent "), "{error}");
}

#[test]
fn receiver_cancels_mid_stream() {
    let mut h = Harness::new(SenderConfig::default(), ibb_only(), 70_000);
    h.queue.push_back(Ev::ToSender(SenderInput::Start));
    h.run_until(|h| h.receiver.as_ref().is_some_and(|r| r.written() >= 3 * 4096));
    h.queue.push_back(Ev::ToReceiver(ReceiverInput::Cancel));
    h.run_until(|_| false);
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }
    );
    let SenderAction::Failed { reason: FailReason::Network, error, resumable: true } = h.sender_end() else {
        panic!("{:?}", h.sender_end())
    };
    assert!(error.starts_with("the in-band stream broke after "), "{error}");
    assert!(error.ends_with("item-not-found: no such stream"), "{error}");
    assert_eq!(h.now, Duration::ZERO);
}

#[test]
fn receiver_cancels_while_connecting_candidates() {
    let mut h = Harness::new(SenderConfig::default(), ReceiverConfig::default(), 1000);
    h.queue.push_back(Ev::ToSender(SenderInput::Start));
    h.run_until(|h| h.receiver.as_ref().is_some_and(|r| r.state() == ReceiverState::Connecting));
    h.queue.push_front(Ev::ToReceiver(ReceiverInput::Cancel));
    h.run_until(|_| false);
    assert_eq!(
        h.receiver_end(),
        &ReceiverAction::Failed { reason: FailReason::Cancelled, error: "cancelled".into(), resumable: true }
    );
    // The streamhosts got "no such stream"; the fallback open too.
    assert_eq!(
        h.sender_end(),
        &SenderAction::Failed {
            reason: FailReason::Refused,
            error: "the receiver refused the in-band stream: bob@example.com/skiff answered with an error: \
                    item-not-found: no such stream"
                .into(),
            resumable: true
        }
    );
}

#[test]
fn unknown_answers_are_ignored_mid_transfer() {
    let mut h = Harness::new(SenderConfig::default(), ibb_only(), 30_000);
    h.queue.push_back(Ev::ToSender(SenderInput::Start));
    h.run_until(|h| h.sender.state() == SenderState::Sending(Route::Ibb));
    let stray =
        |id: &str, kind: IqKind| SenderInput::Iq(Iq { id: id.into(), from: Some(bob()), to: Some(alice()), kind });
    let err = IqKind::Error(crate::stanza::StanzaError::new(Condition::ItemNotFound));
    for input in [
        stray("nope", IqKind::Result(None)),
        stray("sid1-999", err.clone()),
        stray("", err),
        // The offer's id, answered again.
        stray("sid1-1", IqKind::Result(None)),
    ] {
        assert!(h.sender.handle(input, h.now).is_empty());
    }
    h.run_until(|_| false);
    h.assert_complete(Route::Ibb);
}
