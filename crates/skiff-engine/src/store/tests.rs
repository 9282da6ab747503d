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
        files: None,
        rel_path: None,
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
        parent: None,
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
    let ready = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.split_once("store-crash-child-ready=").map(|(_, id)| id.trim().parse::<i64>().unwrap()));
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

#[test]
fn a_batch_is_one_row_that_opens_to_its_files() {
    let s = Store::open_in_memory().unwrap();
    let lone = s.insert(&offer("l", Direction::Incoming, "bob@x/pc", "lone.txt")).unwrap();
    let batch = NewTransfer { files: Some(2), size: 3, ..offer("b1", Direction::Incoming, "bob@x/pc", "photos") };
    let file = |rel: &str, size| NewTransfer {
        rel_path: Some(rel.into()),
        size,
        ..offer("b1", Direction::Incoming, "bob@x/pc", rel.rsplit('/').next().unwrap())
    };
    let (id, files) = s.insert_batch(&batch, &[file("photos/2024/a.jpg", 1), file("photos/2023/a.jpg", 2)]).unwrap();
    let ids = |v: Vec<TransferRecord>| v.iter().map(|r| r.id).collect::<Vec<_>>();
    // Found by its batch id, not by its files that share it.
    assert_eq!(s.batch_by_sid(ME, "b1", Direction::Incoming).unwrap().map(|r| r.id), Some(id));
    assert_eq!(s.batch_by_sid(ME, "b1", Direction::Outgoing).unwrap(), None);
    // The history lists the batch as one row beside the lone file, not its files.
    assert_eq!(ids(s.list(&HistoryQuery::default()).unwrap()), [id, lone]);
    let row = s.get(id).unwrap();
    assert_eq!((row.files, row.parent, row.size), (Some(2), None, 3));
    // Its files, in order, each pointing at it with its path inside the batch.
    let listed = s.list(&HistoryQuery { parent: Some(id), ..Default::default() }).unwrap();
    assert_eq!(ids(listed), [files[1], files[0]]);
    let inside = s.batch_files(id).unwrap();
    assert_eq!(ids(inside.clone()), files);
    assert_eq!(inside[0].rel_path.as_deref(), Some("photos/2024/a.jpg"));
    assert!(inside.iter().all(|r| r.parent == Some(id)));
    // Completed files keep their state when the rest of the batch is interrupted.
    s.complete_files(&[(files[0], "/dl/photos/2024/a.jpg".into(), "ab".repeat(32), Verification::Sha256)]).unwrap();
    s.set_open_files_state(id, TransferState::Interrupted, Some((FailReason::Network, "cut"))).unwrap();
    let inside = s.batch_files(id).unwrap();
    assert_eq!((inside[0].state, inside[0].bytes_done, inside[0].verified), (Completed, 1, Verification::Sha256));
    assert_eq!(inside[0].local_path.as_deref(), Some("/dl/photos/2024/a.jpg"));
    assert_eq!((inside[1].state, inside[1].fail_reason), (TransferState::Interrupted, Some(FailReason::Network)));
    // Removing the batch removes its files; the lone file stays.
    s.delete(id).unwrap();
    assert!(s.batch_files(id).unwrap().is_empty());
    assert!(matches!(s.get(files[0]), Err(StoreError::NotFound(_))));
    assert_eq!(s.get(lone).unwrap().id, lone);
}
