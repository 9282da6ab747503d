//! A TCP relay on loopback that a test can cut: the client connects to the relay, the
//! relay forwards to the real server, and [`Relay::cut`] ends every connection running
//! through it at once, as a flaky network or a sleeping laptop does: nothing more
//! passes either way, bytes in flight are lost, and a moment later both ends see the
//! connection close (a server on a real network also reads what reached it before it
//! notices that the peer is gone). [`Relay::set_down`] refuses new connections for a while (they
//! are accepted and closed at once), as an unreachable server does.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug)]
struct Shared {
    /// Bumped by every cut; a connection ends when it changes.
    generation: watch::Sender<u64>,
    down: AtomicBool,
    accepted: AtomicU64,
    cuts: AtomicU64,
}

/// A running relay; dropping it stops accepting (live connections end with the cut
/// signal's sender, i.e. at once).
#[derive(Debug)]
pub struct Relay {
    /// The relay's port on 127.0.0.1: give it to the client as the server's.
    pub port: u16,
    shared: Arc<Shared>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts relaying 127.0.0.1:[`Relay::port`] to `127.0.0.1:target`.
    pub async fn start(target: u16) -> std::io::Result<Relay> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let (generation, _) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            generation,
            down: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            cuts: AtomicU64::new(0),
        });
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, target));
        let accept_task = tokio::spawn(accept_loop(listener, target, shared.clone()));
        Ok(Relay { port, shared, accept_task })
    }

    /// Ends every connection running through the relay now (new ones are relayed as
    /// before unless the relay is down).
    pub fn cut(&self) {
        self.shared.cuts.fetch_add(1, Ordering::SeqCst);
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// While down, new connections are closed as soon as they are accepted.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// How many connections the relay accepted so far (also those refused while down).
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else { continue };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.down.load(Ordering::SeqCst) {
            let _ = client.shutdown().await;
            continue;
        }
        let cut = shared.generation.subscribe();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else { return };
            pipe(client, server, cut).await;
        });
    }
}

/// How long a cut connection stays open without passing anything before both ends
/// are closed.
const SILENCE: std::time::Duration = std::time::Duration::from_millis(300);

/// Copies both ways until either side closes or the relay is cut; a cut stops the
/// copying at once (what was read and not yet passed on is dropped), then closes both
/// sockets after [`SILENCE`].
async fn pipe(mut client: TcpStream, mut server: TcpStream, mut cut: watch::Receiver<u64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let was_cut = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
        _ = cut.changed() => true,
    };
    if was_cut {
        tokio::time::sleep(SILENCE).await;
    }
}
