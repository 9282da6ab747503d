//! The Tauri commands: each one translates its arguments into an engine call and the
//! result (or error) back. No protocol logic here.
//!
//! A command's arguments are one struct (`SignInArgs`, `HistoryQuery`, ...) read from
//! the whole argument object by [`Args`]; JavaScript passes its fields flat, in
//! camelCase (`invoke('sign_in', { jid, password, caFile, ... })`). These structs and
//! the results are exported to TypeScript, and the typed wrappers in
//! `ui/src/bindings/commands.ts` are generated from the registry at the end of this
//! file. A new command is its function here and one line in the registry.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use skiff_engine::store::HistoryQuery;
use skiff_engine::transfer::history::{self, HistoryEntry};
use skiff_engine::transfer::SendMethod;
use skiff_engine::trust::Fingerprint;
use skiff_engine::{AccountForm, Secret, TlsMode};
use skiff_proto::jid::Jid;
use tauri::ipc::{CommandArg, CommandItem, InvokeBody, InvokeError};
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use tauri_plugin_opener::OpenerExt;

use crate::error::{AppError, AppResult};
use crate::secrets;
use crate::settings::{RememberedAccount, RememberedView, Settings};
use crate::state::{AccountView, AppState, ContactView};

/// A command's whole argument object as one struct `T`. Missing `Option` fields are
/// `None`; a malformed object is refused with an `invalid` [`AppError`].
#[derive(Debug)]
pub struct Args<T>(pub T);

impl<'de, R: Runtime, T: DeserializeOwned> CommandArg<'de, R> for Args<T> {
    fn from_command(command: CommandItem<'de, R>) -> Result<Self, InvokeError> {
        let invalid = |why: String| InvokeError::from(AppError::invalid(format!("{}: {why}", command.name)));
        match command.message.payload() {
            InvokeBody::Json(v) => T::deserialize(v).map(Args).map_err(|e| invalid(e.to_string())),
            InvokeBody::Raw(_) => Err(invalid("expected a JSON argument object".into())),
        }
    }
}

/// `sign_in`'s arguments.
#[derive(Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
#[serde(rename_all = "camelCase")]
pub struct SignInArgs {
    pub jid: String,
    pub password: String,
    /// `host:port`; absent or empty = DNS SRV, then the JID's domain.
    pub server: Option<String>,
    /// Absent = STARTTLS.
    pub tls: Option<TlsMode>,
    pub ca_file: Option<String>,
    /// Keep everything but the password for the next start.
    pub remember: bool,
    /// The SHA-256 fingerprint of a server certificate the user chose to trust for
    /// this account after seeing it (`untrusted.certificate.fingerprint` of the
    /// `certificate-untrusted`/`-changed` error); kept for the account once signed in.
    pub trust_fingerprint: Option<String>,
    /// With `remember`: keep the password in the OS keyring (never in a file), to
    /// sign in by itself at the next start. Off: a kept password is forgotten.
    pub remember_password: Option<bool>,
}

/// Never prints the password.
impl std::fmt::Debug for SignInArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInArgs")
            .field("jid", &self.jid)
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("remember", &self.remember)
            .field("trust_fingerprint", &self.trust_fingerprint)
            .field("remember_password", &self.remember_password)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SignedIn {
    /// The bound bare JID.
    pub jid: String,
    /// "Remember password" was asked but the keyring could not keep it: why, in one
    /// sentence for the user (nothing was written to disk instead).
    pub password_note: Option<String>,
}

/// The argument of the commands that act on one transfer (`reject`, `cancel`, ...).
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct IdArgs {
    pub id: i64,
}

/// `send_files`' arguments.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SendFilesArgs {
    /// A bare JID (the best resource that can receive files is picked) or a full JID.
    pub to: String,
    /// Files and folders (a folder sends every file inside it).
    pub paths: Vec<String>,
}

/// `accept`'s arguments.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
pub struct AcceptArgs {
    pub id: i64,
    /// The folder for this file; absent or empty = the download folder of the settings.
    pub dir: Option<String>,
}

/// `set_settings`' argument.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SetSettingsArgs {
    pub settings: Settings,
}

/// `pick_folder`'s arguments.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(optional_fields))]
pub struct PickFolderArgs {
    /// The dialog's title; absent = "Choose a folder".
    pub title: Option<String>,
}

#[tauri::command]
pub async fn sign_in(app: AppHandle, state: State<'_, AppState>, args: Args<SignInArgs>) -> AppResult<SignedIn> {
    let SignInArgs { jid, password, server, tls, ca_file, remember, trust_fingerprint, remember_password } = args.0;
    let tls = tls.unwrap_or(TlsMode::StartTls);
    let form = AccountForm {
        jid,
        password: Secret::new(password.clone()),
        server: server.clone(),
        tls,
        ca_file: ca_file.clone(),
        resource: None,
        default_resource: crate::state::default_resource(),
    };
    let mut cfg = form.config()?;
    let trust = match trust_fingerprint.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(fp) => Some(fp.parse::<Fingerprint>().map_err(|e| AppError::invalid(e.to_string()))?),
        None => None,
    };
    cfg.trusted_certificates = trust.into_iter().collect();
    let tcfg = Settings::load(&state.store).transfer_config()?;
    let bound = state.sign_in(&app, cfg, tcfg, false, state.store.clone()).await?;
    if let Some(fp) = trust {
        // Kept for this account: asked again only if the server's certificate changes.
        state.store.pin_certificate(&bound.bare().to_string(), fp)?;
    }
    let account = bound.bare().to_string();
    *state.start_error.lock().await = None;
    if remember {
        let remembered = RememberedAccount {
            jid: account.clone(),
            server: server.filter(|s| !s.trim().is_empty()),
            tls,
            ca_file: ca_file.filter(|s| !s.trim().is_empty()),
        };
        remembered.save(&state.store)?;
    }
    // The password goes to the OS keyring only, and only when asked to.
    let password_note = if remember && remember_password.unwrap_or(false) {
        let acc = account.clone();
        match secrets::blocking(move || secrets::save(&acc, &password)).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!("keyring: {e:?}");
                Some(e.to_string())
            }
        }
    } else {
        let acc = account.clone();
        if let Err(e) = secrets::blocking(move || secrets::forget(&acc)).await {
            tracing::debug!("keyring: {e:?}");
        }
        None
    };
    Ok(SignedIn { jid: account, password_note })
}

#[tauri::command]
pub async fn sign_out(app: AppHandle, state: State<'_, AppState>) -> AppResult<()> {
    // Signing out means "not by itself next time": the kept password is forgotten
    // (the address stays remembered for the form).
    let account = state.account().await.filter(|a| !a.demo).map(|a| a.jid);
    state.sign_out(&app).await;
    if let Some(jid) = account {
        if let Err(e) = secrets::blocking(move || secrets::forget(&jid)).await {
            tracing::debug!("keyring: {e:?}");
        }
    }
    Ok(())
}

#[tauri::command]
pub async fn account(state: State<'_, AppState>) -> AppResult<Option<AccountView>> {
    state.wait_started().await;
    Ok(state.account().await)
}

/// The account remembered at an earlier sign-in, to fill the form: whether its
/// password is in the keyring, and why the automatic sign-in at start failed.
#[tauri::command]
pub async fn remembered_account(state: State<'_, AppState>) -> AppResult<Option<RememberedView>> {
    state.wait_started().await;
    let Some(account) = RememberedAccount::load(&state.store) else { return Ok(None) };
    let jid = account.jid.clone();
    let password_saved = matches!(secrets::blocking(move || secrets::load(&jid)).await, Ok(Some(_)));
    let sign_in_error = state.start_error.lock().await.clone();
    Ok(Some(RememberedView { account, password_saved, sign_in_error }))
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

/// Offers what was chosen to `to` (a folder: the files inside it,
/// `skiff_engine::files::expand`): several files as one batch to a Skiff, else one offer
/// per file, each described by its path inside the folder (`Transfers::send_chosen`).
/// Returns the ids started: the batch's, or the files' in order.
#[tauri::command]
pub async fn send_files(state: State<'_, AppState>, args: Args<SendFilesArgs>) -> AppResult<Vec<i64>> {
    let SendFilesArgs { to, paths } = args.0;
    let to = parse_jid(&to)?;
    let transfers = state.transfers().await?;
    let chosen = skiff_engine::files::expand(&paths.iter().map(PathBuf::from).collect::<Vec<_>>())?;
    Ok(transfers.send_chosen(&to, &chosen, None, SendMethod::Auto).await?)
}

#[tauri::command]
pub async fn accept(state: State<'_, AppState>, args: Args<AcceptArgs>) -> AppResult<()> {
    let AcceptArgs { id, dir } = args.0;
    let dir =
        dir.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| Settings::load(&state.store).transfer.download_dir);
    let r = state.transfers().await?.accept(id, Some(PathBuf::from(dir)));
    // Answered here: its notification updates (the peer's other offers) or closes.
    crate::events::offer_answered(id);
    Ok(r?)
}

#[tauri::command]
pub async fn reject(state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<()> {
    let id = args.0.id;
    let r = state.transfers().await?.reject(id);
    crate::events::offer_answered(id);
    Ok(r?)
}

#[tauri::command]
pub async fn cancel(state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<()> {
    let id = args.0.id;
    Ok(state.transfers().await?.cancel(id)?)
}

#[tauri::command]
pub async fn resume(state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<i64> {
    let id = args.0.id;
    Ok(state.transfers().await?.resume(id).await?)
}

/// "Try again" (`Transfers::retry`): resumes, or sends afresh what cannot go on.
/// Returns the id of the transfer that runs now.
#[tauri::command]
pub async fn retry(state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<i64> {
    Ok(state.transfers().await?.retry(args.0.id).await?)
}

/// Outgoing transfers whose SI routes failed: send the file by HTTP upload instead (a
/// new attempt of the same record). Returns the id.
#[tauri::command]
pub async fn upload_instead(state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<i64> {
    Ok(state.transfers().await?.upload_instead(args.0.id).await?)
}

#[tauri::command]
pub async fn history(app_state: State<'_, AppState>, args: Args<HistoryQuery>) -> AppResult<Vec<HistoryEntry>> {
    match app_state.transfers().await {
        Ok(t) => Ok(t.history(&args.0)?),
        Err(_) => Ok(history::entries(&*app_state.history_store().await, &args.0)?),
    }
}

#[tauri::command]
pub async fn remove_from_history(state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<()> {
    let id = args.0.id;
    if let Ok(t) = state.transfers().await {
        if t.is_active(id) {
            return Err(AppError::new(
                crate::error::ErrorCode::AlreadyActive,
                "cancel the transfer before removing it from the history",
            ));
        }
    }
    let store = state.history_store().await;
    store.get(id)?;
    Ok(store.delete(id)?)
}

async fn local_file(state: &AppState, id: i64) -> AppResult<PathBuf> {
    let rec = state.history_store().await.get(id)?;
    let path = rec
        .local_path
        .map(PathBuf::from)
        .ok_or_else(|| AppError::new(crate::error::ErrorCode::NotFound, "no local file"))?;
    if !path.exists() {
        return Err(AppError::new(crate::error::ErrorCode::NotFound, format!("{} no longer exists", path.display())));
    }
    Ok(path)
}

/// What the opener plugin could not do, for the user.
fn opener_error(e: tauri_plugin_opener::Error) -> AppError {
    AppError::new(crate::error::ErrorCode::Io, format!("cannot open it: {e}"))
}

/// Opens the transfer's file with its default application.
#[tauri::command]
pub async fn open_file(app: AppHandle, state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<()> {
    let path = local_file(&state, args.0.id).await?;
    app.opener().open_path(path.to_string_lossy(), None::<&str>).map_err(opener_error)
}

/// Shows the transfer's file in the file manager, selected where the platform allows
/// (on Linux: a file manager's FileManager1 service, else the desktop portal); where
/// neither is there, its folder is opened.
#[tauri::command]
pub async fn show_in_folder(app: AppHandle, state: State<'_, AppState>, args: Args<IdArgs>) -> AppResult<()> {
    let path = local_file(&state, args.0.id).await?;
    // D-Bus calls that wait: off the async workers.
    let shown = tauri::async_runtime::spawn_blocking(move || {
        app.opener().reveal_item_in_dir(&path).or_else(|e| {
            tracing::debug!("cannot reveal {} ({e}); opening its folder", path.display());
            app.opener().open_path(path.parent().unwrap_or(&path).to_string_lossy(), None::<&str>)
        })
    });
    shown.await.map_err(AppError::internal)?.map_err(opener_error)
}

#[tauri::command]
pub async fn get_settings(state: State<'_, AppState>) -> AppResult<Settings> {
    Ok(Settings::load(&state.store))
}

/// Saves the settings. The download folder and auto-accept apply at once; methods,
/// proxy and streamhost addresses at the next sign-in.
#[tauri::command]
pub async fn set_settings(state: State<'_, AppState>, args: Args<SetSettingsArgs>) -> AppResult<()> {
    let settings = args.0.settings;
    settings.save(&state.store)?;
    state.apply_settings(&settings).await
}

/// The files picked; empty when the dialog was cancelled.
#[tauri::command]
pub async fn pick_files(app: AppHandle, state: State<'_, AppState>) -> AppResult<Vec<String>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().set_title("Send files").pick_files(move |picked| {
        let _ = tx.send(picked);
    });
    let picked = rx.await.map_err(AppError::internal)?;
    let paths: Vec<PathBuf> = picked.unwrap_or_default().into_iter().filter_map(|p| p.into_path().ok()).collect();
    // Chosen: hashed now, while a contact is picked.
    state.prepare(&paths).await;
    Ok(paths.iter().map(|p| p.to_string_lossy().into_owned()).collect())
}

/// The folder picked; `null` when the dialog was cancelled.
#[tauri::command]
pub async fn pick_folder(app: AppHandle, args: Args<PickFolderArgs>) -> AppResult<Option<String>> {
    let title = args.0.title;
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog().file().set_title(title.unwrap_or_else(|| "Choose a folder".into())).pick_folder(move |picked| {
        let _ = tx.send(picked);
    });
    let picked = rx.await.map_err(AppError::internal)?;
    Ok(picked.and_then(|p| p.into_path().ok()).map(|p| p.to_string_lossy().into_owned()))
}

/// Files handed over by a launch of the app (its command line, or a second launch),
/// to send: taken once (the list empties). `skiff://open-files` announces new ones.
#[tauri::command]
pub async fn take_pending_files(state: State<'_, AppState>) -> AppResult<Vec<String>> {
    let files = {
        let mut pending = state.pending_files.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *pending)
    };
    state.prepare(&files.iter().map(PathBuf::from).collect::<Vec<_>>()).await;
    Ok(files)
}

/// The command registry, the one list of the commands: each function above with its
/// argument struct (`()` = none) and the type inside its `AppResult<..>`. `main.rs`
/// registers [`handler`]; `bindings.rs` makes `ui/src/bindings/commands.ts` from
/// [`describe`] and checks the types listed here against the functions' signatures.
macro_rules! registry {
    ($($name:ident($args:ty) -> $ret:ty;)*) => {
        /// Tauri's invoke handler for every command of the registry.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke<tauri::Wry>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }

        /// Tells `v` about every command, in the registry's order.
        #[cfg(test)]
        pub(crate) fn describe(v: &mut impl crate::bindings::CommandVisitor) {
            $(v.command::<$args, $ret>(stringify!($name), stringify!($args), stringify!($ret));)*
        }
    };
}

registry! {
    sign_in(SignInArgs) -> SignedIn;
    sign_out(()) -> ();
    account(()) -> Option<AccountView>;
    remembered_account(()) -> Option<RememberedView>;
    roster(()) -> Vec<ContactView>;
    send_files(SendFilesArgs) -> Vec<i64>;
    accept(AcceptArgs) -> ();
    reject(IdArgs) -> ();
    cancel(IdArgs) -> ();
    resume(IdArgs) -> i64;
    retry(IdArgs) -> i64;
    upload_instead(IdArgs) -> i64;
    history(HistoryQuery) -> Vec<HistoryEntry>;
    remove_from_history(IdArgs) -> ();
    open_file(IdArgs) -> ();
    show_in_folder(IdArgs) -> ();
    get_settings(()) -> Settings;
    set_settings(SetSettingsArgs) -> ();
    pick_files(()) -> Vec<String>;
    pick_folder(PickFolderArgs) -> Option<String>;
    take_pending_files(()) -> Vec<String>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_engine::store::TransferState;

    #[test]
    fn arguments_are_camel_case_and_options_may_be_absent() {
        let a: SignInArgs =
            serde_json::from_str(r#"{"jid":"a@b","password":"pw","tls":"direct","caFile":"/ca.pem","remember":true}"#)
                .unwrap();
        assert_eq!((a.ca_file.as_deref(), a.server, a.tls), (Some("/ca.pem"), None, Some(TlsMode::Direct)));
        let q: HistoryQuery =
            serde_json::from_str(r#"{"nameContains":"pdf","sinceMs":1,"state":"completed"}"#).unwrap();
        assert_eq!(q.name_contains.as_deref(), Some("pdf"));
        assert_eq!((q.since_ms, q.state, q.peer), (Some(1), Some(TransferState::Completed), None));
        let a: AcceptArgs = serde_json::from_str(r#"{"id":3,"dir":null}"#).unwrap();
        assert_eq!((a.id, a.dir), (3, None));
        assert!(serde_json::from_str::<IdArgs>("{}").is_err());
        assert!(serde_json::from_str::<PickFolderArgs>("{}").unwrap().title.is_none());
    }

    #[test]
    fn sign_in_args_never_print_the_password() {
        let a: SignInArgs = serde_json::from_str(r#"{"jid":"a@b","password":"hunter2","remember":false}"#).unwrap();
        let shown = format!("{a:?}");
        assert!(shown.contains("a@b") && !shown.contains("hunter2"), "{shown}");
    }
}
