//! [`CapsCache`]: what full JIDs support, from the caps of their presences.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;

use super::{check, check_forms, Caps, Rejection, SHA_1};
use super::{MAX_FEATURES, MAX_FEATURE_BYTES, MAX_IN_FLIGHT, MAX_JIDS, MAX_UNVERIFIED, MAX_VERS};
use crate::disco::{DiscoInfoQuery, DiscoInfoResult};
use crate::jid::Jid;
use crate::xml::Element;

/// A map that keeps at most `cap` entries, dropping the least recently inserted or
/// touched one.
#[derive(Debug)]
struct Lru<K, V> {
    cap: usize,
    tick: u64,
    map: HashMap<K, (u64, V)>,
    order: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    fn new(cap: usize) -> Self {
        Lru { cap: cap.max(1), tick: 0, map: HashMap::new(), order: BTreeMap::new() }
    }

    fn get<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(k).map(|(_, v)| v)
    }

    fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.map.get_mut(k).map(|(_, v)| v)
    }

    /// Makes `k` the most recent; false when absent.
    fn touch<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        let Some((at, _)) = self.map.get_mut(k) else { return false };
        self.tick += 1;
        if let Some(key) = self.order.remove(at) {
            self.order.insert(self.tick, key);
        }
        *at = self.tick;
        true
    }

    /// Inserts or replaces `k` as the most recent; returns the entry dropped for room.
    fn insert(&mut self, k: K, v: V) -> Option<(K, V)> {
        self.remove(&k);
        let mut dropped = None;
        if self.map.len() >= self.cap {
            if let Some((_, oldest)) = self.order.pop_first() {
                dropped = self.map.remove(&oldest).map(|(_, v)| (oldest, v));
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, k.clone());
        self.map.insert(k, (self.tick, v));
        dropped
    }

    fn remove<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let (at, v) = self.map.remove(k)?;
        self.order.remove(&at);
        Some(v)
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// From the least recent to the most recent (an order that does not depend on
    /// the hasher's seed).
    fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.order.values().filter_map(|k| Some((k, &self.map.get(k)?.1)))
    }
}

/// A disco#info query a [`CapsCache`] wants sent: IQ-get to `to` with
/// `<query xmlns='http://jabber.org/protocol/disco#info' node='NODE#VER'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub to: Jid,
    pub node: String,
}

impl Query {
    /// The payload of the IQ-get.
    pub fn payload(&self) -> DiscoInfoQuery {
        DiscoInfoQuery { node: Some(self.node.clone()) }
    }
}

/// What the cache knows of one full JID.
#[derive(Debug)]
struct Peer {
    /// Its last `<c/>` (a presence without one keeps it: servers may strip repeats,
    /// §8.4).
    caps: Option<Caps>,
    /// Whether it was asked about these caps already (once is enough).
    asked: bool,
}

/// What full JIDs support, from their presences' caps (XEP-0115): sans-IO, bounded,
/// no clock.
///
/// The driver feeds it every available and unavailable presence ([`on_presence`]), the
/// answers to the queries it hands out ([`on_disco_element`] or [`on_disco_result`];
/// errors and time-outs: [`on_disco_error`]), and after an answer or an error sends what
/// [`poll_query`] gives until it gives nothing. [`features`] and [`supports`] answer from
/// memory: `None` means "not known (yet)", not "no".
///
/// Two stores:
/// - by `ver`: the features of answers that pass [`check`] (hence SHA-1): shared by
///   every JID advertising that `ver` ([`MAX_VERS`], least recently seen dropped);
/// - by JID: the features of an answer that does not pass (unsupported hash, a
///   mismatch, a rule broken): kept for the JID that gave it, while its caps stay the
///   same, and never used for anyone else ([`MAX_UNVERIFIED`]). A stranger who answers
///   for a popular `ver` with other features only ever describes itself; the `ver` is
///   then asked of another JID that advertises it (§5.4 3.9).
///
/// At most one query is out per `ver` (per JID for other hashes) and each JID is asked
/// once per caps. A new `ver` from a stranger costs one query: the driver decides whose
/// presences to feed.
///
/// [`on_presence`]: CapsCache::on_presence
/// [`on_disco_element`]: CapsCache::on_disco_element
/// [`on_disco_result`]: CapsCache::on_disco_result
/// [`on_disco_error`]: CapsCache::on_disco_error
/// [`poll_query`]: CapsCache::poll_query
/// [`features`]: CapsCache::features
/// [`supports`]: CapsCache::supports
#[derive(Debug)]
pub struct CapsCache {
    /// Verified SHA-1 `ver` -> its features, sorted.
    vers: Lru<String, Vec<String>>,
    /// Full JID -> its caps.
    peers: Lru<Jid, Peer>,
    /// Full JID -> the features of its own answer not trusted by `ver`, sorted.
    unverified: Lru<Jid, Vec<String>>,
    /// SHA-1 `ver` -> the JID asked about it.
    in_flight: Lru<String, Jid>,
    /// `ver`s whose query ended without a verified answer, to ask someone else.
    retry: VecDeque<String>,
}

impl Default for CapsCache {
    fn default() -> Self {
        CapsCache::with_limits(MAX_VERS, MAX_JIDS)
    }
}

impl CapsCache {
    /// A cache of at most `vers` verified `ver`s and `jids` JIDs.
    pub fn with_limits(vers: usize, jids: usize) -> CapsCache {
        CapsCache {
            vers: Lru::new(vers),
            peers: Lru::new(jids),
            unverified: Lru::new(MAX_UNVERIFIED.min(jids)),
            in_flight: Lru::new(MAX_IN_FLIGHT.min(vers)),
            retry: VecDeque::new(),
        }
    }

    /// A presence from `from`: `caps` is its `<c/>` (see [`Caps::find`]), `available`
    /// false for `type='unavailable'` (which forgets the JID). Returns the disco#info
    /// query to send when nothing is known of its `ver` and no query for it is out.
    pub fn on_presence(&mut self, from: &Jid, caps: Option<&Caps>, available: bool) -> Option<Query> {
        if !available {
            self.peers.remove(from);
            self.unverified.remove(from);
            let asked: Vec<String> =
                self.in_flight.iter().filter(|(_, j)| *j == from).map(|(v, _)| v.clone()).collect();
            for ver in asked {
                self.in_flight.remove(&ver);
                self.push_retry(ver);
            }
            return None;
        }
        let Some(caps) = caps else {
            self.peers.touch(from);
            return None;
        };
        if self.peers.get(from).is_some_and(|p| p.caps.as_ref() == Some(caps)) {
            self.peers.touch(from);
        } else {
            self.unverified.remove(from);
            if let Some((dropped, _)) = self.peers.insert(from.clone(), Peer { caps: Some(caps.clone()), asked: false })
            {
                self.unverified.remove(&dropped);
            }
        }
        self.query_for(from)
    }

    /// The query about `jid`'s current caps, if one is due (and marks it sent).
    fn query_for(&mut self, jid: &Jid) -> Option<Query> {
        let peer = self.peers.get(jid)?;
        let caps = peer.caps.as_ref()?;
        if peer.asked || self.unverified.get(jid).is_some() {
            return None;
        }
        if caps.is_sha1() {
            if self.vers.touch(caps.ver.as_str()) || self.in_flight.get(caps.ver.as_str()).is_some() {
                return None;
            }
            self.in_flight.insert(caps.ver.clone(), jid.clone());
        }
        let query = Query { to: jid.clone(), node: caps.disco_node() };
        if let Some(peer) = self.peers.get_mut(jid) {
            peer.asked = true;
        }
        Some(query)
    }

    fn push_retry(&mut self, ver: String) {
        if !self.retry.contains(&ver) {
            if self.retry.len() >= MAX_IN_FLIGHT {
                self.retry.pop_front();
            }
            self.retry.push_back(ver);
        }
    }

    /// A disco#info answer from `from`, as the `<query/>` element: [`on_disco_result`]
    /// with the `FORM_TYPE` rules only the element shows ([`check_forms`]). Prefer this
    /// one when the element is at hand. An element that does not parse counts as an
    /// error answer.
    ///
    /// [`on_disco_result`]: CapsCache::on_disco_result
    pub fn on_disco_element(&mut self, from: &Jid, query: &Element) -> bool {
        match DiscoInfoResult::try_from(query) {
            Ok(info) => self.answer(from, query.attr("node"), &info, check_forms(query)),
            Err(_) => {
                self.on_disco_error(from, query.attr("node"));
                false
            }
        }
    }

    /// A disco#info answer from `from` for `node` (the answer's `node`; `None` for an
    /// answer about the entity itself, which is then checked against its current caps).
    ///
    /// The answer is checked ([`check`]) against the `ver` of its node. When it passes,
    /// its features are kept under that `ver`, for every JID that advertises it, and
    /// this returns true. When it does not, nothing is kept by `ver`: if the answer is
    /// about `from`'s current caps its features are kept for `from` alone (in a store
    /// by JID, which [`features`](CapsCache::features) looks at first), and the `ver`
    /// is asked of another JID that advertises it ([`poll_query`](CapsCache::poll_query)).
    /// A parsed value cannot show a `FORM_TYPE` that is not hidden: see
    /// [`on_disco_element`](CapsCache::on_disco_element).
    pub fn on_disco_result(&mut self, from: &Jid, node: Option<&str>, info: &DiscoInfoResult) -> bool {
        self.answer(from, node, info, Ok(()))
    }

    fn answer(&mut self, from: &Jid, node: Option<&str>, info: &DiscoInfoResult, forms: Result<(), Rejection>) -> bool {
        let current = self.peers.get(from).and_then(|p| p.caps.clone());
        let caps = match (node, current.as_ref()) {
            (None, c) => c.cloned(),
            (Some(n), Some(c)) if n == c.disco_node() => Some(c.clone()),
            // An older node of this JID's (or a node we did not ask about): the answer
            // may still vouch for that `ver`.
            (Some(n), _) => n.rsplit_once('#').map(|(node, ver)| Caps {
                hash: SHA_1.to_owned(),
                node: node.to_owned(),
                ver: ver.to_owned(),
            }),
        };
        let Some(caps) = caps else { return false };
        let is_current = current.as_ref() == Some(&caps);
        let was_asked = caps.is_sha1() && self.in_flight.get(caps.ver.as_str()) == Some(from);
        if was_asked {
            self.in_flight.remove(caps.ver.as_str());
        }
        let features = kept_features(info);
        if let (Ok(()), Some(features)) = (forms.and_then(|()| check(&caps, info)), features.as_ref()) {
            self.vers.insert(caps.ver.clone(), features.clone());
            self.retry.retain(|v| *v != caps.ver);
            if is_current {
                self.unverified.remove(from);
            }
            return true;
        }
        if is_current {
            if let Some(features) = features {
                self.unverified.insert(from.clone(), features);
            }
        }
        if was_asked {
            self.push_retry(caps.ver);
        }
        false
    }

    /// The query to `from` about `node` (`None`: whatever was asked of `from`) ended
    /// without an answer: an error, a time-out, an answer that does not parse. The
    /// `ver` will be asked of another JID that advertises it
    /// ([`poll_query`](CapsCache::poll_query)); `from` is not asked again for these caps.
    pub fn on_disco_error(&mut self, from: &Jid, node: Option<&str>) {
        let ended: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(ver, jid)| {
                *jid == from && node.is_none_or(|n| n.strip_suffix(ver.as_str()).is_some_and(|n| n.ends_with('#')))
            })
            .map(|(ver, _)| ver.clone())
            .collect();
        for ver in ended {
            self.in_flight.remove(&ver);
            self.push_retry(ver);
        }
    }

    /// The next query to send for a `ver` whose query ended without a verified answer,
    /// to another JID that advertises it and was not asked (the most recently seen).
    /// Call after each answer and error until it gives `None`.
    pub fn poll_query(&mut self) -> Option<Query> {
        while let Some(ver) = self.retry.pop_front() {
            if self.vers.get(ver.as_str()).is_some() || self.in_flight.get(ver.as_str()).is_some() {
                continue;
            }
            let waiting = self.peers.iter().rev().find(|(jid, p)| {
                !p.asked
                    && p.caps.as_ref().is_some_and(|c| c.is_sha1() && c.ver == ver)
                    && self.unverified.get(*jid).is_none()
            });
            if let Some(jid) = waiting.map(|(jid, _)| jid.clone()) {
                return self.query_for(&jid);
            }
        }
        None
    }

    /// The features of `jid` (sorted), when known: its own answer if it gave one that is
    /// not trusted by `ver`, else those of its verified `ver`.
    pub fn features(&self, jid: &Jid) -> Option<&[String]> {
        let caps = self.peers.get(jid)?.caps.as_ref()?;
        if let Some(own) = self.unverified.get(jid) {
            return Some(own);
        }
        if !caps.is_sha1() {
            return None;
        }
        self.vers.get(caps.ver.as_str()).map(Vec::as_slice)
    }

    /// Whether `jid` supports `feature`; `None` when its features are not known.
    pub fn supports(&self, jid: &Jid, feature: &str) -> Option<bool> {
        self.features(jid).map(|f| f.binary_search_by(|x| x.as_str().cmp(feature)).is_ok())
    }

    /// The features verified for a SHA-1 `ver` (sorted), when known.
    pub fn ver_features(&self, ver: &str) -> Option<&[String]> {
        self.vers.get(ver).map(Vec::as_slice)
    }

    /// The verified `ver`s and their features (e.g. to keep them across sessions, as
    /// §8.2 recommends).
    pub fn verified(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.vers.iter().map(|(ver, features)| (ver.as_str(), features.as_slice()))
    }

    /// The caps `jid` last advertised (while available and remembered).
    pub fn caps(&self, jid: &Jid) -> Option<&Caps> {
        self.peers.get(jid)?.caps.as_ref()
    }

    /// How many `ver`s, JIDs, JIDs with their own answer and queries out it holds.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (self.vers.len(), self.peers.len(), self.unverified.len(), self.in_flight.len())
    }
}

/// The features of an answer as kept: sorted, without repeats; `None` over
/// [`MAX_FEATURES`] or [`MAX_FEATURE_BYTES`].
fn kept_features(info: &DiscoInfoResult) -> Option<Vec<String>> {
    let bytes: usize = info.features.iter().map(String::len).sum();
    if info.features.len() > MAX_FEATURES || bytes > MAX_FEATURE_BYTES {
        return None;
    }
    let mut features = info.features.clone();
    features.sort_unstable();
    features.dedup();
    Some(features)
}
