//! What the history holds: transfer records and their fields' types, as rows and back.

use super::*;

use skiff_proto::vocab::WireName;

/// A `u64` above `i64::MAX`: SQLite integers are signed, so it is refused, not wrapped.
#[derive(Debug, thiserror::Error)]
#[error("{0} is too large for the history database")]
pub(super) struct TooLarge(u64);

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
pub(super) struct Wire<T>(pub(super) T);

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
    pub(super) fn keeps_error(self) -> bool {
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
    /// For a file of a batch: the batch's record.
    pub parent: Option<i64>,
    /// For a batch: how many files it holds (its `size` is theirs together).
    pub files: Option<u64>,
    /// For a file of a batch: its path inside the batch (`photos/2024/a.jpg`).
    pub rel_path: Option<String>,
    /// The signalling that set it up (SI or Jingle), once it started.
    pub protocol: Option<Protocol>,
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
    /// For a batch: how many files it holds.
    pub files: Option<u64>,
    /// For a file of a batch: its path inside the batch.
    pub rel_path: Option<String>,
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
    /// The files of this batch; unset: the history's own rows (a batch is one row,
    /// its files are not listed beside it).
    pub parent: Option<i64>,
}

pub(super) fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Escapes `\`, `%` and `_` for a `LIKE .. ESCAPE '\'` pattern.
pub(super) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

pub(super) fn to_i64(v: u64) -> rusqlite::Result<i64> {
    i64::try_from(v).map_err(|_| rusqlite::Error::ToSqlConversionFailure(Box::new(TooLarge(v))))
}

pub(super) fn get_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, v))
}

pub(super) fn record_from_row(r: &Row<'_>) -> rusqlite::Result<TransferRecord> {
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
        parent: r.get(25)?,
        files: r.get::<_, Option<i64>>(26)?.and_then(|v| u64::try_from(v).ok()),
        rel_path: r.get(27)?,
        // A value this version does not know reads as none.
        protocol: r.get::<_, Option<String>>(28)?.and_then(|v| v.parse().ok()),
    })
}

/// Unix milliseconds now.
pub(super) fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
