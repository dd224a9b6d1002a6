//! The committer thread: writes each prepared batch to redb while the
//! pipeline thread applies the next one.
//!
//! Two batches at most are in hand: one being written here, one being
//! applied by the pipeline (the hand-over is a rendezvous, so the pipeline
//! waits for the previous write before it can give the next). Batches are
//! written one at a time, in order, so every commit leaves the store at the
//! end of a batch, with that batch's offsets and outbox entries. A failing
//! store (full disk) is retried here with backoff; the pipeline stops at
//! the next hand-over, so nothing runs more than one batch ahead of the
//! store and no offset moves past unstored state.
//!
//! What a batch made visible waits for its commit: the read model, the
//! replies to API commands, the publisher's wake-up, the `/readyz` counters,
//! and the offsets handed to the broker (returned to the pipeline thread,
//! which owns the consumer, by [`Committer::completed`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::error;

use crate::alert::Timestamp;
use crate::kafka::consumer::{CommandFailure, CommandReply};
use crate::kafka::Health;
use crate::metrics::Metrics;
use crate::read_model::{ReadModel, ReadModelDelta};
use crate::store::{Offsets, PreparedBatch, Store};

/// A batch handed to the committer, with what waits for its commit.
pub struct Job {
    pub batch: PreparedBatch,
    /// Records the batch applied (for `/readyz`).
    pub records: u64,
    pub read_model: ReadModelDelta,
    pub replies: Vec<(CommandReply, Result<(), CommandFailure>)>,
    /// Engine clock at the end of the batch.
    pub clock: Timestamp,
}

/// What the committer thread shares with the rest of the daemon.
pub struct Shared {
    pub store: Arc<Store>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub read_model: Arc<ReadModel>,
    pub publish: Arc<tokio::sync::Notify>,
    /// Set on shutdown: a batch whose write keeps failing is given up (it is
    /// consumed again on the next start).
    pub shutdown: Arc<AtomicBool>,
}

/// The pipeline thread's handle on the committer thread.
pub struct Committer {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Offsets>,
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub fn spawn(shared: Shared) -> std::io::Result<Committer> {
        let (jobs, rx) = sync_channel::<Job>(0);
        let (done_tx, done) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("correlator-commit".into())
            .spawn(move || run(&shared, &rx, &done_tx))?;
        Ok(Committer {
            jobs: Some(jobs),
            done,
            in_flight: 0,
            thread: Some(thread),
        })
    }

    /// Hands a batch over, waiting while the previous one is written. False
    /// if the committer has stopped (it gave a batch up on shutdown).
    pub fn submit(&mut self, job: Job) -> bool {
        let Some(jobs) = &self.jobs else { return false };
        if jobs.send(job).is_err() {
            return false;
        }
        self.in_flight += 1;
        true
    }

    /// Batches handed over and not yet reported committed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Offsets of the batches committed since the last call, oldest first.
    pub fn completed(&mut self) -> Vec<Offsets> {
        let mut out = Vec::new();
        while let Ok(o) = self.done.try_recv() {
            self.in_flight -= 1;
            out.push(o);
        }
        out
    }

    /// Waits until every batch handed over is committed (or given up on
    /// shutdown); returns their offsets, oldest first.
    pub fn drain(&mut self) -> Vec<Offsets> {
        let mut out = Vec::new();
        while self.in_flight > 0 {
            match self.done.recv() {
                Ok(o) => {
                    self.in_flight -= 1;
                    out.push(o);
                }
                // The thread is gone: what it had was not committed.
                Err(_) => self.in_flight = 0,
            }
        }
        out
    }

    /// Lets the thread write what it has, then stops it.
    pub fn finish(&mut self) -> Vec<Offsets> {
        self.jobs = None;
        let out = self.drain();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                error!("the committer thread panicked");
            }
        }
        out
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn run(shared: &Shared, jobs: &Receiver<Job>, done: &Sender<Offsets>) {
    while let Ok(job) = jobs.recv() {
        let started = Instant::now();
        if !write_with_retry(shared, &job.batch) {
            return;
        }
        shared
            .metrics
            .store_commit_duration
            .observe(started.elapsed().as_secs_f64());
        shared.read_model.apply(job.read_model);
        let h = &shared.health;
        h.batches_committed.fetch_add(1, Ordering::Relaxed);
        h.records_committed
            .fetch_add(job.records, Ordering::Relaxed);
        h.engine_clock_ms.store(job.clock.0, Ordering::Relaxed);
        if job.batch.has_outbox() {
            shared.publish.notify_one();
        }
        for (reply, r) in job.replies {
            let _ = reply.send(r);
        }
        if done.send(job.batch.into_offsets()).is_err() {
            return;
        }
    }
}

/// Writes, retrying with backoff: a failed commit (full disk, I/O error)
/// holds everything after it. False if shutdown came first.
fn write_with_retry(shared: &Shared, batch: &PreparedBatch) -> bool {
    let mut backoff = Duration::from_millis(100);
    loop {
        match shared.store.write(batch) {
            Ok(()) => {
                shared.health.store_ok.store(true, Ordering::Relaxed);
                return true;
            }
            Err(e) => {
                shared.health.store_ok.store(false, Ordering::Relaxed);
                error!(error = %e, retry_in = ?backoff, "store commit failed; consumption stopped until it succeeds");
                if shared.shutdown.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::{Engine, EngineConfig};
    use crate::store::BatchWrite;

    fn shared(dir: &std::path::Path) -> Shared {
        Shared {
            store: Arc::new(Store::open(&dir.join("s.redb")).unwrap()),
            health: Arc::new(Health::default()),
            metrics: Arc::new(Metrics::new()),
            read_model: Arc::new(ReadModel::default()),
            publish: Arc::new(tokio::sync::Notify::new()),
            shutdown: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A batch of one alert, read up to `offset`.
    fn job(e: &mut Engine, pod: usize, offset: i64) -> Job {
        let rec = format!(r#"{{"labels":{{"alertname":"Down","service":"api","pod":"p{pod}"}}}}"#);
        let now = Timestamp(1_767_607_200_000 + pod as i64);
        e.handle(rec.as_bytes(), now);
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

    #[test]
    fn batches_are_committed_in_order_and_only_then_visible() {
        let dir = tempfile::tempdir().unwrap();
        let s = shared(dir.path());
        let (store, health, read_model) = (s.store.clone(), s.health.clone(), s.read_model.clone());
        let cfg = Config::parse(
            "[[rules]]\nname = \"svc\"\ngroup_by = [\"service\"]\n",
            "t.toml",
        )
        .unwrap();
        let mut e = Engine::new(EngineConfig::compile(&cfg).unwrap());
        e.set_tracking(true);
        let mut c = Committer::spawn(s).unwrap();
        for n in 0..3 {
            let j = job(&mut e, n, n as i64 + 1);
            assert!(c.submit(j));
        }
        let done = c.drain();
        assert_eq!(c.in_flight(), 0);
        let offsets: Vec<i64> = done.iter().map(|o| o[&("alerts".to_string(), 0)]).collect();
        assert_eq!(offsets, [1, 2, 3], "reported in commit order");
        assert_eq!(store.offsets().unwrap()[&("alerts".to_string(), 0)], 3);
        assert_eq!(health.records_committed.load(Ordering::Relaxed), 3);
        assert_eq!(health.batches_committed.load(Ordering::Relaxed), 3);
        let inc = read_model.incidents();
        assert_eq!(inc.len(), 1);
        assert_eq!(
            inc[0].members.len(),
            3,
            "the read model holds the last batch's state"
        );
        let stored = store.incident(inc[0].id).unwrap().unwrap();
        assert_eq!(stored.members.len(), 3);
        c.finish();
        assert!(
            !c.submit(job(&mut e, 9, 10)),
            "a finished committer takes nothing"
        );
    }
}
