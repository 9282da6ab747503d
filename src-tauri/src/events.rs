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
            if settings.auto_accept_max_bytes > 0 && *size <= settings.auto_accept_max_bytes && contact.is_some() {
                tracing::info!("auto-accepting {name} ({size} bytes) from {bare}");
                if let Err(e) = transfers.accept(*id, Some(settings.download_dir.into())) {
                    tracing::warn!("auto-accept of {id}: {e}");
                }
                return;
            }
            let who = contact.and_then(|c| c.name).unwrap_or_else(|| bare.to_owned());
            let body = format!("{who} wants to send {name} ({})", human_size(*size));
            offer_notification(app.clone(), transfers.clone(), store, *id, body);
        }
        Event::TransferCompleted { id, name, size, .. } if !window_focused(app) => {
            let incoming = transfers.store().get(*id).map(|r| r.direction == Direction::Incoming).unwrap_or(false);
            let summary = if incoming { "File received" } else { "File sent" };
            notify(summary, &format!("{name} ({})", human_size(*size)));
        }
        Event::TransferFailed { name, error, .. } if !window_focused(app) => {
            notify("Transfer failed", &format!("{name}: {error}"));
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

/// "NAME wants to send FILE (SIZE)" with Accept / Decline. Clicking the body focuses
/// the window and asks the UI to open the offer dialog.
fn offer_notification(app: AppHandle, transfers: Transfers, store: &Store, id: i64, body: String) {
    let download_dir = Settings::load(store).download_dir;
    tauri::async_runtime::spawn_blocking(move || {
        let shown = notify_rust::Notification::new()
            .appname("Skiff")
            .summary("Incoming file")
            .body(&body)
            .icon(NOTIFICATION_ICON)
            .action("default", "Open")
            .action("accept", "Accept")
            .action("reject", "Reject")
            .timeout(notify_rust::Timeout::Milliseconds(OFFER_NOTIFICATION_MS))
            .show();
        let handle = match shown {
            Ok(h) => h,
            Err(e) => {
                tracing::info!("no desktop notification for offer {id} ({e}); the in-app dialog answers it");
                return;
            }
        };
        handle.wait_for_action(|action| {
            let result = match action {
                "accept" => transfers.accept(id, Some(download_dir.into())).map_err(|e| e.to_string()),
                "reject" => transfers.reject(id).map_err(|e| e.to_string()),
                "default" => {
                    if let Some(w) = app.get_webview_window("main") {
                        let _ = w.unminimize();
                        let _ = w.show();
                        let _ = w.set_focus();
                    }
                    app.emit(FOCUS_OFFER, id).map_err(|e| e.to_string())
                }
                _ => Ok(()), // closed or expired: the in-app dialog still answers it
            };
            if let Err(e) = result {
                tracing::info!("notification action {action} for offer {id}: {e}");
            }
        });
    });
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
