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

/// Why a connected session ended.
enum End {
    Stopped,
    Dropped(String),
    Fatal { code: FatalCode, message: String },
}

struct SessionTask {
    cfg: AccountConfig,
    inner: std::sync::Weak<Inner>,
    cmd_rx: mpsc::UnboundedReceiver<Command>,
    state: watch::Sender<ConnState>,
    ev: broadcast::Sender<Event>,
    stop_ack: Option<oneshot::Sender<()>>,
    /// The router of an interrupted session being resumed (XEP-0198), and until when
    /// the server keeps it.
    kept: Option<(Router, Instant)>,
}

/// How long an interrupted session is resumed at most, whatever the server allows.
const MAX_RESUME_WINDOW: Duration = Duration::from_secs(600);
/// How long an interrupted session is resumed when the server does not say.
const DEFAULT_RESUME_WINDOW: Duration = Duration::from_secs(300);
/// How long a resumed session may take to acknowledge anything before it counts as
/// broken (the server resumed it but does not read what we send).
const RESUME_CONFIRM: Duration = Duration::from_secs(10);

/// Backoff before reconnect attempt `n` (1-based): about 1, 2, 4, ... 60 s, with
/// +-10% jitter so that many clients do not return at once.
pub fn backoff(attempt: u32) -> Duration {
    let base = 1000u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)).min(60_000);
    let jitter = rand::random::<u64>() % (base / 5 + 1);
    Duration::from_millis(base - base / 10 + jitter)
}

/// A stable code for a sign-in failure, for the UI to branch on.
fn error_code(e: &ConnectError) -> FatalCode {
    use skiff_proto::negotiation::NegotiationError as N;
    match e {
        ConnectError::Resolve { .. } => FatalCode::Resolve,
        ConnectError::Connect { .. } => FatalCode::Connect,
        ConnectError::Tls { .. } => FatalCode::Tls,
        ConnectError::Untrusted(u) if u.changed => FatalCode::CertificateChanged,
        ConnectError::Untrusted(_) => FatalCode::CertificateUntrusted,
        ConnectError::CaFile { .. } => FatalCode::CaFile,
        ConnectError::PlaintextNotLoopback { .. } => FatalCode::PlaintextRefused,
        ConnectError::Negotiation(N::AuthFailed { .. }) => FatalCode::AuthFailed,
        // The server offered only PLAIN to an account that signs in with SCRAM.
        ConnectError::Negotiation(N::PlainDowngrade) => FatalCode::PlainDowngrade,
        // The server's SCRAM messages are not what SCRAM allows: it is not the server
        // the password was set with, or it is broken.
        ConnectError::Negotiation(
            N::ScramNonce | N::ScramIterations(_) | N::ScramSalt | N::ScramExtension | N::ScramMalformed(_),
        ) => FatalCode::ServerAuthInvalid,
        ConnectError::Negotiation(N::TlsNotOffered | N::TlsRefused | N::TlsRequiredByServer) => FatalCode::Tls,
        ConnectError::Negotiation(N::NoMechanism(_) | N::ServerProofInvalid | N::Sasl(_)) => FatalCode::AuthFailed,
        ConnectError::Negotiation(_) | ConnectError::Xml(_) => FatalCode::Protocol,
        ConnectError::Io(_) => FatalCode::Connect,
        ConnectError::Timeout(_) => FatalCode::Timeout,
    }
}

impl SessionTask {
    fn emit(&self, e: Event) {
        let _ = self.ev.send(e);
    }

    /// Runs `fut` while answering commands that cannot wait for a connection.
    /// `None` when the client was told to stop meanwhile.
    /// While an interrupted session is being resumed, stanzas and requests are queued
    /// in it (they go out on resumption) and requests still time out.
    async fn serve_until<F: std::future::Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                cmd = self.cmd_rx.recv() => match (cmd, self.kept.as_mut()) {
                    (None, _) => return None,
                    (Some(Command::Disconnect(done)), _) => {
                        self.stop_ack = Some(done);
                        return None;
                    }
                    (Some(Command::Iq { iq, timeout, reply }), Some((router, _))) => {
                        router.request_within(*iq, Waiter::External(reply), timeout)
                    }
                    (Some(Command::Iq { reply, .. }), None) => {
                        let _ = reply.send(Err(ClientError::NotConnected));
                    }
                    (Some(Command::Send(el)), Some((router, _))) => router.send(el),
                    (Some(Command::Send(el)), None) => tracing::debug!("not connected; dropped <{}/>", el.name),
                },
                _ = tick.tick() => {
                    if let Some((router, _)) = self.kept.as_mut() {
                        router.expire();
                    }
                    // Every handle is gone (only the kept router holds the shared
                    // state): nobody can use the session any more.
                    if self.kept.is_some() && self.inner.strong_count() <= 1 {
                        return None;
                    }
                }
            }
        }
    }

    /// Gives up the interrupted session, if any ([`Router::abandon`]).
    fn drop_kept(&mut self) {
        if let Some((mut router, _)) = self.kept.take() {
            router.abandon(None);
        }
    }

    /// An interrupted session is kept and the server still keeps it too.
    fn resume_window_open(&self) -> bool {
        self.kept.as_ref().is_some_and(|(_, until)| Instant::now() < *until)
    }

    fn finish(&mut self, state: ConnState) {
        self.drop_kept();
        self.state.send_replace(state);
        if let Some(ack) = self.stop_ack.take() {
            let _ = ack.send(());
        }
    }

    async fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut was_online = false;
        loop {
            attempt += 1;
            self.emit(Event::Connecting { attempt });
            let cfg = self.cfg.clone();
            let resume = self.kept.as_ref().and_then(|(r, _)| Some((r.sm.resume_request()?, r.own.clone())));
            let Some(result) = self.serve_until(connection::connect(&cfg, resume)).await else {
                return self.finish(ConnState::Stopped);
            };
            let reason = match result {
                Ok(conn) => {
                    attempt = 0;
                    was_online = true;
                    match self.connected(conn).await {
                        End::Stopped => return self.finish(ConnState::Stopped),
                        End::Fatal { code, message } => {
                            self.drop_kept();
                            self.emit(Event::Offline { reason: message.clone(), will_retry: false });
                            self.emit(Event::Fatal { code, message: message.clone(), untrusted: None });
                            return self.finish(ConnState::Failed(message));
                        }
                        End::Dropped(reason) => reason,
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::info!("sign-in failed: {message}");
                    // An interrupted session is resumed even without reconnects (it is
                    // the same session), until the server's window closes.
                    if e.is_fatal() || !was_online || !(self.cfg.reconnect || self.resume_window_open()) {
                        let untrusted = match &e {
                            ConnectError::Untrusted(u) => Some(u.clone()),
                            _ => None,
                        };
                        self.drop_kept();
                        self.emit(Event::Fatal { code: error_code(&e), message: message.clone(), untrusted });
                        return self.finish(ConnState::Failed(message));
                    }
                    message
                }
            };
            // Interrupted just now (attempt 0) or still resuming within the window.
            if self.kept.is_some() && !self.resume_window_open() {
                self.drop_kept();
                let why = format!("{reason}; the interrupted session could not be resumed in time");
                self.emit(Event::Offline { reason: why, will_retry: self.cfg.reconnect });
            } else if self.kept.is_some() && attempt == 0 {
                self.emit(Event::Interrupted { reason: reason.clone() });
            } else if self.kept.is_none() {
                self.emit(Event::Offline { reason: reason.clone(), will_retry: self.cfg.reconnect });
            }
            if !self.cfg.reconnect && self.kept.is_none() {
                return self.finish(ConnState::Failed(reason));
            }
            self.state.send_replace(ConnState::Offline(reason));
            // The first try to resume goes at once (with a little jitter).
            let delay = if self.kept.is_some() && attempt == 0 {
                Duration::from_millis(50 + rand::random::<u64>() % 200)
            } else {
                backoff(attempt.max(1))
            };
            self.emit(Event::Reconnecting { attempt: attempt + 1, delay_ms: delay.as_millis() as u64 });
            if self.serve_until(tokio::time::sleep(delay)).await.is_none() {
                return self.finish(ConnState::Stopped);
            }
        }
    }

    async fn connected(&mut self, conn: Connected) -> End {
        let Connected { transport, mut parser, negotiated, .. } = conn;
        // Once signed in with SCRAM, this session's reconnects never fall back to PLAIN.
        if negotiated.mechanism.starts_with("SCRAM-") {
            self.cfg.require_scram = true;
        }
        let Some(inner) = self.inner.upgrade() else { return End::Stopped };
        {
            let mut shared = inner.shared.lock().unwrap();
            shared.stream_features = negotiated.features.clone();
            shared.mechanism = negotiated.mechanism.clone();
        }
        let (mut rd, wr) = tokio::io::split(transport);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let mut out_tx = Some(out_tx);
        let writer = tokio::spawn(writer_task(wr, out_rx));
        let kept = self.kept.take();
        let resumed = match (&negotiated.resumption, kept) {
            (Some(Resumption::Resumed { h }), Some((mut router, _))) => {
                router.inner = inner.clone();
                // The router holds the only sender: the writer ends with the router's.
                router.out = out_tx.take();
                router.writer_gone = false;
                router.resumed_at = Some(Instant::now());
                match router.sm.resumed(*h) {
                    Ok(again) => {
                        tracing::info!(
                            "the session was resumed; {} stanza(s) the server had not handled go out again",
                            again.len()
                        );
                        for el in again {
                            router.write(Out::Element(el));
                        }
                        Some(router)
                    }
                    Err(e) => {
                        // The server claims more than we ever sent: end the stream.
                        router.stream_error(&e);
                        router.out = None;
                        router.end();
                        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
                        return End::Dropped(format!("the server broke stream management on resumption: {e}"));
                    }
                }
            }
            (resumption, kept) => {
                if let Some((mut router, _)) = kept {
                    let (lost_after, why) = match resumption {
                        Some(Resumption::Failed { h, condition }) => {
                            (*h, format!("the server refused: {}", condition.as_deref().unwrap_or("no reason given")))
                        }
                        _ => (None, "the server no longer offers stream management".to_owned()),
                    };
                    router.abandon(lost_after);
                    tracing::info!("the interrupted session could not be resumed ({why}); a new one starts");
                    self.emit(Event::Offline {
                        reason: format!("the interrupted session could not be resumed ({why})"),
                        will_retry: true,
                    });
                }
                None
            }
        };
        let mut router = match resumed {
            Some(router) => {
                self.state.send_replace(ConnState::Online(router.own.clone()));
                self.emit(Event::Resumed {
                    jid: router.own.to_string(),
                    tls: negotiated.tls,
                    mechanism: negotiated.mechanism.clone(),
                });
                router
            }
            None => {
                let mut router = Router {
                    own: negotiated.jid.clone(),
                    pending: IqTracker::new(format!("{:08x}", rand::random::<u32>())),
                    inner,
                    out: out_tx.take(),
                    ev: self.ev.clone(),
                    iq_timeout: self.cfg.iq_timeout,
                    writer_gone: false,
                    sm: StreamManagement::new(),
                    resumed_at: None,
                };
                // XEP-0198: enable right after binding, before any stanza.
                if negotiated.features.iter().any(|f| f == sm::NS) {
                    let enable = router.sm.enable();
                    router.write(Out::Element(enable));
                }
                // RFC 6121: fetch the roster before sending initial presence.
                router.request(Iq::get("", None, Element::new("query", ns::ROSTER)), Waiter::Roster);
                let mut presence = Presence::new(PresenceType::Available);
                presence.priority = self.cfg.priority;
                router.send(presence.into());
                self.state.send_replace(ConnState::Online(negotiated.jid.clone()));
                self.emit(Event::Online {
                    jid: negotiated.jid.to_string(),
                    tls: negotiated.tls,
                    mechanism: negotiated.mechanism.clone(),
                });
                router
            }
        };

        let mut buf = vec![0u8; 64 * 1024];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_rx = Instant::now();
        let end = loop {
            if let Some(end) = router.drain(&mut parser) {
                break end;
            }
            if router.writer_gone {
                break End::Dropped("the connection to the server broke while sending".into());
            }
            tokio::select! {
                n = rd.read(&mut buf) => match n {
                    Ok(0) => break End::Dropped("the server closed the connection".into()),
                    Ok(n) => {
                        last_rx = Instant::now();
                        parser.feed(&buf[..n]);
                    }
                    Err(e) => break End::Dropped(format!("the connection to the server was lost: {e}")),
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    None => {
                        router.close();
                        break End::Stopped;
                    }
                    Some(Command::Disconnect(done)) => {
                        router.send(Presence::new(PresenceType::Unavailable).into());
                        router.close();
                        self.stop_ack = Some(done);
                        break End::Stopped;
                    }
                    Some(Command::Send(el)) => router.send(el),
                    Some(Command::Iq { iq, timeout, reply }) => router.request_within(*iq, Waiter::External(reply), timeout),
                },
                _ = tick.tick() => {
                    if let Some(end) = router.tick(last_rx, self.cfg.keepalive) {
                        break end;
                    }
                }
            }
        };
        // A drop of a resumable session keeps the router for the resumption;
        // anything else ends the session.
        let resumable = matches!(end, End::Dropped(_)) && router.sm.is_resumable();
        router.out = None;
        if resumable {
            // A ping of the old connection says nothing about the next one.
            router.pending.retain(|w| !matches!(w, Waiter::Ping));
            let window = router
                .sm
                .max_secs()
                .map(|s| Duration::from_secs(u64::from(s)))
                .unwrap_or(DEFAULT_RESUME_WINDOW)
                .min(MAX_RESUME_WINDOW);
            tracing::info!("the connection dropped; resuming the session (kept up to {} s)", window.as_secs());
            self.kept = Some((router, Instant::now() + window));
        } else {
            router.sm.reset();
            router.end();
        }
        // Let the writer flush the closing bytes, but do not hang on a dead socket.
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        end
    }
}

enum Out {
    Element(Element),
    Raw(String),
}

/// How long one write to the server may block before the connection counts as dead
/// (a server that stops reading must not hold the session forever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

async fn writer_task(mut wr: WriteHalf<Transport>, mut rx: mpsc::UnboundedReceiver<Out>) {
    while let Some(out) = rx.recv().await {
        let write = async {
            match out {
                Out::Element(el) => connection::write_element(&mut wr, &el).await,
                Out::Raw(s) => {
                    tracing::debug!(target: "skiff::xml", "SEND {s}");
                    wr.write_all(s.as_bytes()).await
                }
            }
        };
        let r = tokio::time::timeout(WRITE_TIMEOUT, write).await.unwrap_or_else(|_| {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the server stopped reading for 60 s"))
        });
        if let Err(e) = r {
            tracing::info!("write to the server failed: {e}");
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// Who waits for an IQ answer.
enum Waiter {
    External(oneshot::Sender<Result<Option<Element>, ClientError>>),
    Roster,
    Ping,
}

/// Stanza routing of one connected session.
struct Router {
    own: Jid,
    /// Our requests waiting for answers.
    pending: IqTracker<Waiter, Instant>,
    inner: Arc<Inner>,
    /// The current connection's writer; `None` while an interrupted session waits
    /// for resumption (stanzas are then only kept by stream management).
    out: Option<mpsc::UnboundedSender<Out>>,
    ev: broadcast::Sender<Event>,
    iq_timeout: Duration,
    writer_gone: bool,
    /// XEP-0198 counters and the copies of unacknowledged stanzas.
    sm: StreamManagement,
    /// When the session was last resumed.
    resumed_at: Option<Instant>,
}

impl Router {
    /// Sends a stanza (counted and kept by stream management until acknowledged).
    fn send(&mut self, el: Element) {
        self.sm.sent(&el);
        self.write(Out::Element(el));
        if self.out.is_some() {
            if let Some(r) = self.sm.request_ack(false) {
                self.write(Out::Element(r));
            }
        }
    }

    /// Writes on the current connection, if any (nothing is counted).
    fn write(&mut self, out: Out) {
        if let Some(tx) = &self.out {
            if tx.send(out).is_err() {
                self.writer_gone = true;
            }
        }
    }

    fn close(&mut self) {
        self.write(Out::Raw(stream::CLOSE_STREAM.to_owned()));
    }

    /// The session is over: waiting requests fail with `Disconnected`, contacts'
    /// presence is forgotten.
    fn end(&mut self) {
        self.fail_all();
        self.clear_presence();
    }

    /// An interrupted session that will not be resumed: what it sent and the server
    /// never handled (after `lost_after`, when the server said) is counted in the log,
    /// and the session ends.
    fn abandon(&mut self, lost_after: Option<u32>) {
        let lost = self.sm.resume_failed(lost_after);
        if !lost.is_empty() {
            tracing::info!("{} stanza(s) sent in the interrupted session never reached the server", lost.len());
        }
        self.end();
    }

    /// Ends the stream over a stream management error of the server's (XEP-0198 §4).
    fn stream_error(&mut self, e: &sm::SmError) {
        let (condition, child) = e.stream_error();
        let child = child.map(|c| c.to_xml()).unwrap_or_default();
        let text = stream::stream_error(condition, Some(&e.to_string()));
        // RFC 6120 4.9.4: the application-specific condition comes last.
        let with_child = text.replacen("</stream:error>", &format!("{child}</stream:error>"), 1);
        self.write(Out::Raw(with_child));
        self.close();
        self.sm.reset();
    }

    /// An element of the stream management namespace.
    fn stream_management(&mut self, el: &Element) -> Option<End> {
        match self.sm.handle(el) {
            Ok(outputs) => {
                for output in outputs {
                    match output {
                        SmOutput::Send(a) => self.write(Out::Element(a)),
                        SmOutput::Enabled { resumable, max_secs } => tracing::info!(
                            "stream management is on (resumable: {resumable}, for {} s)",
                            max_secs.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
                        ),
                        SmOutput::NotEnabled { condition } => tracing::info!(
                            "the server did not enable stream management ({})",
                            condition.as_deref().unwrap_or("no reason given")
                        ),
                    }
                }
                None
            }
            Err(e) => {
                tracing::warn!("stream management: {e}");
                self.stream_error(&e);
                Some(End::Dropped(format!("the server broke stream management ({e}); the stream was closed")))
            }
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.ev.send(e);
    }

    fn request(&mut self, iq: Iq, waiter: Waiter) {
        self.request_within(iq, waiter, None)
    }

    fn request_within(&mut self, mut iq: Iq, waiter: Waiter, timeout: Option<Duration>) {
        let now = Instant::now();
        self.pending.track(&mut iq, waiter, now, now + timeout.unwrap_or(self.iq_timeout));
        self.send(iq.into());
    }

    /// Who a request waiting for an answer went to, in words.
    fn peer_of(&self, p: &Pending<Waiter, Instant>) -> String {
        p.to.as_ref().map(Jid::to_string).unwrap_or_else(|| self.own.domain().to_owned())
    }

    /// Processes every complete event in the parser.
    fn drain(&mut self, parser: &mut stream::StreamParser) -> Option<End> {
        loop {
            match parser.next_event() {
                Ok(None) => return None,
                Ok(Some(StreamEvent::Stanza(el))) => {
                    tracing::debug!(target: "skiff::xml", "RECV {}", connection::redacted(&el));
                    if el.ns == sm::NS {
                        if let Some(end) = self.stream_management(&el) {
                            return Some(end);
                        }
                        continue;
                    }
                    if let Some(err) = StreamError::from_element(&el) {
                        let message = err.to_string();
                        if err.condition == "conflict" {
                            return Some(End::Fatal { code: FatalCode::Conflict, message });
                        }
                        return Some(End::Dropped(message));
                    }
                    if sm::is_stanza(&el) {
                        self.sm.received();
                    }
                    self.stanza(el);
                }
                Ok(Some(StreamEvent::Dropped(d))) => {
                    if sm::is_stanza_name(&d.name) {
                        self.sm.received();
                    }
                    self.dropped(d)
                }
                Ok(Some(StreamEvent::Close)) => {
                    self.close();
                    return Some(End::Dropped("the server closed the stream".into()));
                }
                Ok(Some(StreamEvent::Open(_))) => {
                    return Some(End::Dropped("the server restarted the stream unexpectedly".into()));
                }
                Err(e) => {
                    self.write(Out::Raw(stream::stream_error(e.condition(), Some(&e.to_string()))));
                    self.close();
                    return Some(End::Dropped(format!("the server sent bad data ({e}); the stream was closed")));
                }
            }
        }
    }

    /// A stanza over the parser's structural limits (anyone can send one): a request is
    /// answered with `policy-violation`, an answer we wait for fails the request, the
    /// rest is only logged. The session goes on.
    fn dropped(&mut self, d: stream::DroppedStanza) {
        let from = d.from.as_deref().and_then(|f| f.parse::<Jid>().ok());
        let who = d.from.as_deref().unwrap_or("the server");
        tracing::info!("dropped a <{}> from {who}: {}", if d.name.is_empty() { "?" } else { &d.name }, d.limit);
        let (Some(id), "iq") = (d.id, d.name.as_str()) else { return };
        match d.kind.as_deref() {
            Some("get" | "set") => {
                let err =
                    StanzaError::new(Condition::PolicyViolation).with_text(format!("the request has {}", d.limit));
                self.send(Iq { id, from: None, to: from, kind: IqKind::Error(err) }.into());
            }
            Some("result" | "error") => {
                if let Some(pending) = self.pending.answer(&self.own, from.as_ref(), &id) {
                    let err = StanzaError::new(Condition::PolicyViolation)
                        .with_text(format!("the answer had {} and was dropped", d.limit));
                    let result = Err(ClientError::Stanza { peer: self.peer_of(&pending), error: Box::new(err) });
                    match pending.waiter {
                        Waiter::External(reply) => {
                            let _ = reply.send(result);
                        }
                        Waiter::Roster => tracing::warn!("the roster answer was dropped: {}", d.limit),
                        Waiter::Ping => {}
                    }
                }
            }
            _ => {}
        }
    }

    fn stanza(&mut self, el: Element) {
        // Keep what is needed to answer a request we cannot parse.
        let request_info = (el.name == "iq" && matches!(el.attr("type"), Some("get" | "set")))
            .then(|| (el.attr("id").map(str::to_owned), el.attr("from").and_then(|f| f.parse::<Jid>().ok())));
        match Stanza::try_from(el) {
            Ok(Stanza::Iq(iq)) => self.iq(iq),
            Ok(Stanza::Presence(p)) => self.presence(p),
            Ok(Stanza::Message(m)) => self.message(m),
            Err(e) => {
                tracing::info!("ignoring a stanza that does not parse: {e}");
                if let Some((Some(id), from)) = request_info {
                    let err = StanzaError::new(Condition::BadRequest).with_text(e.to_string());
                    self.send(Iq { id, from: None, to: from, kind: IqKind::Error(err) }.into());
                }
            }
        }
    }

    fn iq(&mut self, iq: Iq) {
        let Some(inbound) = Inbound::of(&iq, &self.own) else { return self.iq_answer(iq) };
        match inbound {
            Inbound::RosterPush => self.roster_push(iq),
            Inbound::SpoofedRosterPush => {
                let r = iq.error_for(StanzaError::new(Condition::ServiceUnavailable));
                self.send(r.into());
            }
            Inbound::Ping => {
                let r = iq.result_for(None);
                self.send(r.into());
            }
            Inbound::DiscoInfo { node } => {
                let answer = self.disco_info(node);
                let r = iq.result_for(Some(answer));
                self.send(r.into());
            }
            Inbound::Version => {
                let version = Element::new("query", "jabber:iq:version")
                    .with_child(Element::new("name", "jabber:iq:version").with_text("Skiff"))
                    .with_child(Element::new("version", "jabber:iq:version").with_text(env!("CARGO_PKG_VERSION")));
                let r = iq.result_for(Some(version));
                self.send(r.into());
            }
            Inbound::Handler { name, ns } => {
                let key = (name, ns);
                let handler = self.inner.shared.lock().unwrap().handlers.get(&key).cloned();
                let unhandled = match handler {
                    Some(tx) => match tx.try_send(iq) {
                        Ok(()) => return,
                        Err(mpsc::error::TrySendError::Full(iq)) => (iq, Condition::ResourceConstraint),
                        Err(mpsc::error::TrySendError::Closed(iq)) => {
                            self.inner.shared.lock().unwrap().handlers.remove(&key);
                            (iq, Condition::ServiceUnavailable)
                        }
                    },
                    None => (iq, Condition::ServiceUnavailable),
                };
                let (iq, condition) = unhandled;
                let r = iq.error_for(StanzaError::new(condition));
                self.send(r.into());
            }
        }
    }

    /// An answer: to its waiter, when it answers one of our requests.
    fn iq_answer(&mut self, iq: Iq) {
        let Some(pending) = self.pending.answer(&self.own, iq.from.as_ref(), &iq.id) else {
            tracing::debug!("an answer nobody waits for: {} from {:?}", iq.id, iq.from);
            return;
        };
        let result = match iq.kind {
            IqKind::Result(payload) => Ok(payload),
            IqKind::Error(error) => Err(ClientError::Stanza { peer: self.peer_of(&pending), error: Box::new(error) }),
            IqKind::Get(_) | IqKind::Set(_) => return,
        };
        match pending.waiter {
            Waiter::External(reply) => {
                let _ = reply.send(result);
            }
            Waiter::Roster => match result {
                Ok(Some(payload)) => self.roster_result(&payload),
                Ok(None) => self.emit(Event::Roster { contacts: Vec::new() }),
                Err(e) => tracing::warn!("roster fetch failed: {e}"),
            },
            Waiter::Ping => {}
        }
    }

    fn disco_info(&self, node: Option<String>) -> Element {
        let mut features = self.inner.shared.lock().unwrap().features.clone();
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
        .into()
    }

    fn roster_result(&mut self, payload: &Element) {
        match Roster::try_from(payload) {
            Ok(roster) => {
                let contacts = {
                    let mut sh = self.inner.shared.lock().unwrap();
                    sh.roster = roster.items.into_iter().map(|i| (i.jid.clone(), i)).collect();
                    sh.roster.values().map(contact).collect()
                };
                self.emit(Event::Roster { contacts });
            }
            Err(e) => tracing::warn!("the server sent a roster that does not parse: {e}"),
        }
    }

    /// A roster push from our own account ([`Inbound::RosterPush`]).
    fn roster_push(&mut self, iq: Iq) {
        let roster = match iq.request_payload().map(Roster::try_from) {
            Some(Ok(r)) if r.items.len() == 1 => r,
            _ => {
                let r = iq.error_for(
                    StanzaError::new(Condition::BadRequest).with_text("a roster push holds exactly one item"),
                );
                return self.send(r.into());
            }
        };
        let r = iq.result_for(None);
        self.send(r.into());
        for item in roster.items {
            let mut sh = self.inner.shared.lock().unwrap();
            if item.subscription == Subscription::Remove {
                sh.roster.remove(&item.jid);
                drop(sh);
                self.emit(Event::ContactRemoved { jid: item.jid.to_string() });
            } else {
                let c = contact(&item);
                sh.roster.insert(item.jid.clone(), item);
                drop(sh);
                self.emit(Event::ContactChanged { contact: c });
            }
        }
    }

    fn presence(&mut self, p: Presence) {
        let Some(from) = p.from.clone() else { return };
        if from == self.own {
            return;
        }
        let bare = from.bare();
        let resource = from.resource().unwrap_or_default().to_owned();
        match p.kind {
            PresenceType::Available => {
                let rp = ResourcePresence {
                    resource: resource.clone(),
                    show: p.show.into(),
                    status: p.status.clone(),
                    priority: p.priority,
                };
                self.inner
                    .shared
                    .lock()
                    .unwrap()
                    .presence
                    .entry(bare.clone())
                    .or_default()
                    .insert(resource.clone(), rp.clone());
                self.emit(Event::Presence {
                    jid: bare.to_string(),
                    resource,
                    available: true,
                    show: rp.show,
                    status: rp.status,
                    priority: rp.priority,
                });
            }
            PresenceType::Unavailable => {
                {
                    let mut sh = self.inner.shared.lock().unwrap();
                    if let Some(m) = sh.presence.get_mut(&bare) {
                        if resource.is_empty() {
                            m.clear();
                        } else {
                            m.remove(&resource);
                        }
                        if m.is_empty() {
                            sh.presence.remove(&bare);
                        }
                    }
                }
                self.emit(Event::Presence {
                    jid: bare.to_string(),
                    resource,
                    available: false,
                    show: Show::Unavailable,
                    status: p.status,
                    priority: 0,
                });
            }
            PresenceType::Subscribe => self.emit(Event::SubscriptionRequest { from: bare.to_string() }),
            other => tracing::debug!("presence {other:?} from {from}"),
        }
    }

    fn message(&mut self, m: Message) {
        let tx = self.inner.shared.lock().unwrap().messages.clone();
        match tx {
            Some(tx) if m.kind != "error" => {
                if let Err(e) = tx.try_send(m) {
                    tracing::warn!("a message was dropped: {e}");
                }
            }
            _ => tracing::debug!("message from {:?} ignored", m.from),
        }
    }

    /// Once a second: expire requests, keep the line alive, ask for an
    /// acknowledgement of what is still unacknowledged.
    fn tick(&mut self, last_rx: Instant, keepalive: Duration) -> Option<End> {
        if let Some(end) = self.expire() {
            return Some(end);
        }
        if self.sm.is_unconfirmed() && self.resumed_at.is_some_and(|t| t.elapsed() >= RESUME_CONFIRM) {
            // Not resumed again (the resumption is unconfirmed): a new session follows.
            self.close();
            return Some(End::Dropped(format!(
                "the server resumed the session but acknowledged nothing for {} s; starting a new session",
                RESUME_CONFIRM.as_secs()
            )));
        }
        if let Some(r) = self.sm.request_ack(true) {
            self.write(Out::Element(r));
        }
        let ping_pending = self.pending.any(|w| matches!(w, Waiter::Ping));
        if Instant::now().duration_since(last_rx) >= keepalive && !ping_pending {
            let server = Some(self.own.domain_jid());
            self.request(Iq::get("", server, skiff_proto::ping::ping()), Waiter::Ping);
        }
        None
    }

    /// Fails requests past their deadline (or whose waiter gave up); an unanswered
    /// ping means the connection is dead.
    fn expire(&mut self) -> Option<End> {
        let expired = self.pending.expire(Instant::now(), |w| matches!(w, Waiter::External(tx) if tx.is_closed()));
        for p in expired {
            let secs = self.iq_timeout.as_secs();
            let peer = self.peer_of(&p);
            match p.waiter {
                Waiter::External(tx) => {
                    let secs = (p.deadline - p.started).as_secs();
                    let _ = tx.send(Err(ClientError::Timeout { peer, secs }));
                }
                Waiter::Ping => {
                    return Some(End::Dropped(format!("the server did not answer a ping within {secs} seconds")))
                }
                Waiter::Roster => tracing::warn!("the server did not send the roster"),
            }
        }
        None
    }

    fn fail_all(&mut self) {
        for p in self.pending.drain() {
            if let Waiter::External(tx) = p.waiter {
                let _ = tx.send(Err(ClientError::Disconnected));
            }
        }
    }

    fn clear_presence(&mut self) {
        self.inner.shared.lock().unwrap().presence.clear();
    }
}
