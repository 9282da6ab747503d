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

    fn start_sasl(&mut self, features: &Element) -> Result<Vec<Action>, NegotiationError> {
        let offered: Vec<String> = features
            .child("mechanisms", ns::SASL)
            .map(|m| m.children_named("mechanism", ns::SASL).map(|e| e.text().trim().to_owned()).collect())
            .unwrap_or_default();
        let has = |m: &str| offered.iter().any(|o| o == m);
        let user = self.jid.local().unwrap_or_default().to_owned();
        // Channel binding only ever over TLS, and only with a type the server takes
        // (XEP-0440; without that list, RFC 9266 makes tls-exporter the TLS 1.3 default).
        let binding = self.binding.as_ref().filter(|_| self.tls);
        let server_cb_types: Option<Vec<String>> = features.child("sasl-channel-binding", NS_SASL_CB).map(|l| {
            l.children_named("channel-binding", NS_SASL_CB).filter_map(|c| c.attr("type")).map(str::to_owned).collect()
        });
        let usable = binding.filter(|b| server_cb_types.as_ref().is_none_or(|t| t.iter().any(|t| t == b.kind())));
        let offers_plus = offered.iter().any(|m| m.starts_with("SCRAM-") && m.ends_with("-PLUS"));
        // RFC 5802 §6, GS2 flag without binding: "y" = we could bind but the server
        // shows no -PLUS (a server that can bind then knows -PLUS was stripped); "n" =
        // we cannot bind, or not with any type this server offers.
        let unbound =
            if binding.is_some() && !offers_plus { ChannelBinding::Unsupported } else { ChannelBinding::None };
        let creds = |cb: ChannelBinding| {
            Credentials::default()
                .with_username(user.clone())
                .with_password(self.password.clone())
                .with_channel_binding(cb)
        };
        let sasl_err = |e: sasl::client::MechanismError| NegotiationError::Sasl(e.to_string());
        let mech: Box<dyn Mechanism + Send> = if let (Some(b), true) = (usable, has("SCRAM-SHA-256-PLUS")) {
            Box::new(Scram::<Sha256>::from_credentials(creds(b.to_sasl())).map_err(sasl_err)?)
        } else if let (Some(b), true) = (usable, has("SCRAM-SHA-1-PLUS")) {
            Box::new(Scram::<Sha1>::from_credentials(creds(b.to_sasl())).map_err(sasl_err)?)
        } else if has("SCRAM-SHA-256") {
            Box::new(Scram::<Sha256>::from_credentials(creds(unbound)).map_err(sasl_err)?)
        } else if has("SCRAM-SHA-1") {
            Box::new(Scram::<Sha1>::from_credentials(creds(unbound)).map_err(sasl_err)?)
        } else if has("PLAIN") && self.tls && self.require_scram {
            return Err(NegotiationError::PlainDowngrade);
        } else if has("PLAIN") && self.tls {
            Box::new(Plain::new(user, self.password.clone()))
        } else {
            return Err(NegotiationError::NoMechanism(if offered.is_empty() {
                "none".into()
            } else {
                offered.join(", ")
            }));
        };
        let mut mech = mech;
        self.mech_name = mech.name().to_owned();
        let initial = mech.initial();
        self.client_nonce = self.mech_name.starts_with("SCRAM-").then(|| scram_attr(&initial, 'r')).flatten();
        self.mech = Some(mech);
        self.state = State::Sasl;
        let auth =
            Element::new("auth", ns::SASL).with_attr("mechanism", self.mech_name.clone()).with_text(encode(&initial));
        Ok(vec![Action::Send(auth)])
    }

    fn on_sasl(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        let mech = self.mech.as_mut().ok_or_else(|| NegotiationError::Unexpected("SASL without a mechanism".into()))?;
        match el.name.as_str() {
            "challenge" if self.client_nonce.is_some() && self.answered_first => {
                // RFC 6120 §6.4.3: the server-final message may come as a challenge; it
                // is verified now and answered with an empty response.
                if self.server_verified {
                    return Err(NegotiationError::Unexpected("a third SCRAM challenge".into()));
                }
                mech.success(&decode(&el.text())?).map_err(proof_error)?;
                self.server_verified = true;
                Ok(vec![Action::Send(Element::new("response", ns::SASL))])
            }
            "challenge" => {
                let data = decode(&el.text())?;
                if let Some(ours) = &self.client_nonce {
                    check_server_first(ours, &data)?;
                    self.answered_first = true;
                }
                let resp = mech.response(&data).map_err(|e| NegotiationError::Sasl(e.to_string()))?;
                Ok(vec![Action::Send(Element::new("response", ns::SASL).with_text(encode(&resp)))])
            }
            "success" => {
                let data = decode(&el.text())?;
                if self.client_nonce.is_some() && !self.answered_first {
                    return Err(NegotiationError::ServerProofInvalid);
                }
                // Verified already (server-final came as a challenge): nothing more may
                // follow in the success.
                if self.server_verified {
                    if !data.is_empty() {
                        return Err(NegotiationError::Unexpected("SCRAM data after the server's proof".into()));
                    }
                } else {
                    mech.success(&data).map_err(proof_error)?;
                }
                self.mech = None;
                self.authenticated = true;
                self.state = State::AwaitHeader;
                Ok(vec![Action::RestartStream])
            }
            "failure" => {
                let condition = el
                    .elements()
                    .find(|e| e.name != "text")
                    .map(|e| e.name.clone())
                    .unwrap_or_else(|| "not-authorized".into());
                let text = el.child_text("text", ns::SASL).filter(|t| !t.is_empty());
                Err(NegotiationError::AuthFailed { jid: self.jid.to_string(), condition, text })
            }
            other => Err(NegotiationError::Unexpected(format!("SASL <{other}/>"))),
        }
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

fn proof_error(e: sasl::client::MechanismError) -> NegotiationError {
    match e {
        sasl::client::MechanismError::InvalidSignatureInSuccessResponse
        | sasl::client::MechanismError::NoSignatureInSuccessResponse => NegotiationError::ServerProofInvalid,
        other => NegotiationError::Sasl(other.to_string()),
    }
}

fn encode(data: &[u8]) -> String {
    if data.is_empty() {
        // RFC 6120 6.4.2: an empty initial response is sent as '='.
        "=".to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

fn decode(text: &str) -> Result<Vec<u8>, NegotiationError> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|_| NegotiationError::Unexpected("SASL data that is not base64".into()))
}

/// The smallest SCRAM iteration count accepted: RFC 5802 §5.1 and RFC 7677 ask for at
/// least 4096; fewer make a password easy to crack from a recorded sign-in.
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;
/// The largest SCRAM iteration count accepted: it caps the CPU a hostile server can make
/// us spend (PBKDF2 at a million rounds takes about a second; 2^32-1 would take hours).
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// The value of attribute `key` of a SCRAM message (`r=...,s=...,i=...`); the GS2
/// header of a client-first message is skipped since it holds no `x=` pairs that
/// matter here.
fn scram_attr(msg: &[u8], key: char) -> Option<String> {
    let text = std::str::from_utf8(msg).ok()?;
    text.split(',').find_map(|part| part.strip_prefix(key)?.strip_prefix('=')).map(str::to_owned)
}

/// Checks a SCRAM server-first message before PBKDF2 runs on it (RFC 5802 §5.1,
/// `[m=ext,]r=nonce,s=salt,i=count[,ext...]`): no mandatory extension, every attribute
/// once (the `sasl` crate keeps the last of repeated ones, we must check the same one),
/// the server nonce extends ours, the salt is non-empty base64, the iteration count in
/// [`MIN_SCRAM_ITERATIONS`]..=[`MAX_SCRAM_ITERATIONS`].
fn check_server_first(client_nonce: &str, msg: &[u8]) -> Result<(), NegotiationError> {
    use NegotiationError::{ScramExtension, ScramIterations, ScramMalformed, ScramNonce, ScramSalt};
    let text = std::str::from_utf8(msg).map_err(|_| ScramMalformed("not UTF-8"))?;
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    for part in text.split(',') {
        let (key, value) = part.split_once('=').ok_or(ScramMalformed("an attribute without a value"))?;
        if key == "m" {
            return Err(ScramExtension);
        }
        if attrs.iter().any(|(k, _)| *k == key) {
            return Err(ScramMalformed("an attribute given twice"));
        }
        attrs.push((key, value));
    }
    let get = |key: &str| attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let nonce = get("r").ok_or(ScramMalformed("no nonce"))?;
    if !nonce.starts_with(client_nonce) || nonce.len() <= client_nonce.len() {
        return Err(ScramNonce);
    }
    let salt = get("s").ok_or(ScramMalformed("no salt"))?;
    match base64::engine::general_purpose::STANDARD.decode(salt.as_bytes()) {
        Ok(s) if !s.is_empty() => {}
        _ => return Err(ScramSalt),
    }
    let count = get("i").ok_or(ScramMalformed("no iteration count"))?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScramMalformed("an iteration count that is not a number"));
    }
    // Digits only: a parse failure means more than u64 holds.
    let iterations: u64 = count.parse().unwrap_or(u64::MAX);
    if !(u64::from(MIN_SCRAM_ITERATIONS)..=u64::from(MAX_SCRAM_ITERATIONS)).contains(&iterations) {
        return Err(ScramIterations(iterations));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::StreamHeader;

    fn open() -> StreamEvent {
        StreamEvent::Open(StreamHeader { attrs: vec![], default_ns: ns::CLIENT.into() })
    }

    fn st(xml: &str) -> StreamEvent {
        StreamEvent::Stanza(xml.parse().unwrap())
    }

    fn features(inner: &str) -> StreamEvent {
        st(&format!("<features xmlns='http://etherx.jabber.org/streams'>{inner}</features>"))
    }

    const MECHS: &str = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>";
    const STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";

    fn sent(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Send(e) => e.to_xml(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn neg(policy: TlsMode) -> Negotiator {
        Negotiator::new("user@example.com/skiff".parse().unwrap(), "pencil", policy)
    }

    #[test]
    fn starttls_then_restart() {
        let mut n = neg(TlsMode::StartTls);
        assert_eq!(n.handle(open()).unwrap(), vec![]);
        let a = n.handle(features(&format!("{STARTTLS}{MECHS}"))).unwrap();
        assert_eq!(sent(&a), vec!["<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"]);
        assert_eq!(n.handle(st("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")).unwrap(), vec![Action::StartTls]);
        assert_eq!(n.tls_established(), vec![Action::RestartStream]);
        n.handle(open()).unwrap();
        let a = n.handle(features(MECHS)).unwrap();
        // SCRAM-SHA-1 preferred over PLAIN.
        assert!(sent(&a)[0].starts_with("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"));
    }

    #[test]
    fn refuses_to_continue_without_tls() {
        let mut n = neg(TlsMode::StartTls);
        n.handle(open()).unwrap();
        assert_eq!(n.handle(features(MECHS)), Err(NegotiationError::TlsNotOffered));
        let mut n = neg(TlsMode::StartTls);
        n.handle(open()).unwrap();
        n.handle(features(STARTTLS)).unwrap();
        assert_eq!(
            n.handle(st("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")),
            Err(NegotiationError::TlsRefused)
        );
    }

    #[test]
    fn no_plain_without_tls() {
        let mut n = neg(TlsMode::Plaintext);
        n.handle(open()).unwrap();
        let only_plain =
            "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>";
        assert_eq!(n.handle(features(only_plain)), Err(NegotiationError::NoMechanism("PLAIN".into())));
        let mut n = neg(TlsMode::Plaintext);
        n.handle(open()).unwrap();
        assert_eq!(n.handle(features(STARTTLS)), Err(NegotiationError::TlsRequiredByServer));
    }

    #[test]
    fn plain_over_tls() {
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        let a = n
            .handle(features(
                "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>",
            ))
            .unwrap();
        // base64("\0user\0pencil")
        assert_eq!(
            sent(&a),
            vec!["<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHVzZXIAcGVuY2ls</auth>"]
        );
    }

    #[test]
    fn sasl_failure_is_a_clear_error() {
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        n.handle(features(MECHS)).unwrap();
        let err = n
            .handle(st("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>Invalid username or password</text></failure>"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "wrong password or unknown account for user@example.com (the server said not-authorized: Invalid username or password)"
        );
    }

    #[test]
    fn stream_error_during_negotiation() {
        let mut n = neg(TlsMode::StartTls);
        n.handle(open()).unwrap();
        let err = n
            .handle(st("<error xmlns='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>"))
            .unwrap_err();
        assert!(matches!(err, NegotiationError::Stream(ref e) if e.condition == "host-unknown"));
        assert_eq!(n.handle(StreamEvent::Close), Err(NegotiationError::Closed));
    }

    /// A minimal SCRAM-SHA-256(-PLUS) server (RFC 5802/7677) for the tests, written from
    /// the RFC: salt "saltsalt", 4096 iterations, password "pencil".
    struct ScramServer {
        /// The client's GS2 header (`n,,`, `y,,`, `p=tls-exporter,,`).
        gs2: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    }

    fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }

    fn sha256(data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(data).to_vec()
    }

    fn b64(d: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(d)
    }

    impl ScramServer {
        fn first(client_first: &[u8]) -> (ScramServer, Vec<u8>) {
            let cf = std::str::from_utf8(client_first).unwrap();
            // gs2-header = flag "," [authzid] ","
            let mut parts = cf.splitn(3, ',');
            let (flag, authz, bare) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(authz, "", "no authzid");
            assert!(bare.starts_with("n=user,r="), "{bare}");
            let nonce = format!("{}srvnonce", &bare["n=user,r=".len()..]);
            let server_first = format!("r={nonce},s={},i=4096", b64(b"saltsalt"));
            let s = ScramServer {
                gs2: format!("{flag},,"),
                client_first_bare: bare.to_owned(),
                server_first: server_first.clone(),
                nonce,
            };
            (s, server_first.into_bytes())
        }

        /// Checks the channel binding (`cb`: the data the server's TLS layer sees) and
        /// the client proof; returns the server-final message.
        fn last(&self, client_final: &[u8], cb: &[u8]) -> Vec<u8> {
            let cf = std::str::from_utf8(client_final).unwrap();
            let (without_proof, proof) = cf.rsplit_once(",p=").unwrap();
            let cbind_input = [self.gs2.as_bytes(), cb].concat();
            assert_eq!(without_proof, format!("c={},r={}", b64(&cbind_input), self.nonce));
            let mut salted = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"pencil", b"saltsalt", 4096, &mut salted);
            let client_key = hmac256(&salted, b"Client Key");
            let auth = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
            let client_sig = hmac256(&sha256(&client_key), auth.as_bytes());
            let expected: Vec<u8> = client_key.iter().zip(&client_sig).map(|(a, b)| a ^ b).collect();
            assert_eq!(base64::engine::general_purpose::STANDARD.decode(proof).unwrap(), expected, "client proof");
            let server_sig = hmac256(&hmac256(&salted, b"Server Key"), auth.as_bytes());
            format!("v={}", b64(&server_sig)).into_bytes()
        }
    }

    fn sasl_payload(a: &[Action]) -> Vec<u8> {
        let [Action::Send(el)] = a else { panic!("{a:?}") };
        decode(&el.text()).unwrap()
    }

    fn sasl(name: &str, data: &[u8]) -> StreamEvent {
        st(&format!("<{name} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</{name}>", b64(data)))
    }

    fn mechanisms(names: &[&str]) -> String {
        let list: String = names.iter().map(|m| format!("<mechanism>{m}</mechanism>")).collect();
        format!("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{list}</mechanisms>")
    }

    /// A full SCRAM-SHA-256 exchange against a SCRAM server written from the RFC,
    /// then bind; a forged server signature is caught.
    #[test]
    fn scram_sha256_exchange_and_bind() {
        for forge in [true, false] {
            let mut n = neg(TlsMode::Direct);
            n.handle(open()).unwrap();
            let a = n.handle(features(&mechanisms(&["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"]))).unwrap();
            assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-256'"), "{a:?}");
            let (server, challenge) = ScramServer::first(&sasl_payload(&a));
            assert_eq!(server.gs2, "n,,", "no channel-binding data: we cannot bind");
            let a = n.handle(sasl("challenge", &challenge)).unwrap();
            let mut fin = server.last(&sasl_payload(&a), b"");
            if forge {
                let last = fin.len() - 2;
                fin[last] ^= 1;
                let r = n.handle(sasl("success", &fin));
                assert!(matches!(r, Err(NegotiationError::ServerProofInvalid | NegotiationError::Sasl(_))), "{r:?}");
                continue;
            }
            let a = n.handle(sasl("success", &fin)).unwrap();
            assert_eq!(a, vec![Action::RestartStream]);
            n.handle(open()).unwrap();
            let a = n
                .handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"))
                .unwrap();
            assert_eq!(
                sent(&a),
                vec!["<iq xmlns='jabber:client' id='bind-1' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>skiff</resource></bind></iq>"]
            );
            let a = n
                .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
                .unwrap();
            let [Action::Done(done)] = a.as_slice() else { panic!("{a:?}") };
            assert_eq!(done.jid.to_string(), "user@example.com/skiff");
            assert_eq!(done.mechanism, "SCRAM-SHA-256");
            assert!(done.tls);
        }
    }

    /// Some servers send the server-final message in a challenge (RFC 6120 §6.4.3): it
    /// is verified there, answered with an empty response, and the success is empty.
    #[test]
    fn server_final_in_a_challenge() {
        for forge in [false, true] {
            let mut n = neg(TlsMode::Direct);
            n.handle(open()).unwrap();
            let a = n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
            let (server, challenge) = ScramServer::first(&sasl_payload(&a));
            let a = n.handle(sasl("challenge", &challenge)).unwrap();
            let mut fin = server.last(&sasl_payload(&a), b"");
            if forge {
                let last = fin.len() - 2;
                fin[last] ^= 1;
                assert_eq!(n.handle(sasl("challenge", &fin)), Err(NegotiationError::ServerProofInvalid));
                continue;
            }
            let a = n.handle(sasl("challenge", &fin)).unwrap();
            assert_eq!(sent(&a), vec!["<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]);
            let a = n.handle(st("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")).unwrap();
            assert_eq!(a, vec![Action::RestartStream]);
        }
        // A success straight after the auth, with no exchange at all, proves nothing.
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
        assert_eq!(
            n.handle(st("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")),
            Err(NegotiationError::ServerProofInvalid)
        );
    }

    /// A SCRAM challenge built from `f(client nonce)`, answered by the negotiator.
    fn challenge_with(f: impl Fn(&str) -> String) -> Result<Vec<Action>, NegotiationError> {
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        let a = n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
        let first = sasl_payload(&a);
        let nonce = scram_attr(&first, 'r').unwrap();
        n.handle(sasl("challenge", f(&nonce).as_bytes()))
    }

    #[test]
    fn hostile_scram_challenges_are_refused_before_pbkdf2() {
        use NegotiationError::{ScramExtension, ScramIterations, ScramMalformed, ScramNonce, ScramSalt};
        const SALT: &str = "c2FsdHNhbHQ=";
        let ok = challenge_with(|c| format!("r={c}srv,s={SALT},i=4096"));
        assert!(ok.is_ok(), "{ok:?}");
        type Make = Box<dyn Fn(&str) -> String>;
        let cases: Vec<(&str, Make, NegotiationError)> = vec![
            ("not extending ours", Box::new(|_| format!("r=someoneelsesnonce,s={SALT},i=4096")), ScramNonce),
            ("equal to ours", Box::new(|c| format!("r={c},s={SALT},i=4096")), ScramNonce),
            ("ours as a suffix", Box::new(|c| format!("r=x{c},s={SALT},i=4096")), ScramNonce),
            ("a prefix of ours", Box::new(|c| format!("r={},s={SALT},i=4096", &c[..c.len() - 1])), ScramNonce),
            ("4095 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=4095")), ScramIterations(4095)),
            ("1,000,001 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=1000001")), ScramIterations(1_000_001)),
            ("2^32-1 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=4294967295")), ScramIterations(4294967295)),
            ("0 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=0")), ScramIterations(0)),
            (
                "rounds beyond 64 bits",
                Box::new(|c| format!("r={c}srv,s={SALT},i=99999999999999999999999")),
                ScramIterations(u64::MAX),
            ),
            (
                "a second, larger count",
                Box::new(|c| format!("r={c}srv,s={SALT},i=4096,i=4294967295")),
                ScramMalformed("an attribute given twice"),
            ),
            (
                "a second nonce",
                Box::new(|c| format!("r={c}srv,s={SALT},i=4096,r=mallory")),
                ScramMalformed("an attribute given twice"),
            ),
            (
                "negative rounds",
                Box::new(|c| format!("r={c}srv,s={SALT},i=-1")),
                ScramMalformed("an iteration count that is not a number"),
            ),
            ("no rounds", Box::new(|c| format!("r={c}srv,s={SALT}")), ScramMalformed("no iteration count")),
            ("no nonce", Box::new(|_| format!("s={SALT},i=4096")), ScramMalformed("no nonce")),
            ("bad salt", Box::new(|c| format!("r={c}srv,s=***,i=4096")), ScramSalt),
            ("empty salt", Box::new(|c| format!("r={c}srv,s=,i=4096")), ScramSalt),
            ("an extension", Box::new(|c| format!("m=ext,r={c}srv,s={SALT},i=4096")), ScramExtension),
        ];
        for (what, f, expected) in cases {
            let started = std::time::Instant::now();
            let r = challenge_with(f);
            assert_eq!(r, Err(expected), "{what}");
            assert!(started.elapsed() < std::time::Duration::from_millis(500), "{what}: PBKDF2 ran");
            let text = r.unwrap_err().to_string();
            assert!(text.contains("in the middle") || text.contains("cannot go on safely"), "{what}: {text}");
        }
        assert_eq!(
            challenge_with(|_| "r=x".into()).unwrap_err().to_string(),
            "the server's SCRAM nonce does not extend ours: someone may be in the middle"
        );
        assert!(challenge_with(|c| format!("r={c}srv,s={SALT},i=4294967295")).unwrap_err().to_string().starts_with(
            "the server asks for 4294967295 SCRAM iterations, but this client accepts only 4096 to 1000000"
        ));
        // The bounds themselves are fine.
        assert!(challenge_with(|c| format!("r={c}srv,s={SALT},i={MAX_SCRAM_ITERATIONS}")).is_ok());
        assert!(challenge_with(|c| format!("r={c}srv,s={SALT},i={MIN_SCRAM_ITERATIONS}")).is_ok());
    }

    #[test]
    fn plain_is_refused_to_an_account_that_used_scram() {
        let only_plain = mechanisms(&["PLAIN"]);
        let mut n = neg(TlsMode::Direct).require_scram(true);
        n.handle(open()).unwrap();
        let r = n.handle(features(&only_plain));
        assert_eq!(r, Err(NegotiationError::PlainDowngrade));
        let text = r.unwrap_err().to_string();
        assert!(text.contains("downgrade") && text.contains("signed in with SCRAM before"), "{text}");
        assert!(text.contains("allow PLAIN for this account"), "{text}");
        // SCRAM offered: used as always.
        let mut n = neg(TlsMode::Direct).require_scram(true);
        n.handle(open()).unwrap();
        let a = n.handle(features(MECHS)).unwrap();
        assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-1'"), "{a:?}");
        // Without the requirement, PLAIN over TLS is still allowed, and reported.
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        assert!(sent(&n.handle(features(&only_plain)).unwrap())[0].contains("mechanism='PLAIN'"));
        let a = n.handle(st("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")).unwrap();
        assert_eq!(a, vec![Action::RestartStream]);
        n.handle(open()).unwrap();
        n.handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")).unwrap();
        let a = n
            .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
            .unwrap();
        assert!(matches!(a.as_slice(), [Action::Done(d)] if d.mechanism == "PLAIN"), "{a:?}");
    }

    const ALL_SCRAM: [&str; 4] = ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"];

    fn exporter() -> ChannelBindingData {
        ChannelBindingData::TlsExporter((0..32).collect())
    }

    /// The mechanism and GS2 header chosen for `mechs` (plus optional extra features)
    /// with `binding` over direct TLS.
    fn choice(binding: Option<ChannelBindingData>, mechs: &[&str], extra: &str) -> (String, String) {
        let mut n = neg(TlsMode::Direct).channel_binding(binding);
        n.handle(open()).unwrap();
        let a = n.handle(features(&format!("{}{extra}", mechanisms(mechs)))).unwrap();
        let [Action::Send(auth)] = a.as_slice() else { panic!("{a:?}") };
        let first = String::from_utf8(decode(&auth.text()).unwrap()).unwrap();
        let gs2 = first.split(",n=").next().unwrap().to_owned();
        (auth.attr("mechanism").unwrap().to_owned(), gs2)
    }

    #[test]
    fn plus_is_chosen_when_offered_and_bound() {
        // Bound and offered: the strongest -PLUS, with the exporter's header.
        assert_eq!(choice(Some(exporter()), &ALL_SCRAM, ""), ("SCRAM-SHA-256-PLUS".into(), "p=tls-exporter,".into()));
        // -PLUS over a stronger hash: binding protects the sign-in against a relay.
        assert_eq!(
            choice(Some(exporter()), &["SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"], ""),
            ("SCRAM-SHA-1-PLUS".into(), "p=tls-exporter,".into())
        );
        // XEP-0440 lists tls-exporter: fine.
        let cb = "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/><channel-binding type='tls-exporter'/></sasl-channel-binding>";
        assert_eq!(choice(Some(exporter()), &ALL_SCRAM, cb).0, "SCRAM-SHA-256-PLUS");
    }

    #[test]
    fn plus_is_not_chosen_without_binding() {
        // No data: never -PLUS, and "n" (we cannot bind).
        assert_eq!(choice(None, &ALL_SCRAM, ""), ("SCRAM-SHA-256".into(), "n,".into()));
        assert_eq!(choice(None, &["SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"], ""), ("SCRAM-SHA-1".into(), "n,".into()));
        // Only -PLUS offered and no data: nothing usable (PLAIN absent).
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        assert!(matches!(
            n.handle(features(&mechanisms(&["SCRAM-SHA-256-PLUS"]))),
            Err(NegotiationError::NoMechanism(_))
        ));
        // Data, but the server offers no -PLUS: "y" (a server able to bind sees the
        // downgrade).
        assert_eq!(choice(Some(exporter()), &ALL_SCRAM[..2], ""), ("SCRAM-SHA-256".into(), "y,".into()));
        // Data, -PLUS offered, but XEP-0440 lists only types we cannot do: no -PLUS, "n".
        let cb = "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/></sasl-channel-binding>";
        assert_eq!(choice(Some(exporter()), &ALL_SCRAM, cb), ("SCRAM-SHA-256".into(), "n,".into()));
        // Data given to a plaintext transport: ignored.
        let mut n = neg(TlsMode::Plaintext).channel_binding(Some(exporter()));
        n.handle(open()).unwrap();
        let a = n.handle(features(&mechanisms(&ALL_SCRAM))).unwrap();
        assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-256'>"), "{a:?}");
        assert!(sasl_payload(&a).starts_with(b"n,,"));
    }

    /// STARTTLS, the binding data handed over with the TLS upgrade, then a whole
    /// SCRAM-SHA-256-PLUS exchange whose server checks the binding data; then the "y"
    /// flag through a whole exchange.
    #[test]
    fn plus_exchange_after_starttls() {
        let mut n = neg(TlsMode::StartTls);
        n.handle(open()).unwrap();
        n.handle(features(&format!("{STARTTLS}{}", mechanisms(&ALL_SCRAM)))).unwrap();
        n.handle(st("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")).unwrap();
        assert_eq!(n.tls_established_with(Some(exporter())), vec![Action::RestartStream]);
        n.handle(open()).unwrap();
        let a = n.handle(features(&mechanisms(&ALL_SCRAM))).unwrap();
        assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-256-PLUS'"), "{a:?}");
        let (server, challenge) = ScramServer::first(&sasl_payload(&a));
        assert_eq!(server.gs2, "p=tls-exporter,,");
        let a = n.handle(sasl("challenge", &challenge)).unwrap();
        let client_final = sasl_payload(&a);
        let ChannelBindingData::TlsExporter(data) = exporter();
        let fin = server.last(&client_final, &data);
        assert_eq!(n.handle(sasl("success", &fin)).unwrap(), vec![Action::RestartStream]);
        // "y" goes through as c=eSws (base64 of "y,,").
        let mut n = neg(TlsMode::Direct).channel_binding(Some(exporter()));
        n.handle(open()).unwrap();
        let a = n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
        let (server, challenge) = ScramServer::first(&sasl_payload(&a));
        assert_eq!(server.gs2, "y,,");
        let a = n.handle(sasl("challenge", &challenge)).unwrap();
        assert!(String::from_utf8(sasl_payload(&a)).unwrap().starts_with("c=eSws,"));
        let fin = server.last(&sasl_payload(&a), b"");
        assert_eq!(n.handle(sasl("success", &fin)).unwrap(), vec![Action::RestartStream]);
    }

    #[test]
    fn required_legacy_session_and_bad_bind() {
        let mut n = neg(TlsMode::Direct);
        n.authenticated = true; // as after SASL success
        n.handle(open()).unwrap();
        n.handle(features(
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
        ))
        .unwrap();
        let a = n
            .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/x</jid></bind></iq>"))
            .unwrap();
        assert_eq!(sent(&a), vec!["<iq xmlns='jabber:client' id='session-1' type='set'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"]);
        assert!(matches!(
            n.handle(st("<iq xmlns='jabber:client' id='session-1' type='result'/>")).unwrap()[0],
            Action::Done(_)
        ));

        let mut n = neg(TlsMode::Direct);
        n.authenticated = true;
        n.handle(open()).unwrap();
        n.handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")).unwrap();
        let err = n
            .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>mallory@evil.example/x</jid></bind></iq>"))
            .unwrap_err();
        assert!(matches!(err, NegotiationError::Unexpected(_)));
    }
    const SM_BIND: &str = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/>";

    /// A negotiator past SASL that asks to resume session 'abc' (we handled 7).
    fn resuming() -> Negotiator {
        let old: Jid = "user@example.com/old".parse().unwrap();
        let mut n = neg(TlsMode::Direct).resume(Some((ResumeRequest { previd: "abc".into(), h: 7 }, old)));
        n.authenticated = true;
        n.handle(open()).unwrap();
        n
    }

    #[test]
    fn resumption_replaces_binding() {
        let mut n = resuming();
        let a = n.handle(features(SM_BIND)).unwrap();
        assert_eq!(sent(&a), vec!["<resume xmlns='urn:xmpp:sm:3' h='7' previd='abc'/>"]);
        let a = n.handle(st("<resumed xmlns='urn:xmpp:sm:3' h='3' previd='abc'/>")).unwrap();
        let [Action::Done(d)] = a.as_slice() else { panic!("{a:?}") };
        assert_eq!(d.jid.to_string(), "user@example.com/old");
        assert_eq!(d.resumption, Some(Resumption::Resumed { h: 3 }));
        assert!(d.features.iter().any(|f| f == "urn:xmpp:sm:3"));
    }

    #[test]
    fn failed_resumption_binds_a_new_resource() {
        let mut n = resuming();
        n.handle(features(SM_BIND)).unwrap();
        let a = n
            .handle(st("<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
            .unwrap();
        assert!(
            sent(&a)[0].contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>skiff</resource></bind>"),
            "{a:?}"
        );
        let a = n
            .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
            .unwrap();
        let [Action::Done(d)] = a.as_slice() else { panic!("{a:?}") };
        assert_eq!(d.jid.to_string(), "user@example.com/skiff");
        assert_eq!(d.resumption, Some(Resumption::Failed { h: Some(2), condition: Some("item-not-found".into()) }));
    }

    #[test]
    fn no_stream_management_offered_binds_and_says_so() {
        let mut n = resuming();
        let a = n.handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")).unwrap();
        assert!(sent(&a)[0].contains("<bind"), "{a:?}");
        let a = n
            .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
            .unwrap();
        assert!(matches!(a.as_slice(), [Action::Done(d)] if d.resumption == Some(Resumption::NotOffered)));
        // Without a request, nothing is said about resumption.
        let mut n = neg(TlsMode::Direct);
        n.authenticated = true;
        n.handle(open()).unwrap();
        n.handle(features(SM_BIND)).unwrap();
        let a = n
            .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
            .unwrap();
        assert!(matches!(a.as_slice(), [Action::Done(d)] if d.resumption.is_none()));
    }

    #[test]
    fn a_resumption_of_another_session_or_nonsense_is_refused() {
        let mut n = resuming();
        n.handle(features(SM_BIND)).unwrap();
        let err = n.handle(st("<resumed xmlns='urn:xmpp:sm:3' h='3' previd='other'/>")).unwrap_err();
        assert!(err.to_string().contains("resumed session 'other' where 'abc' was asked"), "{err}");
        let mut n = resuming();
        n.handle(features(SM_BIND)).unwrap();
        assert!(matches!(
            n.handle(st("<resumed xmlns='urn:xmpp:sm:3' previd='abc'/>")),
            Err(NegotiationError::Unexpected(_))
        ));
        let mut n = resuming();
        n.handle(features(SM_BIND)).unwrap();
        assert!(matches!(n.handle(st("<a xmlns='urn:xmpp:sm:3' h='1'/>")), Err(NegotiationError::Unexpected(_))));
        let mut n = resuming();
        n.handle(features(SM_BIND)).unwrap();
        assert!(matches!(n.handle(st("<message xmlns='jabber:client'/>")), Err(NegotiationError::Unexpected(_))));
    }
}
