//! Skiff to Skiff by Jingle file transfer (XEP-0166/0234/0260/0261) through a real
//! Prosody: SOCKS5 direct, SOCKS5 through Prosody's proxy65, in-band, the fallback
//! from dead candidates to in-band by transport-replace, and a decline; checked byte
//! for byte and in the SQLite history of both ends.

use skiff_engine::store::TransferState;
use skiff_engine::transfer::{Method, TransferConfig};
use skiff_engine::Event;
use skiff_proto::transfer::Protocol;
use skiff_tests::peer::{check_transfer, random_file, wait_for, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

fn server(users: &[&str]) -> Prosody {
    // Everyone is a contact of everyone who receives here.
    let receivers = ["bob", "erin", "gus"];
    let contacts = users
        .iter()
        .flat_map(|u| receivers.iter().filter(move |r| *r != u).map(move |r| (u.to_string(), r.to_string())))
        .collect();
    Prosody::start(ProsodyOptions {
        users: users.iter().map(|u| (u.to_string(), format!("{u}-pw"))).collect(),
        contacts,
        ..ProsodyOptions::default()
    })
    .unwrap()
}

fn jingle(c: &mut TransferConfig) {
    c.protocol = Some(Protocol::Jingle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_by_jingle() {
    let server = server(&["alice", "bob", "carol", "dave", "erin", "frank", "gus"]);
    // Receivers: bob offers his own streamhost; erin only the proxy; gus nothing.
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mut erin = Peer::start(&server, "erin", |c| c.use_direct = false).await;
    let mut gus = Peer::start(&server, "gus", |c| {
        c.use_direct = false;
        c.use_proxy = false;
    })
    .await;
    let mut direct = Peer::start(&server, "alice", jingle).await;
    let mut proxy = Peer::start(&server, "carol", |c| {
        jingle(c);
        c.use_direct = false;
    })
    .await;
    let mut inband = Peer::start(&server, "dave", |c| {
        jingle(c);
        c.methods = vec![Method::Ibb];
    })
    .await;
    // No candidate on either side works: in-band by transport-replace.
    let mut fallback = Peer::start(&server, "frank", |c| {
        jingle(c);
        c.use_direct = false;
        c.proxy = Some("nosuchproxy.localhost".parse().unwrap());
    })
    .await;
    let files = tempfile::tempdir().unwrap();
    sizes(&mut direct, &mut bob, "s5b-direct", files.path()).await;
    sizes(&mut proxy, &mut erin, "s5b-proxy", files.path()).await;
    sizes(&mut inband, &mut bob, "ibb", files.path()).await;
    let mut notes = fallback.client.events();
    sizes(&mut fallback, &mut gus, "ibb", files.path()).await;
    // It went in-band after SOCKS5 failed (transport-replace), and the user was told.
    let mut said = Vec::new();
    while let Ok(e) = notes.try_recv() {
        if let Event::TransferNotice { message, .. } = e {
            said.push(message);
        }
    }
    assert!(said.iter().any(|m| m.contains("in-band, which is slower")), "{said:?}");
}

/// Empty, one byte and a few MiB from `from` to `to`, each by `route`.
async fn sizes(from: &mut Peer, to: &mut Peer, route: &str, dir: &std::path::Path) {
    from.sees(&to.jid).await;
    let sizes: &[u64] = if route == "ibb" { &[0, 1, 3 << 20] } else { &[0, 1, 10 << 20] };
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("{}-{route}-{size}.bin", from.jid.local().unwrap_or_default());
        let f = random_file(dir, &name, *size, i as u64 + 1);
        check_transfer(from, to, &f, route).await;
    }
    // Both ends record that Jingle carried them.
    let q = skiff_engine::store::HistoryQuery::default();
    for peer in [&*from, &*to] {
        let recs = peer.transfers.store().list(&q).unwrap();
        let mine: Vec<_> = recs.iter().filter(|r| r.file_name.contains(route)).collect();
        assert!(!mine.is_empty());
        assert!(mine.iter().all(|r| r.protocol == Some(Protocol::Jingle)), "{mine:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_jingle_offer() {
    let server = server(&["alice", "bob"]);
    let mut bob = Peer::start(&server, "bob", |c| c.accept = skiff_engine::transfer::AcceptPolicy::Ask).await;
    let mut alice = Peer::start(&server, "alice", jingle).await;
    alice.sees(&bob.jid).await;
    // Bob's client is known by its entity capabilities (XEP-0115), learnt once from
    // its presence: no disco#info round trip per transfer.
    // (His first presence, sent before his engine added its features, has other caps:
    // the ones learnt last must list Jingle file transfer.)
    let takes_jingle = |f: &Option<Vec<String>>| f.iter().flatten().any(|f| f == skiff_proto::ns::JINGLE_FT5);
    let mut known = None;
    for _ in 0..100 {
        known = alice.client.caps_features(&bob.jid);
        if takes_jingle(&known) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(takes_jingle(&known), "{known:?}");
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "report.pdf", 1000, 3);
    let id = alice.transfers.send_file(&bob.jid.bare(), &f, Some("the report".into())).await.unwrap();
    let offer = wait_for(&mut bob.events, 10, "offer", |e| matches!(e, Event::TransferOffered { .. })).await;
    let Event::TransferOffered { id: in_id, name, description, size, .. } = offer else { unreachable!() };
    assert_eq!((name.as_str(), description.as_deref(), size), ("report.pdf", Some("the report"), 1000));
    bob.transfers.reject(in_id).unwrap();
    let end = alice.finished(id, 10).await;
    assert!(matches!(end, Event::TransferRejected { .. }), "{end:?}");
    assert_eq!(alice.transfers.store().get(id).unwrap().state, TransferState::Rejected);
}
