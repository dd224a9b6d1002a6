//! Semantic checks on a parsed configuration: every problem is collected,
//! each naming its key and reason.

use std::time::Duration;

use super::ranges::{self, Exact, Range};
use super::read::toml_key;
use super::{Assignment, Config, ConfigIssue, HumanDuration};

impl Config {
    /// Semantic checks; returns every problem found. The engine's own
    /// compilation (matchers, topology) adds its problems through
    /// [`crate::engine::EngineConfig::compile`].
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut push = |key: String, reason: String| issues.push(ConfigIssue { key, reason });
        let k = &self.kafka;
        if k.brokers.trim().is_empty() {
            push("kafka.brokers".into(), "must not be empty".into());
        }
        if k.alert_topics.is_empty() {
            push(
                "kafka.alert_topics".into(),
                "name at least one topic".into(),
            );
        }
        for (i, t) in k.alert_topics.iter().enumerate() {
            if let Err(e) = check_topic(t) {
                push(format!("kafka.alert_topics[{i}]"), e);
            }
        }
        for (key, t) in [
            ("kafka.incident_topic", &k.incident_topic),
            ("kafka.dlq_topic", &k.dlq_topic),
        ] {
            if let Err(e) = check_topic(t) {
                push(key.into(), e);
            }
            if k.alert_topics.contains(t) {
                push(
                    key.into(),
                    format!(
                        "{t:?} is also in kafka.alert_topics: output would be consumed as input"
                    ),
                );
            }
        }
        if k.incident_topic == k.dlq_topic {
            push(
                "kafka.dlq_topic".into(),
                "must differ from kafka.incident_topic".into(),
            );
        }
        if k.group_id.trim().is_empty() {
            push("kafka.group_id".into(), "must not be empty".into());
        }
        size(&mut push, "kafka.batch_max", k.batch_max, ranges::BATCH_MAX);
        size(
            &mut push,
            "store.cache_mib",
            self.store.cache_mib,
            ranges::CACHE_MIB,
        );
        duration(
            &mut push,
            "kafka.batch_linger",
            k.batch_linger,
            ranges::BATCH_LINGER,
        );
        duration(
            &mut push,
            "kafka.tick_interval",
            k.tick_interval,
            ranges::TICK_INTERVAL,
        );
        duration(
            &mut push,
            "kafka.session_timeout",
            k.session_timeout,
            ranges::SESSION_TIMEOUT,
        );
        if !k.partitions.is_empty() && k.assignment != Assignment::Manual {
            push(
                "kafka.partitions".into(),
                "only applies with kafka.assignment = \"manual\"".into(),
            );
        }
        if k.partitions.iter().any(|p| *p < 0) {
            push(
                "kafka.partitions".into(),
                "partition numbers are >= 0".into(),
            );
        }
        for (key, value) in &k.properties {
            if let Err(reason) = check_kafka_property(key, value) {
                push(format!("kafka.properties.{}", toml_key(key)), reason);
            }
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            push(
                "http.listen".into(),
                format!(
                    "{:?} is not an address like 127.0.0.1:9464",
                    self.http.listen
                ),
            );
        }
        if self.http.token_env.trim().is_empty() {
            push(
                "http.token_env".into(),
                "name the environment variable holding the API token".into(),
            );
        }
        size(
            &mut push,
            "http.max_body_bytes",
            self.http.max_body_bytes,
            ranges::BODY_BYTES,
        );
        duration(
            &mut push,
            "http.header_timeout",
            self.http.header_timeout,
            ranges::HEADER_TIMEOUT,
        );
        duration(
            &mut push,
            "http.body_timeout",
            self.http.body_timeout,
            ranges::BODY_TIMEOUT,
        );
        size(
            &mut push,
            "http.max_connections",
            self.http.max_connections,
            ranges::CONNECTIONS,
        );
        let d = &self.dedup;
        duration(
            &mut push,
            "dedup.resolve_timeout",
            d.resolve_timeout,
            ranges::WINDOW,
        );
        duration(
            &mut push,
            "dedup.webhook_resolve_timeout",
            d.webhook_resolve_timeout,
            ranges::WINDOW,
        );
        duration(
            &mut push,
            "dedup.pagerduty_resolve_timeout",
            d.pagerduty_resolve_timeout,
            ranges::WINDOW_OR_ZERO,
        );
        if d.flap_threshold < 2 {
            push(
                "dedup.flap_threshold".into(),
                format!(
                    "{} is below 2: every alert would be flapping",
                    d.flap_threshold
                ),
            );
        } else {
            size(
                &mut push,
                "dedup.flap_threshold",
                d.flap_threshold,
                ranges::FLAP_THRESHOLD,
            );
        }
        duration(
            &mut push,
            "dedup.flap_window",
            d.flap_window,
            ranges::WINDOW,
        );
        for (i, l) in d.identity_labels.iter().enumerate() {
            if l.is_empty() {
                push(
                    format!("dedup.identity_labels[{i}]"),
                    "empty label name".into(),
                );
            }
        }
        duration(
            &mut push,
            "incidents.default_reopen_window",
            self.incidents.default_reopen_window,
            ranges::WINDOW_OR_ZERO,
        );
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let key = format!("rules[{i}]");
            if r.name.trim().is_empty() {
                push(format!("{key}.name"), "must not be empty".into());
            } else if !names.insert(r.name.as_str()) {
                push(
                    format!("{key}.name"),
                    format!("{:?} is used by an earlier rule", r.name),
                );
            }
            if r.name == "default" {
                push(
                    format!("{key}.name"),
                    "\"default\" is reserved for alerts that match no rule".into(),
                );
            }
            if r.min_alerts == 0 {
                push(format!("{key}.min_alerts"), "must be at least 1".into());
            } else {
                size(
                    &mut push,
                    &format!("{key}.min_alerts"),
                    r.min_alerts,
                    ranges::MIN_ALERTS,
                );
            }
            duration(
                &mut push,
                &format!("{key}.window"),
                r.window,
                ranges::WINDOW_OR_ZERO,
            );
            duration(
                &mut push,
                &format!("{key}.reopen_window"),
                r.reopen_window,
                ranges::WINDOW_OR_ZERO,
            );
            if r.min_alerts > 1 && r.window.0.is_zero() {
                push(
                    format!("{key}.window"),
                    "must be greater than 0 when min_alerts > 1".into(),
                );
            }
            for (j, g) in r.group_by.iter().enumerate() {
                if g.is_empty() {
                    push(format!("{key}.group_by[{j}]"), "empty label name".into());
                }
                if g == "..." && r.group_by.len() > 1 {
                    push(
                        format!("{key}.group_by"),
                        "\"...\" (group by all labels) must stand alone".into(),
                    );
                }
            }
        }
        if self.topology.label.is_empty() && !self.topology.depends_on.is_empty() {
            push(
                "topology.label".into(),
                "must name the service label".into(),
            );
        }
        duration(
            &mut push,
            "topology.window",
            self.topology.window,
            ranges::WINDOW,
        );
        let p = &self.problems;
        if p.min_incidents < 2 {
            push(
                "problems.min_incidents".into(),
                format!("{} is below 2: a problem is a recurrence", p.min_incidents),
            );
        } else {
            size(
                &mut push,
                "problems.min_incidents",
                p.min_incidents,
                ranges::MIN_INCIDENTS,
            );
        }
        duration(&mut push, "problems.lookback", p.lookback, ranges::WINDOW);
        duration(
            &mut push,
            "problems.reject_suppression",
            p.reject_suppression,
            ranges::WINDOW_OR_ZERO,
        );
        let (lo, hi) = ranges::PROBLEM_SIMILARITY;
        if !(lo..=hi).contains(&p.similarity) {
            push(
                "problems.similarity".into(),
                format!("{} is out of range {lo:?}..={hi:?}", p.similarity),
            );
        }
        // problems.template_similarity, .depth and .masks are checked where the miner is
        // built (EngineConfig::compile), so each problem is reported once.
        let r = &self.retention;
        duration(
            &mut push,
            "retention.closed_incidents",
            r.closed_incidents,
            ranges::RETENTION,
        );
        duration(
            &mut push,
            "retention.resolved_problems",
            r.resolved_problems,
            ranges::RETENTION,
        );
        size(
            &mut push,
            "retention.miner_snapshot_lines",
            r.miner_snapshot_lines,
            ranges::MINER_SNAPSHOT_LINES,
        );
        let l = &self.limits;
        for (key, v, range) in [
            (
                "limits.max_record_bytes",
                l.max_record_bytes,
                ranges::BODY_BYTES,
            ),
            (
                "limits.max_alerts_per_record",
                l.max_alerts_per_record,
                ranges::ALERTS_PER_RECORD,
            ),
            ("limits.max_labels", l.max_labels, ranges::LABELS),
            (
                "limits.max_label_name_bytes",
                l.max_label_name_bytes,
                ranges::LABEL_NAME_BYTES,
            ),
            (
                "limits.max_label_value_bytes",
                l.max_label_value_bytes,
                ranges::TEXT_BYTES,
            ),
            (
                "limits.max_annotation_bytes",
                l.max_annotation_bytes,
                ranges::TEXT_BYTES,
            ),
        ] {
            size(&mut push, key, v, range);
        }
        // The engine compiles matchers and the topology graph; its problems
        // are reported here too so `check-config` shows everything at once.
        issues.extend(
            crate::engine::EngineConfig::compile(self)
                .err()
                .unwrap_or_default(),
        );
        issues
    }
}

/// Reports a duration key outside its range, the value written in the
/// largest unit that states it exactly.
fn duration(
    push: &mut impl FnMut(String, String),
    key: &str,
    v: HumanDuration,
    range: Range<Duration>,
) {
    if !range.contains(&v.0) {
        push(
            key.into(),
            format!("{} is out of range {range}", Exact(v.0)),
        );
    }
}

/// Reports a size or count key outside its range.
fn size(push: &mut impl FnMut(String, String), key: &str, v: usize, range: Range<usize>) {
    if !range.contains(&v) {
        push(key.into(), format!("{v} is out of range {range}"));
    }
}

/// Asks librdkafka itself whether it knows `key` and accepts `value` for it,
/// as `run` will when it builds the consumer and producer: an unknown
/// property or a bad value is refused here with librdkafka's reason. Only a
/// configuration object is built; nothing connects.
fn check_kafka_property(key: &str, value: &str) -> Result<(), String> {
    let mut c = rdkafka::ClientConfig::new();
    c.set(key, value);
    match c.create_native_config() {
        Ok(_) => Ok(()),
        Err(rdkafka::error::KafkaError::ClientConfig(_, reason, _, _)) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

fn check_topic(t: &str) -> Result<(), String> {
    if t.is_empty() || t.len() > 249 {
        return Err(format!("topic name {t:?} must be 1 to 249 characters"));
    }
    if t == "." || t == ".." {
        return Err(format!("topic name {t:?} is not allowed"));
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(format!(
            "topic name {t:?} may only contain ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}
