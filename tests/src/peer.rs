//! Skiff engines as test peers: accounts on the test server, event waiting.

use std::sync::Arc;
use std::time::Duration;

use skiff_engine::store::Store;
use skiff_engine::transfer::{AcceptPolicy, TransferConfig, Transfers};
use skiff_engine::{AccountConfig, Client, Event, Secret, TlsMode};
use skiff_proto::jid::Jid;
use tokio::sync::broadcast::Receiver;

use crate::Prosody;

/// The account `user` on `server`, with resource `resource`, trusting the test CA.
pub fn account(server: &Prosody, user: &str, resource: &str) -> AccountConfig {
    let jid: Jid = format!("{}/{resource}", server.jid(user)).parse().expect("test JID");
    let mut cfg = AccountConfig::new(jid, Secret::new(server.password(user)));
    cfg.server = Some(("127.0.0.1".into(), server.c2s_port));
    cfg.ca_file = Some(server.ca_file.clone());
    cfg.tls = TlsMode::StartTls;
    cfg.connect_timeout = Duration::from_secs(10);
    cfg.iq_timeout = Duration::from_secs(20);
    cfg
}

/// Waits (up to `secs`) for an event matching `pred`.
pub async fn wait_for(rx: &mut Receiver<Event>, secs: u64, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("event stream ended while waiting for {what}: {e}"),
            Err(_) => panic!("no {what} within {secs} s"),
        }
    }
}

/// A signed-in Skiff engine with transfers, its own history and download folder.
#[derive(Debug)]
pub struct Peer {
    pub client: Client,
    pub transfers: Transfers,
    pub jid: Jid,
    pub dir: tempfile::TempDir,
    pub events: Receiver<Event>,
}

impl Peer {
    /// Signs `user` in; `tweak` adjusts the transfer settings (streamhosts are
    /// loopback only, offers are accepted by default).
    pub async fn start(server: &Prosody, user: &str, tweak: impl FnOnce(&mut TransferConfig)) -> Peer {
        Peer::start_as(account(server, user, "skiff"), tweak).await
    }

    /// Signs in with the account settings `cfg` (e.g. [`account`] pointed at a relay).
    pub async fn start_as(cfg: AccountConfig, tweak: impl FnOnce(&mut TransferConfig)) -> Peer {
        let dir = tempfile::tempdir().expect("temp dir");
        let client = Client::start(cfg);
        let events = client.events();
        let jid = client.wait_online().await.expect("sign-in");
        let store = Arc::new(Store::open(&dir.path().join("history.sqlite3")).expect("store"));
        let mut cfg = TransferConfig::new(dir.path().join("downloads"));
        cfg.streamhost_addrs = vec!["127.0.0.1".parse().expect("ip")];
        cfg.accept = AcceptPolicy::All;
        // SI unless a test says otherwise: the tests of SI's routes predate Jingle,
        // whose tests (jingle.rs, interop_gajim.rs, ...) choose it.
        cfg.protocol = Some(skiff_engine::store::Protocol::Si);
        tweak(&mut cfg);
        let transfers = Transfers::start(client.clone(), store, cfg, &jid).expect("transfers");
        Peer { client, transfers, jid, dir, events }
    }

    /// Waits until `other` is online here (its presence arrived).
    pub async fn sees(&mut self, other: &Jid) {
        let bare = other.bare();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.client.presence_of(&bare).is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "{bare} never came online for {}", self.jid);
            let _ = tokio::time::timeout(Duration::from_millis(100), self.events.recv()).await;
        }
    }

    /// Waits for the end of transfer `id` (completed, failed or rejected).
    pub async fn finished(&mut self, id: i64, secs: u64) -> Event {
        wait_for(&mut self.events, secs, &format!("end of transfer {id}"), |e| {
            matches!(e, Event::TransferCompleted { id: i, .. } | Event::TransferFailed { id: i, .. } | Event::TransferRejected { id: i, .. } if *i == id)
        })
        .await
    }

    /// Waits for the end of the next incoming transfer, whatever its id.
    pub async fn next_finished(&mut self, secs: u64) -> Event {
        wait_for(&mut self.events, secs, "end of an incoming transfer", |e| {
            matches!(e, Event::TransferCompleted { .. } | Event::TransferFailed { .. } | Event::TransferRejected { .. })
        })
        .await
    }
}

/// A file of `size` pseudo-random bytes (deterministic per `seed`).
pub fn random_file(dir: &std::path::Path, name: &str, size: u64, seed: u64) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut left = size;
    let mut block = vec![0u8; 1 << 16];
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
    path
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &std::path::Path) -> String {
    skiff_engine::files::hash_file_blocking(path, None).expect("hash").sha256
}

/// Sends `path` from `from` to `to` and checks both ends: event, route, bytes, history.
pub async fn check_transfer(from: &mut Peer, to: &mut Peer, path: &std::path::Path, route: &str) {
    let id = from.transfers.send_file(&to.jid.bare(), path, None).await.unwrap();
    let sent = from.finished(id, 300).await;
    let got = to.next_finished(300).await;
    let skiff_engine::Event::TransferCompleted { route: r, sha256, size, .. } = &sent else {
        panic!("sender: {sent:?}")
    };
    assert_eq!(r, route, "sender's route for {}", path.display());
    let skiff_engine::Event::TransferCompleted { path: out, sha256: sha_in, route: r_in, id: in_id, .. } = &got else {
        panic!("receiver: {got:?}")
    };
    assert_eq!(r_in, route);
    let want = sha256_file(path);
    assert_eq!(sha256, &want);
    assert_eq!(sha_in, &want);
    assert_eq!(sha256_file(std::path::Path::new(out)), want, "bytes on disk");
    assert_eq!(std::fs::metadata(out).unwrap().len(), *size);
    assert!(!std::path::Path::new(&format!("{out}.part")).exists());
    let rec = to.transfers.store().get(*in_id).unwrap();
    assert_eq!(
        (rec.state, rec.direction, rec.route.map(|r| r.as_str())),
        (skiff_engine::store::TransferState::Completed, skiff_engine::store::Direction::Incoming, Some(route))
    );
    assert_eq!(rec.sha256.as_deref(), Some(want.as_str()));
    assert_eq!(rec.bytes_done, *size);
    let rec = from.transfers.store().get(id).unwrap();
    assert_eq!(
        (rec.state, rec.route.map(|r| r.as_str())),
        (skiff_engine::store::TransferState::Completed, Some(route))
    );
}
