//! Folders from the command line (issue 14, first step): `skiff send JID DIR` sends every
//! file inside the folder, each offer described by its path inside it, against a real
//! Prosody and a real receiving Skiff. (Batches, with one answer and the tree kept on
//! the receiving side, come next.)

use std::collections::BTreeMap;

use skiff_engine::Event;
use skiff_tests::cli::SkiffProcess;
use skiff_tests::peer::{random_file, sha256_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_a_folder_file_by_file_with_relative_paths() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let src = tempfile::tempdir().unwrap();
    let photos = src.path().join("photos");
    for d in ["2024", "2023", "空/深"] {
        std::fs::create_dir_all(photos.join(d)).unwrap();
    }
    // Same names in different folders, an empty file, unicode names, a nested one.
    let mut sent = BTreeMap::new();
    for (i, (rel, size)) in [
        ("2024/a.jpg", 40_000),
        ("2023/a.jpg", 50_000),
        ("2023/empty.txt", 0),
        ("空/深/写真.jpg", 30_000),
        ("z.txt", 7),
    ]
    .into_iter()
    .enumerate()
    {
        let path = photos.join(rel);
        random_file(path.parent().unwrap(), path.file_name().unwrap().to_str().unwrap(), size, i as u64);
        sent.insert(format!("photos/{rel}"), sha256_file(&path));
    }
    let data = tempfile::tempdir().unwrap();
    let dir_arg = photos.display().to_string();
    let mut send = SkiffProcess::start(&server, "alice", data.path(), &["send", "bob@localhost", &dir_arg]);

    // bob gets one offer per file, each saying where it belongs, and every file intact.
    let mut described = BTreeMap::new();
    let mut arrived = BTreeMap::new();
    while arrived.len() < sent.len() {
        let e = skiff_tests::peer::wait_for(&mut bob.events, 60, "the folder's files", |e| {
            matches!(e, Event::TransferOffered { .. } | Event::TransferCompleted { .. } | Event::TransferFailed { .. })
        })
        .await;
        match e {
            Event::TransferOffered { id, description, .. } => {
                described.insert(id, description.expect("a file from a folder says where it belongs"));
            }
            Event::TransferCompleted { id, path, .. } => {
                let rel = described[&id].clone();
                arrived.insert(rel, sha256_file(std::path::Path::new(&path)));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(arrived, sent);
    let last = send.expect(60, "the sender's end", |v| v["type"] == "transfer_completed").await;
    assert_eq!(last["type"], "transfer_completed");
    drop(send);

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
    assert!(bob.events.try_recv().is_err(), "something was offered");
}
