//! Sending by XEP-0363 HTTP File Upload: find the server's upload service, ask for a
//! slot, PUT the file with progress, then send the GET URL to the contact in a message
//! body and a `jabber:x:oob` element (how Conversations, Gajim and Dino share files).
//! Works for contacts who are offline: the server keeps the message.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use skiff_proto::disco::{DiscoInfoResult, DiscoItemsResult};
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::oob::XOob;
use skiff_proto::stanza::Message;
use skiff_proto::upload::{service_limit, Slot, SlotRequest};
use skiff_proto::xml::Element;

use super::{Completed, FailReason, Failure, Progress, TransferError, Transfers};
use crate::event::Event;
use crate::store::{Direction, NewTransfer, Route, TransferState};

/// The upload service of our server and its size limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadService {
    pub jid: Jid,
    pub max_size: Option<u64>,
}

/// The server's upload service: the domain itself or one of its disco items.
pub async fn discover(client: &crate::Client) -> Option<UploadService> {
    let domain = client.jid()?.domain_jid();
    let mut candidates = vec![domain.clone()];
    if let Ok(Some(items)) = client.get(Some(domain.clone()), Element::new("query", ns::DISCO_ITEMS)).await {
        if let Ok(items) = DiscoItemsResult::try_from(&items) {
            candidates.extend(items.items.iter().filter_map(|i| i.jid.parse::<Jid>().ok()));
        }
    }
    for jid in candidates {
        let Ok(Some(info)) = client.get(Some(jid.clone()), Element::new("query", ns::DISCO_INFO)).await else {
            continue;
        };
        if let Some(limit) = DiscoInfoResult::try_from(&info).ok().as_ref().and_then(service_limit) {
            return Some(UploadService { jid, max_size: limit });
        }
    }
    None
}

/// Whether `url` may be used: https, or http to this machine only (a test or a local
/// server), never another scheme.
pub fn check_url(url: &str) -> Result<reqwest::Url, String> {
    check(url, false)
}

/// [`check_url`] for `jabber:iq:oob` URLs, which clients serve from their own machine
/// for a contact on the same network: plain http is also allowed to private-network
/// addresses (10/8, 172.16/12, 192.168/16, 169.254/16, fc00::/7, fe80::/10), given as
/// literal IPs.
pub fn check_url_lan(url: &str) -> Result<reqwest::Url, String> {
    check(url, true)
}

fn check(url: &str, lan: bool) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e}): {url}"))?;
    match u.scheme() {
        "https" => Ok(u),
        "http" => {
            let private_v6 =
                |a: std::net::Ipv6Addr| (a.segments()[0] & 0xfe00) == 0xfc00 || (a.segments()[0] & 0xffc0) == 0xfe80;
            let allowed = match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
                Some(url::Host::Ipv4(a)) => a.is_loopback() || (lan && (a.is_private() || a.is_link_local())),
                Some(url::Host::Ipv6(a)) => a.is_loopback() || (lan && private_v6(a)),
                None => false,
            };
            if allowed {
                Ok(u)
            } else if lan {
                Err(format!("refusing plain http outside this machine and its private network: {url}"))
            } else {
                Err(format!("refusing plain http to another machine: {url}"))
            }
        }
        s => Err(format!("only http(s) URLs are used, not {s}: {url}")),
    }
}

/// The HTTP client: rustls with the system's roots (plus `ca_file`), at most 5
/// redirects each checked against the URL policy, host names that resolve to this
/// machine or the local network refused (`urlpolicy`), timeouts for connecting and for
/// stalls.
pub fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    http_client_for(ca_file, None)
}

/// [`http_client`] whose host names under `own_domain` (the account's server) may
/// resolve into the local network (a self-hosted server); other names may not, and
/// every redirect is checked (`urlpolicy`).
pub fn http_client_for(ca_file: Option<&Path>, own_domain: Option<&str>) -> Result<reqwest::Client, String> {
    let tls = crate::connection::tls_config(ca_file).map_err(|e| e.to_string())?;
    let mut tls = (*tls).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let resolver = super::urlpolicy::PolicyResolver { own_domain: own_domain.map(str::to_owned) };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(super::urlpolicy::redirect_policy())
        .dns_resolver(resolver)
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("Skiff/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The sid of upload records: they have no stream, the prefix marks them.
pub const SID_PREFIX: &str = "upload-";

impl Transfers {
    /// Sends `path` to `to` by uploading it to the server's upload service and sending
    /// the link. Returns the transfer id once recorded; the rest comes as events.
    pub async fn send_by_upload(
        &self,
        to: &Jid,
        path: &Path,
        description: Option<String>,
    ) -> Result<i64, TransferError> {
        let (name, size) = source(path).await?;
        let id = self.record_outgoing(SID_PREFIX, to, path, &name, size, &description)?;
        self.spawn_upload(id, to.clone(), path.to_owned(), name, size, description);
        Ok(id)
    }

    /// Sends an outgoing transfer that failed (or was interrupted) by HTTP upload
    /// instead, as a new attempt of the same record, to the contact's bare address.
    pub async fn upload_instead(&self, id: i64) -> Result<i64, TransferError> {
        let rec = self.inner.store.get(id)?;
        if !self.can_upload_instead(id) {
            let reason = if !self.cfg().allow_upload {
                "sending by HTTP upload is turned off in the settings".to_owned()
            } else if rec.direction != Direction::Outgoing {
                "it is an incoming transfer".to_owned()
            } else if self.is_active(id) {
                "it is still running".to_owned()
            } else if rec.state == TransferState::Completed {
                "it is already complete".to_owned()
            } else {
                "its file is gone, or it was an upload already".to_owned()
            };
            return Err(TransferError::NotResumable { id, reason });
        }
        let path = std::path::PathBuf::from(rec.local_path.unwrap_or_default());
        let (name, size) = source(&path).await?;
        let to: Jid = rec.peer_jid.parse().map_err(|e| TransferError::Other(format!("stored peer address: {e}")))?;
        let to = to.bare();
        let store = &self.inner.store;
        store.start_attempt(id, &format!("{SID_PREFIX}{}", super::outgoing::random_sid()), &to.to_string(), 0)?;
        store.set_state(id, TransferState::Offered, None)?;
        self.spawn_upload(id, to, path, name, size, rec.description);
        Ok(id)
    }

    /// Announces the upload `id` and runs it in the background.
    fn spawn_upload(&self, id: i64, to: Jid, path: std::path::PathBuf, name: String, size: u64, desc: Option<String>) {
        self.emit(Event::TransferOffered {
            id,
            direction: crate::store::Direction::Outgoing,
            peer: to.to_string(),
            name: name.clone(),
            size,
            description: desc.clone(),
            resume_from: 0,
            files: None,
        });
        let t = self.clone();
        tokio::spawn(async move {
            let Some(mut cancel) = t.claim(id) else { return };
            let started = Instant::now();
            let result = tokio::select! {
                r = t.upload(id, &to, &path, &name, size, desc) => r,
                _ = cancel.cancelled() => Err(Failure::cancelled()),
            };
            drop(cancel);
            match result {
                Ok(get_url) => {
                    tracing::info!("uploaded {name} for {to}: {get_url}");
                    t.record_completed(Completed {
                        id,
                        name,
                        path: get_url,
                        size,
                        bytes: size,
                        md5: None,
                        sha256: None,
                        route: Route::Upload,
                        seconds: started.elapsed().as_secs_f64(),
                        // The server took it; no receiver checked it.
                        verified: crate::store::Verification::None,
                    });
                }
                Err(f) if f.reason == FailReason::Cancelled => t.cancelled(id, name, false),
                Err(f) => t.fail(id, &name, f),
            }
        });
    }

    async fn upload(
        &self,
        id: i64,
        to: &Jid,
        path: &Path,
        name: &str,
        size: u64,
        description: Option<String>,
    ) -> Result<String, Failure> {
        let (service, slot) = self.upload_slot(name, size).await?;
        let put = check_url(&slot.put_url).map_err(fail(FailReason::Policy))?;
        let get = check_url(&slot.get_url).map_err(fail(FailReason::Policy))?;
        self.record_started(
            id,
            super::Started { route: Route::Upload, protocol: None, streamhost: Some(service.to_string()), offset: 0 },
        );
        self.put(id, path, size, put, &slot.put_headers).await?;
        let oob = XOob { url: get.to_string(), desc: description };
        let msg = Message {
            id: Some(format!("skiff-{id}")),
            from: None,
            to: Some(to.clone()),
            kind: "chat".into(),
            body: Some(get.to_string()),
            payloads: vec![Element::from(&oob)],
        };
        let sent = self.inner.client.send(msg);
        sent.map_err(|e| fail(FailReason::Offline)(format!("the link could not be sent: {e}")))?;
        Ok(get.to_string())
    }

    /// A slot for `name` (`size` bytes) from the server's upload service, and the
    /// service's JID.
    async fn upload_slot(&self, name: &str, size: u64) -> Result<(Jid, Slot), Failure> {
        let client = &self.inner.client;
        let service = discover(client)
            .await
            .ok_or_else(|| fail(FailReason::Unsupported)("the server has no HTTP upload service (XEP-0363)".into()))?;
        if let Some(max) = service.max_size {
            if size > max {
                let jid = &service.jid;
                let error = format!("{name} is {size} bytes; the server's upload service ({jid}) takes at most {max}");
                return Err(fail(FailReason::Policy)(error));
            }
        }
        let request = SlotRequest { filename: name.to_owned(), size, content_type: None };
        let slot = match client.get(Some(service.jid.clone()), Element::from(&request)).await {
            Ok(Some(el)) => Slot::try_from(&el)
                .map_err(|e| fail(FailReason::Protocol)(format!("the upload service's slot is unusable: {e}")))?,
            Ok(None) => return Err(fail(FailReason::Protocol)("the upload service answered without a slot".into())),
            Err(e) => return Err(fail(FailReason::Refused)(format!("the upload service refused a slot: {e}"))),
        };
        Ok((service.jid, slot))
    }

    /// Streams the file to the slot's PUT URL with its headers, with progress.
    async fn put(
        &self,
        id: i64,
        path: &Path,
        size: u64,
        put: reqwest::Url,
        headers: &[(String, String)],
    ) -> Result<(), Failure> {
        let http = self.http().map_err(fail(FailReason::Network))?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| fail(FailReason::Source)(format!("cannot read {}: {e}", path.display())))?;
        let progress = std::sync::Arc::new(std::sync::Mutex::new(Progress::new(self, id, size, 0)));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (p, s) = (progress.clone(), sent.clone());
        let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
            if let Ok(c) = &chunk {
                let done = s.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed) + c.len() as u64;
                p.lock().unwrap().update(done.min(size));
            }
            chunk
        });
        let mut req = http.put(put).header("Content-Length", size).body(reqwest::Body::wrap_stream(body));
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.map_err(|e| fail(FailReason::Network)(format!("upload failed: {e}")))?;
        if !resp.status().is_success() {
            let error = format!("the upload service answered {} to the upload", resp.status());
            return Err(fail(FailReason::Refused)(error));
        }
        if sent.load(std::sync::atomic::Ordering::Relaxed) != size {
            return Err(fail(FailReason::Source)(format!("{} changed size while it was uploaded", path.display())));
        }
        Ok(())
    }
}

/// A failure for `reason` from a sentence (`map_err(fail(FailReason::Network))`); an
/// upload that fails is not continued, it starts over.
fn fail(reason: FailReason) -> impl Fn(String) -> Failure {
    move |error| Failure::new(reason, error, false)
}

/// The name and size of a file to send.
pub(super) async fn source(path: &Path) -> Result<(String, u64), TransferError> {
    let err = |reason: String| TransferError::Source { path: path.display().to_string(), reason };
    let meta = tokio::fs::metadata(path).await.map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a file".into()));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    Ok((name, meta.len()))
}

impl Transfers {
    /// Records a new outgoing transfer without an SI stream (an upload or a served
    /// file): its sid is `sid_prefix` + a random part.
    pub(super) fn record_outgoing(
        &self,
        sid_prefix: &str,
        to: &Jid,
        path: &Path,
        name: &str,
        size: u64,
        description: &Option<String>,
    ) -> Result<i64, TransferError> {
        Ok(self.inner.store.insert(&NewTransfer {
            sid: format!("{sid_prefix}{}", super::outgoing::random_sid()),
            direction: Direction::Outgoing,
            account: self.inner.account.clone(),
            peer_jid: to.to_string(),
            file_name: name.to_owned(),
            local_path: Some(path.display().to_string()),
            size,
            md5: None,
            date: None,
            description: description.clone(),
            state: TransferState::Offered,
            files: None,
            rel_path: None,
        })?)
    }
}
