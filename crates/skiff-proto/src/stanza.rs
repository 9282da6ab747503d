//! RFC 6120/6121 stanza envelopes: `<iq/>`, `<message/>`, `<presence/>` and stanza errors.
//!
//! Envelopes parse by value (`TryFrom<Element>`): the payload elements move into the
//! typed stanza without copies. Payload parsers (one module per XEP) then work on
//! `&Element`.

use crate::error::{expect, req_attr, ParseError};
use crate::jid::Jid;
use crate::ns;
use crate::xml::{Element, Node};

/// `type` of a stanza error (RFC 6120 8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auth" => ErrorType::Auth,
            "cancel" => ErrorType::Cancel,
            "continue" => ErrorType::Continue,
            "modify" => ErrorType::Modify,
            "wait" => ErrorType::Wait,
            _ => return None,
        })
    }
}

/// The defined conditions of RFC 6120 8.3.3, plus what a peer may invent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
    /// A condition element this list does not know.
    Other(String),
}

const CONDITIONS: &[(&str, Condition)] = &[
    ("bad-request", Condition::BadRequest),
    ("conflict", Condition::Conflict),
    ("feature-not-implemented", Condition::FeatureNotImplemented),
    ("forbidden", Condition::Forbidden),
    ("gone", Condition::Gone),
    ("internal-server-error", Condition::InternalServerError),
    ("item-not-found", Condition::ItemNotFound),
    ("jid-malformed", Condition::JidMalformed),
    ("not-acceptable", Condition::NotAcceptable),
    ("not-allowed", Condition::NotAllowed),
    ("not-authorized", Condition::NotAuthorized),
    ("policy-violation", Condition::PolicyViolation),
    ("recipient-unavailable", Condition::RecipientUnavailable),
    ("redirect", Condition::Redirect),
    ("registration-required", Condition::RegistrationRequired),
    ("remote-server-not-found", Condition::RemoteServerNotFound),
    ("remote-server-timeout", Condition::RemoteServerTimeout),
    ("resource-constraint", Condition::ResourceConstraint),
    ("service-unavailable", Condition::ServiceUnavailable),
    ("subscription-required", Condition::SubscriptionRequired),
    ("undefined-condition", Condition::UndefinedCondition),
    ("unexpected-request", Condition::UnexpectedRequest),
];

impl Condition {
    pub fn as_str(&self) -> &str {
        match self {
            Condition::Other(s) => s,
            known => CONDITIONS.iter().find(|(_, c)| c == known).map(|(s, _)| *s).unwrap_or("undefined-condition"),
        }
    }

    pub fn from_name(s: &str) -> Condition {
        CONDITIONS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| Condition::Other(s.to_owned()))
    }

    /// The error type RFC 6120 suggests for this condition.
    pub fn default_type(&self) -> ErrorType {
        match self {
            Condition::BadRequest
            | Condition::JidMalformed
            | Condition::NotAcceptable
            | Condition::PolicyViolation
            | Condition::Redirect => ErrorType::Modify,
            Condition::Forbidden
            | Condition::NotAuthorized
            | Condition::RegistrationRequired
            | Condition::SubscriptionRequired => ErrorType::Auth,
            Condition::RecipientUnavailable | Condition::RemoteServerTimeout | Condition::ResourceConstraint => {
                ErrorType::Wait
            }
            _ => ErrorType::Cancel,
        }
    }
}

/// A stanza error: `<error type='..'><condition/><text/>[app-specific]</error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    pub kind: ErrorType,
    pub condition: Condition,
    pub text: Option<String>,
    /// An application-specific condition (e.g. SI's `<no-valid-streams/>`).
    pub app: Option<Element>,
}

impl StanzaError {
    pub fn new(condition: Condition) -> Self {
        StanzaError { kind: condition.default_type(), condition, text: None, app: None }
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_app(mut self, app: Element) -> Self {
        self.app = Some(app);
        self
    }
}

impl std::fmt::Display for StanzaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.condition.as_str())?;
        if let Some(app) = &self.app {
            write!(f, " ({})", app.name)?;
        }
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StanzaError {}

impl TryFrom<&Element> for StanzaError {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        if el.name != "error" {
            return Err(ParseError::NotMine { expected: "error", found: el.name.clone() });
        }
        let condition_el = el.elements().find(|e| e.ns == ns::STANZAS && e.name != "text");
        let condition = condition_el.map(|e| Condition::from_name(&e.name)).unwrap_or(Condition::UndefinedCondition);
        // Tolerate a missing or unknown type: fall back to the condition's usual one.
        let kind = el.attr("type").and_then(ErrorType::parse).unwrap_or_else(|| condition.default_type());
        let text = el.child("text", ns::STANZAS).map(Element::text);
        let app = el.elements().find(|e| e.ns != ns::STANZAS).cloned();
        Ok(StanzaError { kind, condition, text, app })
    }
}

impl From<&StanzaError> for Element {
    fn from(e: &StanzaError) -> Element {
        let mut el = Element::new("error", ns::CLIENT)
            .with_attr("type", e.kind.as_str())
            .with_child(Element::new(e.condition.as_str(), ns::STANZAS));
        if let Some(t) = &e.text {
            el.push_child(Element::new("text", ns::STANZAS).with_attr("xml:lang", "en").with_text(t.clone()));
        }
        if let Some(app) = &e.app {
            el.push_child(app.clone());
        }
        el
    }
}

/// What an IQ carries, by type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IqKind {
    Get(Element),
    Set(Element),
    /// A result may be empty.
    Result(Option<Element>),
    Error(StanzaError),
}

/// An `<iq/>` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iq {
    pub id: String,
    pub from: Option<Jid>,
    pub to: Option<Jid>,
    pub kind: IqKind,
}

impl Iq {
    pub fn get(id: impl Into<String>, to: Option<Jid>, payload: Element) -> Iq {
        Iq { id: id.into(), from: None, to, kind: IqKind::Get(payload) }
    }

    pub fn set(id: impl Into<String>, to: Option<Jid>, payload: Element) -> Iq {
        Iq { id: id.into(), from: None, to, kind: IqKind::Set(payload) }
    }

    /// The result answering this request (addressed back to its sender).
    pub fn result_for(&self, payload: Option<Element>) -> Iq {
        Iq { id: self.id.clone(), from: None, to: self.from.clone(), kind: IqKind::Result(payload) }
    }

    /// The error answering this request.
    pub fn error_for(&self, error: StanzaError) -> Iq {
        Iq { id: self.id.clone(), from: None, to: self.from.clone(), kind: IqKind::Error(error) }
    }

    /// The request payload of a get or set.
    pub fn request_payload(&self) -> Option<&Element> {
        match &self.kind {
            IqKind::Get(p) | IqKind::Set(p) => Some(p),
            _ => None,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.kind, IqKind::Get(_) | IqKind::Set(_))
    }

    pub fn type_str(&self) -> &'static str {
        match self.kind {
            IqKind::Get(_) => "get",
            IqKind::Set(_) => "set",
            IqKind::Result(_) => "result",
            IqKind::Error(_) => "error",
        }
    }
}

fn parse_jid_attr(el: &Element, element: &'static str, attr: &'static str) -> Result<Option<Jid>, ParseError> {
    match el.attr(attr) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|e| ParseError::invalid(element, format!("bad '{attr}' address: {e}"))),
    }
}

fn envelope(name: &str, id: Option<&str>, from: &Option<Jid>, to: &Option<Jid>, kind: Option<&str>) -> Element {
    Element::new(name, ns::CLIENT)
        .with_opt_attr("id", id)
        .with_opt_attr("from", from.as_ref().map(Jid::to_string))
        .with_opt_attr("to", to.as_ref().map(Jid::to_string))
        .with_opt_attr("type", kind)
}

impl TryFrom<Element> for Iq {
    type Error = ParseError;

    fn try_from(el: Element) -> Result<Iq, ParseError> {
        expect(&el, "iq", ns::CLIENT)?;
        let id = req_attr(&el, "iq", "id")?.to_owned();
        let from = parse_jid_attr(&el, "iq", "from")?;
        let to = parse_jid_attr(&el, "iq", "to")?;
        let ty = req_attr(&el, "iq", "type")?.to_owned();
        let mut payloads = el.children.into_iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        });
        let kind = match ty.as_str() {
            "get" | "set" => {
                let p = payloads.next().ok_or(ParseError::MissingChild { element: "iq", child: "payload" })?;
                if payloads.next().is_some() {
                    return Err(ParseError::invalid("iq", "a get or set must carry exactly one payload"));
                }
                if ty == "get" {
                    IqKind::Get(p)
                } else {
                    IqKind::Set(p)
                }
            }
            "result" => IqKind::Result(payloads.next()),
            "error" => {
                let err = payloads
                    .find(|e| e.name == "error")
                    .ok_or(ParseError::MissingChild { element: "iq", child: "error" })?;
                IqKind::Error(StanzaError::try_from(&err)?)
            }
            other => return Err(ParseError::invalid("iq", format!("unknown type '{other}'"))),
        };
        Ok(Iq { id, from, to, kind })
    }
}

impl From<Iq> for Element {
    fn from(iq: Iq) -> Element {
        let mut el = envelope("iq", Some(&iq.id), &iq.from, &iq.to, Some(iq.type_str()));
        match iq.kind {
            IqKind::Get(p) | IqKind::Set(p) | IqKind::Result(Some(p)) => el.push_child(p),
            IqKind::Result(None) => {}
            IqKind::Error(e) => el.push_child(Element::from(&e)),
        }
        el
    }
}

/// A `<message/>` stanza. Only what Skiff reads is typed; the rest stays in `payloads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: Option<String>,
    pub from: Option<Jid>,
    pub to: Option<Jid>,
    /// `chat`, `normal` (the default), `headline`, `groupchat` or `error`.
    pub kind: String,
    pub body: Option<String>,
    /// Extension elements (everything but `<body/>`).
    pub payloads: Vec<Element>,
}

impl TryFrom<Element> for Message {
    type Error = ParseError;

    fn try_from(el: Element) -> Result<Message, ParseError> {
        expect(&el, "message", ns::CLIENT)?;
        let from = parse_jid_attr(&el, "message", "from")?;
        let to = parse_jid_attr(&el, "message", "to")?;
        let id = el.attr("id").map(str::to_owned);
        let kind = el.attr("type").unwrap_or("normal").to_owned();
        let mut body = None;
        let mut payloads = Vec::new();
        for n in el.children {
            if let Node::Element(e) = n {
                if e.is("body", ns::CLIENT) {
                    body.get_or_insert_with(|| e.text());
                } else {
                    payloads.push(e);
                }
            }
        }
        Ok(Message { id, from, to, kind, body, payloads })
    }
}

impl From<Message> for Element {
    fn from(m: Message) -> Element {
        let kind = (m.kind != "normal").then_some(m.kind.as_str());
        let mut el = envelope("message", m.id.as_deref(), &m.from, &m.to, kind);
        if let Some(b) = m.body {
            el.push_child(Element::new("body", ns::CLIENT).with_text(b));
        }
        el.with_children(m.payloads)
    }
}

/// Presence `type` (RFC 6121); `Available` is the absent type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceType {
    Available,
    Unavailable,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Probe,
    Error,
}

impl PresenceType {
    fn as_attr(self) -> Option<&'static str> {
        Some(match self {
            PresenceType::Available => return None,
            PresenceType::Unavailable => "unavailable",
            PresenceType::Subscribe => "subscribe",
            PresenceType::Subscribed => "subscribed",
            PresenceType::Unsubscribe => "unsubscribe",
            PresenceType::Unsubscribed => "unsubscribed",
            PresenceType::Probe => "probe",
            PresenceType::Error => "error",
        })
    }
}

/// `<show/>` of an available presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Away,
    Chat,
    Dnd,
    Xa,
}

impl Show {
    pub fn as_str(self) -> &'static str {
        match self {
            Show::Away => "away",
            Show::Chat => "chat",
            Show::Dnd => "dnd",
            Show::Xa => "xa",
        }
    }
}

/// A `<presence/>` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub id: Option<String>,
    pub from: Option<Jid>,
    pub to: Option<Jid>,
    pub kind: PresenceType,
    pub show: Option<Show>,
    pub status: Option<String>,
    /// -128..=127; 0 when absent.
    pub priority: i8,
    pub payloads: Vec<Element>,
}

impl Presence {
    pub fn new(kind: PresenceType) -> Presence {
        Presence { id: None, from: None, to: None, kind, show: None, status: None, priority: 0, payloads: Vec::new() }
    }

    pub fn to(mut self, to: Jid) -> Presence {
        self.to = Some(to);
        self
    }
}

impl TryFrom<Element> for Presence {
    type Error = ParseError;

    fn try_from(el: Element) -> Result<Presence, ParseError> {
        expect(&el, "presence", ns::CLIENT)?;
        let from = parse_jid_attr(&el, "presence", "from")?;
        let to = parse_jid_attr(&el, "presence", "to")?;
        let id = el.attr("id").map(str::to_owned);
        let kind = match el.attr("type") {
            None => PresenceType::Available,
            Some("unavailable") => PresenceType::Unavailable,
            Some("subscribe") => PresenceType::Subscribe,
            Some("subscribed") => PresenceType::Subscribed,
            Some("unsubscribe") => PresenceType::Unsubscribe,
            Some("unsubscribed") => PresenceType::Unsubscribed,
            Some("probe") => PresenceType::Probe,
            Some("error") => PresenceType::Error,
            Some(other) => return Err(ParseError::invalid("presence", format!("unknown type '{other}'"))),
        };
        let mut p = Presence { id, from, to, kind, show: None, status: None, priority: 0, payloads: Vec::new() };
        for n in el.children {
            let Node::Element(e) = n else { continue };
            if e.ns != ns::CLIENT {
                p.payloads.push(e);
                continue;
            }
            match e.name.as_str() {
                "show" => {
                    // Unknown show values are ignored rather than failing the stanza.
                    p.show = match e.text().trim() {
                        "away" => Some(Show::Away),
                        "chat" => Some(Show::Chat),
                        "dnd" => Some(Show::Dnd),
                        "xa" => Some(Show::Xa),
                        _ => None,
                    }
                }
                "status" => {
                    p.status.get_or_insert_with(|| e.text());
                }
                "priority" => {
                    p.priority =
                        e.text().trim().parse().map_err(|_| {
                            ParseError::invalid("presence", "priority must be a number from -128 to 127")
                        })?
                }
                _ => p.payloads.push(e),
            }
        }
        Ok(p)
    }
}

impl From<Presence> for Element {
    fn from(p: Presence) -> Element {
        let mut el = envelope("presence", p.id.as_deref(), &p.from, &p.to, p.kind.as_attr());
        if let Some(s) = p.show {
            el.push_child(Element::new("show", ns::CLIENT).with_text(s.as_str()));
        }
        if let Some(s) = p.status {
            el.push_child(Element::new("status", ns::CLIENT).with_text(s));
        }
        if p.priority != 0 {
            el.push_child(Element::new("priority", ns::CLIENT).with_text(p.priority.to_string()));
        }
        el.with_children(p.payloads)
    }
}

/// Any stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    Iq(Iq),
    Message(Message),
    Presence(Presence),
}

impl TryFrom<Element> for Stanza {
    type Error = ParseError;

    fn try_from(el: Element) -> Result<Stanza, ParseError> {
        if el.ns != ns::CLIENT {
            return Err(ParseError::NotMine { expected: "stanza", found: format!("{{{}}}{}", el.ns, el.name) });
        }
        match el.name.as_str() {
            "iq" => Iq::try_from(el).map(Stanza::Iq),
            "message" => Message::try_from(el).map(Stanza::Message),
            "presence" => Presence::try_from(el).map(Stanza::Presence),
            other => Err(ParseError::NotMine { expected: "stanza", found: other.to_owned() }),
        }
    }
}

impl From<Stanza> for Element {
    fn from(s: Stanza) -> Element {
        match s {
            Stanza::Iq(i) => i.into(),
            Stanza::Message(m) => m.into(),
            Stanza::Presence(p) => p.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    fn round_trip<T>(xml: &str) -> T
    where
        T: TryFrom<Element, Error = ParseError> + Clone + std::fmt::Debug,
        Element: From<T>,
    {
        let parsed = T::try_from(el(xml)).unwrap();
        assert_eq!(Element::from(parsed.clone()), el(xml), "round trip of {xml}");
        parsed
    }

    #[test]
    fn iq_get_round_trip() {
        let iq: Iq = round_trip(
            "<iq xmlns='jabber:client' id='qxmpp74' type='get' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>",
        );
        assert_eq!(iq.id, "qxmpp74");
        assert_eq!(iq.to.unwrap().to_string(), "localhost");
        assert!(matches!(iq.kind, IqKind::Get(ref p) if p.is("query", ns::DISCO_ITEMS)));
    }

    #[test]
    fn iq_empty_result_and_error() {
        let iq: Iq = round_trip("<iq xmlns='jabber:client' type='result' id='qxmpp79' from='proxy.rabbitim.com' to='b@rabbitim.com/QXmpp'/>");
        assert_eq!(iq.kind, IqKind::Result(None));
        let iq: Iq = round_trip(
            "<iq xmlns='jabber:client' id='x' type='error' from='c@d/e'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>nope</text></error></iq>",
        );
        let IqKind::Error(e) = iq.kind else { panic!() };
        assert_eq!(e.condition, Condition::ItemNotFound);
        assert_eq!(e.kind, ErrorType::Cancel);
        assert_eq!(e.text.as_deref(), Some("nope"));
        assert_eq!(e.to_string(), "item-not-found: nope");
    }

    #[test]
    fn error_with_app_condition() {
        let e = StanzaError::new(Condition::BadRequest).with_app(Element::new("no-valid-streams", ns::SI));
        let iq = Iq { id: "1".into(), from: None, to: None, kind: IqKind::Error(e.clone()) };
        let back = Iq::try_from(Element::from(iq)).unwrap();
        assert_eq!(back.kind, IqKind::Error(e));
        // A peer that omits the type still parses, with the condition's usual type.
        let e = StanzaError::try_from(&el(
            "<error xmlns='jabber:client'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
        ))
        .unwrap();
        assert_eq!((e.kind, e.condition), (ErrorType::Auth, Condition::Forbidden));
    }

    #[test]
    fn result_for_answers_the_sender() {
        let iq = Iq::try_from(el(
            "<iq xmlns='jabber:client' id='7' type='get' from='a@b/c'><ping xmlns='urn:xmpp:ping'/></iq>",
        ))
        .unwrap();
        let r = iq.result_for(None);
        assert_eq!(Element::from(r).to_xml(), "<iq xmlns='jabber:client' id='7' to='a@b/c' type='result'/>");
    }

    #[test]
    fn bad_iqs() {
        let e = |x: &str| Iq::try_from(el(x)).unwrap_err();
        assert_eq!(
            e("<iq xmlns='jabber:client' type='get'><a xmlns='u'/></iq>"),
            ParseError::MissingAttr { element: "iq", attr: "id" }
        );
        assert_eq!(
            e("<iq xmlns='jabber:client' id='1'><a xmlns='u'/></iq>"),
            ParseError::MissingAttr { element: "iq", attr: "type" }
        );
        assert_eq!(
            e("<iq xmlns='jabber:client' id='1' type='get'/>"),
            ParseError::MissingChild { element: "iq", child: "payload" }
        );
        assert_eq!(
            e("<iq xmlns='jabber:client' id='1' type='set'><a xmlns='u'/><b xmlns='u'/></iq>"),
            ParseError::invalid("iq", "a get or set must carry exactly one payload")
        );
        assert_eq!(
            e("<iq xmlns='jabber:client' id='1' type='nope'/>"),
            ParseError::invalid("iq", "unknown type 'nope'")
        );
        assert!(matches!(
            e("<iq xmlns='jabber:client' id='1' type='result' from='@bad'/>"),
            ParseError::Invalid { .. }
        ));
        assert!(e("<iq xmlns='urn:other' id='1' type='result'/>").is_not_mine());
    }

    #[test]
    fn message_round_trip() {
        let m: Message = round_trip(
            "<message xmlns='jabber:client' id='m1' from='a@b/c' to='d@e' type='chat'><body>hi &lt;there&gt;</body><x xmlns='jabber:x:oob'><url>https://h/f</url></x></message>",
        );
        assert_eq!(m.body.as_deref(), Some("hi <there>"));
        assert_eq!(m.payloads.len(), 1);
        let m: Message = round_trip("<message xmlns='jabber:client' to='d@e'/>");
        assert_eq!(m.kind, "normal");
    }

    #[test]
    fn presence_round_trip() {
        let p: Presence = round_trip(
            "<presence xmlns='jabber:client' from='bob@localhost/pc'><show>away</show><status>out</status><priority>-5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
        );
        assert_eq!((p.kind, p.show, p.priority), (PresenceType::Available, Some(Show::Away), -5));
        assert_eq!(p.payloads.len(), 1);
        let p: Presence = round_trip("<presence xmlns='jabber:client' to='bob@localhost' type='subscribe'/>");
        assert_eq!(p.kind, PresenceType::Subscribe);
        let bad =
            Presence::try_from(el("<presence xmlns='jabber:client'><priority>300</priority></presence>")).unwrap_err();
        assert_eq!(bad, ParseError::invalid("presence", "priority must be a number from -128 to 127"));
    }

    #[test]
    fn stanza_dispatch() {
        assert!(matches!(Stanza::try_from(el("<presence xmlns='jabber:client'/>")), Ok(Stanza::Presence(_))));
        assert!(Stanza::try_from(el("<features xmlns='http://etherx.jabber.org/streams'/>"))
            .unwrap_err()
            .is_not_mine());
    }
}
