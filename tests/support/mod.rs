//! Test support for broker tests, mounted as `brokers`
//! (`#[path = "support/mod.rs"] mod brokers;` in the test binary's root;
//! `support` is taken by the replay helpers of `tests/tests.rs`).
//!
//! - [`tansu::Tansu`]: a real, independent Kafka-protocol broker (Tansu 0.6.0,
//!   sqlite storage) run as a child process on its own port and data directory.
//! - [`mock::MockKafka`]: librdkafka's in-process mock cluster.
//! - Client helpers shared by both (this file): an idempotent producer,
//!   produce/consume helpers that check nothing silently, polling helpers.
//!
//! Read `../shared/TANSU.md` before writing Tansu tests. Rules this module
//! keeps for you: consumers are closed on a helper thread with a 30 s deadline
//! (a hung `rd_kafka_destroy` fails the test instead of hanging CI), no
//! `TopicPartitionList` outlives its consumer, every consumer gets a fresh
//! group id.
//!
//! Blocking vs async: the `*_blocking` functions and everything on `Tansu` /
//! `MockKafka` block the calling thread. The async functions are safe to use
//! while the daemon runs as a task on the test's runtime (consuming runs on
//! tokio's blocking pool). If you call a blocking helper from a
//! `#[tokio::test]` while the daemon runs in-process, use
//! `flavor = "multi_thread"` (or `tokio::task::block_in_place`).

#![allow(dead_code)]

pub mod mock;
pub mod tansu;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Deadline for closing/destroying a librdkafka client (see TANSU.md).
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(30);
/// Timeouts that held in the measurements of TANSU.md.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
pub const REBALANCE_TIMEOUT: Duration = Duration::from_secs(15);
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(30);

/// A name no other test (or test process) uses: `prefix-<pid>-<micros>-<n>`.
/// Use it for topics and group ids.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!("{prefix}-{}-{micros}-{n}", std::process::id())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Polls `cond` every 20 ms until it returns true (-> true) or `timeout`
/// passes (-> false). Blocks the thread.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Async [`wait_until`]: yields to the runtime between polls.
pub async fn wait_until_async(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a runtime-independent future (rdkafka admin and delivery futures) to
/// completion on the current thread, inside or outside a tokio runtime.
/// Do not use it for futures that need tokio timers or IO.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park_timeout(Duration::from_millis(100)),
        }
    }
}

/// Drops `value` (a librdkafka client) on a helper thread and panics if that
/// takes longer than `deadline`: a hung `rd_kafka_destroy` fails the test
/// instead of hanging CI. The hung thread is leaked.
pub fn drop_with_deadline<T: Send + 'static>(what: &str, value: T, deadline: Duration) {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    std::thread::Builder::new()
        .name(format!("close-{what}"))
        .spawn(move || {
            drop(value);
            let _ = tx.send(());
        })
        .expect("spawn close thread");
    if rx.recv_timeout(deadline).is_err() {
        panic!(
            "closing {what} did not finish within {deadline:?} (rd_kafka_destroy hung?); \
             started {:?} ago",
            started.elapsed()
        );
    }
}

/// Base client settings for tests (TANSU.md: "Client settings and traps").
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "correlator-test")
        // Tansu and the mock never auto-create topics usefully: fail loudly.
        .set("allow.auto.create.topics", "false");
    c
}

/// Consumer settings: fresh random `group.id`, short session, manual commits,
/// `fetch.wait.max.ms=100`, `auto.offset.reset=earliest`.
pub fn consumer_config(bootstrap: &str) -> ClientConfig {
    let mut c = client_config(bootstrap);
    c.set("group.id", unique_name("test-group"))
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "2000")
        .set("fetch.wait.max.ms", "100")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    c
}

/// Idempotent producer, `acks=all`, `message.timeout.ms=60000` so it rides
/// out a broker restart. Non-fatal errors such as `AllBrokersDown` while a
/// broker restarts are expected (logged, not fatal).
pub fn producer(bootstrap: &str) -> FutureProducer {
    client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("linger.ms", "5")
        .create()
        .unwrap_or_else(|e| panic!("create producer for {bootstrap}: {e}"))
}

/// One record to produce. Build with [`Msg::new`] and the chained setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Msg {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    /// In order; a `None` value is a null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// CreateTime in ms; `None` lets the client stamp it.
    pub timestamp: Option<i64>,
    /// `None` lets the partitioner pick (by key).
    pub partition: Option<i32>,
}

impl Msg {
    pub fn new(key: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Msg {
        Msg {
            key: Some(key.as_ref().to_vec()),
            payload: Some(payload.as_ref().to_vec()),
            ..Msg::default()
        }
    }
    pub fn header(mut self, key: &str, value: impl AsRef<[u8]>) -> Msg {
        self.headers
            .push((key.to_string(), Some(value.as_ref().to_vec())));
        self
    }
    pub fn null_header(mut self, key: &str) -> Msg {
        self.headers.push((key.to_string(), None));
        self
    }
    pub fn timestamp(mut self, ms: i64) -> Msg {
        self.timestamp = Some(ms);
        self
    }
    pub fn partition(mut self, partition: i32) -> Msg {
        self.partition = Some(partition);
        self
    }

    fn owned_headers(&self) -> Option<OwnedHeaders> {
        if self.headers.is_empty() {
            return None;
        }
        let mut h = OwnedHeaders::new_with_capacity(self.headers.len());
        for (key, value) in &self.headers {
            h = h.insert(Header {
                key,
                value: value.as_deref(),
            });
        }
        Some(h)
    }

    fn record<'a>(&'a self, topic: &'a str) -> FutureRecord<'a, [u8], [u8]> {
        let mut r = FutureRecord::<[u8], [u8]>::to(topic);
        if let Some(k) = &self.key {
            r = r.key(k.as_slice());
        }
        if let Some(p) = &self.payload {
            r = r.payload(p.as_slice());
        }
        if let Some(h) = self.owned_headers() {
            r = r.headers(h);
        }
        if let Some(ts) = self.timestamp {
            r = r.timestamp(ts);
        }
        if let Some(p) = self.partition {
            r = r.partition(p);
        }
        r
    }
}

/// Where a produced record landed: `(partition, offset)`.
pub type Delivered = (i32, i64);

async fn await_delivery(fut: DeliveryFuture, what: &str) -> Delivered {
    match fut.await {
        Ok(Ok(d)) => (d.partition, d.offset),
        Ok(Err((e, m))) => panic!("delivery of {what} failed: {e} (record {m:?})"),
        Err(_) => panic!("delivery of {what} cancelled (producer dropped?)"),
    }
}

/// Produces `msgs` to `topic` with `producer`, pipelined (all in flight at
/// once, waiting when the local queue is full), and returns where each one
/// landed, in input order. Panics on any delivery failure. Needs no runtime:
/// works under tokio or [`block_on`].
pub async fn send_all(producer: &FutureProducer, topic: &str, msgs: &[Msg]) -> Vec<Delivered> {
    let mut pending: std::collections::VecDeque<DeliveryFuture> = Default::default();
    let mut out = Vec::with_capacity(msgs.len());
    for (i, msg) in msgs.iter().enumerate() {
        let mut record = msg.record(topic);
        loop {
            match producer.send_result(record) {
                Ok(fut) => {
                    pending.push_back(fut);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    match pending.pop_front() {
                        Some(f) => out.push(await_delivery(f, "record").await),
                        // Nothing of ours in flight: let librdkafka drain.
                        None => producer.poll(Duration::from_millis(10)),
                    }
                }
                Err((e, _)) => panic!("enqueue record {i} to {topic}: {e}"),
            }
        }
    }
    while let Some(f) = pending.pop_front() {
        out.push(await_delivery(f, "record").await);
    }
    out
}

/// Produces one record with `producer`.
pub async fn send(producer: &FutureProducer, topic: &str, msg: &Msg) -> Delivered {
    send_all(producer, topic, std::slice::from_ref(msg)).await[0]
}

/// Flushes (30 s) and destroys a producer, with [`CLOSE_DEADLINE`].
pub fn close_producer(producer: FutureProducer) {
    producer
        .flush(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("flush producer: {e}"));
    drop_with_deadline("producer", producer, CLOSE_DEADLINE);
}

/// One-shot: new producer, produce `msgs`, flush, close (with deadline).
pub async fn produce_all(bootstrap: &str, topic: &str, msgs: &[Msg]) -> Vec<Delivered> {
    let p = producer(bootstrap);
    let out = send_all(&p, topic, msgs).await;
    close_producer(p);
    out
}

/// One-shot: produce a single record with an explicit timestamp.
pub async fn produce(
    bootstrap: &str,
    topic: &str,
    key: impl AsRef<[u8]>,
    payload: impl AsRef<[u8]>,
    timestamp_ms: i64,
) -> Delivered {
    let msg = Msg::new(key, payload).timestamp(timestamp_ms);
    produce_all(bootstrap, topic, std::slice::from_ref(&msg)).await[0]
}

/// [`produce_all`] for synchronous code (no runtime needed).
pub fn produce_all_blocking(bootstrap: &str, topic: &str, msgs: &[Msg]) -> Vec<Delivered> {
    block_on(produce_all(bootstrap, topic, msgs))
}

/// A consumed record, as plain owned values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Timestamp in ms (CreateTime or LogAppendTime), if any.
    pub timestamp: Option<i64>,
}

impl Record {
    /// First header named `key` (`Some(None)` for a null value).
    pub fn header(&self, key: &str) -> Option<Option<&[u8]>> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
    pub fn header_str(&self, key: &str) -> Option<&str> {
        self.header(key)
            .flatten()
            .map(|v| std::str::from_utf8(v).expect("header is UTF-8"))
    }
    pub fn key_str(&self) -> &str {
        std::str::from_utf8(self.key.as_deref().unwrap_or_default()).expect("key is UTF-8")
    }
    pub fn payload_str(&self) -> &str {
        std::str::from_utf8(self.payload.as_deref().unwrap_or_default()).expect("payload is UTF-8")
    }
}

fn to_record<M: Message>(m: &M) -> Record {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    Record {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: m.timestamp().to_millis(),
    }
}

/// How [`consume`] attaches to the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// `subscribe()` with a fresh consumer group (exercises the group protocol).
    Group,
    /// `assign()` every partition from the beginning: no JoinGroup, no
    /// rebalance. The fast and robust way to read a topic back.
    Assign,
}

/// What [`consume`] returns: every record, sorted by (partition, offset), and
/// the consumer errors seen on the way (non-fatal ones are normal while a
/// broker restarts).
#[derive(Debug, Default)]
pub struct Consumed {
    pub records: Vec<Record>,
    pub errors: Vec<String>,
    pub elapsed: Duration,
}

/// Reads `topic` from the beginning until at least `expected` records arrived
/// AND every partition is read up to the high watermark taken after that, or
/// until `timeout`. So records beyond `expected` (duplicates) are returned
/// too: assert on the count. Does not panic on timeout (returns what it got);
/// panics if closing the consumer exceeds [`CLOSE_DEADLINE`].
pub fn consume_blocking(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
    attach: Attach,
) -> Consumed {
    let started = Instant::now();
    let deadline = started + timeout;
    // librdkafka's assign() needs a group.id too ("Unknown group" without
    // one); a consumer that only assigns never joins the group.
    let consumer: BaseConsumer = consumer_config(bootstrap)
        .create()
        .unwrap_or_else(|e| panic!("create consumer for {bootstrap}: {e}"));
    let mut out = Consumed::default();

    let partitions = loop {
        match partition_count(&consumer, topic) {
            Ok(n) if n > 0 => break n,
            Ok(_) => out
                .errors
                .push(format!("topic {topic} has no partitions yet")),
            Err(e) => out.errors.push(format!("metadata: {e}")),
        }
        if Instant::now() >= deadline {
            drop_with_deadline("consumer", consumer, CLOSE_DEADLINE);
            out.elapsed = started.elapsed();
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match attach {
        Attach::Group => consumer
            .subscribe(&[topic])
            .unwrap_or_else(|e| panic!("subscribe {topic}: {e}")),
        Attach::Assign => {
            let mut tpl = TopicPartitionList::new();
            for p in 0..partitions {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .expect("add partition");
            }
            consumer
                .assign(&tpl)
                .unwrap_or_else(|e| panic!("assign {topic}: {e}"));
            // tpl dropped here, before the consumer (TANSU.md trap).
        }
    }

    // Next offset seen per partition, and the targets once `expected` is reached.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut targets: Option<BTreeMap<i32, i64>> = None;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                out.records.push(to_record(&m));
            }
            Some(Err(e)) => out.errors.push(e.to_string()),
            None => {}
        }
        if out.records.len() >= expected && targets.is_none() {
            let mut t = BTreeMap::new();
            for p in 0..partitions {
                match consumer.fetch_watermarks(topic, p, Duration::from_secs(5)) {
                    Ok((_low, high)) => {
                        t.insert(p, high);
                    }
                    Err(e) => {
                        out.errors.push(format!("watermarks {topic}/{p}: {e}"));
                        break;
                    }
                }
            }
            if t.len() == partitions as usize {
                targets = Some(t);
            }
        }
        if let Some(t) = &targets {
            let done = t
                .iter()
                .all(|(p, high)| *high <= 0 || next.get(p).is_some_and(|n| n >= high));
            if done {
                break;
            }
        }
    }
    drop_with_deadline("consumer", consumer, CLOSE_DEADLINE);
    out.records.sort_by_key(|r| (r.partition, r.offset));
    out.elapsed = started.elapsed();
    out
}

/// Reads `topic` with a fresh consumer group (`subscribe`), see
/// [`consume_blocking`]. Runs on tokio's blocking pool.
pub async fn consume_all(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    consume(bootstrap, topic, expected, timeout, Attach::Group)
        .await
        .records
}

/// Reads `topic` by assigning every partition from the beginning (no group).
pub async fn read_all(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<Record> {
    consume(bootstrap, topic, expected, timeout, Attach::Assign)
        .await
        .records
}

/// Async [`consume_blocking`] (runs on tokio's blocking pool).
pub async fn consume(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
    attach: Attach,
) -> Consumed {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    match tokio::task::spawn_blocking(move || consume_blocking(&b, &t, expected, timeout, attach))
        .await
    {
        Ok(c) => c,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("consume task: {e}"),
    }
}

/// Number of partitions of `topic` as the broker reports it (0 if unknown).
pub fn partition_count<C: Consumer>(client: &C, topic: &str) -> Result<i32, String> {
    let md = client
        .fetch_metadata(Some(topic), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(0);
    };
    if let Some(e) = t.error() {
        return Err(format!("topic {topic}: {:?}", RDKafkaErrorCode::from(e)));
    }
    Ok(t.partitions().len() as i32)
}

/// Waits until metadata shows `topic` with `partitions` partitions, each with
/// a leader. Panics after `timeout`.
pub fn wait_for_topic(bootstrap: &str, topic: &str, partitions: i32, timeout: Duration) {
    let client: BaseConsumer = client_config(bootstrap)
        .create()
        .unwrap_or_else(|e| panic!("create metadata client: {e}"));
    let mut last = String::new();
    let ok = wait_until(timeout, || {
        match client.fetch_metadata(Some(topic), Duration::from_secs(2)) {
            Ok(md) => {
                let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
                    last = "topic missing from metadata".into();
                    return false;
                };
                let with_leader = t.partitions().iter().filter(|p| p.leader() >= 0).count();
                last = format!(
                    "error {:?}, {} partitions, {with_leader} with a leader",
                    t.error(),
                    t.partitions().len()
                );
                t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && with_leader == partitions as usize
            }
            Err(e) => {
                last = e.to_string();
                false
            }
        }
    });
    drop_with_deadline("metadata client", client, CLOSE_DEADLINE);
    assert!(
        ok,
        "topic {topic} did not show {partitions} partitions within {timeout:?}: {last}"
    );
}
