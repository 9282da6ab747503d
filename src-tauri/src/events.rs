//! The edge between the engine and the frontend: every engine `Event` becomes the
//! Tauri event `skiff://event` with the event's own JSON as payload. Here too: the
//! desktop's answer to offers (auto-accept by size, or a notification with Accept /
//! Decline) and notifications of finished transfers while the window is in the
//! background.

use std::sync::Arc;

use skiff_engine::store::{Direction, Store};
use skiff_engine::transfer::Transfers;
use skiff_engine::{Client, Event};
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::broadcast::{error::RecvError, Receiver};

use crate::settings::Settings;

/// Frontend event carrying one engine `Event`.
pub const EVENT: &str = "skiff://event";
/// Frontend event asking the UI to open the offer dialog of a transfer id.
pub const FOCUS_OFFER: &str = "skiff://focus-offer";

/// Forwards the session's events until the task is aborted (at sign-out). `store` is
/// the user's store (settings); the history is the engine's.
pub async fn forward(app: AppHandle, client: Client, transfers: Transfers, store: Arc<Store>, mut rx: Receiver<Event>) {
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

/// What the shell itself does about an event.
fn react(app: &AppHandle, client: &Client, transfers: &Transfers, store: &Store, event: &Event) {
    match event {
        Event::TransferOffered { id, direction, peer, name, size, description: _, resume_from }
            if direction == "incoming" && *resume_from == 0 =>
        {
            let settings = Settings::load(store);
            let bare = peer.split('/').next().unwrap_or(peer);
            let contact = client.roster().into_iter().find(|c| c.jid == bare);
            // A size of 0 is also how a link of unknown size is offered: never auto-accepted.
            let known_size = *size > 0;
            if settings.auto_accept_max_bytes > 0
                && known_size
                && *size <= settings.auto_accept_max_bytes
                && contact.is_some()
            {
                tracing::info!("auto-accepting {name} ({size} bytes) from {bare}");
                if let Err(e) = transfers.accept(*id, Some(settings.download_dir.into())) {
                    tracing::warn!("auto-accept of {id}: {e}");
                }
                return;
            }
            let who = contact.and_then(|c| c.name).unwrap_or_else(|| bare.to_owned());
            offer_notification(app.clone(), transfers.clone(), store, *id, bare, who);
        }
        Event::TransferCompleted { id, name, size, .. } if !window_focused(app) => {
            let incoming = transfers.store().get(*id).map(|r| r.direction == Direction::Incoming).unwrap_or(false);
            let summary = if incoming { "File received" } else { "File sent" };
            notify(summary, &format!("{} ({})", plain_text(name, 120), human_size(*size)));
        }
        Event::TransferFailed { name, error, .. } if !window_focused(app) => {
            notify("Transfer failed", &format!("{}: {}", plain_text(name, 120), plain_text(error, 300)));
        }
        _ => {}
    }
}

fn window_focused(app: &AppHandle) -> bool {
    app.get_webview_window("main").and_then(|w| w.is_focused().ok()).unwrap_or(false)
}

/// A plain notification; failures (no notification service) are only logged.
fn notify(summary: &str, body: &str) {
    let r =
        notify_rust::Notification::new().appname("Skiff").summary(summary).body(body).icon(NOTIFICATION_ICON).show();
    if let Err(e) = r {
        tracing::info!("no desktop notification ({e}): {summary}: {body}");
    }
}

/// Icon name of notifications: the name the .deb bundle installs the app icon under.
const NOTIFICATION_ICON: &str = "skiff-desktop";

/// How long an offer's notification stays: the engine's offer timeout (5 minutes).
const OFFER_NOTIFICATION_MS: u32 = 300_000;

/// Peers with an offer notification on screen at once; offers from others show only
/// in the window (whose list holds them all).
const MAX_NOTIFIED_PEERS: usize = 8;

/// The offer notifications on screen: one per peer, updated as more offers come.
#[derive(Default)]
struct OfferNotes {
    by_peer: std::collections::HashMap<String, PeerNote>,
}

#[derive(Default)]
struct PeerNote {
    /// The notification's id once shown (later offers replace it in place).
    id: Option<u32>,
    /// The offers it stands for: id, file name, size.
    offers: Vec<(i64, String, u64)>,
    /// Who, as shown.
    who: String,
}

fn offer_notes() -> &'static std::sync::Mutex<OfferNotes> {
    static NOTES: std::sync::OnceLock<std::sync::Mutex<OfferNotes>> = std::sync::OnceLock::new();
    NOTES.get_or_init(Default::default)
}

/// Peer-supplied text for a notification body: servers interpret a subset of HTML
/// there, so `&`, `<`, `>` are escaped; control characters and bidi overrides are
/// dropped; long text is cut with an ellipsis.
pub fn plain_text(s: &str, max_chars: usize) -> String {
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}');
    let kept: Vec<char> = s.chars().filter(|&c| !c.is_control() && !bidi(c)).collect();
    let mut text: String = kept.iter().take(max_chars).collect();
    if kept.len() > max_chars {
        text.push('…');
    }
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// What a peer's offer notification says, and its actions.
fn note_content(note: &PeerNote) -> (String, Vec<(&'static str, &'static str)>) {
    match note.offers.as_slice() {
        [(_, name, size)] => (
            format!("{} wants to send {} ({})", note.who, plain_text(name, 120), human_size(*size)),
            vec![("default", "Open"), ("accept", "Accept"), ("reject", "Reject")],
        ),
        many => (
            format!("{} wants to send {} files", note.who, many.len()),
            vec![("default", "Open"), ("reject", "Decline all")],
        ),
    }
}

fn build_note(note: &PeerNote) -> notify_rust::Notification {
    let (body, actions) = note_content(note);
    let mut n = notify_rust::Notification::new();
    n.appname("Skiff")
        .summary("Incoming file")
        .body(&body)
        .icon(NOTIFICATION_ICON)
        .timeout(notify_rust::Timeout::Milliseconds(OFFER_NOTIFICATION_MS));
    for (key, label) in actions {
        n.action(key, label);
    }
    if let Some(id) = note.id {
        n.id(id);
    }
    n
}

/// Announces offer `id` from `peer`: a new notification for the peer (one thread waits
/// for its action, at most [`MAX_NOTIFIED_PEERS`] such threads, none from the async
/// runtime's pool), or the peer's notification updated in place ("carol wants to send
/// 12 files"). Accept takes one file; for several the notification offers Open and
/// Decline all.
fn offer_notification(app: AppHandle, transfers: Transfers, store: &Store, id: i64, peer: &str, who: String) {
    let download_dir = Settings::load(store).download_dir;
    let offer = transfers.store().get(id).map(|r| (id, r.file_name, r.size)).unwrap_or((id, String::new(), 0));
    let mut notes = offer_notes().lock().unwrap();
    if let Some(note) = notes.by_peer.get_mut(peer) {
        note.offers.push(offer);
        if note.id.is_some() {
            if let Err(e) = build_note(note).show() {
                tracing::info!("cannot update the notification for {peer}: {e}");
            }
        }
        return;
    }
    if notes.by_peer.len() >= MAX_NOTIFIED_PEERS {
        tracing::info!("no notification for offer {id}: {MAX_NOTIFIED_PEERS} peers are notified already");
        return;
    }
    notes.by_peer.insert(peer.to_owned(), PeerNote { id: None, offers: vec![offer], who: plain_text(&who, 80) });
    drop(notes);
    let peer = peer.to_owned();
    let spawned = std::thread::Builder::new().name("offer-notification".into()).spawn(move || {
        let shown = {
            let mut notes = offer_notes().lock().unwrap();
            let Some(note) = notes.by_peer.get_mut(&peer) else { return };
            let shown = build_note(note).show();
            if let Ok(h) = &shown {
                note.id = Some(h.id());
            }
            shown
        };
        let handle = match shown {
            Ok(h) => h,
            Err(e) => {
                tracing::info!("no desktop notification for {peer} ({e}); the in-app dialog answers the offers");
                offer_notes().lock().unwrap().by_peer.remove(&peer);
                return;
            }
        };
        handle.wait_for_action(|action| {
            let offers = offer_notes().lock().unwrap().by_peer.remove(&peer).map(|n| n.offers).unwrap_or_default();
            let result = match (action, offers.as_slice()) {
                ("accept", [(id, _, _)]) => {
                    transfers.accept(*id, Some(download_dir.clone().into())).map_err(|e| e.to_string())
                }
                ("reject", _) => offers
                    .iter()
                    .map(|(id, _, _)| transfers.reject(*id).map_err(|e| e.to_string()))
                    .find(Result::is_err)
                    .unwrap_or(Ok(())),
                ("default", _) => {
                    if let Some(w) = app.get_webview_window("main") {
                        let _ = w.unminimize();
                        let _ = w.show();
                        let _ = w.set_focus();
                    }
                    let first = offers.first().map(|o| o.0).unwrap_or(0);
                    app.emit(FOCUS_OFFER, first).map_err(|e| e.to_string())
                }
                _ => Ok(()), // closed or expired: the in-app dialog still answers them
            };
            if let Err(e) = result {
                tracing::info!("notification action {action} for {peer}: {e}");
            }
        });
        // However it ended, the next offer from this peer gets a new notification.
        offer_notes().lock().unwrap().by_peer.remove(&peer);
    });
    if let Err(e) = spawned {
        tracing::warn!("no notification thread: {e}");
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
        // Bidi overrides (a name that shows as "photo.jpg" but is "gpj.exe") and control
        // characters go.
        assert_eq!(plain_text("photo\u{202E}gpj.exe\n\r\t", 100), "photogpj.exe");
        assert_eq!(plain_text(&"a".repeat(200), 120), format!("{}…", "a".repeat(120)));
        assert_eq!(plain_text("日本語", 2), "日本…");
    }

    #[test]
    fn several_offers_from_one_peer_share_a_notification() {
        let mut note = PeerNote { id: None, offers: vec![(1, "<a>.txt".into(), 10)], who: "carol".into() };
        let (body, actions) = note_content(&note);
        assert_eq!(body, "carol wants to send &lt;a&gt;.txt (10 B)");
        assert!(actions.iter().any(|(k, _)| *k == "accept"));
        note.offers.extend((2..=12).map(|i| (i, format!("f{i}"), 1)));
        let (body, actions) = note_content(&note);
        assert_eq!(body, "carol wants to send 12 files");
        assert!(!actions.iter().any(|(k, _)| *k == "accept"), "no Accept all from a notification");
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
            direction: "incoming".into(),
            peer: "bob@localhost/demo".into(),
            name: "a.txt".into(),
            size: 3,
            description: None,
            resume_from: 0,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "transfer_offered");
        assert_eq!(v["id"], 4);
    }
}
