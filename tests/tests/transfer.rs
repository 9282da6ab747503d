//! Skiff to Skiff file transfer through a real Prosody: every route (SOCKS5 direct,
//! SOCKS5 through Prosody's proxy65, in-band), several sizes, checked byte for byte
//! and in the SQLite history of both ends.

use skiff_engine::store::{HistoryQuery, TransferState};
use skiff_engine::transfer::Method;
use skiff_engine::Event;
use skiff_tests::peer::{check_transfer, random_file, sha256_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

fn server(users: &[&str]) -> Prosody {
    let contacts = users.iter().filter(|u| **u != "bob").map(|u| (u.to_string(), "bob".to_string())).collect();
    Prosody::start(ProsodyOptions {
        users: users.iter().map(|u| (u.to_string(), format!("{u}-pw"))).collect(),
        contacts,
        ..ProsodyOptions::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_size() {
    let server = server(&["alice", "bob", "carol", "dave"]);
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut direct = Peer::start(&server, "alice", |_| {}).await;
    let mut proxy = Peer::start(&server, "carol", |c| c.use_direct = false).await;
    let mut inband = Peer::start(&server, "dave", |c| c.methods = vec![Method::Ibb]).await;
    let files = tempfile::tempdir().unwrap();
    // 300 MiB in-band has a test of its own (sequence wrap).
    for (peer, route) in [(&mut direct, "s5b-direct"), (&mut proxy, "s5b-proxy"), (&mut inband, "ibb")] {
        peer.sees(&bob.jid).await;
        let sizes: &[u64] = if route == "ibb" { &[0, 1, 10 << 20] } else { &[0, 1, 10 << 20, 300 << 20] };
        for (i, size) in sizes.iter().enumerate() {
            let f = random_file(files.path(), &format!("{route}-{size}.bin"), *size, i as u64 + 1);
            check_transfer(peer, &mut bob, &f, route).await;
        }
    }
    let incoming = bob.transfers.store().list(&HistoryQuery::default()).unwrap();
    assert_eq!(incoming.len(), 11);
    // Which proxy the server has is kept per account, across restarts (its address is
    // asked for each transfer: routes.rs, a proxy that moved).
    let cached = proxy.transfers.store().setting("proxy-jids/carol@localhost").unwrap();
    assert_eq!(cached.as_deref(), Some("proxy.localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_failure_falls_back_to_in_band() {
    // No own streamhost and no proxy reachable: the configured proxy does not exist.
    let server = server(&["alice", "bob"]);
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut alice = Peer::start(&server, "alice", |c| {
        c.use_direct = false;
        c.proxy = Some("nosuchproxy.localhost".parse().unwrap());
    })
    .await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "fallback.bin", 300_000, 9);
    let mut notes = alice.client.events();
    check_transfer(&mut alice, &mut bob, &f, "ibb").await;
    // The user is told why it went in-band.
    let mut said = Vec::new();
    while let Ok(e) = notes.try_recv() {
        if let Event::TransferNotice { message, .. } = e {
            said.push(message);
        }
    }
    assert!(said.iter().any(|m| m.contains("in-band, which is slower") && m.contains("nosuchproxy")), "{said:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_offer_and_name_collisions() {
    let server = server(&["alice", "bob"]);
    let mut bob = Peer::start(&server, "bob", |c| c.accept = skiff_engine::transfer::AcceptPolicy::Ask).await;
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "report.pdf", 1000, 3);
    // Declined by hand.
    let id = alice.transfers.send_file(&bob.jid.bare(), &f, Some("the report".into())).await.unwrap();
    let offer =
        skiff_tests::peer::wait_for(&mut bob.events, 10, "offer", |e| matches!(e, Event::TransferOffered { .. })).await;
    let Event::TransferOffered { id: in_id, name, description, size, .. } = offer else { unreachable!() };
    assert_eq!((name.as_str(), description.as_deref(), size), ("report.pdf", Some("the report"), 1000));
    bob.transfers.reject(in_id).unwrap();
    let end = alice.finished(id, 10).await;
    assert!(matches!(end, Event::TransferRejected { .. }), "{end:?}");
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Rejected);
    // Accepted twice: the second copy does not overwrite the first.
    for round in 0..2 {
        let id = alice.transfers.send_file(&bob.jid.bare(), &f, None).await.unwrap();
        let offer =
            skiff_tests::peer::wait_for(&mut bob.events, 10, "offer", |e| matches!(e, Event::TransferOffered { .. }))
                .await;
        let Event::TransferOffered { id: in_id, .. } = offer else { unreachable!() };
        bob.transfers.accept(in_id, None).unwrap();
        assert!(matches!(alice.finished(id, 30).await, Event::TransferCompleted { .. }));
        let done = bob.next_finished(30).await;
        let Event::TransferCompleted { path, .. } = done else { panic!("{done:?}") };
        let expect = if round == 0 { "report.pdf" } else { "report (1).pdf" };
        assert!(path.ends_with(expect), "{path}");
    }
}

/// 300 MiB in 4096-byte blocks is 76800 blocks: the 16-bit sequence number wraps
/// from 65535 to 0 and the transfer must go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_band_sequence_numbers_wrap_past_65535() {
    let server = server(&["alice", "bob"]);
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut alice = Peer::start(&server, "alice", |c| {
        c.methods = vec![Method::Ibb];
        c.ibb_block_size = 4096;
    })
    .await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let size = 300u64 << 20;
    assert!(size / 4096 > 65536);
    let f = random_file(files.path(), "big.bin", size, 42);
    check_transfer(&mut alice, &mut bob, &f, "ibb").await;
}

/// A server that throttles clients (as ejabberd's default shaper does): in-band data
/// crawls, and the sender says why while it still completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_in_band_tells_the_user_why() {
    let server =
        Prosody::start(ProsodyOptions { c2s_rate_limit: Some("16kb/s".into()), ..ProsodyOptions::default() }).unwrap();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut alice = Peer::start(&server, "alice", |c| c.methods = vec![Method::Ibb]).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "slow.bin", 100_000, 4);
    let id = alice.transfers.send_file(&bob.jid.bare(), &f, None).await.unwrap();
    let notice =
        skiff_tests::peer::wait_for(&mut alice.events, 30, "a notice", |e| matches!(e, Event::TransferNotice { .. }))
            .await;
    let Event::TransferNotice { id: nid, message } = notice else { unreachable!() };
    assert_eq!(nid, id);
    assert!(message.contains("the server limits"), "{message}");
    assert!(matches!(alice.finished(id, 60).await, Event::TransferCompleted { .. }));
    assert!(matches!(bob.next_finished(30).await, Event::TransferCompleted { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_settings_apply_to_the_next_transfer() {
    let server = server(&["alice", "bob"]);
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut alice = Peer::start(&server, "alice", |c| c.methods = vec![Method::Ibb]).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "one.bin", 200_000, 21);
    check_transfer(&mut alice, &mut bob, &f, "ibb").await;

    // SOCKS5 allowed again: the next transfer goes direct, on 127.0.0.1.
    let mut cfg = alice.transfers.cfg();
    cfg.methods = vec![Method::S5b, Method::Ibb];
    alice.transfers.reconfigure(cfg.clone()).await;
    check_transfer(&mut alice, &mut bob, &f, "s5b-direct").await;
    let old = alice.transfers.own_streamhosts().await;
    assert!(!old.is_empty() && old.iter().all(|a| a.ip().to_string() == "127.0.0.1"), "{old:?}");

    // Another address: the streamhost moves there and the old listener closes.
    cfg.streamhost_addrs = vec!["127.0.0.2".parse().unwrap()];
    alice.transfers.reconfigure(cfg.clone()).await;
    check_transfer(&mut alice, &mut bob, &f, "s5b-direct").await;
    let new = alice.transfers.own_streamhosts().await;
    assert!(!new.is_empty() && new.iter().all(|a| a.ip().to_string() == "127.0.0.2"), "{new:?}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for a in &old {
        assert!(tokio::net::TcpStream::connect(a).await.is_err(), "the old streamhost {a} still accepts");
    }

    // No direct route and a proxy named in the settings: through the proxy.
    cfg.use_direct = false;
    cfg.proxy = Some(server.proxy_jid().parse().unwrap());
    alice.transfers.reconfigure(cfg).await;
    check_transfer(&mut alice, &mut bob, &f, "s5b-proxy").await;
}

/// "Try again" (`Transfers::retry`, the desktop's Retry): a declined transfer is sent
/// afresh as a new transfer that completes; the receiver cannot retry what it got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_sends_a_declined_file_afresh_and_is_the_senders_only() {
    use skiff_engine::transfer::{AcceptPolicy, TransferError};
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut bob = Peer::start(&server, "bob", |c| c.accept = AcceptPolicy::None).await;
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "notes.txt", 50_000, 3);
    let id = alice.transfers.send_file(&bob.jid.bare(), &f, None).await.unwrap();
    let end = alice.finished(id, 30).await;
    assert!(matches!(end, Event::TransferRejected { .. }), "{end:?}");
    let declined = bob.next_finished(30).await;
    let Event::TransferRejected { id: at_bob, .. } = declined else { panic!("{declined:?}") };

    // bob changes his mind; alice tries again: a new transfer, which arrives.
    let mut cfg = skiff_engine::transfer::TransferConfig::new(bob.dir.path().join("downloads"));
    cfg.streamhost_addrs = vec!["127.0.0.1".parse().unwrap()];
    cfg.accept = AcceptPolicy::All;
    bob.transfers.reconfigure(cfg).await;
    let again = alice.transfers.retry(id).await.unwrap();
    assert_ne!(again, id, "a declined transfer is sent afresh");
    let got = bob.next_finished(30).await;
    let Event::TransferCompleted { path, .. } = &got else { panic!("{got:?}") };
    assert_eq!(sha256_file(std::path::Path::new(path)), sha256_file(&f));
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Rejected, "the first one stays");
    // The receiver's "try again" on what it declined: only the sender can.
    let err = bob.transfers.retry(at_bob).await.unwrap_err();
    assert!(matches!(err, TransferError::NotResumable { .. }), "{err:?}");
}
