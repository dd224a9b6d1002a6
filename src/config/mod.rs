//! The TOML configuration: every key documented in `config/correlator.toml`.
//!
//! Loading happens in phases, like Vector's `validate`: TOML syntax first
//! (the `toml` crate names line and column), then reading every key into its
//! type, then semantic checks. Each phase reports *every* problem it finds,
//! each naming file, key and reason; a phase runs only if the one before it
//! found nothing, since its checks need the values it would read. Bad config
//! never starts anything.
//!
//! - this file: the types of every section, their defaults, and loading;
//! - [`read`](self::read): TOML values into these types, every unreadable
//!   key reported;
//! - [`ranges`]: the range of every duration, size and count key;
//! - [`validate`](self::validate): the semantic checks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::decode::Limits;

pub mod ranges;
mod read;
mod validate;

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
    pub matchers: MatchersConfig,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub topology: TopologyConfig,
    #[serde(default)]
    pub priority: PriorityConfig,
    #[serde(default)]
    pub problems: ProblemsConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
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
    /// An API v2 alert (Prometheus, the native format) sent without a future
    /// `endsAt` and not re-sent for this long resolves (Alertmanager's
    /// `resolve_timeout`); an `endsAt` sent with the alert takes precedence.
    pub resolve_timeout: HumanDuration,
    /// A firing alert from a notifier webhook (Alertmanager v4, Grafana) not
    /// re-sent for this long resolves. Those senders never send a firing
    /// alert's end and re-send only every `repeat_interval` (4h by default
    /// in both), so this must exceed it.
    pub webhook_resolve_timeout: HumanDuration,
    /// A PagerDuty trigger not re-sent for this long resolves; 0 = never (it
    /// stays open until its `resolve`, as in PagerDuty).
    pub pagerduty_resolve_timeout: HumanDuration,
    pub flap_window: HumanDuration,
    pub flap_threshold: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            identity_labels: Vec::new(),
            resolve_timeout: secs(300),
            webhook_resolve_timeout: secs(5 * 3600),
            pagerduty_resolve_timeout: secs(0),
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

/// How rule matchers are read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchersConfig {
    /// `"fallback"` (Alertmanager's default) or `"utf8"` (its strict mode).
    pub mode: crate::matcher::Mode,
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
    /// Least weighted Jaccard similarity of template sets for a match.
    pub similarity: f64,
    /// The template miner's (Drain) similarity threshold.
    pub template_similarity: Option<f64>,
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
            similarity: 0.5,
            template_similarity: None,
            depth: None,
            reject_suppression: secs(30 * 86400),
        }
    }
}

/// How long the store keeps what no longer changes (see the README,
/// "Retention"). Decided on the engine clock, so replay agrees.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// A closed or merged incident is deleted (with its members) this long
    /// after it closed or merged; a resolved alert no incident or group
    /// holds, this long after it resolved.
    pub closed_incidents: HumanDuration,
    /// A resolved, rejected or merged problem is deleted this long after
    /// its last change.
    pub resolved_problems: HumanDuration,
    /// Lines fed to the template miner between two snapshots of its state:
    /// a start re-feeds at most this many (plus one batch's).
    pub miner_snapshot_lines: usize,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            closed_incidents: secs(30 * 86400),
            resolved_problems: secs(180 * 86400),
            miner_snapshot_lines: 10_000,
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
        let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let cfg = read::read(text, table).map_err(|issues| ConfigError::Invalid {
            file: file.to_string(),
            issues,
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
}

#[cfg(test)]
mod tests;
