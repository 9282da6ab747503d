//! The transfer engine: XEP-0096 SI file transfer carried by XEP-0065 SOCKS5
//! bytestreams (our streamhost first, then the server's proxy) or XEP-0047 in-band
//! bytestreams, with a SQLite history and resume.
//!
//! [`Transfers`] is the handle. Each transfer runs as one task (`outgoing.rs` or
//! `incoming.rs`); IQs for a transfer in progress are routed to its task by sid. Every
//! state change is written to the store first, then announced as an [`Event`].

mod admission;
pub mod batch;
mod bytestream;
mod config;
mod driver;
pub mod history;
mod incoming;
mod jingle;
pub mod links;
mod outgoing;
mod receive;
mod running;
pub mod s5b;
pub mod serve;
pub mod settings;
pub mod upload;
pub mod urlpolicy;

use std::collections::HashMap;
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
use crate::store::{Store, TransferState};
pub use skiff_proto::transfer::{FailReason, Failure};

use admission::{Decision, Refusal};
pub use config::{
    AcceptPolicy, SendMethod, StrangerPolicy, TransferConfig, TransferError, DEFAULT_IBB_BLOCK, MAX_PENDING,
    MAX_PENDING_PER_PEER,
};
use running::{AbortOnDrop, CancelGuard, Completed, Progress, Started};
pub use s5b::StreamhostServer;
pub use settings::{SettingsError, TransferSettings};

pub use skiff_proto::transfer::Method;

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
    /// Batches announced to us or being received.
    batches: batch::Registry,
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
            batches: batch::Registry::default(),
        });
        advertise(&client);
        let jingles = client.handle_iqs("jingle", ns::JINGLE);
        let offers = client.handle_iqs("si", ns::SI);
        let bytestreams = client.handle_iqs("query", ns::BYTESTREAMS);
        let ibb_open = client.handle_iqs("open", ns::IBB);
        let ibb_data = client.handle_iqs("data", ns::IBB);
        let ibb_close = client.handle_iqs("close", ns::IBB);
        let checksums = client.handle_iqs("checksum", ns::SKIFF_CHECKSUM);
        let messages = client.handle_messages();
        let oob_requests = client.handle_iqs("query", ns::IQ_OOB);
        // Batches between Skiffs (also advertises the namespace).
        let manifests = client.handle_iqs("batch", skiff_proto::batch::NS);
        let t = Transfers { inner };
        tokio::spawn(incoming::offer_loop(t.clone(), offers));
        tokio::spawn(jingle::jingle_loop(t.clone(), jingles));
        tokio::spawn(batch::manifest_loop(t.clone(), manifests));
        for rx in [bytestreams, ibb_open, ibb_data, ibb_close, checksums] {
            tokio::spawn(route_loop(t.clone(), rx));
        }
        tokio::spawn(outgoing::reoffer_loop(t.clone()));
        tokio::spawn(links::message_loop(t.clone(), messages));
        tokio::spawn(links::iq_loop(t.clone(), oob_requests));
        tokio::spawn(remember_sign_ins(t.clone(), client.events()));
        // Signed in before the handlers above added their features: say them again
        // (our entity caps must match what disco#info answers).
        client.announce();
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

    /// Sends `chosen` (see [`crate::files::expand`]) to `to` as one batch: one offer the
    /// receiver answers once, the tree kept, small files many to a stream. Returns the
    /// batch's id once it is recorded; the rest is reported as events under that id.
    /// [`TransferError::NoBatches`] when the contact's client does not take batches:
    /// then send the files one by one ([`Transfers::send`]).
    pub async fn send_batch(&self, to: &Jid, chosen: &[crate::files::Chosen]) -> Result<i64, TransferError> {
        batch::send_batch(self, to, chosen).await
    }

    /// Sends what a person chose (see [`crate::files::expand`]) to `to`: several files
    /// as one batch when the contact's client takes batches (and `method` allows SI);
    /// otherwise file by file by `method`, each described by `description` or, for a
    /// file found in a folder, its path there. Returns the ids started: the batch's, or
    /// one per file. Stops at the first file that cannot be sent.
    pub async fn send_chosen(
        &self,
        to: &Jid,
        chosen: &[crate::files::Chosen],
        description: Option<String>,
        method: SendMethod,
    ) -> Result<Vec<i64>, TransferError> {
        if chosen.len() > 1 && self.cfg().batches && matches!(method, SendMethod::Auto | SendMethod::Si) {
            match self.send_batch(to, chosen).await {
                Ok(id) => return Ok(vec![id]),
                Err(TransferError::NoBatches(peer)) => {
                    tracing::info!("{peer} does not take batches: sending {} files one by one", chosen.len());
                }
                // Offline or no SI at all: the route is chosen per file below.
                Err(TransferError::Offline(_) | TransferError::NoFileTransfer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut ids = Vec::with_capacity(chosen.len());
        for c in chosen {
            let desc = description.clone().or_else(|| c.rel.clone());
            ids.push(self.send(to, &c.path, desc, method).await?);
        }
        Ok(ids)
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
    /// most offers carry their hashes. Files already cached, small files (up to
    /// 4 MiB), folders, and paths that cannot be read are skipped; one file is hashed
    /// at a time.
    pub fn prepare(&self, paths: &[PathBuf]) {
        for path in paths {
            // Small files are hashed in a moment when they are offered (a batch's
            // together, in one read); ahead of time they would only cost a history
            // write each.
            if std::fs::metadata(path).is_ok_and(|m| m.len() <= batch::SMALL_FILE) {
                continue;
            }
            outgoing::hash_ahead(self, path);
        }
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
        let peer: Jid = rec.peer_jid.parse().map_err(|e| TransferError::Other(format!("stored peer address: {e}")))?;
        if rec.files.is_some() {
            // A batch afresh: its files again, under the same folder name.
            let chosen: Vec<crate::files::Chosen> = self
                .inner
                .store
                .batch_files(id)?
                .into_iter()
                .filter_map(|r| {
                    let rel = r.rel_path.map(|p| format!("{}/{p}", rec.file_name));
                    Some(crate::files::Chosen { path: r.local_path?.into(), rel })
                })
                .collect();
            let ids = self.send_chosen(&peer.bare(), &chosen, None, SendMethod::Auto).await?;
            return ids.first().copied().ok_or(TransferError::NotResumable { id, reason: "it holds no file".into() });
        }
        let path = rec
            .local_path
            .ok_or_else(|| TransferError::NotResumable { id, reason: "the source file is unknown".into() })?;
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
        if rec.files.is_some() {
            return batch::resume_outgoing(self, rec).await;
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

/// What the engine takes, in our disco#info: SI and Jingle file transfer, the
/// hashes in offers and the checksum after the data.
fn advertise(client: &Client) {
    client.add_feature(ns::SI_FILE_TRANSFER);
    // XEP-0300 SHA-256 in offers, and the checksum after the data.
    client.add_feature(ns::HASHES);
    client.add_feature("urn:xmpp:hash-function-text-names:sha-256");
    client.add_feature(ns::SKIFF_CHECKSUM);
    // Jingle file transfer over SOCKS5 and in-band (XEP-0166/0234/0260/0261).
    for feature in [ns::JINGLE, ns::JINGLE_FT5, ns::JINGLE_S5B, ns::JINGLE_IBB] {
        client.add_feature(feature);
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
        if let Err(unrouted) = t.deliver(iq).await {
            let _ = t.inner.client.send(skiff_proto::transfer::no_such_stream(&unrouted));
        }
    }
}

impl Transfers {
    /// Gives a request to the transfer routing its `sid` from its sender; back when
    /// there is none.
    async fn deliver(&self, iq: Iq) -> Result<(), Iq> {
        let sid = iq.request_payload().and_then(|p| p.attr("sid")).unwrap_or_default().to_owned();
        let route = self.inner.routes.lock().unwrap().get(&sid).cloned();
        match route {
            Some((peer, tx)) if iq.from.as_ref() == Some(&peer) => tx.send(iq).await.map_err(|e| e.0),
            _ => Err(iq),
        }
    }
}
