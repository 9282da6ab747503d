//! Sending by XEP-0066 `jabber:iq:oob` (the seed's out-of-band case): we serve the file
//! ourselves on a one-time URL — `http://ADDRESS:PORT/TOKEN/NAME` from a small HTTP
//! server (hyper) bound for this transfer alone on the first streamhost address — and
//! ask the contact to fetch it. The contact answers the IQ only once it has the whole
//! file (or with `not-acceptable` / `item-not-found`); the server stops then. Plain
//! HTTP, so meant for a contact on the same network, and only when the user allows it
//! ([`super::TransferConfig::serve_http`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use skiff_proto::disco::DiscoInfoResult;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::oob::IqOob;
use skiff_proto::stanza::{Condition, Iq};
use skiff_proto::xml::Element;
use tokio::io::AsyncSeekExt;
use tokio::net::TcpListener;

use super::{Completed, FailReason, Failure, Progress, TransferError, Transfers};
use crate::event::Event;
use crate::session::ClientError;
use crate::store::Route;

/// What is escaped in the file name part of our URLs: all but RFC 3986's unreserved
/// characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The sid prefix of records of files we serve.
pub const SID_PREFIX: &str = "serve-";

/// Connections the one-time server keeps open at once.
const MAX_CONNECTIONS: usize = 4;

/// One file on one secret path; counts what it served.
struct Served {
    path: PathBuf,
    /// `/TOKEN/NAME`, percent-encoded.
    url_path: String,
    size: u64,
    /// Bytes written in response bodies so far, and the furthest offset reached.
    sent: Mutex<(u64, u64)>,
    progress: Mutex<Progress>,
    /// Set on the first request for the file.
    started: Mutex<bool>,
    /// Who fetches: the address of the first `GET`. Others get 403, and once the whole
    /// file was sent the URL is spent (410): it is single-use, a range request from
    /// the same fetcher (a resume) excepted.
    fetcher: Mutex<Option<std::net::IpAddr>>,
    t: Transfers,
    id: i64,
}

/// A running one-time HTTP server; stops when dropped.
struct FileServer {
    url: String,
    served: Arc<Served>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileServer {
    /// Binds on `ip` (port chosen by the system) and serves `path` under a random
    /// token. `t` and `id` receive the progress.
    async fn start(
        t: &Transfers,
        id: i64,
        ip: std::net::IpAddr,
        path: &Path,
        name: &str,
        size: u64,
    ) -> std::io::Result<FileServer> {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let token = super::outgoing::random_sid();
        let enc = percent_encoding::utf8_percent_encode(name, PATH_SEGMENT).to_string();
        let url_path = format!("/{token}/{enc}");
        let url = format!("http://{}{url_path}", addr);
        let served = Arc::new(Served {
            path: path.to_owned(),
            url_path,
            size,
            sent: Mutex::new((0, 0)),
            progress: Mutex::new(Progress::new(t, id, size, 0)),
            started: Mutex::new(false),
            fetcher: Mutex::new(None),
            t: t.clone(),
            id,
        });
        let s = served.clone();
        let task = tokio::spawn(async move {
            // Connections live in this set: stopping the server (Cancel, the end of the
            // transfer, expiry) ends them too, mid-body included.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    Some(_) = connections.join_next() => continue,
                };
                let Ok((sock, peer)) = accepted else { continue };
                if connections.len() >= MAX_CONNECTIONS {
                    tracing::info!("file server: refused {peer}, {MAX_CONNECTIONS} connections open");
                    continue;
                }
                let _ = sock.set_nodelay(true);
                let s = s.clone();
                connections.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| respond(s.clone(), peer.ip(), req));
                    let io = hyper_util::rt::TokioIo::new(sock);
                    if let Err(e) = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(30))
                        .serve_connection(io, svc)
                        .await
                    {
                        tracing::debug!("file server connection: {e}");
                    }
                });
            }
        });
        Ok(FileServer { url, served, task })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Bytes written in response bodies, and the furthest file offset sent.
    fn sent(&self) -> (u64, u64) {
        *self.served.sent.lock().unwrap()
    }

    /// Whether anyone asked for the file yet.
    fn fetched(&self) -> bool {
        *self.served.started.lock().unwrap()
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *r.status_mut() = status;
    r
}

/// The first byte a `Range: bytes=N-` (or `N-M`, whose end is ignored: the rest of
/// the file is sent) asks for; `None` without a usable range.
fn range_start(req: &Request<hyper::body::Incoming>) -> Option<u64> {
    let v = req.headers().get(hyper::header::RANGE)?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    let (start, _end) = spec.split_once('-')?;
    start.trim().parse().ok()
}

async fn respond(
    s: Arc<Served>,
    from: std::net::IpAddr,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.uri().path() != s.url_path {
        return Ok(empty(StatusCode::NOT_FOUND));
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Ok(empty(StatusCode::METHOD_NOT_ALLOWED)),
    };
    let start = range_start(&req).filter(|&n| n <= s.size);
    if !head {
        let mut fetcher = s.fetcher.lock().unwrap();
        match *fetcher {
            Some(ip) if ip != from => return Ok(empty(StatusCode::FORBIDDEN)),
            Some(_) if start.is_none() && s.sent.lock().unwrap().1 == s.size => return Ok(empty(StatusCode::GONE)),
            Some(_) => {}
            None => *fetcher = Some(from),
        }
    }
    let offset = start.unwrap_or(0);
    let resp = headers(s.size, start);
    if head {
        return Ok(resp);
    }
    let mut file = match tokio::fs::File::open(&s.path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("cannot serve {}: {e}", s.path.display());
            return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
        }
    };
    if offset > 0 && file.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
    }
    {
        let mut started = s.started.lock().unwrap();
        if !*started {
            *started = true;
            s.t.record_started(s.id, super::Started { route: Route::Oob, protocol: None, streamhost: None, offset });
        }
    }
    let (parts, _) = resp.into_parts();
    Ok(Response::from_parts(parts, body(&s, file, offset)))
}

/// The response head for the whole file of `size` bytes, or from byte `start` on.
fn headers(size: u64, start: Option<u64>) -> Response<Body> {
    let offset = start.unwrap_or(0);
    let mut resp = empty(if start.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK });
    let h = resp.headers_mut();
    h.insert(hyper::header::CONTENT_LENGTH, (size - offset).into());
    h.insert(hyper::header::ACCEPT_RANGES, hyper::header::HeaderValue::from_static("bytes"));
    h.insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/octet-stream"));
    if start.is_some() {
        let cr = format!("bytes {offset}-{}/{}", size.saturating_sub(1), size);
        h.insert(hyper::header::CONTENT_RANGE, cr.parse().expect("ascii"));
    }
    resp
}

/// The file from `offset` to its end as a response body, counting what goes out.
fn body(s: &Arc<Served>, file: tokio::fs::File, offset: u64) -> Body {
    let limit = s.size - offset;
    let counter = s.clone();
    let mut pos = offset;
    let stream = tokio_util::io::ReaderStream::with_capacity(tokio::io::AsyncReadExt::take(file, limit), 256 * 1024)
        .map(move |chunk| {
            chunk.map(|c| {
                pos += c.len() as u64;
                let mut sent = counter.sent.lock().unwrap();
                sent.0 += c.len() as u64;
                sent.1 = sent.1.max(pos);
                counter.progress.lock().unwrap().update(sent.1);
                Frame::data(c)
            })
        });
    BodyExt::boxed(StreamBody::new(stream))
}

impl Transfers {
    /// Sends `path` to `to` by `jabber:iq:oob`: serves it on a one-time URL and asks
    /// the contact to fetch it (needs [`super::TransferConfig::serve_http`]). A bare
    /// `to` gets the first online resource that advertises `jabber:iq:oob`.
    pub async fn send_by_oob(&self, to: &Jid, path: &Path, description: Option<String>) -> Result<i64, TransferError> {
        let cfg = self.cfg();
        if !cfg.serve_http {
            return Err(TransferError::Other(
                "serving files from this computer (jabber:iq:oob) is turned off in the settings".into(),
            ));
        }
        let (name, size) = super::upload::source(path).await?;
        let path = std::fs::canonicalize(path)
            .map_err(|e| TransferError::Source { path: path.display().to_string(), reason: e.to_string() })?;
        let target = self.oob_resource(to).await?;
        let ip = super::s5b::local_addresses(&cfg.streamhost_addrs)[0];
        let id = self.record_outgoing(SID_PREFIX, &target, &path, &name, size, &description)?;
        let server = FileServer::start(self, id, ip, &path, &name, size)
            .await
            .map_err(|e| TransferError::Other(format!("cannot serve the file on {ip}: {e}")))?;
        self.emit(Event::TransferOffered {
            id,
            direction: crate::store::Direction::Outgoing,
            peer: target.to_string(),
            name: name.clone(),
            size,
            description: description.clone(),
            resume_from: 0,
            files: None,
        });
        let offer = ServedOffer { id, name, size, path, target, description, server };
        let t = self.clone();
        tokio::spawn(async move { t.serve(offer).await });
        Ok(id)
    }

    /// Asks the contact to fetch the served file and waits for the answer (or a
    /// cancel, an unfetched link, a fetch that stalls), then records the outcome.
    async fn serve(&self, o: ServedOffer) {
        let Some(mut cancel) = self.claim(o.id) else { return };
        let started = Instant::now();
        let query = IqOob { url: o.server.url().to_owned(), desc: o.description.clone(), sid: None };
        let iq = Iq::set(format!("oob-{}", o.id), Some(o.target.clone()), Element::from(&query));
        // The contact answers once it has the whole file: the offer's wait for a
        // decision plus the time to fetch it; a day covers both.
        let answer = tokio::select! {
            r = self.inner.client.iq_within(iq, Some(Duration::from_secs(24 * 3600))) => FetchEnd::Answer(r),
            _ = cancel.cancelled() => FetchEnd::Cancelled,
            _ = o.unfetched(self.cfg().offer_timeout) => FetchEnd::Unfetched,
            at = o.stalled() => FetchEnd::Stalled(at),
        };
        let (bytes, furthest) = o.server.sent();
        drop(cancel);
        let (id, size, target) = (o.id, o.size, &o.target);
        let fail = |reason, why: String| self.fail(id, &o.name, Failure::new(reason, why, false));
        match answer {
            FetchEnd::Stalled(at) => {
                let secs = super::s5b::WRITE_TIMEOUT.as_secs();
                fail(
                    FailReason::Timeout,
                    format!("{target} stopped fetching after {at} of {size} bytes (nothing for {secs} s)"),
                )
            }
            FetchEnd::Unfetched => {
                let secs = self.cfg().offer_timeout.as_secs();
                fail(
                    FailReason::Timeout,
                    format!("{target} did not fetch the file within {secs} s; the link no longer works"),
                )
            }
            FetchEnd::Cancelled => self.cancelled(id, o.name, false),
            FetchEnd::Answer(Ok(_)) if furthest == size => self.record_completed(Completed {
                id,
                name: o.name,
                path: o.path.display().to_string(),
                size,
                bytes,
                md5: None,
                sha256: None,
                route: Route::Oob,
                seconds: started.elapsed().as_secs_f64(),
                verified: crate::store::Verification::None,
            }),
            FetchEnd::Answer(Ok(_)) => fail(
                FailReason::Protocol,
                format!("{target} says it has the file, but fetched only {furthest} of its {size} bytes"),
            ),
            FetchEnd::Answer(Err(ClientError::Stanza { error: e, .. })) if e.condition == Condition::NotAcceptable => {
                self.declined(id, o.name, e.text.clone().unwrap_or_else(|| "declined".into()));
            }
            FetchEnd::Answer(Err(ClientError::Stanza { error: e, .. })) => {
                let why = e.text.clone().unwrap_or_else(|| e.condition.as_str().to_owned());
                fail(FailReason::Refused, format!("{target} could not fetch the file: {why}"))
            }
            FetchEnd::Answer(Err(e)) => fail(FailReason::Network, format!("no answer from {target}: {e}")),
        }
    }

    /// The resource of `to` to ask: `to` itself when full, else the first online
    /// resource advertising `jabber:iq:oob`.
    pub(super) async fn oob_resource(&self, to: &Jid) -> Result<Jid, TransferError> {
        if !to.is_bare() {
            return Ok(to.clone());
        }
        let client = &self.inner.client;
        let online = client.presence_of(to);
        if online.is_empty() {
            return Err(TransferError::Offline(to.to_string()));
        }
        for r in online {
            let Ok(full) = to.with_resource(&r.resource) else { continue };
            let info = client.get(Some(full.clone()), Element::new("query", ns::DISCO_INFO)).await;
            if info
                .ok()
                .flatten()
                .and_then(|el| DiscoInfoResult::try_from(&el).ok())
                .is_some_and(|i| i.has_feature(ns::IQ_OOB))
            {
                return Ok(full);
            }
        }
        Err(TransferError::Other(format!("none of {to}'s online clients takes jabber:iq:oob offers")))
    }
}

/// A file served to one contact, waiting to be fetched.
struct ServedOffer {
    id: i64,
    name: String,
    size: u64,
    path: PathBuf,
    target: Jid,
    description: Option<String>,
    /// Serving stops when this goes.
    server: FileServer,
}

impl ServedOffer {
    /// Resolves when the link expires with the offer: unfetched after `offer_timeout`.
    async fn unfetched(&self, offer_timeout: Duration) {
        tokio::time::sleep(offer_timeout).await;
        if self.server.fetched() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves (with how far it got) when a fetch stops reading before the end: no
    /// progress for a minute, so that it does not hold the file open for a day.
    async fn stalled(&self) -> u64 {
        let mut last = (Instant::now(), 0);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (_, furthest) = self.server.sent();
            if furthest != last.1 || furthest == self.size || !self.server.fetched() {
                last = (Instant::now(), furthest);
            } else if last.0.elapsed() >= super::s5b::WRITE_TIMEOUT {
                return furthest;
            }
        }
    }
}

/// How waiting for the contact's fetch ended.
enum FetchEnd {
    /// The contact's answer to the iq:oob request.
    Answer(Result<Option<Element>, ClientError>),
    Cancelled,
    Unfetched,
    /// The fetch stopped reading after this many bytes.
    Stalled(u64),
}
