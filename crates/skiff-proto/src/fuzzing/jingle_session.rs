//! The Jingle session's target: a sending or a receiving session driven by arbitrary
//! inputs (the peer's Jingle and in-band requests, right or wrong, answers to ours,
//! the driver's outcomes, the user and the clock).

use super::transfer::{garbage_iq, pick, stanza_error, Jids, MAX_STEPS, PEER, PROXY, SID};
use super::*;
use crate::jingle::session::{JingleAction, JingleConfig, JingleInput, JingleSession};
use crate::jingle::{ft, ibb as jibb, s5b as js5b, Action, Content, Creator, Jingle, Reason, ReasonCondition};
use crate::transfer::Method;

const REASONS: &[ReasonCondition] = &[
    ReasonCondition::Success,
    ReasonCondition::Decline,
    ReasonCondition::Cancel,
    ReasonCondition::MediaError,
    ReasonCondition::FailedTransport,
    ReasonCondition::Timeout,
    ReasonCondition::GeneralError,
];

/// The data's first byte: bit 0 the role (receiver), bit 1 in-band only, bit 2 the
/// offer takes ranges, bit 3 the offer has the SHA-256. Then the size, then inputs.
pub fn jingle_session(data: &[u8]) {
    let jids = Jids::new();
    let mut b = Bytes(data);
    let flags = b.or(0);
    let size = u64::from(b.u16() % 20_000);
    let (receiving, ibb_only) = (flags & 1 != 0, flags & 2 != 0);
    let methods = if ibb_only { vec![Method::Ibb] } else { vec![Method::S5b, Method::Ibb] };
    let cfg = JingleConfig { methods, ibb_block_size: 16 + b.u16() % 8192, ..JingleConfig::default() };
    let mut file = ft::File { name: Some("a.bin".into()), size: Some(size), ..Default::default() };
    if flags & 4 != 0 {
        file.range = Some(ft::Range::default());
    }
    let hash = crate::hashes::Hash::sha256_from_hex(&"ab".repeat(32));
    if flags & 8 != 0 {
        file.hashes.extend(hash.clone());
    }
    // The session's names as the peer must use them.
    let (content, s5b_sid, ibb_sid) = if receiving { ("f0", "t1", "i1") } else { ("file", "js-s5b", "js-ibb") };
    let mut s = if receiving {
        let mut c = Content::new(Creator::Initiator, content);
        c.description = Some(Element::from(&ft::Description { version: ft::FtVersion::V5, file: file.clone() }));
        c.transport = Some(if ibb_only {
            Element::from(&jibb::Transport { sid: ibb_sid.into(), block_size: 4096, stanza_iq: true })
        } else {
            let cand = js5b::Candidate {
                cid: "pc0".into(),
                host: "127.0.0.1".into(),
                jid: PEER.into(),
                port: 9000,
                priority: js5b::priority(js5b::CandidateType::Direct, 1),
                kind: js5b::CandidateType::Direct,
            };
            Element::from(&js5b::Transport { candidates: vec![cand], ..js5b::Transport::new(s5b_sid) })
        });
        let j = Jingle::new(Action::SessionInitiate, SID).with_content(c);
        let iq = Iq { from: Some(jids.peer.clone()), ..Iq::set("i0", Some(jids.me.clone()), Element::from(&j)) };
        match JingleSession::from_initiate(cfg, jids.me.clone(), &iq, Duration::ZERO) {
            Ok((s, _)) => s,
            Err(_) => return,
        }
    } else {
        JingleSession::offer(cfg, jids.me.clone(), jids.peer.clone(), "js".into(), file)
    };
    let sid = s.sid().to_owned();
    let mut now = Duration::ZERO;
    let mut pending: Vec<(String, Option<Jid>)> = Vec::new();
    let mut ids = HashSet::new();
    let (mut ended, mut verified, mut written) = (false, None::<bool>, 0u64);
    let mut want = 0usize;
    let trace = super::transfer::tracing();
    let mut feed =
        |s: &mut JingleSession, input: JingleInput, now: Duration, pending: &mut Vec<_>, want: &mut usize| {
            let finished = s.is_finished();
            let is_request = matches!(&input, JingleInput::Iq(iq) if iq.is_request());
            if let JingleInput::Verified(ok) = input {
                verified = Some(ok);
            }
            if trace {
                eprintln!("{now:?} -> {input:?}");
            }
            let actions = s.handle(input, now);
            if trace {
                eprintln!("   <- {actions:?}");
            }
            if finished {
                // A finished session only answers requests, with errors.
                assert!(actions.len() <= usize::from(is_request), "a finished session still acts: {actions:?}");
                for a in &actions {
                    assert!(matches!(a, JingleAction::SendIq(Iq { kind: IqKind::Error(_), .. })), "{a:?}");
                }
            }
            for a in &actions {
                match a {
                    JingleAction::SendIq(iq) if iq.is_request() => {
                        assert!(ids.insert(iq.id.clone()), "request id {} used twice", iq.id);
                        pending.push((iq.id.clone(), iq.to.clone()));
                    }
                    JingleAction::SendIq(iq) => {
                        let _ = Element::from(iq.clone());
                    }
                    JingleAction::Started { offset, length, .. } | JingleAction::StreamSocket { offset, length } => {
                        assert!(offset.checked_add(*length).is_some_and(|e| e <= size), "{offset}+{length} > {size}");
                    }
                    JingleAction::ReadSocket { expected } => assert!(*expected <= size),
                    JingleAction::ReadBlock { len } => {
                        assert!(*len > 0, "a read of nothing");
                        *want = *len;
                    }
                    JingleAction::Write(bytes) => {
                        written += bytes.len() as u64;
                        assert!(written <= size, "{written} bytes written of a {size}-byte file");
                    }
                    JingleAction::Progress { bytes } => assert!(*bytes <= size, "progress {bytes} past {size}"),
                    JingleAction::Done { bytes, .. } => {
                        assert!(*bytes <= size);
                        if receiving {
                            assert_eq!(verified, Some(true), "a file named without a good Verified");
                        }
                    }
                    _ => {}
                }
                if matches!(a, JingleAction::Done { .. } | JingleAction::Rejected { .. } | JingleAction::Failed { .. })
                {
                    assert!(!ended, "finished twice: {actions:?}");
                    ended = true;
                }
            }
            assert_eq!(s.is_finished(), ended, "is_finished() disagrees with the actions: {actions:?}");
            let _ = (s.state(), s.range(), s.ibb_sid(), s.s5b_sid(), s.poll_timeout(), s.file(), s.version());
        };
    if !receiving {
        feed(&mut s, JingleInput::Start, now, &mut pending, &mut want);
    }
    for _ in 0..MAX_STEPS {
        let Some(op) = b.byte() else { break };
        let input = match op % 24 {
            0..=5 if !pending.is_empty() => {
                let (id, to) = pending.remove(usize::from(b.or(0)) % pending.len());
                let from = match b.or(0) % 8 {
                    0 => Some(jids.stranger.clone()),
                    1 => None,
                    _ => to,
                };
                let kind = match op % 3 {
                    0 | 1 => IqKind::Result(None),
                    _ => IqKind::Error(stanza_error(&mut b)),
                };
                JingleInput::Iq(Iq { id, from, to: Some(jids.me.clone()), kind })
            }
            6..=11 => {
                let j = peer_jingle(&mut b, op, &sid, content, s5b_sid, ibb_sid, hash.clone());
                let from = if b.or(0).is_multiple_of(8) { jids.stranger.clone() } else { jids.peer.clone() };
                JingleInput::Iq(Iq { from: Some(from), ..Iq::set("p1", Some(jids.me.clone()), Element::from(&j)) })
            }
            12 => {
                let sid = (*pick(&mut b, &[ibb_sid, "other"])).to_owned();
                let payload = match b.or(0) % 3 {
                    0 => Element::from(&crate::ibb::Open {
                        sid,
                        block_size: b.u16(),
                        stanza: crate::ibb::StanzaKind::Iq,
                    }),
                    1 => {
                        let n = usize::from(b.u16() % 9000);
                        Element::from(&crate::ibb::Data { sid, seq: b.u16() % 4, data: vec![7; n] })
                    }
                    _ => Element::from(&Close { sid }),
                };
                JingleInput::Iq(Iq { from: Some(jids.peer.clone()), ..Iq::set("b1", Some(jids.me.clone()), payload) })
            }
            13 => match garbage_iq(&mut b) {
                Some(iq) => JingleInput::Iq(iq),
                None => continue,
            },
            14 => {
                let n = usize::from(b.or(0) % 4);
                let hosts = (0..n)
                    .map(|i| StreamHost {
                        jid: if i == 0 { jids.me.to_string() } else { PROXY.into() },
                        host: "127.0.0.1".into(),
                        port: 7777 + i as u16,
                    })
                    .collect();
                JingleInput::Candidates(hosts)
            }
            15 => match b.or(0) % 3 {
                0 => JingleInput::CandidatesFailed("refused".into()),
                n => JingleInput::CandidateConnected { index: usize::from(n - 1) },
            },
            16 => match b.or(0) % 4 {
                0 => JingleInput::DirectConnected,
                1 => JingleInput::DirectMissing,
                2 => JingleInput::ProxyConnected,
                _ => JingleInput::ProxyFailed("refused".into()),
            },
            17 => match b.or(0) % 4 {
                0 => JingleInput::SocketDone,
                1 => JingleInput::SocketFailed("reset".into()),
                2 => JingleInput::SocketOverrun,
                _ => JingleInput::ReadFailed("i/o".into()),
            },
            18 => match b.or(0) % 4 {
                0 => JingleInput::Block(vec![0x55; if b.or(0).is_multiple_of(8) { want / 2 } else { want }]),
                1 => JingleInput::Written,
                2 => JingleInput::WriteFailed("read-only".into()),
                _ => JingleInput::OutOfSpace("full".into()),
            },
            19 => match b.or(0) % 3 {
                0 => JingleInput::Checksum(Some("cd".repeat(32))),
                1 => JingleInput::Checksum(None),
                _ => JingleInput::Verified(b.or(0) & 1 == 0),
            },
            20 => match b.or(0) % 3 {
                0 => JingleInput::Reject,
                _ => JingleInput::Accept { offset: u64::from(b.u16()) },
            },
            21 => JingleInput::Cancel,
            22 => {
                now = tick(now, s.poll_timeout(), &mut b);
                JingleInput::Tick
            }
            _ => {
                now += Duration::from_millis(u64::from(op));
                continue;
            }
        };
        feed(&mut s, input, now, &mut pending, &mut want);
    }
}

/// A Jingle request of the peer's, shaped by the data: mostly about this session and
/// its content, sometimes not.
fn peer_jingle(
    b: &mut Bytes<'_>,
    op: u8,
    sid: &str,
    content: &str,
    s5b_sid: &str,
    ibb_sid: &str,
    hash: Option<crate::hashes::Hash>,
) -> Jingle {
    let sid = if b.or(0).is_multiple_of(16) { "other" } else { sid };
    let name = if b.or(0).is_multiple_of(16) { "nope" } else { content };
    let creator = if b.or(0).is_multiple_of(16) { Creator::Responder } else { Creator::Initiator };
    let mut c = Content::new(creator, name);
    let s5b = |signal: Option<js5b::Signal>, candidates: Vec<js5b::Candidate>| {
        Element::from(&js5b::Transport { signal, candidates, ..js5b::Transport::new(s5b_sid) })
    };
    let ibb = |block_size: u16| Element::from(&jibb::Transport { sid: ibb_sid.into(), block_size, stanza_iq: true });
    let action = match op % 24 {
        6 => {
            let n = usize::from(b.or(0) % 3);
            let cands = (0..n)
                .map(|i| js5b::Candidate {
                    cid: format!("rc{i}"),
                    host: "127.0.0.1".into(),
                    jid: PEER.into(),
                    port: 9100 + i as u16,
                    priority: u32::from(b.u16()),
                    kind: *pick(b, &[js5b::CandidateType::Direct, js5b::CandidateType::Proxy]),
                })
                .collect();
            c.transport = Some(if b.or(0) & 1 == 0 { s5b(None, cands) } else { ibb(1 + b.u16() % 8192) });
            let range = match b.or(0) % 3 {
                0 => None,
                _ => Some(ft::Range {
                    offset: u64::from(b.u16()),
                    length: (b.or(0) & 1 == 0).then(|| u64::from(b.u16())),
                }),
            };
            let file = ft::File { range, ..Default::default() };
            c.description = Some(Element::from(&ft::Description { version: ft::FtVersion::V5, file }));
            Action::SessionAccept
        }
        7 => {
            let cid = *pick(b, &["js-s5b-c0", "js-s5b-c1", "rc0", "bogus"]);
            c.transport = Some(s5b(Some(js5b::Signal::CandidateUsed(cid.into())), Vec::new()));
            Action::TransportInfo
        }
        8 => {
            let signal = match b.or(0) % 3 {
                0 => js5b::Signal::CandidateError,
                1 => js5b::Signal::Activated((*pick(b, &["js-s5b-c1", "pc0", "rc1"])).into()),
                _ => js5b::Signal::ProxyError,
            };
            c.transport = Some(s5b(Some(signal), Vec::new()));
            Action::TransportInfo
        }
        9 => {
            c.transport = Some(ibb(1 + b.u16() % 8192));
            *pick(b, &[Action::TransportReplace, Action::TransportAccept, Action::TransportReject])
        }
        10 => {
            let mut j = Jingle::new(Action::SessionInfo, sid);
            match b.or(0) % 3 {
                0 => {
                    let mut file = ft::File::default();
                    file.hashes.extend(hash);
                    let content = (!b.or(0).is_multiple_of(4)).then(|| (creator, name.to_owned()));
                    let ck = ft::Checksum { version: ft::FtVersion::V5, content, file };
                    j = j.with_info(Element::from(&ck));
                }
                1 => {
                    let r = ft::Received { version: ft::FtVersion::V5, creator, name: name.into() };
                    j = j.with_info(Element::from(&r));
                }
                _ => {}
            }
            return j;
        }
        _ => {
            let reason = Reason::new(*pick(b, REASONS));
            return Jingle::new(Action::SessionTerminate, sid).with_reason(reason);
        }
    };
    Jingle::new(action, sid).with_content(c)
}
