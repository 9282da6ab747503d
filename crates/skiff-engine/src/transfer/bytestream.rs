//! The SOCKS5 side every transfer driver shares, SI and Jingle, sending and
//! receiving: our streamhost's connection for a stream, the proxies, connecting to
//! the other side's candidates, and the socket the data then goes over. Each method
//! carries out one action of a sans-IO machine; `None` means the user cancelled.

use std::time::Duration;

use skiff_proto::bytestreams::StreamHost;
use skiff_proto::jid::Jid;
use skiff_proto::jingle::{JingleAction, JingleInput};
use tokio::net::TcpStream;

use super::driver::Step;
use super::{s5b, CancelGuard, TransferConfig, Transfers};

/// How long the other side's connection to our streamhost may still take once it
/// says it connected.
const DIRECT_WAIT: Duration = Duration::from_secs(5);

/// One stream's SOCKS5 state on our side.
#[derive(Default)]
pub(super) struct Bytestream {
    /// Our streamhost's connection for this stream, once it comes.
    expected: Option<s5b::Expected>,
    /// Why no proxy could be offered, for the user when SOCKS5 fails.
    pub(super) proxy_problems: Vec<String>,
    /// The socket the data goes over, once there is one.
    pub(super) sock: Option<TcpStream>,
}

impl Bytestream {
    /// The streamhosts to offer: our own listener's addresses (the first time: its
    /// connection naming `dst_addr` is expected) and the proxies (`again`: found anew).
    pub(super) async fn gather(
        &mut self,
        t: &Transfers,
        cfg: &TransferConfig,
        me: &Jid,
        dst_addr: &str,
        again: bool,
        cancel: &mut CancelGuard,
    ) -> Option<Vec<StreamHost>> {
        let gather = async {
            let mut hosts = Vec::new();
            let mut expect = None;
            let mut problems = None;
            if cfg.use_direct {
                if let Some(server) = t.streamhost().await {
                    if !again {
                        expect = Some(server.expect(dst_addr));
                    }
                    hosts.extend(server.addrs().iter().map(|a| StreamHost {
                        jid: me.to_string(),
                        host: a.ip().to_string(),
                        port: a.port(),
                    }));
                }
            }
            if cfg.use_proxy {
                if again {
                    tracing::info!("the other side could use no streamhost: looking for the proxy again");
                }
                let (found, p) = t.proxies(again).await;
                hosts.extend(found);
                problems = Some(p);
            }
            (hosts, expect, problems)
        };
        let (hosts, expect, problems) = cancel.or_cancel(gather).await?;
        if let Some(p) = problems {
            self.proxy_problems = p;
        }
        if !again {
            self.expected = expect;
        }
        Some(hosts)
    }

    /// The other side says it connected to our streamhost: whether its connection
    /// came (it becomes the stream's socket).
    pub(super) async fn await_direct(&mut self, cancel: &mut CancelGuard) -> Option<bool> {
        let got = match self.expected.take() {
            Some(e) => cancel.or_cancel(e.take(DIRECT_WAIT)).await?,
            None => None,
        };
        let arrived = got.is_some();
        if got.is_some() {
            self.sock = got;
        }
        Some(arrived)
    }

    /// Connects to a proxy for the stream `dst_addr` (it becomes the stream's socket).
    pub(super) async fn connect_proxy(
        &mut self,
        t: &Transfers,
        host: &str,
        port: u16,
        dst_addr: &str,
        cancel: &mut CancelGuard,
    ) -> Option<Result<(), String>> {
        self.expected = None;
        match cancel.or_cancel(s5b::connect(host, port, dst_addr)).await? {
            Ok(s) => {
                self.sock = Some(s);
                Some(Ok(()))
            }
            Err(e) => {
                t.forget_proxies().await;
                Some(Err(e))
            }
        }
    }

    /// Tries the other side's streamhosts in order: the index of the first that took
    /// the connection (it becomes the stream's socket), or why none did.
    pub(super) async fn connect_candidates(
        &mut self,
        hosts: &[StreamHost],
        dst_addr: &str,
        cancel: &mut CancelGuard,
    ) -> Option<Result<usize, String>> {
        match cancel.or_cancel(s5b::connect_first(hosts, dst_addr)).await? {
            Ok((host, s)) => {
                self.sock = Some(s);
                let index = hosts.iter().position(|h| *h == host).unwrap_or(0);
                Some(Ok(index))
            }
            Err(errors) => Some(Err(errors.join("; "))),
        }
    }
}

impl Bytestream {
    /// A Jingle session's SOCKS5 action, for either side: its result for the
    /// session, or the action back when it is not one of these.
    pub(super) async fn jingle_step(
        &mut self,
        t: &Transfers,
        me: Option<&Jid>,
        action: JingleAction,
        cancel: &mut CancelGuard,
    ) -> Result<Step<JingleInput>, JingleAction> {
        let input = match action {
            JingleAction::GatherCandidates { dst_addr } => match me {
                Some(me) => match self.gather(t, &t.cfg(), me, &dst_addr, false, cancel).await {
                    Some(hosts) => JingleInput::Candidates(hosts),
                    None => JingleInput::Cancel,
                },
                None => JingleInput::Candidates(Vec::new()),
            },
            JingleAction::ConnectCandidates { hosts, dst_addr } => {
                match self.connect_candidates(&hosts, &dst_addr, cancel).await {
                    Some(Ok(index)) => JingleInput::CandidateConnected { index },
                    Some(Err(e)) => JingleInput::CandidatesFailed(e),
                    None => JingleInput::Cancel,
                }
            }
            JingleAction::AwaitDirect => match self.await_direct(cancel).await {
                Some(true) => JingleInput::DirectConnected,
                Some(false) => JingleInput::DirectMissing,
                None => JingleInput::Cancel,
            },
            JingleAction::ConnectProxy { host, port, dst_addr } => {
                match self.connect_proxy(t, &host, port, &dst_addr, cancel).await {
                    Some(Ok(())) => JingleInput::ProxyConnected,
                    Some(Err(e)) => JingleInput::ProxyFailed(e),
                    None => JingleInput::Cancel,
                }
            }
            other => return Err(other),
        };
        Ok(Step::Input(input))
    }
}
