//! Sending: pick the recipient's resource, offer (SI), then carry the bytes over
//! SOCKS5 (our streamhost, then the proxy) or, when every streamhost fails, in-band.

use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_proto::bytestreams::StreamHost;
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
    description: Option<String>,
    hashes: HashJob,
}

/// The file's digests, computed in the background from the offer on; awaited for
/// the checksum after the data and for the history.
#[derive(Debug)]
struct HashJob {
    task: tokio::sync::Mutex<Option<JoinHandle<std::io::Result<Hashes>>>>,
    done: std::sync::OnceLock<Option<Hashes>>,
}

impl HashJob {
    fn new(task: JoinHandle<std::io::Result<Hashes>>) -> HashJob {
        HashJob { task: tokio::sync::Mutex::new(Some(task)), done: std::sync::OnceLock::new() }
    }

    /// The digests (`None` when the file could not be read).
    async fn get(&self) -> Option<Hashes> {
        let mut task = self.task.lock().await;
        if let Some(h) = self.done.get() {
            return h.clone();
        }
        let result = match task.take() {
            Some(j) => match j.await {
                Ok(Ok(h)) => Some(h),
                Ok(Err(e)) => {
                    tracing::warn!("hashing the file: {e}");
                    None
                }
                Err(e) => {
                    tracing::warn!("hashing the file: {e}");
                    None
                }
            },
            None => None,
        };
        let _ = self.done.set(result.clone());
        result
    }
}

/// A hashing job several waiters can share; the error says why the file could not be read.
pub(super) type SharedHashes =
    futures_util::future::Shared<futures_util::future::BoxFuture<'static, Result<Hashes, String>>>;

/// The job hashing the file at `path` (canonical, described by `meta`) now, cached as
/// it ends, or the one already running for this very file (same path, size and
/// modification time). `ahead` jobs wait for their turn ([`Transfers::prepare`]).
/// The caller has found the file missing from the hash cache.
fn hash_job(t: &Transfers, path: PathBuf, meta: &files::FileMeta, ahead: bool) -> SharedHashes {
    use futures_util::FutureExt as _;
    let key = (path.clone(), meta.size, meta.mtime_ns);
    let mut hashing = t.inner.hashing.lock().unwrap();
    if let Some(job) = hashing.get(&key) {
        return job.clone();
    }
    let path_str = path.display().to_string();
    let st = t.clone();
    let slots = ahead.then(|| t.inner.prehash_slots.clone());
    let task = tokio::spawn({
        let key = key.clone();
        async move {
            let _turn = match slots {
                Some(s) => s.acquire_owned().await.ok(),
                None => None,
            };
            let result = files::hash_file(path.clone(), None).await;
            if let Ok(h) = &result {
                let _ = st.inner.store.hash_cache_put(&path_str, key.1, key.2, &h.md5, Some(&h.sha256));
            }
            st.inner.hashing.lock().unwrap().remove(&key);
            result
        }
    });
    let job = async move {
        match task.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(format!("hashing was interrupted: {e}")),
        }
    }
    .boxed()
    .shared();
    hashing.insert(key, job.clone());
    job
}

/// Hashes `path` ahead of its offer (see [`Transfers::prepare`]), unless it is cached
/// already or cannot be read.
pub(super) fn hash_ahead(t: &Transfers, path: &Path) {
    let Ok(path) = std::fs::canonicalize(path) else { return };
    let Ok(meta) = files::file_meta(&path) else { return };
    let cached = t.inner.store.hash_cache_get(&path.display().to_string(), meta.size, meta.mtime_ns);
    if !matches!(cached, Ok(Some((_, Some(_))))) {
        // Runs to its end whether or not anyone waits (it fills the cache).
        let job = hash_job(t, path, &meta, true);
        tokio::spawn(async move {
            if let Err(e) = job.await {
                tracing::info!("hashing a file ahead of its offer: {e}");
            }
        });
    }
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
    let (target, skiff_peer, checksum) = pick_resource(&t, to).await?;
    let (md5, sha256, hashes) = offer_hashes(&t, &path, &meta).await?;
    let sid = random_sid();
    // One attempt at a time per record (a manual resume may race the automatic one).
    let claim = match resume_id {
        Some(id) => Some(t.claim(id).ok_or(TransferError::AlreadyActive(id))?),
        None => None,
    };
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
        description,
        hashes: HashJob::new(hashes),
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
    });
    Ok(id)
}

/// The digests for the offer and the job that computes them for the record: MD5 and
/// SHA-256 from the cache, or computed now if that is quick (within a second); else
/// the offer goes without (a Skiff gets the SHA-256 right after the last byte) and
/// the job goes on in the background.
async fn offer_hashes(
    t: &Transfers,
    path: &Path,
    meta: &files::FileMeta,
) -> Result<(Option<String>, Option<String>, JoinHandle<std::io::Result<Hashes>>), TransferError> {
    let source_err =
        |e: std::io::Error| TransferError::Source { path: path.display().to_string(), reason: e.to_string() };
    let cached = t.inner.store.hash_cache_get(&path.display().to_string(), meta.size, meta.mtime_ns)?;
    if let Some((md5, Some(sha256))) = cached {
        let h = Hashes { md5, sha256 };
        return Ok((Some(h.md5.clone()), Some(h.sha256.clone()), tokio::spawn(async move { Ok(h) })));
    }
    // The job started when the file was chosen, or a new one (not queued behind
    // files hashed ahead: this one is being sent).
    let job = hash_job(t, path.to_path_buf(), meta, false);
    let mut task = tokio::spawn(async move { job.await.map_err(std::io::Error::other) });
    match tokio::time::timeout(Duration::from_secs(1), &mut task).await {
        Ok(Ok(Ok(h))) => Ok((Some(h.md5.clone()), Some(h.sha256.clone()), tokio::spawn(async move { Ok(h) }))),
        Ok(Ok(Err(e))) => Err(source_err(e)),
        Ok(Err(e)) => Err(TransferError::Other(e.to_string())),
        Err(_) => Ok((None, None, task)),
    }
}

/// The full JID to offer to: `to` itself when it has a resource, else the online
/// resource with the highest priority that advertises SI file transfer. Also tells
/// whether that client is Skiff (which takes the largest in-band blocks).
async fn pick_resource(t: &Transfers, to: &Jid) -> Result<(Jid, bool, bool), TransferError> {
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
        let info = info.ok().flatten().and_then(|el| DiscoInfoResult::try_from(&el).ok());
        match info {
            Some(i) if i.has_feature(ns::SI_FILE_TRANSFER) => {
                let skiff = i.identities.iter().any(|id| id.name.as_deref() == Some("Skiff"));
                return Ok((full.clone(), skiff, i.has_feature(ns::SKIFF_CHECKSUM)));
            }
            // A full JID that does not answer disco: try anyway, the offer will tell.
            None if !to.is_bare() => return Ok((full.clone(), false, false)),
            _ => {}
        }
    }
    Err(TransferError::NoFileTransfer(to.to_string()))
}

pub(super) fn random_sid() -> String {
    use rand::Rng;
    rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(32).map(char::from).collect()
}

impl Outgoing {
    async fn run(self, cancel: super::CancelGuard) {
        let t = self.t.clone();
        let (id, name) = (self.id, self.name.clone());
        match self.transfer(cancel).await {
            Ok(()) => {}
            Err(Stop::Declined(reason)) => t.declined(id, name, reason),
            Err(Stop::Failed(f)) if f.reason == FailReason::Cancelled => t.cancelled(id, name, f.resumable),
            Err(Stop::Failed(f)) => t.fail(id, &name, f),
        }
    }

    /// Drives the sans-IO [`Sender`] machine with a [`SendDriver`].
    async fn transfer(&self, mut cancel: super::CancelGuard) -> Result<(), Stop> {
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
            ..SenderConfig::default()
        };
        let clock = Clock::new();
        let mut m = Sender::new(machine_cfg, me.clone(), self.target.clone(), self.sid.clone(), file, clock.now());
        let mut inputs = Inputs::new();
        let mut d = SendDriver {
            o: self,
            cfg,
            me,
            client,
            results: inputs.tx.clone(),
            progress: Progress::new(&self.t, self.id, self.size, 0),
            expected: None,
            proxy_problems: Vec::new(),
            sock: None,
            src: None,
            streaming: None,
        };
        driver::run(&mut m, &mut d, SenderInput::Start, &clock, &mut cancel, &mut inputs, None).await
    }

    async fn completed(&self, route: Route, bytes: u64, verified: bool, progress: &Progress) -> Result<(), Stop> {
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

/// The I/O side of one outgoing SI transfer: one method per [`SenderAction`].
struct SendDriver<'a> {
    o: &'a Outgoing,
    cfg: super::TransferConfig,
    me: Jid,
    client: Client,
    /// Where background work (IQ answers, the socket copy) reports to the machine.
    results: mpsc::UnboundedSender<SenderInput>,
    progress: Progress,
    /// Our streamhost's connection for this stream, once it comes.
    expected: Option<s5b::Expected>,
    /// Why no proxy could be offered, for the user when SOCKS5 fails.
    proxy_problems: Vec<String>,
    sock: Option<TcpStream>,
    /// The file, for in-band blocks.
    src: Option<SourceFile>,
    /// The socket copy; stopped when the transfer ends however it ends (Cancel).
    streaming: Option<super::AbortOnDrop>,
}

impl Driver<Sender> for SendDriver<'_> {
    async fn act(&mut self, action: SenderAction, cancel: &mut super::CancelGuard) -> Step<SenderInput> {
        match action {
            SenderAction::SendIq(iq) => {
                bridge_iq(&self.client, iq, &self.results, SenderInput::Iq);
                Step::Quiet
            }
            SenderAction::GatherStreamhosts { dst_addr } => self.gather(&dst_addr, false, cancel).await,
            // Again after a failure: the proxies found anew, our listener's
            // registration for this stream kept.
            SenderAction::RefreshProxies { dst_addr } => self.gather(&dst_addr, true, cancel).await,
            SenderAction::AwaitDirect => self.await_direct(cancel).await,
            SenderAction::ConnectProxy { host, port, dst_addr } => {
                self.connect_proxy(&host, port, &dst_addr, cancel).await
            }
            SenderAction::Started { route, streamhost, offset, length: _ } => {
                self.started(route, streamhost, offset).await
            }
            SenderAction::StreamSocket { offset, length } => self.stream_socket(offset, length),
            SenderAction::ReadBlock { len } => self.read_block(len).await,
            SenderAction::Progress { acked } => {
                self.progress.update(acked);
                Step::Quiet
            }
            SenderAction::FellBack { reason } => self.fell_back(reason),
            SenderAction::Slow { bytes_per_sec } => {
                self.o.t.emit(Event::TransferNotice { id: self.o.id, message: slow_message(bytes_per_sec) });
                Step::Quiet
            }
            SenderAction::ComputeChecksum => match cancel.or_cancel(self.o.hashes.get()).await {
                Some(h) => Step::Input(SenderInput::Checksum(h.map(|h| h.sha256))),
                None => Step::End(Err(Stop::Failed(Failure { resumable: false, ..Failure::cancelled() }))),
            },
            SenderAction::Done { route, bytes, verified } => {
                Step::End(self.o.completed(route, bytes, verified, &self.progress).await)
            }
            SenderAction::Rejected { reason } => Step::End(Err(Stop::Declined(reason))),
            SenderAction::Failed { reason, error, resumable } => {
                Step::End(Err(Stop::Failed(Failure { reason, error, resumable })))
            }
        }
    }
}

impl SendDriver<'_> {
    /// The streamhosts to offer: our own (first time: its connection for `dst_addr`
    /// expected) and the proxies (`again`: found anew).
    async fn gather(&mut self, dst_addr: &str, again: bool, cancel: &mut super::CancelGuard) -> Step<SenderInput> {
        let (t, cfg, me) = (&self.o.t, &self.cfg, &self.me);
        let gather = async {
            let mut hosts = Vec::new();
            let mut expect = None;
            let mut problems = None;
            if cfg.use_direct {
                if let Some(server) = t.streamhost().await {
                    if !again {
                        expect = Some(server.expect(dst_addr));
                    }
                    hosts.extend(server.addrs().iter().map(|a| StreamHost {
                        jid: me.to_string(),
                        host: a.ip().to_string(),
                        port: a.port(),
                    }));
                }
            }
            if cfg.use_proxy {
                if again {
                    tracing::info!("the receiver could use no streamhost: looking for the proxy again");
                }
                let (found, p) = t.proxies(again).await;
                hosts.extend(found);
                problems = Some(p);
            }
            (hosts, expect, problems)
        };
        let Some((hosts, expect, problems)) = cancel.or_cancel(gather).await else {
            return Step::Input(SenderInput::Cancel);
        };
        if let Some(p) = problems {
            self.proxy_problems = p;
        }
        if !again {
            self.expected = expect;
        }
        Step::Input(SenderInput::Streamhosts(hosts))
    }

    /// The receiver says it connected to our streamhost: the connection, if it came.
    async fn await_direct(&mut self, cancel: &mut super::CancelGuard) -> Step<SenderInput> {
        let got = match self.expected.take() {
            Some(e) => cancel.or_cancel(e.take(Duration::from_secs(5))).await,
            None => Some(None),
        };
        Step::Input(match got {
            Some(Some(s)) => {
                self.sock = Some(s);
                SenderInput::DirectConnected
            }
            Some(None) => SenderInput::DirectMissing,
            None => SenderInput::Cancel,
        })
    }

    async fn connect_proxy(
        &mut self,
        host: &str,
        port: u16,
        dst_addr: &str,
        cancel: &mut super::CancelGuard,
    ) -> Step<SenderInput> {
        self.expected = None;
        Step::Input(match cancel.or_cancel(s5b::connect(host, port, dst_addr)).await {
            Some(Ok(s)) => {
                self.sock = Some(s);
                SenderInput::ProxyConnected
            }
            Some(Err(e)) => {
                self.o.t.forget_proxies().await;
                SenderInput::ProxyFailed(e)
            }
            None => SenderInput::Cancel,
        })
    }

    /// The data starts to flow over `route`: recorded; in-band reads the file here.
    async fn started(&mut self, route: Route, streamhost: Option<String>, offset: u64) -> Step<SenderInput> {
        let o = self.o;
        o.t.record_started(o.id, route, streamhost, offset);
        self.progress = Progress::new(&o.t, o.id, o.size, offset);
        if route == Route::Ibb {
            match SourceFile::open(&o.path, offset).await {
                Ok(f) => self.src = Some(f),
                Err(e) => {
                    let error = format!("cannot read {}: {e}", o.path.display());
                    return Step::End(Err(Stop::fatal(FailReason::Source, error)));
                }
            }
        }
        Step::Quiet
    }

    /// Copies the file into the SOCKS5 socket in the background.
    fn stream_socket(&mut self, offset: u64, length: u64) -> Step<SenderInput> {
        let Some(s) = self.sock.take() else {
            return Step::End(Err(Stop::resumable(FailReason::Network, "the bytestream is gone")));
        };
        let o = self.o;
        let (t, id, size, path, tx) = (o.t.clone(), o.id, o.size, o.path.clone(), self.results.clone());
        self.streaming = Some(super::AbortOnDrop(tokio::spawn(async move {
            let mut p = Progress::new(&t, id, size, offset);
            let r = send_socket(s, &path, offset, length, &mut p).await;
            let _ = tx.send(match r {
                Ok(()) => SenderInput::SocketDone,
                Err(e) => SenderInput::SocketFailed(e),
            });
        })));
        Step::Quiet
    }

    /// The next in-band block.
    async fn read_block(&mut self, len: usize) -> Step<SenderInput> {
        let Some(f) = self.src.as_mut() else {
            return Step::End(Err(Stop::fatal(FailReason::Protocol, "in-band data before the stream started")));
        };
        let mut buf = vec![0u8; len];
        Step::Input(match f.read_block(&mut buf).await {
            Ok(n) => {
                buf.truncate(n);
                SenderInput::Block(buf)
            }
            Err(e) => SenderInput::ReadFailed(format!("cannot read {}: {e}", self.o.path.display())),
        })
    }

    /// SOCKS5 failed and in-band follows: said, not only logged, as in-band is slower.
    fn fell_back(&mut self, reason: String) -> Step<SenderInput> {
        tracing::info!("SOCKS5 bytestream failed ({reason}); falling back to in-band");
        let mut why = reason;
        if !self.proxy_problems.is_empty() {
            why = format!("{why}; {}", self.proxy_problems.join("; "));
        }
        let message = format!("no direct or proxy connection ({why}); sending in-band, which is slower");
        self.o.t.emit(Event::TransferNotice { id: self.o.id, message });
        Step::Quiet
    }
}

fn slow_message(bytes_per_sec: u64) -> String {
    format!(
        "in-band data moves at only {} KB/s: the server limits how fast this connection may send \
         (ejabberd's default allows about 3 KB/s). A SOCKS5 route (direct or proxy) or HTTP upload avoids the limit.",
        bytes_per_sec / 1000
    )
}

impl Transfers {
    /// The proxies to offer, with their current addresses: the configured proxy, or
    /// those the server has. Which proxies there are is remembered per account (in
    /// memory and in the settings: discovery takes several queries); their addresses
    /// are asked for each transfer (one `bytestreams` query each), so a proxy that
    /// moved is never offered at its old address. A remembered proxy that does not
    /// answer makes the server be asked again; `fresh` asks it anyway.
    /// Also returns what went wrong with proxies that could not be used.
    pub(super) async fn proxies(&self, fresh: bool) -> (Vec<StreamHost>, Vec<String>) {
        if fresh {
            self.forget_proxies().await;
        }
        let client = &self.inner.client;
        for round in 0..2 {
            let jids = self.proxy_jids().await;
            let mut hosts = Vec::new();
            let mut problems = Vec::new();
            for j in &jids {
                match s5b::query_proxy(client, j).await {
                    Ok(h) => hosts.extend(h),
                    Err(e) => {
                        tracing::warn!("proxy {j} is unusable: {e}");
                        problems.push(format!("proxy {j}: {e}"));
                    }
                }
            }
            if (!problems.is_empty() || jids.is_empty()) && round == 0 && !fresh && self.cfg().proxy.is_none() {
                self.forget_proxies().await;
                continue;
            }
            if jids.is_empty() {
                problems.push("the server offers no SOCKS5 proxy".into());
            }
            return (hosts, problems);
        }
        (Vec::new(), Vec::new())
    }

    /// The proxies' JIDs: the configured one, else those remembered, else discovered.
    async fn proxy_jids(&self) -> Vec<Jid> {
        if let Some(j) = &self.cfg().proxy {
            return vec![j.clone()];
        }
        let mut cache = self.inner.proxies.lock().await;
        if let Some(p) = cache.as_ref() {
            return p.clone();
        }
        let key = self.proxy_cache_key();
        if let Ok(Some(saved)) = self.inner.store.setting(&key) {
            let jids: Vec<Jid> = saved.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !jids.is_empty() {
                *cache = Some(jids.clone());
                return jids;
            }
        }
        let client = &self.inner.client;
        let jids = match client.jid() {
            Some(me) => s5b::discover_proxies(client, &me.domain_jid()).await,
            None => Vec::new(),
        };
        if !jids.is_empty() {
            *cache = Some(jids.clone());
            let text: Vec<String> = jids.iter().map(Jid::to_string).collect();
            let _ = self.inner.store.set_setting(&key, &text.join("\n"));
        }
        jids
    }

    fn proxy_cache_key(&self) -> String {
        format!("proxy-jids/{}", self.inner.account)
    }

    /// Forgets which proxies the server has (one failed: ask the server again).
    async fn forget_proxies(&self) {
        *self.inner.proxies.lock().await = None;
        let _ = self.inner.store.set_setting(&self.proxy_cache_key(), "");
    }
}

/// Streams `length` bytes of `path` from `offset` into the socket, then closes it
/// and waits for the receiver to close its side (it has everything then).
async fn send_socket(
    mut sock: TcpStream,
    path: &Path,
    offset: u64,
    length: u64,
    progress: &mut Progress,
) -> Result<(), String> {
    let mut src = SourceFile::open(path, offset).await.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
