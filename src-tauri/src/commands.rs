//! The Tauri commands: each one translates its arguments into an engine call and the
//! result (or error) back. No protocol logic here. JavaScript passes camelCase
//! argument names (`caFile`, `nameContains`, ...), Tauri maps them to these.

use std::path::PathBuf;

use skiff_engine::store::{Direction, HistoryFilter, TransferRecord, TransferState};
use skiff_proto::jid::Jid;
use tauri::{AppHandle, State};
use tauri_plugin_dialog::DialogExt;

use crate::error::{AppError, AppResult};
use crate::files;
use crate::settings::{RememberedAccount, Settings};
use crate::state::{account_config, AccountView, AppState, ContactView};

#[derive(Debug, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SignedIn {
    pub jid: String,
}

#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn sign_in(
    app: AppHandle,
    state: State<'_, AppState>,
    jid: String,
    password: String,
    server: Option<String>,
    tls: String,
    ca_file: Option<String>,
    remember: bool,
) -> AppResult<SignedIn> {
    let cfg = account_config(&jid, &password, server.as_deref(), &tls, ca_file.as_deref())?;
    let tcfg = Settings::load(&state.store).transfer_config()?;
    let bound = state.sign_in(&app, cfg, tcfg, false, state.store.clone()).await?;
    if remember {
        let remembered = RememberedAccount {
            jid: bound.bare().to_string(),
            server: server.filter(|s| !s.trim().is_empty()),
            tls: if tls.is_empty() { "starttls".into() } else { tls },
            ca_file: ca_file.filter(|s| !s.trim().is_empty()),
        };
        remembered.save(&state.store)?;
    }
    Ok(SignedIn { jid: bound.bare().to_string() })
}

#[tauri::command]
pub async fn sign_out(app: AppHandle, state: State<'_, AppState>) -> AppResult<()> {
    state.sign_out(&app).await;
    Ok(())
}

#[tauri::command]
pub async fn account(state: State<'_, AppState>) -> AppResult<Option<AccountView>> {
    state.wait_started().await;
    Ok(state.account().await)
}

/// The account remembered at an earlier sign-in (no password), to fill the form.
#[tauri::command]
pub async fn remembered_account(state: State<'_, AppState>) -> AppResult<Option<RememberedAccount>> {
    Ok(RememberedAccount::load(&state.store))
}

#[tauri::command]
pub async fn roster(state: State<'_, AppState>) -> AppResult<Vec<ContactView>> {
    let client = state.client().await?;
    let contacts = client.roster();
    Ok(contacts
        .into_iter()
        .map(|c| {
            let resources = c.jid.parse::<Jid>().map(|j| client.presence_of(&j)).unwrap_or_default();
            ContactView::new(c, resources)
        })
        .collect())
}

fn parse_jid(to: &str) -> AppResult<Jid> {
    to.trim().parse().map_err(|e| AppError::invalid(format!("'{to}' is not a valid address: {e}")))
}

/// Offers files to `to`; a folder becomes one offer per file inside it (see `files`).
/// Returns the transfer ids in order.
#[tauri::command]
pub async fn send_files(state: State<'_, AppState>, to: String, paths: Vec<String>) -> AppResult<Vec<i64>> {
    let to = parse_jid(&to)?;
    let transfers = state.transfers().await?;
    let offers = files::expand(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())?;
    let mut ids = Vec::with_capacity(offers.len());
    for o in offers {
        ids.push(transfers.send_file(&to, &o.path, o.description).await?);
    }
    Ok(ids)
}

#[tauri::command]
pub async fn accept(state: State<'_, AppState>, id: i64, dir: Option<String>) -> AppResult<()> {
    let dir = dir.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| Settings::load(&state.store).download_dir);
    Ok(state.transfers().await?.accept(id, Some(PathBuf::from(dir)))?)
}

#[tauri::command]
pub async fn reject(state: State<'_, AppState>, id: i64) -> AppResult<()> {
    Ok(state.transfers().await?.reject(id)?)
}

#[tauri::command]
pub async fn cancel(state: State<'_, AppState>, id: i64) -> AppResult<()> {
    Ok(state.transfers().await?.cancel(id)?)
}

#[tauri::command]
pub async fn resume(state: State<'_, AppState>, id: i64) -> AppResult<i64> {
    Ok(state.transfers().await?.resume(id).await?)
}

/// Outgoing: resume where possible; a transfer that cannot continue (declined,
/// cancelled, completed, or refused by the resume) is sent afresh. Returns the id of
/// the transfer that runs now. Incoming: `not-resumable` (only the sender can retry).
#[tauri::command]
pub async fn retry(state: State<'_, AppState>, id: i64) -> AppResult<i64> {
    let transfers = state.transfers().await?;
    let rec = transfers.store().get(id)?;
    if rec.direction == Direction::Incoming {
        return Ok(transfers.resume(id).await?); // the engine explains why not
    }
    let fresh = matches!(rec.state, TransferState::Rejected | TransferState::Cancelled | TransferState::Completed);
    if !fresh {
        match transfers.resume(id).await {
            Err(skiff_engine::transfer::TransferError::NotResumable { .. }) => {}
            other => return Ok(other?),
        }
    }
    let path = rec.local_path.ok_or_else(|| AppError::new("not-resumable", "the source file is unknown"))?;
    let peer = parse_jid(&rec.peer_jid)?.bare();
    Ok(transfers.send_file(&peer, std::path::Path::new(&path), rec.description).await?)
}

#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn history(
    app_state: State<'_, AppState>,
    peer: Option<String>,
    direction: Option<Direction>,
    state: Option<TransferState>,
    name_contains: Option<String>,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    limit: Option<u32>,
) -> AppResult<Vec<TransferRecord>> {
    let f = HistoryFilter {
        peer: peer.filter(|p| !p.is_empty()),
        direction,
        state,
        name_contains: name_contains.filter(|n| !n.is_empty()),
        since_ms,
        until_ms,
        limit,
    };
    Ok(app_state.history_store().await.list(&f)?)
}

#[tauri::command]
pub async fn remove_from_history(state: State<'_, AppState>, id: i64) -> AppResult<()> {
    if let Ok(t) = state.transfers().await {
        if t.is_active(id) {
            return Err(AppError::new("already-active", "cancel the transfer before removing it from the history"));
        }
    }
    let store = state.history_store().await;
    store.get(id)?;
    Ok(store.delete(id)?)
}

async fn local_file(state: &AppState, id: i64) -> AppResult<PathBuf> {
    let rec = state.history_store().await.get(id)?;
    let path = rec.local_path.map(PathBuf::from).ok_or_else(|| AppError::new("not-found", "no local file"))?;
    if !path.exists() {
        return Err(AppError::new("not-found", format!("{} no longer exists", path.display())));
    }
    Ok(path)
}

/// Runs `xdg-open ARG` (no shell) and reaps it in the background.
fn xdg_open(arg: &std::path::Path) -> AppResult<()> {
    let mut child = std::process::Command::new("xdg-open")
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|e| AppError::new("io", format!("cannot run xdg-open: {e}")))?;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

#[tauri::command]
pub async fn open_file(state: State<'_, AppState>, id: i64) -> AppResult<()> {
    xdg_open(&local_file(&state, id).await?)
}

#[tauri::command]
pub async fn show_in_folder(state: State<'_, AppState>, id: i64) -> AppResult<()> {
    let path = local_file(&state, id).await?;
    xdg_open(path.parent().unwrap_or(&path))
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> AppResult<Settings> {
    Ok(Settings::load(&state.store))
}

/// Saves the settings. The download folder and auto-accept apply at once; methods,
/// proxy and streamhost addresses at the next sign-in.
#[tauri::command]
pub async fn set_settings(state: State<'_, AppState>, settings: Settings) -> AppResult<()> {
    settings.save(&state.store)
}

/// The files picked; empty when the dialog was cancelled.
#[tauri::command]
pub async fn pick_files(app: AppHandle) -> AppResult<Vec<String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().set_title("Send files").pick_files(move |picked| {
        let _ = tx.send(picked);
    });
    let picked = rx.await.map_err(AppError::internal)?;
    Ok(picked
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.into_path().ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect())
}

/// The folder picked; `null` when the dialog was cancelled.
#[tauri::command]
pub async fn pick_folder(app: AppHandle, title: Option<String>) -> AppResult<Option<String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().set_title(title.unwrap_or_else(|| "Choose a folder".into())).pick_folder(move |picked| {
        let _ = tx.send(picked);
    });
    let picked = rx.await.map_err(AppError::internal)?;
    Ok(picked.and_then(|p| p.into_path().ok()).map(|p| p.to_string_lossy().into_owned()))
}
