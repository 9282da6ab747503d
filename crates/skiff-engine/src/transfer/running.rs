//! Transfers while they run: one attempt per record (the cancel switch), IQs routed
//! by sid, progress, and how an attempt's end is recorded and announced.

use super::*;

impl Transfers {
    /// Records the failure of transfer `id` (Interrupted when what arrived is kept,
    /// else Failed) and announces it.
    pub(super) fn fail(&self, id: i64, name: &str, f: Failure) {
        let state = if f.resumable { TransferState::Interrupted } else { TransferState::Failed };
        if let Err(e) = self.inner.store.set_state(id, state, Some((f.reason, &f.error))) {
            tracing::warn!("history: {e}");
        }
        let upload_fallback = self.can_upload_instead(id);
        let Failure { reason, error, resumable } = f;
        self.emit(Event::TransferFailed { id, name: name.to_owned(), reason, error, resumable, upload_fallback });
    }

    /// Records that a user stopped our transfer `id` and announces it;
    /// `resumable` when what the receiver holds can be continued from.
    pub(super) fn cancelled(&self, id: i64, name: String, resumable: bool) {
        let Failure { reason, error, .. } = Failure::cancelled();
        let _ = self.inner.store.set_state(id, TransferState::Cancelled, Some((reason, &error)));
        self.emit(Event::TransferFailed { id, name, reason, error, resumable, upload_fallback: false });
    }

    /// Records that the receiver declined transfer `id` (saying `reason`) and
    /// announces it.
    pub(super) fn declined(&self, id: i64, name: String, reason: String) {
        let _ = self.inner.store.set_state(id, TransferState::Rejected, Some((FailReason::Declined, &reason)));
        self.emit(Event::TransferRejected { id, name, reason });
    }

    /// Records that the data of transfer `id` starts to flow over `route`, then
    /// announces it.
    pub(super) fn record_started(&self, id: i64, started: super::Started) {
        let super::Started { route, protocol, streamhost, offset } = started;
        let store = &self.inner.store;
        let _ = store.set_route(id, route, streamhost.as_deref());
        if let Some(p) = protocol {
            let _ = store.set_protocol(id, p);
        }
        let _ = store.set_state(id, TransferState::Active, None);
        let _ = store.set_progress(id, offset);
        self.emit(Event::TransferStarted { id, route, protocol, streamhost, offset });
    }

    /// Records a finished transfer (hashes when known, all bytes done, completed),
    /// then announces it.
    pub(super) fn record_completed(&self, done: Completed) {
        let store = &self.inner.store;
        let _ = store.set_hashes(done.id, done.md5.as_deref(), done.sha256.as_deref());
        let _ = store.set_verified(done.id, done.verified);
        let _ = store.set_progress(done.id, done.size);
        let _ = store.set_state(done.id, TransferState::Completed, None);
        self.emit(Event::TransferCompleted {
            id: done.id,
            name: done.name,
            path: done.path,
            size: done.size,
            bytes: done.bytes,
            sha256: done.sha256.unwrap_or_default(),
            route: done.route,
            seconds: done.seconds,
            verified: done.verified,
        });
    }

    /// Marks transfer `id` as running and gives its cancel switch (removed when the
    /// guard drops); `None` when it is running already.
    pub(super) fn claim(&self, id: i64) -> Option<CancelGuard> {
        let mut cancels = self.inner.cancels.lock().unwrap();
        if cancels.contains_key(&id) {
            return None;
        }
        let (tx, rx) = watch::channel(false);
        cancels.insert(id, tx);
        Some(CancelGuard { t: self.clone(), id, rx, owner: true })
    }

    /// Whether transfer `id` is running in this engine.
    pub fn is_active(&self, id: i64) -> bool {
        self.inner.cancels.lock().unwrap().contains_key(&id)
    }

    /// Routes IQs for `sid` from `peer` to the returned receiver until the guard drops.
    pub(super) fn route(&self, sid: &str, peer: &Jid) -> RouteGuard {
        let (tx, rx) = mpsc::channel(64);
        self.inner.routes.lock().unwrap().insert(sid.to_owned(), (peer.clone(), tx.clone()));
        RouteGuard { t: self.clone(), sids: vec![sid.to_owned()], peer: peer.clone(), tx, rx }
    }
}

/// How a transfer's data phase began: [`Transfers::record_started`].
pub(super) struct Started {
    pub(super) route: crate::store::Route,
    pub(super) protocol: Option<crate::store::Protocol>,
    pub(super) streamhost: Option<String>,
    pub(super) offset: u64,
}

/// What [`Transfers::record_completed`] records and announces.
pub(super) struct Completed {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) path: String,
    pub(super) size: u64,
    /// Bytes that travelled in this attempt.
    pub(super) bytes: u64,
    pub(super) md5: Option<String>,
    pub(super) sha256: Option<String>,
    pub(super) route: crate::store::Route,
    pub(super) seconds: f64,
    pub(super) verified: crate::store::Verification,
}

/// A spawned task stopped when this is dropped.
#[derive(Debug)]
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) struct CancelGuard {
    pub(super) t: Transfers,
    pub(super) id: i64,
    pub(super) rx: watch::Receiver<bool>,
    /// The claim itself (dropping it frees the record); a [`follow`](CancelGuard::follow)er
    /// only listens.
    pub(super) owner: bool,
}

impl CancelGuard {
    /// A switch that sees the same Cancel without holding the claim: for each stream
    /// of a batch, while the batch holds it.
    pub(super) fn follow(&self) -> CancelGuard {
        CancelGuard { t: self.t.clone(), id: self.id, rx: self.rx.clone(), owner: false }
    }

    /// Resolves when the transfer is cancelled.
    pub(super) async fn cancelled(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Runs one slow step of a driver (connecting, discovery) unless the transfer is
    /// cancelled first (`None`): Cancel takes effect in every state.
    pub(super) async fn or_cancel<T>(&mut self, work: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            r = work => Some(r),
            _ = self.cancelled() => None,
        }
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        self.t.inner.cancels.lock().unwrap().remove(&self.id);
    }
}

pub(super) struct RouteGuard {
    pub(super) t: Transfers,
    sids: Vec<String>,
    peer: Jid,
    tx: mpsc::Sender<Iq>,
    pub(super) rx: mpsc::Receiver<Iq>,
}

impl RouteGuard {
    /// IQs for `sid` (from the same peer) come here too, until the guard drops. A sid
    /// another transfer routes already stays theirs.
    pub(super) fn also(&mut self, sid: &str) {
        if self.sids.iter().any(|s| s == sid) {
            return;
        }
        let mut routes = self.t.inner.routes.lock().unwrap();
        if routes.contains_key(sid) {
            return;
        }
        routes.insert(sid.to_owned(), (self.peer.clone(), self.tx.clone()));
        self.sids.push(sid.to_owned());
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let mut routes = self.t.inner.routes.lock().unwrap();
        for sid in &self.sids {
            routes.remove(sid);
        }
    }
}

/// Throttled progress: events at most every 100 ms, history checkpoints every 250 ms.
pub(super) struct Progress {
    pub(super) t: Transfers,
    pub(super) id: i64,
    pub(super) total: u64,
    /// Bytes of the record done before this stream's first byte (a batch's earlier
    /// streams); added to what the stream reports.
    pub(super) base: u64,
    pub(super) started: Instant,
    pub(super) start_bytes: u64,
    /// `None` until the first bytes move: that first event goes out at once.
    pub(super) last_event: Option<Instant>,
    pub(super) last_store: Instant,
}

impl Progress {
    pub(super) fn new(t: &Transfers, id: i64, total: u64, start_bytes: u64) -> Progress {
        let now = Instant::now();
        Progress { t: t.clone(), id, total, base: 0, started: now, start_bytes, last_event: None, last_store: now }
    }

    /// Progress of a stream that carries part of record `id` (a batch of `total`
    /// bytes), `base` bytes of which were done before it.
    pub(super) fn within(t: &Transfers, id: i64, total: u64, base: u64, start_bytes: u64) -> Progress {
        Progress { base, ..Progress::new(t, id, total, start_bytes) }
    }

    /// A fresh count for the same record, the stream starting at `start_bytes`.
    pub(super) fn again(&self, start_bytes: u64) -> Progress {
        Progress::within(&self.t, self.id, self.total, self.base, start_bytes)
    }

    /// `done` counts bytes of the whole stream (including a resumed prefix).
    pub(super) fn update(&mut self, done: u64) {
        let (done, start_bytes) = (self.base + done, self.base + self.start_bytes);
        let now = Instant::now();
        if now.duration_since(self.last_store) >= Duration::from_millis(250) {
            self.last_store = now;
            let _ = self.t.inner.store.set_progress(self.id, done);
        }
        let due = match self.last_event {
            None => done > start_bytes,
            Some(last) => now.duration_since(last) >= Duration::from_millis(100),
        };
        if due || done == self.total {
            self.last_event = Some(now);
            let secs = now.duration_since(self.started).as_secs_f64().max(1e-3);
            let rate = ((done - start_bytes.min(done)) as f64 / secs) as u64;
            self.t.emit(Event::TransferProgress { id: self.id, bytes: done, total: self.total, bytes_per_sec: rate });
        }
    }

    pub(super) fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
