//! Retention in the store: deletions in the batch transaction, a file that
//! stops growing, the miner's snapshot, and stores of the previous format.

use super::*;
use crate::engine::state::IncidentStatus;

/// One rule by service, short windows, problems that stay candidates for
/// an hour at most, and retention at its shortest.
const TOML: &str = r#"
[dedup]
resolve_timeout = "2h"
[[rules]]
name = "svc"
group_by = ["service"]
reopen_window = "1m"
[problems]
lookback = "1h"
min_incidents = 100000
[retention]
closed_incidents = "1h"
miner_snapshot_lines = 100
"#;

fn engine_with(toml: &str) -> Engine {
    let cfg = Config::parse(toml, "t.toml").unwrap();
    let mut e = Engine::new(EngineConfig::compile(&cfg).unwrap());
    e.set_tracking(true);
    e
}

fn fire(service: &str, pod: u64) -> Vec<u8> {
    format!(r#"{{"labels":{{"alertname":"Down","service":"{service}","pod":"p{pod}"}}}}"#)
        .into_bytes()
}

fn resolved(service: &str, pod: u64, at: Timestamp) -> Vec<u8> {
    let ends = chrono::DateTime::from_timestamp_millis(at.0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        r#"{{"labels":{{"alertname":"Down","service":"{service}","pod":"p{pod}"}},"endsAt":"{ends}"}}"#
    )
    .into_bytes()
}

/// Stores a batch as the daemon does: changes, then eviction.
fn commit(store: &Store, e: &mut Engine) {
    let c = e.take_changes();
    store.commit(e, &c, BatchWrite::default()).unwrap();
    e.evict_final();
}

fn member_rows(store: &Store, id: IncidentId) -> usize {
    let tx = store.db.begin_read().unwrap();
    let t = tx.open_table(MEMBERS).unwrap();
    t.range((id.0, 0)..=(id.0, u32::MAX)).unwrap().count()
}

fn table_len<K: redb::Key + 'static, V: redb::Value + 'static>(
    store: &Store,
    def: redb::TableDefinition<K, V>,
) -> u64 {
    let tx = store.db.begin_read().unwrap();
    let t = tx.open_table(def).unwrap();
    t.len().unwrap()
}

/// An incident closed longer ago than `retention.closed_incidents` is gone
/// from the engine and, after the next batch, from the store with its
/// member rows; a younger one stays, and still expires after a restart.
#[test]
fn incidents_closed_longer_ago_than_retention_leave_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = Store::open(&path).unwrap();
    let mut e = engine_with(TOML);
    e.handle(&fire("api", 1), at(0));
    e.handle(&fire("api", 2), at(0));
    e.handle(&fire("db", 3), at(0));
    commit(&store, &mut e);
    let ids: Vec<IncidentId> = e.incidents_sorted().iter().map(|i| i.id).collect();
    let svc = |s: &str| {
        *ids.iter()
            .find(|id| e.incident(**id).unwrap().members[0].labels.get("service") == Some(s))
            .unwrap()
    };
    let (api, db) = (svc("api"), svc("db"));
    // api resolves at 10 and closes a minute later; db half an hour later.
    e.handle(&resolved("api", 1, at(10)), at(10));
    e.handle(&resolved("api", 2, at(10)), at(10));
    e.handle(&resolved("db", 3, at(1810)), at(1810));
    e.tick(at(1900));
    commit(&store, &mut e);
    assert_eq!(
        store.incident(api).unwrap().unwrap().status,
        IncidentStatus::Closed
    );
    assert_eq!(member_rows(&store, api), 2);
    // An hour after api closed (at 70): deleted, rows and members.
    e.tick(at(70 + 3600));
    commit(&store, &mut e);
    assert!(store.incident(api).unwrap().is_none());
    assert_eq!(member_rows(&store, api), 0);
    assert_eq!(
        store.incident(db).unwrap().unwrap().status,
        IncidentStatus::Closed
    );
    assert_eq!(member_rows(&store, db), 1);
    // After a restart the younger one still expires, on time.
    drop(store);
    let store = Store::open(&path).unwrap();
    let mut e = store.load_engine(e.config().clone()).unwrap();
    assert_eq!(e.retired_count(), 1);
    e.tick(at(1870 + 3599));
    commit(&store, &mut e);
    assert!(store.incident(db).unwrap().is_some());
    e.tick(at(1870 + 3600));
    commit(&store, &mut e);
    assert!(store.incident(db).unwrap().is_none());
    assert_eq!(table_len(&store, INCIDENTS), 0);
    assert_eq!(table_len(&store, MEMBERS), 0);
}

/// Runs `steps` minutes of a steady stream (an incident a minute, over ten
/// services in turn, each resolved after 30 s) into `store`, one batch per
/// minute, from minute `from`.
fn steady(store: &Store, e: &mut Engine, from: u64, steps: u64) {
    for i in from..from + steps {
        let t = i * 60;
        let service = format!("svc-{}", i % 10);
        e.handle(&fire(&service, i), at(t));
        e.handle(&resolved(&service, i, at(t + 30)), at(t + 30));
        commit(store, e);
    }
}

/// With retention, the file stops growing under a steady stream: after
/// twice as much history it is about as large (within 25%), and so are
/// its tables.
#[test]
fn the_file_stops_growing_under_a_steady_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = Store::open(&path).unwrap();
    let mut e = engine_with(TOML);
    // Ten hours: ten times the retention.
    let n = 600;
    steady(&store, &mut e, 0, n);
    let size = || std::fs::metadata(&path).unwrap().len();
    let (bytes_n, incidents_n) = (size(), table_len(&store, INCIDENTS));
    steady(&store, &mut e, n, n);
    let (bytes_2n, incidents_2n) = (size(), table_len(&store, INCIDENTS));
    assert!(
        incidents_2n <= incidents_n + 2 && incidents_n <= 70,
        "incident rows: {incidents_n} after {n} minutes, {incidents_2n} after {}",
        2 * n
    );
    assert!(
        table_len(&store, MINED) <= 100,
        "mined lines beyond the snapshot"
    );
    assert!(
        bytes_2n * 4 <= bytes_n * 5,
        "file: {bytes_n} bytes after {n} minutes, {bytes_2n} after {}",
        2 * n
    );
}

/// A start re-feeds the miner only the lines fed since its last snapshot
/// (fewer than `miner_snapshot_lines` plus a batch's), and the miner it
/// rebuilds is the one that ran.
#[test]
fn a_start_refeeds_only_the_lines_since_the_miner_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = Store::open(&path).unwrap();
    let mut e = engine_with(TOML);
    steady(&store, &mut e, 0, 1234);
    let (loaded, fed) = store.load_engine_counted(e.config().clone()).unwrap();
    // A snapshot every 100 lines: what is re-fed is the stored tail only.
    assert!(fed > 0 && fed < 100, "{fed} lines re-fed of over 1,000 fed");
    assert_eq!(loaded.miner_state(), e.miner_state());
    assert_eq!(table_len(&store, MINED), fed as u64);
}

/// A format 4 store kept every line ever fed to the miner, and no
/// snapshot: it opens, its log is re-fed once into a snapshot that replaces
/// it, and the next start re-feeds nothing.
#[test]
fn a_format_4_store_with_a_full_miner_log_is_migrated_to_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut e = engine_with(TOML);
    let lines: Vec<String> = (0..500)
        .map(|i| format!("Down pod p{i} of svc-{} restarted", i % 7))
        .collect();
    {
        // What a format 4 build wrote: the lines, no miner table.
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(MINED).unwrap();
            for (seq, l) in lines.iter().enumerate() {
                t.insert(seq as u64, l.as_str()).unwrap();
            }
            tx.open_table(META)
                .unwrap()
                .insert(META_FORMAT, b"4".as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let (_, fed) = store.load_engine_counted(e.config().clone()).unwrap();
    assert_eq!(fed, 500, "the old log is re-fed");
    let loaded = store.load_engine(e.config().clone()).unwrap();
    assert_eq!(table_len(&store, MINED), 0, "replaced by the snapshot");
    let (again, fed) = store.load_engine_counted(e.config().clone()).unwrap();
    assert_eq!(fed, 0);
    // The same miner as one fed the log.
    e.restore_problems(vec![], vec![], None, lines.iter().map(String::as_str))
        .unwrap();
    assert_eq!(again.miner_state(), e.miner_state());
    assert_eq!(loaded.miner_state(), e.miner_state());
    drop(store);
    let db = Database::create(&path).unwrap();
    let tx = db.begin_read().unwrap();
    let v = tx
        .open_table(META)
        .unwrap()
        .get(META_FORMAT)
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(v, codec::FORMAT.to_string().into_bytes());
}

/// Deleted rows leave free pages in the file; compaction gives them back.
#[test]
fn compaction_gives_free_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let mut store = Store::open(&path).unwrap();
    let line = "x".repeat(1000);
    for batch in 0..20u64 {
        let tx = store.db.begin_write().unwrap();
        {
            let mut t = tx.open_table(MINED).unwrap();
            for i in 0..1000 {
                t.insert(batch * 1000 + i, line.as_str()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let tx = store.db.begin_write().unwrap();
    put_miner_snapshot(&tx, b"state").unwrap();
    tx.commit().unwrap();
    let before = store.space().unwrap();
    assert!(before.free_bytes > 10 << 20, "{before:?}");
    store.compact().unwrap();
    let after = store.space().unwrap();
    assert!(
        after.file_bytes * 4 < before.file_bytes,
        "{before:?} -> {after:?}"
    );
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(table_len(&store, MINED), 0);
}
