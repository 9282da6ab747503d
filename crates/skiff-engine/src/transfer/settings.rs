//! The transfer settings a person chooses, as the shells keep and show them: one type
//! that the desktop stores as JSON and shows in its settings screen, checked and put
//! into effect here ([`TransferSettings::apply`]).

use std::net::IpAddr;
use std::path::PathBuf;

use skiff_proto::jid::Jid;

use super::{Method, StrangerPolicy, TransferConfig};

/// The choices of the settings screen that the engine acts on. JSON in camelCase; a
/// field missing from stored JSON (an older version's) takes its default.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", default)]
pub struct TransferSettings {
    /// Where accepted files go (an accept can name another folder).
    pub download_dir: String,
    /// The SOCKS5 proxy to use; `null` or blank = discover the server's.
    pub proxy_jid: Option<String>,
    /// Allowed methods in preference order; never empty.
    pub methods: Vec<Method>,
    /// Addresses our own streamhost offers; empty = every usable local address.
    pub streamhost_addrs: Vec<String>,
    /// Send by HTTP upload (the server keeps the file for a while) when the contact is
    /// offline or their clients take no SI offers, and offer it when SI failed.
    pub allow_upload: bool,
    /// Serve files from this computer on one-time plain-HTTP links (jabber:iq:oob),
    /// for contacts on the same network.
    pub serve_http: bool,
    /// Files from people not in the contact list: asked about like any other offer
    /// (never auto-accepted), or refused at once without asking.
    pub strangers: StrangerPolicy,
}

impl Default for TransferSettings {
    fn default() -> TransferSettings {
        let cfg = TransferConfig::new(default_download_dir());
        TransferSettings {
            download_dir: cfg.download_dir.to_string_lossy().into_owned(),
            proxy_jid: None,
            methods: cfg.methods,
            streamhost_addrs: Vec::new(),
            allow_upload: cfg.allow_upload,
            serve_http: cfg.serve_http,
            strangers: cfg.strangers,
        }
    }
}

/// `~/Downloads`, else the data folder's `downloads/`.
pub fn default_download_dir() -> PathBuf {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join("Downloads"))
        .unwrap_or_else(|| crate::config::data_dir().join("downloads"))
}

/// What is wrong with [`TransferSettings`], in words for the settings form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the download folder is empty")]
    NoDownloadDir,
    #[error("allow at least one transfer method")]
    NoMethod,
    #[error("proxy '{proxy}': {reason}")]
    BadProxy { proxy: String, reason: String },
    #[error("'{0}' is not an IP address")]
    BadAddress(String),
}

impl TransferSettings {
    /// Checks everything [`TransferSettings::apply`] would refuse.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.apply(&mut TransferConfig::new(PathBuf::new()))
    }

    /// Puts these settings into `cfg` (the rest of it stays as it is), or says what is
    /// wrong and leaves `cfg` untouched.
    pub fn apply(&self, cfg: &mut TransferConfig) -> Result<(), SettingsError> {
        let download_dir = self.download_dir.trim();
        if download_dir.is_empty() {
            return Err(SettingsError::NoDownloadDir);
        }
        if self.methods.is_empty() {
            return Err(SettingsError::NoMethod);
        }
        let proxy = match self.proxy_jid.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => Some(
                p.parse::<Jid>().map_err(|e| SettingsError::BadProxy { proxy: p.to_owned(), reason: e.to_string() })?,
            ),
            None => None,
        };
        let addrs = self
            .streamhost_addrs
            .iter()
            .map(|a| a.trim().parse::<IpAddr>().map_err(|_| SettingsError::BadAddress(a.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        cfg.download_dir = PathBuf::from(download_dir);
        cfg.methods = self.methods.clone();
        cfg.proxy = proxy;
        cfg.streamhost_addrs = addrs;
        cfg.allow_upload = self.allow_upload;
        cfg.serve_http = self.serve_http;
        cfg.strangers = self.strangers;
        Ok(())
    }

    /// A configuration with these settings and the engine's defaults for the rest.
    pub fn config(&self) -> Result<TransferConfig, SettingsError> {
        let mut cfg = TransferConfig::new(PathBuf::new());
        self.apply(&mut cfg)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reach_the_configuration() {
        let s = TransferSettings {
            download_dir: " /tmp/in ".into(),
            proxy_jid: Some(" proxy.example.com ".into()),
            methods: vec![Method::Ibb],
            streamhost_addrs: vec!["127.0.0.1".into(), " ::1".into()],
            allow_upload: false,
            serve_http: true,
            strangers: StrangerPolicy::Refuse,
        };
        let cfg = s.config().unwrap();
        assert_eq!(cfg.download_dir, PathBuf::from("/tmp/in"));
        assert_eq!(cfg.methods, vec![Method::Ibb]);
        assert_eq!(cfg.proxy.unwrap().to_string(), "proxy.example.com");
        let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(cfg.streamhost_addrs, addrs);
        assert!(!cfg.allow_upload && cfg.serve_http);
        assert_eq!(cfg.strangers, StrangerPolicy::Refuse);
        // The defaults are the engine's.
        let d = TransferSettings::default().config().unwrap();
        let engine = TransferConfig::new(PathBuf::new());
        assert_eq!((d.methods, d.allow_upload, d.serve_http), (engine.methods, engine.allow_upload, engine.serve_http));
        assert_eq!((d.strangers, d.proxy), (StrangerPolicy::Ask, None));
    }

    #[test]
    fn bad_settings_change_nothing_and_say_why() {
        let mut cfg = TransferConfig::new(PathBuf::from("/keep"));
        let bad = [
            (TransferSettings { download_dir: " ".into(), ..Default::default() }, SettingsError::NoDownloadDir),
            (TransferSettings { methods: vec![], ..Default::default() }, SettingsError::NoMethod),
            (
                TransferSettings { streamhost_addrs: vec!["nope".into()], ..Default::default() },
                SettingsError::BadAddress("nope".into()),
            ),
        ];
        for (s, e) in bad {
            assert_eq!(s.apply(&mut cfg), Err(e.clone()));
            assert_eq!(s.validate(), Err(e));
        }
        let s = TransferSettings { proxy_jid: Some("a@@b".into()), ..Default::default() };
        assert!(matches!(s.validate(), Err(SettingsError::BadProxy { .. })));
        assert_eq!(cfg.download_dir, PathBuf::from("/keep"));
    }

    #[test]
    fn json_is_camel_case_and_tolerates_missing_fields() {
        let json = serde_json::to_value(TransferSettings::default()).unwrap();
        for key in ["downloadDir", "proxyJid", "methods", "streamhostAddrs", "allowUpload", "serveHttp", "strangers"] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        let s: TransferSettings = serde_json::from_str(r#"{"methods":["s5b"]}"#).unwrap();
        assert_eq!(s.methods, vec![Method::S5b]);
        assert!(s.allow_upload && !s.serve_http);
    }
}
