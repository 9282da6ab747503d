//! Folders as batches (issue 14): `skiff send JID DIR` offers the folder to a Skiff as
//! one batch that is answered once and lands as the same tree, against a real Prosody
//! and a real receiving Skiff; small files travel many to a stream, a big one alone.

use std::collections::BTreeMap;
use std::path::Path;

use skiff_engine::store::{HistoryQuery, Store, TransferState};
use skiff_engine::transfer::AcceptPolicy;
use skiff_engine::Event;
use skiff_tests::cli::SkiffProcess;
use skiff_tests::peer::{random_file, sha256_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

/// Every file under `root`, by its path relative to it, with its SHA-256.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256_file(&p));
            }
        }
    }
    out
}

/// Writes `files` (path inside `root`, size) with random contents from `seed` on;
/// returns the tree and its total size.
fn make_folder(root: &Path, files: &[(String, u64)], seed: u64) -> (BTreeMap<String, String>, u64) {
    for (i, (rel, size)) in files.iter().enumerate() {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        random_file(path.parent().unwrap(), path.file_name().unwrap().to_str().unwrap(), *size, seed + i as u64);
    }
    (tree(root), files.iter().map(|f| f.1).sum())
}

/// The receiving CLI started again after a kill, accepting nothing new, and the
/// batch it is offered again (taken up without asking).
async fn back_again(server: &Prosody, data: &Path, dl: &str) -> (SkiffProcess, serde_json::Value) {
    let mut bob =
        SkiffProcess::start(server, "bob", data, &["receive", "--dir", dl, "--accept", "none", "--count", "1"]);
    let offered = bob.expect(60, "the batch again", |v| v["type"] == "transfer_offered").await;
    (bob, offered)
}

/// The receiving CLI reports the batch completed (not failed).
async fn completes(bob: &mut SkiffProcess) {
    let done =
        bob.expect(120, "completion", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed").await;
    assert_eq!(done["type"], "transfer_completed", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_arrives_as_one_batch_with_its_tree() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |c| c.accept = AcceptPolicy::Ask).await;
    let src = tempfile::tempdir().unwrap();
    let photos = src.path().join("photos");
    // Same names in different folders, empty files, unicode names, a nested one, many
    // small files (they share streams) and a 100 MiB one (alone).
    let mut files: Vec<(String, u64)> = vec![
        ("2024/a.jpg".into(), 40_000),
        ("2023/a.jpg".into(), 50_000),
        ("2023/empty.txt".into(), 0),
        ("empty".into(), 0),
        ("空/深/写真.jpg".into(), 30_000),
        ("big.bin".into(), 100 << 20),
        ("z.txt".into(), 7),
    ];
    files.extend((0..200).map(|i| (format!("many/{i:03}.txt"), 1000 + i)));
    let (sent, total) = make_folder(&photos, &files, 0);
    let data = tempfile::tempdir().unwrap();
    let dir_arg = photos.display().to_string();
    let mut send = SkiffProcess::start(&server, "alice", data.path(), &["send", "bob@localhost", &dir_arg]);

    // One offer: the folder, how many files, how big.
    let offered = skiff_tests::peer::wait_for(&mut bob.events, 60, "the batch's offer", |e| {
        matches!(e, Event::TransferOffered { .. })
    })
    .await;
    let Event::TransferOffered { id, name, size, files: Some(n), .. } = offered else { panic!("{offered:?}") };
    assert_eq!((name.as_str(), size, n), ("photos", total, files.len() as u64));
    // Accepted once, into a folder of bob's choosing that already has a "photos".
    let target = bob.dir.path().join("chosen");
    std::fs::create_dir_all(target.join("photos")).unwrap();
    bob.transfers.accept(id, Some(target.clone())).unwrap();
    let mut files_done = 0;
    let end = skiff_tests::peer::wait_for(&mut bob.events, 180, "the batch's end", |e| {
        matches!(e, Event::TransferCompleted { .. } | Event::TransferFailed { .. } | Event::BatchProgress { .. })
            && !matches!(e, Event::BatchProgress { files_done, .. } if *files_done < files.len() as u64)
    })
    .await;
    let end = match end {
        Event::BatchProgress { files_done: d, .. } => {
            files_done = d;
            bob.finished(id, 60).await
        }
        other => other,
    };
    let Event::TransferCompleted { path, verified, size: got, .. } = end else { panic!("{end:?}") };
    assert_eq!(files_done, files.len() as u64);
    assert_eq!(got, total);
    assert!(verified.is_verified());
    // A clash renamed the new folder, never a file inside; the tree is the same.
    assert_eq!(Path::new(&path), target.join("photos (1)"));
    assert_eq!(tree(&target.join("photos (1)")), sent);
    assert!(std::fs::read_dir(target.join("photos")).unwrap().next().is_none(), "the existing folder is untouched");
    // The history: one row for the batch, opening to its files.
    let rows = bob.transfers.store().list(&HistoryQuery::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].id, rows[0].files, rows[0].state), (id, Some(files.len() as u64), TransferState::Completed));
    let inside = bob.transfers.store().list(&HistoryQuery { parent: Some(id), ..Default::default() }).unwrap();
    assert_eq!(inside.len(), files.len());
    assert!(inside.iter().all(|r| r.state == TransferState::Completed && r.verified.is_verified()));
    // The sender saw the batch complete, confirmed.
    let last = send.expect(60, "the sender's end", |v| v["type"] == "transfer_completed").await;
    assert_eq!(last["verified"], "sha256");
    drop(send);

    while bob.events.try_recv().is_ok() {}
    // A missing path is refused before anything is offered (or even signed in).
    let missing = src.path().join("nope").display().to_string();
    let out = std::process::Command::new(skiff_tests::cli::skiff_binary())
        .args(["--jid", "alice@localhost", "--data-dir", &data.path().display().to_string()])
        .args(["--server", &format!("127.0.0.1:{}", server.c2s_port), "send", "bob@localhost", &missing])
        .env("SKIFF_PASSWORD", server.password("alice"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("nope"), "{stderr}");
    while let Ok(e) = bob.events.try_recv() {
        assert!(!matches!(e, Event::TransferOffered { .. }), "something was offered: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_whose_receiver_was_killed_continues_with_only_what_was_missing() {
    const BIG: u64 = 200 << 20;
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let bob_data = tempfile::tempdir().unwrap();
    let downloads = bob_data.path().join("in");
    let dl = downloads.display().to_string();
    let mut bob = SkiffProcess::start(&server, "bob", bob_data.path(), &["receive", "--dir", &dl, "--accept", "all"]);
    bob.expect(20, "ready", |v| v["type"] == "ready").await;
    // Through the proxy: slow enough to stop inside the big file.
    let mut alice = Peer::start(&server, "alice", |c| c.use_direct = false).await;
    alice.sees(&"bob@localhost".parse().unwrap()).await;
    let src = tempfile::tempdir().unwrap();
    let album = src.path().join("album");
    let mut files: Vec<(String, u64)> = (0..60).map(|i| (format!("a/{i:03}.txt"), 20_000 + i)).collect();
    files.push(("m-big.bin".into(), BIG));
    files.extend((0..60).map(|i| (format!("z/{i:03}.txt"), 10_000 + i)));
    let (sent, total) = make_folder(&album, &files, 100);
    let chosen = skiff_engine::files::expand(std::slice::from_ref(&album)).unwrap();
    let to: skiff_proto::jid::Jid = "bob@localhost".parse().unwrap();
    let ids = alice.transfers.send_chosen(&to, &chosen, None, Default::default()).await.unwrap();
    assert_eq!(ids.len(), 1, "one batch");
    let id = ids[0];
    bob.expect(60, "40 %", |v| v["type"] == "transfer_progress" && v["bytes"].as_u64().unwrap_or(0) * 10 >= total * 4)
        .await;
    bob.kill_9().await;

    // The sender sees the break: the batch is interrupted, the files before the big
    // one are done, the rest not.
    let end = alice.finished(id, 90).await;
    assert!(matches!(end, Event::TransferFailed { resumable: true, .. }), "{end:?}");
    let store = alice.transfers.store();
    assert_eq!(store.get(id).unwrap().state, TransferState::Interrupted);
    let states: Vec<TransferState> = store.batch_files(id).unwrap().iter().map(|r| r.state).collect();
    assert!(states[..60].iter().all(|s| *s == TransferState::Completed), "{states:?}");
    assert!(states[60..].iter().all(|s| *s != TransferState::Completed), "{states:?}");
    let root = downloads.join("album");
    let had = std::fs::metadata(root.join("m-big.bin.part")).unwrap().len();
    assert!(had > BIG / 5, "{had}");

    // bob comes back, accepting nothing new: alice continues by herself, bob takes
    // it up without asking, and only the rest travels.
    let (mut bob, offered) = back_again(&server, bob_data.path(), &dl).await;
    assert_eq!(offered["files"], files.len() as u64, "{offered}");
    let small: u64 = files[..60].iter().map(|f| f.1).sum();
    assert_eq!(offered["resume_from"].as_u64(), Some(small), "{offered}");
    completes(&mut bob).await;
    assert_eq!(tree(&root), sent);
    let again = alice.finished(id, 60).await;
    let Event::TransferCompleted { bytes, verified, .. } = again else { panic!("{again:?}") };
    assert!(verified.is_verified());
    assert!(bytes + had - (1 << 20) <= total - small, "{bytes} bytes travelled again, {had} were there");
    // One batch in each history, completed, every file with it.
    let recs = Store::open(&bob_data.path().join("history.sqlite3")).unwrap().list(&HistoryQuery::default()).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].state, recs[0].attempts, recs[0].files), (TransferState::Completed, 2, Some(121)));
    let store = alice.transfers.store();
    assert!(store.batch_files(id).unwrap().iter().all(|r| r.state == TransferState::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_small_files_cut_short_by_a_kill_continues_with_only_the_rest() {
    // The server throttles what clients send, so that the one stream takes seconds,
    // and forgets a killed client at once (no session kept for it to resume).
    let options =
        ProsodyOptions { c2s_rate_limit: Some("1mb/s".into()), stream_management: false, ..ProsodyOptions::default() };
    let server = Prosody::start(options).unwrap();
    let bob_data = tempfile::tempdir().unwrap();
    let downloads = bob_data.path().join("in");
    let dl = downloads.display().to_string();
    let mut bob = SkiffProcess::start(&server, "bob", bob_data.path(), &["receive", "--dir", &dl, "--accept", "all"]);
    bob.expect(20, "ready", |v| v["type"] == "ready").await;
    // In band, in small blocks.
    let mut alice = Peer::start(&server, "alice", |c| {
        c.methods = vec![skiff_engine::transfer::Method::Ibb];
        c.ibb_block_size = 4096;
    })
    .await;
    alice.sees(&"bob@localhost".parse().unwrap()).await;
    let src = tempfile::tempdir().unwrap();
    let notes = src.path().join("notes");
    let files: Vec<(String, u64)> = (0..150).map(|i| (format!("d{}/{i:03}.txt", i % 7), 12_000 + i)).collect();
    let (sent, total) = make_folder(&notes, &files, 500);
    let chosen = skiff_engine::files::expand(std::slice::from_ref(&notes)).unwrap();
    let to: skiff_proto::jid::Jid = "bob@localhost".parse().unwrap();
    let ids = alice.transfers.send_chosen(&to, &chosen, None, Default::default()).await.unwrap();
    let id = ids[0];
    // Killed past half the stream, once files were named (that happens every second).
    bob.expect(90, "half", |v| v["type"] == "transfer_progress" && v["bytes"].as_u64().unwrap_or(0) * 2 >= total).await;
    let root = downloads.join("notes");
    let any_named = || tree(&root).keys().any(|p| !p.ends_with(".part"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !any_named() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    bob.kill_9().await;
    let end = alice.finished(id, 90).await;
    assert!(matches!(end, Event::TransferFailed { resumable: true, .. }), "{end:?}");
    let named = tree(&root).into_iter().filter(|(p, _)| !p.ends_with(".part")).count();
    assert!(named > 0 && named < files.len(), "{named} files were named before the kill");

    // bob comes back: the files named before the kill are found by their SHA-256 and
    // only the rest travels, in a run of its own.
    let (mut bob, offered) = back_again(&server, bob_data.path(), &dl).await;
    let held = offered["resume_from"].as_u64().unwrap();
    assert!(held > 0, "{offered}");
    completes(&mut bob).await;
    assert_eq!(tree(&root), sent, "the same tree, no .part left");
    let again = alice.finished(id, 60).await;
    let Event::TransferCompleted { bytes, verified, .. } = again else { panic!("{again:?}") };
    assert!(verified.is_verified());
    assert!(bytes <= total - held, "{bytes} bytes travelled again, {held} were there");
    let recs = Store::open(&bob_data.path().join("history.sqlite3")).unwrap().list(&HistoryQuery::default()).unwrap();
    assert_eq!((recs[0].state, recs[0].attempts, recs[0].files), (TransferState::Completed, 2, Some(150)));
}
