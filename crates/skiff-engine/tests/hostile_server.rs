//! A raw socket posing as the server sends what a hostile or broken server might:
//! the client must end the stream with the right stream error, not hang and not grow.

use std::time::Duration;

use skiff_engine::connection::{connect, ConnectError};
use skiff_engine::{AccountConfig, Secret, TlsMode};
use skiff_proto::stream::XmlError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>";

/// Starts a fake server that runs `script` on the first connection and returns what
/// the client wrote.
async fn fake_server<F, Fut>(script: F) -> (u16, tokio::task::JoinHandle<String>)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = String> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        script(sock).await
    });
    (port, handle)
}

fn config(port: u16) -> AccountConfig {
    let mut cfg = AccountConfig::new("alice@localhost/t".parse().unwrap(), Secret::new("pw"));
    cfg.server = Some(("127.0.0.1".into(), port));
    cfg.tls = TlsMode::Plaintext;
    cfg.max_stanza_bytes = 64 * 1024;
    cfg.connect_timeout = Duration::from_secs(20);
    cfg
}

/// Reads everything the client sends until it closes (or 10 s pass).
async fn read_all(sock: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_stanza_ends_the_stream_with_policy_violation() {
    let (port, server) = fake_server(|mut sock| async move {
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf).await.unwrap(); // the client's header
        sock.write_all(HEADER.as_bytes()).await.unwrap();
        sock.write_all(b"<stream:features><junk>").await.unwrap();
        // An endless stanza: 10 MB of text, stopping when the client hangs up.
        let chunk = vec![b'a'; 16 * 1024];
        let (mut rd, mut wr) = sock.into_split();
        let writer = tokio::spawn(async move {
            let mut sent = 0usize;
            while sent < 10 << 20 {
                if wr.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        });
        let mut out = Vec::new();
        let mut b = [0u8; 4096];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), rd.read(&mut b)).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&b[..n]);
        }
        let sent = writer.await.unwrap();
        assert!(sent < 10 << 20, "the client kept reading the endless stanza ({sent} bytes)");
        String::from_utf8_lossy(&out).into_owned()
    })
    .await;
    let err = connect(&config(port)).await.unwrap_err();
    assert!(matches!(err, ConnectError::Xml(XmlError::TooLarge { limit: 65536 })), "{err}");
    let wrote = server.await.unwrap();
    assert!(wrote.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"), "{wrote}");
    assert!(wrote.ends_with("</stream:stream>"), "{wrote}");
}

#[tokio::test]
async fn malformed_xml_ends_the_stream_with_not_well_formed() {
    let (port, server) = fake_server(|mut sock| async move {
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf).await.unwrap();
        sock.write_all(HEADER.as_bytes()).await.unwrap();
        sock.write_all(
            b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></wrong></stream:features>",
        )
        .await
        .unwrap();
        read_all(&mut sock).await
    })
    .await;
    let err = connect(&config(port)).await.unwrap_err();
    assert!(matches!(err, ConnectError::Xml(XmlError::Malformed(_))), "{err}");
    let wrote = server.await.unwrap();
    assert!(wrote.contains("<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"), "{wrote}");
    assert!(wrote.ends_with("</stream:stream>"));
}

#[tokio::test]
async fn entity_declarations_are_refused() {
    let (port, server) = fake_server(|mut sock| async move {
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf).await.unwrap();
        sock.write_all(b"<?xml version='1.0'?><!DOCTYPE lol [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]>")
            .await
            .unwrap();
        sock.write_all(HEADER.as_bytes()).await.unwrap();
        read_all(&mut sock).await
    })
    .await;
    let err = connect(&config(port)).await.unwrap_err();
    assert!(matches!(err, ConnectError::Xml(XmlError::Restricted(_))), "{err}");
    let wrote = server.await.unwrap();
    assert!(wrote.contains("<restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"), "{wrote}");
}

#[tokio::test]
async fn a_server_without_starttls_is_refused_and_plain_is_never_sent() {
    let (port, server) = fake_server(|mut sock| async move {
        let mut buf = [0u8; 1024];
        let _ = sock.read(&mut buf).await.unwrap();
        sock.write_all(HEADER.as_bytes()).await.unwrap();
        sock.write_all(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>").await.unwrap();
        read_all(&mut sock).await
    })
    .await;
    let mut cfg = config(port);
    cfg.tls = TlsMode::StartTls;
    let err = connect(&cfg).await.unwrap_err();
    assert!(err.to_string().contains("does not offer TLS"), "{err}");
    let wrote = server.await.unwrap();
    assert!(!wrote.contains("<auth"), "credentials went out without TLS: {wrote}");
}

#[tokio::test]
async fn plaintext_to_a_non_loopback_address_is_refused_before_connecting() {
    let mut cfg = config(5222);
    // TEST-NET-1 (RFC 5737): refused before any packet is sent.
    cfg.server = Some(("192.0.2.1".into(), 5222));
    let err = connect(&cfg).await.unwrap_err();
    assert!(matches!(err, ConnectError::PlaintextNotLoopback { .. }), "{err}");
}

/// Reads from the client until `needle` has arrived; returns everything read.
async fn read_until(sock: &mut tokio::net::TcpStream, needle: &str) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&out).contains(needle) {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A server whose SCRAM challenge is built from the client nonce by `challenge`.
async fn scram_server(challenge: fn(&str) -> String) -> (u16, tokio::task::JoinHandle<String>) {
    use base64::Engine as _;
    fake_server(move |mut sock| async move {
        let _ = read_until(&mut sock, "<stream:stream").await;
        sock.write_all(HEADER.as_bytes()).await.unwrap();
        sock.write_all(
            b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>",
        )
        .await
        .unwrap();
        let auth = read_until(&mut sock, "</auth>").await;
        let b64 = auth.split('>').nth(1).unwrap().split('<').next().unwrap();
        let first = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
        let nonce = first.split(',').find_map(|p| p.strip_prefix("r=")).unwrap().to_owned();
        let msg = base64::engine::general_purpose::STANDARD.encode(challenge(&nonce));
        sock.write_all(format!("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{msg}</challenge>").as_bytes())
            .await
            .unwrap();
        read_all(&mut sock).await
    })
    .await
}

#[tokio::test]
async fn hostile_scram_challenges_are_refused_at_once() {
    use skiff_proto::negotiation::NegotiationError;
    type Make = fn(&str) -> String;
    let cases: [(&str, Make); 2] = [
        ("2^32-1 rounds", |c| format!("r={c}evil,s=c2FsdA==,i=4294967295")),
        ("a nonce not extending ours", |_| "r=mallorysnonce,s=c2FsdA==,i=4096".to_owned()),
    ];
    for (what, challenge) in cases {
        let (port, server) = scram_server(challenge).await;
        let started = std::time::Instant::now();
        let err = connect(&config(port)).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, ConnectError::Negotiation(NegotiationError::ScramChallenge(_))), "{what}: {err}");
        assert!(took < Duration::from_secs(1), "{what}: {took:?}");
        assert!(err.is_fatal(), "{what}: retried");
        let wrote = server.await.unwrap();
        assert!(!wrote.contains("<response"), "{what}: the client answered the challenge: {wrote}");
    }
}
