//! XEP-0198 stream management against a real Prosody (mod_smacks): alice's connection
//! runs through a loopback relay that the test cuts under her. The session is resumed
//! without losing or repeating a stanza; an in-band transfer running at the time and
//! offers waiting for an answer go on as if nothing happened; a session the server no
//! longer keeps starts anew, and what waited fails cleanly instead of hanging.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use skiff_engine::store::{TransferState, Verification};
use skiff_engine::transfer::AcceptPolicy;
use skiff_engine::{Client, Event};
use skiff_proto::jid::Jid;
use skiff_proto::stanza::Message;
use skiff_proto::transfer::Method;
use skiff_tests::peer::{account, random_file, sha256_file, wait_for, Peer};
use skiff_tests::relay::Relay;
use skiff_tests::{Prosody, ProsodyOptions};
use tokio::sync::broadcast::Receiver;

/// The engine's log on stderr when RUST_LOG asks for it.
fn logs() {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).try_init();
}

/// alice's account, through `relay`.
fn via(server: &Prosody, relay: &Relay, user: &str) -> skiff_engine::AccountConfig {
    let mut cfg = account(server, user, "skiff");
    cfg.server = Some(("127.0.0.1".into(), relay.port));
    cfg
}

/// Cuts `relay` and waits for the interruption and the resumption; returns how long
/// the session was away.
async fn cut_and_resume(relay: &Relay, events: &mut Receiver<Event>) -> Duration {
    let started = Instant::now();
    relay.cut();
    wait_for(events, 10, "the interruption", |e| matches!(e, Event::Interrupted { .. })).await;
    let back = wait_for(events, 20, "the resumption", |e| {
        matches!(e, Event::Resumed { .. } | Event::Online { .. } | Event::Offline { .. })
    })
    .await;
    assert!(matches!(back, Event::Resumed { .. }), "resumed, not a new session: {back:?}");
    started.elapsed()
}

fn ibb_only(cfg: &mut skiff_engine::transfer::TransferConfig) {
    cfg.methods = vec![Method::Ibb];
}

/// One transfer, in-band, with the connection of `cut_side` cut twice under it.
async fn ibb_transfer_survives(alice_sends: bool) {
    logs();
    const SIZE: u64 = 6 << 20;
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let relay = Relay::start(server.c2s_port).await.unwrap();
    let mut alice = Peer::start_as(via(&server, &relay, "alice"), ibb_only).await;
    let mut bob = Peer::start(&server, "bob", ibb_only).await;
    alice.sees(&bob.jid).await;
    bob.sees(&alice.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "film.mkv", SIZE, 21);
    let want = sha256_file(&f);
    let (sender, receiver) = if alice_sends { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
    let to = receiver.jid.bare();
    let id = sender.transfers.send_file(&to, &f, None).await.unwrap();

    // Under way in-band; then cut alice's connection, twice.
    let mut cut_events = alice.client.events();
    let mut gaps = Vec::new();
    for share in [4, 7] {
        wait_for(
            &mut bob.events,
            120,
            "progress",
            |e| matches!(e, Event::TransferProgress { bytes, .. } if *bytes * 10 >= SIZE * share),
        )
        .await;
        gaps.push(cut_and_resume(&relay, &mut cut_events).await);
    }
    let (sender, receiver) = if alice_sends { (&mut alice, &mut bob) } else { (&mut bob, &mut alice) };
    let got = receiver.next_finished(120).await;
    let Event::TransferCompleted { path, sha256, verified, route, .. } = &got else { panic!("{got:?}") };
    assert_eq!((route.as_str(), sha256.as_str(), *verified), ("ibb", want.as_str(), Verification::Sha256));
    assert_eq!(sha256_file(std::path::Path::new(path)), want);
    let sent = sender.finished(id, 60).await;
    assert!(matches!(sent, Event::TransferCompleted { .. }), "{sent:?}");
    // One attempt, never failed or offered again: the same transfer went on.
    for peer in [&alice, &bob] {
        let recs = peer.transfers.store().list(&Default::default()).unwrap();
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!((recs[0].state, recs[0].attempts), (TransferState::Completed, 1), "{:?}", recs[0]);
    }
    assert_eq!(relay.accepted(), 3, "one connection, then one per cut");
    println!(
        "{} MiB in-band, {} sending; alice's connection cut twice: back after {} ms and {} ms",
        SIZE >> 20,
        if alice_sends { "alice" } else { "bob" },
        gaps[0].as_millis(),
        gaps[1].as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_band_transfer_survives_cuts_of_the_senders_connection() {
    ibb_transfer_survives(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_band_transfer_survives_cuts_of_the_receivers_connection() {
    ibb_transfer_survives(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_waiting_for_an_answer_survive_a_cut() {
    logs();
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let relay = Relay::start(server.c2s_port).await.unwrap();
    let ask = |c: &mut skiff_engine::transfer::TransferConfig| c.accept = AcceptPolicy::Ask;
    let mut alice = Peer::start_as(via(&server, &relay, "alice"), ask).await;
    let mut bob = Peer::start(&server, "bob", ask).await;
    alice.sees(&bob.jid).await;
    bob.sees(&alice.jid).await;
    let files = tempfile::tempdir().unwrap();
    let to_bob = random_file(files.path(), "to-bob.bin", 300_000, 1);
    let to_alice = random_file(files.path(), "to-alice.bin", 200_000, 2);
    let out_id = alice.transfers.send_file(&bob.jid.bare(), &to_bob, None).await.unwrap();
    let in_id = bob.transfers.send_file(&alice.jid.bare(), &to_alice, None).await.unwrap();
    let incoming = |e: &Event| matches!(e, Event::TransferOffered { direction, .. } if direction == "incoming");
    let Event::TransferOffered { id: at_alice, .. } = wait_for(&mut alice.events, 20, "bob's offer", incoming).await
    else {
        unreachable!()
    };
    let Event::TransferOffered { id: at_bob, .. } = wait_for(&mut bob.events, 20, "alice's offer", incoming).await
    else {
        unreachable!()
    };

    // Both offers wait; alice's connection drops and comes back.
    let mut events = alice.client.events();
    let gap = cut_and_resume(&relay, &mut events).await;

    // Both are accepted afterwards and arrive.
    alice.transfers.accept(at_alice, None).unwrap();
    bob.transfers.accept(at_bob, None).unwrap();
    for (peer, ids, file) in [(&mut alice, [at_alice, out_id], &to_alice), (&mut bob, [at_bob, in_id], &to_bob)] {
        // Each side ends two transfers, in either order.
        let mut ends = std::collections::BTreeMap::new();
        while ends.len() < 2 {
            let e = peer.next_finished(60).await;
            let (Event::TransferCompleted { id, .. }
            | Event::TransferFailed { id, .. }
            | Event::TransferRejected { id, .. }) = &e
            else {
                unreachable!()
            };
            if ids.contains(id) {
                ends.insert(*id, e);
            }
        }
        let got = &ends[&ids[0]];
        let Event::TransferCompleted { path, .. } = got else { panic!("{got:?}") };
        assert_eq!(sha256_file(std::path::Path::new(path)), sha256_file(file));
        let sent = &ends[&ids[1]];
        assert!(matches!(sent, Event::TransferCompleted { .. }), "{sent:?}");
    }
    println!("two pending offers survived a cut; the session was back after {} ms", gap.as_millis());
}

/// Collects `n` chat messages from `rx` (waiting up to 20 s), then checks that no
/// more arrive for a moment; returns their bodies.
async fn bodies(rx: &mut tokio::sync::mpsc::Receiver<Message>, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => got.extend(m.body),
            _ => panic!("{} of {n} messages arrived: {got:?}", got.len()),
        }
    }
    if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(1500), rx.recv()).await {
        panic!("a message too many (a repeat?): {:?}", m.body);
    }
    got
}

fn chat(to: &Jid, body: String) -> Message {
    Message { id: None, from: None, to: Some(to.clone()), kind: "chat".into(), body: Some(body), payloads: Vec::new() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stanzas_sent_both_ways_while_the_line_is_down_arrive_once() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let relay = Relay::start(server.c2s_port).await.unwrap();
    let alice = Client::start(via(&server, &relay, "alice"));
    let bob = Client::start(account(&server, "bob", "skiff"));
    let mut alice_events = alice.events();
    let alice_jid = alice.wait_online().await.unwrap();
    let bob_jid = bob.wait_online().await.unwrap();
    let mut at_alice = alice.handle_messages();
    let mut at_bob = bob.handle_messages();
    // Wait until stream management is on (the first acknowledgement went both ways).
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The line drops and stays down for two seconds; both keep sending meanwhile.
    relay.set_down(true);
    relay.cut();
    wait_for(&mut alice_events, 10, "the interruption", |e| matches!(e, Event::Interrupted { .. })).await;
    for i in 0..25 {
        alice.send(chat(&bob_jid, format!("from alice {i}"))).unwrap();
        bob.send(chat(&alice_jid, format!("from bob {i}"))).unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
    }
    relay.set_down(false);
    let back = wait_for(&mut alice_events, 20, "the resumption", |e| {
        matches!(e, Event::Resumed { .. } | Event::Online { .. } | Event::Offline { .. })
    })
    .await;
    assert!(matches!(back, Event::Resumed { .. }), "{back:?}");
    assert_eq!(alice.jid(), Some(alice_jid.clone()), "the same resource");

    let want = |who: &str| (0..25).map(|i| format!("from {who} {i}")).collect::<Vec<_>>();
    let got_bob = bodies(&mut at_bob, 25).await;
    assert_eq!(got_bob, want("alice"), "in order, each once");
    let got_alice = bodies(&mut at_alice, 25).await;
    assert_eq!(got_alice.iter().collect::<BTreeSet<_>>(), want("bob").iter().collect(), "each once");
    assert!(relay.accepted() >= 3, "refused while down, then resumed");
    println!("25 messages each way while the line was down; all arrived once ({} connections)", relay.accepted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_gave_up_starts_anew_and_waiting_requests_fail() {
    // The server keeps an interrupted session for 1 s only.
    let server = Prosody::start(ProsodyOptions { resume_window: 1, ..ProsodyOptions::default() }).unwrap();
    let relay = Relay::start(server.c2s_port).await.unwrap();
    let alice = Client::start(via(&server, &relay, "alice"));
    let mut events = alice.events();
    let first = alice.wait_online().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    relay.set_down(true);
    relay.cut();
    wait_for(&mut events, 10, "the interruption", |e| matches!(e, Event::Interrupted { .. })).await;
    // A request made while the line is down waits in the session...
    let ping = skiff_proto::stanza::Iq::get("", Some("localhost".parse().unwrap()), skiff_proto::ping::ping());
    let waiting = alice.start_iq(ping, Some(Duration::from_secs(60))).unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    relay.set_down(false);
    // ...the server has forgotten the session: a new one starts, the request fails
    // at once (it never reached the server) rather than after its minute.
    let off = wait_for(&mut events, 30, "the end of the old session", |e| matches!(e, Event::Offline { .. })).await;
    let Event::Offline { reason, will_retry: true } = &off else { panic!("{off:?}") };
    assert!(reason.contains("could not be resumed"), "{reason}");
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("failed at once").unwrap();
    assert!(matches!(answer, Err(skiff_engine::session::ClientError::Disconnected)), "{answer:?}");
    wait_for(&mut events, 20, "a new session", |e| matches!(e, Event::Online { .. })).await;
    let second = alice.wait_online().await.unwrap();
    println!("old session {first}, new session {second}");
    // The new session works.
    let info = alice
        .get(Some("localhost".parse().unwrap()), skiff_proto::xml::Element::new("query", skiff_proto::ns::DISCO_INFO))
        .await;
    assert!(info.is_ok(), "{info:?}");
}
