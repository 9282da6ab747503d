//! The sender's SOCKS5 steps: the streamhost list, the receiver's choice, the proxy's activation.

use super::*;

impl Sender {
    pub(super) fn on_streamhosts(&mut self, hosts: Vec<StreamHost>, now: Instant, out: &mut Vec<SenderAction>) {
        let State::Gathering { dst, retry_of } = &self.state else { return };
        let (dst, retry_of) = (dst.clone(), retry_of.clone());
        if let Some((before, reason)) = retry_of {
            let proxies = |hs: &[StreamHost]| -> Vec<StreamHost> {
                let mut p: Vec<StreamHost> = hs.iter().filter(|h| !self.is_me(&h.jid)).cloned().collect();
                p.sort_by(|a, b| (&a.jid, &a.host, a.port).cmp(&(&b.jid, &b.host, b.port)));
                p
            };
            let found = proxies(&hosts);
            if found.is_empty() || found == proxies(&before) {
                return self.s5b_failed(reason, now, out);
            }
        }
        if hosts.is_empty() {
            let reason = "no streamhost to offer (no own address allowed and no proxy)";
            return self.s5b_failed(reason.into(), now, out);
        }
        let query = StreamHosts { sid: self.sid.clone(), mode_tcp: true, hosts };
        let id = self.send_set(self.peer.clone(), Element::from(&query), out);
        let deadline = now.saturating_add(self.cfg.streamhosts_timeout);
        self.state = State::StreamhostsSent { id, deadline, dst, hosts: query.hosts };
    }

    pub(super) fn is_me(&self, jid: &str) -> bool {
        jid.parse::<Jid>().is_ok_and(|j| j == self.me)
    }

    pub(super) fn on_streamhosts_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        now: Instant,
        out: &mut Vec<SenderAction>,
    ) {
        let State::StreamhostsSent { dst, hosts, .. } = &self.state else { return };
        let (dst, hosts) = (dst.clone(), hosts.clone());
        let used = match answer {
            Ok(Some(el)) => match StreamHostUsed::try_from(&el) {
                Ok(u) => u,
                Err(e) => return self.s5b_failed(e.to_string(), now, out),
            },
            Ok(None) => return self.s5b_failed("the receiver answered the streamhosts with nothing".into(), now, out),
            Err(e) => {
                let reason = format!("the receiver could not use any streamhost: {}", answered_with(&self.peer, &e));
                // A proxy among them may have moved: find it again, offer once more.
                if !self.proxies_refreshed && hosts.iter().any(|h| !self.is_me(&h.jid)) {
                    self.proxies_refreshed = true;
                    out.push(SenderAction::RefreshProxies { dst_addr: dst.clone() });
                    self.state = State::Gathering { dst, retry_of: Some((hosts, reason)) };
                    return;
                }
                return self.s5b_failed(reason, now, out);
            }
        };
        if self.is_me(&used.jid) {
            if hosts.iter().any(|h| self.is_me(&h.jid)) {
                out.push(SenderAction::AwaitDirect);
                self.state = State::AwaitingDirect;
            } else {
                let reason = "the receiver says it used our streamhost, but its connection never arrived";
                self.s5b_failed(reason.into(), now, out);
            }
            return;
        }
        let same =
            |a: &str, b: &str| a == b || matches!((a.parse::<Jid>(), b.parse::<Jid>()), (Ok(x), Ok(y)) if x == y);
        match hosts.iter().find(|h| !self.is_me(&h.jid) && same(&h.jid, &used.jid)) {
            Some(proxy) => {
                out.push(SenderAction::ConnectProxy { host: proxy.host.clone(), port: proxy.port, dst_addr: dst });
                self.state = State::ConnectingProxy { proxy: proxy.clone() };
            }
            None => {
                let reason = format!("the receiver used a streamhost we did not offer ({})", used.jid);
                self.s5b_failed(reason, now, out);
            }
        }
    }

    pub(super) fn on_proxy_connected(&mut self, now: Instant, out: &mut Vec<SenderAction>) {
        let State::ConnectingProxy { proxy } = &self.state else { return };
        let name = proxy.jid.clone();
        let jid = match name.parse::<Jid>() {
            Ok(j) => j,
            Err(e) => return self.s5b_failed(format!("proxy address: {e}"), now, out),
        };
        let activate = Activate { sid: self.sid.clone(), target: self.peer.to_string() };
        let id = self.send_set(jid.clone(), Element::from(&activate), out);
        self.state = State::Activating { id, deadline: now.saturating_add(self.cfg.iq_timeout), proxy: jid, name };
    }

    pub(super) fn on_activate_answer(
        &mut self,
        answer: Result<Option<Element>, StanzaError>,
        now: Instant,
        out: &mut Vec<SenderAction>,
    ) {
        let State::Activating { proxy, name, .. } = &self.state else { return };
        let (proxy, name) = (proxy.clone(), name.clone());
        match answer {
            Ok(_) => self.begin_stream(Route::S5bProxy, Some(name), out),
            Err(e) => {
                let reason = format!("the proxy refused to activate the stream: {}", answered_with(&proxy, &e));
                self.s5b_failed(reason, now, out)
            }
        }
    }

    /// The SOCKS5 bytestream is open: the data phase begins.
    pub(super) fn begin_stream(&mut self, route: Route, streamhost: Option<String>, out: &mut Vec<SenderAction>) {
        out.push(SenderAction::Started { route, streamhost, offset: self.offset, length: self.length });
        out.push(SenderAction::StreamSocket { offset: self.offset, length: self.length });
        self.state = State::Streaming { route };
    }

    /// SOCKS5 could not be set up: in-band if allowed, else the end.
    pub(super) fn s5b_failed(&mut self, reason: String, now: Instant, out: &mut Vec<SenderAction>) {
        if self.cfg.methods.contains(&Method::Ibb) {
            out.push(SenderAction::FellBack { reason });
            self.start_ibb(now, out);
        } else {
            self.fail(FailReason::Network, reason, true, out);
        }
    }
}
