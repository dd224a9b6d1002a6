//! The realistic alert generator shared by the replay and end-to-end
//! benchmarks (included with `#[path]`): the same label sets, services and
//! rules, so their figures describe the same stream.

#![allow(dead_code, reason = "each bench uses a subset")]

use correlator::alert::Timestamp;

/// Correlation rules (realistic: two rules, topology).
pub const RULES: &str = r#"
[dedup]
resolve_timeout = "5m"
# The generated webhook and PagerDuty senders re-send within minutes and
# resolve by silence: they expire like the API v2 ones.
webhook_resolve_timeout = "5m"
pagerduty_resolve_timeout = "5m"
[[rules]]
name = "by-service"
matchers = ['severity=~"critical|warning"', 'env!="dev"']
group_by = ["env", "service"]
window = "10m"
reopen_window = "30m"
[[rules]]
name = "node-storm"
matchers = ['alertname=~"Node.*"']
group_by = ["cluster"]
min_alerts = 3
[topology]
label = "service"
window = "5m"
[topology.depends_on]
svc-0 = ["svc-1", "svc-2"]
svc-1 = ["svc-3"]
svc-10 = ["svc-11"]
"#;

/// xorshift: deterministic, no dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub const NAMES: [&str; 12] = [
    "HighLatency",
    "ErrorRate",
    "PodCrashLooping",
    "NodeDown",
    "DiskFull",
    "CPUThrottling",
    "MemoryPressure",
    "TargetDown",
    "CertExpiring",
    "QueueBacklog",
    "ReplicationLag",
    "NodeNotReady",
];
pub const SEVERITIES: [&str; 4] = ["critical", "warning", "warning", "info"];
/// Services in the generated stream (`svc-0` … `svc-399`).
pub const SERVICES: u64 = 400;

/// Labels of alert number `i` of the pool: 8 to 12 labels.
pub fn labels_of(i: u64) -> Vec<(String, String)> {
    let mut r = Rng(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let svc = i % SERVICES;
    let mut l = vec![
        (
            "alertname".to_string(),
            NAMES[(r.below(12)) as usize].to_string(),
        ),
        ("service".to_string(), format!("svc-{svc}")),
        (
            "env".to_string(),
            if svc.is_multiple_of(7) {
                "staging"
            } else {
                "prod"
            }
            .to_string(),
        ),
        ("cluster".to_string(), format!("eu{}", svc % 4)),
        ("namespace".to_string(), format!("team-{}", svc % 25)),
        (
            "instance".to_string(),
            format!("10.{}.{}.{}:9100", svc % 250, i % 250, r.below(250)),
        ),
        (
            "severity".to_string(),
            SEVERITIES[r.below(4) as usize].to_string(),
        ),
        ("job".to_string(), format!("svc-{svc}-exporter")),
    ];
    let extra = r.below(5);
    let more = [
        (
            "pod",
            format!("svc-{svc}-{:x}-{:x}", r.next() % 0xfffff, r.next() % 0xffff),
        ),
        ("region", "europe-west1".to_string()),
        ("team", format!("sre-{}", svc % 9)),
        ("container", "app".to_string()),
    ];
    for (k, v) in more.into_iter().take(extra as usize) {
        l.push((k.to_string(), v));
    }
    l
}

pub fn obj(pairs: &[(String, String)]) -> serde_json::Value {
    serde_json::Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect(),
    )
}

/// One generated Kafka record.
pub struct GenRecord {
    /// Index of the service (`svc-N`): the bench's partition key.
    pub svc: u64,
    /// Record timestamp (ms), the daemon's engine clock.
    pub ts: i64,
    pub body: Vec<u8>,
}

/// The benches' stream: record `k` has timestamp `start + k` ms;
/// 20,000-alert pool, Zipf-ish re-sends, 5% resolutions, 60% Alertmanager
/// webhook, 25% API v2, 15% PagerDuty.
pub struct Generator {
    r: Rng,
    start: i64,
    k: i64,
    /// Milliseconds between records (1 unless [`Generator::spread`]).
    step: i64,
}

impl Generator {
    pub fn new(start: i64) -> Generator {
        Generator {
            r: Rng(42),
            start,
            k: 0,
            step: 1,
        }
    }

    /// The same stream with records `step_ms` apart and each alert's
    /// `startsAt` a minute before its record: a long history of separate
    /// episodes (for benches that need days of engine time).
    pub fn spread(start: i64, step_ms: i64) -> Generator {
        Generator {
            step: step_ms,
            ..Generator::new(start)
        }
    }

    pub fn next_record(&mut self) -> GenRecord {
        const POOL: u64 = 20_000;
        let r = &mut self.r;
        let ts = Timestamp(self.start + self.k * self.step);
        self.k += 1;
        let i = if r.below(4) == 0 {
            r.below(POOL)
        } else {
            r.below(POOL / 20)
        };
        let resolved = r.below(20) == 0;
        let labels = labels_of(i);
        let summary = format!(
            "{} on svc-{} is {} above threshold",
            labels[0].1,
            i % SERVICES,
            r.below(1000)
        );
        let started = if self.step == 1 {
            Timestamp(self.start - 60_000)
        } else {
            Timestamp(ts.0 - 60_000)
        }
        .to_rfc3339();
        let value = match r.below(20) {
            0..=11 => serde_json::json!({
                "version": "4", "groupKey": format!("{{}}:{{service=\"svc-{}\"}}", i % SERVICES),
                "status": if resolved { "resolved" } else { "firing" },
                "receiver": "correlator", "groupLabels": {"service": format!("svc-{}", i % SERVICES)},
                "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
                "alerts": [{
                    "status": if resolved { "resolved" } else { "firing" },
                    "labels": obj(&labels), "annotations": {"summary": summary},
                    "startsAt": started,
                    "endsAt": if resolved { ts.to_rfc3339() } else { "0001-01-01T00:00:00Z".to_string() },
                    "generatorURL": "http://prometheus:9090/graph", "fingerprint": "0000000000000000"
                }]
            }),
            12..=16 => serde_json::json!([{
                "labels": obj(&labels), "annotations": {"summary": summary},
                "startsAt": started,
                "endsAt": if resolved { ts.to_rfc3339() } else { Timestamp(ts.0 + 240_000).to_rfc3339() },
                "generatorURL": "http://prometheus:9090/graph"
            }]),
            _ => {
                let custom: serde_json::Map<String, serde_json::Value> = labels
                    .iter()
                    .skip(1)
                    .map(|(k, v)| (k.clone(), v.clone().into()))
                    .collect();
                serde_json::json!({
                    "routing_key": "R0123456789abcdef0123456789abcdef",
                    "event_action": if resolved { "resolve" } else { "trigger" },
                    "dedup_key": format!("pd-{i}"),
                    "payload": {"summary": summary, "source": format!("svc-{}", i % SERVICES),
                        "severity": "critical", "component": "api", "custom_details": custom}
                })
            }
        };
        GenRecord {
            svc: i % SERVICES,
            ts: ts.0,
            body: serde_json::to_vec(&value).expect("serialize record"),
        }
    }
}
