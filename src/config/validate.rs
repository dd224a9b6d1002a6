//! Semantic checks on a parsed configuration: every problem is collected,
//! each naming its key and reason.

use super::{Assignment, Config, ConfigIssue};

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
        if k.batch_max == 0 || k.batch_max > 100_000 {
            push(
                "kafka.batch_max".into(),
                format!("{} is out of range 1..=100000", k.batch_max),
            );
        }
        if self.store.cache_mib == 0 || self.store.cache_mib > 65_536 {
            push(
                "store.cache_mib".into(),
                format!("{} is out of range 1..=65536", self.store.cache_mib),
            );
        }
        if k.tick_interval.0.is_zero() {
            push(
                "kafka.tick_interval".into(),
                "must be greater than 0".into(),
            );
        }
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
        let d = &self.dedup;
        if d.resolve_timeout.0.is_zero() {
            push(
                "dedup.resolve_timeout".into(),
                "must be greater than 0".into(),
            );
        }
        if d.flap_threshold < 2 {
            push(
                "dedup.flap_threshold".into(),
                format!(
                    "{} is below 2: every alert would be flapping",
                    d.flap_threshold
                ),
            );
        }
        if d.flap_window.0.is_zero() {
            push("dedup.flap_window".into(), "must be greater than 0".into());
        }
        for (i, l) in d.identity_labels.iter().enumerate() {
            if l.is_empty() {
                push(
                    format!("dedup.identity_labels[{i}]"),
                    "empty label name".into(),
                );
            }
        }
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
            }
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
        let p = &self.problems;
        if p.min_incidents < 2 {
            push(
                "problems.min_incidents".into(),
                format!("{} is below 2: a problem is a recurrence", p.min_incidents),
            );
        }
        // problems.similarity, .depth and .masks are checked where the miner is
        // built (EngineConfig::compile), so each problem is reported once.
        let l = &self.limits;
        for (key, v) in [
            ("limits.max_record_bytes", l.max_record_bytes),
            ("limits.max_alerts_per_record", l.max_alerts_per_record),
            ("limits.max_labels", l.max_labels),
            ("limits.max_label_name_bytes", l.max_label_name_bytes),
            ("limits.max_label_value_bytes", l.max_label_value_bytes),
            ("limits.max_annotation_bytes", l.max_annotation_bytes),
        ] {
            if v == 0 {
                push(key.into(), "must be greater than 0".into());
            }
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
