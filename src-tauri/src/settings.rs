//! The desktop settings and the remembered account: JSON values in the store's
//! `settings` table, and their translation into the engine's `TransferConfig`.
use serde::{Deserialize, Serialize};
use skiff_engine::store::Store;
use skiff_engine::transfer::{AcceptPolicy, TransferConfig, TransferSettings};
use skiff_engine::TlsMode;

use crate::error::{AppError, AppResult};

/// Key of [`Settings`] in the store's settings table.
const SETTINGS_KEY: &str = "desktop.settings";
/// Key of [`RememberedAccount`].
const ACCOUNT_KEY: &str = "desktop.account";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum Language {
    #[default]
    #[serde(rename = "en")]
    En,
    #[serde(rename = "zh-CN")]
    ZhCn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// What the user can change in the settings screen: the engine's transfer settings
/// and the desktop's own (auto-accept by size, language, theme), as one JSON object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    #[serde(flatten)]
    pub transfer: TransferSettings,
    /// Offers from roster contacts up to this size are accepted without asking;
    /// 0 = always ask.
    pub auto_accept_max_bytes: u64,
    pub language: Language,
    pub theme: Theme,
}

impl Settings {
    /// Checks what the engine would refuse later, with a message for the form.
    pub fn validate(&self) -> AppResult<()> {
        Ok(self.transfer.validate()?)
    }

    /// The engine's transfer settings. The desktop answers offers itself (dialog,
    /// notification, auto-accept by size), so the engine's policy is always `Ask`.
    pub fn transfer_config(&self) -> AppResult<TransferConfig> {
        let mut cfg = self.transfer.config()?;
        cfg.accept = AcceptPolicy::Ask;
        Ok(cfg)
    }

    /// Reads the settings; defaults when none are stored or the stored ones are unreadable.
    pub fn load(store: &Store) -> Settings {
        match store.setting(SETTINGS_KEY) {
            Ok(Some(json)) => Settings::from_json(&json).unwrap_or_else(|e| {
                tracing::warn!("stored settings are unreadable ({e}); using defaults");
                Settings::default()
            }),
            Ok(None) => Settings::default(),
            Err(e) => {
                tracing::warn!("cannot read settings: {e}");
                Settings::default()
            }
        }
    }

    /// Stored JSON to settings. An earlier build stored the stranger setting as
    /// `refuseStrangers: true`; it still refuses.
    fn from_json(json: &str) -> serde_json::Result<Settings> {
        let mut value: serde_json::Value = serde_json::from_str(json)?;
        if let Some(map) = value.as_object_mut() {
            if let Some(old) = map.remove("refuseStrangers") {
                if old == serde_json::Value::Bool(true) && !map.contains_key("strangers") {
                    map.insert("strangers".into(), "refuse".into());
                }
            }
        }
        serde_json::from_value(value)
    }

    pub fn save(&self, store: &Store) -> AppResult<()> {
        self.validate()?;
        let json = serde_json::to_string(self).map_err(AppError::internal)?;
        store.set_setting(SETTINGS_KEY, &json)?;
        Ok(())
    }
}

/// The account signed in with "remember": everything but the password (no keyring
/// is used; the sign-in form is filled with this and asks for the password).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RememberedAccount {
    pub jid: String,
    /// `host:port`, or `null` to look the server up in DNS.
    pub server: Option<String>,
    pub tls: TlsMode,
    pub ca_file: Option<String>,
}

/// The remembered account as the sign-in form gets it (`remembered_account`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
pub struct RememberedView {
    #[serde(flatten)]
    pub account: RememberedAccount,
    /// Its password is in the OS keyring: the app signs in by itself at start.
    pub password_saved: bool,
    /// Why signing in by itself at start failed (with the kept password).
    pub sign_in_error: Option<AppError>,
}

impl RememberedAccount {
    pub fn load(store: &Store) -> Option<RememberedAccount> {
        let json = store.setting(ACCOUNT_KEY).ok().flatten()?;
        serde_json::from_str(&json).ok()
    }

    pub fn save(&self, store: &Store) -> AppResult<()> {
        let json = serde_json::to_string(self).map_err(AppError::internal)?;
        store.set_setting(ACCOUNT_KEY, &json)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_engine::transfer::{Method, StrangerPolicy};
    use std::net::IpAddr;

    #[test]
    fn settings_round_trip_through_the_store() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(Settings::load(&store), Settings::default());
        let s = Settings {
            transfer: TransferSettings {
                download_dir: "/tmp/in".into(),
                proxy_jid: Some("proxy.example.com".into()),
                methods: vec![Method::Ibb],
                streamhost_addrs: vec!["127.0.0.1".into()],
                allow_upload: false,
                serve_http: true,
                strangers: StrangerPolicy::Refuse,
            },
            auto_accept_max_bytes: 10 << 20,
            language: Language::ZhCn,
            theme: Theme::Dark,
        };
        s.save(&store).unwrap();
        assert_eq!(Settings::load(&store), s);
        let cfg = s.transfer_config().unwrap();
        assert_eq!(cfg.methods, vec![Method::Ibb]);
        assert_eq!(cfg.proxy.unwrap().to_string(), "proxy.example.com");
        assert_eq!(cfg.streamhost_addrs, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(cfg.accept, AcceptPolicy::Ask);
        assert!(!cfg.allow_upload && cfg.serve_http);
        assert_eq!(cfg.strangers, StrangerPolicy::Refuse);
        assert_eq!(Settings::default().transfer_config().unwrap().strangers, StrangerPolicy::Ask);
    }

    #[test]
    fn json_is_camel_case_and_tolerates_missing_fields() {
        let json = serde_json::to_value(Settings::default()).unwrap();
        for key in [
            "downloadDir",
            "proxyJid",
            "methods",
            "autoAcceptMaxBytes",
            "language",
            "theme",
            "streamhostAddrs",
            "allowUpload",
            "serveHttp",
            "strangers",
        ] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        let s: Settings = serde_json::from_str(r#"{"language":"zh-CN","methods":["s5b"]}"#).unwrap();
        assert_eq!(s.language, Language::ZhCn);
        assert_eq!(s.theme, Theme::System);
        // Settings saved before uploads existed: uploads allowed, serving off.
        assert!(s.transfer.allow_upload && !s.transfer.serve_http);
        // ... and before the stranger setting: asked about.
        assert_eq!(s.transfer.strangers, StrangerPolicy::Ask);
        assert_eq!(json["strangers"], "ask");
    }

    #[test]
    fn the_stranger_setting_is_stored_and_reaches_the_engine() {
        let store = Store::open_in_memory().unwrap();
        for (policy, word) in [(StrangerPolicy::Refuse, "refuse"), (StrangerPolicy::Ask, "ask")] {
            let transfer = TransferSettings { strangers: policy, ..TransferSettings::default() };
            let s = Settings { transfer, ..Settings::default() };
            assert_eq!(serde_json::to_value(&s).unwrap()["strangers"], word);
            s.save(&store).unwrap();
            assert_eq!(Settings::load(&store).transfer.strangers, policy);
            assert_eq!(Settings::load(&store).transfer_config().unwrap().strangers, policy);
        }
        // The earlier boolean form still refuses.
        store.set_setting(SETTINGS_KEY, r#"{"refuseStrangers":true}"#).unwrap();
        assert_eq!(Settings::load(&store).transfer.strangers, StrangerPolicy::Refuse);
        store.set_setting(SETTINGS_KEY, r#"{"refuseStrangers":false,"theme":"dark"}"#).unwrap();
        assert_eq!(Settings::load(&store), Settings { theme: Theme::Dark, ..Settings::default() });
        // An unknown word is unreadable: defaults (ask), not a silent refuse or accept.
        store.set_setting(SETTINGS_KEY, r#"{"strangers":"accept"}"#).unwrap();
        assert_eq!(Settings::load(&store), Settings::default());
    }

    #[test]
    fn invalid_settings_are_refused_with_a_code() {
        let store = Store::open_in_memory().unwrap();
        let s =
            Settings { transfer: TransferSettings { methods: vec![], ..Default::default() }, ..Settings::default() };
        assert_eq!(s.save(&store).unwrap_err().code, "invalid");
        let transfer = TransferSettings { streamhost_addrs: vec!["nope".into()], ..Default::default() };
        let s = Settings { transfer, ..Settings::default() };
        assert_eq!(s.save(&store).unwrap_err().code, "invalid");
        assert_eq!(Settings::load(&store), Settings::default());
    }

    #[test]
    fn remembered_account_round_trip() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(RememberedAccount::load(&store), None);
        let a = RememberedAccount {
            jid: "alice@example.com".into(),
            server: Some("xmpp.example.com:5222".into()),
            tls: TlsMode::StartTls,
            ca_file: None,
        };
        a.save(&store).unwrap();
        assert_eq!(RememberedAccount::load(&store), Some(a));
    }
}
