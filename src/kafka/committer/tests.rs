use super::*;
use crate::config::Config;
use crate::engine::{Engine, EngineConfig};
use crate::store::{BatchWrite, StoreError};
use std::sync::atomic::AtomicUsize;

/// The store, failing every write while `failing` is set (a full disk).
struct Flaky {
    store: Store,
    failing: AtomicBool,
    attempts: AtomicUsize,
}

impl BatchSink for Flaky {
    fn write(&self, batch: &PreparedBatch) -> Result<(), StoreError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Encode {
                table: "test",
                reason: "No space left on device".into(),
            });
        }
        self.store.write(batch)
    }
}

struct Rig {
    sink: Arc<Flaky>,
    health: Arc<Health>,
    read_model: Arc<ReadModel>,
    shutdown: Arc<AtomicBool>,
    engine: Engine,
    committer: Committer,
    _dir: tempfile::TempDir,
}

fn rig(failing: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Flaky {
        store: Store::open(&dir.path().join("s.redb")).unwrap(),
        failing: AtomicBool::new(failing),
        attempts: AtomicUsize::new(0),
    });
    let shared = Shared {
        store: sink.clone(),
        health: Arc::new(Health::default()),
        metrics: Arc::new(Metrics::new()),
        read_model: Arc::new(ReadModel::default()),
        publish: Arc::new(tokio::sync::Notify::new()),
        shutdown: Arc::new(AtomicBool::new(false)),
        retry_backoff: Duration::from_millis(1),
    };
    let (health, read_model, shutdown) = (
        shared.health.clone(),
        shared.read_model.clone(),
        shared.shutdown.clone(),
    );
    let toml = "[[rules]]\nname = \"svc\"\ngroup_by = [\"service\"]\n";
    let cfg = Config::parse(toml, "t.toml").unwrap();
    let mut engine = Engine::new(EngineConfig::compile(&cfg).unwrap());
    engine.set_tracking(true);
    Rig {
        sink,
        health,
        read_model,
        shutdown,
        engine,
        committer: Committer::spawn(shared).unwrap(),
        _dir: dir,
    }
}

/// A batch of one alert (pod `pod`), read up to `offset`.
fn job(e: &mut Engine, pod: usize, offset: i64) -> Job {
    let rec = format!(r#"{{"labels":{{"alertname":"Down","service":"api","pod":"p{pod}"}}}}"#);
    e.handle(rec.as_bytes(), Timestamp(1_767_607_200_000 + pod as i64));
    let changes = e.take_changes();
    let mut write = BatchWrite::default();
    write.offsets.insert(("alerts".into(), 0), offset);
    Job {
        batch: PreparedBatch::new(e, &changes, write).unwrap(),
        records: 1,
        read_model: ReadModel::delta(e, &changes.incidents, &changes.problems),
        replies: Vec::new(),
        clock: e.clock(),
    }
}

/// A rig whose store fails, once a first batch was tried `attempts` times.
fn failing_after(attempts: usize) -> Rig {
    let mut r = rig(true);
    assert!(r.committer.submit(job(&mut r.engine, 0, 1)));
    while r.sink.attempts.load(Ordering::SeqCst) < attempts {
        std::thread::yield_now();
    }
    r
}

fn stored_offset(sink: &Flaky) -> Option<i64> {
    sink.store
        .offsets()
        .unwrap()
        .get(&("alerts".to_string(), 0))
        .copied()
}

#[test]
fn batches_are_committed_in_order_and_only_then_visible() {
    let mut r = rig(false);
    for n in 0..3 {
        let j = job(&mut r.engine, n, n as i64 + 1);
        assert!(r.committer.submit(j));
    }
    let done = r.committer.drain();
    assert_eq!(r.committer.in_flight(), 0);
    let offsets: Vec<i64> = done.iter().map(|o| o[&("alerts".to_string(), 0)]).collect();
    assert_eq!(offsets, [1, 2, 3], "reported in commit order");
    assert_eq!(stored_offset(&r.sink), Some(3));
    assert_eq!(r.health.records_committed.load(Ordering::Relaxed), 3);
    assert_eq!(r.health.batches_committed.load(Ordering::Relaxed), 3);
    let inc = r.read_model.incidents();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].members.len(), 3, "the last batch's state");
    let stored = r.sink.store.incident(inc[0].id).unwrap().unwrap();
    assert_eq!(stored.members.len(), 3);
    r.committer.finish();
    assert!(
        !r.committer.submit(job(&mut r.engine, 9, 10)),
        "a finished committer takes nothing"
    );
}

#[test]
fn a_failing_store_holds_the_next_batch_until_the_write_succeeds() {
    // The write is retried (with backoff), not given up, and reported.
    let mut r = failing_after(3);
    assert!(!r.health.store_ok.load(Ordering::Relaxed));
    assert_eq!(stored_offset(&r.sink), None);
    assert!(r.read_model.incidents().is_empty(), "nothing visible yet");
    // The next batch is not taken while the first is unstored: the
    // pipeline waits at the hand-over, so no offset gets ahead of state.
    let second = job(&mut r.engine, 1, 2);
    let (tx, rx) = std::sync::mpsc::channel();
    let mut committer = r.committer;
    let handoff = std::thread::spawn(move || {
        let taken = committer.submit(second);
        tx.send(taken).unwrap();
        committer
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "the second batch was taken while the first could not be written"
    );
    assert_eq!(stored_offset(&r.sink), None);
    // The disk has room again: both batches land, in order.
    r.sink.failing.store(false, Ordering::SeqCst);
    assert!(rx.recv().unwrap());
    let mut committer = handoff.join().unwrap();
    let done = committer.drain();
    assert_eq!(done.len(), 2);
    assert_eq!(stored_offset(&r.sink), Some(2));
    assert!(r.health.store_ok.load(Ordering::Relaxed));
    assert_eq!(r.read_model.incidents()[0].members.len(), 2);
}

#[test]
fn shutdown_gives_up_a_batch_that_cannot_be_written() {
    let mut r = failing_after(1);
    r.shutdown.store(true, Ordering::SeqCst);
    let done = r.committer.finish();
    assert!(done.is_empty(), "nothing was committed: {done:?}");
    assert_eq!(
        stored_offset(&r.sink),
        None,
        "consumed again on the next start"
    );
    assert_eq!(r.health.records_committed.load(Ordering::Relaxed), 0);
}
