//! RFC 6120 stream negotiation, client side: STARTTLS, SASL, resource binding.
//!
//! A sans-IO state machine. The driver opens the stream, feeds every [`StreamEvent`]
//! to [`Negotiator::handle`] and carries out the returned [`Action`]s: send an
//! element, upgrade the transport to TLS (then call [`Negotiator::tls_established_with`]
//! with the connection's channel-binding data), restart the stream. [`Action::Done`]
//! hands over the bound JID and the mechanism used.
//!
//! Policy lives here, where it can be tested without a network:
//! - without TLS on the transport, STARTTLS is required unless the caller opted into
//!   plaintext;
//! - SASL picks the strongest mechanism offered: SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS
//!   (only with channel-binding data from the driver, RFC 9266 `tls-exporter`),
//!   SCRAM-SHA-256, SCRAM-SHA-1, then PLAIN, and PLAIN only over TLS; with
//!   [`Negotiator::require_scram`] PLAIN is refused altogether;
//! - the GS2 header says the truth about channel binding (RFC 5802 §6): `p=` when we
//!   bind, `y` when we could but the server offers no -PLUS, `n` when we cannot;
//! - the SCRAM server-first message is checked before PBKDF2 runs on it (nonce, salt,
//!   iteration count, extensions), and the server signature is verified.

use base64::Engine as _;
use sasl::client::mechanisms::{Plain, Scram};
use sasl::client::Mechanism;
use sasl::common::scram::{Sha1, Sha256};
use sasl::common::{ChannelBinding, Credentials};

use crate::jid::Jid;
use crate::ns;
use crate::sm::{self, ResumeRequest, SmElement};
use crate::stanza::{Iq, IqKind, StanzaError};
use crate::stream::StreamEvent;
use crate::stream_error::StreamError;
use crate::xml::Element;

mod auth;
#[cfg(test)]
mod tests;

#[cfg(test)]
use auth::*;
pub use auth::{MAX_SCRAM_ITERATIONS, MIN_SCRAM_ITERATIONS};

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum TlsMode {
    /// Plain TCP, then STARTTLS, which is required.
    #[default]
    StartTls,
    /// TLS from the first byte (XEP-0368 direct TLS).
    Direct,
    /// No TLS at all. Only for loopback test servers; the driver enforces that.
    Plaintext,
}
crate::wire_enum!(TlsMode, "TLS mode", { StartTls => "starttls", Direct => "direct", Plaintext => "plaintext" });

impl TlsMode {
    /// Whether the connection is encrypted at all.
    pub fn is_tls(self) -> bool {
        self != TlsMode::Plaintext
    }
}

/// Channel-binding data of the TLS connection, for the SCRAM -PLUS mechanisms: it ties
/// the sign-in to this very TLS session, so that someone in the middle holding another
/// TLS session with the server cannot relay it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelBindingData {
    /// RFC 9266 `tls-exporter` (TLS 1.3 only): 32 bytes of keying material exported
    /// with the label [`TLS_EXPORTER_LABEL`] and no context.
    TlsExporter(Vec<u8>),
}

/// The exporter label of RFC 9266 `tls-exporter` channel binding.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// The length of RFC 9266 `tls-exporter` channel-binding data.
pub const TLS_EXPORTER_LEN: usize = 32;

impl ChannelBindingData {
    /// The channel-binding type's name (RFC 5056 registry, XEP-0440 `type`).
    pub fn kind(&self) -> &'static str {
        match self {
            ChannelBindingData::TlsExporter(_) => "tls-exporter",
        }
    }

    fn to_sasl(&self) -> ChannelBinding {
        match self {
            ChannelBindingData::TlsExporter(d) => ChannelBinding::TlsExporter(d.clone()),
        }
    }
}

/// XEP-0440: the channel-binding types a server supports, in its stream features.
const NS_SASL_CB: &str = "urn:xmpp:sasl-cb:0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    #[error("the server does not offer TLS (STARTTLS); refusing to sign in without encryption")]
    TlsNotOffered,
    #[error("the server requires TLS, but plaintext was chosen")]
    TlsRequiredByServer,
    #[error("the server refused to start TLS")]
    TlsRefused,
    #[error("wrong password or unknown account for {jid} (the server said {condition}{})", text.as_ref().map(|t| format!(": {t}")).unwrap_or_default())]
    AuthFailed { jid: String, condition: String, text: Option<String> },
    #[error("the server offers no sign-in method this client can use safely (offered: {0})")]
    NoMechanism(String),
    #[error("the server's SCRAM proof did not verify: it may not know this account's password (or someone is in the middle)")]
    ServerProofInvalid,
    #[error("sign-in failed: {0}")]
    Sasl(String),
    /// The SCRAM server-first message (RFC 5802 §5.1) is checked before PBKDF2 runs on
    /// it; each broken rule has its own error.
    ///
    /// The server nonce must begin with ours and add to it: anything else means the
    /// answer was not made for this exchange (a replay, or a relay by someone else).
    #[error("the server's SCRAM nonce does not extend ours: someone may be in the middle")]
    ScramNonce,
    /// The iteration count is outside [`MIN_SCRAM_ITERATIONS`]..=[`MAX_SCRAM_ITERATIONS`].
    #[error(
        "the server asks for {0} SCRAM iterations, but this client accepts only {min} to {max} (fewer make the \
         password easy to crack from a recorded sign-in, more would tie up this computer): the server is \
         misconfigured or someone may be in the middle",
        min = MIN_SCRAM_ITERATIONS,
        max = MAX_SCRAM_ITERATIONS
    )]
    ScramIterations(u64),
    #[error(
        "the server's SCRAM salt is empty or not valid base64: the server is broken or someone may be in the middle"
    )]
    ScramSalt,
    /// A mandatory extension (`m=`): RFC 5802 says to fail when we do not know it.
    #[error("the server demands a SCRAM extension (m=) this client does not know, so sign-in cannot go on safely")]
    ScramExtension,
    /// Not UTF-8, a missing or repeated attribute, a count that is not a number.
    #[error("the server's SCRAM challenge is malformed ({0}): the server is broken or someone may be in the middle")]
    ScramMalformed(&'static str),
    /// The account signed in with SCRAM before and the server now offers only PLAIN.
    #[error(
        "the server offers only PLAIN sign-in, but this account signed in with SCRAM before: this may be a \
         downgrade attack, so the password was not sent (allow PLAIN for this account to go on)"
    )]
    PlainDowngrade,
    #[error("the server refused the resource binding: {0}")]
    BindFailed(Box<StanzaError>),
    #[error("the server sent something unexpected during sign-in: {0}")]
    Unexpected(String),
    #[error("{0}")]
    Stream(StreamError),
    #[error("the server closed the stream during sign-in")]
    Closed,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write this element on the stream.
    Send(Element),
    /// Upgrade the transport to TLS now, then call [`Negotiator::tls_established`].
    StartTls,
    /// Send a new stream header and reset the parser.
    RestartStream,
    /// Negotiation finished.
    Done(Negotiated),
}

/// The outcome of a successful negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub jid: Jid,
    /// The SASL mechanism used.
    pub mechanism: String,
    /// Namespaces of the post-bind stream features (e.g. stream management, CSI).
    pub features: Vec<String>,
    pub tls: bool,
    /// What became of the XEP-0198 resumption asked for with [`Negotiator::resume`]
    /// (`None` when none was asked).
    pub resumption: Option<Resumption>,
}

/// The outcome of an XEP-0198 resumption attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resumption {
    /// The old session goes on; the server handled `h` of our stanzas. No resource
    /// was bound: the JID is the old session's.
    Resumed { h: u32 },
    /// The server refused (the session expired, or it never knew it); `h` when it
    /// still knew how many of our stanzas the old session handled. A new resource
    /// was bound.
    Failed { h: Option<u32>, condition: Option<String> },
    /// The server no longer offers stream management; a new resource was bound.
    NotOffered,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    AwaitHeader,
    AwaitFeatures,
    AwaitProceed,
    AwaitTls,
    Sasl,
    /// `<resume/>` sent (XEP-0198), waiting for `<resumed/>` or `<failed/>`.
    AwaitResumed,
    AwaitBind,
    AwaitSession,
    Done,
}

/// The client-side stream negotiation of one connection.
pub struct Negotiator {
    jid: Jid,
    password: String,
    resource: Option<String>,
    policy: TlsMode,
    tls: bool,
    state: State,
    mech: Option<Box<dyn Mechanism + Send>>,
    mech_name: String,
    /// The nonce of our SCRAM client-first message, to check the server's against.
    client_nonce: Option<String>,
    /// Refuse PLAIN (the account used SCRAM before).
    require_scram: bool,
    /// Channel-binding data of the TLS layer, when the driver has it.
    binding: Option<ChannelBindingData>,
    /// The SCRAM server-first message was answered (a later challenge is server-final).
    answered_first: bool,
    /// The SCRAM server signature was verified (server-final came in a challenge).
    server_verified: bool,
    authenticated: bool,
    session_required: bool,
    bound: Option<Jid>,
    features: Vec<String>,
    /// The XEP-0198 session to resume instead of binding, with its bound JID.
    resume: Option<(ResumeRequest, Jid)>,
    resumption: Option<Resumption>,
    /// The post-authentication features, kept to bind after a failed resumption.
    post_auth_features: Option<Element>,
}

impl std::fmt::Debug for Negotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Negotiator")
            .field("jid", &self.jid)
            .field("state", &self.state)
            .field("tls", &self.tls)
            .finish()
    }
}

const BIND_ID: &str = "bind-1";
const SESSION_ID: &str = "session-1";

impl Negotiator {
    /// `jid` is the account (its resource, if any, is the one requested at bind).
    pub fn new(jid: Jid, password: impl Into<String>, policy: TlsMode) -> Negotiator {
        let resource = jid.resource().map(str::to_owned);
        Negotiator {
            jid: jid.bare(),
            password: password.into(),
            resource,
            policy,
            tls: policy == TlsMode::Direct,
            state: State::AwaitHeader,
            mech: None,
            mech_name: String::new(),
            client_nonce: None,
            require_scram: false,
            binding: None,
            answered_first: false,
            server_verified: false,
            authenticated: false,
            session_required: false,
            bound: None,
            features: Vec::new(),
            resume: None,
            resumption: None,
            post_auth_features: None,
        }
    }

    /// After authentication, asks to resume the XEP-0198 session `request` (bound to
    /// `jid`) instead of binding a new resource; [`Negotiated::resumption`] tells how it
    /// went. Without stream management in the server's features, or when the server
    /// refuses, a new resource is bound as usual.
    pub fn resume(mut self, request: Option<(ResumeRequest, Jid)>) -> Negotiator {
        self.resume = request;
        self
    }

    /// Refuses PLAIN even over TLS: for an account that signed in with SCRAM before,
    /// a server offering only PLAIN now may be a downgrade by someone in the middle.
    pub fn require_scram(mut self, yes: bool) -> Negotiator {
        self.require_scram = yes;
        self
    }

    /// Whether handling `event` may run PBKDF2 (a SCRAM challenge): the driver runs
    /// such a step off its async workers.
    pub fn is_expensive(&self, event: &StreamEvent) -> bool {
        matches!(event, StreamEvent::Stanza(el) if el.is("challenge", ns::SASL))
    }

    /// Channel-binding data of a transport that is TLS from the start (direct TLS):
    /// with it, a -PLUS mechanism is chosen when the server offers one. Ignored while
    /// the transport is not TLS.
    pub fn channel_binding(mut self, binding: Option<ChannelBindingData>) -> Negotiator {
        self.binding = binding;
        self
    }

    /// The transport is now TLS (after STARTTLS): restart the stream. No
    /// channel-binding data, so no -PLUS mechanism.
    pub fn tls_established(&mut self) -> Vec<Action> {
        self.tls_established_with(None)
    }

    /// The transport is now TLS, with this channel-binding data (`None` when the TLS
    /// session cannot give any, e.g. `tls-exporter` under TLS 1.2): restart the stream.
    pub fn tls_established_with(&mut self, binding: Option<ChannelBindingData>) -> Vec<Action> {
        self.tls = true;
        self.binding = binding;
        self.state = State::AwaitHeader;
        vec![Action::RestartStream]
    }

    pub fn handle(&mut self, event: StreamEvent) -> Result<Vec<Action>, NegotiationError> {
        let el = match event {
            StreamEvent::Open(_) => {
                if self.state == State::AwaitHeader {
                    self.state = State::AwaitFeatures;
                    return Ok(vec![]);
                }
                return Err(NegotiationError::Unexpected("a second stream header".into()));
            }
            StreamEvent::Close => return Err(NegotiationError::Closed),
            StreamEvent::Stanza(el) => el,
            StreamEvent::Dropped(d) => {
                return Err(NegotiationError::Unexpected(format!("a <{}> with {}", d.name, d.limit)))
            }
        };
        if let Some(err) = StreamError::from_element(&el) {
            return Err(NegotiationError::Stream(err));
        }
        match self.state {
            State::AwaitFeatures if el.is("features", ns::STREAM) => self.on_features(&el),
            State::AwaitProceed if el.is("proceed", ns::TLS) => {
                self.state = State::AwaitTls;
                Ok(vec![Action::StartTls])
            }
            State::AwaitProceed if el.is("failure", ns::TLS) => Err(NegotiationError::TlsRefused),
            State::Sasl if el.ns == ns::SASL => self.on_sasl(&el),
            State::AwaitResumed if el.ns == sm::NS => self.on_resumption(&el),
            State::AwaitBind | State::AwaitSession if el.is("iq", ns::CLIENT) => self.on_iq(el),
            _ => Err(NegotiationError::Unexpected(format!("<{}/> ({}) while {:?}", el.name, el.ns, self.state))),
        }
    }

    fn on_features(&mut self, features: &Element) -> Result<Vec<Action>, NegotiationError> {
        let starttls = features.child("starttls", ns::TLS);
        if !self.tls {
            match (self.policy, starttls) {
                (TlsMode::Plaintext, Some(st)) if st.child("required", ns::TLS).is_some() => {
                    return Err(NegotiationError::TlsRequiredByServer)
                }
                (TlsMode::Plaintext, _) => {}
                (_, Some(_)) => {
                    self.state = State::AwaitProceed;
                    return Ok(vec![Action::Send(Element::new("starttls", ns::TLS))]);
                }
                (_, None) => return Err(NegotiationError::TlsNotOffered),
            }
        }
        if !self.authenticated {
            return self.start_sasl(features);
        }
        // Authenticated: resume the old session if asked and offered, else bind.
        if let Some((request, _)) = &self.resume {
            if features.child("sm", sm::NS).is_some() {
                let resume = Element::from(request);
                self.post_auth_features = Some(features.clone());
                self.state = State::AwaitResumed;
                return Ok(vec![Action::Send(resume)]);
            }
            self.resumption = Some(Resumption::NotOffered);
        }
        self.bind(features)
    }

    /// The server's answer to `<resume/>`.
    fn on_resumption(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        let answer = SmElement::try_from(el).map_err(|e| NegotiationError::Unexpected(e.to_string()))?;
        let (request, jid) = self.resume.clone().expect("resume asked");
        match answer {
            SmElement::Resumed { h, previd } if previd == request.previd => {
                self.resumption = Some(Resumption::Resumed { h });
                self.bound = Some(jid);
                let features = self.post_auth_features.take().expect("kept when resuming");
                self.features = features.elements().map(|e| e.ns.clone()).collect();
                Ok(vec![self.done()])
            }
            SmElement::Resumed { previd, .. } => Err(NegotiationError::Unexpected(format!(
                "the server resumed session '{previd}' where '{}' was asked",
                request.previd
            ))),
            SmElement::Failed { h, condition } => {
                self.resumption = Some(Resumption::Failed { h, condition });
                let features = self.post_auth_features.take().expect("kept when resuming");
                self.bind(&features)
            }
            _ => Err(NegotiationError::Unexpected(format!("<{}/> in answer to <resume/>", el.name))),
        }
    }

    fn bind(&mut self, features: &Element) -> Result<Vec<Action>, NegotiationError> {
        if features.child("bind", ns::BIND).is_none() {
            return Err(NegotiationError::Unexpected("no resource binding offered after sign-in".into()));
        }
        self.features = features.elements().map(|e| e.ns.clone()).collect();
        self.session_required =
            features.child("session", ns::SESSION).is_some_and(|s| s.child("optional", ns::SESSION).is_none());
        self.state = State::AwaitBind;
        let mut bind = Element::new("bind", ns::BIND);
        if let Some(r) = &self.resource {
            bind.push_child(Element::new("resource", ns::BIND).with_text(r.clone()));
        }
        Ok(vec![Action::Send(Iq::set(BIND_ID, None, bind).into())])
    }

    fn on_iq(&mut self, el: Element) -> Result<Vec<Action>, NegotiationError> {
        let iq = Iq::try_from(el).map_err(|e| NegotiationError::Unexpected(e.to_string()))?;
        match (&self.state, iq.id.as_str(), iq.kind) {
            (State::AwaitBind, BIND_ID, IqKind::Result(Some(payload))) => {
                let jid = payload
                    .child_text("jid", ns::BIND)
                    .ok_or_else(|| NegotiationError::Unexpected("bind result without a JID".into()))?;
                let jid: Jid =
                    jid.trim().parse().map_err(|e| NegotiationError::Unexpected(format!("bound JID: {e}")))?;
                if jid.bare() != self.jid || jid.is_bare() {
                    return Err(NegotiationError::Unexpected(format!("the server bound an unexpected address {jid}")));
                }
                self.bound = Some(jid);
                if self.session_required {
                    self.state = State::AwaitSession;
                    return Ok(vec![Action::Send(
                        Iq::set(SESSION_ID, None, Element::new("session", ns::SESSION)).into(),
                    )]);
                }
                Ok(vec![self.done()])
            }
            (State::AwaitBind, BIND_ID, IqKind::Error(e)) => Err(NegotiationError::BindFailed(Box::new(e))),
            (State::AwaitSession, SESSION_ID, IqKind::Result(_)) => Ok(vec![self.done()]),
            (State::AwaitSession, SESSION_ID, IqKind::Error(e)) => Err(NegotiationError::BindFailed(Box::new(e))),
            (_, id, _) => Err(NegotiationError::Unexpected(format!("an IQ '{id}' before sign-in finished"))),
        }
    }

    fn done(&mut self) -> Action {
        self.state = State::Done;
        Action::Done(Negotiated {
            jid: self.bound.clone().unwrap_or_else(|| self.jid.clone()),
            mechanism: self.mech_name.clone(),
            features: std::mem::take(&mut self.features),
            tls: self.tls,
            resumption: self.resumption.take(),
        })
    }
}
