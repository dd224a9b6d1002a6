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
    // A re-send of one alert changes one member row, not forty.
    e.handle(&alert(7), at(100));
    let c = e.take_changes();
    assert_eq!(c.incidents.len(), 1);
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
    assert_eq!(loaded.incident(id).unwrap().members.len(), 40);
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
