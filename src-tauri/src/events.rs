//! The edge between the engine and the frontend: every engine `Event` becomes the
//! Tauri event `skiff://event` with the event's own JSON as payload. Here too: the
//! desktop's answer to offers (auto-accept by size for contacts, else a notification
//! per peer with Accept / Reject / Open, or Open / Decline all for several files) and
//! notifications of finished transfers while the window is in the background.
//!
//! Offer notifications hold no thread: each notified peer has one async task that
//! waits for the notification's action (notify-rust's zbus futures) and updates the
//! notification in place when the peer's offers change; at most
//! [`MAX_NOTIFIED_PEERS`] peers are notified at once. Everything a peer chose (file
//! names, nicknames, JIDs, error texts) goes into notifications through [`plain_text`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use notify_rust::{Notification, NotificationHandle, NotificationResponse};
use skiff_engine::store::{Direction, Store};
use skiff_engine::transfer::Transfers;
use skiff_engine::{Client, Event};
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::sync::Notify;

use crate::settings::Settings;

/// Frontend event carrying one engine `Event`.
pub const EVENT: &str = "skiff://event";
/// Frontend event asking the UI to open the offer dialog of a transfer id.
pub const FOCUS_OFFER: &str = "skiff://focus-offer";

/// Forwards the session's events until the task is aborted (at sign-out). `store` is
/// the user's store (settings); the history is the engine's.
pub async fn forward(app: AppHandle, client: Client, transfers: Transfers, store: Arc<Store>, mut rx: Receiver<Event>) {
    // The session's offer notifications close with it (sign-out aborts this task).
    let _session = OfferSession::begin();
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("the UI missed {n} engine events");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if let Err(e) = app.emit(EVENT, &event) {
            tracing::warn!("cannot emit to the UI: {e}");
        }
        react(&app, &client, &transfers, &store, &event);
    }
}

/// Whether the desktop accepts an offer without asking: only from a roster contact,
/// only with auto-accept on, and only for a known size within the limit (a size of 0
/// is also how a link of unknown size is offered). Never for strangers.
pub fn auto_accepts(settings: &Settings, size: u64, from_contact: bool) -> bool {
    from_contact && settings.auto_accept_max_bytes > 0 && size > 0 && size <= settings.auto_accept_max_bytes
}

/// What the shell itself does about an event.
fn react(app: &AppHandle, client: &Client, transfers: &Transfers, store: &Arc<Store>, event: &Event) {
    match event {
        Event::TransferOffered { id, direction, peer, name, size, description: _, resume_from, files }
            if *direction == Direction::Incoming && *resume_from == 0 =>
        {
            let settings = Settings::load(store);
            let bare = peer.split('/').next().unwrap_or(peer);
            // A roster item of any subscription is a contact, as for the engine's
            // stranger policy (`Transfers::is_contact`).
            let contact = client.roster().into_iter().find(|c| c.jid == bare);
            if auto_accepts(&settings, *size, contact.is_some()) {
                tracing::info!("auto-accepting {name} ({size} bytes) from {bare}");
                if let Err(e) = transfers.accept(*id, Some(settings.transfer.download_dir.into())) {
                    tracing::warn!("auto-accept of {id}: {e}");
                }
                return;
            }
            let stranger = contact.is_none();
            let who = contact.and_then(|c| c.name).filter(|n| !n.trim().is_empty()).unwrap_or_else(|| bare.to_owned());
            let offer = Offer { id: *id, name: name.clone(), size: *size, files: *files };
            offer_waiting(app, transfers, store, bare, &who, stranger, offer);
        }
        Event::TransferStarted { id, .. } | Event::TransferRejected { id, .. } => {
            offer_answered(*id);
        }
        Event::TransferCompleted { id, name, size, verified, .. } => {
            offer_answered(*id);
            if !window_focused(app) {
                let incoming = transfers.store().get(*id).map(|r| r.direction == Direction::Incoming).unwrap_or(false);
                let summary = match (incoming, verified.is_verified()) {
                    (true, true) => "File received",
                    (true, false) => "File received, not verified",
                    (false, true) => "File sent",
                    (false, false) => "File sent, not confirmed",
                };
                notify(summary, &format!("{} ({})", plain_text(name, 120), human_size(*size)));
            }
        }
        Event::TransferFailed { id, name, error, .. } => {
            // An offer that ends unanswered (the sender gave up, it timed out) only
            // leaves its notification: strangers cannot make failures pop up.
            let was_waiting = offer_answered(*id);
            if !was_waiting && !window_focused(app) {
                notify("Transfer failed", &format!("{}: {}", plain_text(name, 120), plain_text(error, 300)));
            }
        }
        _ => {}
    }
}

fn window_focused(app: &AppHandle) -> bool {
    app.get_webview_window("main").and_then(|w| w.is_focused().ok()).unwrap_or(false)
}

/// A plain notification, sent from a task (the forwarder never waits for D-Bus);
/// failures (no notification service) are only logged.
pub(crate) fn notify(summary: &str, body: &str) {
    let mut n = Notification::new();
    n.appname("Skiff").summary(summary).body(body).icon(NOTIFICATION_ICON);
    tauri::async_runtime::spawn(async move {
        if let Err(e) = n.show_async().await {
            tracing::info!("no desktop notification ({e}): {}: {}", n.summary, n.body);
        }
    });
}

/// Icon name of notifications: the name the .deb bundle installs the app icon under.
const NOTIFICATION_ICON: &str = "skiff-desktop";

/// How long an offer's notification stays: the engine's offer timeout (5 minutes).
const OFFER_NOTIFICATION_MS: u32 = 300_000;

/// Peers with an offer notification on screen at once; offers from others show only
/// in the window (whose list holds them all).
pub const MAX_NOTIFIED_PEERS: usize = 8;

/// One incoming offer as a notification tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offer {
    id: i64,
    name: String,
    size: u64,
    /// A batch (a folder) of this many files.
    files: Option<u64>,
}

/// The offers waiting for an answer and the peers notified about them.
#[derive(Default)]
struct Offers {
    /// The session these belong to ([`OfferSession`]).
    session: u64,
    /// Every incoming offer waiting for the user, notified or not.
    waiting: HashSet<i64>,
    /// One notification per peer (bare JID), at most [`MAX_NOTIFIED_PEERS`].
    notes: HashMap<String, PeerNote>,
    /// Numbers the notes: a task only ever acts for its own note, never for a later
    /// one of the same peer (after a sign-out and in again, say).
    serials: u64,
}

struct PeerNote {
    serial: u64,
    /// Who, as shown (already plain text).
    who: String,
    /// Not in the roster: the notification says so.
    stranger: bool,
    /// The offers it stands for, oldest first; empty = the notification closes.
    offers: Vec<Offer>,
    /// Wakes the peer's task when `offers` changed.
    changed: Arc<Notify>,
}

/// What [`Offers::add`] did with a new offer.
#[derive(Debug)]
enum Added {
    /// The peer had no notification: start a task for this new one (its serial and
    /// wake-up).
    NewNote(u64, Arc<Notify>),
    /// Joined the peer's notification (its task was woken to update it).
    Joined,
    /// Too many peers notified already: the offer shows in the window only.
    NotNotified,
}

/// What a notification shows: the offers in it and how it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NoteView {
    summary: &'static str,
    body: String,
    actions: Vec<(&'static str, &'static str)>,
    offers: Vec<Offer>,
}

impl Offers {
    fn add(&mut self, peer: &str, who: &str, stranger: bool, offer: Offer) -> Added {
        self.waiting.insert(offer.id);
        if let Some(note) = self.notes.get_mut(peer) {
            if !note.offers.iter().any(|o| o.id == offer.id) {
                note.offers.push(offer);
            }
            note.changed.notify_one();
            return Added::Joined;
        }
        if self.notes.len() >= MAX_NOTIFIED_PEERS {
            return Added::NotNotified;
        }
        let changed = Arc::new(Notify::new());
        self.serials += 1;
        let serial = self.serials;
        let note =
            PeerNote { serial, who: plain_text(who, 80), stranger, offers: vec![offer], changed: changed.clone() };
        self.notes.insert(peer.to_owned(), note);
        Added::NewNote(serial, changed)
    }

    /// Offer `id` was answered or ended: out of the notifications (each updates or
    /// closes). True when it was waiting.
    fn answered(&mut self, id: i64) -> bool {
        for note in self.notes.values_mut() {
            if let Some(i) = note.offers.iter().position(|o| o.id == id) {
                note.offers.remove(i);
                note.changed.notify_one();
            }
        }
        self.waiting.remove(&id)
    }

    /// Everything forgotten (the session ended): every notification closes.
    fn clear(&mut self) {
        self.waiting.clear();
        for (_, note) in self.notes.drain() {
            note.changed.notify_one();
        }
    }

    /// Note `serial` of `peer` as it should show now; `None` when it has no offers
    /// left or is gone (then it is forgotten, and the next offer from the peer starts
    /// a new one).
    fn view(&mut self, peer: &str, serial: u64) -> Option<NoteView> {
        let note = self.notes.get(peer).filter(|n| n.serial == serial)?;
        if note.offers.is_empty() {
            self.notes.remove(peer);
            return None;
        }
        Some(note_view(note))
    }

    /// Forgets note `serial` of `peer` (its offers keep waiting in the window).
    fn forget_note(&mut self, peer: &str, serial: u64) {
        if self.notes.get(peer).is_some_and(|n| n.serial == serial) {
            self.notes.remove(peer);
        }
    }
}

fn offers() -> MutexGuard<'static, Offers> {
    static OFFERS: OnceLock<Mutex<Offers>> = OnceLock::new();
    OFFERS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner())
}

/// The offers of one signed-in session: begun by the event forwarder, ended when it
/// stops (sign-out aborts it), which closes the session's offer notifications.
struct OfferSession(u64);

impl OfferSession {
    fn begin() -> OfferSession {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let session = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut o = offers();
        o.clear();
        o.session = session;
        OfferSession(session)
    }
}

impl Drop for OfferSession {
    fn drop(&mut self) {
        let mut o = offers();
        if o.session == self.0 {
            o.clear();
        }
    }
}

/// Offer `id` no longer waits (answered in the window or from a notification,
/// started, declined, failed): the peer's notification updates or closes. True when
/// it was waiting for the user.
pub fn offer_answered(id: i64) -> bool {
    offers().answered(id)
}

/// Peer-supplied text for a notification body: servers interpret a subset of HTML
/// there, so `&`, `<`, `>` are escaped; control characters, bidi embeddings,
/// overrides and isolates are dropped; long text is cut at `max_chars` characters with
/// an ellipsis.
pub fn plain_text(s: &str, max_chars: usize) -> String {
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
    let kept: Vec<char> = s.chars().filter(|&c| !c.is_control() && !bidi(c)).collect();
    let mut text: String = kept.iter().take(max_chars).collect();
    if kept.len() > max_chars {
        text.push('…');
    }
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// What a peer's offer notification says, and its actions: for one file Open (the
/// body), Accept, Reject; for several Open and Decline all (no accepting files
/// unseen from a notification).
fn note_view(note: &PeerNote) -> NoteView {
    let who = if note.stranger { format!("{} (not in your contacts)", note.who) } else { note.who.clone() };
    match note.offers.as_slice() {
        [o @ Offer { files: Some(n), .. }] => NoteView {
            summary: "Incoming folder",
            body: format!(
                "{who} wants to send the folder {} ({n} {}, {})",
                plain_text(&o.name, 120),
                if *n == 1 { "file" } else { "files" },
                human_size(o.size)
            ),
            actions: vec![("default", "Open"), ("accept", "Accept"), ("reject", "Reject")],
            offers: note.offers.clone(),
        },
        [o] => NoteView {
            summary: "Incoming file",
            body: format!("{who} wants to send {} ({})", plain_text(&o.name, 120), offer_size(o.size)),
            actions: vec![("default", "Open"), ("accept", "Accept"), ("reject", "Reject")],
            offers: note.offers.clone(),
        },
        many => NoteView {
            summary: "Incoming files",
            body: format!("{who} wants to send {} files", many.iter().map(|o| o.files.unwrap_or(1)).sum::<u64>()),
            actions: vec![("default", "Open"), ("reject", "Decline all")],
            offers: note.offers.clone(),
        },
    }
}

/// A link's size is not looked up before it is accepted: 0 stands for unknown.
fn offer_size(size: u64) -> String {
    if size == 0 {
        "size unknown".into()
    } else {
        human_size(size)
    }
}

fn build_note(view: &NoteView, replaces: Option<u32>) -> Notification {
    let mut n = Notification::new();
    n.appname("Skiff")
        .summary(view.summary)
        .body(&view.body)
        .icon(NOTIFICATION_ICON)
        .timeout(notify_rust::Timeout::Milliseconds(OFFER_NOTIFICATION_MS));
    for (key, label) in &view.actions {
        n.action(key, label);
    }
    if let Some(id) = replaces {
        n.id(id);
    }
    n
}

/// Offer `offer` from `peer` waits for the user: it joins the peer's notification
/// ("carol wants to send 12 files"), or starts one with its own task, unless
/// [`MAX_NOTIFIED_PEERS`] peers are notified already.
fn offer_waiting(
    app: &AppHandle,
    transfers: &Transfers,
    store: &Arc<Store>,
    peer: &str,
    who: &str,
    stranger: bool,
    offer: Offer,
) {
    let id = offer.id;
    match offers().add(peer, who, stranger, offer) {
        Added::Joined => {}
        Added::NotNotified => {
            tracing::info!("no notification for offer {id}: {MAX_NOTIFIED_PEERS} peers are notified already");
        }
        Added::NewNote(serial, changed) => {
            let task = PeerTask {
                app: app.clone(),
                transfers: transfers.clone(),
                store: store.clone(),
                peer: peer.to_owned(),
                serial,
                changed,
            };
            tauri::async_runtime::spawn(task.run());
        }
    }
}

/// The task behind one peer's offer notification.
struct PeerTask {
    app: AppHandle,
    transfers: Transfers,
    store: Arc<Store>,
    peer: String,
    serial: u64,
    changed: Arc<Notify>,
}

impl PeerTask {
    /// Shows the notification, updates it in place while the peer's offers change,
    /// closes it when none is left, and carries out the action the user picks.
    async fn run(self) {
        let peer = &self.peer;
        let mut shown: Option<(NotificationHandle, NoteView)> = None;
        loop {
            let view = offers().view(peer, self.serial);
            let Some(view) = view else {
                if let Some((handle, _)) = shown {
                    handle.close_async().await;
                }
                return;
            };
            if shown.as_ref().map(|(_, v)| v) != Some(&view) {
                // Shown again under the same id: the server replaces it in place (and
                // sends its actions to the connection that sent it last: this one).
                let replaces = shown.as_ref().map(|(h, _)| h.id());
                match build_note(&view, replaces).show_async().await {
                    Ok(handle) => shown = Some((handle, view)),
                    Err(e) if shown.is_none() => {
                        tracing::info!("no desktop notification for {peer} ({e}); the window answers the offers");
                        offers().forget_note(peer, self.serial);
                        return;
                    }
                    Err(e) => tracing::info!("cannot update the notification for {peer}: {e}"),
                }
            }
            let Some((handle, view)) = &shown else { return };
            let mut response = None;
            tokio::select! {
                _ = self.changed.notified() => continue,
                _ = handle.wait_for_action_async(|r| response = Some(r.clone())) => {}
            }
            let shown_offers = view.offers.clone();
            match response {
                Some(NotificationResponse::Closed(_)) | None => {
                    // Expired or dismissed: the offers wait in the window; the next offer
                    // from this peer gets a new notification.
                    offers().forget_note(peer, self.serial);
                    return;
                }
                Some(r) => {
                    let action = match &r {
                        NotificationResponse::Default => "default",
                        NotificationResponse::Action(a) => a.as_str(),
                        _ => "",
                    };
                    let answered = self.act(action, &shown_offers);
                    if let Some((handle, _)) = shown.take() {
                        handle.close_async().await;
                    }
                    if !answered {
                        // Open: the window has them now.
                        offers().forget_note(peer, self.serial);
                        return;
                    }
                    // Offers that arrived after the user looked stay waiting and get a
                    // notification of their own in the next round.
                }
            }
        }
    }

    /// Carries out `action` on the offers the notification showed (those still
    /// waiting: one may have been answered in the window meanwhile). True when they
    /// were answered (accepted or declined), false when the window was opened instead.
    fn act(&self, action: &str, shown: &[Offer]) -> bool {
        let peer = &self.peer;
        let mut o = offers();
        let still: Vec<i64> = shown.iter().map(|s| s.id).filter(|id| o.waiting.contains(id)).collect();
        // Accept takes exactly the one file the notification named.
        let answer = match (action, shown, still.as_slice()) {
            ("accept", [_], [id]) => Some(vec![*id]),
            ("reject", _, ids) => Some(ids.to_vec()),
            _ => None,
        };
        let Some(ids) = answer else {
            drop(o);
            if matches!(action, "default" | "accept") {
                self.open_window(still.first().or(shown.first().map(|s| &s.id)).copied());
            }
            return false;
        };
        for id in &ids {
            o.answered(*id);
        }
        drop(o);
        // Every one is answered, even after an error; the first error is logged.
        let dir = Settings::load(&self.store).transfer.download_dir;
        let mut result = Ok(());
        for id in &ids {
            let r = if action == "accept" {
                self.transfers.accept(*id, Some(dir.clone().into()))
            } else {
                self.transfers.reject(*id)
            };
            result = result.and(r);
        }
        if let Err(e) = result {
            tracing::info!("notification action {action} for {peer}: {e}");
        }
        true
    }

    /// Brings the window forward and asks the UI to show offer `first` first.
    fn open_window(&self, first: Option<i64>) {
        if let Some(w) = self.app.get_webview_window("main") {
            let _ = w.unminimize();
            let _ = w.show();
            let _ = w.set_focus();
        }
        if let Some(id) = first {
            if let Err(e) = self.app.emit(FOCUS_OFFER, id) {
                tracing::info!("cannot ask the window to show offer {id}: {e}");
            }
        }
    }
}

/// Sizes as the window shows them (ui/src/format.ts): binary units, one decimal
/// below 100, e.g. `512 B`, `1.5 KiB`, `15.2 MiB`, `152 MiB`, `1.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let round1 = |x: f64| (x * 10.0).round() / 10.0;
    // Rounding may reach 1024 ("1023.96 KiB"): move up one unit then.
    if unit > 0 && round1(v) >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || round1(v) >= 100.0 {
        format!("{} {}", round1(v).round(), UNITS[unit])
    } else {
        format!("{:.1} {}", round1(v), UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_plain_in_notifications() {
        assert_eq!(plain_text("<b>hi</b> & <img src=x>", 100), "&lt;b&gt;hi&lt;/b&gt; &amp; &lt;img src=x&gt;");
        assert_eq!(
            plain_text("<img src=x onerror=alert(1)>", 120),
            "&lt;img src=x onerror=alert(1)&gt;",
            "markup shows as the characters it is made of"
        );
        assert_eq!(plain_text("&amp;", 10), "&amp;amp;", "an entity stays literal too");
        // Bidi overrides and isolates (a name that shows as "photo.jpg" but is
        // "gpj.exe") and control characters go.
        assert_eq!(plain_text("photo\u{202E}gpj.exe\n\r\t", 100), "photogpj.exe");
        let every_bidi: String = ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}').collect();
        assert_eq!(plain_text(&format!("a{every_bidi}b\u{0}\u{1b}[31m\u{7f}\u{85}c"), 100), "ab[31mc");
        // Long text is cut, counted in characters (not bytes), before escaping, so an
        // escape is never cut in half.
        assert_eq!(plain_text(&"a".repeat(200), 120), format!("{}…", "a".repeat(120)));
        assert_eq!(plain_text(&"a".repeat(120), 120), "a".repeat(120));
        assert_eq!(plain_text("日本語", 2), "日本…");
        assert_eq!(plain_text(&"<".repeat(130), 120), format!("{}…", "&lt;".repeat(120)));
    }

    fn offer(id: i64, name: &str, size: u64) -> Offer {
        Offer { id, name: name.into(), size, files: None }
    }

    #[test]
    fn one_offer_reads_with_its_name_and_size_and_can_be_accepted() {
        let mut o = Offers::default();
        assert!(matches!(
            o.add("carol@example.com", "carol", false, offer(1, "photo.jpg", 1_258_291)),
            Added::NewNote(..)
        ));
        let v = o.view("carol@example.com", 1).unwrap();
        assert_eq!(v.summary, "Incoming file");
        assert_eq!(v.body, "carol wants to send photo.jpg (1.2 MiB)");
        let keys: Vec<_> = v.actions.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["default", "accept", "reject"]);
        assert_eq!(v.actions[0].1, "Open");
    }

    #[test]
    fn a_folder_reads_as_one_offer_with_its_file_count() {
        let mut o = Offers::default();
        let folder = Offer { files: Some(312), ..offer(1, "photos<b>", 1_503_238_553) };
        o.add("bob@example.com", "bob", false, folder);
        let v = o.view("bob@example.com", 1).unwrap();
        assert_eq!(v.summary, "Incoming folder");
        assert_eq!(v.body, "bob wants to send the folder photos&lt;b&gt; (312 files, 1.4 GiB)");
        assert!(v.actions.iter().any(|(k, _)| *k == "accept"));
        // Beside a single file, the notification counts files, not offers.
        o.add("bob@example.com", "bob", false, offer(2, "a.txt", 1));
        assert_eq!(o.view("bob@example.com", 1).unwrap().body, "bob wants to send 313 files");
    }

    #[test]
    fn several_offers_from_one_peer_share_a_notification_without_accept() {
        let mut o = Offers::default();
        let Added::NewNote(_, changed) = o.add("carol@example.com", "carol", false, offer(1, "<a>.txt", 10)) else {
            panic!("a new notification")
        };
        assert_eq!(o.view("carol@example.com", 1).unwrap().body, "carol wants to send &lt;a&gt;.txt (10 B)");
        for i in 2..=12 {
            assert!(matches!(o.add("carol@example.com", "carol", false, offer(i, &format!("f{i}"), 1)), Added::Joined));
        }
        assert_eq!(o.notes.len(), 1, "one notification per peer");
        let v = o.view("carol@example.com", 1).unwrap();
        assert_eq!(v.summary, "Incoming files");
        assert_eq!(v.body, "carol wants to send 12 files");
        assert_eq!(
            v.actions,
            vec![("default", "Open"), ("reject", "Decline all")],
            "no Accept all from a notification"
        );
        assert_eq!(v.offers.len(), 12);
        // The task is woken to update the notification in place.
        let woken = tauri::async_runtime::block_on(async {
            tokio::time::timeout(std::time::Duration::from_millis(100), changed.notified()).await.is_ok()
        });
        assert!(woken);
    }

    #[test]
    fn offers_answered_in_the_window_update_then_close_the_notification() {
        let mut o = Offers::default();
        o.add("carol@example.com", "carol", false, offer(1, "a.txt", 10));
        o.add("carol@example.com", "carol", false, offer(2, "b.txt", 20));
        assert_eq!(o.view("carol@example.com", 1).unwrap().body, "carol wants to send 2 files");
        assert!(o.answered(1), "it was waiting");
        assert!(!o.answered(1), "answered once");
        let v = o.view("carol@example.com", 1).unwrap();
        assert_eq!(v.body, "carol wants to send b.txt (20 B)", "back to one file, with Accept again");
        assert!(v.actions.iter().any(|(k, _)| *k == "accept"));
        o.answered(2);
        assert_eq!(o.view("carol@example.com", 1), None, "no offer left: the notification closes");
        assert!(o.notes.is_empty() && o.waiting.is_empty());
        // The next offer from carol starts a new notification.
        assert!(matches!(o.add("carol@example.com", "carol", false, offer(3, "c.txt", 1)), Added::NewNote(..)));
    }

    #[test]
    fn a_flood_of_offers_notifies_few_peers_and_no_failures() {
        let mut o = Offers::default();
        let mut new_notes = 0;
        for i in 0..500 {
            let peer = format!("stranger{}@evil.example", i % 100);
            match o.add(&peer, &peer, true, offer(i, "x", 1)) {
                Added::NewNote(..) => new_notes += 1,
                Added::Joined | Added::NotNotified => {}
            }
        }
        assert_eq!(new_notes, MAX_NOTIFIED_PEERS, "one task per notified peer, at most {MAX_NOTIFIED_PEERS}");
        assert_eq!(o.notes.len(), MAX_NOTIFIED_PEERS);
        assert_eq!(o.waiting.len(), 500, "all still wait in the window");
        let v = o.view("stranger0@evil.example", 1).unwrap();
        assert_eq!(v.body, "stranger0@evil.example (not in your contacts) wants to send 5 files");
        // Offers that end unanswered were waiting: their failure raises no notification.
        assert!(o.answered(499));
        o.clear();
        assert!(o.waiting.is_empty() && o.notes.is_empty(), "every notification closes");
    }

    #[test]
    fn a_task_never_serves_a_later_note_of_the_same_peer() {
        let mut o = Offers::default();
        let Added::NewNote(first, _) = o.add("carol@example.com", "carol", false, offer(1, "a", 1)) else { panic!() };
        o.clear(); // signed out
        let Added::NewNote(second, _) = o.add("carol@example.com", "carol", false, offer(2, "b", 1)) else { panic!() };
        assert_ne!(first, second);
        assert_eq!(o.view("carol@example.com", first), None, "the old task closes its notification");
        o.forget_note("carol@example.com", first);
        assert_eq!(o.view("carol@example.com", second).unwrap().offers, vec![offer(2, "b", 1)]);
    }

    #[test]
    fn nicknames_are_plain_text_too() {
        let mut o = Offers::default();
        let nick = format!("<b>\u{202E}evil</b>{}", "x".repeat(200));
        o.add("mallory@example.com", &nick, false, offer(1, "a\u{202E}txt.exe", 0));
        let v = o.view("mallory@example.com", 1).unwrap();
        assert_eq!(v.body, format!("&lt;b&gt;evil&lt;/b&gt;{}… wants to send atxt.exe (size unknown)", "x".repeat(69)));
    }

    #[test]
    fn auto_accept_is_for_contacts_only() {
        let s = Settings { auto_accept_max_bytes: 100, ..Settings::default() };
        assert!(auto_accepts(&s, 100, true));
        assert!(!auto_accepts(&s, 100, false), "never for strangers");
        assert!(!auto_accepts(&s, 101, true), "within the limit only");
        assert!(!auto_accepts(&s, 0, true), "an unknown size (a link) is asked about");
        assert!(!auto_accepts(&Settings::default(), 1, true), "off by default");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 + 3), "5.0 MiB");
        assert_eq!(human_size(152 * 1024 * 1024), "152 MiB");
        assert_eq!(human_size(1024 * 1024 - 20), "1.0 MiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn the_frontend_payload_is_the_engine_json() {
        let e = Event::TransferOffered {
            id: 4,
            direction: Direction::Incoming,
            peer: "bob@localhost/demo".into(),
            name: "a.txt".into(),
            size: 3,
            description: None,
            resume_from: 0,
            files: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "transfer_offered");
        assert_eq!(v["id"], 4);
    }
}
