//! `skiff-desktop`: the Tauri shell of Skiff. It registers the commands
//! (`commands`), forwards engine events to the window (`events`), and runs the demo
//! (`demo`) when no account is remembered. The engine does the rest.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod demo;
mod error;
mod events;
mod secrets;
mod settings;
mod state;

#[cfg(test)]
mod bindings;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use skiff_engine::store::Store;
use tauri::{AppHandle, Emitter, Manager, RunEvent};

use crate::settings::{RememberedAccount, Settings};
use crate::state::AppState;

/// Where the desktop keeps its history and settings (`skiff_engine::config::data_dir`,
/// shared with the CLI).
pub fn data_dir() -> PathBuf {
    skiff_engine::config::data_dir()
}

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
        .unwrap_or_else(|_| "info,skiff::xml=warn,tao=warn,wry=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();

    let dir = data_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    let (store, recovered) = Store::open_or_recover(&dir.join("history.sqlite3"))?;
    let store = Arc::new(store);
    // A damaged history was moved aside: the app starts with a new one, and says so.
    let history_notice = recovered.map(|r| r.to_string());

    // Files given on the command line, to send (the window asks to whom).
    let launch_files = files_from_args(std::env::args().skip(1), &std::env::current_dir().unwrap_or_default());
    let app = tauri::Builder::default()
        // First: a second launch hands its files over, focuses this window and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, cwd| {
            let files = files_from_args(argv.into_iter().skip(1), std::path::Path::new(&cwd));
            tracing::info!("another launch: focusing the window; it hands over {} file(s) to send", files.len());
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.show();
                let _ = w.set_focus();
            }
            hand_over_files(app, files);
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(AppState::new(store))
        // Files dragged into the window are hashed from that moment on, before they
        // are dropped on a contact, so their offers carry the hashes.
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::DragDrop(tauri::DragDropEvent::Enter { paths, .. }) = event {
                let (app, paths) = (window.app_handle().clone(), paths.clone());
                tauri::async_runtime::spawn(async move { app.state::<AppState>().prepare(&paths).await });
            }
        })
        .invoke_handler(commands::handler())
        .setup(move |app| {
            let handle = app.handle().clone();
            hand_over_files(app.handle(), launch_files.clone());
            if let Some(notice) = history_notice.clone() {
                events::notify("Skiff started a new transfer history", &notice);
                *app.state::<AppState>().start_notice.blocking_lock() = Some(notice);
            }
            tauri::async_runtime::spawn(startup(handle.clone()));
            tauri::async_runtime::spawn(exit_on_signal(handle));
            Ok(())
        })
        .build(tauri::generate_context!("../tauri.conf.json"))
        .context("cannot start the window")?;

    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            tauri::async_runtime::block_on(shutdown(handle.clone()));
        }
    });
    Ok(())
}

/// Without a remembered account: start the demo and sign in as alice. With one, the
/// UI shows the sign-in form filled from `remembered_account` (no password is kept).
/// The existing files and folders among command-line arguments (relative to `cwd`);
/// anything else (options, URLs, missing paths) is left out.
fn files_from_args(args: impl IntoIterator<Item = String>, cwd: &std::path::Path) -> Vec<String> {
    args.into_iter()
        .filter(|a| !a.starts_with('-'))
        .map(|a| {
            let p = std::path::Path::new(&a);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.join(p)
            }
        })
        .filter(|p| p.exists())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// Files to send that arrived from a launch: kept until the window takes them
/// (`take_pending_files`), and announced with `skiff://open-files`.
fn hand_over_files(app: &AppHandle, files: Vec<String>) {
    if files.is_empty() {
        return;
    }
    let state = app.state::<AppState>();
    let mut pending = state.pending_files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    pending.extend(files);
    let _ = app.emit("skiff://open-files", pending.clone());
}

async fn startup(app: AppHandle) {
    if !sign_in_remembered(&app).await {
        start_demo(&app).await;
    }
    app.state::<AppState>().startup_done();
}

/// Signs the remembered account in with the password kept in the OS keyring. False
/// when there is no remembered account; a failure is kept for the sign-in form (a
/// refused password is forgotten).
async fn sign_in_remembered(app: &AppHandle) -> bool {
    let state = app.state::<AppState>();
    let Some(acc) = RememberedAccount::load(&state.store) else { return false };
    let jid = acc.jid.clone();
    let password = match secrets::blocking(move || secrets::load(&jid)).await {
        Ok(Some(p)) => p,
        Ok(None) => return true,
        Err(e) => {
            tracing::info!("keyring: {e:?}");
            return true;
        }
    };
    let result = async {
        let form = skiff_engine::AccountForm {
            jid: acc.jid.clone(),
            password: skiff_engine::Secret::new(password),
            server: acc.server.clone(),
            tls: acc.tls,
            ca_file: acc.ca_file.clone(),
            resource: None,
            default_resource: state::default_resource(),
        };
        let cfg = form.config()?;
        let tcfg = Settings::load(&state.store).transfer_config()?;
        state.sign_in(app, cfg, tcfg, false, state.store.clone()).await
    }
    .await;
    match result {
        Ok(jid) => tracing::info!("signed in as {jid} with the kept password"),
        Err(e) => {
            tracing::warn!("signing in {} with the kept password failed: {e}", acc.jid);
            if e.code == "auth-failed" {
                let jid = acc.jid.clone();
                let _ = secrets::blocking(move || secrets::forget(&jid)).await;
            }
            *state.start_error.lock().await = Some(e);
        }
    }
    true
}

async fn start_demo(app: &AppHandle) {
    let state = app.state::<AppState>();
    if RememberedAccount::load(&state.store).is_some() || std::env::var_os("SKIFF_NO_DEMO").is_some() {
        return;
    }
    tracing::info!("no remembered account: starting the demo");
    let demo = match demo::Demo::start().await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!("demo: {e:#}");
            let _ =
                app.emit("skiff://demo-error", error::AppError::new(crate::error::ErrorCode::Demo, format!("{e:#}")));
            return;
        }
    };
    let alice = demo.alice.clone();
    let history = match Store::open(&demo::demo_dir().join("alice/history.sqlite3")) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!("demo: {e}");
            return;
        }
    };
    *state.demo.lock().await = Some(demo);
    let mut tcfg = match Settings::load(&state.store).transfer_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("settings: {e}; using defaults for the demo");
            skiff_engine::transfer::TransferConfig::new(skiff_engine::transfer::settings::default_download_dir())
        }
    };
    demo::loopback(&mut tcfg);
    match state.sign_in(app, alice, tcfg, true, history).await {
        Ok(jid) => tracing::info!("demo: alice signed in as {jid}"),
        Err(e) => {
            tracing::error!("demo: alice cannot sign in: {e}");
            let _ = app.emit("skiff://demo-error", e);
        }
    }
}

/// SIGTERM / SIGINT end the app like closing the window (so the demo server stops).
#[cfg(unix)]
async fn exit_on_signal(app: AppHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("signal: quitting");
    app.exit(0);
}

/// Ctrl+C in a console ends the app like closing the window.
#[cfg(not(unix))]
async fn exit_on_signal(app: AppHandle) {
    if tokio::signal::ctrl_c().await.is_ok() {
        tracing::info!("ctrl-c: quitting");
        app.exit(0);
    }
}

async fn shutdown(app: AppHandle) {
    let state = app.state::<AppState>();
    state.sign_out(&app).await;
    let demo = state.demo.lock().await.take();
    if let Some(demo) = demo {
        demo.stop().await;
    }
}
