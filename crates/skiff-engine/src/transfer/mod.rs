//! The transfer engine: XEP-0096 SI file transfer carried by XEP-0065 SOCKS5
//! bytestreams (our streamhost first, then the server's proxy) or XEP-0047 in-band
//! bytestreams, with a SQLite history and resume.
//!
//! [`Transfers`] is the handle. Each transfer runs as one task (`outgoing.rs` or
//! `incoming.rs`); IQs for a transfer in progress are routed to its task by sid. Every
//! state change is written to the store first, then announced as an [`Event`].

mod driver;
pub mod history;
mod incoming;
pub mod links;
mod outgoing;
pub mod s5b;
pub mod serve;
pub mod settings;
pub mod upload;
pub mod urlpolicy;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::stanza::Iq;
use skiff_proto::xml::Element;
use tokio::sync::{mpsc, oneshot, watch};

use crate::event::Event;
use crate::session::Client;
use crate::store::{Store, StoreError, TransferState};
pub use skiff_proto::transfer::{FailReason, Failure};

pub use s5b::StreamhostServer;
pub use settings::{SettingsError, TransferSettings};

pub use skiff_proto::transfer::Method;

/// What to do with an incoming offer when nobody answers it by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptPolicy {
    /// Wait for [`Transfers::accept`] or [`Transfers::reject`].
    Ask,
    /// Accept every offer.
    All,
    /// Accept offers from roster contacts; reject the rest.
    Contacts,
    /// Reject every offer.
    None,
}

/// What to do with offers (SI, links, iq:oob) from people not in the roster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum StrangerPolicy {
    /// Ask the user, like any other offer (within the caps on pending offers).
    #[default]
    Ask,
    /// Refuse at once, without asking.
    Refuse,
}

/// The in-band block size asked of another Skiff: 6 KiB, whose base64 stanza fits
/// in one 8 KiB socket read of Prosody. Prosody (0.12, epoll backend) reads 8 KiB at a
/// time and waits at least 1 ms (`min_wait`) before reading more of what TLS already
/// buffered, so a 64 KiB block costs ~11 such waits: measured through Prosody,
/// 6 KiB blocks move 8.5 MiB/s, 64 KiB blocks 2.5 MiB/s (docs/benchmarks.md).
pub const DEFAULT_IBB_BLOCK: u16 = 6144;

/// Transfer settings.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Where accepted files go unless the accept names another folder.
    pub download_dir: PathBuf,
    /// Addresses our own streamhost listens on and offers; empty = every usable local
    /// address (loopback when there is no other).
    pub streamhost_addrs: Vec<IpAddr>,
    /// The proxy to use; `None` = discover the server's.
    pub proxy: Option<Jid>,
    /// Offer our own streamhost.
    pub use_direct: bool,
    /// Offer the proxy.
    pub use_proxy: bool,
    /// Allowed methods in preference order.
    pub methods: Vec<Method>,
    /// Largest in-band block we ask for from another Skiff (the peer may make us step
    /// down; other clients get 4096). Default [`DEFAULT_IBB_BLOCK`].
    pub ibb_block_size: u16,
    /// In-band blocks in flight before waiting for acknowledgements.
    pub ibb_window: usize,
    /// How long an offer waits for the other side's answer.
    pub offer_timeout: Duration,
    /// Extra CA (PEM) trusted for HTTP uploads and downloads, besides the system's.
    pub http_ca_file: Option<PathBuf>,
    /// Send by HTTP File Upload (XEP-0363) when SI cannot reach the contact (offline,
    /// or no client that takes SI offers), and offer it after SI failed. The file then
    /// sits on the server until it expires.
    pub allow_upload: bool,
    /// Serve files from our own one-time HTTP URLs (XEP-0066 `jabber:iq:oob`), on the
    /// streamhost addresses. Off by default: it opens a port for as long as the
    /// transfer runs.
    pub serve_http: bool,
    pub accept: AcceptPolicy,
    /// Offers from people not in the roster.
    pub strangers: StrangerPolicy,
    /// Incoming offers waiting for an answer from one peer (bare JID), and from all
    /// together; offers beyond are refused with `resource-constraint` and reported
    /// once per burst ([`Event::OffersRefused`]). The total refuses strangers' offers
    /// only: strangers flooding from many addresses cannot crowd out contacts (whose
    /// number the user chose), who are held to the cap per peer.
    pub max_pending_per_peer: usize,
    pub max_pending: usize,
}

/// Default of [`TransferConfig::max_pending_per_peer`]: a handful of files at once.
pub const MAX_PENDING_PER_PEER: usize = 5;
/// Default of [`TransferConfig::max_pending`].
pub const MAX_PENDING: usize = 50;

impl TransferConfig {
    pub fn new(download_dir: PathBuf) -> TransferConfig {
        TransferConfig {
            download_dir,
            streamhost_addrs: Vec::new(),
            proxy: None,
            use_direct: true,
            use_proxy: true,
            methods: vec![Method::S5b, Method::Ibb],
            ibb_block_size: DEFAULT_IBB_BLOCK,
            ibb_window: 16,
            offer_timeout: Duration::from_secs(300),
            http_ca_file: None,
            allow_upload: true,
            serve_http: false,
            accept: AcceptPolicy::Ask,
            strangers: StrangerPolicy::Ask,
            max_pending_per_peer: MAX_PENDING_PER_PEER,
            max_pending: MAX_PENDING,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0} is offline")]
    Offline(String),
    #[error("none of {0}'s online clients can receive files (no SI file transfer support)")]
    NoFileTransfer(String),
    #[error("cannot read {path}: {reason}")]
    Source { path: String, reason: String },
    #[error("no transfer with id {0}")]
    Unknown(i64),
    #[error("transfer {0} is not waiting for an answer")]
    NotPending(i64),
    #[error("transfer {0} is already running")]
    AlreadyActive(i64),
    #[error("transfer {id} cannot be resumed here: {reason}")]
    NotResumable { id: i64, reason: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Only HTTP upload would reach the contact (`reason`: offline, or no file
    /// transfer), and it is turned off in the settings.
    #[error("{reason}; sending by HTTP upload would reach them, but it is turned off in the settings")]
    UploadTurnedOff { reason: Box<TransferError> },
    #[error("{0}")]
    Other(String),
}

/// How [`Transfers::send`] sends a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum SendMethod {
    /// SI (SOCKS5, then in-band) to a client that takes SI offers; HTTP File Upload when
    /// the contact is offline or none of their clients takes SI offers (if allowed).
    #[default]
    Auto,
    /// SI file transfer only.
    Si,
    /// HTTP File Upload, then the link in a message.
    Upload,
    /// A one-time URL served by us, offered by `jabber:iq:oob`.
    Oob,
}

/// An answer to an incoming offer.
#[derive(Debug)]
enum Decision {
    Accept(Option<PathBuf>),
    Reject,
}

/// IQs of a transfer in progress, routed by sid, with the peer they must come from.
type Route = (Jid, mpsc::Sender<Iq>);

struct Inner {
    client: Client,
    store: Arc<Store>,
    /// Read afresh by every transfer as it starts, so new settings apply at once.
    cfg: std::sync::RwLock<TransferConfig>,
    account: String,
    /// The HTTP client for uploads and links, and the extra CA it was built with
    /// (built once: loading the system's roots is not free; rebuilt when the CA changes).
    http: Mutex<Option<(Option<PathBuf>, reqwest::Client)>>,
    /// Our streamhost and the addresses it was bound for (rebound when they change).
    streamhost: tokio::sync::Mutex<Option<(Vec<std::net::IpAddr>, Option<StreamhostServer>)>>,
    /// The server's proxies (JIDs), once discovered.
    proxies: tokio::sync::Mutex<Option<Vec<Jid>>>,
    decisions: Mutex<HashMap<i64, oneshot::Sender<Decision>>>,
    routes: Mutex<HashMap<String, Route>>,
    cancels: Mutex<HashMap<i64, watch::Sender<bool>>>,
    /// Offers waiting for an answer, by peer (bare JID).
    pending: Mutex<HashMap<String, usize>>,
    /// Offers refused over the caps since the last report, by peer.
    refused: Mutex<HashMap<String, usize>>,
    /// Files being hashed ahead of their offer ([`Transfers::prepare`]), by (path,
    /// size, mtime); an offer of one of them waits on the same job.
    hashing: Mutex<HashMap<(PathBuf, u64, i64), outgoing::SharedHashes>>,
    /// One file hashed ahead at a time (a folder of 300 files must not start 300).
    prehash_slots: Arc<tokio::sync::Semaphore>,
}

/// A place among the offers waiting for an answer, freed when dropped.
pub(super) struct PendingSlot {
    t: Transfers,
    peer: String,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut pending = self.t.inner.pending.lock().unwrap();
        if let Some(n) = pending.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&self.peer);
            }
        }
    }
}

/// Why a new offer is refused before it is recorded or shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refusal {
    pub condition: skiff_proto::stanza::Condition,
    pub text: &'static str,
}

/// The transfer engine of one account.
#[derive(Clone)]
pub struct Transfers {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers").field("account", &self.inner.account).finish()
    }
}

impl Transfers {
    /// Starts the engine on a session: registers the SI, bytestreams and IBB handlers
    /// (which also advertises them in disco#info) and marks transfers a previous run
    /// left unfinished as interrupted.
    pub fn start(
        client: Client,
        store: Arc<Store>,
        cfg: TransferConfig,
        account: &Jid,
    ) -> Result<Transfers, TransferError> {
        let account = account.bare().to_string();
        let n = store.interrupt_unfinished(&account)?;
        if n > 0 {
            tracing::info!("{n} transfers from an earlier run are marked interrupted");
        }
        let inner = Arc::new(Inner {
            client: client.clone(),
            store,
            cfg: std::sync::RwLock::new(cfg),
            account,
            streamhost: tokio::sync::Mutex::new(None),
            http: Mutex::default(),
            proxies: tokio::sync::Mutex::new(None),
            decisions: Mutex::default(),
            routes: Mutex::default(),
            cancels: Mutex::default(),
            pending: Mutex::default(),
            refused: Mutex::default(),
            hashing: Mutex::default(),
            prehash_slots: Arc::new(tokio::sync::Semaphore::new(1)),
        });
        client.add_feature(ns::SI_FILE_TRANSFER);
        // XEP-0300 SHA-256 in offers, and the checksum after the data.
        client.add_feature(ns::HASHES);
        client.add_feature("urn:xmpp:hash-function-text-names:sha-256");
        client.add_feature(ns::SKIFF_CHECKSUM);
        let offers = client.handle_iqs("si", ns::SI);
        let bytestreams = client.handle_iqs("query", ns::BYTESTREAMS);
        let ibb_open = client.handle_iqs("open", ns::IBB);
        let ibb_data = client.handle_iqs("data", ns::IBB);
        let ibb_close = client.handle_iqs("close", ns::IBB);
        let checksums = client.handle_iqs("checksum", ns::SKIFF_CHECKSUM);
        let messages = client.handle_messages();
        let oob_requests = client.handle_iqs("query", ns::IQ_OOB);
        let t = Transfers { inner };
        tokio::spawn(incoming::offer_loop(t.clone(), offers));
        for rx in [bytestreams, ibb_open, ibb_data, ibb_close, checksums] {
            tokio::spawn(route_loop(t.clone(), rx));
        }
        tokio::spawn(outgoing::reoffer_loop(t.clone()));
        tokio::spawn(links::message_loop(t.clone(), messages));
        tokio::spawn(links::iq_loop(t.clone(), oob_requests));
        tokio::spawn(remember_sign_ins(t.clone(), client.events()));
        Ok(t)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Offers `path` to `to` (a full JID, or a bare one: the best resource that can
    /// receive files is picked). Returns the transfer id once the offer is recorded;
    /// the rest is reported as events.
    pub async fn send_file(
        &self,
        to: &Jid,
        path: &std::path::Path,
        description: Option<String>,
    ) -> Result<i64, TransferError> {
        outgoing::start(self.clone(), to, path, description, None).await
    }

    /// Waits until the presence of `to` is known, for as long as it can still come:
    /// returns at once for a full JID (disco#info tells whether it is there) or when a
    /// resource is online; otherwise after our server answered a ping sent behind the
    /// initial presence (by then the roster and the presence of contacts on our own
    /// server are in), unless `to` is a contact whose presence we see on another
    /// server: then when its presence arrives, at most `cap` (remote servers answer
    /// presence probes later). Nothing waits a fixed delay.
    pub async fn wait_for_presence(&self, to: &Jid, cap: Duration) {
        if !to.is_bare() {
            return;
        }
        let client = &self.inner.client;
        let mut events = client.events();
        if !client.presence_of(to).is_empty() {
            return;
        }
        let Some(own) = client.jid() else { return };
        let server: Option<Jid> = own.domain().parse().ok();
        let _ = tokio::time::timeout(cap, client.get(server, Element::new("ping", ns::PING))).await;
        let sees_presence =
            client.roster().iter().any(|c| c.jid == to.to_string() && matches!(c.subscription.as_str(), "to" | "both"));
        if !sees_presence || !client.presence_of(to).is_empty() || to.domain() == own.domain() {
            return;
        }
        let deadline = tokio::time::Instant::now() + cap;
        while client.presence_of(to).is_empty() {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) | Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return,
                Ok(_) => {}
            }
        }
    }

    /// Sends `path` to `to` by `method`. With [`SendMethod::Auto`]: SI when one of the
    /// contact's clients takes SI offers; else, when serving is allowed and one of them
    /// takes `jabber:iq:oob`, from our one-time URL; otherwise (offline, or only clients
    /// without either, like Conversations) by HTTP File Upload to the bare address, when
    /// allowed.
    pub async fn send(
        &self,
        to: &Jid,
        path: &std::path::Path,
        description: Option<String>,
        method: SendMethod,
    ) -> Result<i64, TransferError> {
        match method {
            SendMethod::Si => self.send_file(to, path, description).await,
            SendMethod::Upload => self.send_by_upload(to, path, description).await,
            SendMethod::Oob => self.send_by_oob(to, path, description).await,
            SendMethod::Auto => match self.send_file(to, path, description.clone()).await {
                // Online, no SI, but a client that fetches iq:oob URLs and we may serve.
                Err(TransferError::NoFileTransfer(_))
                    if self.cfg().serve_http && self.oob_resource(to).await.is_ok() =>
                {
                    self.send_by_oob(to, path, description).await
                }
                Err(e @ (TransferError::Offline(_) | TransferError::NoFileTransfer(_))) => {
                    if !self.cfg().allow_upload {
                        return Err(TransferError::UploadTurnedOff { reason: Box::new(e) });
                    }
                    tracing::info!("{e}: sending by HTTP upload instead");
                    self.send_by_upload(&to.bare(), path, description).await
                }
                other => other,
            },
        }
    }

    /// Starts hashing `paths` (MD5 and SHA-256, into the hash cache) now, ahead of
    /// their offers: when files are chosen or dropped, or a command starts. An offer
    /// of a file still being hashed waits on the same job (up to the usual second), so
    /// most offers carry their hashes. Files already cached, folders, and paths that
    /// cannot be read are skipped; one file is hashed at a time.
    pub fn prepare(&self, paths: &[PathBuf]) {
        for path in paths {
            outgoing::hash_ahead(self, path);
        }
    }

    /// Accepts an incoming offer, into `dir` (default: the download folder).
    pub fn accept(&self, id: i64, dir: Option<PathBuf>) -> Result<(), TransferError> {
        self.decide(id, Decision::Accept(dir))
    }

    /// Declines an incoming offer (the sender sees `forbidden`).
    pub fn reject(&self, id: i64) -> Result<(), TransferError> {
        self.decide(id, Decision::Reject)
    }

    /// Whether the bare JID of `from` is in the roster: a contact. A roster item of any
    /// subscription counts (`none` too: the user added them, or approved them); someone
    /// who only asked to see our presence is not one (a pending inbound request is not
    /// a roster item, RFC 6121 3.1.3).
    pub fn is_contact(&self, from: &Jid) -> bool {
        let bare = from.bare().to_string();
        self.client().roster().iter().any(|c| c.jid == bare)
    }

    /// The gate before a new incoming offer is recorded: strangers refused when the
    /// setting says so, and, when offers wait for the user, the caps on waiting offers
    /// per peer and (for strangers) in total. The slot is held until the offer is
    /// answered. Refusals over a cap are reported once per burst and peer, not one by
    /// one.
    pub(super) fn admit(&self, from: &Jid) -> Result<Option<PendingSlot>, Refusal> {
        use skiff_proto::stanza::Condition;
        let cfg = self.cfg();
        // Refused at once, not recorded: by the stranger setting, or because only
        // contacts' offers are accepted anyway (a flood then writes no history).
        let stranger = !self.is_contact(from);
        let contacts_only = cfg.strangers == StrangerPolicy::Refuse || cfg.accept == AcceptPolicy::Contacts;
        if contacts_only && stranger {
            tracing::info!("refused an offer from {from}: not a contact");
            return Err(Refusal { condition: Condition::Forbidden, text: "files are accepted from contacts only" });
        }
        if cfg.accept != AcceptPolicy::Ask {
            return Ok(None);
        }
        let peer = from.bare().to_string();
        let mut pending = self.inner.pending.lock().unwrap();
        let total: usize = pending.values().sum();
        let mine = pending.get(&peer).copied().unwrap_or(0);
        if mine >= cfg.max_pending_per_peer || (stranger && total >= cfg.max_pending) {
            drop(pending);
            self.refused_over_cap(peer);
            return Err(Refusal {
                condition: Condition::ResourceConstraint,
                text: "too many offers are waiting for an answer; try again later",
            });
        }
        *pending.entry(peer.clone()).or_default() += 1;
        Ok(Some(PendingSlot { t: self.clone(), peer }))
    }

    /// Counts a refusal over the caps; the first of a burst schedules one report a
    /// second later with the count.
    fn refused_over_cap(&self, peer: String) {
        let mut refused = self.inner.refused.lock().unwrap();
        let n = refused.entry(peer.clone()).or_default();
        *n += 1;
        if *n > 1 {
            return;
        }
        let t = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let count = t.inner.refused.lock().unwrap().remove(&peer).unwrap_or(0);
            tracing::info!("refused {count} offers from {peer}: too many waiting");
            t.emit(Event::OffersRefused { peer, count: count as u64, reason: "too many offers waiting".into() });
        });
    }

    /// Offers waiting for an answer now, in total.
    pub fn pending_offers(&self) -> usize {
        self.inner.pending.lock().unwrap().values().sum()
    }

    /// When the policy is to ask: the channel the answer to offer `id` will come on,
    /// registered before the offer is announced (so an answer cannot come too early).
    fn ask(&self, id: i64) -> Option<oneshot::Receiver<Decision>> {
        (self.cfg().accept == AcceptPolicy::Ask).then(|| {
            let (tx, rx) = oneshot::channel();
            self.inner.decisions.lock().unwrap().insert(id, tx);
            rx
        })
    }

    /// The answer to a new offer `id` from `from`: the policy's, or the user's (a
    /// decline when none comes within the offer timeout).
    async fn answer(&self, id: i64, from: &Jid, asked: Option<oneshot::Receiver<Decision>>) -> Decision {
        match self.cfg().accept {
            AcceptPolicy::All => Decision::Accept(None),
            AcceptPolicy::None => Decision::Reject,
            AcceptPolicy::Contacts => {
                if self.is_contact(from) {
                    Decision::Accept(None)
                } else {
                    Decision::Reject
                }
            }
            AcceptPolicy::Ask => {
                let d = match asked {
                    Some(rx) => tokio::time::timeout(self.cfg().offer_timeout, rx).await.ok().and_then(Result::ok),
                    None => None,
                };
                self.inner.decisions.lock().unwrap().remove(&id);
                d.unwrap_or(Decision::Reject)
            }
        }
    }

    fn decide(&self, id: i64, d: Decision) -> Result<(), TransferError> {
        let tx = self.inner.decisions.lock().unwrap().remove(&id).ok_or(TransferError::NotPending(id))?;
        tx.send(d).map_err(|_| TransferError::NotPending(id))
    }

    /// Stops a transfer in progress; its partial data is kept for a resume.
    pub fn cancel(&self, id: i64) -> Result<(), TransferError> {
        if let Some(d) = self.inner.decisions.lock().unwrap().remove(&id) {
            let _ = d.send(Decision::Reject);
            return Ok(());
        }
        let cancels = self.inner.cancels.lock().unwrap();
        let tx = cancels.get(&id).ok_or(TransferError::NotPending(id))?;
        let _ = tx.send(true);
        Ok(())
    }

    /// "Try again" for transfer `id`. Outgoing: resumed where possible; one that
    /// cannot go on (declined, cancelled, completed, or refused by the resume) is sent
    /// afresh, an upload as an upload, anything else by the route chosen anew. Returns
    /// the id of the transfer that runs now. Incoming: only the sender can try again
    /// ([`TransferError::NotResumable`] unless it can be resumed here).
    pub async fn retry(&self, id: i64) -> Result<i64, TransferError> {
        let rec = self.inner.store.get(id)?;
        if rec.direction == crate::store::Direction::Incoming {
            return self.resume(id).await; // says why not
        }
        let fresh = matches!(rec.state, TransferState::Rejected | TransferState::Cancelled | TransferState::Completed);
        if !fresh {
            match self.resume(id).await {
                Err(TransferError::NotResumable { .. }) => {}
                other => return other,
            }
        }
        let path = rec
            .local_path
            .ok_or_else(|| TransferError::NotResumable { id, reason: "the source file is unknown".into() })?;
        let peer: Jid = rec.peer_jid.parse().map_err(|e| TransferError::Other(format!("stored peer address: {e}")))?;
        let how = if rec.route == Some(crate::store::Route::Upload) { SendMethod::Upload } else { SendMethod::Auto };
        self.send(&peer.bare(), std::path::Path::new(&path), rec.description, how).await
    }

    /// Offers an interrupted or failed outgoing transfer again; the receiver answers
    /// with the range it still needs. An incoming link is fetched again from where its
    /// `.part` stops. Returns the id (the same record).
    pub async fn resume(&self, id: i64) -> Result<i64, TransferError> {
        let rec = self.inner.store.get(id)?;
        if rec.direction == crate::store::Direction::Incoming && rec.url.is_some() {
            if rec.state == TransferState::Completed {
                return Err(TransferError::NotResumable { id, reason: "it is already complete".into() });
            }
            return links::resume(self, rec).await;
        }
        if rec.direction != crate::store::Direction::Outgoing {
            return Err(TransferError::NotResumable {
                id,
                reason: format!(
                    "it is an incoming transfer: ask {} to send it again, and Skiff will continue from {} bytes",
                    rec.peer_jid, rec.bytes_done
                ),
            });
        }
        if rec.state == TransferState::Completed {
            return Err(TransferError::NotResumable { id, reason: "it is already complete".into() });
        }
        let path = rec
            .local_path
            .clone()
            .ok_or_else(|| TransferError::NotResumable { id, reason: "the source file is unknown".into() })?;
        let peer: Jid = rec.peer_jid.parse().map_err(|e| TransferError::Other(format!("stored peer address: {e}")))?;
        // To the contact's best resource now; to the very resource it went to when the
        // peer's presence is not known (not a contact, or not yet): disco#info to that
        // full JID tells whether it is still there.
        let to = if self.inner.client.presence_of(&peer.bare()).is_empty() { peer } else { peer.bare() };
        outgoing::start(self.clone(), &to, std::path::Path::new(&path), rec.description.clone(), Some(id)).await
    }

    fn emit(&self, e: Event) {
        self.inner.client.emit(e);
    }

    /// Records the failure of transfer `id` (Interrupted when what arrived is kept,
    /// else Failed) and announces it.
    fn fail(&self, id: i64, name: &str, f: Failure) {
        let state = if f.resumable { TransferState::Interrupted } else { TransferState::Failed };
        if let Err(e) = self.inner.store.set_state(id, state, Some((f.reason, &f.error))) {
            tracing::warn!("history: {e}");
        }
        let upload_fallback = self.can_upload_instead(id);
        let Failure { reason, error, resumable } = f;
        self.emit(Event::TransferFailed { id, name: name.to_owned(), reason, error, resumable, upload_fallback });
    }

    /// Records that a user stopped our transfer `id` and announces it;
    /// `resumable` when what the receiver holds can be continued from.
    fn cancelled(&self, id: i64, name: String, resumable: bool) {
        let Failure { reason, error, .. } = Failure::cancelled();
        let _ = self.inner.store.set_state(id, TransferState::Cancelled, Some((reason, &error)));
        self.emit(Event::TransferFailed { id, name, reason, error, resumable, upload_fallback: false });
    }

    /// Records that the receiver declined transfer `id` (saying `reason`) and
    /// announces it.
    fn declined(&self, id: i64, name: String, reason: String) {
        let _ = self.inner.store.set_state(id, TransferState::Rejected, Some((FailReason::Declined, &reason)));
        self.emit(Event::TransferRejected { id, name, reason });
    }

    /// Records that the data of transfer `id` starts to flow over `route`, then
    /// announces it.
    fn record_started(&self, id: i64, route: crate::store::Route, streamhost: Option<String>, offset: u64) {
        let store = &self.inner.store;
        let _ = store.set_route(id, route, streamhost.as_deref());
        let _ = store.set_state(id, TransferState::Active, None);
        let _ = store.set_progress(id, offset);
        self.emit(Event::TransferStarted { id, route, streamhost, offset });
    }

    /// Records a finished transfer (hashes when known, all bytes done, completed),
    /// then announces it.
    fn record_completed(&self, done: Completed) {
        let store = &self.inner.store;
        let _ = store.set_hashes(done.id, done.md5.as_deref(), done.sha256.as_deref());
        let _ = store.set_verified(done.id, done.verified);
        let _ = store.set_progress(done.id, done.size);
        let _ = store.set_state(done.id, TransferState::Completed, None);
        self.emit(Event::TransferCompleted {
            id: done.id,
            name: done.name,
            path: done.path,
            size: done.size,
            bytes: done.bytes,
            sha256: done.sha256.unwrap_or_default(),
            route: done.route,
            seconds: done.seconds,
            verified: done.verified,
        });
    }

    /// Marks transfer `id` as running and gives its cancel switch (removed when the
    /// guard drops); `None` when it is running already.
    fn claim(&self, id: i64) -> Option<CancelGuard> {
        let mut cancels = self.inner.cancels.lock().unwrap();
        if cancels.contains_key(&id) {
            return None;
        }
        let (tx, rx) = watch::channel(false);
        cancels.insert(id, tx);
        Some(CancelGuard { t: self.clone(), id, rx })
    }

    /// Whether transfer `id` is running in this engine.
    pub fn is_active(&self, id: i64) -> bool {
        self.inner.cancels.lock().unwrap().contains_key(&id)
    }

    /// Routes IQs for `sid` from `peer` to the returned receiver until the guard drops.
    fn route(&self, sid: &str, peer: &Jid) -> RouteGuard {
        let (tx, rx) = mpsc::channel(64);
        self.inner.routes.lock().unwrap().insert(sid.to_owned(), (peer.clone(), tx));
        RouteGuard { t: self.clone(), sid: sid.to_owned(), rx }
    }

    /// Our streamhost, started on first use, and again when its addresses change.
    async fn streamhost(&self) -> Option<StreamhostServer> {
        let ips = s5b::local_addresses(&self.cfg().streamhost_addrs);
        let mut current = self.inner.streamhost.lock().await;
        if let Some((bound, server)) = current.as_ref() {
            if *bound == ips {
                return server.clone();
            }
        }
        let server = match StreamhostServer::bind(&ips).await {
            Ok(s) if !s.addrs().is_empty() => Some(s),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("cannot start our streamhost: {e}");
                None
            }
        };
        *current = Some((ips, server.clone()));
        server
    }

    /// Where our streamhost listens now (empty until a transfer first needed it).
    pub async fn own_streamhosts(&self) -> Vec<std::net::SocketAddr> {
        match self.inner.streamhost.lock().await.as_ref() {
            Some((_, Some(server))) => server.addrs().to_vec(),
            _ => Vec::new(),
        }
    }

    /// The HTTP client for the current settings (see [`upload::http_client`]).
    fn http(&self) -> Result<reqwest::Client, String> {
        let ca = self.cfg().http_ca_file;
        let mut cached = self.inner.http.lock().unwrap();
        if let Some((built_for, client)) = cached.as_ref() {
            if *built_for == ca {
                return Ok(client.clone());
            }
        }
        let own_domain = self.inner.account.rsplit('@').next().map(|d| d.split('/').next().unwrap_or(d).to_owned());
        let client = upload::http_client_for(ca.as_deref(), own_domain.as_deref())?;
        *cached = Some((ca, client.clone()));
        Ok(client)
    }

    /// The settings as they are now.
    pub fn cfg(&self) -> TransferConfig {
        self.inner.cfg.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// New settings, for the transfers that start from now on (running ones keep
    /// theirs). A changed proxy setting forgets the proxies found so far; changed
    /// streamhost addresses rebind our streamhost at its next use.
    pub async fn reconfigure(&self, cfg: TransferConfig) {
        let proxy_changed = {
            let mut cur = self.inner.cfg.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = cur.proxy != cfg.proxy;
            *cur = cfg;
            changed
        };
        if proxy_changed {
            *self.inner.proxies.lock().await = None;
        }
    }
}

/// What [`Transfers::record_completed`] records and announces.
struct Completed {
    id: i64,
    name: String,
    path: String,
    size: u64,
    /// Bytes that travelled in this attempt.
    bytes: u64,
    md5: Option<String>,
    sha256: Option<String>,
    route: crate::store::Route,
    seconds: f64,
    verified: crate::store::Verification,
}

/// A spawned task stopped when this is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct CancelGuard {
    t: Transfers,
    id: i64,
    rx: watch::Receiver<bool>,
}

impl CancelGuard {
    /// Resolves when the transfer is cancelled.
    async fn cancelled(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Runs one slow step of a driver (connecting, discovery) unless the transfer is
    /// cancelled first (`None`): Cancel takes effect in every state.
    async fn or_cancel<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            r = work => Some(r),
            _ = self.cancelled() => None,
        }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.t.inner.cancels.lock().unwrap().remove(&self.id);
    }
}

struct RouteGuard {
    t: Transfers,
    sid: String,
    rx: mpsc::Receiver<Iq>,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        self.t.inner.routes.lock().unwrap().remove(&self.sid);
    }
}

/// Remembers that the account signs in with SCRAM, so that later sign-ins refuse a
/// server offering only PLAIN (a downgrade).
async fn remember_sign_ins(t: Transfers, mut events: tokio::sync::broadcast::Receiver<Event>) {
    // Signed in before the engine started: the sign-in that already happened.
    t.inner.store.note_mechanism(&t.inner.account, &t.inner.client.mechanism());
    loop {
        match events.recv().await {
            Ok(Event::Online { mechanism, .. }) => t.inner.store.note_mechanism(&t.inner.account, &mechanism),
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return,
        }
    }
}

/// Hands bytestreams and IBB requests to the transfer they belong to.
async fn route_loop(t: Transfers, mut rx: mpsc::Receiver<Iq>) {
    while let Some(iq) = rx.recv().await {
        let sid = iq.request_payload().and_then(|p| p.attr("sid")).unwrap_or_default().to_owned();
        let route = t.inner.routes.lock().unwrap().get(&sid).cloned();
        let deliver = match route {
            Some((peer, tx)) if iq.from.as_ref() == Some(&peer) => Some(tx),
            _ => None,
        };
        let unrouted = match deliver {
            Some(tx) => match tx.send(iq).await {
                Ok(()) => continue,
                Err(e) => e.0,
            },
            None => iq,
        };
        let _ = t.inner.client.send(skiff_proto::transfer::no_such_stream(&unrouted));
    }
}

/// Throttled progress: events at most every 100 ms, history checkpoints every 250 ms.
struct Progress {
    t: Transfers,
    id: i64,
    total: u64,
    started: Instant,
    start_bytes: u64,
    /// `None` until the first bytes move: that first event goes out at once.
    last_event: Option<Instant>,
    last_store: Instant,
}

impl Progress {
    fn new(t: &Transfers, id: i64, total: u64, start_bytes: u64) -> Progress {
        let now = Instant::now();
        Progress { t: t.clone(), id, total, started: now, start_bytes, last_event: None, last_store: now }
    }

    /// `done` counts bytes of the whole file (including a resumed prefix).
    fn update(&mut self, done: u64) {
        let now = Instant::now();
        if now.duration_since(self.last_store) >= Duration::from_millis(250) {
            self.last_store = now;
            let _ = self.t.inner.store.set_progress(self.id, done);
        }
        let due = match self.last_event {
            None => done > self.start_bytes,
            Some(last) => now.duration_since(last) >= Duration::from_millis(100),
        };
        if due || done == self.total {
            self.last_event = Some(now);
            let secs = now.duration_since(self.started).as_secs_f64().max(1e-3);
            let rate = ((done - self.start_bytes.min(done)) as f64 / secs) as u64;
            self.t.emit(Event::TransferProgress { id: self.id, bytes: done, total: self.total, bytes_per_sec: rate });
        }
    }

    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
