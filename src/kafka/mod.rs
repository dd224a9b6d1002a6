//! The Kafka edge of the daemon.
//!
//! - [`consumer`]: the pipeline thread: poll a batch, feed the engine, commit
//!   state + offsets + outbox in one redb transaction.
//! - [`fetch`]: the fetch thread beside it: polls the client and decodes
//!   each record as it arrives.
//! - [`publisher`]: delivers outbox entries with the idempotent producer and
//!   deletes them once the broker acknowledged.
//! - [`events`]: incident events as CloudEvents.
//! - [`activity`]: the daemon's INFO lines about incidents, problems and
//!   throughput.
//! - [`embedded`]: librdkafka's in-process mock cluster for `--embedded-kafka`.

pub mod activity;
pub mod committer;
pub mod consumer;
pub mod embedded;
pub mod events;
pub mod fetch;
pub mod merge;
pub mod publisher;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

/// Consumer settings: offsets are stored only after the redb commit
/// (`enable.auto.offset.store=false`), then committed to the broker in the
/// background so lag tooling works; redb stays the source of truth.
pub fn consumer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("group.id", &k.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            k.session_timeout.0.as_millis().to_string(),
        )
        // Low latency with live traffic (the broker answers an empty fetch
        // after 5 ms); costs ~200 idle fetch requests/s per broker, and
        // kafka.properties can raise it.
        .set("fetch.wait.max.ms", "5")
        // While a batch is applied, the prefetch queue fills up; librdkafka
        // then postpones fetching each partition by this much (default 1 s,
        // which stalled a backlog read for most of a second per batch:
        // measured 2.6x slower reading for a plain consumer, 1.3x for the
        // daemon).
        .set("fetch.queue.backoff.ms", "10")
        // librdkafka prefetches up to 64 MiB by default; the pipeline's own
        // merge buffer already holds up to 100,000 records (128 MiB at
        // most), so 16 MiB ahead of it keeps a backlog read as fast
        // (measured on the 1M-record bench) with ~70 MiB less memory.
        .set("queued.max.messages.kbytes", "16384")
        .set("enable.partition.eof", "true");
    for (key, v) in &k.properties {
        c.set(key, v);
    }
    c
}

/// Producer settings: idempotent, all in-sync replicas, long delivery timeout
/// so a broker restart is ridden out rather than reported. Batches are LZ4
/// compressed: every incident event repeats its members' labels, so events
/// shrink several times over, for the broker, the network and consumers
/// (any Kafka client decompresses transparently).
///
/// `message.max.bytes` is derived from `limits.max_record_bytes` (plus
/// [`ENVELOPE_BYTES`]): the largest record correlator accepts is also one it
/// can produce, to the DLQ or from the webhook.
pub fn producer_config(k: &KafkaConfig, max_record_bytes: usize) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set(
            "message.max.bytes",
            (max_record_bytes + ENVELOPE_BYTES).to_string(),
        )
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("compression.type", "lz4")
        .set("message.timeout.ms", "120000");
    for (key, v) in &k.properties {
        c.set(key, v);
    }
    c
}

/// State shared between the pipeline, the publisher and the HTTP server.
#[derive(Debug, Default)]
pub struct Health {
    pub store_ok: AtomicBool,
    pub broker_ok: AtomicBool,
    pub caught_up: AtomicBool,
    pub outbox_backlog: AtomicU64,
    /// Records applied by the engine...
    pub records_consumed: AtomicU64,
    /// ...and those of them whose batch is committed.
    pub records_committed: AtomicU64,
    pub records_rejected: AtomicU64,
    pub events_published: AtomicU64,
    pub batches_committed: AtomicU64,
    /// Engine clock in ms.
    pub engine_clock_ms: AtomicI64,
    /// (topic, partition, lag) of the last watermark check.
    pub lag: Mutex<Vec<(String, i32, i64)>>,
    /// Outbox entries the broker refused for good, parked in the store.
    pub outbox_parked: AtomicU64,
    /// The outbox entry that keeps failing with a retryable error: since
    /// when (wall clock, ms) and the last cause. None once it is delivered.
    pub outbox_failing: Mutex<Option<(i64, String)>>,
    /// Input records deleted by the broker before this daemon read them.
    pub records_lost: AtomicU64,
    /// Next offset per (topic, partition) whose batch is committed to the
    /// store, and a wake-up for whoever waits for one (the webhook in
    /// embedded mode: see [`Health::wait_committed`]).
    pub committed: Mutex<BTreeMap<(String, i32), i64>>,
    pub committed_changed: tokio::sync::Notify,
}

/// How long an outbox entry may keep failing with a retryable error (a
/// broker restart, a leader election) before the daemon reports itself
/// degraded.
pub const OUTBOX_STUCK_AFTER: Duration = Duration::from_secs(30);

impl Health {
    pub fn ready(&self) -> bool {
        self.store_ok.load(Ordering::Relaxed) && self.broker_ok.load(Ordering::Relaxed)
    }

    /// Records a committed batch's offsets and wakes the waiters.
    pub fn set_committed<'a>(
        &self,
        offsets: impl IntoIterator<Item = (&'a (String, i32), &'a i64)>,
    ) {
        if let Ok(mut c) = self.committed.lock() {
            for (k, o) in offsets {
                c.insert(k.clone(), *o);
            }
        }
        self.committed_changed.notify_waiters();
    }

    /// Waits until the record at `offset` of `topic`/`partition` is
    /// committed to the store, or `timeout` passed (false).
    pub async fn wait_committed(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let key = (topic.to_string(), partition);
        loop {
            let changed = self.committed_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let done = self
                .committed
                .lock()
                .ok()
                .and_then(|c| c.get(&key).copied())
                .is_some_and(|next| next > offset);
            if done {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }

    /// Conditions that need an operator although the daemon still works:
    /// (reason, detail). `now_ms` is the wall clock.
    pub fn degraded(&self, now_ms: i64) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let parked = self.outbox_parked.load(Ordering::Relaxed);
        if parked > 0 {
            out.push((
                "outbox_parked",
                format!("{parked} outbox entries refused for good by the broker (see the log and correlator_outbox_parked)"),
            ));
        }
        if let Some((since, cause)) = self.outbox_failing.lock().ok().and_then(|f| f.clone()) {
            let for_ms = now_ms.saturating_sub(since);
            if for_ms >= OUTBOX_STUCK_AFTER.as_millis() as i64 {
                out.push((
                    "outbox_stuck",
                    format!(
                        "an outbox entry has failed for {} s: {cause}",
                        for_ms / 1000
                    ),
                ));
            }
        }
        let lost = self.records_lost.load(Ordering::Relaxed);
        if lost > 0 {
            out.push((
                "records_lost",
                format!("{lost} input records were deleted by the broker before they were read (see the log and correlator_records_lost_total)"),
            ));
        }
        out
    }
}

/// Produce errors that no retry can cure: the message itself is refused
/// (too large for the broker, malformed, a topic name it rejects). Every
/// other error (broker down, leader moving, timeouts, authorization an
/// operator can fix) is retried.
pub fn is_permanent(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::InvalidMessage
                | C::InvalidRecord
                | C::BadMessage
                | C::InvalidTopic
                | C::InvalidArgument
        )
    )
}

/// Room the producer keeps beyond `limits.max_record_bytes` for a
/// message's key, headers and framing. A DLQ record's headers are bounded
/// well within it (see `consumer::dlq_entry`).
pub const ENVELOPE_BYTES: usize = 16 * 1024;

/// Why the Kafka edge failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    #[error("kafka client: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("topic {topic} partition {partition}: stored offset {stored} is beyond the broker's end {high}; the topic was recreated or truncated. Refusing to skip or re-read input: reset the offsets in the store deliberately")]
    OffsetBeyondEnd {
        topic: String,
        partition: i32,
        stored: i64,
        high: i64,
    },
    #[error("topic {0} not found on the broker")]
    NoTopic(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("cannot start the committer or fetch thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("the committer thread stopped; nothing after the last committed batch was stored")]
    CommitterStopped,
    #[error("the fetch thread stopped unexpectedly; records after the last committed batch are read again on the next start")]
    FetchStopped,
}
