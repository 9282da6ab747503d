//! Links and out-of-band transfers with a third-party client (slixmpp, Debian's
//! python3-slixmpp, `tests/peers/slixmpp_peer.py`) through a real Prosody with
//! mod_http_file_share: slixmpp uploads like Conversations/Gajim do and sends the link
//! (`jabber:x:oob`); slixmpp reads a Skiff upload; `jabber:iq:oob` both ways —
//! accepted, declined (406 not-acceptable), and a fetch that fails (404
//! item-not-found) — each side checking the other's answer.

use skiff_engine::store::{Route, TransferState};
use skiff_engine::transfer::{AcceptPolicy, SendMethod};
use skiff_engine::Event;
use skiff_tests::peer::{random_file, sha256_file, wait_for, Peer};
use skiff_tests::slix::SlixPeer;
use skiff_tests::{Prosody, ProsodyOptions};

fn incoming_offer(e: &Event) -> bool {
    matches!(e, Event::TransferOffered { direction, .. } if direction == "incoming")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_slixmpp_uploads_and_sends_is_received() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "IMG_2041.jpg", 2 * 1024 * 1024 + 77, 51);
    let mut alice = SlixPeer::start(
        &server,
        "alice",
        &["share", "--to", "bob@localhost", "--file", &f.display().to_string(), "--desc", "at the lake"],
    );
    let sent = alice.expect("sent", 60).await;
    assert_eq!(alice.exit_code(10).await, 0);

    let offer = wait_for(&mut bob.events, 30, "the link as an offer", incoming_offer).await;
    let Event::TransferOffered { id, name, size, description, peer, .. } = offer else { unreachable!() };
    assert_eq!(
        (name.as_str(), size, description.as_deref()),
        ("IMG_2041.jpg", 2 * 1024 * 1024 + 77, Some("at the lake"))
    );
    assert!(peer.starts_with("alice@localhost/"), "{peer}");
    let end = bob.finished(id, 60).await;
    let Event::TransferCompleted { route, sha256, path, .. } = &end else { panic!("{end:?}") };
    assert_eq!((route.as_str(), sha256.as_str()), ("oob", sha256_file(&f).as_str()));
    assert_eq!(std::path::Path::new(path), bob.dir.path().join("downloads/IMG_2041.jpg"));
    assert!(sent["url"].as_str().unwrap().ends_with("/IMG_2041.jpg"), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_reads_a_skiff_upload() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut bob = SlixPeer::start(
        &server,
        "bob",
        &["receive-link", "--dir", &out.path().display().to_string(), "--timeout", "60"],
    );
    bob.expect("online", 30).await;
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "minutes.odt", 900_001, 52);
    let id =
        alice.transfers.send(&"bob@localhost".parse().unwrap(), &f, Some("minutes".into()), SendMethod::Upload).await;
    let id = id.unwrap();
    let end = alice.finished(id, 60).await;
    assert!(matches!(&end, Event::TransferCompleted { route, .. } if route == "upload"), "{end:?}");
    let link = bob.expect("link", 30).await;
    assert_eq!(link["desc"], "minutes", "{link}");
    let got = bob.expect("received", 60).await;
    assert_eq!(got["sha256"].as_str().unwrap(), sha256_file(&f));
    assert_eq!(got["name"], "minutes.odt");
    assert_eq!(bob.exit_code(10).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iq_oob_from_slixmpp_is_answered_after_the_fetch_and_with_406_or_404() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |c| c.accept = AcceptPolicy::Ask).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "build.tar.gz", 4 * 1024 * 1024 + 9, 53);
    let file = f.display().to_string();

    // Accepted: slixmpp's IQ is answered only once the whole file is here.
    let mut alice = SlixPeer::start(&server, "alice", &["send-oob", "--to", &bob.jid.to_string(), "--file", &file]);
    alice.expect("offered", 30).await;
    let offer = wait_for(&mut bob.events, 30, "the iq:oob offer", incoming_offer).await;
    let Event::TransferOffered { id, name, size, .. } = offer else { unreachable!() };
    // slixmpp serves from its own machine, not its server: nothing is asked of that
    // address before the user accepts, so the size is not known yet.
    assert_eq!((name.as_str(), size), ("build.tar.gz", 0));
    bob.transfers.accept(id, None).unwrap();
    let end = bob.finished(id, 60).await;
    assert!(
        matches!(&end, Event::TransferCompleted { route, sha256, .. } if route == "oob" && *sha256 == sha256_file(&f)),
        "{end:?}"
    );
    let done = alice.expect("completed", 30).await;
    assert_eq!(done["bytes_served"], 4 * 1024 * 1024 + 9, "{done}");
    assert_eq!(alice.exit_code(10).await, 0);
    assert_eq!(bob.transfers.store().get(id).unwrap().route, Some(Route::Oob));

    // Declined: 406 not-acceptable, nothing fetched.
    let mut alice = SlixPeer::start(&server, "alice", &["send-oob", "--to", &bob.jid.to_string(), "--file", &file]);
    let offer = wait_for(&mut bob.events, 30, "the second offer", incoming_offer).await;
    let Event::TransferOffered { id, .. } = offer else { unreachable!() };
    bob.transfers.reject(id).unwrap();
    let no = alice.expect("rejected", 30).await;
    assert_eq!((no["condition"].as_str(), no["bytes_served"].as_u64()), (Some("not-acceptable"), Some(0)), "{no}");
    assert_eq!(alice.exit_code(10).await, 1);

    // A URL nothing answers: the fetch fails, 404 item-not-found, no file left.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/x/gone.bin", dead.local_addr().unwrap().port());
    drop(dead);
    let mut alice = SlixPeer::start(&server, "alice", &["send-oob", "--to", &bob.jid.to_string(), "--url", &url]);
    let offer = wait_for(&mut bob.events, 30, "the third offer", incoming_offer).await;
    let Event::TransferOffered { id, .. } = offer else { unreachable!() };
    bob.transfers.accept(id, None).unwrap();
    let end = bob.finished(id, 30).await;
    let Event::TransferFailed { error, .. } = &end else { panic!("{end:?}") };
    assert!(error.contains("cannot connect"), "{error}");
    let failed = alice.expect("failed", 30).await;
    assert_eq!(failed["condition"], "item-not-found", "{failed}");
    let downloads: Vec<_> =
        std::fs::read_dir(bob.dir.path().join("downloads")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(downloads, vec![std::ffi::OsString::from("build.tar.gz")], "only the first file, no .part");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iq_oob_from_skiff_to_slixmpp_fetched_declined_failed() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut alice = Peer::start(&server, "alice", |c| c.serve_http = true).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "data set.csv", 3 * 1024 * 1024 + 1, 54);
    let bob_bare: skiff_proto::jid::Jid = "bob@localhost".parse().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display().to_string();

    for (mode, expect) in [(None, "completed"), (Some("--reject"), "rejected"), (Some("--fail"), "failed")] {
        let mut args = vec!["receive-oob", "--dir", &dir, "--timeout", "60"];
        args.extend(mode);
        let mut bob = SlixPeer::start(&server, "bob", &args);
        bob.expect("online", 30).await;
        alice.sees(&bob_bare).await;
        let id = alice.transfers.send(&bob_bare, &f, None, SendMethod::Oob).await.unwrap();
        let offer = bob.expect("offer", 30).await;
        assert!(offer["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{offer}");
        let end = alice.finished(id, 60).await;
        let rec = alice.transfers.store().get(id).unwrap();
        match expect {
            "completed" => {
                let got = bob.expect("received", 30).await;
                assert_eq!(got["sha256"].as_str().unwrap(), sha256_file(&f));
                assert_eq!(got["name"], "data set.csv");
                let Event::TransferCompleted { route, bytes, .. } = &end else { panic!("{end:?}") };
                assert_eq!((route.as_str(), *bytes), ("oob", 3 * 1024 * 1024 + 1));
                assert_eq!(rec.state, TransferState::Completed);
            }
            "rejected" => {
                assert!(matches!(end, Event::TransferRejected { .. }), "{end:?}");
                assert_eq!(rec.state, TransferState::Rejected);
            }
            _ => {
                let Event::TransferFailed { error, .. } = &end else { panic!("{end:?}") };
                assert!(error.contains("could not fetch the file"), "{error}");
                assert_eq!(rec.state, TransferState::Failed);
            }
        }
        assert_eq!(bob.exit_code(10).await, 0, "{mode:?}");
        // The next run of slixmpp is a new resource: wait until this one is gone.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}
