//! Tests of the Prosody harness itself, with plain std sockets (and rustls
//! for the STARTTLS handshake): no Skiff code is involved.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use base64::Engine as _;
use skiff_tests::{free_port, Prosody, ProsodyOptions, TlsMode};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn stream_header(domain: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    )
}

fn connect(port: u16) -> Result<TcpStream> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Whether 127.0.0.1:`port` accepts a TCP connection right now.
fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), Duration::from_secs(1)).is_ok()
}

/// Processes whose command line mentions `dir` (our Prosody's config path).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// A minimal XMPP client over any byte stream: sends raw XML and reads until
/// a marker appears. Enough to probe the server, not a parser.
struct Raw<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Raw<S> {
    fn new(s: S) -> Self {
        Raw { s, buf: Vec::new() }
    }

    fn send(&mut self, xml: &str) -> Result<()> {
        self.s.write_all(xml.as_bytes())?;
        self.s.flush()?;
        Ok(())
    }

    /// Reads until `needle` has arrived; returns everything up to and
    /// including it and keeps the rest buffered.
    fn read_until(&mut self, needle: &str) -> Result<String> {
        loop {
            if let Some(pos) = find(&self.buf, needle.as_bytes()) {
                let rest = self.buf.split_off(pos + needle.len());
                let text = std::mem::replace(&mut self.buf, rest);
                return Ok(String::from_utf8_lossy(&text).into_owned());
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .s
                .read(&mut chunk)
                .with_context(|| format!("waiting for {needle:?}; got {:?}", String::from_utf8_lossy(&self.buf)))?;
            if n == 0 {
                bail!("connection closed while waiting for {needle:?}; got {:?}", String::from_utf8_lossy(&self.buf));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Opens a stream and returns the `<stream:features>` text.
    fn open_stream(&mut self, domain: &str) -> Result<String> {
        self.send(&stream_header(domain))?;
        self.read_until("</stream:features>")
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value of attribute `name` in the start tag `tag` (either quote style).
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    for quote in ['\'', '"'] {
        let key = format!(" {name}={quote}");
        if let Some(start) = tag.find(&key) {
            let rest = &tag[start + key.len()..];
            return rest.find(quote).map(|end| &rest[..end]);
        }
    }
    None
}

/// Logs in with SASL PLAIN on a plaintext server, binds a resource and
/// returns the roster as `(jid, subscription)` pairs.
fn plaintext_login_roster(server: &Prosody, user: &str, password: &str) -> Result<Vec<(String, String)>> {
    let mut c = Raw::new(connect(server.c2s_port)?);
    let features = c.open_stream(&server.domain)?;
    ensure!(!features.contains("starttls"), "plaintext server offers STARTTLS: {features}");
    ensure!(features.contains(">PLAIN<"), "PLAIN not offered: {features}");
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    c.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"))?;
    let reply = c.read_until("xmpp-sasl'")?;
    if !reply.contains("<success") {
        let rest = c.read_until("</failure>").unwrap_or_default();
        bail!("authentication of {user} failed: {reply}{rest}");
    }
    let features = c.open_stream(&server.domain)?;
    ensure!(features.contains("urn:ietf:params:xml:ns:xmpp-bind"), "no bind feature: {features}");
    c.send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")?;
    let bound = c.read_until("</iq>")?;
    ensure!(bound.contains(&format!("<jid>{}/", server.jid(user))), "bind failed: {bound}");
    c.send("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>")?;
    let roster = c.read_until("</iq>")?;
    ensure!(roster.contains("type='result'"), "roster get failed: {roster}");
    let mut items = Vec::new();
    for part in roster.split("<item").skip(1) {
        let tag = &part[..part.find('>').unwrap_or(part.len())];
        let jid = attr(tag, "jid").unwrap_or_default().to_owned();
        let subscription = attr(tag, "subscription").unwrap_or("none").to_owned();
        items.push((jid, subscription));
    }
    items.sort();
    c.send("</stream:stream>")?;
    Ok(items)
}

fn plaintext_opts(users: &[(&str, &str)], contacts: &[(&str, &str)]) -> ProsodyOptions {
    ProsodyOptions {
        tls: TlsMode::Plaintext,
        users: users.iter().map(|(u, p)| (u.to_string(), p.to_string())).collect(),
        contacts: contacts.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        ..ProsodyOptions::default()
    }
}

fn both(jids: &[&str]) -> Vec<(String, String)> {
    jids.iter().map(|j| (j.to_string(), "both".to_owned())).collect()
}

/// Checks that the proxy65 port speaks SOCKS5 (greeting, no-auth chosen).
fn check_socks5(port: u16) -> Result<()> {
    let mut s = connect(port)?;
    s.write_all(&[5, 1, 0])?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).context("reading the SOCKS5 method reply")?;
    ensure!(reply == [5, 0], "unexpected SOCKS5 reply {reply:?}");
    Ok(())
}

/// Checks that the HTTP port answers an HTTP request.
fn check_http(port: u16) -> Result<String> {
    let mut s = connect(port)?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while find(&response, b"\r\n\r\n").is_none() {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    ensure!(response.starts_with("HTTP/1.1 "), "not an HTTP response: {response:?}");
    Ok(response)
}

#[test]
fn default_options_are_as_documented() {
    let opts = ProsodyOptions::default();
    assert_eq!(opts.tls, TlsMode::StartTls);
    assert_eq!(opts.users, vec![("alice".to_owned(), "alice-pw".to_owned()), ("bob".to_owned(), "bob-pw".to_owned())]);
    assert_eq!(opts.contacts, vec![("alice".to_owned(), "bob".to_owned())]);
    assert_eq!(opts.upload_size_limit, 1 << 30);
}

#[test]
fn starttls_mode_serves_all_ports() -> Result<()> {
    let server = Prosody::start(ProsodyOptions::default())?;
    assert_eq!(server.domain, "localhost");
    assert_eq!(server.jid("alice"), "alice@localhost");
    assert_eq!(server.password("alice"), "alice-pw");
    assert_eq!(server.password("bob"), "bob-pw");
    assert_eq!(server.proxy_jid(), "proxy.localhost");
    assert_eq!(server.upload_jid(), "upload.localhost");
    let ports = [server.c2s_port, server.proxy_port, server.http_port];
    assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2], "{ports:?}");
    assert!(server.ca_file.is_file());
    assert!(server.ca_file.starts_with(&server.dir));

    let mut c = Raw::new(connect(server.c2s_port)?);
    let features = c.open_stream(&server.domain)?;
    assert!(features.contains("<stream:features"), "{features}");
    assert!(features.contains("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'"), "{features}");
    assert!(features.contains("<required"), "STARTTLS should be required: {features}");
    assert!(!features.contains(">PLAIN<"), "PLAIN offered before TLS: {features}");

    check_socks5(server.proxy_port)?;
    check_http(server.http_port)?;
    assert!(server.log_tail(100).contains("Activated service 'c2s'"));
    Ok(())
}

#[test]
fn starttls_certificate_verifies_with_ca_file() -> Result<()> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, ServerName};

    let server = Prosody::start(ProsodyOptions::default())?;
    let mut c = Raw::new(connect(server.c2s_port)?);
    let features = c.open_stream(&server.domain)?;
    assert!(features.contains("starttls"), "{features}");
    c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
    c.read_until("<proceed")?;
    c.read_until("/>")?;
    assert!(c.buf.is_empty(), "bytes after <proceed/>");

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&server.ca_file)? {
        roots.add(cert?)?;
    }
    assert_eq!(roots.len(), 1);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost")?)?;
    let tls = rustls::StreamOwned::new(conn, c.s);
    let mut c = Raw::new(tls);
    let features = c.open_stream(&server.domain)?;
    assert!(!features.contains("starttls"), "{features}");
    assert!(features.contains(">SCRAM-SHA-1<"), "SCRAM not offered: {features}");
    assert!(features.contains(">PLAIN<"), "PLAIN should be allowed over TLS: {features}");
    Ok(())
}

#[test]
fn plaintext_mode_logs_in_and_has_mutual_contacts() -> Result<()> {
    let server = Prosody::start(plaintext_opts(
        &[("alice", "a-pw"), ("bob", "b-pw"), ("carol", "c-pw"), ("dave", "d-pw")],
        &[("alice", "bob"), ("carol", "alice")],
    ))?;
    let mut c = Raw::new(connect(server.c2s_port)?);
    let features = c.open_stream(&server.domain)?;
    assert!(!features.contains("starttls"), "{features}");
    check_socks5(server.proxy_port)?;
    check_http(server.http_port)?;

    assert_eq!(plaintext_login_roster(&server, "alice", "a-pw")?, both(&["bob@localhost", "carol@localhost"]));
    assert_eq!(plaintext_login_roster(&server, "bob", "b-pw")?, both(&["alice@localhost"]));
    assert_eq!(plaintext_login_roster(&server, "carol", "c-pw")?, both(&["alice@localhost"]));
    assert_eq!(plaintext_login_roster(&server, "dave", "d-pw")?, vec![]);
    let err = plaintext_login_roster(&server, "alice", "wrong").unwrap_err();
    assert!(format!("{err:#}").contains("not-authorized"), "{err:#}");
    Ok(())
}

#[test]
fn register_at_runtime_and_restart_keeps_ports_and_data() -> Result<()> {
    let mut server = Prosody::start(plaintext_opts(&[("alice", "a-pw")], &[]))?;
    server.register("erin", "e-pw")?;
    assert_eq!(server.password("erin"), "e-pw");
    plaintext_login_roster(&server, "erin", "e-pw")?;

    let ports = (server.c2s_port, server.proxy_port, server.http_port);
    let pid = server.pid().context("no pid")?;
    let started = Instant::now();
    server.restart()?;
    eprintln!("restart took {:?}", started.elapsed());
    assert_eq!((server.c2s_port, server.proxy_port, server.http_port), ports);
    assert_ne!(server.pid(), Some(pid), "restart kept the old process");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "old process {pid} still exists");
    assert!(server.is_running());
    for port in [ports.0, ports.1, ports.2] {
        assert!(accepts(port), "port {port} not accepting after restart");
    }
    check_socks5(server.proxy_port)?;
    check_http(server.http_port)?;
    plaintext_login_roster(&server, "erin", "e-pw")?;
    plaintext_login_roster(&server, "alice", "a-pw")?;
    Ok(())
}

#[test]
fn stop_and_drop_kill_the_process() -> Result<()> {
    let mut server = Prosody::start(ProsodyOptions::default())?;
    let dir = server.dir.clone();
    let pid = server.pid().context("no pid")?;
    let ports = [server.c2s_port, server.proxy_port, server.http_port];
    assert!(!processes_mentioning(&dir).is_empty());

    let started = Instant::now();
    server.stop();
    eprintln!("stop took {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(5), "Prosody needed SIGKILL");
    assert!(!server.is_running());
    assert_eq!(server.pid(), None);
    for port in ports {
        assert!(!accepts(port), "port {port} still accepting after stop");
    }
    server.stop(); // idempotent

    server.restart()?;
    assert!(server.is_running());
    let pid2 = server.pid().context("no pid")?;
    assert_ne!(pid, pid2);
    drop(server);
    for port in ports {
        assert!(!accepts(port), "port {port} still accepting after drop");
    }
    assert!(!Path::new(&format!("/proc/{pid2}")).exists(), "process {pid2} survived drop");
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new());
    assert!(!dir.exists(), "temporary directory {} not removed", dir.display());
    Ok(())
}

#[test]
fn parallel_instances_are_independent() -> Result<()> {
    let handles: Vec<_> =
        (0..3).map(|_| std::thread::spawn(|| Prosody::start(plaintext_opts(&[("alice", "a-pw")], &[])))).collect();
    let servers: Vec<Prosody> =
        handles.into_iter().map(|h| h.join().expect("thread panicked")).collect::<Result<_>>()?;
    let mut ports: Vec<u16> = servers.iter().flat_map(|s| [s.c2s_port, s.proxy_port, s.http_port]).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 9, "instances share ports");
    assert_ne!(servers[0].dir, servers[1].dir);
    for s in &servers {
        plaintext_login_roster(s, "alice", "a-pw")?;
    }
    Ok(())
}

#[test]
fn start_in_persistent_dir_keeps_accounts_certs_and_rosters() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("demo");
    let ports = (free_port(), free_port(), free_port());
    let opts = plaintext_opts(&[("alice", "a-pw"), ("bob", "b-pw")], &[("alice", "bob")]);

    let server = Prosody::start_in(&dir, opts.clone(), Some(ports))?;
    assert_eq!((server.c2s_port, server.proxy_port, server.http_port), ports);
    server.register("frank", "f-pw")?;
    let ca = std::fs::read(&server.ca_file)?;
    drop(server);
    assert!(dir.join("data").is_dir(), "start_in must not delete its directory");

    // Second run: no users given, but the accounts and contacts are still there.
    let server = Prosody::start_in(&dir, plaintext_opts(&[], &[]), None)?;
    assert_eq!(std::fs::read(&server.ca_file)?, ca, "CA regenerated");
    assert_eq!(plaintext_login_roster(&server, "alice", "a-pw")?, both(&["bob@localhost"]));
    assert_eq!(plaintext_login_roster(&server, "frank", "f-pw")?, vec![]);
    drop(server);

    // Third run with the same options: rosters are not duplicated or reset.
    let server = Prosody::start_in(&dir, opts, None)?;
    assert_eq!(plaintext_login_roster(&server, "bob", "b-pw")?, both(&["alice@localhost"]));
    Ok(())
}

#[test]
fn port_in_use_gives_a_clear_error_and_leaves_no_process() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let taken_port = taken.local_addr()?.port();
    let started = Instant::now();
    let err = Prosody::start_in(tmp.path(), plaintext_opts(&[], &[]), Some((taken_port, free_port(), free_port())))
        .expect_err("started on a taken port");
    let msg = format!("{err:#}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    assert!(msg.contains("could not listen"), "{msg}");
    assert!(msg.contains(&taken_port.to_string()), "{msg}");
    assert!(msg.contains("prosody.log"), "error should include the log tail: {msg}");
    assert_eq!(processes_mentioning(tmp.path()), Vec::<String>::new());
    Ok(())
}
