//! Receiving files sent as links: XEP-0066 `jabber:x:oob` in a message (how HTTP File
//! Upload users — Conversations, Gajim, Dino — send files), a message whose whole body
//! is a link to a file on the sender's own server (clients that send bare links), and
//! XEP-0066 `jabber:iq:oob` requests (answered only once the whole file is here: an
//! empty result, `item-not-found` when the fetch failed, `not-acceptable` when
//! declined). A link becomes an incoming offer like any other (record, event, the same
//! accept/decline), and an accepted one is fetched into `NAME.part` with progress, its
//! size checked, then renamed. Message links are followed over https only (or http to
//! this machine); an iq:oob URL may also be plain http to a private-network address
//! (that is how clients serve files to a contact on the same network).

use std::time::Instant;

use futures_util::StreamExt;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::oob::{IqOob, XOob};
use skiff_proto::stanza::{Condition, Iq, Message, StanzaError};
use tokio::sync::mpsc;

use super::upload::{check_url, check_url_lan};
use super::{Completed, Decision, Progress, Transfers};
use crate::event::Event;
use crate::files::{self, PartFile};
use crate::store::{Direction, NewTransfer, Route, TransferState};

/// Files larger than this are refused when the server does not say the size.
const UNKNOWN_SIZE_CAP: u64 = 1 << 40;

/// Link offers one message may make; further links in it are ignored.
pub const MAX_LINKS_PER_MESSAGE: usize = 3;

/// A link offered to us, and how it came.
struct Link {
    from: Jid,
    url: String,
    desc: Option<String>,
    /// The `jabber:iq:oob` request to answer once the fetch is over; `None` for links
    /// in messages.
    iq: Option<Iq>,
}

/// Turns every message with a `jabber:x:oob` link (or a bare link to a file on the
/// sender's server) into an incoming offer.
pub(super) async fn message_loop(t: Transfers, mut messages: mpsc::Receiver<Message>) {
    while let Some(m) = messages.recv().await {
        let Some(from) = m.from.clone() else { continue };
        let mut links: Vec<(String, Option<String>)> = Vec::new();
        for p in m.payloads.iter().filter(|p| p.name == "x" && p.ns == ns::X_OOB) {
            match XOob::try_from(p) {
                Ok(oob) => links.push((oob.url, oob.desc)),
                Err(e) => tracing::info!("an unusable link from {from}: {e}"),
            }
        }
        if links.is_empty() {
            links.extend(m.body.as_deref().and_then(|b| bare_link(b, &from)).map(|u| (u, None)));
        }
        // One message makes at most a few offers, each URL once.
        let mut seen = std::collections::HashSet::new();
        links.retain(|(url, _)| seen.insert(url.clone()));
        if links.len() > MAX_LINKS_PER_MESSAGE {
            tracing::info!(
                "{from} sent {} links in one message; taking the first {MAX_LINKS_PER_MESSAGE}",
                links.len()
            );
            links.truncate(MAX_LINKS_PER_MESSAGE);
        }
        for (url, desc) in links {
            tokio::spawn(incoming(t.clone(), Link { from: from.clone(), url, desc, iq: None }));
        }
    }
}

/// Takes every `jabber:iq:oob` request as an incoming offer.
pub(super) async fn iq_loop(t: Transfers, mut iqs: mpsc::Receiver<Iq>) {
    while let Some(iq) = iqs.recv().await {
        let parsed = iq.request_payload().map(IqOob::try_from);
        match (iq.from.clone(), parsed) {
            (Some(from), Some(Ok(oob))) if oob.sid.is_none() => {
                tokio::spawn(incoming(t.clone(), Link { from, url: oob.url, desc: oob.desc, iq: Some(iq) }));
            }
            (_, Some(Ok(_))) => {
                // The SI stream method jabber:iq:oob is not offered by us, so no sid
                // can belong to a transfer of ours.
                let _ = t.inner.client.send(iq.error_for(StanzaError::new(Condition::ItemNotFound)));
            }
            (_, Some(Err(e))) => {
                let _ =
                    t.inner.client.send(iq.error_for(StanzaError::new(Condition::BadRequest).with_text(e.to_string())));
            }
            (_, None) => {}
        }
    }
}

/// A message body that is only a link to a file on the sender's own server (the host
/// is their domain or under it, as upload services are): the URL, else `None`.
pub fn bare_link(body: &str, from: &Jid) -> Option<String> {
    let body = body.trim();
    if body.is_empty() || body.contains(char::is_whitespace) {
        return None;
    }
    let url = check_url(body).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    let domain = from.domain().to_ascii_lowercase();
    let own_server = host == domain || host.ends_with(&format!(".{domain}"));
    let file = url.path_segments().and_then(|mut s| s.next_back()).is_some_and(|last| !last.is_empty());
    (own_server && file).then(|| url.to_string())
}

/// The file name a link points at: its last path segment, decoded and made safe.
pub fn name_of(url: &reqwest::Url) -> String {
    let last = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    files::sanitize_file_name(if decoded.trim().is_empty() { "download" } else { &decoded })
}

async fn incoming(t: Transfers, link: Link) {
    let Link { from, url, desc, iq } = link;
    // A place among the offers waiting for an answer, held until this one is answered.
    let slot = match t.admit(&from) {
        Ok(slot) => slot,
        Err(r) => {
            if let Some(iq) = iq {
                let _ = t.inner.client.send(iq.error_for(StanzaError::new(r.condition).with_text(r.text)));
            }
            return;
        }
    };
    let checked = if iq.is_some() { check_url_lan(&url) } else { check_url(&url) };
    let name = match &checked {
        Ok(u) => name_of(u),
        Err(_) => files::sanitize_file_name(url.rsplit('/').next().unwrap_or("download")),
    };
    // The iq:oob answer, sent when this function returns, whichever way.
    let mut answer = IqAnswer { t: t.clone(), iq, error: Some(StanzaError::new(Condition::ItemNotFound)) };
    let http = t.http();
    // Nothing goes out for a link before it is accepted (a request tells its server
    // our address and that we are online), except the size lookup (HEAD) for a
    // contact's link to their own server. Otherwise the size is unknown (0) until the
    // download says it.
    let bare = from.bare().to_string();
    let contact = t.client().roster().iter().any(|c| c.jid == bare);
    let own_server =
        checked.as_ref().ok().and_then(|u| u.host_str()).is_some_and(|h| super::urlpolicy::is_under(h, from.domain()));
    let size = match (&checked, &http) {
        (Ok(u), Ok(h)) if contact && own_server => match h.head(u.clone()).send().await {
            // The header itself: a HEAD response has no body to size.
            Ok(r) if r.status().is_success() => r
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
            _ => 0,
        },
        _ => 0,
    };
    let store = &t.inner.store;
    let id = match store.insert(&NewTransfer {
        sid: format!("oob-{}", super::outgoing::random_sid()),
        direction: Direction::Incoming,
        account: t.inner.account.clone(),
        peer_jid: from.to_string(),
        file_name: name.clone(),
        local_path: None,
        size,
        md5: None,
        date: None,
        description: desc.clone(),
        state: TransferState::Offered,
    }) {
        Ok(id) => id,
        Err(e) => {
            answer.error = Some(StanzaError::new(Condition::InternalServerError));
            return tracing::warn!("history: {e}");
        }
    };
    // A link in a message can be fetched again later (resume); an iq:oob request is
    // answered once and not.
    if answer.iq.is_none() {
        let _ = store.set_url(id, &url);
    }
    let asked = t.ask(id);
    t.emit(Event::TransferOffered {
        id,
        direction: "incoming".into(),
        peer: from.to_string(),
        name: name.clone(),
        size,
        description: desc.clone(),
        resume_from: 0,
    });
    let (url, http) = match (checked, http) {
        (Ok(u), Ok(h)) => (u, h),
        (Err(e), _) | (_, Err(e)) => {
            t.inner.decisions.lock().unwrap().remove(&id);
            answer.error = Some(StanzaError::new(Condition::NotAcceptable).with_text(e.clone()));
            return t.fail(id, &name, &e, false);
        }
    };
    let decision = t.answer(id, &from, asked).await;
    drop(slot);
    let dir = match decision {
        Decision::Reject => {
            answer.error = Some(StanzaError::new(Condition::NotAcceptable).with_text("declined"));
            let _ = store.set_state(id, TransferState::Rejected, Some("declined"));
            return t.emit(Event::TransferRejected { id, name, reason: "declined".into() });
        }
        Decision::Accept(dir) => dir.unwrap_or_else(|| t.cfg().download_dir.clone()),
    };
    if let Err(sentence) = files::check_free_space(&dir, size) {
        answer.error = Some(StanzaError::new(Condition::ResourceConstraint).with_text("not enough disk space"));
        return t.fail(id, &name, &sentence, false);
    }
    let resumable = answer.iq.is_none();
    let final_path = files::unique_path(&dir, &name);
    match run(&t, id, &name, &http, url, final_path, 0, size, resumable).await {
        Ok(()) => answer.error = None,
        Err(e) => answer.error = Some(StanzaError::new(Condition::ItemNotFound).with_text(e)),
    }
}

/// Fetches link `id` into `final_path` from byte `have` on, records and announces the
/// outcome. A download that broke off (or was cancelled) keeps its `.part` for
/// [`resume`] when `resumable`; anything else leaves no file.
#[allow(clippy::too_many_arguments)]
async fn run(
    t: &Transfers,
    id: i64,
    name: &str,
    http: &reqwest::Client,
    url: reqwest::Url,
    final_path: std::path::PathBuf,
    have: u64,
    size: u64,
    resumable: bool,
) -> Result<(), String> {
    let Some(mut cancel) = t.claim(id) else { return Err("already running".into()) };
    let _ = t.inner.store.set_local_path(id, &final_path.display().to_string());
    let started = Instant::now();
    let part_path = files::part_path(&final_path);
    let result = tokio::select! {
        r = fetch(t, id, http, url, final_path, have, size) => r,
        _ = cancel.cancelled() => Err(Broken { error: "cancelled".to_owned(), kept: true }),
    };
    drop(cancel);
    match result {
        Ok(done) => {
            t.record_completed(Completed { seconds: started.elapsed().as_secs_f64(), ..done });
            Ok(())
        }
        Err(Broken { error, kept }) => {
            let held = tokio::fs::metadata(&part_path).await.map(|m| m.len()).unwrap_or(0);
            let keep = kept && resumable && held > 0;
            if keep {
                let _ = t.inner.store.set_progress(id, held);
            } else {
                let _ = tokio::fs::remove_file(&part_path).await;
            }
            t.fail(id, name, &error, keep);
            Err(error)
        }
    }
}

/// Fetches an interrupted link again from where its `.part` stops (HTTP Range; a
/// server that ignores the range sends the whole file, which then starts over).
pub(super) async fn resume(t: &Transfers, rec: crate::store::TransferRecord) -> Result<i64, super::TransferError> {
    use super::TransferError::NotResumable;
    let id = rec.id;
    let not = |reason: &str| NotResumable { id, reason: reason.to_owned() };
    let url = rec.url.as_deref().ok_or_else(|| not("the link it came from is unknown"))?;
    let url = check_url(url).map_err(|e| not(&e))?;
    let final_path = std::path::PathBuf::from(rec.local_path.ok_or_else(|| not("it never started"))?);
    if t.is_active(id) {
        return Err(super::TransferError::AlreadyActive(id));
    }
    let have = tokio::fs::metadata(files::part_path(&final_path)).await.map(|m| m.len()).unwrap_or(0);
    let http = t.http().map_err(super::TransferError::Other)?;
    let (t, name, size) = (t.clone(), rec.file_name, rec.size);
    t.inner.store.set_state(id, TransferState::Accepted, None)?;
    tokio::spawn(async move {
        let _ = run(&t, id, &name, &http, url, final_path, have, size, true).await;
    });
    Ok(id)
}

/// Answers a `jabber:iq:oob` request when dropped: a result when `error` is `None`
/// (the file is here), else the error. Dropping also covers early returns.
struct IqAnswer {
    t: Transfers,
    iq: Option<Iq>,
    error: Option<StanzaError>,
}

impl Drop for IqAnswer {
    fn drop(&mut self) {
        if let Some(iq) = self.iq.take() {
            let reply = match self.error.take() {
                None => iq.result_for(None),
                Some(e) => iq.error_for(e),
            };
            let _ = self.t.inner.client.send(reply);
        }
    }
}

/// Why a download ended early; `kept` when the `.part` holds data worth resuming.
struct Broken {
    error: String,
    kept: bool,
}

impl From<String> for Broken {
    fn from(error: String) -> Broken {
        Broken { error, kept: false }
    }
}

/// The first byte and the total of a `Content-Range: bytes START-END/TOTAL`.
fn content_range(resp: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let v = resp.headers().get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = v.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// Downloads `url` into `final_path`'s `.part` (from byte `have` on when the server
/// honours the range), checking the size, then renames it.
async fn fetch(
    t: &Transfers,
    id: i64,
    http: &reqwest::Client,
    url: reqwest::Url,
    final_path: std::path::PathBuf,
    have: u64,
    announced: u64,
) -> Result<Completed, Broken> {
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(dir) = final_path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut req = http.get(url.clone());
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let resp = req.send().await.map_err(|e| Broken { error: describe(&e, &url), kept: have > 0 })?;
    let status = resp.status();
    // Where this response starts, and the whole file's size as far as it tells.
    let (offset, size) = if status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0 {
        match content_range(&resp) {
            Some((start, total)) if start == have => (have, total.or(resp.content_length().map(|n| n + have))),
            _ => return Err(format!("the server sent another part of {name} than the one asked for").into()),
        }
    } else if status.is_success() {
        (0, resp.content_length())
    } else {
        return Err(Broken { error: format!("the server answered {status} for {url}"), kept: have > 0 });
    };
    let size = match (size, announced) {
        (Some(n), a) if a != 0 && n != a => {
            return Err(format!("the server gave two sizes for {name}: {a} and then {n} bytes").into());
        }
        (Some(n), _) => Some(n),
        (None, 0) => None,
        (None, a) => Some(a),
    };
    if let (Some(n), 0) = (size, announced) {
        let _ = t.inner.store.set_size(id, n);
        if let Some(dir) = final_path.parent() {
            files::check_free_space(dir, n.saturating_sub(offset)).map_err(Broken::from)?;
        }
    }
    t.record_started(id, Route::Oob, None, offset);
    let expected = size.unwrap_or(UNKNOWN_SIZE_CAP);
    let part = if have > 0 || offset > 0 {
        PartFile::resume(final_path, offset, expected).await
    } else {
        PartFile::create(final_path, expected).await
    };
    let part = part.map_err(|e| format!("cannot create the file: {e}"))?;
    download(t, id, resp, part, size, &name).await
}

async fn download(
    t: &Transfers,
    id: i64,
    resp: reqwest::Response,
    mut part: PartFile,
    size: Option<u64>,
    name: &str,
) -> Result<Completed, Broken> {
    let start = part.written();
    let mut progress = Progress::new(t, id, size.unwrap_or(0), start);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let error = match size {
                    Some(n) => format!("the server sent {} of the {n} bytes it announced ({e})", part.written()),
                    None => format!("the download broke off after {} bytes: {e}", part.written()),
                };
                // What arrived stays for a resume (when the size is known).
                let kept = size.is_some() && part.flush().await.is_ok();
                return Err(Broken { error, kept });
            }
        };
        part.write(&chunk).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                format!("the server sent more than the {} bytes it announced", size.unwrap_or(0))
            }
            _ => format!("cannot write the file: {e}"),
        })?;
        progress.update(part.written());
    }
    if size.is_none() {
        part.expect_size(part.written());
    }
    let got = part.written();
    if let Some(n) = size.filter(|&n| got < n) {
        // The body ended early without an error: keep what came, for a resume.
        let kept = part.flush().await.is_ok();
        return Err(Broken { error: format!("the server sent {got} of the {n} bytes it announced"), kept });
    }
    let finished = part.finish(None).await.map_err(|e| e.to_string())?;
    Ok(Completed {
        id,
        name: name.to_owned(),
        path: finished.path.display().to_string(),
        size: finished.size,
        bytes: finished.size - start,
        md5: Some(finished.hashes.md5),
        sha256: Some(finished.hashes.sha256),
        route: Route::Oob,
        seconds: 0.0,
    })
}

fn describe(e: &reqwest::Error, url: &reqwest::Url) -> String {
    // A refusal by the URL policy (a redirect, a name resolving inwards) says why.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.contains("refusing") {
            return text;
        }
        source = s.source();
    }
    if e.is_redirect() {
        format!("{url} redirects too often (a redirect loop?)")
    } else if e.is_connect() {
        format!("cannot connect to {}: {e}", url.host_str().unwrap_or("?"))
    } else if e.is_timeout() {
        format!("{url} did not answer in time")
    } else {
        format!("cannot fetch {url}: {e}")
    }
}
