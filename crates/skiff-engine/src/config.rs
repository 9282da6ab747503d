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
