//! Receiving files sent as links: XEP-0066 `jabber:x:oob` in a message (how HTTP File
//! Upload users — Conversations, Gajim, Dino — send files), a message whose whole body
//! is a link to a file on the sender's own server (clients that send bare links), and
//! XEP-0066 `jabber:iq:oob` requests (answered only once the whole file is here: an
//! empty result, `item-not-found` when the fetch failed, `not-acceptable` when
//! declined). A link becomes an incoming offer like any other (record, event, the same
//! accept/decline), and an accepted one is fetched into `NAME.part` with progress, its
//! size checked, then renamed. Message links are followed over https only (or http to
//! this machine), never to a literal local-network address; a contact's iq:oob URL may
//! also be plain http to a private-network address (that is how clients serve files to
//! a contact on the same network).
//!
//! Consent before network: nothing is requested for a link before it is accepted (a
//! request would tell the link's server our address and that we are online, and one
//! message could make many), except the size lookup (HEAD) for a roster contact's link
//! to their own server. Otherwise the offer's size is unknown ([`SIZE_UNKNOWN`]) until
//! the download's `Content-Length` tells it; a size announced earlier is still checked
//! against it. Every hop and every resolved address is checked (`urlpolicy`).

use std::time::Instant;

use futures_util::StreamExt;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::oob::{IqOob, XOob};
use skiff_proto::stanza::{Condition, Iq, Message, StanzaError};
use tokio::sync::mpsc;

use super::upload::{check_url, check_url_lan};
use super::{Completed, Decision, FailReason, Failure, Progress, Transfers};
use crate::event::Event;
use crate::files::{self, PartFile};
use crate::store::{Direction, NewTransfer, Route, TransferState};

/// Files larger than this are refused when the server does not say the size.
const UNKNOWN_SIZE_CAP: u64 = 1 << 40;

/// The size of an offer whose size nobody told yet (`Event::TransferOffered.size`, the
/// record's `size`): a link not looked up before acceptance.
pub const SIZE_UNKNOWN: u64 = 0;

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
        for (url, desc) in links_in(&m, &from) {
            tokio::spawn(incoming(t.clone(), Link { from: from.clone(), url, desc, iq: None }));
        }
    }
}

/// The links a message offers (URL, description): its `jabber:x:oob` elements, else a
/// body that is only a link to a file on the sender's server; each URL once, at most
/// [`MAX_LINKS_PER_MESSAGE`] (the rest ignored with one log line).
pub fn links_in(m: &Message, from: &Jid) -> Vec<(String, Option<String>)> {
    let mut links: Vec<(String, Option<String>)> = Vec::new();
    for p in m.payloads.iter().filter(|p| p.name == "x" && p.ns == ns::X_OOB) {
        match XOob::try_from(p) {
            Ok(oob) => links.push((oob.url, oob.desc)),
            Err(e) => tracing::info!("an unusable link from {from}: {e}"),
        }
    }
    if links.is_empty() {
        links.extend(m.body.as_deref().and_then(|b| bare_link(b, from)).map(|u| (u, None)));
    }
    // One message makes at most a few offers, each URL once.
    let mut seen = std::collections::HashSet::new();
    links.retain(|(url, _)| seen.insert(url.clone()));
    if links.len() > MAX_LINKS_PER_MESSAGE {
        tracing::info!("{from} sent {} links in one message; taking the first {MAX_LINKS_PER_MESSAGE}", links.len());
        links.truncate(MAX_LINKS_PER_MESSAGE);
    }
    links
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
    let contact = t.is_contact(&from);
    let (checked, name) = check_link(&url, iq.is_some() && contact);
    // The iq:oob answer, sent when this function returns, whichever way.
    let mut answer = IqAnswer { t: t.clone(), iq, error: Some(StanzaError::new(Condition::ItemNotFound)) };
    let http = t.http();
    let size = match (&checked, &http) {
        (Ok(u), Ok(h)) if contact => size_from_own_server(h, u, &from).await,
        _ => SIZE_UNKNOWN,
    };
    let id = match record_link(&t, &from, &name, size, &desc, answer.iq.is_none().then_some(&url)) {
        Ok(id) => id,
        Err(e) => {
            answer.error = Some(StanzaError::new(Condition::InternalServerError));
            return tracing::warn!("history: {e}");
        }
    };
    let asked = t.ask(id);
    t.emit(Event::TransferOffered {
        id,
        direction: Direction::Incoming,
        peer: from.to_string(),
        name: name.clone(),
        size,
        description: desc.clone(),
        resume_from: 0,
        files: None,
    });
    let (url, http) = match (checked, http) {
        (Ok(u), Ok(h)) => (u, h),
        (Err(e), _) | (_, Err(e)) => {
            t.inner.decisions.lock().unwrap().remove(&id);
            answer.error = Some(StanzaError::new(Condition::NotAcceptable).with_text(e.clone()));
            return t.fail(id, &name, Failure::new(FailReason::Policy, e, false));
        }
    };
    let decision = t.answer(id, &from, asked).await;
    drop(slot);
    let dir = match decision {
        Decision::Reject => {
            answer.error = Some(StanzaError::new(Condition::NotAcceptable).with_text("declined"));
            return t.declined(id, name, "declined".into());
        }
        Decision::Accept(dir) => dir.unwrap_or_else(|| t.cfg().download_dir.clone()),
    };
    fetch_accepted(&t, id, &name, &http, url, &dir, size, &mut answer).await;
}

/// The URL of a link as the policy allows it (or why not), and the file name it gives.
/// Plain http into the local network only for a contact's iq:oob URL (`lan`: a client
/// serving from its own machine); a stranger's link may not point us there at all.
fn check_link(url: &str, lan: bool) -> (Result<reqwest::Url, String>, String) {
    let checked = if lan { check_url_lan(url) } else { check_url(url) }
        .and_then(|u| super::urlpolicy::link_target_allowed(&u, lan).map(|()| u));
    let name = match &checked {
        Ok(u) => name_of(u),
        Err(_) => files::sanitize_file_name(url.rsplit('/').next().unwrap_or("download")),
    };
    (checked, name)
}

/// An accepted link: room for it checked, then fetched into `dir`; the iq:oob
/// `answer` says how it went.
#[allow(clippy::too_many_arguments)]
async fn fetch_accepted(
    t: &Transfers,
    id: i64,
    name: &str,
    http: &reqwest::Client,
    url: reqwest::Url,
    dir: &std::path::Path,
    size: u64,
    answer: &mut IqAnswer,
) {
    if let Err(sentence) = files::check_free_space(dir, size) {
        answer.error = Some(StanzaError::new(Condition::ResourceConstraint).with_text("not enough disk space"));
        return t.fail(id, name, Failure::new(FailReason::Storage, sentence, false));
    }
    let resumable = answer.iq.is_none();
    let final_path = files::unique_path(dir, name);
    match run(t, id, name, http, url, final_path, 0, size, resumable).await {
        Ok(()) => answer.error = None,
        Err(e) => answer.error = Some(StanzaError::new(Condition::ItemNotFound).with_text(e)),
    }
}

/// The size of a contact's link, asked of the server it points to (HEAD) when that is
/// the contact's own server: nothing else goes out for a link before it is accepted (a
/// request tells its server our address and that we are online). Otherwise, or when
/// the server does not say, the size is unknown until the download tells it.
async fn size_from_own_server(http: &reqwest::Client, url: &reqwest::Url, from: &Jid) -> u64 {
    if !url.host_str().is_some_and(|h| super::urlpolicy::is_under(h, from.domain())) {
        return SIZE_UNKNOWN;
    }
    match http.head(url.clone()).send().await {
        // The header itself: a HEAD response has no body to size.
        Ok(r) if r.status().is_success() => r
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(SIZE_UNKNOWN),
        _ => SIZE_UNKNOWN,
    }
}

/// A new incoming link in the history; with `url` (a link in a message, not an iq:oob
/// request, which is answered once) it can be fetched again later.
fn record_link(
    t: &Transfers,
    from: &Jid,
    name: &str,
    size: u64,
    desc: &Option<String>,
    url: Option<&String>,
) -> Result<i64, crate::store::StoreError> {
    let store = &t.inner.store;
    let id = store.insert(&NewTransfer {
        sid: format!("oob-{}", super::outgoing::random_sid()),
        direction: Direction::Incoming,
        account: t.inner.account.clone(),
        peer_jid: from.to_string(),
        file_name: name.to_owned(),
        local_path: None,
        size,
        md5: None,
        date: None,
        description: desc.clone(),
        state: TransferState::Offered,
        files: None,
        rel_path: None,
    })?;
    if let Some(url) = url {
        let _ = store.set_url(id, url);
    }
    Ok(id)
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
        _ = cancel.cancelled() => Err(Broken { reason: FailReason::Cancelled, error: "cancelled".to_owned(), kept: true }),
    };
    drop(cancel);
    match result {
        Ok(done) => {
            t.record_completed(Completed { seconds: started.elapsed().as_secs_f64(), ..done });
            Ok(())
        }
        Err(Broken { reason, error, kept }) => {
            let held = tokio::fs::metadata(&part_path).await.map(|m| m.len()).unwrap_or(0);
            let keep = kept && resumable && held > 0;
            if keep {
                let _ = t.inner.store.set_progress(id, held);
            } else {
                let _ = tokio::fs::remove_file(&part_path).await;
            }
            t.fail(id, name, Failure::new(reason, error.clone(), keep));
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
    let url = check_url(url)
        .and_then(|u| super::urlpolicy::link_target_allowed(&u, false).map(|()| u))
        .map_err(|e| not(&e))?;
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
    reason: FailReason,
    error: String,
    kept: bool,
}

impl Broken {
    /// Nothing worth resuming from.
    fn lost(reason: FailReason, error: impl Into<String>) -> Broken {
        Broken { reason, error: error.into(), kept: false }
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
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| Broken::lost(FailReason::Storage, format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut req = http.get(url.clone());
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let resp = req.send().await.map_err(|e| Broken {
        reason: FailReason::Network,
        error: describe(&e, &url),
        kept: have > 0,
    })?;
    let (offset, size) = response_span(&resp, &url, &name, have, announced)?;
    if let (Some(n), 0) = (size, announced) {
        let _ = t.inner.store.set_size(id, n);
        if let Some(dir) = final_path.parent() {
            files::check_free_space(dir, n.saturating_sub(offset)).map_err(|e| Broken::lost(FailReason::Storage, e))?;
        }
    }
    t.record_started(id, super::Started { route: Route::Oob, protocol: None, streamhost: None, offset });
    let expected = size.unwrap_or(UNKNOWN_SIZE_CAP);
    let part = if have > 0 || offset > 0 {
        PartFile::resume(final_path, offset, expected).await
    } else {
        PartFile::create(final_path, expected).await
    };
    let part = part.map_err(|e| Broken::lost(FailReason::Storage, format!("cannot create the file: {e}")))?;
    download(t, id, resp, part, size, &name).await
}

/// Where response `resp` to a request for `url` from byte `have` starts, and the whole
/// file's size as far as it and the offer (`announced`, 0 = unknown) tell.
fn response_span(
    resp: &reqwest::Response,
    url: &reqwest::Url,
    name: &str,
    have: u64,
    announced: u64,
) -> Result<(u64, Option<u64>), Broken> {
    let status = resp.status();
    let (offset, size) = if status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0 {
        match content_range(resp) {
            Some((start, total)) if start == have => (have, total.or(resp.content_length().map(|n| n + have))),
            _ => {
                let error = format!("the server sent another part of {name} than the one asked for");
                return Err(Broken::lost(FailReason::Protocol, error));
            }
        }
    } else if status.is_success() {
        (0, resp.content_length())
    } else {
        let error = format!("the server answered {status} for {url}");
        return Err(Broken { reason: FailReason::Refused, error, kept: have > 0 });
    };
    let size = match (size, announced) {
        (Some(n), a) if a != 0 && n != a => {
            let error = format!("the server gave two sizes for {name}: {a} and then {n} bytes");
            return Err(Broken::lost(FailReason::Protocol, error));
        }
        (Some(n), _) => Some(n),
        (None, 0) => None,
        (None, a) => Some(a),
    };
    Ok((offset, size))
}

/// The response body into `part`, as it comes.
async fn receive_body(
    resp: reqwest::Response,
    part: &mut PartFile,
    size: Option<u64>,
    progress: &mut Progress,
) -> Result<(), Broken> {
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
                return Err(Broken { reason: FailReason::Network, error, kept });
            }
        };
        part.write(&chunk).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                let error = format!("the server sent more than the {} bytes it announced", size.unwrap_or(0));
                Broken::lost(FailReason::Protocol, error)
            }
            _ => Broken::lost(FailReason::Storage, format!("cannot write the file: {e}")),
        })?;
        progress.update(part.written());
    }
    Ok(())
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
    receive_body(resp, &mut part, size, &mut progress).await?;
    if size.is_none() {
        part.expect_size(part.written());
    }
    let got = part.written();
    if let Some(n) = size.filter(|&n| got < n) {
        // The body ended early without an error: keep what came, for a resume.
        let kept = part.flush().await.is_ok();
        let error = format!("the server sent {got} of the {n} bytes it announced");
        return Err(Broken { reason: FailReason::Network, error, kept });
    }
    let finished = part.finish(None).await.map_err(|e| {
        let reason = match e {
            files::VerifyError::Io(_) => FailReason::Storage,
            _ => FailReason::Integrity,
        };
        Broken::lost(reason, e.to_string())
    })?;
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
        // A link carries no digest: only the size was checked.
        verified: finished.verified,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::{AcceptPolicy, StrangerPolicy, TransferConfig};
    use skiff_proto::xml::Element;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn message(urls: &[&str]) -> Message {
        let mut m = Message {
            id: None,
            from: Some(jid("mallory@evil.example/x")),
            to: None,
            kind: "chat".into(),
            body: Some(urls.join("\n")),
            payloads: Vec::new(),
        };
        for u in urls {
            m.payloads.push(Element::new("x", ns::X_OOB).with_child(Element::new("url", ns::X_OOB).with_text(*u)));
        }
        m
    }

    #[test]
    fn a_message_offers_at_most_three_links_each_once() {
        let from = jid("mallory@evil.example/x");
        let many: Vec<String> = (0..200).map(|i| format!("https://evil.example/f{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let links = links_in(&message(&many), &from);
        assert_eq!(links.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(), many[..3]);
        let same = ["https://evil.example/a"; 50];
        assert_eq!(links_in(&message(&same), &from).len(), 1);
        let mixed = ["https://evil.example/a", "https://evil.example/a", "https://evil.example/b"];
        assert_eq!(links_in(&message(&mixed), &from).len(), 2);
        // A bare link in the body only when it is on the sender's own server.
        let mut bare = message(&[]);
        bare.body = Some("https://upload.evil.example/f.jpg".into());
        assert_eq!(links_in(&bare, &from).len(), 1);
        bare.body = Some("https://elsewhere.example/f.jpg".into());
        assert!(links_in(&bare, &from).is_empty());
    }

    /// An engine whose session never connects (nothing listens on port 1), with no
    /// roster: everyone is a stranger.
    fn offline_engine(cfg: impl FnOnce(&mut TransferConfig)) -> Transfers {
        let me = jid("alice@localhost/t");
        let mut account = crate::AccountConfig::new(me.clone(), crate::Secret::new("x"));
        account.server = Some(("127.0.0.1".into(), 1));
        account.reconnect = false;
        let client = crate::Client::start(account);
        let store = std::sync::Arc::new(crate::store::Store::open_in_memory().unwrap());
        let mut c = TransferConfig::new(std::env::temp_dir());
        c.accept = AcceptPolicy::Ask;
        cfg(&mut c);
        Transfers::start(client, store, c, &me).unwrap()
    }

    #[tokio::test]
    async fn offers_waiting_are_capped_per_peer_and_in_total() {
        let t = offline_engine(|c| {
            c.max_pending_per_peer = 2;
            c.max_pending = 3;
        });
        let mut events = t.client().events();
        let (mallory, eve) = (jid("mallory@evil.example/a"), jid("eve@evil.example/b"));
        let m1 = t.admit(&mallory).unwrap();
        let _m2 = t.admit(&jid("mallory@evil.example/other")).unwrap();
        // A third from mallory (any resource): over the cap per peer.
        for _ in 0..10 {
            let r = t.admit(&mallory).err().unwrap();
            assert_eq!(r.condition, Condition::ResourceConstraint);
        }
        let _e1 = t.admit(&eve).unwrap();
        // Three wait now: eve's second is over the cap in total.
        assert_eq!(t.admit(&eve).err().unwrap().condition, Condition::ResourceConstraint);
        assert_eq!(t.pending_offers(), 3);
        // An answered offer gives its place back.
        drop(m1);
        assert_eq!(t.pending_offers(), 2);
        let _e2 = t.admit(&eve).unwrap();
        assert_eq!(t.pending_offers(), 3);

        // One summary per peer for the burst, with the count, about a second later.
        let mut summaries = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1800);
        while let Ok(Ok(e)) = tokio::time::timeout_at(deadline, events.recv()).await {
            if let Event::OffersRefused { peer, count, .. } = e {
                summaries.push((peer, count));
            }
        }
        summaries.sort();
        assert_eq!(summaries, vec![("eve@evil.example".to_owned(), 1), ("mallory@evil.example".to_owned(), 10)]);
        // A later refusal starts a new burst.
        assert!(t.admit(&mallory).is_err());
        let e = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            loop {
                if let Ok(Event::OffersRefused { peer, count, .. }) = events.recv().await {
                    return (peer, count);
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(e, ("mallory@evil.example".to_owned(), 1));
    }

    #[tokio::test]
    async fn strangers_are_refused_at_once_when_set() {
        let t = offline_engine(|c| c.strangers = StrangerPolicy::Refuse);
        let r = t.admit(&jid("mallory@evil.example/a")).err().unwrap();
        assert_eq!(r.condition, Condition::Forbidden);
        assert_eq!(t.pending_offers(), 0);
        // "Only contacts" needs no record of a stranger's offer either.
        let t = offline_engine(|c| c.accept = AcceptPolicy::Contacts);
        assert_eq!(t.admit(&jid("mallory@evil.example/a")).err().unwrap().condition, Condition::Forbidden);
        // Accepting everyone: nothing waits, nothing is capped.
        let t = offline_engine(|c| {
            c.accept = AcceptPolicy::All;
            c.max_pending_per_peer = 1;
        });
        for _ in 0..3 {
            assert!(t.admit(&jid("mallory@evil.example/a")).unwrap().is_none());
        }
    }
}
