//! XEP-0065 SOCKS5 Bytestreams on sockets: our own streamhost (a SOCKS5 listener that
//! hands each connection to the transfer whose DST.ADDR it names), connecting to a
//! streamhost as target or requester, and proxy discovery and activation. The wire
//! bytes come from the sans-IO `skiff_proto::socks5` state machines.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_proto::bytestreams::{ProxyInfo, ProxyQuery, StreamHost};
use skiff_proto::disco::{DiscoInfoResult, DiscoItemsResult};
use skiff_proto::jid::Jid;
use skiff_proto::ns;
use skiff_proto::socks5::{self, ClientHandshake, ClientStep, Echo, ServerStep};
use skiff_proto::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::session::Client;

/// How long one streamhost candidate may take to connect and finish the handshake.
pub const CANDIDATE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long trying all of a sender's streamhosts may take (at most
/// `skiff_proto::transfer::MAX_STREAMHOSTS` of them, one after another);
/// those not tried by then are skipped.
pub const CANDIDATES_DEADLINE: Duration = Duration::from_secs(15);

/// How long one write on a bytestream may block before the other side counts as gone.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// SOCKS5 handshakes our streamhost runs at once; connections beyond are closed at once
/// (a transfer needs one, a few at a time are legitimate).
pub const MAX_HANDSHAKES: usize = 16;

/// Our own streamhost: listeners on the offered addresses, and the DST.ADDRs that
/// transfers are waiting for. The listeners close when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct StreamhostServer {
    addrs: Vec<SocketAddr>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<TcpStream>>>>,
    _listeners: Arc<Listeners>,
}

/// The accept loops of one [`StreamhostServer`], stopped on drop.
#[derive(Debug)]
struct Listeners(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl StreamhostServer {
    /// Binds one listener per address (port 0 = any free port).
    pub async fn bind(ips: &[IpAddr]) -> std::io::Result<StreamhostServer> {
        let waiting: Arc<Mutex<HashMap<String, oneshot::Sender<TcpStream>>>> = Arc::default();
        let mut addrs = Vec::new();
        let mut tasks = Vec::new();
        for ip in ips {
            let listener = match TcpListener::bind(SocketAddr::new(*ip, 0)).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("cannot listen for bytestreams on {ip}: {e}");
                    continue;
                }
            };
            addrs.push(listener.local_addr()?);
            tasks.push(tokio::spawn(accept_loop(listener, waiting.clone())));
        }
        Ok(StreamhostServer { addrs, waiting, _listeners: Arc::new(Listeners(tasks)) })
    }

    /// The addresses we offer, in order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Waits for the target's connection that names `dst_addr`. Register before the
    /// streamhosts are sent: the target may connect before it answers.
    pub fn expect(&self, dst_addr: &str) -> Expected {
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap().insert(dst_addr.to_owned(), tx);
        Expected { rx, dst: dst_addr.to_owned(), waiting: self.waiting.clone(), _listeners: self._listeners.clone() }
    }
}

/// A registration of [`StreamhostServer::expect`]; dropping it unregisters.
#[derive(Debug)]
pub struct Expected {
    rx: oneshot::Receiver<TcpStream>,
    dst: String,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<TcpStream>>>>,
    /// Keeps the listeners open while a connection is awaited.
    _listeners: Arc<Listeners>,
}

impl Expected {
    /// The connection, if it arrives within `timeout`.
    pub async fn take(mut self, timeout: Duration) -> Option<TcpStream> {
        tokio::time::timeout(timeout, &mut self.rx).await.ok()?.ok()
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        self.waiting.lock().unwrap().remove(&self.dst);
    }
}

async fn accept_loop(listener: TcpListener, waiting: Arc<Mutex<HashMap<String, oneshot::Sender<TcpStream>>>>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("bytestreams listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::info!("refused a bytestream connection from {peer}: {MAX_HANDSHAKES} handshakes already running");
            continue;
        };
        let waiting = waiting.clone();
        tokio::spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(CANDIDATE_TIMEOUT, serve(sock, &waiting)).await {
                Ok(Ok(dst)) => tracing::debug!("bytestream from {peer} for {dst}"),
                Ok(Err(e)) => tracing::warn!("refused a bytestream connection from {peer}: {e}"),
                Err(_) => tracing::warn!("a bytestream connection from {peer} stalled in the SOCKS5 handshake"),
            }
        });
    }
}

/// The streamhost side of one connection: SOCKS5 handshake, DST.ADDR check, hand-over.
async fn serve(
    mut sock: TcpStream,
    waiting: &Mutex<HashMap<String, oneshot::Sender<TcpStream>>>,
) -> Result<String, String> {
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut hs = socks5::ServerHandshake::new();
    let mut buf = [0u8; 512];
    loop {
        let n = sock.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed during the SOCKS5 handshake".into());
        }
        match hs.on_bytes(&buf[..n]) {
            Ok(ServerStep::NeedMore { send }) => {
                if !send.is_empty() {
                    sock.write_all(&send).await.map_err(|e| e.to_string())?;
                }
            }
            Ok(ServerStep::Request { send, request, .. }) => {
                if !send.is_empty() {
                    sock.write_all(&send).await.map_err(|e| e.to_string())?;
                }
                let dst = request.dst_addr().unwrap_or_default().to_owned();
                let Some(tx) = waiting.lock().unwrap().remove(&dst) else {
                    let _ = sock.write_all(&request.reply(socks5::REP_NOT_ALLOWED)).await;
                    return Err(format!("DST.ADDR '{dst}' matches no transfer of ours (wrong hash or a stranger)"));
                };
                sock.write_all(&request.reply(socks5::REP_SUCCEEDED)).await.map_err(|e| e.to_string())?;
                tx.send(sock).map_err(|_| "the transfer gave up waiting".to_owned())?;
                return Ok(dst);
            }
            Err(failure) => {
                let _ = sock.write_all(&failure.send).await;
                return Err(failure.error.to_string());
            }
        }
    }
}

/// Connects to a streamhost and opens the bytestream named `dst_addr` (both the
/// target connecting to a candidate and the requester connecting to a proxy do this).
pub async fn connect(host: &str, port: u16, dst_addr: &str) -> Result<TcpStream, String> {
    let work = async {
        let mut sock =
            TcpStream::connect((host, port)).await.map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut hs = ClientHandshake::new(dst_addr);
        sock.write_all(&hs.initial_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 512];
        loop {
            let n = sock.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("{host}:{port} closed the connection during the SOCKS5 handshake"));
            }
            match hs.on_bytes(&buf[..n]).map_err(|e| format!("{host}:{port}: {e}"))? {
                ClientStep::NeedMore => {}
                ClientStep::Send(bytes) => sock.write_all(&bytes).await.map_err(|e| e.to_string())?,
                ClientStep::Done { echo, leftover, .. } => {
                    if echo == Echo::Mismatch {
                        tracing::info!("{host}:{port} did not echo the DST.ADDR in its SOCKS5 reply (tolerated)");
                    }
                    if !leftover.is_empty() {
                        return Err(format!("{host}:{port} sent data before the stream was activated"));
                    }
                    return Ok(sock);
                }
            }
        }
    };
    tokio::time::timeout(CANDIDATE_TIMEOUT, work).await.map_err(|_| {
        format!("{host}:{port} did not complete the SOCKS5 handshake within {} s", CANDIDATE_TIMEOUT.as_secs())
    })?
}

/// Tries the candidates in the given order; the first that opens wins.
pub async fn connect_first(hosts: &[StreamHost], dst_addr: &str) -> Result<(StreamHost, TcpStream), Vec<String>> {
    let mut errors = Vec::new();
    let deadline = tokio::time::Instant::now() + CANDIDATES_DEADLINE;
    for (i, h) in hosts.iter().enumerate() {
        let Ok(tried) = tokio::time::timeout_at(deadline, connect(&h.host, h.port, dst_addr)).await else {
            errors.push(format!(
                "gave up after {} s ({} of {} streamhosts not tried)",
                CANDIDATES_DEADLINE.as_secs(),
                hosts.len() - i,
                hosts.len()
            ));
            break;
        };
        match tried {
            Ok(s) => return Ok((h.clone(), s)),
            Err(e) => {
                tracing::info!("streamhost {} ({}:{}) failed: {e}", h.jid, h.host, h.port);
                errors.push(e);
            }
        }
    }
    Err(errors)
}

/// Asks a proxy for its network address (the `bytestreams` query without children).
pub async fn query_proxy(client: &Client, proxy: &Jid) -> Result<Vec<StreamHost>, String> {
    let payload = client
        .get(Some(proxy.clone()), Element::from(&ProxyQuery { sid: None }))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{proxy} answered the address query with nothing"))?;
    let info = ProxyInfo::try_from(&payload).map_err(|e| format!("{proxy}: {e}"))?;
    Ok(info.hosts)
}

/// Finds the server's bytestreams proxies (disco#items, then disco#info on each).
pub async fn discover_proxies(client: &Client, domain: &Jid) -> Vec<Jid> {
    let Ok(Some(items)) = client.get(Some(domain.clone()), Element::new("query", ns::DISCO_ITEMS)).await else {
        return Vec::new();
    };
    let Ok(items) = DiscoItemsResult::try_from(&items) else { return Vec::new() };
    let mut proxies = Vec::new();
    for item in items.items {
        let Ok(jid) = item.jid.parse::<Jid>() else { continue };
        let Ok(Some(info)) = client.get(Some(jid.clone()), Element::new("query", ns::DISCO_INFO)).await else {
            continue;
        };
        if DiscoInfoResult::try_from(&info).is_ok_and(|i| i.is_bytestreams_proxy()) {
            proxies.push(jid);
        }
    }
    proxies
}

/// The addresses to offer as our own streamhost: the configured ones, or every
/// usable local address (IPv4 first, then IPv6), or loopback when there is no other.
pub fn local_addresses(configured: &[IpAddr]) -> Vec<IpAddr> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    if let Ok(ifaces) = if_addrs::get_if_addrs() {
        for iface in ifaces {
            let ip = iface.ip();
            match ip {
                IpAddr::V4(a) if !a.is_loopback() && !a.is_link_local() => v4.push(ip),
                // Link-local IPv6 needs a scope id a peer cannot use.
                IpAddr::V6(a) if !a.is_loopback() && (a.segments()[0] & 0xffc0) != 0xfe80 => v6.push(ip),
                _ => {}
            }
        }
    }
    v4.extend(v6);
    if v4.is_empty() {
        v4.push(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    }
    v4
}

impl super::Transfers {
    /// The proxies to offer, with their current addresses: the configured proxy, or
    /// those the server has. Which proxies there are is remembered per account (in
    /// memory and in the settings: discovery takes several queries); their addresses
    /// are asked for each transfer (one `bytestreams` query each), so a proxy that
    /// moved is never offered at its old address. A remembered proxy that does not
    /// answer makes the server be asked again; `fresh` asks it anyway.
    /// Also returns what went wrong with proxies that could not be used.
    pub(in crate::transfer) async fn proxies(&self, fresh: bool) -> (Vec<StreamHost>, Vec<String>) {
        if fresh {
            self.forget_proxies().await;
        }
        let client = &self.inner.client;
        for round in 0..2 {
            let jids = self.proxy_jids().await;
            let mut hosts = Vec::new();
            let mut problems = Vec::new();
            for j in &jids {
                match query_proxy(client, j).await {
                    Ok(h) => hosts.extend(h),
                    Err(e) => {
                        tracing::warn!("proxy {j} is unusable: {e}");
                        problems.push(format!("proxy {j}: {e}"));
                    }
                }
            }
            if (!problems.is_empty() || jids.is_empty()) && round == 0 && !fresh && self.cfg().proxy.is_none() {
                self.forget_proxies().await;
                continue;
            }
            if jids.is_empty() {
                problems.push("the server offers no SOCKS5 proxy".into());
            }
            return (hosts, problems);
        }
        (Vec::new(), Vec::new())
    }

    /// The proxies' JIDs: the configured one, else those remembered, else discovered.
    pub(super) async fn proxy_jids(&self) -> Vec<Jid> {
        if let Some(j) = &self.cfg().proxy {
            return vec![j.clone()];
        }
        let mut cache = self.inner.proxies.lock().await;
        if let Some(p) = cache.as_ref() {
            return p.clone();
        }
        let key = self.proxy_cache_key();
        if let Ok(Some(saved)) = self.inner.store.setting(&key) {
            let jids: Vec<Jid> = saved.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !jids.is_empty() {
                *cache = Some(jids.clone());
                return jids;
            }
        }
        let client = &self.inner.client;
        let jids = match client.jid() {
            Some(me) => discover_proxies(client, &me.domain_jid()).await,
            None => Vec::new(),
        };
        if !jids.is_empty() {
            *cache = Some(jids.clone());
            let text: Vec<String> = jids.iter().map(Jid::to_string).collect();
            let _ = self.inner.store.set_setting(&key, &text.join("\n"));
        }
        jids
    }

    pub(super) fn proxy_cache_key(&self) -> String {
        format!("proxy-jids/{}", self.inner.account)
    }

    /// Forgets which proxies the server has (one failed: ask the server again).
    pub(in crate::transfer) async fn forget_proxies(&self) {
        *self.inner.proxies.lock().await = None;
        let _ = self.inner.store.set_setting(&self.proxy_cache_key(), "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections beyond the handshakes already running are closed at once; those
    /// within the cap are served (here: held until the handshake timeout).
    #[tokio::test]
    async fn the_listener_caps_concurrent_handshakes() {
        let server = StreamhostServer::bind(&["127.0.0.1".parse().unwrap()]).await.unwrap();
        let addr = server.addrs()[0];
        let mut held = Vec::new();
        for _ in 0..MAX_HANDSHAKES {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        // Let the accept loop take them all before the next ones arrive.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..4 {
            let mut extra = TcpStream::connect(addr).await.unwrap();
            let mut b = [0u8; 1];
            let r = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut b)).await;
            assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "a connection over the cap was kept: {r:?}");
        }
        // The held ones are still open (their handshake has not timed out yet).
        let mut b = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_millis(300), held[0].read(&mut b)).await;
        assert!(r.is_err(), "a connection within the cap was closed: {r:?}");
        // Once they go, the slots are free again: a new connection is served.
        drop(held);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut again = TcpStream::connect(addr).await.unwrap();
        let r = tokio::time::timeout(Duration::from_millis(300), again.read(&mut b)).await;
        assert!(r.is_err(), "a connection after the others left was refused: {r:?}");
    }
}
