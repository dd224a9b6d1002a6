//! The TOML configuration: every key documented in `config/correlator.toml`.
//!
//! Loading happens in two phases, like Vector's `validate`: TOML syntax and
//! types first (the `toml` crate names line, column and key), then semantic
//! checks that collect *every* problem, each naming file, key and reason.
//! Bad config never starts anything.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::decode::Limits;

/// A duration written the humantime way (`"30s"`, `"5m"`, `"7d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {s:?}: {e} (write e.g. \"30s\", \"5m\", \"2h\", \"7d\")"
                ))
            })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

fn secs(n: u64) -> HumanDuration {
    HumanDuration(Duration::from_secs(n))
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub dedup: DedupConfig,
    #[serde(default)]
    pub incidents: IncidentsConfig,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub topology: TopologyConfig,
    #[serde(default)]
    pub priority: PriorityConfig,
    #[serde(default)]
    pub problems: ProblemsConfig,
    #[serde(default)]
    pub limits: Limits,
}

/// How partitions are owned: through the consumer group, or assigned by hand
/// at the offsets in redb (one daemon per partition set, no group coordination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Assignment {
    #[default]
    Group,
    Manual,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub alert_topics: Vec<String>,
    pub incident_topic: String,
    pub dlq_topic: String,
    /// Label producers key alerts by (the correlation domain); documentation
    /// for producers and used by `correlator send` and the webhook receiver.
    pub partition_key: String,
    pub assignment: Assignment,
    /// With `assignment = "manual"`: the partitions to own (empty = all).
    pub partitions: Vec<i32>,
    /// Most records handled in one store transaction.
    pub batch_max: usize,
    /// How long to wait to fill a batch once the first record is in hand.
    pub batch_linger: HumanDuration,
    /// How often `tick` runs so timeouts fire with no traffic.
    pub tick_interval: HumanDuration,
    pub session_timeout: HumanDuration,
    /// Extra librdkafka properties passed to consumer and producer as is.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "correlator".into(),
            alert_topics: vec!["alerts".into()],
            incident_topic: "incidents".into(),
            dlq_topic: "alerts-dlq".into(),
            partition_key: "cluster".into(),
            assignment: Assignment::Group,
            partitions: Vec::new(),
            batch_max: 100_000,
            batch_linger: HumanDuration(Duration::from_millis(5)),
            tick_interval: secs(1),
            session_timeout: secs(10),
            properties: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// redb's page cache, in MiB: bounds the store's share of the daemon's
    /// memory (redb's own default, 1 GiB, would fill any container limit as
    /// the store grows); pages beyond it are read from the OS page cache.
    pub cache_mib: usize,
}

impl StoreConfig {
    /// `cache_mib` in bytes, as redb takes it.
    pub fn cache_bytes(&self) -> usize {
        self.cache_mib << 20
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("data/correlator.redb"),
            cache_mib: 256,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
    /// Name of the environment variable holding the bearer token.
    pub token_env: String,
    pub max_body_bytes: usize,
    /// Longest wait for a request's headers, from the first byte read (or,
    /// on a kept-alive connection, from the end of the previous response).
    pub header_timeout: HumanDuration,
    /// Longest wait for the whole body of a request that changes state.
    pub body_timeout: HumanDuration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9464".into(),
            token_env: "CORRELATOR_API_TOKEN".into(),
            max_body_bytes: 1 << 20,
            header_timeout: secs(10),
            body_timeout: secs(30),
            max_connections: 512,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Labels that make up alert identity; empty = all labels (Alertmanager).
    pub identity_labels: Vec<String>,
    /// A firing alert not re-sent for this long resolves (Alertmanager's
    /// `resolve_timeout`); an `endsAt` sent with the alert takes precedence.
    pub resolve_timeout: HumanDuration,
    pub flap_window: HumanDuration,
    pub flap_threshold: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            identity_labels: Vec::new(),
            resolve_timeout: secs(300),
            flap_window: secs(900),
            flap_threshold: 4,
        }
    }
}

/// Settings for alerts that match no rule (one incident per fingerprint).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    pub default_reopen_window: HumanDuration,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig {
            default_reopen_window: secs(1800),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    #[serde(default)]
    pub matchers: Vec<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default = "default_window")]
    pub window: HumanDuration,
    #[serde(default = "default_min_alerts")]
    pub min_alerts: usize,
    #[serde(default = "default_reopen")]
    pub reopen_window: HumanDuration,
}

fn default_window() -> HumanDuration {
    secs(600)
}
fn default_min_alerts() -> usize {
    1
}
fn default_reopen() -> HumanDuration {
    secs(1800)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologyConfig {
    pub label: String,
    pub window: HumanDuration,
    /// Labels that must be equal for two alerts to be linked (as in
    /// Alertmanager inhibit rules), e.g. `["env"]` so prod never merges with staging.
    pub equal: Vec<String>,
    pub depends_on: BTreeMap<String, Vec<String>>,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            label: "service".into(),
            window: secs(300),
            equal: Vec::new(),
            depends_on: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorityConfig {
    pub impact_label: String,
    pub urgency_label: String,
}

impl Default for PriorityConfig {
    fn default() -> Self {
        PriorityConfig {
            impact_label: "impact".into(),
            urgency_label: "urgency".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProblemsConfig {
    pub min_incidents: usize,
    pub lookback: HumanDuration,
    pub masks: Vec<String>,
    pub similarity: Option<f64>,
    pub depth: Option<usize>,
    /// How long a rejected signature stays suppressed.
    pub reject_suppression: HumanDuration,
}

impl Default for ProblemsConfig {
    fn default() -> Self {
        ProblemsConfig {
            min_incidents: 3,
            lookback: secs(7 * 86400),
            masks: Vec::new(),
            similarity: None,
            depth: None,
            reject_suppression: secs(30 * 86400),
        }
    }
}

/// One configuration problem: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub reason: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{}", render_issues(file, issues))]
    Invalid {
        file: String,
        issues: Vec<ConfigIssue>,
    },
}

fn render_issues(file: &str, issues: &[ConfigIssue]) -> String {
    let mut out = String::new();
    for (i, is) in issues.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{file}: {}: {}", is.key, is.reason));
    }
    out
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

impl Config {
    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` only names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let issues = cfg.validate();
        if issues.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                file: file.to_string(),
                issues,
            })
        }
    }

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
        let h = &self.http;
        for (key, d, max) in [
            (
                "http.header_timeout",
                h.header_timeout,
                Duration::from_secs(300),
            ),
            (
                "http.body_timeout",
                h.body_timeout,
                Duration::from_secs(600),
            ),
        ] {
            if d.0 < Duration::from_millis(100) || d.0 > max {
                push(
                    key.into(),
                    format!(
                        "{} is out of range 100ms..={}",
                        humantime::format_duration(d.0),
                        humantime::format_duration(max)
                    ),
                );
            }
        }
        if h.max_connections == 0 || h.max_connections > 65_536 {
            push(
                "http.max_connections".into(),
                format!("{} is out of range 1..=65536", h.max_connections),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Config::parse(text, "c.toml") {
            Ok(_) => panic!("config was accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_config_is_valid_with_defaults() {
        let c = Config::parse("", "c.toml").unwrap();
        assert_eq!(c.dedup.resolve_timeout.0, Duration::from_secs(300));
        assert_eq!(c.kafka.alert_topics, vec!["alerts".to_string()]);
    }

    #[test]
    fn unknown_key_named() {
        let e = err("[dedup]\nresolve_timout = \"5m\"\n");
        assert!(e.contains("c.toml") && e.contains("resolve_timout"), "{e}");
    }

    #[test]
    fn bad_duration_named() {
        let e = err("[dedup]\nresolve_timeout = \"5 parsecs\"\n");
        assert!(
            e.contains("invalid duration") && e.contains("resolve_timeout"),
            "{e}"
        );
    }

    #[test]
    fn semantic_errors_listed_together() {
        let e = err(
            "[[rules]]\nname = \"a\"\nmin_alerts = 0\n[[rules]]\nname = \"a\"\n[dedup]\nflap_threshold = 1\n",
        );
        assert!(
            e.contains("c.toml: rules[0].min_alerts: must be at least 1"),
            "{e}"
        );
        assert!(
            e.contains("c.toml: rules[1].name: \"a\" is used by an earlier rule"),
            "{e}"
        );
        assert!(e.contains("c.toml: dedup.flap_threshold"), "{e}");
    }

    #[test]
    fn store_cache_is_bounded_by_default_and_range_checked() {
        let c = Config::parse("", "c.toml").unwrap();
        assert_eq!(c.store.cache_mib, 256);
        let c = Config::parse("[store]\ncache_mib = 64\n", "c.toml").unwrap();
        assert_eq!(c.store.cache_mib, 64);
        let e = err("[store]\ncache_mib = 0\n");
        assert!(
            e.contains("c.toml: store.cache_mib: 0 is out of range 1..=65536"),
            "{e}"
        );
    }
}
