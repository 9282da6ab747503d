//! What the transfer drivers share: each direction has a small driver (outgoing's
//! `SendDriver`, receive.rs's `ReceiveDriver`, each for SI's machine and a Jingle
//! session) with one method per action of its sans-IO machine; [`run`] is the loop
//! around them (actions out; their results, the clock, the cancel switch, routed IQs
//! and background results in).

use std::collections::VecDeque;
use std::time::Duration;

use skiff_proto::stanza::{Condition, Iq, IqKind, StanzaError};
use skiff_proto::transfer::{
    Failure, Instant, Receiver, ReceiverAction, ReceiverInput, Sender, SenderAction, SenderInput,
};
use tokio::sync::mpsc;

use super::CancelGuard;
use crate::session::{Client, ClientError};

/// How an attempt ended, short of success.
pub(super) enum Stop {
    /// The receiver declined, saying this.
    Declined(String),
    Failed(Failure),
}

impl Stop {
    /// A failure after which what arrived is kept, to continue from.
    pub(super) fn resumable(reason: skiff_proto::transfer::FailReason, error: impl Into<String>) -> Stop {
        Stop::Failed(Failure::new(reason, error, true))
    }

    /// A failure that a retry starts over from.
    pub(super) fn fatal(reason: skiff_proto::transfer::FailReason, error: impl Into<String>) -> Stop {
        Stop::Failed(Failure::new(reason, error, false))
    }
}

/// What carrying out one action comes to.
pub(super) enum Step<I> {
    /// Nothing to tell the machine (yet: a background task may later).
    Quiet,
    /// The result, for the machine.
    Input(I),
    /// The transfer is over.
    End(Result<(), Stop>),
}

/// A sans-IO transfer machine as [`run`] drives it.
pub(super) trait Machine {
    type Input: Send + 'static;
    type Action;
    fn handle(&mut self, input: Self::Input, now: Instant) -> Vec<Self::Action>;
    fn poll_timeout(&self) -> Option<Instant>;
    /// The input for "a timer of yours is due".
    fn tick() -> Self::Input;
    /// The input for "the user cancelled".
    fn cancel() -> Self::Input;
    /// The input for an IQ of this stream, request or answer.
    fn iq(iq: Iq) -> Self::Input;
    /// A second stream id whose IQs are this machine's too (Jingle's in-band
    /// transport), once it is known.
    fn extra_sid(&self) -> Option<&str> {
        None
    }
}

impl Machine for Sender {
    type Input = SenderInput;
    type Action = SenderAction;
    fn handle(&mut self, input: SenderInput, now: Instant) -> Vec<SenderAction> {
        Sender::handle(self, input, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Sender::poll_timeout(self)
    }
    fn tick() -> SenderInput {
        SenderInput::Tick
    }
    fn cancel() -> SenderInput {
        SenderInput::Cancel
    }
    fn iq(iq: Iq) -> SenderInput {
        SenderInput::Iq(iq)
    }
}

impl Machine for Receiver {
    type Input = ReceiverInput;
    type Action = ReceiverAction;
    fn handle(&mut self, input: ReceiverInput, now: Instant) -> Vec<ReceiverAction> {
        Receiver::handle(self, input, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Receiver::poll_timeout(self)
    }
    fn tick() -> ReceiverInput {
        ReceiverInput::Tick
    }
    fn cancel() -> ReceiverInput {
        ReceiverInput::Cancel
    }
    fn iq(iq: Iq) -> ReceiverInput {
        ReceiverInput::Iq(iq)
    }
}

impl Machine for skiff_proto::jingle::JingleSession {
    type Input = skiff_proto::jingle::JingleInput;
    type Action = skiff_proto::jingle::JingleAction;
    fn handle(&mut self, input: Self::Input, now: Instant) -> Vec<Self::Action> {
        skiff_proto::jingle::JingleSession::handle(self, input, now)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        skiff_proto::jingle::JingleSession::poll_timeout(self)
    }
    fn tick() -> Self::Input {
        Self::Input::Tick
    }
    fn cancel() -> Self::Input {
        Self::Input::Cancel
    }
    fn iq(iq: Iq) -> Self::Input {
        Self::Input::Iq(iq)
    }
    fn extra_sid(&self) -> Option<&str> {
        self.ibb_sid()
    }
}

/// The I/O side of one machine: carries out its actions.
pub(super) trait Driver<M: Machine> {
    async fn act(&mut self, action: M::Action, cancel: &mut CancelGuard) -> Step<M::Input>;
}

/// Where a driver's inputs come from besides its own results: background tasks (IQ
/// answers, socket copies) through `results`, and the IQs routed to this stream.
pub(super) struct Inputs<I> {
    pub(super) tx: mpsc::UnboundedSender<I>,
    results: mpsc::UnboundedReceiver<I>,
}

impl<I> Inputs<I> {
    pub(super) fn new() -> Inputs<I> {
        let (tx, results) = mpsc::unbounded_channel();
        Inputs { tx, results }
    }
}

/// Drives machine `m` from its `first` input until its driver `d` ends the transfer.
pub(super) async fn run<M: Machine, D: Driver<M>>(
    m: &mut M,
    d: &mut D,
    first: M::Input,
    clock: &Clock,
    cancel: &mut CancelGuard,
    inputs: &mut Inputs<M::Input>,
    mut routed: Option<&mut super::running::RouteGuard>,
) -> Result<(), Stop> {
    let mut actions: VecDeque<M::Action> = m.handle(first, clock.now()).into();
    loop {
        while let Some(action) = actions.pop_front() {
            match d.act(action, cancel).await {
                Step::Quiet => {}
                Step::Input(input) => actions.extend(m.handle(input, clock.now())),
                Step::End(result) => return result,
            }
        }
        if let (Some(r), Some(sid)) = (routed.as_deref_mut(), m.extra_sid()) {
            r.also(sid);
        }
        let routed_iq = async {
            match routed.as_deref_mut() {
                Some(r) => r.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let input = tokio::select! {
            Some(iq) = routed_iq => M::iq(iq),
            Some(input) = inputs.results.recv() => input,
            _ = clock.sleep_until(m.poll_timeout()) => M::tick(),
            _ = cancel.cancelled() => M::cancel(),
        };
        actions.extend(m.handle(input, clock.now()));
    }
}

/// The machines' clock: time since the transfer began.
pub(super) struct Clock(std::time::Instant);

impl Clock {
    pub(super) fn new() -> Clock {
        Clock(std::time::Instant::now())
    }

    pub(super) fn now(&self) -> Duration {
        self.0.elapsed()
    }

    /// Sleeps until the machine's deadline (forever when it has none).
    pub(super) async fn sleep_until(&self, deadline: Option<Duration>) {
        match deadline {
            Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(self.0 + d)).await,
            None => std::future::pending().await,
        }
    }
}

/// Sends a machine's IQ. A request's answer comes back as an input carrying the
/// machine's own id (the session numbers requests itself); the machine's timers, not
/// the session's, decide when to give up. Answers (results, errors) go out as they are.
pub(super) fn bridge_iq<I: Send + 'static>(
    client: &Client,
    iq: Iq,
    inputs: &mpsc::UnboundedSender<I>,
    wrap: fn(Iq) -> I,
) {
    if !iq.is_request() {
        let _ = client.send(iq);
        return;
    }
    let (id, peer) = (iq.id.clone(), iq.to.clone());
    let answer = client.start_iq(iq, Some(Duration::from_secs(24 * 3600)));
    let inputs = inputs.clone();
    tokio::spawn(async move {
        let result = match answer {
            Ok(rx) => rx.await.unwrap_or(Err(ClientError::Stopped)),
            Err(e) => Err(e),
        };
        let kind = match result {
            Ok(payload) => IqKind::Result(payload),
            Err(ClientError::Stanza { error, .. }) => IqKind::Error(*error),
            Err(e) => IqKind::Error(StanzaError::new(Condition::RecipientUnavailable).with_text(e.to_string())),
        };
        let _ = inputs.send(wrap(Iq { id, from: peer, to: None, kind }));
    });
}
