//! `--embedded-kafka`: librdkafka's mock cluster, in process, speaking the
//! real protocol on a local port, so the daemon runs with nothing installed.
//! Its data lives and dies with the process (see the consumer's offset check).

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::config::KafkaConfig;
use crate::kafka::KafkaError;

/// Partitions per topic on the embedded broker.
pub const PARTITIONS: i32 = 3;

pub struct Embedded {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Embedded {
    /// Starts a one-broker cluster and creates every configured topic.
    pub fn start(k: &KafkaConfig) -> Result<Embedded, KafkaError> {
        let cluster = MockCluster::new(1)?;
        let mut topics: Vec<&str> = k.alert_topics.iter().map(String::as_str).collect();
        topics.push(&k.incident_topic);
        topics.push(&k.dlq_topic);
        for t in topics {
            cluster.create_topic(t, PARTITIONS, 1)?;
        }
        Ok(Embedded { cluster })
    }

    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}
