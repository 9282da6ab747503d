//! XEP-0363 HTTP File Upload through a real Prosody (mod_http_file_share on
//! 127.0.0.1): Skiff uploads for a contact who is offline; the server keeps the
//! message; when the contact signs in, the link arrives (body + `jabber:x:oob`) and
//! the file behind it is the file sent. A file over the service's limit is refused
//! before anything is uploaded, with a sentence that says so.

use std::time::Duration;

use skiff_engine::store::{Route, TransferState};
use skiff_engine::Event;
use skiff_proto::ns;
use skiff_proto::oob::XOob;
use skiff_tests::peer::{account, random_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_reaches_an_offline_contact_when_they_sign_in() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "report 2026.pdf", 3 * 1024 * 1024 + 5, 31);
    let bob_jid = "bob@localhost".parse().unwrap();
    assert!(alice.client.presence_of(&bob_jid).is_empty(), "bob must be offline");

    let id = alice.transfers.send_by_upload(&bob_jid, &f, Some("the report".into())).await.unwrap();
    let end = alice.finished(id, 60).await;
    let Event::TransferCompleted { route, path: url, size, .. } = &end else { panic!("{end:?}") };
    assert_eq!((route.as_str(), *size), ("upload", 3 * 1024 * 1024 + 5));
    assert!(url.starts_with("http://") && url.contains(&server.http_port.to_string()), "{url}");
    let rec = alice.transfers.store().get(id).unwrap();
    assert_eq!((rec.state, rec.route), (TransferState::Completed, Some(Route::Upload)));

    // bob signs in later; the server hands him the message it kept.
    let bob = skiff_engine::Client::start(account(&server, "bob", "phone"));
    let mut messages = bob.handle_messages();
    bob.wait_online().await.unwrap();
    let m = tokio::time::timeout(Duration::from_secs(20), messages.recv()).await.expect("the link").unwrap();
    assert_eq!(m.from.as_ref().map(|j| j.bare().to_string()), Some("alice@localhost".to_owned()));
    assert_eq!(m.body.as_deref(), Some(url.as_str()));
    let oob = m.payloads.iter().find(|p| p.name == "x" && p.ns == ns::X_OOB).map(|p| XOob::try_from(p).unwrap());
    let oob = oob.expect("a jabber:x:oob element");
    assert_eq!((oob.url.as_str(), oob.desc.as_deref()), (url.as_str(), Some("the report")));

    // What the link serves is the file.
    let http = skiff_engine::transfer::upload::http_client(None).unwrap();
    let got = http.get(url.as_str()).send().await.unwrap();
    assert!(got.status().is_success(), "{}", got.status());
    let bytes = got.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), std::fs::read(&f).unwrap().as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_the_services_limit_is_refused_with_a_reason() {
    let server = Prosody::start(ProsodyOptions { upload_size_limit: 100_000, ..ProsodyOptions::default() }).unwrap();
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "big.bin", 100_001, 32);
    let id = alice.transfers.send_by_upload(&"bob@localhost".parse().unwrap(), &f, None).await.unwrap();
    let end = alice.finished(id, 30).await;
    let Event::TransferFailed { error, resumable, .. } = &end else { panic!("{end:?}") };
    assert!(error.contains("100001 bytes") && error.contains("at most 100000"), "{error}");
    assert!(!resumable);
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Failed);
}

#[test]
fn only_https_or_loopback_http_links_are_followed() {
    use skiff_engine::transfer::upload::check_url;
    assert!(check_url("https://upload.example.org/a/b.jpg").is_ok());
    assert!(check_url("http://127.0.0.1:5280/f").is_ok());
    assert!(check_url("http://upload.localhost:5280/f").is_ok());
    let e = check_url("http://upload.example.org/f").unwrap_err();
    assert!(e.contains("plain http"), "{e}");
    let e = check_url("ftp://upload.example.org/f").unwrap_err();
    assert!(e.contains("only http(s)"), "{e}");
    let e = check_url("file:///etc/passwd").unwrap_err();
    assert!(e.contains("only http(s)"), "{e}");
}

/// A message from `from` to `to` carrying `url` as a `jabber:x:oob` link.
fn link(to: &str, url: &str) -> skiff_proto::stanza::Message {
    skiff_proto::stanza::Message {
        id: None,
        from: None,
        to: Some(to.parse().unwrap()),
        kind: "chat".into(),
        body: Some(url.to_owned()),
        payloads: vec![skiff_proto::xml::Element::from(&XOob { url: url.to_owned(), desc: None })],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_becomes_an_offer_and_the_file_is_fetched() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await; // accepts every offer
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "holiday photo.jpg", 1_500_001, 33);
    let id = alice.transfers.send_by_upload(&bob.jid.bare(), &f, Some("from the beach".into())).await.unwrap();
    alice.finished(id, 60).await;

    let offered = skiff_tests::peer::wait_for(
        &mut bob.events,
        30,
        "the link as an offer",
        |e| matches!(e, Event::TransferOffered { direction, .. } if direction == "incoming"),
    )
    .await;
    let Event::TransferOffered { id: in_id, name, size, description, .. } = offered else { unreachable!() };
    assert_eq!((name.as_str(), size, description.as_deref()), ("holiday photo.jpg", 1_500_001, Some("from the beach")));
    let end = bob.finished(in_id, 60).await;
    let Event::TransferCompleted { route, path, sha256, .. } = &end else { panic!("{end:?}") };
    assert_eq!(route, "oob");
    assert_eq!(sha256, &skiff_tests::peer::sha256_file(&f));
    assert_eq!(std::path::Path::new(path), bob.dir.path().join("downloads/holiday photo.jpg"));
    assert_eq!(bob.transfers.store().get(in_id).unwrap().route, Some(Route::Oob));
}

/// What [`bad_http_server`] serves at `/flaky/..` and `/norange/..`.
const FLAKY_SIZE: usize = 1 << 20;
/// Where [`bad_http_server`] cuts a first download off.
const CUT_AT: usize = 400_000;

fn flaky_content() -> Vec<u8> {
    (0..FLAKY_SIZE).map(|i| (i % 251) as u8).collect()
}

/// An HTTP server that misbehaves: `/short` announces 1000 bytes and sends 500,
/// `/loop` redirects to itself; `/flaky/NAME` serves [`flaky_content`] but breaks off
/// the first download at [`CUT_AT`] and honours `Range: bytes=N-`; `/norange/NAME`
/// breaks off the first download too and ignores ranges. Returns the port and the
/// `Range` headers received.
async fn bad_http_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    // GETs so far of /flaky and of /norange.
    let gets = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else { return };
            let (seen, gets) = (seen.clone(), gets.clone());
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).into_owned();
                let head = text.starts_with("HEAD");
                let range = text
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("range: bytes=").map(str::to_owned))
                    .and_then(|r| r.trim().trim_end_matches('-').parse::<usize>().ok());
                let mut reply: Vec<u8>;
                if text.contains(" /loop ") {
                    // Every reply closes its connection (the server shuts it down after one reply).
                    reply = b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec();
                } else if text.contains(" /flaky/") || text.contains(" /norange/") {
                    let honour = text.contains(" /flaky/");
                    if let Some(r) = range {
                        seen.lock().unwrap().push(format!("bytes={r}-"));
                    }
                    let body = flaky_content();
                    let first_get = !head && gets[usize::from(!honour)].fetch_add(1, Ordering::SeqCst) == 0;
                    let (status, from) = match range {
                        Some(r) if honour => ("206 Partial Content", r),
                        _ => ("200 OK", 0),
                    };
                    reply =
                        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", FLAKY_SIZE - from)
                            .into_bytes();
                    if from > 0 {
                        reply
                            .extend(format!("Content-Range: bytes {from}-{}/{FLAKY_SIZE}\r\n", FLAKY_SIZE - 1).bytes());
                    }
                    reply.extend(b"\r\n");
                    if !head {
                        let end = if first_get { CUT_AT } else { FLAKY_SIZE };
                        reply.extend(&body[from..end]);
                    }
                } else {
                    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n".to_vec();
                    if !head {
                        reply.extend([b'x'; 500]);
                    }
                }
                let _ = s.write_all(&reply).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (port, ranges)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_links_fail_with_a_reason_and_leave_nothing() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let alice = Peer::start(&server, "alice", |_| {}).await;
    let (port, _) = bad_http_server().await;
    // (link, what the error says, whether the partial data is kept for a resume)
    let cases = [
        ("ftp://files.example.org/x.bin", "only http(s)", false),
        ("http://files.example.org/x.bin", "plain http to another machine", false),
        (&*format!("http://127.0.0.1:{port}/short/lie.bin"), "500 of the 1000 bytes", true),
        (&*format!("http://127.0.0.1:{port}/loop"), "redirects too often", false),
    ];
    for (url, why, kept) in cases {
        alice.client.send(link("bob@localhost/skiff", url)).unwrap();
        let offered = skiff_tests::peer::wait_for(
            &mut bob.events,
            20,
            url,
            |e| matches!(e, Event::TransferOffered { direction, .. } if direction == "incoming"),
        )
        .await;
        let Event::TransferOffered { id, .. } = offered else { unreachable!() };
        let end = bob.finished(id, 30).await;
        let Event::TransferFailed { error, resumable, .. } = &end else { panic!("{url}: {end:?}") };
        assert!(error.contains(why), "{url}: {error}");
        assert_eq!(*resumable, kept, "{url}");
        let state = if kept { TransferState::Interrupted } else { TransferState::Failed };
        assert_eq!(bob.transfers.store().get(id).unwrap().state, state);
    }
    // Only the short download's .part is left (its 500 bytes, never renamed).
    let left: Vec<_> = std::fs::read_dir(bob.dir.path().join("downloads"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    assert_eq!(left, vec!["lie.bin.part".to_owned()]);
    assert_eq!(std::fs::metadata(bob.dir.path().join("downloads/lie.bin.part")).unwrap().len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_download_resumes_with_a_range_or_starts_over() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let alice = Peer::start(&server, "alice", |_| {}).await;
    let (port, ranges) = bad_http_server().await;
    let reference = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(reference.path(), flaky_content()).unwrap();
    let want = skiff_tests::peer::sha256_file(reference.path());
    for (path, honours_range) in [("flaky", true), ("norange", false)] {
        let url = format!("http://127.0.0.1:{port}/{path}/big.bin");
        alice.client.send(link("bob@localhost/skiff", &url)).unwrap();
        let offered = skiff_tests::peer::wait_for(
            &mut bob.events,
            20,
            &url,
            |e| matches!(e, Event::TransferOffered { direction, .. } if direction == "incoming"),
        )
        .await;
        let Event::TransferOffered { id, .. } = offered else { unreachable!() };
        let end = bob.finished(id, 30).await;
        let Event::TransferFailed { error, resumable, .. } = &end else { panic!("{end:?}") };
        assert!(error.contains(&format!("{CUT_AT} of the {FLAKY_SIZE} bytes")) && *resumable, "{end:?}");
        let rec = bob.transfers.store().get(id).unwrap();
        assert_eq!(
            (rec.state, rec.bytes_done, rec.url.as_deref()),
            (TransferState::Interrupted, CUT_AT as u64, Some(&*url))
        );
        let part = bob.dir.path().join("downloads/big.bin.part");
        assert_eq!(std::fs::metadata(&part).unwrap().len(), CUT_AT as u64);

        ranges.lock().unwrap().clear();
        assert_eq!(bob.transfers.resume(id).await.unwrap(), id);
        let started = skiff_tests::peer::wait_for(
            &mut bob.events,
            20,
            "the second attempt",
            |e| matches!(e, Event::TransferStarted { id: i, .. } if *i == id),
        )
        .await;
        let end = bob.finished(id, 30).await;
        let Event::TransferCompleted { sha256, bytes, size, path: done, .. } = &end else { panic!("{end:?}") };
        assert_eq!((sha256.as_str(), *size), (want.as_str(), FLAKY_SIZE as u64));
        assert_eq!(ranges.lock().unwrap().as_slice(), [format!("bytes={CUT_AT}-")]);
        let Event::TransferStarted { offset, .. } = started else { unreachable!() };
        if honours_range {
            // Only the missing bytes travelled.
            assert_eq!((offset, *bytes), (CUT_AT as u64, (FLAKY_SIZE - CUT_AT) as u64));
        } else {
            // The server ignored the range and sent it all: started over.
            assert_eq!((offset, *bytes), (0, FLAKY_SIZE as u64));
        }
        assert!(!part.exists());
        std::fs::remove_file(done).unwrap();
    }
}
