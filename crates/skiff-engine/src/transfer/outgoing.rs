//! Sending: pick the recipient's resource, offer (SI), then carry the bytes over
//! SOCKS5 (our streamhost, then the proxy) or, when every streamhost fails, in-band.

use std::path::{Path, PathBuf};
use std::time::Duration;

use skiff_proto::bytestreams::{dst_addr, Activate, StreamHost, StreamHostUsed, StreamHosts};
use skiff_proto::disco::DiscoInfoResult;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::si::{FileInfo, FileOffer, SiAccept};
use skiff_proto::stanza::{Condition, Iq};
use skiff_proto::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::{ibb, s5b, Method, Progress, TransferError, Transfers};
use crate::event::Event;
use crate::files::{self, Hashes, SourceFile};
use crate::session::ClientError;
use crate::store::{Direction, NewTransfer, Route, TransferState};

/// How an attempt ended, short of success.
pub(super) enum Failure {
    Rejected(String),
    Failed { error: String, resumable: bool },
}

impl Failure {
    pub(super) fn resumable(error: impl Into<String>) -> Failure {
        Failure::Failed { error: error.into(), resumable: true }
    }

    pub(super) fn fatal(error: impl Into<String>) -> Failure {
        Failure::Failed { error: error.into(), resumable: false }
    }
}

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
    description: Option<String>,
    hashes: JoinHandle<std::io::Result<Hashes>>,
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
    let (target, skiff_peer) = pick_resource(&t, to).await?;
    let path_str = path.display().to_string();
    let store = &t.inner.store;
    // MD5 for the offer: from the cache, or computed now if it is quick; SHA-256 for
    // the record is always computed (in the background) while the transfer runs.
    let cached = store.hash_cache_get(&path_str, meta.size, meta.mtime_ns)?;
    let (md5, hashes) = match cached {
        Some((md5, Some(sha256))) => (Some(md5.clone()), tokio::spawn(async move { Ok(Hashes { md5, sha256 }) })),
        _ => {
            let st = t.clone();
            let (p, size, mtime) = (path.clone(), meta.size, meta.mtime_ns);
            let mut task = tokio::spawn(async move {
                let h = files::hash_file(p.clone(), None).await?;
                let _ = st.inner.store.hash_cache_put(&p.display().to_string(), size, mtime, &h.md5, Some(&h.sha256));
                Ok(h)
            });
            // Large files are offered without a hash rather than after a long wait.
            match tokio::time::timeout(Duration::from_secs(1), &mut task).await {
                Ok(Ok(Ok(h))) => (Some(h.md5.clone()), tokio::spawn(async move { Ok(h) })),
                Ok(Ok(Err(e))) => return Err(source_err(e)),
                Ok(Err(e)) => return Err(TransferError::Other(e.to_string())),
                Err(_) => (None, task),
            }
        }
    };
    let sid = random_sid();
    // One attempt at a time per record (a manual resume may race the automatic one).
    let claim = match resume_id {
        Some(id) => Some(t.claim(id).ok_or(TransferError::AlreadyActive(id))?),
        None => None,
    };
    let id = match resume_id {
        Some(id) => {
            store.start_attempt(id, &sid, &target.to_string(), 0)?;
            store.set_state(id, TransferState::Offered, None)?;
            id
        }
        None => store.insert(&NewTransfer {
            sid: sid.clone(),
            direction: Direction::Outgoing,
            account: t.inner.account.clone(),
            peer_jid: target.to_string(),
            file_name: meta.name.clone(),
            local_path: Some(path_str),
            size: meta.size,
            md5: md5.clone(),
            date: Some(meta.date.clone()),
            description: description.clone(),
            state: TransferState::Offered,
        })?,
    };
    t.emit(Event::TransferOffered {
        id,
        direction: "outgoing".into(),
        peer: target.to_string(),
        name: meta.name.clone(),
        size: meta.size,
        description: description.clone(),
        resume_from: 0,
    });
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
        description,
        hashes,
    };
    let cancel = match claim {
        Some(c) => c,
        None => t.claim(id).ok_or(TransferError::AlreadyActive(id))?,
    };
    tokio::spawn(o.run(cancel));
    Ok(id)
}

/// The full JID to offer to: `to` itself when it has a resource, else the online
/// resource with the highest priority that advertises SI file transfer. Also tells
/// whether that client is Skiff (which takes the largest in-band blocks).
async fn pick_resource(t: &Transfers, to: &Jid) -> Result<(Jid, bool), TransferError> {
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
        let info = info.ok().flatten().and_then(|el| DiscoInfoResult::try_from(&el).ok());
        match info {
            Some(i) if i.has_feature(ns::SI_FILE_TRANSFER) => {
                let skiff = i.identities.iter().any(|id| id.name.as_deref() == Some("Skiff"));
                return Ok((full.clone(), skiff));
            }
            // A full JID that does not answer disco: try anyway, the offer will tell.
            None if !to.is_bare() => return Ok((full.clone(), false)),
            _ => {}
        }
    }
    Err(TransferError::NoFileTransfer(to.to_string()))
}

fn random_sid() -> String {
    use rand::Rng;
    rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(32).map(char::from).collect()
}

impl Outgoing {
    async fn run(self, mut cancel: super::CancelGuard) {
        let t = self.t.clone();
        let (id, name) = (self.id, self.name.clone());
        let result = tokio::select! {
            r = self.transfer() => r,
            _ = cancel.cancelled() => {
                let _ = t.inner.store.set_state(id, TransferState::Cancelled, Some("cancelled"));
                t.emit(Event::TransferFailed { id, name, error: "cancelled".into(), resumable: true });
                return;
            }
        };
        match result {
            Ok(()) => {}
            Err(Failure::Rejected(reason)) => {
                let _ = t.inner.store.set_state(id, TransferState::Rejected, Some(&reason));
                t.emit(Event::TransferRejected { id, name, reason });
            }
            Err(Failure::Failed { error, resumable }) => t.fail(id, &name, &error, resumable),
        }
    }

    async fn transfer(self) -> Result<(), Failure> {
        let cfg = &self.t.inner.cfg;
        let client = self.t.inner.client.clone();
        let offer = FileOffer {
            sid: self.sid.clone(),
            mime_type: None,
            file: FileInfo {
                name: self.name.clone(),
                size: self.size,
                date: Some(self.date.clone()),
                hash: self.md5.clone(),
                desc: self.description.clone(),
                range: true,
            },
            methods: cfg.methods.iter().map(|m| m.namespace().to_owned()).collect(),
        };
        let answer =
            client.iq_within(Iq::set("", Some(self.target.clone()), offer.into()), Some(cfg.offer_timeout)).await;
        let accept = match answer {
            Ok(Some(el)) => SiAccept::try_from(&el).map_err(|e| {
                Failure::fatal(format!("{} answered the offer in a way Skiff cannot read: {e}", self.target))
            })?,
            Ok(None) => return Err(Failure::fatal(format!("{} accepted without choosing a method", self.target))),
            Err(ClientError::Stanza { error, .. }) => {
                return Err(match error.condition {
                    Condition::Forbidden | Condition::NotAcceptable | Condition::NotAllowed => Failure::Rejected(
                        error.text.clone().map(|t| format!("declined: {t}")).unwrap_or_else(|| "declined".into()),
                    ),
                    Condition::BadRequest if error.app.as_ref().is_some_and(|a| a.name == "no-valid-streams") => {
                        Failure::fatal(format!("{} supports none of the transfer methods offered", self.target))
                    }
                    _ => Failure::fatal(format!("{} refused the offer: {error}", self.target)),
                })
            }
            Err(e) => return Err(Failure::fatal(format!("the offer got no answer: {e}"))),
        };
        let offset = accept.range.as_ref().map(|r| r.offset).unwrap_or(0);
        if offset > self.size {
            return Err(Failure::fatal(format!(
                "the receiver asked for data from byte {offset} of a {} byte file",
                self.size
            )));
        }
        let length = accept.range.as_ref().and_then(|r| r.length).unwrap_or(self.size - offset).min(self.size - offset);
        let store = &self.t.inner.store;
        let _ = store.set_state(self.id, TransferState::Accepted, None);
        let _ = store.set_progress(self.id, offset);
        let mut progress = Progress::new(&self.t, self.id, self.size, offset);
        let ibb_allowed = cfg.methods.contains(&Method::Ibb);
        let route = if accept.method == ns::BYTESTREAMS {
            match self.s5b().await {
                Ok((sock, route, host)) => {
                    self.started(route, host.as_deref(), offset);
                    send_socket(sock, &self.path, offset, length, &mut progress).await?;
                    route
                }
                Err(e) if ibb_allowed => {
                    tracing::info!("SOCKS5 bytestream failed ({e}); falling back to in-band");
                    self.ibb(offset, length, &mut progress).await?
                }
                Err(e) => return Err(Failure::resumable(e)),
            }
        } else if accept.method == ns::IBB {
            self.ibb(offset, length, &mut progress).await?
        } else {
            return Err(Failure::fatal(format!("the receiver chose a method that was not offered: {}", accept.method)));
        };
        let hashes = match self.hashes.await {
            Ok(Ok(h)) => Some(h),
            _ => None,
        };
        let sha256 = hashes.as_ref().map(|h| h.sha256.clone()).unwrap_or_default();
        let _ = store.set_hashes(
            self.id,
            hashes.as_ref().map(|h| h.md5.as_str()),
            hashes.as_ref().map(|h| h.sha256.as_str()),
        );
        let _ = store.set_progress(self.id, self.size);
        let _ = store.set_state(self.id, TransferState::Completed, None);
        self.t.emit(Event::TransferCompleted {
            id: self.id,
            name: self.name.clone(),
            path: self.path.display().to_string(),
            size: self.size,
            bytes: length,
            sha256,
            route: route.as_str().to_owned(),
            seconds: progress.seconds(),
        });
        Ok(())
    }

    fn started(&self, route: Route, streamhost: Option<&str>, offset: u64) {
        let _ = self.t.inner.store.set_route(self.id, route, streamhost);
        let _ = self.t.inner.store.set_state(self.id, TransferState::Active, None);
        self.t.emit(Event::TransferStarted {
            id: self.id,
            route: route.as_str().to_owned(),
            streamhost: streamhost.map(str::to_owned),
            offset,
        });
    }

    async fn ibb(&self, offset: u64, length: u64, progress: &mut Progress) -> Result<Route, Failure> {
        self.started(Route::Ibb, None, offset);
        ibb::send(&self.t, &self.target, self.skiff_peer, &self.sid, &self.path, offset, length, progress).await?;
        Ok(Route::Ibb)
    }

    /// Offers the streamhosts and opens the bytestream the receiver picked.
    async fn s5b(&self) -> Result<(TcpStream, Route, Option<String>), String> {
        let client = &self.t.inner.client;
        let cfg = &self.t.inner.cfg;
        let me = client.jid().ok_or("signed out")?;
        let dst = dst_addr(&self.sid, &me.to_string(), &self.target.to_string());
        let mut hosts = Vec::new();
        let mut expected = None;
        if cfg.use_direct {
            if let Some(server) = self.t.streamhost().await {
                expected = Some(server.expect(&dst));
                hosts.extend(server.addrs().iter().map(|a| StreamHost {
                    jid: me.to_string(),
                    host: a.ip().to_string(),
                    port: a.port(),
                }));
            }
        }
        let proxies = if cfg.use_proxy { self.t.proxies().await } else { Vec::new() };
        hosts.extend(proxies.iter().cloned());
        if hosts.is_empty() {
            return Err("no streamhost to offer (no own address allowed and no proxy)".into());
        }
        let query = StreamHosts { sid: self.sid.clone(), mode_tcp: true, hosts };
        let answer = client
            .iq_within(Iq::set("", Some(self.target.clone()), Element::from(&query)), Some(Duration::from_secs(60)))
            .await
            .map_err(|e| format!("the receiver could not use any streamhost: {e}"))?
            .ok_or("the receiver answered the streamhosts with nothing")?;
        let used = StreamHostUsed::try_from(&answer).map_err(|e| e.to_string())?;
        if used.jid == me.to_string() {
            let sock = match expected {
                Some(e) => e.take(Duration::from_secs(5)).await,
                None => None,
            };
            let sock = sock.ok_or("the receiver says it used our streamhost, but its connection never arrived")?;
            return Ok((sock, Route::S5bDirect, Some(me.to_string())));
        }
        drop(expected);
        let proxy = proxies
            .iter()
            .find(|p| p.jid == used.jid)
            .ok_or_else(|| format!("the receiver used a streamhost we did not offer ({})", used.jid))?;
        let sock = match s5b::connect(&proxy.host, proxy.port, &dst).await {
            Ok(s) => s,
            Err(e) => {
                self.t.forget_proxies().await;
                return Err(e);
            }
        };
        let proxy_jid: Jid = proxy.jid.parse().map_err(|e| format!("proxy address: {e}"))?;
        let activate = Activate { sid: self.sid.clone(), target: self.target.to_string() };
        client
            .set(Some(proxy_jid), Element::from(&activate))
            .await
            .map_err(|e| format!("the proxy refused to activate the stream: {e}"))?;
        Ok((sock, Route::S5bProxy, Some(proxy.jid.clone())))
    }
}

impl Transfers {
    /// The proxies to offer: the configured one, or those the server has. Cached per
    /// account, in memory and in the settings (so a restart does not ask again).
    async fn proxies(&self) -> Vec<StreamHost> {
        let mut cache = self.inner.proxies.lock().await;
        if let Some(p) = cache.as_ref() {
            return p.clone();
        }
        let key = self.proxy_cache_key();
        if let Ok(Some(saved)) = self.inner.store.setting(&key) {
            let hosts: Vec<StreamHost> = saved
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(' ');
                    Some(StreamHost {
                        jid: f.next()?.to_owned(),
                        host: f.next()?.to_owned(),
                        port: f.next()?.parse().ok()?,
                    })
                })
                .collect();
            if !hosts.is_empty() {
                *cache = Some(hosts.clone());
                return hosts;
            }
        }
        let client = &self.inner.client;
        let jids = match &self.inner.cfg.proxy {
            Some(j) => vec![j.clone()],
            None => match client.jid() {
                Some(me) => s5b::discover_proxies(client, &me.domain_jid()).await,
                None => Vec::new(),
            },
        };
        let mut hosts = Vec::new();
        for j in jids {
            match s5b::query_proxy(client, &j).await {
                Ok(h) => hosts.extend(h),
                Err(e) => tracing::warn!("proxy {j} is unusable: {e}"),
            }
        }
        if !hosts.is_empty() {
            *cache = Some(hosts.clone());
            let text: Vec<String> = hosts.iter().map(|h| format!("{} {} {}", h.jid, h.host, h.port)).collect();
            let _ = self.inner.store.set_setting(&key, &text.join("\n"));
        }
        hosts
    }

    fn proxy_cache_key(&self) -> String {
        let which = self.inner.cfg.proxy.as_ref().map(Jid::to_string).unwrap_or_else(|| "discovered".into());
        format!("proxy-cache/{}/{which}", self.inner.account)
    }

    /// Forgets the cached proxies (one failed: ask the server again next time).
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
) -> Result<(), Failure> {
    let mut src = SourceFile::open(path, offset)
        .await
        .map_err(|e| Failure::fatal(format!("cannot read {}: {e}", path.display())))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = length;
    let mut done = offset;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = src
            .read_block(&mut buf[..want])
            .await
            .map_err(|e| Failure::fatal(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            return Err(Failure::fatal(format!("{} got shorter while it was being sent", path.display())));
        }
        sock.write_all(&buf[..n])
            .await
            .map_err(|e| Failure::resumable(format!("the connection broke after {done} bytes: {e}")))?;
        left -= n as u64;
        done += n as u64;
        progress.update(done);
    }
    sock.shutdown().await.map_err(|e| Failure::resumable(format!("closing the stream failed: {e}")))?;
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
