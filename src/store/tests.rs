use super::*;
use crate::config::Config;
use std::time::Duration;

fn engine() -> Engine {
    let toml = "[[rules]]\nname = \"svc\"\ngroup_by = [\"service\"]\n";
    let cfg = Config::parse(toml, "t.toml").unwrap();
    let mut e = Engine::new(EngineConfig::compile(&cfg).unwrap());
    e.set_tracking(true);
    e
}

fn config() -> EngineConfig {
    engine().config().clone()
}

fn alert(n: usize) -> Vec<u8> {
    format!(r#"{{"labels":{{"alertname":"Down","service":"api","pod":"p{n}"}}}}"#).into_bytes()
}

const T0: Timestamp = Timestamp(1_767_607_200_000);

fn at(s: u64) -> Timestamp {
    T0.plus(Duration::from_secs(s))
}

#[test]
fn members_are_stored_one_row_each_and_only_changed_ones_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut e = engine();
    for n in 0..40 {
        e.handle(&alert(n), at(n as u64));
    }
    let c = e.take_changes();
    assert_eq!(c.members.len(), 40);
    store.commit(&e, &c, BatchWrite::default()).unwrap();
    // A re-send of one alert rewrites its alert row, no member row: the
    // member's last_seen and occurrences are read back from the alert.
    e.handle(&alert(7), at(100));
    let c = e.take_changes();
    assert_eq!(c.incidents.len(), 1);
    assert_eq!(c.alerts.len(), 1);
    assert!(c.members.is_empty(), "{:?}", c.members);
    store.commit(&e, &c, BatchWrite::default()).unwrap();
    // A change beyond those fields (resolved) rewrites that one row.
    e.handle(
        br#"{"labels":{"alertname":"Down","service":"api","pod":"p8"},"endsAt":"2026-01-05T10:01:50Z"}"#,
        at(110),
    );
    let c = e.take_changes();
    assert_eq!(c.members.len(), 1, "{:?}", c.members);
    store.commit(&e, &c, BatchWrite::default()).unwrap();

    let id = c.incidents[0];
    let live = e.incident(id).unwrap();
    let stored = store.incident(id).unwrap().unwrap();
    assert_eq!(stored.members.len(), 40);
    assert_eq!(stored.members[7].occurrences, 2);
    assert_eq!(
        serde_json::to_string(&stored.view(true)).unwrap(),
        serde_json::to_string(&live.view(true)).unwrap()
    );
    let loaded = store.load_engine(config()).unwrap();
    let inc = loaded.incident(id).unwrap();
    assert_eq!(inc.members.len(), 40);
    assert_eq!(
        (inc.members[7].occurrences, inc.members[7].last_seen),
        (2, at(100))
    );
    assert_eq!(
        serde_json::to_string(&inc.view(true)).unwrap(),
        serde_json::to_string(&live.view(true)).unwrap()
    );
}

#[test]
fn a_format_1_store_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    let mut e = engine();
    for n in 0..3 {
        e.handle(&alert(n), at(n as u64));
    }
    let c = e.take_changes();
    let id = c.incidents[0];
    {
        // What a format 1 build wrote: JSON values, members inside.
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(ALERTS).unwrap();
            for fp in &c.alerts {
                let a = serde_json::to_vec(e.alert(*fp).unwrap()).unwrap();
                t.insert(fp.0, a.as_slice()).unwrap();
            }
            let mut t = tx.open_table(GROUPS).unwrap();
            for key in &c.groups {
                let g = serde_json::to_vec(e.group(key).unwrap()).unwrap();
                t.insert(&**key, g.as_slice()).unwrap();
            }
            let inc = e.incident(id).unwrap();
            let mut v = serde_json::to_value(inc).unwrap();
            v["members"] = serde_json::to_value(&inc.members).unwrap();
            let mut t = tx.open_table(INCIDENTS).unwrap();
            t.insert(id.0, serde_json::to_vec(&v).unwrap().as_slice())
                .unwrap();
            let entry = OutboxEntry {
                topic: "incidents".into(),
                key: b"k".to_vec(),
                headers: vec![],
                kind: PayloadKind::Message,
                payload: b"{}".to_vec(),
            };
            let mut t = tx.open_table(OUTBOX).unwrap();
            t.insert(1, &entry.encode()[1..]).unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let loaded = store.load_engine(config()).unwrap();
    let inc = loaded.incident(id).unwrap();
    assert_eq!(inc.members.len(), 3);
    assert_eq!(
        loaded.alert(c.alerts[0]).unwrap().labels.get("service"),
        Some("api")
    );
    // String-keyed rows are re-encoded too.
    assert!(!c.groups.is_empty());
    for key in &c.groups {
        assert_eq!(
            format!("{:?}", loaded.group(key)),
            format!("{:?}", e.group(key))
        );
    }
    let ob = store.outbox_batch(10).unwrap();
    assert_eq!(ob.len(), 1);
    assert_eq!(ob[0].1.payload, b"{}");
    drop(store);
    // Opening again does not migrate twice.
    let store = Store::open(&path).unwrap();
    assert_eq!(
        store
            .load_engine(config())
            .unwrap()
            .incident(id)
            .unwrap()
            .members
            .len(),
        3
    );
}

/// A format 3 store (every member row exact) opens as it is and is marked
/// format 4, so a format 3 build refuses it afterwards.
#[test]
fn a_format_3_store_opens_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = Store::open(&path).unwrap();
    let mut e = engine();
    e.handle(&alert(1), at(0));
    e.handle(&alert(2), at(1));
    let c = e.take_changes();
    store.commit(&e, &c, BatchWrite::default()).unwrap();
    let id = c.incidents[0];
    drop(store);
    let format = || {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_read().unwrap();
        let meta = tx.open_table(META).unwrap();
        let v = meta.get(META_FORMAT).unwrap().unwrap().value().to_vec();
        String::from_utf8(v).unwrap()
    };
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(META_FORMAT, b"3".as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(format(), "3");
    let store = Store::open(&path).unwrap();
    let loaded = store.load_engine(config()).unwrap();
    assert_eq!(
        serde_json::to_string(&loaded.incident(id).unwrap().view(true)).unwrap(),
        serde_json::to_string(&e.incident(id).unwrap().view(true)).unwrap()
    );
    drop(store);
    assert_eq!(format(), codec::FORMAT.to_string());
}

#[test]
fn a_store_from_a_newer_build_is_refused_with_its_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.redb");
    drop(Store::open(&path).unwrap());
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(META_FORMAT, b"99".as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(
        err.contains("format 99") && err.contains("new.redb"),
        "{err}"
    );
}

/// A crash after any batch, as the daemon stores them (each record its own
/// batch: only the rows it changed), then loading and running on: every
/// incident, stored or in memory, equals an uninterrupted run's, members'
/// `last_seen` and `occurrences` included (not rewritten for re-sends, read
/// back from the alerts; exact in the rows once the incident ended).
#[test]
fn loading_after_any_batch_continues_identically() {
    let toml = r#"
[dedup]
resolve_timeout = "5m"
[[rules]]
name = "svc"
group_by = ["service"]
window = "10m"
reopen_window = "30m"
[topology]
label = "service"
window = "5m"
[topology.depends_on]
checkout = ["payments"]
cart = ["db"]
"#;
    let cfg = EngineConfig::compile(&Config::parse(toml, "t.toml").unwrap()).unwrap();
    let fire = |svc: &str, name: &str| {
        format!(r#"{{"labels":{{"alertname":"{name}","service":"{svc}"}}}}"#)
    };
    let resolve = |svc: &str, name: &str, s: u64| {
        let end = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(at(s).0 as u64),
        );
        format!(r#"{{"labels":{{"alertname":"{name}","service":"{svc}"}},"endsAt":"{end}"}}"#)
    };
    // Re-sends of members, a topology join, a sender's resolve, a resolve
    // timeout, a reopen, a close, a new incident after it; an incident
    // merged away after its member's re-sends; one resolved by hand whose
    // member is re-sent until it closes (`None`: resolve the incident of
    // that alert name by hand).
    let rec = |t: u64, r: String| (t, Some(r), "");
    let stream: Vec<(u64, Option<String>, &str)> = vec![
        rec(0, fire("checkout", "A")),
        rec(10, fire("checkout", "A")),
        rec(20, fire("payments", "B")),
        rec(30, fire("checkout", "C")),
        rec(40, fire("payments", "B")),
        rec(50, fire("checkout", "A")),
        rec(60, resolve("checkout", "C", 60)),
        rec(70, fire("checkout", "A")),
        rec(80, fire("payments", "B")),
        rec(700, fire("checkout", "A")),
        rec(710, fire("checkout", "A")),
        rec(800, fire("payments", "B")),
        rec(4000, fire("checkout", "D")),
        rec(4010, fire("checkout", "D")),
        rec(5000, fire("cart", "E")),
        rec(5400, fire("db", "F")),
        rec(5405, fire("db", "F")),
        rec(5410, fire("db", "F")),
        rec(5415, resolve("cart", "E", 5415)),
        rec(5420, fire("cart", "E")),
        rec(5430, fire("db", "F")),
        rec(7000, fire("web", "H")),
        rec(7010, fire("web", "H")),
        (7020, None, "H"),
        rec(7030, fire("web", "H")),
        rec(7040, fire("web", "H")),
        // Still firing (re-sent within the resolve timeout) when it closes.
        rec(7250, fire("web", "H")),
        rec(7500, fire("web", "H")),
        rec(7750, fire("web", "H")),
        rec(8000, fire("web", "H")),
        rec(8250, fire("web", "H")),
        rec(8500, fire("web", "H")),
        rec(8750, fire("web", "H")),
        rec(9000, fire("api", "J")),
    ];
    let commit = |e: &mut Engine, store: &Store| {
        e.take_updates();
        let c = e.take_changes();
        store.commit(e, &c, BatchWrite::default()).unwrap();
    };
    let views = |incidents: Vec<&Incident>| -> Vec<String> {
        incidents
            .into_iter()
            .map(|i| serde_json::to_string(&i.view(true)).unwrap())
            .collect()
    };
    // (every incident as the store has it, the engine's own at the end)
    let run = |split: Option<usize>| -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let mut e = Engine::new(cfg.clone());
        e.set_tracking(true);
        for (k, (t, record, by_hand)) in stream.iter().enumerate() {
            if Some(k) == split {
                e = store.load_engine(cfg.clone()).unwrap();
            }
            match record {
                Some(r) => {
                    e.handle(r.as_bytes(), at(*t));
                }
                None => {
                    let id = e
                        .incidents_sorted()
                        .into_iter()
                        .find(|i| {
                            !i.status.is_final()
                                && i.members
                                    .iter()
                                    .any(|m| m.labels.get("alertname") == Some(*by_hand))
                        })
                        .map(|i| i.id)
                        .expect("an incident to resolve");
                    e.resolve(id, at(*t)).accepted().unwrap();
                }
            }
            commit(&mut e, &store);
        }
        let stored = store.incidents().unwrap();
        (views(stored.iter().collect()), views(e.incidents_sorted()))
    };
    let (whole, whole_live) = run(None);
    assert!(whole.len() >= 2, "{whole:#?}");
    // Uninterrupted, the engine still holds every incident (nothing is
    // evicted here): the store must read back the same.
    assert_eq!(whole, whole_live, "stored vs in memory");
    for (what, needle) in [
        ("a member re-sent several times", r#""occurrences":4"#),
        ("a merged incident", r#""status":"merged""#),
        ("a closed incident", r#""status":"closed""#),
    ] {
        assert!(
            whole.iter().any(|v| v.contains(needle)),
            "{what}: {whole:#?}"
        );
    }
    for split in 1..stream.len() {
        let (stored, live) = run(Some(split));
        assert_eq!(stored, whole, "loaded at record {split}: the store");
        let active: Vec<&String> = whole.iter().filter(|v| live.contains(v)).collect();
        assert_eq!(
            active.len(),
            live.len(),
            "loaded at record {split}: in memory"
        );
    }
}

/// Delivered outbox entries are deleted by the next batch's transaction,
/// or by a flush when no batch comes; until then they stay (a restart
/// publishes them again), and reading from a sequence skips the earlier.
#[test]
fn acknowledged_outbox_entries_go_with_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let e = engine();
    let entry = |n: u8| OutboxEntry {
        topic: "incidents".into(),
        key: vec![n],
        headers: vec![],
        kind: outbox::PayloadKind::Message,
        payload: vec![n],
    };
    let write = BatchWrite {
        outbox: (1..=3).map(entry).collect(),
        ..BatchWrite::default()
    };
    store.commit(&e, &Changes::default(), write).unwrap();
    let seqs: Vec<u64> = store
        .outbox_batch(10)
        .unwrap()
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(seqs.len(), 3);
    let from: Vec<u64> = store
        .outbox_batch_from(seqs[1], 10)
        .unwrap()
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(from, seqs[1..]);

    store.outbox_acked(seqs[..2].iter().copied());
    assert_eq!(store.outbox_len().unwrap(), 3, "not deleted yet");
    assert_eq!(store.outbox_acked_pending(), 2);
    store
        .commit(&e, &Changes::default(), BatchWrite::default())
        .unwrap();
    assert_eq!(store.outbox_acked_pending(), 0);
    let left: Vec<u64> = store
        .outbox_batch(10)
        .unwrap()
        .iter()
        .map(|x| x.0)
        .collect();
    assert_eq!(left, seqs[2..], "the batch deleted the two acknowledged");

    store.outbox_acked([seqs[2]]);
    store.outbox_flush_acked().unwrap();
    assert_eq!(store.outbox_len().unwrap(), 0);
    // Nothing pending: a flush is a no-op.
    store.outbox_flush_acked().unwrap();
}

fn storm_alert(i: usize) -> Vec<u8> {
    format!(
        r#"{{"labels":{{"alertname":"Storm-{i}","cluster":"c1","severity":"info","service":"storm"}},"annotations":{{"summary":"pod crashloop"}}}}"#
    )
    .into_bytes()
}

/// Alerts expire after 1 s and their incidents close as they resolve, so
/// each incident settles (and meets problem management) 1 s after its alert.
const SETTLE_FAST: &str =
    "[dedup]\nresolve_timeout = \"1s\"\n[incidents]\ndefault_reopen_window = \"0s\"\n";

/// A store holding one problem of 20 incidents, and the engine that wrote it.
fn problem_of_20(path: &std::path::Path) -> (Store, Engine, ProblemId) {
    let store = Store::open(path).unwrap();
    let cfg = Config::parse(SETTLE_FAST, "t.toml").unwrap();
    let mut e = Engine::new(EngineConfig::compile(&cfg).unwrap());
    e.set_tracking(true);
    for batch in 0..4 {
        for i in batch * 5..batch * 5 + 5 {
            e.handle(&storm_alert(i), at(2 * i as u64));
        }
        e.tick(at(2 * (batch as u64 * 5 + 5)));
        e.take_updates();
        let c = e.take_changes();
        store.commit(&e, &c, BatchWrite::default()).unwrap();
    }
    let id = e.problems_sorted()[0].id;
    assert_eq!(e.problem(id).unwrap().incident_ids.len(), 20);
    (store, e, id)
}

#[test]
fn a_problems_incidents_are_stored_one_row_each_paged_and_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let (store, e, id) = problem_of_20(&dir.path().join("s.redb"));
    let live = e.problem(id).unwrap();
    assert_eq!(
        store.problem_incidents(id, 0, 8).unwrap(),
        live.incident_ids[..8]
    );
    assert_eq!(
        store.problem_incidents(id, 16, 8).unwrap(),
        live.incident_ids[16..]
    );
    assert!(store.problem_incidents(id, 20, 8).unwrap().is_empty());
    let loaded = store.load_engine(e.config().clone()).unwrap();
    let p = loaded.problem(id).unwrap();
    assert_eq!(
        (&p.incident_ids, p.incident_count),
        (&live.incident_ids, 20)
    );
    assert_eq!(
        serde_json::to_string(&p.view()).unwrap(),
        serde_json::to_string(&live.view()).unwrap()
    );
}

#[test]
fn a_format_4_problem_row_with_its_incident_list_is_migrated_on_open() {
    /// A problem row as format 4 wrote it: the list inside, no count.
    #[derive(serde::Serialize)]
    struct Format4<'a> {
        #[serde(flatten)]
        problem: &'a crate::problems::state::Problem,
        incident_ids: &'a [IncidentId],
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let (store, e, id) = problem_of_20(&path);
    drop(store);
    let live = e.problem(id).unwrap();
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let mut old = live.without_incidents();
        old.incident_count = 0;
        let row = codec::encode(
            "problems",
            &Format4 {
                problem: &old,
                incident_ids: &live.incident_ids,
            },
        )
        .unwrap();
        tx.open_table(PROBLEMS)
            .unwrap()
            .insert(id.0, row.as_slice())
            .unwrap();
        tx.delete_table(PROBLEM_INCIDENTS).unwrap();
        tx.open_table(META)
            .unwrap()
            .insert(META_FORMAT, b"4".as_slice())
            .unwrap();
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let loaded = store.load_engine(e.config().clone()).unwrap();
    let p = loaded.problem(id).unwrap();
    assert_eq!(
        (&p.incident_ids, p.incident_count),
        (&live.incident_ids, 20)
    );
    assert_eq!(
        store.problem_incidents(id, 0, 100).unwrap(),
        live.incident_ids
    );
}

/// A storm of `n` distinct alerts of one service and one summary template,
/// committed 50 records a batch with its problem events in the outbox.
/// Returns the bytes the batches wrote and the largest problem event.
fn storm(n: usize) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let cfg = Config::parse(SETTLE_FAST, "t.toml").unwrap();
    let mut e = Engine::new(EngineConfig::compile(&cfg).unwrap());
    e.set_tracking(true);
    let (mut written, mut largest) = (0, 0);
    for start in (0..n).step_by(50) {
        for i in start..(start + 50).min(n) {
            // 2 s apart: each incident settles before the next alert.
            e.handle(&storm_alert(i), at(2 * i as u64));
        }
        let mut outbox = Vec::new();
        for ev in e.take_problem_events() {
            let payload = crate::kafka::events::render_problem(&ev, e.problem(ev.problem).unwrap());
            largest = largest.max(payload.len());
            outbox.push(OutboxEntry {
                topic: "incidents".into(),
                key: ev.problem.to_string().into_bytes(),
                headers: Vec::new(),
                kind: PayloadKind::Message,
                payload,
            });
        }
        e.take_updates();
        let c = e.take_changes();
        let b = PreparedBatch::new(
            &e,
            &c,
            BatchWrite {
                outbox,
                ..Default::default()
            },
        )
        .unwrap();
        written += b.encoded_len();
        store.write(&b).unwrap();
    }
    assert_eq!(
        e.problems_sorted().len(),
        1,
        "one problem collects the storm"
    );
    (written, largest)
}

#[test]
fn an_alert_storm_writes_the_same_bytes_per_alert_whatever_its_size() {
    let (small, small_event) = storm(200);
    let (large, large_event) = storm(2_000);
    let (per_small, per_large) = (small as f64 / 200.0, large as f64 / 2_000.0);
    eprintln!("bytes per alert: {per_small:.0} (200), {per_large:.0} (2,000); largest problem event {small_event}, {large_event}");
    assert!(
        per_large < per_small * 1.5,
        "{per_large:.0} bytes per alert in a storm of 2,000, {per_small:.0} in one of 200"
    );
    assert!(
        large_event < 2_048,
        "a problem event of {large_event} bytes"
    );
}

mod retention;
