//! The realistic alert generator shared by the replay and end-to-end
//! benchmarks (included with `#[path]`): the same label sets, services and
//! rules, so their figures describe the same stream.

#![allow(dead_code, reason = "each bench uses a subset")]

/// Correlation rules (realistic: two rules, topology).
pub const RULES: &str = r#"
[dedup]
resolve_timeout = "5m"
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
