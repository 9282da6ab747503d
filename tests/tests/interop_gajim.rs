//! Interoperability by Jingle file transfer with a real third-party client: Gajim
//! 1.7.3 (Debian's package, run headless by `tests/peers/gajim_peer.py`), both
//! directions, SOCKS5 and in-band, 10 MiB, through the real Prosody; SHA-256 equal,
//! the route and the protocol in Skiff's history. Gajim offers every local address as
//! a streamhost, so each test runs again inside a network namespace that has only `lo`
//! (as root): Prosody, Skiff and Gajim all live there.

use skiff_engine::store::{Protocol, Verification};
use skiff_engine::transfer::{Method, TransferConfig};
use skiff_engine::Event;
use skiff_proto::jid::Jid;
use skiff_tests::peer::{random_file, sha256_file, Peer};
use skiff_tests::slix::{in_netns, ScriptPeer};
use skiff_tests::{Prosody, ProsodyOptions};

const SIZE: u64 = 10 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Skiff (alice) sends 10 MiB to Gajim (bob); checks both ends and returns nothing:
/// the route must be `route`.
async fn skiff_to_gajim(tweak: impl FnOnce(&mut TransferConfig), route: &str) {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display().to_string();
    let mut bob = ScriptPeer::gajim(&server, "bob", &["receive", "--dir", &dir, "--timeout", "240"]);
    let online = bob.expect("online", 90).await;
    let bob_jid: Jid = online["jid"].as_str().unwrap().parse().unwrap();
    // The product's own choice: Jingle, as Gajim takes it.
    let mut alice = Peer::start(&server, "alice", |c| {
        c.protocol = None;
        tweak(c);
    })
    .await;
    alice.sees(&bob_jid).await;
    let f = random_file(out.path(), "from-skiff.bin", SIZE, 21);
    let id = alice.transfers.send_file(&bob_jid, &f, Some("to Gajim".into())).await.unwrap();
    let end = alice.finished(id, 240).await;
    let Event::TransferCompleted { route: r, sha256, .. } = end else { panic!("{end:?}") };
    assert_eq!(r, route);
    let got = bob.expect("completed", 60).await;
    assert_eq!(got["sha256"].as_str(), Some(sha256.as_str()), "{got}");
    assert_eq!(got["size"].as_u64(), Some(SIZE));
    assert_eq!(sha256_file(std::path::Path::new(got["path"].as_str().unwrap())), sha256_file(&f));
    assert_eq!(bob.exit_code(30).await, 0);
    let rec = alice.transfers.store().get(id).unwrap();
    assert_eq!((rec.protocol, rec.route.map(|r| r.as_str())), (Some(Protocol::Jingle), Some(route)));
}

/// Gajim (bob) sends 10 MiB to Skiff (alice) with `method`; the route must be `route`.
async fn gajim_to_skiff(method: &str, route: &str) {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut alice = Peer::start(&server, "alice", |c| c.protocol = None).await;
    let src = tempfile::tempdir().unwrap();
    let f = random_file(src.path(), "from-gajim.bin", SIZE, 22);
    let to = alice.jid.to_string();
    let file = f.display().to_string();
    let mut bob = ScriptPeer::gajim(&server, "bob", &["send", "--to", &to, "--file", &file, "--method", method]);
    let got = alice.next_finished(300).await;
    let Event::TransferCompleted { id, route: r, sha256, path, verified, .. } = got else { panic!("{got:?}") };
    assert_eq!(r, route);
    assert_eq!(sha256, sha256_file(&f));
    assert_eq!(sha256_file(std::path::Path::new(&path)), sha256, "bytes on disk");
    // Gajim sends the SHA-256 of a file this large in a checksum session-info.
    assert_eq!(verified, Verification::Sha256);
    bob.expect("completed", 60).await;
    assert_eq!(bob.exit_code(30).await, 0);
    let rec = alice.transfers.store().get(id).unwrap();
    assert_eq!((rec.protocol, rec.route.map(|r| r.as_str())), (Some(Protocol::Jingle), Some(route)));
}

#[test]
fn skiff_to_gajim_socks5() {
    if in_netns("skiff_to_gajim_socks5") {
        // Gajim never connects to a loopback candidate: it is Skiff that connects to
        // Gajim's own streamhost.
        runtime().block_on(skiff_to_gajim(|_| {}, "s5b-direct"));
    }
}

#[test]
fn skiff_to_gajim_in_band() {
    if in_netns("skiff_to_gajim_in_band") {
        runtime().block_on(skiff_to_gajim(|c| c.methods = vec![Method::Ibb], "ibb"));
    }
}

#[test]
fn gajim_to_skiff_socks5() {
    if in_netns("gajim_to_skiff_socks5") {
        runtime().block_on(gajim_to_skiff("s5b", "s5b-direct"));
    }
}

#[test]
fn gajim_to_skiff_in_band() {
    if in_netns("gajim_to_skiff_in_band") {
        runtime().block_on(gajim_to_skiff("ibb", "ibb"));
    }
}
