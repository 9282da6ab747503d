//! Hostile Jingle input against a real Prosody: offers from a stranger's account,
//! malformed offers, requests for sessions that do not exist, offers Skiff cannot
//! take. Each is answered as XEP-0166 says (an error, or an ack and a
//! session-terminate with the right `<reason/>`), nothing is recorded or written, and
//! the session goes on: a contact's file by Jingle arrives afterwards.

use std::time::Duration;

use skiff_engine::session::ClientError;
use skiff_engine::store::{HistoryQuery, Protocol};
use skiff_engine::transfer::{AcceptPolicy, StrangerPolicy, TransferConfig};
use skiff_engine::Client;
use skiff_proto::jingle::{Jingle, JingleError, ReasonCondition};
use skiff_proto::ns;
use skiff_proto::stanza::{Condition, Iq, StanzaError};
use skiff_proto::xml::Element;
use skiff_tests::peer::{account, check_transfer, random_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};
use tokio::sync::mpsc;

/// A file offer as other clients write it; `content` goes inside `<jingle/>`.
fn initiate(sid: &str, from: &str, content: &str) -> Element {
    format!(
        "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='{from}' sid='{sid}'>{content}</jingle>"
    )
    .parse()
    .unwrap()
}

fn file_content(name: &str, creator: &str, transport_ns: &str, app_ns: &str) -> String {
    format!(
        "<content creator='{creator}' name='{name}' senders='initiator'>\
         <description xmlns='{app_ns}'><file><name>x.bin</name><size>1000</size></file></description>\
         <transport xmlns='{transport_ns}' sid='t-{name}' block-size='4096'/></content>"
    )
}

const FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";
const IBB: &str = "urn:xmpp:jingle:transports:ibb:1";

async fn refused(from: &Client, to: &skiff_proto::jid::Jid, payload: Element) -> StanzaError {
    match from.set(Some(to.clone()), payload).await {
        Err(ClientError::Stanza { error, .. }) => *error,
        other => panic!("not refused: {other:?}"),
    }
}

/// The next session-terminate for `sid` that reaches `rx`, with its reason.
async fn terminated(rx: &mut mpsc::Receiver<Iq>, sid: &str) -> ReasonCondition {
    loop {
        let iq = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a session-terminate").unwrap();
        let j = Jingle::try_from(iq.request_payload().unwrap()).unwrap();
        if j.sid == sid && j.action == skiff_proto::jingle::Action::SessionTerminate {
            return j.reason.map(|r| r.condition).expect("a reason");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jingle_is_refused_with_its_reason_and_nothing_is_written() {
    let mut opts = ProsodyOptions::default();
    opts.users.push(("mallory".into(), "mallory-pw".into()));
    let server = Prosody::start(opts).unwrap();
    let mut bob = Peer::start(&server, "bob", |c: &mut TransferConfig| {
        c.accept = AcceptPolicy::All;
        c.strangers = StrangerPolicy::Refuse;
    })
    .await;
    let to = bob.jid.clone();
    let mallory = Client::start(account(&server, "mallory", "raw"));
    let mallory_jid = mallory.wait_online().await.unwrap().to_string();
    let mut mallory_in = mallory.handle_iqs("jingle", ns::JINGLE);
    // A contact speaking raw Jingle too.
    let alice = Client::start(account(&server, "alice", "raw"));
    let alice_jid = alice.wait_online().await.unwrap().to_string();
    let mut alice_in = alice.handle_iqs("jingle", ns::JINGLE);

    // A stranger's well-formed offer: acked, then declined (strangers refused).
    let offer = initiate("s1", &mallory_jid, &file_content("f", "initiator", IBB, FT));
    assert_eq!(mallory.set(Some(to.clone()), offer).await.unwrap(), None);
    assert_eq!(terminated(&mut mallory_in, "s1").await, ReasonCondition::Decline);

    // Malformed: two contents of the same name, a content by the responder.
    let two = format!("{}{}", file_content("f", "initiator", IBB, FT), file_content("f", "initiator", IBB, FT));
    let e = refused(&alice, &to, initiate("s2", &alice_jid, &two)).await;
    assert_eq!(e.condition, Condition::BadRequest, "{e:?}");
    let e = refused(&alice, &to, initiate("s3", &alice_jid, &file_content("f", "responder", IBB, FT))).await;
    assert_eq!(e.condition, Condition::BadRequest, "{e:?}");

    // Well-formed but not for Skiff: acked, then ended with the reason.
    let cases = [
        ("s4", file_content("f", "initiator", "urn:example:udp", FT), ReasonCondition::UnsupportedTransports),
        (
            "s5",
            file_content("f", "initiator", IBB, "urn:xmpp:jingle:apps:rtp:1"),
            ReasonCondition::UnsupportedApplications,
        ),
        (
            "s6",
            file_content("f", "initiator", IBB, FT).replace("<size>1000</size>", ""),
            ReasonCondition::FailedApplication,
        ),
    ];
    for (sid, content, reason) in cases {
        assert_eq!(alice.set(Some(to.clone()), initiate(sid, &alice_jid, &content)).await.unwrap(), None, "{sid}");
        assert_eq!(terminated(&mut alice_in, sid).await, reason, "{sid}");
    }

    // Requests for sessions that do not exist (or are someone else's).
    for action in ["session-accept", "transport-info", "session-terminate", "session-info"] {
        let payload: Element =
            format!("<jingle xmlns='urn:xmpp:jingle:1' action='{action}' sid='nosuch'/>").parse().unwrap();
        let e = refused(&mallory, &to, payload).await;
        assert_eq!(JingleError::of(&e), Some(JingleError::UnknownSession), "{action}: {e:?}");
    }

    // Nothing was asked, recorded or written.
    let recs = bob.transfers.store().list(&HistoryQuery::default()).unwrap();
    assert!(recs.is_empty(), "{recs:?}");
    let downloads = bob.dir.path().join("downloads");
    assert!(std::fs::read_dir(&downloads).map(|d| d.count()).unwrap_or(0) == 0);

    // The session goes on: a contact's file by Jingle arrives.
    drop(alice);
    let mut alice = Peer::start(&server, "alice", |c| c.protocol = Some(Protocol::Jingle)).await;
    alice.sees(&bob.jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "after.bin", 100_000, 5);
    check_transfer(&mut alice, &mut bob, &f, "s5b-direct").await;
}
