//! Which way a file goes, through a real Prosody (proxy65 and http_file_share on
//! 127.0.0.1): SI when the contact has a client that takes SI offers, HTTP upload when
//! they are offline or have none, HTTP upload on demand after SI failed, and XEP-0066
//! `jabber:iq:oob` both ways between two Skiffs (a one-time URL served by the sender;
//! the receiver answers only once the file is here, `not-acceptable` when declined).
//! Also: a message whose body is only a link to a file on the sender's server.

use std::time::Duration;

use skiff_engine::store::{Route, TransferState};
use skiff_engine::transfer::{AcceptPolicy, Method, SendMethod};
use skiff_engine::Event;
use skiff_tests::peer::{account, random_file, sha256_file, wait_for, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

fn incoming_offer(e: &Event) -> bool {
    matches!(e, Event::TransferOffered { direction, .. } if direction == "incoming")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_uses_si_when_it_can_and_upload_when_the_contact_is_offline_or_has_no_si() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "notes.txt", 200_000, 41);
    let bob = "bob@localhost".parse().unwrap();

    // bob is offline: the file goes up to the server, the link waits for him.
    let id = alice.transfers.send(&bob, &f, None, SendMethod::Auto).await.unwrap();
    let end = alice.finished(id, 60).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "upload"), "{end:?}");
    let rec = alice.transfers.store().get(id).unwrap();
    assert_eq!((rec.peer_jid.as_str(), rec.route), ("bob@localhost", Some(Route::Upload)));

    // bob is online with a client that takes no SI offers (a bare session without a
    // transfer engine, like Conversations): upload again.
    let phone = skiff_engine::Client::start(account(&server, "bob", "phone"));
    phone.wait_online().await.unwrap();
    alice.sees(&bob).await;
    let id = alice.transfers.send(&bob, &f, None, SendMethod::Auto).await.unwrap();
    let end = alice.finished(id, 60).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "upload"), "{end:?}");

    // With uploads turned off the same send is refused, and says why.
    let mut cfg = alice.transfers.cfg();
    cfg.allow_upload = false;
    alice.transfers.reconfigure(cfg.clone()).await;
    let e = alice.transfers.send(&bob, &f, None, SendMethod::Auto).await.unwrap_err().to_string();
    assert!(e.contains("no SI file transfer support") && e.contains("turned off"), "{e}");
    cfg.allow_upload = true;
    alice.transfers.reconfigure(cfg).await;

    // If alice may serve files and that client fetches jabber:iq:oob URLs, auto asks it
    // to fetch from alice's one-time URL instead (the client here: a bare session that
    // takes iq:oob requests, fetches the URL and answers).
    let mut oob_requests = phone.handle_iqs("query", skiff_proto::ns::IQ_OOB);
    let mut cfg = alice.transfers.cfg();
    cfg.serve_http = true;
    alice.transfers.reconfigure(cfg.clone()).await;
    let id = alice.transfers.send(&bob, &f, None, SendMethod::Auto).await.unwrap();
    let iq =
        tokio::time::timeout(Duration::from_secs(20), oob_requests.recv()).await.expect("an iq:oob request").unwrap();
    let url = skiff_proto::oob::IqOob::try_from(iq.request_payload().unwrap()).unwrap().url;
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/notes.txt"), "{url}");
    let body = skiff_engine::transfer::upload::http_client(None).unwrap().get(&url).send().await.unwrap();
    assert_eq!(body.bytes().await.unwrap().as_ref(), std::fs::read(&f).unwrap().as_slice());
    phone.send(iq.result_for(None)).unwrap();
    let end = alice.finished(id, 30).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "oob"), "{end:?}");
    cfg.serve_http = false;
    alice.transfers.reconfigure(cfg).await;

    // bob signs in with Skiff too: SI wins, straight to that client.
    let mut desk = Peer::start(&server, "bob", |_| {}).await;
    // bob is online already (the phone): wait for this very client's presence.
    let desk_resource = desk.jid.resource().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !alice.client.presence_of(&bob).iter().any(|r| r.resource == desk_resource) {
        assert!(std::time::Instant::now() < deadline, "alice never saw bob's desktop client");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = alice.transfers.send(&bob, &f, None, SendMethod::Auto).await.unwrap();
    let end = alice.finished(id, 60).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "s5b-direct"), "{end:?}");
    assert_eq!(alice.transfers.store().get(id).unwrap().peer_jid, desk.jid.to_string());
    let got = desk.next_finished(30).await;
    assert!(matches!(&got, Event::TransferCompleted { route, .. } if route == "s5b-direct"), "{got:?}");
    phone.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_si_fails_the_same_transfer_can_go_by_upload() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    // alice may only use SOCKS5 and has no streamhost at all: SI cannot carry a byte.
    let mut alice = Peer::start(&server, "alice", |c| {
        c.methods = vec![Method::S5b];
        c.use_direct = false;
        c.use_proxy = false;
    })
    .await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "slides.pdf", 2 * 1024 * 1024 + 3, 42);
    let id = alice.transfers.send(&bob.jid.bare(), &f, None, SendMethod::Auto).await.unwrap();
    let end = alice.finished(id, 60).await;
    let Event::TransferFailed { upload_fallback, .. } = &end else { panic!("{end:?}") };
    assert!(upload_fallback, "{end:?}");
    assert!(alice.transfers.can_upload_instead(id));

    assert_eq!(alice.transfers.upload_instead(id).await.unwrap(), id);
    let end = alice.finished(id, 60).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "upload"), "{end:?}");
    let rec = alice.transfers.store().get(id).unwrap();
    assert_eq!((rec.state, rec.route, rec.attempts), (TransferState::Completed, Some(Route::Upload), 2));
    assert_eq!(rec.peer_jid, "bob@localhost");
    // A completed upload is not uploaded again.
    assert!(!alice.transfers.can_upload_instead(id));
    assert!(alice.transfers.upload_instead(id).await.is_err());

    // bob's Skiff gets the link as an offer and fetches the file.
    let end = bob.next_finished(60).await;
    let Event::TransferCompleted { route, sha256, .. } = &end else { panic!("{end:?}") };
    assert_eq!((route.as_str(), sha256.as_str()), ("oob", sha256_file(&f).as_str()));

    // A declined offer offers no upload.
    let mut cfg = bob.transfers.cfg();
    cfg.accept = AcceptPolicy::None;
    bob.transfers.reconfigure(cfg).await;
    let other = random_file(files.path(), "other.pdf", 1000, 45);
    let id = alice.transfers.send(&bob.jid, &other, None, SendMethod::Si).await.unwrap();
    let end = alice.finished(id, 30).await;
    assert!(matches!(end, Event::TransferRejected { .. }), "{end:?}");
    assert!(!alice.transfers.can_upload_instead(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iq_oob_between_two_skiffs_served_from_a_one_time_url() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |c| c.accept = AcceptPolicy::Ask).await;
    let mut alice = Peer::start(&server, "alice", |c| c.serve_http = true).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "scan #1 (final).png", 3 * 1024 * 1024 + 1, 43);

    let id = alice.transfers.send(&bob.jid.bare(), &f, Some("the scan".into()), SendMethod::Oob).await.unwrap();
    let offer = wait_for(&mut bob.events, 20, "the iq:oob offer", incoming_offer).await;
    let Event::TransferOffered { id: in_id, name, size, description, .. } = offer else { unreachable!() };
    // Served from alice's machine, not her server: no size lookup before acceptance.
    assert_eq!((name.as_str(), size, description.as_deref()), ("scan #1 (final).png", 0, Some("the scan")));
    // The sender waits while the receiver decides: no answer yet.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Offered);
    bob.transfers.accept(in_id, None).unwrap();
    let got = bob.finished(in_id, 60).await;
    let Event::TransferCompleted { route, sha256, path, .. } = &got else { panic!("{got:?}") };
    assert_eq!((route.as_str(), sha256.as_str()), ("oob", sha256_file(&f).as_str()));
    assert_eq!(std::path::Path::new(path), bob.dir.path().join("downloads/scan #1 (final).png"));
    let sent = alice.finished(id, 30).await;
    let Event::TransferCompleted { route, bytes, .. } = &sent else { panic!("{sent:?}") };
    assert_eq!((route.as_str(), *bytes), ("oob", 3 * 1024 * 1024 + 1));

    // Declined: the sender sees a rejection (not-acceptable), nothing is written.
    let id = alice.transfers.send(&bob.jid, &f, None, SendMethod::Oob).await.unwrap();
    let offer = wait_for(&mut bob.events, 20, "the second offer", incoming_offer).await;
    let Event::TransferOffered { id: in_id, .. } = offer else { unreachable!() };
    bob.transfers.reject(in_id).unwrap();
    let end = alice.finished(id, 20).await;
    assert!(matches!(&end, Event::TransferRejected { .. }), "{end:?}");
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Rejected);
    assert_eq!(std::fs::read_dir(bob.dir.path().join("downloads")).unwrap().count(), 1);

    // Serving is off by default: the send is refused with the reason.
    let mut cfg = alice.transfers.cfg();
    cfg.serve_http = false;
    alice.transfers.reconfigure(cfg).await;
    let e = alice.transfers.send(&bob.jid, &f, None, SendMethod::Oob).await.unwrap_err().to_string();
    assert!(e.contains("turned off"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_link_to_the_senders_server_is_an_offer_other_text_is_not() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "menu.pdf", 70_000, 44);
    // Put the file on the server for a third, offline contact, to get a link.
    let id = alice.transfers.send_by_upload(&"carol@localhost".parse().unwrap(), &f, None).await.unwrap();
    let Event::TransferCompleted { path: url, .. } = alice.finished(id, 60).await else { panic!() };
    // The test server's links name 127.0.0.1; name the sender's domain instead, as a
    // real upload service's links do (upload.example.org for user@example.org).
    let url = url.replace("127.0.0.1", "localhost");
    let say = |body: &str| skiff_proto::stanza::Message {
        id: None,
        from: None,
        to: Some(bob.jid.clone()),
        kind: "chat".into(),
        body: Some(body.to_owned()),
        payloads: vec![],
    };
    // Chat that is not a bare link to the sender's server is left alone.
    for text in ["hello", &format!("look: {url}"), "https://example.org/menu.pdf"] {
        alice.client.send(say(text)).unwrap();
    }
    alice.client.send(say(&format!("  {url}\n"))).unwrap();
    let offer = wait_for(&mut bob.events, 20, "the bare link as an offer", incoming_offer).await;
    let Event::TransferOffered { id: in_id, name, size, .. } = offer else { unreachable!() };
    assert_eq!((name.as_str(), size), ("menu.pdf", 70_000));
    let end = bob.finished(in_id, 30).await;
    assert!(
        matches!(&end, Event::TransferCompleted { route, sha256, .. } if route == "oob" && *sha256 == sha256_file(&f)),
        "{end:?}"
    );
    // Only that one message became an offer.
    let history = bob.transfers.store().list(&Default::default()).unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
}

#[test]
fn iq_oob_urls_may_be_plain_http_on_the_private_network_message_links_may_not() {
    use skiff_engine::transfer::upload::{check_url, check_url_lan};
    for ok in ["http://192.168.1.20:8000/f", "http://10.0.0.5/f", "http://[fd00::5]/f", "http://169.254.3.4/f"] {
        assert!(check_url_lan(ok).is_ok(), "{ok}");
        assert!(check_url(ok).unwrap_err().contains("plain http"), "{ok}");
    }
    for bad in ["http://8.8.8.8/f", "http://files.example.org/f"] {
        assert!(check_url_lan(bad).unwrap_err().contains("private network"), "{bad}");
    }
    assert!(check_url_lan("ftp://192.168.1.2/f").unwrap_err().contains("only http(s)"));
    assert!(check_url_lan("https://files.example.org/f").is_ok());
}

/// Our iq:oob URLs: single-use (a second full fetch gets 410 Gone), stopped by Cancel
/// mid-body, and gone when nobody fetched them within the offer timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_urls_are_single_use_stop_on_cancel_and_expire() {
    use futures_util::StreamExt;
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut alice = Peer::start(&server, "alice", |c| {
        c.serve_http = true;
        c.offer_timeout = Duration::from_secs(3);
    })
    .await;
    let phone = skiff_engine::Client::start(account(&server, "bob", "phone"));
    let mut requests = phone.handle_iqs("query", skiff_proto::ns::IQ_OOB);
    let phone_jid = phone.wait_online().await.unwrap();
    let http = skiff_engine::transfer::upload::http_client(None).unwrap();
    let files = tempfile::tempdir().unwrap();
    async fn next_url(
        requests: &mut tokio::sync::mpsc::Receiver<skiff_proto::stanza::Iq>,
    ) -> (skiff_proto::stanza::Iq, String) {
        let iq = tokio::time::timeout(Duration::from_secs(20), requests.recv()).await.expect("a request").unwrap();
        let url = skiff_proto::oob::IqOob::try_from(iq.request_payload().unwrap()).unwrap().url;
        (iq, url)
    }

    // 1. Fetched once: a second fetch is refused, the transfer completes.
    let small = random_file(files.path(), "small.bin", 64 << 10, 1);
    let id = alice.transfers.send_by_oob(&phone_jid, &small, None).await.unwrap();
    let (iq, url) = next_url(&mut requests).await;
    let body = http.get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), std::fs::read(&small).unwrap().as_slice());
    let again = http.get(&url).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 410, "a spent URL served again");
    phone.send(iq.result_for(None)).unwrap();
    let end = alice.finished(id, 20).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "oob"), "{end:?}");

    // 2. Cancel mid-body: the body stops within a second, the URL is gone.
    let big = random_file(files.path(), "big.bin", 64 << 20, 2);
    let id = alice.transfers.send_by_oob(&phone_jid, &big, None).await.unwrap();
    let (_iq, url) = next_url(&mut requests).await;
    let mut body = http.get(&url).send().await.unwrap().bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    alice.transfers.cancel(id).unwrap();
    let cancelled = std::time::Instant::now();
    let mut got = first.len();
    let ended = tokio::time::timeout(Duration::from_secs(1), async {
        // Whatever was in flight may still arrive; then the body must break off.
        loop {
            match body.next().await {
                Some(Ok(c)) => got += c.len(),
                Some(Err(_)) | None => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the body went on after Cancel ({got} bytes)");
    assert!(got < 64 << 20, "the whole file was served after Cancel");
    eprintln!("cancel: the body stopped after {got} bytes, {:?} after Cancel", cancelled.elapsed());
    assert!(http.get(&url).send().await.is_err(), "the URL still answers after Cancel");
    let end = alice.finished(id, 5).await;
    assert!(matches!(&end, Event::TransferFailed { error, .. } if error == "cancelled"), "{end:?}");

    // 3. Never fetched: gone with the offer.
    let id = alice.transfers.send_by_oob(&phone_jid, &small, None).await.unwrap();
    let (_iq, url) = next_url(&mut requests).await;
    let end = alice.finished(id, 10).await;
    assert!(matches!(&end, Event::TransferFailed { error, .. } if error.contains("did not fetch")), "{end:?}");
    assert!(http.get(&url).send().await.is_err(), "the URL still answers after it expired");
}

/// The server's proxy65 moves to another port between two transfers (and the clients
/// reconnect): the second transfer still goes through the proxy, at its new address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_moved_is_used_at_its_new_address() {
    let mut server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    // Only through the proxy, and no in-band fallback to hide a failure.
    let mut alice = Peer::start(&server, "alice", |c| {
        c.methods = vec![Method::S5b];
        c.use_direct = false;
    })
    .await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let first = random_file(files.path(), "first.bin", 3 << 20, 1);
    let id = alice.transfers.send_file(&bob.jid.bare(), &first, None).await.unwrap();
    let end = alice.finished(id, 60).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "s5b-proxy"), "{end:?}");
    let old_port = server.proxy_port;
    bob.next_finished(30).await;

    let new_port = server.move_proxy().unwrap();
    assert_ne!(old_port, new_port);
    for p in [&mut alice, &mut bob] {
        skiff_tests::peer::wait_for(&mut p.events, 30, "back online", |e| matches!(e, Event::Online { .. })).await;
    }
    alice.sees(&bob.jid).await;
    let second = random_file(files.path(), "second.bin", 3 << 20, 2);
    let id = alice.transfers.send_file(&bob.jid.bare(), &second, None).await.unwrap();
    let end = alice.finished(id, 60).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "s5b-proxy"), "{end:?}");
    let got = bob.next_finished(30).await;
    let Event::TransferCompleted { sha256, .. } = &got else { panic!("{got:?}") };
    assert_eq!(sha256, &sha256_file(&second));
}
