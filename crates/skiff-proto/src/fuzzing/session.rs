//! The sign-in negotiation's and stream management's targets.

use super::*;

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
    // Our SCRAM nonce is random: the RFC 5802 example's client nonce in a challenge
    // stands for it, so that inputs get past the nonce check to the server-first
    // message's other checks and the client-final message.
    let mut nonce: Option<String> = None;
    for piece in data.split(|&b| b == 0xff).take(64) {
        let event = match piece {
            [] => StreamEvent::Open(StreamHeader { attrs: Vec::new(), default_ns: ns::CLIENT.into() }),
            [0xfe] => StreamEvent::Close,
            _ => match parse_element(piece) {
                Ok(el) => StreamEvent::Stanza(with_our_nonce(el, nonce.as_deref())),
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
                        Action::Send(el) => {
                            if el.name == "auth" {
                                nonce = scram_nonce(&el.text());
                            }
                            reparse(&el)
                        }
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

/// The client nonce of the RFC 5802 example exchange, which seeds use.
const EXAMPLE_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

/// The nonce (`r=`) of our SCRAM client-first message, base64 in `<auth/>`.
fn scram_nonce(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.split(',').find_map(|a| a.strip_prefix("r=")).map(str::to_owned)
}

/// A SASL challenge whose (base64) text holds the example nonce gets ours in its place.
fn with_our_nonce(mut el: Element, nonce: Option<&str>) -> Element {
    use base64::Engine as _;
    let (Some(nonce), "challenge") = (nonce, el.name.as_str()) else { return el };
    let engine = base64::engine::general_purpose::STANDARD;
    let Ok(bytes) = engine.decode(el.text().trim()) else { return el };
    let Ok(text) = String::from_utf8(bytes) else { return el };
    if !text.contains(EXAMPLE_NONCE) {
        return el;
    }
    let text = text.replace(EXAMPLE_NONCE, nonce);
    el.children.clear();
    el.with_text(engine.encode(text))
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
