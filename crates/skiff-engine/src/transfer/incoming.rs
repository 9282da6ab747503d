//! Receiving: an SI offer becomes an event and waits for a decision (or a policy);
//! accepted, the bytes arrive over a SOCKS5 streamhost (tried in the offered order)
//! or in-band into a `.part` file, which is verified and renamed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skiff_proto::jid::Jid;
use skiff_proto::si::FileOffer;
use skiff_proto::stanza::{Condition, Iq, IqKind, StanzaError};
use skiff_proto::transfer::{
    checksum_differs, checksum_matches, Receiver, ReceiverAction, ReceiverConfig, ReceiverInput, IDLE_TIMEOUT,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

use super::driver::{self, bridge_iq, Clock, Driver, Inputs, Step, Stop};
use super::{s5b, Decision, FailReason, Failure, Progress, Transfers};
use crate::event::Event;
use crate::files::{self, PartFile, Sink, VerifyError};
use crate::store::{Direction, NewTransfer, Route, TransferState};

/// Answers every SI request: malformed ones at once, good offers in their own task.
pub(super) async fn offer_loop(t: Transfers, mut rx: mpsc::Receiver<Iq>) {
    while let Some(iq) = rx.recv().await {
        let client = t.client();
        let Some(me) = client.jid() else { continue };
        let clock = Clock::new();
        let cfg = ReceiverConfig { methods: t.cfg().methods.clone(), ..ReceiverConfig::default() };
        match Receiver::from_offer(cfg, me, iq, clock.now()) {
            Ok(m) => {
                tokio::spawn(receive(t.clone(), m, clock));
            }
            Err(reply) => {
                let _ = client.send(reply);
            }
        }
    }
}

/// The outcome of the decision about an offer.
enum Decided {
    Accepted {
        id: i64,
        final_path: PathBuf,
        offset: u64,
    },
    Declined {
        id: i64,
    },
    /// Refused before it was recorded or shown (a stranger, too many waiting).
    Refused(super::Refusal),
}

async fn receive(t: Transfers, mut m: Receiver, clock: Clock) {
    if let Some(marker) = m.offer().batch.clone() {
        return super::batch::receive_run(t, m, clock, marker).await;
    }
    let offer = m.offer().clone();
    let from = m.peer().clone();
    let name = files::sanitize_file_name(&offer.file.name);
    let decided = match prepare(&t, &offer, &from, &name).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("offer of {name} from {from}: {e}");
            refuse(&t, &mut m, &clock, Some(StanzaError::new(Condition::InternalServerError).with_text(e.to_string())));
            return;
        }
    };
    let (id, final_path, offset) = match decided {
        Decided::Refused(r) => {
            let error = StanzaError::new(r.condition).with_text(r.text);
            return refuse(&t, &mut m, &clock, Some(error));
        }
        Decided::Declined { id } => {
            refuse(&t, &mut m, &clock, None);
            return t.declined(id, name, "declined".into());
        }
        Decided::Accepted { id, final_path, offset } => (id, final_path, offset),
    };
    // Room for what is still to come, before anything is promised to the sender.
    let dir = final_path.parent().unwrap_or_else(|| std::path::Path::new("."));
    if let Err(sentence) = files::check_free_space(dir, offer.file.size.saturating_sub(offset)) {
        let text = "not enough disk space for this file";
        refuse(&t, &mut m, &clock, Some(StanzaError::new(Condition::ResourceConstraint).with_text(text)));
        t.fail(id, &name, Failure::new(FailReason::Storage, sentence, offset > 0));
        return;
    }
    let Some(cancel) = t.claim(id) else {
        refuse(
            &t,
            &mut m,
            &clock,
            Some(StanzaError::new(Condition::Conflict).with_text("this file is being received already")),
        );
        return;
    };
    if let Err(Stop::Failed(f)) = drive(&t, m, clock, cancel, id, final_path, offset, Landing::File).await {
        t.fail(id, &name, f);
    }
}

/// Where an accepted stream's bytes end up, and who records its end.
pub(super) enum Landing {
    /// A file of its own, whose record completes.
    File,
    /// A run of a batch's files ([`super::batch`]): when several travel together,
    /// they are cut apart as the bytes arrive.
    Batch { batch: Arc<super::batch::IncomingBatch>, run: skiff_proto::batch::InBatch },
}

impl Landing {
    /// The stream's progress (a batch's: within the batch) from `offset`, and the
    /// SHA-256 the file must have (a batch's file travelling alone: the manifest's too).
    fn progress_and_sha256(
        &self,
        t: &Transfers,
        id: i64,
        size: u64,
        offset: u64,
        file: &skiff_proto::si::FileInfo,
    ) -> (Progress, Option<String>) {
        match self {
            Landing::File => (Progress::new(t, id, size, offset), file.sha256.clone()),
            Landing::Batch { batch, run } => {
                let progress = Progress::within(t, id, batch.size(), batch.bytes_done(), offset);
                let sha256 = if run.count == 1 { batch.sha256_of(run) } else { None };
                (progress, sha256.or(file.sha256.clone()))
            }
        }
    }
}

/// Answers the offer with an error: the machine's `forbidden`, or `error` instead.
pub(super) fn refuse(t: &Transfers, m: &mut Receiver, clock: &Clock, error: Option<StanzaError>) {
    for a in m.handle(ReceiverInput::Reject, clock.now()) {
        if let ReceiverAction::SendIq(mut iq) = a {
            if let (Some(e), IqKind::Error(_)) = (&error, &iq.kind) {
                iq.kind = IqKind::Error(e.clone());
            }
            let _ = t.client().send(iq);
        }
    }
}

/// Records the offer, announces it and waits for the decision. `None` when declined.
async fn prepare(t: &Transfers, offer: &FileOffer, from: &Jid, name: &str) -> Result<Decided, super::TransferError> {
    let store = &t.inner.store;
    let f = &offer.file;
    // The gate first, in memory only (strangers, the caps on offers waiting for an
    // answer), so that a flood of offers costs no history lookup. A new offer keeps
    // its place until it is answered; a resumption gives it back below. (A resumption
    // arriving while that peer's offers fill the cap is refused like any other offer;
    // it is offered again later.)
    let slot = match t.admit(from) {
        Ok(slot) => slot,
        Err(r) => return Ok(Decided::Refused(r)),
    };
    let resume = earlier_part(t, offer, from, name)?;
    // A resumption of one accepted before does not ask again, nor wait.
    let _slot = if resume.is_some() { None } else { slot };
    let id = match &resume {
        Some((id, _, have)) => {
            store.start_attempt(*id, &offer.sid, &from.to_string(), *have)?;
            store.set_state(*id, TransferState::Offered, None)?;
            *id
        }
        None => record_offer(t, offer, from, name)?,
    };
    // Ready for an answer before anyone can see the offer.
    let asked = if resume.is_none() { t.ask(id) } else { None };
    t.emit(Event::TransferOffered {
        id,
        direction: crate::store::Direction::Incoming,
        peer: from.to_string(),
        name: name.to_owned(),
        size: f.size,
        description: f.desc.clone(),
        resume_from: resume.as_ref().map(|r| r.2).unwrap_or(0),
        files: None,
    });
    // A resumption of a transfer already accepted is accepted without asking again.
    let decision = if resume.is_some() { Decision::Accept(None) } else { t.answer(id, from, asked).await };
    match decision {
        Decision::Reject => Ok(Decided::Declined { id }),
        Decision::Accept(dir) => Ok(match resume {
            Some((id, final_path, have)) => Decided::Accepted { id, final_path, offset: have },
            None => {
                let dir = dir.unwrap_or_else(|| t.cfg().download_dir.clone());
                std::fs::create_dir_all(&dir)
                    .map_err(|e| super::TransferError::Other(format!("cannot create {}: {e}", dir.display())))?;
                Decided::Accepted { id, final_path: files::unique_path(&dir, name), offset: 0 }
            }
        }),
    }
}

/// The same file from the same peer, partly received before (its record, where it
/// goes, what is there): resumed rather than asked about again.
fn earlier_part(
    t: &Transfers,
    offer: &FileOffer,
    from: &Jid,
    name: &str,
) -> Result<Option<(i64, PathBuf, u64)>, super::TransferError> {
    let f = &offer.file;
    if !f.range {
        return Ok(None);
    }
    let bare = from.bare().to_string();
    let (hash, date) = (f.hash.as_deref(), f.date.as_deref());
    let earlier = t.inner.store.find_resumable_incoming(&t.inner.account, &bare, name, f.size, hash, date)?;
    Ok(earlier.and_then(|rec| {
        let final_path = PathBuf::from(rec.local_path.as_ref()?);
        let have = std::fs::metadata(files::part_path(&final_path)).ok()?.len();
        (have <= f.size).then_some((rec.id, final_path, have))
    }))
}

/// A new incoming offer in the history.
fn record_offer(t: &Transfers, offer: &FileOffer, from: &Jid, name: &str) -> Result<i64, super::TransferError> {
    let f = &offer.file;
    Ok(t.inner.store.insert(&NewTransfer {
        sid: offer.sid.clone(),
        direction: Direction::Incoming,
        account: t.inner.account.clone(),
        peer_jid: from.to_string(),
        file_name: name.to_owned(),
        local_path: None,
        size: f.size,
        md5: f.hash.clone(),
        date: f.date.clone(),
        description: f.desc.clone(),
        state: TransferState::Offered,
        files: None,
        rel_path: None,
    })?)
}

/// The `.part` to write to (continued from `offset`; a batch's run of several files:
/// their `.part`s), shared with the socket reader; when it cannot be written, the
/// offer is answered with an error.
async fn open_part(
    t: &Transfers,
    m: &mut Receiver,
    clock: &Clock,
    (final_path, offset): (&std::path::Path, u64),
    landing: &Landing,
) -> Result<Arc<Mutex<Option<Sink>>>, Stop> {
    let size = m.offer().file.size;
    let opened = match landing {
        Landing::Batch { batch, run } if run.count > 1 => Ok(Sink::Pack(batch.pack_writer(run))),
        _ if offset > 0 => PartFile::resume(final_path.to_path_buf(), offset, size).await.map(Sink::File),
        _ => PartFile::create(final_path.to_path_buf(), size).await.map(Sink::File),
    };
    match opened {
        Ok(p) => Ok(Arc::new(Mutex::new(Some(p)))),
        Err(e) => {
            let error = StanzaError::new(Condition::InternalServerError).with_text("cannot write the file");
            refuse(t, m, clock, Some(error));
            Err(Stop::fatal(FailReason::Storage, format!("cannot write {}: {e}", final_path.display())))
        }
    }
}

/// Drives the sans-IO [`Receiver`] machine once the offer is accepted.
#[allow(clippy::too_many_arguments)]
pub(super) async fn drive(
    t: &Transfers,
    mut m: Receiver,
    clock: Clock,
    mut cancel: super::CancelGuard,
    id: i64,
    final_path: PathBuf,
    offset: u64,
    landing: Landing,
) -> Result<(), Stop> {
    let size = m.offer().file.size;
    let part = open_part(t, &mut m, &clock, (&final_path, offset), &landing).await?;
    if let Landing::File = landing {
        let _ = t.inner.store.set_local_path(id, &final_path.display().to_string());
        let _ = t.inner.store.set_state(id, TransferState::Accepted, None);
    }
    // IQs for this stream reach us from now on (before the accept goes out).
    let mut route = t.route(m.sid(), m.peer());
    let mut inputs = Inputs::new();
    let file = &m.offer().file;
    let (progress, offered_sha256) = landing.progress_and_sha256(t, id, size, offset, file);
    let mut d = ReceiveDriver {
        t,
        id,
        client: t.client().clone(),
        results: inputs.tx.clone(),
        final_path,
        size,
        md5: file.hash.clone(),
        offered_sha256,
        part,
        progress,
        landing,
        sock: None,
        reader: None,
        all_in: None,
    };
    let first = ReceiverInput::Accept { offset };
    let mut result = driver::run(&mut m, &mut d, first, &clock, &mut cancel, &mut inputs, Some(&mut route.rx)).await;
    d.stop_reading();
    // The stream is over: IQs for it are answered as for an unknown stream while the
    // file is checked.
    drop(route);
    if let Some((route, sha256, checksum)) = d.all_in.take() {
        result = d.done(route, sha256, checksum).await;
    }
    d.keep().await;
    result
}

/// The I/O side of one accepted incoming SI transfer: one method per [`ReceiverAction`].
struct ReceiveDriver<'a> {
    t: &'a Transfers,
    id: i64,
    client: crate::session::Client,
    /// Where background work (IQ answers, the socket reader) reports to the machine.
    results: mpsc::UnboundedSender<ReceiverInput>,
    final_path: PathBuf,
    size: u64,
    md5: Option<String>,
    offered_sha256: Option<String>,
    /// The `.part` file(s), shared with the socket reader.
    part: Arc<Mutex<Option<Sink>>>,
    progress: Progress,
    sock: Option<TcpStream>,
    reader: Option<tokio::task::JoinHandle<()>>,
    /// Every byte is in (the machine's `Done`): the file is checked once the stream's
    /// routing is gone.
    all_in: Option<(Route, Option<String>, Option<Iq>)>,
    landing: Landing,
}

impl Driver<Receiver> for ReceiveDriver<'_> {
    async fn act(&mut self, action: ReceiverAction, cancel: &mut super::CancelGuard) -> Step<ReceiverInput> {
        match action {
            ReceiverAction::SendIq(iq) => {
                bridge_iq(&self.client, iq, &self.results, ReceiverInput::Iq);
                Step::Quiet
            }
            ReceiverAction::ConnectCandidates { hosts, dst_addr } => {
                Step::Input(match cancel.or_cancel(s5b::connect_first(&hosts, &dst_addr)).await {
                    Some(Ok((host, s))) => {
                        self.sock = Some(s);
                        ReceiverInput::CandidateConnected { jid: host.jid }
                    }
                    Some(Err(errors)) => ReceiverInput::CandidatesFailed(errors.join("; ")),
                    None => ReceiverInput::Cancel,
                })
            }
            ReceiverAction::ReadSocket { expected } => self.read_socket(expected),
            ReceiverAction::CloseSocket => {
                self.stop_reading();
                Step::Quiet
            }
            ReceiverAction::Write(data) => self.write(&data).await,
            ReceiverAction::Started { route, streamhost, offset } => self.started(route, streamhost, offset).await,
            ReceiverAction::Progress { bytes } => {
                self.progress.update(bytes);
                Step::Quiet
            }
            ReceiverAction::Done { route, sha256, checksum } => {
                self.all_in = Some((route, sha256, checksum));
                Step::End(Ok(()))
            }
            ReceiverAction::Rejected => {
                let declined = Some((FailReason::Declined, "declined"));
                let _ = self.t.inner.store.set_state(self.id, TransferState::Rejected, declined);
                Step::End(Ok(()))
            }
            ReceiverAction::Failed { reason, error, resumable } => {
                Step::End(Err(Stop::Failed(Failure { reason, error, resumable })))
            }
        }
    }
}

impl ReceiveDriver<'_> {
    /// Whatever arrived stays on disk for a resume (of a run of several files: those
    /// that arrived whole, named and recorded).
    async fn keep(&mut self) {
        match self.part.lock().await.take() {
            Some(Sink::File(mut p)) => {
                let _ = p.flush().await;
            }
            Some(Sink::Pack(p)) => {
                if let Landing::Batch { batch, run } = &self.landing {
                    batch.kept(self.t, run, p.keep_whole().await);
                }
            }
            None => {}
        }
    }

    /// The bytestream is done with: its reader stopped, the socket closed.
    fn stop_reading(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        self.sock = None;
    }

    /// Reads the SOCKS5 bytestream into the `.part` file in the background.
    fn read_socket(&mut self, expected: u64) -> Step<ReceiverInput> {
        let Some(s) = self.sock.take() else {
            return Step::End(Err(Stop::resumable(FailReason::Network, "the bytestream is gone")));
        };
        let (part, tx) = (self.part.clone(), self.results.clone());
        let mut p = self.progress.again(0);
        self.reader = Some(tokio::spawn(async move {
            let _ = tx.send(read_socket(s, &part, expected, &mut p).await);
        }));
        Step::Quiet
    }

    /// One in-band block into the `.part` file.
    async fn write(&mut self, data: &[u8]) -> Step<ReceiverInput> {
        let mut guard = self.part.lock().await;
        Step::Input(match guard.as_mut() {
            Some(p) => match p.write(data).await {
                Ok(()) => ReceiverInput::Written,
                Err(e) => write_failed(e),
            },
            None => ReceiverInput::WriteFailed("the file is closed".into()),
        })
    }

    /// The data starts to flow over `route` from `offset`: recorded; the `.part` file
    /// reopened there when the machine starts elsewhere (e.g. no range possible).
    async fn started(&mut self, route: Route, streamhost: Option<String>, offset: u64) -> Step<ReceiverInput> {
        let mut guard = self.part.lock().await;
        if let Some(Sink::Pack(_)) = guard.as_ref().filter(|_| offset != 0) {
            let error = "a stream of several files starts at its beginning";
            return Step::End(Err(Stop::fatal(FailReason::Protocol, error)));
        }
        if guard.as_ref().is_some_and(|p| p.written() != offset) {
            match PartFile::resume(self.final_path.clone(), offset, self.size).await {
                Ok(p) => *guard = Some(Sink::File(p)),
                Err(e) => {
                    let error = format!("cannot write {}: {e}", self.final_path.display());
                    return Step::End(Err(Stop::fatal(FailReason::Storage, error)));
                }
            }
        }
        drop(guard);
        self.t.record_started(self.id, route, streamhost, offset);
        self.progress = self.progress.again(offset);
        Step::Quiet
    }

    /// Every byte is in: checked against every SHA-256 known (the offer's, the
    /// checksum's), then named.
    async fn done(&mut self, route: Route, sha256: Option<String>, checksum: Option<Iq>) -> Result<(), Stop> {
        let Some(p) = self.part.lock().await.take() else {
            return Err(Stop::fatal(FailReason::Storage, "the file is closed"));
        };
        let offered = self.offered_sha256.as_deref();
        let mut sha: Vec<&str> = offered.into_iter().collect();
        sha.extend(sha256.as_deref().filter(|h| Some(*h) != offered));
        let checked = Checked { md5: self.md5.as_deref(), sha256: &sha, checksum };
        finish(self.t, self.id, p, checked, route, &self.progress, &self.landing).await
    }
}

/// What a received stream is checked against, and the sender's question whether it
/// arrived intact (answered once the answer is known).
struct Checked<'a> {
    md5: Option<&'a str>,
    sha256: &'a [&'a str],
    checksum: Option<Iq>,
}

/// Verifies and renames the received file (a batch's run: cuts it into its files),
/// answers the sender's checksum, records and announces the result.
async fn finish(
    t: &Transfers,
    id: i64,
    part: Sink,
    checked: Checked<'_>,
    route: Route,
    progress: &Progress,
    landing: &Landing,
) -> Result<(), Stop> {
    let transferred = part.written().saturating_sub(progress.start_bytes);
    let result = match (part, landing) {
        (Sink::Pack(pack), Landing::Batch { batch, run }) => batch.place_pack(run, pack).await.map(Landed::Batch),
        (Sink::Pack(_), Landing::File) => Err(Stop::fatal(FailReason::Storage, "several files for one")),
        (Sink::File(part), landing) => match part.finish_checked(checked.md5, checked.sha256).await {
            Ok(done) => match landing {
                Landing::File => Ok(Landed::File(done)),
                Landing::Batch { batch, run } => Ok(Landed::Batch(vec![batch.placed_alone(run, done)])),
            },
            Err(e @ VerifyError::SizeMismatch { .. }) => Err(Stop::resumable(FailReason::Protocol, e.to_string())),
            Err(e @ VerifyError::HashMismatch { .. }) => Err(Stop::fatal(FailReason::Integrity, e.to_string())),
            Err(e @ VerifyError::Io(_)) => Err(Stop::fatal(FailReason::Storage, e.to_string())),
        },
    };
    // The sender asked whether its file arrived intact: told before anything here
    // announces the end (a `skiff receive --count` stops right after it).
    if let Some(request) = checked.checksum {
        let answer = match &result {
            Ok(_) => checksum_matches(&request),
            Err(_) => checksum_differs(&request),
        };
        let _ = t.client().send(answer);
    }
    match result? {
        Landed::File(done) => {
            let _ = t.inner.store.set_local_path(id, &done.path.display().to_string());
            t.record_completed(super::Completed {
                id,
                name: done.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                path: done.path.display().to_string(),
                size: done.size,
                bytes: transferred,
                md5: Some(done.hashes.md5),
                sha256: Some(done.hashes.sha256),
                route,
                seconds: progress.seconds(),
                verified: done.verified,
            });
        }
        Landed::Batch(placed) => {
            if let Landing::Batch { batch, .. } = landing {
                batch.run_done(t, placed, route, transferred);
            }
        }
    }
    Ok(())
}

/// A verified stream, in its place.
enum Landed {
    File(files::Finished),
    Batch(Vec<super::batch::PlacedFile>),
}

/// Reads exactly `expected` bytes of the bytestream into the part file, then checks
/// that nothing more follows (a lie about the size).
/// A failed write to the part file as the machine's input: a full disk keeps the data
/// for a resume, anything else ends the transfer.
fn write_failed(e: std::io::Error) -> ReceiverInput {
    match e.kind() {
        std::io::ErrorKind::StorageFull => ReceiverInput::OutOfSpace(e.to_string()),
        _ => ReceiverInput::WriteFailed(e.to_string()),
    }
}

async fn read_socket(
    mut sock: TcpStream,
    part: &Mutex<Option<Sink>>,
    expected: u64,
    progress: &mut Progress,
) -> ReceiverInput {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < expected {
        let want = buf.len().min(usize::try_from(expected - got).unwrap_or(usize::MAX));
        let n = match tokio::time::timeout(IDLE_TIMEOUT, sock.read(&mut buf[..want])).await {
            Ok(Ok(0)) => {
                return ReceiverInput::SocketFailed(format!(
                    "the sender closed the stream after {got} of {expected} bytes"
                ))
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return ReceiverInput::SocketFailed(format!("the connection broke after {got} bytes: {e}")),
            Err(_) => return ReceiverInput::SocketFailed(format!("no data for {} seconds", IDLE_TIMEOUT.as_secs())),
        };
        let mut guard = part.lock().await;
        let Some(p) = guard.as_mut() else { return ReceiverInput::SocketFailed("the file is closed".into()) };
        if let Err(e) = p.write(&buf[..n]).await {
            return write_failed(e);
        }
        progress.update(p.written());
        got += n as u64;
    }
    match tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => ReceiverInput::SocketOverrun,
        _ => ReceiverInput::SocketDone,
    }
}
