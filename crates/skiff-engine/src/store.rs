//! The transfer history: SQLite in WAL mode, one statement per change.
//!
//! Synchronous on purpose: the engine calls it from `spawn_blocking` or a dedicated
//! thread. Every change is its own autocommit statement, so a process killed at any
//! point leaves each record as of its last completed change (the WAL is replayed on the
//! next open). Schema versions live in `PRAGMA user_version` (rusqlite_migration); a
//! history written by a newer Skiff is refused without being touched.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, Value, ValueRef};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, ToSql};
use rusqlite_migration::{Migrations, M};

/// The schema, one step per version; never edit a released step, append a new one.
const MIGRATION_STEPS: &[M<'static>] = &[
    M::up(
        r#"CREATE TABLE transfers (
        id INTEGER PRIMARY KEY, sid TEXT NOT NULL, direction TEXT NOT NULL, account TEXT NOT NULL,
        peer_jid TEXT NOT NULL, file_name TEXT NOT NULL, local_path TEXT, size INTEGER NOT NULL,
        md5 TEXT, sha256 TEXT, date TEXT, description TEXT, route TEXT, streamhost TEXT,
        state TEXT NOT NULL, bytes_done INTEGER NOT NULL DEFAULT 0, error TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, finished_at INTEGER,
        "offset" INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 1
    ) STRICT;
    CREATE INDEX transfers_peer ON transfers (account, peer_jid);
    CREATE INDEX transfers_sid ON transfers (account, sid);
    CREATE INDEX transfers_state ON transfers (state);
    CREATE INDEX transfers_created ON transfers (created_at);
    CREATE TABLE hash_cache (
        path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, md5 TEXT NOT NULL, sha256 TEXT
    ) STRICT;
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"#,
    ),
    // The URL an incoming link came from, to fetch the rest of it later.
    M::up("ALTER TABLE transfers ADD COLUMN url TEXT;"),
    // How a completed transfer was verified (NULL: not verified, or not completed).
    M::up("ALTER TABLE transfers ADD COLUMN verified TEXT;"),
    // Why a transfer ended without the file (`FailReason`), beside the `error` text.
    M::up("ALTER TABLE transfers ADD COLUMN fail_reason TEXT;"),
];

/// The migrations applied by [`Store::open`].
pub(crate) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(MIGRATION_STEPS);

/// The columns of [`TransferRecord`], in the order `record_from_row` reads them.
const COLUMNS: &str = "id, sid, direction, account, peer_jid, file_name, local_path, size, md5, sha256, date, \
    description, route, streamhost, state, bytes_done, error, created_at, updated_at, finished_at, \"offset\", attempts, url, verified, fail_reason";

/// Why the history could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or its directory cannot be created, opened or read as SQLite.
    #[error("cannot open the history database {}: {source}", .path.display())]
    Open { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    /// The schema version in the file is above the last migration this code has.
    #[error("this history was written by a newer Skiff (schema {found}, this version knows {known})")]
    TooNew { found: usize, known: usize },
    /// Any SQLite failure, including a `u64` too large for an SQLite integer.
    #[error("history database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A migration step failed (it was rolled back).
    #[error("cannot bring the history database up to date: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// No row has this id.
    #[error("no transfer with id {0}")]
    NotFound(i64),
}

/// A damaged history moved aside by [`Store::open_or_recover`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Where the damaged file is now.
    pub moved_to: PathBuf,
    /// What SQLite said about it.
    pub problem: String,
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the transfer history was damaged ({}) and was moved to {}; Skiff started a new one",
            self.problem,
            self.moved_to.display()
        )
    }
}

/// Whether `e` says the file is not a (sound) SQLite database.
fn is_corruption(e: &StoreError) -> bool {
    let sqlite = match e {
        StoreError::Sql(e) => Some(e),
        StoreError::Open { source, .. } => source.downcast_ref::<rusqlite::Error>(),
        StoreError::Migration(rusqlite_migration::Error::RusqliteError { err, .. }) => Some(err),
        _ => None,
    };
    matches!(
        sqlite.and_then(rusqlite::Error::sqlite_error_code),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

pub use skiff_proto::transfer::{FailReason, Route};
pub use skiff_proto::vocab::UnknownValue;
use skiff_proto::vocab::WireName;

/// A `u64` above `i64::MAX`: SQLite integers are signed, so it is refused, not wrapped.
#[derive(Debug, thiserror::Error)]
#[error("{0} is too large for the history database")]
struct TooLarge(u64);

/// The wire names ([`skiff_proto::wire_enum!`]) and SQLite TEXT conversions for a
/// fieldless enum of the store's.
macro_rules! text_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        skiff_proto::wire_enum!($ty, $kind, { $($variant => $text),+ });
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                value.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
            }
        }
    };
}

/// A protocol enum ([`Route`], [`FailReason`]) as SQLite TEXT: its wire name.
struct Wire<T>(T);

impl<T: WireName> ToSql for Wire<T> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.wire_name()))
    }
}

impl<T: WireName> FromSql for Wire<T> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        T::from_wire(value.as_str()?).map(Wire).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

/// Which way the file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Incoming,
    Outgoing,
}
text_enum!(Direction, "direction", { Incoming => "incoming", Outgoing => "outgoing" });

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum TransferState {
    /// Offered, no answer yet.
    Offered,
    /// Accepted, no byte stream yet.
    Accepted,
    /// Bytes are flowing.
    Active,
    Completed,
    Failed,
    /// Declined by the receiver.
    Rejected,
    /// Stopped by one of the users.
    Cancelled,
    /// Cut by a disconnection or by Skiff stopping; can be resumed.
    Interrupted,
}
text_enum!(TransferState, "transfer state", {
    Offered => "offered", Accepted => "accepted", Active => "active", Completed => "completed",
    Failed => "failed", Rejected => "rejected", Cancelled => "cancelled", Interrupted => "interrupted",
});

impl TransferState {
    /// Nothing more will happen to this attempt: `finished_at` is set.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Rejected | Self::Cancelled)
    }

    /// A stored record in this state can be continued from its `bytes_done`. `Active`
    /// and `Accepted` count because a record still showing them after a crash belongs
    /// to an attempt that is no longer running.
    pub fn is_resumable(self) -> bool {
        matches!(self, Self::Failed | Self::Interrupted | Self::Active | Self::Accepted)
    }

    /// States whose record keeps an error or reason text; the others clear it.
    fn keeps_error(self) -> bool {
        matches!(self, Self::Failed | Self::Interrupted | Self::Rejected | Self::Cancelled)
    }
}

/// How a transfer's content was checked end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    /// The whole file's SHA-256 matched the sender's (incoming), or the receiver
    /// confirmed it (outgoing).
    Sha256,
    /// Only the MD5 of the offer (XEP-0096) matched.
    Md5,
    /// Only the size was checked: the sender gave no hash, or it never came.
    None,
}
text_enum!(Verification, "verification", { Sha256 => "sha256", Md5 => "md5", None => "none" });

impl Verification {
    /// Whether the content itself was checked.
    pub fn is_verified(self) -> bool {
        self != Verification::None
    }
}

/// One transfer as stored (the last attempt for a resumed one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TransferRecord {
    pub id: i64,
    /// Stream id of the current attempt.
    pub sid: String,
    pub direction: Direction,
    /// Bare JID of our account.
    pub account: String,
    /// Full JID of the peer used by the current attempt.
    pub peer_jid: String,
    pub file_name: String,
    /// Source file for outgoing; the `.part` or final file for incoming.
    pub local_path: Option<String>,
    pub size: u64,
    pub md5: Option<String>,
    pub sha256: Option<String>,
    /// Modification date announced in the offer (XEP-0096, ISO 8601).
    pub date: Option<String>,
    pub description: Option<String>,
    pub route: Option<Route>,
    /// JID of the streamhost used, for S5B.
    pub streamhost: Option<String>,
    pub state: TransferState,
    pub bytes_done: u64,
    pub error: Option<String>,
    /// Why it ended without the file, beside `error` (kept in the same states).
    pub fail_reason: Option<FailReason>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// Where the current attempt started (non-zero when resumed).
    pub offset: u64,
    /// Attempts started, 1 for a transfer never retried.
    pub attempts: u32,
    /// For an incoming link: where it is fetched from.
    pub url: Option<String>,
    /// How the file was checked once complete ([`Verification::None`] before, or
    /// when it could not be: "received, not verified").
    pub verified: Verification,
}

/// What [`Store::insert`] needs; the rest starts empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub sid: String,
    pub direction: Direction,
    pub account: String,
    pub peer_jid: String,
    pub file_name: String,
    pub local_path: Option<String>,
    pub size: u64,
    pub md5: Option<String>,
    pub date: Option<String>,
    pub description: Option<String>,
    pub state: TransferState,
}

/// What [`Store::list`] returns: every field set must match (an empty text counts as
/// unset); newest first. The shells take it as it is (the desktop's `history`
/// command, the CLI's `history`).
#[derive(Default, Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[serde(rename_all = "camelCase", default)]
pub struct HistoryQuery {
    /// Bare JID: that peer and any of its resources; a full JID: that resource
    /// (ASCII case-insensitive).
    pub peer: Option<String>,
    pub direction: Option<Direction>,
    pub state: Option<TransferState>,
    /// Part of the file name, ASCII case-insensitive; `%` and `_` are literal.
    pub name_contains: Option<String>,
    /// Created at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Created before this time (Unix milliseconds).
    pub until_ms: Option<i64>,
    pub limit: Option<u32>,
}

/// The history database. `Send + Sync`; each call takes the connection for one statement.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating it and its parent directories if needed) and migrates the history.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err =
            |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open { path: path.into(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(e.into()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.into()))?;
        Store::init(conn).map_err(|e| match e {
            StoreError::Sql(e) => open_err(e.into()),
            e => e,
        })
    }

    /// [`Store::open`], and when the file is damaged (not a database, or failing its
    /// integrity check), moves it aside (`NAME.corrupt-UNIXTIME`, with its `-wal` and
    /// `-shm`) and starts an empty history: the app still starts, and the user is told
    /// where the old file went ([`Recovered`]). A history from a newer Skiff is an
    /// error, left untouched.
    pub fn open_or_recover(path: &Path) -> Result<(Store, Option<Recovered>), StoreError> {
        let damage = match Store::open(path) {
            Ok(store) => match store.integrity_problem() {
                None => return Ok((store, None)),
                Some(problem) => {
                    drop(store);
                    problem
                }
            },
            Err(e) if is_corruption(&e) => e.to_string(),
            Err(e) => return Err(e),
        };
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut moved_to = path.as_os_str().to_owned();
        moved_to.push(format!(".corrupt-{stamp}"));
        let moved_to = PathBuf::from(moved_to);
        let open_err = |e: std::io::Error| StoreError::Open { path: path.into(), source: e.into() };
        std::fs::rename(path, &moved_to).map_err(open_err)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            let mut side_to = moved_to.as_os_str().to_owned();
            side_to.push(suffix);
            if Path::new(&side).exists() {
                std::fs::rename(&side, &side_to).map_err(open_err)?;
            }
        }
        tracing::error!("history {} is damaged ({damage}); moved to {}", path.display(), moved_to.display());
        let store = Store::open(path)?;
        Ok((store, Some(Recovered { moved_to, problem: damage })))
    }

    /// `PRAGMA quick_check`: `None` when the file is sound.
    fn integrity_problem(&self) -> Option<String> {
        let result: Result<String, _> = self.conn().query_row("PRAGMA quick_check", [], |r| r.get(0));
        match result {
            Ok(s) if s == "ok" => None,
            Ok(s) => Some(s),
            Err(e) => Some(e.to_string()),
        }
    }

    /// A throw-away history, for tests and `--no-history` runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // Checked before anything writes to the file (switching to WAL does).
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATION_STEPS.len();
        match usize::try_from(found) {
            Ok(found) if found > known => return Err(StoreError::TooNew { found, known }),
            _ => {}
        }
        // In-memory databases answer "memory": nothing to check.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        MIGRATIONS.to_latest(&mut conn)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    /// The connection; a panic elsewhere cannot leave it half-written (one statement per call).
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a new transfer (attempt 1, nothing done yet) and returns its id.
    pub fn insert(&self, t: &NewTransfer) -> Result<i64, StoreError> {
        let now = now_ms();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO transfers (sid, direction, account, peer_jid, file_name, local_path, size, md5, date, \
             description, state, created_at, updated_at, finished_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)",
            params![
                t.sid,
                t.direction,
                t.account,
                t.peer_jid,
                t.file_name,
                t.local_path,
                to_i64(t.size)?,
                t.md5,
                t.date,
                t.description,
                t.state,
                now,
                t.state.is_final().then_some(now),
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// The transfer with this id, or [`StoreError::NotFound`].
    pub fn get(&self, id: i64) -> Result<TransferRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM transfers WHERE id = ?1");
        self.conn().query_row(&sql, [id], record_from_row).optional()?.ok_or(StoreError::NotFound(id))
    }

    /// The newest transfer of this account with this stream id and direction.
    pub fn by_sid(&self, account: &str, sid: &str, direction: Direction) -> Result<Option<TransferRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM transfers WHERE account = ?1 AND sid = ?2 AND direction = ?3 ORDER BY id DESC LIMIT 1"
        );
        Ok(self.conn().query_row(&sql, params![account, sid, direction], record_from_row).optional()?)
    }

    /// Moves to `state`. Final states set `finished_at`, others clear it. `failure` (why,
    /// and the sentence) is kept for Failed, Interrupted, Rejected and Cancelled; the
    /// other states clear it.
    pub fn set_state(
        &self,
        id: i64,
        state: TransferState,
        failure: Option<(FailReason, &str)>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let (reason, error) = failure.filter(|_| state.keeps_error()).map(|(r, e)| (Wire(r), e)).unzip();
        self.update(
            id,
            "UPDATE transfers SET state = ?2, error = ?3, fail_reason = ?4, finished_at = ?5, updated_at = ?6 \
             WHERE id = ?1",
            params![id, state, error, reason, state.is_final().then_some(now), now],
        )
    }

    /// Records how many bytes of the file are done (counted from the file start).
    pub fn set_progress(&self, id: i64, bytes_done: u64) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET bytes_done = ?2, updated_at = ?3 WHERE id = ?1";
        self.update(id, sql, params![id, to_i64(bytes_done)?, now_ms()])
    }

    /// Records the route chosen and, for S5B, the streamhost used.
    pub fn set_route(&self, id: i64, route: Route, streamhost: Option<&str>) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET route = ?2, streamhost = ?3, updated_at = ?4 WHERE id = ?1";
        self.update(id, sql, params![id, Wire(route), streamhost, now_ms()])
    }

    /// Records the hashes; `None` leaves that column as it is.
    pub fn set_hashes(&self, id: i64, md5: Option<&str>, sha256: Option<&str>) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET md5 = COALESCE(?2, md5), sha256 = COALESCE(?3, sha256), updated_at = ?4 \
                   WHERE id = ?1";
        self.update(id, sql, params![id, md5, sha256, now_ms()])
    }

    /// Records the size of a file that was offered without one (a link whose size the
    /// download told).
    pub fn set_size(&self, id: i64, size: u64) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET size = ?2, updated_at = ?3 WHERE id = ?1";
        self.update(id, sql, params![id, to_i64(size)?, now_ms()])
    }

    /// Records the URL an incoming link is fetched from.
    pub fn set_url(&self, id: i64, url: &str) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET url = ?2, updated_at = ?3 WHERE id = ?1";
        self.update(id, sql, params![id, url, now_ms()])
    }

    /// Records the local file (e.g. the `.part` renamed to its final name).
    pub fn set_local_path(&self, id: i64, path: &str) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET local_path = ?2, updated_at = ?3 WHERE id = ?1";
        self.update(id, sql, params![id, path, now_ms()])
    }

    /// Starts a new attempt (resume or retry): new sid and peer resource, `attempts + 1`,
    /// `offset` and `bytes_done` at `offset`, state Accepted; error, finish time and the
    /// previous attempt's route and streamhost are cleared.
    pub fn start_attempt(&self, id: i64, sid: &str, peer_jid: &str, offset: u64) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET sid = ?2, peer_jid = ?3, \"offset\" = ?4, bytes_done = ?4, state = ?5, \
                   attempts = attempts + 1, error = NULL, fail_reason = NULL, finished_at = NULL, route = NULL, streamhost = NULL, \
                   updated_at = ?6 WHERE id = ?1";
        self.update(id, sql, params![id, sid, peer_jid, to_i64(offset)?, TransferState::Accepted, now_ms()])
    }

    /// The transfers matching `f`, newest first.
    pub fn list(&self, f: &HistoryQuery) -> Result<Vec<TransferRecord>, StoreError> {
        let mut q = Query::default();
        if let Some(peer) = f.peer.as_deref().filter(|p| !p.is_empty()) {
            q.peer(peer);
        }
        if let Some(direction) = f.direction {
            q.and("direction = ?", [text(direction.as_str())]);
        }
        if let Some(state) = f.state {
            q.and("state = ?", [text(state.as_str())]);
        }
        if let Some(part) = f.name_contains.as_deref().filter(|n| !n.is_empty()) {
            q.and("file_name LIKE ? ESCAPE '\\'", [format!("%{}%", like_escape(part)).into()]);
        }
        if let Some(since) = f.since_ms {
            q.and("created_at >= ?", [since.into()]);
        }
        if let Some(until) = f.until_ms {
            q.and("created_at < ?", [until.into()]);
        }
        q.sql.push_str(" ORDER BY created_at DESC, id DESC");
        if let Some(limit) = f.limit {
            q.sql.push_str(" LIMIT ?");
            q.args.push(i64::from(limit).into());
        }
        self.query(&q)
    }

    /// An earlier incoming transfer of the same file from the same peer that can be
    /// resumed: same account, peer bare JID, file name and size, the same md5 when one is
    /// given (else the same date when one is given), in a resumable state, with bytes done
    /// and a local file. The newest such record.
    pub fn find_resumable_incoming(
        &self,
        account: &str,
        peer_bare: &str,
        file_name: &str,
        size: u64,
        md5: Option<&str>,
        date: Option<&str>,
    ) -> Result<Option<TransferRecord>, StoreError> {
        let mut q = Query::default();
        q.and("account = ? AND direction = 'incoming'", [text(account)]);
        q.peer(peer_bare);
        q.and("file_name = ? AND size = ?", [text(file_name), to_i64(size)?.into()]);
        // bytes_done is a checkpoint that may lag: the `.part` file's length decides
        // where to continue, so a record with 0 bytes done still counts.
        q.and("state IN ('interrupted', 'failed', 'active', 'accepted')", []);
        q.and("local_path IS NOT NULL", []);
        // An earlier offer may have gone out before the sender's MD5 was ready: then
        // the date decides. The final MD5 check catches a wrong match.
        match (md5, date) {
            (Some(md5), Some(date)) => {
                q.and("(lower(md5) = lower(?) OR (md5 IS NULL AND date = ?))", [text(md5), text(date)])
            }
            (Some(md5), None) => q.and("lower(md5) = lower(?)", [text(md5)]),
            (None, Some(date)) => q.and("date = ?", [text(date)]),
            (None, None) => {}
        }
        q.sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT 1");
        Ok(self.query(&q)?.into_iter().next())
    }

    /// Outgoing transfers to this peer (bare JID) left Interrupted, oldest first: the ones
    /// to offer again when the peer comes back.
    pub fn interrupted_outgoing(&self, account: &str, peer_bare: &str) -> Result<Vec<TransferRecord>, StoreError> {
        let mut q = Query::default();
        q.and("account = ? AND direction = 'outgoing' AND state = 'interrupted'", [text(account)]);
        q.peer(peer_bare);
        q.sql.push_str(" ORDER BY created_at, id");
        self.query(&q)
    }

    /// At start-up: this account's transfers left Offered, Accepted or Active by a crash
    /// or kill become Interrupted. Returns how many.
    pub fn interrupt_unfinished(&self, account: &str) -> Result<usize, StoreError> {
        let sql = "UPDATE transfers SET state = 'interrupted', error = 'Skiff stopped during the transfer', \
                   fail_reason = 'stopped', updated_at = ?2 WHERE account = ?1 AND state IN ('offered', 'accepted', 'active')";
        Ok(self.conn().execute(sql, params![account, now_ms()])?)
    }

    /// Removes a transfer from the history (not its file).
    pub fn delete(&self, id: i64) -> Result<(), StoreError> {
        self.update(id, "DELETE FROM transfers WHERE id = ?1", [id])
    }

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

    /// Records how a completed transfer was verified.
    pub fn set_verified(&self, id: i64, verified: Verification) -> Result<(), StoreError> {
        self.update(id, "UPDATE transfers SET verified = ?2 WHERE id = ?1", params![id, verified])
    }

    /// Stores a setting, replacing its previous value.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let sql =
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        self.conn().execute(sql, [key, value])?;
        Ok(())
    }

    /// Runs one statement touching the row `id`; no row touched is [`StoreError::NotFound`].
    fn update(&self, id: i64, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
        match self.conn().prepare_cached(sql)?.execute(params)? {
            0 => Err(StoreError::NotFound(id)),
            _ => Ok(()),
        }
    }

    fn query(&self, q: &Query) -> Result<Vec<TransferRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM transfers WHERE {}", q.sql))?;
        let rows = stmt.query_map(params_from_iter(&q.args), record_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// A `WHERE` clause built from optional criteria, with its `?` arguments in order.
#[derive(Debug)]
struct Query {
    sql: String,
    args: Vec<Value>,
}

impl Default for Query {
    fn default() -> Self {
        Query { sql: "1 = 1".into(), args: Vec::new() }
    }
}

impl Query {
    fn and<const N: usize>(&mut self, clause: &str, args: [Value; N]) {
        self.sql.push_str(" AND ");
        self.sql.push_str(clause);
        self.args.extend(args);
    }

    /// `peer_jid` is the bare JID or one of its full JIDs.
    fn peer(&mut self, bare: &str) {
        let bare = like_escape(bare);
        let full = format!("{bare}/%");
        self.and("(peer_jid LIKE ? ESCAPE '\\' OR peer_jid LIKE ? ESCAPE '\\')", [bare.into(), full.into()]);
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Escapes `\`, `%` and `_` for a `LIKE .. ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

fn to_i64(v: u64) -> rusqlite::Result<i64> {
    i64::try_from(v).map_err(|_| rusqlite::Error::ToSqlConversionFailure(Box::new(TooLarge(v))))
}

fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

fn record_from_row(r: &Row<'_>) -> rusqlite::Result<TransferRecord> {
    Ok(TransferRecord {
        id: r.get(0)?,
        sid: r.get(1)?,
        direction: r.get(2)?,
        account: r.get(3)?,
        peer_jid: r.get(4)?,
        file_name: r.get(5)?,
        local_path: r.get(6)?,
        size: get_u64(r, 7)?,
        md5: r.get(8)?,
        sha256: r.get(9)?,
        date: r.get(10)?,
        description: r.get(11)?,
        route: r.get::<_, Option<Wire<Route>>>(12)?.map(|w| w.0),
        streamhost: r.get(13)?,
        state: r.get(14)?,
        bytes_done: get_u64(r, 15)?,
        error: r.get(16)?,
        created_at: r.get(17)?,
        updated_at: r.get(18)?,
        finished_at: r.get(19)?,
        offset: get_u64(r, 20)?,
        attempts: r.get(21)?,
        url: r.get(22)?,
        // Anything unknown (a newer Skiff's value) reads as not verified.
        verified: r.get::<_, Option<String>>(23)?.and_then(|v| v.parse().ok()).unwrap_or(Verification::None),
        // Likewise: a reason this version does not know reads as none.
        fail_reason: r.get::<_, Option<String>>(24)?.and_then(|v| v.parse().ok()),
    })
}

/// Unix milliseconds now.
fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TransferState::*;

    const ME: &str = "me@example.org";

    fn offer(sid: &str, direction: Direction, peer: &str, name: &str) -> NewTransfer {
        NewTransfer {
            sid: sid.into(),
            direction,
            account: ME.into(),
            peer_jid: peer.into(),
            file_name: name.into(),
            local_path: Some(format!("/tmp/{name}.part")),
            size: 1000,
            md5: None,
            date: None,
            description: None,
            state: Offered,
        }
    }

    fn set_created(store: &Store, id: i64, ms: i64) {
        store.conn().execute("UPDATE transfers SET created_at = ?2 WHERE id = ?1", [id, ms]).unwrap();
    }

    fn ids(records: Vec<TransferRecord>) -> Vec<i64> {
        records.into_iter().map(|r| r.id).collect()
    }

    fn user_version(path: &Path) -> i64 {
        Connection::open(path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }

    #[test]
    fn migrations_validate() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn store_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Store>();
    }

    #[test]
    fn enums_text_matches_serde_and_parses_back() {
        fn check<T>(all: &[T], as_str: fn(&T) -> &'static str)
        where
            T: serde::Serialize + std::str::FromStr + PartialEq + std::fmt::Debug,
            T::Err: std::fmt::Debug,
        {
            for v in all {
                assert_eq!(serde_json::to_string(v).unwrap(), format!("\"{}\"", as_str(v)));
                assert_eq!(&as_str(v).parse::<T>().unwrap(), v);
            }
        }
        check(Direction::ALL, |v| v.as_str());
        check(TransferState::ALL, |v| v.as_str());
        check(Route::ALL, |v| v.as_str());
        check(FailReason::ALL, |v| v.as_str());
        assert_eq!("S5B".parse::<Route>(), Err(UnknownValue { kind: "route", value: "S5B".into() }));
        let finals: Vec<_> = TransferState::ALL.iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [&Completed, &Failed, &Rejected, &Cancelled]);
        let resumable: Vec<_> = TransferState::ALL.iter().filter(|s| s.is_resumable()).collect();
        assert_eq!(resumable, [&Accepted, &Active, &Failed, &Interrupted]);
    }

    #[test]
    fn reopen_keeps_data_and_migrates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/history.db");
        let store = Store::open(&path).unwrap();
        let id = store.insert(&offer("s1", Direction::Outgoing, "bob@x/pc", "a.txt")).unwrap();
        store.set_setting("theme", "dark").unwrap();
        drop(store);
        let known = MIGRATION_STEPS.len() as i64;
        assert_eq!(user_version(&path), known);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get(id).unwrap().sid, "s1");
        assert_eq!(store.setting("theme").unwrap().as_deref(), Some("dark"));
        assert_eq!(MIGRATIONS.pending_migrations(&store.conn()).unwrap(), 0);
        let mode: String = store.conn().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        drop(store);
        assert_eq!(user_version(&path), known);
    }

    #[test]
    fn newer_schema_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
        drop(raw);
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        let known = MIGRATION_STEPS.len();
        assert!(matches!(err, StoreError::TooNew { found: 99, known: k } if k == known), "{err:?}");
        let expected = format!("this history was written by a newer Skiff (schema 99, this version knows {known})");
        assert_eq!(err.to_string(), expected);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(user_version(&path), 99);
    }

    #[test]
    fn a_damaged_history_is_moved_aside_and_a_new_one_started() {
        let dir = tempfile::tempdir().unwrap();
        // Not a database at all.
        let path = dir.path().join("history.sqlite3");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let (store, recovered) = Store::open_or_recover(&path).unwrap();
        let r = recovered.expect("moved aside");
        assert!(r.moved_to.starts_with(dir.path()) && r.moved_to.to_string_lossy().contains(".corrupt-"), "{r:?}");
        assert_eq!(std::fs::read(&r.moved_to).unwrap(), vec![b'x'; 4096]);
        assert!(r.to_string().contains("was moved to"), "{r}");
        assert!(store.list(&HistoryQuery::default()).unwrap().is_empty());
        drop(store);
        // A sound one is kept; a damaged page inside one is caught by the check.
        let (store, recovered) = Store::open_or_recover(&path).unwrap();
        assert_eq!(recovered, None);
        for i in 0..200 {
            store.set_setting(&format!("k{i}"), &"v".repeat(500)).unwrap();
        }
        drop(store);
        let mut bytes = std::fs::read(&path).unwrap();
        // Scribble over a page in the middle (not the header), as a bad disk would.
        let page = 4096 * 3;
        assert!(bytes.len() > page + 4096, "{} bytes", bytes.len());
        for b in &mut bytes[page..page + 4096] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).unwrap();
        let (_store, recovered) = Store::open_or_recover(&path).unwrap();
        assert!(recovered.is_some(), "the damaged page went unnoticed");
        // A newer Skiff's history is not touched.
        let newer = dir.path().join("newer.sqlite3");
        let raw = Connection::open(&newer).unwrap();
        raw.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
        drop(raw);
        assert!(matches!(Store::open_or_recover(&newer), Err(StoreError::TooNew { .. })));
    }

    #[test]
    fn not_a_database_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("cannot open the history database {}: ", path.display())));
    }

    #[test]
    fn insert_get_by_sid() {
        let store = Store::open_in_memory().unwrap();
        let mut t = offer("sid-1", Direction::Incoming, "bob@x/pc", "a.iso");
        t.md5 = Some("abc".into());
        t.date = Some("2024-05-01T10:00:00Z".into());
        t.description = Some("holiday".into());
        let id = store.insert(&t).unwrap();
        let r = store.get(id).unwrap();
        assert_eq!((r.id, r.sid.as_str(), r.direction, r.state), (id, "sid-1", Direction::Incoming, Offered));
        assert_eq!((r.account.as_str(), r.peer_jid.as_str(), r.file_name.as_str()), (ME, "bob@x/pc", "a.iso"));
        assert_eq!((r.size, r.bytes_done, r.offset, r.attempts), (1000, 0, 0, 1));
        assert_eq!((r.md5.as_deref(), r.sha256.as_deref(), r.route, r.finished_at), (Some("abc"), None, None, None));
        assert_eq!(r.date, t.date);
        assert_eq!(r.description, t.description);
        assert_eq!(r.local_path.as_deref(), Some("/tmp/a.iso.part"));
        assert!(r.created_at > 1_600_000_000_000 && r.created_at == r.updated_at);

        assert_eq!(store.by_sid(ME, "sid-1", Direction::Incoming).unwrap(), Some(r));
        assert_eq!(store.by_sid(ME, "sid-1", Direction::Outgoing).unwrap(), None);
        assert_eq!(store.by_sid("other@x", "sid-1", Direction::Incoming).unwrap(), None);
        assert!(matches!(store.get(id + 1), Err(StoreError::NotFound(n)) if n == id + 1));

        let too_big = NewTransfer { size: u64::MAX, ..t };
        assert!(matches!(store.insert(&too_big), Err(StoreError::Sql(_))));
        assert!(store.set_progress(id, u64::MAX).is_err());
        assert_eq!(store.get(id).unwrap().bytes_done, 0);
    }

    #[test]
    fn setters() {
        let store = Store::open_in_memory().unwrap();
        let id = store.insert(&offer("s", Direction::Outgoing, "bob@x/pc", "a.txt")).unwrap();

        store.set_state(id, Active, Some((FailReason::Network, "ignored"))).unwrap();
        let r = store.get(id).unwrap();
        assert_eq!((r.state, r.error, r.finished_at), (Active, None, None));

        store.set_progress(id, 512).unwrap();
        store.set_route(id, Route::S5bProxy, Some("proxy.x")).unwrap();
        store.set_hashes(id, Some("m1"), None).unwrap();
        store.set_hashes(id, None, Some("s1")).unwrap();
        store.set_local_path(id, "/home/me/a.txt").unwrap();
        let r = store.get(id).unwrap();
        assert_eq!(r.bytes_done, 512);
        assert_eq!((r.route, r.streamhost.as_deref()), (Some(Route::S5bProxy), Some("proxy.x")));
        assert_eq!((r.md5.as_deref(), r.sha256.as_deref()), (Some("m1"), Some("s1")));
        assert_eq!(r.local_path.as_deref(), Some("/home/me/a.txt"));

        store.set_state(id, Failed, Some((FailReason::Network, "peer went away"))).unwrap();
        let r = store.get(id).unwrap();
        assert_eq!((r.state, r.error.as_deref()), (Failed, Some("peer went away")));
        assert_eq!(r.fail_reason, Some(FailReason::Network));
        assert!(r.finished_at.is_some());

        store.set_state(id, Completed, None).unwrap();
        let r = store.get(id).unwrap();
        assert_eq!((r.state, r.error, r.fail_reason), (Completed, None, None));
        assert!(r.finished_at.is_some());

        assert!(matches!(store.set_state(99, Failed, None), Err(StoreError::NotFound(99))));
        assert!(matches!(store.set_progress(99, 1), Err(StoreError::NotFound(99))));
        assert!(matches!(store.set_route(99, Route::Ibb, None), Err(StoreError::NotFound(99))));
        assert!(matches!(store.set_hashes(99, None, None), Err(StoreError::NotFound(99))));
        assert!(matches!(store.set_local_path(99, "/"), Err(StoreError::NotFound(99))));
        assert!(matches!(store.start_attempt(99, "s", "p", 0), Err(StoreError::NotFound(99))));

        store.delete(id).unwrap();
        assert!(matches!(store.get(id), Err(StoreError::NotFound(_))));
        assert!(matches!(store.delete(id), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn start_attempt_resets_for_resume() {
        let store = Store::open_in_memory().unwrap();
        let id = store.insert(&offer("s1", Direction::Incoming, "bob@x/pc", "a.iso")).unwrap();
        store.set_route(id, Route::Ibb, None).unwrap();
        store.set_progress(id, 700).unwrap();
        store.set_state(id, Failed, Some((FailReason::Timeout, "timeout"))).unwrap();
        store.start_attempt(id, "s2", "bob@x/laptop", 700).unwrap();
        let r = store.get(id).unwrap();
        assert_eq!((r.sid.as_str(), r.peer_jid.as_str()), ("s2", "bob@x/laptop"));
        assert_eq!((r.offset, r.bytes_done, r.attempts, r.state), (700, 700, 2, Accepted));
        assert_eq!((r.error, r.finished_at, r.route), (None, None, None));
        assert_eq!(store.by_sid(ME, "s2", Direction::Incoming).unwrap().map(|r| r.id), Some(id));
        assert_eq!(store.by_sid(ME, "s1", Direction::Incoming).unwrap(), None);
    }

    #[test]
    fn list_filters_and_order() {
        let store = Store::open_in_memory().unwrap();
        let a = store.insert(&offer("1", Direction::Incoming, "bob@x/pc", "Report_2024.pdf")).unwrap();
        let b = store.insert(&offer("2", Direction::Outgoing, "bob@x", "100% done.txt")).unwrap();
        let c = store.insert(&offer("3", Direction::Outgoing, "bob@xy/pc", "report-2024.pdf")).unwrap();
        let d = store.insert(&offer("4", Direction::Incoming, "carol@x/phone", "photo.jpg")).unwrap();
        for (id, ms) in [(a, 1000), (b, 2000), (c, 3000), (d, 4000)] {
            set_created(&store, id, ms);
        }
        store.set_state(b, Completed, None).unwrap();
        let list = |f: HistoryQuery| ids(store.list(&f).unwrap());
        let name = |s: &str| HistoryQuery { name_contains: Some(s.into()), ..Default::default() };

        assert_eq!(list(HistoryQuery::default()), [d, c, b, a]);
        assert_eq!(list(HistoryQuery { peer: Some("bob@x".into()), ..Default::default() }), [b, a]);
        assert_eq!(list(HistoryQuery { peer: Some("BOB@X".into()), ..Default::default() }), [b, a]);
        assert_eq!(list(HistoryQuery { peer: Some("bob@x/pc".into()), ..Default::default() }), [a]);
        assert!(list(HistoryQuery { peer: Some("bob@%".into()), ..Default::default() }).is_empty());
        assert_eq!(list(HistoryQuery { direction: Some(Direction::Outgoing), ..Default::default() }), [c, b]);
        assert_eq!(list(HistoryQuery { state: Some(Completed), ..Default::default() }), [b]);
        assert_eq!(list(HistoryQuery { state: Some(Offered), ..Default::default() }), [d, c, a]);
        assert_eq!(list(name("REPORT")), [c, a]);
        assert_eq!(list(name("t_2")), [a]);
        assert_eq!(list(name("%")), [b]);
        assert_eq!(list(name("0% d")), [b]);
        assert_eq!(list(HistoryQuery { since_ms: Some(2000), ..Default::default() }), [d, c, b]);
        assert_eq!(list(HistoryQuery { until_ms: Some(3000), ..Default::default() }), [b, a]);
        assert_eq!(list(HistoryQuery { limit: Some(2), ..Default::default() }), [d, c]);
        let all = HistoryQuery {
            peer: Some("bob@x".into()),
            direction: Some(Direction::Incoming),
            state: Some(Offered),
            name_contains: Some("pdf".into()),
            since_ms: Some(1000),
            until_ms: Some(1001),
            limit: Some(5),
        };
        assert_eq!(list(all), [a]);
        // Empty texts (a cleared form field) do not filter.
        assert_eq!(list(HistoryQuery { peer: Some(String::new()), ..name("") }), [d, c, b, a]);
        // The shells send it as JSON, camelCase, every field optional.
        let q: HistoryQuery = serde_json::from_str(r#"{"nameContains":"pdf","sinceMs":1000,"untilMs":1001}"#).unwrap();
        assert_eq!(list(q), [a]);
    }

    #[test]
    fn find_resumable_incoming_rules() {
        let store = Store::open_in_memory().unwrap();
        let mut t = offer("s1", Direction::Incoming, "bob@x/pc", "a.iso");
        t.md5 = Some("abc".into());
        t.date = Some("2024-05-01T10:00:00Z".into());
        let id = store.insert(&t).unwrap();
        store.set_progress(id, 500).unwrap();
        store.set_state(id, Interrupted, None).unwrap();
        let find = |peer: &str, md5: Option<&str>, date: Option<&str>| {
            store.find_resumable_incoming(ME, peer, "a.iso", 1000, md5, date).unwrap().map(|r| r.id)
        };
        let date = Some("2024-05-01T10:00:00Z");

        assert_eq!(find("bob@x", Some("ABC"), None), Some(id));
        assert_eq!(find("bob@x", Some("abd"), date), None, "hash given and different");
        assert_eq!(find("bob@x", None, date), Some(id), "no hash, same date");
        assert_eq!(find("bob@x", None, Some("2023-01-01T00:00:00Z")), None);
        assert_eq!(find("bob@x", None, None), Some(id));
        // The first offer went out without a hash (not ready yet): the date decides.
        store.conn().execute("UPDATE transfers SET md5 = NULL WHERE id = ?1", [id]).unwrap();
        assert_eq!(find("bob@x", Some("abc"), date), Some(id), "hash now, none before, same date");
        assert_eq!(find("bob@x", Some("abc"), Some("2023-01-01T00:00:00Z")), None, "hash now, none before, other date");
        assert_eq!(find("bob@x", Some("abc"), None), None, "hash now, none before, no date");
        store.conn().execute("UPDATE transfers SET md5 = 'abc' WHERE id = ?1", [id]).unwrap();
        assert_eq!(find("carol@x", None, None), None, "other peer");
        assert_eq!(find("bob@xy", None, None), None);
        assert_eq!(store.find_resumable_incoming(ME, "bob@x", "a.iso", 999, None, None).unwrap(), None);
        assert_eq!(store.find_resumable_incoming(ME, "bob@x", "b.iso", 1000, None, None).unwrap(), None);
        assert_eq!(store.find_resumable_incoming("o@x", "bob@x", "a.iso", 1000, None, None).unwrap(), None);

        for state in [Failed, Active, Accepted] {
            store.set_state(id, state, None).unwrap();
            assert_eq!(find("bob@x", None, None), Some(id), "{state}");
        }
        for state in [Completed, Cancelled, Rejected, Offered] {
            store.set_state(id, state, None).unwrap();
            assert_eq!(find("bob@x", None, None), None, "{state}");
        }
        store.set_state(id, Interrupted, None).unwrap();
        store.set_progress(id, 0).unwrap();
        assert_eq!(find("bob@x", None, None), Some(id), "killed before the first checkpoint");
        store.set_progress(id, 500).unwrap();

        let newer = store.insert(&t).unwrap();
        store.set_progress(newer, 10).unwrap();
        store.set_state(newer, Interrupted, None).unwrap();
        set_created(&store, id, 1);
        assert_eq!(find("bob@x", None, None), Some(newer), "newest first");
        store.conn().execute("UPDATE transfers SET local_path = NULL WHERE id = ?1", [newer]).unwrap();
        assert_eq!(find("bob@x", None, None), Some(id), "no local file");

        let out = store.insert(&offer("s9", Direction::Outgoing, "bob@x/pc", "a.iso")).unwrap();
        store.set_progress(out, 10).unwrap();
        store.set_state(out, Interrupted, None).unwrap();
        store.set_state(id, Completed, None).unwrap();
        assert_eq!(find("bob@x", None, None), None, "outgoing is not resumable incoming");
    }

    #[test]
    fn interrupt_unfinished_and_interrupted_outgoing() {
        let store = Store::open_in_memory().unwrap();
        let mut made = Vec::new();
        for (i, state) in TransferState::ALL.iter().enumerate() {
            let id = store.insert(&offer(&i.to_string(), Direction::Outgoing, "bob@x/pc", "f")).unwrap();
            store.set_state(id, *state, None).unwrap();
            made.push(id);
        }
        let other = NewTransfer { account: "other@x".into(), ..offer("o", Direction::Outgoing, "bob@x/pc", "f") };
        let other = store.insert(&other).unwrap();

        assert_eq!(store.interrupt_unfinished(ME).unwrap(), 3);
        assert_eq!(store.interrupt_unfinished(ME).unwrap(), 0);
        assert_eq!(store.get(other).unwrap().state, Offered);
        let r = store.get(made[2]).unwrap();
        assert_eq!((r.state, r.error.as_deref()), (Interrupted, Some("Skiff stopped during the transfer")));
        assert_eq!(store.get(made[3]).unwrap().state, Completed);

        // made[0..3] were interrupted just now, made[7] was already Interrupted.
        set_created(&store, made[7], 1);
        let expected = [made[7], made[0], made[1], made[2]];
        assert_eq!(ids(store.interrupted_outgoing(ME, "bob@x").unwrap()), expected);
        assert!(store.interrupted_outgoing(ME, "carol@x").unwrap().is_empty());
        assert!(store.interrupted_outgoing("other@x", "bob@x").unwrap().is_empty());
    }

    #[test]
    fn hash_cache() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.hash_cache_get("/f", 10, 5).unwrap(), None);
        store.hash_cache_put("/f", 10, 5, "m", None).unwrap();
        assert_eq!(store.hash_cache_get("/f", 10, 5).unwrap(), Some(("m".into(), None)));
        assert_eq!(store.hash_cache_get("/f", 10, 6).unwrap(), None, "mtime changed");
        assert_eq!(store.hash_cache_get("/f", 11, 5).unwrap(), None, "size changed");
        store.hash_cache_put("/f", 11, 6, "m2", Some("s2")).unwrap();
        assert_eq!(store.hash_cache_get("/f", 10, 5).unwrap(), None);
        assert_eq!(store.hash_cache_get("/f", 11, 6).unwrap(), Some(("m2".into(), Some("s2".into()))));
        let rows: i64 = store.conn().query_row("SELECT count(*) FROM hash_cache", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn settings() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.setting("download_dir").unwrap(), None);
        store.set_setting("download_dir", "/a").unwrap();
        store.set_setting("download_dir", "/b").unwrap();
        assert_eq!(store.setting("download_dir").unwrap().as_deref(), Some("/b"));
    }

    #[test]
    fn record_serializes_with_wire_names() {
        let store = Store::open_in_memory().unwrap();
        let id = store.insert(&offer("s", Direction::Incoming, "bob@x/pc", "a")).unwrap();
        store.set_route(id, Route::S5bProxy, Some("proxy.x")).unwrap();
        store.set_state(id, Interrupted, Some((FailReason::Network, "connection lost"))).unwrap();
        let json = serde_json::to_string(&store.get(id).unwrap()).unwrap();
        for part in [r#""route":"s5b-proxy""#, r#""state":"interrupted""#, r#""direction":"incoming""#] {
            assert!(json.contains(part), "{json}");
        }
    }

    /// Runs in a child process spawned by `killed_process_leaves_consistent_records`.
    #[test]
    #[ignore = "helper process, killed by its parent test"]
    fn crash_child() {
        let Some(path) = std::env::var_os("SKIFF_STORE_CRASH_DB") else { return };
        let store = Store::open(Path::new(&path)).unwrap();
        let id = store.insert(&offer("s", Direction::Incoming, "bob@x/pc", "big.iso")).unwrap();
        store.set_state(id, Active, None).unwrap();
        store.set_progress(id, 4096).unwrap();
        println!("\nstore-crash-child-ready={id}");
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    #[test]
    fn killed_process_leaves_consistent_records() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["store::tests::crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("SKIFF_STORE_CRASH_DB", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let ready = stdout.lines().map_while(Result::ok).find_map(|line| {
            line.split_once("store-crash-child-ready=").map(|(_, id)| id.trim().parse::<i64>().unwrap())
        });
        child.kill().unwrap(); // SIGKILL on Unix, TerminateProcess on Windows
        child.wait().unwrap();
        let id = ready.expect("the child process ended before writing");
        assert!(dir.path().join("history.db-wal").exists(), "the writes must still be in the WAL");

        let store = Store::open(&path).unwrap();
        let r = store.get(id).unwrap();
        assert_eq!((r.state, r.bytes_done), (Active, 4096));
        assert_eq!(store.interrupt_unfinished(ME).unwrap(), 1);
        assert_eq!(store.get(id).unwrap().state, Interrupted);
    }
}
