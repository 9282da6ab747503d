//! Links reach out only after consent: a stranger's message with 200 `jabber:x:oob`
//! links makes at most 3 offers and not one connection until the user accepts (a
//! counting HTTP listener proves it); a contact's link to its own server gets its
//! size looked up; a redirect from an allowed URL into the local network, to another
//! port of this machine from elsewhere, or from https to plain http elsewhere is
//! refused before anything is dialled, and so is a link to a literal local-network
//! address.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_engine::transfer::AcceptPolicy;
use skiff_engine::{Client, Event};
use skiff_proto::xml::Element;
use skiff_tests::peer::{account, wait_for, Peer};
use skiff_tests::{Prosody, ProsodyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tiny HTTP server on 127.0.0.1: counts connections and requests ("HEAD /x",
/// "GET /x"); `respond` gives the status line and headers for a path (the body is
/// `BODY` for 200).
struct Httpd {
    port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

const BODY: &[u8] = b"hello from the link\n";

impl Httpd {
    async fn start(respond: fn(&str) -> String) -> Httpd {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, r) = (connections.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut b).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&b[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned();
                    let mut parts = line.split(' ');
                    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
                    r.lock().unwrap().push(format!("{method} {path}"));
                    let status = respond(&path);
                    let mut out = format!("{status}\r\nConnection: close\r\n\r\n").into_bytes();
                    if method == "GET" && status.starts_with("HTTP/1.1 200") {
                        out.extend_from_slice(BODY);
                    }
                    let _ = s.write_all(&out).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Httpd { port, connections, requests, task }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Httpd {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ok(_: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}", BODY.len())
}

fn links_message(to: &str, urls: &[String]) -> Element {
    let mut m = Element::new("message", "jabber:client").with_attr("to", to).with_attr("type", "chat");
    m.push_child(Element::new("body", "jabber:client").with_text(urls.join("\n")));
    for u in urls {
        m.push_child(
            Element::new("x", "jabber:x:oob").with_child(Element::new("url", "jabber:x:oob").with_text(u.as_str())),
        );
    }
    m
}

fn server() -> Prosody {
    let mut opts = ProsodyOptions::default();
    opts.users.push(("mallory".into(), "mallory-pw".into()));
    Prosody::start(opts).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_links_from_a_stranger_cause_no_request_before_acceptance() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |c| c.accept = AcceptPolicy::Ask).await;
    let mallory = Client::start(account(&server, "mallory", "raw"));
    mallory.wait_online().await.unwrap();
    let httpd = Httpd::start(ok).await;
    let urls: Vec<String> = (0..200).map(|i| format!("http://127.0.0.1:{}/file{i}.bin", httpd.port)).collect();
    mallory.send(links_message(&alice.jid.to_string(), &urls)).unwrap();

    // The offers arrive (at most 3), with the size unknown; nothing was fetched.
    let mut offers = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Ok(Event::TransferOffered { id, name, size, .. })) =
            tokio::time::timeout(Duration::from_millis(200), alice.events.recv()).await
        {
            offers.push((id, name, size));
        }
    }
    eprintln!("offers: {offers:?}; connections before acceptance: {}", httpd.connections());
    assert!(!offers.is_empty() && offers.len() <= 3, "{offers:?}");
    assert!(offers.iter().all(|(_, _, size)| *size == 0), "a size was looked up: {offers:?}");
    assert_eq!(httpd.connections(), 0, "requests before acceptance: {:?}", httpd.requests.lock().unwrap());

    // Accepting one fetches exactly that one.
    let (id, name, _) = offers[0].clone();
    alice.transfers.accept(id, None).unwrap();
    let end = alice.finished(id, 20).await;
    let Event::TransferCompleted { path, size, .. } = end else { panic!("{end:?}") };
    assert_eq!(std::fs::read(&path).unwrap(), BODY);
    assert_eq!(size, BODY.len() as u64);
    assert_eq!(alice.transfers.store().get(id).unwrap().size, BODY.len() as u64, "the size is recorded");
    assert_eq!(*httpd.requests.lock().unwrap(), vec![format!("GET /{name}")]);
    // Declining the others costs nothing either.
    for (id, _, _) in &offers[1..] {
        alice.transfers.reject(*id).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(httpd.connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contacts_link_to_its_own_server_gets_its_size() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |c| c.accept = AcceptPolicy::Ask).await;
    let bob = Client::start(account(&server, "bob", "raw"));
    bob.wait_online().await.unwrap();
    let httpd = Httpd::start(ok).await;
    // bob is bob@localhost: a link to localhost is on his own server.
    let url = format!("http://localhost:{}/notes.txt", httpd.port);
    bob.send(links_message(&alice.jid.to_string(), &[url])).unwrap();
    let offered = wait_for(&mut alice.events, 10, "the offer", |e| matches!(e, Event::TransferOffered { .. })).await;
    let Event::TransferOffered { size, .. } = offered else { unreachable!() };
    assert_eq!(size, BODY.len() as u64, "the contact's own server was asked for the size");
    assert_eq!(*httpd.requests.lock().unwrap(), vec!["HEAD /notes.txt".to_owned()]);
}

fn redirect_inwards(path: &str) -> String {
    match path {
        "/to-lan.bin" => "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/x.bin\r\nContent-Length: 0".into(),
        "/to-lan-https.bin" => "HTTP/1.1 302 Found\r\nLocation: https://192.168.1.1/x.bin\r\nContent-Length: 0".into(),
        "/to-metadata.bin" => {
            "HTTP/1.1 301 Moved\r\nLocation: http://169.254.169.254/latest/meta-data\r\nContent-Length: 0".into()
        }
        "/here.bin" => "HTTP/1.1 302 Found\r\nLocation: /final.bin\r\nContent-Length: 0".into(),
        _ => ok(path),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_into_the_local_network_are_refused() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |_| {}).await; // accepts everything
    let bob = Client::start(account(&server, "bob", "raw"));
    bob.wait_online().await.unwrap();
    let httpd = Httpd::start(redirect_inwards).await;
    for path in ["to-lan.bin", "to-lan-https.bin", "to-metadata.bin"] {
        let url = format!("http://127.0.0.1:{}/{path}", httpd.port);
        bob.send(links_message(&alice.jid.to_string(), &[url])).unwrap();
        let started = Instant::now();
        let end = alice.next_finished(10).await;
        let took = started.elapsed();
        eprintln!("{path}: {end:?} in {took:?}");
        let Event::TransferFailed { error, .. } = end else { panic!("{path}: {end:?}") };
        assert!(error.contains("refusing a redirect") && error.contains("local network"), "{path}: {error}");
        // Refused before dialling: an attempt to 10.0.0.1 would take the connect timeout.
        assert!(took < Duration::from_secs(3), "{path}: {took:?}");
    }
    // A redirect within the same local server is followed.
    let url = format!("http://127.0.0.1:{}/here.bin", httpd.port);
    bob.send(links_message(&alice.jid.to_string(), &[url])).unwrap();
    let end = alice.next_finished(10).await;
    assert!(matches!(end, Event::TransferCompleted { .. }), "{end:?}");
}

/// A blocking HTTPS server on 127.0.0.1 with the test server's certificate (it names
/// `localhost`): every request gets a redirect to `location(path)`. Counts connections.
struct Httpsd {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Httpsd {
    fn start(server: &Prosody, location: fn(&str) -> String) -> Httpsd {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        use std::io::{Read, Write};
        let certs = server.dir.join("certs");
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(certs.join("server.crt")).unwrap().map(Result::unwrap).collect();
        let key = PrivateKeyDer::from_pem_file(certs.join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let config = Arc::new(config);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let c = connections.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let config = config.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                    let mut tls = rustls::StreamOwned::new(conn, s);
                    let mut head = Vec::new();
                    let mut b = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut b) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&b[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_owned();
                    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                    let reply = format!(
                        "HTTP/1.1 302 Found\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        location(&path)
                    );
                    let _ = tls.write_all(reply.as_bytes());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        Httpsd { port, connections }
    }
}

fn https_redirects(path: &str) -> String {
    match path {
        "/to-http.bin" => "http://files.example.org/x.bin".into(),
        "/to-lan.bin" => "https://192.168.1.1/x.bin".into(),
        _ => "https://10.0.0.1/x.bin".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_redirects_to_plain_http_or_into_the_lan_are_refused() {
    let server = server();
    let ca = server.ca_file.clone();
    let mut alice = Peer::start(&server, "alice", |c| c.http_ca_file = Some(ca)).await; // accepts everything
    let bob = Client::start(account(&server, "bob", "raw"));
    bob.wait_online().await.unwrap();
    let httpsd = Httpsd::start(&server, https_redirects);
    for (path, expect) in [("to-http.bin", "plain http"), ("to-lan.bin", "local network")] {
        let url = format!("https://localhost:{}/{path}", httpsd.port);
        bob.send(links_message(&alice.jid.to_string(), &[url])).unwrap();
        let started = Instant::now();
        let end = alice.next_finished(10).await;
        let took = started.elapsed();
        eprintln!("{path}: {end:?} in {took:?}");
        let Event::TransferFailed { error, .. } = end else { panic!("{path}: {end:?}") };
        assert!(error.contains("refusing a redirect") && error.contains(expect), "{path}: {error}");
        assert!(took < Duration::from_secs(3), "{path}: {took:?}");
    }
    // bob's links are on his own server (localhost): a HEAD for the size on arrival,
    // then the GET, each refused at its redirect; nothing else was asked of this server.
    assert_eq!(httpsd.connections.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_to_literal_lan_addresses_are_refused_without_dialling() {
    let server = server();
    let mut alice = Peer::start(&server, "alice", |_| {}).await; // accepts everything
    let bob = Client::start(account(&server, "bob", "raw"));
    bob.wait_online().await.unwrap();
    // Addresses that would hang until the connect timeout if they were dialled.
    for url in ["https://192.168.1.1/router.bin", "https://10.0.0.1/x.bin", "https://[fe80::1]/x.bin"] {
        bob.send(links_message(&alice.jid.to_string(), &[url.to_owned()])).unwrap();
        let started = Instant::now();
        let end = alice.next_finished(10).await;
        let took = started.elapsed();
        eprintln!("{url}: {end:?} in {took:?}");
        let Event::TransferFailed { error, .. } = end else { panic!("{url}: {end:?}") };
        assert!(error.contains("refusing a link into the local network"), "{url}: {error}");
        assert!(took < Duration::from_secs(1), "{url}: {took:?}");
    }
}
