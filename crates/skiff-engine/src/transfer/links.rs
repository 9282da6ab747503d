//! Receiving files sent as links (XEP-0066 `jabber:x:oob` in a message): how HTTP
//! File Upload users (Conversations, Gajim, Dino) send files. A link becomes an
//! incoming offer like any other (record, event, the same accept/decline), and an
//! accepted one is fetched over HTTPS into `NAME.part` with progress, its size
//! checked, then renamed. Only https links, or http to this machine, are followed.

use std::time::Instant;

use futures_util::StreamExt;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::oob::XOob;
use skiff_proto::stanza::Message;
use tokio::sync::mpsc;

use super::upload::check_url;
use super::{Completed, Decision, Progress, Transfers};
use crate::event::Event;
use crate::files::{self, PartFile};
use crate::store::{Direction, NewTransfer, Route, TransferState};

/// Files larger than this are refused when the server does not say the size.
const UNKNOWN_SIZE_CAP: u64 = 1 << 40;

/// Turns every message with a `jabber:x:oob` link into an incoming offer.
pub(super) async fn message_loop(t: Transfers, mut messages: mpsc::Receiver<Message>) {
    while let Some(m) = messages.recv().await {
        let Some(from) = m.from.clone() else { continue };
        for p in m.payloads.iter().filter(|p| p.name == "x" && p.ns == ns::X_OOB) {
            match XOob::try_from(p) {
                Ok(oob) => {
                    tokio::spawn(incoming(t.clone(), from.clone(), oob));
                }
                Err(e) => tracing::info!("an unusable link from {from}: {e}"),
            }
        }
    }
}

/// The file name a link points at: its last path segment, decoded and made safe.
pub fn name_of(url: &reqwest::Url) -> String {
    let last = url.path_segments().and_then(|mut s| s.next_back()).unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(last).decode_utf8_lossy();
    files::sanitize_file_name(if decoded.trim().is_empty() { "download" } else { &decoded })
}

async fn incoming(t: Transfers, from: Jid, oob: XOob) {
    let checked = check_url(&oob.url);
    let name = match &checked {
        Ok(u) => name_of(u),
        Err(_) => files::sanitize_file_name(oob.url.rsplit('/').next().unwrap_or("download")),
    };
    let http = t.http();
    // The size, when the server tells it (HEAD); 0 = unknown.
    let size = match (&checked, &http) {
        (Ok(u), Ok(h)) => match h.head(u.clone()).send().await {
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
        description: oob.desc.clone(),
        state: TransferState::Offered,
    }) {
        Ok(id) => id,
        Err(e) => return tracing::warn!("history: {e}"),
    };
    let asked = t.ask(id);
    t.emit(Event::TransferOffered {
        id,
        direction: "incoming".into(),
        peer: from.to_string(),
        name: name.clone(),
        size,
        description: oob.desc.clone(),
        resume_from: 0,
    });
    let (url, http) = match (checked, http) {
        (Ok(u), Ok(h)) => (u, h),
        (Err(e), _) | (_, Err(e)) => {
            t.inner.decisions.lock().unwrap().remove(&id);
            return t.fail(id, &name, &e, false);
        }
    };
    let decision = t.answer(id, &from, asked).await;
    let dir = match decision {
        Decision::Reject => {
            let _ = store.set_state(id, TransferState::Rejected, Some("declined"));
            return t.emit(Event::TransferRejected { id, name, reason: "declined".into() });
        }
        Decision::Accept(dir) => dir.unwrap_or_else(|| t.cfg().download_dir.clone()),
    };
    let Some(mut cancel) = t.claim(id) else { return };
    let started = Instant::now();
    let result = tokio::select! {
        r = fetch(&t, id, &http, url, &dir, &name, size) => r,
        _ = cancel.cancelled() => Err("cancelled".to_owned()),
    };
    match result {
        Ok(done) => t.record_completed(Completed { seconds: started.elapsed().as_secs_f64(), ..done }),
        Err(e) => t.fail(id, &name, &e, false),
    }
}

/// Downloads `url` into `dir/name` (a free variant of it), checking the size.
async fn fetch(
    t: &Transfers,
    id: i64,
    http: &reqwest::Client,
    url: reqwest::Url,
    dir: &std::path::Path,
    name: &str,
    announced: u64,
) -> Result<Completed, String> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let resp = http.get(url.clone()).send().await.map_err(|e| describe(&e, &url))?;
    if !resp.status().is_success() {
        return Err(format!("the server answered {} for {url}", resp.status()));
    }
    // The size the transfer must have: what the GET says, else what HEAD said.
    let size = match (resp.content_length(), announced) {
        (Some(n), a) if a != 0 && n != a => {
            return Err(format!("the server gave two sizes for {name}: {a} and then {n} bytes"));
        }
        (Some(n), _) => Some(n),
        (None, 0) => None,
        (None, a) => Some(a),
    };
    t.record_started(id, Route::Oob, None, 0);
    let final_path = files::unique_path(dir, name);
    let part = PartFile::create(final_path, size.unwrap_or(UNKNOWN_SIZE_CAP))
        .await
        .map_err(|e| format!("cannot create the file: {e}"))?;
    // No resume of links yet: a failed download leaves nothing behind.
    let part_path = part.part_path().to_owned();
    let result = download(t, id, resp, part, size, name).await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&part_path).await;
    }
    result
}

async fn download(
    t: &Transfers,
    id: i64,
    resp: reqwest::Response,
    mut part: PartFile,
    size: Option<u64>,
    name: &str,
) -> Result<Completed, String> {
    let mut progress = Progress::new(t, id, size.unwrap_or(0), 0);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| match size {
            Some(n) => format!("the server sent {} of the {n} bytes it announced ({e})", part.written()),
            None => format!("the download broke off after {} bytes: {e}", part.written()),
        })?;
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
    let finished = part.finish(None).await.map_err(|e| match size {
        Some(n) if got != n => format!("the server sent {got} of the {n} bytes it announced"),
        _ => e.to_string(),
    })?;
    Ok(Completed {
        id,
        name: name.to_owned(),
        path: finished.path.display().to_string(),
        size: finished.size,
        bytes: finished.size,
        md5: Some(finished.hashes.md5),
        sha256: Some(finished.hashes.sha256),
        route: Route::Oob,
        seconds: 0.0,
    })
}

fn describe(e: &reqwest::Error, url: &reqwest::Url) -> String {
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
