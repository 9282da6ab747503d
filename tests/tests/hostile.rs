//! Hostile or broken peers, played by a raw XMPP client on the real Prosody: path
//! tricks in names, a wrong MD5, size lies, a streamhost that stalls, a stranger on
//! our streamhost. Each gets a clear error; nothing lands outside the download folder
//! and nothing half-written appears under a final name.

use std::path::Path;
use std::time::{Duration, Instant};

use skiff_engine::session::ClientError;
use skiff_engine::transfer::s5b;
use skiff_engine::{Client, Event};
use skiff_proto::bytestreams::{dst_addr, StreamHost, StreamHostUsed, StreamHosts};
use skiff_proto::ibb::{Close, Data, Open, StanzaKind};
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::si::{FileInfo, FileOffer, SiAccept};
use skiff_proto::stanza::Condition;
use skiff_proto::xml::Element;
use skiff_tests::peer::{account, random_file, sha256_file, Peer};
use skiff_tests::{Prosody, ProsodyOptions};

async fn raw(server: &Prosody, user: &str) -> Client {
    let c = Client::start(account(server, user, "raw"));
    c.wait_online().await.unwrap();
    c
}

fn offer(sid: &str, name: &str, size: u64, hash: Option<&str>, methods: &[&str]) -> Element {
    let mut file = FileInfo::new(name, size);
    file.hash = hash.map(str::to_owned);
    file.range = true;
    FileOffer {
        sid: sid.into(),
        mime_type: None,
        file,
        methods: methods.iter().map(|m| m.to_string()).collect(),
        batch: None,
    }
    .into()
}

/// Offers `data` in-band under `name`, announcing `size` and `hash`; returns the
/// error of the first refused step, if any.
async fn send_in_band(
    c: &Client,
    to: &Jid,
    sid: &str,
    name: &str,
    size: u64,
    hash: Option<&str>,
    data: &[u8],
) -> Result<(), ClientError> {
    let accept = c.set(Some(to.clone()), offer(sid, name, size, hash, &[ns::IBB])).await?.unwrap();
    assert_eq!(SiAccept::try_from(&accept).unwrap().method, ns::IBB);
    c.set(Some(to.clone()), Element::from(&Open { sid: sid.into(), block_size: 4096, stanza: StanzaKind::Iq })).await?;
    for (seq, chunk) in data.chunks(4096).enumerate() {
        let d = Data { sid: sid.into(), seq: seq as u16, data: chunk.to_vec() };
        c.set(Some(to.clone()), Element::from(&d)).await?;
    }
    c.set(Some(to.clone()), Element::from(&Close { sid: sid.into() })).await?;
    Ok(())
}

/// Every file under `dir`, recursively, relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn setup() -> Prosody {
    Prosody::start(ProsodyOptions::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_in_names_stay_in_the_download_folder() {
    let server = setup();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mallory = raw(&server, "alice").await;
    let downloads = bob.dir.path().join("downloads");
    let outside_before = files_under(bob.dir.path());
    for (i, (name, expect)) in [
        ("../../evil", "evil"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\win.ini", "win.ini"),
        ("..", "file"),
        (".bashrc", "_bashrc"),
    ]
    .iter()
    .enumerate()
    {
        send_in_band(&mallory, &bob.jid, &format!("sid{i}"), name, 5, None, b"hello").await.unwrap();
        let done = bob.next_finished(20).await;
        let Event::TransferCompleted { path, .. } = done else { panic!("{name}: {done:?}") };
        assert_eq!(Path::new(&path), downloads.join(expect), "{name}");
    }
    // Nothing appeared anywhere but the download folder.
    let mut after = files_under(bob.dir.path());
    after.retain(|f| !f.starts_with("downloads/") && !outside_before.contains(f));
    assert_eq!(after, Vec::<String>::new());
    assert!(!bob.dir.path().parent().unwrap().join("evil").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_md5_and_size_lies_are_refused() {
    let server = setup();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mallory = raw(&server, "alice").await;
    let downloads = bob.dir.path().join("downloads");

    // The announced MD5 is of other content.
    let wrong = "5d41402abc4b2a76b9719d911017c592"; // md5("hello")
    send_in_band(&mallory, &bob.jid, "md5", "damaged.bin", 5, Some(wrong), b"HELLO").await.unwrap();
    let end = bob.next_finished(20).await;
    let Event::TransferFailed { error, resumable, .. } = end else { panic!("{end:?}") };
    assert!(error.contains("MD5 does not match"), "{error}");
    assert!(!resumable);
    assert!(!downloads.join("damaged.bin").exists() && !downloads.join("damaged.bin.part").exists());

    // More bytes than announced: refused at the first byte too many.
    let err = send_in_band(&mallory, &bob.jid, "more", "more.bin", 5000, None, &[7u8; 8192]).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::NotAcceptable),
        "{err:?}"
    );
    let end = bob.next_finished(20).await;
    assert!(matches!(end, Event::TransferFailed { ref error, .. } if error.contains("5000")), "{end:?}");
    assert!(!downloads.join("more.bin").exists());

    // Fewer bytes than announced: not renamed; the partial file stays for a resume.
    send_in_band(&mallory, &bob.jid, "fewer", "fewer.bin", 10_000, None, &[1u8; 4000]).await.unwrap();
    let end = bob.next_finished(20).await;
    let Event::TransferFailed { error, resumable, .. } = end else { panic!("{end:?}") };
    assert!(error.contains("announced 10000 bytes but sent 4000"), "{error}");
    assert!(resumable);
    assert!(!downloads.join("fewer.bin").exists());
    assert_eq!(std::fs::metadata(downloads.join("fewer.bin.part")).unwrap().len(), 4000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_streamhost_is_skipped_then_in_band_completes() {
    let server = setup();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mallory = raw(&server, "alice").await;
    // A streamhost that accepts TCP and then says nothing.
    let staller = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = staller.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = staller.accept().await {
            socks.push(s);
        }
    });
    let sid = "stall1";
    let accept = mallory
        .set(Some(bob.jid.clone()), offer(sid, "stall.bin", 5, None, &[ns::BYTESTREAMS, ns::IBB]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(SiAccept::try_from(&accept).unwrap().method, ns::BYTESTREAMS, "bytestreams preferred");
    let hosts = StreamHosts {
        sid: sid.into(),
        mode_tcp: true,
        hosts: vec![StreamHost { jid: mallory.jid().unwrap().to_string(), host: "127.0.0.1".into(), port }],
    };
    let started = Instant::now();
    let err = mallory.set(Some(bob.jid.clone()), Element::from(&hosts)).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::ItemNotFound),
        "{err:?}"
    );
    assert!(waited >= Duration::from_secs(4) && waited < Duration::from_secs(15), "{waited:?}");
    // Falling back in-band on the same stream id works.
    mallory
        .set(Some(bob.jid.clone()), Element::from(&Open { sid: sid.into(), block_size: 4096, stanza: StanzaKind::Iq }))
        .await
        .unwrap();
    mallory
        .set(Some(bob.jid.clone()), Element::from(&Data { sid: sid.into(), seq: 0, data: b"hello".to_vec() }))
        .await
        .unwrap();
    mallory.set(Some(bob.jid.clone()), Element::from(&Close { sid: sid.into() })).await.unwrap();
    let end = bob.next_finished(20).await;
    assert!(matches!(end, Event::TransferCompleted { ref route, .. } if route == "ibb"), "{end:?}");
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_dst_addr_on_our_streamhost_is_refused() {
    let server = setup();
    let mut alice = Peer::start(&server, "alice", |c| c.use_proxy = false).await;
    // bob is a raw client that takes the offer and probes alice's streamhost.
    let bob = Client::start(account(&server, "bob", "raw"));
    bob.add_feature(ns::SI_FILE_TRANSFER);
    let mut offers = bob.handle_iqs("si", ns::SI);
    let mut queries = bob.handle_iqs("query", ns::BYTESTREAMS);
    let bob_jid = bob.wait_online().await.unwrap();
    alice.sees(&bob_jid).await;
    let files = tempfile::tempdir().unwrap();
    let f = random_file(files.path(), "probe.bin", 100_000, 5);
    let id = alice.transfers.send_file(&bob_jid.bare(), &f, None).await.unwrap();
    let si = offers.recv().await.unwrap();
    let offer = FileOffer::try_from(si.request_payload().unwrap()).unwrap();
    bob.send(si.result_for(Some(Element::from(&SiAccept { method: ns::BYTESTREAMS.into(), range: None })))).unwrap();
    let q = queries.recv().await.unwrap();
    let hosts = StreamHosts::try_from(q.request_payload().unwrap()).unwrap();
    let own = &hosts.hosts[0];
    assert_eq!(own.host, "127.0.0.1", "streamhost addresses are limited by the setting");
    // A stranger's hash is refused by the SOCKS5 layer.
    let err = s5b::connect(&own.host, own.port, &"0".repeat(40)).await.unwrap_err();
    assert!(err.contains("refused") || err.contains("not allowed"), "{err}");
    // The right hash opens the stream; the data is intact.
    let dst = dst_addr(&offer.sid, &alice.jid.to_string(), &bob_jid.to_string());
    let mut sock = s5b::connect(&own.host, own.port, &dst).await.unwrap();
    bob.send(q.result_for(Some(Element::from(&StreamHostUsed { sid: Some(offer.sid.clone()), jid: own.jid.clone() }))))
        .unwrap();
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut sock, &mut got).await.unwrap();
    drop(sock);
    assert_eq!(got, std::fs::read(&f).unwrap());
    let end = alice.finished(id, 20).await;
    assert!(matches!(end, Event::TransferCompleted { ref sha256, .. } if *sha256 == sha256_file(&f)), "{end:?}");
}

/// Listeners on 127.0.0.1 that accept and then say nothing; counts connections.
async fn stalling_streamhosts(
    n: usize,
) -> (Vec<u16>, std::sync::Arc<std::sync::atomic::AtomicUsize>, Vec<tokio::task::JoinHandle<()>>) {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (mut ports, mut tasks) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(l.local_addr().unwrap().port());
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            let mut socks = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                socks.push(s);
            }
        }));
    }
    (ports, count, tasks)
}

fn hosts_list(sid: &str, jid: &Jid, ports: &[u16]) -> Element {
    let hosts = ports.iter().map(|&port| StreamHost { jid: jid.to_string(), host: "127.0.0.1".into(), port }).collect();
    Element::from(&StreamHosts { sid: sid.into(), mode_tcp: true, hosts })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_streamhosts_are_capped_and_a_third_list_is_refused() {
    use skiff_proto::transfer::MAX_STREAMHOSTS;
    let server = setup();
    let bob = Peer::start(&server, "bob", |_| {}).await;
    let mallory = raw(&server, "alice").await;
    let (ports, count, tasks) = stalling_streamhosts(200).await;
    let sid = "many1";
    mallory.set(Some(bob.jid.clone()), offer(sid, "many.bin", 5, None, &[ns::BYTESTREAMS, ns::IBB])).await.unwrap();
    let started = Instant::now();
    let err = mallory.set(Some(bob.jid.clone()), hosts_list(sid, &mallory.jid().unwrap(), &ports)).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::ItemNotFound),
        "{err:?}"
    );
    let tried = count.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("200 streamhosts: answered in {waited:?} after {tried} connections");
    assert!(waited < s5b::CANDIDATES_DEADLINE + Duration::from_secs(3), "{waited:?}");
    assert!((1..=MAX_STREAMHOSTS).contains(&tried), "{tried} streamhosts were tried");
    // One more list after a failed one is taken (a sender whose proxy moved retries
    // once): here a port nobody listens on, answered at once.
    let closed = skiff_tests::prosody::free_port();
    let err =
        mallory.set(Some(bob.jid.clone()), hosts_list(sid, &mallory.jid().unwrap(), &[closed])).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::ItemNotFound),
        "{err:?}"
    );
    // A third list for the same stream: refused at once, nothing dialled.
    let started = Instant::now();
    let err =
        mallory.set(Some(bob.jid.clone()), hosts_list(sid, &mallory.jid().unwrap(), &ports[100..])).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Stanza { ref error, .. } if error.condition == Condition::NotAcceptable),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), tried, "the second list was tried");
    tasks.iter().for_each(|t| t.abort());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_streamhosts_are_tried_takes_effect_within_a_second() {
    let server = setup();
    let mut bob = Peer::start(&server, "bob", |_| {}).await;
    let mallory = raw(&server, "alice").await;
    let (ports, count, tasks) = stalling_streamhosts(8).await;
    let sid = "cancel1";
    mallory.set(Some(bob.jid.clone()), offer(sid, "cancel.bin", 5, None, &[ns::BYTESTREAMS])).await.unwrap();
    let offered =
        skiff_tests::peer::wait_for(&mut bob.events, 10, "the offer", |e| matches!(e, Event::TransferOffered { .. }))
            .await;
    let Event::TransferOffered { id, .. } = offered else { unreachable!() };
    let (m, to, list) = (mallory.clone(), bob.jid.clone(), hosts_list(sid, &mallory.jid().unwrap(), &ports));
    let answer = tokio::spawn(async move { m.set(Some(to), list).await });
    while count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    bob.transfers.cancel(id).unwrap();
    let end = bob.finished(id, 5).await;
    let took = started.elapsed();
    eprintln!("cancel while connecting took {took:?}: {end:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(matches!(end, Event::TransferFailed { .. }), "{end:?}");
    // The sender hears that the stream will not happen, without waiting for the rest.
    let answered = tokio::time::timeout(Duration::from_secs(3), answer).await.expect("an answer").unwrap();
    assert!(answered.is_err(), "{answered:?}");
    tasks.iter().for_each(|t| t.abort());
}
