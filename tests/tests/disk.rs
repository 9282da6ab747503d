//! A download folder that runs out of room, on a real small file system (an 8 MiB
//! tmpfs mounted for the test): an offer bigger than the free space is refused before
//! anything is written, with a sentence that names the folder and the shortfall; a disk
//! that fills up mid-transfer ends it with that sentence and keeps the `.part` for a
//! resume.

use std::path::{Path, PathBuf};
use std::process::Command;

use skiff_engine::session::ClientError;
use skiff_engine::{Client, Event};
use skiff_proto::ibb::{Data, Open, StanzaKind};
use skiff_proto::ns;
use skiff_proto::si::{FileInfo, FileOffer};
use skiff_proto::stanza::Condition;
use skiff_proto::xml::Element;
use skiff_tests::peer::{account, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

/// A tmpfs of `size` mounted on a new temporary folder, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Mounting needs root; the test scripts run as root.
            assert!(!nix_is_root(), "could not mount a tmpfs as root");
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn offer(sid: &str, name: &str, size: u64) -> Element {
    let file = FileInfo::new(name, size);
    FileOffer { sid: sid.into(), mime_type: None, file, methods: vec![ns::IBB.into()], batch: None }.into()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_download_folder_refuses_or_keeps_a_resumable_part() {
    let Some(disk) = SmallDisk::mount("8m") else { return };
    let downloads = disk.path().join("downloads");
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let dl = downloads.clone();
    let mut bob = Peer::start(&server, "bob", move |c| c.download_dir = dl).await;
    let alice = Client::start(account(&server, "alice", "raw"));
    alice.wait_online().await.unwrap();

    // 1. Bigger than the free space: refused at once, nothing written.
    let err = alice.set(Some(bob.jid.clone()), offer("big1", "big.bin", 10 << 20)).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::ResourceConstraint),
        "{err:?}"
    );
    let Event::TransferFailed { error, resumable, .. } = bob.next_finished(10).await else { panic!("not failed") };
    eprintln!("refused: {error}");
    assert!(error.contains(&downloads.display().to_string()), "{error}");
    assert!(error.contains("10.0 MiB") && error.contains("short"), "{error}");
    assert!(!resumable);
    assert!(!downloads.exists() || files_in(&downloads).is_empty(), "{:?}", files_in(&downloads));
    // The sender is not told where our files go.
    assert!(!err.to_string().contains(&downloads.display().to_string()), "{err}");

    // 2. Fits when accepted, then the disk fills up: the sentence, and a .part kept.
    let size = 6u64 << 20;
    alice.set(Some(bob.jid.clone()), offer("fill1", "fill.bin", size)).await.unwrap();
    alice
        .set(
            Some(bob.jid.clone()),
            Element::from(&Open { sid: "fill1".into(), block_size: 4096, stanza: StanzaKind::Iq }),
        )
        .await
        .unwrap();
    let block = vec![7u8; 4096];
    let mut seq = 0u16;
    // A quarter of the file first, then something else takes the rest of the disk.
    for _ in 0..(size / 4 / 4096) {
        let d = Data { sid: "fill1".into(), seq, data: block.clone() };
        alice.set(Some(bob.jid.clone()), Element::from(&d)).await.unwrap();
        seq = seq.wrapping_add(1);
    }
    let _ = std::fs::write(disk.path().join("filler"), vec![0u8; 8 << 20]);
    let refused = loop {
        let d = Data { sid: "fill1".into(), seq, data: block.clone() };
        match alice.set(Some(bob.jid.clone()), Element::from(&d)).await {
            Ok(_) => seq = seq.wrapping_add(1),
            Err(e) => break e,
        }
        assert!(u64::from(seq) * 4096 < size, "every block was taken on a full disk");
    };
    assert!(
        matches!(refused, ClientError::Stanza { ref error, .. } if error.condition == Condition::ResourceConstraint),
        "{refused:?}"
    );
    let Event::TransferFailed { error, resumable, .. } = bob.next_finished(10).await else { panic!("not failed") };
    eprintln!("mid-transfer: {error}");
    assert!(error.contains("is full") && error.contains(&downloads.display().to_string()), "{error}");
    assert!(resumable, "a full disk keeps the transfer resumable");
    let part = downloads.join("fill.bin.part");
    let kept = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    eprintln!("kept {kept} bytes in {}", part.display());
    assert!(kept > 0, "nothing kept for the resume");
    assert!(!downloads.join("fill.bin").exists());
}
