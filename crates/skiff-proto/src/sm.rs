//! XEP-0198 Stream Management, client side: stanza acknowledgements and resumption.
//!
//! Sans-IO. [`StreamManagement`] keeps the counters and the copies of stanzas the
//! server has not acknowledged yet; it outlives one connection, so that after a drop
//! the next connection can resume the session ([`StreamManagement::resume_request`])
//! and send again exactly what the server never handled
//! ([`StreamManagement::resumed`]). The driver tells it about every stanza it sends
//! ([`StreamManagement::sent`]) and receives ([`StreamManagement::received`]) and hands
//! it every element in the [`NS`] namespace ([`StreamManagement::handle`]).
//!
//! Rules (XEP-0198 1.6):
//! - `enable` only after resource binding; counting starts for our stanzas when
//!   `<enable/>` is sent and for the server's when `<enabled/>` arrives (§3, §4);
//! - `h` is the count of handled stanzas modulo 2^32 (§4); an `<a/>` acknowledging
//!   more than was sent is a stream error `undefined-condition` with
//!   `<handled-count-too-high/>` (§4);
//! - `<r/>` is answered at once with our `h`; non-stanza elements (`<r/>`, `<a/>`,
//!   `<enable/>`) are never counted;
//! - a resumed session starts from the `h` in `<resumed/>`: what we sent after it is
//!   sent again, in order (§5); a `<failed/>` resumption may carry `h` too, telling
//!   which of our stanzas the old session still handled (§6).

use std::collections::VecDeque;

use crate::ns;
use crate::xml::Element;

/// `urn:xmpp:sm:3`.
pub const NS: &str = "urn:xmpp:sm:3";

/// How many unacknowledged stanzas we keep before asking for an acknowledgement.
pub const REQUEST_EVERY: usize = 16;
/// How many unacknowledged stanzas we keep at most. A server that acknowledges nothing
/// while we keep sending loses its resumption (we stop keeping copies) rather than our
/// memory.
pub const MAX_UNACKED: usize = 10_000;

/// Is `el` a stanza, as XEP-0198 counts them (RFC 6120 `message`, `presence`, `iq`)?
pub fn is_stanza(el: &Element) -> bool {
    el.ns == ns::CLIENT && is_stanza_name(&el.name)
}

/// Is `name` the name of a stanza (for one known only by name, e.g. dropped unparsed)?
pub fn is_stanza_name(name: &str) -> bool {
    matches!(name, "message" | "presence" | "iq")
}

/// One element of the stream management protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmElement {
    /// Client: please count, and let me resume (`resume='true'`).
    Enable { resume: bool },
    /// Server: counting; `id` (with `resume`) names the session for resumption, `max`
    /// is how many seconds it is kept after a drop, `location` where to reconnect.
    Enabled { id: Option<String>, resume: bool, max: Option<u32>, location: Option<String> },
    /// Client: resume the session `previd`; we handled `h` of its stanzas.
    Resume { h: u32, previd: String },
    /// Server: resumed; it handled `h` of ours.
    Resumed { h: u32, previd: String },
    /// Enabling or resuming failed; `h` when the server still knows the old count.
    Failed { h: Option<u32>, condition: Option<String> },
    /// Request for an acknowledgement.
    Request,
    /// Acknowledgement: `h` stanzas handled.
    Ack { h: u32 },
}

/// An element in the [`NS`] namespace that is not valid stream management.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmParseError {
    #[error("<{0}/> is not a stream management element")]
    Unknown(String),
    #[error("<{element}/> has no valid '{attr}' attribute")]
    Attribute { element: &'static str, attr: &'static str },
}

fn h_attr(el: &Element, element: &'static str) -> Result<u32, SmParseError> {
    el.attr("h").and_then(|h| h.parse().ok()).ok_or(SmParseError::Attribute { element, attr: "h" })
}

fn previd_attr(el: &Element, element: &'static str) -> Result<String, SmParseError> {
    el.attr("previd").map(str::to_owned).ok_or(SmParseError::Attribute { element, attr: "previd" })
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("true" | "1"))
}

impl TryFrom<&Element> for SmElement {
    type Error = SmParseError;

    fn try_from(el: &Element) -> Result<Self, Self::Error> {
        if el.ns != NS {
            return Err(SmParseError::Unknown(el.name.clone()));
        }
        Ok(match el.name.as_str() {
            "enable" => SmElement::Enable { resume: truthy(el.attr("resume")) },
            "enabled" => SmElement::Enabled {
                id: el.attr("id").filter(|i| !i.is_empty()).map(str::to_owned),
                resume: truthy(el.attr("resume")),
                max: el.attr("max").and_then(|m| m.parse().ok()),
                location: el.attr("location").filter(|l| !l.is_empty()).map(str::to_owned),
            },
            "resume" => SmElement::Resume { h: h_attr(el, "resume")?, previd: previd_attr(el, "resume")? },
            "resumed" => SmElement::Resumed { h: h_attr(el, "resumed")?, previd: previd_attr(el, "resumed")? },
            "failed" => SmElement::Failed {
                h: el.attr("h").map(|_| h_attr(el, "failed")).transpose()?,
                condition: el.elements().find(|c| c.ns == ns::STANZAS).map(|c| c.name.clone()),
            },
            "r" => SmElement::Request,
            "a" => SmElement::Ack { h: h_attr(el, "a")? },
            other => return Err(SmParseError::Unknown(other.to_owned())),
        })
    }
}

impl From<SmElement> for Element {
    fn from(sm: SmElement) -> Element {
        match sm {
            SmElement::Enable { resume } => {
                let el = Element::new("enable", NS);
                if resume {
                    el.with_attr("resume", "true")
                } else {
                    el
                }
            }
            SmElement::Enabled { id, resume, max, location } => {
                let mut el = Element::new("enabled", NS).with_opt_attr("id", id);
                if resume {
                    el.set_attr("resume", "true");
                }
                el.with_opt_attr("max", max.map(|m| m.to_string())).with_opt_attr("location", location)
            }
            SmElement::Resume { h, previd } => {
                Element::new("resume", NS).with_attr("h", h.to_string()).with_attr("previd", previd)
            }
            SmElement::Resumed { h, previd } => {
                Element::new("resumed", NS).with_attr("h", h.to_string()).with_attr("previd", previd)
            }
            SmElement::Failed { h, condition } => {
                let el = Element::new("failed", NS).with_opt_attr("h", h.map(|h| h.to_string()));
                match condition {
                    Some(c) => el.with_child(Element::new(c, ns::STANZAS)),
                    None => el,
                }
            }
            SmElement::Request => Element::new("r", NS),
            SmElement::Ack { h } => Element::new("a", NS).with_attr("h", h.to_string()),
        }
    }
}

impl From<&SmElement> for Element {
    fn from(sm: &SmElement) -> Element {
        Element::from(sm.clone())
    }
}

/// What the server's stream management elements mean for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmOutput {
    /// Write this element (an `<a/>` answering `<r/>`).
    Send(Element),
    /// Stream management is on; `resumable` when the session can be resumed after a
    /// drop, for `max_secs` seconds.
    Enabled { resumable: bool, max_secs: Option<u32> },
    /// The server refused to enable it (`condition`): the session goes on without.
    NotEnabled { condition: Option<String> },
}

/// A protocol error of the server's: the stream ends with this stream error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    #[error("the server acknowledged {h} stanzas, but only {sent} were sent")]
    HandledCountTooHigh { h: u32, sent: u32 },
    #[error("{0}")]
    Parse(#[from] SmParseError),
    #[error("the server sent <{0}/> where it makes no sense")]
    Unexpected(&'static str),
}

impl SmError {
    /// The `<stream:error/>` condition and the application-specific child (§4).
    pub fn stream_error(&self) -> (&'static str, Option<Element>) {
        match self {
            SmError::HandledCountTooHigh { h, sent } => (
                "undefined-condition",
                Some(
                    Element::new("handled-count-too-high", NS)
                        .with_attr("h", h.to_string())
                        .with_attr("send-count", sent.to_string()),
                ),
            ),
            SmError::Parse(_) | SmError::Unexpected(_) => ("undefined-condition", None),
        }
    }
}

/// What [`StreamManagement::resume_request`] asks of the next connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeRequest {
    pub previd: String,
    /// How many of the server's stanzas we handled.
    pub h: u32,
}

impl From<&ResumeRequest> for Element {
    fn from(r: &ResumeRequest) -> Element {
        SmElement::Resume { h: r.h, previd: r.previd.clone() }.into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Off,
    /// `<enable/>` sent, waiting for the answer.
    Enabling,
    Enabled {
        /// The resumption id when the session can be resumed.
        id: Option<String>,
        max_secs: Option<u32>,
    },
}

/// The stream management of one session (it survives the connection's drops).
#[derive(Debug, Clone)]
pub struct StreamManagement {
    state: State,
    /// The server's stanzas we handled (counting since `<enabled/>`), mod 2^32.
    inbound: u32,
    /// Our stanzas the server acknowledged, mod 2^32.
    acked: u32,
    /// Our stanzas not acknowledged yet, oldest first (the first is number acked+1).
    unacked: VecDeque<Element>,
    /// Too many unacknowledged stanzas: copies are no longer kept, resumption is off.
    overflowed: bool,
    /// An `<r/>` is out and not answered.
    requested: bool,
    /// Counting inbound (after `<enabled/>`); outbound counting runs from Enabling on.
    counting_in: bool,
    /// Resumed, and the server has not acknowledged anything since: until it does,
    /// the resumption is not known to work (see [`StreamManagement::resumed`]).
    unconfirmed: bool,
}

impl Default for StreamManagement {
    fn default() -> Self {
        StreamManagement::new()
    }
}

impl StreamManagement {
    pub fn new() -> StreamManagement {
        StreamManagement {
            state: State::Off,
            inbound: 0,
            acked: 0,
            unacked: VecDeque::new(),
            overflowed: false,
            requested: false,
            counting_in: false,
            unconfirmed: false,
        }
    }

    /// The `<enable resume='true'/>` to send right after binding (only when the
    /// server's post-bind features hold `<sm xmlns='urn:xmpp:sm:3'/>`). Starts a new
    /// count: whatever an earlier session kept is gone.
    pub fn enable(&mut self) -> Element {
        *self = StreamManagement::new();
        self.state = State::Enabling;
        SmElement::Enable { resume: true }.into()
    }

    /// On (enabling or enabled): our stanzas are counted.
    pub fn is_on(&self) -> bool {
        self.state != State::Off
    }

    /// The session could be resumed now, after a drop.
    pub fn is_resumable(&self) -> bool {
        self.resume_request().is_some()
    }

    /// Resumed, and the server has acknowledged nothing since.
    pub fn is_unconfirmed(&self) -> bool {
        self.unconfirmed
    }

    /// How long the server keeps the session after a drop, when it said so.
    pub fn max_secs(&self) -> Option<u32> {
        match &self.state {
            State::Enabled { max_secs, .. } => *max_secs,
            _ => None,
        }
    }

    /// Our stanzas not acknowledged yet.
    pub fn unacked(&self) -> usize {
        self.unacked.len()
    }

    /// The server's stanzas handled so far (our `h`).
    pub fn handled(&self) -> u32 {
        self.inbound
    }

    /// We send `el`: a stanza is counted and a copy kept until acknowledged.
    pub fn sent(&mut self, el: &Element) {
        if !self.is_on() || !is_stanza(el) || self.overflowed {
            return;
        }
        if self.unacked.len() >= MAX_UNACKED {
            self.overflowed = true;
            self.unacked.clear();
            return;
        }
        self.unacked.push_back(el.clone());
    }

    /// We received (and handled) one stanza from the server: also one dropped over a
    /// limit or answered with an error, since the server counts what it sent.
    pub fn received(&mut self) {
        if self.counting_in {
            self.inbound = self.inbound.wrapping_add(1);
        }
    }

    /// An `<r/>` to send now, if one is due: enough unacknowledged stanzas (or
    /// `force`, e.g. on a quiet line) and none outstanding.
    pub fn request_ack(&mut self, force: bool) -> Option<Element> {
        let on = matches!(self.state, State::Enabled { .. });
        let due = self.unacked.len() >= REQUEST_EVERY || (force && !self.unacked.is_empty());
        if !on || self.requested || !due {
            return None;
        }
        self.requested = true;
        Some(SmElement::Request.into())
    }

    /// An element of the [`NS`] namespace from the server.
    pub fn handle(&mut self, el: &Element) -> Result<Vec<SmOutput>, SmError> {
        match SmElement::try_from(el)? {
            SmElement::Enabled { id, resume, max, .. } => {
                if self.state != State::Enabling {
                    return Err(SmError::Unexpected("enabled"));
                }
                let id = id.filter(|_| resume);
                let resumable = id.is_some();
                self.state = State::Enabled { id, max_secs: max };
                self.counting_in = true;
                Ok(vec![SmOutput::Enabled { resumable, max_secs: max }])
            }
            SmElement::Failed { condition, .. } => {
                if self.state != State::Enabling {
                    return Err(SmError::Unexpected("failed"));
                }
                *self = StreamManagement::new();
                Ok(vec![SmOutput::NotEnabled { condition }])
            }
            SmElement::Request => {
                if !self.counting_in {
                    return Err(SmError::Unexpected("r"));
                }
                Ok(vec![SmOutput::Send(SmElement::Ack { h: self.inbound }.into())])
            }
            SmElement::Ack { h } => {
                if !matches!(self.state, State::Enabled { .. }) {
                    return Err(SmError::Unexpected("a"));
                }
                self.requested = false;
                self.ack(h)?;
                self.unconfirmed = false;
                Ok(Vec::new())
            }
            SmElement::Enable { .. } => Err(SmError::Unexpected("enable")),
            SmElement::Resume { .. } => Err(SmError::Unexpected("resume")),
            SmElement::Resumed { .. } => Err(SmError::Unexpected("resumed")),
        }
    }

    /// The server handled `h` of our stanzas: drop their copies.
    fn ack(&mut self, h: u32) -> Result<(), SmError> {
        let newly = h.wrapping_sub(self.acked) as usize;
        if self.overflowed {
            // No copies to drop; the count still moves on.
            self.acked = h;
            return Ok(());
        }
        if newly > self.unacked.len() {
            let sent = self.acked.wrapping_add(self.unacked.len() as u32);
            return Err(SmError::HandledCountTooHigh { h, sent });
        }
        self.unacked.drain(..newly);
        self.acked = h;
        Ok(())
    }

    /// The connection dropped: what to ask the next one, when the session can be
    /// resumed.
    pub fn resume_request(&self) -> Option<ResumeRequest> {
        match &self.state {
            State::Enabled { id: Some(previd), .. } if !self.overflowed && !self.unconfirmed => {
                Some(ResumeRequest { previd: previd.clone(), h: self.inbound })
            }
            _ => None,
        }
    }

    /// The server resumed the session and handled `h` of our stanzas: the stanzas to
    /// send again, in order (they stay unacknowledged until the server says so),
    /// followed by an `<r/>`.
    ///
    /// Until the server answers that `<r/>`, the resumption is unconfirmed and is not
    /// resumed again: a server can accept a resumption and then never read what we
    /// send (Prosody 0.12 feeds the new connection into the old one's XML parser, which
    /// may hold half a stanza from the cut), and resuming such a session again only
    /// repeats that. The driver gives up on an unconfirmed resumption after a while
    /// and starts a new session.
    pub fn resumed(&mut self, h: u32) -> Result<Vec<Element>, SmError> {
        self.ack(h)?;
        let mut out: Vec<Element> = self.unacked.iter().cloned().collect();
        out.push(SmElement::Request.into());
        self.requested = true;
        self.unconfirmed = true;
        Ok(out)
    }

    /// Resumption failed: the session is gone. Returns the stanzas the old session
    /// never handled (after `h` when the server told it, else every unacknowledged
    /// one), for the driver to fail or report; stream management is off until the
    /// next [`StreamManagement::enable`].
    pub fn resume_failed(&mut self, h: Option<u32>) -> Vec<Element> {
        let lost = match h {
            Some(h) if self.ack(h).is_ok() => self.unacked.drain(..).collect(),
            _ => self.unacked.drain(..).collect(),
        };
        *self = StreamManagement::new();
        lost
    }

    /// Stream management ends without resumption (a clean sign-out, or a session that
    /// cannot be resumed): the copies are dropped.
    pub fn reset(&mut self) {
        *self = StreamManagement::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stanza::{Iq, Message};

    fn parse(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    fn msg(n: u32) -> Element {
        Message {
            id: Some(format!("m{n}")),
            from: None,
            to: None,
            kind: "chat".into(),
            body: Some("hi".into()),
            payloads: Vec::new(),
        }
        .into()
    }

    fn enabled(sm: &mut StreamManagement, xml: &str) -> Vec<SmOutput> {
        sm.handle(&parse(xml)).unwrap()
    }

    #[test]
    fn elements_round_trip_as_the_xep_writes_them() {
        for xml in [
            "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
            "<enabled xmlns='urn:xmpp:sm:3' id='some-long-sm-id' resume='true' max='600'/>",
            "<resume xmlns='urn:xmpp:sm:3' h='5' previd='some-long-sm-id'/>",
            "<resumed xmlns='urn:xmpp:sm:3' h='3' previd='some-long-sm-id'/>",
            "<failed xmlns='urn:xmpp:sm:3' h='7'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
            "<r xmlns='urn:xmpp:sm:3'/>",
            "<a xmlns='urn:xmpp:sm:3' h='4294967295'/>",
        ] {
            let el = parse(xml);
            let sm = SmElement::try_from(&el).unwrap();
            assert_eq!(Element::from(sm), el, "{xml}");
        }
        let f = SmElement::try_from(&parse(
            "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
        ))
        .unwrap();
        assert_eq!(f, SmElement::Failed { h: None, condition: Some("unexpected-request".into()) });
        // resume='1' is true as well (xs:boolean).
        let e = SmElement::try_from(&parse("<enabled xmlns='urn:xmpp:sm:3' id='x' resume='1'/>")).unwrap();
        assert!(matches!(e, SmElement::Enabled { resume: true, .. }));
    }

    #[test]
    fn bad_elements_are_errors() {
        for (xml, want) in [
            ("<a xmlns='urn:xmpp:sm:3'/>", "<a/> has no valid 'h' attribute"),
            ("<a xmlns='urn:xmpp:sm:3' h='-1'/>", "<a/> has no valid 'h' attribute"),
            ("<a xmlns='urn:xmpp:sm:3' h='4294967296'/>", "<a/> has no valid 'h' attribute"),
            ("<resumed xmlns='urn:xmpp:sm:3' h='1'/>", "<resumed/> has no valid 'previd' attribute"),
            ("<failed xmlns='urn:xmpp:sm:3' h='x'/>", "<failed/> has no valid 'h' attribute"),
            ("<nonsense xmlns='urn:xmpp:sm:3'/>", "<nonsense/> is not a stream management element"),
            ("<a xmlns='urn:xmpp:sm:2' h='1'/>", "<a/> is not a stream management element"),
        ] {
            assert_eq!(SmElement::try_from(&parse(xml)).unwrap_err().to_string(), want, "{xml}");
        }
    }

    #[test]
    fn counts_start_at_enable_and_enabled() {
        let mut sm = StreamManagement::new();
        sm.sent(&msg(0));
        sm.received();
        assert_eq!((sm.unacked(), sm.handled()), (0, 0), "nothing counts before enable");
        assert_eq!(sm.enable().to_xml(), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
        // Sent after <enable/>: counted. Received before <enabled/>: not.
        sm.sent(&msg(1));
        sm.received();
        let out = enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true' max='600'/>");
        assert_eq!(out, vec![SmOutput::Enabled { resumable: true, max_secs: Some(600) }]);
        sm.received();
        sm.received();
        assert_eq!((sm.unacked(), sm.handled()), (1, 2));
        // Non-stanzas are never counted.
        sm.sent(&Element::new("r", NS));
        sm.sent(&Element::new("message", "jabber:server"));
        assert_eq!(sm.unacked(), 1);
        // <r/> is answered with our h.
        let out = sm.handle(&parse("<r xmlns='urn:xmpp:sm:3'/>")).unwrap();
        assert_eq!(out, vec![SmOutput::Send(parse("<a xmlns='urn:xmpp:sm:3' h='2'/>"))]);
        assert_eq!(sm.resume_request(), Some(ResumeRequest { previd: "abc".into(), h: 2 }));
    }

    #[test]
    fn acks_drop_copies_and_a_count_too_high_is_an_error() {
        let mut sm = StreamManagement::new();
        sm.enable();
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true'/>");
        for n in 0..5 {
            sm.sent(&msg(n));
        }
        sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='3'/>")).unwrap();
        assert_eq!(sm.unacked(), 2);
        // An ack that goes back or repeats acknowledges nothing new... going back is
        // a count far too high modulo 2^32.
        sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='3'/>")).unwrap();
        assert_eq!(sm.unacked(), 2);
        let err = sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='6'/>")).unwrap_err();
        assert_eq!(err, SmError::HandledCountTooHigh { h: 6, sent: 5 });
        let (condition, child) = err.stream_error();
        assert_eq!(condition, "undefined-condition");
        assert_eq!(child.unwrap().to_xml(), "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='6' send-count='5'/>");
        let err = sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='2'/>")).unwrap_err();
        assert!(matches!(err, SmError::HandledCountTooHigh { h: 2, .. }));
        assert_eq!(sm.unacked(), 2, "a bad ack changes nothing");
    }

    #[test]
    fn counters_wrap_at_two_to_the_32() {
        let mut sm = StreamManagement::new();
        sm.enable();
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true'/>");
        sm.acked = u32::MAX - 1;
        sm.inbound = u32::MAX;
        for n in 0..4 {
            sm.sent(&msg(n));
        }
        sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='1'/>")).unwrap();
        assert_eq!(sm.unacked(), 1, "MAX-1 + 3 = 1 (mod 2^32)");
        sm.received();
        assert_eq!(sm.handled(), 0);
        let resend = sm.resumed(2).unwrap();
        assert_eq!(resend.len(), 1, "only the <r/>");
    }

    #[test]
    fn resumption_sends_again_what_the_server_did_not_handle() {
        let mut sm = StreamManagement::new();
        sm.enable();
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true' max='300'/>");
        assert_eq!(sm.max_secs(), Some(300));
        for n in 0..6 {
            sm.sent(&msg(n));
        }
        sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='2'/>")).unwrap();
        // The line drops; two more stanzas are queued meanwhile.
        sm.sent(&msg(6));
        sm.sent(&Iq::get("q1", None, crate::ping::ping()).into());
        let req = sm.resume_request().unwrap();
        assert_eq!(Element::from(&req).to_xml(), "<resume xmlns='urn:xmpp:sm:3' h='0' previd='abc'/>");
        let again = sm.resumed(4).unwrap();
        let ids: Vec<_> = again.iter().map(|e| e.attr("id").unwrap_or("r").to_owned()).collect();
        assert_eq!(ids, ["m4", "m5", "m6", "q1", "r"], "an <r/> after them");
        assert_eq!(again[4].to_xml(), "<r xmlns='urn:xmpp:sm:3'/>");
        assert_eq!(sm.unacked(), 4, "sent again, still unacknowledged");
        // Until the server acknowledges something, the resumption is unconfirmed and
        // a drop now would not be resumed again.
        assert!(sm.is_unconfirmed() && !sm.is_resumable() && sm.resume_request().is_none());
        sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='8'/>")).unwrap();
        assert_eq!(sm.unacked(), 0);
        assert!(!sm.is_unconfirmed() && sm.is_resumable());
        // A server claiming on resumption more than was ever sent: an error.
        assert!(matches!(sm.resumed(9), Err(SmError::HandledCountTooHigh { h: 9, sent: 8 })));
    }

    #[test]
    fn failed_resumption_returns_what_was_lost_and_turns_off() {
        let mut sm = StreamManagement::new();
        sm.enable();
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true'/>");
        for n in 0..3 {
            sm.sent(&msg(n));
        }
        let lost = sm.resume_failed(Some(1));
        assert_eq!(lost.len(), 2);
        assert!(!sm.is_on() && sm.resume_request().is_none());
        let mut sm2 = StreamManagement::new();
        sm2.enable();
        enabled(&mut sm2, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true'/>");
        sm2.sent(&msg(0));
        assert_eq!(sm2.resume_failed(Some(7)).len(), 1, "an impossible h: everything unacknowledged is lost");
    }

    #[test]
    fn not_resumable_without_an_id_and_refusal_turns_it_off() {
        let mut sm = StreamManagement::new();
        sm.enable();
        let out = enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3'/>");
        assert_eq!(out, vec![SmOutput::Enabled { resumable: false, max_secs: None }]);
        assert!(sm.is_on() && !sm.is_resumable() && sm.resume_request().is_none());
        // An id without resume='true' is no resumption either.
        let mut sm = StreamManagement::new();
        sm.enable();
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc'/>");
        assert!(!sm.is_resumable());

        let mut sm = StreamManagement::new();
        sm.enable();
        let out = sm
            .handle(&parse(
                "<failed xmlns='urn:xmpp:sm:3'><unexpected-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
            ))
            .unwrap();
        assert_eq!(out, vec![SmOutput::NotEnabled { condition: Some("unexpected-request".into()) }]);
        assert!(!sm.is_on());
    }

    #[test]
    fn out_of_place_elements_are_errors() {
        let mut sm = StreamManagement::new();
        for xml in
            ["<r xmlns='urn:xmpp:sm:3'/>", "<a xmlns='urn:xmpp:sm:3' h='0'/>", "<enabled xmlns='urn:xmpp:sm:3'/>"]
        {
            assert!(matches!(sm.handle(&parse(xml)), Err(SmError::Unexpected(_))), "{xml} before enable");
        }
        sm.enable();
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true'/>");
        for xml in [
            "<enabled xmlns='urn:xmpp:sm:3'/>",
            "<failed xmlns='urn:xmpp:sm:3'/>",
            "<enable xmlns='urn:xmpp:sm:3'/>",
            "<resumed xmlns='urn:xmpp:sm:3' h='0' previd='abc'/>",
        ] {
            assert!(matches!(sm.handle(&parse(xml)), Err(SmError::Unexpected(_))), "{xml} when enabled");
        }
        assert!(sm.is_resumable(), "still on");
    }

    #[test]
    fn acks_are_requested_every_few_stanzas_one_at_a_time() {
        let mut sm = StreamManagement::new();
        sm.enable();
        sm.sent(&msg(0));
        assert_eq!(sm.request_ack(true), None, "not before <enabled/>");
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true'/>");
        assert_eq!(sm.request_ack(false), None, "one stanza: not yet");
        assert_eq!(sm.request_ack(true).unwrap().to_xml(), "<r xmlns='urn:xmpp:sm:3'/>");
        for n in 1..40 {
            sm.sent(&msg(n));
        }
        assert_eq!(sm.request_ack(false), None, "one outstanding");
        sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='1'/>")).unwrap();
        assert!(sm.request_ack(false).is_some());
    }

    #[test]
    fn too_many_unacknowledged_stanzas_end_resumability_not_memory() {
        let mut sm = StreamManagement::new();
        sm.enable();
        enabled(&mut sm, "<enabled xmlns='urn:xmpp:sm:3' id='abc' resume='true'/>");
        for n in 0..=MAX_UNACKED as u32 {
            sm.sent(&msg(n));
        }
        assert_eq!(sm.unacked(), 0);
        assert!(!sm.is_resumable() && sm.resume_request().is_none());
        // Acks still work (and never fail) afterwards.
        sm.handle(&parse("<a xmlns='urn:xmpp:sm:3' h='10'/>")).unwrap();
    }
}
