//! Observability and deployment artefacts, checked against the real tools
//! and the real binary (`correlator run --embedded-kafka` as a child process):
//!
//! - `promtool`: `check rules` / `test rules` on `deploy/prometheus/`,
//!   `check config` on the compose config and on a generated one,
//!   `check metrics` on live `/metrics` scrapes; `amtool check-config`.
//! - A real Prometheus scraping the daemon every second: correlator's
//!   metrics are ingested, our alerting rules evaluate without error, and
//!   every PromQL query of the Grafana dashboard runs and returns data.
//! - The Grafana dashboard and the alerting rules reference only metrics the
//!   daemon really exports (checked against a live scrape).
//! - A real Prometheus with the daemon as its Alertmanager (no Alertmanager
//!   between): its always-firing rule opens an incident.
//! - A real Alertmanager with its webhook pointed at the daemon: an alert
//!   posted to Alertmanager becomes an incident whose alert fingerprint is
//!   the one Alertmanager reports, and its resolution resolves the incident.
//! - The shipped configs (`deploy/correlator.compose.toml`, the Kubernetes
//!   ConfigMap) pass `correlator check-config`.
//!
//! Prometheus, promtool and Alertmanager come from the Debian packages
//! `prometheus` and `prometheus-alertmanager`, installed by
//! `scripts/install-test-tools.sh` (run by `scripts/test.sh`). A test that
//! needs one fails, naming the script, when it is missing.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_correlator");
const TOKEN: &str = "observability-test-token";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(rel: &str) -> PathBuf {
    repo().join("deploy").join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A binary from a Debian package; panics, naming the install script, if
/// it is missing.
fn tool(name: &str, package: &str) -> PathBuf {
    let dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in dirs
        .iter()
        .map(PathBuf::as_path)
        .chain([Path::new("/usr/bin")])
    {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` not found (Debian package `{package}`): run scripts/install-test-tools.sh \
         (scripts/test.sh does)"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

fn now_rfc3339() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Polls `f` every 250 ms until it returns `Some` or `timeout` passes.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client (Connection: close; Content-Length or chunked).

struct Response {
    status: u16,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

fn http(
    method: &str,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if method != "GET" || !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "malformed HTTP response: {}",
                String::from_utf8_lossy(&raw[..raw.len().min(300)])
            ),
        )
    })
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Response { status, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

fn get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    http("GET", addr, path, &[], None)
}

fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &Value,
    token: Option<&str>,
) -> std::io::Result<Response> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = auth.as_deref() {
        headers.push(("Authorization", a));
    }
    http(
        "POST",
        addr,
        path,
        &headers,
        Some(body.to_string().as_bytes()),
    )
}

/// Percent-encodes a query-string value.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Child processes: output to a log file, SIGTERM then SIGKILL on drop.

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let out = File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(40);
        format!(
            "--- last lines of {} ({}):\n{}",
            self.name,
            self.log.display(),
            lines[from..].join("\n")
        )
    }

    /// Panics with the log if the process has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status})\n{}", self.name, self.log_tail());
        }
    }

    /// Polls `f` until `Some`, checking that the process stays up; panics
    /// with `what` and the log after `timeout`.
    fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            self.assert_running();
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// The daemon under test.

struct Daemon {
    proc: Proc,
    addr: SocketAddr,
    /// The embedded broker's bootstrap address.
    brokers: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// `correlator run --embedded-kafka` on a free loopback port, with the
    /// API token set; returns once `/readyz` answers 200.
    fn start() -> Daemon {
        Daemon::start_with("")
    }

    /// [`Daemon::start`] with `extra` appended to the config.
    fn start_with(extra: &str) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("correlator.toml");
        let text = format!(
            r#"[kafka]
brokers = "127.0.0.1:9"
group_id = "observability"
assignment = "manual"
tick_interval = "200ms"
session_timeout = "6s"

[store]
path = "{store}"

[http]
listen = "127.0.0.1:{port}"
token_env = "CORRELATOR_API_TOKEN"

[[rules]]
name = "by-service"
matchers = ['severity=~"critical|warning"']
group_by = ["cluster", "service"]
window = "10m"
min_alerts = 1
reopen_window = "30m"
{extra}"#,
            store = dir.path().join("store").join("correlator.redb").display(),
        );
        std::fs::write(&config, text).expect("write config");
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--embedded-kafka")
            .arg("--shutdown-timeout")
            .arg("10s")
            .env("CORRELATOR_API_TOKEN", TOKEN)
            .env("RUST_LOG", "info,rdkafka=warn")
            .env("NO_COLOR", "1");
        let mut proc = Proc::spawn("correlator", cmd, dir.path().join("correlator.log"));
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        proc.wait_for(
            "correlator /readyz to answer 200",
            Duration::from_secs(60),
            || get(addr, "/readyz").ok().filter(|r| r.status == 200),
        );
        let brokers = proc.wait_for(
            "the embedded broker address",
            Duration::from_secs(5),
            || {
                proc_log_line(
                    &dir.path().join("correlator.log"),
                    "embedded Kafka broker at ",
                )
            },
        );
        Daemon {
            proc,
            addr,
            brokers,
            _dir: dir,
        }
    }

    fn metrics(&mut self) -> String {
        match get(self.addr, "/metrics") {
            Ok(r) if r.status == 200 => r.text(),
            Ok(r) => panic!(
                "GET /metrics: {} {}\n{}",
                r.status,
                r.text(),
                self.proc.log_tail()
            ),
            Err(e) => panic!("GET /metrics: {e}\n{}", self.proc.log_tail()),
        }
    }

    /// Makes every labelled metric family appear (vectors are exported from
    /// their first use): an alert through the webhook receiver (received,
    /// incident opened and open, event published, webhook request) and an
    /// undecodable record on the alerts topic (rejected, DLQ). Returns the
    /// scrape once all of them are there.
    fn exercise(&mut self) -> String {
        let alert = json!([{
            "labels": {"alertname": "ObservabilityExercise", "service": "checkout",
                       "severity": "critical", "cluster": "eu-1"},
            "annotations": {"summary": "checkout is slow"},
            "startsAt": now_rfc3339()
        }]);
        let r = post_json(self.addr, "/api/v1/alerts", &alert, Some(TOKEN))
            .unwrap_or_else(|e| panic!("POST /api/v1/alerts: {e}\n{}", self.proc.log_tail()));
        assert_eq!(r.status, 200, "POST /api/v1/alerts: {}", r.text());
        assert_eq!(r.json()["accepted"], 1, "{}", r.text());
        produce_poison(&self.brokers, "alerts");
        let needed = [
            "correlator_alerts_received_total{",
            "correlator_alerts_rejected_total{",
            "correlator_incidents_opened_total{",
            "correlator_incidents_open{",
            "correlator_events_published_total{",
            "correlator_webhook_requests_total{",
            "correlator_dlq_records_total 1",
        ];
        let addr = self.addr;
        let mut last = String::new();
        let found = poll(Duration::from_secs(30), || {
            last = get(addr, "/metrics").ok()?.text();
            needed
                .iter()
                .all(|n| last.contains(n))
                .then(|| last.clone())
        });
        match found {
            Some(text) => text,
            None => panic!(
                "after an alert and a poison record, /metrics still lacks some of {needed:?}:\n{last}\n{}",
                self.proc.log_tail()
            ),
        }
    }
}

fn proc_log_line(log: &Path, prefix: &str) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|s| s.trim().to_string())
}

/// Produces one record that no decoder accepts.
fn produce_poison(brokers: &str, topic: &str) {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "20000")
        .create()
        .expect("producer");
    p.send(
        BaseRecord::to(topic)
            .key("eu-1")
            .payload("this is not an alert {"),
    )
    .map_err(|(e, _)| e)
    .expect("enqueue poison record");
    p.flush(Duration::from_secs(20))
        .expect("poison record acknowledged");
}

// ---------------------------------------------------------------------------
// promtool / amtool.

/// Runs a tool; panics with its output unless it succeeded. Returns stdout
/// and stderr together.
fn run_tool(tool: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(tool);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", tool.display()));
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        let input = input.to_string();
        // Written from a thread so a tool that answers early cannot deadlock us.
        std::thread::spawn(move || {
            let _ = w.write_all(input.as_bytes());
        });
    }
    let out = child.wait_with_output().expect("tool output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n{text}",
        tool.display(),
        args.join(" "),
        out.status
    );
    text
}

fn promtool() -> PathBuf {
    tool("promtool", "prometheus")
}

/// `promtool check metrics` must report nothing at all.
fn check_metrics_clean(scrape: &str) {
    let out = run_tool(&promtool(), &["check", "metrics"], Some(scrape));
    assert!(
        out.trim().is_empty(),
        "promtool check metrics found problems in correlator's /metrics:\n{out}\n--- scrape:\n{scrape}"
    );
}

/// A Prometheus config scraping `target` every second and evaluating our
/// alerting rules every second.
fn prometheus_config(target: SocketAddr) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - "{rules}"
scrape_configs:
  - job_name: correlator
    static_configs:
      - targets: ["{target}"]
"#,
        rules = deploy("prometheus/rules.yml").display()
    )
}

fn alertmanager_config(daemon: SocketAddr) -> String {
    format!(
        r#"route:
  receiver: correlator
  group_by: [cluster, alertname]
  group_wait: 1s
  group_interval: 1s
  # Re-sends keep a firing alert alive in correlator (dedup.webhook_resolve_timeout).
  repeat_interval: 1s
receivers:
  - name: correlator
    webhook_configs:
      - url: "http://{daemon}/api/v1/alerts"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{TOKEN}"
"#
    )
}

#[test]
fn promtool_checks_rules_configs_and_live_metrics() {
    let promtool = promtool();
    let amtool = tool("amtool", "prometheus-alertmanager");
    let rules = deploy("prometheus/rules.yml");
    let out = run_tool(
        &promtool,
        &["check", "rules", rules.to_str().unwrap()],
        None,
    );
    assert!(out.contains("SUCCESS"), "{out}");
    // Alerting-rule unit tests: each alert fires when it should, not before.
    let tests = deploy("prometheus/rules.test.yml");
    run_tool(&promtool, &["test", "rules", tests.to_str().unwrap()], None);
    // The compose stack's config (its rule file is found next to it).
    let compose = deploy("prometheus/prometheus.yml");
    run_tool(
        &promtool,
        &["check", "config", compose.to_str().unwrap()],
        None,
    );
    run_tool(
        &amtool,
        &[
            "check-config",
            deploy("alertmanager/alertmanager.yml").to_str().unwrap(),
        ],
        None,
    );

    let mut d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let generated = dir.path().join("prometheus.yml");
    std::fs::write(&generated, prometheus_config(d.addr)).expect("write");
    run_tool(
        &promtool,
        &["check", "config", generated.to_str().unwrap()],
        None,
    );
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(&am, alertmanager_config(d.addr)).expect("write");
    run_tool(&amtool, &["check-config", am.to_str().unwrap()], None);

    // A fresh daemon, then one with every labelled family in use.
    let fresh = d.metrics();
    check_metrics_clean(&fresh);
    let busy = d.exercise();
    check_metrics_clean(&busy);
}

// ---------------------------------------------------------------------------
// A real Prometheus.

fn query(prom: SocketAddr, q: &str) -> Result<Vec<Value>, String> {
    let r =
        get(prom, &format!("/api/v1/query?query={}", urlencode(q))).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&r.body).map_err(|e| format!("{e}: {}", r.text()))?;
    if r.status != 200 || v["status"] != "success" {
        return Err(format!("{} {}", r.status, r.text()));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// The value of a single-sample instant vector.
fn sample_value(result: &[Value]) -> Option<f64> {
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// The dashboard's queries with its variables set as Grafana would.
fn dashboard_queries() -> Vec<(String, String)> {
    let dash: Value = serde_json::from_str(&read(&deploy("grafana/dashboards/correlator.json")))
        .expect("dashboard is JSON");
    let mut out = Vec::new();
    for p in all_panels(&dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                let q = e
                    .replace("$__rate_interval", "1m")
                    .replace("$window", "5m")
                    .replace("$instance", ".*");
                out.push((p["title"].as_str().unwrap_or("?").to_string(), q));
            }
        }
    }
    out
}

#[test]
fn prometheus_ingests_metrics_evaluates_rules_and_dashboard_queries() {
    let prometheus = tool("prometheus", "prometheus");
    let mut d = Daemon::start();
    d.exercise();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, prometheus_config(d.addr)).expect("write");
    let port = free_port();
    let prom_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(&prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn");
    let mut prom = Proc::spawn("prometheus", cmd, dir.path().join("prometheus.log"));
    prom.wait_for("Prometheus /-/ready", Duration::from_secs(60), || {
        get(prom_addr, "/-/ready").ok().filter(|r| r.status == 200)
    });

    let build = prom.wait_for(
        "correlator_build_info in Prometheus",
        Duration::from_secs(60),
        || {
            query(prom_addr, "correlator_build_info")
                .ok()
                .filter(|r| !r.is_empty())
        },
    );
    assert_eq!(build[0]["metric"]["job"], "correlator", "{build:?}");
    assert_eq!(
        build[0]["metric"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{build:?}"
    );

    // The scrape target is healthy and its samples parse.
    let targets = get(prom_addr, "/api/v1/targets").expect("targets").json();
    let active = targets["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(active.len(), 1, "{targets}");
    assert_eq!(active[0]["health"], "up", "{targets}");
    assert_eq!(active[0]["lastError"], "", "{targets}");

    for (q, want) in [
        ("up{job=\"correlator\"}", 1.0),
        ("correlator_ready", 1.0),
        ("sum(correlator_alerts_received_total)", 1.0),
        ("sum(correlator_incidents_opened_total)", 1.0),
        ("correlator_dlq_records_total", 1.0),
    ] {
        let r = query(prom_addr, q).unwrap_or_else(|e| panic!("{q}: {e}"));
        assert_eq!(sample_value(&r), Some(want), "{q} -> {r:?}");
    }
    let lag = query(prom_addr, "correlator_consumer_lag").expect("lag");
    assert!(!lag.is_empty(), "correlator_consumer_lag not ingested");
    let buckets =
        query(prom_addr, "correlator_processing_latency_seconds_bucket").expect("buckets");
    assert!(
        buckets.len() > 5,
        "histogram buckets not ingested: {buckets:?}"
    );

    // Our alerting rules load and evaluate without error on real data.
    let rules = prom.wait_for(
        "every alerting rule evaluated",
        Duration::from_secs(30),
        || {
            let v = get(prom_addr, "/api/v1/rules").ok()?.json();
            let rules: Vec<Value> = v["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            (!rules.is_empty() && rules.iter().all(|r| r["health"] != "unknown")).then_some(rules)
        },
    );
    let in_file = rule_exprs(&read(&deploy("prometheus/rules.yml"))).len();
    assert_eq!(rules.len(), in_file, "rules loaded: {rules:?}");
    for r in &rules {
        assert_eq!(
            r["health"], "ok",
            "rule {} failed: {}",
            r["name"], r["lastError"]
        );
    }
    // A healthy daemon fires none of its own critical alerts.
    let firing = query(
        prom_addr,
        "ALERTS{alertstate=\"firing\", severity=\"critical\"}",
    )
    .expect("ALERTS");
    assert!(
        firing.is_empty(),
        "critical alerts firing on a healthy daemon: {firing:?}"
    );

    // Every dashboard query runs, and shows data once rates have two samples.
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    let mut problems = Vec::new();
    let ok = poll(Duration::from_secs(30), || {
        problems.clear();
        for (title, q) in &queries {
            match query(prom_addr, q) {
                Ok(r) if r.is_empty() => problems.push(format!("{title}: no data: {q}")),
                Ok(_) => {}
                Err(e) => problems.push(format!("{title}: {e}: {q}")),
            }
        }
        problems.is_empty().then_some(())
    });
    assert!(
        ok.is_some(),
        "dashboard queries failing:\n{}",
        problems.join("\n")
    );
    drop(prom);
}

// ---------------------------------------------------------------------------
// Metric names referenced by PromQL.

/// Every metric name an expression references: identifiers outside label
/// matchers, ranges, strings and grouping clauses that are neither function
/// calls, aggregations nor keywords.
fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const KEYWORDS: &[&str] = &[
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let c: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_ws = |mut j: usize| {
        while j < c.len() && c[j].is_whitespace() {
            j += 1;
        }
        j
    };
    // Index after the bracket matching the opening one at `j`.
    let skip_group = |j: usize, open: char, close: char| {
        let mut depth = 0;
        let mut k = j;
        let mut quote: Option<char> = None;
        while k < c.len() {
            match (quote, c[k]) {
                (Some(_), '\\') => k += 1,
                (Some(q), ch) if ch == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'' | '`') => quote = Some(c[k]),
                (None, ch) if ch == open => depth += 1,
                (None, ch) if ch == close => {
                    depth -= 1;
                    if depth == 0 {
                        return k + 1;
                    }
                }
                _ => {}
            }
            k += 1;
        }
        k
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '"' || ch == '\'' || ch == '`' {
            let mut k = i + 1;
            while k < c.len() && c[k] != ch {
                if c[k] == '\\' {
                    k += 1;
                }
                k += 1;
            }
            i = k + 1;
        } else if ch == '{' {
            i = skip_group(i, '{', '}');
        } else if ch == '[' {
            i = skip_group(i, '[', ']');
        } else if ch == '$' {
            i += 1;
            while i < c.len() && (c[i].is_alphanumeric() || "_{}".contains(c[i])) {
                i += 1;
            }
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                i += 1;
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let next = skip_ws(i);
            let lower = word.to_ascii_lowercase();
            if GROUPING.contains(&lower.as_str()) {
                if c.get(next) == Some(&'(') {
                    i = skip_group(next, '(', ')');
                }
            } else if c.get(next) == Some(&'(')
                || AGGREGATIONS.contains(&lower.as_str())
                || KEYWORDS.contains(&lower.as_str())
            {
                // A function call, an aggregation or a keyword.
            } else {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_metric_name_extraction() {
    let names = |e: &str| promql_metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{x=~"$instance", y="f(b)"}[$__rate_interval])))"#
        ),
        ["a_seconds_bucket"]
    );
    assert_eq!(
        names("sum without (instance) (rate(x_total[5m])) / on(job) group_left(version) y_info and z offset 1h > bool 0.5"),
        ["x_total", "y_info", "z"]
    );
    assert_eq!(
        names(
            "1 - sum(increase(a_total[1d])) / sum(increase(b_total[1d])) unless absent(c) or Inf"
        ),
        ["a_total", "b_total", "c"]
    );
    assert_eq!(names("max by (instance, version) (m{l='a \\' b'})"), ["m"]);
    assert_eq!(
        names("topk(5, sum by(x)(count_metric)) * 7 * 86400 + 1e3"),
        ["count_metric"]
    );
}

fn all_panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

/// The `expr` values of a Prometheus rule file: `expr: X` on one line or
/// `expr: |` followed by a more indented block.
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("expr:") {
            let rest = rest.trim();
            if rest == "|" || rest == ">" || rest == "|-" || rest == ">-" {
                let indent = line.len() - trimmed.len();
                let mut block = Vec::new();
                while i + 1 < lines.len() {
                    let l = lines[i + 1];
                    let ind = l.len() - l.trim_start().len();
                    if !l.trim().is_empty() && ind <= indent {
                        break;
                    }
                    block.push(l.trim());
                    i += 1;
                }
                out.push(block.join(" "));
            } else {
                out.push(rest.trim_matches(|c| c == '\'' || c == '"').to_string());
            }
        }
        i += 1;
    }
    out
}

/// Metric families and sample names of a text exposition.
fn exported_names(scrape: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut families = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                families.insert(name.to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            samples.insert(line[..end].to_string());
        }
    }
    (families, samples)
}

fn unexported<'a>(
    names: impl IntoIterator<Item = &'a String>,
    families: &BTreeSet<String>,
    samples: &BTreeSet<String>,
) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n);
            !(samples.contains(n.as_str())
                || families.contains(base)
                || families.contains(n.as_str()))
        })
        .cloned()
        .collect()
}

#[test]
fn dashboard_and_rules_reference_only_exported_metrics() {
    let path = deploy("grafana/dashboards/correlator.json");
    let dash: Value = serde_json::from_str(&read(&path))
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    assert_eq!(dash["uid"], "correlator");
    let panels = all_panels(&dash);
    let mut ids = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut exprs = 0;
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate panel id in {title}"
        );
        for k in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][k].is_u64(), "{title}: gridPos.{k}");
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "{title}: datasource"
        );
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{title}: no targets"));
        assert!(!targets.is_empty(), "{title}: no targets");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "{title}: duplicate refId"
            );
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{title}: target without expr"));
            let found = promql_metric_names(expr);
            assert!(!found.is_empty(), "{title}: no metric in {expr}");
            names.extend(found);
            exprs += 1;
        }
    }
    assert!(exprs >= 20 && names.len() >= 20, "{exprs} exprs, {names:?}");

    let rules = rule_exprs(&read(&deploy("prometheus/rules.yml")));
    let alerts = read(&deploy("prometheus/rules.yml"))
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert!(
        alerts > 0 && rules.len() == alerts,
        "{alerts} alerts, exprs {rules:?}"
    );
    let mut rule_names = BTreeSet::new();
    for e in &rules {
        rule_names.extend(promql_metric_names(e));
    }
    // `up` is Prometheus's own, from scraping.
    rule_names.remove("up");

    let mut d = Daemon::start();
    let scrape = d.exercise();
    let (families, samples) = exported_names(&scrape);
    let missing = unexported(&names, &families, &samples);
    assert!(
        missing.is_empty(),
        "the dashboard references metrics correlator does not export: {missing:?}\n--- /metrics:\n{scrape}"
    );
    let missing = unexported(&rule_names, &families, &samples);
    assert!(
        missing.is_empty(),
        "rules.yml references metrics correlator does not export: {missing:?}\n--- /metrics:\n{scrape}"
    );
}

// ---------------------------------------------------------------------------
// A real Alertmanager sending its webhook to the daemon.

#[test]
fn alertmanager_webhook_alert_becomes_incident_with_alertmanager_fingerprint() {
    let alertmanager = tool("prometheus-alertmanager", "prometheus-alertmanager");
    // Alertmanager does not expose a firing alert's endsAt in its webhook:
    // correlator keeps it firing only while it is re-sent (repeat_interval)
    // within webhook_resolve_timeout. Short here, to check that it stays firing.
    let resolve_timeout = Duration::from_secs(10);
    let mut d = Daemon::start_with("[dedup]\nwebhook_resolve_timeout = \"10s\"\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, alertmanager_config(d.addr)).expect("write");
    let port = free_port();
    let am_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(&alertmanager);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=info");
    let mut am = Proc::spawn("alertmanager", cmd, dir.path().join("alertmanager.log"));
    am.wait_for("Alertmanager /-/ready", Duration::from_secs(60), || {
        get(am_addr, "/-/ready").ok().filter(|r| r.status == 200)
    });

    // Labels that exercise the fingerprint: unsorted names, UTF-8, spaces,
    // characters that need escaping in JSON.
    let name = format!("ObservabilityWebhook{}", std::process::id());
    let labels = json!({
        "zone": "zürich ✓ — 東京",
        "alertname": name,
        "service": "payments",
        "severity": "critical",
        "cluster": "eu-1",
        "instance": "10.0.0.7:9100",
        "path": "/var/lib/\"quoted\" \\ dir",
        "a_b": "x y",
    });
    let starts = now_rfc3339();
    let post = |ends: Option<String>| {
        let mut alert = json!({
            "labels": labels,
            "annotations": {"summary": "payments error rate 12%"},
            "startsAt": starts,
            "generatorURL": "http://prometheus.example/graph?g0.expr=up"
        });
        if let Some(e) = ends {
            alert["endsAt"] = json!(e);
        }
        let r = post_json(am_addr, "/api/v2/alerts", &json!([alert]), None)
            .expect("POST Alertmanager /api/v2/alerts");
        assert_eq!(
            r.status,
            200,
            "Alertmanager refused the alert: {}",
            r.text()
        );
    };
    post(None);

    let filter = urlencode(&format!("alertname=\"{name}\""));
    let am_alert = am.wait_for("the alert in Alertmanager", Duration::from_secs(10), || {
        let r = get(am_addr, &format!("/api/v2/alerts?filter={filter}")).ok()?;
        r.json().as_array()?.first().cloned()
    });
    let am_fingerprint = am_alert["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert_eq!(
        am_alert["labels"], labels,
        "Alertmanager changed the labels"
    );

    let daemon_addr = d.addr;
    let find = |status: Option<&str>| {
        let r = get(daemon_addr, "/api/v1/incidents?limit=1000").ok()?;
        if r.status != 200 {
            return None;
        }
        let v = r.json();
        v["incidents"].as_array()?.iter().find_map(|inc| {
            let alert = inc["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == json!(name))?;
            status
                .is_none_or(|s| inc["status"] == s)
                .then(|| (inc.clone(), alert.clone()))
        })
    };
    let Some((incident, alert)) = poll(Duration::from_secs(30), || find(None)) else {
        d.proc.assert_running();
        panic!(
            "no incident with alertname {name} 30 s after posting it to Alertmanager\n{}\n{}",
            d.proc.log_tail(),
            am.log_tail()
        );
    };
    assert_eq!(
        alert["fingerprint"], am_fingerprint,
        "correlator's fingerprint differs from Alertmanager's for labels {labels}"
    );
    assert_eq!(alert["labels"], labels, "labels changed on the way");
    assert_eq!(alert["status"], "firing");
    assert_eq!(incident["status"], "open", "{incident}");
    assert_eq!(incident["rule"], "by-service", "{incident}");
    assert_eq!(incident["severity"], "critical", "{incident}");
    let m = d.metrics();
    assert!(
        m.contains("correlator_webhook_requests_total{outcome=\"accepted\"}"),
        "the webhook receiver did not count Alertmanager's request:\n{m}"
    );

    // Alertmanager's repeats keep it firing past resolve_timeout.
    std::thread::sleep(resolve_timeout + Duration::from_secs(2));
    let (incident, alert) = find(None).expect("the incident");
    assert_eq!(
        (incident["status"].as_str(), alert["status"].as_str()),
        (Some("open"), Some("firing")),
        "the alert timed out although Alertmanager kept re-sending it: {incident}"
    );
    assert!(
        alert["occurrences"].as_u64() > Some(2),
        "no re-sends counted: {alert}"
    );

    // Resolved in Alertmanager → resolved notification → incident resolved,
    // by that notification rather than by resolve_timeout.
    let resolved_at_post = SystemTime::now();
    post(Some(now_rfc3339()));
    let Some((incident, alert)) = poll(Duration::from_secs(30), || find(Some("resolved"))) else {
        panic!(
            "incident not resolved 30 s after the alert resolved in Alertmanager: {:?}\n{}\n{}",
            find(None),
            d.proc.log_tail(),
            am.log_tail()
        );
    };
    assert_eq!(alert["status"], "resolved", "{incident}");
    let resolved_at = chrono::DateTime::parse_from_rfc3339(
        incident["resolved_at"].as_str().expect("resolved_at"),
    )
    .expect("resolved_at is RFC 3339");
    let posted = chrono::DateTime::<chrono::Utc>::from(resolved_at_post);
    let after = (resolved_at.timestamp_millis() - posted.timestamp_millis()) as f64 / 1000.0;
    assert!(
        after < resolve_timeout.as_secs_f64() / 2.0,
        "resolved {after} s after the resolution was posted: by timeout, not by \
         Alertmanager's resolved notification ({incident})"
    );
}

// ---------------------------------------------------------------------------
// A real Prometheus sending its alerts to the daemon, no Alertmanager between.

#[test]
fn prometheus_sends_alerts_to_correlator_as_its_alertmanager() {
    let prometheus = tool("prometheus", "prometheus");
    let mut d = Daemon::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("PrometheusDirect{}", std::process::id());
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        format!(
            r#"groups:
  - name: direct
    interval: 1s
    rules:
      - alert: {name}
        expr: vector(1)
        labels:
          severity: critical
          service: checkout
          cluster: eu-1
        annotations:
          summary: "checkout always firing"
"#
        ),
    )
    .expect("write rules");
    // Correlator as Prometheus' Alertmanager: its host and port, the
    // default path prefix (so /api/v2/alerts), the bearer token.
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            r#"global:
  evaluation_interval: 1s
rule_files:
  - "{rules}"
alerting:
  alertmanagers:
    - scheme: http
      api_version: v2
      authorization:
        type: Bearer
        credentials: "{TOKEN}"
      static_configs:
        - targets: ["{daemon}"]
"#,
            rules = rules.display(),
            daemon = d.addr,
        ),
    )
    .expect("write config");
    let port = free_port();
    let prom_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut cmd = Command::new(&prometheus);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // Re-send every second (default 1m): a first send made before the
        // Alertmanager list is known is dropped.
        .arg("--rules.alert.resend-delay=1s")
        .arg("--log.level=info");
    let mut prom = Proc::spawn("prometheus", cmd, dir.path().join("prometheus.log"));
    prom.wait_for("Prometheus /-/ready", Duration::from_secs(60), || {
        get(prom_addr, "/-/ready").ok().filter(|r| r.status == 200)
    });

    let daemon_addr = d.addr;
    let find = || {
        let r = get(daemon_addr, "/api/v1/incidents?limit=1000").ok()?;
        if r.status != 200 {
            return None;
        }
        let v = r.json();
        v["incidents"].as_array()?.iter().find_map(|inc| {
            let alert = inc["alerts"]
                .as_array()?
                .iter()
                .find(|a| a["labels"]["alertname"] == json!(name))?;
            Some((inc.clone(), alert.clone()))
        })
    };
    let Some((incident, alert)) = poll(Duration::from_secs(60), find) else {
        d.proc.assert_running();
        panic!(
            "no incident for Prometheus' always-firing rule {name} after 60 s\n{}\n{}",
            d.proc.log_tail(),
            prom.log_tail()
        );
    };
    assert_eq!(incident["status"], "open", "{incident}");
    assert_eq!(incident["rule"], "by-service", "{incident}");
    assert_eq!(alert["status"], "firing", "{incident}");
    assert_eq!(
        alert["labels"],
        json!({"alertname": name, "severity": "critical", "service": "checkout",
               "cluster": "eu-1"}),
        "{incident}"
    );

    // Prometheus saw its posts accepted: sent, no errors.
    let scrape = get(prom_addr, "/metrics")
        .expect("Prometheus /metrics")
        .text();
    let sample = |prefix: &str| -> f64 {
        scrape
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in Prometheus' metrics"))
    };
    assert!(
        sample("prometheus_notifications_sent_total{") >= 1.0,
        "Prometheus sent nothing"
    );
    assert_eq!(
        sample("prometheus_notifications_errors_total{"),
        0.0,
        "Prometheus' posts failed\n{}\n{}",
        d.proc.log_tail(),
        prom.log_tail()
    );
    // Its endsAt re-sent every second keeps the alert firing: still one
    // incident, more occurrences.
    let more = poll(Duration::from_secs(30), || {
        find().filter(|(_, a)| a["occurrences"].as_u64() > Some(2))
    });
    let Some((incident, _)) = more else {
        panic!("Prometheus' re-sends were not counted: {:?}", find());
    };
    assert_eq!(incident["status"], "open", "{incident}");
}

// ---------------------------------------------------------------------------
// The shipped configurations.

fn check_config(path: &Path) {
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(path)
        .output()
        .expect("run correlator check-config");
    assert!(
        out.status.success(),
        "{} does not pass check-config:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `correlator.toml: |` block of the Kubernetes ConfigMap.
fn configmap_toml(yaml: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "correlator.toml: |")
        .expect("a `correlator.toml: |` key in the ConfigMap");
    let key_indent = lines[start].len() - lines[start].trim_start().len();
    let mut out = String::new();
    let mut block_indent = None;
    for l in &lines[start + 1..] {
        let ind = l.len() - l.trim_start().len();
        if !l.trim().is_empty() && ind <= key_indent {
            break;
        }
        let bi = *block_indent.get_or_insert(ind);
        out.push_str(l.get(bi..).unwrap_or(""));
        out.push('\n');
    }
    out
}

#[test]
fn shipped_deploy_configs_pass_check_config() {
    check_config(&deploy("correlator.compose.toml"));
    let dir = tempfile::tempdir().expect("tempdir");
    let k8s = dir.path().join("configmap.toml");
    let toml = configmap_toml(&read(&deploy("kubernetes/correlator.yaml")));
    assert!(toml.contains("[kafka]"), "{toml}");
    std::fs::write(&k8s, toml).expect("write");
    check_config(&k8s);
    // The compose file mounts these paths; keep them in step.
    let compose = read(&deploy("docker-compose.yml"));
    for mounted in [
        "./correlator.compose.toml:/etc/correlator/correlator.toml",
        "./prometheus/prometheus.yml:",
        "./prometheus/rules.yml:",
        "./alertmanager/alertmanager.yml:",
        "./grafana/provisioning:",
        "./grafana/dashboards:",
    ] {
        assert!(
            compose.contains(mounted),
            "docker-compose.yml does not mount {mounted}"
        );
        let rel = mounted
            .trim_start_matches("./")
            .split(':')
            .next()
            .unwrap_or_default();
        assert!(deploy(rel).exists(), "deploy/{rel} is missing");
    }
}
