//! The I/O side of one outgoing transfer: one method per action of the sans-IO
//! machine, SI's `Sender` or a Jingle session's sending side. The SOCKS5 work is the
//! shared [`Bytestream`]; the file side (reading, the socket copy, the end) is here.

use skiff_proto::jingle::{JingleAction, JingleInput, JingleSession};
use skiff_proto::transfer::Protocol;

use super::*;
use crate::transfer::bytestream::Bytestream;
use crate::transfer::{AbortOnDrop, CancelGuard, TransferConfig};

/// What the sending side's file work reports to its machine (SI or Jingle).
pub(in crate::transfer) trait SendInput: Send + 'static {
    /// The socket copy ended: every byte written, or why not.
    fn socket(r: Result<(), String>) -> Self;
    /// The next in-band block, or why the file cannot be read.
    fn block(r: Result<Vec<u8>, String>) -> Self;
}

impl SendInput for SenderInput {
    fn socket(r: Result<(), String>) -> Self {
        r.map_or_else(SenderInput::SocketFailed, |()| SenderInput::SocketDone)
    }
    fn block(r: Result<Vec<u8>, String>) -> Self {
        r.map_or_else(SenderInput::ReadFailed, SenderInput::Block)
    }
}

impl SendInput for JingleInput {
    fn socket(r: Result<(), String>) -> Self {
        r.map_or_else(JingleInput::SocketFailed, |()| JingleInput::SocketDone)
    }
    fn block(r: Result<Vec<u8>, String>) -> Self {
        r.map_or_else(JingleInput::ReadFailed, JingleInput::Block)
    }
}

/// The I/O side of one outgoing transfer.
pub(super) struct SendDriver<'a, I> {
    pub(super) o: &'a Outgoing,
    pub(super) cfg: TransferConfig,
    pub(super) me: Jid,
    pub(super) client: Client,
    /// Where background work (IQ answers, the socket copy) reports to the machine.
    pub(super) results: mpsc::UnboundedSender<I>,
    pub(super) progress: Progress,
    /// The SOCKS5 side: our streamhost, the proxies, the socket.
    pub(super) bs: Bytestream,
    /// The file, for in-band blocks.
    pub(super) src: Option<SourceFile>,
    /// The socket copy; stopped when the transfer ends however it ends (Cancel).
    pub(super) streaming: Option<AbortOnDrop>,
}

impl<'a, I> SendDriver<'a, I> {
    /// The driver of `o`'s attempt, reporting to `results`.
    pub(super) fn new(o: &'a Outgoing, cfg: TransferConfig, me: Jid, results: mpsc::UnboundedSender<I>) -> Self {
        let client = o.t.inner.client.clone();
        SendDriver {
            o,
            cfg,
            me,
            client,
            results,
            progress: o.progress(0),
            bs: Bytestream::default(),
            src: None,
            streaming: None,
        }
    }
}

impl Driver<Sender> for SendDriver<'_, SenderInput> {
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
            SenderAction::AwaitDirect => Step::Input(match self.bs.await_direct(cancel).await {
                Some(true) => SenderInput::DirectConnected,
                Some(false) => SenderInput::DirectMissing,
                None => SenderInput::Cancel,
            }),
            SenderAction::ConnectProxy { host, port, dst_addr } => {
                Step::Input(match self.bs.connect_proxy(&self.o.t, &host, port, &dst_addr, cancel).await {
                    Some(Ok(())) => SenderInput::ProxyConnected,
                    Some(Err(e)) => SenderInput::ProxyFailed(e),
                    None => SenderInput::Cancel,
                })
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
            SenderAction::Slow { bytes_per_sec } => self.slow(bytes_per_sec),
            SenderAction::ComputeChecksum => match self.checksum(cancel).await {
                Some(h) => Step::Input(SenderInput::Checksum(h)),
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

impl Driver<JingleSession> for SendDriver<'_, JingleInput> {
    async fn act(&mut self, action: JingleAction, cancel: &mut CancelGuard) -> Step<JingleInput> {
        let action = match self.bs.jingle_step(&self.o.t, Some(&self.me), action, cancel).await {
            Ok(step) => return step,
            Err(action) => action,
        };
        match action {
            JingleAction::SendIq(iq) => {
                bridge_iq(&self.client, iq, &self.results, JingleInput::Iq);
                Step::Quiet
            }
            JingleAction::Started { route, streamhost, offset, length: _ } => {
                self.started(route, streamhost, offset).await
            }
            JingleAction::StreamSocket { offset, length } => self.stream_socket(offset, length),
            JingleAction::ReadBlock { len } => self.read_block(len).await,
            JingleAction::Progress { bytes } => {
                self.progress.update(bytes);
                Step::Quiet
            }
            JingleAction::FellBack { reason } => self.fell_back(reason),
            JingleAction::Slow { bytes_per_sec } => self.slow(bytes_per_sec),
            JingleAction::ComputeChecksum => match self.checksum(cancel).await {
                Some(h) => Step::Input(JingleInput::Checksum(h)),
                None => Step::Input(JingleInput::Cancel),
            },
            JingleAction::Done { route, bytes, verified } => {
                Step::End(self.o.completed(route, bytes, verified, &self.progress).await)
            }
            JingleAction::Rejected { reason } => Step::End(Err(Stop::Declined(reason))),
            JingleAction::Failed { reason, error, resumable } => {
                Step::End(Err(Stop::Failed(Failure { reason, error, resumable })))
            }
            // A receiver's actions (and the SOCKS5 ones, taken above).
            _ => Step::End(Err(Stop::fatal(FailReason::Protocol, "a receiving step asked of a sending session"))),
        }
    }
}

impl SendDriver<'_, SenderInput> {
    async fn gather(&mut self, dst_addr: &str, again: bool, cancel: &mut CancelGuard) -> Step<SenderInput> {
        let (t, cfg, me) = (&self.o.t, &self.cfg, &self.me);
        Step::Input(match self.bs.gather(t, cfg, me, dst_addr, again, cancel).await {
            Some(hosts) => SenderInput::Streamhosts(hosts),
            None => SenderInput::Cancel,
        })
    }
}

impl<I: SendInput> SendDriver<'_, I> {
    /// The file's SHA-256 (from the hashing that started with the offer); `None`
    /// inside when it could not be computed, `None` outside when cancelled.
    async fn checksum(&mut self, cancel: &mut CancelGuard) -> Option<Option<String>> {
        cancel.or_cancel(self.o.hashes.get()).await.map(|h| h.map(|h| h.sha256))
    }

    fn slow(&mut self, bytes_per_sec: u64) -> Step<I> {
        self.o.t.emit(Event::TransferNotice { id: self.o.id, message: slow_message(bytes_per_sec) });
        Step::Quiet
    }

    /// The data starts to flow over `route`: recorded; in-band reads the file here.
    async fn started(&mut self, route: Route, streamhost: Option<String>, offset: u64) -> Step<I> {
        let o = self.o;
        let protocol = Some(if o.jingle { Protocol::Jingle } else { Protocol::Si });
        o.t.record_started(o.id, crate::transfer::Started { route, protocol, streamhost, offset });
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
    fn stream_socket(&mut self, offset: u64, length: u64) -> Step<I> {
        let Some(s) = self.bs.sock.take() else {
            return Step::End(Err(Stop::resumable(FailReason::Network, "the bytestream is gone")));
        };
        let o = self.o;
        let (path, tx) = (o.path.clone(), self.results.clone());
        let mut p = o.progress(offset);
        let src = o.open_source(offset);
        self.streaming = Some(AbortOnDrop(tokio::spawn(async move {
            let r = send_socket(s, src.await, &path, offset, length, &mut p).await;
            let _ = tx.send(I::socket(r));
        })));
        Step::Quiet
    }

    /// The next in-band block.
    async fn read_block(&mut self, len: usize) -> Step<I> {
        let Some(f) = self.src.as_mut() else {
            return Step::End(Err(Stop::fatal(FailReason::Protocol, "in-band data before the stream started")));
        };
        let mut buf = vec![0u8; len];
        Step::Input(I::block(match f.read_block(&mut buf).await {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(e) => Err(format!("cannot read {}: {e}", self.o.path.display())),
        }))
    }

    /// SOCKS5 failed and in-band follows: said, not only logged, as in-band is slower.
    fn fell_back(&mut self, reason: String) -> Step<I> {
        tracing::info!("SOCKS5 bytestream failed ({reason}); falling back to in-band");
        let mut why = reason;
        if !self.bs.proxy_problems.is_empty() {
            why = format!("{why}; {}", self.bs.proxy_problems.join("; "));
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
