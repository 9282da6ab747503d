//! No fixed waits before an offer: `skiff send` to a full JID outside the roster offers
//! at once (disco#info tells whether it is there), and `skiff resume` of a transfer to
//! such a JID goes to that JID again (there is no presence to find it by).

use std::process::{Command, Stdio};

use skiff_tests::cli::{skiff_binary, SkiffProcess};
use skiff_tests::peer::{random_file, sha256_file};
use skiff_tests::{Prosody, ProsodyOptions};

/// alice and bob, not contacts of each other.
fn strangers() -> ProsodyOptions {
    ProsodyOptions { contacts: Vec::new(), ..ProsodyOptions::default() }
}

/// Seconds since midnight of a log line's RFC 3339 timestamp (`…T03:40:12.123456Z …`).
fn log_time(line: &str) -> Option<f64> {
    let t = line.split_whitespace().next()?.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = t.split(':');
    let (h, m, s) = (parts.next()?.parse::<f64>().ok()?, parts.next()?.parse::<f64>().ok()?, parts.next()?);
    Some(h * 3600.0 + m * 60.0 + s.parse::<f64>().ok()?)
}

fn receiver(server: &Prosody, data: &std::path::Path, dir: &str, extra: &[&str]) -> SkiffProcess {
    let mut args = vec!["receive", "--dir", dir, "--accept", "all", "--from-strangers", "accept"];
    args.extend_from_slice(extra);
    SkiffProcess::start(server, "bob", data, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_jid_outside_the_roster_is_offered_at_once() {
    let server = Prosody::start(strangers()).unwrap();
    let bob_data = tempfile::tempdir().unwrap();
    let dl = bob_data.path().join("in").display().to_string();
    let mut bob = receiver(&server, bob_data.path(), &dl, &["--count", "1"]);
    bob.expect(20, "ready", |v| v["type"] == "ready").await;

    let tmp = tempfile::tempdir().unwrap();
    let file = random_file(tmp.path(), "note.bin", 200_000, 3);
    let out = Command::new(skiff_binary())
        .args(["--jid", &server.jid("alice"), "--server", &format!("127.0.0.1:{}", server.c2s_port)])
        .args(["--ca-file", &server.ca_file.display().to_string(), "--streamhost-addr", "127.0.0.1"])
        .args(["--data-dir", &tmp.path().join("data").display().to_string()])
        .args(["send", "bob@localhost/cli", "--protocol", "si"])
        .arg(&file)
        .env("SKIFF_PASSWORD", server.password("alice"))
        .env("SKIFF_LOG", "skiff::xml=debug")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The log's timestamps, without colours.
    let log = String::from_utf8_lossy(&out.stderr).replace("\u{1b}[2m", "").replace("\u{1b}[0m", "");
    assert!(out.status.success(), "{log}");
    // From the initial presence (sent right after sign-in) to the SI offer.
    let at = |needle: &dyn Fn(&str) -> bool| log.lines().find(|l| needle(l)).and_then(log_time);
    let presence = at(&|l| l.contains("SEND <presence")).expect("initial presence in the log");
    let offer = at(&|l| l.contains("SEND <iq") && l.contains("http://jabber.org/protocol/si"))
        .expect("the SI offer in the log");
    let ms = (offer - presence) * 1000.0;
    println!("offer {ms:.1} ms after the initial presence");
    assert!((0.0..200.0).contains(&ms), "the offer went {ms:.0} ms after sign-in");
    let done = bob.expect(30, "completion", |v| v["type"] == "transfer_completed").await;
    assert_eq!(done["sha256"].as_str(), Some(sha256_file(&file).as_str()), "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_to_a_full_jid_outside_the_roster_resumes_to_it() {
    const SIZE: u64 = 96 << 20;
    let server = Prosody::start(strangers()).unwrap();
    let bob_data = tempfile::tempdir().unwrap();
    let downloads = bob_data.path().join("in");
    let dl = downloads.display().to_string();
    let mut bob = receiver(&server, bob_data.path(), &dl, &[]);
    bob.expect(20, "ready", |v| v["type"] == "ready").await;

    let alice_data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let file = random_file(files.path(), "big.bin", SIZE, 11);
    let path = file.display().to_string();
    // In-band: slow enough to be cut part-way.
    let mut alice = SkiffProcess::start(
        &server,
        "alice",
        alice_data.path(),
        &["send", "bob@localhost/cli", &path, "--method", "ibb", "--protocol", "si"],
    );
    let offered = alice.expect(20, "the offer", |v| v["type"] == "transfer_offered").await;
    let id = offered["id"].as_i64().unwrap();
    bob.expect(60, "10 %", |v| v["type"] == "transfer_progress" && v["bytes"].as_u64().unwrap_or(0) * 10 >= SIZE).await;
    bob.kill_9().await;
    let end = alice.expect(90, "the break", |v| v["type"] == "transfer_failed").await;
    assert_eq!(end["resumable"], true, "{end}");
    let _ = alice.child.wait().await;

    // bob is back (same resource, still not a contact): resuming finds him by his JID.
    let mut bob = receiver(&server, bob_data.path(), &dl, &["--count", "1"]);
    bob.expect(20, "ready", |v| v["type"] == "ready").await;
    let mut alice = SkiffProcess::start(&server, "alice", alice_data.path(), &["resume", &id.to_string()]);
    let offered = bob.expect(30, "the offer again", |v| v["type"] == "transfer_offered").await;
    assert!(offered["resume_from"].as_u64().unwrap() > 0, "{offered}");
    let done =
        bob.expect(180, "completion", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed").await;
    assert_eq!(done["type"], "transfer_completed", "{done}");
    assert_eq!(sha256_file(&downloads.join("big.bin")), sha256_file(&file));
    alice.expect(30, "alice's completion", |v| v["type"] == "transfer_completed").await;
}
