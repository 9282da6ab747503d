//! Every transfer between Skiffs is verified end to end with SHA-256: in the offer
//! when the hash is ready, else right after the last byte (the receiver holds the file
//! under its `.part` name until it arrives); a resumed `.part` that was damaged on
//! disk is caught and never takes the file's name.

use skiff_engine::store::{HistoryQuery, Store, TransferState, Verification};
use skiff_engine::Event;
use skiff_tests::cli::SkiffProcess;
use skiff_tests::peer::{random_file, sha256_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_is_verified_with_sha256_sent_after_the_last_byte() {
    const SIZE: u64 = 1 << 30;
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "disk.img", SIZE, 5);
    let want = sha256_file(&f);
    let id = alice.transfers.send_file(&bob.jid.bare(), &f, None).await.unwrap();
    // 1 GiB takes longer to hash than the offer waits: it went out without a hash.
    let offered = alice.transfers.store().get(id).unwrap();
    let late = offered.md5.is_none() && offered.sha256.is_none();
    println!("offered {} a hash", if late { "without" } else { "with" });
    assert!(late, "the hash was ready at offer time: this test needs the checksum after the data");

    let got = bob.next_finished(300).await;
    let Event::TransferCompleted { sha256, verified, path, .. } = &got else { panic!("{got:?}") };
    assert_eq!((sha256.as_str(), *verified), (want.as_str(), Verification::Sha256));
    assert_eq!(sha256_file(std::path::Path::new(path)), want);
    // The sender heard that it arrived intact.
    let sent = alice.finished(id, 60).await;
    assert!(matches!(sent, Event::TransferCompleted { verified: Verification::Sha256, .. }), "{sent:?}");
    for store in [alice.transfers.store(), bob.transfers.store()] {
        let rec = &store.list(&HistoryQuery::default()).unwrap()[0];
        assert_eq!(
            (rec.state, rec.verified, rec.sha256.as_deref()),
            (TransferState::Completed, Verification::Sha256, Some(want.as_str()))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_flipped_in_the_part_file_before_a_resume_is_caught() {
    const SIZE: u64 = 200 << 20;
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let bob_data = tempfile::tempdir().unwrap();
    let downloads = bob_data.path().join("in");
    let dl = downloads.display().to_string();
    let mut bob = SkiffProcess::start(&server, "bob", bob_data.path(), &["receive", "--dir", &dl, "--accept", "all"]);
    bob.expect(20, "ready", |v| v["type"] == "ready").await;
    let mut alice = Peer::start(&server, "alice", |c| c.use_direct = false).await;
    alice.sees(&"bob@localhost".parse().unwrap()).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "backup.tar", SIZE, 9);
    let id = alice.transfers.send_file(&"bob@localhost".parse().unwrap(), &f, None).await.unwrap();
    bob.expect(60, "40 %", |v| v["type"] == "transfer_progress" && v["bytes"].as_u64().unwrap_or(0) * 10 >= SIZE * 4)
        .await;
    bob.kill_9().await;
    let end = alice.finished(id, 90).await;
    assert!(matches!(end, Event::TransferFailed { resumable: true, .. }), "{end:?}");

    // The disk damages one byte of what arrived.
    let part = downloads.join("backup.tar.part");
    let mut bytes = std::fs::read(&part).unwrap();
    assert!(bytes.len() > 1 << 20);
    bytes[123_457] ^= 0x40;
    std::fs::write(&part, &bytes).unwrap();
    drop(bytes);

    // bob is back; alice offers again by herself, bob resumes from what he has...
    let mut bob = SkiffProcess::start(
        &server,
        "bob",
        bob_data.path(),
        &["receive", "--dir", &dl, "--accept", "none", "--count", "1"],
    );
    let offered = bob.expect(60, "the offer again", |v| v["type"] == "transfer_offered").await;
    assert!(offered["resume_from"].as_u64().unwrap() > 0, "{offered}");
    // ...and the whole file's SHA-256 does not match: refused, never named.
    let done =
        bob.expect(120, "the end", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed").await;
    assert_eq!(done["type"], "transfer_failed", "{done}");
    assert!(done["error"].as_str().unwrap().contains("SHA-256 does not match"), "{done}");
    assert!(!downloads.join("backup.tar").exists());
    assert!(!part.exists(), "the damaged partial file is removed");
    let store = Store::open(&bob_data.path().join("history.sqlite3")).unwrap();
    let rec = &store.list(&HistoryQuery::default()).unwrap()[0];
    assert_eq!((rec.state, rec.verified), (TransferState::Failed, Verification::None));
    // The sender is told too.
    let end = alice.finished(id, 60).await;
    let Event::TransferFailed { error, .. } = &end else { panic!("{end:?}") };
    assert!(error.contains("damaged"), "{error}");
}

/// Files are hashed from the moment they are chosen (`Transfers::prepare`: the
/// desktop's file picker, a drag entering the window, a hand-over, the CLI's start),
/// so the offer made later carries MD5 and SHA-256 instead of waiting or going out
/// without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_chosen_before_it_is_sent_is_offered_with_its_hashes() {
    const SIZE: u64 = 96 << 20;
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = std::fs::canonicalize(random_file(files.path(), "video.mp4", SIZE, 8)).unwrap();
    let want = sha256_file(&f);
    let meta = skiff_engine::files::file_meta(&f).unwrap();
    let path = f.display().to_string();
    let store = alice.transfers.store();
    assert_eq!(store.hash_cache_get(&path, meta.size, meta.mtime_ns).unwrap(), None);

    // Chosen: hashed in the background, with nothing sent yet.
    let started = std::time::Instant::now();
    alice.transfers.prepare(std::slice::from_ref(&f));
    alice.transfers.prepare(std::slice::from_ref(&f)); // twice: one job
    let cached = loop {
        if let Some(c) = store.hash_cache_get(&path, meta.size, meta.mtime_ns).unwrap() {
            break c;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "not hashed ahead");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(cached.1.as_deref(), Some(want.as_str()));
    println!("{} MiB hashed ahead in {} ms", SIZE >> 20, started.elapsed().as_millis());
    assert!(store.list(&HistoryQuery::default()).unwrap().is_empty(), "nothing was sent");

    // Sent later: the offer carries the hashes at once; the receiver checks them.
    let id = alice.transfers.send_file(&bob.jid.bare(), &f, None).await.unwrap();
    assert_eq!(store.get(id).unwrap().md5.as_deref(), Some(cached.0.as_str()), "offered with its MD5");
    let got = bob.next_finished(120).await;
    let at_bob = bob.transfers.store().list(&HistoryQuery::default()).unwrap().remove(0);
    assert_eq!(at_bob.md5.as_deref(), Some(cached.0.as_str()), "the offer bob got carried the MD5");
    let Event::TransferCompleted { sha256, verified, .. } = &got else { panic!("{got:?}") };
    assert_eq!((sha256.as_str(), *verified), (want.as_str(), Verification::Sha256));
    let sent = alice.finished(id, 60).await;
    assert!(matches!(sent, Event::TransferCompleted { .. }), "{sent:?}");
}
