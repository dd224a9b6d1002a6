//! librdkafka's in-process mock cluster (`rdkafka::mocking::MockCluster`).
//!
//! ```ignore
//! let kafka = MockKafka::start(3);          // 3 brokers on local ports
//! kafka.create_topic("alerts", 3);
//! let bootstrap = kafka.bootstrap();        // "127.0.0.1:A,127.0.0.1:B,…"
//! kafka.cluster().broker_down(1).unwrap();  // error injection: the raw MockCluster
//! ```
//!
//! Facts (DESIGN.md): keeps only ~5 MiB / 100k messages per partition and
//! silently drops older ones (check offsets are contiguous); data dies with
//! the value; it does not cut a Fetch long-poll short (keep
//! `fetch.wait.max.ms` small); the CreateTopics admin API is not supported
//! (use [`MockKafka::create_topic`]). `MockCluster` holds a raw pointer: it is
//! neither `Send` nor `Sync`, so keep it in the test body (fine across
//! `.await` in a `#[tokio::test]` body), not in a spawned task.

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use super::wait_for_topic;

pub struct MockKafka {
    cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
    brokers: i32,
}

impl MockKafka {
    /// A mock cluster with `brokers` brokers (ids 1..=brokers).
    pub fn start(brokers: i32) -> MockKafka {
        let cluster = MockCluster::new(brokers)
            .unwrap_or_else(|e| panic!("start mock cluster with {brokers} brokers: {e}"));
        let bootstrap = cluster.bootstrap_servers();
        MockKafka {
            cluster,
            bootstrap,
            brokers,
        }
    }

    /// The cluster's `bootstrap.servers` list.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    pub fn brokers(&self) -> i32 {
        self.brokers
    }

    /// Creates `name` with `partitions` partitions, replication 1, and waits
    /// until metadata shows them.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_replicated(name, partitions, 1);
    }

    /// Like [`MockKafka::create_topic`] with a replication factor
    /// (<= number of brokers), for leader-change tests.
    pub fn create_topic_replicated(&self, name: &str, partitions: i32, replication: i32) {
        self.cluster
            .create_topic(name, partitions, replication)
            .unwrap_or_else(|e| panic!("mock create_topic {name}: {e}"));
        wait_for_topic(&self.bootstrap, name, partitions, Duration::from_secs(15));
    }

    /// The raw mock cluster, for error injection (`broker_down`,
    /// `request_errors`, `partition_leader`, `broker_round_trip_time`, …).
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }
}
