//! The desktop app end to end: the real `skiff-desktop` window under Xvfb, driven over
//! WebDriver (tauri-driver + WebKitWebDriver), signed in to a real Prosody, with the
//! `skiff` CLI as the contact on the other side and dunst as the notification daemon.
//!
//! One scenario, in order: sign in; the contact shows online; set loopback streamhosts
//! and in-band only; a file dropped on the contact arrives intact while the card shows
//! progress and the route; the contact sends a file back, the offer raises a desktop
//! notification and the in-app dialog, and the notification's Accept action starts the
//! transfer (SOCKS5 direct this time); a second offer is declined from its
//! notification; three offers at once share one notification, updated in place,
//! with Decline all and no Accept; after a restart of the app the history lists both transfers;
//! switching to 简体中文 changes the labels.
//!
//! With `SKIFF_SCREENSHOTS=DIR` the run also saves the screenshots used in docs/
//! (`SKIFF_SCREENSHOT_THEME=dark` for the dark ones).

use std::path::{Path, PathBuf};

use serde_json::json;
use skiff_tests::cli::SkiffProcess;
use skiff_tests::desktop::{App, Desktop};
use skiff_tests::peer::{random_file, sha256_file};
use skiff_tests::prosody::openssl_fingerprint;
use skiff_tests::{Prosody, ProsodyOptions};

const OUT_SIZE: u64 = 3 * 1024 * 1024 + 17;
const IN_SIZE: u64 = 5 * 1024 * 1024 + 3;

struct Shots {
    dir: Option<PathBuf>,
    theme: String,
}

impl Shots {
    fn from_env() -> Shots {
        let dir = std::env::var_os("SKIFF_SCREENSHOTS").map(PathBuf::from);
        if let Some(d) = &dir {
            std::fs::create_dir_all(d).unwrap();
        }
        let theme = std::env::var("SKIFF_SCREENSHOT_THEME").unwrap_or_else(|_| "light".to_owned());
        Shots { dir, theme }
    }

    /// Saves a screenshot once the transient messages are gone.
    async fn take(&self, desktop: &Desktop, app: &App, name: &str) {
        if let Some(d) = &self.dir {
            app.wait_js("return document.querySelectorAll('.toast').length === 0", 15, "the toasts to go")
                .await
                .unwrap();
            let path = d.join(format!("{name}-{}.png", self.theme));
            desktop.screenshot(&path, name == "offer").await.unwrap();
            eprintln!("screenshot: {}", path.display());
        }
    }
}

async fn sign_in(desktop: &Desktop, app: &App, server: &Prosody, first_time: bool) {
    app.wait_shown("signin-submit", 20).await.unwrap();
    if first_time {
        app.type_into("signin-jid", &server.jid("alice")).await.unwrap();
        app.click_css("[data-testid=signin-advanced] > summary").await.unwrap();
        app.wait_shown("signin-server", 5).await.unwrap();
        app.type_into("signin-server", &format!("127.0.0.1:{}", server.c2s_port)).await.unwrap();
        app.select("signin-tls", "starttls").await.unwrap();
        app.type_into("signin-ca", &server.ca_file.display().to_string()).await.unwrap();
    } else {
        // Remembered: the address is filled in, the password is not kept.
        let jid = app.js("return document.querySelector('[data-testid=signin-jid]').value", vec![]).await.unwrap();
        assert_eq!(jid, json!(server.jid("alice")), "the remembered address is filled in");
    }
    app.type_into("signin-password", &server.password("alice")).await.unwrap();
    app.click("signin-submit").await.unwrap();
    let main = app
        .wait_js(
            "const e = document.querySelector('[data-testid=account-jid]'); return !!e && e.textContent.includes('alice@')",
            30,
            "the main window",
        )
        .await;
    if let Err(e) = main {
        let _ = desktop.screenshot(Path::new("/tmp/skiff-signin-failed.png"), false).await;
        let page = app.js("return document.body.innerText", vec![]).await;
        panic!("{e}\npage: {page:?}\napp log:\n{}", desktop.app_log_tail());
    }
}

/// Opens the settings, lets `edit` change them, saves.
async fn with_settings<F, Fut>(app: &App, edit: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    app.click("open-settings").await.unwrap();
    app.wait_shown("settings-dialog", 10).await.unwrap();
    edit().await;
    app.click("settings-save").await.unwrap();
    app.wait_hidden("settings-dialog", 10).await.expect("the settings to close");
}

async fn set_checkbox(app: &App, testid: &str, on: bool) {
    let now =
        app.js(&format!("return document.querySelector('[data-testid={testid}]').checked"), vec![]).await.unwrap();
    if now != json!(on) {
        app.click(testid).await.unwrap();
    }
}

/// The id of the newest transfer card whose name is `name`.
async fn card_id(app: &App, name: &str) -> i64 {
    let v = app
        .wait_js_args(
            "for (const c of document.querySelectorAll('[data-testid^=transfer-]')) {
               const m = /^transfer-(\\d+)$/.exec(c.dataset.testid);
               if (m && c.querySelector('.transfer-name')?.textContent === arguments[0]) return Number(m[1]);
             }
             return 0;",
            vec![json!(name)],
            30,
            &format!("a card for {name}"),
        )
        .await
        .unwrap();
    v.as_i64().unwrap()
}

/// Waits until card `id` is completed and checks how it was verified (`sha256`,
/// `md5`, `none`): a completed card always says so.
async fn wait_card_done(app: &App, id: i64, verified: &str, secs: u64) {
    app.wait_js_args(
        "const c = document.querySelector(`[data-testid=transfer-${arguments[0]}]`);
         return !!c && c.dataset.state === 'completed' && c.dataset.verified === arguments[1]",
        vec![json!(id), json!(verified)],
        secs,
        &format!("transfer {id} completed, verified {verified:?}"),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

fn file_named(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    assert!(p.exists(), "{} missing; the folder has {:?}", p.display(), std::fs::read_dir(dir).map(|r| r.count()));
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_app_sends_receives_notifies_and_keeps_history() {
    let shots = Shots::from_env();
    let server = Prosody::start(ProsodyOptions::default()).expect("prosody");
    let files = tempfile::tempdir().unwrap();
    let bob_data = tempfile::tempdir().unwrap();
    let bob_dl = tempfile::tempdir().unwrap();

    // bob (the `skiff` CLI) waits for one file.
    let bob_dir = bob_dl.path().display().to_string();
    let mut bob = SkiffProcess::start(
        &server,
        "bob",
        bob_data.path(),
        &["receive", "--dir", &bob_dir, "--accept", "all", "--count", "1"],
    );
    bob.expect(30, "bob ready", |v| v["type"] == "ready").await;

    let desktop = Desktop::start().expect("the private desktop (Xvfb, D-Bus, dunst, tauri-driver)");
    let app = desktop.launch().await.expect("the app");
    shots.take(&desktop, &app, "signin").await;

    // Sign in; bob shows online.
    sign_in(&desktop, &app, &server, true).await;
    app.wait_js(
        "const e = document.querySelector('[data-testid=\"contact-bob@localhost\"]'); return !!e && e.dataset.presence !== 'offline' && e.dataset.presence",
        30,
        "bob online in the contact list",
    )
    .await
    .unwrap();

    // Loopback streamhosts (tests stay on 127.0.0.1), in-band only for the first file so
    // that its progress is slow enough to watch, and the theme for the screenshots.
    with_settings(&app, || async {
        app.click_css("details:has([data-testid=settings-streamhosts]) > summary").await.unwrap();
        app.type_into("settings-streamhosts", "127.0.0.1").await.unwrap();
        set_checkbox(&app, "method-s5b", false).await;
        set_checkbox(&app, "method-ibb", true).await;
        app.select("theme-select", &shots.theme).await.unwrap();
    })
    .await;

    // Record every progress value the card shows, as a user watching it would see it.
    app.js(
        "window.__seen = [];
         new MutationObserver((ms) => { for (const m of ms) {
             const v = m.target.getAttribute && m.target.getAttribute('aria-valuenow');
             if (m.attributeName === 'aria-valuenow' && v !== null) window.__seen.push(Number(v));
         } }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
         return true;",
        vec![],
    )
    .await
    .unwrap();

    // Drop a file on bob.
    let out_path = random_file(files.path(), "report.bin", OUT_SIZE, 11);
    app.drop_files("contact-bob@localhost", std::slice::from_ref(&out_path)).await.unwrap();
    let out_id = card_id(&app, "report.bin").await;
    let done = bob
        .expect(120, "bob's completion", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed")
        .await;
    assert_eq!(done["type"], "transfer_completed", "{done}");
    let got = file_named(bob_dl.path(), "report.bin");
    assert_eq!(sha256_file(&got), sha256_file(&out_path), "the dropped file arrives intact");
    // bob is a Skiff: he confirmed the SHA-256.
    wait_card_done(&app, out_id, "sha256", 30).await;
    assert_eq!(app.text(&format!("transfer-{out_id}-state")).await.unwrap(), "Confirmed");
    assert_eq!(app.text(&format!("transfer-{out_id}-route")).await.unwrap(), "In-band");
    let seen = app.js("return window.__seen", vec![]).await.unwrap();
    let seen: Vec<f64> = seen.as_array().unwrap().iter().filter_map(|v| v.as_f64()).collect();
    assert!(seen.iter().any(|v| *v > 0.0 && *v < 100.0), "the card showed progress between 0 and 100 %: {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "progress never goes back: {seen:?}");
    assert_eq!(seen.last().copied(), Some(100.0), "{seen:?}");
    drop(bob);

    // SOCKS5 again, first in line, for what comes back.
    with_settings(&app, || async {
        set_checkbox(&app, "method-s5b", true).await;
        app.click("method-s5b-up").await.unwrap();
    })
    .await;

    // bob sends a file: a notification and the in-app dialog; Accept in the notification.
    let in_path = random_file(files.path(), "photos.tar", IN_SIZE, 12);
    let in_arg = in_path.display().to_string();
    let mut bob_send = SkiffProcess::start(&server, "bob", bob_data.path(), &["send", "alice@localhost", &in_arg]);
    app.wait_shown("offer-dialog", 60).await.unwrap();
    assert_eq!(app.text("offer-file").await.unwrap(), "photos.tar");
    let note = desktop
        .wait_notification(30, "for bob's offer", |n| n.body.contains("photos.tar"))
        .await
        .unwrap_or_else(|e| panic!("{e}\napp log:\n{}", desktop.app_log_tail()));
    assert_eq!(note.summary, "Incoming file");
    assert_eq!(note.body, "bob wants to send photos.tar (5.0 MiB)");
    shots.take(&desktop, &app, "offer").await;
    let menu = desktop.invoke_action("accept").unwrap();
    assert!(menu.contains(",reject]"), "Decline is offered too: {menu}");
    let sent = bob_send
        .expect(120, "bob's send to finish", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed")
        .await;
    assert_eq!(sent["type"], "transfer_completed", "{sent}");
    let in_id = card_id(&app, "photos.tar").await;
    wait_card_done(&app, in_id, "sha256", 30).await;
    assert_eq!(app.text(&format!("transfer-{in_id}-state")).await.unwrap(), "Verified");
    assert_eq!(app.text(&format!("transfer-{in_id}-route")).await.unwrap(), "Direct");
    app.wait_hidden("offer-dialog", 10).await.expect("the dialog to close once the notification answered the offer");
    let received = file_named(&desktop.downloads(), "photos.tar");
    assert_eq!(sha256_file(&received), sha256_file(&in_path), "the accepted file arrives intact");
    shots.take(&desktop, &app, "main").await;
    drop(bob_send);

    // Another offer, declined from the notification: bob hears no.
    let notes = random_file(files.path(), "notes.txt", 1234, 13);
    let notes_arg = notes.display().to_string();
    let mut bob_send = SkiffProcess::start(&server, "bob", bob_data.path(), &["send", "alice@localhost", &notes_arg]);
    app.wait_shown("offer-dialog", 60).await.unwrap();
    desktop.wait_notification(30, "for notes.txt", |n| n.body.contains("notes.txt")).await.unwrap();
    desktop.invoke_action("reject").unwrap();
    let answer = bob_send
        .expect(60, "bob's answer", |v| {
            ["transfer_rejected", "transfer_completed", "transfer_failed"].contains(&v["type"].as_str().unwrap_or(""))
        })
        .await;
    assert_eq!(answer["type"], "transfer_rejected", "{answer}");
    app.wait_hidden("offer-dialog", 10).await.expect("the dialog to close once the notification declined the offer");
    assert!(!desktop.downloads().join("notes.txt").exists());
    drop(bob_send);

    // Three offers at once: one prompt in the window listing the three (accept all,
    // decline all, or choose), one notification for bob ("bob wants to send 3 files").
    // Unchecking part2 and accepting takes part1 and part3 and declines part2.
    let parts: Vec<String> = (1..=3u64)
        .map(|i| random_file(files.path(), &format!("part{i}.bin"), 1000 + i, 20 + i).display().to_string())
        .collect();
    // One by one, as from a client without batches.
    let mut args = vec!["send", "--one-by-one", "alice@localhost"];
    args.extend(parts.iter().map(String::as_str));
    let mut bob_send = SkiffProcess::start(&server, "bob", bob_data.path(), &args);
    app.wait_js(
        "return document.querySelectorAll('[data-testid=offer-dialog].is-group [data-testid^=offer-group-item-]').length === 3",
        60,
        "one prompt for bob's three offers",
    )
    .await
    .expect("three offers in one prompt");
    let note = desktop
        .wait_notification(30, "for the three offers", |n| n.body == "bob wants to send 3 files")
        .await
        .unwrap_or_else(|e| panic!("{e}\napp log:\n{}", desktop.app_log_tail()));
    assert_eq!(note.summary, "Incoming files");
    shots.take(&desktop, &app, "offer-group").await;
    app.js(
        "const li = [...document.querySelectorAll('[data-testid^=offer-group-item-]')].find(l => l.textContent.includes('part2.bin')); li.querySelector('input[type=checkbox]').click();",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(app.text("offer-accept").await.unwrap().trim(), "Accept 2");
    app.click("offer-accept").await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let answer = bob_send
            .expect(60, "bob's answers", |v| {
                ["transfer_rejected", "transfer_completed", "transfer_failed"]
                    .contains(&v["type"].as_str().unwrap_or(""))
            })
            .await;
        answers.push((answer["name"].as_str().unwrap_or("").to_owned(), answer["type"].as_str().unwrap().to_owned()));
    }
    answers.sort();
    assert_eq!(
        answers,
        [
            ("part1.bin".to_owned(), "transfer_completed".to_owned()),
            ("part2.bin".to_owned(), "transfer_rejected".to_owned()),
            ("part3.bin".to_owned(), "transfer_completed".to_owned())
        ]
    );
    app.wait_hidden("offer-dialog", 10).await.expect("the prompt to close once all three were answered");
    for n in ["part1.bin", "part3.bin"] {
        file_named(&desktop.downloads(), n);
    }
    assert!(!desktop.downloads().join("part2.bin").exists(), "the declined file arrived");
    drop(bob_send);

    // Four more from bob (a count the first prompt's notification never showed),
    // declined from the notification: "Decline all" there, no Accept for several files.
    let more: Vec<String> = (4..=7u64)
        .map(|i| random_file(files.path(), &format!("part{i}.bin"), 1000 + i, 20 + i).display().to_string())
        .collect();
    let mut args = vec!["send", "--one-by-one", "alice@localhost"];
    args.extend(more.iter().map(String::as_str));
    let mut bob_send = SkiffProcess::start(&server, "bob", bob_data.path(), &args);
    desktop.wait_notification(30, "for four offers", |n| n.body == "bob wants to send 4 files").await.unwrap();
    let menu = desktop.invoke_action("reject").unwrap();
    assert!(!menu.contains(",accept]"), "no Accept for several files from a notification: {menu}");
    for _ in 0..4 {
        let answer = bob_send
            .expect(60, "bob's answers", |v| {
                ["transfer_rejected", "transfer_completed", "transfer_failed"]
                    .contains(&v["type"].as_str().unwrap_or(""))
            })
            .await;
        assert_eq!(answer["type"], "transfer_rejected", "{answer}");
    }
    app.wait_hidden("offer-dialog", 10).await.expect("the prompt to close once all four were declined");
    drop(bob_send);

    // A folder from bob (a Skiff): one prompt for the whole folder, accepted once; it
    // lands as the same tree; one card counts its files.
    let album = files.path().join("album");
    let mut album_files = std::collections::BTreeMap::new();
    for (i, rel) in ["2024/a.jpg", "2023/a.jpg", "notes/empty.txt", "写真/b.png", "z.bin"].iter().enumerate() {
        let path = album.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let size = if rel.ends_with("empty.txt") { 0 } else { 3000 + i as u64 * 1000 };
        random_file(path.parent().unwrap(), path.file_name().unwrap().to_str().unwrap(), size, 40 + i as u64);
        album_files.insert(rel.to_string(), sha256_file(&path));
    }
    let album_arg = album.display().to_string();
    let mut bob_send = SkiffProcess::start(&server, "bob", bob_data.path(), &["send", "alice@localhost", &album_arg]);
    app.wait_shown("offer-batch", 60).await.expect("one prompt for bob's folder");
    assert_eq!(app.text("offer-batch-name").await.unwrap().trim(), "album");
    assert!(app.text("offer-dialog").await.unwrap().contains("5 files"), "the prompt counts the files");
    desktop
        .wait_notification(30, "for the folder", |n| n.body.starts_with("bob wants to send the folder album (5 files"))
        .await
        .unwrap_or_else(|e| panic!("{e}\napp log:\n{}", desktop.app_log_tail()));
    app.click("offer-batch-toggle").await.unwrap();
    app.wait_js(
        "return document.querySelectorAll('[data-testid^=offer-batch-file-]').length === 5",
        20,
        "the folder's five files listed",
    )
    .await
    .expect("the file list");
    shots.take(&desktop, &app, "offer-folder").await;
    app.click("offer-accept").await.unwrap();
    let done =
        bob_send.expect(60, "bob's end", |v| v["type"] == "transfer_completed" || v["type"] == "transfer_failed").await;
    assert_eq!(done["type"], "transfer_completed", "{done}");
    assert_eq!(done["verified"], "sha256", "{done}");
    let landed = desktop.downloads().join("album");
    for (rel, sha) in &album_files {
        let got = landed.join(rel);
        assert!(got.is_file(), "{} is missing", got.display());
        assert_eq!(&sha256_file(&got), sha, "{rel}");
    }
    let album_card = app
        .wait_js(
            "for (const c of document.querySelectorAll('[data-testid^=transfer-][data-kind=batch]')) {
               const m = /^transfer-(\\d+)$/.exec(c.dataset.testid);
               if (m && c.textContent.includes('album')) return Number(m[1]);
             }
             return 0;",
            30,
            "the folder's card",
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    wait_card_done(&app, album_card, "sha256", 30).await;
    assert_eq!(app.text(&format!("transfer-{album_card}-count")).await.unwrap().trim(), "5 files");
    app.click(&format!("transfer-{album_card}-expand")).await.unwrap();
    app.wait_js_args(
        "return document.querySelectorAll(`[data-testid^=transfer-${arguments[0]}-file-]`).length === 5",
        vec![json!(album_card)],
        20,
        "the card's five files",
    )
    .await
    .unwrap();
    shots.take(&desktop, &app, "folder-card").await;
    drop(bob_send);

    // bob shares a file the way Conversations does (HTTP upload + a link): the same
    // dialog, accepted in the window this time; the card says it came as a link.
    let link_path = random_file(files.path(), "menu.pdf", 700_001, 14);
    let link_arg = link_path.display().to_string();
    let mut bob_send = SkiffProcess::start(
        &server,
        "bob",
        bob_data.path(),
        &["send", "--method", "upload", "--desc", "tonight", "alice@localhost", &link_arg],
    );
    app.wait_shown("offer-dialog", 60).await.unwrap();
    assert_eq!(app.text("offer-file").await.unwrap(), "menu.pdf");
    assert_eq!(app.text("offer-size").await.unwrap(), "684 KiB");
    app.click("offer-accept").await.unwrap();
    let link_id = card_id(&app, "menu.pdf").await;
    // A link carries no checksum: received, and said to be not verified.
    wait_card_done(&app, link_id, "none", 30).await;
    assert_eq!(app.text(&format!("transfer-{link_id}-state")).await.unwrap(), "Not verified");
    assert_eq!(app.text(&format!("transfer-{link_id}-route")).await.unwrap(), "Link");
    let received = file_named(&desktop.downloads(), "menu.pdf");
    assert_eq!(sha256_file(&received), sha256_file(&link_path), "the linked file arrives intact");
    let up = bob_send.expect(30, "bob's upload", |v| v["type"] == "transfer_completed").await;
    assert_eq!(up["route"], "upload", "{up}");
    drop(bob_send);

    // Restart: the history keeps both transfers.
    app.close().await.unwrap();
    let app = desktop.launch().await.expect("the app again");
    sign_in(&desktop, &app, &server, false).await;
    app.click("tab-history").await.unwrap();
    app.wait_shown("history-table", 10).await.unwrap();
    for (id, dir) in [(out_id, "outgoing"), (in_id, "incoming")] {
        app.wait_js_args(
            "const r = document.querySelector(`[data-testid=history-${arguments[0]}]`); return !!r && r.dataset.state === 'completed' && r.dataset.direction === arguments[1]",
            vec![json!(id), json!(dir)],
            20,
            &format!("history row {id} ({dir}, completed)"),
        )
        .await
        .unwrap();
    }
    // The folder is one row that opens to its five files.
    let folder_row = app
        .wait_js(
            "const r = document.querySelector('[data-testid^=history-][data-kind=batch]'); return r ? Number(r.dataset.testid.slice(8)) : 0",
            20,
            "the folder's history row",
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap();
    let count = app
        .js(
            "return document.querySelector(`[data-testid=history-${arguments[0]}-count]`)?.textContent ?? ''",
            vec![json!(folder_row)],
        )
        .await
        .unwrap();
    assert!(count.as_str().is_some_and(|c| c.contains("5 files")), "{count} (row {folder_row})");
    app.click(&format!("history-{folder_row}-expand")).await.unwrap();
    app.wait_js_args(
        "return document.querySelectorAll(`[data-testid^=history-${arguments[0]}-file-]`).length === 5",
        vec![json!(folder_row)],
        20,
        "the folder's files in the history",
    )
    .await
    .unwrap();
    shots.take(&desktop, &app, "history").await;
    // The received file opens with its application, and shows in its folder (no file
    // manager on this bus: the folder opens).
    let photos = file_named(&desktop.downloads(), "photos.tar");
    app.click(&format!("history-{in_id}-open")).await.unwrap();
    desktop.wait_opened(&photos, 10).await.unwrap();
    app.click(&format!("history-{in_id}-show")).await.unwrap();
    desktop.wait_opened(photos.parent().unwrap(), 10).await.unwrap();

    // 简体中文.
    let before = app.text("tab-history").await.unwrap();
    with_settings(&app, || async {
        app.select("language-select", "zh-CN").await.unwrap();
    })
    .await;
    let after = app.text("tab-history").await.unwrap();
    assert_ne!(before, after);
    assert_eq!(after.trim(), "历史记录");
    let lang = app.js("return document.documentElement.lang", vec![]).await.unwrap();
    assert_eq!(lang, json!("zh-CN"));
    shots.take(&desktop, &app, "history-zh").await;
    app.close().await.unwrap();
}

/// Whether any file under `dir` contains `needle`.
fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if let Some(p) = any_file_contains(&path, needle) {
                return Some(p);
            }
        } else if meta.is_file() && meta.len() < 64 << 20 {
            if let Ok(bytes) = std::fs::read(&path) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return Some(path);
                }
            }
        }
    }
    None
}

async fn wait_main_window(desktop: &Desktop, app: &App, what: &str) {
    let main = app
        .wait_js(
            "const e = document.querySelector('[data-testid=account-jid]'); return !!e && e.textContent.includes('alice@')",
            30,
            what,
        )
        .await;
    if let Err(e) = main {
        let page = app.js("return document.body.innerText", vec![]).await;
        panic!("{e}\npage: {page:?}\napp log:\n{}", desktop.app_log_tail());
    }
}

/// A self-hosted server with its own certificate: the app shows it and trusts it only
/// when told to, keeps the pin, warns when it changes; the password goes to the OS
/// keyring only (a clear sentence when there is none), and the app signs in by itself
/// at the next start with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_trusts_a_self_signed_server_and_keeps_the_password_in_the_keyring() {
    let shots = Shots::from_env();
    let mut server = Prosody::start(ProsodyOptions::default()).expect("prosody");
    let first = server.serve_self_signed("first").unwrap();
    let password = server.password("alice");
    let mut desktop = Desktop::start().expect("the private desktop");

    // First sign-in, no CA file, remember the password; the bus has no keyring yet.
    let app = desktop.launch().await.expect("the app");
    app.wait_shown("signin-submit", 20).await.unwrap();
    app.type_into("signin-jid", &server.jid("alice")).await.unwrap();
    app.click_css("[data-testid=signin-advanced] > summary").await.unwrap();
    app.wait_shown("signin-server", 5).await.unwrap();
    app.type_into("signin-server", &format!("127.0.0.1:{}", server.c2s_port)).await.unwrap();
    app.type_into("signin-password", &password).await.unwrap();
    set_checkbox(&app, "signin-remember", true).await;
    set_checkbox(&app, "signin-remember-password", true).await;
    app.click("signin-submit").await.unwrap();
    // The certificate is shown, with the fingerprint OpenSSL gives, and why.
    app.wait_shown("cert-dialog", 30).await.unwrap_or_else(|e| panic!("{e}\n{}", desktop.app_log_tail()));
    let shown = app
        .js("return document.querySelector('[data-testid=cert-fingerprint]').dataset.fingerprint", vec![])
        .await
        .unwrap();
    assert_eq!(shown, json!(format!("SHA256:{}", openssl_fingerprint(&first))));
    let changed =
        app.js("return document.querySelector('[data-testid=cert-dialog]').dataset.changed", vec![]).await.unwrap();
    assert_eq!(changed, json!("false"));
    shots.take(&desktop, &app, "certificate").await;
    app.click("cert-trust").await.unwrap();
    wait_main_window(&desktop, &app, "the main window after trusting").await;
    // No keyring service: said so, and the password is in no file.
    app.wait_shown("password-note", 15).await.unwrap();
    assert_eq!(any_file_contains(desktop.dir(), password.as_bytes()), None, "the password is on disk");
    app.close().await.unwrap();

    // With a keyring (unlocked, as after a desktop login): signed in, the pin holds
    // (no dialog), the password goes to the keyring.
    desktop.start_keyring().unwrap();
    let app = desktop.launch().await.expect("the app");
    app.wait_shown("signin-submit", 20).await.unwrap();
    app.type_into("signin-password", &password).await.unwrap();
    set_checkbox(&app, "signin-remember-password", true).await;
    app.click("signin-submit").await.unwrap();
    wait_main_window(&desktop, &app, "the main window with the pinned certificate").await;
    assert_eq!(
        desktop.keyring_lookup("alice@localhost").as_deref(),
        Some(password.as_str()),
        "app log:\n{}\nkeyring log:\n{}",
        desktop.app_log_tail(),
        std::fs::read_to_string(desktop.dir().join("keyring.log")).unwrap_or_default()
    );
    app.close().await.unwrap();

    // The next start signs in by itself.
    let app = desktop.launch().await.expect("the app");
    wait_main_window(&desktop, &app, "the main window without typing the password").await;
    app.close().await.unwrap();
    assert_eq!(any_file_contains(desktop.dir().join("data").as_path(), password.as_bytes()), None);

    // The server's certificate changes: the start is refused with a warning, and
    // signing in shows the new certificate as a change to confirm.
    let second = server.serve_self_signed("second").unwrap();
    let app = desktop.launch().await.expect("the app");
    app.wait_js(
        "const e = document.querySelector('[data-testid=signin-error]'); return !!e && !e.hidden && e.dataset.code",
        30,
        "the refused start",
    )
    .await
    .unwrap();
    let code =
        app.js("return document.querySelector('[data-testid=signin-error]').dataset.code", vec![]).await.unwrap();
    assert_eq!(code, json!("certificate-changed"));
    app.type_into("signin-password", &password).await.unwrap();
    app.click("signin-submit").await.unwrap();
    app.wait_shown("cert-dialog", 30).await.unwrap();
    let changed =
        app.js("return document.querySelector('[data-testid=cert-dialog]').dataset.changed", vec![]).await.unwrap();
    assert_eq!(changed, json!("true"));
    let shown = app
        .js("return document.querySelector('[data-testid=cert-fingerprint]').dataset.fingerprint", vec![])
        .await
        .unwrap();
    assert_eq!(shown, json!(format!("SHA256:{}", openssl_fingerprint(&second))));
    shots.take(&desktop, &app, "certificate-changed").await;
    app.click("cert-trust").await.unwrap();
    wait_main_window(&desktop, &app, "the main window after confirming the new certificate").await;
    assert_eq!(desktop.keyring_lookup("alice@localhost").as_deref(), Some(password.as_str()));
    // Signing out: not by itself next time; the kept password is gone.
    app.click("sign-out").await.unwrap();
    app.wait_shown("signin-submit", 20).await.unwrap();
    let mut gone = false;
    for _ in 0..50 {
        if desktop.keyring_lookup("alice@localhost").is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "the password is still in the keyring after signing out");
    app.close().await.unwrap();
}
