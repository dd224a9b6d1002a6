//! The fetch thread against librdkafka's mock cluster: every record arrives
//! decoded, in offset order per partition, followed by its partition's end;
//! a record that fails to decode keeps its original bytes (for the DLQ) and
//! no other record does; a partition drained of what the broker had is
//! reported at its end (from the cached watermark) after its last record,
//! never before.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use correlator::config::KafkaConfig;
use correlator::decode::Limits;
use correlator::kafka::consumer::QuietEof;
use correlator::kafka::fetch::{Fetch, Fetcher};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::brokers::mock::MockKafka;
use crate::brokers::{now_ms, produce_all_blocking, unique_name, Msg};

fn alert(i: usize) -> String {
    format!(
        r#"{{"labels":{{"alertname":"Disk{i}","service":"svc-{i}"}},"annotations":{{"summary":"disk {i}"}}}}"#
    )
}

/// A fetch thread on the daemon's consumer settings, assigned to
/// `partitions` of `topic` from the beginning.
fn fetch_from_start(kafka: &MockKafka, topic: &str, partitions: i32) -> Fetcher {
    let kcfg = KafkaConfig {
        brokers: kafka.bootstrap(),
        group_id: unique_name("fetch-group"),
        ..KafkaConfig::default()
    };
    let consumer: BaseConsumer<QuietEof> = correlator::kafka::consumer_config(&kcfg)
        .create_with_context(QuietEof)
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    Fetcher::spawn(Arc::new(consumer), Limits::default()).expect("spawn fetch thread")
}

#[test]
fn fetch_thread_decodes_in_partition_order_and_keeps_only_rejected_bytes() {
    let kafka = MockKafka::start(1);
    let topic = unique_name("fetch");
    kafka.create_topic(&topic, 3);
    let base = now_ms() - 60_000;
    let mut msgs = Vec::new();
    for i in 0..60 {
        let payload = if i == 31 {
            "{not json".to_string()
        } else {
            alert(i)
        };
        msgs.push(
            Msg::new(format!("key-{i}"), payload)
                .partition((i % 3) as i32)
                .timestamp(base + i as i64),
        );
    }
    // In four rounds: each partition's records are four message sets, which
    // the mock broker returns one per fetch, all with the same high
    // watermark; an end reported after any but the last would show.
    for round in msgs.chunks(15) {
        produce_all_blocking(&kafka.bootstrap(), &topic, round);
    }

    let mut fetcher = fetch_from_start(&kafka, &topic, 3);

    // partition -> offsets in arrival order; partitions at their end.
    let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut eof_after: BTreeMap<i32, usize> = BTreeMap::new();
    // partition -> records received when the fetch thread said it ended.
    let mut end_after: BTreeMap<i32, usize> = BTreeMap::new();
    let mut rejected = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while offsets.values().map(Vec::len).sum::<usize>() < msgs.len()
        || eof_after.len() < 3
        || end_after.len() < 3
        || eof_after
            .iter()
            .any(|(p, n)| *n < offsets.get(p).map_or(0, Vec::len))
    {
        assert!(
            Instant::now() < deadline,
            "fetched {offsets:?}, ends {eof_after:?}"
        );
        match fetcher.next(Duration::from_millis(100)) {
            Some(Fetch::Record(f)) => {
                assert_eq!(&*f.topic, topic.as_str());
                let i = (f.offset * 3 + i64::from(f.partition)) as usize;
                assert_eq!(f.timestamp, Some(base + i as i64), "record {i}");
                assert_eq!(f.now.0, base + i as i64, "a past timestamp is the clock");
                let key = format!("key-{i}");
                assert_eq!(
                    f.size,
                    key.len() + msgs[i].payload.as_ref().map_or(0, Vec::len)
                );
                match f.rejected {
                    Some(r) => {
                        assert!(!f.decoded.errors.is_empty());
                        assert_eq!(r.key, key.as_bytes());
                        assert_eq!(r.payload, b"{not json");
                        rejected.push(i);
                    }
                    None => {
                        assert!(f.decoded.errors.is_empty(), "record {i}: {:?}", f.decoded);
                        assert_eq!(f.decoded.signals.len(), 1, "record {i}");
                    }
                }
                offsets.entry(f.partition).or_default().push(f.offset);
            }
            Some(Fetch::Eof(p)) => {
                eof_after.insert(p, offsets.get(&p).map_or(0, Vec::len));
            }
            Some(Fetch::End {
                topic: t,
                partition,
            }) => {
                assert_eq!(&*t, topic.as_str());
                let got = offsets.get(&partition).map_or(0, Vec::len);
                assert_eq!(
                    got, 20,
                    "partition {partition} said ended after {got} of 20"
                );
                end_after.insert(partition, got);
            }
            Some(Fetch::Error(e)) => panic!("consumer error: {e}"),
            None => {}
        }
    }
    assert_eq!(rejected, vec![31]);
    for (p, got) in &offsets {
        assert_eq!(
            *got,
            (0..20).collect::<Vec<i64>>(),
            "partition {p} in offset order"
        );
    }
    // Dropping the handle stops the thread (it would hang the test otherwise).
    crate::brokers::drop_with_deadline("fetcher", fetcher, Duration::from_secs(10));
}

/// A record's clock is its timestamp, but never later than the wall clock
/// when it was fetched: a producer whose clock runs ahead cannot run the
/// engine's ahead (and a past timestamp after it is its own clock again).
#[test]
fn a_timestamp_ahead_of_the_wall_clock_is_capped_to_it() {
    let kafka = MockKafka::start(1);
    let topic = unique_name("fetch-future");
    kafka.create_topic(&topic, 1);
    let past = now_ms() - 60_000;
    let ahead = now_ms() + 86_400_000;
    let msgs: Vec<Msg> = [past, ahead, past + 1]
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            Msg::new(format!("k{i}"), alert(i))
                .partition(0)
                .timestamp(*ts)
        })
        .collect();
    produce_all_blocking(&kafka.bootstrap(), &topic, &msgs);
    let started = now_ms();
    let mut fetcher = fetch_from_start(&kafka, &topic, 1);
    let mut clocks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while clocks.len() < 3 {
        assert!(Instant::now() < deadline, "fetched {clocks:?}");
        if let Some(Fetch::Record(f)) = fetcher.next(Duration::from_millis(100)) {
            assert_eq!(f.timestamp, Some(msgs[clocks.len()].timestamp.unwrap()));
            clocks.push(f.now.0);
        }
    }
    let received = now_ms();
    assert_eq!(clocks[0], past);
    assert!(
        (started..=received).contains(&clocks[1]),
        "a timestamp a day ahead gets the wall clock: {} not in {started}..={received}",
        clocks[1]
    );
    assert_eq!(clocks[2], past + 1);
    crate::brokers::drop_with_deadline("fetcher", fetcher, Duration::from_secs(10));
}
