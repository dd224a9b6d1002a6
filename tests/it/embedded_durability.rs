//! The embedded broker keeps its log in the daemon's memory: a webhook 200
//! must mean the alerts are in the store, so they survive a kill -9 right
//! after it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::daemon_e2e::DaemonProc;

const TOKEN: &str = "embedded-test-token";

fn config(store: &std::path::Path) -> String {
    format!(
        r#"[kafka]
brokers = "unused:9092"
group_id = "embedded-test"
tick_interval = "100ms"

[store]
path = "{store}"

[http]
listen = "127.0.0.1:0"
token_env = "CORRELATOR_TEST_TOKEN"

[[rules]]
name = "by-service"
group_by = ["service"]
"#,
        store = store.display()
    )
}

/// A raw HTTP/1.1 request; returns (status, body).
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").expect("a response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, rest.to_string())
}

fn alert(service: &str) -> String {
    serde_json::json!([{
        "labels": {"alertname": "Down", "service": service, "severity": "critical"},
        "annotations": {"summary": format!("{service} is down")},
        "startsAt": "2026-01-01T00:00:00Z"
    }])
    .to_string()
}

#[test]
fn a_webhook_200_survives_kill_9_with_the_embedded_broker() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, config(&dir.path().join("state.redb"))).unwrap();
    let mut d = DaemonProc::new(&cfg, &dir.path().join("daemon.log"));
    d.extra_args.push("--embedded-kafka".into());
    d.envs.push(("CORRELATOR_TEST_TOKEN".into(), TOKEN.into()));
    d.start();
    let addr = d.http.expect("http address");
    const N: usize = 20;
    for i in 0..N {
        let (status, body) = request(addr, "POST", "/api/v1/alerts", &alert(&format!("svc{i}")));
        assert_eq!(status, 200, "alert {i}: {body}");
    }
    // Right after the last 200: nothing gets a chance to finish.
    d.kill();
    d.start();
    let addr = d.http.expect("http address");
    // The state is loaded once the pipeline is up.
    let (ready, r) = d.settle(Duration::from_secs(20), Duration::from_millis(200));
    assert!(ready, "daemon ready after restart: {r:?}");
    let (status, body) = request(addr, "GET", "/api/v1/incidents?limit=1000", "");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let text = v.to_string();
    let missing: Vec<usize> = (0..N)
        .filter(|i| !text.contains(&format!("\"svc{i}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "alerts acknowledged with 200 and lost by kill -9: {missing:?}"
    );
}
