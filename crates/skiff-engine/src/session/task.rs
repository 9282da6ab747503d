//! The session task: connects, resumes or starts anew after a drop (with backoff),
//! and serves one connection at a time; the writer task beside it.

use super::*;

/// Why a connected session ended.
pub(super) enum End {
    Stopped,
    Dropped(String),
    Fatal { code: FatalCode, message: String },
}

pub(super) struct SessionTask {
    pub(super) cfg: AccountConfig,
    pub(super) inner: std::sync::Weak<Inner>,
    pub(super) cmd_rx: mpsc::UnboundedReceiver<Command>,
    pub(super) state: watch::Sender<ConnState>,
    pub(super) ev: broadcast::Sender<Event>,
    pub(super) stop_ack: Option<oneshot::Sender<()>>,
    /// The router of an interrupted session being resumed (XEP-0198), and until when
    /// the server keeps it.
    pub(super) kept: Option<(Router, Instant)>,
}

/// How long an interrupted session is resumed at most, whatever the server allows.
pub(super) const MAX_RESUME_WINDOW: Duration = Duration::from_secs(600);
/// How long an interrupted session is resumed when the server does not say.
pub(super) const DEFAULT_RESUME_WINDOW: Duration = Duration::from_secs(300);
/// How long a resumed session may take to acknowledge anything before it counts as
/// broken (the server resumed it but does not read what we send).
pub(super) const RESUME_CONFIRM: Duration = Duration::from_secs(10);

/// Backoff before reconnect attempt `n` (1-based): about 1, 2, 4, ... 60 s, with
/// +-10% jitter so that many clients do not return at once.
pub fn backoff(attempt: u32) -> Duration {
    let base = 1000u64.saturating_mul(1 << attempt.saturating_sub(1).min(6)).min(60_000);
    let jitter = rand::random::<u64>() % (base / 5 + 1);
    Duration::from_millis(base - base / 10 + jitter)
}

/// A stable code for a sign-in failure, for the UI to branch on.
pub(super) fn error_code(e: &ConnectError) -> FatalCode {
    use skiff_proto::negotiation::NegotiationError as N;
    match e {
        ConnectError::Resolve { .. } => FatalCode::Resolve,
        ConnectError::Connect { .. } => FatalCode::Connect,
        ConnectError::Tls { .. } => FatalCode::Tls,
        ConnectError::Untrusted(u) if u.changed => FatalCode::CertificateChanged,
        ConnectError::Untrusted(_) => FatalCode::CertificateUntrusted,
        ConnectError::CaFile { .. } => FatalCode::CaFile,
        ConnectError::PlaintextNotLoopback { .. } => FatalCode::PlaintextRefused,
        ConnectError::Negotiation(N::AuthFailed { .. }) => FatalCode::AuthFailed,
        // The server offered only PLAIN to an account that signs in with SCRAM.
        ConnectError::Negotiation(N::PlainDowngrade) => FatalCode::PlainDowngrade,
        // The server's SCRAM messages are not what SCRAM allows: it is not the server
        // the password was set with, or it is broken.
        ConnectError::Negotiation(
            N::ScramNonce | N::ScramIterations(_) | N::ScramSalt | N::ScramExtension | N::ScramMalformed(_),
        ) => FatalCode::ServerAuthInvalid,
        ConnectError::Negotiation(N::TlsNotOffered | N::TlsRefused | N::TlsRequiredByServer) => FatalCode::Tls,
        ConnectError::Negotiation(N::NoMechanism(_) | N::ServerProofInvalid | N::Sasl(_)) => FatalCode::AuthFailed,
        ConnectError::Negotiation(_) | ConnectError::Xml(_) => FatalCode::Protocol,
        ConnectError::Io(_) => FatalCode::Connect,
        ConnectError::Timeout(_) => FatalCode::Timeout,
    }
}

impl SessionTask {
    pub(super) fn emit(&self, e: Event) {
        let _ = self.ev.send(e);
    }

    /// Runs `fut` while answering commands that cannot wait for a connection.
    /// `None` when the client was told to stop meanwhile.
    /// While an interrupted session is being resumed, stanzas and requests are queued
    /// in it (they go out on resumption) and requests still time out.
    pub(super) async fn serve_until<F: std::future::Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                cmd = self.cmd_rx.recv() => match (cmd, self.kept.as_mut()) {
                    (None, _) => return None,
                    (Some(Command::Disconnect(done)), _) => {
                        self.stop_ack = Some(done);
                        return None;
                    }
                    (Some(Command::Iq { iq, timeout, reply }), Some((router, _))) => {
                        router.request_within(*iq, Waiter::External(reply), timeout)
                    }
                    (Some(Command::Iq { reply, .. }), None) => {
                        let _ = reply.send(Err(ClientError::NotConnected));
                    }
                    (Some(Command::Send(el)), Some((router, _))) => router.send(el),
                    (Some(Command::Send(el)), None) => tracing::debug!("not connected; dropped <{}/>", el.name),
                },
                _ = tick.tick() => {
                    if let Some((router, _)) = self.kept.as_mut() {
                        router.expire();
                    }
                    // Every handle is gone (only the kept router holds the shared
                    // state): nobody can use the session any more.
                    if self.kept.is_some() && self.inner.strong_count() <= 1 {
                        return None;
                    }
                }
            }
        }
    }

    /// Gives up the interrupted session, if any ([`Router::abandon`]).
    pub(super) fn drop_kept(&mut self) {
        if let Some((mut router, _)) = self.kept.take() {
            router.abandon(None);
        }
    }

    /// An interrupted session is kept and the server still keeps it too.
    pub(super) fn resume_window_open(&self) -> bool {
        self.kept.as_ref().is_some_and(|(_, until)| Instant::now() < *until)
    }

    pub(super) fn finish(&mut self, state: ConnState) {
        self.drop_kept();
        self.state.send_replace(state);
        if let Some(ack) = self.stop_ack.take() {
            let _ = ack.send(());
        }
    }

    pub(super) async fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut was_online = false;
        loop {
            attempt += 1;
            self.emit(Event::Connecting { attempt });
            let cfg = self.cfg.clone();
            let resume = self.kept.as_ref().and_then(|(r, _)| Some((r.sm.resume_request()?, r.own.clone())));
            let Some(result) = self.serve_until(connection::connect(&cfg, resume)).await else {
                return self.finish(ConnState::Stopped);
            };
            let reason = match result {
                Ok(conn) => {
                    attempt = 0;
                    was_online = true;
                    match self.connected(conn).await {
                        End::Stopped => return self.finish(ConnState::Stopped),
                        End::Fatal { code, message } => {
                            self.drop_kept();
                            self.emit(Event::Offline { reason: message.clone(), will_retry: false });
                            self.emit(Event::Fatal { code, message: message.clone(), untrusted: None });
                            return self.finish(ConnState::Failed(message));
                        }
                        End::Dropped(reason) => reason,
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    tracing::info!("sign-in failed: {message}");
                    // An interrupted session is resumed even without reconnects (it is
                    // the same session), until the server's window closes.
                    if e.is_fatal() || !was_online || !(self.cfg.reconnect || self.resume_window_open()) {
                        let untrusted = match &e {
                            ConnectError::Untrusted(u) => Some(u.clone()),
                            _ => None,
                        };
                        self.drop_kept();
                        self.emit(Event::Fatal { code: error_code(&e), message: message.clone(), untrusted });
                        return self.finish(ConnState::Failed(message));
                    }
                    message
                }
            };
            // Interrupted just now (attempt 0) or still resuming within the window.
            if self.kept.is_some() && !self.resume_window_open() {
                self.drop_kept();
                let why = format!("{reason}; the interrupted session could not be resumed in time");
                self.emit(Event::Offline { reason: why, will_retry: self.cfg.reconnect });
            } else if self.kept.is_some() && attempt == 0 {
                self.emit(Event::Interrupted { reason: reason.clone() });
            } else if self.kept.is_none() {
                self.emit(Event::Offline { reason: reason.clone(), will_retry: self.cfg.reconnect });
            }
            if !self.cfg.reconnect && self.kept.is_none() {
                return self.finish(ConnState::Failed(reason));
            }
            self.state.send_replace(ConnState::Offline(reason));
            // The first try to resume goes at once (with a little jitter).
            let delay = if self.kept.is_some() && attempt == 0 {
                Duration::from_millis(50 + rand::random::<u64>() % 200)
            } else {
                backoff(attempt.max(1))
            };
            self.emit(Event::Reconnecting { attempt: attempt + 1, delay_ms: delay.as_millis() as u64 });
            if self.serve_until(tokio::time::sleep(delay)).await.is_none() {
                return self.finish(ConnState::Stopped);
            }
        }
    }

    pub(super) async fn connected(&mut self, conn: Connected) -> End {
        let Connected { transport, mut parser, negotiated, .. } = conn;
        // Once signed in with SCRAM, this session's reconnects never fall back to PLAIN.
        if negotiated.mechanism.starts_with("SCRAM-") {
            self.cfg.require_scram = true;
        }
        let Some(inner) = self.inner.upgrade() else { return End::Stopped };
        {
            let mut shared = inner.shared.lock().unwrap();
            shared.stream_features = negotiated.features.clone();
            shared.mechanism = negotiated.mechanism.clone();
        }
        let (mut rd, wr) = tokio::io::split(transport);
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let mut out_tx = Some(out_tx);
        let writer = tokio::spawn(writer_task(wr, out_rx));
        let kept = self.kept.take();
        let resumed = match (&negotiated.resumption, kept) {
            (Some(Resumption::Resumed { h }), Some((mut router, _))) => {
                router.inner = inner.clone();
                // The router holds the only sender: the writer ends with the router's.
                router.out = out_tx.take();
                router.writer_gone = false;
                router.resumed_at = Some(Instant::now());
                match router.sm.resumed(*h) {
                    Ok(again) => {
                        tracing::info!(
                            "the session was resumed; {} stanza(s) the server had not handled go out again",
                            again.len()
                        );
                        for el in again {
                            router.write(Out::Element(el));
                        }
                        Some(router)
                    }
                    Err(e) => {
                        // The server claims more than we ever sent: end the stream.
                        router.stream_error(&e);
                        router.out = None;
                        router.end();
                        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
                        return End::Dropped(format!("the server broke stream management on resumption: {e}"));
                    }
                }
            }
            (resumption, kept) => {
                if let Some((mut router, _)) = kept {
                    let (lost_after, why) = match resumption {
                        Some(Resumption::Failed { h, condition }) => {
                            (*h, format!("the server refused: {}", condition.as_deref().unwrap_or("no reason given")))
                        }
                        _ => (None, "the server no longer offers stream management".to_owned()),
                    };
                    router.abandon(lost_after);
                    tracing::info!("the interrupted session could not be resumed ({why}); a new one starts");
                    self.emit(Event::Offline {
                        reason: format!("the interrupted session could not be resumed ({why})"),
                        will_retry: true,
                    });
                }
                None
            }
        };
        let mut router = match resumed {
            Some(router) => {
                self.state.send_replace(ConnState::Online(router.own.clone()));
                self.emit(Event::Resumed {
                    jid: router.own.to_string(),
                    tls: negotiated.tls,
                    mechanism: negotiated.mechanism.clone(),
                });
                router
            }
            None => {
                let mut router = Router {
                    own: negotiated.jid.clone(),
                    pending: IqTracker::new(format!("{:08x}", rand::random::<u32>())),
                    inner,
                    out: out_tx.take(),
                    ev: self.ev.clone(),
                    iq_timeout: self.cfg.iq_timeout,
                    writer_gone: false,
                    sm: StreamManagement::new(),
                    resumed_at: None,
                };
                // XEP-0198: enable right after binding, before any stanza.
                if negotiated.features.iter().any(|f| f == sm::NS) {
                    let enable = router.sm.enable();
                    router.write(Out::Element(enable));
                }
                // RFC 6121: fetch the roster before sending initial presence.
                router.request(Iq::get("", None, Element::new("query", ns::ROSTER)), Waiter::Roster);
                let presence = router.our_presence();
                router.send(presence.into());
                self.state.send_replace(ConnState::Online(negotiated.jid.clone()));
                self.emit(Event::Online {
                    jid: negotiated.jid.to_string(),
                    tls: negotiated.tls,
                    mechanism: negotiated.mechanism.clone(),
                });
                router
            }
        };

        let mut buf = vec![0u8; 64 * 1024];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_rx = Instant::now();
        let end = loop {
            if let Some(end) = router.drain(&mut parser) {
                break end;
            }
            if router.writer_gone {
                break End::Dropped("the connection to the server broke while sending".into());
            }
            tokio::select! {
                n = rd.read(&mut buf) => match n {
                    Ok(0) => break End::Dropped("the server closed the connection".into()),
                    Ok(n) => {
                        last_rx = Instant::now();
                        parser.feed(&buf[..n]);
                    }
                    Err(e) => break End::Dropped(format!("the connection to the server was lost: {e}")),
                },
                cmd = self.cmd_rx.recv() => match cmd {
                    None => {
                        router.close();
                        break End::Stopped;
                    }
                    Some(Command::Disconnect(done)) => {
                        router.send(Presence::new(PresenceType::Unavailable).into());
                        router.close();
                        self.stop_ack = Some(done);
                        break End::Stopped;
                    }
                    Some(Command::Send(el)) => router.send(el),
                    Some(Command::Iq { iq, timeout, reply }) => router.request_within(*iq, Waiter::External(reply), timeout),
                },
                _ = tick.tick() => {
                    if let Some(end) = router.tick(last_rx, self.cfg.keepalive) {
                        break end;
                    }
                }
            }
        };
        // A drop of a resumable session keeps the router for the resumption;
        // anything else ends the session.
        let resumable = matches!(end, End::Dropped(_)) && router.sm.is_resumable();
        router.out = None;
        if resumable {
            // A ping of the old connection says nothing about the next one.
            router.pending.retain(|w| !matches!(w, Waiter::Ping));
            let window = router
                .sm
                .max_secs()
                .map(|s| Duration::from_secs(u64::from(s)))
                .unwrap_or(DEFAULT_RESUME_WINDOW)
                .min(MAX_RESUME_WINDOW);
            tracing::info!("the connection dropped; resuming the session (kept up to {} s)", window.as_secs());
            self.kept = Some((router, Instant::now() + window));
        } else {
            router.sm.reset();
            router.end();
        }
        // Let the writer flush the closing bytes, but do not hang on a dead socket.
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        end
    }
}

pub(super) enum Out {
    Element(Element),
    Raw(String),
}

/// How long one write to the server may block before the connection counts as dead
/// (a server that stops reading must not hold the session forever).
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) async fn writer_task(mut wr: WriteHalf<Transport>, mut rx: mpsc::UnboundedReceiver<Out>) {
    while let Some(out) = rx.recv().await {
        let write = async {
            match out {
                Out::Element(el) => connection::write_element(&mut wr, &el).await,
                Out::Raw(s) => {
                    tracing::debug!(target: "skiff::xml", "SEND {s}");
                    wr.write_all(s.as_bytes()).await
                }
            }
        };
        let r = tokio::time::timeout(WRITE_TIMEOUT, write).await.unwrap_or_else(|_| {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the server stopped reading for 60 s"))
        });
        if let Err(e) = r {
            tracing::info!("write to the server failed: {e}");
            return;
        }
    }
    let _ = wr.shutdown().await;
}
