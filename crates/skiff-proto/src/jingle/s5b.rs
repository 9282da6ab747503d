//! XEP-0260: Jingle SOCKS5 Bytestreams, the transport `<transport
//! xmlns='urn:xmpp:jingle:transports:s5b:1' sid dstaddr mode>` with its candidates,
//! and the transport-info signals (`candidate-used`, `candidate-error`, `activated`,
//! `proxy-error`).
//!
//! Both parties offer candidates and each connects to the other's, in priority order;
//! each then says which it could use (or that none worked), and the nominated
//! candidate is the one of higher priority, the initiator's on a tie
//! ([`nominate`]). A proxy candidate is activated by the party that offered it, which
//! then signals `activated`. The SOCKS5 DST.ADDR is SHA-1(sid + initiator + responder)
//! for the initiator's candidates and SHA-1(sid + responder + initiator) for the
//! responder's ([`dst_addr`]); `sid` is the transport's, not the session's.

use super::Creator;
use crate::error::{expect, req_attr, req_parse, ParseError};
use crate::ns;
use crate::xml::Element;

/// Most candidates read from one transport.
pub const MAX_CANDIDATES: usize = 16;

/// What a candidate is (its `type`), with the preference XEP-0260 suggests for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    Direct,
    Assisted,
    Tunnel,
    Proxy,
}

crate::wire_enum!(CandidateType, "candidate type", {
    Direct => "direct", Assisted => "assisted", Tunnel => "tunnel", Proxy => "proxy",
});

impl CandidateType {
    /// The type preference of the priority formula.
    pub fn preference(self) -> u32 {
        match self {
            CandidateType::Direct => 126,
            CandidateType::Assisted => 120,
            CandidateType::Tunnel => 110,
            CandidateType::Proxy => 10,
        }
    }
}

/// `priority = 2^16 × type preference + local preference`.
pub fn priority(kind: CandidateType, local: u16) -> u32 {
    (kind.preference() << 16) + u32::from(local)
}

/// The DST.ADDR for connecting to candidates offered by `offered_by`.
pub fn dst_addr(sid: &str, offered_by: Creator, initiator: &str, responder: &str) -> String {
    match offered_by {
        Creator::Initiator => crate::bytestreams::dst_addr(sid, initiator, responder),
        Creator::Responder => crate::bytestreams::dst_addr(sid, responder, initiator),
    }
}

/// One `<candidate/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub cid: String,
    pub host: String,
    /// The streamhost's JID (the offering client, or the proxy).
    pub jid: String,
    pub port: u16,
    pub priority: u32,
    pub kind: CandidateType,
}

impl TryFrom<&Element> for Candidate {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Candidate, ParseError> {
        expect(el, "candidate", ns::JINGLE_S5B)?;
        let kind = match el.attr("type") {
            None => CandidateType::Direct,
            Some(t) => {
                t.parse().map_err(|e: crate::vocab::UnknownValue| ParseError::invalid("candidate", e.to_string()))?
            }
        };
        Ok(Candidate {
            cid: super::id_attr(el, "candidate", "cid")?,
            host: req_attr(el, "candidate", "host")?.to_owned(),
            jid: req_attr(el, "candidate", "jid")?.to_owned(),
            port: req_parse(el, "candidate", "port")?,
            priority: req_parse(el, "candidate", "priority")?,
            kind,
        })
    }
}

impl From<&Candidate> for Element {
    fn from(c: &Candidate) -> Element {
        Element::new("candidate", ns::JINGLE_S5B)
            .with_attr("cid", c.cid.as_str())
            .with_attr("host", c.host.as_str())
            .with_attr("jid", c.jid.as_str())
            .with_attr("port", c.port.to_string())
            .with_attr("priority", c.priority.to_string())
            .with_attr("type", c.kind.as_str())
    }
}

/// What a transport-info says of the negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The sender connected to the peer's candidate `cid`.
    CandidateUsed(String),
    /// The sender could not connect to any of the peer's candidates.
    CandidateError,
    /// The proxy candidate `cid` was activated by the sender.
    Activated(String),
    /// The sender could not connect to the nominated proxy.
    ProxyError,
}

/// A SOCKS5 transport: its candidates (in an initiate, accept or replace) or a signal
/// (in a transport-info).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    pub sid: String,
    pub dstaddr: Option<String>,
    pub candidates: Vec<Candidate>,
    pub signal: Option<Signal>,
}

impl Transport {
    pub fn new(sid: impl Into<String>) -> Transport {
        Transport { sid: sid.into(), dstaddr: None, candidates: Vec::new(), signal: None }
    }
}

fn cid_of(el: &Element, element: &'static str) -> Result<String, ParseError> {
    super::id_attr(el, element, "cid")
}

impl TryFrom<&Element> for Transport {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Transport, ParseError> {
        expect(el, "transport", ns::JINGLE_S5B)?;
        let sid = super::id_attr(el, "transport", "sid")?;
        match el.attr("mode") {
            None | Some("tcp") => {}
            Some(m) => return Err(ParseError::invalid("transport", format!("mode '{m}' is not supported"))),
        }
        let mut t = Transport::new(sid);
        t.dstaddr = el.attr("dstaddr").map(str::to_owned);
        for child in el.elements().filter(|e| e.ns == ns::JINGLE_S5B) {
            let signal = match child.name.as_str() {
                "candidate" => {
                    if t.candidates.len() == MAX_CANDIDATES {
                        return Err(ParseError::invalid("transport", format!("more than {MAX_CANDIDATES} candidates")));
                    }
                    let c = Candidate::try_from(child)?;
                    if t.candidates.iter().any(|o| o.cid == c.cid) {
                        return Err(ParseError::invalid("transport", format!("two candidates '{}'", c.cid)));
                    }
                    t.candidates.push(c);
                    continue;
                }
                "candidate-used" => Signal::CandidateUsed(cid_of(child, "candidate-used")?),
                "candidate-error" => Signal::CandidateError,
                "activated" => Signal::Activated(cid_of(child, "activated")?),
                "proxy-error" => Signal::ProxyError,
                _ => continue,
            };
            if t.signal.replace(signal).is_some() {
                return Err(ParseError::invalid("transport", "more than one signal"));
            }
        }
        if t.signal.is_some() && !t.candidates.is_empty() {
            return Err(ParseError::invalid("transport", "candidates and a signal together"));
        }
        Ok(t)
    }
}

impl From<&Transport> for Element {
    fn from(t: &Transport) -> Element {
        let mut el = Element::new("transport", ns::JINGLE_S5B)
            .with_attr("sid", t.sid.as_str())
            .with_opt_attr("dstaddr", t.dstaddr.as_deref())
            .with_children(t.candidates.iter().map(Element::from));
        if let Some(s) = &t.signal {
            el.push_child(match s {
                Signal::CandidateUsed(cid) => {
                    Element::new("candidate-used", ns::JINGLE_S5B).with_attr("cid", cid.as_str())
                }
                Signal::CandidateError => Element::new("candidate-error", ns::JINGLE_S5B),
                Signal::Activated(cid) => Element::new("activated", ns::JINGLE_S5B).with_attr("cid", cid.as_str()),
                Signal::ProxyError => Element::new("proxy-error", ns::JINGLE_S5B),
            });
        }
        el
    }
}

/// What each side could use of the other's candidates: the candidate it connected to
/// (with its priority), or `None` for a candidate-error.
pub type Choice = Option<(String, u32)>;

/// Which connection carries the data, once both sides said what they could use
/// (XEP-0260 §2.4): `Some((creator of the chosen candidate, cid))`, or `None` when
/// both failed (fall back). `by_initiator` is what the initiator used of the
/// responder's candidates, `by_responder` what the responder used of the
/// initiator's. The higher priority wins; on a tie, the initiator's choice.
pub fn nominate(by_initiator: &Choice, by_responder: &Choice) -> Option<(Creator, String)> {
    match (by_initiator, by_responder) {
        (None, None) => None,
        (Some((cid, _)), None) => Some((Creator::Responder, cid.clone())),
        (None, Some((cid, _))) => Some((Creator::Initiator, cid.clone())),
        (Some((i_cid, i_prio)), Some((r_cid, r_prio))) => {
            if r_prio > i_prio {
                Some((Creator::Initiator, r_cid.clone()))
            } else {
                Some((Creator::Responder, i_cid.clone()))
            }
        }
    }
}
