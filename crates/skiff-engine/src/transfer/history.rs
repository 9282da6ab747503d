//! The history as the shells show it: each stored transfer with what can be done with
//! it now, decided here once rather than re-derived by each shell.

use std::path::Path;

use super::{upload, TransferError, Transfers};
use crate::store::{Direction, HistoryQuery, Route, Store, TransferRecord, TransferState};

/// What can be done with a transfer of the history. The shells offer exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecordActions {
    /// Open the file: completed, and its path known.
    pub open: bool,
    /// Show the file in its folder: its path known, and the file complete or ours.
    pub show: bool,
    /// Send the file again, afresh ([`Transfers::retry`] of a finished one).
    pub resend: bool,
    /// Continue where it stopped ([`Transfers::retry`] / [`Transfers::resume`]): one of
    /// ours that broke off, or an incoming link.
    pub resume: bool,
    /// Send it by HTTP upload instead ([`Transfers::upload_instead`]).
    pub upload: bool,
    /// Remove it from the history: not running.
    pub remove: bool,
}

/// A stored transfer and what can be done with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HistoryEntry {
    #[serde(flatten)]
    pub record: TransferRecord,
    pub actions: RecordActions,
}

/// What the session knows about a record beyond the record itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Circumstances {
    /// It is running now.
    pub running: bool,
    /// Signed in, with HTTP upload allowed in the settings.
    pub upload_allowed: bool,
    /// Its local file (our source, for outgoing) is there.
    pub file_exists: bool,
}

impl RecordActions {
    /// The actions `rec` allows in circumstances `c`.
    pub fn of(rec: &TransferRecord, c: Circumstances) -> RecordActions {
        let outgoing = rec.direction == Direction::Outgoing;
        let has_path = rec.local_path.is_some();
        let done = rec.state == TransferState::Completed;
        let idle = !c.running;
        let broke_off = rec.state.is_resumable();
        // A batch is sent, continued and removed as a whole; its files are only looked at.
        let batch = rec.files.is_some();
        let whole = rec.parent.is_none();
        let sendable = has_path || batch;
        RecordActions {
            open: done && has_path,
            show: has_path && (done || outgoing),
            resend: outgoing && sendable && idle && whole,
            resume: idle && broke_off && whole && ((outgoing && sendable) || (!outgoing && rec.url.is_some())),
            upload: c.upload_allowed
                && outgoing
                && has_path
                && idle
                && whole
                && !batch
                && c.file_exists
                && rec.route != Some(Route::Upload)
                && !rec.sid.starts_with(upload::SID_PREFIX)
                && !matches!(rec.state, TransferState::Completed | TransferState::Rejected),
            remove: idle && whole,
        }
    }
}

/// The history matching `q` when signed out: nothing runs, nothing can be uploaded.
pub fn entries(store: &Store, q: &HistoryQuery) -> Result<Vec<HistoryEntry>, TransferError> {
    let records = store.list(q)?;
    Ok(records.into_iter().map(|record| entry(record, Circumstances::default())).collect())
}

fn entry(record: TransferRecord, c: Circumstances) -> HistoryEntry {
    HistoryEntry { actions: RecordActions::of(&record, c), record }
}

fn file_exists(rec: &TransferRecord) -> bool {
    rec.local_path.as_deref().is_some_and(|p| Path::new(p).is_file())
}

impl Transfers {
    /// The history matching `q`, each transfer with what can be done with it now.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<HistoryEntry>, TransferError> {
        let upload_allowed = self.cfg().allow_upload;
        let records = self.inner.store.list(q)?;
        Ok(records
            .into_iter()
            .map(|record| HistoryEntry { actions: self.actions_now(&record, upload_allowed), record })
            .collect())
    }

    /// What `rec` allows now. Its file is looked at only where that decides something
    /// (an upload), not for every record of a long history.
    fn actions_now(&self, rec: &TransferRecord, upload_allowed: bool) -> RecordActions {
        let c = Circumstances { running: self.is_active(rec.id), upload_allowed, file_exists: true };
        let mut actions = RecordActions::of(rec, c);
        actions.upload = actions.upload && file_exists(rec);
        actions
    }

    /// Whether [`Transfers::upload_instead`] can take over transfer `id`: an outgoing
    /// transfer that was not an upload, its file still there, uploads allowed.
    pub fn can_upload_instead(&self, id: i64) -> bool {
        let Ok(rec) = self.inner.store.get(id) else { return false };
        self.actions_now(&rec, self.cfg().allow_upload).upload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Verification;

    fn rec(direction: Direction, state: TransferState) -> TransferRecord {
        TransferRecord {
            id: 1,
            sid: "s1".into(),
            direction,
            account: "alice@x".into(),
            peer_jid: "bob@x/pc".into(),
            file_name: "a.bin".into(),
            local_path: Some("/home/alice/a.bin".into()),
            size: 10,
            md5: None,
            sha256: None,
            date: None,
            description: None,
            route: None,
            streamhost: None,
            state,
            bytes_done: 0,
            error: None,
            fail_reason: None,
            created_at: 0,
            updated_at: 0,
            finished_at: None,
            offset: 0,
            attempts: 1,
            url: None,
            verified: Verification::None,
            parent: None,
            files: None,
            rel_path: None,
            protocol: None,
        }
    }

    const IDLE: Circumstances = Circumstances { running: false, upload_allowed: true, file_exists: true };

    fn names(a: RecordActions) -> Vec<&'static str> {
        let all = [
            ("open", a.open),
            ("show", a.show),
            ("resend", a.resend),
            ("resume", a.resume),
            ("upload", a.upload),
            ("remove", a.remove),
        ];
        all.into_iter().filter(|(_, on)| *on).map(|(n, _)| n).collect()
    }

    #[test]
    fn what_each_record_allows() {
        use Direction::{Incoming, Outgoing};
        use TransferState::*;
        let of = |r: &TransferRecord, c| names(RecordActions::of(r, c));
        assert_eq!(of(&rec(Outgoing, Completed), IDLE), ["open", "show", "resend", "remove"]);
        assert_eq!(of(&rec(Outgoing, Interrupted), IDLE), ["show", "resend", "resume", "upload", "remove"]);
        assert_eq!(of(&rec(Outgoing, Failed), IDLE), ["show", "resend", "resume", "upload", "remove"]);
        assert_eq!(of(&rec(Outgoing, Rejected), IDLE), ["show", "resend", "remove"]);
        assert_eq!(of(&rec(Outgoing, Cancelled), IDLE), ["show", "resend", "upload", "remove"]);
        assert_eq!(of(&rec(Incoming, Completed), IDLE), ["open", "show", "remove"]);
        // Only the sender can continue an incoming SI transfer; a link we fetch, we can.
        assert_eq!(of(&rec(Incoming, Interrupted), IDLE), ["remove"]);
        let link = TransferRecord { url: Some("https://x/a.bin".into()), ..rec(Incoming, Interrupted) };
        assert_eq!(of(&link, IDLE), ["resume", "remove"]);
        // Running: nothing that would start it again, and it stays in the history.
        let running = Circumstances { running: true, ..IDLE };
        assert_eq!(of(&rec(Outgoing, Active), running), ["show"]);
        // Signed out, uploads off or the file gone: no upload.
        assert_eq!(of(&rec(Outgoing, Failed), Circumstances::default()), ["show", "resend", "resume", "remove"]);
        assert!(!RecordActions::of(&rec(Outgoing, Failed), Circumstances { file_exists: false, ..IDLE }).upload);
        // An upload is not offered as an upload again.
        let up = TransferRecord { route: Some(Route::Upload), ..rec(Outgoing, Failed) };
        assert!(!RecordActions::of(&up, IDLE).upload);
        let up = TransferRecord { sid: format!("{}x", upload::SID_PREFIX), ..rec(Outgoing, Failed) };
        assert!(!RecordActions::of(&up, IDLE).upload);
        // Without a known path nothing refers to the file.
        let nopath = TransferRecord { local_path: None, ..rec(Outgoing, Failed) };
        assert_eq!(of(&nopath, IDLE), ["remove"]);
        // A batch goes again, continues and is removed as a whole, never by upload,
        // also when it has no folder (loose files); its files are only looked at.
        let batch = TransferRecord { files: Some(3), local_path: None, ..rec(Outgoing, Interrupted) };
        assert_eq!(of(&batch, IDLE), ["resend", "resume", "remove"]);
        let folder = TransferRecord { files: Some(3), ..rec(Outgoing, Failed) };
        assert_eq!(of(&folder, IDLE), ["show", "resend", "resume", "remove"]);
        let received = TransferRecord { files: Some(3), ..rec(Incoming, Completed) };
        assert_eq!(of(&received, IDLE), ["open", "show", "remove"]);
        let inside = TransferRecord { parent: Some(9), ..rec(Outgoing, Interrupted) };
        assert_eq!(of(&inside, IDLE), ["show"]);
        let inside = TransferRecord { parent: Some(9), ..rec(Incoming, Completed) };
        assert_eq!(of(&inside, IDLE), ["open", "show"]);
    }

    #[test]
    fn entries_carry_their_actions_in_json() {
        let e = entry(rec(Direction::Outgoing, TransferState::Interrupted), IDLE);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["file_name"], "a.bin");
        assert_eq!(json["actions"]["resume"], true);
        assert_eq!(json["actions"]["open"], false);
    }
}
