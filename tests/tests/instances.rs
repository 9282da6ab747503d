//! Several Skiffs on one account: each takes its own resource, none kicks another off,
//! and the CLI processes sharing a data folder keep one sound history.

use std::time::Duration;

use skiff_engine::store::{Direction, HistoryQuery, Store, TransferState};
use skiff_tests::cli::SkiffProcess;
use skiff_tests::peer::{random_file, sha256_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skiffs_on_one_account_keep_their_sessions_and_share_a_history() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let here = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let (dl1, dl2) = (here.path().join("in"), elsewhere.path().join("in"));
    // `skiff receive` on this machine, and on another machine (its own data folder).
    let receive = |data: &std::path::Path, dl: &std::path::Path| {
        let dl = dl.display().to_string();
        SkiffProcess::start_as(&server, "alice", None, data, &["receive", "--dir", &dl, "--accept", "all"])
    };
    let mut r1 = receive(here.path(), &dl1);
    let mut r2 = receive(elsewhere.path(), &dl2);
    let j1 = r1.expect(20, "ready", |v| v["type"] == "ready").await["jid"].as_str().unwrap().to_owned();
    let j2 = r2.expect(20, "ready", |v| v["type"] == "ready").await["jid"].as_str().unwrap().to_owned();
    assert_ne!(j1, j2);
    assert!(j1.starts_with("alice@localhost/skiff-cli-") && j2.starts_with("alice@localhost/skiff-cli-"), "{j1} {j2}");

    // A `skiff send` from the same data folder as the first receiver, while it runs.
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let files = tempfile::tempdir().unwrap();
    let out = random_file(files.path(), "to-bob.bin", 2 << 20, 1);
    let path = out.display().to_string();
    let mut send = SkiffProcess::start_as(&server, "alice", None, here.path(), &["send", "bob@localhost", &path]);
    let done = send.expect(60, "sent", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed").await;
    assert_eq!(done["type"], "transfer_completed", "{done}");
    assert!(matches!(bob.next_finished(30).await, skiff_engine::Event::TransferCompleted { .. }));
    // bob sends to each receiver: both are still there.
    for (jid, dl) in [(&j1, &dl1), (&j2, &dl2)] {
        let f = random_file(files.path(), "to-alice.bin", 1 << 20, jid.len() as u64);
        let id = bob.transfers.send_file(&jid.parse().unwrap(), &f, None).await.unwrap();
        let end = bob.finished(id, 60).await;
        assert!(matches!(end, skiff_engine::Event::TransferCompleted { .. }), "{jid}: {end:?}");
        assert_eq!(sha256_file(&dl.join("to-alice.bin")), sha256_file(&f));
    }
    for r in [&mut r1, &mut r2] {
        assert!(r.child.try_wait().unwrap().is_none(), "a receiver was kicked off");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop((r1, r2, send));

    // One history for both processes of this machine: the outgoing and the incoming
    // record, the file sound.
    let store = Store::open(&here.path().join("history.sqlite3")).unwrap();
    let recs = store.list(&HistoryQuery::default()).unwrap();
    let kinds: Vec<_> = recs.iter().map(|r| (r.direction, r.state)).collect();
    assert!(kinds.contains(&(Direction::Outgoing, TransferState::Completed)), "{kinds:?}");
    assert!(kinds.contains(&(Direction::Incoming, TransferState::Completed)), "{kinds:?}");
    let check: String = rusqlite::Connection::open(here.path().join("history.sqlite3"))
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
