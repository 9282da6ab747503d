//! Account settings the engine needs to connect.

use std::path::PathBuf;
use std::time::Duration;

use skiff_proto::jid::Jid;

pub use skiff_proto::negotiation::TlsMode;

/// A secret string: never printed by `Debug`, never logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything needed to sign in one account.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// The account; a resource in it is requested at bind.
    pub jid: Jid,
    pub password: Secret,
    /// Explicit server address; skips DNS SRV.
    pub server: Option<(String, u16)>,
    pub tls: TlsMode,
    /// Extra CA certificates (PEM) trusted beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// Largest stanza accepted from the server; larger ends the stream.
    pub max_stanza_bytes: usize,
    /// How long an IQ request waits for its answer.
    pub iq_timeout: Duration,
    /// Silence after which the server is pinged (XEP-0199).
    pub keepalive: Duration,
    /// Reconnect after a drop (with exponential backoff).
    pub reconnect: bool,
    /// Timeout for TCP connect + TLS + sign-in of one attempt.
    pub connect_timeout: Duration,
    /// Presence priority announced.
    pub priority: i8,
    /// Refuse PLAIN sign-in (even over TLS): set for an account known to sign in with
    /// SCRAM, so that a server (or someone in the middle) offering only PLAIN does not
    /// get the password; sign-in then fails with
    /// [`NegotiationError::PlainDowngrade`](skiff_proto::negotiation::NegotiationError::PlainDowngrade)
    /// and nothing is sent. Off by default (new accounts are not affected); clear it to
    /// let the user allow PLAIN explicitly. The session sets it for its own reconnects
    /// after a SCRAM sign-in. Shells keep it per account: the mechanism of a sign-in is
    /// in `Event::Online { mechanism }`, `Client::mechanism()` and
    /// `connection::Connected::negotiated.mechanism` (`SCRAM-…`, `…-PLUS` when bound to
    /// the TLS session, or `PLAIN`).
    pub require_scram: bool,
    /// SHA-256 fingerprints of server certificates the user chose to trust for this
    /// account although they are not otherwise trusted (self-signed, unknown issuer):
    /// see [`crate::trust`]. Empty by default: nothing is trusted silently.
    pub trusted_certificates: Vec<crate::trust::Fingerprint>,
}

impl AccountConfig {
    pub fn new(jid: Jid, password: Secret) -> AccountConfig {
        AccountConfig {
            jid,
            password,
            server: None,
            tls: TlsMode::StartTls,
            ca_file: None,
            max_stanza_bytes: 4 << 20,
            iq_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(60),
            reconnect: true,
            connect_timeout: Duration::from_secs(30),
            priority: 0,
            require_scram: false,
            trusted_certificates: Vec::new(),
        }
    }
}

/// An account as a person gives it (the sign-in form, the command line): the same
/// checks and the same meaning in both shells. [`AccountForm::config`] turns it into
/// an [`AccountConfig`].
#[derive(Debug, Clone)]
pub struct AccountForm {
    /// `you@server`, optionally with `/resource`.
    pub jid: String,
    pub password: Secret,
    /// `host:port` or `[v6]:port`; `None` or blank = DNS SRV, then the domain.
    pub server: Option<String>,
    pub tls: TlsMode,
    /// Extra CA certificates (PEM); `None` or blank = the system's only.
    pub ca_file: Option<String>,
    /// The resource to bind, over one in `jid` (the CLI's `--resource`).
    pub resource: Option<String>,
    /// The resource when neither `resource` nor `jid` names one.
    pub default_resource: String,
}

/// What is wrong with an [`AccountForm`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("'{input}' is not a valid address: {reason}")]
    BadAddress { input: String, reason: String },
    #[error("'{0}' has no user part: an account looks like you@server")]
    NoUser(String),
    #[error("'{resource}' is not a valid resource: {reason}")]
    BadResource { resource: String, reason: String },
    #[error("the password is empty")]
    EmptyPassword,
    #[error("the server address wants HOST:PORT, got '{0}'")]
    BadServer(String),
}

impl AccountForm {
    /// The account with the defaults of [`AccountConfig::new`] for everything the form
    /// does not set.
    pub fn config(&self) -> Result<AccountConfig, AccountError> {
        let input = self.jid.trim();
        let jid: Jid =
            input.parse().map_err(|e| AccountError::BadAddress { input: input.to_owned(), reason: format!("{e}") })?;
        if jid.local().is_none() {
            return Err(AccountError::NoUser(jid.to_string()));
        }
        let resource = self.resource.as_deref().or(jid.resource()).unwrap_or(&self.default_resource).to_owned();
        let jid = jid
            .with_resource(&resource)
            .map_err(|e| AccountError::BadResource { resource: resource.clone(), reason: format!("{e}") })?;
        if self.password.expose().is_empty() {
            return Err(AccountError::EmptyPassword);
        }
        let mut cfg = AccountConfig::new(jid, self.password.clone());
        cfg.tls = self.tls;
        cfg.ca_file = self.ca_file.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(PathBuf::from);
        if let Some(server) = self.server.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            cfg.server = Some(parse_server(server)?);
        }
        Ok(cfg)
    }
}

/// `host:port` or `[v6]:port`.
pub fn parse_server(s: &str) -> Result<(String, u16), AccountError> {
    s.rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse::<u16>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| AccountError::BadServer(s.to_owned()))
}

/// Where Skiff keeps its history, settings, resource and downloads by default, one
/// place for the CLI and the desktop: `$SKIFF_DATA_DIR`, else `$XDG_DATA_HOME/skiff`,
/// else `$HOME/.local/share/skiff`, else `./skiff` (an empty variable counts as unset).
pub fn data_dir() -> std::path::PathBuf {
    data_dir_in(|key| std::env::var_os(key))
}

fn data_dir_in(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> std::path::PathBuf {
    use std::path::PathBuf;
    let var = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("SKIFF_DATA_DIR") {
        return dir;
    }
    var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("skiff")
}

/// The resource kept in `file`: `PREFIX-xxxxxx`, made (random) and written the first
/// time, read back afterwards, so that one installation or data folder keeps its
/// resource (a sender's resume finds it again) while others get their own (two Skiffs
/// on one account never take each other's session). A file that holds anything else
/// is replaced; when it cannot be written the resource is still returned.
pub fn persistent_resource(file: &std::path::Path, prefix: &str) -> String {
    let kept = std::fs::read_to_string(file).ok().map(|s| s.trim().to_owned()).filter(|s| {
        s.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('-'))
            && s.len() <= 40
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if let Some(r) = kept {
        return r;
    }
    use rand::Rng;
    let suffix: String =
        rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(6).map(char::from).collect();
    let r = format!("{prefix}-{}", suffix.to_ascii_lowercase());
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(file, &r) {
        tracing::warn!("cannot keep the resource in {}: {e}", file.display());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(jid: &str, password: &str, server: Option<&str>, tls: TlsMode) -> AccountForm {
        AccountForm {
            jid: jid.into(),
            password: Secret::new(password),
            server: server.map(str::to_owned),
            tls,
            ca_file: None,
            resource: None,
            default_resource: "skiff-desktop-ab12cd".into(),
        }
    }

    #[test]
    fn an_account_form_becomes_an_account_config() {
        let cfg = form("alice@example.com", "pw", Some("xmpp.example.com:5223"), TlsMode::Direct).config().unwrap();
        assert_eq!(cfg.jid.to_string(), "alice@example.com/skiff-desktop-ab12cd");
        assert_eq!((cfg.server, cfg.tls), (Some(("xmpp.example.com".into(), 5223)), TlsMode::Direct));
        assert!(!cfg.require_scram && cfg.reconnect);

        let mut f = form(" alice@example.com/laptop ", "pw", Some(" "), TlsMode::StartTls);
        f.ca_file = Some("".into());
        let cfg = f.config().unwrap();
        assert_eq!((cfg.jid.resource(), cfg.server, cfg.ca_file), (Some("laptop"), None, None));
        // An explicit resource wins over the address's.
        f.resource = Some("script".into());
        f.ca_file = Some(" /etc/ca.pem ".into());
        let cfg = f.config().unwrap();
        assert_eq!((cfg.jid.resource(), cfg.ca_file), (Some("script"), Some(PathBuf::from("/etc/ca.pem"))));
        assert_eq!(parse_server("[::1]:5222"), Ok(("::1".into(), 5222)));
    }

    #[test]
    fn bad_account_forms_say_what_is_wrong() {
        let err = |f: AccountForm| f.config().unwrap_err();
        assert!(matches!(err(form("a@b@c", "pw", None, TlsMode::StartTls)), AccountError::BadAddress { .. }));
        assert_eq!(err(form("example.com", "pw", None, TlsMode::StartTls)), AccountError::NoUser("example.com".into()));
        assert_eq!(err(form("alice@example.com", "", None, TlsMode::StartTls)), AccountError::EmptyPassword);
        assert_eq!(
            err(form("alice@example.com", "pw", Some("host"), TlsMode::StartTls)),
            AccountError::BadServer("host".into())
        );
        assert_eq!(parse_server(":5222"), Err(AccountError::BadServer(":5222".into())));
        let mut f = form("alice@example.com", "pw", None, TlsMode::StartTls);
        f.resource = Some(String::new());
        assert!(matches!(err(f), AccountError::BadResource { .. }));
    }

    #[test]
    fn a_resource_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/resource");
        let r = persistent_resource(&file, "skiff-cli");
        assert!(r.starts_with("skiff-cli-") && r.len() == "skiff-cli-".len() + 6, "{r}");
        assert_eq!(persistent_resource(&file, "skiff-cli"), r);
        std::fs::write(&file, "evil/resource").unwrap();
        let again = persistent_resource(&file, "skiff-cli");
        assert!(again.starts_with("skiff-cli-") && again != "evil/resource", "{again}");
    }

    #[test]
    fn the_data_folder_is_found_the_same_way_for_both_shells() {
        use std::ffi::OsString;
        use std::path::PathBuf;
        let dir = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, OsString)> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
            data_dir_in(move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
        };
        assert_eq!(dir(&[("SKIFF_DATA_DIR", "/d"), ("XDG_DATA_HOME", "/x")]), PathBuf::from("/d"));
        assert_eq!(dir(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]), PathBuf::from("/x/skiff"));
        // Empty variables count as unset.
        assert_eq!(
            dir(&[("SKIFF_DATA_DIR", ""), ("XDG_DATA_HOME", ""), ("HOME", "/h")]),
            PathBuf::from("/h/.local/share/skiff")
        );
        assert_eq!(dir(&[]), PathBuf::from("./skiff"));
    }
}
