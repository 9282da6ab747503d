//! Hostile batches (issue 14), against a real Prosody: a stranger's account sends
//! manifests that lie (paths leaving the folder, absolute paths, a million entries,
//! duplicates, sizes that do not add up) and streams that do not belong; each is
//! refused with an error naming what is wrong, nothing is asked about, recorded or
//! written, and the session goes on.

use std::time::Duration;

use skiff_engine::session::ClientError;
use skiff_engine::transfer::AcceptPolicy;
use skiff_engine::{Client, Event};
use skiff_proto::ns;
use skiff_proto::si::{FileInfo, FileOffer};
use skiff_proto::stanza::Condition;
use skiff_proto::xml::Element;
use skiff_tests::peer::{account, wait_for, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

fn el(xml: &str) -> Element {
    xml.parse().unwrap()
}

/// The refusal of `payload` sent by `from` to `to`: its condition and text.
async fn refused(from: &Client, to: &skiff_proto::jid::Jid, payload: Element) -> (Condition, String) {
    match from.set(Some(to.clone()), payload).await {
        Err(ClientError::Stanza { error, .. }) => (error.condition.clone(), error.text.clone().unwrap_or_default()),
        other => panic!("not refused: {other:?}"),
    }
}

fn everything_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            out.extend(everything_under(&p));
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_manifests_and_stray_streams_are_refused_with_nothing_written() {
    let mut opts = ProsodyOptions::default();
    opts.users.push(("mallory".into(), "mallory-pw".into()));
    let server = Prosody::start(opts).unwrap();
    let mut bob = Peer::start(&server, "bob", |c| c.accept = AcceptPolicy::Ask).await;
    let mallory = Client::start(account(&server, "mallory", "raw"));
    mallory.wait_online().await.unwrap();
    let to = bob.jid.clone();

    let cases: [(&str, Condition, &str); 7] = [
        (
            "<batch xmlns='urn:x-skiff:batch:0' id='b1' name='x' files='1' size='1'><file path='../../.bashrc' size='1'/></batch>",
            Condition::BadRequest,
            "leaves or names its folder",
        ),
        (
            "<batch xmlns='urn:x-skiff:batch:0' id='b2' name='x' files='1' size='1'><file path='/etc/passwd' size='1'/></batch>",
            Condition::BadRequest,
            "is absolute",
        ),
        (
            "<batch xmlns='urn:x-skiff:batch:0' id='b3' name='x' files='1000000' size='1'><file path='a' size='1'/></batch>",
            Condition::BadRequest,
            "at most 20000",
        ),
        (
            "<batch xmlns='urn:x-skiff:batch:0' id='b4' name='x' files='2' size='2'><file path='a/b' size='1'/><file path='A/B' size='1'/></batch>",
            Condition::NotAcceptable,
            "listed twice",
        ),
        (
            "<batch xmlns='urn:x-skiff:batch:0' id='b5' name='x' files='2' size='10'><file path='a' size='1'/><file path='b' size='2'/></batch>",
            Condition::NotAcceptable,
            "add up to 3",
        ),
        (
            "<batch xmlns='urn:x-skiff:batch:0' id='b6' name='x' files='2' size='18446744073709551615'><file path='a' size='18446744073709551615'/><file path='b' size='1'/></batch>",
            Condition::NotAcceptable,
            "add up to",
        ),
        // A later part of a batch never begun.
        (
            "<batch xmlns='urn:x-skiff:batch:0' id='b7' name='x' files='2' size='2' first='1'><file path='b' size='1'/></batch>",
            Condition::UnexpectedRequest,
            "no such batch",
        ),
    ];
    for (xml, condition, says) in cases {
        let (got, text) = refused(&mallory, &to, el(xml)).await;
        assert_eq!(got, condition, "{xml}: {text}");
        assert!(text.contains(says), "{xml}: {text}");
    }
    // A part with more entries than a part may hold (1,001 of a 2,000-file batch).
    let mut big = String::from("<batch xmlns='urn:x-skiff:batch:0' id='b8' name='x' files='2000' size='2000'>");
    for i in 0..1001 {
        big.push_str(&format!("<file path='f{i}' size='1'/>"));
    }
    big.push_str("</batch>");
    let (got, text) = refused(&mallory, &to, el(&big)).await;
    assert_eq!(got, Condition::BadRequest, "{text}");
    // A stream claiming to belong to a batch that was never accepted.
    let mut file = FileInfo::new("x", 5);
    file.range = true;
    let stray = FileOffer {
        sid: "s1".into(),
        mime_type: None,
        file,
        methods: vec![ns::BYTESTREAMS.into(), ns::IBB.into()],
        batch: Some(skiff_proto::batch::InBatch { id: "b1".into(), first: 0, count: 1 }),
    };
    let (got, text) = refused(&mallory, &to, (&stray).into()).await;
    assert_eq!(got, Condition::ItemNotFound, "{text}");

    // Nothing was asked about, recorded or written; the session is fine.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(e) = bob.events.try_recv() {
        assert!(!matches!(e, Event::TransferOffered { .. }), "asked about: {e:?}");
    }
    assert!(bob.transfers.store().list(&Default::default()).unwrap().is_empty());
    assert!(everything_under(bob.dir.path())
        .iter()
        .all(|p| p.ends_with("history.sqlite3") || p.to_string_lossy().contains("history.sqlite3-")));

    // A batch bob accepted: its streams are taken only as announced, only from the
    // client that announced it.
    let announce = el("<batch xmlns='urn:x-skiff:batch:0' id='ok' name='stuff' files='2' size='10'>\
         <file path='a.txt' size='4'/><file path='b.txt' size='6'/></batch>");
    let mallory2 = mallory.clone();
    let bob_jid = bob.jid.clone();
    let answer = tokio::spawn(async move { mallory2.set(Some(bob_jid), announce).await });
    let offered =
        wait_for(&mut bob.events, 10, "the batch's offer", |e| matches!(e, Event::TransferOffered { .. })).await;
    let Event::TransferOffered { id, files: Some(2), name, .. } = offered else { panic!("{offered:?}") };
    assert_eq!(name, "stuff");
    bob.transfers.accept(id, None).unwrap();
    answer.await.unwrap().expect("accepted");
    let offer = |first, count, size| {
        let mut file = FileInfo::new("a.txt", size);
        file.range = true;
        FileOffer {
            sid: format!("s{first}{count}{size}"),
            mime_type: None,
            file,
            methods: vec![ns::IBB.into()],
            batch: Some(skiff_proto::batch::InBatch { id: "ok".into(), first, count }),
        }
    };
    // The wrong size; a run past the end; several files together without their hashes.
    for (o, says) in [(offer(0, 1, 5), "size"), (offer(1, 2, 6), "outside the batch"), (offer(0, 2, 10), "SHA-256")] {
        let (got, text) = refused(&mallory, &to, (&o).into()).await;
        assert_eq!(got, Condition::BadRequest, "{text}");
        assert!(text.contains(says), "{text}");
    }
    // Another of mallory's clients cannot feed that batch.
    let other = Client::start(account(&server, "mallory", "other"));
    other.wait_online().await.unwrap();
    let (got, _) = refused(&other, &to, (&offer(0, 1, 4)).into()).await;
    assert_eq!(got, Condition::ItemNotFound);
    // Nothing but the batch's empty folder was written.
    let written: Vec<_> = everything_under(&bob.dir.path().join("downloads"));
    assert_eq!(written, [bob.dir.path().join("downloads/stuff")], "{written:?}");
    // bob's session is alive throughout.
    let ping = mallory.get(Some(to.clone()), Element::new("ping", ns::PING)).await;
    assert!(ping.is_ok(), "{ping:?}");
}
