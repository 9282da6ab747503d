//! The running session: one tokio task per account that owns the connection.
//!
//! It routes stanzas (IQ replies to their waiting requests by (peer, id); IQ requests
//! to registered handlers, to the built-in answers for disco#info, ping and version,
//! or `service-unavailable`), keeps the roster and contacts' presence, pings the
//! server when the line is quiet, and reconnects with backoff after a drop.
//!
//! With XEP-0198 stream management (when the server offers it) a dropped connection
//! is first resumed: the session's router (requests waiting for answers, presence,
//! the copies of stanzas the server has not acknowledged) is kept while the task
//! reconnects, whatever the shells send meanwhile is queued, and on `<resumed/>` the
//! stanzas the server never handled go out again. Only when resumption fails does
//! the session start anew (and waiting requests fail with `Disconnected`).
//! [`Client`] is the handle the shells and the transfer engine use.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_proto::iq::{Inbound, IqTracker, Pending};
use skiff_proto::jid::Jid;
use skiff_proto::negotiation::Resumption;
use skiff_proto::ns;
use skiff_proto::roster::{Roster, RosterItem, Subscription};
use skiff_proto::sm::{self, SmOutput, StreamManagement};
use skiff_proto::stanza::{Condition, Iq, IqKind, Message, Presence, PresenceType, Stanza, StanzaError};
use skiff_proto::stream::{self, StreamEvent};
use skiff_proto::stream_error::StreamError;
use skiff_proto::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::AccountConfig;
use crate::connection::{self, ConnectError, Connected, Transport};
use crate::event::{Contact, Event, FatalCode, ResourcePresence, Show};

mod router;
mod task;

use router::*;
pub use task::backoff;
use task::*;

/// Errors of the client API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("not connected to the server")]
    NotConnected,
    #[error("no answer from {peer} within {secs} seconds")]
    Timeout { peer: String, secs: u64 },
    #[error("the connection dropped before the answer arrived")]
    Disconnected,
    #[error("{peer} answered with an error: {error}")]
    Stanza { peer: String, error: Box<StanzaError> },
    #[error("{0}")]
    Fatal(String),
    #[error("the client was shut down")]
    Stopped,
}

/// Where the answer to a queued IQ arrives.
pub type IqReply = oneshot::Receiver<Result<Option<Element>, ClientError>>;

/// Where the connection stands, for [`Client::wait_online`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    Connecting,
    Online(Jid),
    /// Dropped; reconnecting.
    Offline(String),
    /// Gave up (fatal error or shut down).
    Failed(String),
    Stopped,
}

enum Command {
    Send(Element),
    Iq { iq: Box<Iq>, timeout: Option<Duration>, reply: oneshot::Sender<Result<Option<Element>, ClientError>> },
    Disconnect(oneshot::Sender<()>),
}

#[derive(Default)]
struct Shared {
    roster: BTreeMap<Jid, RosterItem>,
    presence: BTreeMap<Jid, BTreeMap<String, ResourcePresence>>,
    handlers: HashMap<(String, String), mpsc::Sender<Iq>>,
    /// Where messages go (see [`Client::handle_messages`]); none: they are dropped.
    messages: Option<mpsc::Sender<Message>>,
    features: Vec<String>,
    stream_features: Vec<String>,
    /// The SASL mechanism of the current (or last) sign-in.
    mechanism: String,
    /// Our presence priority (the account's setting).
    priority: i8,
    /// What the contacts' clients take, by their entity capabilities (XEP-0115).
    caps: skiff_proto::caps::CapsCache,
}

struct Inner {
    cmd: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<Event>,
    state: watch::Receiver<ConnState>,
    shared: Mutex<Shared>,
}

/// Handle to a running account. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("state", &*self.inner.state.borrow()).finish()
    }
}

/// Features every Skiff session answers in disco#info.
const BASE_FEATURES: &[&str] = &[ns::DISCO_INFO, ns::PING, "jabber:iq:version"];

/// The XEP-0115 node that names Skiff in our entity capabilities.
pub const CAPS_NODE: &str = "urn:x-skiff:client";

/// What our disco#info says (features sorted, each once), for `node` when asked.
fn our_info(features: &[String], node: Option<String>) -> skiff_proto::disco::DiscoInfoResult {
    let mut features = features.to_vec();
    features.sort();
    features.dedup();
    skiff_proto::disco::DiscoInfoResult {
        node,
        identities: vec![skiff_proto::disco::Identity {
            category: "client".into(),
            kind: "pc".into(),
            name: Some("Skiff".into()),
            lang: None,
        }],
        features,
        extensions: Vec::new(),
    }
}

/// Our available presence, with the entity capabilities (XEP-0115) of what we take:
/// clients such as Gajim offer files only to a contact whose caps list Jingle file
/// transfer, and pick the hash they send from it.
fn available(features: &[String], priority: i8) -> skiff_proto::stanza::Presence {
    let mut presence = skiff_proto::stanza::Presence::new(skiff_proto::stanza::PresenceType::Available);
    presence.priority = priority;
    let caps = skiff_proto::caps::our_caps(CAPS_NODE, &our_info(features, None));
    presence.payloads.push(Element::from(&caps));
    presence
}

impl Client {
    /// Starts the session task; it connects at once and keeps reconnecting after
    /// drops. Subscribe to events with [`Client::events`] (no event is lost if you
    /// subscribe before awaiting anything), or wait with [`Client::wait_online`].
    pub fn start(cfg: AccountConfig) -> Client {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, _) = broadcast::channel(4096);
        let (state_tx, state_rx) = watch::channel(ConnState::Connecting);
        let inner = Arc::new(Inner {
            cmd: cmd_tx,
            events: ev_tx,
            state: state_rx,
            shared: Mutex::new(Shared {
                features: BASE_FEATURES.iter().map(|s| s.to_string()).collect(),
                priority: cfg.priority,
                ..Shared::default()
            }),
        });
        let task = SessionTask {
            cfg,
            inner: Arc::downgrade(&inner),
            cmd_rx,
            state: state_tx,
            ev: inner.events.clone(),
            stop_ack: None,
            kept: None,
        };
        tokio::spawn(task.run());
        Client { inner }
    }

    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn state(&self) -> ConnState {
        self.inner.state.borrow().clone()
    }

    /// Waits until signed in (returns the bound JID) or until sign-in failed for good.
    pub async fn wait_online(&self) -> Result<Jid, ClientError> {
        let mut rx = self.inner.state.clone();
        loop {
            match &*rx.borrow_and_update() {
                ConnState::Online(j) => return Ok(j.clone()),
                ConnState::Failed(e) => return Err(ClientError::Fatal(e.clone())),
                ConnState::Stopped => return Err(ClientError::Stopped),
                _ => {}
            }
            rx.changed().await.map_err(|_| ClientError::Stopped)?;
        }
    }

    /// The bound full JID while online.
    pub fn jid(&self) -> Option<Jid> {
        match &*self.inner.state.borrow() {
            ConnState::Online(j) => Some(j.clone()),
            _ => None,
        }
    }

    /// Sends a stanza without waiting for anything.
    pub fn send(&self, el: impl Into<Element>) -> Result<(), ClientError> {
        self.inner.cmd.send(Command::Send(el.into())).map_err(|_| ClientError::Stopped)
    }

    /// Sends an IQ get/set (its id is assigned here) and waits for the result payload.
    pub async fn iq(&self, iq: Iq) -> Result<Option<Element>, ClientError> {
        self.iq_within(iq, None).await
    }

    /// Like [`Client::iq`] with its own timeout (e.g. an offer a user must answer).
    pub async fn iq_within(&self, iq: Iq, timeout: Option<Duration>) -> Result<Option<Element>, ClientError> {
        self.start_iq(iq, timeout)?.await.map_err(|_| ClientError::Stopped)?
    }

    /// Queues an IQ request now (requests go out in the order of these calls) and
    /// returns where its answer will arrive. For pipelines such as in-band data.
    pub fn start_iq(&self, iq: Iq, timeout: Option<Duration>) -> Result<IqReply, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.inner.cmd.send(Command::Iq { iq: Box::new(iq), timeout, reply: tx }).map_err(|_| ClientError::Stopped)?;
        Ok(rx)
    }

    /// Emits an event to every subscriber (used by the transfer engine).
    pub(crate) fn emit(&self, e: Event) {
        let _ = self.inner.events.send(e);
    }

    /// IQ get to `to` (None = our server account).
    pub async fn get(&self, to: Option<Jid>, payload: Element) -> Result<Option<Element>, ClientError> {
        self.iq(Iq::get("", to, payload)).await
    }

    /// IQ set to `to`.
    pub async fn set(&self, to: Option<Jid>, payload: Element) -> Result<Option<Element>, ClientError> {
        self.iq(Iq::set("", to, payload)).await
    }

    /// Routes incoming IQ get/set requests whose payload is `<name xmlns=ns>` to the
    /// returned receiver; the handler answers with [`Client::send`]. Registering a
    /// namespace also advertises it in disco#info.
    pub fn handle_iqs(&self, name: &str, namespace: &str) -> mpsc::Receiver<Iq> {
        let (tx, rx) = mpsc::channel(256);
        let mut sh = self.inner.shared.lock().unwrap();
        sh.handlers.insert((name.to_owned(), namespace.to_owned()), tx);
        drop(sh);
        self.add_feature(namespace);
        rx
    }

    /// Delivers every incoming `<message/>` (other than errors) to the returned
    /// receiver, replacing an earlier one. Without it messages are dropped.
    pub fn handle_messages(&self) -> mpsc::Receiver<Message> {
        let (tx, rx) = mpsc::channel(256);
        self.inner.shared.lock().unwrap().messages = Some(tx);
        rx
    }

    /// Advertises a feature in our disco#info.
    pub fn add_feature(&self, feature: &str) {
        let mut sh = self.inner.shared.lock().unwrap();
        if !sh.features.iter().any(|f| f == feature) {
            sh.features.push(feature.to_owned());
        }
    }

    /// Says again what we take (our presence with the current entity caps), after
    /// features were added while online.
    pub fn announce(&self) {
        if matches!(*self.inner.state.borrow(), ConnState::Online(_)) {
            let presence = {
                let sh = self.inner.shared.lock().unwrap();
                available(&sh.features, sh.priority)
            };
            let _ = self.send(presence);
        }
    }

    /// What the client at `jid` (a full JID) takes, from its entity capabilities when
    /// they are known (no disco#info round trip then).
    pub fn caps_features(&self, jid: &Jid) -> Option<Vec<String>> {
        self.inner.shared.lock().unwrap().caps.features(jid).map(<[String]>::to_vec)
    }

    /// Our disco#info features, sorted.
    pub fn features(&self) -> Vec<String> {
        let mut f = self.inner.shared.lock().unwrap().features.clone();
        f.sort();
        f
    }

    /// The SASL mechanism of the current (or last) sign-in; empty before the first.
    pub fn mechanism(&self) -> String {
        self.inner.shared.lock().unwrap().mechanism.clone()
    }

    /// Namespaces of the server's stream features after bind.
    pub fn stream_features(&self) -> Vec<String> {
        self.inner.shared.lock().unwrap().stream_features.clone()
    }

    pub fn roster(&self) -> Vec<Contact> {
        self.inner.shared.lock().unwrap().roster.values().map(contact).collect()
    }

    /// Online resources of a contact (bare JID), highest priority first.
    pub fn presence_of(&self, bare: &Jid) -> Vec<ResourcePresence> {
        let sh = self.inner.shared.lock().unwrap();
        let mut v: Vec<_> = sh.presence.get(bare).map(|m| m.values().cloned().collect()).unwrap_or_default();
        v.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| a.resource.cmp(&b.resource)));
        v
    }

    /// Asks to see `jid`'s presence (and adds it to the roster).
    pub fn subscribe(&self, jid: &Jid) -> Result<(), ClientError> {
        self.send(Presence::new(PresenceType::Subscribe).to(jid.bare()))
    }

    /// Lets `jid` see our presence (answers a subscription request).
    pub fn approve(&self, jid: &Jid) -> Result<(), ClientError> {
        self.send(Presence::new(PresenceType::Subscribed).to(jid.bare()))
    }

    /// Refuses (or revokes) `jid`'s subscription to our presence.
    pub fn deny(&self, jid: &Jid) -> Result<(), ClientError> {
        self.send(Presence::new(PresenceType::Unsubscribed).to(jid.bare()))
    }

    /// Signs out cleanly (unavailable presence, stream close) and stops the task.
    pub async fn disconnect(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.cmd.send(Command::Disconnect(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn contact(item: &RosterItem) -> Contact {
    Contact {
        jid: item.jid.to_string(),
        name: item.name.clone(),
        subscription: item.subscription.into(),
        pending_out: item.ask,
        groups: item.groups.clone(),
    }
}
