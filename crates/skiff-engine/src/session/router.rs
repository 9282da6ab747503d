//! Stanza routing of one session: IQ answers to their waiting requests, requests to
//! their handlers, the roster, presence, messages, stream management, keepalive.

use super::*;

/// Who waits for an IQ answer.
pub(super) enum Waiter {
    External(oneshot::Sender<Result<Option<Element>, ClientError>>),
    Roster,
    Ping,
    /// A disco#info query for a contact's entity capabilities (XEP-0115).
    Caps {
        from: Jid,
        node: String,
    },
}

/// Stanza routing of one connected session.
pub(super) struct Router {
    pub(super) own: Jid,
    /// Our requests waiting for answers.
    pub(super) pending: IqTracker<Waiter, Instant>,
    pub(super) inner: Arc<Inner>,
    /// The current connection's writer; `None` while an interrupted session waits
    /// for resumption (stanzas are then only kept by stream management).
    pub(super) out: Option<mpsc::UnboundedSender<Out>>,
    pub(super) ev: broadcast::Sender<Event>,
    pub(super) iq_timeout: Duration,
    pub(super) writer_gone: bool,
    /// XEP-0198 counters and the copies of unacknowledged stanzas.
    pub(super) sm: StreamManagement,
    /// When the session was last resumed.
    pub(super) resumed_at: Option<Instant>,
}

impl Router {
    /// Sends a stanza (counted and kept by stream management until acknowledged).
    pub(super) fn send(&mut self, el: Element) {
        self.sm.sent(&el);
        self.write(Out::Element(el));
        if self.out.is_some() {
            if let Some(r) = self.sm.request_ack(false) {
                self.write(Out::Element(r));
            }
        }
    }

    /// Writes on the current connection, if any (nothing is counted).
    pub(super) fn write(&mut self, out: Out) {
        if let Some(tx) = &self.out {
            if tx.send(out).is_err() {
                self.writer_gone = true;
            }
        }
    }

    pub(super) fn close(&mut self) {
        self.write(Out::Raw(stream::CLOSE_STREAM.to_owned()));
    }

    /// The session is over: waiting requests fail with `Disconnected`, contacts'
    /// presence is forgotten.
    pub(super) fn end(&mut self) {
        self.fail_all();
        self.clear_presence();
    }

    /// An interrupted session that will not be resumed: what it sent and the server
    /// never handled (after `lost_after`, when the server said) is counted in the log,
    /// and the session ends.
    pub(super) fn abandon(&mut self, lost_after: Option<u32>) {
        let lost = self.sm.resume_failed(lost_after);
        if !lost.is_empty() {
            tracing::info!("{} stanza(s) sent in the interrupted session never reached the server", lost.len());
        }
        self.end();
    }

    /// Ends the stream over a stream management error of the server's (XEP-0198 §4).
    pub(super) fn stream_error(&mut self, e: &sm::SmError) {
        let (condition, child) = e.stream_error();
        let child = child.map(|c| c.to_xml()).unwrap_or_default();
        let text = stream::stream_error(condition, Some(&e.to_string()));
        // RFC 6120 4.9.4: the application-specific condition comes last.
        let with_child = text.replacen("</stream:error>", &format!("{child}</stream:error>"), 1);
        self.write(Out::Raw(with_child));
        self.close();
        self.sm.reset();
    }

    /// An element of the stream management namespace.
    pub(super) fn stream_management(&mut self, el: &Element) -> Option<End> {
        match self.sm.handle(el) {
            Ok(outputs) => {
                for output in outputs {
                    match output {
                        SmOutput::Send(a) => self.write(Out::Element(a)),
                        SmOutput::Enabled { resumable, max_secs } => tracing::info!(
                            "stream management is on (resumable: {resumable}, for {} s)",
                            max_secs.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
                        ),
                        SmOutput::NotEnabled { condition } => tracing::info!(
                            "the server did not enable stream management ({})",
                            condition.as_deref().unwrap_or("no reason given")
                        ),
                    }
                }
                None
            }
            Err(e) => {
                tracing::warn!("stream management: {e}");
                self.stream_error(&e);
                Some(End::Dropped(format!("the server broke stream management ({e}); the stream was closed")))
            }
        }
    }

    pub(super) fn emit(&self, e: Event) {
        let _ = self.ev.send(e);
    }

    pub(super) fn request(&mut self, iq: Iq, waiter: Waiter) {
        self.request_within(iq, waiter, None)
    }

    pub(super) fn request_within(&mut self, mut iq: Iq, waiter: Waiter, timeout: Option<Duration>) {
        let now = Instant::now();
        self.pending.track(&mut iq, waiter, now, now + timeout.unwrap_or(self.iq_timeout));
        self.send(iq.into());
    }

    /// Who a request waiting for an answer went to, in words.
    pub(super) fn peer_of(&self, p: &Pending<Waiter, Instant>) -> String {
        p.to.as_ref().map(Jid::to_string).unwrap_or_else(|| self.own.domain().to_owned())
    }

    /// Processes every complete event in the parser.
    pub(super) fn drain(&mut self, parser: &mut stream::StreamParser) -> Option<End> {
        loop {
            match parser.next_event() {
                Ok(None) => return None,
                Ok(Some(StreamEvent::Stanza(el))) => {
                    tracing::debug!(target: "skiff::xml", "RECV {}", connection::redacted(&el));
                    if el.ns == sm::NS {
                        if let Some(end) = self.stream_management(&el) {
                            return Some(end);
                        }
                        continue;
                    }
                    if let Some(err) = StreamError::from_element(&el) {
                        let message = err.to_string();
                        if err.condition == "conflict" {
                            return Some(End::Fatal { code: FatalCode::Conflict, message });
                        }
                        return Some(End::Dropped(message));
                    }
                    if sm::is_stanza(&el) {
                        self.sm.received();
                    }
                    self.stanza(el);
                }
                Ok(Some(StreamEvent::Dropped(d))) => {
                    if sm::is_stanza_name(&d.name) {
                        self.sm.received();
                    }
                    self.dropped(d)
                }
                Ok(Some(StreamEvent::Close)) => {
                    self.close();
                    return Some(End::Dropped("the server closed the stream".into()));
                }
                Ok(Some(StreamEvent::Open(_))) => {
                    return Some(End::Dropped("the server restarted the stream unexpectedly".into()));
                }
                Err(e) => {
                    self.write(Out::Raw(stream::stream_error(e.condition(), Some(&e.to_string()))));
                    self.close();
                    return Some(End::Dropped(format!("the server sent bad data ({e}); the stream was closed")));
                }
            }
        }
    }

    /// A stanza over the parser's structural limits (anyone can send one): a request is
    /// answered with `policy-violation`, an answer we wait for fails the request, the
    /// rest is only logged. The session goes on.
    pub(super) fn dropped(&mut self, d: stream::DroppedStanza) {
        let from = d.from.as_deref().and_then(|f| f.parse::<Jid>().ok());
        let who = d.from.as_deref().unwrap_or("the server");
        tracing::info!("dropped a <{}> from {who}: {}", if d.name.is_empty() { "?" } else { &d.name }, d.limit);
        let (Some(id), "iq") = (d.id, d.name.as_str()) else { return };
        match d.kind.as_deref() {
            Some("get" | "set") => {
                let err =
                    StanzaError::new(Condition::PolicyViolation).with_text(format!("the request has {}", d.limit));
                self.send(Iq { id, from: None, to: from, kind: IqKind::Error(err) }.into());
            }
            Some("result" | "error") => {
                if let Some(pending) = self.pending.answer(&self.own, from.as_ref(), &id) {
                    let err = StanzaError::new(Condition::PolicyViolation)
                        .with_text(format!("the answer had {} and was dropped", d.limit));
                    let result = Err(ClientError::Stanza { peer: self.peer_of(&pending), error: Box::new(err) });
                    match pending.waiter {
                        Waiter::External(reply) => {
                            let _ = reply.send(result);
                        }
                        Waiter::Roster => tracing::warn!("the roster answer was dropped: {}", d.limit),
                        Waiter::Ping => {}
                        Waiter::Caps { from, node } => self.caps_answer(&from, &node, None),
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn stanza(&mut self, el: Element) {
        // Keep what is needed to answer a request we cannot parse.
        let request_info = (el.name == "iq" && matches!(el.attr("type"), Some("get" | "set")))
            .then(|| (el.attr("id").map(str::to_owned), el.attr("from").and_then(|f| f.parse::<Jid>().ok())));
        match Stanza::try_from(el) {
            Ok(Stanza::Iq(iq)) => self.iq(iq),
            Ok(Stanza::Presence(p)) => self.presence(p),
            Ok(Stanza::Message(m)) => self.message(m),
            Err(e) => {
                tracing::info!("ignoring a stanza that does not parse: {e}");
                if let Some((Some(id), from)) = request_info {
                    let err = StanzaError::new(Condition::BadRequest).with_text(e.to_string());
                    self.send(Iq { id, from: None, to: from, kind: IqKind::Error(err) }.into());
                }
            }
        }
    }

    pub(super) fn iq(&mut self, iq: Iq) {
        let Some(inbound) = Inbound::of(&iq, &self.own) else { return self.iq_answer(iq) };
        match inbound {
            Inbound::RosterPush => self.roster_push(iq),
            Inbound::SpoofedRosterPush => {
                let r = iq.error_for(StanzaError::new(Condition::ServiceUnavailable));
                self.send(r.into());
            }
            Inbound::Ping => {
                let r = iq.result_for(None);
                self.send(r.into());
            }
            Inbound::DiscoInfo { node } => {
                let answer = self.disco_info(node);
                let r = iq.result_for(Some(answer));
                self.send(r.into());
            }
            Inbound::Version => {
                let version = Element::new("query", "jabber:iq:version")
                    .with_child(Element::new("name", "jabber:iq:version").with_text("Skiff"))
                    .with_child(Element::new("version", "jabber:iq:version").with_text(env!("CARGO_PKG_VERSION")));
                let r = iq.result_for(Some(version));
                self.send(r.into());
            }
            Inbound::Handler { name, ns } => {
                let key = (name, ns);
                let handler = self.inner.shared.lock().unwrap().handlers.get(&key).cloned();
                let unhandled = match handler {
                    Some(tx) => match tx.try_send(iq) {
                        Ok(()) => return,
                        Err(mpsc::error::TrySendError::Full(iq)) => (iq, Condition::ResourceConstraint),
                        Err(mpsc::error::TrySendError::Closed(iq)) => {
                            self.inner.shared.lock().unwrap().handlers.remove(&key);
                            (iq, Condition::ServiceUnavailable)
                        }
                    },
                    None => (iq, Condition::ServiceUnavailable),
                };
                let (iq, condition) = unhandled;
                let r = iq.error_for(StanzaError::new(condition));
                self.send(r.into());
            }
        }
    }

    /// An answer: to its waiter, when it answers one of our requests.
    pub(super) fn iq_answer(&mut self, iq: Iq) {
        let Some(pending) = self.pending.answer(&self.own, iq.from.as_ref(), &iq.id) else {
            tracing::debug!("an answer nobody waits for: {} from {:?}", iq.id, iq.from);
            return;
        };
        let result = match iq.kind {
            IqKind::Result(payload) => Ok(payload),
            IqKind::Error(error) => Err(ClientError::Stanza { peer: self.peer_of(&pending), error: Box::new(error) }),
            IqKind::Get(_) | IqKind::Set(_) => return,
        };
        match pending.waiter {
            Waiter::External(reply) => {
                let _ = reply.send(result);
            }
            Waiter::Roster => match result {
                Ok(Some(payload)) => self.roster_result(&payload),
                Ok(None) => self.emit(Event::Roster { contacts: Vec::new() }),
                Err(e) => tracing::warn!("roster fetch failed: {e}"),
            },
            Waiter::Ping => {}
            Waiter::Caps { from, node } => self.caps_answer(&from, &node, result.ok().flatten()),
        }
    }

    /// A contact's disco#info for its caps (or `None`: no usable answer): kept when
    /// it verifies; then the next query the cache wants.
    fn caps_answer(&mut self, from: &Jid, node: &str, answer: Option<Element>) {
        let next = {
            let mut sh = self.inner.shared.lock().unwrap();
            match answer.filter(|a| a.is("query", ns::DISCO_INFO)) {
                Some(query) => {
                    sh.caps.on_disco_element(from, &query);
                }
                None => sh.caps.on_disco_error(from, Some(node)),
            }
            sh.caps.poll_query()
        };
        if let Some(q) = next {
            self.ask_caps(q);
        }
    }

    /// Asks for the disco#info behind a contact's caps.
    fn ask_caps(&mut self, q: skiff_proto::caps::Query) {
        let iq = Iq::get("", Some(q.to.clone()), Element::from(q.payload()));
        self.request(iq, Waiter::Caps { from: q.to, node: q.node });
    }

    pub(super) fn disco_info(&self, node: Option<String>) -> Element {
        let features = self.inner.shared.lock().unwrap().features.clone();
        super::our_info(&features, node).into()
    }

    /// Our available presence, with our entity capabilities.
    pub(super) fn our_presence(&self) -> skiff_proto::stanza::Presence {
        let sh = self.inner.shared.lock().unwrap();
        super::available(&sh.features, sh.priority)
    }

    pub(super) fn roster_result(&mut self, payload: &Element) {
        match Roster::try_from(payload) {
            Ok(roster) => {
                let contacts = {
                    let mut sh = self.inner.shared.lock().unwrap();
                    sh.roster = roster.items.into_iter().map(|i| (i.jid.clone(), i)).collect();
                    sh.roster.values().map(contact).collect()
                };
                self.emit(Event::Roster { contacts });
            }
            Err(e) => tracing::warn!("the server sent a roster that does not parse: {e}"),
        }
    }

    /// A roster push from our own account ([`Inbound::RosterPush`]).
    pub(super) fn roster_push(&mut self, iq: Iq) {
        let roster = match iq.request_payload().map(Roster::try_from) {
            Some(Ok(r)) if r.items.len() == 1 => r,
            _ => {
                let r = iq.error_for(
                    StanzaError::new(Condition::BadRequest).with_text("a roster push holds exactly one item"),
                );
                return self.send(r.into());
            }
        };
        let r = iq.result_for(None);
        self.send(r.into());
        for item in roster.items {
            let mut sh = self.inner.shared.lock().unwrap();
            if item.subscription == Subscription::Remove {
                sh.roster.remove(&item.jid);
                drop(sh);
                self.emit(Event::ContactRemoved { jid: item.jid.to_string() });
            } else {
                let c = contact(&item);
                sh.roster.insert(item.jid.clone(), item);
                drop(sh);
                self.emit(Event::ContactChanged { contact: c });
            }
        }
    }

    pub(super) fn presence(&mut self, p: Presence) {
        let Some(from) = p.from.clone() else { return };
        if from == self.own {
            return;
        }
        // Entity capabilities: what the client takes, learnt once per version.
        if matches!(p.kind, PresenceType::Available | PresenceType::Unavailable) && from.resource().is_some() {
            let caps = skiff_proto::caps::Caps::find(&p.payloads);
            let available = p.kind == PresenceType::Available;
            let query = self.inner.shared.lock().unwrap().caps.on_presence(&from, caps.as_ref(), available);
            if let Some(q) = query {
                self.ask_caps(q);
            }
        }
        let bare = from.bare();
        let resource = from.resource().unwrap_or_default().to_owned();
        match p.kind {
            PresenceType::Available => {
                let rp = ResourcePresence {
                    resource: resource.clone(),
                    show: p.show.into(),
                    status: p.status.clone(),
                    priority: p.priority,
                };
                self.inner
                    .shared
                    .lock()
                    .unwrap()
                    .presence
                    .entry(bare.clone())
                    .or_default()
                    .insert(resource.clone(), rp.clone());
                self.emit(Event::Presence {
                    jid: bare.to_string(),
                    resource,
                    available: true,
                    show: rp.show,
                    status: rp.status,
                    priority: rp.priority,
                });
            }
            PresenceType::Unavailable => {
                {
                    let mut sh = self.inner.shared.lock().unwrap();
                    if let Some(m) = sh.presence.get_mut(&bare) {
                        if resource.is_empty() {
                            m.clear();
                        } else {
                            m.remove(&resource);
                        }
                        if m.is_empty() {
                            sh.presence.remove(&bare);
                        }
                    }
                }
                self.emit(Event::Presence {
                    jid: bare.to_string(),
                    resource,
                    available: false,
                    show: Show::Unavailable,
                    status: p.status,
                    priority: 0,
                });
            }
            PresenceType::Subscribe => self.emit(Event::SubscriptionRequest { from: bare.to_string() }),
            other => tracing::debug!("presence {other:?} from {from}"),
        }
    }

    pub(super) fn message(&mut self, m: Message) {
        let tx = self.inner.shared.lock().unwrap().messages.clone();
        match tx {
            Some(tx) if m.kind != "error" => {
                if let Err(e) = tx.try_send(m) {
                    tracing::warn!("a message was dropped: {e}");
                }
            }
            _ => tracing::debug!("message from {:?} ignored", m.from),
        }
    }

    /// Once a second: expire requests, keep the line alive, ask for an
    /// acknowledgement of what is still unacknowledged.
    pub(super) fn tick(&mut self, last_rx: Instant, keepalive: Duration) -> Option<End> {
        if let Some(end) = self.expire() {
            return Some(end);
        }
        if self.sm.is_unconfirmed() && self.resumed_at.is_some_and(|t| t.elapsed() >= RESUME_CONFIRM) {
            // Not resumed again (the resumption is unconfirmed): a new session follows.
            self.close();
            return Some(End::Dropped(format!(
                "the server resumed the session but acknowledged nothing for {} s; starting a new session",
                RESUME_CONFIRM.as_secs()
            )));
        }
        if let Some(r) = self.sm.request_ack(true) {
            self.write(Out::Element(r));
        }
        let ping_pending = self.pending.any(|w| matches!(w, Waiter::Ping));
        if Instant::now().duration_since(last_rx) >= keepalive && !ping_pending {
            let server = Some(self.own.domain_jid());
            self.request(Iq::get("", server, skiff_proto::ping::ping()), Waiter::Ping);
        }
        None
    }

    /// Fails requests past their deadline (or whose waiter gave up); an unanswered
    /// ping means the connection is dead.
    pub(super) fn expire(&mut self) -> Option<End> {
        let expired = self.pending.expire(Instant::now(), |w| matches!(w, Waiter::External(tx) if tx.is_closed()));
        for p in expired {
            let secs = self.iq_timeout.as_secs();
            let peer = self.peer_of(&p);
            match p.waiter {
                Waiter::External(tx) => {
                    let secs = (p.deadline - p.started).as_secs();
                    let _ = tx.send(Err(ClientError::Timeout { peer, secs }));
                }
                Waiter::Ping => {
                    return Some(End::Dropped(format!("the server did not answer a ping within {secs} seconds")))
                }
                Waiter::Roster => tracing::warn!("the server did not send the roster"),
                Waiter::Caps { from, node } => {
                    let next = {
                        let mut sh = self.inner.shared.lock().unwrap();
                        sh.caps.on_disco_error(&from, Some(&node));
                        sh.caps.poll_query()
                    };
                    if let Some(q) = next {
                        self.ask_caps(q);
                    }
                }
            }
        }
        None
    }

    pub(super) fn fail_all(&mut self) {
        for p in self.pending.drain() {
            if let Waiter::External(tx) = p.waiter {
                let _ = tx.send(Err(ClientError::Disconnected));
            }
        }
    }

    pub(super) fn clear_presence(&mut self) {
        self.inner.shared.lock().unwrap().presence.clear();
    }
}
