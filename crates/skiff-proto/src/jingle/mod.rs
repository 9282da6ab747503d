//! XEP-0166: Jingle (`urn:xmpp:jingle:1`), the session framework of Jingle File
//! Transfer: the `<jingle/>` element with its action, session id, contents and
//! reason, the Jingle error conditions, and the tie-break rules. What a content
//! describes and how it travels are in the application and transport modules:
//! [`ft`] (XEP-0234), [`s5b`] (XEP-0260), [`ibb`] (XEP-0261).
//!
//! Every Jingle request is an IQ-set acknowledged at once with an empty result (or a
//! stanza error with a Jingle condition, [`JingleError`]); the answer to an action is
//! another action (`session-initiate` → `session-accept`), never the IQ result.

pub mod ft;
pub mod ibb;
pub mod s5b;
pub mod session;

pub use session::{JingleAction, JingleConfig, JingleInput, JingleSession, JingleState, Refusal, Role};

use crate::error::{expect, req_attr, ParseError};
use crate::ns;
use crate::stanza::{Condition, StanzaError};
use crate::xml::Element;

/// Most contents one `<jingle/>` may carry here (a file transfer has one; the cap
/// keeps a stranger's element from growing work without bound).
pub const MAX_CONTENTS: usize = 16;
/// Longest session id, content name or transport id taken (in bytes).
pub const MAX_ID: usize = 256;

/// A Jingle action (XEP-0166 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ContentAccept,
    ContentAdd,
    ContentModify,
    ContentReject,
    ContentRemove,
    DescriptionInfo,
    SecurityInfo,
    SessionAccept,
    SessionInfo,
    SessionInitiate,
    SessionTerminate,
    TransportAccept,
    TransportInfo,
    TransportReject,
    TransportReplace,
}

crate::wire_enum!(Action, "Jingle action", {
    ContentAccept => "content-accept",
    ContentAdd => "content-add",
    ContentModify => "content-modify",
    ContentReject => "content-reject",
    ContentRemove => "content-remove",
    DescriptionInfo => "description-info",
    SecurityInfo => "security-info",
    SessionAccept => "session-accept",
    SessionInfo => "session-info",
    SessionInitiate => "session-initiate",
    SessionTerminate => "session-terminate",
    TransportAccept => "transport-accept",
    TransportInfo => "transport-info",
    TransportReject => "transport-reject",
    TransportReplace => "transport-replace",
});

/// Which party made a content (its `creator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Creator {
    Initiator,
    Responder,
}

crate::wire_enum!(Creator, "Jingle creator", { Initiator => "initiator", Responder => "responder" });

/// Which parties send data in a content (`senders`; `both` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Senders {
    Both,
    Initiator,
    Responder,
    None,
}

crate::wire_enum!(Senders, "Jingle senders", {
    Both => "both", Initiator => "initiator", Responder => "responder", None => "none",
});

/// A `<reason/>` condition (XEP-0166 §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReasonCondition {
    AlternativeSession,
    Busy,
    Cancel,
    ConnectivityError,
    Decline,
    Expired,
    FailedApplication,
    FailedTransport,
    GeneralError,
    Gone,
    IncompatibleParameters,
    MediaError,
    SecurityError,
    Success,
    Timeout,
    UnsupportedApplications,
    UnsupportedTransports,
}

crate::wire_enum!(ReasonCondition, "Jingle reason", {
    AlternativeSession => "alternative-session",
    Busy => "busy",
    Cancel => "cancel",
    ConnectivityError => "connectivity-error",
    Decline => "decline",
    Expired => "expired",
    FailedApplication => "failed-application",
    FailedTransport => "failed-transport",
    GeneralError => "general-error",
    Gone => "gone",
    IncompatibleParameters => "incompatible-parameters",
    MediaError => "media-error",
    SecurityError => "security-error",
    Success => "success",
    Timeout => "timeout",
    UnsupportedApplications => "unsupported-applications",
    UnsupportedTransports => "unsupported-transports",
});

/// Why a session ends (in `session-terminate`, also `content-remove` and
/// `transport-reject`): the condition, a sentence, and an application's own
/// condition (XEP-0234's `<file-too-large/>`, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub condition: ReasonCondition,
    pub text: Option<String>,
    pub app: Option<Element>,
}

impl Reason {
    pub fn new(condition: ReasonCondition) -> Reason {
        Reason { condition, text: None, app: None }
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Reason {
        self.text = Some(text.into());
        self
    }
}

impl TryFrom<&Element> for Reason {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Reason, ParseError> {
        expect(el, "reason", ns::JINGLE)?;
        let mut condition = None;
        let (mut text, mut app) = (None, None);
        for child in el.elements() {
            if child.ns != ns::JINGLE {
                app.get_or_insert_with(|| child.clone());
            } else if child.name == "text" {
                text = Some(child.text());
            } else if let Ok(c) = child.name.parse::<ReasonCondition>() {
                condition.get_or_insert(c);
            }
        }
        let condition = condition.ok_or(ParseError::MissingChild { element: "reason", child: "condition" })?;
        Ok(Reason { condition, text, app })
    }
}

impl From<&Reason> for Element {
    fn from(r: &Reason) -> Element {
        let mut el = Element::new("reason", ns::JINGLE).with_child(Element::new(r.condition.as_str(), ns::JINGLE));
        if let Some(t) = &r.text {
            el.push_child(Element::new("text", ns::JINGLE).with_text(t.clone()));
        }
        if let Some(app) = &r.app {
            el.push_child(app.clone());
        }
        el
    }
}

/// One `<content/>`: who made it, its name (unique in the session with its creator),
/// who sends, and its description and transport, kept as elements for the
/// application and transport modules to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub creator: Creator,
    pub name: String,
    pub senders: Senders,
    pub disposition: Option<String>,
    pub description: Option<Element>,
    pub transport: Option<Element>,
}

impl Content {
    pub fn new(creator: Creator, name: impl Into<String>) -> Content {
        Content {
            creator,
            name: name.into(),
            senders: Senders::Both,
            disposition: None,
            description: None,
            transport: None,
        }
    }
}

pub(crate) fn id_attr(el: &Element, element: &'static str, attr: &'static str) -> Result<String, ParseError> {
    let v = req_attr(el, element, attr)?;
    if v.is_empty() || v.len() > MAX_ID {
        return Err(ParseError::invalid(element, format!("'{attr}' must have 1 to {MAX_ID} bytes")));
    }
    Ok(v.to_owned())
}

fn wire<T: crate::vocab::WireName>(
    el: &Element,
    element: &'static str,
    attr: &'static str,
) -> Result<Option<T>, ParseError> {
    el.attr(attr).map(|v| T::from_wire(v.trim()).map_err(|e| ParseError::invalid(element, e.to_string()))).transpose()
}

impl TryFrom<&Element> for Content {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Content, ParseError> {
        expect(el, "content", ns::JINGLE)?;
        let creator =
            wire(el, "content", "creator")?.ok_or(ParseError::MissingAttr { element: "content", attr: "creator" })?;
        let name = id_attr(el, "content", "name")?;
        let senders = wire(el, "content", "senders")?.unwrap_or(Senders::Both);
        let one = |child: &'static str| -> Result<Option<Element>, ParseError> {
            let mut found = el.elements().filter(|e| e.name == child && e.ns != ns::JINGLE);
            let first = found.next().cloned();
            if found.next().is_some() {
                return Err(ParseError::invalid("content", format!("more than one <{child}/>")));
            }
            Ok(first)
        };
        Ok(Content {
            creator,
            name,
            senders,
            disposition: el.attr("disposition").map(str::to_owned),
            description: one("description")?,
            transport: one("transport")?,
        })
    }
}

impl From<&Content> for Element {
    fn from(c: &Content) -> Element {
        let mut el = Element::new("content", ns::JINGLE)
            .with_attr("creator", c.creator.as_str())
            .with_attr("name", c.name.as_str())
            .with_opt_attr("disposition", c.disposition.as_deref());
        if c.senders != Senders::Both {
            el.set_attr("senders", c.senders.as_str());
        }
        el.children.extend(c.description.iter().chain(&c.transport).cloned().map(crate::xml::Node::Element));
        el
    }
}

/// A `<jingle/>` element: one action of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jingle {
    pub action: Action,
    pub sid: String,
    /// Only meaningful in `session-initiate` (the receiver of other actions ignores it).
    pub initiator: Option<String>,
    pub responder: Option<String>,
    pub contents: Vec<Content>,
    pub reason: Option<Reason>,
    /// Other children: the payload of `session-info` (`<checksum/>`, `<received/>`, …).
    pub info: Vec<Element>,
}

impl Jingle {
    pub fn new(action: Action, sid: impl Into<String>) -> Jingle {
        Jingle {
            action,
            sid: sid.into(),
            initiator: None,
            responder: None,
            contents: Vec::new(),
            reason: None,
            info: Vec::new(),
        }
    }

    pub fn with_content(mut self, c: Content) -> Jingle {
        self.contents.push(c);
        self
    }

    pub fn with_reason(mut self, r: Reason) -> Jingle {
        self.reason = Some(r);
        self
    }

    pub fn with_info(mut self, info: Element) -> Jingle {
        self.info.push(info);
        self
    }

    /// The content named `name` made by `creator`.
    pub fn content(&self, creator: Creator, name: &str) -> Option<&Content> {
        self.contents.iter().find(|c| c.creator == creator && c.name == name)
    }
}

impl TryFrom<&Element> for Jingle {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Jingle, ParseError> {
        expect(el, "jingle", ns::JINGLE)?;
        let action =
            wire(el, "jingle", "action")?.ok_or(ParseError::MissingAttr { element: "jingle", attr: "action" })?;
        let sid = id_attr(el, "jingle", "sid")?;
        let mut j = Jingle::new(action, sid);
        j.initiator = el.attr("initiator").map(str::to_owned);
        j.responder = el.attr("responder").map(str::to_owned);
        for child in el.elements() {
            if child.is("content", ns::JINGLE) {
                if j.contents.len() == MAX_CONTENTS {
                    return Err(ParseError::invalid("jingle", format!("more than {MAX_CONTENTS} contents")));
                }
                let c = Content::try_from(child)?;
                if j.content(c.creator, &c.name).is_some() {
                    return Err(ParseError::invalid("jingle", format!("two contents named '{}'", c.name)));
                }
                j.contents.push(c);
            } else if child.is("reason", ns::JINGLE) {
                if j.reason.is_some() {
                    return Err(ParseError::invalid("jingle", "more than one <reason/>"));
                }
                j.reason = Some(Reason::try_from(child)?);
            } else if j.info.len() < MAX_CONTENTS {
                j.info.push(child.clone());
            } else {
                return Err(ParseError::invalid("jingle", "too many children"));
            }
        }
        Ok(j)
    }
}

impl From<&Jingle> for Element {
    fn from(j: &Jingle) -> Element {
        let mut el = Element::new("jingle", ns::JINGLE)
            .with_attr("action", j.action.as_str())
            .with_attr("sid", j.sid.as_str())
            .with_opt_attr("initiator", j.initiator.as_deref())
            .with_opt_attr("responder", j.responder.as_deref());
        for c in &j.contents {
            el.push_child(c.into());
        }
        if let Some(r) = &j.reason {
            el.push_child(r.into());
        }
        for i in &j.info {
            el.push_child(i.clone());
        }
        el
    }
}

/// The Jingle-specific error conditions (`urn:xmpp:jingle:errors:1`), each with its
/// stanza error condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JingleError {
    /// The request cannot occur in the session's state (`unexpected-request`).
    OutOfOrder,
    /// A request crossed a similar one of the other party and lost (`conflict`).
    TieBreak,
    /// No such session (`item-not-found`).
    UnknownSession,
    /// An informational payload not understood (`feature-not-implemented`).
    UnsupportedInfo,
}

impl JingleError {
    fn name(self) -> &'static str {
        match self {
            JingleError::OutOfOrder => "out-of-order",
            JingleError::TieBreak => "tie-break",
            JingleError::UnknownSession => "unknown-session",
            JingleError::UnsupportedInfo => "unsupported-info",
        }
    }

    fn condition(self) -> Condition {
        match self {
            JingleError::OutOfOrder => Condition::UnexpectedRequest,
            JingleError::TieBreak => Condition::Conflict,
            JingleError::UnknownSession => Condition::ItemNotFound,
            JingleError::UnsupportedInfo => Condition::FeatureNotImplemented,
        }
    }

    /// The stanza error that answers a request with this condition.
    pub fn stanza_error(self, text: impl Into<String>) -> StanzaError {
        StanzaError::new(self.condition()).with_app(Element::new(self.name(), ns::JINGLE_ERRORS)).with_text(text)
    }

    /// The Jingle condition of a stanza error, if it carries one.
    pub fn of(e: &StanzaError) -> Option<JingleError> {
        let app = e.app.as_ref().filter(|a| a.ns == ns::JINGLE_ERRORS)?;
        [JingleError::OutOfOrder, JingleError::TieBreak, JingleError::UnknownSession, JingleError::UnsupportedInfo]
            .into_iter()
            .find(|j| j.name() == app.name)
    }
}

/// Two `session-initiate`s crossed (XEP-0166 §7.2.16, no session yet): true when
/// `ours` wins over `theirs` (the lower session id by octets; on equal ids the lower
/// JID, `our_jid` against `their_jid`).
pub fn initiate_wins(ours: &str, theirs: &str, our_jid: &str, their_jid: &str) -> bool {
    match ours.as_bytes().cmp(theirs.as_bytes()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => our_jid.as_bytes() < their_jid.as_bytes(),
    }
}

#[cfg(test)]
mod tests;
