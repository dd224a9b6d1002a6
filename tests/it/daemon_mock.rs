//! The daemon in process against librdkafka's mock cluster: record in →
//! incident event out, poison record → DLQ, restart → no duplicate effects.

use std::collections::BTreeMap;
use std::time::Duration;

use correlator::config::Config;
use correlator::daemon::Daemon;
use correlator::engine::EngineConfig;

use crate::brokers::mock::MockKafka;
use crate::brokers::{consume_blocking, now_ms, produce_all_blocking, Attach, Msg, Record};

fn read_all(bootstrap: &str, topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    consume_blocking(bootstrap, topic, n, timeout, Attach::Assign).records
}

fn config(bootstrap: &str, store: &std::path::Path, assignment: &str) -> Config {
    config_with(bootstrap, store, assignment, "")
}

/// [`config`] with `kafka` lines added.
fn config_with(bootstrap: &str, store: &std::path::Path, assignment: &str, kafka: &str) -> Config {
    let text = format!(
        r#"
[kafka]
brokers = "{bootstrap}"
group_id = "correlator-test-{n}"
assignment = "{assignment}"
tick_interval = "100ms"
session_timeout = "6s"
{kafka}
[store]
path = "{store}"
[http]
listen = "127.0.0.1:0"
[[rules]]
name = "by-service"
group_by = ["service"]
[topology]
label = "service"
window = "5m"
[topology.depends_on]
checkout = ["payments"]
payments = ["postgres"]
"#,
        n = std::process::id(),
        store = store.display()
    );
    Config::parse(&text, "test.toml").expect("test config")
}

/// A mock cluster with the topics of [`config`]: `alerts` and `incidents`
/// with the partitions given, `alerts-dlq` with one.
fn cluster(alert_partitions: i32, incident_partitions: i32) -> MockKafka {
    let kafka = MockKafka::start(1);
    kafka.create_topic("alerts", alert_partitions);
    kafka.create_topic("incidents", incident_partitions);
    kafka.create_topic("alerts-dlq", 1);
    kafka
}

fn start(cfg: &Config) -> Daemon {
    let ec = EngineConfig::compile(cfg).expect("compiles");
    Daemon::start(cfg.clone(), ec, true, false, Duration::from_secs(20)).expect("daemon starts")
}

fn webhook(service: &str, name: &str, status: &str) -> String {
    serde_json::json!({
        "version": "4", "status": status,
        "alerts": [{"status": status,
            "labels": {"alertname": name, "service": service, "severity": "critical"},
            "annotations": {"summary": format!("{name} on {service}")},
            "startsAt": "2026-01-01T00:00:00Z"}]
    })
    .to_string()
}

/// `n` firing alerts of services svc0, svc1, …, one ms apart from `t0`.
fn one_alert_per_service(n: i64, t0: i64) -> Vec<Msg> {
    (0..n)
        .map(|i| {
            Msg::new(
                format!("k{i}"),
                webhook(&format!("svc{i}"), "Down", "firing"),
            )
            .timestamp(t0 + i)
        })
        .collect()
}

/// Events per incident id: (version → payload); panics on two different
/// payloads for one event id.
fn by_incident(records: &[Record]) -> BTreeMap<String, BTreeMap<u64, serde_json::Value>> {
    let mut out: BTreeMap<String, BTreeMap<u64, serde_json::Value>> = BTreeMap::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_str(r.payload_str()).expect("event is JSON");
        let id = v["subject"].as_str().expect("subject").to_string();
        assert_eq!(r.key_str(), id, "event keyed by incident id");
        let version = v["data"]["version"].as_u64().expect("version");
        assert_eq!(v["id"], format!("{id}/{version}"));
        let slot = out.entry(id.clone()).or_default();
        if let Some(prev) = slot.get(&version) {
            assert_eq!(prev, &v, "two different events with id {id}/{version}");
        }
        slot.insert(version, v);
    }
    out
}

#[test]
fn record_to_incident_dlq_and_restart_without_duplicates() {
    let kafka = cluster(3, 3);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&kafka.bootstrap(), &dir.path().join("state.redb"), "manual");

    let d = start(&cfg);
    let t0 = now_ms() - 60_000;
    let msgs = vec![
        Msg::new("eu1", webhook("checkout", "CheckoutErrors", "firing")).timestamp(t0),
        Msg::new("eu1", webhook("payments", "PaymentsSlow", "firing")).timestamp(t0 + 1000),
        Msg::new("eu1", "{this is not json").timestamp(t0 + 1500),
        Msg::new("eu1", webhook("postgres", "PgDown", "firing")).timestamp(t0 + 2000),
    ];
    produce_all_blocking(&kafka.bootstrap(), "alerts", &msgs);

    let dlq = read_all(&kafka.bootstrap(), "alerts-dlq", 1, Duration::from_secs(15));
    assert_eq!(dlq.len(), 1, "poison record in the DLQ");
    assert_eq!(
        dlq[0].payload_str(),
        "{this is not json",
        "original bytes kept"
    );
    let err = dlq[0].header_str("correlator-error").expect("error header");
    assert!(err.contains("invalid JSON"), "{err}");
    assert_eq!(dlq[0].header_str("correlator-reason"), Some("invalid_json"));

    // One incident, three alerts, root cause postgres.
    let mut events = Vec::new();
    let ok = crate::brokers::wait_until(Duration::from_secs(15), || {
        events = read_all(&kafka.bootstrap(), "incidents", 3, Duration::from_secs(3));
        by_incident(&events).values().any(|vs| {
            vs.values()
                .last()
                .is_some_and(|v| v["data"]["alerts"].as_array().map(Vec::len) == Some(3))
        })
    });
    assert!(
        ok,
        "incident with 3 alerts never published; got {events:#?}"
    );
    let incidents = by_incident(&events);
    assert_eq!(incidents.len(), 1, "one incident: {incidents:#?}");
    let (_, versions) = incidents.iter().next().unwrap();
    let last = versions.values().last().unwrap();
    assert_eq!(
        last["data"]["title"],
        "CheckoutErrors: CheckoutErrors on checkout"
    );
    let pg = last["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["service"] == "postgres")
        .unwrap();
    assert_eq!(last["data"]["root_cause"], pg["fingerprint"]);
    let before = events.len();
    d.shutdown().expect("clean shutdown");

    // Restart on the same store: nothing is re-applied, new input continues.
    let d = start(&cfg);
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[Msg::new("eu1", webhook("checkout", "CheckoutErrors", "resolved")).timestamp(t0 + 5000)],
    );
    let ok = crate::brokers::wait_until(Duration::from_secs(15), || {
        events = read_all(
            &kafka.bootstrap(),
            "incidents",
            before + 1,
            Duration::from_secs(3),
        );
        events.len() > before
    });
    assert!(ok, "no event after restart");
    std::thread::sleep(Duration::from_millis(500));
    let events = read_all(
        &kafka.bootstrap(),
        "incidents",
        before + 1,
        Duration::from_secs(3),
    );
    let incidents = by_incident(&events);
    assert_eq!(
        incidents.len(),
        1,
        "restart created no second incident: {incidents:#?}"
    );
    let versions: Vec<u64> = incidents.values().next().unwrap().keys().copied().collect();
    assert_eq!(
        versions,
        (1..=versions.len() as u64).collect::<Vec<_>>(),
        "versions contiguous"
    );
    let last = incidents.values().next().unwrap().values().last().unwrap();
    let checkout = last["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["service"] == "checkout")
        .unwrap();
    assert_eq!(checkout["status"], "resolved");
    assert_eq!(
        checkout["occurrences"], 1,
        "the firing record was not applied twice"
    );
    d.shutdown().expect("clean shutdown");
}

#[test]
fn group_mode_consumes_and_publishes() {
    let kafka = cluster(2, 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&kafka.bootstrap(), &dir.path().join("state.redb"), "group");
    let d = start(&cfg);
    let t0 = now_ms() - 30_000;
    let msgs = one_alert_per_service(20, t0);
    produce_all_blocking(&kafka.bootstrap(), "alerts", &msgs);
    let events = read_all(&kafka.bootstrap(), "incidents", 20, Duration::from_secs(30));
    assert_eq!(by_incident(&events).len(), 20, "one incident per service");
    d.shutdown().expect("clean shutdown");
}

/// Group mode, a partition the group already read but this daemon's store
/// never did (another member read it, or the store was wiped): the client
/// starts at the group's committed offset, and once it is at the end the
/// daemon is caught up, so wall-clock timers fire. (Counting such a
/// partition's lag from offset 0 held the daemon "behind" for good: an
/// alert's `endsAt` never resolved it.)
#[test]
fn group_mode_timers_fire_on_partitions_this_store_never_read() {
    let kafka = cluster(2, 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&kafka.bootstrap(), &dir.path().join("state.redb"), "group");
    let t0 = now_ms() - 30_000;
    let msgs: Vec<Msg> = one_alert_per_service(10, t0)
        .into_iter()
        .zip(0..)
        .map(|(m, i)| m.partition(i % 2))
        .collect();
    produce_all_blocking(&kafka.bootstrap(), "alerts", &msgs);
    // The group read both partitions to their end before (another member,
    // or before the store was wiped): its offsets are committed.
    {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        let c: BaseConsumer = crate::brokers::client_config(&kafka.bootstrap())
            .set("group.id", &cfg.kafka.group_id)
            .create()
            .expect("consumer");
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..2 {
            tpl.add_partition_offset("alerts", p, rdkafka::Offset::Offset(5))
                .expect("partition");
        }
        c.commit(&tpl, CommitMode::Sync)
            .expect("commit group offsets");
    }
    let d = start(&cfg);
    // An alert whose sender says it ends in 2 s, on partition 0 only:
    // partition 1 stays quiet and unknown to this store.
    let ends =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(2));
    let body = serde_json::json!({
        "version": "4", "status": "firing",
        "alerts": [{"status": "firing",
            "labels": {"alertname": "Brief", "service": "late", "severity": "critical"},
            "startsAt": "2026-01-01T00:00:00Z", "endsAt": ends.to_string()}]
    })
    .to_string();
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[Msg::new("late", body).partition(0).timestamp(now_ms())],
    );
    // Its incident opens, then resolves once the daemon is caught up.
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let resolved = loop {
        let events = read_all(
            &kafka.bootstrap(),
            "incidents",
            1000,
            Duration::from_secs(2),
        );
        let late = events
            .iter()
            .filter(|r| r.payload_str().contains("\"late\""))
            .map(|r| r.payload_str().to_string())
            .collect::<Vec<_>>();
        if late
            .iter()
            .any(|p| p.contains("correlator.incident.resolved"))
        {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
    };
    let h = &d.health;
    assert_eq!(
        h.records_consumed
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the second daemon started at the group's committed offsets"
    );
    assert!(
        resolved,
        "the alert's endsAt resolved its incident; caught_up {}",
        h.caught_up.load(std::sync::atomic::Ordering::Relaxed)
    );
    d.shutdown().expect("clean shutdown");
}

/// A backlog is applied in steps as the merge releases records (so the
/// fetch thread decodes on meanwhile), but stored in full `batch_max`
/// batches, not a transaction per step: every commit costs.
#[test]
fn a_backlog_is_stored_in_full_batches() {
    const N: i64 = 30_000;
    let kafka = cluster(4, 1);
    let t0 = now_ms() - 60_000;
    // Re-sends of 50 alerts: a long backlog with little engine work.
    let msgs: Vec<Msg> = (0..N)
        .map(|i| {
            let svc = format!("svc{}", i % 50);
            Msg::new(svc.clone(), webhook(&svc, "Down", "firing")).timestamp(t0 + i)
        })
        .collect();
    produce_all_blocking(&kafka.bootstrap(), "alerts", &msgs);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        &kafka.bootstrap(),
        &dir.path().join("state.redb"),
        "manual",
        "batch_max = 10000",
    );
    let d = start(&cfg);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let committed = || {
        d.health
            .records_committed
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    while committed() < N as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {N} records committed in 60 s",
            committed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let batches = d
        .health
        .batches_committed
        .load(std::sync::atomic::Ordering::Relaxed);
    // 3 full batches; one more if the fetch paused once mid-backlog. A
    // transaction per step (4,096 records) would be 8 or more.
    assert!(
        (3..=4).contains(&batches),
        "{N} backlog records stored in {batches} batches of at most 10,000"
    );
    d.shutdown().expect("clean shutdown");
}

/// The offsets a group member commits are the next offsets to read, as
/// stored in redb: a member that takes a partition over (or a daemon whose
/// store was wiped) starts exactly at the first record not yet applied.
/// (Handing the next offset to `rd_kafka_offset_store`, which adds one,
/// committed one past it, and the new owner skipped a record.)
#[test]
fn group_takeover_applies_every_record() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let kafka = cluster(1, 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&kafka.bootstrap(), &dir.path().join("a.redb"), "group");
    let t0 = now_ms() - 30_000;
    let first = one_alert_per_service(10, t0);
    produce_all_blocking(&kafka.bootstrap(), "alerts", &first);
    let a = start(&cfg);
    wait_committed(&a, 10);
    // A graceful leave commits the group's offsets.
    a.shutdown().expect("clean shutdown");
    let committed = {
        let c: BaseConsumer = crate::brokers::client_config(&kafka.bootstrap())
            .set("group.id", &cfg.kafka.group_id)
            .create()
            .expect("consumer");
        let mut tpl = rdkafka::TopicPartitionList::new();
        tpl.add_partition("alerts", 0);
        let got = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        // Plain values at once: a list kept alive past the consumer hangs
        // its destroy.
        let o = got.find_partition("alerts", 0).map(|e| e.offset());
        o
    };
    assert_eq!(
        committed,
        Some(rdkafka::Offset::Offset(10)),
        "the group committed the next offset to read"
    );
    // Another member of the group, with a store of its own, takes over.
    let mut cfg_b = cfg.clone();
    cfg_b.store.path = dir.path().join("b.redb");
    let b = start(&cfg_b);
    let more: Vec<Msg> = one_alert_per_service(15, t0 + 100)
        .into_iter()
        .skip(10)
        .collect();
    produce_all_blocking(&kafka.bootstrap(), "alerts", &more);
    wait_committed(&b, 5);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.health
            .records_consumed
            .load(std::sync::atomic::Ordering::Relaxed),
        5,
        "the new owner applied every record after the committed offset, and no other"
    );
    b.shutdown().expect("clean shutdown");
}

/// A daemon reading one alert partition (manual assignment) of a fresh
/// mock cluster, with `kafka` lines added to its config (see
/// [`config_with`]); the store's directory lives as long as the result.
fn one_partition_daemon(kafka: &str) -> (MockKafka, tempfile::TempDir, Config, Daemon) {
    let cluster = cluster(1, 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config_with(
        &cluster.bootstrap(),
        &dir.path().join("state.redb"),
        "manual",
        kafka,
    );
    let d = start(&cfg);
    (cluster, dir, cfg, d)
}

/// Waits (30 s at most) until `n` records are committed.
fn wait_committed(d: &Daemon, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let committed = || {
        d.health
            .records_committed
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    while committed() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {n} records committed in 30 s",
            committed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A DLQ record the producer refuses for good (here: over a
/// `message.max.bytes` lowered to 4,000 bytes) is parked in the store and
/// reported; it does not hold back the incident events behind it. (It was
/// retried forever, and every later event stayed in the outbox.)
#[test]
fn a_message_refused_for_good_is_parked_and_later_events_go_out() {
    let (kafka, _dir, cfg, d) =
        one_partition_daemon("properties = { \"message.max.bytes\" = \"4000\" }");
    let t0 = now_ms() - 10_000;
    let junk = "x".repeat(10_000);
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[
            Msg::new("junk", junk).timestamp(t0),
            Msg::new("ok", webhook("checkout", "CheckoutErrors", "firing")).timestamp(t0 + 1),
        ],
    );
    let events = read_all(&kafka.bootstrap(), "incidents", 1, Duration::from_secs(20));
    assert_eq!(
        by_incident(&events).len(),
        1,
        "the incident after the refused DLQ record was published"
    );
    let ok = crate::brokers::wait_until(Duration::from_secs(10), || {
        d.health
            .outbox_parked
            .load(std::sync::atomic::Ordering::Relaxed)
            == 1
    });
    assert!(ok, "the refused DLQ record was parked");
    let degraded = d.health.degraded(now_ms());
    assert!(
        degraded.iter().any(|(r, _)| *r == "outbox_parked"),
        "health reports it: {degraded:?}"
    );
    assert_eq!(
        d.health
            .outbox_backlog
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    d.shutdown().expect("clean shutdown");
    let store = correlator::store::Store::open(&cfg.store.path).expect("store");
    let parked = store.outbox_parked(10).expect("parked entries");
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].2.topic, "alerts-dlq");
    assert_eq!(parked[0].2.payload.len(), 10_000, "kept whole");
    assert!(parked[0].1.contains("10000 bytes"), "{}", parked[0].1);
}

/// The largest record correlator accepts is one it can produce: a
/// 1,010,000-byte record (under the default `limits.max_record_bytes`,
/// over librdkafka's default `message.max.bytes`) reaches the DLQ whole.
#[test]
fn a_record_under_the_record_limit_reaches_the_dlq() {
    let kafka = cluster(1, 1);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&kafka.bootstrap(), &dir.path().join("state.redb"), "manual");
    let d = start(&cfg);
    let junk = "y".repeat(1_010_000);
    let producer: rdkafka::producer::FutureProducer =
        crate::brokers::client_config(&kafka.bootstrap())
            .set("message.max.bytes", "2000000")
            .create()
            .expect("producer");
    crate::brokers::block_on(crate::brokers::send(
        &producer,
        "alerts",
        &Msg::new("junk", junk).timestamp(now_ms()),
    ));
    let dlq = read_all(&kafka.bootstrap(), "alerts-dlq", 1, Duration::from_secs(20));
    assert_eq!(dlq.len(), 1, "the DLQ record was delivered");
    assert_eq!(dlq[0].payload.as_ref().map(Vec::len), Some(1_010_000));
    d.shutdown().expect("clean shutdown");
}

/// A record over `limits.max_record_bytes` (the broker took it) goes to
/// the DLQ cut to that size, with its original size and digest.
#[test]
fn an_oversized_record_reaches_the_dlq_truncated_with_its_digest() {
    let (kafka, _dir, _cfg, d) = one_partition_daemon("[limits]\nmax_record_bytes = 2000");
    let junk = "z".repeat(10_000);
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[Msg::new("junk", junk.clone()).timestamp(now_ms())],
    );
    let dlq = read_all(&kafka.bootstrap(), "alerts-dlq", 1, Duration::from_secs(20));
    assert_eq!(dlq.len(), 1, "the DLQ record was delivered");
    let r = &dlq[0];
    assert_eq!(r.payload.as_ref().map(Vec::len), Some(2000));
    assert_eq!(r.header_str("correlator-truncated"), Some("true"));
    assert_eq!(r.header_str("correlator-original-size"), Some("10000"));
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(junk.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        r.header_str("correlator-original-sha256"),
        Some(want.as_str())
    );
    d.shutdown().expect("clean shutdown");
}

/// Poison records of every size class around `limits.max_record_bytes`
/// (here 2,000), valid and not, between valid alerts: the daemon stays up,
/// every valid alert is applied, every poison record reaches the DLQ, and
/// nothing waits in the outbox.
#[test]
fn poison_records_around_the_record_limit_lose_nothing() {
    let (kafka, _dir, _cfg, d) = one_partition_daemon("[limits]\nmax_record_bytes = 2000");
    let t0 = now_ms() - 10_000;
    let mut msgs = Vec::new();
    let sizes = [0usize, 1, 1999, 2000, 2001, 4000, 100_000];
    for (i, size) in sizes.iter().enumerate() {
        msgs.push(Msg::new("p", "p".repeat(*size)).timestamp(t0 + 2 * i as i64));
        msgs.push(
            Msg::new(
                format!("k{i}"),
                webhook(&format!("svc{i}"), "Down", "firing"),
            )
            .timestamp(t0 + 2 * i as i64 + 1),
        );
    }
    // A valid alert whose record is just over the limit: refused whole.
    let big = serde_json::json!([{
        "labels": {"alertname": "Big", "service": "big", "severity": "critical"},
        "annotations": {"summary": "s".repeat(2100)},
    }])
    .to_string();
    msgs.push(Msg::new("big", big).timestamp(t0 + 100));
    produce_all_blocking(&kafka.bootstrap(), "alerts", &msgs);
    let events = read_all(
        &kafka.bootstrap(),
        "incidents",
        sizes.len(),
        Duration::from_secs(30),
    );
    assert_eq!(
        by_incident(&events).len(),
        sizes.len(),
        "every valid alert opened its incident"
    );
    let dlq = read_all(
        &kafka.bootstrap(),
        "alerts-dlq",
        sizes.len() + 1,
        Duration::from_secs(30),
    );
    assert_eq!(
        dlq.len(),
        sizes.len() + 1,
        "every poison record reached the DLQ"
    );
    for r in &dlq {
        let n = r.payload.as_ref().map_or(0, Vec::len);
        assert!(n <= 2000, "DLQ record of {n} bytes, over the limit");
    }
    let ok = crate::brokers::wait_until(Duration::from_secs(10), || {
        d.health
            .outbox_backlog
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
    });
    assert!(ok, "outbox drained");
    assert_eq!(
        d.health
            .outbox_parked
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    d.shutdown().expect("clean shutdown");
}

/// An alert whose incident event is over 1,000 bytes.
fn wordy(service: &str) -> String {
    serde_json::json!([{
        "labels": {"alertname": "Down", "service": service, "severity": "critical"},
        "annotations": {"summary": format!("{service} is down: {}", "w".repeat(1500))},
    }])
    .to_string()
}

/// Incident events the producer refuses for good (here every one: its
/// `message.max.bytes` lowered below an event's size) are parked; the
/// daemon stays up, stores every alert, and DLQ records still go out.
#[test]
fn a_permanent_failure_on_the_incident_topic_parks_and_goes_on() {
    let (kafka, _dir, _cfg, d) =
        one_partition_daemon("properties = { \"message.max.bytes\" = \"1000\" }");
    let t0 = now_ms() - 10_000;
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[
            Msg::new("a", wordy("checkout")).timestamp(t0),
            Msg::new("junk", "{not json").timestamp(t0 + 1),
            Msg::new("b", wordy("search")).timestamp(t0 + 2),
        ],
    );
    let dlq = read_all(&kafka.bootstrap(), "alerts-dlq", 1, Duration::from_secs(20));
    assert_eq!(dlq.len(), 1, "the DLQ record went out");
    let ok = crate::brokers::wait_until(Duration::from_secs(15), || {
        d.health
            .outbox_parked
            .load(std::sync::atomic::Ordering::Relaxed)
            == 2
    });
    assert!(ok, "both incidents' events parked");
    assert_eq!(
        d.health
            .records_committed
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
    d.shutdown().expect("clean shutdown");
}
