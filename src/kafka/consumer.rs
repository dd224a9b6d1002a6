//! The pipeline thread: Kafka records in, one redb transaction per batch.
//! Records arrive already decoded from the fetch thread
//! ([`crate::kafka::fetch`]); this thread merges them by timestamp, applies
//! them to the engine and hands each batch to the committer thread.
//!
//! Exactly-once effects rest on three rules:
//! 1. a record is applied only if its offset is at or past the stored next
//!    offset of its partition (redb, not the broker, is the truth), so a
//!    re-delivered record is skipped;
//! 2. state, next offsets and outbox entries of a batch commit together;
//! 3. offsets are handed to the broker only after that commit.
//!
//! The engine clock is event time: each record's timestamp (never later
//! than the wall clock). Timers fire on the wall clock only once every
//! assigned partition is caught up, so a restart after downtime replays the
//! backlog by its own timestamps instead of expiring every alert first.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use crate::alert::Timestamp;
use crate::config::{Assignment, Config};
use crate::engine::state::IncidentId;
use crate::engine::{Engine, IncidentEvent};
use crate::kafka::committer::{Committer, Job, Shared};
use crate::kafka::fetch::{Fetch, Fetched, Fetcher};
use crate::kafka::merge::{Merge, PartitionKey};
use crate::kafka::snapshot::SnapshotWriter;
use crate::kafka::{consumer_config, events, Health, KafkaError};
use crate::metrics::Metrics;
use crate::problems::state::{KnownError, ProblemId};
use crate::read_model::ReadModel;
use crate::store::{BatchWrite, Offsets, OutboxEntry, PayloadKind, PreparedBatch, Store};

/// A command from the API, applied on the pipeline thread through the same
/// store transaction as Kafka input (one write path). The reply is sent
/// after the transaction committed.
pub enum Command {
    Incident {
        id: IncidentId,
        op: IncidentOp,
        reply: CommandReply,
    },
    Problem {
        id: ProblemId,
        op: ProblemOp,
        reply: CommandReply,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentOp {
    Acknowledge,
    Resolve,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemOp {
    Accept,
    Reject,
    KnownError(KnownError),
    Resolve,
    /// Merge problem `from` into the command's problem.
    Merge {
        from: ProblemId,
    },
}

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailure {
    #[error(transparent)]
    Incident(#[from] crate::engine::CommandError),
    #[error(transparent)]
    Problem(#[from] crate::problems::manager::ProblemError),
}

pub type CommandReply = tokio::sync::oneshot::Sender<Result<(), CommandFailure>>;

/// The wall clock: the only clock read in the daemon's decision path
/// (clippy.toml refuses `SystemTime::now` everywhere else in the crate;
/// chrono is built without its clock).
#[allow(clippy::disallowed_methods)]
pub fn wall_clock() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(crate::alert::millis)
        .unwrap_or(0);
    Timestamp(ms)
}

/// Client context that does not log partition EOF as an error: the
/// pipeline asks for EOF events (caught-up detection) and handles them.
pub struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::KafkaError as E;
        use rdkafka::types::RDKafkaErrorCode as C;
        let eof = matches!(error, E::PartitionEOF(_) | E::Global(C::PartitionEOF));
        if !eof {
            tracing::error!(error = %error, reason, "kafka client error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// Records buffered for the merge at most (a full buffer releases records
/// even if a partition is silent)...
const MERGE_BUFFER: usize = 50_000;

/// ...and bytes (counted as received: payloads and keys): large webhook
/// bodies fill the buffer by size before they fill it by count.
const MERGE_BUFFER_BYTES: usize = 128 << 20;

/// How long a backlog's batch waits at most for a partition whose next
/// records are still being fetched before it closes short.
const BACKLOG_WAIT: Duration = Duration::from_millis(50);

/// Records the merge releases at a time to be applied: a batch is applied
/// in such steps as its records are released, not once it is complete, so
/// the fetch thread decodes the next records while these are applied
/// instead of waiting for room in its channel.
const APPLY_STEP: usize = 4096;

/// What one poll of the consumer gave.
enum Polled {
    /// A record, or a partition at its end.
    Event,
    Error,
    Nothing,
}

pub struct Pipeline {
    pub engine: Engine,
    pub store: Arc<Store>,
    pub consumer: Arc<BaseConsumer<QuietEof>>,
    pub cfg: Config,
    pub offsets: Offsets,
    pub health: Arc<Health>,
    pub publish: Arc<tokio::sync::Notify>,
    pub commands: std::sync::mpsc::Receiver<Command>,
    pub metrics: Arc<Metrics>,
    pub read_model: Arc<ReadModel>,
    /// Engine counters at the last metrics update (to export deltas).
    last_stats: crate::engine::Stats,
    /// Polls and decodes records beside this thread (started by `run`).
    fetcher: Option<Fetcher>,
    /// Records fetched but not yet applied (the timestamp merge).
    merge: Merge<Fetched>,
    /// The last batch's vector, emptied and reused by the next.
    batch_buf: Vec<Fetched>,
    /// When the assignment was last read from the client.
    assigned_at: Option<Instant>,
    /// Encodes incident snapshots for the outbox.
    snapshots: SnapshotWriter,
    /// Stores batches while the next is applied (started by `run`).
    committer: Option<Committer>,
    /// Records applied in the batch being built (not yet handed to the
    /// committer).
    open: usize,
    /// A partition was revoked while the open batch held applied records:
    /// the batch closes, then is stored before anything else.
    revoked: bool,
    /// Reused (topic, partition) key for offset look-ups in `apply`.
    key: (String, i32),
    /// `alerts_received` by format, looked up once.
    received: std::collections::HashMap<crate::alert::Format, prometheus::IntCounter>,
    /// Embedded broker: stored offsets past the end mean the in-process
    /// broker restarted empty, so restart those partitions from zero.
    pub embedded: bool,
    /// Gaps found when the pipeline started (stored offset below the
    /// broker's log start), reported with the first batch.
    lost_at_start: Vec<Lost>,
}

/// Input records the broker deleted before this daemon read them (retention,
/// or the embedded broker's size cap): offsets `from..to` of a partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Lost {
    pub topic: String,
    pub partition: i32,
    pub from: i64,
    pub to: i64,
}

impl Pipeline {
    #[allow(
        clippy::too_many_arguments,
        reason = "each is a distinct shared handle the pipeline owns or shares"
    )]
    pub fn new(
        engine: Engine,
        store: Arc<Store>,
        cfg: Config,
        health: Arc<Health>,
        publish: Arc<tokio::sync::Notify>,
        commands: std::sync::mpsc::Receiver<Command>,
        metrics: Arc<Metrics>,
        read_model: Arc<ReadModel>,
        embedded: bool,
    ) -> Result<Pipeline, KafkaError> {
        let mut engine = engine;
        // One `updated` per incident per batch (README "Incident events").
        engine.coalesce_updates(true);
        let consumer: Arc<BaseConsumer<QuietEof>> =
            Arc::new(consumer_config(&cfg.kafka).create_with_context(QuietEof)?);
        let offsets = store.offsets()?;
        read_model.load(&engine);
        let last_stats = engine.stats().clone();
        Ok(Pipeline {
            engine,
            store,
            consumer,
            cfg,
            offsets,
            health,
            publish,
            commands,
            metrics,
            read_model,
            last_stats,
            fetcher: None,
            merge: Merge::default(),
            batch_buf: Vec::new(),
            assigned_at: None,
            snapshots: SnapshotWriter::default(),
            committer: None,
            open: 0,
            revoked: false,
            key: (String::new(), 0),
            received: Default::default(),
            embedded,
            lost_at_start: Vec::new(),
        })
    }

    /// Checks stored offsets against the broker and subscribes or assigns.
    pub fn start(&mut self) -> Result<(), KafkaError> {
        let topics: Vec<&str> = self
            .cfg
            .kafka
            .alert_topics
            .iter()
            .map(String::as_str)
            .collect();
        let md = self
            .consumer
            .fetch_metadata(None, Duration::from_secs(10))?;
        let mut parts: Vec<(String, i32)> = Vec::new();
        for t in &topics {
            let Some(mt) = md.topics().iter().find(|mt| mt.name() == *t) else {
                return Err(KafkaError::NoTopic(t.to_string()));
            };
            for p in mt.partitions() {
                parts.push((t.to_string(), p.id()));
            }
        }
        let mut reset = Offsets::new();
        for ((topic, p), stored) in &self.offsets {
            let Ok((low, high)) =
                self.consumer
                    .fetch_watermarks(topic, *p, Duration::from_secs(10))
            else {
                continue;
            };
            if *stored > high {
                if self.embedded {
                    warn!(topic, partition = p, stored, high, "embedded broker restarted empty: re-reading partition from 0, incidents kept");
                    reset.insert((topic.clone(), *p), 0);
                } else {
                    return Err(KafkaError::OffsetBeyondEnd {
                        topic: topic.clone(),
                        partition: *p,
                        stored: *stored,
                        high,
                    });
                }
            } else if *stored < low {
                // Reported (and paged) with the first batch, which also
                // stores the new start: counted once.
                self.lost_at_start.push(Lost {
                    topic: topic.clone(),
                    partition: *p,
                    from: *stored,
                    to: low,
                });
            }
        }
        for l in &self.lost_at_start {
            self.offsets.insert((l.topic.clone(), l.partition), l.to);
        }
        if !reset.is_empty() {
            self.store.set_offsets(&reset)?;
            self.offsets.extend(reset);
        }
        match self.cfg.kafka.assignment {
            Assignment::Group => {
                self.consumer.subscribe(&topics)?;
                info!(topics = ?topics, group = %self.cfg.kafka.group_id, "subscribed");
            }
            Assignment::Manual => {
                let wanted = &self.cfg.kafka.partitions;
                let mut tpl = TopicPartitionList::new();
                for (t, p) in parts
                    .iter()
                    .filter(|(_, p)| wanted.is_empty() || wanted.contains(p))
                {
                    let off = match self.offsets.get(&(t.clone(), *p)) {
                        Some(o) => Offset::Offset(*o),
                        None => Offset::Beginning,
                    };
                    tpl.add_partition_offset(t, *p, off)?;
                }
                self.consumer.assign(&tpl)?;
                info!(
                    partitions = tpl.count(),
                    "assigned partitions manually at stored offsets"
                );
            }
        }
        self.health.store_ok.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Runs until `shutdown` is set; finishes the batch in hand first and
    /// waits for the committer to store it.
    pub fn run(mut self, shutdown: Arc<AtomicBool>) -> Result<(), KafkaError> {
        self.fetcher = Some(Fetcher::spawn(
            self.consumer.clone(),
            self.cfg.limits.clone(),
        )?);
        self.committer = Some(Committer::spawn(Shared {
            store: self.store.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            read_model: self.read_model.clone(),
            publish: self.publish.clone(),
            shutdown: shutdown.clone(),
            retry_backoff: Duration::from_millis(100),
        })?);
        let result = self.run_batches(&shutdown);
        // Nothing more is fetched (stops and joins the fetch thread).
        self.fetcher = None;
        let rest = self.committer.as_mut().map(Committer::finish);
        self.hand_offsets_to_broker(rest.unwrap_or_default());
        info!("pipeline stopped");
        result
    }

    fn run_batches(&mut self, shutdown: &AtomicBool) -> Result<(), KafkaError> {
        let tick_every = self.cfg.kafka.tick_interval.0;
        let mut last_tick = Instant::now();
        let mut last_lag_check = Instant::now() - tick_every;
        while !shutdown.load(Ordering::Relaxed) {
            if !self.fetcher.as_ref().is_some_and(Fetcher::alive) {
                // A panic there is a bug; without this check the daemon
                // would wait for records forever, looking healthy.
                return Err(KafkaError::FetchStopped);
            }
            let mut write = BatchWrite::default();
            self.snapshots.end_batch();
            let mut events: Vec<IncidentEvent> = Vec::new();
            // The batch vector is reused: no fresh memory per batch.
            let mut batch = std::mem::take(&mut self.batch_buf);
            batch.clear();
            for lost in std::mem::take(&mut self.lost_at_start) {
                self.records_lost(lost, wall_clock(), &mut write, &mut events);
            }
            self.build_batch(&mut batch, &mut write, &mut events);
            let mut replies = Vec::new();
            while let Ok(cmd) = self.commands.try_recv() {
                let now = wall_clock().max(self.engine.clock());
                let mut produced = Vec::new();
                let (res, reply) = self.command(cmd, now, &mut produced);
                self.render(&produced, &mut write);
                events.extend(produced);
                replies.push((reply, res));
            }
            if batch.is_empty() && last_tick.elapsed() >= tick_every {
                last_tick = Instant::now();
                if last_lag_check.elapsed() >= tick_every {
                    last_lag_check = Instant::now();
                    self.check_lag();
                }
                if self.health.caught_up.load(Ordering::Relaxed) {
                    let produced = self.engine.tick(wall_clock());
                    self.render(&produced, &mut write);
                    events.extend(produced);
                }
                self.refresh_gauges();
            }
            // The batch's coalesced `updated` events (data = incident now).
            let produced = self.engine.take_updates();
            self.render(&produced, &mut write);
            events.extend(produced);
            let changes = self.engine.take_changes();
            if !write.outbox.is_empty() || !write.offsets.is_empty() || !changes.is_empty() {
                // An encoding failure is a bug, not a condition to wait out:
                // stop with nothing of the batch stored.
                let buffer = self.committer().take_spare();
                let prepared = PreparedBatch::new_in(&self.engine, &changes, write, buffer)?;
                for ((t, p), o) in prepared.offsets() {
                    self.offsets.insert((t.clone(), *p), *o);
                }
                self.observe_batch(&batch, &events);
                super::activity::batch(&self.engine, batch.len(), &events, &self.metrics);
                let job = Job {
                    batch: prepared,
                    records: batch.len() as u64,
                    read_model: ReadModel::delta(
                        &self.engine,
                        &changes.incidents,
                        &changes.problems,
                    ),
                    replies,
                    clock: self.engine.clock(),
                };
                self.engine.evict_final();
                if !self.committer().submit(job) {
                    // The batch is consumed again on the next start.
                    if shutdown.load(Ordering::Relaxed) {
                        // Shutting down with the store failing.
                        return Ok(());
                    }
                    return Err(KafkaError::CommitterStopped);
                }
            } else if !replies.is_empty() {
                // Nothing to store: reply once earlier batches are visible.
                self.drain_committer();
                for (reply, r) in replies {
                    let _ = reply.send(r);
                }
            }
            self.open = 0;
            if std::mem::take(&mut self.revoked) {
                // See `refresh_assignment`.
                self.drain_committer();
            }
            let done = self.committer().completed();
            self.hand_offsets_to_broker(done);
            self.batch_buf = batch;
        }
        Ok(())
    }

    fn committer(&mut self) -> &mut Committer {
        self.committer.as_mut().expect("run() starts the committer")
    }

    /// Offsets of committed batches, for the broker's lag tooling and for
    /// the group member that takes a partition over (redb stays the truth
    /// for this daemon).
    ///
    /// The stored offsets are the *next* offset to read, which is what the
    /// group must commit. They go through `rd_kafka_offsets_store` (a
    /// partition list, committed as given), never `rd_kafka_offset_store`,
    /// which adds one to its argument: that committed one past the next
    /// record, and a member taking the partition over skipped it.
    fn hand_offsets_to_broker(&mut self, committed: Vec<Offsets>) {
        for offsets in committed {
            if offsets.is_empty() {
                continue;
            }
            let mut tpl = TopicPartitionList::with_capacity(offsets.len());
            for ((t, p), o) in &offsets {
                if let Err(e) = tpl.add_partition_offset(t, *p, Offset::Offset(*o)) {
                    debug!(topic = %t, partition = p, error = %e, "offset not stored for broker commit");
                }
            }
            if let Err(e) = self.consumer.store_offsets(&tpl) {
                // A partition revoked meanwhile: its new owner reads the
                // offset this daemon committed before, or its own store's.
                debug!(error = %e, "offsets not stored for broker commit");
            }
        }
    }

    /// Waits for the batches in the committer (an idle pipeline, a changed
    /// assignment): what was applied is then also durable.
    fn drain_committer(&mut self) {
        if let Some(c) = self.committer.as_mut() {
            let done = c.drain();
            self.hand_offsets_to_broker(done);
        }
    }

    /// Applies up to `batch_max` records into `batch`, `write` and
    /// `events`, in steps of [`APPLY_STEP`] as the merge releases them. The
    /// batch closes when full, when a step comes back short with nothing
    /// more being fetched (live traffic: after `batch_linger`), or when a
    /// partition was revoked.
    fn build_batch(
        &mut self,
        batch: &mut Vec<Fetched>,
        write: &mut BatchWrite,
        events: &mut Vec<IncidentEvent>,
    ) {
        let max = self.cfg.kafka.batch_max;
        loop {
            let step = (max - batch.len()).min(APPLY_STEP);
            let start = batch.len();
            self.poll_batch(step, batch);
            for m in &mut batch[start..] {
                self.apply(m, write, events);
            }
            self.open = batch.len();
            let taken = batch.len() - start;
            let backlog = self.fetcher.as_ref().is_some_and(Fetcher::behind);
            if taken == 0 || batch.len() >= max || self.revoked || (taken < step && !backlog) {
                return;
            }
        }
    }

    /// Appends up to `max` records to `out` (the open batch), in timestamp
    /// order across partitions (see [`Merge`]).
    ///
    /// What librdkafka has already fetched is taken without waiting (up to
    /// `MERGE_BUFFER` records or `MERGE_BUFFER_BYTES` buffered, or until
    /// the merge can release this step and the next), so a backlog is
    /// consumed in full-size batches; with no backlog the step closes after
    /// `batch_linger`. If a partition stays silent while others have
    /// records (`MERGE_WAIT`, or the buffer is full), records are released
    /// anyway, oldest first.
    fn poll_batch(&mut self, max: usize, out: &mut Vec<Fetched>) {
        const MERGE_WAIT: Duration = Duration::from_millis(500);
        let linger = self.cfg.kafka.batch_linger.0;
        // An open batch does not wait for a first record: it closes.
        let first_wait = match out.is_empty() {
            true => self
                .cfg
                .kafka
                .tick_interval
                .0
                .min(Duration::from_millis(200)),
            false => Duration::ZERO,
        };
        let start = out.len();
        self.refresh_assignment();
        let started = Instant::now();
        let mut linger_until: Option<Instant> = None;
        loop {
            // Enough for this step and the next: stop taking from the fetch
            // thread and apply.
            if !self.fetch(2 * max) {
                break;
            }
            if self.buffer_full() {
                break;
            }
            let buffered = self.merge.buffered();
            let ready = self.merge.ready();
            if ready && buffered >= max {
                break;
            }
            let wait = if buffered == 0 {
                first_wait
            } else {
                let until = *linger_until.get_or_insert_with(|| Instant::now() + linger);
                let now = Instant::now();
                if (ready && now >= until) || now.duration_since(started) >= MERGE_WAIT {
                    break;
                }
                until
                    .saturating_duration_since(now)
                    .clamp(Duration::from_millis(1), Duration::from_millis(10))
            };
            match self.poll_one(wait) {
                Polled::Event => {}
                Polled::Error => break,
                Polled::Nothing => {
                    if buffered == 0 || self.merge.ready() {
                        break;
                    }
                }
            }
        }
        let mut force = !self.merge.ready();
        let generation = self.merge.generation();
        while out.len() - start < max {
            let Some(m) = self.merge.pop() else { break };
            out.push(m);
            if !force && !self.merge.ready() {
                // The partition just taken from has nothing more buffered:
                // take what has arrived since, and stop if it still has none.
                if !self.fetch(0) {
                    break;
                }
                if !self.merge.ready() && out.len() - start + self.merge.buffered() >= max {
                    // A backlog whose partition ran dry only for now (its
                    // next records are still being fetched): wait for them
                    // rather than close a short batch, which would cost a
                    // store commit of its own.
                    self.wait_ready(BACKLOG_WAIT);
                }
                if !self.merge.ready() {
                    if !self.buffer_full() {
                        break;
                    }
                    // Its next records are queued behind a full buffer: the
                    // next batch would release past it at once, so this one
                    // does (one full batch instead of a short one and a
                    // forced one).
                    force = true;
                }
            }
        }
        if self.merge.generation() != generation {
            // Revoked while the step was taken: their new owner applies them.
            let taken = out.split_off(start);
            out.extend(
                taken
                    .into_iter()
                    .filter(|m| self.merge.is_assigned(&m.topic, m.partition)),
            );
        }
        if out.is_empty() {
            // Caught up means applied and stored: nothing left in flight.
            self.drain_committer();
        }
        self.health
            .caught_up
            .store(out.is_empty() && self.merge.caught_up(), Ordering::Relaxed);
    }

    /// Buffers what librdkafka already holds, without waiting, until the
    /// buffer is full, or `enough` records with the merge ready to
    /// release. False on a consumer error.
    fn fetch(&mut self, enough: usize) -> bool {
        loop {
            let released = self.merge.buffered() >= enough && self.merge.ready();
            if released || self.buffer_full() {
                return true;
            }
            match self.poll_one(Duration::ZERO) {
                Polled::Event => {}
                Polled::Nothing => return true,
                Polled::Error => return false,
            }
        }
    }

    /// Polls until the merge is ready to release, the buffer is full or
    /// `wait` has passed.
    fn wait_ready(&mut self, wait: Duration) {
        let until = Instant::now() + wait;
        while !self.merge.ready() && !self.buffer_full() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            if let Polled::Error = self.poll_one(left.min(Duration::from_millis(10))) {
                return;
            }
        }
    }

    /// The merge buffer holds `MERGE_BUFFER` records or `MERGE_BUFFER_BYTES`.
    fn buffer_full(&self) -> bool {
        self.merge.buffered() >= MERGE_BUFFER || self.merge.buffered_bytes() >= MERGE_BUFFER_BYTES
    }

    fn poll_one(&mut self, wait: Duration) -> Polled {
        let fetcher = self.fetcher.as_mut().expect("run() starts the fetcher");
        match fetcher.next(wait) {
            Some(Fetch::Record(m)) => {
                self.health.broker_ok.store(true, Ordering::Relaxed);
                if !self.merge.is_assigned(&m.topic, m.partition) {
                    // The client only delivers records of partitions it
                    // holds: the assignment read up to 100 ms ago is stale
                    // (a group join or rebalance). Read it now, or the
                    // record would be taken for a revoked partition's and
                    // dropped, never to be delivered again.
                    self.assigned_at = None;
                    self.refresh_assignment();
                    if !self.merge.is_assigned(&m.topic, m.partition) {
                        // Fetched before its partition was revoked: its new
                        // owner (or this daemon, if it gets the partition
                        // back) reads it from the committed offset.
                        debug!(
                            topic = &*m.topic,
                            partition = m.partition,
                            offset = m.offset,
                            "record of a revoked partition dropped"
                        );
                        return Polled::Event;
                    }
                }
                let topic = m.topic.clone();
                self.merge.push(&topic, m.partition, m);
                Polled::Event
            }
            Some(Fetch::Eof(p)) => {
                // The error names only the partition number.
                for t in &self.cfg.kafka.alert_topics {
                    self.merge.mark_eof(t, p);
                }
                Polled::Event
            }
            Some(Fetch::End { topic, partition }) => {
                self.merge.mark_eof(&topic, partition);
                Polled::Event
            }
            Some(Fetch::Error(e)) => {
                // Not knowing the broker's state, we are not caught up:
                // no wall-clock tick until a partition says EOF again.
                warn!(error = %e, "consumer error");
                self.merge.clear_eof();
                Polled::Error
            }
            None => Polled::Nothing,
        }
    }

    /// Reads the assigned partitions (manual assignment or the group's
    /// current share) from the client, at most every 100 ms.
    fn refresh_assignment(&mut self) {
        if self
            .assigned_at
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        let now: Vec<PartitionKey> = self
            .consumer
            .assignment()
            .map(|a| {
                a.elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect()
            })
            .unwrap_or_default();
        if self.merge.revokes(&now) {
            // Given-up partitions: their applied records become durable
            // (and their offsets go to the broker) before anything else;
            // with records applied in the open batch, once it closes.
            match self.open {
                0 => self.drain_committer(),
                _ => self.revoked = true,
            }
        }
        self.merge.set_assigned(&now);
        self.assigned_at = Some(Instant::now());
    }

    fn command(
        &mut self,
        cmd: Command,
        now: Timestamp,
        events: &mut Vec<IncidentEvent>,
    ) -> (Result<(), CommandFailure>, CommandReply) {
        match cmd {
            Command::Incident { id, op, reply } => {
                let out = match op {
                    IncidentOp::Acknowledge => self.engine.acknowledge(id, now),
                    IncidentOp::Resolve => self.engine.resolve(id, now),
                };
                // Timer events of a refused command are published too.
                events.extend(out.events);
                (out.result.map_err(Into::into), reply)
            }
            Command::Problem { id, op, reply } => {
                let r = match op {
                    ProblemOp::Accept => self.engine.accept_problem(id, now),
                    ProblemOp::Reject => self.engine.reject_problem(id, now),
                    ProblemOp::KnownError(ke) => self.engine.record_known_error(id, ke, now),
                    ProblemOp::Resolve => self.engine.resolve_problem(id, now),
                    ProblemOp::Merge { from } => self.engine.merge_problems(id, from, now),
                };
                (r.map_err(Into::into), reply)
            }
        }
    }

    /// Metrics of a batch the engine applied (counted as it is handed to
    /// the committer, ~one commit before it is durable).
    fn observe_batch(&mut self, batch: &[Fetched], events: &[IncidentEvent]) {
        let m = &self.metrics;
        let wall = wall_clock();
        for rec in batch {
            if let Some(ts) = rec.timestamp {
                m.processing_latency
                    .observe(((wall.0 - ts).max(0)) as f64 / 1000.0);
            }
        }
        if !batch.is_empty() {
            m.batch_size.observe(batch.len() as f64);
        }
        for ev in events {
            let Some(inc) = self.engine.incident(ev.incident) else {
                continue;
            };
            match ev.kind {
                crate::engine::EventKind::Opened => {
                    m.incidents_opened
                        .with_label_values(&[
                            &inc.rule,
                            inc.severity.as_str(),
                            inc.priority.as_str(),
                        ])
                        .inc();
                    if inc.known_error.is_some() {
                        m.known_error_matches.inc();
                    }
                }
                crate::engine::EventKind::Acknowledged => {
                    if let Some(a) = inc.acknowledged_at {
                        m.time_to_acknowledge
                            .observe(a.seconds_since(inc.opened_at).max(0.0));
                    }
                }
                crate::engine::EventKind::Resolved => {
                    if let Some(r) = inc.resolved_at {
                        m.time_to_resolve
                            .observe(r.seconds_since(inc.opened_at).max(0.0));
                    }
                }
                _ => {}
            }
        }
        let s = self.engine.stats().clone();
        let d = |now: u64, before: u64| now.saturating_sub(before);
        m.alerts_deduplicated
            .inc_by(d(s.deduplicated, self.last_stats.deduplicated));
        m.noise_dropped
            .inc_by(d(s.noise_dropped, self.last_stats.noise_dropped));
        m.incidents_reopened
            .inc_by(d(s.incidents_reopened, self.last_stats.incidents_reopened));
        m.incidents_merged
            .inc_by(d(s.incidents_merged, self.last_stats.incidents_merged));
        if s.alerts > 0 {
            m.noise_reduction
                .set(1.0 - s.incidents_opened as f64 / s.alerts as f64);
        }
        self.last_stats = s;
    }

    /// Gauges computed from the whole state, about once per tick.
    fn refresh_gauges(&self) {
        let m = &self.metrics;
        let (active, flapping) = self.engine.alert_gauges();
        m.alerts_active.set(active as i64);
        m.alerts_flapping.set(flapping as i64);
        // Count first, then set every pair (0 included): no gap in the
        // series between a reset and the increments, no missing zeros.
        let mut open: std::collections::BTreeMap<(&str, &str), i64> = Default::default();
        for inc in self.read_model.incidents() {
            if inc.status.is_active() {
                *open
                    .entry((inc.severity.as_str(), inc.priority.as_str()))
                    .or_default() += 1;
            }
        }
        for sev in ["critical", "error", "warning", "info", "none"] {
            for prio in ["P1", "P2", "P3", "P4", "P5"] {
                let n = open.get(&(sev, prio)).copied().unwrap_or(0);
                m.incidents_open.with_label_values(&[sev, prio]).set(n);
            }
        }
        let mut by_state = std::collections::BTreeMap::new();
        let mut oldest: Option<Timestamp> = None;
        for p in self.read_model.problems() {
            *by_state.entry(p.state.as_str()).or_insert(0i64) += 1;
            if p.state == crate::problems::state::ProblemState::Candidate {
                oldest = Some(oldest.map_or(p.created_at, |o| o.min(p.created_at)));
            }
        }
        for s in crate::problems::state::ProblemState::ALL {
            m.problems
                .with_label_values(&[s.as_str()])
                .set(by_state.get(s.as_str()).copied().unwrap_or(0));
        }
        m.oldest_candidate_age
            .set(oldest.map_or(0.0, |o| wall_clock().seconds_since(o).max(0.0)));
        if let Ok(l) = self.health.lag.lock() {
            // Only partitions owned now: a revoked one's last value would linger.
            m.consumer_lag.reset();
            for (t, p, n) in l.iter() {
                m.consumer_lag
                    .with_label_values(&[t, &p.to_string()])
                    .set(*n);
            }
        }
        m.outbox_backlog
            .set(self.health.outbox_backlog.load(Ordering::Relaxed) as i64);
        m.ready.set(i64::from(self.health.ready()));
    }

    /// Applies one record unless it was already applied.
    fn apply(&mut self, m: &mut Fetched, write: &mut BatchWrite, events: &mut Vec<IncidentEvent>) {
        // (poll_batch left out records of partitions revoked meanwhile.)
        // The key buffer is reused: no allocation per record to look up.
        let mut key = std::mem::take(&mut self.key);
        key.0.clear();
        key.0.push_str(&m.topic);
        key.1 = m.partition;
        let next = write
            .offsets
            .get(&key)
            .or_else(|| self.offsets.get(&key))
            .copied();
        let known = next.is_some();
        let next = next.unwrap_or(0);
        if known && m.offset > next {
            // Offsets skipped: deleted records, or only control records
            // (transaction markers) and compacted ones. The log start tells.
            if let Some(lost) = self.deleted_before(&m.topic, m.partition, next, m.offset) {
                self.records_lost(lost, m.now, write, events);
            }
        }
        if m.offset < next {
            debug!(
                topic = &*m.topic,
                partition = m.partition,
                offset = m.offset,
                "skipping record already applied"
            );
            self.key = key;
            return;
        }
        let out = self
            .engine
            .handle_decoded(std::mem::take(&mut m.decoded), m.now);
        self.health.records_consumed.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = out.decoded.format {
            self.received
                .entry(f)
                .or_insert_with(|| {
                    self.metrics
                        .alerts_received
                        .with_label_values(&[f.as_str()])
                })
                .inc_by(out.alerts as u64);
        }
        for e in &out.decoded.errors {
            self.metrics
                .alerts_rejected
                .with_label_values(&[e.reason()])
                .inc();
        }
        if let Some(rejected) = m.rejected.take() {
            self.metrics.dlq_records.inc();
            self.health.records_rejected.fetch_add(1, Ordering::Relaxed);
            let msg: Vec<String> = out.decoded.errors.iter().map(|e| e.to_string()).collect();
            let msg = msg.join("; ");
            let reason = out.decoded.errors.first().map_or("", |e| e.reason());
            warn!(topic = &*m.topic, partition = m.partition, offset = m.offset, error = %msg, "record rejected, sent to the DLQ");
            write.outbox.push(dlq_entry(
                &self.cfg.kafka.dlq_topic,
                self.cfg.limits.max_record_bytes,
                m,
                *rejected,
                &msg,
                reason,
            ));
        }
        // Render now: a lifecycle event's data is the incident right after
        // the record that caused it, not at the end of the batch (`updated`
        // events are coalesced and rendered at the end of the batch).
        self.render(&out.events, write);
        events.extend(out.events);
        match write.offsets.get_mut(&key) {
            Some(o) => *o = m.offset + 1,
            None => {
                write.offsets.insert(key.clone(), m.offset + 1);
            }
        }
        self.key = key;
    }

    /// The records of `next..offset` the broker no longer holds (its log
    /// starts past `next`), if any. Asks the broker: a gap below its log
    /// start is a loss; one above it is control or compacted records.
    fn deleted_before(&self, topic: &str, partition: i32, next: i64, offset: i64) -> Option<Lost> {
        match self
            .consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(5))
        {
            Ok((low, _)) if low > next => Some(Lost {
                topic: topic.to_string(),
                partition,
                from: next,
                to: low.min(offset),
            }),
            Ok(_) => None,
            Err(e) => {
                warn!(topic, partition, from = next, to = offset, error = %e, "offsets skipped and the broker's log start is unknown: records may have been lost");
                None
            }
        }
    }

    /// Reports input records the broker deleted before they were read:
    /// counted, logged at ERROR with the offsets, shown in `/readyz`, and
    /// turned into an incident of correlator itself (one alert per
    /// partition, `CorrelatorRecordsLost`), in the same batch that moves
    /// the partition's offset past the gap, so it is reported exactly once.
    fn records_lost(
        &mut self,
        lost: Lost,
        now: Timestamp,
        write: &mut BatchWrite,
        events: &mut Vec<IncidentEvent>,
    ) {
        let n = (lost.to - lost.from).max(0) as u64;
        if n == 0 {
            return;
        }
        self.health.records_lost.fetch_add(n, Ordering::Relaxed);
        self.metrics
            .records_lost
            .with_label_values(&[lost.topic.as_str()])
            .inc_by(n);
        error!(
            topic = %lost.topic,
            partition = lost.partition,
            from = lost.from,
            to = lost.to - 1,
            records = n,
            "input records were deleted by the broker before they were read (retention or the embedded broker's size cap): they are lost"
        );
        let body = lost_alert(&lost, now);
        let decoded = crate::decode::decode(body.as_bytes(), now, &self.cfg.limits);
        let out = self.engine.handle_decoded(decoded, now);
        self.render(&out.events, write);
        events.extend(out.events);
        let key = (lost.topic, lost.partition);
        let o = write.offsets.entry(key).or_insert(lost.to);
        *o = (*o).max(lost.to);
    }

    /// Turns engine events into outbox entries (data = incident now).
    fn render(&mut self, events: &[IncidentEvent], write: &mut BatchWrite) {
        for ev in self.engine.take_problem_events() {
            if let Some(p) = self.engine.problem(ev.problem) {
                super::activity::problem_event(&ev, p);
                write.outbox.push(OutboxEntry {
                    topic: self.cfg.kafka.incident_topic.clone(),
                    key: ev.problem.to_string().into_bytes(),
                    headers: Vec::new(),
                    kind: PayloadKind::Message,
                    payload: events::render_problem(&ev, p),
                });
            }
        }
        let topic = &self.cfg.kafka.incident_topic;
        for ev in events {
            if let Some(inc) = self.engine.incident(ev.incident) {
                if let Err(e) = self.snapshots.add(ev, inc, &mut write.outbox, topic) {
                    // Not expected (plain data); the JSON is sent instead.
                    error!(error = %e, incident = %ev.incident, "incident snapshot failed");
                    write.outbox.push(OutboxEntry {
                        topic: topic.clone(),
                        key: ev.incident.to_string().into_bytes(),
                        headers: Vec::new(),
                        kind: PayloadKind::Message,
                        payload: events::render(ev, inc),
                    });
                }
            }
        }
    }

    /// Updates lag per assigned partition and the caught-up flag.
    fn check_lag(&mut self) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let parts: Vec<(String, i32)> = assignment
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        drop(assignment);
        let mut lag = Vec::new();
        // Partitions this store never read (see below): (topic, partition, high).
        let mut unknown = Vec::new();
        let mut caught_up = !parts.is_empty();
        let mut reachable = true;
        for (t, p) in parts {
            match self
                .consumer
                .fetch_watermarks(&t, p, Duration::from_secs(2))
            {
                Ok((low, high)) => match self.offsets.get(&(t.clone(), p)).copied() {
                    Some(next) => {
                        let l = (high - next).max(0);
                        if l > 0 {
                            caught_up = false;
                        }
                        lag.push((t, p, l));
                    }
                    None if high <= low => lag.push((t, p, 0)),
                    // No offset stored: in group mode the client started at
                    // the group's committed offset (another daemon of the
                    // group read the partition before, or the store was
                    // wiped), which this store does not know. Counting from
                    // 0 held it "behind" for good and no timer ever fired;
                    // its end comes from the client's end-of-partition
                    // instead, until its first batch stores an offset.
                    None => unknown.push((t, p, high)),
                },
                Err(e) => {
                    warn!(topic = %t, partition = p, error = %e, "broker unreachable");
                    reachable = false;
                    caught_up = false;
                }
            }
        }
        self.health.broker_ok.store(reachable, Ordering::Relaxed);
        if reachable {
            // Caught-up comes from partition ends (poll_batch): the
            // watermarks take them back where the broker has more, and
            // restore them where everything it has was applied.
            self.merge.broker_lags(&lag);
        } else {
            self.merge.clear_eof();
        }
        if !reachable || !caught_up {
            self.health.caught_up.store(false, Ordering::Relaxed);
        }
        if !unknown.is_empty() {
            // For the lag gauge only: the client's position, where known.
            let position = self.consumer.position().ok();
            for (t, p, high) in unknown {
                let at = position
                    .as_ref()
                    .and_then(|l| l.find_partition(&t, p))
                    .and_then(|e| e.offset().to_raw());
                if let Some(at) = at.filter(|o| *o >= 0) {
                    lag.push((t, p, (high - at).max(0)));
                }
            }
        }
        if let Ok(mut l) = self.health.lag.lock() {
            *l = lag;
        }
    }
}

/// Lag by partition, for logs.
pub fn lag_summary(h: &Health) -> BTreeMap<String, i64> {
    h.lag
        .lock()
        .map(|l| l.iter().map(|(t, p, n)| (format!("{t}/{p}"), *n)).collect())
        .unwrap_or_default()
}

/// Longest `correlator-error` header of a DLQ record (one record can carry
/// an error per alert; the full list is in the log).
const DLQ_ERROR_BYTES: usize = 4096;

/// The DLQ record of a rejected input record: its key and bytes as they
/// were, with where it came from and why in headers. It fits the producer's
/// limit by construction: a record over `limits.max_record_bytes` (a broker
/// may allow larger ones than correlator accepts) is cut to that size, with
/// `correlator-truncated`, `correlator-original-size` and
/// `correlator-original-sha256` (of the whole record) in headers, and the
/// error header is cut to [`DLQ_ERROR_BYTES`]. Headers stay far within
/// [`crate::kafka::ENVELOPE_BYTES`].
pub fn dlq_entry(
    dlq_topic: &str,
    max_record_bytes: usize,
    m: &Fetched,
    rejected: crate::kafka::fetch::Rejected,
    error: &str,
    reason: &str,
) -> OutboxEntry {
    let mut headers = vec![
        (
            "correlator-error".into(),
            crate::decode::utf8_prefix(error, DLQ_ERROR_BYTES)
                .as_bytes()
                .to_vec(),
        ),
        ("correlator-reason".into(), reason.as_bytes().to_vec()),
        (
            "correlator-source-topic".into(),
            m.topic.as_bytes().to_vec(),
        ),
        (
            "correlator-source-partition".into(),
            m.partition.to_string().into_bytes(),
        ),
        (
            "correlator-source-offset".into(),
            m.offset.to_string().into_bytes(),
        ),
    ];
    let mut payload = rejected.payload;
    let mut key = rejected.key;
    if payload.len() > max_record_bytes || key.len() > DLQ_ERROR_BYTES {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&payload);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        headers.push(("correlator-truncated".into(), b"true".to_vec()));
        headers.push((
            "correlator-original-size".into(),
            payload.len().to_string().into_bytes(),
        ));
        headers.push(("correlator-original-sha256".into(), hex.into_bytes()));
        payload.truncate(max_record_bytes);
        key.truncate(DLQ_ERROR_BYTES);
    }
    OutboxEntry {
        topic: dlq_topic.to_string(),
        key,
        headers,
        kind: PayloadKind::Message,
        payload,
    }
}

/// How long the incident for lost records stays open unless an operator
/// resolves it first: a loss does not end by itself, but nothing re-sends
/// its alert either.
const LOST_ALERT_HOLD_MS: i64 = 24 * 3600 * 1000;

/// The alert correlator raises about itself for lost records (an
/// Alertmanager API v2 body, decoded like any other input).
fn lost_alert(lost: &Lost, now: Timestamp) -> String {
    let rfc = |ms: i64| {
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    };
    serde_json::json!([{
        "labels": {
            "alertname": "CorrelatorRecordsLost",
            "service": "correlator",
            "severity": "critical",
            "topic": lost.topic,
            "partition": lost.partition.to_string(),
        },
        "annotations": {
            "summary": format!(
                "{} input records of {}/{} (offsets {}..={}) were deleted by the broker before correlator read them",
                lost.to - lost.from, lost.topic, lost.partition, lost.from, lost.to - 1
            ),
        },
        "startsAt": rfc(now.0),
        "endsAt": rfc(now.0.saturating_add(LOST_ALERT_HOLD_MS)),
    }])
    .to_string()
}
