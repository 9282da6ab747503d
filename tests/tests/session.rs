//! The XMPP session against a real Prosody on loopback: sign-in, TLS policy, roster,
//! presence, subscriptions, disco#info, IQ routing and reconnection.

use std::time::Duration;

use skiff_engine::session::ConnState;
use skiff_engine::{AccountConfig, Client, ClientError, Event, Secret, TlsMode};
use skiff_proto::disco::DiscoInfoResult;
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::stanza::Condition;
use skiff_proto::xml::Element;
use skiff_tests::{Prosody, ProsodyOptions};
use tokio::sync::broadcast::Receiver;

fn account(server: &Prosody, user: &str, resource: &str) -> AccountConfig {
    let jid: Jid = format!("{}/{resource}", server.jid(user)).parse().unwrap();
    let mut cfg = AccountConfig::new(jid, Secret::new(server.password(user)));
    cfg.server = Some(("127.0.0.1".into(), server.c2s_port));
    cfg.ca_file = Some(server.ca_file.clone());
    cfg.tls = TlsMode::StartTls;
    cfg.connect_timeout = Duration::from_secs(10);
    cfg.iq_timeout = Duration::from_secs(10);
    cfg
}

/// Waits (up to 15 s) for an event matching `pred`.
async fn expect_event(rx: &mut Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("event stream ended while waiting for {what}: {e}"),
            Err(_) => panic!("no {what} within 15 s"),
        }
    }
}

fn options(users: &[&str], contacts: &[(&str, &str)]) -> ProsodyOptions {
    ProsodyOptions {
        users: users.iter().map(|u| (u.to_string(), format!("{u}-pw"))).collect(),
        contacts: contacts.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        ..ProsodyOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_over_starttls_with_the_test_ca() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let client = Client::start(account(&server, "alice", "desk"));
    let mut events = client.events();
    let jid = client.wait_online().await.unwrap();
    assert_eq!(jid.to_string(), "alice@localhost/desk");
    let online = expect_event(&mut events, "online", |e| matches!(e, Event::Online { .. })).await;
    let Event::Online { tls, mechanism, .. } = online else { unreachable!() };
    assert!(tls);
    assert!(mechanism.starts_with("SCRAM-SHA-"), "{mechanism}");
    client.disconnect().await;
    assert_eq!(client.state(), ConnState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_clear_error_not_a_hang() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut cfg = account(&server, "alice", "desk");
    cfg.password = Secret::new("not-the-password");
    let client = Client::start(cfg);
    let mut events = client.events();
    let started = std::time::Instant::now();
    let err = client.wait_online().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let ClientError::Fatal(msg) = err else { panic!("{err:?}") };
    assert!(msg.starts_with("wrong password or unknown account for alice@localhost"), "{msg}");
    let fatal = expect_event(&mut events, "fatal", |e| matches!(e, Event::Fatal { .. })).await;
    assert!(matches!(fatal, Event::Fatal { ref code, .. } if code == "auth-failed"), "{fatal:?}");
    // An unknown account reads the same (servers do not tell which).
    let mut cfg = account(&server, "alice", "desk");
    cfg.jid = "nobody@localhost/x".parse().unwrap();
    let err = Client::start(cfg).wait_online().await.unwrap_err();
    assert!(err.to_string().contains("wrong password or unknown account for nobody@localhost"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut cfg = account(&server, "alice", "desk");
    cfg.ca_file = None;
    let err = Client::start(cfg).wait_online().await.unwrap_err();
    assert!(err.to_string().contains("not signed by an authority this computer trusts"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_only_when_opted_in() {
    // A plaintext-only server: the default (STARTTLS required) refuses it...
    let opts = ProsodyOptions { tls: skiff_tests::TlsMode::Plaintext, ..ProsodyOptions::default() };
    let plain = Prosody::start(opts).unwrap();
    let err = Client::start(account(&plain, "alice", "a")).wait_online().await.unwrap_err();
    assert!(err.to_string().contains("does not offer TLS"), "{err}");
    // ...and opting in on loopback works, with SCRAM (PLAIN is never used without TLS).
    let mut cfg = account(&plain, "alice", "a");
    cfg.tls = TlsMode::Plaintext;
    let client = Client::start(cfg);
    let mut events = client.events();
    client.wait_online().await.unwrap();
    let online = expect_event(&mut events, "online", |e| matches!(e, Event::Online { .. })).await;
    assert!(
        matches!(online, Event::Online { tls: false, ref mechanism, .. } if mechanism.starts_with("SCRAM")),
        "{online:?}"
    );
    client.disconnect().await;
    // Opting into plaintext against a server that requires TLS is refused by the server's rule.
    let tls_server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut cfg = account(&tls_server, "alice", "a");
    cfg.tls = TlsMode::Plaintext;
    let err = Client::start(cfg).wait_online().await.unwrap_err();
    assert!(err.to_string().contains("requires TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_presence_and_subscription_requests() {
    let server = Prosody::start(options(&["alice", "bob", "carol"], &[("alice", "bob")])).unwrap();
    let alice = Client::start(account(&server, "alice", "desk"));
    let mut a_events = alice.events();
    alice.wait_online().await.unwrap();
    let roster = expect_event(&mut a_events, "roster", |e| matches!(e, Event::Roster { .. })).await;
    let Event::Roster { contacts } = roster else { unreachable!() };
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert_eq!((contacts[0].jid.as_str(), contacts[0].subscription.as_str()), ("bob@localhost", "both"));

    let mut bob_cfg = account(&server, "bob", "phone");
    bob_cfg.priority = 7;
    let bob = Client::start(bob_cfg);
    let mut b_events = bob.events();
    bob.wait_online().await.unwrap();
    expect_event(&mut b_events, "bob's roster", |e| matches!(e, Event::Roster { .. })).await;
    let p = expect_event(
        &mut a_events,
        "bob's presence",
        |e| matches!(e, Event::Presence { jid, available: true, .. } if jid == "bob@localhost"),
    )
    .await;
    assert!(matches!(p, Event::Presence { ref resource, priority: 7, .. } if resource == "phone"), "{p:?}");
    let bob_jid: Jid = "bob@localhost".parse().unwrap();
    assert_eq!(alice.presence_of(&bob_jid).len(), 1);
    assert_eq!(bob.roster().iter().map(|c| c.jid.as_str()).collect::<Vec<_>>(), vec!["alice@localhost"]);

    // carol is not a contact: her request surfaces as an event; approving it lands in the roster.
    let carol = Client::start(account(&server, "carol", "c"));
    carol.wait_online().await.unwrap();
    carol.subscribe(&"alice@localhost".parse().unwrap()).unwrap();
    let req =
        expect_event(&mut a_events, "subscription request", |e| matches!(e, Event::SubscriptionRequest { .. })).await;
    assert_eq!(req, Event::SubscriptionRequest { from: "carol@localhost".into() });
    alice.approve(&"carol@localhost".parse().unwrap()).unwrap();
    expect_event(&mut a_events, "roster push for carol", |e| matches!(e, Event::ContactChanged { contact } if contact.jid == "carol@localhost" && contact.subscription == "from")).await;

    bob.disconnect().await;
    expect_event(
        &mut a_events,
        "bob offline",
        |e| matches!(e, Event::Presence { jid, available: false, .. } if jid == "bob@localhost"),
    )
    .await;
    assert!(alice.presence_of(&bob_jid).is_empty());
    carol.disconnect().await;
    alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disco_info_is_answered_and_unknown_iqs_get_service_unavailable() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let alice = Client::start(account(&server, "alice", "desk"));
    let bob = Client::start(account(&server, "bob", "phone"));
    alice.wait_online().await.unwrap();
    bob.wait_online().await.unwrap();
    bob.add_feature("urn:example:extra");
    let bob_full: Jid = "bob@localhost/phone".parse().unwrap();
    let info = alice.get(Some(bob_full.clone()), Element::new("query", ns::DISCO_INFO)).await.unwrap().unwrap();
    let info = DiscoInfoResult::try_from(&info).unwrap();
    assert!(info.has_identity("client", "pc"), "{info:?}");
    for f in [ns::DISCO_INFO, ns::PING, "urn:example:extra"] {
        assert!(info.has_feature(f), "missing {f} in {:?}", info.features);
    }
    // XEP-0199 ping is answered.
    assert_eq!(alice.get(Some(bob_full.clone()), skiff_proto::ping::ping()).await.unwrap(), None);
    // Nobody handles this namespace: service-unavailable, not silence.
    let err = alice.get(Some(bob_full.clone()), Element::new("query", "urn:example:unknown")).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::ServiceUnavailable),
        "{err:?}"
    );
    // A registered handler receives the request and answers it.
    let mut rx = bob.handle_iqs("query", "urn:example:echo");
    let bob2 = bob.clone();
    tokio::spawn(async move {
        while let Some(iq) = rx.recv().await {
            let payload = iq.request_payload().cloned();
            bob2.send(iq.result_for(payload)).unwrap();
        }
    });
    let echo = Element::new("query", "urn:example:echo").with_text("hello");
    assert_eq!(alice.set(Some(bob_full), echo.clone()).await.unwrap(), Some(echo));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_restarts() {
    let mut server = Prosody::start(ProsodyOptions::default()).unwrap();
    let alice = Client::start(account(&server, "alice", "desk"));
    let mut events = alice.events();
    alice.wait_online().await.unwrap();
    expect_event(&mut events, "roster", |e| matches!(e, Event::Roster { .. })).await;
    tokio::task::block_in_place(|| server.restart()).unwrap();
    // The session had stream management: first an attempt to resume it, which a
    // restarted server cannot do (it forgot the session); then a new session.
    expect_event(&mut events, "interrupted", |e| matches!(e, Event::Interrupted { .. })).await;
    expect_event(&mut events, "reconnecting", |e| matches!(e, Event::Reconnecting { .. })).await;
    let off = expect_event(&mut events, "offline", |e| matches!(e, Event::Offline { .. })).await;
    let Event::Offline { reason, will_retry: true } = &off else { panic!("{off:?}") };
    assert!(reason.contains("could not be resumed"), "{reason}");
    let next =
        expect_event(&mut events, "online again", |e| matches!(e, Event::Online { .. } | Event::Resumed { .. })).await;
    assert!(matches!(next, Event::Online { .. }), "a new session, not a resumed one: {next:?}");
    expect_event(&mut events, "roster again", |e| matches!(e, Event::Roster { contacts } if !contacts.is_empty()))
        .await;
    // The new session is usable.
    let info = alice.get(Some("localhost".parse().unwrap()), Element::new("query", ns::DISCO_INFO)).await.unwrap();
    assert!(info.is_some());
    alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signs_in_over_direct_tls() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let mut cfg = account(&server, "alice", "direct");
    cfg.server = Some(("127.0.0.1".into(), server.direct_tls_port));
    cfg.tls = TlsMode::Direct;
    let client = Client::start(cfg);
    let mut events = client.events();
    client.wait_online().await.unwrap();
    let online = expect_event(&mut events, "online", |e| matches!(e, Event::Online { .. })).await;
    assert!(matches!(online, Event::Online { tls: true, .. }), "{online:?}");
    // STARTTLS against the direct TLS port, or direct TLS against the STARTTLS port, fails cleanly.
    let mut cfg = account(&server, "alice", "direct");
    cfg.tls = TlsMode::Direct;
    let err = Client::start(cfg).wait_online().await.unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    client.disconnect().await;
}

/// Signing in with SCRAM is remembered for the account, so that a later sign-in
/// refuses a server that offers only PLAIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scram_sign_in_is_remembered() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let alice = skiff_tests::peer::Peer::start(&server, "alice", |_| {}).await;
    let store = alice.transfers.store();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !store.scram_required("alice@localhost") {
        assert!(std::time::Instant::now() < deadline, "the SCRAM sign-in was not remembered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!store.scram_required("bob@localhost"));
}

/// The SASL mechanisms Prosody offers over direct TLS, and the TLS version, as a plain
/// rustls client on loopback sees them (before any sign-in).
fn offered_over_tls(server: &Prosody) -> (Vec<String>, Option<rustls::ProtocolVersion>) {
    use std::io::{Read, Write};
    let config = skiff_engine::connection::tls_config(Some(&server.ca_file)).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", server.direct_tls_port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("</stream:features>") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "Prosody closed the stream: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    let mechanisms =
        text.split("<mechanism>").skip(1).map(|m| m.split('<').next().unwrap().trim().to_owned()).collect();
    (mechanisms, tls.conn.protocol_version())
}

/// Sign-in with channel binding where the server offers it: whatever Prosody offers
/// (0.12 binds only with tls-unique, which TLS 1.3 does not have, so it offers no
/// -PLUS to us), the client signs in over STARTTLS and direct TLS, uses -PLUS exactly
/// when it is offered, and its GS2 flag "y" (we could bind, the server shows no -PLUS)
/// is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_plus_is_used_when_offered() {
    let server = Prosody::start(ProsodyOptions::default()).unwrap();
    let (offered, version) = {
        let s = &server;
        tokio::task::block_in_place(|| offered_over_tls(s))
    };
    eprintln!("Prosody offers {offered:?} over {version:?}");
    assert!(offered.iter().any(|m| m.starts_with("SCRAM-")), "{offered:?}");
    let plus = offered.iter().find(|m| m.starts_with("SCRAM-") && m.ends_with("-PLUS"));
    for direct in [false, true] {
        let mut cfg = account(&server, "alice", if direct { "direct" } else { "starttls" });
        if direct {
            cfg.tls = TlsMode::Direct;
            cfg.server = Some(("127.0.0.1".into(), server.direct_tls_port));
        }
        let client = Client::start(cfg);
        let mut events = client.events();
        client.wait_online().await.unwrap();
        let online = expect_event(&mut events, "online", |e| matches!(e, Event::Online { .. })).await;
        let Event::Online { mechanism, .. } = online else { unreachable!() };
        assert_eq!(client.mechanism(), mechanism);
        eprintln!("direct TLS {direct}: signed in with {mechanism}");
        match plus {
            Some(_) if version == Some(rustls::ProtocolVersion::TLSv1_3) => {
                assert!(mechanism.ends_with("-PLUS"), "{mechanism} although {offered:?} was offered")
            }
            _ => assert!(mechanism.starts_with("SCRAM-") && !mechanism.ends_with("-PLUS"), "{mechanism}"),
        }
        client.disconnect().await;
    }
}
