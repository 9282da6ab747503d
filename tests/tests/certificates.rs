//! Self-signed server certificates as admins make them (`openssl req -x509`,
//! `prosodyctl cert generate`), against a real Prosody on loopback, through the
//! `skiff` binary: refused by default with the fingerprint shown; trusted with
//! `--ca-file` of that very certificate or with `--trust-fingerprint`; the pin is kept
//! for the account and a changed certificate is refused afterwards with a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use skiff_engine::trust::Fingerprint;
use skiff_engine::{AccountConfig, Client, Event, Secret, TlsMode};
use skiff_tests::cli::skiff_binary;
use skiff_tests::prosody::openssl_fingerprint;
use skiff_tests::{Prosody, ProsodyOptions};

/// `skiff whoami` as alice, with `args` (no CA file unless given).
fn whoami(server: &Prosody, data: &Path, args: &[&str]) -> Output {
    Command::new(skiff_binary())
        .args(["--jid", &server.jid("alice"), "--server", &format!("127.0.0.1:{}", server.c2s_port)])
        .args(["--data-dir", &data.display().to_string(), "--resource", "cert-test"])
        .args(args)
        .arg("whoami")
        .env("SKIFF_PASSWORD", server.password("alice"))
        .stdin(Stdio::null())
        .output()
        .expect("run skiff")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn signed_in(o: &Output) -> bool {
    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("alice@localhost")
}

/// Asserts that the certificate is the kind webpki refuses as an end entity.
fn assert_ca_true(cert: &Path) {
    let out = Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(cert).output().expect("openssl");
    assert!(String::from_utf8_lossy(&out.stdout).contains("CA:TRUE"), "{} is not CA:TRUE", cert.display());
}

/// A self-signed certificate for localhost made as `openssl req -x509` makes it.
fn openssl_self_signed(server: &Prosody, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = server.self_signed(name).unwrap();
    assert_ca_true(&crt);
    (crt, key)
}

fn options() -> ProsodyOptions {
    ProsodyOptions { users: vec![("alice".into(), "alice-pw".into())], ..ProsodyOptions::default() }
}

#[test]
fn an_openssl_self_signed_certificate_is_trusted_only_by_explicit_choice() {
    let mut server = Prosody::start(options()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (crt, key) = openssl_self_signed(&server, "first");
    server.serve_certificate(&crt, &key).unwrap();
    let fp = openssl_fingerprint(&crt);
    let data = tmp.path().join("data");

    // Refused by default, with the fingerprint (as OpenSSL shows it) and why.
    let refused = whoami(&server, &data, &[]);
    let said = text(&refused);
    println!("refused: {said}");
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains(&format!("SHA256:{fp}")), "{said}");
    assert!(said.contains("self-signed") && said.contains("--trust-fingerprint"), "{said}");
    assert!(said.contains("CN=localhost") && said.contains("for localhost"), "{said}");

    // The certificate itself as --ca-file (as OpenSSL-based clients accept it).
    let with_ca = whoami(&server, &data, &["--ca-file", &crt.display().to_string()]);
    assert!(signed_in(&with_ca), "{}", text(&with_ca));
    // Another CA file does not help.
    let (other, _) = openssl_self_signed(&server, "other");
    let wrong_ca = whoami(&server, &data, &["--ca-file", &other.display().to_string()]);
    assert!(!wrong_ca.status.success(), "{}", text(&wrong_ca));

    // Pinned by fingerprint (lowercase, no colons: as users paste them); kept for the
    // account: the next run needs no flag.
    let pasted = fp.replace(':', "").to_lowercase();
    let pinned = whoami(&server, &data, &["--trust-fingerprint", &pasted]);
    assert!(signed_in(&pinned), "{}", text(&pinned));
    let again = whoami(&server, &data, &[]);
    assert!(signed_in(&again), "{}", text(&again));
    // A fingerprint that is not the certificate's is no trust.
    let wrong = whoami(&server, &tmp.path().join("data2"), &["--trust-fingerprint", &openssl_fingerprint(&other)]);
    assert!(!wrong.status.success(), "{}", text(&wrong));

    // The server's certificate changes: refused, with a warning naming the change.
    let (second, second_key) = openssl_self_signed(&server, "second");
    server.serve_certificate(&second, &second_key).unwrap();
    let changed = whoami(&server, &data, &[]);
    let said = text(&changed);
    println!("changed: {said}");
    assert!(!changed.status.success(), "{said}");
    assert!(said.contains("not the one you trusted before"), "{said}");
    assert!(said.contains(&format!("SHA256:{}", openssl_fingerprint(&second))), "{said}");
    // Confirmed again: trusted, and the new pin replaces the old one.
    let confirmed = whoami(&server, &data, &["--trust-fingerprint", &openssl_fingerprint(&second)]);
    assert!(signed_in(&confirmed), "{}", text(&confirmed));
    assert!(signed_in(&whoami(&server, &data, &[])));
}

#[test]
fn a_prosodyctl_generated_certificate_works_with_its_ca_file_or_fingerprint() {
    let mut server = Prosody::start(options()).unwrap();
    let certs = server.dir.join("certs");
    // As an admin does it (the key size is asked on the terminal; the subject given).
    let mut child = Command::new("prosodyctl")
        .arg("--config")
        .arg(server.config_file())
        .args(["cert", "generate", "localhost", "/CN=localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prosodyctl");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"2048\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let (crt, key) = (certs.join("localhost.crt"), certs.join("localhost.key"));
    assert!(crt.is_file(), "prosodyctl wrote no certificate: {}", text(&out));
    assert_ca_true(&crt);
    server.serve_certificate(&crt, &key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let fp = openssl_fingerprint(&crt);

    let refused = whoami(&server, &data, &[]);
    assert!(!refused.status.success() && text(&refused).contains(&format!("SHA256:{fp}")), "{}", text(&refused));
    let with_ca = whoami(&server, &data, &["--ca-file", &crt.display().to_string()]);
    assert!(signed_in(&with_ca), "{}", text(&with_ca));
    let pinned = whoami(&server, &tmp.path().join("data2"), &["--trust-fingerprint", &format!("SHA256:{fp}")]);
    assert!(signed_in(&pinned), "{}", text(&pinned));
}

/// The engine's side of the contract the desktop builds its dialog on: the codes and
/// the certificate in `Event::Fatal`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_reports_an_untrusted_and_a_changed_certificate() {
    let mut server = Prosody::start(options()).unwrap();
    let (crt, key) = openssl_self_signed(&server, "first");
    server.serve_certificate(&crt, &key).unwrap();
    let fp: Fingerprint = openssl_fingerprint(&crt).parse().unwrap();
    let fatal = |pins: Vec<Fingerprint>| {
        let mut cfg = AccountConfig::new(server.jid("alice").parse().unwrap(), Secret::new(server.password("alice")));
        cfg.server = Some(("127.0.0.1".into(), server.c2s_port));
        cfg.tls = TlsMode::StartTls;
        cfg.reconnect = false;
        cfg.trusted_certificates = pins;
        async move {
            let client = Client::start(cfg);
            let mut events = client.events();
            let result = tokio::time::timeout(Duration::from_secs(15), async {
                loop {
                    match events.recv().await {
                        Ok(Event::Fatal { code, untrusted, .. }) => return Some((code, untrusted)),
                        Ok(Event::Online { .. }) => return None,
                        Ok(_) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
            .await
            .expect("an outcome within 15 s");
            client.disconnect().await;
            result
        }
    };
    let (code, untrusted) = fatal(Vec::new()).await.expect("refused");
    let u = untrusted.expect("the certificate comes with the error");
    assert_eq!(code, "certificate-untrusted");
    assert_eq!(
        (u.host.as_str(), u.certificate.fingerprint.as_str(), u.changed),
        ("localhost", &*fp.to_string(), false)
    );
    assert!(u.certificate.self_signed && u.certificate.names == ["localhost"], "{u:?}");
    assert!(fatal(vec![fp]).await.is_none(), "the pinned certificate signs in");
    let other = Fingerprint::of(b"another certificate");
    let (code, untrusted) = fatal(vec![other]).await.expect("refused");
    assert_eq!((code.as_str(), untrusted.unwrap().changed), ("certificate-changed", true));
}
