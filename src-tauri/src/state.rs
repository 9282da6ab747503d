//! The shell's state: the store (opened at start, it also holds the settings), the
//! signed-in session, and the demo server when one runs.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use skiff_engine::event::{Contact, ResourcePresence};
use skiff_engine::store::Store;
use skiff_engine::transfer::{TransferConfig, Transfers};
use skiff_engine::{AccountConfig, Client, Event};
use skiff_proto::jid::Jid;
use tauri::{AppHandle, Emitter};
use tokio::sync::Mutex;

use crate::error::{AppError, AppResult};

/// The signed-in account as the UI sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AccountView {
    /// Bare JID.
    pub jid: String,
    pub online: bool,
    /// Signed in to the local demo server.
    pub demo: bool,
}

/// A roster contact with its online resources.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ContactView {
    pub jid: String,
    pub name: Option<String>,
    pub subscription: skiff_engine::event::Subscription,
    pub pending_out: bool,
    pub groups: Vec<String>,
    pub resources: Vec<ResourcePresence>,
}

impl ContactView {
    pub fn new(c: Contact, resources: Vec<ResourcePresence>) -> ContactView {
        ContactView {
            jid: c.jid,
            name: c.name,
            subscription: c.subscription,
            pending_out: c.pending_out,
            groups: c.groups,
            resources,
        }
    }
}

/// One signed-in account.
#[derive(Debug)]
pub struct Session {
    pub client: Client,
    pub transfers: Transfers,
    pub jid: Jid,
    pub demo: bool,
    /// The history of this account (the demo keeps its own, apart from the user's).
    pub history: Arc<Store>,
    forward: tauri::async_runtime::JoinHandle<()>,
}

#[derive(Debug)]
pub struct AppState {
    /// The user's store: settings, and the history of real accounts.
    pub store: Arc<Store>,
    session: Mutex<Option<Session>>,
    pub demo: Mutex<Option<crate::demo::Demo>>,
    /// Becomes true when the startup (the demo's sign-in) is over, so that `account()`
    /// called by a window that loaded first does not answer "signed out" too early.
    started: tokio::sync::watch::Sender<bool>,
    /// Why the automatic sign-in at start (with the kept password) failed.
    pub start_error: Mutex<Option<AppError>>,
    /// Something the user must hear about the start (a damaged history moved aside).
    pub start_notice: Mutex<Option<String>>,
    /// Files handed over by a launch (this one's or a second one's), not yet taken
    /// by the window to ask to whom they go.
    pub pending_files: std::sync::Mutex<Vec<String>>,
}

/// How long a sign-in may take before the shell gives up.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(45);

impl AppState {
    pub fn new(store: Arc<Store>) -> AppState {
        AppState {
            store,
            session: Mutex::new(None),
            demo: Mutex::new(None),
            started: tokio::sync::watch::channel(false).0,
            start_error: Mutex::new(None),
            start_notice: Mutex::new(None),
            pending_files: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn startup_done(&self) {
        self.started.send_replace(true);
    }

    /// Waits (up to a minute) until the startup is over.
    pub async fn wait_started(&self) {
        let mut rx = self.started.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|done| *done)).await;
    }

    /// The running transfer engine, or `offline`.
    pub async fn transfers(&self) -> AppResult<Transfers> {
        self.session.lock().await.as_ref().map(|s| s.transfers.clone()).ok_or_else(AppError::offline)
    }

    /// Starts hashing files the user chose or dropped, ahead of their offers (nothing
    /// when signed out: they are hashed when sent).
    pub async fn prepare(&self, paths: &[std::path::PathBuf]) {
        if let Ok(t) = self.transfers().await {
            t.prepare(paths);
        }
    }

    /// Makes saved settings apply to the running session at once (transfers that start
    /// from now on). The demo keeps its streamhost on loopback.
    pub async fn apply_settings(&self, settings: &crate::settings::Settings) -> AppResult<()> {
        let mut cfg = settings.transfer_config()?;
        let session = self.session.lock().await;
        if let Some(s) = session.as_ref() {
            if s.demo {
                crate::demo::loopback(&mut cfg);
            }
            s.transfers.reconfigure(cfg).await;
        }
        Ok(())
    }

    /// The history of the signed-in account, else the user's.
    pub async fn history_store(&self) -> Arc<Store> {
        self.session.lock().await.as_ref().map(|s| s.history.clone()).unwrap_or_else(|| self.store.clone())
    }

    pub async fn client(&self) -> AppResult<Client> {
        self.session.lock().await.as_ref().map(|s| s.client.clone()).ok_or_else(AppError::offline)
    }

    pub async fn account(&self) -> Option<AccountView> {
        self.session.lock().await.as_ref().map(|s| AccountView {
            jid: s.jid.bare().to_string(),
            online: s.client.jid().is_some(),
            demo: s.demo,
        })
    }

    /// Signs in (replacing any session): starts the client, the transfer engine (before
    /// the first presence, so peers find file transfer in our disco#info) and the event
    /// forwarder, then waits until online. A failed sign-in carries the engine's
    /// `Event::Fatal` code.
    pub async fn sign_in(
        &self,
        app: &AppHandle,
        cfg: AccountConfig,
        tcfg: TransferConfig,
        demo: bool,
        history: Arc<Store>,
    ) -> AppResult<Jid> {
        self.sign_out(app).await;
        let account = cfg.jid.clone();
        // An account that signed in with SCRAM before refuses PLAIN (a downgrade).
        let mut cfg = cfg;
        cfg.require_scram = history.scram_required(&account.bare().to_string());
        // The certificate the user trusted for this account (or is trusting now).
        if cfg.trusted_certificates.is_empty() {
            cfg.trusted_certificates = history.certificate_pin(&account.bare().to_string()).into_iter().collect();
        }
        let client = Client::start(cfg);
        let mut watch = client.events();
        let forward_rx = client.events();
        let transfers = match Transfers::start(client.clone(), history.clone(), tcfg, &account) {
            Ok(t) => t,
            Err(e) => {
                client.disconnect().await;
                return Err(e.into());
            }
        };
        let forward = tauri::async_runtime::spawn(crate::events::forward(
            app.clone(),
            client.clone(),
            transfers.clone(),
            self.store.clone(),
            forward_rx,
        ));
        let online = tokio::time::timeout(SIGN_IN_TIMEOUT, client.wait_online()).await;
        let err = match online {
            Ok(Ok(jid)) => {
                *self.session.lock().await =
                    Some(Session { client, transfers, jid: jid.clone(), demo, history, forward });
                let _ = app.emit("skiff://account", self.account().await);
                return Ok(jid);
            }
            Ok(Err(e)) => fatal_of(&mut watch).unwrap_or_else(|| e.into()),
            Err(_) => {
                let reason = last_offline(&mut watch).unwrap_or_else(|| "no answer from the server".into());
                AppError::new(
                    crate::error::ErrorCode::Connect,
                    format!("could not sign in within {}s: {reason}", SIGN_IN_TIMEOUT.as_secs()),
                )
            }
        };
        forward.abort();
        client.disconnect().await;
        Err(err)
    }

    /// Signs out; nothing when not signed in.
    pub async fn sign_out(&self, app: &AppHandle) {
        let Some(s) = self.session.lock().await.take() else { return };
        s.forward.abort();
        s.client.disconnect().await;
        let _ = app.emit("skiff://account", Option::<AccountView>::None);
    }
}

/// The first `Event::Fatal` already received, as an error.
fn fatal_of(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Option<AppError> {
    while let Ok(e) = rx.try_recv() {
        if let Event::Fatal { code, message, untrusted } = e {
            return Some(AppError::from_fatal(code, &message, untrusted));
        }
    }
    None
}

fn last_offline(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Option<String> {
    let mut last = None;
    while let Ok(e) = rx.try_recv() {
        if let Event::Offline { reason, .. } = e {
            last = Some(reason);
        }
    }
    last
}

/// This installation's resource, `skiff-desktop-XXXXXX`: the same at every start (so a
/// peer's resume finds it), different on each machine and from the CLI's, so that two
/// Skiffs on one account never take each other's session. Kept beside the history.
pub fn default_resource() -> String {
    skiff_engine::config::persistent_resource(&crate::data_dir().join("resource"), "skiff-desktop")
}
