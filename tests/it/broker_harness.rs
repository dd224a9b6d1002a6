//! Smoke tests of the broker harness: produce/consume round trips on a real
//! Tansu broker (across SIGKILL + restart and SIGTERM + restart) and on the
//! in-process mock cluster. Every check is exact: nothing lost, nothing
//! duplicated, offsets contiguous, key/payload/headers/timestamp preserved.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::brokers::mock::MockKafka;
use crate::brokers::tansu::Tansu;
use crate::brokers::{self, Attach, Delivered, Msg, Record};

const PARTITIONS: i32 = 3;
const CONSUME_TIMEOUT: Duration = Duration::from_secs(30);

/// Base CreateTime: an hour ago, whole seconds, so explicit stamps stand out
/// from client-assigned ones.
fn base_ts() -> i64 {
    (brokers::now_ms() - 3_600_000) / 1000 * 1000
}

/// Records `range`, keyed over 17 services, with text, binary and (every
/// tenth record) null header values, and explicit timestamps.
fn batch(range: Range<usize>, base_ts: i64) -> Vec<Msg> {
    range
        .map(|i| {
            let m = Msg::new(format!("svc-{}", i % 17), format!(r#"{{"seq":{i}}}"#))
                .header("seq", i.to_string())
                .header("source", "broker_harness")
                .header("bin", [0u8, 0xff, (i % 256) as u8])
                .timestamp(base_ts + i as i64 * 7);
            if i % 10 == 0 {
                m.null_header("nil")
            } else {
                m
            }
        })
        .collect()
}

/// `got` must be exactly `sent`: same count, each record where the producer
/// said it landed, offsets 0..n in every partition, every partition used,
/// key/payload/headers/timestamp equal.
fn check(what: &str, sent: &[(Msg, Delivered)], got: &[Record]) {
    assert_eq!(
        got.len(),
        sent.len(),
        "{what}: consumed {} records, produced {}",
        got.len(),
        sent.len()
    );
    let by_place: HashMap<Delivered, &Msg> = sent.iter().map(|(m, d)| (*d, m)).collect();
    assert_eq!(
        by_place.len(),
        sent.len(),
        "{what}: producer reported the same (partition, offset) twice"
    );
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in got {
        offsets.entry(r.partition).or_default().push(r.offset);
        let m = by_place
            .get(&(r.partition, r.offset))
            .unwrap_or_else(|| panic!("{what}: unexpected record at {}/{}", r.partition, r.offset));
        assert_eq!(r.key, m.key, "{what}: key at {}/{}", r.partition, r.offset);
        assert_eq!(
            r.payload, m.payload,
            "{what}: payload at {}/{}",
            r.partition, r.offset
        );
        assert_eq!(
            r.headers, m.headers,
            "{what}: headers at {}/{}",
            r.partition, r.offset
        );
        assert_eq!(
            r.timestamp, m.timestamp,
            "{what}: timestamp at {}/{}",
            r.partition, r.offset
        );
    }
    assert_eq!(
        offsets.keys().copied().collect::<Vec<_>>(),
        (0..PARTITIONS).collect::<Vec<_>>(),
        "{what}: not every partition got records"
    );
    for (p, offs) in &offsets {
        let expected: Vec<i64> = (0..offs.len() as i64).collect();
        assert_eq!(
            offs, &expected,
            "{what}: offsets of partition {p} not contiguous from 0"
        );
    }
}

#[tokio::test]
async fn tansu_round_trip_survives_sigkill_and_restart() {
    let t = Instant::now();
    let mut broker = Tansu::start();
    let t_start = t.elapsed();
    let bootstrap = broker.bootstrap();
    let topic = brokers::unique_name("harness");

    let t = Instant::now();
    broker.create_topic(&topic, PARTITIONS);
    let t_topic = t.elapsed();

    let base = base_ts();
    let first = batch(0..1000, base);
    let producer = brokers::producer(&bootstrap);
    let t = Instant::now();
    let delivered = brokers::send_all(&producer, &topic, &first).await;
    let t_produce = t.elapsed();
    let mut sent: Vec<(Msg, Delivered)> = first.into_iter().zip(delivered).collect();

    let c = brokers::consume(&bootstrap, &topic, 1000, CONSUME_TIMEOUT, Attach::Group).await;
    check("tansu, group consumer, before restart", &sent, &c.records);
    let t_consume_group = c.elapsed;

    // SIGKILL, restart on the same port and data; the same idempotent
    // producer carries on.
    broker.kill();
    assert!(!broker.is_running());
    let t_restart = broker.restart();
    let second = batch(1000..1100, base);
    let t = Instant::now();
    let delivered = brokers::send_all(&producer, &topic, &second).await;
    let t_produce_after_kill = t.elapsed();
    sent.extend(second.into_iter().zip(delivered));
    brokers::close_producer(producer);

    let c = brokers::consume(&bootstrap, &topic, 1100, CONSUME_TIMEOUT, Attach::Group).await;
    check("tansu, group consumer, after SIGKILL", &sent, &c.records);
    let t_consume_group_2 = c.elapsed;
    let c = brokers::consume(&bootstrap, &topic, 1100, CONSUME_TIMEOUT, Attach::Assign).await;
    check("tansu, assigned reader, after SIGKILL", &sent, &c.records);
    let t_consume_assign = c.elapsed;

    // Graceful stop and restart keep everything too.
    let t_stop = broker.stop();
    let t_restart_2 = broker.restart();
    let got = brokers::read_all(&bootstrap, &topic, 1100, CONSUME_TIMEOUT).await;
    check("tansu, assigned reader, after SIGTERM", &sent, &got);

    eprintln!(
        "tansu timings: start {t_start:?}, create topic {t_topic:?}, produce 1000 {t_produce:?}, \
         group consume 1000 {t_consume_group:?}, restart after SIGKILL {t_restart:?}, \
         produce 100 after restart {t_produce_after_kill:?}, group consume 1100 \
         {t_consume_group_2:?}, assigned read 1100 {t_consume_assign:?}, SIGTERM stop \
         {t_stop:?}, restart {t_restart_2:?}"
    );
}

#[tokio::test]
async fn mock_cluster_round_trip() {
    let t = Instant::now();
    let kafka = MockKafka::start(3);
    let bootstrap = kafka.bootstrap();
    let topic = brokers::unique_name("harness");
    kafka.create_topic(&topic, PARTITIONS);
    let t_start = t.elapsed();

    let msgs = batch(0..1000, base_ts());
    let t = Instant::now();
    let delivered = brokers::produce_all(&bootstrap, &topic, &msgs).await;
    let t_produce = t.elapsed();
    let sent: Vec<(Msg, Delivered)> = msgs.into_iter().zip(delivered).collect();

    let c = brokers::consume(&bootstrap, &topic, 1000, CONSUME_TIMEOUT, Attach::Group).await;
    check("mock, group consumer", &sent, &c.records);
    let t_group = c.elapsed;
    let c = brokers::consume(&bootstrap, &topic, 1000, CONSUME_TIMEOUT, Attach::Assign).await;
    check("mock, assigned reader", &sent, &c.records);
    let t_assign = c.elapsed;

    // One-shot helper with an explicit timestamp.
    let ts = base_ts() + 123;
    let (p, o) = brokers::produce(&bootstrap, &topic, "one", "shot", ts).await;
    let got = brokers::read_all(&bootstrap, &topic, 1001, CONSUME_TIMEOUT).await;
    assert_eq!(got.len(), 1001);
    let r = got
        .iter()
        .find(|r| (r.partition, r.offset) == (p, o))
        .expect("one-shot record");
    assert_eq!(
        (r.key_str(), r.payload_str(), r.timestamp),
        ("one", "shot", Some(ts))
    );

    eprintln!(
        "mock timings: start + topic {t_start:?}, produce 1000 {t_produce:?}, group consume \
         {t_group:?}, assigned read {t_assign:?}"
    );
}
