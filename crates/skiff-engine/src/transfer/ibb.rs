//! XEP-0047 in-band bytestreams on a session: the largest block size the peer
//! accepts, a window of blocks in flight, wrapping sequence numbers; and the
//! receiving side, strict about order and size.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use skiff_proto::ibb::{self, Close, Data, IbbPayload, Open, SeqCheck, SeqCounter, SeqError, StanzaKind};
use skiff_proto::jid::Jid;
use skiff_proto::stanza::{Condition, Iq, IqKind, StanzaError};
use skiff_proto::xml::Element;

use super::outgoing::Failure;
use super::{Progress, RouteGuard, Transfers};
use crate::files::{PartFile, SourceFile};
use crate::session::ClientError;

/// Block sizes tried in turn when the receiver answers `resource-constraint`.
const STEP_DOWN: &[u16] = &[65535, 32768, 16384, 8192, 4096, 2048, 1024];

/// How long a receiver waits for the next in-band block.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Block size for peers that are not Skiff: the XEP's recommendation. Some clients
/// (slixmpp) refuse more and cannot take a retry on the same stream.
pub const INTEROP_BLOCK_SIZE: u16 = 4096;

/// Sends `length` bytes of `path` from `offset` in-band to `to`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    t: &Transfers,
    to: &Jid,
    skiff_peer: bool,
    sid: &str,
    path: &Path,
    offset: u64,
    length: u64,
    progress: &mut Progress,
) -> Result<(), Failure> {
    let client = t.client();
    let cfg = &t.inner.cfg;
    let mut block_size = None;
    let largest = if skiff_peer { cfg.ibb_block_size } else { cfg.ibb_block_size.min(INTEROP_BLOCK_SIZE) };
    for &size in STEP_DOWN.iter().filter(|&&s| s <= largest.max(1024)) {
        let open = Open { sid: sid.to_owned(), block_size: size, stanza: StanzaKind::Iq };
        match client.set(Some(to.clone()), Element::from(&open)).await {
            Ok(_) => {
                block_size = Some(size);
                break;
            }
            Err(ClientError::Stanza { error, .. }) if error.condition == Condition::ResourceConstraint => continue,
            Err(e) => return Err(Failure::resumable(format!("the receiver refused the in-band stream: {e}"))),
        }
    }
    let block_size =
        block_size.ok_or_else(|| Failure::fatal("the receiver accepts no in-band block size Skiff can use"))?;
    tracing::info!("in-band stream {sid} open with {block_size}-byte blocks, window {}", cfg.ibb_window);
    let mut src = SourceFile::open(path, offset)
        .await
        .map_err(|e| Failure::fatal(format!("cannot read {}: {e}", path.display())))?;
    let mut seq = SeqCounter::new();
    let mut window = VecDeque::new();
    let mut buf = vec![0u8; usize::from(block_size)];
    let (mut left, mut sent, mut acked) = (length, offset, offset);
    let mut sizes = VecDeque::new();
    let broke = |e: ClientError, at: u64| Failure::resumable(format!("the in-band stream broke after {at} bytes: {e}"));
    let started = std::time::Instant::now();
    let mut slow_told = false;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = src
            .read_block(&mut buf[..want])
            .await
            .map_err(|e| Failure::fatal(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            return Err(Failure::fatal(format!("{} got shorter while it was being sent", path.display())));
        }
        let data = Data { sid: sid.to_owned(), seq: seq.next(), data: buf[..n].to_vec() };
        let reply =
            client.start_iq(Iq::set("", Some(to.clone()), Element::from(&data)), None).map_err(|e| broke(e, acked))?;
        window.push_back(reply);
        sizes.push_back(n as u64);
        left -= n as u64;
        sent += n as u64;
        if window.len() >= cfg.ibb_window.max(1) {
            wait_ack(&mut window, &mut sizes, &mut acked).await.map_err(|e| broke(e, acked))?;
            progress.update(acked);
            slow_told = slow_told || tell_if_throttled(t, progress.id, started.elapsed(), acked - offset);
        }
    }
    while !window.is_empty() {
        wait_ack(&mut window, &mut sizes, &mut acked).await.map_err(|e| broke(e, acked))?;
        progress.update(acked);
        slow_told = slow_told || tell_if_throttled(t, progress.id, started.elapsed(), acked - offset);
    }
    debug_assert_eq!(sent, acked);
    let close = Close { sid: sid.to_owned() };
    client.set(Some(to.clone()), Element::from(&close)).await.map_err(|e| broke(e, acked))?;
    Ok(())
}

/// Below this rate after [`SLOW_AFTER`], in-band data is throttled by the server.
pub const SLOW_RATE: u64 = 64 * 1024;
pub const SLOW_AFTER: Duration = Duration::from_secs(5);

/// Tells the user once why in-band data crawls; true when told.
fn tell_if_throttled(t: &Transfers, id: i64, elapsed: Duration, bytes: u64) -> bool {
    if elapsed < SLOW_AFTER {
        return false;
    }
    let rate = (bytes as f64 / elapsed.as_secs_f64()) as u64;
    if rate >= SLOW_RATE {
        return true; // fast enough: no need to look again
    }
    t.emit(crate::event::Event::TransferNotice {
        id,
        message: format!(
            "in-band data moves at only {} KB/s: the server limits how fast this connection may send \
             (ejabberd's default allows about 3 KB/s). A SOCKS5 route (direct or proxy) or HTTP upload avoids the limit.",
            rate / 1000
        ),
    });
    true
}

async fn wait_ack(
    window: &mut VecDeque<crate::session::IqReply>,
    sizes: &mut VecDeque<u64>,
    acked: &mut u64,
) -> Result<(), ClientError> {
    let Some(reply) = window.pop_front() else { return Ok(()) };
    reply.await.map_err(|_| ClientError::Stopped)??;
    *acked += sizes.pop_front().unwrap_or(0);
    Ok(())
}

/// Receives an in-band stream that `open` starts, into `part`.
pub(super) async fn receive(
    t: &Transfers,
    open: Iq,
    route: &mut RouteGuard,
    part: &mut PartFile,
    progress: &mut Progress,
) -> Result<(), Failure> {
    let client = t.client().clone();
    let block_size = match open.request_payload().map(Open::try_from) {
        Some(Ok(o)) if o.stanza == StanzaKind::Iq => o.block_size,
        Some(Ok(_)) => {
            let _ = client.send(open.error_for(
                StanzaError::new(Condition::FeatureNotImplemented).with_text("only stanza='iq' is supported"),
            ));
            return Err(Failure::resumable("the sender wanted in-band data in messages, which Skiff does not take"));
        }
        _ => {
            let _ = client.send(open.error_for(StanzaError::new(Condition::BadRequest)));
            return Err(Failure::resumable("the sender's in-band open was malformed"));
        }
    };
    let _ = client.send(open.result_for(None));
    let mut seq = SeqCheck::new();
    loop {
        let iq = match tokio::time::timeout(IDLE_TIMEOUT, route.rx.recv()).await {
            Ok(Some(iq)) => iq,
            Ok(None) => return Err(Failure::resumable("stopped")),
            Err(_) => {
                return Err(Failure::resumable(format!("no in-band data for {} seconds", IDLE_TIMEOUT.as_secs())))
            }
        };
        let payload = match (&iq.kind, iq.request_payload().map(IbbPayload::try_from)) {
            (IqKind::Set(_), Some(Ok(p))) => p,
            _ => {
                let _ = client.send(iq.error_for(StanzaError::new(Condition::BadRequest)));
                continue;
            }
        };
        match payload {
            IbbPayload::Data(d) => {
                if let Err(e) = seq.check(d.seq) {
                    let _ = client
                        .send(iq.error_for(StanzaError::new(Condition::UnexpectedRequest).with_text(e.to_string())));
                    if let SeqError::Reused(_) = e {
                        continue;
                    }
                    return Err(Failure::resumable(format!(
                        "{e} (peers that do not wrap sequence numbers after block 65535 fail here; larger blocks avoid it)"
                    )));
                }
                if d.data.len() > ibb::max_data_len(block_size) {
                    let _ = client.send(iq.error_for(
                        StanzaError::new(Condition::BadRequest).with_text("block larger than the agreed block-size"),
                    ));
                    return Err(Failure::resumable(format!(
                        "the sender sent a {}-byte block over the agreed {block_size}",
                        d.data.len()
                    )));
                }
                if let Err(e) = part.write(&d.data).await {
                    let _ =
                        client.send(iq.error_for(StanzaError::new(Condition::NotAcceptable).with_text(e.to_string())));
                    return Err(Failure::fatal(format!("cannot store the data: {e}")));
                }
                let _ = client.send(iq.result_for(None));
                progress.update(part.written());
            }
            IbbPayload::Close(_) => {
                let _ = client.send(iq.result_for(None));
                return Ok(());
            }
            IbbPayload::Open(_) => {
                let _ =
                    client.send(iq.error_for(
                        StanzaError::new(Condition::UnexpectedRequest).with_text("the stream is already open"),
                    ));
            }
        }
    }
}
