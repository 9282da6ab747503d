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

mod records;
mod settings;
#[cfg(test)]
mod tests;

pub use records::*;
pub use skiff_proto::transfer::{FailReason, Protocol, Route};
pub use skiff_proto::vocab::UnknownValue;

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
    // Batches (a folder, many files offered together): one row for the batch (`files`
    // set: how many it holds), one per file with `parent` pointing at it and its path
    // inside the batch. Removing the batch's row removes its files' rows.
    M::up(
        "ALTER TABLE transfers ADD COLUMN parent INTEGER REFERENCES transfers (id) ON DELETE CASCADE;
         ALTER TABLE transfers ADD COLUMN files INTEGER;
         ALTER TABLE transfers ADD COLUMN rel_path TEXT;
         CREATE INDEX transfers_parent ON transfers (parent);",
    ),
    // The signalling that set the transfer up (`Protocol`: si, jingle); NULL before
    // it started, and for links and uploads.
    M::up("ALTER TABLE transfers ADD COLUMN protocol TEXT;"),
];

/// The migrations applied by [`Store::open`].
pub(crate) const MIGRATIONS: Migrations<'static> = Migrations::from_slice(MIGRATION_STEPS);

/// The columns of [`TransferRecord`], in the order `record_from_row` reads them.
const COLUMNS: &str = "id, sid, direction, account, peer_jid, file_name, local_path, size, md5, sha256, date, \
    description, route, streamhost, state, bytes_done, error, created_at, updated_at, finished_at, \"offset\", attempts, url, verified, fail_reason, parent, files, rel_path, protocol";

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
        insert_row(&self.conn(), t, None)
    }

    /// Records a batch (`batch.files` set) and its files, all or nothing, in one
    /// transaction: the batch's id, and its files' ids in the order given.
    pub fn insert_batch(&self, batch: &NewTransfer, files: &[NewTransfer]) -> Result<(i64, Vec<i64>), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = insert_row(&tx, batch, None)?;
        let ids = files.iter().map(|f| insert_row(&tx, f, Some(id))).collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok((id, ids))
    }

    /// The newest batch of this account with this batch id and direction.
    pub fn batch_by_sid(
        &self,
        account: &str,
        sid: &str,
        direction: Direction,
    ) -> Result<Option<TransferRecord>, StoreError> {
        let mut q = Query::default();
        q.and(
            "account = ? AND sid = ? AND direction = ? AND files IS NOT NULL",
            [text(account), text(sid), text(direction.as_str())],
        );
        q.sql.push_str(" ORDER BY id DESC LIMIT 1");
        Ok(self.query(&q)?.into_iter().next())
    }

    /// The files of batch `id`, in the order they were recorded.
    pub fn batch_files(&self, id: i64) -> Result<Vec<TransferRecord>, StoreError> {
        let mut q = Query::default();
        q.and("parent = ?", [id.into()]);
        q.sql.push_str(" ORDER BY id");
        self.query(&q)
    }

    /// Marks files of a batch completed (id, where the file is, its SHA-256, how it was
    /// verified), in one transaction.
    pub fn complete_files(&self, done: &[(i64, String, String, Verification)]) -> Result<(), StoreError> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE transfers SET state = 'completed', local_path = ?2, sha256 = ?3, verified = ?4, \
                 bytes_done = size, error = NULL, fail_reason = NULL, finished_at = ?5, updated_at = ?5 WHERE id = ?1",
            )?;
            for (id, path, sha256, verified) in done {
                stmt.execute(params![id, path, sha256, verified, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Moves every file of batch `id` that is not completed to `state` (with why), as
    /// [`Store::set_state`] moves one.
    pub fn set_open_files_state(
        &self,
        id: i64,
        state: TransferState,
        failure: Option<(FailReason, &str)>,
    ) -> Result<(), StoreError> {
        self.move_to(id, "parent = ?1 AND state != 'completed'", state, failure).map(|_| ())
    }

    /// `UPDATE ... SET state` (with why, and when it finished) for the rows `which`
    /// picks (`?1` is `id`); how many changed.
    fn move_to(
        &self,
        id: i64,
        which: &str,
        state: TransferState,
        failure: Option<(FailReason, &str)>,
    ) -> Result<usize, StoreError> {
        let now = now_ms();
        let (reason, error) = failure.filter(|_| state.keeps_error()).map(|(r, e)| (Wire(r), e)).unzip();
        let sql = format!(
            "UPDATE transfers SET state = ?2, error = ?3, fail_reason = ?4, finished_at = ?5, updated_at = ?6 WHERE {which}"
        );
        let params = params![id, state, error, reason, state.is_final().then_some(now), now];
        Ok(self.conn().prepare_cached(&sql)?.execute(params)?)
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
        match self.move_to(id, "id = ?1", state, failure)? {
            0 => Err(StoreError::NotFound(id)),
            _ => Ok(()),
        }
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

    /// Records the signalling that set the transfer up.
    pub fn set_protocol(&self, id: i64, protocol: Protocol) -> Result<(), StoreError> {
        let sql = "UPDATE transfers SET protocol = ?2, updated_at = ?3 WHERE id = ?1";
        self.update(id, sql, params![id, Wire(protocol), now_ms()])
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
        // The files of one batch, or the history's rows (a batch is one of them).
        match f.parent {
            Some(parent) => q.and("parent = ?", [parent.into()]),
            None => q.and("parent IS NULL", []),
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
        // A batch is offered again as a whole, never its files one by one.
        q.and("account = ? AND direction = 'outgoing' AND state = 'interrupted' AND parent IS NULL", [text(account)]);
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

    /// Records how a completed transfer was verified.
    pub fn set_verified(&self, id: i64, verified: Verification) -> Result<(), StoreError> {
        self.update(id, "UPDATE transfers SET verified = ?2 WHERE id = ?1", params![id, verified])
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

/// Inserts one row (a file of batch `parent`, when given).
fn insert_row(conn: &Connection, t: &NewTransfer, parent: Option<i64>) -> Result<i64, StoreError> {
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO transfers (sid, direction, account, peer_jid, file_name, local_path, size, md5, date, \
         description, state, created_at, updated_at, finished_at, parent, files, rel_path) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
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
        parent,
        t.files.map(to_i64).transpose()?,
        t.rel_path,
    ])?;
    Ok(conn.last_insert_rowid())
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
