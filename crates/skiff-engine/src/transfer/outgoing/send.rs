//! The I/O side of one outgoing SI transfer: one method per action of the sans-IO
//! `Sender`.

use super::*;
use crate::transfer::{AbortOnDrop, CancelGuard, TransferConfig};

/// The I/O side of one outgoing SI transfer: one method per [`SenderAction`].
pub(super) struct SendDriver<'a> {
    pub(super) o: &'a Outgoing,
    pub(super) cfg: TransferConfig,
    pub(super) me: Jid,
    pub(super) client: Client,
    /// Where background work (IQ answers, the socket copy) reports to the machine.
    pub(super) results: mpsc::UnboundedSender<SenderInput>,
    pub(super) progress: Progress,
    /// Our streamhost's connection for this stream, once it comes.
    pub(super) expected: Option<s5b::Expected>,
    /// Why no proxy could be offered, for the user when SOCKS5 fails.
    pub(super) proxy_problems: Vec<String>,
    pub(super) sock: Option<TcpStream>,
    /// The file, for in-band blocks.
    pub(super) src: Option<SourceFile>,
    /// The socket copy; stopped when the transfer ends however it ends (Cancel).
    pub(super) streaming: Option<AbortOnDrop>,
}

impl Driver<Sender> for SendDriver<'_> {
    async fn act(&mut self, action: SenderAction, cancel: &mut CancelGuard) -> Step<SenderInput> {
        match action {
            SenderAction::SendIq(iq) => {
                bridge_iq(&self.client, iq, &self.results, SenderInput::Iq);
                Step::Quiet
            }
            SenderAction::GatherStreamhosts { dst_addr } => self.gather(&dst_addr, false, cancel).await,
            // Again after a failure: the proxies found anew, our listener's
            // registration for this stream kept.
            SenderAction::RefreshProxies { dst_addr } => self.gather(&dst_addr, true, cancel).await,
            SenderAction::AwaitDirect => self.await_direct(cancel).await,
            SenderAction::ConnectProxy { host, port, dst_addr } => {
                self.connect_proxy(&host, port, &dst_addr, cancel).await
            }
            SenderAction::Started { route, streamhost, offset, length: _ } => {
                self.started(route, streamhost, offset).await
            }
            SenderAction::StreamSocket { offset, length } => self.stream_socket(offset, length),
            SenderAction::ReadBlock { len } => self.read_block(len).await,
            SenderAction::Progress { acked } => {
                self.progress.update(acked);
                Step::Quiet
            }
            SenderAction::FellBack { reason } => self.fell_back(reason),
            SenderAction::Slow { bytes_per_sec } => {
                self.o.t.emit(Event::TransferNotice { id: self.o.id, message: slow_message(bytes_per_sec) });
                Step::Quiet
            }
            SenderAction::ComputeChecksum => match cancel.or_cancel(self.o.hashes.get()).await {
                Some(h) => Step::Input(SenderInput::Checksum(h.map(|h| h.sha256))),
                None => Step::End(Err(Stop::Failed(Failure { resumable: false, ..Failure::cancelled() }))),
            },
            SenderAction::Done { route, bytes, verified } => {
                Step::End(self.o.completed(route, bytes, verified, &self.progress).await)
            }
            SenderAction::Rejected { reason } => Step::End(Err(Stop::Declined(reason))),
            SenderAction::Failed { reason, error, resumable } => {
                Step::End(Err(Stop::Failed(Failure { reason, error, resumable })))
            }
        }
    }
}

impl SendDriver<'_> {
    /// The streamhosts to offer: our own (first time: its connection for `dst_addr`
    /// expected) and the proxies (`again`: found anew).
    async fn gather(&mut self, dst_addr: &str, again: bool, cancel: &mut CancelGuard) -> Step<SenderInput> {
        let (t, cfg, me) = (&self.o.t, &self.cfg, &self.me);
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
                    tracing::info!("the receiver could use no streamhost: looking for the proxy again");
                }
                let (found, p) = t.proxies(again).await;
                hosts.extend(found);
                problems = Some(p);
            }
            (hosts, expect, problems)
        };
        let Some((hosts, expect, problems)) = cancel.or_cancel(gather).await else {
            return Step::Input(SenderInput::Cancel);
        };
        if let Some(p) = problems {
            self.proxy_problems = p;
        }
        if !again {
            self.expected = expect;
        }
        Step::Input(SenderInput::Streamhosts(hosts))
    }

    /// The receiver says it connected to our streamhost: the connection, if it came.
    async fn await_direct(&mut self, cancel: &mut CancelGuard) -> Step<SenderInput> {
        let got = match self.expected.take() {
            Some(e) => cancel.or_cancel(e.take(Duration::from_secs(5))).await,
            None => Some(None),
        };
        Step::Input(match got {
            Some(Some(s)) => {
                self.sock = Some(s);
                SenderInput::DirectConnected
            }
            Some(None) => SenderInput::DirectMissing,
            None => SenderInput::Cancel,
        })
    }

    async fn connect_proxy(
        &mut self,
        host: &str,
        port: u16,
        dst_addr: &str,
        cancel: &mut CancelGuard,
    ) -> Step<SenderInput> {
        self.expected = None;
        Step::Input(match cancel.or_cancel(s5b::connect(host, port, dst_addr)).await {
            Some(Ok(s)) => {
                self.sock = Some(s);
                SenderInput::ProxyConnected
            }
            Some(Err(e)) => {
                self.o.t.forget_proxies().await;
                SenderInput::ProxyFailed(e)
            }
            None => SenderInput::Cancel,
        })
    }

    /// The data starts to flow over `route`: recorded; in-band reads the file here.
    async fn started(&mut self, route: Route, streamhost: Option<String>, offset: u64) -> Step<SenderInput> {
        let o = self.o;
        o.t.record_started(o.id, route, streamhost, offset);
        self.progress = o.progress(offset);
        if route == Route::Ibb {
            match o.open_source(offset).await {
                Ok(f) => self.src = Some(f),
                Err(e) => {
                    let error = format!("cannot read {}: {e}", o.path.display());
                    return Step::End(Err(Stop::fatal(FailReason::Source, error)));
                }
            }
        }
        Step::Quiet
    }

    /// Copies the file into the SOCKS5 socket in the background.
    fn stream_socket(&mut self, offset: u64, length: u64) -> Step<SenderInput> {
        let Some(s) = self.sock.take() else {
            return Step::End(Err(Stop::resumable(FailReason::Network, "the bytestream is gone")));
        };
        let o = self.o;
        let (path, tx) = (o.path.clone(), self.results.clone());
        let mut p = o.progress(offset);
        let src = o.open_source(offset);
        self.streaming = Some(AbortOnDrop(tokio::spawn(async move {
            let r = send_socket(s, src.await, &path, offset, length, &mut p).await;
            let _ = tx.send(match r {
                Ok(()) => SenderInput::SocketDone,
                Err(e) => SenderInput::SocketFailed(e),
            });
        })));
        Step::Quiet
    }

    /// The next in-band block.
    async fn read_block(&mut self, len: usize) -> Step<SenderInput> {
        let Some(f) = self.src.as_mut() else {
            return Step::End(Err(Stop::fatal(FailReason::Protocol, "in-band data before the stream started")));
        };
        let mut buf = vec![0u8; len];
        Step::Input(match f.read_block(&mut buf).await {
            Ok(n) => {
                buf.truncate(n);
                SenderInput::Block(buf)
            }
            Err(e) => SenderInput::ReadFailed(format!("cannot read {}: {e}", self.o.path.display())),
        })
    }

    /// SOCKS5 failed and in-band follows: said, not only logged, as in-band is slower.
    fn fell_back(&mut self, reason: String) -> Step<SenderInput> {
        tracing::info!("SOCKS5 bytestream failed ({reason}); falling back to in-band");
        let mut why = reason;
        if !self.proxy_problems.is_empty() {
            why = format!("{why}; {}", self.proxy_problems.join("; "));
        }
        let message = format!("no direct or proxy connection ({why}); sending in-band, which is slower");
        self.o.t.emit(Event::TransferNotice { id: self.o.id, message });
        Step::Quiet
    }
}

fn slow_message(bytes_per_sec: u64) -> String {
    format!(
        "in-band data moves at only {} KB/s: the server limits how fast this connection may send \
         (ejabberd's default allows about 3 KB/s). A SOCKS5 route (direct or proxy) or HTTP upload avoids the limit.",
        bytes_per_sec / 1000
    )
}
