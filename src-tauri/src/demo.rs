//! Demo mode, for a first start without an account: a local Prosody (the test
//! launcher, in `~/.local/share/skiff-demo`), the app signed in as alice, and a demo
//! contact bob running in-process. Bob accepts every file; he greets alice with a
//! small `welcome.txt` when she comes online, and answers each file she sends with a
//! receipt, so transfers show up both ways within a minute.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use skiff_devserver::{demo as server, Prosody};
use skiff_engine::store::{Direction, Store};
use skiff_engine::transfer::{AcceptPolicy, TransferConfig, Transfers};
use skiff_engine::{AccountConfig, Client, Event, Secret, TlsMode};
use skiff_proto::jid::Jid;

/// The running demo: the server and bob. Stop it with [`Demo::stop`] (dropping it
/// stops Prosody too).
#[derive(Debug)]
pub struct Demo {
    prosody: Prosody,
    bob: Client,
    bob_task: tauri::async_runtime::JoinHandle<()>,
    /// Alice's account on the demo server.
    pub alice: AccountConfig,
}

/// The demo server's folder (as `skiff-devserver`'s), else `./skiff-demo`.
pub fn demo_dir() -> PathBuf {
    server::default_dir().unwrap_or_else(|| PathBuf::from("skiff-demo"))
}

fn account(prosody: &Prosody, user: &str, resource: &str) -> Result<AccountConfig> {
    let jid: Jid = format!("{}/{resource}", prosody.jid(user)).parse().context("demo JID")?;
    let mut cfg = AccountConfig::new(jid, Secret::new(prosody.password(user)));
    cfg.server = Some(("127.0.0.1".into(), prosody.c2s_port));
    cfg.ca_file = Some(prosody.ca_file.clone());
    cfg.tls = TlsMode::StartTls;
    cfg.connect_timeout = Duration::from_secs(10);
    Ok(cfg)
}

/// Transfer settings for the demo accounts: our streamhost on loopback only.
pub fn loopback(cfg: &mut TransferConfig) {
    cfg.streamhost_addrs = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
}

impl Demo {
    /// Starts Prosody and bob (blocking parts run off the async threads).
    pub async fn start() -> Result<Demo> {
        let dir = demo_dir();
        let prosody = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || -> Result<Prosody> {
                // One left running by an earlier run that could not stop it.
                let reaped = Prosody::reap_stale(&dir);
                if reaped > 0 {
                    tracing::info!("demo: stopped {reaped} demo server(s) left over by an earlier run");
                }
                let prosody = server::start(&dir)?;
                // It ends with the app however the app ends (also SIGKILL or a crash).
                if let Err(e) = prosody.exit_with(std::process::id()) {
                    tracing::warn!("demo: {e:#}");
                }
                Ok(prosody)
            }
        })
        .await
        .context("demo server task")??;
        tracing::info!("demo: Prosody is running on 127.0.0.1:{} ({})", prosody.c2s_port, prosody.dir.display());

        let alice = account(&prosody, "alice", "desktop")?;
        let bob_cfg = account(&prosody, "bob", "demo")?;
        let bob_dir = dir.join("bob");
        std::fs::create_dir_all(&bob_dir).with_context(|| format!("creating {}", bob_dir.display()))?;
        let store = Arc::new(Store::open(&bob_dir.join("history.sqlite3"))?);
        let mut tcfg = TransferConfig::new(bob_dir.join("downloads"));
        tcfg.accept = AcceptPolicy::All;
        loopback(&mut tcfg);
        let bob_jid = bob_cfg.jid.clone();
        let bob = Client::start(bob_cfg);
        let events = bob.events();
        let transfers = Transfers::start(bob.clone(), store, tcfg, &bob_jid)?;
        let jid = bob.wait_online().await.context("demo contact bob cannot sign in")?;
        tracing::info!("demo: bob is online as {jid}");
        let alice_bare = alice.jid.bare();
        let bob_task = tauri::async_runtime::spawn(bob_behaviour(transfers, events, alice_bare, bob_dir));
        Ok(Demo { prosody, bob, bob_task, alice })
    }

    pub async fn stop(mut self) {
        self.bob_task.abort();
        self.bob.disconnect().await;
        let _ = tokio::task::spawn_blocking(move || self.prosody.stop()).await;
        tracing::info!("demo: stopped");
    }
}

/// Bob: greets alice once she is online, and answers each file she sends.
async fn bob_behaviour(
    transfers: Transfers,
    mut events: tokio::sync::broadcast::Receiver<Event>,
    alice: Jid,
    dir: PathBuf,
) {
    let alice_str = alice.to_string();
    let mut greeted = false;
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        match event {
            Event::Presence { jid, available: true, .. } if jid == alice_str && !greeted => {
                greeted = true;
                // Give alice's client a moment to answer disco#info.
                tokio::time::sleep(Duration::from_secs(3)).await;
                let text = "Hi, I'm Bob, Skiff's demo contact.\n\n\
                    Drop a file or a folder on my name to send it to me: I accept everything\n\
                    and answer with a receipt. This file came to you over XMPP from a local\n\
                    Prosody server that the demo started for you.\n";
                send(&transfers, &alice, &dir, "welcome.txt", text, "Welcome to Skiff!").await;
            }
            Event::TransferCompleted { id, name, size, sha256, route, .. } => {
                let incoming = transfers.store().get(id).map(|r| r.direction == Direction::Incoming).unwrap_or(false);
                if !incoming {
                    continue;
                }
                tracing::info!("demo: bob received {name} ({size} bytes via {route})");
                tokio::time::sleep(Duration::from_secs(1)).await;
                let text = format!(
                    "Thanks! Bob received your file.\n\nname:   {name}\nsize:   {size} bytes\nroute:  {route}\nsha256: {sha256}\n"
                );
                let stem =
                    Path::new(&name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or(name.clone());
                let file = format!("receipt-{}.txt", sanitize(&stem));
                send(&transfers, &alice, &dir, &file, &text, "Bob's receipt").await;
            }
            _ => {}
        }
    }
}

async fn send(transfers: &Transfers, to: &Jid, dir: &Path, file: &str, text: &str, desc: &str) {
    let path = dir.join(file);
    if let Err(e) = std::fs::write(&path, text) {
        tracing::warn!("demo: cannot write {}: {e}", path.display());
        return;
    }
    match transfers.send_file(to, &path, Some(desc.to_owned())).await {
        Ok(id) => tracing::info!("demo: bob offers {file} to {to} (transfer {id})"),
        Err(e) => tracing::warn!("demo: bob cannot send {file}: {e}"),
    }
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' }).collect()
}
