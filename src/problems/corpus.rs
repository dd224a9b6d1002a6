//! A labelled, synthetic corpus of alert texts (`alertname summary`), for
//! the miner's tests and benchmarks.
//!
//! The summaries follow the wording of widely deployed alerting rules
//! (kube-prometheus, node-exporter, Alertmanager and Prometheus mixins) and
//! of typical hand-written service alerts. Each line is generated from one
//! of [`ALERT_TEMPLATES`] by filling its slots with values of the kind real
//! labels carry — namespaces, pod names with ReplicaSet hashes, IPs with
//! ports, percentages, durations, UUIDs, paths, hex ids — so the label of a
//! line (its template index) is the grouping a miner should find.
//!
//! Generation is deterministic: a given seed always yields the same lines.

/// The slot kinds of [`ALERT_TEMPLATES`], written `{kind}` in a template.
const SLOTS: &[(&str, &[&str])] = &[
    (
        "ns",
        &[
            "default",
            "monitoring",
            "kube-system",
            "payments",
            "checkout",
            "search",
            "ingress-nginx",
            "cert-manager",
            "logging",
            "data",
        ],
    ),
    (
        "app",
        &[
            "api",
            "worker",
            "frontend",
            "cart",
            "auth",
            "billing",
            "redis",
            "postgres",
            "kafka",
            "grafana",
            "gateway",
            "scheduler",
        ],
    ),
    (
        "svc",
        &[
            "checkout",
            "payments-api",
            "search",
            "user-service",
            "inventory",
            "orders",
            "notifications",
            "catalog",
            "shipping",
            "recommendations",
        ],
    ),
    (
        "integration",
        &["slack", "pagerduty", "email", "webhook", "opsgenie"],
    ),
    (
        "device",
        &[
            "/dev/sda1",
            "/dev/nvme0n1p2",
            "/dev/xvda1",
            "/dev/mapper/vg0-root",
        ],
    ),
    (
        "mount",
        &["/", "/var/lib/docker", "/data", "/var/log", "/home"],
    ),
    (
        "topic",
        &[
            "orders.v1",
            "payments.events",
            "audit-log",
            "clicks",
            "user.updates",
        ],
    ),
];

/// Alert templates: `AlertName summary`, with `{kind}` slots. Kinds other
/// than those of `SLOTS` are generated: `{pod}`, `{ip}`, `{ipport}`, `{pct}`,
/// `{num}`, `{float}`, `{dur}`, `{ms}`, `{bytes}`, `{uuid}`, `{hex}`, `{node}`,
/// `{date}`.
pub const ALERT_TEMPLATES: &[&str] = &[
    "KubePodCrashLooping Pod {ns}/{pod} ({app}) is in waiting state (reason: \"CrashLoopBackOff\").",
    "KubePodCrashLooping Pod {ns}/{pod} is restarting {num} times / 10 minutes.",
    "KubePodNotReady Pod {ns}/{pod} has been in a non-ready state for longer than 15 minutes.",
    "KubeDeploymentReplicasMismatch Deployment {ns}/{app} has not matched the expected number of replicas for longer than 15 minutes.",
    "KubeContainerWaiting pod/{pod} in namespace {ns} on container {app} has been in waiting state for longer than 1 hour.",
    "KubeJobFailed Job {ns}/{app}-{num} failed to complete. Removing failed job after investigation should clear this alert.",
    "KubePersistentVolumeFillingUp The PersistentVolume claimed by data-{app}-{num} in Namespace {ns} is only {pct} free.",
    "CPUThrottlingHigh {pct} throttling of CPU in namespace {ns} for container {app} in pod {pod}.",
    "KubeNodeNotReady {node} has been unready for more than 15 minutes.",
    "NodeFilesystemSpaceFillingUp Filesystem on {device} at {ipport} has only {float}% available space left and is filling up.",
    "NodeFilesystemAlmostOutOfSpace Filesystem on {device} mounted on {mount} at {node} has only {pct} available space left.",
    "NodeHighNumberConntrackEntriesUsed {pct} of conntrack entries are used on {ipport}.",
    "TargetDown {float}% of the {app}/{app} targets in {ns} namespace are down.",
    "PrometheusRuleFailures Prometheus {ns}/prometheus-k8s-{num} has failed to evaluate {num} rules in the last 5m.",
    "AlertmanagerFailedToSendAlerts Alertmanager {ns}/alertmanager-main-{num} failed to send {pct} of notifications to {integration}.",
    "HighLatency p99 latency of {svc} is {dur} above {ms}",
    "HighErrorRate {svc} is returning {pct} 5xx responses over the last 5 minutes",
    "DiskAlmostFull Disk {device} on {node} is {pct} full ({bytes} left)",
    "KafkaConsumerLag Consumer group {svc} lag on topic {topic} partition {num} is {num} messages",
    "PostgresReplicationLag Replication lag on postgres-replica-{num} is {dur}",
    "PaymentFailures Payment {uuid} failed for order {hex} with error code E{num}",
    "CertificateExpiry Certificate for {svc}.example.com expires on {date}",
    "HostOutOfMemory Node memory is filling up on {ipport}: {pct} left",
    "BlackboxProbeFailed Probe to https://{svc}.example.com/healthz failed from {ip}",
    "Watchdog This is an alert meant to ensure that the entire alerting pipeline is functional.",
];

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn alnum(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const POD_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const HEX: &[u8] = b"0123456789abcdef";

fn fill(rng: &mut SplitMix, kind: &str, out: &mut String) {
    use std::fmt::Write;
    if let Some((_, values)) = SLOTS.iter().find(|(k, _)| *k == kind) {
        out.push_str(rng.pick(values));
        return;
    }
    let _ = match kind {
        "pod" => {
            let app = rng.pick(SLOTS[1].1);
            let (rs, id) = (rng.alnum(9, POD_ALPHABET), rng.alnum(5, POD_ALPHABET));
            write!(out, "{app}-{rs}-{id}")
        }
        "ip" => {
            let (a, b, c) = (rng.below(256), rng.below(256), rng.below(256));
            write!(out, "10.{a}.{b}.{c}")
        }
        "ipport" => {
            let (a, b, c, p) = (
                rng.below(256),
                rng.below(256),
                rng.below(256),
                rng.below(60000),
            );
            write!(out, "10.{a}.{b}.{c}:{}", 1024 + p)
        }
        "pct" => write!(out, "{:.2}%", rng.below(10_000) as f64 / 100.0),
        "num" => write!(out, "{}", rng.below(1000)),
        "float" => write!(out, "{:.3}", rng.below(100_000) as f64 / 1000.0),
        "dur" => write!(out, "{:.2}s", rng.below(10_000) as f64 / 100.0),
        "ms" => write!(out, "{}ms", 50 * (1 + rng.below(20))),
        "bytes" => write!(
            out,
            "{}{}",
            1 + rng.below(999),
            rng.pick(&["KB", "MB", "GB", "GiB"])
        ),
        "uuid" => {
            let h = |rng: &mut SplitMix, n| rng.alnum(n, HEX);
            let (a, b, c, d, e) = (h(rng, 8), h(rng, 4), h(rng, 4), h(rng, 4), h(rng, 12));
            write!(out, "{a}-{b}-{c}-{d}-{e}")
        }
        "hex" => write!(out, "{}", rng.alnum(16, HEX)),
        "node" => write!(
            out,
            "ip-10-0-{}-{}.ec2.internal",
            rng.below(256),
            rng.below(256)
        ),
        "date" => write!(
            out,
            "2026-{:02}-{:02}",
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        other => write!(out, "{{{other}}}"),
    };
}

/// Renders template `t` with fresh slot values.
pub fn render(rng: &mut SplitMix, t: &str) -> String {
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
        fill(rng, &rest[open + 1..close.min(rest.len())], &mut out);
        rest = rest.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// `n` alert lines with their template index, templates drawn with a
/// skewed (Zipf-like) frequency as in real alert streams.
pub fn alert_lines(n: usize, seed: u64) -> Vec<(String, usize)> {
    let mut rng = SplitMix::new(seed);
    let weights: Vec<u64> = (1..=ALERT_TEMPLATES.len() as u64)
        .map(|r| 1000 / r)
        .collect();
    let total: u64 = weights.iter().sum();
    (0..n)
        .map(|_| {
            let mut x = rng.below(total);
            let mut i = 0;
            while x >= weights[i] {
                x -= weights[i];
                i += 1;
            }
            (render(&mut rng, ALERT_TEMPLATES[i]), i)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_filled() {
        let a = alert_lines(200, 7);
        assert_eq!(a, alert_lines(200, 7));
        assert_ne!(a, alert_lines(200, 8));
        for (line, _) in &a {
            assert!(!line.contains(['{', '}']), "unfilled slot in {line:?}");
        }
    }
}
