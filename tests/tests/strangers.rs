//! Offers from strangers and floods of offers, against a real Prosody: a stranger's
//! offer (SI, iq:oob, a link in a message) is refused at once when the setting says so
//! (no record, no prompt, nothing fetched) and asked about otherwise; 1,000 offers from a stranger in a burst stay within the caps on
//! waiting offers, are reported in a few summary events, and a contact's 20 MiB
//! transfer meanwhile takes less than twice its time alone.

use std::time::{Duration, Instant};

use skiff_engine::session::ClientError;
use skiff_engine::transfer::{AcceptPolicy, StrangerPolicy, MAX_PENDING_PER_PEER};
use skiff_engine::{Client, Event};
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::oob::IqOob;
use skiff_proto::si::{FileInfo, FileOffer};
use skiff_proto::stanza::{Condition, Iq};
use skiff_proto::xml::Element;
use skiff_tests::peer::{account, random_file, sha256_file, wait_for, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

fn server() -> Prosody {
    let mut opts = ProsodyOptions::default();
    opts.users.push(("mallory".into(), "mallory-pw".into()));
    Prosody::start(opts).unwrap()
}

fn offer(sid: &str, name: &str) -> Element {
    let file = FileInfo::new(name, 1000);
    FileOffer {
        sid: sid.into(),
        mime_type: None,
        file,
        methods: vec![ns::BYTESTREAMS.into(), ns::IBB.into()],
        batch: None,
    }
    .into()
}

async fn stranger(server: &Prosody) -> Client {
    let c = Client::start(account(server, "mallory", "raw"));
    c.wait_online().await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_offer_is_refused_or_asked_about_as_set() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |c| {
        c.accept = AcceptPolicy::Ask;
        c.strangers = StrangerPolicy::Refuse;
    })
    .await;
    let mallory = stranger(&server).await;
    let err = mallory.set(Some(alice.jid.clone()), offer("s1", "hello.exe")).await.unwrap_err();
    assert!(matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::Forbidden), "{err:?}");
    assert!(err.to_string().contains("contacts only"), "{err}");
    assert!(alice.transfers.store().list(&Default::default()).unwrap().is_empty(), "a record for a refused offer");
    // The same for a jabber:iq:oob request and for links in a message: refused or
    // ignored, nothing recorded, nothing fetched.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/hello.exe", listener.local_addr().unwrap().port());
    let oob = IqOob { url: url.clone(), desc: None, sid: None };
    let err = mallory.set(Some(alice.jid.clone()), oob.into()).await.unwrap_err();
    assert!(matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::Forbidden), "{err:?}");
    let mut m = Element::new("message", "jabber:client").with_attr("to", alice.jid.to_string());
    m.push_child(Element::new("x", ns::X_OOB).with_child(Element::new("url", ns::X_OOB).with_text(url.as_str())));
    mallory.send(m).unwrap();
    // A ping after the message: once it is answered, the message was handled.
    mallory.get(Some(alice.jid.clone()), Element::new("ping", "urn:xmpp:ping")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dialled = tokio::time::timeout(Duration::from_millis(10), listener.accept()).await.is_ok();
    assert!(!dialled, "the stranger's link was fetched");
    assert!(alice.transfers.store().list(&Default::default()).unwrap().is_empty(), "a record for a refused offer");
    while let Ok(e) = alice.events.try_recv() {
        assert!(!matches!(e, Event::TransferOffered { .. }), "the refused offer was shown: {e:?}");
    }
    // A contact's offer still asks.
    let bob = Client::start(account(&server, "bob", "raw"));
    bob.wait_online().await.unwrap();
    let (b, to) = (bob.clone(), alice.jid.clone());
    tokio::spawn(async move { b.set(Some(to), offer("s2", "notes.txt")).await });
    wait_for(
        &mut alice.events,
        10,
        "bob's offer",
        |e| matches!(e, Event::TransferOffered { name, .. } if name == "notes.txt"),
    )
    .await;

    // With "ask", the stranger's offer is shown like any other.
    let mut cfg = alice.transfers.cfg();
    cfg.strangers = StrangerPolicy::Ask;
    alice.transfers.reconfigure(cfg).await;
    let (m, to) = (mallory.clone(), alice.jid.clone());
    tokio::spawn(async move { m.set(Some(to), offer("s3", "hello.exe")).await });
    wait_for(
        &mut alice.events,
        10,
        "the stranger's offer",
        |e| matches!(e, Event::TransferOffered { name, .. } if name == "hello.exe"),
    )
    .await;
}

/// Sends `path` from bob to alice, alice accepting it by hand; the seconds it took.
async fn contact_transfer(alice: &mut Peer, bob: &mut Peer, path: &std::path::Path) -> f64 {
    let started = Instant::now();
    let out_id = bob.transfers.send_file(&alice.jid, path, None).await.unwrap();
    let offered = wait_for(&mut alice.events, 30, "bob's offer", |e| {
        matches!(e, Event::TransferOffered { peer, direction, .. } if peer.starts_with("bob@") && direction == "incoming")
    })
    .await;
    let Event::TransferOffered { id, .. } = offered else { unreachable!() };
    alice.transfers.accept(id, None).unwrap();
    let end = bob.finished(out_id, 120).await;
    assert!(matches!(end, Event::TransferCompleted { .. }), "{end:?}");
    let got = wait_for(
        &mut alice.events,
        30,
        "the file",
        |e| matches!(e, Event::TransferCompleted { id: i, .. } if *i == id),
    )
    .await;
    let Event::TransferCompleted { path: got, .. } = got else { unreachable!() };
    assert_eq!(sha256_file(std::path::Path::new(&got)), sha256_file(path));
    started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_offers_from_a_stranger_stay_within_the_caps() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |c| c.accept = AcceptPolicy::Ask).await;
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    alice.sees(&bob.jid).await;
    bob.sees(&alice.jid).await;
    let files = tempfile::tempdir().unwrap();
    let big = random_file(files.path(), "contact.bin", 20 << 20, 7);
    let alone = contact_transfer(&mut alice, &mut bob, &big).await;

    let mallory = stranger(&server).await;
    let to: Jid = alice.jid.clone();
    // What the shells would see during the flood (the test's own receiver is busy
    // waiting for bob's transfer).
    let mut shell = alice.client.events();
    let mut answers = Vec::new();
    // The burst: 1,000 offers, each a real SI offer with its own stream id.
    let burst = Instant::now();
    for i in 0..1000 {
        let m = mallory.clone();
        let to = to.clone();
        answers.push(tokio::spawn(async move {
            let r = m
                .iq_within(
                    Iq::set(format!("f{i}"), Some(to), offer(&format!("flood{i}"), &format!("f{i}.bin"))),
                    Some(Duration::from_secs(60)),
                )
                .await;
            (r, burst.elapsed())
        }));
    }
    let flooded = contact_transfer(&mut alice, &mut bob, &big).await;
    eprintln!("contact's 20 MiB: {alone:.2} s alone, {flooded:.2} s during the flood ({:.2}x)", flooded / alone);

    // Every offer was answered: all but the few waiting ones with resource-constraint.
    let mut refused = 0;
    let mut waiting = 0;
    let mut drained = Duration::ZERO;
    for a in answers {
        match tokio::time::timeout(Duration::from_secs(1), a).await {
            Ok(Ok((Err(ClientError::Stanza { error, .. }), at)))
                if error.condition == Condition::ResourceConstraint =>
            {
                refused += 1;
                drained = drained.max(at);
            }
            Ok(Ok(other)) => panic!("unexpected answer: {other:?}"),
            Ok(Err(e)) => panic!("{e}"),
            Err(_) => waiting += 1, // still waiting for alice's decision
        }
    }
    // The last summary comes a second after its burst.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pending = alice.transfers.pending_offers();
    let records = alice.transfers.store().list(&Default::default()).unwrap();
    let from_mallory = records.iter().filter(|r| r.peer_jid.starts_with("mallory@")).count();
    let mut offered = 0;
    let mut summaries = Vec::new();
    loop {
        match shell.try_recv() {
            Ok(Event::TransferOffered { peer, .. }) if peer.starts_with("mallory@") => offered += 1,
            Ok(Event::OffersRefused { count, .. }) => summaries.push(count),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => panic!("lost {n} events"),
            Err(_) => break,
        }
    }
    eprintln!(
        "refused {refused}, waiting {waiting}, pending {pending}, records {from_mallory}, offers shown {offered}, summaries {summaries:?}; the last refusal reached the stranger {drained:?} after the burst began"
    );
    assert_eq!(refused + waiting, 1000);
    assert_eq!(waiting, MAX_PENDING_PER_PEER);
    assert_eq!(from_mallory, MAX_PENDING_PER_PEER, "records for refused offers");
    assert_eq!(offered, MAX_PENDING_PER_PEER, "{offered} offers shown");
    assert!(pending <= MAX_PENDING_PER_PEER, "{pending}");
    assert!(!summaries.is_empty() && summaries.len() <= 10, "{summaries:?}");
    // Offers beyond what the session's queue for SI requests holds (256) are refused
    // by the session itself before the engine sees them; the rest are summarised.
    let summarised = summaries.iter().sum::<u64>();
    assert!(summarised <= refused as u64 && summarised + 256 >= refused as u64, "{summarised} of {refused}");
    // A 20 MiB transfer over a direct bytestream on loopback takes a fraction of a
    // second, and the flood's round trips through Prosody (and this process, which
    // also runs the stranger's client on the same two cores) take about as long: the
    // bound allows 0.5 s as the smallest base.
    assert!(flooded < 2.0 * alone.max(0.5), "the flood slowed the contact down: {alone:.2} s -> {flooded:.2} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_filling_the_total_cap_do_not_crowd_out_contacts() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |c| {
        c.accept = AcceptPolicy::Ask;
        c.max_pending = 3;
    })
    .await;
    let mallory = stranger(&server).await;
    for i in 0..3 {
        let (m, to) = (mallory.clone(), alice.jid.clone());
        tokio::spawn(async move { m.set(Some(to), offer(&format!("w{i}"), &format!("w{i}.bin"))).await });
    }
    for _ in 0..3 {
        wait_for(&mut alice.events, 10, "a waiting offer", |e| matches!(e, Event::TransferOffered { .. })).await;
    }
    // The total is reached: another stranger's offer is refused...
    let err = mallory.set(Some(alice.jid.clone()), offer("w3", "w3.bin")).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::ResourceConstraint),
        "{err:?}"
    );
    // ...and a contact's is still asked about.
    let bob = Client::start(account(&server, "bob", "raw"));
    bob.wait_online().await.unwrap();
    let (b, to) = (bob.clone(), alice.jid.clone());
    tokio::spawn(async move { b.set(Some(to), offer("b1", "from-bob.txt")).await });
    wait_for(
        &mut alice.events,
        10,
        "bob's offer",
        |e| matches!(e, Event::TransferOffered { name, .. } if name == "from-bob.txt"),
    )
    .await;
    assert_eq!(alice.transfers.pending_offers(), 4);
}

/// A checksum for someone else's transfer (Skiff's SHA-256 after the data): a stranger
/// who knows the stream id cannot make the receiver accept or refuse the file; only
/// the sender's checksum counts, and garbage gets an error without ending anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_checksum_from_a_stranger_changes_nothing() {
    use skiff_proto::hashes::Checksum;
    let server = server();
    let mut alice = Peer::start(&server, "alice", |c| c.methods = vec![skiff_proto::transfer::Method::Ibb]).await;
    let mut bob = Peer::start(&server, "bob", |c| c.methods = vec![skiff_proto::transfer::Method::Ibb]).await;
    bob.sees(&alice.jid).await;
    let mallory = stranger(&server).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "report.pdf", 3 << 20, 77);
    let want = sha256_file(&f);
    bob.transfers.send_file(&alice.jid.bare(), &f, None).await.unwrap();
    wait_for(
        &mut alice.events,
        30,
        "the data flowing",
        |e| matches!(e, Event::TransferProgress { bytes, .. } if *bytes > 0),
    )
    .await;
    let rec = alice.transfers.store().list(&Default::default()).unwrap().remove(0);
    // The right stream id, a wrong hash, from the wrong person: no such stream for them.
    let forged = Checksum { sid: rec.sid.clone(), sha256: "00".repeat(32) };
    let err = mallory.set(Some(alice.jid.clone()), Element::from(&forged)).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::ItemNotFound),
        "{err:?}"
    );
    // Garbage in the checksum namespace: an error, the session goes on.
    let junk = Element::new("checksum", ns::SKIFF_CHECKSUM)
        .with_attr("sid", rec.sid.as_str())
        .with_child(Element::new("hash", ns::HASHES).with_attr("algo", "sha-256").with_text("%%%"));
    assert!(mallory.set(Some(alice.jid.clone()), junk).await.is_err());
    // The transfer ends verified with the real hash.
    let got = alice.next_finished(120).await;
    let Event::TransferCompleted { sha256, verified, path, .. } = &got else { panic!("{got:?}") };
    assert_eq!((sha256.as_str(), *verified), (want.as_str(), skiff_engine::store::Verification::Sha256));
    assert_eq!(sha256_file(std::path::Path::new(path)), want);
}
