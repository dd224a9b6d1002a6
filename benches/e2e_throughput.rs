//! End-to-end daemon benchmark: throughput against a raw floor
//! measured in the same run, produce→event latency at a steady rate, and the
//! daemon's memory.
//!
//! The daemon runs as a child process (`correlator run`, the binary cargo
//! built next to this bench) against brokers created by this process:
//!
//! 1. Mock cluster (librdkafka's, in this process; the child connects over
//!    TCP). N realistic alert records (default 1,000,000, the generator of
//!    `replay_throughput`) are produced first, into enough partitions that
//!    each stays well under the mock's silent per-partition retention
//!    (~5 MiB / 100k messages); every partition's low watermark must still be
//!    0 and its high watermark the number delivered to it, so a silent loss
//!    fails the bench. Then, on the same data:
//!    - raw floor: a plain rdkafka `BaseConsumer` (the daemon's own consumer
//!      settings) assigned to every partition from the beginning, reading and
//!      `serde_json::from_slice::<Value>`-parsing each payload, checking
//!      offsets are contiguous, timed until all N are read. Run before and
//!      after the daemon; the ratio uses the faster of the two.
//!    - daemon: spawn with an empty store (`assignment = "manual"`), timed
//!      from spawn until `/readyz` reports `records_committed == N` (polled
//!      every 20 ms); it must then stay exactly N with 0 rejected.
//! 2. Latency (mock): a fresh mock cluster, and a fresh daemon and topics
//!    per mix (after a `sync`, so writeback of the earlier phases' stores
//!    stays out of it); records produced at a steady rate (default 10,000/s for 10 s). Two mixes (env
//!    `E2E_LATENCY_NEW_EVERY`, default "100,1"): 1 record in 100 opens a new
//!    incident (unique `service` label, the timed probes) while the rest
//!    re-send 2,000 firing alerts, as most of a real stream is; then the worst
//!    case, every record opening an incident. A consumer of the incidents
//!    topic takes, per `correlator.incident.opened` event of a probe, receive
//!    wall time minus the wall time the record was handed to the producer
//!    (also: the event's CreateTime, set by the daemon's publisher, minus the
//!    record timestamp), overall and per second of sending. The producer
//!    lingers 5 ms (`E2E_LATENCY_LINGER_MS`): the mock broker finds a fetch
//!    offset by walking the partition's message sets from the oldest, so
//!    with 1 ms (~8 message sets per ms) its thread's CPU grows second by
//!    second until it saturates a core and every stage waits for it (p99
//!    per second measured 17 ms rising to 66 ms in 10 s with the daemon's
//!    own stages flat); the report prints that thread's CPU.
//! 3. Tansu (a real broker, `tests/support/tansu.rs`): step 1 with fewer
//!    records (default 100,000). Skipped with a note if no tansu binary is
//!    found (`CORRELATOR_TANSU_BIN`, or the cache of
//!    `scripts/install-tansu.sh`); this bench never builds it.
//!
//! RSS (VmRSS, VmHWM) and CPU time of the child come from /proc/<pid>.
//!
//! Run: `cargo bench --bench e2e_throughput` (or `scripts/bench-e2e.sh`).
//! Without `--bench` (`cargo test --benches`) the sizes are tiny.
//! Environment: `E2E_RECORDS` (mock records), `E2E_PARTITIONS` (mock alert
//! topic partitions; default: the fewest of 8…400 that keep each under
//! ~4 MiB), `E2E_TANSU_RECORDS`, `E2E_LATENCY_RATE` (records/s),
//! `E2E_LATENCY_SECS` (0 skips the latency phase), `E2E_LATENCY_NEW_EVERY`
//! (the mixes, e.g. "100,1"), `E2E_LATENCY_LINGER_MS` (the latency
//! producer's `linger.ms`, default 5), `E2E_TANSU=0` (skip
//! Tansu), `CORRELATOR_BIN` (daemon binary; default: the one cargo built for
//! this bench, `CARGO_BIN_EXE_correlator`), `E2E_KEEP=1` (keep the temp dirs
//! with the daemon logs and stores), `E2E_KAFKA_EXTRA` (TOML lines added to
//! the daemons' `[kafka]` table, e.g. `batch_max = 25000`, to try a setting).
//!
//! Storm mode (`E2E_MODE=storm`, `scripts/bench-storm.sh`) runs only this:
//! a fresh mock cluster and daemon take `E2E_STORM_ALERTS` new alerts
//! (default 100,000) at a steady rate over `E2E_STORM_SECS` (default 10)
//! across 10 services, each its own incident, 3 in 10 per service sharing
//! one template (one problem per service collecting them); the report gives
//! the store's size per alert, peak RSS per active alert, the daemon's
//! record → commit p99 and the time until every record was committed
//! against the input time.
//!
//! Besides the table, the report prints what explains the numbers: the
//! daemon's batches and store commit times (its /metrics histograms), CPU
//! seconds per daemon thread (/proc/<pid>/task), and the load average.

// Until Cargo.toml registers this bench with `harness = false`, cargo
// auto-discovers it as a libtest harness bench, where `main` is unused.
#![cfg_attr(test, allow(dead_code, unused_imports))]
// A benchmark measures real time (clippy.toml bans the wall clock only for
// the crate's own code).
#![allow(clippy::disallowed_methods)]

#[path = "../tests/support/mod.rs"]
mod brokers;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use correlator::alert::Timestamp;

use brokers::{drop_with_deadline, unique_name, CLOSE_DEADLINE};

#[path = "support/records.rs"]
mod records;
use records::{labels_of, obj, GenRecord, Generator, RULES, SERVICES};

/// Stop waiting for a daemon or a consumer after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(900);

/// A record that opens a new incident: Alertmanager API v2, unique service.
fn latency_record(k: u64, prefix: &str, ts: i64) -> Vec<u8> {
    let mut labels = labels_of(k);
    for (name, v) in labels.iter_mut() {
        match name.as_str() {
            "alertname" => *v = "HighLatency".into(),
            "service" => *v = format!("{prefix}-{k}"),
            "env" => *v = "prod".into(),
            "severity" => *v = "critical".into(),
            _ => {}
        }
    }
    let summary = format!("p99 latency of {prefix}-{k} is 870ms above threshold");
    api_v2_body(&labels, &summary, ts, ts + 240_000)
}

/// An Alertmanager API v2 body with one alert.
fn api_v2_body(labels: &[(String, String)], summary: &str, starts: i64, ends: i64) -> Vec<u8> {
    let body = serde_json::json!([{
        "labels": obj(labels),
        "annotations": {"summary": summary},
        "startsAt": Timestamp(starts).to_rfc3339(),
        "endsAt": Timestamp(ends).to_rfc3339(),
        "generatorURL": "http://prometheus:9090/graph"
    }]);
    serde_json::to_vec(&body).expect("serialize record")
}

/// Alerts of the latency phase's steady background: re-sent over and over
/// (deduplicated), as most of a real alert stream is.
const STEADY_POOL: u64 = 2_000;

/// A re-send of steady alert `j` (one of [`STEADY_POOL`], over 100
/// services), first fired at `start`.
fn steady_record(j: u64, start: i64, ts: i64) -> Vec<u8> {
    let mut labels = labels_of(j);
    for (name, v) in labels.iter_mut() {
        if name == "service" {
            *v = format!("steady-{}", j % 100);
        }
    }
    api_v2_body(&labels, &format!("steady alert {j}"), start, ts + 240_000)
}

// ---------------------------------------------------------------------------
// Small helpers.

fn wall_ms() -> i64 {
    wall_us() / 1000
}

fn wall_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The daemon binary: `CORRELATOR_BIN`, else the one cargo built for this
/// bench (`CARGO_BIN_EXE_correlator`, set by cargo for benches), else
/// `target/<profile>/correlator` next to this executable's `deps/` dir.
fn correlator_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CORRELATOR_BIN") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "CORRELATOR_BIN={} is not a file", p.display());
        return p;
    }
    if let Some(p) = option_env!("CARGO_BIN_EXE_correlator").map(PathBuf::from) {
        if p.is_file() {
            return p;
        }
    }
    let exe = std::env::current_exe().expect("current_exe");
    let guess = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("correlator"))
        .expect("bench executable has no grandparent directory");
    assert!(
        guess.is_file(),
        "no correlator binary at {}: run `cargo build --release --bin correlator` or set CORRELATOR_BIN",
        guess.display()
    );
    guess
}

/// The tansu binary without building it: `CORRELATOR_TANSU_BIN`, else the
/// cache `scripts/install-tansu.sh` fills.
fn find_tansu() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CORRELATOR_TANSU_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let cache = std::env::var_os("CORRELATOR_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/correlator")))?;
    let p = cache.join("tansu-0.6.0-libsql/bin/tansu");
    p.is_file().then_some(p)
}

/// Percentile (nearest rank) of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

// ---------------------------------------------------------------------------
// Producing with a check on every delivery.

#[derive(Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut f) = self.first_error.lock() {
                    f.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

fn bulk_producer(bootstrap: &str) -> BaseProducer<Deliveries> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "300000")
        .create_with_context(Deliveries::default())
        .unwrap_or_else(|e| panic!("create producer for {bootstrap}: {e}"))
}

/// Enqueues one record, waiting while the local queue is full.
fn send_record(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    key: &[u8],
    payload: &[u8],
    partition: i32,
    ts: i64,
) {
    let mut rec = BaseRecord::to(topic)
        .key(key)
        .payload(payload)
        .partition(partition)
        .timestamp(ts);
    loop {
        match producer.send(rec) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                producer.poll(Duration::from_millis(5));
            }
            Err((e, _)) => panic!("enqueue to {topic}/{partition}: {e}"),
        }
    }
}

fn finish_producer(producer: BaseProducer<Deliveries>, expected: u64) {
    producer
        .flush(Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("flush producer: {e}"));
    let ctx = producer.context();
    let (ok, failed) = (
        ctx.ok.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    assert!(
        failed == 0 && ok == expected,
        "produced {ok} of {expected}, {failed} failed: {:?}",
        ctx.first_error.lock().ok().and_then(|f| f.clone())
    );
    drop_with_deadline("producer", producer, CLOSE_DEADLINE);
}

/// What was produced to a topic: records and bytes per partition.
struct Prefilled {
    topic: String,
    per_partition: Vec<i64>,
    records: usize,
    bytes: u64,
    secs: f64,
}

/// Partitions for `n` generated records so that each partition stays under
/// `max_bytes` (and 80k records): services are spread evenly as
/// `svc % partitions`, so only divisors of 400 keep the load even.
fn partitions_for(n: usize, max_bytes: f64) -> i32 {
    // Sample the generator for the mean record size and the busiest
    // service's share of records.
    let sample = n.clamp(1, 50_000);
    let mut g = Generator::new(0);
    let mut bytes = 0usize;
    let mut per_svc = vec![0usize; SERVICES as usize];
    for _ in 0..sample {
        let r = g.next_record();
        bytes += r.body.len();
        per_svc[r.svc as usize] += 1;
    }
    let mean = bytes as f64 / sample as f64;
    for p in [8u64, 16, 25, 50, 100, 200, 400] {
        let mut load = vec![0usize; p as usize];
        for (s, c) in per_svc.iter().enumerate() {
            load[s % p as usize] += c;
        }
        let busiest = *load.iter().max().unwrap_or(&0) as f64 / sample as f64;
        // 10% headroom for the sample's error; ~70 B of record framing.
        let est_records = busiest * n as f64 * 1.1;
        if est_records * (mean + 70.0) <= max_bytes && est_records <= 80_000.0 {
            return p as i32;
        }
    }
    400
}

/// Produces `n` generated records to `topic` (partition = service % P),
/// timestamps ending about now, and checks every partition's watermarks.
fn prefill(bootstrap: &str, topic: &str, partitions: i32, n: usize) -> Prefilled {
    let started = Instant::now();
    let producer = bulk_producer(bootstrap);
    // Event time: 1 ms apart, the last one a second before now, so the
    // engine clock (record timestamp, capped at the wall clock) is the
    // generator's clock.
    let mut g = Generator::new(wall_ms() - n as i64 - 1000);
    let mut per_partition = vec![0i64; partitions as usize];
    let mut bytes = 0u64;
    for k in 0..n {
        let r = g.next_record();
        let p = (r.svc % partitions as u64) as i32;
        let key = format!("svc-{}", r.svc);
        send_record(&producer, topic, key.as_bytes(), &r.body, p, r.ts);
        per_partition[p as usize] += 1;
        bytes += r.body.len() as u64;
        if k % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    finish_producer(producer, n as u64);
    let secs = started.elapsed().as_secs_f64();
    check_watermarks(bootstrap, topic, &per_partition);
    Prefilled {
        topic: topic.to_string(),
        per_partition,
        records: n,
        bytes,
        secs,
    }
}

/// Every partition must still start at 0 and end at what was delivered to
/// it: the mock cluster deletes old records silently.
fn check_watermarks(bootstrap: &str, topic: &str, per_partition: &[i64]) {
    let c: BaseConsumer = brokers::client_config(bootstrap)
        .create()
        .expect("metadata client");
    for (p, n) in per_partition.iter().enumerate() {
        let (low, high) = c
            .fetch_watermarks(topic, p as i32, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("watermarks {topic}/{p}: {e}"));
        assert!(
            low == 0 && high == *n,
            "{topic}/{p}: watermarks {low}..{high}, expected 0..{n}: the broker \
             dropped records (mock retention is ~5 MiB / 100k per partition): \
             lower E2E_RECORDS"
        );
    }
    drop_with_deadline("metadata client", c, CLOSE_DEADLINE);
}

// ---------------------------------------------------------------------------
// The raw floor.

struct RawRun {
    secs: f64,
    records: usize,
    /// CPU seconds of this process meanwhile: the consumer and, on the
    /// mock cluster, the broker.
    cpu_secs: f64,
    /// CPU seconds of the mock cluster's thread meanwhile (0 on Tansu).
    mock_cpu_secs: f64,
}

impl RawRun {
    /// Prints the run as `[broker] label: …` and returns it.
    fn reported(self, broker: &str, label: &str) -> RawRun {
        eprintln!(
            "[{broker}] {label}: {} in {:.2} s = {:.0}/s ({:.1} CPU s with the broker; mock cluster thread {:.2})",
            self.records,
            self.secs,
            self.records as f64 / self.secs,
            self.cpu_secs,
            self.mock_cpu_secs
        );
        self
    }
}

/// A plain consumer (the daemon's client settings) assigned to every
/// partition from the beginning; parses each payload into a `Value`.
fn raw_floor(bootstrap: &str, data: &Prefilled) -> RawRun {
    let started = Instant::now();
    let cpu0 = BenchCpu::now();
    let kcfg = correlator::config::KafkaConfig {
        brokers: bootstrap.to_string(),
        group_id: unique_name("e2e-raw"),
        ..Default::default()
    };
    let consumer: BaseConsumer = correlator::kafka::consumer_config(&kcfg)
        .create()
        .expect("create raw consumer");
    // As the daemon does before assigning: connects and learns the leaders.
    consumer
        .fetch_metadata(Some(&data.topic), Duration::from_secs(10))
        .expect("raw consumer metadata");
    {
        let mut tpl = TopicPartitionList::new();
        for p in 0..data.per_partition.len() {
            tpl.add_partition_offset(&data.topic, p as i32, Offset::Beginning)
                .expect("add partition");
        }
        consumer.assign(&tpl).expect("assign");
    }
    let mut next = vec![0i64; data.per_partition.len()];
    let mut count = 0usize;
    let deadline = started + PHASE_TIMEOUT;
    while count < data.records {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let p = m.partition() as usize;
                assert_eq!(
                    m.offset(),
                    next[p],
                    "raw consumer: {}/{p} not contiguous",
                    data.topic
                );
                next[p] = m.offset() + 1;
                let v: serde_json::Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("payload JSON");
                std::hint::black_box(&v);
                count += 1;
            }
            // The daemon's settings may enable partition EOF events.
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => eprintln!("raw consumer error: {e}"),
            None => {}
        }
        assert!(
            Instant::now() < deadline,
            "raw consumer read {count} of {} in {PHASE_TIMEOUT:?}",
            data.records
        );
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        next, data.per_partition,
        "raw consumer: offsets per partition"
    );
    let spent = cpu0.since();
    let (cpu_secs, mock_cpu_secs) = (spent.all, spent.mock);
    drop_with_deadline("raw consumer", consumer, CLOSE_DEADLINE);
    RawRun {
        secs,
        records: count,
        cpu_secs,
        mock_cpu_secs,
    }
}

// ---------------------------------------------------------------------------
// The daemon as a child process.

struct DaemonProc {
    child: Option<Child>,
    pid: u32,
    http: SocketAddr,
    log: PathBuf,
}

#[derive(Debug, Clone, Copy, Default)]
struct Ready {
    ready: bool,
    records_consumed: u64,
    /// Records whose batch is committed to the store.
    records_committed: u64,
    records_rejected: u64,
    events_published: u64,
    outbox_backlog: u64,
}

/// From the daemon's histograms: batches of records and store commits.
#[derive(Debug, Clone, Default)]
struct BatchStats {
    /// Records per batch: count = batches, sum = records.
    size: Histogram,
    /// Store commit durations: count = commits, sum = seconds.
    commit: Histogram,
    /// Record timestamp → its batch committed (the daemon's own histogram).
    processing: Histogram,
}

/// A Prometheus histogram as scraped: sum, count and buckets.
#[derive(Debug, Clone, Default)]
struct Histogram {
    sum: f64,
    count: f64,
    /// (upper bound in seconds, cumulative count), ascending.
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// `name`'s histogram in a /metrics body (None if its sum or count is
    /// missing).
    fn scrape(body: &str, name: &str) -> Option<Histogram> {
        let value = |suffix: &str| {
            let series = format!("{name}_{suffix}");
            body.lines()
                .find(|l| l.split_whitespace().next() == Some(series.as_str()))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        };
        let bucket = format!("{name}_bucket{{le=\"");
        Some(Histogram {
            sum: value("sum")?,
            count: value("count")?,
            buckets: body
                .lines()
                .filter_map(|l| {
                    let (le, rest) = l.strip_prefix(bucket.as_str())?.split_once('"')?;
                    let n = rest.split_whitespace().last()?.parse::<f64>().ok()?;
                    Some((le.parse::<f64>().unwrap_or(f64::INFINITY), n))
                })
                .collect(),
        })
    }

    /// What was observed after `before` (an earlier scrape of the same
    /// histogram).
    fn since(&self, before: &Histogram) -> Option<Histogram> {
        if before.buckets.len() != self.buckets.len() {
            return None;
        }
        Some(Histogram {
            sum: self.sum - before.sum,
            count: self.count - before.count,
            buckets: self
                .buckets
                .iter()
                .zip(&before.buckets)
                .map(|((le, n), (_, m))| (*le, n - m))
                .collect(),
        })
    }

    fn average_ms(&self) -> f64 {
        1000.0 * self.sum / self.count.max(1.0)
    }

    /// Upper bound (ms) of the bucket holding quantile `q`.
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let want = q * self.count;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= want && *n > 0.0)
            .map(|(le, _)| le * 1000.0)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss_kb: u64,
    hwm_kb: u64,
}

impl DaemonProc {
    fn spawn(bin: &Path, dir: &Path, bootstrap: &str, topics: &Topics) -> DaemonProc {
        std::fs::create_dir_all(dir).expect("create daemon dir");
        let port = free_port();
        let config = dir.join("correlator.toml");
        let toml = format!(
            r#"[kafka]
brokers = "{bootstrap}"
group_id = "{group}"
alert_topics = ["{alerts}"]
incident_topic = "{incidents}"
dlq_topic = "{dlq}"
partition_key = "service"
assignment = "manual"
{extra}
[store]
path = "{store}"
[http]
listen = "127.0.0.1:{port}"
{RULES}"#,
            group = unique_name("e2e-daemon"),
            extra = std::env::var("E2E_KAFKA_EXTRA").unwrap_or_default(),
            alerts = topics.alerts,
            incidents = topics.incidents,
            dlq = topics.dlq,
            store = dir.join("store.redb").display(),
        );
        std::fs::write(&config, toml).expect("write daemon config");
        let log = dir.join("daemon.log");
        let out = std::fs::File::create(&log).expect("create daemon log");
        let err = out.try_clone().expect("clone log handle");
        // Its own process group: stopping it stops whatever it started too
        // (a profiler wrapper given as CORRELATOR_BIN runs the daemon as its
        // child, which would otherwise outlive the bench and skew later runs).
        let child = Command::new(bin)
            .process_group(0)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--log-format")
            .arg("json")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        DaemonProc {
            pid: child.id(),
            child: Some(child),
            http: ([127, 0, 0, 1], port).into(),
            log,
        }
    }

    fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Panics (with the log tail) if the daemon exited.
    fn assert_alive(&mut self) {
        if let Some(c) = &mut self.child {
            if let Ok(Some(status)) = c.try_wait() {
                panic!(
                    "daemon exited: {status}\n--- {}:\n{}",
                    self.log.display(),
                    self.log_tail()
                );
            }
        }
    }

    /// GET `path`: the body of the answer; None while the server is not up.
    fn get(&self, path: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.http, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).ok()?;
        let text = String::from_utf8_lossy(&buf);
        Some(text.split_once("\r\n\r\n")?.1.to_string())
    }

    /// GET /readyz.
    fn readyz(&self) -> Option<Ready> {
        let body = self.get("/readyz")?;
        let v: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
        let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        Some(Ready {
            ready: v.get("ready").and_then(serde_json::Value::as_bool) == Some(true),
            records_consumed: n("records_consumed"),
            records_committed: n("records_committed"),
            records_rejected: n("records_rejected"),
            events_published: n("events_published"),
            outbox_backlog: n("outbox_backlog"),
        })
    }

    /// Batch statistics from /metrics: (batches, records, commit seconds).
    fn batch_stats(&self) -> Option<BatchStats> {
        let body = self.get("/metrics")?;
        Some(BatchStats {
            size: Histogram::scrape(&body, "correlator_batch_size_records")?,
            commit: Histogram::scrape(&body, "correlator_store_commit_duration_seconds")?,
            processing: Histogram::scrape(&body, "correlator_processing_latency_seconds")?,
        })
    }

    fn mem(&self) -> Mem {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let kb = |key: &str| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Mem {
            rss_kb: kb("VmRSS:"),
            hwm_kb: kb("VmHWM:"),
        }
    }

    /// User + system CPU seconds so far.
    fn cpu_secs(&self) -> f64 {
        proc_cpu_secs(&self.pid.to_string())
    }

    /// CPU seconds per thread name (threads of one name summed), largest first.
    fn thread_cpu(&self) -> Vec<(String, f64)> {
        threads_cpu(&self.pid.to_string())
    }

    /// Waits until `/readyz` answers ready.
    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_alive();
            if self.readyz().is_some_and(|r| r.ready) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready in {timeout:?}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then SIGKILL after 40 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal_group(self.pid, "-TERM");
        let deadline = Instant::now() + Duration::from_secs(40);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(child.try_wait(), Ok(None)) {
            eprintln!("daemon did not stop on SIGTERM in 40 s: SIGKILL");
        }
        // Whatever is left of the group (a wrapper's child).
        signal_group(self.pid, "-KILL");
        let _ = child.wait();
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal_group(self.pid, "-KILL");
            let _ = c.wait();
        }
    }
}

/// Sends `signal` (e.g. "-TERM") to the process group `pgid`.
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(signal)
        .arg("--")
        .arg(format!("-{pgid}"))
        .stderr(Stdio::null())
        .status();
}

struct Topics {
    alerts: String,
    incidents: String,
    dlq: String,
}

impl Topics {
    fn new(tag: &str) -> Topics {
        Topics {
            alerts: format!("{tag}-alerts"),
            incidents: format!("{tag}-incidents"),
            dlq: format!("{tag}-dlq"),
        }
    }
}

struct DaemonRun {
    secs: f64,
    first_record_secs: f64,
    records: u64,
    events_at_done: u64,
    backlog_at_done: u64,
    drained_secs: Option<f64>,
    events_drained: u64,
    cpu_secs: f64,
    /// CPU seconds of this process meanwhile (the mock cluster's threads).
    bench_cpu_secs: f64,
    /// CPU seconds of the mock cluster's thread meanwhile (0 on Tansu).
    mock_cpu_secs: f64,
    batches: BatchStats,
    threads: Vec<(String, f64)>,
    mem: Mem,
}

/// Writes back what earlier phases left dirty (a throughput run leaves a
/// store of a GB or more), so the kernel's writeback does not stall the
/// fsyncs of the next phase's daemon and show up in its latency.
fn quiet_disk() {
    if let Err(e) = std::process::Command::new("sync").status() {
        eprintln!("sync: {e} (latency may include writeback of earlier phases)");
    }
}

/// CPU seconds (user + system) of process `pid` ("self": this one).
fn proc_cpu_secs(pid: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_cpu(&s).map_or(0.0, |(_, secs)| secs)
}

/// (command name, CPU seconds) of a `/proc/…/stat` line.
fn stat_cpu(stat: &str) -> Option<(&str, f64)> {
    let (open, (_, rest)) = (stat.find('(')?, stat.rsplit_once(')')?);
    let name = &stat[open + 1..stat.len() - rest.len() - 1];
    // After the command: state is field 3; utime, stime are 14, 15.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((name, (ticks(14) + ticks(15)) as f64 / 100.0))
}

/// CPU seconds per thread name of process `pid` (\"self\" for this one;
/// threads of one name summed), largest first.
fn threads_cpu(pid: &str) -> Vec<(String, f64)> {
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let Some((name, secs)) = stat_cpu(&stat) else {
            continue;
        };
        // librdkafka names broker threads after the broker: group them.
        let name = match name.split_once("127.0.0.1") {
            Some((head, _)) => format!("{head}*"),
            None => name.to_string(),
        };
        *by_name.entry(name).or_default() += secs;
    }
    let mut v: Vec<(String, f64)> = by_name.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// Spawns a daemon with an empty store on the prefilled topic and times it
/// from spawn until `/readyz` reports every record consumed.
fn daemon_throughput(
    bin: &Path,
    dir: &Path,
    bootstrap: &str,
    topics: &Topics,
    data: &Prefilled,
) -> DaemonRun {
    let n = data.records as u64;
    let started = Instant::now();
    let bench_cpu0 = BenchCpu::now();
    let mut d = DaemonProc::spawn(bin, dir, bootstrap, topics);
    let deadline = started + PHASE_TIMEOUT;
    let mut first = None;
    let mut peak_rss = 0;
    let mut last_print = Instant::now();
    let (done, at_done) = loop {
        d.assert_alive();
        let r = d.readyz();
        peak_rss = peak_rss.max(d.mem().rss_kb);
        if let Some(r) = r {
            if r.records_consumed > 0 && first.is_none() {
                first = Some(started.elapsed().as_secs_f64());
            }
            if r.records_committed >= n {
                break (started.elapsed().as_secs_f64(), r);
            }
            if last_print.elapsed() > Duration::from_secs(5) {
                last_print = Instant::now();
                eprintln!(
                    "  daemon: {} of {n} committed after {:.1} s",
                    r.records_committed,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not commit {n} records in {PHASE_TIMEOUT:?}: {r:?}\n{}",
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let cpu_secs = d.cpu_secs();
    let spent = bench_cpu0.since();
    let (bench_cpu_secs, mock_cpu_secs) = (spent.all, spent.mock);
    let batches = d.batch_stats().unwrap_or_default();
    let threads = d.thread_cpu();
    // The outbox: drained once the publisher reports an empty backlog after
    // having published since `done` (its gauge is only refreshed when it
    // publishes), or after 1 s with nothing to publish. Up to 120 s.
    let mut drained = None;
    let mut events_drained = at_done.events_published;
    let drain_deadline = Instant::now() + Duration::from_secs(120);
    let mut last = at_done;
    while Instant::now() < drain_deadline {
        d.assert_alive();
        if let Some(r) = d.readyz() {
            last = r;
            peak_rss = peak_rss.max(d.mem().rss_kb);
            let since_done = started.elapsed().as_secs_f64() - done;
            let published_since = r.events_published > at_done.events_published;
            if r.outbox_backlog == 0 && (published_since || since_done > 1.0) {
                drained = Some(started.elapsed().as_secs_f64());
                events_drained = r.events_published;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        last.records_consumed, n,
        "daemon consumed a different number of records than produced"
    );
    assert_eq!(
        last.records_rejected, 0,
        "generated records must all decode"
    );
    let mut mem = d.mem();
    mem.rss_kb = mem.rss_kb.max(1);
    let hwm = mem.hwm_kb.max(peak_rss);
    d.stop();
    DaemonRun {
        secs: done,
        first_record_secs: first.unwrap_or(done),
        records: n,
        events_at_done: at_done.events_published,
        backlog_at_done: at_done.outbox_backlog,
        drained_secs: drained,
        events_drained,
        cpu_secs,
        bench_cpu_secs,
        mock_cpu_secs,
        batches,
        threads,
        mem: Mem {
            rss_kb: mem.rss_kb,
            hwm_kb: hwm,
        },
    }
}

// ---------------------------------------------------------------------------
// Throughput on one broker: prefill, raw, daemon, raw again.

struct Throughput {
    broker: &'static str,
    partitions: i32,
    prefill: Prefilled,
    raw: Vec<RawRun>,
    daemon: DaemonRun,
}

impl Throughput {
    fn best_raw(&self) -> &RawRun {
        self.raw
            .iter()
            .min_by(|a, b| a.secs.total_cmp(&b.secs))
            .expect("a raw run")
    }
}

/// `create_topic(name, partitions)` for the broker at hand.
fn throughput(
    broker: &'static str,
    bootstrap: &str,
    create_topic: &dyn Fn(&str, i32),
    partitions: i32,
    n: usize,
    bin: &Path,
    dir: &Path,
) -> Throughput {
    let topics = Topics::new(&unique_name(&format!("{broker}-tp")));
    create_topic(&topics.alerts, partitions);
    create_topic(&topics.incidents, 8);
    create_topic(&topics.dlq, 1);
    eprintln!("[{broker}] producing {n} records to {partitions} partitions …");
    let prefill = prefill(bootstrap, &topics.alerts, partitions, n);
    let max = prefill.per_partition.iter().max().copied().unwrap_or(0);
    eprintln!(
        "[{broker}] produced {n} records, {:.0} MB ({} B/record, busiest partition {max} records) in {:.1} s; watermarks check out",
        prefill.bytes as f64 / 1e6,
        prefill.bytes / n.max(1) as u64,
        prefill.secs
    );
    let mut raw = Vec::new();
    raw.push(raw_floor(bootstrap, &prefill).reported(broker, "raw floor"));
    let daemon = daemon_throughput(
        bin,
        &dir.join(format!("{broker}-throughput")),
        bootstrap,
        &topics,
        &prefill,
    );
    eprintln!(
        "[{broker}] daemon: {} in {:.2} s = {:.0}/s (first record at {:.2} s; {:.1} CPU s)",
        daemon.records,
        daemon.secs,
        daemon.records as f64 / daemon.secs,
        daemon.first_record_secs,
        daemon.cpu_secs
    );
    raw.push(raw_floor(bootstrap, &prefill).reported(broker, "raw floor again"));
    Throughput {
        broker,
        partitions,
        prefill,
        raw,
        daemon,
    }
}

// ---------------------------------------------------------------------------
// Latency at a steady rate.

struct Latency {
    rate: usize,
    secs: f64,
    /// One record in `new_every` opens an incident (and is timed).
    new_every: usize,
    sent: usize,
    /// Records that open an incident: the ones timed.
    probes: usize,
    /// Receive wall time − handed-to-producer wall time, µs, sorted.
    e2e_us: Vec<i64>,
    /// The bench producer's `linger.ms`.
    linger_ms: u64,
    /// p99 of `e2e_us` (ms) per second of sending: flat, or growing as the
    /// broker slows down.
    p99_by_second: Vec<f64>,
    /// CPU cores of the mock cluster's thread, and of this whole process
    /// (mock cluster, producer, incidents consumer), while producing.
    mock_cores: f64,
    bench_cores: f64,
    /// Event CreateTime (daemon publisher) − record timestamp, ms, sorted.
    publish_ms: Vec<i64>,
    achieved_rate: f64,
    mismatched_opened_at: usize,
    /// Largest opened_at − record timestamp, ms.
    opened_at_max_dev: i64,
    cpu_cores: f64,
    /// CPU cores per thread name while producing.
    threads: Vec<(String, f64)>,
    batches: BatchStats,
    /// Record timestamp → batch committed at the steady rate alone (the
    /// warm-up's observations subtracted).
    steady_processing: Option<Histogram>,
    mem_start: Mem,
    mem_end: Mem,
}

/// CPU seconds of this process's mock cluster thread.
fn mock_thread_cpu() -> f64 {
    threads_cpu("self")
        .iter()
        .filter(|(n, _)| n == "rdk:mock")
        .map(|t| t.1)
        .sum()
}

/// CPU seconds of this process (mock cluster, bench clients) and of its
/// mock cluster thread: read at a phase's start, then [`BenchCpu::since`].
#[derive(Clone, Copy)]
struct BenchCpu {
    all: f64,
    mock: f64,
}

impl BenchCpu {
    fn now() -> BenchCpu {
        BenchCpu {
            all: proc_cpu_secs("self"),
            mock: mock_thread_cpu(),
        }
    }

    /// What was spent since this reading.
    fn since(self) -> BenchCpu {
        let now = BenchCpu::now();
        BenchCpu {
            all: now.all - self.all,
            mock: now.mock - self.mock,
        }
    }
}

/// One latency phase's load: `rate` records/s for `secs`, one in
/// `new_every` opening an incident, the producer lingering `linger_ms`.
#[derive(Clone, Copy)]
struct LatencyRun {
    rate: usize,
    secs: f64,
    new_every: usize,
    linger_ms: u64,
}

/// p99 (ms) of each whole second of `(sent µs, latency µs)` samples,
/// counted from the first send.
fn per_second_p99(timed: &[(i64, i64)]) -> Vec<f64> {
    let Some(first) = timed.iter().map(|t| t.0).min() else {
        return Vec::new();
    };
    let mut by_second: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (sent, us) in timed {
        by_second
            .entry((sent - first) / 1_000_000)
            .or_default()
            .push(*us);
    }
    by_second
        .into_values()
        .map(|mut v| {
            v.sort_unstable();
            percentile(&v, 0.99) as f64 / 1000.0
        })
        .collect()
}

/// `new_every`: record k opens a new incident (a probe, timed) when
/// `k % new_every == 0`; the others re-send [`STEADY_POOL`] firing alerts.
fn latency(
    bootstrap: &str,
    create_topic: &dyn Fn(&str, i32),
    run: LatencyRun,
    bin: &Path,
    dir: &Path,
) -> Latency {
    let LatencyRun {
        rate,
        secs,
        new_every,
        linger_ms,
    } = run;
    const PARTITIONS: i32 = 16;
    const WARMUP: usize = 200;
    let topics = Topics::new(&unique_name("mock-lat"));
    create_topic(&topics.alerts, PARTITIONS);
    create_topic(&topics.incidents, PARTITIONS);
    create_topic(&topics.dlq, 1);
    let total = (rate as f64 * secs).round() as usize;
    let new_every = new_every.max(1);
    let probes = total.div_ceil(new_every);
    let steady_start = wall_ms();
    let mut d = DaemonProc::spawn(bin, dir, bootstrap, &topics);
    d.wait_ready(Duration::from_secs(60));

    let producer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", linger_ms.to_string())
        .set("message.timeout.ms", "60000")
        .create_with_context::<_, BaseProducer<Deliveries>>(Deliveries::default())
        .expect("latency producer");
    // Record `name-n` goes to partition n % PARTITIONS.
    let send = |name: &str, n: u64, body: &[u8], ts: i64| {
        let key = format!("{name}-{n}");
        let partition = (n % PARTITIONS as u64) as i32;
        send_record(
            &producer,
            &topics.alerts,
            key.as_bytes(),
            body,
            partition,
            ts,
        );
    };

    // Warm-up: records that must come out as events before timing starts.
    for k in 0..WARMUP as u64 {
        let ts = wall_ms();
        send("warm", k, &latency_record(k, "warm", ts), ts);
    }
    if new_every > 1 {
        for j in 0..STEADY_POOL {
            let ts = wall_ms();
            send("steady", j, &steady_record(j, steady_start, ts), ts);
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("flush warm-up");

    // The incidents consumer, on its own thread.
    let sent_us: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let sent_ts: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let warm_seen = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let consumer_thread = {
        let (bootstrap, topic) = (bootstrap.to_string(), topics.incidents.clone());
        let (sent_us, sent_ts, warm_seen, received, stop) = (
            sent_us.clone(),
            sent_ts.clone(),
            warm_seen.clone(),
            received.clone(),
            stop.clone(),
        );
        std::thread::spawn(move || {
            let consumer: BaseConsumer = brokers::client_config(&bootstrap)
                .set("group.id", unique_name("e2e-lat"))
                .set("enable.auto.commit", "false")
                .set("fetch.wait.max.ms", "5")
                .set("enable.partition.eof", "false")
                .create()
                .expect("latency consumer");
            {
                let mut tpl = TopicPartitionList::new();
                for p in 0..PARTITIONS {
                    tpl.add_partition_offset(&topic, p, Offset::Beginning)
                        .expect("add partition");
                }
                consumer.assign(&tpl).expect("assign");
            }
            let mut e2e = Vec::with_capacity(total);
            let mut publish = Vec::with_capacity(total);
            let mut mismatched = 0usize;
            // Largest opened_at − record timestamp (ms).
            let mut max_dev = 0i64;
            let mut seen = vec![false; total];
            while !stop.load(Ordering::Relaxed) && e2e.len() < probes {
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let recv = wall_us();
                let Some(payload) = m.payload() else { continue };
                let v: serde_json::Value = match serde_json::from_slice(payload) {
                    Ok(v) => v,
                    Err(_) => continue,
                };
                if v["type"] != "correlator.incident.opened" {
                    continue;
                }
                let service = v["data"]["alerts"][0]["labels"]["service"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if service.starts_with("warm-") {
                    warm_seen.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let Some(k) = service
                    .strip_prefix("lat-")
                    .and_then(|s| s.parse::<usize>().ok())
                    .filter(|k| *k < total)
                else {
                    continue;
                };
                if std::mem::replace(&mut seen[k], true) {
                    continue; // a duplicate delivery
                }
                let sent = sent_us[k].load(Ordering::Acquire) as i64;
                let ts = sent_ts[k].load(Ordering::Acquire) as i64;
                e2e.push((sent, recv - sent));
                received.fetch_add(1, Ordering::Relaxed);
                if let Some(created) = m.timestamp().to_millis() {
                    publish.push(created - ts);
                }
                let opened = v["data"]["opened_at"]
                    .as_str()
                    .and_then(|s| Timestamp::parse_rfc3339(s).ok().flatten());
                if let Some(o) = opened {
                    if o != Timestamp(ts) {
                        mismatched += 1;
                        max_dev = max_dev.max(o.0 - ts);
                    }
                }
            }
            drop_with_deadline("latency consumer", consumer, CLOSE_DEADLINE);
            (e2e, publish, mismatched, max_dev)
        })
    };
    let ok = brokers::wait_until(Duration::from_secs(60), || {
        warm_seen.load(Ordering::Relaxed) >= WARMUP
    });
    assert!(
        ok,
        "warm-up: {} of {WARMUP} opened events seen; daemon: {:?}\n{}",
        warm_seen.load(Ordering::Relaxed),
        d.readyz(),
        d.log_tail()
    );

    // Steady rate: record k is due at start + k/rate.
    let batches_warm = d.batch_stats().unwrap_or_default();
    let mem_start = d.mem();
    let cpu0 = d.cpu_secs();
    let bench0 = BenchCpu::now();
    let threads0 = d.thread_cpu();
    let t0 = Instant::now();
    for k in 0..total {
        let due = t0 + Duration::from_secs_f64(k as f64 / rate as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        producer.poll(Duration::ZERO);
        let us = wall_us();
        let ts = us / 1000;
        if k % new_every != 0 {
            let j = k as u64 % STEADY_POOL;
            send("steady", j, &steady_record(j, steady_start, ts), ts);
            continue;
        }
        let body = latency_record(k as u64, "lat", ts);
        sent_us[k].store(us as u64, Ordering::Release);
        sent_ts[k].store(ts as u64, Ordering::Release);
        send("lat", k as u64, &body, ts);
    }
    let produce_secs = t0.elapsed().as_secs_f64();
    let cpu_cores = (d.cpu_secs() - cpu0) / produce_secs;
    // This process meanwhile: the mock cluster's thread, and all of it.
    let spent = bench0.since();
    let (mock_cores, bench_cores) = (spent.mock / produce_secs, spent.all / produce_secs);
    let threads: Vec<(String, f64)> = {
        let mut v: Vec<(String, f64)> = d
            .thread_cpu()
            .into_iter()
            .map(|(name, s)| {
                let before = threads0
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map_or(0.0, |t| t.1);
                (name, (s - before) / produce_secs)
            })
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    };
    let steady_warm = if new_every > 1 { STEADY_POOL } else { 0 };
    finish_producer(producer, WARMUP as u64 + steady_warm + total as u64);
    // Until every event arrived, or 60 s without a new one.
    let (mut last_seen, mut last_change) = (received.load(Ordering::Relaxed), Instant::now());
    while !consumer_thread.is_finished() && last_change.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
        let now = received.load(Ordering::Relaxed);
        if now != last_seen {
            (last_seen, last_change) = (now, Instant::now());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (e2e_timed, mut publish_ms, mismatched, max_dev) =
        consumer_thread.join().expect("consumer thread");
    let p99_by_second = per_second_p99(&e2e_timed);
    let mut e2e_us: Vec<i64> = e2e_timed.into_iter().map(|(_, us)| us).collect();
    let mut mem_end = d.mem();
    mem_end.hwm_kb = mem_end.hwm_kb.max(mem_end.rss_kb);
    if e2e_us.len() < probes {
        eprintln!(
            "latency: only {} of {probes} opened events arrived; daemon: {:?}",
            e2e_us.len(),
            d.readyz()
        );
    }
    let batches = d.batch_stats().unwrap_or_default();
    let steady_processing = batches.processing.since(&batches_warm.processing);
    d.stop();
    e2e_us.sort_unstable();
    publish_ms.sort_unstable();
    Latency {
        rate,
        secs,
        new_every,
        sent: total,
        probes,
        e2e_us,
        publish_ms,
        achieved_rate: total as f64 / produce_secs,
        linger_ms,
        p99_by_second,
        mock_cores,
        bench_cores,
        mismatched_opened_at: mismatched,
        opened_at_max_dev: max_dev,
        cpu_cores,
        threads,
        batches,
        steady_processing,
        mem_start,
        mem_end,
    }
}

/// The latency section of the report.
fn print_latency(lat: &Latency) {
    let mix = if lat.new_every == 1 {
        "each opening an incident (worst case)".to_string()
    } else {
        format!(
            "1 in {} opening an incident (timed), the rest re-sends of {STEADY_POOL} firing alerts",
            lat.new_every
        )
    };
    println!(
        "== latency (mock): {} records at {} /s target ({:.0} /s achieved), {mix}",
        lat.sent, lat.rate, lat.achieved_rate
    );
    let ms = |us: i64| us as f64 / 1000.0;
    let e = &lat.e2e_us;
    println!(
        "produce -> opened event received: n={} p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms (target p99 < 50 ms)",
        e.len(),
        ms(percentile(e, 0.50)),
        ms(percentile(e, 0.90)),
        ms(percentile(e, 0.99)),
        ms(e.last().copied().unwrap_or(0))
    );
    println!(
        "  p99 per second of sending (ms): {}",
        lat.p99_by_second
            .iter()
            .map(|v| format!("{v:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let p = &lat.publish_ms;
    println!(
        "record ts -> event CreateTime (publisher send): p50 {} ms  p90 {} ms  p99 {} ms  max {} ms",
        percentile(p, 0.50),
        percentile(p, 0.90),
        percentile(p, 0.99),
        p.last().copied().unwrap_or(0)
    );
    println!(
        "events whose data.opened_at != record timestamp: {} (at most {} ms later); missing events: {}",
        lat.mismatched_opened_at,
        lat.opened_at_max_dev,
        lat.probes - e.len()
    );
    println!(
        "daemon at {} /s: {:.2} CPU cores; RSS {:.0} MiB before, {:.0} MiB after, peak {:.0} MiB (over {:.0} s)",
        lat.rate,
        lat.cpu_cores,
        lat.mem_start.rss_kb as f64 / 1024.0,
        lat.mem_end.rss_kb as f64 / 1024.0,
        lat.mem_end.hwm_kb as f64 / 1024.0,
        lat.secs
    );
    println!(
        "daemon CPU by thread while producing (cores): {}",
        fmt_threads(&lat.threads)
    );
    println!(
        "bench process while producing: {:.2} CPU cores, {:.2} of them the mock cluster's thread; producer linger.ms {}",
        lat.bench_cores, lat.mock_cores, lat.linger_ms
    );
    let b = &lat.batches;
    println!(
        "daemon batches (incl. warm-up): {:.0}, {:.1} records each on average; store commit {:.1} ms on average; \
         record timestamp -> batch committed {:.1} ms on average (daemon histogram)",
        b.size.count,
        b.size.sum / b.size.count.max(1.0),
        b.commit.average_ms(),
        b.processing.average_ms(),
    );
    if let Some(s) = &lat.steady_processing {
        let q = |q: f64| {
            s.quantile_ms(q)
                .map_or("?".to_string(), |v| format!("<= {v:.0} ms"))
        };
        println!(
            "record timestamp -> batch committed at the steady rate (daemon histogram, bucket bounds): \
             average {:.1} ms, p50 {}, p90 {}, p99 {}",
            s.average_ms(),
            q(0.5),
            q(0.9),
            q(0.99)
        );
    }
}

/// The busiest threads: `name 1.23, …`.
fn fmt_threads(t: &[(String, f64)]) -> String {
    t.iter()
        .take(6)
        .map(|(n, s)| format!("{n} {s:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------

fn main() {
    // `cargo test --benches` runs bench binaries without `--bench`: tiny sizes.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_usize("E2E_RECORDS", if quick { 5_000 } else { 1_000_000 });
    let n_tansu = env_usize("E2E_TANSU_RECORDS", if quick { 2_000 } else { 100_000 });
    let rate = env_usize("E2E_LATENCY_RATE", if quick { 1_000 } else { 10_000 });
    let lat_secs = env_usize("E2E_LATENCY_SECS", if quick { 2 } else { 10 }) as f64;
    let bin = correlator_bin();
    let dir = tempfile::Builder::new()
        .prefix("e2e-bench-")
        .tempdir()
        .expect("tempdir");
    let keep = std::env::var_os("E2E_KEEP").is_some_and(|v| v == "1");
    let load_start = loadavg();
    if std::env::var("E2E_MODE").is_ok_and(|m| m == "storm") {
        let alerts = env_usize("E2E_STORM_ALERTS", if quick { 2_000 } else { 100_000 });
        let secs = env_usize("E2E_STORM_SECS", if quick { 2 } else { 10 }) as f64;
        println!("alert storm: daemon {}", bin.display());
        println!("load average at start: {load_start}");
        let run = storm(alerts, secs, &bin, &dir.path().join("storm"));
        println!();
        print_storm(&run);
        println!("load average at end: {}", loadavg());
        if keep {
            println!("daemon log and store kept in {}", dir.keep().display());
        }
        return;
    }
    println!("e2e throughput: daemon {}", bin.display());
    println!("load average at start: {load_start}");

    // 1. Mock cluster throughput.
    let mock = brokers::mock::MockKafka::start(1);
    let bootstrap = mock.bootstrap();
    let create = |name: &str, p: i32| mock.create_topic(name, p);
    // ~5 MiB per partition is the mock's limit: aim under 4 MiB (200
    // partitions for 1M records); the watermark check catches any loss.
    let partitions = match std::env::var("E2E_PARTITIONS") {
        Ok(p) => p.parse().expect("E2E_PARTITIONS is a number"),
        Err(_) => partitions_for(n, 4.0 * 1024.0 * 1024.0),
    };
    let tp_mock = throughput("mock", &bootstrap, &create, partitions, n, &bin, dir.path());
    // The throughput run left gigabytes of records and events in the
    // cluster (in this process's memory): latency gets a fresh one.
    drop(mock);

    // 2. Latency at a steady rate, fresh cluster, daemon and topics.
    // A realistic mix first (1 record in 100 opens an incident), then the
    // worst case (every record does).
    let mixes: Vec<usize> = std::env::var("E2E_LATENCY_NEW_EVERY")
        .unwrap_or_else(|_| "100,1".into())
        .split(',')
        .map(|v| v.trim().parse().expect("E2E_LATENCY_NEW_EVERY: numbers"))
        .collect();
    let mock = brokers::mock::MockKafka::start(1);
    let bootstrap = mock.bootstrap();
    let create = |name: &str, p: i32| mock.create_topic(name, p);
    let linger_ms = env_usize("E2E_LATENCY_LINGER_MS", 5) as u64;
    let lats: Vec<Latency> = if rate > 0 && lat_secs > 0.0 {
        mixes
            .iter()
            .enumerate()
            .map(|(i, &every)| {
                eprintln!("[mock] latency: {rate} records/s for {lat_secs} s, 1 in {every} new …");
                let lat_dir = dir.path().join(format!("mock-latency-{i}-{every}"));
                quiet_disk();
                let run = LatencyRun {
                    rate,
                    secs: lat_secs,
                    new_every: every,
                    linger_ms,
                };
                latency(&bootstrap, &create, run, &bin, &lat_dir)
            })
            .collect()
    } else {
        Vec::new()
    };
    drop(mock);

    // 3. Tansu.
    let tansu_skip = std::env::var_os("E2E_TANSU").is_some_and(|v| v == "0");
    let tp_tansu = match (tansu_skip, find_tansu()) {
        (true, _) => {
            println!("tansu: skipped (E2E_TANSU=0)");
            None
        }
        (false, None) => {
            println!(
                "tansu: SKIPPED: no binary (set CORRELATOR_TANSU_BIN or run scripts/install-tansu.sh)"
            );
            None
        }
        (false, Some(tansu_bin)) => {
            // The harness would otherwise run the (10-minute) install script.
            std::env::set_var("CORRELATOR_TANSU_BIN", &tansu_bin);
            let tansu = brokers::tansu::Tansu::start();
            let create = |name: &str, p: i32| tansu.create_topic(name, p);
            let t = throughput(
                "tansu",
                &tansu.bootstrap(),
                &create,
                8,
                n_tansu,
                &bin,
                dir.path(),
            );
            Some(t)
        }
    };
    let load_end = loadavg();

    // The report.
    println!();
    println!(
        "== throughput: records to alerts/s, from an empty store (record ~{} B)",
        tp_mock.prefill.bytes / n.max(1) as u64
    );
    println!(
        "{:<7} {:<50} {:>10} {:>9} {:>11} {:>7}",
        "broker", "consumer", "records", "seconds", "records/s", "ratio"
    );
    for tp in std::iter::once(&tp_mock).chain(tp_tansu.as_ref()) {
        let best = tp.best_raw();
        let raw_rate = best.records as f64 / best.secs;
        for (i, r) in tp.raw.iter().enumerate() {
            println!(
                "{:<7} {:<50} {:>10} {:>9.2} {:>11.0} {:>7}",
                tp.broker,
                format!(
                    "raw rdkafka + serde_json ({}, {} partitions)",
                    if i == 0 { "before" } else { "after" },
                    tp.partitions
                ),
                r.records,
                r.secs,
                r.records as f64 / r.secs,
                ""
            );
        }
        let d = &tp.daemon;
        let rate = d.records as f64 / d.secs;
        println!(
            "{:<7} {:<50} {:>10} {:>9.2} {:>11.0} {:>7.2}",
            tp.broker,
            "daemon (spawn -> records_committed == N)",
            d.records,
            d.secs,
            rate,
            rate / raw_rate
        );
        println!(
            "        daemon: first record consumed {:.2} s after spawn ({:.0} records/s from then); \
             {:.1} CPU s ({:.2} cores; this process, with the mock cluster, {:.1} CPU s meanwhile, \
             the mock cluster's thread {:.2}); {} events published at done, backlog {}; outbox drained at {} ({} events)",
            d.first_record_secs,
            d.records as f64 / (d.secs - d.first_record_secs).max(1e-3),
            d.cpu_secs,
            d.cpu_secs / d.secs,
            d.bench_cpu_secs,
            d.mock_cpu_secs,
            d.events_at_done,
            d.backlog_at_done,
            d.drained_secs
                .map_or("not within 120 s".to_string(), |s| format!("{s:.2} s")),
            d.events_drained
        );
        let b = &d.batches;
        println!(
            "        daemon batches: {:.0}, {:.0} records each on average; {:.0} store commits, \
             {:.1} ms each on average ({:.2} s in all)",
            b.size.count,
            b.size.sum / b.size.count.max(1.0),
            b.commit.count,
            b.commit.average_ms(),
            b.commit.sum
        );
        println!("        daemon CPU by thread: {}", fmt_threads(&d.threads));
        println!(
            "        daemon RSS at end {:.0} MiB, peak (VmHWM) {:.0} MiB",
            d.mem.rss_kb as f64 / 1024.0,
            d.mem.hwm_kb as f64 / 1024.0
        );
        println!(
            "        ratio daemon/raw ({}) = {:.2}{}",
            tp.broker,
            rate / raw_rate,
            if tp.broker == "mock" {
                " (target >= 0.80)"
            } else {
                ""
            }
        );
    }
    if tp_tansu.is_none() {
        println!("tansu   (skipped)");
    }
    println!();
    if lats.is_empty() {
        println!("== latency: skipped (E2E_LATENCY_SECS=0)");
    }
    for lat in &lats {
        print_latency(lat);
        println!();
    }
    println!();
    println!("load average: start {load_start}, end {load_end}");
    if keep {
        let p = dir.keep();
        println!("daemon logs kept in {}", p.display());
    }
}

// ---------------------------------------------------------------------------
// Alert storm (`E2E_MODE=storm`, `scripts/bench-storm.sh`).

/// Services of the storm.
const STORM_SERVICES: u64 = 10;

/// Storm record `k`: a new alert (its own incident: severity `info` matches
/// no rule) on service `storm-(k % 10)`. Three in ten per service share one
/// template (`CrashLoop pod crashloop-<k> restarting`, one problem per
/// service); the others each have a template of their own (letters-only
/// words the miner keeps apart).
fn storm_record(k: u64, ts: i64) -> Vec<u8> {
    let service = format!("storm-{}", k % STORM_SERVICES);
    let (name, summary) = if (k / STORM_SERVICES) % 10 < 3 {
        (
            "CrashLoop".to_string(),
            format!("pod crashloop-{k} restarting"),
        )
    } else {
        // Three letters-only words from k: no two alerts share a token
        // position often enough for the miner to merge them.
        let word = |salt: u64| {
            let mut x = (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
            (0..6)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (b'a' + (x % 26) as u8) as char
                })
                .collect::<String>()
        };
        (format!("Q{}", word(1)), format!("{} {}", word(2), word(3)))
    };
    let labels: Vec<(String, String)> = [
        ("alertname", name.as_str()),
        ("cluster", "c1"),
        ("pod", &format!("pod-{k}")),
        ("service", &service),
        ("severity", "info"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    api_v2_body(&labels, &summary, ts, ts + 240_000)
}

struct StormRun {
    alerts: usize,
    produce_secs: f64,
    /// From the first record sent until every record's batch was committed.
    drain_secs: f64,
    store_bytes: u64,
    mem_start: Mem,
    mem_end: Mem,
    /// Record timestamp → batch committed, storm records only.
    processing: Option<Histogram>,
    batches: BatchStats,
    ready: Ready,
    /// Seconds after the first record until the outbox was empty.
    outbox_drained_secs: Option<f64>,
    /// (problems, incidents in the largest).
    problems: (usize, u64),
    threads: Vec<(String, f64)>,
}

/// `alerts` new alerts at a steady rate over `secs` seconds into a fresh
/// daemon and cluster.
fn storm(alerts: usize, secs: f64, bin: &Path, dir: &Path) -> StormRun {
    const PARTITIONS: i32 = 16;
    let mock = brokers::mock::MockKafka::start(1);
    let bootstrap = mock.bootstrap();
    let topics = Topics::new(&unique_name("mock-storm"));
    mock.create_topic(&topics.alerts, PARTITIONS);
    mock.create_topic(&topics.incidents, PARTITIONS);
    mock.create_topic(&topics.dlq, 1);
    let mut d = DaemonProc::spawn(bin, dir, &bootstrap, &topics);
    d.wait_ready(Duration::from_secs(60));
    let producer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000")
        .create_with_context::<_, BaseProducer<Deliveries>>(Deliveries::default())
        .expect("storm producer");
    let batches0 = d.batch_stats().unwrap_or_default();
    let mem_start = d.mem();
    let threads0 = d.thread_cpu();
    let rate = alerts as f64 / secs;
    let t0 = Instant::now();
    for k in 0..alerts {
        let due = t0 + Duration::from_secs_f64(k as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        producer.poll(Duration::ZERO);
        let ts = wall_ms();
        let key = format!("storm-{k}");
        let partition = (k % PARTITIONS as usize) as i32;
        send_record(
            &producer,
            &topics.alerts,
            key.as_bytes(),
            &storm_record(k as u64, ts),
            partition,
            ts,
        );
    }
    let produce_secs = t0.elapsed().as_secs_f64();
    finish_producer(producer, alerts as u64);
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let ready = loop {
        d.assert_alive();
        let r = d.readyz().unwrap_or_default();
        if r.records_committed >= alerts as u64 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "storm: {} of {alerts} committed\n{}",
            r.records_committed,
            d.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let drain_secs = t0.elapsed().as_secs_f64();
    let batches = d.batch_stats().unwrap_or_default();
    let mut mem_end = d.mem();
    mem_end.hwm_kb = mem_end.hwm_kb.max(mem_end.rss_kb);
    let threads: Vec<(String, f64)> = d
        .thread_cpu()
        .into_iter()
        .map(|(name, s)| {
            let before = threads0
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0.0, |t| t.1);
            (name, s - before)
        })
        .collect();
    // The outbox: every event published (bounded wait).
    let out_deadline = Instant::now() + Duration::from_secs(120);
    let mut outbox_drained_secs = None;
    while Instant::now() < out_deadline {
        if d.readyz().is_some_and(|r| r.outbox_backlog == 0) {
            outbox_drained_secs = Some(t0.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let problems = d
        .get("/api/v1/problems?limit=1000")
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b.trim()).ok())
        .map(|v| {
            let list = v["problems"].as_array().cloned().unwrap_or_default();
            let largest = list
                .iter()
                .filter_map(|p| p["incident_count"].as_u64())
                .max()
                .unwrap_or(0);
            (list.len(), largest)
        })
        .unwrap_or_default();
    let store_bytes = std::fs::metadata(dir.join("store.redb")).map_or(0, |m| m.len());
    d.stop();
    drop(mock);
    StormRun {
        alerts,
        produce_secs,
        drain_secs,
        store_bytes,
        mem_start,
        mem_end,
        processing: batches.processing.since(&batches0.processing),
        batches,
        ready,
        outbox_drained_secs,
        problems,
        threads,
    }
}

fn print_storm(s: &StormRun) {
    let n = s.alerts as f64;
    println!(
        "== alert storm: {} new alerts in {:.1} s ({:.0}/s) over {STORM_SERVICES} services, \
         3 in 10 per service sharing one template (each alert its own incident)",
        s.alerts,
        s.produce_secs,
        n / s.produce_secs
    );
    println!(
        "store: {:.1} MB after the storm, {:.0} B per alert (target < 300)",
        s.store_bytes as f64 / 1e6,
        s.store_bytes as f64 / n
    );
    let grown_kb = s.mem_end.hwm_kb.saturating_sub(s.mem_start.rss_kb);
    println!(
        "memory: RSS {:.0} MiB before, peak (VmHWM) {:.0} MiB: {:.0} B per active alert \
         (peak minus before; target < 1024), {:.0} B counting all of it",
        s.mem_start.rss_kb as f64 / 1024.0,
        s.mem_end.hwm_kb as f64 / 1024.0,
        grown_kb as f64 * 1024.0 / n,
        s.mem_end.hwm_kb as f64 * 1024.0 / n
    );
    match &s.processing {
        Some(h) => println!(
            "record -> commit (daemon histogram, storm records): p50 <= {} ms, p99 <= {} ms, mean {:.1} ms",
            h.quantile_ms(0.5).map_or("?".into(), |v| format!("{v:.0}")),
            h.quantile_ms(0.99).map_or("?".into(), |v| format!("{v:.0}")),
            h.average_ms()
        ),
        None => println!("record -> commit: histogram not available"),
    }
    println!(
        "drain: every record committed {:.2} s after the first was sent: {:.2}x the input time \
         (target <= 2); outbox empty {}",
        s.drain_secs,
        s.drain_secs / s.produce_secs,
        s.outbox_drained_secs
            .map_or("not within 120 s".to_string(), |t| format!("at {t:.2} s"))
    );
    let b = &s.batches;
    println!(
        "daemon: {} records committed, {} rejected, {} events published at drain; {:.0} batches \
         in all, {:.0} store commits of {:.1} ms on average",
        s.ready.records_committed,
        s.ready.records_rejected,
        s.ready.events_published,
        b.size.count,
        b.commit.count,
        b.commit.average_ms()
    );
    println!(
        "problems: {} (the largest holds {} incidents)",
        s.problems.0, s.problems.1
    );
    let mut t = s.threads.clone();
    t.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "daemon CPU s by thread during the storm: {}",
        fmt_threads(&t)
    );
}
