//! A stranger's hostile XML against a signed-in Skiff, through a real Prosody: an
//! account that is not in the user's roster writes raw stanzas (very deep, very wide,
//! flooded with attributes or namespace declarations). Each is dropped, a request among
//! them is answered with an error, and the session goes on: a ping is answered within a
//! second, the user is never disconnected, and a file from a contact still arrives.

use std::time::Duration;

use skiff_engine::Event;
use skiff_proto::stream::{MAX_ATTRIBUTES, MAX_CHILDREN, MAX_DEPTH};
use skiff_tests::peer::{random_file, sha256_file, wait_for, Peer};
use skiff_tests::raw::RawClient;
use skiff_tests::{Prosody, ProsodyOptions};

fn server() -> Prosody {
    let mut opts = ProsodyOptions::default();
    opts.users.push(("mallory".into(), "mallory-pw".into()));
    Prosody::start(opts).expect("prosody")
}

fn nested(levels: usize) -> String {
    format!("{}{}", "<a>".repeat(levels), "</a>".repeat(levels))
}

/// Sends `payload` in a message and then a ping; the ping must be answered within a
/// second of being sent.
async fn survives(mallory: &mut RawClient, to: &str, what: &str, stanza: String) {
    assert!(stanza.len() < 256 * 1024, "{what}: {} bytes is over what Prosody relays", stanza.len());
    mallory.send_raw(&stanza).await;
    // Once our own server answers, it has taken the stanza in (Prosody spends a good
    // part of a second on 250 KB of deep XML itself); from then on alice must answer
    // within a second.
    let server_rtt = mallory.ping("localhost", &format!("server-{what}"), Duration::from_secs(10)).await;
    assert!(server_rtt.is_some(), "the server never answered after the {what} stanza");
    let rtt = mallory.ping(to, &format!("ping-{what}"), Duration::from_secs(1)).await;
    let rtt = rtt.unwrap_or_else(|| panic!("no ping answer within a second after the {what} stanza"));
    eprintln!(
        "{what}: {} bytes; the server took it in {} ms, then alice answered a ping in {} ms",
        stanza.len(),
        server_rtt.unwrap_or_default().as_millis(),
        rtt.as_millis()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_xml_from_a_stranger_leaves_the_session_alive() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |_| {}).await;
    let to = alice.jid.to_string();
    let mut mallory = RawClient::connect(&server, "mallory").await;
    assert!(mallory.ping(&to, "warm-up", Duration::from_secs(5)).await.is_some());

    // The one that used to abort the process: ~36,000 levels in a chat message.
    let deep = format!("<message to='{to}' type='chat' id='deep'><body>hi</body>{}</message>", nested(36_000));
    survives(&mut mallory, &to, "deep", deep).await;

    // The same depth in a request: answered with policy-violation, not ignored.
    let deep_iq =
        format!("<iq type='get' to='{to}' id='deep-iq'><query xmlns='urn:x:q'>{}</query></iq>", nested(30_000));
    mallory.send_raw(&deep_iq).await;
    let answer = mallory
        .wait_for(Duration::from_secs(5), |el| el.attr("id") == Some("deep-iq"))
        .await
        .expect("an answer to the deep request");
    assert_eq!(answer.attr("type"), Some("error"), "{}", answer.to_xml());
    assert!(answer.to_xml().contains("policy-violation"), "{}", answer.to_xml());

    // Just past the depth limit: dropped the same way.
    survives(&mut mallory, &to, "depth-limit", format!("<message to='{to}'>{}</message>", nested(MAX_DEPTH))).await;

    // Very wide: 60,000 empty children.
    let wide = format!("<message to='{to}' id='wide'><x xmlns='urn:x:w'>{}</x></message>", "<a/>".repeat(60_000));
    survives(&mut mallory, &to, "wide", wide).await;
    const { assert!(60_000 > MAX_CHILDREN) };

    // An attribute flood on one element, and one on the stanza itself.
    let attrs = (0..20_000).map(|i| format!(" a{i}='v'")).collect::<String>();
    survives(&mut mallory, &to, "attributes", format!("<message to='{to}'><x xmlns='urn:x:a'{attrs}/></message>"))
        .await;
    let attrs = (0..15_000).map(|i| format!(" b{i}='v'")).collect::<String>();
    survives(
        &mut mallory,
        &to,
        "stanza-attributes",
        format!("<message to='{to}' id='sa'{attrs}><body>x</body></message>"),
    )
    .await;
    const { assert!(15_000 > MAX_ATTRIBUTES) };

    // A namespace-declaration flood.
    let decls = (0..5_000).map(|i| format!(" xmlns:p{i}='urn:x:{i}'")).collect::<String>();
    survives(&mut mallory, &to, "namespaces", format!("<message to='{to}'><x xmlns='urn:x:n'{decls}/></message>"))
        .await;

    // Never disconnected, never reconnecting: one sign-in only.
    let mut online = 0;
    while let Ok(e) = alice.events.try_recv() {
        online += usize::from(matches!(e, Event::Online { .. }));
        assert!(
            !matches!(e, Event::Offline { .. } | Event::Reconnecting { .. } | Event::Fatal { .. }),
            "alice's session was disturbed: {e:?}"
        );
    }
    assert!(online <= 1, "alice signed in {online} times");

    // And the session still does its job: a contact's file arrives intact.
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    alice.sees(&bob.jid).await;
    bob.sees(&alice.jid).await;
    let src = random_file(bob.dir.path(), "after.bin", 3 << 20, 11);
    let id = bob.transfers.send_file(&alice.jid, &src, None).await.expect("offer");
    let end = bob.finished(id, 60).await;
    assert!(matches!(end, Event::TransferCompleted { .. }), "{end:?}");
    let done = wait_for(&mut alice.events, 60, "the file", |e| matches!(e, Event::TransferCompleted { .. })).await;
    let Event::TransferCompleted { path, .. } = done else { unreachable!() };
    assert_eq!(sha256_file(std::path::Path::new(&path)), sha256_file(&src));
}
