//! The receiving side's file layer, shared by SI and Jingle: the `.part` file (or a
//! batch run's files), the socket reader, in-band writes, and the end: the file
//! checked against every digest known, named, recorded. The SOCKS5 work is the shared
//! [`Bytestream`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use skiff_proto::jingle::{JingleAction, JingleInput, JingleSession};
use skiff_proto::stanza::Iq;
use skiff_proto::transfer::{
    checksum_differs, checksum_matches, Receiver, ReceiverAction, ReceiverInput, IDLE_TIMEOUT,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

use super::bytestream::Bytestream;
use super::driver::{bridge_iq, Driver, Step, Stop};
use super::{FailReason, Failure, Progress, Transfers};
use crate::files::{self, PartFile, Sink, VerifyError};
use crate::store::{Route, TransferState};

/// How the socket reader and the part file answer the machine (SI or Jingle).
pub(super) trait ReceiveInput: Send + 'static {
    fn socket_done() -> Self;
    fn socket_failed(e: String) -> Self;
    fn overrun() -> Self;
    fn written() -> Self;
    fn write_failed(e: String) -> Self;
    fn out_of_space(e: String) -> Self;
}

macro_rules! receive_input {
    ($t:ident) => {
        impl ReceiveInput for $t {
            fn socket_done() -> Self {
                $t::SocketDone
            }
            fn socket_failed(e: String) -> Self {
                $t::SocketFailed(e)
            }
            fn overrun() -> Self {
                $t::SocketOverrun
            }
            fn written() -> Self {
                $t::Written
            }
            fn write_failed(e: String) -> Self {
                $t::WriteFailed(e)
            }
            fn out_of_space(e: String) -> Self {
                $t::OutOfSpace(e)
            }
        }
    };
}
receive_input!(ReceiverInput);
receive_input!(JingleInput);

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
    /// Where the stream's bytes go: the `.part` of `final_path` (continued from
    /// `offset`), or a run of several files' `.part`s; shared with the socket reader.
    pub(super) async fn open(
        &self,
        final_path: &std::path::Path,
        offset: u64,
        size: u64,
    ) -> std::io::Result<Arc<Mutex<Option<Sink>>>> {
        let opened = match self {
            Landing::Batch { batch, run } if run.count > 1 => Sink::Pack(batch.pack_writer(run)),
            _ if offset > 0 => Sink::File(PartFile::resume(final_path.to_path_buf(), offset, size).await?),
            _ => Sink::File(PartFile::create(final_path.to_path_buf(), size).await?),
        };
        Ok(Arc::new(Mutex::new(Some(opened))))
    }

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

/// The I/O side of one accepted incoming transfer: one method per action of its
/// machine (SI's [`Receiver`], or a receiving Jingle session).
pub(super) struct ReceiveDriver<'a, I> {
    pub(super) t: &'a Transfers,
    pub(super) id: i64,
    pub(super) client: crate::session::Client,
    /// Where background work (IQ answers, the socket reader) reports to the machine.
    pub(super) results: mpsc::UnboundedSender<I>,
    pub(super) final_path: PathBuf,
    pub(super) size: u64,
    pub(super) md5: Option<String>,
    pub(super) offered_sha256: Option<String>,
    /// The `.part` file(s), shared with the socket reader.
    pub(super) part: Arc<Mutex<Option<Sink>>>,
    pub(super) progress: Progress,
    /// The SOCKS5 side: candidates, our streamhost, the socket.
    pub(super) bs: Bytestream,
    pub(super) reader: Option<tokio::task::JoinHandle<()>>,
    /// Every byte is in (SI's `Done`): the file is checked once the stream's routing
    /// is gone.
    pub(super) all_in: Option<(Route, Option<String>, Option<Iq>)>,
    /// Jingle: the file checked and in its place (Verify), recorded at Done.
    pub(super) placed: Option<(Landed, u64)>,
    /// The signalling this stream came by.
    pub(super) protocol: skiff_proto::transfer::Protocol,
    pub(super) landing: Landing,
}

impl<'a, I> ReceiveDriver<'a, I> {
    /// The driver of transfer `id` receiving `file` by `protocol` into `part`
    /// (continued from `offset`), reporting to `results`.
    pub(super) fn new(
        (t, id): (&'a Transfers, i64),
        results: mpsc::UnboundedSender<I>,
        file: &skiff_proto::si::FileInfo,
        (final_path, offset): (PathBuf, u64),
        part: Arc<Mutex<Option<Sink>>>,
        landing: Landing,
        protocol: skiff_proto::transfer::Protocol,
    ) -> Self {
        let (progress, offered_sha256) = landing.progress_and_sha256(t, id, file.size, offset, file);
        ReceiveDriver {
            t,
            id,
            client: t.client().clone(),
            results,
            final_path,
            size: file.size,
            md5: file.hash.clone(),
            offered_sha256,
            part,
            progress,
            bs: Bytestream::default(),
            reader: None,
            all_in: None,
            placed: None,
            protocol,
            landing,
        }
    }
}

impl Driver<Receiver> for ReceiveDriver<'_, ReceiverInput> {
    async fn act(&mut self, action: ReceiverAction, cancel: &mut super::CancelGuard) -> Step<ReceiverInput> {
        match action {
            ReceiverAction::SendIq(iq) => {
                bridge_iq(&self.client, iq, &self.results, ReceiverInput::Iq);
                Step::Quiet
            }
            ReceiverAction::ConnectCandidates { hosts, dst_addr } => {
                Step::Input(match self.bs.connect_candidates(&hosts, &dst_addr, cancel).await {
                    Some(Ok(i)) => ReceiverInput::CandidateConnected { jid: hosts[i].jid.clone() },
                    Some(Err(e)) => ReceiverInput::CandidatesFailed(e),
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

impl Driver<JingleSession> for ReceiveDriver<'_, JingleInput> {
    async fn act(&mut self, action: JingleAction, cancel: &mut super::CancelGuard) -> Step<JingleInput> {
        let t = self.t;
        let action = match self.bs.jingle_step(t, self.client.jid().as_ref(), action, cancel).await {
            Ok(step) => return step,
            Err(action) => action,
        };
        match action {
            JingleAction::SendIq(iq) => {
                bridge_iq(&self.client, iq, &self.results, JingleInput::Iq);
                Step::Quiet
            }
            JingleAction::ReadSocket { expected } => self.read_socket(expected),
            JingleAction::CloseSocket => {
                self.stop_reading();
                Step::Quiet
            }
            JingleAction::Write(data) => self.write(&data).await,
            JingleAction::Started { route, streamhost, offset, length: _ } => {
                self.started(route, streamhost, offset).await
            }
            JingleAction::Progress { bytes } => {
                self.progress.update(bytes);
                Step::Quiet
            }
            JingleAction::FellBack { reason } => {
                tracing::info!("the sender moved the transfer in-band: {reason}");
                Step::Quiet
            }
            JingleAction::Verify { sha256 } => {
                self.stop_reading();
                Step::Input(JingleInput::Verified(self.verify(sha256).await))
            }
            JingleAction::Done { route, .. } => Step::End(match self.placed.take() {
                Some(landed) => {
                    record(t, self.id, landed, route, &self.progress, &self.landing);
                    Ok(())
                }
                None => Err(Stop::fatal(FailReason::Protocol, "done before the file was checked")),
            }),
            JingleAction::Rejected { .. } => {
                let declined = Some((FailReason::Declined, "declined"));
                let _ = t.inner.store.set_state(self.id, TransferState::Rejected, declined);
                Step::End(Ok(()))
            }
            JingleAction::Failed { reason, error, resumable } => {
                Step::End(Err(Stop::Failed(Failure { reason, error, resumable })))
            }
            JingleAction::Slow { .. } => Step::Quiet,
            // A sender's actions (and the SOCKS5 ones, taken above).
            _ => Step::End(Err(Stop::fatal(FailReason::Protocol, "a sending step asked of a receiving session"))),
        }
    }
}

impl ReceiveDriver<'_, JingleInput> {
    /// Checks the received file against the offer's SHA-256 and `sha256` (the
    /// checksum), and names it: whether it is whole. What failed stays recorded for
    /// the end the machine then reports.
    async fn verify(&mut self, sha256: Option<String>) -> bool {
        let Some(p) = self.part.lock().await.take() else { return false };
        let offered = self.offered_sha256.as_deref();
        let mut sha: Vec<&str> = offered.into_iter().collect();
        sha.extend(sha256.as_deref().filter(|h| Some(*h) != offered));
        let checked = Checked { md5: self.md5.as_deref(), sha256: &sha, checksum: None };
        match place(p, &checked, &self.landing).await {
            Ok(landed) => {
                self.placed = Some(landed);
                true
            }
            Err(e) => {
                if let Stop::Failed(f) = &e {
                    tracing::warn!("the received file is not whole: {}", f.error);
                }
                false
            }
        }
    }
}

impl<I: ReceiveInput> ReceiveDriver<'_, I> {
    /// Whatever arrived stays on disk for a resume (of a run of several files: those
    /// that arrived whole, named and recorded).
    pub(super) async fn keep(&mut self) {
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
    pub(super) fn stop_reading(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
        self.bs.sock = None;
    }

    /// Reads the SOCKS5 bytestream into the `.part` file in the background.
    fn read_socket(&mut self, expected: u64) -> Step<I> {
        let Some(s) = self.bs.sock.take() else {
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
    async fn write(&mut self, data: &[u8]) -> Step<I> {
        let mut guard = self.part.lock().await;
        Step::Input(match guard.as_mut() {
            Some(p) => match p.write(data).await {
                Ok(()) => I::written(),
                Err(e) => write_failed(e),
            },
            None => I::write_failed("the file is closed".into()),
        })
    }

    /// The data starts to flow over `route` from `offset`: recorded; the `.part` file
    /// reopened there when the machine starts elsewhere (e.g. no range possible).
    async fn started(&mut self, route: Route, streamhost: Option<String>, offset: u64) -> Step<I> {
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
        let protocol = Some(self.protocol);
        self.t.record_started(self.id, super::Started { route, protocol, streamhost, offset });
        self.progress = self.progress.again(offset);
        Step::Quiet
    }
}

impl ReceiveDriver<'_, ReceiverInput> {
    /// Every byte is in: checked against every SHA-256 known (the offer's, the
    /// checksum's), then named.
    pub(super) async fn done(
        &mut self,
        route: Route,
        sha256: Option<String>,
        checksum: Option<Iq>,
    ) -> Result<(), Stop> {
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
    let result = place(part, &checked, landing).await;
    // The sender asked whether its file arrived intact: told before anything here
    // announces the end (a `skiff receive --count` stops right after it).
    if let Some(request) = &checked.checksum {
        let answer = match &result {
            Ok(_) => checksum_matches(request),
            Err(_) => checksum_differs(request),
        };
        let _ = t.client().send(answer);
    }
    record(t, id, result?, route, progress, landing);
    Ok(())
}

/// Checks the received stream and puts it in its place (a batch's run: its files);
/// with the bytes its part file held.
async fn place(part: Sink, checked: &Checked<'_>, landing: &Landing) -> Result<(Landed, u64), Stop> {
    let transferred = part.written();
    let landed = match (part, landing) {
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
    }?;
    Ok((landed, transferred))
}

/// Records and announces a stream in its place.
fn record(t: &Transfers, id: i64, landed: (Landed, u64), route: Route, progress: &Progress, landing: &Landing) {
    let (landed, written) = landed;
    let transferred = written.saturating_sub(progress.start_bytes);
    match landed {
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
}

/// A verified stream, in its place.
pub(super) enum Landed {
    File(files::Finished),
    Batch(Vec<super::batch::PlacedFile>),
}

/// Reads exactly `expected` bytes of the bytestream into the part file, then checks
/// that nothing more follows (a lie about the size).
/// A failed write to the part file as the machine's input: a full disk keeps the data
/// for a resume, anything else ends the transfer.
fn write_failed<I: ReceiveInput>(e: std::io::Error) -> I {
    match e.kind() {
        std::io::ErrorKind::StorageFull => I::out_of_space(e.to_string()),
        _ => I::write_failed(e.to_string()),
    }
}

async fn read_socket<I: ReceiveInput>(
    mut sock: TcpStream,
    part: &Mutex<Option<Sink>>,
    expected: u64,
    progress: &mut Progress,
) -> I {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < expected {
        let want = buf.len().min(usize::try_from(expected - got).unwrap_or(usize::MAX));
        let n = match tokio::time::timeout(IDLE_TIMEOUT, sock.read(&mut buf[..want])).await {
            Ok(Ok(0)) => {
                return I::socket_failed(format!("the sender closed the stream after {got} of {expected} bytes"))
            }
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return I::socket_failed(format!("the connection broke after {got} bytes: {e}")),
            Err(_) => return I::socket_failed(format!("no data for {} seconds", IDLE_TIMEOUT.as_secs())),
        };
        let mut guard = part.lock().await;
        let Some(p) = guard.as_mut() else { return I::socket_failed("the file is closed".into()) };
        if let Err(e) = p.write(&buf[..n]).await {
            return write_failed(e);
        }
        progress.update(p.written());
        got += n as u64;
    }
    match tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => I::overrun(),
        _ => I::socket_done(),
    }
}
