//! IQ semantics of a client session (RFC 6120 §8.2.3, §10.3.3): [`IqTracker`] gives our
//! requests their ids and decides which answer belongs to which request; [`Inbound`]
//! says who handles a request someone sent us. Sans-IO: the caller passes the time
//! (any ordered type: `std::time::Instant` in the engine, a `Duration` in tests).

use std::collections::HashMap;

use crate::jid::Jid;
use crate::ns;
use crate::stanza::{Iq, IqKind};

/// A request waiting for its answer.
#[derive(Debug)]
pub struct Pending<W, T> {
    /// Who waits (the engine's channel, or an internal task).
    pub waiter: W,
    /// The addressee as sent; `None` = our own server account.
    pub to: Option<Jid>,
    pub started: T,
    pub deadline: T,
}

/// The requests of one session waiting for answers, keyed by (addressee as sent, id):
/// an answer counts only from the entity the request went to. A request sent without
/// `to`, or to our bare JID, is answered by our server on behalf of the account, so its
/// answer may come without `from`, from our bare JID or from our domain.
#[derive(Debug)]
pub struct IqTracker<W, T> {
    prefix: String,
    next_id: u64,
    pending: HashMap<(Option<Jid>, String), Pending<W, T>>,
}

impl<W, T: Copy + Ord> IqTracker<W, T> {
    /// Ids will be `PREFIX-1`, `PREFIX-2`, ...: a random prefix per session keeps them
    /// unguessable for others and apart from earlier sessions'.
    pub fn new(prefix: impl Into<String>) -> IqTracker<W, T> {
        IqTracker { prefix: prefix.into(), next_id: 0, pending: HashMap::new() }
    }

    /// Gives `iq` a fresh id and remembers that `waiter` waits for its answer until
    /// `deadline`.
    pub fn track(&mut self, iq: &mut Iq, waiter: W, now: T, deadline: T) {
        self.next_id += 1;
        iq.id = format!("{}-{}", self.prefix, self.next_id);
        let pending = Pending { waiter, to: iq.to.clone(), started: now, deadline };
        self.pending.insert((iq.to.clone(), iq.id.clone()), pending);
    }

    /// The request that an answer with `id` from `from` belongs to, no longer waiting;
    /// `None` when nobody waits for it or `from` may not answer it (a spoofed answer
    /// leaves the request waiting for the real one). `own` is our full JID.
    pub fn answer(&mut self, own: &Jid, from: Option<&Jid>, id: &str) -> Option<Pending<W, T>> {
        let key = self.answer_key(own, from, id)?;
        self.pending.remove(&key)
    }

    fn answer_key(&self, own: &Jid, from: Option<&Jid>, id: &str) -> Option<(Option<Jid>, String)> {
        let mut candidates = vec![(from.cloned(), id.to_owned())];
        let own_bare = own.bare();
        if from.is_none_or(|f| *f == own_bare || *f == own.domain_jid()) {
            candidates.push((None, id.to_owned()));
            candidates.push((Some(own_bare), id.to_owned()));
        }
        candidates.into_iter().find(|k| self.pending.contains_key(k))
    }

    /// The requests past their deadline at `now`, or whose waiter `gave_up`, no longer
    /// waiting.
    pub fn expire(&mut self, now: T, gave_up: impl Fn(&W) -> bool) -> Vec<Pending<W, T>> {
        let keys: Vec<_> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now || gave_up(&p.waiter))
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter().filter_map(|k| self.pending.remove(&k)).collect()
    }

    /// Every request still waiting, no longer waiting (the session ended).
    pub fn drain(&mut self) -> Vec<Pending<W, T>> {
        self.pending.drain().map(|(_, p)| p).collect()
    }

    /// Forgets the requests whose waiter does not satisfy `keep`.
    pub fn retain(&mut self, keep: impl Fn(&W) -> bool) {
        self.pending.retain(|_, p| keep(&p.waiter));
    }

    /// Whether a waiter satisfying `f` waits.
    pub fn any(&self, f: impl Fn(&W) -> bool) -> bool {
        self.pending.values().any(|p| f(&p.waiter))
    }

    /// The earliest deadline of the requests waiting.
    pub fn next_deadline(&self) -> Option<T> {
        self.pending.values().map(|p| p.deadline).min()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Who handles an IQ request someone sent us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// XEP-0199 ping: answered at once.
    Ping,
    /// XEP-0030 disco#info about us (optionally a node).
    DiscoInfo { node: Option<String> },
    /// XEP-0092 software version.
    Version,
    /// RFC 6121 roster push, from our own account (anyone else's is refused with
    /// `service-unavailable`, as if we did not know the namespace).
    RosterPush,
    /// A roster push from someone else: spoofed.
    SpoofedRosterPush,
    /// Anything else: the handler registered for the payload's (name, namespace), if
    /// any, else `service-unavailable`.
    Handler { name: String, ns: String },
}

impl Inbound {
    /// Classifies request `iq` (a get or set) sent to `own`; `None` for an answer.
    pub fn of(iq: &Iq, own: &Jid) -> Option<Inbound> {
        let payload = iq.request_payload()?;
        let get = matches!(iq.kind, IqKind::Get(_));
        Some(match (get, payload.name.as_str(), payload.ns.as_str()) {
            (false, "query", ns::ROSTER) => {
                // RFC 6121 2.1.6: only our own account may push.
                if iq.from.as_ref().is_none_or(|f| *f == own.bare()) {
                    Inbound::RosterPush
                } else {
                    Inbound::SpoofedRosterPush
                }
            }
            (true, "ping", ns::PING) => Inbound::Ping,
            (true, "query", ns::DISCO_INFO) => Inbound::DiscoInfo { node: payload.attr("node").map(str::to_owned) },
            (true, "query", "jabber:iq:version") => Inbound::Version,
            _ => Inbound::Handler { name: payload.name.clone(), ns: payload.ns.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::xml::Element;

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    fn own() -> Jid {
        jid("alice@example.com/skiff")
    }

    const T0: Duration = Duration::ZERO;
    const SEC: Duration = Duration::from_secs(1);

    fn tracker() -> IqTracker<&'static str, Duration> {
        IqTracker::new("ab12")
    }

    fn request(to: Option<&str>) -> Iq {
        Iq::get("", to.map(jid), Element::new("query", ns::DISCO_INFO))
    }

    #[test]
    fn requests_get_fresh_ids_and_answers_find_them() {
        let mut t = tracker();
        let (mut a, mut b) = (request(Some("bob@example.com/pc")), request(Some("bob@example.com/pc")));
        t.track(&mut a, "a", T0, 30 * SEC);
        t.track(&mut b, "b", T0, 30 * SEC);
        assert_eq!((a.id.as_str(), b.id.as_str()), ("ab12-1", "ab12-2"));
        assert_eq!(t.len(), 2);
        let got = t.answer(&own(), Some(&jid("bob@example.com/pc")), "ab12-2").unwrap();
        assert_eq!((got.waiter, got.to), ("b", Some(jid("bob@example.com/pc"))));
        // Answered once: a second answer finds nobody.
        assert!(t.answer(&own(), Some(&jid("bob@example.com/pc")), "ab12-2").is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn an_answer_counts_only_from_whom_the_request_went_to() {
        let mut t = tracker();
        let mut r = request(Some("bob@example.com/pc"));
        t.track(&mut r, "r", T0, 30 * SEC);
        // Someone else, bob's other resource, his bare JID, our server, no `from`: spoofed.
        for from in [
            Some("mallory@evil.example/x"),
            Some("bob@example.com/phone"),
            Some("bob@example.com"),
            Some("example.com"),
            None,
        ] {
            assert!(t.answer(&own(), from.map(jid).as_ref(), &r.id).is_none(), "{from:?}");
        }
        // The request still waits for the real answer.
        assert_eq!(t.answer(&own(), Some(&jid("bob@example.com/pc")), &r.id).unwrap().waiter, "r");
    }

    #[test]
    fn our_server_answers_for_the_account() {
        // Sent without `to` (the roster) or to our bare JID (our vCard): the answer
        // may come without `from`, from our bare JID or from our domain.
        for to in [None, Some("alice@example.com")] {
            for from in [None, Some("alice@example.com"), Some("example.com")] {
                let mut t = tracker();
                let mut r = request(to);
                t.track(&mut r, "r", T0, 30 * SEC);
                assert!(t.answer(&own(), from.map(jid).as_ref(), &r.id).is_some(), "to {to:?}, from {from:?}");
            }
        }
        // But not from another account of our server.
        let mut t = tracker();
        let mut r = request(None);
        t.track(&mut r, "r", T0, 30 * SEC);
        assert!(t.answer(&own(), Some(&jid("eve@example.com")), &r.id).is_none());
        // And a request to the domain is answered by the domain only.
        let mut r = request(Some("example.com"));
        t.track(&mut r, "d", T0, 30 * SEC);
        assert!(t.answer(&own(), None, &r.id).is_none());
        assert_eq!(t.answer(&own(), Some(&jid("example.com")), &r.id).unwrap().waiter, "d");
    }

    #[test]
    fn deadlines_come_from_the_time_given() {
        let mut t = tracker();
        let (mut a, mut b, mut c) = (request(None), request(None), request(None));
        t.track(&mut a, "a", T0, 10 * SEC);
        t.track(&mut b, "b", 2 * SEC, 32 * SEC);
        t.track(&mut c, "gives up", 3 * SEC, 60 * SEC);
        assert_eq!(t.next_deadline(), Some(10 * SEC));
        assert!(t.expire(9 * SEC, |_| false).is_empty());
        let gone: Vec<_> =
            t.expire(10 * SEC, |w| *w == "gives up").into_iter().map(|p| (p.waiter, p.started)).collect();
        let mut gone = gone;
        gone.sort();
        assert_eq!(gone, [("a", T0), ("gives up", 3 * SEC)]);
        assert_eq!(t.next_deadline(), Some(32 * SEC));
        assert!(t.any(|w| *w == "b") && !t.any(|w| *w == "a"));
        t.retain(|w| *w != "b");
        assert!(t.is_empty() && t.next_deadline().is_none());
        t.track(&mut a, "again", 40 * SEC, 50 * SEC);
        assert_eq!(t.drain().len(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn requests_are_routed_by_payload_and_roster_pushes_only_from_our_account() {
        let set = |from: Option<&str>, payload: Element| Iq {
            id: "1".into(),
            from: from.map(jid),
            to: None,
            kind: IqKind::Set(payload),
        };
        let get = |payload: Element| Iq {
            id: "1".into(),
            from: Some(jid("bob@example.com/pc")),
            to: None,
            kind: IqKind::Get(payload),
        };
        let roster = || Element::new("query", ns::ROSTER);
        assert_eq!(Inbound::of(&set(None, roster()), &own()), Some(Inbound::RosterPush));
        assert_eq!(Inbound::of(&set(Some("alice@example.com"), roster()), &own()), Some(Inbound::RosterPush));
        for spoof in ["bob@example.com/pc", "example.com", "alice@example.com/other"] {
            assert_eq!(Inbound::of(&set(Some(spoof), roster()), &own()), Some(Inbound::SpoofedRosterPush), "{spoof}");
        }
        assert_eq!(Inbound::of(&get(Element::new("ping", ns::PING)), &own()), Some(Inbound::Ping));
        let disco = Element::new("query", ns::DISCO_INFO).with_attr("node", "n#1");
        assert_eq!(Inbound::of(&get(disco), &own()), Some(Inbound::DiscoInfo { node: Some("n#1".into()) }));
        assert_eq!(Inbound::of(&get(Element::new("query", "jabber:iq:version")), &own()), Some(Inbound::Version));
        // A ping as a set, a roster get: not ours to answer specially.
        assert_eq!(
            Inbound::of(&set(None, Element::new("ping", ns::PING)), &own()),
            Some(Inbound::Handler { name: "ping".into(), ns: ns::PING.into() })
        );
        assert_eq!(
            Inbound::of(&get(Element::new("si", ns::SI)), &own()),
            Some(Inbound::Handler { name: "si".into(), ns: ns::SI.into() })
        );
        let answer = Iq { id: "1".into(), from: None, to: None, kind: IqKind::Result(None) };
        assert_eq!(Inbound::of(&answer, &own()), None);
    }
}
