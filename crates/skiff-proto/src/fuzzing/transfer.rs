//! The transfer machines' target: a Sender or a Receiver driven by arbitrary inputs.

use super::*;

pub(super) const PEER: &str = "alice@example.com/psi";
pub(super) const ME: &str = "bob@example.com/skiff";
pub(super) const PROXY: &str = "proxy.example.com";
pub(super) const STRANGER: &str = "mallory@evil.example/x";
pub(super) const SID: &str = "s1";

/// Inputs per run: enough for a whole small transfer, few enough to stay fast.
pub(super) const MAX_STEPS: usize = 300;

/// The JIDs of a run, parsed once.
pub(super) struct Jids {
    pub(super) me: Jid,
    pub(super) peer: Jid,
    pub(super) proxy: Jid,
    pub(super) stranger: Jid,
}

impl Jids {
    pub(super) fn new() -> Jids {
        let j = |s: &str| s.parse::<Jid>().expect("a fixed JID");
        Jids { me: j(ME), peer: j(PEER), proxy: j(PROXY), stranger: j(STRANGER) }
    }
}

/// Stanza errors a peer or proxy answers with.
pub(super) const CONDITIONS: &[Condition] = &[
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

pub(super) fn pick<'a, T>(b: &mut Bytes<'_>, from: &'a [T]) -> &'a T {
    &from[usize::from(b.or(0)) % from.len()]
}

/// A stanza from the data itself: an element of up to 255 bytes read as an IQ.
pub(super) fn garbage_iq(b: &mut Bytes<'_>) -> Option<Iq> {
    let n = usize::from(b.or(0));
    Iq::try_from(parse_element(b.take(n)).ok()?).ok()
}

/// An error with a condition the data picks.
pub(super) fn stanza_error(b: &mut Bytes<'_>) -> StanzaError {
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
pub(super) fn tracing() -> bool {
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
pub(super) fn sender(data: &[u8]) {
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
pub(super) fn receiver(data: &[u8]) {
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
        batch: None,
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
