//! Shared pieces of the end-to-end tests that run the `correlator` binary as
//! a child process against a real Tansu broker (`crash_tansu`,
//! `outage_tansu`):
//!
//! - [`DaemonProc`]: `correlator run` as a child process, logs captured to a
//!   file, SIGKILL / SIGTERM, `/readyz` polling; killed on drop, log tail
//!   printed when the test fails.
//! - [`generate`]: a deterministic alert stream (several clusters and
//!   services with topology dependencies, count thresholds, re-sends,
//!   resolutions, silent expiries, a flapping alert, poison records).
//! - [`run_replay`]: the same stream through `correlator replay`.
//! - [`Events`] / [`check_against_replay`]: the incidents topic checked
//!   against the replay: same incidents with identical final data, no event
//!   id with two payloads, versions contiguous; [`check_dlq`] for the DLQ.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::brokers::{Delivered, Msg, Record};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_correlator");

/// 2026-01-05T10:00:00Z in ms: the stream's event time starts here, far in
/// the past, so once the daemon is caught up its wall-clock ticks run every
/// timer out, exactly like the replay's final flush.
pub const T0_MS: i64 = 1_767_607_200_000;

// ---------------------------------------------------------------------------
// A tiny deterministic RNG (SplitMix64): the crate has no rand dev-dependency.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (hi exclusive).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(hi > lo);
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[(self.next_u64() % xs.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// The configuration both the daemon and the replay run on.

/// The test configuration. `batch_max` small so a run is many transactions.
pub fn config_toml(
    bootstrap: &str,
    group: &str,
    store: &Path,
    batch_max: usize,
    tick: &str,
) -> String {
    format!(
        r#"[kafka]
brokers = "{bootstrap}"
group_id = "{group}"
alert_topics = ["alerts"]
incident_topic = "incidents"
dlq_topic = "alerts-dlq"
partition_key = "cluster"
assignment = "manual"
batch_max = {batch_max}
batch_linger = "5ms"
tick_interval = "{tick}"
session_timeout = "6s"

[store]
path = "{store}"

[http]
listen = "127.0.0.1:0"

[dedup]
identity_labels = []
resolve_timeout = "5m"
# The generated webhook senders re-send within minutes; their silent
# expiries happen after 5m, as for API v2.
webhook_resolve_timeout = "5m"
flap_window = "15m"
flap_threshold = 4

[incidents]
default_reopen_window = "30m"

[[rules]]
name = "node-storm"
matchers = ['alertname=~"Node.*"']
group_by = ["cluster"]
window = "5m"
min_alerts = 3
reopen_window = "1h"

[[rules]]
name = "search-pair"
matchers = ['service="search"', 'env="prod"']
group_by = ["cluster", "service"]
window = "10m"
min_alerts = 2
reopen_window = "20m"

[[rules]]
name = "by-service"
matchers = ['severity=~"critical|warning"', 'env!="dev"']
group_by = ["cluster", "env", "service"]
window = "10m"
min_alerts = 1
reopen_window = "30m"

[topology]
label = "service"
window = "5m"
equal = ["cluster", "env"]
[topology.depends_on]
checkout = ["payments", "inventory"]
payments = ["postgres"]

[priority]
impact_label = "impact"
urgency_label = "urgency"

[problems]
min_incidents = 3
lookback = "7d"
"#,
        store = store.display()
    )
}

// ---------------------------------------------------------------------------
// The stream.

/// One alert record: Kafka key (the cluster), body, event time.
#[derive(Debug, Clone)]
pub struct Rec {
    pub ts_ms: i64,
    pub key: String,
    pub body: String,
    pub poison: bool,
}

impl Rec {
    pub fn msg(&self) -> Msg {
        Msg::new(&self.key, &self.body).timestamp(self.ts_ms)
    }
    /// The record as a line of a replay file (same ts, key and body bytes).
    pub fn replay_line(&self) -> String {
        let value = if self.poison {
            serde_json::to_string(&self.body).expect("string")
        } else {
            self.body.clone()
        };
        format!(
            r#"{{"ts":"{}","key":{},"value":{}}}"#,
            rfc3339(self.ts_ms),
            serde_json::to_string(&self.key).expect("string"),
            value
        )
    }
}

pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("valid time")
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// An alert identity in the generator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ident {
    cluster: String,
    env: &'static str,
    service: Option<&'static str>,
    alertname: String,
    instance: Option<String>,
    severity: &'static str,
}

impl Ident {
    fn labels(&self) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("alertname".into(), self.alertname.clone().into());
        m.insert("cluster".into(), self.cluster.clone().into());
        m.insert("env".into(), self.env.into());
        if let Some(s) = self.service {
            m.insert("service".into(), s.into());
        }
        if let Some(i) = &self.instance {
            m.insert("instance".into(), i.clone().into());
        }
        m.insert("severity".into(), self.severity.into());
        m
    }
}

#[derive(Debug, Clone)]
enum NoteKind {
    Fire { starts: i64, value: i64 },
    Resolve { starts: i64 },
    Poison(&'static str),
}

#[derive(Debug, Clone)]
struct Note {
    t: i64,
    ident: Option<Ident>,
    /// Several alerts of one webhook notification (a node storm burst).
    extra: Vec<Ident>,
    kind: NoteKind,
    /// Rendered as an Alertmanager API v2 list instead of a webhook.
    api_v2: bool,
}

const CLUSTERS: &[&str] = &["eu1", "eu2", "us1", "us2", "ap1", "ap2"];
const CHAIN: &[&str] = &["postgres", "payments", "checkout"];
const LONE: &[&str] = &["billing", "edge", "inventory", "search"];
const POISON: &[&str] = &[
    "{this is not json",
    "[{\"labels\":",
    "42",
    "{\"hello\":\"world\"}",
    "null",
    "\"just a string\"",
];

struct Sim {
    rng: Rng,
    notes: Vec<Note>,
    /// Identity → time until which an episode of it is scheduled.
    busy: BTreeMap<Ident, i64>,
}

impl Sim {
    /// One firing episode from `start` for `dur` seconds: re-sent every
    /// 40–150 s, then resolved (or, with `silent`, left to expire).
    fn episode(&mut self, id: &Ident, start: i64, dur: i64, silent: bool) -> bool {
        if self.busy.get(id).is_some_and(|b| *b + 30 > start) {
            return false;
        }
        let mut t = start;
        let end = start + dur;
        while t < end {
            let value = self.rng.range(1, 1000);
            let api_v2 = self.rng.chance(10);
            self.notes.push(Note {
                t,
                ident: Some(id.clone()),
                extra: vec![],
                kind: NoteKind::Fire {
                    starts: start,
                    value,
                },
                api_v2,
            });
            t += self.rng.range(40, 150);
        }
        let stop = if silent { end + 400 } else { end };
        if !silent {
            self.notes.push(Note {
                t: end,
                ident: Some(id.clone()),
                extra: vec![],
                kind: NoteKind::Resolve { starts: start },
                api_v2: false,
            });
        }
        self.busy.insert(id.clone(), stop);
        true
    }

    fn service_ident(&mut self, cluster: &str, service: &'static str, env: &'static str) -> Ident {
        let name = match self.rng.range(0, 3) {
            0 => "ErrorRate",
            1 => "LatencyHigh",
            _ => "Saturation",
        };
        let mut cap = service.to_string();
        cap[..1].make_ascii_uppercase();
        Ident {
            cluster: cluster.to_string(),
            env,
            service: Some(service),
            alertname: format!("{cap}{name}"),
            instance: None,
            severity: self.rng.pick(&["critical", "warning", "warning"]),
        }
    }

    fn node_ident(&mut self, cluster: &str) -> Ident {
        Ident {
            cluster: cluster.to_string(),
            env: "prod",
            service: None,
            alertname: self
                .rng
                .pick(&["NodeDown", "NodeDiskPressure", "NodeMemoryPressure"])
                .to_string(),
            instance: Some(format!("node-{}", self.rng.range(1, 9))),
            severity: self.rng.pick(&["critical", "warning"]),
        }
    }

    fn scenario(&mut self, t: i64) {
        let cluster = self.rng.pick(CLUSTERS);
        match self.rng.range(0, 100) {
            // Topology cascade: postgres → payments → checkout within minutes.
            0..=24 => {
                let mut at = t;
                let depth = self.rng.range(1, 4) as usize;
                let first = self.rng.range(0, (CHAIN.len() - depth + 1) as i64) as usize;
                for svc in &CHAIN[first..first + depth] {
                    let id = self.service_ident(cluster, svc, "prod");
                    let dur = self.rng.range(120, 1500);
                    let silent = self.rng.chance(20);
                    self.episode(&id, at, dur, silent);
                    at += self.rng.range(10, 200);
                }
            }
            // One service alert, sometimes recurring (reopen or new incident).
            25..=54 => {
                let svc = self.rng.pick(LONE);
                let env = if self.rng.chance(12) { "dev" } else { "prod" };
                let id = self.service_ident(cluster, svc, env);
                let mut at = t;
                for _ in 0..self.rng.range(1, 4) {
                    let dur = self.rng.range(60, 1200);
                    let silent = self.rng.chance(20);
                    self.episode(&id, at, dur, silent);
                    at += dur + self.rng.range(120, 3000);
                }
            }
            // Node storm: 3–5 node alerts within a few minutes.
            55..=69 => {
                let n = self.rng.range(3, 6);
                let mut at = t;
                for _ in 0..n {
                    let id = self.node_ident(cluster);
                    let dur = self.rng.range(200, 900);
                    let silent = self.rng.chance(15);
                    self.episode(&id, at, dur, silent);
                    at += self.rng.range(5, 60);
                }
            }
            // A lone node alert: held below the threshold, dropped as noise.
            70..=79 => {
                let id = self.node_ident(cluster);
                let dur = self.rng.range(60, 400);
                self.episode(&id, t, dur, false);
            }
            // A burst: one webhook with several node alerts at once.
            80..=84 => {
                let ids: Vec<Ident> = (0..self.rng.range(2, 5))
                    .map(|_| self.node_ident(cluster))
                    .collect();
                let value = self.rng.range(1, 100);
                if ids
                    .iter()
                    .all(|i| self.busy.get(i).is_none_or(|b| *b + 30 <= t))
                {
                    let dur = self.rng.range(300, 900);
                    for i in &ids {
                        self.busy.insert(i.clone(), t + dur + 400);
                    }
                    self.notes.push(Note {
                        t,
                        ident: Some(ids[0].clone()),
                        extra: ids[1..].to_vec(),
                        kind: NoteKind::Fire { starts: t, value },
                        api_v2: false,
                    });
                }
            }
            // Info-level alert: matches no rule (one incident per fingerprint).
            85..=94 => {
                let svc = self.rng.pick(LONE);
                let mut id = self.service_ident(cluster, svc, "prod");
                id.severity = "info";
                let dur = self.rng.range(60, 900);
                self.episode(&id, t, dur, false);
            }
            // Poison.
            _ => {
                let p = self.rng.pick(POISON);
                self.notes.push(Note {
                    t,
                    ident: Some(Ident {
                        cluster: cluster.to_string(),
                        env: "prod",
                        service: None,
                        alertname: String::new(),
                        instance: None,
                        severity: "",
                    }),
                    extra: vec![],
                    kind: NoteKind::Poison(p),
                    api_v2: false,
                });
            }
        }
    }

    /// A flapping alert: firing/resolved every 20–60 s, ten times.
    fn flapper(&mut self, t: i64) {
        let id = Ident {
            cluster: "eu1".into(),
            env: "prod",
            service: Some("edge"),
            alertname: "EdgeProbeFailed".into(),
            instance: Some("probe-1".into()),
            severity: "warning",
        };
        let mut at = t;
        for _ in 0..10 {
            self.notes.push(Note {
                t: at,
                ident: Some(id.clone()),
                extra: vec![],
                kind: NoteKind::Fire {
                    starts: at,
                    value: 1,
                },
                api_v2: false,
            });
            let starts = at;
            at += self.rng.range(20, 60);
            self.notes.push(Note {
                t: at,
                ident: Some(id.clone()),
                extra: vec![],
                kind: NoteKind::Resolve { starts },
                api_v2: false,
            });
            at += self.rng.range(20, 60);
        }
        self.busy.insert(id, at);
    }
}

fn alert_json(id: &Ident, status: &str, starts: i64, ends: Option<i64>, value: i64) -> Value {
    let summary = match (&id.service, &id.instance) {
        (_, Some(i)) => format!("{} on {i} for {value}s", id.alertname),
        (Some(s), None) => format!("{s} {} at {value} per second", id.alertname),
        _ => id.alertname.clone(),
    };
    serde_json::json!({
        "status": status,
        "labels": id.labels(),
        "annotations": {"summary": summary},
        "startsAt": rfc3339(T0_MS + starts * 1000),
        "endsAt": ends.map_or("0001-01-01T00:00:00Z".to_string(), rfc3339),
        "generatorURL": "http://prometheus:9090/graph",
    })
}

/// A deterministic stream of about `target` records, event times strictly
/// increasing from [`T0_MS`] (whole seconds, at least one apart, a few
/// seconds apart on average). About 1% are poison records.
pub fn generate(seed: u64, target: usize) -> Vec<Rec> {
    let mut sim = Sim {
        rng: Rng::new(seed),
        notes: Vec::new(),
        busy: BTreeMap::new(),
    };
    let span = target as i64 * 3;
    sim.flapper(span / 3);
    let mut t = 0;
    while sim.notes.len() < target {
        sim.scenario(t);
        t += sim.rng.range(5, 60);
        if t > span {
            t = sim.rng.range(0, span);
        }
    }
    // Stable order by time; then strictly increasing times (>= 1 s apart).
    sim.notes.sort_by_key(|n| n.t);
    sim.notes.truncate(target);
    let mut out = Vec::with_capacity(sim.notes.len());
    let mut last = -1;
    for n in &sim.notes {
        let t = n.t.max(last + 1);
        last = t;
        let ts_ms = T0_MS + t * 1000;
        let id = n.ident.as_ref().expect("ident");
        let (body, poison) = match &n.kind {
            NoteKind::Poison(p) => (p.to_string(), true),
            NoteKind::Fire { starts, value } if n.api_v2 => {
                let mut a = alert_json(id, "firing", *starts, None, *value);
                let o = a.as_object_mut().expect("object");
                o.remove("status");
                o.remove("endsAt");
                (Value::Array(vec![a]).to_string(), false)
            }
            NoteKind::Fire { starts, value } => {
                let mut alerts = vec![alert_json(id, "firing", *starts, None, *value)];
                alerts.extend(
                    n.extra
                        .iter()
                        .map(|e| alert_json(e, "firing", *starts, None, *value)),
                );
                (webhook("firing", alerts).to_string(), false)
            }
            NoteKind::Resolve { starts } => {
                let a = alert_json(id, "resolved", *starts, Some(ts_ms), 0);
                (webhook("resolved", vec![a]).to_string(), false)
            }
        };
        out.push(Rec {
            ts_ms,
            key: id.cluster.clone(),
            body,
            poison,
        });
    }
    out
}

fn webhook(status: &str, alerts: Vec<Value>) -> Value {
    serde_json::json!({
        "version": "4",
        "groupKey": "{}:{}",
        "status": status,
        "receiver": "correlator",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    })
}

// ---------------------------------------------------------------------------
// The replay of the same stream.

pub struct Replay {
    pub incidents: Vec<Value>,
    pub problems: Vec<Value>,
    /// 1-based line numbers of rejected records.
    pub rejected_lines: BTreeSet<u64>,
    pub summary: Value,
}

/// Writes `recs` as a replay file and runs `correlator replay` on it.
pub fn run_replay(dir: &Path, config: &Path, recs: &[Rec]) -> Replay {
    let input = dir.join("stream.jsonl");
    let mut text = String::new();
    for r in recs {
        text.push_str(&r.replay_line());
        text.push('\n');
    }
    std::fs::write(&input, text).expect("write replay input");
    let out = dir.join("replay-out");
    let o = Command::new(BIN)
        .arg("replay")
        .arg("--config")
        .arg(config)
        .arg("--input")
        .arg(&input)
        .arg("--out-dir")
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .expect("run correlator replay");
    assert!(
        o.status.success(),
        "correlator replay failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let lines = |name: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(out.join(name)).expect("replay output");
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect()
    };
    let rejected_lines = lines("rejected.jsonl")
        .iter()
        .map(|v| v["line"].as_u64().expect("line"))
        .collect();
    let summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("summary JSON");
    Replay {
        incidents: lines("incidents.jsonl"),
        problems: lines("problems.jsonl"),
        rejected_lines,
        summary,
    }
}

/// The replay must reject exactly the poison records: the generator made no
/// other invalid record.
pub fn check_replay_rejections(replay: &Replay, recs: &[Rec]) {
    let poison: BTreeSet<u64> = recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.poison)
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(
        replay.rejected_lines, poison,
        "replay rejected exactly the poison records"
    );
}

// ---------------------------------------------------------------------------
// The daemon as a child process.

/// What `/readyz` answered.
#[derive(Debug, Clone)]
pub struct Ready {
    pub status: u16,
    pub body: Value,
}

impl Ready {
    pub fn u64(&self, field: &str) -> u64 {
        self.body[field].as_u64().unwrap_or(0)
    }
    pub fn bool(&self, field: &str) -> bool {
        self.body[field].as_bool().unwrap_or(false)
    }
}

/// `GET /readyz` with a raw HTTP/1.1 request (1 s timeouts). `None` if the
/// daemon does not answer.
pub fn readyz(addr: SocketAddr) -> Option<Ready> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = serde_json::from_str(body.trim()).ok()?;
    Some(Ready { status, body })
}

/// `correlator run` as a child process, started and stopped as often as the
/// test likes on one config (and so one store). Every start appends its
/// stdout and stderr to one log file; the tail is printed if the test
/// panics, and the child is SIGKILLed on drop.
pub struct DaemonProc {
    config: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    /// The HTTP address of the current run.
    pub http: Option<SocketAddr>,
    pub runs: u32,
    /// More arguments to `correlator run` (e.g. `--embedded-kafka`).
    pub extra_args: Vec<String>,
    /// More environment variables (e.g. the API token).
    pub envs: Vec<(String, String)>,
}

impl DaemonProc {
    pub fn new(config: &Path, log_path: &Path) -> DaemonProc {
        DaemonProc {
            config: config.to_path_buf(),
            log_path: log_path.to_path_buf(),
            child: None,
            http: None,
            runs: 0,
            extra_args: Vec::new(),
            envs: Vec::new(),
        }
    }

    pub fn note(&self, what: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
        {
            let _ = writeln!(f, "=== test: {what}");
        }
    }

    /// Starts `correlator run` and waits (10 s) until it logs its HTTP address.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        self.runs += 1;
        self.note(&format!("start #{}", self.runs));
        let offset = std::fs::metadata(&self.log_path)
            .map(|m| m.len())
            .unwrap_or(0);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open daemon log");
        let log2 = log.try_clone().expect("clone log handle");
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(&self.config)
            .arg("--log-format")
            .arg("json")
            .arg("--shutdown-timeout")
            .arg("20s")
            .args(&self.extra_args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info,rdkafka=warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("spawn correlator run");
        self.child = Some(child);
        self.http = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(addr) = self.http_addr_since(offset) {
                self.http = Some(addr);
                return;
            }
            if let Some(st) = self.exit_status() {
                panic!("daemon run #{} exited during startup: {st}", self.runs);
            }
            assert!(
                Instant::now() < deadline,
                "daemon run #{} logged no HTTP address within 10 s",
                self.runs
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Finds `"message":"http listening"` in the log written since `offset`.
    fn http_addr_since(&self, offset: u64) -> Option<SocketAddr> {
        let mut f = File::open(&self.log_path).ok()?;
        f.seek(SeekFrom::Start(offset)).ok()?;
        let mut text = String::new();
        f.read_to_string(&mut text).ok()?;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["fields"]["message"] == "http listening" {
                return v["fields"]["listen"].as_str()?.parse().ok();
            }
        }
        None
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// True while the current run's process is alive.
    pub fn is_alive(&mut self) -> bool {
        self.child.is_some() && self.exit_status().is_none()
    }

    /// SIGSTOP (`freeze`) / SIGCONT (`thaw`) the current run: it does
    /// nothing at all meanwhile, so the test can order events around it.
    pub fn freeze(&mut self) {
        self.signal("-STOP");
    }
    pub fn thaw(&mut self) {
        self.signal("-CONT");
    }
    fn signal(&mut self, sig: &str) {
        let pid = self.pid().expect("daemon running");
        let st = Command::new("kill")
            .arg(sig)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill {sig} {pid}: {st}");
        self.note(&format!("kill {sig} run #{}", self.runs));
    }

    /// The current run's `/readyz`.
    pub fn readyz(&self) -> Option<Ready> {
        self.http.and_then(readyz)
    }

    /// Waits up to `within` for the run to be ready, caught up and with an
    /// empty outbox for `quiet` without a break. Returns whether it settled
    /// and the last `/readyz` seen (for the failure message).
    pub fn settle(&self, within: Duration, quiet: Duration) -> (bool, Option<Ready>) {
        let mut stable_since: Option<Instant> = None;
        let mut last = None;
        let done = crate::brokers::wait_until(within, || {
            let r = self.readyz();
            let calm = r.as_ref().is_some_and(|r| {
                r.status == 200 && r.bool("caught_up") && r.u64("outbox_backlog") == 0
            });
            last = r;
            if !calm {
                stable_since = None;
                return false;
            }
            stable_since.get_or_insert_with(Instant::now).elapsed() >= quiet
        });
        (done, last)
    }

    /// SIGKILL the current run and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let st = c.wait();
            self.note(&format!("SIGKILL run #{}: {st:?}", self.runs));
        }
    }

    /// SIGTERM the current run; waits up to `deadline` for it to exit
    /// (panics, after a SIGKILL, if it does not). Returns its exit status.
    pub fn terminate(&mut self, deadline: Duration) -> (ExitStatus, Duration) {
        let mut c = self.child.take().expect("daemon running");
        let started = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.note(&format!(
                    "run #{} exited after SIGTERM in {:?}: {st}",
                    self.runs,
                    started.elapsed()
                ));
                return (st, started.elapsed());
            }
            if started.elapsed() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                self.note(&format!(
                    "run #{} ignored SIGTERM for {deadline:?}: SIGKILLed",
                    self.runs
                ));
                panic!(
                    "daemon run #{} did not exit within {deadline:?} of SIGTERM (hang on shutdown)",
                    self.runs
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Log lines at WARN or ERROR, and harness notes.
    pub fn warnings(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| {
                l.contains("\"level\":\"WARN\"")
                    || l.contains("\"level\":\"ERROR\"")
                    || l.starts_with("===")
            })
            .map(str::to_string)
            .collect()
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            // Rejected-record warnings are expected and many: leave them out.
            let interesting: Vec<&str> = lines
                .iter()
                .copied()
                .filter(|l| !l.contains("record rejected, sent to the DLQ"))
                .collect();
            let tail = &interesting[interesting.len().saturating_sub(120)..];
            eprintln!(
                "--- correlator daemon log ({}), last {} lines without DLQ warnings:\n{}\n---",
                self.log_path.display(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Checks on the published events.

/// Events on the incidents topic, grouped by subject: version → payload.
#[derive(Debug, Default)]
pub struct Events {
    pub incidents: BTreeMap<String, BTreeMap<u64, Value>>,
    pub problems: BTreeMap<String, BTreeMap<u64, Value>>,
    /// Records read, and how many were copies of an event already seen.
    pub records: usize,
    pub copies: usize,
    /// Contract violations found while grouping (b: two payloads for one id).
    pub violations: Vec<String>,
}

pub fn group_events(records: &[Record]) -> Events {
    let mut ev = Events {
        records: records.len(),
        ..Events::default()
    };
    for r in records {
        let v: Value = match serde_json::from_slice(r.payload.as_deref().unwrap_or_default()) {
            Ok(v) => v,
            Err(e) => {
                ev.violations.push(format!(
                    "event at {}/{} is not JSON: {e}",
                    r.partition, r.offset
                ));
                continue;
            }
        };
        let subject = v["subject"].as_str().unwrap_or_default().to_string();
        let kind = v["type"].as_str().unwrap_or_default();
        let version = v["data"]["version"].as_u64().unwrap_or(0);
        if r.key_str() != subject {
            ev.violations.push(format!(
                "event {} keyed {:?}, not by its subject",
                v["id"],
                r.key_str()
            ));
        }
        if v["id"] != format!("{subject}/{version}") {
            ev.violations.push(format!(
                "event id {} is not <subject>/<version> ({subject}/{version})",
                v["id"]
            ));
        }
        let slot = if kind.starts_with("correlator.incident.") {
            ev.incidents.entry(subject.clone()).or_default()
        } else if kind.starts_with("correlator.problem.") {
            ev.problems.entry(subject.clone()).or_default()
        } else {
            ev.violations
                .push(format!("event {} of unknown type {kind:?}", v["id"]));
            continue;
        };
        match slot.get(&version) {
            Some(prev) if prev == &v => ev.copies += 1,
            Some(prev) => ev.violations.push(format!(
                "two different events with id {subject}/{version}:\n  {}\n  {}",
                prev, v
            )),
            None => {
                slot.insert(version, v);
            }
        }
    }
    ev
}

/// (c): versions per subject are exactly 1..=n.
pub fn check_versions(
    what: &str,
    by_subject: &BTreeMap<String, BTreeMap<u64, Value>>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (id, versions) in by_subject {
        let got: Vec<u64> = versions.keys().copied().collect();
        let want: Vec<u64> = (1..=got.len() as u64).collect();
        if got != want {
            out.push(format!(
                "{what} {id}: versions {got:?} are not 1..={}",
                got.len()
            ));
        }
    }
    out
}

fn without_version(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("version");
        // What changed last (problem events): not part of the final state.
        o.remove("incident_id");
        o.remove("merged_from");
        // Events name the root cause alert (replay lines give only its
        // fingerprint): it must be that alert.
        if let Some(rca) = o.remove("root_cause_alert") {
            let root = o.get("root_cause").cloned().unwrap_or(Value::Null);
            if !rca.is_null() && rca["fingerprint"] != root {
                o.insert("root_cause_alert (not the root cause)".into(), rca);
            }
        }
    }
    v
}

/// A replay line as the last event's `data` shows it: a problem event
/// carries its incidents' count, not their list (nor, to compare, what
/// changed last); an incident line is as it is.
fn as_event_data(replay: &Value) -> Value {
    let mut v = replay.clone();
    if let Some(o) = v.as_object_mut() {
        if let Some(ids) = o.remove("incident_ids") {
            o.remove("occurrences");
            let n = ids.as_array().map_or(0, Vec::len);
            o.insert("incident_count".into(), n.into());
        }
    }
    v
}

/// Describes how two JSON objects differ, field by field (short).
fn diff(a: &Value, b: &Value) -> String {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return format!("{a} vs {b}");
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let mut out = Vec::new();
    for k in keys {
        if a.get(k) != b.get(k) {
            let s = |v: Option<&Value>| {
                let t = v.map_or("<absent>".to_string(), Value::to_string);
                if t.len() > 300 {
                    format!("{}…", &t[..300])
                } else {
                    t
                }
            };
            out.push(format!(
                "{k}: daemon {} / replay {}",
                s(a.get(k)),
                s(b.get(k))
            ));
        }
    }
    out.join("; ")
}

/// (a): the same set of ids, and the last event per id carries exactly the
/// replay's final line (minus `version`). Returns the violations.
pub fn compare_final(
    what: &str,
    by_subject: &BTreeMap<String, BTreeMap<u64, Value>>,
    replay: &[Value],
) -> Vec<String> {
    let mut out = Vec::new();
    let replay_by_id: BTreeMap<String, &Value> = replay
        .iter()
        .map(|v| (v["id"].as_str().expect("replay id").to_string(), v))
        .collect();
    for (id, want) in &replay_by_id {
        match by_subject.get(id).and_then(|vs| vs.values().next_back()) {
            None => out.push(format!(
                "{what} {id} of the replay was never published by the daemon (rule {}, group {}, opened_at {})",
                want["rule"], want["group"], want["opened_at"]
            )),
            Some(last) => {
                let got = without_version(&last["data"]);
                let want = &as_event_data(want);
                if got != *want {
                    out.push(format!("{what} {id} final data differs: {}", diff(&got, want)));
                }
            }
        }
    }
    for (id, vs) in by_subject {
        if !replay_by_id.contains_key(id) {
            let last = vs.values().next_back().expect("non-empty");
            out.push(format!(
                "{what} {id} published by the daemon is not in the replay (rule {}, group {}, opened_at {}, {} versions)",
                last["data"]["rule"], last["data"]["group"], last["data"]["opened_at"], vs.len()
            ));
        }
    }
    out
}

/// Everything (a)–(c) finds, as one list, each line tagged with its check.
pub fn check_against_replay(events: &Events, replay: &Replay) -> Vec<String> {
    fn tag(t: &str, v: Vec<String>) -> Vec<String> {
        v.into_iter().map(|s| format!("({t}) {s}")).collect()
    }
    let mut v = tag("b", events.violations.clone());
    v.extend(tag("c", check_versions("incident", &events.incidents)));
    v.extend(tag("c", check_versions("problem", &events.problems)));
    v.extend(tag(
        "a",
        compare_final("incident", &events.incidents, &replay.incidents),
    ));
    v.extend(tag(
        "a",
        compare_final("problem", &events.problems, &replay.problems),
    ));
    v
}

/// A diagnostic for (a): how many alerts in the daemon's final incidents
/// have a `first_seen` that no record carrying that alert has as its time.
/// The replay always scores 0 (each record is handled at its own time); a
/// daemon that handled records at some other time (e.g. its clock already
/// past them because another partition was read first) does not.
pub fn event_time_diagnostic(events: &Events, recs: &[Rec]) -> Option<String> {
    let mut times: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for r in recs.iter().filter(|r| !r.poison) {
        let v: Value = serde_json::from_str(&r.body).expect("generated body is JSON");
        let alerts = match &v {
            Value::Array(a) => a.clone(),
            _ => v["alerts"].as_array().cloned().unwrap_or_default(),
        };
        for a in alerts {
            times
                .entry(a["labels"].to_string())
                .or_default()
                .insert(r.ts_ms);
        }
    }
    let ms = |v: &Value| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp_millis())
    };
    let (mut off, mut total) = (0, 0);
    for versions in events.incidents.values() {
        let Some(last) = versions.values().next_back() else {
            continue;
        };
        for a in last["data"]["alerts"].as_array().into_iter().flatten() {
            total += 1;
            let known = times.get(&a["labels"].to_string());
            if !ms(&a["first_seen"]).is_some_and(|t| known.is_some_and(|k| k.contains(&t))) {
                off += 1;
            }
        }
    }
    (off > 0).then(|| {
        format!(
            "diagnostic: {off} of {total} alerts in the daemon's final incidents have a first_seen \
             that is the time of no record carrying that alert: the daemon handled those records \
             at another time than their own (its one event-time clock had already moved past \
             them, e.g. because it read another partition's later records first)"
        )
    })
}

/// The daemon's output topics read back from the beginning: the incidents
/// topic (at least one record) and the DLQ (the `poison` records).
pub fn read_outputs(
    bootstrap: &str,
    poison: usize,
) -> (crate::brokers::Consumed, crate::brokers::Consumed) {
    let read = |topic: &str, expected: usize| {
        crate::brokers::consume_blocking(
            bootstrap,
            topic,
            expected,
            Duration::from_secs(30),
            crate::brokers::Attach::Assign,
        )
    };
    (read("incidents", 1), read("alerts-dlq", poison))
}

/// (d) the DLQ holds exactly the poison records, (store) the store reflects
/// every delivered record: the checks both Tansu tests make besides replay.
pub fn dlq_and_store_violations(
    dlq: &[Record],
    recs: &[Rec],
    delivered: &[Delivered],
    store: &Path,
) -> Vec<String> {
    let mut v: Vec<String> = check_dlq(dlq, recs, delivered)
        .into_iter()
        .map(|v| format!("(d) {v}"))
        .collect();
    v.extend(
        check_store(store, delivered)
            .into_iter()
            .map(|v| format!("(store) {v}")),
    );
    v
}

/// (d): the DLQ holds exactly the poison records (each at least once), by
/// their source partition and offset; payload kept. Returns violations and
/// the number of DLQ records.
pub fn check_dlq(dlq: &[Record], recs: &[Rec], delivered: &[Delivered]) -> Vec<String> {
    let mut out = Vec::new();
    let expected: BTreeMap<Delivered, &Rec> = recs
        .iter()
        .zip(delivered)
        .filter(|(r, _)| r.poison)
        .map(|(r, d)| (*d, r))
        .collect();
    let mut seen: BTreeSet<Delivered> = BTreeSet::new();
    for r in dlq {
        let src = (
            r.header_str("correlator-source-partition")
                .and_then(|p| p.parse::<i32>().ok()),
            r.header_str("correlator-source-offset")
                .and_then(|o| o.parse::<i64>().ok()),
        );
        let (Some(p), Some(o)) = src else {
            out.push(format!(
                "DLQ record {}/{} lacks source headers: {:?}",
                r.partition, r.offset, r.headers
            ));
            continue;
        };
        if r.header_str("correlator-source-topic") != Some("alerts") {
            out.push(format!(
                "DLQ record {}/{}: source topic {:?}",
                r.partition,
                r.offset,
                r.header_str("correlator-source-topic")
            ));
        }
        match expected.get(&(p, o)) {
            None => out.push(format!(
                "DLQ holds alerts/{p}/{o}, which is not a poison record: {:?}",
                r.payload_str()
            )),
            Some(rec) => {
                if r.payload.as_deref() != Some(rec.body.as_bytes()) {
                    out.push(format!(
                        "DLQ record for alerts/{p}/{o}: payload {:?}, expected {:?}",
                        r.payload_str(),
                        rec.body
                    ));
                }
            }
        }
        seen.insert((p, o));
    }
    for (d, rec) in &expected {
        if !seen.contains(d) {
            out.push(format!(
                "poison record alerts/{}/{} ({:?}) is missing from the DLQ",
                d.0, d.1, rec.body
            ));
        }
    }
    out
}

/// Fails listing the violations: a count per check, then diagnostics and
/// the rarer kinds (b), (c), (d), (store) before (a); at most 40 lines.
pub fn assert_no_violations(what: &str, v: &[String]) {
    const ORDER: [&str; 5] = ["(b)", "(c)", "(d)", "(store)", "(a)"];
    let rank = |s: &str| {
        ORDER
            .iter()
            .position(|p| s.starts_with(p))
            .map_or(0, |i| i + 1)
    };
    let facts: Vec<&String> = v.iter().filter(|s| rank(s) > 0).collect();
    if facts.is_empty() {
        return;
    }
    let mut sorted: Vec<&String> = v.iter().collect();
    sorted.sort_by_key(|s| rank(s));
    let counts: Vec<String> = ORDER
        .iter()
        .map(|p| format!("{p} {}", v.iter().filter(|s| s.starts_with(p)).count()))
        .collect();
    let shown: Vec<&str> = sorted.iter().take(40).map(|s| s.as_str()).collect();
    panic!(
        "{what}: {} violation(s) [{}]:\n- {}",
        facts.len(),
        counts.join(", "),
        shown.join("\n- ")
    );
}

// ---------------------------------------------------------------------------
// The test's directory, kept for a post-mortem when the test fails.

/// The setup the Tansu end-to-end tests share: a fresh broker with the
/// alert, incident and DLQ topics, a generated stream (on one partition if
/// `one_partition()`), the daemon's config file, and the uninterrupted
/// replay of the stream that the daemon's output is held against.
pub struct Scenario {
    pub broker: crate::brokers::tansu::Tansu,
    pub bootstrap: String,
    pub dir: KeepOnPanic,
    pub recs: Vec<Rec>,
    pub poison: usize,
    pub one: bool,
    pub msgs: Vec<Msg>,
    pub config: PathBuf,
    pub store: PathBuf,
    pub replay: Replay,
}

impl Scenario {
    /// `name` prefixes the temp dir and the consumer group; `tick` is the
    /// daemon's `kafka.tick_interval`.
    pub fn new(name: &str, seed: u64, records: usize, batch_max: usize, tick: &str) -> Scenario {
        let broker = crate::brokers::tansu::Tansu::start();
        let bootstrap = broker.bootstrap();
        broker.create_topic("alerts", 3);
        broker.create_topic("incidents", 3);
        broker.create_topic("alerts-dlq", 1);
        let dir = KeepOnPanic::new(&format!("{name}-"));
        let recs = generate(seed, records);
        let poison = recs.iter().filter(|r| r.poison).count();
        let one = one_partition();
        let msgs: Vec<Msg> = recs
            .iter()
            .map(|r| if one { r.msg().partition(0) } else { r.msg() })
            .collect();
        let config = dir.path().join("correlator.toml");
        let store = dir.path().join("store").join("correlator.redb");
        let group = crate::brokers::unique_name(&format!("correlator-{name}"));
        std::fs::write(
            &config,
            config_toml(&bootstrap, &group, &store, batch_max, tick),
        )
        .expect("write config");
        let replay = run_replay(dir.path(), &config, &recs);
        check_replay_rejections(&replay, &recs);
        Scenario {
            broker,
            bootstrap,
            dir,
            recs,
            poison,
            one,
            msgs,
            config,
            store,
            replay,
        }
    }
}

/// A temporary directory that is kept (and its path printed) if the test
/// panics: config, replay input and output, daemon log, store, events.
pub struct KeepOnPanic(pub tempfile::TempDir);

impl KeepOnPanic {
    pub fn new(prefix: &str) -> KeepOnPanic {
        KeepOnPanic(
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("tempdir"),
        )
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for KeepOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!(
                "test directory kept for a post-mortem: {}",
                self.0.path().display()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// The store after a clean exit.

/// After the daemon exited: its outbox is empty (everything was published
/// at least once) and the stored next offset of every alerts partition is
/// its record count (nothing skipped, nothing left unconsumed).
pub fn check_store(store: &Path, delivered: &[Delivered]) -> Vec<String> {
    let mut out = Vec::new();
    let s = match correlator::store::Store::open(store) {
        Ok(s) => s,
        Err(e) => return vec![format!("cannot open the store after exit: {e}")],
    };
    match s.outbox_len() {
        Ok(0) => {}
        Ok(n) => out.push(format!(
            "{n} outbox entries left unpublished after a clean exit"
        )),
        Err(e) => out.push(format!("outbox_len: {e}")),
    }
    let mut expected: BTreeMap<i32, i64> = BTreeMap::new();
    for (p, o) in delivered {
        let e = expected.entry(*p).or_default();
        *e = (*e).max(o + 1);
    }
    match s.offsets() {
        Ok(offsets) => {
            for (p, want) in &expected {
                let got = offsets.get(&("alerts".to_string(), *p)).copied();
                if got != Some(*want) {
                    out.push(format!("stored next offset of alerts/{p} is {got:?}, the partition holds {want} records"));
                }
            }
        }
        Err(e) => out.push(format!("offsets: {e}")),
    }
    out
}

/// Writes what the test saw next to the replay's output, for a post-mortem:
/// `events.jsonl` (the incidents topic in partition/offset order) and
/// `dlq.jsonl`.
pub fn write_artifacts(dir: &Path, events: &[Record], dlq: &[Record]) {
    let mut text = String::new();
    for r in events {
        text.push_str(&format!(
            "{{\"partition\":{},\"offset\":{},\"event\":{}}}\n",
            r.partition,
            r.offset,
            r.payload_str()
        ));
    }
    let _ = std::fs::write(dir.join("events.jsonl"), text);
    let mut text = String::new();
    for r in dlq {
        text.push_str(&format!("{:?}\n", r));
    }
    let _ = std::fs::write(dir.join("dlq.txt"), text);
}

/// `CORRELATOR_E2E_ONE_PARTITION=1`: produce the whole stream to partition 0
/// of `alerts` (a diagnostic: it takes the order in which the daemon
/// interleaves partitions out of the comparison).
pub fn one_partition() -> bool {
    std::env::var_os("CORRELATOR_E2E_ONE_PARTITION").is_some_and(|v| v == "1")
}

/// If the Tansu broker's log shows a panic (its storage task dies and the
/// broker stops answering, see `outage_tansu`), says so: a broker bug, not
/// the daemon's. Empty otherwise.
pub fn tansu_panic(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    match lines.iter().position(|l| l.contains("panicked at")) {
        Some(i) => format!(
            "\nNOTE: the Tansu broker panicked (a broker bug; it answers nothing after this):\n{}",
            lines[i..(i + 6).min(lines.len())].join("\n")
        ),
        None => String::new(),
    }
}
