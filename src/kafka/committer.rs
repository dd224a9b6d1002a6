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

/// Where batches are written: the [`Store`] (a seam for tests to make
/// writes fail).
pub trait BatchSink: Send + Sync {
    fn write(&self, batch: &PreparedBatch) -> Result<(), crate::store::StoreError>;
}

impl BatchSink for Store {
    fn write(&self, batch: &PreparedBatch) -> Result<(), crate::store::StoreError> {
        Store::write(self, batch)
    }
}

/// What the committer thread shares with the rest of the daemon.
pub struct Shared {
    pub store: Arc<dyn BatchSink>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub read_model: Arc<ReadModel>,
    pub publish: Arc<tokio::sync::Notify>,
    /// Set on shutdown: a batch whose write keeps failing is given up (it is
    /// consumed again on the next start).
    pub shutdown: Arc<AtomicBool>,
    /// First wait after a failed write; doubles up to 5 s.
    pub retry_backoff: Duration,
}

/// The pipeline thread's handle on the committer thread.
pub struct Committer {
    jobs: Option<SyncSender<Job>>,
    done: Receiver<(Offsets, Vec<u8>)>,
    in_flight: usize,
    /// The encoding buffer of the last batch committed, for the next.
    spare: Vec<u8>,
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
            spare: Vec::new(),
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

    /// A committed batch's encoding buffer, for [`PreparedBatch::new_in`].
    pub fn take_spare(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare)
    }

    /// Batches handed over and not yet reported committed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Offsets of the batches committed since the last call, oldest first.
    pub fn completed(&mut self) -> Vec<Offsets> {
        let mut out = Vec::new();
        while let Ok((o, spare)) = self.done.try_recv() {
            self.in_flight -= 1;
            self.spare = spare;
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
                Ok((o, spare)) => {
                    self.in_flight -= 1;
                    self.spare = spare;
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

fn run(shared: &Shared, jobs: &Receiver<Job>, done: &Sender<(Offsets, Vec<u8>)>) {
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
        h.set_committed(job.batch.offsets());
        if job.batch.has_outbox() {
            shared.publish.notify_one();
        }
        for (reply, r) in job.replies {
            let _ = reply.send(r);
        }
        if done.send(job.batch.into_parts()).is_err() {
            return;
        }
    }
}

/// Writes, retrying with backoff: a failed commit (full disk, I/O error)
/// holds everything after it. False if shutdown came first.
fn write_with_retry(shared: &Shared, batch: &PreparedBatch) -> bool {
    let mut backoff = shared.retry_backoff;
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
mod tests;
