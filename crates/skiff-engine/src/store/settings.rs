//! The store's key-value side: settings, the hash cache, per-account pins and markers.

use super::*;

impl Store {
    /// The cached hashes of a file, if its size and modification time are unchanged.
    pub fn hash_cache_get(
        &self,
        path: &str,
        size: u64,
        mtime_ns: i64,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let sql = "SELECT md5, sha256 FROM hash_cache WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3";
        let row = self.conn().query_row(sql, params![path, to_i64(size)?, mtime_ns], |r| Ok((r.get(0)?, r.get(1)?)));
        Ok(row.optional()?)
    }

    /// Caches the hashes of a file, replacing what was cached for that path.
    pub fn hash_cache_put(
        &self,
        path: &str,
        size: u64,
        mtime_ns: i64,
        md5: &str,
        sha256: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO hash_cache (path, size, mtime_ns, md5, sha256) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, \
             md5 = excluded.md5, sha256 = excluded.sha256",
            params![path, to_i64(size)?, mtime_ns, md5, sha256],
        )?;
        Ok(())
    }

    /// A stored setting (never a secret).
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT value FROM settings WHERE key = ?1";
        Ok(self.conn().query_row(sql, [key], |r| r.get(0)).optional()?)
    }

    /// Whether `account` (a bare JID) signed in with SCRAM before: then PLAIN is
    /// refused for it ([`crate::AccountConfig::require_scram`]).
    pub fn scram_required(&self, account: &str) -> bool {
        self.setting(&format!("sasl.scram:{account}")).ok().flatten().is_some()
    }

    /// Remembers the SASL mechanism `account` signed in with (SCRAM only matters).
    pub fn note_mechanism(&self, account: &str, mechanism: &str) {
        if mechanism.starts_with("SCRAM-") && !self.scram_required(account) {
            if let Err(e) = self.set_setting(&format!("sasl.scram:{account}"), mechanism) {
                tracing::warn!("history: {e}");
            }
        }
    }

    /// The server certificate the user trusted for `account` (a bare JID), see
    /// [`crate::trust`]: the fingerprint to put in
    /// [`crate::AccountConfig::trusted_certificates`].
    pub fn certificate_pin(&self, account: &str) -> Option<crate::trust::Fingerprint> {
        let value = self.setting(&format!("tls.pin:{account}")).ok().flatten()?;
        value.parse().map_err(|e| tracing::warn!("history: pin of {account}: {e}")).ok()
    }

    /// Pins the server certificate `fingerprint` for `account`, replacing an earlier
    /// pin (one certificate per account: a changed one is asked about again).
    pub fn pin_certificate(&self, account: &str, fingerprint: crate::trust::Fingerprint) -> Result<(), StoreError> {
        self.set_setting(&format!("tls.pin:{account}"), &fingerprint.to_string())
    }

    /// Stores a setting, replacing its previous value.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        self.conn().execute(sql, [key, value])?;
        Ok(())
    }
}
