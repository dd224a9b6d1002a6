//! The outbox publisher: delivers committed outbox entries in sequence order
//! with the idempotent producer, and has each deleted only after the broker
//! acknowledged it: by the next batch's transaction, or by a transaction of
//! its own once no batch came for [`FLUSH_AFTER`] (see
//! [`Store::outbox_acked`]). Delivery is at-least-once (a crash between the
//! ack and the delete re-sends); events carry ids so consumers drop the copy.
//!
//! A message the broker refuses for good (too large, invalid: see
//! [`is_permanent`]) never blocks the entries behind it: its entry is parked
//! in the store with the reason, counted and logged, and `/readyz` reports
//! the daemon degraded. A retryable failure (broker down) is retried with
//! backoff; an entry still failing after [`crate::kafka::OUTBOX_STUCK_AFTER`] makes the
//! daemon report itself degraded too, with the cause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracing::{debug, error, warn};

use crate::config::KafkaConfig;
use crate::kafka::{is_permanent, producer_config, snapshot, Health, KafkaError};
use crate::store::Store;

const BATCH: usize = 1000;

/// How long acknowledged entries wait for a batch transaction to delete
/// them before the publisher deletes them itself.
const FLUSH_AFTER: Duration = Duration::from_millis(100);

pub struct Publisher {
    producer: FutureProducer,
    store: Arc<Store>,
    health: Arc<Health>,
    notify: Arc<tokio::sync::Notify>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Members rendered for earlier events (see `snapshot::RenderCache`).
    render_cache: Arc<std::sync::Mutex<snapshot::RenderCache>>,
    /// The next outbox sequence to send: the entries before it were
    /// delivered and wait for deletion.
    cursor: u64,
    /// The largest event rendered (`limits.max_record_bytes`).
    max_event_bytes: usize,
}

impl Publisher {
    pub fn new(
        k: &KafkaConfig,
        max_record_bytes: usize,
        store: Arc<Store>,
        health: Arc<Health>,
        notify: Arc<tokio::sync::Notify>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Publisher, KafkaError> {
        if let Ok(parked) = store.outbox_parked_len() {
            health.outbox_parked.store(parked, Ordering::Relaxed);
            metrics.outbox_parked.set(parked as i64);
        }
        Ok(Publisher {
            producer: producer_config(k, max_record_bytes).create()?,
            store,
            health,
            notify,
            metrics,
            render_cache: Default::default(),
            cursor: 0,
            max_event_bytes: max_record_bytes,
        })
    }

    /// Publishes until `stop` is set and the outbox is empty, or until
    /// `stop` is set and `drain_deadline` passed.
    pub async fn run(mut self, stop: Arc<AtomicBool>, drain_deadline: Duration) {
        let mut stop_seen: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.publish_some().await {
                Ok(0) => {
                    backoff = Duration::from_millis(100);
                    if stop.load(Ordering::Relaxed) {
                        self.flush_acked().await;
                        return;
                    }
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep(FLUSH_AFTER) => self.flush_acked().await,
                    }
                }
                Ok(_) => backoff = Duration::from_millis(100),
                Err(e) => {
                    warn!(error = %e, retry_in = ?backoff, "outbox publish failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            if stop.load(Ordering::Relaxed) {
                let since = *stop_seen.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > drain_deadline {
                    self.flush_acked().await;
                    warn!(
                        backlog = self.health.outbox_backlog.load(Ordering::Relaxed),
                        "shutdown deadline: outbox left for the next start"
                    );
                    return;
                }
            }
        }
    }

    /// Deletes the delivered entries no batch transaction took.
    async fn flush_acked(&self) {
        let store = self.store.clone();
        let r = match tokio::task::spawn_blocking(move || store.outbox_flush_acked()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = r {
            warn!(error = %e, "deleting delivered outbox entries failed; retrying later");
        }
    }

    /// Sends one batch; returns how many were delivered.
    async fn publish_some(&mut self) -> Result<usize, String> {
        let store = self.store.clone();
        // Incident snapshots become their event JSON here, off the pipeline.
        let cache = self.render_cache.clone();
        let from = self.cursor;
        let max_event_bytes = self.max_event_bytes;
        let batch = tokio::task::spawn_blocking(move || {
            let batch = store.outbox_batch_from(from, BATCH)?;
            // Only this task renders; the lock is never contended.
            let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            let mut out = Vec::with_capacity(batch.len());
            for (seq, mut e) in batch {
                // An incident entry is all of one incident's events of a
                // batch: one message each.
                let messages = if e.kind.is_snapshot() {
                    snapshot::render(e.kind, &e.payload, &mut cache, max_event_bytes)?
                } else {
                    vec![std::mem::take(&mut e.payload)]
                };
                out.push((seq, e, messages));
            }
            Ok::<_, crate::store::StoreError>(out)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if batch.is_empty() {
            self.health.outbox_backlog.store(0, Ordering::Relaxed);
            return Ok(0);
        }
        let last = batch.last().map_or(from, |(seq, _, _)| *seq);
        let mut futures = Vec::with_capacity(batch.len());
        let mut refusals = Refusals::default();
        for (seq, e, messages) in &batch {
            // Built once per entry, and only when it has headers (DLQ
            // records; incident events have none).
            let headers = (!e.headers.is_empty()).then(|| {
                e.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                    h.insert(rdkafka::message::Header {
                        key: k,
                        value: Some(v),
                    })
                })
            });
            for payload in messages {
                let mut rec = FutureRecord::to(&e.topic).key(&e.key).payload(payload);
                if let Some(h) = &headers {
                    rec = rec.headers(h.clone());
                }
                // Enqueue now (send_result), await acks below: one round trip per batch.
                loop {
                    match self.producer.send_result(rec) {
                        Ok(f) => {
                            futures.push((*seq, e.topic.as_str(), payload.len(), f));
                            break;
                        }
                        Err((
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull,
                            ),
                            r,
                        )) => {
                            rec = r;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err((err, _)) => {
                            // Refused before it was queued (too large for
                            // `message.max.bytes`, …): the other entries go on.
                            self.refused(&e.topic, &err);
                            refusals.note(*seq, &err, payload.len());
                            break;
                        }
                    }
                }
            }
        }
        // An entry is deleted once every one of its messages was acked.
        let mut sent = 0u64;
        for (seq, topic, size, f) in futures {
            match f.await {
                Ok(Ok(_)) => {
                    sent += 1;
                    self.metrics
                        .events_published
                        .with_label_values(&[topic])
                        .inc();
                }
                Ok(Err((e, _))) => {
                    self.refused(topic, &e);
                    refusals.note(seq, &e, size);
                }
                Err(_) => refusals.retry(seq, "delivery cancelled".to_string()),
            }
        }
        let Refusals {
            permanent,
            mut failed,
            first: mut first_err,
        } = refusals;
        let mut parked = 0;
        for (seq, e, _) in &batch {
            if let Some(reason) = permanent.get(seq) {
                failed.remove(seq);
                if self.park(*seq, e, reason).await {
                    parked += 1;
                } else {
                    // Still in the outbox: sent again (and parked) later.
                    failed.insert(*seq);
                    first_err.get_or_insert_with(|| reason.clone());
                }
            }
        }
        let delivered: Vec<u64> = batch
            .iter()
            .map(|(seq, _, _)| *seq)
            .filter(|seq| !failed.contains(seq) && !permanent.contains_key(seq))
            .collect();
        let n = delivered.len();
        if n > 0 {
            debug!(entries = n, messages = sent, "outbox entries published");
        }
        self.store.outbox_acked(delivered);
        // Past what was delivered or parked; a failed entry is sent again
        // (and the delivered ones after it too: at least once).
        self.cursor = failed.iter().min().copied().unwrap_or(last + 1);
        self.health
            .events_published
            .fetch_add(sent, Ordering::Relaxed);
        self.update_backlog();
        if let Ok(mut f) = self.health.outbox_failing.lock() {
            match &first_err {
                None => *f = None,
                Some(e) => {
                    let since = f.as_ref().map_or_else(wall_ms, |(since, _)| *since);
                    *f = Some((since, e.clone()));
                }
            }
        }
        match first_err {
            Some(e) => Err(format!(
                "{} of {} not delivered: {e}",
                failed.len(),
                batch.len()
            )),
            None => Ok(n + parked),
        }
    }

    /// Counts a message the broker (or the client) refused.
    fn refused(&self, topic: &str, e: &rdkafka::error::KafkaError) {
        let kind = if is_permanent(e) {
            "permanent"
        } else {
            "retryable"
        };
        self.metrics
            .publish_errors
            .with_label_values(&[topic, kind])
            .inc();
    }

    /// Moves an entry the broker refused for good out of the way (see the
    /// module doc). If the store cannot take it now, the entry stays in the
    /// outbox and is tried again, as a retryable failure would be (false).
    async fn park(&mut self, seq: u64, e: &crate::store::OutboxEntry, reason: &str) -> bool {
        let store = self.store.clone();
        let why = reason.to_string();
        let r = tokio::task::spawn_blocking(move || store.outbox_park(seq, &why)).await;
        match r {
            Ok(Ok(())) => {
                let parked = self.health.outbox_parked.fetch_add(1, Ordering::Relaxed) + 1;
                self.metrics.outbox_parked.set(parked as i64);
                error!(
                    topic = %e.topic,
                    key = %String::from_utf8_lossy(&e.key),
                    sequence = seq,
                    error = reason,
                    parked,
                    "outbox entry refused for good by the broker: parked in the store, later entries go on"
                );
                true
            }
            Ok(Err(err)) => {
                warn!(sequence = seq, error = %err, "parking an outbox entry failed; retrying");
                false
            }
            Err(err) => {
                warn!(sequence = seq, error = %err, "parking an outbox entry failed; retrying");
                false
            }
        }
    }

    /// Entries committed and neither delivered nor parked.
    fn update_backlog(&self) {
        if let Ok(left) = self.store.outbox_len() {
            let pending = self.store.outbox_acked_pending() as u64;
            self.health
                .outbox_backlog
                .store(left.saturating_sub(pending), Ordering::Relaxed);
        }
    }
}

/// The wall clock in ms (for health reporting only).
fn wall_ms() -> i64 {
    crate::kafka::consumer::wall_clock().0
}

/// The entries of one publish round that did not go through: refused for
/// good (parked after the round) or worth another try, and the first cause.
#[derive(Default)]
struct Refusals {
    permanent: std::collections::BTreeMap<u64, String>,
    failed: std::collections::HashSet<u64>,
    first: Option<String>,
}

impl Refusals {
    /// A message of entry `seq`, `size` bytes, refused with `e`.
    fn note(&mut self, seq: u64, e: &rdkafka::error::KafkaError, size: usize) {
        let why = format!("{e} ({size} bytes)");
        if is_permanent(e) {
            self.permanent.entry(seq).or_insert(why);
        } else {
            self.retry(seq, why);
        }
    }

    /// Entry `seq` is sent again on a later round.
    fn retry(&mut self, seq: u64, why: String) {
        self.failed.insert(seq);
        self.first.get_or_insert(why);
    }
}
