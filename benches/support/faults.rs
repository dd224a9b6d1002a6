//! Streams of recurring faults with their truth, and a scorer of how well
//! problem records group them: used by `benches/problem_quality.rs` and
//! the integration tests.
//!
//! A *fault* is a cause that recurs: each occurrence raises several alert
//! kinds on one service (or a cascade along a dependency chain), in a
//! random order, with numbers, hosts and pods that differ every time, and
//! now and then one stray alert of another kind beside them. Around the
//! faults: background alerts that fire once, and distractors (a fault's
//! alert kind on another service, another kind once or twice). The truth
//! is which fault each alert belongs to, known by its label set (hosts and
//! pods make every occurrence's label sets unique).
//!
//! The score is pairwise over incidents: a pair is predicted together when
//! both incidents are in one problem, and truly together when both belong
//! to one fault. Precision, recall and F1 over those pairs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Value};

/// xorshift64*: deterministic, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// An alert kind: its name and how its summary is written.
#[derive(Clone, Copy)]
pub struct Kind {
    pub name: &'static str,
    pub severity: &'static str,
    /// `{svc}`, `{host}`, `{pod}`, `{n}`, `{m}`, `{db}` are filled in.
    pub summary: &'static str,
}

pub const KINDS: &[Kind] = &[
    Kind {
        name: "HighMemoryUsage",
        severity: "warning",
        summary: "Memory usage on {host} is {n}% (limit {m} MiB)",
    },
    Kind {
        name: "CacheEvictionsHigh",
        severity: "warning",
        summary: "{n} evictions/s on {pod}",
    },
    Kind {
        name: "DiskUsageHigh",
        severity: "critical",
        summary: "Disk usage of {db} data volume on {host} at {n}%",
    },
    Kind {
        name: "SlowQueries",
        severity: "warning",
        summary: "{n} queries slower than {m} ms on {db}",
    },
    Kind {
        name: "ConnectionPoolExhausted",
        severity: "critical",
        summary: "{db} connection pool exhausted ({n} of {m} in use)",
    },
    Kind {
        name: "HighErrorRate",
        severity: "critical",
        summary: "{n}% of requests to {svc} fail with 5xx ({m} req/s)",
    },
    Kind {
        name: "NodeFilesystemAlmostFull",
        severity: "warning",
        summary: "Filesystem / on {host} has {n}% left",
    },
    Kind {
        name: "PodCrashLooping",
        severity: "critical",
        summary: "Pod {pod} restarted {n} times in {m} minutes",
    },
    Kind {
        name: "HighLatency",
        severity: "warning",
        summary: "p99 latency of {svc} is {n} ms (SLO {m} ms)",
    },
    Kind {
        name: "QueueBacklogGrowing",
        severity: "warning",
        summary: "Queue {svc}-jobs has {n} messages waiting ({m}/s in)",
    },
    Kind {
        name: "ReplicationLag",
        severity: "warning",
        summary: "Replica {host} of {db} is {n} s behind",
    },
    Kind {
        name: "OOMKilled",
        severity: "critical",
        summary: "Container {svc} in pod {pod} was OOM killed ({n} MiB)",
    },
    Kind {
        name: "CPUThrottling",
        severity: "warning",
        summary: "{n}% of CPU periods throttled for {pod}",
    },
    Kind {
        name: "CertificateExpiringSoon",
        severity: "warning",
        summary: "Certificate of {svc} expires in {n} days",
    },
    Kind {
        name: "TooManyOpenFiles",
        severity: "warning",
        summary: "{n} open files on {host} (limit {m})",
    },
    Kind {
        name: "DeadlocksDetected",
        severity: "critical",
        summary: "{n} deadlocks on {db} in the last {m} minutes",
    },
    Kind {
        name: "GCPauseLong",
        severity: "warning",
        summary: "GC pauses of {n} ms on {pod}",
    },
    Kind {
        name: "UpstreamTimeouts",
        severity: "critical",
        summary: "{n} timeouts calling {svc} upstream in {m} s",
    },
    Kind {
        name: "KafkaConsumerLag",
        severity: "warning",
        summary: "Consumer group {svc} lags {n} records on partition {m}",
    },
    Kind {
        name: "DNSResolutionErrors",
        severity: "warning",
        summary: "{n} DNS lookups failed on {host} in {m} s",
    },
    Kind {
        name: "BackupFailed",
        severity: "critical",
        summary: "Backup of {db} failed after {n} s (exit {m})",
    },
    Kind {
        name: "ThreadPoolSaturated",
        severity: "warning",
        summary: "Thread pool of {svc} at {n} of {m} threads",
    },
];

pub const SERVICES: &[&str] = &[
    "checkout",
    "payments",
    "postgres",
    "inventory",
    "search",
    "catalog",
    "web",
    "api",
    "cache",
    "auth",
    "orders",
    "shipping",
    "mailer",
    "reports",
    "billing",
    "ledger",
    "gateway",
    "images",
];

/// Dependency chains a cascade follows (first depends on second, …).
pub const CHAINS: &[&[&str]] = &[
    &["checkout", "payments", "postgres"],
    &["web", "api", "cache"],
    &["orders", "inventory", "catalog"],
    &["billing", "ledger"],
];

/// The config the generated streams are replayed with.
pub fn config_toml(min_incidents: usize) -> String {
    let mut deps = String::new();
    for chain in CHAINS {
        for w in chain.windows(2) {
            deps.push_str(&format!("{} = [\"{}\"]\n", w[0], w[1]));
        }
    }
    format!(
        r#"[dedup]
resolve_timeout = "30m"

[[rules]]
name = "by-service"
group_by = ["cluster", "service"]
window = "10m"
reopen_window = "30m"

[topology]
label = "service"
window = "5m"
equal = ["cluster"]
[topology.depends_on]
{deps}
[problems]
min_incidents = {min_incidents}
lookback = "30d"
"#
    )
}

/// One recurring fault.
struct Fault {
    /// (service, kind) pairs it raises: several kinds on one service, or
    /// one or two along a chain.
    alerts: Vec<(&'static str, Kind)>,
}

/// A generated stream: replay records (one JSON line each, in time order)
/// and which fault each alert label set belongs to.
pub struct Stream {
    pub records: Vec<String>,
    /// Canonical label set (sorted JSON) → fault index.
    pub truth: HashMap<String, usize>,
    pub faults: usize,
    pub occurrences: usize,
}

struct Firing {
    at: i64,
    until: i64,
    labels: BTreeMap<String, String>,
    summary: String,
    fault: Option<usize>,
}

/// The label set's key in [`Stream::truth`].
pub fn label_key(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).expect("labels serialize")
}

fn fill(rng: &mut Rng, k: &Kind, svc: &str) -> (String, String, String) {
    let host = format!(
        "ip-10-{}-{}-{}",
        rng.below(256),
        rng.below(256),
        rng.below(256)
    );
    let pod = format!(
        "{svc}-{:x}-{:05x}",
        rng.next() % 0xffff_ffff,
        rng.below(0xfffff)
    );
    let db = format!("{svc}-db");
    let s = k
        .summary
        .replace("{svc}", svc)
        .replace("{host}", &host)
        .replace("{pod}", &pod)
        .replace("{db}", &db)
        .replace("{n}", &rng.range(2, 999).to_string())
        .replace("{m}", &rng.range(2, 9999).to_string());
    (s, host, pod)
}

fn alert(
    rng: &mut Rng,
    cluster: &str,
    svc: &str,
    k: &Kind,
    at: i64,
    until: i64,
    fault: Option<usize>,
) -> Firing {
    let (summary, host, pod) = fill(rng, k, svc);
    let mut labels = BTreeMap::new();
    labels.insert("alertname".to_string(), k.name.to_string());
    labels.insert("cluster".to_string(), cluster.to_string());
    labels.insert("service".to_string(), svc.to_string());
    labels.insert("severity".to_string(), k.severity.to_string());
    labels.insert("instance".to_string(), host);
    labels.insert("pod".to_string(), pod);
    Firing {
        at,
        until,
        labels,
        summary,
        fault,
    }
}

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// 2026-01-05T00:00:00Z.
const T0: i64 = 1_767_571_200_000;

/// A stream of `faults` recurring faults over `days` days (each 3–6
/// times), with background noise and distractors.
pub fn generate(seed: u64, faults: usize, days: i64) -> Stream {
    let mut rng = Rng::new(seed);
    let cluster = "eu1";
    // Faults: distinct (service, kinds) so two faults never look alike.
    let mut used: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut list = Vec::new();
    while list.len() < faults {
        let cascade = rng.chance(25);
        let mut alerts = Vec::new();
        if cascade {
            let chain = *rng.pick(CHAINS);
            for svc in chain.iter() {
                let k = *rng.pick(KINDS);
                alerts.push((*svc, k));
            }
        } else {
            let svc = *rng.pick(SERVICES);
            let n = rng.range(2, 3);
            while alerts.len() < n as usize {
                let k = *rng.pick(KINDS);
                if !alerts.iter().any(|(_, a): &(&str, Kind)| a.name == k.name) {
                    alerts.push((svc, k));
                }
            }
        }
        if alerts.iter().any(|(s, k)| used.contains(&(*s, k.name))) {
            continue;
        }
        for (s, k) in &alerts {
            used.insert((s, k.name));
        }
        list.push(Fault { alerts });
    }
    let mut firings = Vec::new();
    let mut occurrences = 0;
    for (fi, f) in list.iter().enumerate() {
        let times = rng.range(3, 6);
        for _ in 0..times {
            occurrences += 1;
            let start = T0 + rng.below((days * DAY - DAY) as u64) as i64;
            let dur = rng.range(10, 60) as i64 * MIN;
            // Not every alert kind fires every time (never fewer than one),
            // and they come in any order within a few minutes.
            let mut fired = 0;
            for (i, (svc, k)) in f.alerts.iter().enumerate() {
                let last = i + 1 == f.alerts.len();
                if fired > 0 && !last && rng.chance(15) {
                    continue;
                }
                fired += 1;
                let at = start + rng.below(4 * MIN as u64) as i64;
                firings.push(alert(&mut rng, cluster, svc, k, at, start + dur, Some(fi)));
            }
            // A stray alert of another kind on the same service.
            if rng.chance(20) {
                let svc = f.alerts[0].0;
                let k = *rng.pick(KINDS);
                let at = start + rng.below(4 * MIN as u64) as i64;
                firings.push(alert(&mut rng, cluster, svc, &k, at, start + dur, Some(fi)));
            }
        }
    }
    // Noise never recurs more than twice per (service, kind), distractors
    // and background together: three times would be a recurring fault.
    let mut seen: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    // Distractors: a fault's kind on another service, at most twice.
    for f in &list {
        let (svc, k) = f.alerts[0];
        let other = *rng.pick(SERVICES);
        if other == svc || used.contains(&(other, k.name)) {
            continue;
        }
        for _ in 0..rng.range(1, 2) {
            let n = seen.entry((other, k.name)).or_default();
            if *n >= 2 {
                break;
            }
            *n += 1;
            let at = T0 + rng.below((days * DAY - DAY) as u64) as i64;
            firings.push(alert(&mut rng, cluster, other, &k, at, at + 20 * MIN, None));
        }
    }
    // Background: one-off alerts, at most twice per (service, kind).
    for _ in 0..(days * 6) {
        let svc = *rng.pick(SERVICES);
        let k = *rng.pick(KINDS);
        let n = seen.entry((svc, k.name)).or_default();
        if *n >= 2 || used.contains(&(svc, k.name)) {
            continue;
        }
        *n += 1;
        let at = T0 + rng.below((days * DAY) as u64) as i64;
        let until = at + rng.range(5, 40) as i64 * MIN;
        firings.push(alert(&mut rng, cluster, svc, &k, at, until, None));
    }
    let mut truth = HashMap::new();
    let mut events: Vec<(i64, String)> = Vec::new();
    for f in &firings {
        if let Some(fi) = f.fault {
            truth.insert(label_key(&f.labels), fi);
        }
        let body = |ends: i64| {
            json!([{
                "labels": f.labels,
                "annotations": {"summary": f.summary},
                "startsAt": rfc3339(f.at),
                "endsAt": rfc3339(ends),
            }])
        };
        events.push((f.at, record(f.at, cluster, body(f.until))));
        events.push((f.until, record(f.until, cluster, body(f.until))));
    }
    events.sort_by_key(|(t, _)| *t);
    Stream {
        records: events.into_iter().map(|(_, r)| r).collect(),
        truth,
        faults,
        occurrences,
    }
}

fn record(ts: i64, key: &str, value: Value) -> String {
    json!({"ts": rfc3339(ts), "key": key, "value": value}).to_string()
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .expect("valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Pairwise precision, recall and F1 of incidents → problems.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Incidents with a fault (true pairs come from these).
    pub incidents: usize,
    /// Problems holding at least one incident.
    pub problems: usize,
}

/// Scores a replay's `incidents.jsonl` and `problems.jsonl` texts against
/// the stream's truth. An incident's fault is the one most of its alerts
/// belong to (none for background and distractor incidents); its problem is
/// the one whose incident list holds it (closed incidents keep no link of
/// their own to a problem opened after they closed), else its `problem_id`.
pub fn score(incidents_jsonl: &str, problems_jsonl: &str, truth: &HashMap<String, usize>) -> Score {
    let mut listed: HashMap<String, String> = HashMap::new();
    for line in problems_jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let p: Value = serde_json::from_str(line).expect("problem line is JSON");
        if p["state"] == "merged" {
            continue;
        }
        let id = p["id"].as_str().unwrap_or_default().to_string();
        for i in p["incident_ids"].as_array().into_iter().flatten() {
            if let Some(i) = i.as_str() {
                listed.insert(i.to_string(), id.clone());
            }
        }
    }
    let mut rows: Vec<(Option<usize>, Option<String>)> = Vec::new();
    for line in incidents_jsonl.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).expect("incident line is JSON");
        if v["status"] == "merged" {
            continue;
        }
        let mut votes: BTreeMap<usize, usize> = BTreeMap::new();
        let mut none = 0;
        for a in v["alerts"].as_array().into_iter().flatten() {
            let labels: BTreeMap<String, String> =
                serde_json::from_value(a["labels"].clone()).unwrap_or_default();
            match truth.get(&label_key(&labels)) {
                Some(f) => *votes.entry(*f).or_default() += 1,
                None => none += 1,
            }
        }
        let fault = votes
            .iter()
            .max_by_key(|(f, n)| (**n, std::cmp::Reverse(**f)))
            .filter(|(_, n)| **n >= none)
            .map(|(f, _)| *f);
        let problem = v["id"]
            .as_str()
            .and_then(|id| listed.get(id).cloned())
            .or_else(|| v["problem_id"].as_str().map(str::to_string));
        rows.push((fault, problem));
    }
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            let same_fault = rows[i].0.is_some() && rows[i].0 == rows[j].0;
            let same_problem = rows[i].1.is_some() && rows[i].1 == rows[j].1;
            match (same_fault, same_problem) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                (false, false) => {}
            }
        }
    }
    let precision = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = if tp + fn_ == 0 {
        1.0
    } else {
        tp as f64 / (tp + fn_) as f64
    };
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    let problems: BTreeSet<&String> = rows.iter().filter_map(|r| r.1.as_ref()).collect();
    Score {
        precision,
        recall,
        f1,
        incidents: rows.iter().filter(|r| r.0.is_some()).count(),
        problems: problems.len(),
    }
}
