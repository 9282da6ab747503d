//! Interoperability with a third-party client: slixmpp (Debian's python3-slixmpp),
//! both directions, over each route it supports, through the real Prosody.

use skiff_engine::store::Route;
use skiff_engine::transfer::Method;
use skiff_engine::Event;
use skiff_proto::jid::Jid;
use skiff_tests::peer::{random_file, sha256_file, Peer};
use skiff_tests::slix::SlixPeer;
use skiff_tests::{Prosody, ProsodyOptions};

fn server() -> Prosody {
    Prosody::start(ProsodyOptions::default()).unwrap()
}

/// Skiff (alice) sends to slixmpp (bob) receiving with `method`; returns the route used.
async fn skiff_to_slixmpp(
    tweak: impl FnOnce(&mut skiff_engine::transfer::TransferConfig),
    method: &str,
    size: u64,
) -> Route {
    let server = server();
    let out = tempfile::tempdir().unwrap();
    let mut bob = SlixPeer::start(
        &server,
        "bob",
        &["receive", "--dir", &out.path().display().to_string(), "--method", method, "--timeout", "120"],
    );
    let online = bob.expect("online", 20).await;
    let bob_jid: Jid = online["jid"].as_str().unwrap().parse().unwrap();
    let mut alice = Peer::start(&server, "alice", tweak).await;
    alice.sees(&bob_jid).await;
    let f = random_file(out.path(), "from-skiff.bin", size, 11);
    let id = alice.transfers.send_file(&bob_jid.bare(), &f, Some("interop".into())).await.unwrap();
    let end = alice.finished(id, 180).await;
    let Event::TransferCompleted { route, sha256, .. } = end else { panic!("{end:?}") };
    let got = bob.expect("completed", 60).await;
    assert_eq!(got["sha256"].as_str(), Some(sha256.as_str()));
    assert_eq!(got["size"].as_u64(), Some(size));
    assert_eq!(got["md5_ok"].as_bool(), Some(true), "{got}");
    assert_eq!(sha256_file(std::path::Path::new(got["path"].as_str().unwrap())), sha256_file(&f));
    assert_eq!(bob.exit_code(20).await, 0);
    route
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skiff_to_slixmpp_in_band() {
    let route = skiff_to_slixmpp(|c| c.methods = vec![Method::Ibb], "ibb", 300_000).await;
    assert_eq!(route, "ibb");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skiff_to_slixmpp_socks5_direct() {
    let route = skiff_to_slixmpp(|_| {}, "s5b", 5 << 20).await;
    assert_eq!(route, "s5b-direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skiff_to_slixmpp_socks5_proxy() {
    let route = skiff_to_slixmpp(|c| c.use_direct = false, "s5b", 5 << 20).await;
    assert_eq!(route, "s5b-proxy");
}

/// slixmpp (alice) sends to Skiff (bob) with `method`.
async fn slixmpp_to_skiff(method: &str, size: u64, route: &str) {
    let server = server();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "from-slixmpp.bin", size, 12);
    let mut args = vec![
        "send".to_string(),
        "--to".into(),
        bob.jid.to_string(),
        "--file".into(),
        f.display().to_string(),
        "--method".into(),
        method.into(),
    ];
    if method == "s5b" {
        args.extend(["--proxy".into(), server.proxy_jid()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut alice = SlixPeer::start(&server, "alice", &args);
    let sent = alice.expect("completed", 120).await;
    let end = bob.next_finished(60).await;
    let Event::TransferCompleted { route: r, sha256, path, .. } = end else { panic!("{end:?}") };
    assert_eq!(r, route);
    assert_eq!(sha256, sha256_file(&f));
    assert_eq!(sent["sha256"].as_str(), Some(sha256.as_str()));
    assert_eq!(sha256_file(std::path::Path::new(&path)), sha256);
    assert_eq!(alice.exit_code(20).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_to_skiff_in_band() {
    slixmpp_to_skiff("ibb", 300_000, "ibb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slixmpp_to_skiff_socks5_proxy() {
    slixmpp_to_skiff("s5b", 5 << 20, "s5b-proxy").await;
}
