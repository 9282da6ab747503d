use super::*;
use crate::stream::StreamHeader;

fn open() -> StreamEvent {
    StreamEvent::Open(StreamHeader { attrs: vec![], default_ns: ns::CLIENT.into() })
}

fn st(xml: &str) -> StreamEvent {
    StreamEvent::Stanza(xml.parse().unwrap())
}

fn features(inner: &str) -> StreamEvent {
    st(&format!("<features xmlns='http://etherx.jabber.org/streams'>{inner}</features>"))
}

const MECHS: &str = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>";
const STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";

fn sent(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Send(e) => e.to_xml(),
            other => format!("{other:?}"),
        })
        .collect()
}

fn neg(policy: TlsMode) -> Negotiator {
    Negotiator::new("user@example.com/skiff".parse().unwrap(), "pencil", policy)
}

#[test]
fn starttls_then_restart() {
    let mut n = neg(TlsMode::StartTls);
    assert_eq!(n.handle(open()).unwrap(), vec![]);
    let a = n.handle(features(&format!("{STARTTLS}{MECHS}"))).unwrap();
    assert_eq!(sent(&a), vec!["<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"]);
    assert_eq!(n.handle(st("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")).unwrap(), vec![Action::StartTls]);
    assert_eq!(n.tls_established(), vec![Action::RestartStream]);
    n.handle(open()).unwrap();
    let a = n.handle(features(MECHS)).unwrap();
    // SCRAM-SHA-1 preferred over PLAIN.
    assert!(sent(&a)[0].starts_with("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"));
}

#[test]
fn refuses_to_continue_without_tls() {
    let mut n = neg(TlsMode::StartTls);
    n.handle(open()).unwrap();
    assert_eq!(n.handle(features(MECHS)), Err(NegotiationError::TlsNotOffered));
    let mut n = neg(TlsMode::StartTls);
    n.handle(open()).unwrap();
    n.handle(features(STARTTLS)).unwrap();
    assert_eq!(n.handle(st("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")), Err(NegotiationError::TlsRefused));
}

#[test]
fn no_plain_without_tls() {
    let mut n = neg(TlsMode::Plaintext);
    n.handle(open()).unwrap();
    let only_plain = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>";
    assert_eq!(n.handle(features(only_plain)), Err(NegotiationError::NoMechanism("PLAIN".into())));
    let mut n = neg(TlsMode::Plaintext);
    n.handle(open()).unwrap();
    assert_eq!(n.handle(features(STARTTLS)), Err(NegotiationError::TlsRequiredByServer));
}

#[test]
fn plain_over_tls() {
    let mut n = neg(TlsMode::Direct);
    n.handle(open()).unwrap();
    let a = n
        .handle(features(
            "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>",
        ))
        .unwrap();
    // base64("\0user\0pencil")
    assert_eq!(
        sent(&a),
        vec!["<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHVzZXIAcGVuY2ls</auth>"]
    );
}

#[test]
fn sasl_failure_is_a_clear_error() {
    let mut n = neg(TlsMode::Direct);
    n.handle(open()).unwrap();
    n.handle(features(MECHS)).unwrap();
    let err = n
        .handle(st("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>Invalid username or password</text></failure>"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong password or unknown account for user@example.com (the server said not-authorized: Invalid username or password)"
    );
}

#[test]
fn stream_error_during_negotiation() {
    let mut n = neg(TlsMode::StartTls);
    n.handle(open()).unwrap();
    let err = n
        .handle(st("<error xmlns='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></error>"))
        .unwrap_err();
    assert!(matches!(err, NegotiationError::Stream(ref e) if e.condition == "host-unknown"));
    assert_eq!(n.handle(StreamEvent::Close), Err(NegotiationError::Closed));
}

/// A minimal SCRAM-SHA-256(-PLUS) server (RFC 5802/7677) for the tests, written from
/// the RFC: salt "saltsalt", 4096 iterations, password "pencil".
struct ScramServer {
    /// The client's GS2 header (`n,,`, `y,,`, `p=tls-exporter,,`).
    gs2: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

impl ScramServer {
    fn first(client_first: &[u8]) -> (ScramServer, Vec<u8>) {
        let cf = std::str::from_utf8(client_first).unwrap();
        // gs2-header = flag "," [authzid] ","
        let mut parts = cf.splitn(3, ',');
        let (flag, authz, bare) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        assert_eq!(authz, "", "no authzid");
        assert!(bare.starts_with("n=user,r="), "{bare}");
        let nonce = format!("{}srvnonce", &bare["n=user,r=".len()..]);
        let server_first = format!("r={nonce},s={},i=4096", b64(b"saltsalt"));
        let s = ScramServer {
            gs2: format!("{flag},,"),
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        (s, server_first.into_bytes())
    }

    /// Checks the channel binding (`cb`: the data the server's TLS layer sees) and
    /// the client proof; returns the server-final message.
    fn last(&self, client_final: &[u8], cb: &[u8]) -> Vec<u8> {
        let cf = std::str::from_utf8(client_final).unwrap();
        let (without_proof, proof) = cf.rsplit_once(",p=").unwrap();
        let cbind_input = [self.gs2.as_bytes(), cb].concat();
        assert_eq!(without_proof, format!("c={},r={}", b64(&cbind_input), self.nonce));
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"pencil", b"saltsalt", 4096, &mut salted);
        let client_key = hmac256(&salted, b"Client Key");
        let auth = format!("{},{},{}", self.client_first_bare, self.server_first, without_proof);
        let client_sig = hmac256(&sha256(&client_key), auth.as_bytes());
        let expected: Vec<u8> = client_key.iter().zip(&client_sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(proof).unwrap(), expected, "client proof");
        let server_sig = hmac256(&hmac256(&salted, b"Server Key"), auth.as_bytes());
        format!("v={}", b64(&server_sig)).into_bytes()
    }
}

fn sasl_payload(a: &[Action]) -> Vec<u8> {
    let [Action::Send(el)] = a else { panic!("{a:?}") };
    decode(&el.text()).unwrap()
}

fn sasl(name: &str, data: &[u8]) -> StreamEvent {
    st(&format!("<{name} xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</{name}>", b64(data)))
}

fn mechanisms(names: &[&str]) -> String {
    let list: String = names.iter().map(|m| format!("<mechanism>{m}</mechanism>")).collect();
    format!("<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{list}</mechanisms>")
}

/// A full SCRAM-SHA-256 exchange against a SCRAM server written from the RFC,
/// then bind; a forged server signature is caught.
#[test]
fn scram_sha256_exchange_and_bind() {
    for forge in [true, false] {
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        let a = n.handle(features(&mechanisms(&["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"]))).unwrap();
        assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-256'"), "{a:?}");
        let (server, challenge) = ScramServer::first(&sasl_payload(&a));
        assert_eq!(server.gs2, "n,,", "no channel-binding data: we cannot bind");
        let a = n.handle(sasl("challenge", &challenge)).unwrap();
        let mut fin = server.last(&sasl_payload(&a), b"");
        if forge {
            let last = fin.len() - 2;
            fin[last] ^= 1;
            let r = n.handle(sasl("success", &fin));
            assert!(matches!(r, Err(NegotiationError::ServerProofInvalid | NegotiationError::Sasl(_))), "{r:?}");
            continue;
        }
        let a = n.handle(sasl("success", &fin)).unwrap();
        assert_eq!(a, vec![Action::RestartStream]);
        n.handle(open()).unwrap();
        let a = n
            .handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"))
            .unwrap();
        assert_eq!(
            sent(&a),
            vec!["<iq xmlns='jabber:client' id='bind-1' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>skiff</resource></bind></iq>"]
        );
        let a = n
            .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
            .unwrap();
        let [Action::Done(done)] = a.as_slice() else { panic!("{a:?}") };
        assert_eq!(done.jid.to_string(), "user@example.com/skiff");
        assert_eq!(done.mechanism, "SCRAM-SHA-256");
        assert!(done.tls);
    }
}

/// Some servers send the server-final message in a challenge (RFC 6120 §6.4.3): it
/// is verified there, answered with an empty response, and the success is empty.
#[test]
fn server_final_in_a_challenge() {
    for forge in [false, true] {
        let mut n = neg(TlsMode::Direct);
        n.handle(open()).unwrap();
        let a = n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
        let (server, challenge) = ScramServer::first(&sasl_payload(&a));
        let a = n.handle(sasl("challenge", &challenge)).unwrap();
        let mut fin = server.last(&sasl_payload(&a), b"");
        if forge {
            let last = fin.len() - 2;
            fin[last] ^= 1;
            assert_eq!(n.handle(sasl("challenge", &fin)), Err(NegotiationError::ServerProofInvalid));
            continue;
        }
        let a = n.handle(sasl("challenge", &fin)).unwrap();
        assert_eq!(sent(&a), vec!["<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"]);
        let a = n.handle(st("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")).unwrap();
        assert_eq!(a, vec![Action::RestartStream]);
    }
    // A success straight after the auth, with no exchange at all, proves nothing.
    let mut n = neg(TlsMode::Direct);
    n.handle(open()).unwrap();
    n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
    assert_eq!(
        n.handle(st("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")),
        Err(NegotiationError::ServerProofInvalid)
    );
}

/// A SCRAM challenge built from `f(client nonce)`, answered by the negotiator.
fn challenge_with(f: impl Fn(&str) -> String) -> Result<Vec<Action>, NegotiationError> {
    let mut n = neg(TlsMode::Direct);
    n.handle(open()).unwrap();
    let a = n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
    let first = sasl_payload(&a);
    let nonce = scram_attr(&first, 'r').unwrap();
    n.handle(sasl("challenge", f(&nonce).as_bytes()))
}

#[test]
fn hostile_scram_challenges_are_refused_before_pbkdf2() {
    use NegotiationError::{ScramExtension, ScramIterations, ScramMalformed, ScramNonce, ScramSalt};
    const SALT: &str = "c2FsdHNhbHQ=";
    let ok = challenge_with(|c| format!("r={c}srv,s={SALT},i=4096"));
    assert!(ok.is_ok(), "{ok:?}");
    type Make = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(&str, Make, NegotiationError)> = vec![
        ("not extending ours", Box::new(|_| format!("r=someoneelsesnonce,s={SALT},i=4096")), ScramNonce),
        ("equal to ours", Box::new(|c| format!("r={c},s={SALT},i=4096")), ScramNonce),
        ("ours as a suffix", Box::new(|c| format!("r=x{c},s={SALT},i=4096")), ScramNonce),
        ("a prefix of ours", Box::new(|c| format!("r={},s={SALT},i=4096", &c[..c.len() - 1])), ScramNonce),
        ("4095 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=4095")), ScramIterations(4095)),
        ("1,000,001 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=1000001")), ScramIterations(1_000_001)),
        ("2^32-1 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=4294967295")), ScramIterations(4294967295)),
        ("0 rounds", Box::new(|c| format!("r={c}srv,s={SALT},i=0")), ScramIterations(0)),
        (
            "rounds beyond 64 bits",
            Box::new(|c| format!("r={c}srv,s={SALT},i=99999999999999999999999")),
            ScramIterations(u64::MAX),
        ),
        (
            "a second, larger count",
            Box::new(|c| format!("r={c}srv,s={SALT},i=4096,i=4294967295")),
            ScramMalformed("an attribute given twice"),
        ),
        (
            "a second nonce",
            Box::new(|c| format!("r={c}srv,s={SALT},i=4096,r=mallory")),
            ScramMalformed("an attribute given twice"),
        ),
        (
            "negative rounds",
            Box::new(|c| format!("r={c}srv,s={SALT},i=-1")),
            ScramMalformed("an iteration count that is not a number"),
        ),
        ("no rounds", Box::new(|c| format!("r={c}srv,s={SALT}")), ScramMalformed("no iteration count")),
        ("no nonce", Box::new(|_| format!("s={SALT},i=4096")), ScramMalformed("no nonce")),
        ("bad salt", Box::new(|c| format!("r={c}srv,s=***,i=4096")), ScramSalt),
        ("empty salt", Box::new(|c| format!("r={c}srv,s=,i=4096")), ScramSalt),
        ("an extension", Box::new(|c| format!("m=ext,r={c}srv,s={SALT},i=4096")), ScramExtension),
    ];
    for (what, f, expected) in cases {
        let started = std::time::Instant::now();
        let r = challenge_with(f);
        assert_eq!(r, Err(expected), "{what}");
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{what}: PBKDF2 ran");
        let text = r.unwrap_err().to_string();
        assert!(text.contains("in the middle") || text.contains("cannot go on safely"), "{what}: {text}");
    }
    assert_eq!(
        challenge_with(|_| "r=x".into()).unwrap_err().to_string(),
        "the server's SCRAM nonce does not extend ours: someone may be in the middle"
    );
    assert!(challenge_with(|c| format!("r={c}srv,s={SALT},i=4294967295"))
        .unwrap_err()
        .to_string()
        .starts_with("the server asks for 4294967295 SCRAM iterations, but this client accepts only 4096 to 1000000"));
    // The bounds themselves are fine.
    assert!(challenge_with(|c| format!("r={c}srv,s={SALT},i={MAX_SCRAM_ITERATIONS}")).is_ok());
    assert!(challenge_with(|c| format!("r={c}srv,s={SALT},i={MIN_SCRAM_ITERATIONS}")).is_ok());
}

#[test]
fn plain_is_refused_to_an_account_that_used_scram() {
    let only_plain = mechanisms(&["PLAIN"]);
    let mut n = neg(TlsMode::Direct).require_scram(true);
    n.handle(open()).unwrap();
    let r = n.handle(features(&only_plain));
    assert_eq!(r, Err(NegotiationError::PlainDowngrade));
    let text = r.unwrap_err().to_string();
    assert!(text.contains("downgrade") && text.contains("signed in with SCRAM before"), "{text}");
    assert!(text.contains("allow PLAIN for this account"), "{text}");
    // SCRAM offered: used as always.
    let mut n = neg(TlsMode::Direct).require_scram(true);
    n.handle(open()).unwrap();
    let a = n.handle(features(MECHS)).unwrap();
    assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-1'"), "{a:?}");
    // Without the requirement, PLAIN over TLS is still allowed, and reported.
    let mut n = neg(TlsMode::Direct);
    n.handle(open()).unwrap();
    assert!(sent(&n.handle(features(&only_plain)).unwrap())[0].contains("mechanism='PLAIN'"));
    let a = n.handle(st("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")).unwrap();
    assert_eq!(a, vec![Action::RestartStream]);
    n.handle(open()).unwrap();
    n.handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")).unwrap();
    let a = n
        .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
        .unwrap();
    assert!(matches!(a.as_slice(), [Action::Done(d)] if d.mechanism == "PLAIN"), "{a:?}");
}

const ALL_SCRAM: [&str; 4] = ["SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"];

fn exporter() -> ChannelBindingData {
    ChannelBindingData::TlsExporter((0..32).collect())
}

/// The mechanism and GS2 header chosen for `mechs` (plus optional extra features)
/// with `binding` over direct TLS.
fn choice(binding: Option<ChannelBindingData>, mechs: &[&str], extra: &str) -> (String, String) {
    let mut n = neg(TlsMode::Direct).channel_binding(binding);
    n.handle(open()).unwrap();
    let a = n.handle(features(&format!("{}{extra}", mechanisms(mechs)))).unwrap();
    let [Action::Send(auth)] = a.as_slice() else { panic!("{a:?}") };
    let first = String::from_utf8(decode(&auth.text()).unwrap()).unwrap();
    let gs2 = first.split(",n=").next().unwrap().to_owned();
    (auth.attr("mechanism").unwrap().to_owned(), gs2)
}

#[test]
fn plus_is_chosen_when_offered_and_bound() {
    // Bound and offered: the strongest -PLUS, with the exporter's header.
    assert_eq!(choice(Some(exporter()), &ALL_SCRAM, ""), ("SCRAM-SHA-256-PLUS".into(), "p=tls-exporter,".into()));
    // -PLUS over a stronger hash: binding protects the sign-in against a relay.
    assert_eq!(
        choice(Some(exporter()), &["SCRAM-SHA-256", "SCRAM-SHA-1-PLUS"], ""),
        ("SCRAM-SHA-1-PLUS".into(), "p=tls-exporter,".into())
    );
    // XEP-0440 lists tls-exporter: fine.
    let cb = "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/><channel-binding type='tls-exporter'/></sasl-channel-binding>";
    assert_eq!(choice(Some(exporter()), &ALL_SCRAM, cb).0, "SCRAM-SHA-256-PLUS");
}

#[test]
fn plus_is_not_chosen_without_binding() {
    // No data: never -PLUS, and "n" (we cannot bind).
    assert_eq!(choice(None, &ALL_SCRAM, ""), ("SCRAM-SHA-256".into(), "n,".into()));
    assert_eq!(choice(None, &["SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"], ""), ("SCRAM-SHA-1".into(), "n,".into()));
    // Only -PLUS offered and no data: nothing usable (PLAIN absent).
    let mut n = neg(TlsMode::Direct);
    n.handle(open()).unwrap();
    assert!(matches!(n.handle(features(&mechanisms(&["SCRAM-SHA-256-PLUS"]))), Err(NegotiationError::NoMechanism(_))));
    // Data, but the server offers no -PLUS: "y" (a server able to bind sees the
    // downgrade).
    assert_eq!(choice(Some(exporter()), &ALL_SCRAM[..2], ""), ("SCRAM-SHA-256".into(), "y,".into()));
    // Data, -PLUS offered, but XEP-0440 lists only types we cannot do: no -PLUS, "n".
    let cb = "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/></sasl-channel-binding>";
    assert_eq!(choice(Some(exporter()), &ALL_SCRAM, cb), ("SCRAM-SHA-256".into(), "n,".into()));
    // Data given to a plaintext transport: ignored.
    let mut n = neg(TlsMode::Plaintext).channel_binding(Some(exporter()));
    n.handle(open()).unwrap();
    let a = n.handle(features(&mechanisms(&ALL_SCRAM))).unwrap();
    assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-256'>"), "{a:?}");
    assert!(sasl_payload(&a).starts_with(b"n,,"));
}

/// STARTTLS, the binding data handed over with the TLS upgrade, then a whole
/// SCRAM-SHA-256-PLUS exchange whose server checks the binding data; then the "y"
/// flag through a whole exchange.
#[test]
fn plus_exchange_after_starttls() {
    let mut n = neg(TlsMode::StartTls);
    n.handle(open()).unwrap();
    n.handle(features(&format!("{STARTTLS}{}", mechanisms(&ALL_SCRAM)))).unwrap();
    n.handle(st("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")).unwrap();
    assert_eq!(n.tls_established_with(Some(exporter())), vec![Action::RestartStream]);
    n.handle(open()).unwrap();
    let a = n.handle(features(&mechanisms(&ALL_SCRAM))).unwrap();
    assert!(sent(&a)[0].contains("mechanism='SCRAM-SHA-256-PLUS'"), "{a:?}");
    let (server, challenge) = ScramServer::first(&sasl_payload(&a));
    assert_eq!(server.gs2, "p=tls-exporter,,");
    let a = n.handle(sasl("challenge", &challenge)).unwrap();
    let client_final = sasl_payload(&a);
    let ChannelBindingData::TlsExporter(data) = exporter();
    let fin = server.last(&client_final, &data);
    assert_eq!(n.handle(sasl("success", &fin)).unwrap(), vec![Action::RestartStream]);
    // "y" goes through as c=eSws (base64 of "y,,").
    let mut n = neg(TlsMode::Direct).channel_binding(Some(exporter()));
    n.handle(open()).unwrap();
    let a = n.handle(features(&mechanisms(&["SCRAM-SHA-256"]))).unwrap();
    let (server, challenge) = ScramServer::first(&sasl_payload(&a));
    assert_eq!(server.gs2, "y,,");
    let a = n.handle(sasl("challenge", &challenge)).unwrap();
    assert!(String::from_utf8(sasl_payload(&a)).unwrap().starts_with("c=eSws,"));
    let fin = server.last(&sasl_payload(&a), b"");
    assert_eq!(n.handle(sasl("success", &fin)).unwrap(), vec![Action::RestartStream]);
}

#[test]
fn required_legacy_session_and_bad_bind() {
    let mut n = neg(TlsMode::Direct);
    n.authenticated = true; // as after SASL success
    n.handle(open()).unwrap();
    n.handle(features(
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
    ))
    .unwrap();
    let a = n
        .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/x</jid></bind></iq>"))
        .unwrap();
    assert_eq!(sent(&a), vec!["<iq xmlns='jabber:client' id='session-1' type='set'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"]);
    assert!(matches!(
        n.handle(st("<iq xmlns='jabber:client' id='session-1' type='result'/>")).unwrap()[0],
        Action::Done(_)
    ));

    let mut n = neg(TlsMode::Direct);
    n.authenticated = true;
    n.handle(open()).unwrap();
    n.handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")).unwrap();
    let err = n
        .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>mallory@evil.example/x</jid></bind></iq>"))
        .unwrap_err();
    assert!(matches!(err, NegotiationError::Unexpected(_)));
}
const SM_BIND: &str = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/>";

/// A negotiator past SASL that asks to resume session 'abc' (we handled 7).
fn resuming() -> Negotiator {
    let old: Jid = "user@example.com/old".parse().unwrap();
    let mut n = neg(TlsMode::Direct).resume(Some((ResumeRequest { previd: "abc".into(), h: 7 }, old)));
    n.authenticated = true;
    n.handle(open()).unwrap();
    n
}

#[test]
fn resumption_replaces_binding() {
    let mut n = resuming();
    let a = n.handle(features(SM_BIND)).unwrap();
    assert_eq!(sent(&a), vec!["<resume xmlns='urn:xmpp:sm:3' h='7' previd='abc'/>"]);
    let a = n.handle(st("<resumed xmlns='urn:xmpp:sm:3' h='3' previd='abc'/>")).unwrap();
    let [Action::Done(d)] = a.as_slice() else { panic!("{a:?}") };
    assert_eq!(d.jid.to_string(), "user@example.com/old");
    assert_eq!(d.resumption, Some(Resumption::Resumed { h: 3 }));
    assert!(d.features.iter().any(|f| f == "urn:xmpp:sm:3"));
}

#[test]
fn failed_resumption_binds_a_new_resource() {
    let mut n = resuming();
    n.handle(features(SM_BIND)).unwrap();
    let a = n
        .handle(st("<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"))
        .unwrap();
    assert!(
        sent(&a)[0].contains("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>skiff</resource></bind>"),
        "{a:?}"
    );
    let a = n
        .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
        .unwrap();
    let [Action::Done(d)] = a.as_slice() else { panic!("{a:?}") };
    assert_eq!(d.jid.to_string(), "user@example.com/skiff");
    assert_eq!(d.resumption, Some(Resumption::Failed { h: Some(2), condition: Some("item-not-found".into()) }));
}

#[test]
fn no_stream_management_offered_binds_and_says_so() {
    let mut n = resuming();
    let a = n.handle(features("<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>")).unwrap();
    assert!(sent(&a)[0].contains("<bind"), "{a:?}");
    let a = n
        .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
        .unwrap();
    assert!(matches!(a.as_slice(), [Action::Done(d)] if d.resumption == Some(Resumption::NotOffered)));
    // Without a request, nothing is said about resumption.
    let mut n = neg(TlsMode::Direct);
    n.authenticated = true;
    n.handle(open()).unwrap();
    n.handle(features(SM_BIND)).unwrap();
    let a = n
        .handle(st("<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>"))
        .unwrap();
    assert!(matches!(a.as_slice(), [Action::Done(d)] if d.resumption.is_none()));
}

#[test]
fn a_resumption_of_another_session_or_nonsense_is_refused() {
    let mut n = resuming();
    n.handle(features(SM_BIND)).unwrap();
    let err = n.handle(st("<resumed xmlns='urn:xmpp:sm:3' h='3' previd='other'/>")).unwrap_err();
    assert!(err.to_string().contains("resumed session 'other' where 'abc' was asked"), "{err}");
    let mut n = resuming();
    n.handle(features(SM_BIND)).unwrap();
    assert!(matches!(
        n.handle(st("<resumed xmlns='urn:xmpp:sm:3' previd='abc'/>")),
        Err(NegotiationError::Unexpected(_))
    ));
    let mut n = resuming();
    n.handle(features(SM_BIND)).unwrap();
    assert!(matches!(n.handle(st("<a xmlns='urn:xmpp:sm:3' h='1'/>")), Err(NegotiationError::Unexpected(_))));
    let mut n = resuming();
    n.handle(features(SM_BIND)).unwrap();
    assert!(matches!(n.handle(st("<message xmlns='jabber:client'/>")), Err(NegotiationError::Unexpected(_))));
}
