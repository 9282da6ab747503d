//! Every transfer between Skiffs is verified end to end with SHA-256: in the offer
//! when the hash is ready, else right after the last byte (the receiver holds the file
//! under its `.part` name until it arrives); a resumed `.part` that was damaged on
//! disk is caught and never takes the file's name.

use skiff_engine::store::{HistoryFilter, Store, TransferState, Verification};
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
        let rec = &store.list(&HistoryFilter::default()).unwrap()[0];
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
    let rec = &store.list(&HistoryFilter::default()).unwrap()[0];
    assert_eq!((rec.state, rec.verified), (TransferState::Failed, Verification::None));
    // The sender is told too.
    let end = alice.finished(id, 60).await;
    let Event::TransferFailed { error, .. } = &end else { panic!("{end:?}") };
    assert!(error.contains("damaged"), "{error}");
}
