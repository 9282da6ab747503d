//! A raw socket posing as the server sends what a hostile or broken server might:
//! the client must end the stream with the right stream error, not hang and not grow.

use std::time::Duration;

use skiff_engine::connection::{connect, ConnectError};
use skiff_engine::{AccountConfig, Secret, TlsMode};
use skiff_proto::stream::XmlError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>";

/// Starts a fake server that runs `script` on the first connection and returns what
/// it found (typically what the client wrote).
async fn fake_server<F, Fut, T>(script: F) -> (u16, tokio::task::JoinHandle<T>)
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
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
async fn read_all<S: AsyncRead + Unpin>(sock: &mut S) -> String {
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
    let err = connect(&config(port), None).await.unwrap_err();
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
    let err = connect(&config(port), None).await.unwrap_err();
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
    let err = connect(&config(port), None).await.unwrap_err();
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
    let err = connect(&cfg, None).await.unwrap_err();
    assert!(err.to_string().contains("does not offer TLS"), "{err}");
    let wrote = server.await.unwrap();
    assert!(!wrote.contains("<auth"), "credentials went out without TLS: {wrote}");
}

#[tokio::test]
async fn plaintext_to_a_non_loopback_address_is_refused_before_connecting() {
    let mut cfg = config(5222);
    // TEST-NET-1 (RFC 5737): refused before any packet is sent.
    cfg.server = Some(("192.0.2.1".into(), 5222));
    let err = connect(&cfg, None).await.unwrap_err();
    assert!(matches!(err, ConnectError::PlaintextNotLoopback { .. }), "{err}");
}

/// Reads from the client until `needle` has arrived; returns everything read.
async fn read_until<S: AsyncRead + Unpin>(sock: &mut S, needle: &str) -> String {
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
    let cases: [(&str, Make, NegotiationError, &str); 2] = [
        (
            "2^32-1 rounds",
            |c| format!("r={c}evil,s=c2FsdA==,i=4294967295"),
            NegotiationError::ScramIterations(4294967295),
            "asks for 4294967295 SCRAM iterations, but this client accepts only 4096 to 1000000",
        ),
        (
            "a nonce not extending ours",
            |_| "r=mallorysnonce,s=c2FsdA==,i=4096".to_owned(),
            NegotiationError::ScramNonce,
            "nonce does not extend ours: someone may be in the middle",
        ),
    ];
    for (what, challenge, expected, says) in cases {
        let (port, server) = scram_server(challenge).await;
        let started = std::time::Instant::now();
        let err = connect(&config(port), None).await.unwrap_err();
        let took = started.elapsed();
        let ConnectError::Negotiation(ref refusal) = err else { panic!("{what}: {err}") };
        assert_eq!(refusal, &expected, "{what}");
        assert!(err.to_string().contains(says), "{what}: {err}");
        assert!(took < Duration::from_secs(1), "{what}: {took:?}");
        eprintln!("{what}: refused in {took:?}: {err}");
        assert!(err.is_fatal(), "{what}: retried");
        let wrote = server.await.unwrap();
        assert!(!wrote.contains("<response"), "{what}: the client answered the challenge: {wrote}");
    }
}

/// A TLS identity for "localhost" (a fresh CA and server certificate) speaking the
/// given TLS versions; the directory holds `ca.pem` for the client.
fn tls_identity(
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (tokio_rustls::TlsAcceptor, tempfile::TempDir) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)), dir)
}

/// A direct-TLS account for a fake server on `port` whose CA is in `dir`.
fn tls_config(port: u16, dir: &tempfile::TempDir) -> AccountConfig {
    let mut cfg = config(port);
    cfg.tls = TlsMode::Direct;
    cfg.ca_file = Some(dir.path().join("ca.pem"));
    cfg
}

/// The text of the first `<auth>` the client sent: (mechanism, decoded payload).
fn auth_of(wrote: &str) -> (String, String) {
    use base64::Engine as _;
    let auth = &wrote[wrote.find("<auth ").expect("an <auth>")..];
    let mechanism = auth.split("mechanism='").nth(1).unwrap().split('\'').next().unwrap().to_owned();
    let b64 = auth.split('>').nth(1).unwrap().split('<').next().unwrap();
    let payload = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
    (mechanism, payload)
}

/// A server over TLS that offers only PLAIN: an account that signed in with SCRAM
/// before refuses it without sending the password; without the requirement, the same
/// server gets the PLAIN `<auth>` (so the test would see one).
#[tokio::test]
async fn plain_only_is_refused_to_an_account_that_requires_scram() {
    for require_scram in [true, false] {
        let (acceptor, dir) = tls_identity(&[&rustls::version::TLS13]);
        let (port, server) = fake_server(move |sock| async move {
            let mut tls = acceptor.accept(sock).await.unwrap();
            let _ = read_until(&mut tls, "<stream:stream").await;
            tls.write_all(HEADER.as_bytes()).await.unwrap();
            tls.write_all(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>").await.unwrap();
            if require_scram {
                read_all(&mut tls).await
            } else {
                let got = read_until(&mut tls, "</auth>").await;
                tls.write_all(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>")
                    .await
                    .unwrap();
                got
            }
        })
        .await;
        let mut cfg = tls_config(port, &dir);
        cfg.require_scram = require_scram;
        let err = connect(&cfg, None).await.unwrap_err();
        let wrote = server.await.unwrap();
        if require_scram {
            use skiff_proto::negotiation::NegotiationError;
            assert!(matches!(err, ConnectError::Negotiation(NegotiationError::PlainDowngrade)), "{err}");
            assert!(err.to_string().contains("signed in with SCRAM before"), "{err}");
            assert!(err.is_fatal(), "a downgrade would be retried");
            assert!(!wrote.contains("<auth"), "the password went out: {wrote}");
        } else {
            assert!(wrote.contains("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"), "{wrote}");
            assert!(err.to_string().contains("wrong password"), "{err}");
        }
    }
}

/// What a fake TLS server offering `mechanisms` saw of the client's SCRAM sign-in:
/// the mechanism, the GS2 header, and whether the client's channel-binding data (c=)
/// is the server's own view of it (RFC 9266 tls-exporter of this TLS session).
async fn scram_over_tls(
    versions: &[&'static rustls::SupportedProtocolVersion],
    mechanisms: &'static [&'static str],
) -> (String, String, bool) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (acceptor, dir) = tls_identity(versions);
    let (port, server) = fake_server(move |sock| async move {
        let mut tls = acceptor.accept(sock).await.unwrap();
        let exporter = tls.get_ref().1.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None).ok();
        let _ = read_until(&mut tls, "<stream:stream").await;
        tls.write_all(HEADER.as_bytes()).await.unwrap();
        let list: String = mechanisms.iter().map(|m| format!("<mechanism>{m}</mechanism>")).collect();
        tls.write_all(
            format!("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{list}</mechanisms></stream:features>")
                .as_bytes(),
        )
        .await
        .unwrap();
        let auth = read_until(&mut tls, "</auth>").await;
        let (mechanism, first) = auth_of(&auth);
        let (gs2, bare) = first.split_at(first.find("n=").unwrap());
        let nonce = bare.split(',').find_map(|p| p.strip_prefix("r=")).unwrap().to_owned();
        let challenge = b64.encode(format!("r={nonce}srv,s=c2FsdHNhbHQ=,i=4096"));
        tls.write_all(format!("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{challenge}</challenge>").as_bytes())
            .await
            .unwrap();
        let response = read_until(&mut tls, "</response>").await;
        let payload = response.split("<response").nth(1).unwrap().split('>').nth(1).unwrap().split('<').next().unwrap();
        let client_final = String::from_utf8(b64.decode(payload).unwrap()).unwrap();
        let c = client_final.split(',').find_map(|p| p.strip_prefix("c=")).unwrap();
        let cbind = b64.decode(c).unwrap();
        let bound = exporter.is_some_and(|e| cbind == [gs2.as_bytes(), &e].concat());
        tls.write_all(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>").await.unwrap();
        let _ = read_all(&mut tls).await;
        (mechanism, gs2.to_owned(), bound)
    })
    .await;
    let err = connect(&tls_config(port, &dir), None).await.unwrap_err();
    assert!(err.to_string().contains("wrong password"), "{err}");
    server.await.unwrap()
}

/// Channel binding end to end over a real TLS session: under TLS 1.3 the client picks
/// -PLUS and its tls-exporter data equals the server's; it sends "y" when the server
/// offers no -PLUS; under TLS 1.2 (no tls-exporter) it never picks -PLUS and sends "n".
#[tokio::test]
async fn scram_plus_binds_to_the_tls_session() {
    use rustls::version::{TLS12, TLS13};
    const ALL: &[&str] = &["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"];
    let (mechanism, gs2, bound) = scram_over_tls(&[&TLS13], ALL).await;
    assert_eq!((mechanism.as_str(), gs2.as_str()), ("SCRAM-SHA-256-PLUS", "p=tls-exporter,,"));
    assert!(bound, "the client's binding data is not the server's tls-exporter value");

    let (mechanism, gs2, _) = scram_over_tls(&[&TLS13], &["SCRAM-SHA-1", "SCRAM-SHA-256"]).await;
    assert_eq!((mechanism.as_str(), gs2.as_str()), ("SCRAM-SHA-256", "y,,"));

    let (mechanism, gs2, _) = scram_over_tls(&[&TLS12], ALL).await;
    assert_eq!((mechanism.as_str(), gs2.as_str()), ("SCRAM-SHA-256", "n,,"));
}

/// The server's side of a SCRAM-SHA-256 sign-in (RFC 5802/7677; password "pw", salt
/// "saltsalt", 4096 rounds) over `tls`, after the client's `<auth>` in `auth`: the
/// challenge, then a success carrying the server signature.
async fn scram_sha256_server<S: AsyncRead + tokio::io::AsyncWrite + Unpin>(tls: &mut S, auth: &str) {
    use base64::Engine as _;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::STANDARD;
    let hmac = |key: &[u8], data: &[u8]| {
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    let (_, first) = auth_of(auth);
    let bare = &first[first.find("n=").unwrap()..];
    let nonce = bare.split(',').find_map(|p| p.strip_prefix("r=")).unwrap();
    let server_first = format!("r={nonce}srv,s={},i=4096", b64.encode(b"saltsalt"));
    tls.write_all(
        format!("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</challenge>", b64.encode(&server_first))
            .as_bytes(),
    )
    .await
    .unwrap();
    let response = read_until(tls, "</response>").await;
    let payload = response.split("<response").nth(1).unwrap().split('>').nth(1).unwrap().split('<').next().unwrap();
    let client_final = String::from_utf8(b64.decode(payload).unwrap()).unwrap();
    let (without_proof, _) = client_final.rsplit_once(",p=").unwrap();
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"pw", b"saltsalt", 4096, &mut salted);
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let signature = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());
    let server_final = b64.encode(format!("v={}", b64.encode(signature)));
    tls.write_all(format!("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{server_final}</success>").as_bytes())
        .await
        .unwrap();
}

/// After one SCRAM sign-in, the session's own reconnects require SCRAM: the server
/// signs the client in with SCRAM-SHA-256, drops the connection, and on the reconnect
/// offers only PLAIN (over TLS). The session gives up with the downgrade error and the
/// second connection never sees an `<auth>`.
#[tokio::test]
async fn reconnect_after_scram_refuses_plain() {
    let (acceptor, dir) = tls_identity(&[&rustls::version::TLS13]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        // First connection: SCRAM, bind, then a drop.
        let mut tls = tls_sign_in(
            &listener,
            &acceptor,
            "<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-256</mechanism>",
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>",
        )
        .await;
        let _ = read_until(&mut tls, "</iq>").await;
        tls.write_all(b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/t</jid></bind></iq>").await.unwrap();
        let _ = read_until(&mut tls, "<presence").await;
        drop(tls);
        // The reconnect: PLAIN only.
        let (sock, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(sock).await.unwrap();
        let _ = read_until(&mut tls, "<stream:stream").await;
        tls.write_all(HEADER.as_bytes()).await.unwrap();
        tls.write_all(b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>").await.unwrap();
        read_all(&mut tls).await
    });
    let mut cfg = tls_config(port, &dir);
    assert!(!cfg.require_scram, "new accounts do not require SCRAM");
    cfg.reconnect = true;
    let client = skiff_engine::Client::start(cfg);
    let mut events = client.events();
    client.wait_online().await.unwrap();
    assert_eq!(client.mechanism(), "SCRAM-SHA-256");
    let fatal = tokio::time::timeout(Duration::from_secs(15), async {
        let mut online = 0;
        loop {
            match events.recv().await.unwrap() {
                skiff_engine::Event::Fatal { message, .. } => return message,
                skiff_engine::Event::Online { .. } => {
                    online += 1;
                    assert_eq!(online, 1, "online again");
                }
                _ => {}
            }
        }
    })
    .await
    .expect("no fatal error within 15 s");
    assert!(fatal.contains("signed in with SCRAM before"), "{fatal}");
    let wrote = tokio::time::timeout(Duration::from_secs(15), server).await.unwrap().unwrap();
    assert!(!wrote.contains("<auth"), "the password went out on the reconnect: {wrote}");
}

type ServerTls = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Accepts the next client on TLS and signs it in with SCRAM-SHA-256, offering
/// `mechanisms` (the inside of `<mechanisms/>`) and, after the sign-in, `features`.
async fn tls_sign_in(
    listener: &TcpListener,
    acceptor: &tokio_rustls::TlsAcceptor,
    mechanisms: &str,
    features: &str,
) -> ServerTls {
    let (sock, _) = listener.accept().await.unwrap();
    let mut tls = acceptor.accept(sock).await.unwrap();
    let _ = read_until(&mut tls, "<stream:stream").await;
    tls.write_all(HEADER.as_bytes()).await.unwrap();
    let offer = format!(
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{mechanisms}</mechanisms></stream:features>"
    );
    tls.write_all(offer.as_bytes()).await.unwrap();
    let auth = read_until(&mut tls, "</auth>").await;
    scram_sha256_server(&mut tls, &auth).await;
    let _ = read_until(&mut tls, "<stream:stream").await;
    tls.write_all(HEADER.as_bytes()).await.unwrap();
    tls.write_all(format!("<stream:features>{features}</stream:features>").as_bytes()).await.unwrap();
    tls
}

/// [`tls_sign_in`] with stream management offered; returns the stream and what the
/// client wrote after the features (up to `until`).
async fn sm_sign_in(listener: &TcpListener, acceptor: &tokio_rustls::TlsAcceptor, until: &str) -> (ServerTls, String) {
    let mut tls = tls_sign_in(
        listener,
        acceptor,
        "<mechanism>SCRAM-SHA-256</mechanism>",
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/>",
    )
    .await;
    let wrote = read_until(&mut tls, until).await;
    (tls, wrote)
}

/// A server that accepts a resumption and then reads nothing (as Prosody 0.12 does
/// when the old connection left half a stanza in its parser): the client gives the
/// resumed session up within seconds and signs in anew (binding, not resuming again),
/// instead of waiting for its pings to time out and resuming the same dead session.
#[tokio::test]
async fn a_resumed_session_that_acknowledges_nothing_is_given_up() {
    let (acceptor, dir) = tls_identity(&[&rustls::version::TLS13]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        // 1: bind, enable with resumption, then the line drops.
        let (mut tls, wrote) = sm_sign_in(&listener, &acceptor, "</iq>").await;
        assert!(wrote.contains("<bind"), "{wrote}");
        tls.write_all(b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/t</jid></bind></iq>").await.unwrap();
        let wrote = read_until(&mut tls, "<presence").await;
        assert!(wrote.contains("<enable xmlns='urn:xmpp:sm:3' resume='true'/>"), "{wrote}");
        tls.write_all(b"<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true' max='60'/>").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(tls);
        // 2: the client resumes; the server says yes, then reads nothing more.
        let (mut tls, wrote) = sm_sign_in(&listener, &acceptor, "/>").await;
        assert!(wrote.contains("<resume xmlns='urn:xmpp:sm:3' h='0' previd='sm-1'/>"), "{wrote}");
        tls.write_all(b"<resumed xmlns='urn:xmpp:sm:3' h='2' previd='sm-1'/>").await.unwrap();
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(n @ 1..)) = tokio::time::timeout(Duration::from_secs(30), tls.read(&mut buf)).await {
            out.extend_from_slice(&buf[..n]);
        }
        let wrote = String::from_utf8_lossy(&out).into_owned();
        assert!(wrote.contains("<r xmlns='urn:xmpp:sm:3'/>"), "asked for an acknowledgement: {wrote}");
        let gave_up = started.elapsed();
        drop(tls);
        // 3: a new session, not another resumption of the dead one.
        let (mut tls, wrote) = sm_sign_in(&listener, &acceptor, "/>").await;
        assert!(!wrote.contains("<resume"), "resumed the dead session again: {wrote}");
        let wrote = if wrote.contains("</iq>") { wrote } else { read_until(&mut tls, "</iq>").await };
        assert!(wrote.contains("<bind"), "{wrote}");
        tls.write_all(b"<iq type='result' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@localhost/t2</jid></bind></iq>").await.unwrap();
        let _ = read_until(&mut tls, "<presence").await;
        (tls, gave_up)
    });
    let mut cfg = tls_config(port, &dir);
    cfg.reconnect = true;
    let client = skiff_engine::Client::start(cfg);
    let mut events = client.events();
    client.wait_online().await.unwrap();
    let mut seen = Vec::new();
    let last = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match events.recv().await.unwrap() {
                e @ skiff_engine::Event::Online { .. } if seen.iter().any(|s| s == "resumed") => return e,
                skiff_engine::Event::Interrupted { .. } => seen.push("interrupted".to_owned()),
                skiff_engine::Event::Resumed { .. } => seen.push("resumed".to_owned()),
                skiff_engine::Event::Offline { reason, .. } => seen.push(reason),
                _ => {}
            }
        }
    })
    .await
    .expect("a new session within 40 s");
    assert!(matches!(&last, skiff_engine::Event::Online { jid, .. } if jid == "alice@localhost/t2"), "{last:?}");
    assert_eq!(seen[..2], ["interrupted", "resumed"], "{seen:?}");
    assert!(seen[2].contains("acknowledged nothing"), "{seen:?}");
    let (_tls, gave_up) = server.await.unwrap();
    assert!(gave_up >= Duration::from_secs(9) && gave_up < Duration::from_secs(15), "{gave_up:?}");
    println!("the dead resumption was given up after {} ms", gave_up.as_millis());
}
