//! The HTTP API against a real daemon (in process, mock cluster): every
//! endpoint, auth failures that change nothing, bad and oversized bodies,
//! invalid transitions, the webhook receiver and the problem lifecycle.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use correlator::config::Config;
use correlator::daemon::Daemon;
use correlator::engine::EngineConfig;
use serde_json::Value;

use crate::brokers::mock::MockKafka;
use crate::brokers::{now_ms, produce_all_blocking, wait_until, Msg};

const TOKEN: &str = "s3cret-token";

/// A minimal HTTP/1.1 client: (status, JSON or text body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let raw = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    // Chunked or plain: take the JSON object/array inside.
    let json_part = raw
        .find(['{', '['])
        .map(|i| &raw[i..raw.rfind(['}', ']']).map_or(raw.len(), |j| j + 1)])
        .unwrap_or("");
    let v = serde_json::from_str(json_part).unwrap_or(Value::String(raw.to_string()));
    (status, v)
}

fn oom(pod: &str, ts: i64) -> Msg {
    let body = serde_json::json!({"version": "4", "status": "firing", "alerts": [{"status": "firing",
        "labels": {"alertname": "KubePodOOMKilled", "service": "search", "pod": pod, "severity": "warning"},
        "annotations": {"summary": format!("container search in pod {pod} was OOM killed")}}]});
    Msg::new("eu1", body.to_string()).timestamp(ts)
}

/// An OOM alert under the `settling` rule (its incident closes 1 s after it
/// resolves, when problem management files it), firing or resolved at `ts`.
fn settling_oom(pod: &str, ts: i64, resolved: bool) -> Msg {
    let status = if resolved { "resolved" } else { "firing" };
    let mut alert = serde_json::json!({"status": status,
        "labels": {"alertname": "KubePodOOMKilled", "service": "search", "pod": pod,
                   "severity": "warning", "settle": "fast"},
        "annotations": {"summary": format!("container search in pod {pod} was OOM killed")}});
    if resolved {
        alert["endsAt"] =
            serde_json::json!(chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ts)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    }
    let body = serde_json::json!({"version": "4", "status": status, "alerts": [alert]});
    Msg::new("eu1", body.to_string()).timestamp(ts)
}

fn start(kafka: &MockKafka, dir: &std::path::Path, token_env: &str) -> Daemon {
    let text = format!(
        r#"
[kafka]
brokers = "{b}"
assignment = "manual"
tick_interval = "100ms"
[store]
path = "{s}"
[http]
listen = "127.0.0.1:0"
token_env = "{token_env}"
max_body_bytes = 8192
[[rules]]
name = "settling"
matchers = ['settle="fast"']
group_by = ["pod"]
reopen_window = "1s"
[[rules]]
name = "per-pod"
group_by = ["pod"]
[problems]
min_incidents = 2
"#,
        b = kafka.bootstrap(),
        s = dir.join("state.redb").display()
    );
    let cfg = Config::parse(&text, "api.toml").unwrap();
    let ec = EngineConfig::compile(&cfg).unwrap();
    Daemon::start(cfg, ec, true, false, Duration::from_secs(20)).unwrap()
}

fn incidents(addr: SocketAddr, query: &str) -> Vec<Value> {
    let (code, v) = http(
        addr,
        "GET",
        &format!("/api/v1/incidents{query}"),
        None,
        None,
    );
    assert_eq!(code, 200, "{v}");
    v["incidents"].as_array().cloned().unwrap_or_default()
}

#[test]
fn api_endpoints_auth_bodies_transitions_and_webhook() {
    let kafka = MockKafka::start(1);
    for (t, p) in [("alerts", 2), ("incidents", 1), ("alerts-dlq", 1)] {
        kafka.create_topic(t, p);
    }
    let dir = tempfile::tempdir().unwrap();
    let env = format!("CORRELATOR_TEST_TOKEN_{}", std::process::id());
    std::env::set_var(&env, TOKEN);
    let d = start(&kafka, dir.path(), &env);
    let addr = d.http_addr;
    let t0 = now_ms() - 120_000;
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[oom("search-7d9f8b6c5-x2x9z", t0)],
    );
    assert!(
        wait_until(Duration::from_secs(15), || incidents(addr, "").len() == 1),
        "incident never listed"
    );

    // Reads and their validation.
    let list = incidents(addr, "?status=open&service=search&limit=10");
    assert_eq!(list.len(), 1);
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert!(incidents(addr, "?service=nope").is_empty());
    for (q, want) in [
        ("?status=bogus", "status"),
        ("?limit=0", "limit"),
        ("?limit=x", "limit"),
        ("?colour=red", "unknown query parameter"),
        ("?cursor=zz", "cursor"),
    ] {
        let (code, v) = http(addr, "GET", &format!("/api/v1/incidents{q}"), None, None);
        assert_eq!(code, 400, "{q}: {v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{q}: {v}");
    }
    assert_eq!(
        http(addr, "GET", &format!("/api/v1/incidents/{id}"), None, None).0,
        200
    );
    assert_eq!(
        http(addr, "GET", "/api/v1/incidents/inc-zz", None, None).0,
        400
    );
    assert_eq!(
        http(
            addr,
            "GET",
            "/api/v1/incidents/inc-0000000000000001",
            None,
            None
        )
        .0,
        404
    );

    // Auth failures change nothing.
    let ack = format!("/api/v1/incidents/{id}/acknowledge");
    assert_eq!(http(addr, "POST", &ack, None, None).0, 401);
    assert_eq!(http(addr, "POST", &ack, Some("wrong"), None).0, 401);
    let (_, v) = http(addr, "GET", &format!("/api/v1/incidents/{id}"), None, None);
    assert_eq!(v["status"], "open", "unauthorised calls changed nothing");
    assert_eq!(
        http(
            addr,
            "POST",
            &format!("/api/v1/incidents/{id}/explode"),
            Some(TOKEN),
            None
        )
        .0,
        404
    );

    // Transitions.
    let (code, v) = http(addr, "POST", &ack, Some(TOKEN), None);
    assert_eq!(
        (code, v["status"].as_str()),
        (200, Some("acknowledged")),
        "{v}"
    );
    let (code, v) = http(
        addr,
        "POST",
        &format!("/api/v1/incidents/{id}/resolve"),
        Some(TOKEN),
        None,
    );
    assert_eq!((code, v["status"].as_str()), (200, Some("resolved")), "{v}");
    let (code, v) = http(addr, "POST", &ack, Some(TOKEN), None);
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("is resolved: cannot acknowledge"),
        "{v}"
    );

    // Webhook receiver: auth, validation, size, then a real alert.
    let am =
        serde_json::json!([{"labels": {"alertname": "DiskFull", "service": "db", "pod": "db-0"},
        "annotations": {"summary": "disk 97% full"}}])
        .to_string();
    assert_eq!(http(addr, "POST", "/api/v1/alerts", None, Some(&am)).0, 401);
    let (code, v) = http(
        addr,
        "POST",
        "/api/v1/alerts",
        Some(TOKEN),
        Some(r#"{"labels":{}}"#),
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("at least one label"),
        "{v}"
    );
    assert_eq!(
        http(
            addr,
            "POST",
            "/api/v1/alerts",
            Some(TOKEN),
            Some("{not json")
        )
        .0,
        400
    );
    let huge = format!(r#"[{{"labels":{{"a":"{}"}}}}]"#, "x".repeat(10_000));
    assert_eq!(
        http(addr, "POST", "/api/v1/alerts", Some(TOKEN), Some(&huge)).0,
        413
    );
    let (code, v) = http(addr, "POST", "/api/v1/alerts", Some(TOKEN), Some(&am));
    assert_eq!((code, v["accepted"].as_u64()), (200, Some(1)), "{v}");
    assert!(
        wait_until(Duration::from_secs(15), || incidents(addr, "?service=db")
            .len()
            == 1),
        "webhook alert became an incident"
    );

    // Problems: two OOM incidents that settle (resolve, then close) make a
    // candidate (min_incidents = 2).
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[
            settling_oom("search-5b6c7d8e9-p0q1r", t0 + 60_000, false),
            settling_oom("search-5b6c7d8e9-p0q1r", t0 + 61_000, true),
            settling_oom("search-7d9f8b6c5-k8j2m", t0 + 62_000, false),
            settling_oom("search-7d9f8b6c5-k8j2m", t0 + 63_000, true),
        ],
    );
    let mut problems = Vec::new();
    assert!(wait_until(Duration::from_secs(15), || {
        let (_, v) = http(addr, "GET", "/api/v1/problems?state=candidate", None, None);
        problems = v["problems"].as_array().cloned().unwrap_or_default();
        problems.len() == 1
    }));
    let pid = problems[0]["id"].as_str().unwrap().to_string();
    // Counts on the record; the incidents are paged.
    assert_eq!(problems[0]["incident_count"], 2, "{}", problems[0]);
    assert!(problems[0].get("incident_ids").is_none(), "{}", problems[0]);
    let page = |q: &str| {
        http(
            addr,
            "GET",
            &format!("/api/v1/problems/{pid}/incidents{q}"),
            None,
            None,
        )
    };
    let (code, first) = page("?limit=1");
    assert_eq!(code, 200, "{first}");
    assert_eq!(
        first["incident_ids"].as_array().unwrap().len(),
        1,
        "{first}"
    );
    assert_eq!(first["next_cursor"], "1", "{first}");
    let (_, second) = page("?limit=1&cursor=1");
    assert_eq!(
        second["incident_ids"].as_array().unwrap().len(),
        1,
        "{second}"
    );
    assert_ne!(second["incident_ids"][0], first["incident_ids"][0]);
    assert_eq!(second["next_cursor"], Value::Null, "{second}");
    assert_eq!(page("?cursor=x").0, 400);
    assert_eq!(page("?limit=0").0, 400);
    assert_eq!(
        http(
            addr,
            "GET",
            &format!("/api/v1/problems/{pid}/nope"),
            None,
            None
        )
        .0,
        404
    );
    assert_eq!(
        http(addr, "GET", &format!("/api/v1/problems/{pid}"), None, None).0,
        200
    );
    assert_eq!(
        http(addr, "GET", "/api/v1/problems?state=nope", None, None).0,
        400
    );
    let p = |a: &str| format!("/api/v1/problems/{pid}/{a}");
    assert_eq!(http(addr, "POST", &p("accept"), None, None).0, 401);
    assert_eq!(http(addr, "POST", &p("accept"), Some(TOKEN), None).0, 200);
    let (code, v) = http(addr, "POST", &p("accept"), Some(TOKEN), None);
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("cannot accept"),
        "{v}"
    );
    assert_eq!(
        http(
            addr,
            "POST",
            &p("known-error"),
            Some(TOKEN),
            Some(r#"{"root_cause":"heap"}"#)
        )
        .0,
        422
    );
    assert_eq!(
        http(
            addr,
            "POST",
            &p("known-error"),
            Some(TOKEN),
            Some(r#"{"root_cause":"a","workaround":"b","x":1}"#)
        )
        .0,
        422
    );
    assert_eq!(
        http(addr, "POST", &p("known-error"), Some(TOKEN), Some("{oops")).0,
        400
    );
    let ke = r#"{"root_cause":"JVM heap too small","workaround":"raise the memory limit to 1Gi","link":"https://wiki/ke/42"}"#;
    let (code, v) = http(addr, "POST", &p("known-error"), Some(TOKEN), Some(ke));
    assert_eq!(
        (code, v["state"].as_str()),
        (200, Some("known_error")),
        "{v}"
    );
    let (code, v) = http(
        addr,
        "POST",
        &p("merge"),
        Some(TOKEN),
        Some(&format!(r#"{{"from":"{pid}"}}"#)),
    );
    assert_eq!(code, 409, "self merge: {v}");
    // A new recurrence carries the known error in its incident.
    produce_all_blocking(
        &kafka.bootstrap(),
        "alerts",
        &[oom("search-66bd4f9c77-zt5wq", t0 + 90_000)],
    );
    let mut with_ke = Vec::new();
    assert!(wait_until(Duration::from_secs(15), || {
        with_ke = incidents(addr, "")
            .into_iter()
            .filter(|i| !i["known_error"].is_null())
            .collect();
        !with_ke.is_empty()
    }));
    assert_eq!(
        with_ke[0]["known_error"]["workaround"],
        "raise the memory limit to 1Gi"
    );
    assert_eq!(with_ke[0]["problem_id"], pid.as_str());
    assert_eq!(http(addr, "POST", &p("resolve"), Some(TOKEN), None).0, 200);

    // Metrics.
    let (code, v) = http(addr, "GET", "/metrics", None, None);
    assert_eq!(code, 200);
    let text = v.as_str().unwrap_or_default().to_string();
    assert!(
        text.contains("correlator_incidents_opened_total{"),
        "{text}"
    );
    assert!(
        text.contains("correlator_known_error_matches_total 1"),
        "{text}"
    );

    // The CLI talks to the same API.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_correlator"))
            .args(args)
            .args(["--url", &format!("http://{addr}")])
            .env(&env, TOKEN)
            .env("CORRELATOR_API_TOKEN", TOKEN)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = cli(&["incidents", "list", "--service", "db"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("ID") && out.contains("DiskFull: disk 97% full"),
        "{out}"
    );
    let (ok, out, _) = cli(&["problems", "list", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["problems"][0]["state"], "resolved");
    let (ok, _, err) = cli(&["incidents", "ack", "inc-0000000000000001"]);
    assert!(!ok && err.contains("404"), "{err}");
    d.shutdown().unwrap();
}

/// A valid body the broker refuses for good (its record limit is below
/// ours: here the producer's `message.max.bytes` lowered to 4,000) gets a
/// permanent 413 naming the limit, not a 503 that Alertmanager would retry
/// forever.
#[test]
fn a_body_the_broker_can_never_take_gets_413() {
    let kafka = MockKafka::start(1);
    for (t, p) in [("alerts", 1), ("incidents", 1), ("alerts-dlq", 1)] {
        kafka.create_topic(t, p);
    }
    let dir = tempfile::tempdir().unwrap();
    let env = format!("CORRELATOR_TEST_TOKEN_413_{}", std::process::id());
    std::env::set_var(&env, TOKEN);
    let text = format!(
        r#"
[kafka]
brokers = "{b}"
assignment = "manual"
properties = {{ "message.max.bytes" = "4000" }}
[store]
path = "{s}"
[http]
listen = "127.0.0.1:0"
token_env = "{env}"
"#,
        b = kafka.bootstrap(),
        s = dir.path().join("state.redb").display()
    );
    let cfg = Config::parse(&text, "api.toml").unwrap();
    let ec = EngineConfig::compile(&cfg).unwrap();
    let d = Daemon::start(cfg, ec, false, false, Duration::from_secs(20)).unwrap();
    let body = serde_json::json!([{
        "labels": {"alertname": "Big", "service": "svc", "severity": "critical"},
        "annotations": {"summary": "x".repeat(6000)},
    }])
    .to_string();
    let (code, v) = http(
        d.http_addr,
        "POST",
        "/api/v1/alerts",
        Some(TOKEN),
        Some(&body),
    );
    assert_eq!(code, 413, "{v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains("limits.max_record_bytes"), "{msg}");
    d.shutdown().unwrap();
}

/// Prometheus pointed at correlator as its Alertmanager: its alert API
/// path and its health paths answer as Alertmanager's do.
#[test]
fn alertmanager_api_v2_and_health_paths() {
    let kafka = MockKafka::start(1);
    for (t, p) in [("alerts", 1), ("incidents", 1), ("alerts-dlq", 1)] {
        kafka.create_topic(t, p);
    }
    let dir = tempfile::tempdir().unwrap();
    let env = format!("CORRELATOR_TEST_TOKEN_V2_{}", std::process::id());
    std::env::set_var(&env, TOKEN);
    let d = start(&kafka, dir.path(), &env);
    let addr = d.http_addr;

    let (code, v) = http(addr, "GET", "/-/healthy", None, None);
    assert_eq!((code, v), (200, Value::String("OK".into())));
    // Ready once /readyz is (store and broker checked).
    assert!(
        wait_until(Duration::from_secs(15), || {
            http(addr, "GET", "/readyz", None, None).0 == 200
        }),
        "never ready"
    );
    let (code, v) = http(addr, "GET", "/-/ready", None, None);
    assert_eq!((code, v), (200, Value::String("OK".into())));

    // What Prometheus 2.42 posts (see tests/golden/decode/README.md).
    let post = serde_json::json!([{
        "annotations": {"summary": "checkout always firing (value 1)"},
        "endsAt": "2099-01-01T00:04:00.190Z",
        "startsAt": "2026-01-05T09:58:59.190Z",
        "generatorURL": "http://prometheus-0:9090/graph?g0.expr=vector%281%29&g0.tab=1",
        "labels": {"alertname": "AlwaysFiring", "service": "checkout", "pod": "checkout-0",
                   "severity": "warning"}
    }])
    .to_string();
    assert_eq!(
        http(addr, "POST", "/api/v2/alerts", None, Some(&post)).0,
        401
    );
    for (body, want) in [
        ("{not json", "invalid JSON"),
        (r#"[{"labels":{}}]"#, "at least one label"),
        (
            r#"{"labels":{"alertname":"One"}}"#,
            "expected a JSON array of postable alerts",
        ),
        (
            r#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"}}]}"#,
            "expected a JSON array of postable alerts",
        ),
    ] {
        let (code, v) = http(addr, "POST", "/api/v2/alerts", Some(TOKEN), Some(body));
        assert_eq!(code, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(want),
            "{body}: {v}"
        );
    }
    let (code, v) = http(addr, "POST", "/api/v2/alerts", Some(TOKEN), Some(&post));
    assert_eq!((code, v), (200, Value::String(String::new())));
    assert!(
        wait_until(Duration::from_secs(15), || {
            incidents(addr, "?service=checkout").len() == 1
        }),
        "the posted alert became no incident"
    );
}
