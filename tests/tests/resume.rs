//! Resume after a crash: a side is killed with SIGKILL mid-transfer; its history says
//! interrupted, the `.part` file stays, and when the file is offered again only the
//! missing part travels. Both with SI and with Jingle (its `<range/>`).

use skiff_engine::store::{Direction, HistoryQuery, Protocol, Store, TransferState};
use skiff_engine::transfer::Method;
use skiff_engine::Event;
use skiff_tests::cli::SkiffProcess;
use skiff_tests::peer::{random_file, sha256_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

const SIZE: u64 = 200 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_killed_at_40_percent_resumes_where_it_stopped() {
    receiver_killed(None, SIZE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jingle_receiver_killed_resumes_by_range() {
    // In-band: slow enough to stop near 40 % (a direct SOCKS5 stream between two
    // Skiffs would be over first).
    receiver_killed(Some(Protocol::Jingle), 30 << 20).await;
}

/// The receiving CLI is killed at 40 % of a file of `size` bytes; it comes back;
/// only the rest travels.
async fn receiver_killed(protocol: Option<Protocol>, size: u64) {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let bob_data = tempfile::tempdir().unwrap();
    let downloads = bob_data.path().join("in");
    let dl = downloads.display().to_string();
    let mut bob = SkiffProcess::start(&server, "bob", bob_data.path(), &["receive", "--dir", &dl, "--accept", "all"]);
    bob.expect(20, "ready", |v| v["type"] == "ready").await;
    // Through the proxy: slow enough to stop near 40 %.
    let mut alice = Peer::start(&server, "alice", |c| {
        c.use_direct = false;
        if protocol.is_some() {
            c.protocol = protocol;
            c.methods = vec![Method::Ibb];
        }
    })
    .await;
    alice.sees(&"bob@localhost".parse().unwrap()).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "movie.bin", size, 7);
    let id = alice.transfers.send_file(&"bob@localhost".parse().unwrap(), &f, None).await.unwrap();
    bob.expect(60, "40 %", |v| v["type"] == "transfer_progress" && v["bytes"].as_u64().unwrap_or(0) * 10 >= size * 4)
        .await;
    bob.kill_9().await;

    // The sender sees the break; its record is resumable.
    let end = alice.finished(id, 90).await;
    assert!(matches!(end, Event::TransferFailed { resumable: true, .. }), "{end:?}");
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Interrupted);
    // The killed receiver's history survived: an unfinished record and its .part.
    let part = downloads.join("movie.bin.part");
    let had = std::fs::metadata(&part).unwrap().len();
    // At least what was reported, less the write buffer (1 MiB) a SIGKILL loses.
    assert!((size * 4 / 10 - (1 << 20)..size).contains(&had), "{had}");
    assert!(!downloads.join("movie.bin").exists());
    {
        let store = Store::open(&bob_data.path().join("history.sqlite3")).unwrap();
        let recs = store.list(&HistoryQuery::default()).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].direction, Direction::Incoming);
        assert!(matches!(recs[0].state, TransferState::Active | TransferState::Accepted), "{:?}", recs[0].state);
    }

    // bob comes back: alice offers again by herself, bob resumes without asking.
    let mut bob = SkiffProcess::start(
        &server,
        "bob",
        bob_data.path(),
        &["receive", "--dir", &dl, "--accept", "none", "--count", "1"],
    );
    let offered = bob.expect(60, "the offer again", |v| v["type"] == "transfer_offered").await;
    assert!(offered["resume_from"].as_u64().unwrap() >= had, "{offered}");
    let done =
        bob.expect(120, "completion", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed").await;
    assert_eq!(done["type"], "transfer_completed", "{done}");
    let want = sha256_file(&f);
    assert_eq!(done["sha256"].as_str(), Some(want.as_str()));
    assert_eq!(sha256_file(&downloads.join("movie.bin")), want);
    let again = alice.finished(id, 60).await;
    let Event::TransferCompleted { bytes, .. } = again else { panic!("{again:?}") };
    assert!(bytes * 100 < size * 62, "{bytes} of {size} bytes travelled again");
    // Both histories agree: one record each, completed.
    let store = Store::open(&bob_data.path().join("history.sqlite3")).unwrap();
    let recs = store.list(&HistoryQuery::default()).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].state, recs[0].attempts), (TransferState::Completed, 2));
    assert_eq!(recs[0].sha256.as_deref(), Some(want.as_str()));
    assert_eq!(recs[0].protocol, Some(protocol.unwrap_or(Protocol::Si)));
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_killed_mid_transfer_is_interrupted_and_resumable() {
    sender_killed(&["--no-direct", "--protocol", "si"], SIZE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jingle_sender_killed_resumes_by_range() {
    // In-band first (slow enough to stop near 30 %); the new attempt goes by Jingle
    // again, as the first did, over whatever route works.
    sender_killed(&["--protocol", "jingle", "--method", "ibb"], 30 << 20).await;
}

/// The sending CLI (with `how`) is killed at 30 %; `skiff resume` sends the rest.
async fn sender_killed(how: &[&str], size: u64) {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let alice_data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "archive.bin", size, 8);
    let path = f.display().to_string();
    let args: Vec<&str> = ["send", "bob@localhost", path.as_str()].into_iter().chain(how.iter().copied()).collect();
    let mut alice = SkiffProcess::start(&server, "alice", alice_data.path(), &args);
    alice
        .expect(60, "30 %", |v| v["type"] == "transfer_progress" && v["bytes"].as_u64().unwrap_or(0) * 10 >= size * 3)
        .await;
    alice.kill_9().await;
    let end = bob.next_finished(90).await;
    assert!(matches!(end, Event::TransferFailed { resumable: true, .. }), "{end:?}");
    let id = {
        let store = Store::open(&alice_data.path().join("history.sqlite3")).unwrap();
        let recs = store.list(&HistoryQuery::default()).unwrap();
        assert_eq!(recs.len(), 1);
        assert!(matches!(recs[0].state, TransferState::Active | TransferState::Accepted), "{:?}", recs[0].state);
        recs[0].id
    };
    // `skiff resume ID` marks the leftover interrupted, offers again, and completes.
    let mut alice = SkiffProcess::start(&server, "alice", alice_data.path(), &["resume", &id.to_string()]);
    let done =
        alice.expect(120, "completion", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed").await;
    assert_eq!(done["type"], "transfer_completed", "{done}");
    assert!(done["bytes"].as_u64().unwrap() * 100 < size * 75, "{done}");
    let got = bob.next_finished(60).await;
    let Event::TransferCompleted { sha256, .. } = got else { panic!("{got:?}") };
    assert_eq!(sha256, sha256_file(&f));
    assert_eq!(alice.child.wait().await.unwrap().code(), Some(0));
    let want = if how.contains(&"jingle") { Protocol::Jingle } else { Protocol::Si };
    let store = Store::open(&alice_data.path().join("history.sqlite3")).unwrap();
    assert_eq!(store.get(id).unwrap().protocol, Some(want));
}
