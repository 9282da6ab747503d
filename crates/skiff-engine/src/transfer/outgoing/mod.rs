//! Sending: pick the recipient's resource, offer (SI), then carry the bytes over
//! SOCKS5 (our streamhost, then the proxy) or, when every streamhost fails, in-band.

use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_proto::disco::DiscoInfoResult;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::si::FileInfo;
use skiff_proto::transfer::{Sender, SenderAction, SenderConfig, SenderInput};
use skiff_proto::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::driver::{self, bridge_iq, Clock, Driver, Inputs, Step, Stop};
use super::{s5b, FailReason, Failure, Progress, TransferError, Transfers};
use crate::event::Event;
use crate::files::{self, Hashes, SourceFile};
use crate::session::Client;
use crate::store::{Direction, NewTransfer, Route, TransferState};

mod hashing;
mod jingle;
mod send;

pub(super) use hashing::{hash_ahead, SharedHashes};
use hashing::{offer_hashes, HashJob};
pub(super) use jingle::session_config;
use send::SendDriver;

struct Outgoing {
    t: Transfers,
    id: i64,
    sid: String,
    target: Jid,
    /// The receiver is Skiff: in-band blocks start at the configured maximum.
    skiff_peer: bool,
    path: PathBuf,
    name: String,
    size: u64,
    date: String,
    md5: Option<String>,
    /// SHA-256 for the offer, when known at offer time.
    sha256: Option<String>,
    /// The receiver confirms a checksum sent after the data (a Skiff).
    checksum: bool,
    /// Set up by Jingle file transfer (else SI).
    jingle: bool,
    description: Option<String>,
    hashes: HashJob,
    /// A stream of a batch: what it carries and where it stands in the batch; its
    /// end is recorded by the batch (`outcome`), not here.
    pack: Option<PackRun>,
    outcome: std::sync::Mutex<Option<RunOutcome>>,
}

/// One stream of a batch: the files it carries, one after the other, and the marker
/// its offer bears.
pub(in crate::transfer) struct PackRun {
    pub(in crate::transfer) files: Vec<(PathBuf, u64)>,
    pub(in crate::transfer) marker: skiff_proto::batch::InBatch,
    /// Bytes of the batch done before this stream.
    pub(in crate::transfer) base: u64,
    pub(in crate::transfer) batch_size: u64,
}

/// How a stream of a batch ended well.
#[derive(Debug, Clone)]
pub(in crate::transfer) struct RunOutcome {
    pub(in crate::transfer) route: Route,
    /// Bytes that travelled.
    pub(in crate::transfer) bytes: u64,
    /// The receiver confirmed the SHA-256.
    pub(in crate::transfer) verified: bool,
    /// The stream's SHA-256 (a single file's: its own).
    pub(in crate::transfer) sha256: Option<String>,
}

/// What a stream of a batch needs besides its [`PackRun`].
pub(in crate::transfer) struct RunSpec {
    pub(in crate::transfer) batch_id: i64,
    pub(in crate::transfer) target: Jid,
    /// Shown in logs and the offer: the first file's path in the batch.
    pub(in crate::transfer) name: String,
    pub(in crate::transfer) date: String,
    /// Digests of the whole stream, when known before the offer.
    pub(in crate::transfer) hashes: Option<Hashes>,
}

/// Sends one stream of a batch (the batch holds the claim; `cancel` follows it).
pub(in crate::transfer) async fn send_run(
    t: &Transfers,
    spec: RunSpec,
    run: PackRun,
    cancel: &mut super::CancelGuard,
) -> Result<RunOutcome, Stop> {
    let size = run.files.iter().map(|f| f.1).sum();
    let path = run.files.first().map(|f| f.0.clone()).unwrap_or_default();
    let (md5, sha256, job) = match spec.hashes {
        Some(h) => (Some(h.md5.clone()), Some(h.sha256.clone()), tokio::spawn(async move { Ok(h) })),
        None => {
            let meta = files::file_meta(&path).map_err(|e| Stop::fatal(FailReason::Source, e.to_string()))?;
            offer_hashes(t, &path, &meta).await.map_err(|e| Stop::fatal(FailReason::Source, e.to_string()))?
        }
    };
    let o = Outgoing {
        t: t.clone(),
        id: spec.batch_id,
        sid: random_sid(),
        target: spec.target,
        skiff_peer: true,
        path,
        name: spec.name,
        size,
        date: spec.date,
        md5,
        sha256,
        checksum: true,
        jingle: false,
        description: None,
        hashes: HashJob::new(job),
        pack: Some(run),
        outcome: std::sync::Mutex::new(None),
    };
    o.transfer(cancel).await?;
    let outcome = o.outcome.lock().unwrap().take();
    outcome.ok_or_else(|| Stop::fatal(FailReason::Protocol, "the stream ended without its end"))
}

/// Records and launches an outgoing transfer (or a new attempt of `resume_id`).
pub(super) async fn start(
    t: Transfers,
    to: &Jid,
    path: &Path,
    description: Option<String>,
    resume_id: Option<i64>,
) -> Result<i64, TransferError> {
    let source_err =
        |e: std::io::Error| TransferError::Source { path: path.display().to_string(), reason: e.to_string() };
    let meta = files::file_meta(path).map_err(source_err)?;
    let path = std::fs::canonicalize(path).map_err(source_err)?;
    let (Peer { jid: target, skiff: skiff_peer, checksum, .. }, jingle) = jingle::pick(&t, to, resume_id).await?;
    let (md5, sha256, hashes) = offer_hashes(&t, &path, &meta).await?;
    let sid = random_sid();
    // One attempt at a time per record (a manual resume may race the automatic one).
    let claim = resume_id.map(|id| t.claim(id).ok_or(TransferError::AlreadyActive(id))).transpose()?;
    let new = NewTransfer {
        sid: sid.clone(),
        direction: Direction::Outgoing,
        account: t.inner.account.clone(),
        peer_jid: target.to_string(),
        file_name: meta.name.clone(),
        local_path: Some(path.display().to_string()),
        size: meta.size,
        md5: md5.clone(),
        date: Some(meta.date.clone()),
        description: description.clone(),
        state: TransferState::Offered,
        files: None,
        rel_path: None,
    };
    let id = record_attempt(&t, resume_id, &new)?;
    let o = Outgoing {
        t: t.clone(),
        id,
        sid,
        target,
        skiff_peer,
        path,
        name: meta.name,
        size: meta.size,
        date: meta.date,
        md5,
        sha256,
        checksum,
        jingle,
        description,
        hashes: HashJob::new(hashes),
        pack: None,
        outcome: std::sync::Mutex::new(None),
    };
    let cancel = match claim {
        Some(c) => c,
        None => t.claim(id).ok_or(TransferError::AlreadyActive(id))?,
    };
    tokio::spawn(o.run(cancel));
    Ok(id)
}

/// Records this attempt (transfer `resume_id` tried again, or `new`) and announces it.
fn record_attempt(t: &Transfers, resume_id: Option<i64>, new: &NewTransfer) -> Result<i64, TransferError> {
    let store = &t.inner.store;
    let id = match resume_id {
        Some(id) => {
            store.start_attempt(id, &new.sid, &new.peer_jid, 0)?;
            store.set_state(id, TransferState::Offered, None)?;
            id
        }
        None => store.insert(new)?,
    };
    t.emit(Event::TransferOffered {
        id,
        direction: Direction::Outgoing,
        peer: new.peer_jid.clone(),
        name: new.file_name.clone(),
        size: new.size,
        description: new.description.clone(),
        resume_from: 0,
        files: None,
    });
    Ok(id)
}

/// The client a transfer goes to, and what it takes beside SI.
pub(in crate::transfer) struct Peer {
    pub(in crate::transfer) jid: Jid,
    /// Skiff (which takes the largest in-band blocks).
    pub(in crate::transfer) skiff: bool,
    /// Confirms a SHA-256 sent after the data.
    pub(in crate::transfer) checksum: bool,
    /// Takes batches ([`skiff_proto::batch`]).
    pub(in crate::transfer) batches: bool,
    /// Takes SI file transfer (XEP-0096).
    pub(in crate::transfer) si: bool,
    /// Takes Jingle file transfer (XEP-0234) over a transport we have.
    pub(in crate::transfer) jingle: bool,
}

/// The full JID to offer to: `to` itself when it has a resource, else the online
/// resource with the highest priority that advertises SI file transfer, with what it
/// takes besides.
pub(in crate::transfer) async fn pick_resource(t: &Transfers, to: &Jid) -> Result<Peer, TransferError> {
    let candidates: Vec<Jid> = if to.is_bare() {
        let online = t.inner.client.presence_of(to);
        if online.is_empty() {
            return Err(TransferError::Offline(to.to_string()));
        }
        online.iter().filter_map(|r| to.with_resource(&r.resource).ok()).collect()
    } else {
        vec![to.clone()]
    };
    for full in &candidates {
        // What its entity capabilities say, when they show file transfer: no round
        // trip. (Caps can lag: a client that added features since, its new caps not
        // learnt yet; then disco#info asks.)
        if let Some(features) = t.inner.client.caps_features(full) {
            let info = DiscoInfoResult { node: None, identities: Vec::new(), features, extensions: Vec::new() };
            if let Some(peer) = peer_of(full, &info) {
                return Ok(peer);
            }
        }
        let info = t.inner.client.get(Some(full.clone()), Element::new("query", ns::DISCO_INFO)).await;
        // The server answers for a resource that is not there (RFC 6121 §8.5.3.2.1).
        if let Err(crate::session::ClientError::Stanza { error, .. }) = &info {
            use skiff_proto::stanza::Condition;
            if !to.is_bare()
                && matches!(
                    error.condition,
                    Condition::ServiceUnavailable | Condition::RecipientUnavailable | Condition::ItemNotFound
                )
            {
                return Err(TransferError::Offline(to.to_string()));
            }
        }
        match info.ok().flatten().and_then(|el| DiscoInfoResult::try_from(&el).ok()) {
            Some(i) => {
                if let Some(peer) = peer_of(full, &i) {
                    return Ok(peer);
                }
            }
            // A full JID that does not answer disco: try anyway, the offer will tell.
            None if !to.is_bare() => {
                let jid = full.clone();
                return Ok(Peer { jid, skiff: false, checksum: false, batches: false, si: true, jingle: false });
            }
            None => {}
        }
    }
    Err(TransferError::NoFileTransfer(to.to_string()))
}

/// What a client at `full` takes, from its disco#info (or caps): `None` when it
/// takes neither SI nor Jingle file transfer.
fn peer_of(full: &Jid, i: &DiscoInfoResult) -> Option<Peer> {
    let (si, jingle) = (i.has_feature(ns::SI_FILE_TRANSFER), jingle::takes_jingle(i));
    (si || jingle).then(|| Peer {
        jid: full.clone(),
        // Skiff by its name, or (from caps, which carry no names) by its own features.
        skiff: i.identities.iter().any(|id| id.name.as_deref() == Some("Skiff"))
            || (i.has_feature(ns::SKIFF_CHECKSUM) && i.has_feature(skiff_proto::batch::NS)),
        checksum: i.has_feature(ns::SKIFF_CHECKSUM),
        batches: i.has_feature(skiff_proto::batch::NS),
        si,
        jingle,
    })
}

pub(super) fn random_sid() -> String {
    use rand::Rng;
    rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(32).map(char::from).collect()
}

impl Outgoing {
    async fn run(self, mut cancel: super::CancelGuard) {
        let t = self.t.clone();
        let (id, name) = (self.id, self.name.clone());
        let ended = self.transfer(&mut cancel).await;
        // Not running any more when its end is recorded (what the record allows then
        // depends on it: "send by upload instead").
        drop(cancel);
        match ended {
            Ok(()) => {}
            Err(Stop::Declined(reason)) => t.declined(id, name, reason),
            Err(Stop::Failed(f)) if f.reason == FailReason::Cancelled => t.cancelled(id, name, f.resumable),
            Err(Stop::Failed(f)) => t.fail(id, &name, f),
        }
    }

    /// Drives the sans-IO [`Sender`] machine (or a Jingle session) with a [`SendDriver`].
    async fn transfer(&self, cancel: &mut super::CancelGuard) -> Result<(), Stop> {
        if self.jingle {
            return self.transfer_jingle(cancel).await;
        }
        let cfg = self.t.cfg();
        let client = self.t.inner.client.clone();
        let me = client.jid().ok_or_else(|| Stop::resumable(FailReason::Offline, "signed out"))?;
        let file = FileInfo {
            name: self.name.clone(),
            size: self.size,
            date: Some(self.date.clone()),
            hash: self.md5.clone(),
            desc: self.description.clone(),
            range: true,
            sha256: self.sha256.clone(),
            // A receiver that confirms the SHA-256 after the data: the sender learns
            // that the file arrived intact (and the receiver gets the hash even when
            // it was not ready for the offer).
            checksum_follows: self.checksum,
        };
        let machine_cfg = SenderConfig {
            methods: cfg.methods.clone(),
            ibb_block_size: cfg.ibb_block_size,
            ibb_window: cfg.ibb_window,
            offer_timeout: cfg.offer_timeout,
            skiff_peer: self.skiff_peer,
            batch: self.pack.as_ref().map(|p| p.marker.clone()),
            ..SenderConfig::default()
        };
        let clock = Clock::new();
        let mut m = Sender::new(machine_cfg, me.clone(), self.target.clone(), self.sid.clone(), file, clock.now());
        let mut inputs = Inputs::new();
        let mut d = SendDriver::new(self, cfg, me.clone(), inputs.tx.clone());
        driver::run(&mut m, &mut d, SenderInput::Start, &clock, cancel, &mut inputs, None).await
    }

    /// Progress of this stream from `start` (of a batch's, within the batch).
    fn progress(&self, start: u64) -> Progress {
        match &self.pack {
            Some(p) => Progress::within(&self.t, self.id, p.batch_size, p.base, start),
            None => Progress::new(&self.t, self.id, self.size, start),
        }
    }

    /// The data to send, from `offset` (a future that owns what it needs).
    fn open_source(&self, offset: u64) -> impl std::future::Future<Output = std::io::Result<SourceFile>> + 'static {
        let (path, many) = (self.path.clone(), self.pack.as_ref().map(|p| p.files.clone()));
        async move {
            match many {
                Some(files) => SourceFile::open_many(files, offset).await,
                None => SourceFile::open(&path, offset).await,
            }
        }
    }

    async fn completed(&self, route: Route, bytes: u64, verified: bool, progress: &Progress) -> Result<(), Stop> {
        if self.pack.is_some() {
            let sha256 = self.hashes.get().await.map(|h| h.sha256);
            *self.outcome.lock().unwrap() = Some(RunOutcome { route, bytes, verified, sha256 });
            return Ok(());
        }
        let hashes = self.hashes.get().await;
        self.t.record_completed(super::Completed {
            id: self.id,
            name: self.name.clone(),
            path: self.path.display().to_string(),
            size: self.size,
            bytes,
            md5: hashes.as_ref().map(|h| h.md5.clone()),
            sha256: hashes.map(|h| h.sha256),
            route,
            seconds: progress.seconds(),
            // Confirmed by the receiver; otherwise nobody told us it arrived intact.
            verified: if verified { crate::store::Verification::Sha256 } else { crate::store::Verification::None },
        });
        Ok(())
    }
}

/// Streams `length` bytes of `path` from `offset` into the socket, then closes it
/// and waits for the receiver to close its side (it has everything then).
async fn send_socket(
    mut sock: TcpStream,
    src: std::io::Result<SourceFile>,
    path: &Path,
    offset: u64,
    length: u64,
    progress: &mut Progress,
) -> Result<(), String> {
    let mut src = src.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = length;
    let mut done = offset;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = src.read_block(&mut buf[..want]).await.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if n == 0 {
            return Err(format!("{} got shorter while it was being sent", path.display()));
        }
        match tokio::time::timeout(s5b::WRITE_TIMEOUT, sock.write_all(&buf[..n])).await {
            Ok(r) => r.map_err(|e| format!("the connection broke after {done} bytes: {e}"))?,
            Err(_) => {
                return Err(format!(
                    "the receiver stopped reading after {done} bytes (nothing for {} s)",
                    s5b::WRITE_TIMEOUT.as_secs()
                ))
            }
        }
        left -= n as u64;
        done += n as u64;
        progress.update(done);
    }
    sock.shutdown().await.map_err(|e| format!("closing the stream failed: {e}"))?;
    let mut scratch = [0u8; 64];
    let _ = tokio::time::timeout(Duration::from_secs(30), sock.read(&mut scratch)).await;
    Ok(())
}

/// Offers interrupted transfers again when their receiver comes back online.
pub(super) async fn reoffer_loop(t: Transfers) {
    let mut events = t.inner.client.events();
    loop {
        let ev = match events.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let Event::Presence { jid, available: true, .. } = ev else { continue };
        let Ok(list) = t.inner.store.interrupted_outgoing(&t.inner.account, &jid) else { continue };
        for rec in list {
            if rec.attempts >= 5 || t.is_active(rec.id) {
                continue;
            }
            tracing::info!("{jid} is back: offering {} again", rec.file_name);
            let t = t.clone();
            tokio::spawn(async move {
                // Its client may announce file transfer a moment after its presence.
                for attempt in 1..=3 {
                    match t.resume(rec.id).await {
                        Ok(_) => return,
                        Err(e @ TransferError::NoFileTransfer(_)) if attempt < 3 => {
                            tracing::debug!("{e}; trying again");
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                        Err(e) => {
                            tracing::info!("cannot offer {} again: {e}", rec.file_name);
                            return;
                        }
                    }
                }
            });
        }
    }
}
