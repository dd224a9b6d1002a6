//! Records the broker deleted before the daemon read them (retention, or
//! the mock broker's cap of about 5 MiB per partition) are never skipped
//! silently: counted exactly, shown in `/readyz`, and paged as an incident
//! of correlator itself.

use std::time::Duration;

use correlator::config::Config;
use correlator::daemon::Daemon;
use correlator::engine::EngineConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::brokers::mock::MockKafka;
use crate::brokers::{consume_blocking, now_ms, produce_all_blocking, wait_until, Attach, Msg};
use crate::daemon_e2e::DaemonProc;

fn config_text(bootstrap: &str, store: &std::path::Path) -> String {
    format!(
        r#"[kafka]
brokers = "{bootstrap}"
group_id = "records-lost-{n}"
assignment = "manual"
tick_interval = "100ms"
[store]
path = "{store}"
[http]
listen = "127.0.0.1:0"
[[rules]]
name = "by-service"
group_by = ["service"]
"#,
        n = std::process::id(),
        store = store.display()
    )
}

fn cluster() -> MockKafka {
    let kafka = MockKafka::start(1);
    kafka.create_topic("alerts", 1);
    kafka.create_topic("incidents", 1);
    kafka.create_topic("alerts-dlq", 1);
    kafka
}

/// Re-sends of one alert, each with a 2 KiB summary: enough of them push
/// the mock broker over its per-partition cap, so it deletes the oldest.
fn resends(n: usize, t0: i64) -> Vec<Msg> {
    let body = serde_json::json!([{
        "labels": {"alertname": "Busy", "service": "busy", "severity": "warning"},
        "annotations": {"summary": "b".repeat(2048)},
    }])
    .to_string();
    (0..n)
        .map(|i| Msg::new("busy", body.clone()).timestamp(t0 + i as i64))
        .collect()
}

fn log_start(bootstrap: &str) -> i64 {
    let c: BaseConsumer = crate::brokers::client_config(bootstrap)
        .create()
        .expect("consumer");
    let (low, _) = c
        .fetch_watermarks("alerts", 0, Duration::from_secs(10))
        .expect("watermarks");
    low
}

fn lost_incident_published(bootstrap: &str) -> bool {
    consume_blocking(
        bootstrap,
        "incidents",
        100_000,
        Duration::from_secs(3),
        Attach::Assign,
    )
    .records
    .iter()
    .any(|r| r.payload_str().contains("CorrelatorRecordsLost"))
}

/// The daemon stopped; meanwhile the broker deleted records it had not read.
#[test]
fn records_deleted_while_the_daemon_was_stopped_are_reported() {
    let kafka = cluster();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(&kafka.bootstrap(), &dir.path().join("state.redb"));
    let cfg = Config::parse(&text, "lost.toml").unwrap();
    let start = || {
        let ec = EngineConfig::compile(&cfg).unwrap();
        Daemon::start(cfg.clone(), ec, false, false, Duration::from_secs(20)).unwrap()
    };
    let t0 = now_ms() - 600_000;
    let d = start();
    produce_all_blocking(&kafka.bootstrap(), "alerts", &resends(10, t0));
    let committed = |d: &Daemon| {
        d.health
            .records_committed
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert!(wait_until(Duration::from_secs(20), || committed(&d) == 10));
    d.shutdown().unwrap();

    produce_all_blocking(&kafka.bootstrap(), "alerts", &resends(4000, t0 + 100));
    let low = log_start(&kafka.bootstrap());
    assert!(
        low > 10,
        "the mock broker deleted records (log start {low})"
    );

    let d = start();
    assert!(
        wait_until(Duration::from_secs(30), || {
            committed(&d) == 4010 - low as u64
        }),
        "{} records applied after the gap, want {}",
        committed(&d),
        4010 - low
    );
    let lost = d
        .health
        .records_lost
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(lost, low as u64 - 10, "every deleted record counted, once");
    assert!(
        d.health
            .degraded(now_ms())
            .iter()
            .any(|(r, _)| *r == "records_lost"),
        "health reports it"
    );
    assert!(
        wait_until(Duration::from_secs(15), || lost_incident_published(
            &kafka.bootstrap()
        )),
        "an incident of correlator itself was published"
    );
    d.shutdown().unwrap();
}

/// The daemon fell behind while running (here: frozen with SIGSTOP) and the
/// broker deleted the records it was about to read: the client jumps to the
/// log start, and the daemon reports the gap.
#[test]
fn records_deleted_while_the_daemon_was_behind_are_reported() {
    let kafka = cluster();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        config_text(&kafka.bootstrap(), &dir.path().join("state.redb")),
    )
    .unwrap();
    let mut d = DaemonProc::new(&cfg, &dir.path().join("daemon.log"));
    d.start();
    let t0 = now_ms() - 600_000;
    produce_all_blocking(&kafka.bootstrap(), "alerts", &resends(10, t0));
    assert!(
        wait_until(Duration::from_secs(20), || d
            .readyz()
            .is_some_and(|r| r.u64("records_committed") == 10)),
        "first records applied"
    );
    d.freeze();
    produce_all_blocking(&kafka.bootstrap(), "alerts", &resends(4000, t0 + 100));
    let low = log_start(&kafka.bootstrap());
    assert!(
        low > 10,
        "the mock broker deleted records (log start {low})"
    );
    d.thaw();
    let mut last = None;
    let ok = wait_until(Duration::from_secs(40), || {
        last = d.readyz();
        last.as_ref().is_some_and(|r| r.u64("records_lost") > 0)
    });
    assert!(ok, "the gap was reported: {last:?}");
    let r = last.unwrap();
    assert_eq!(r.u64("records_lost"), low as u64 - 10, "{:?}", r.body);
    assert_eq!(r.body["status"], "degraded", "{:?}", r.body);
    assert!(
        wait_until(Duration::from_secs(15), || lost_incident_published(
            &kafka.bootstrap()
        )),
        "an incident of correlator itself was published"
    );
    assert!(
        d.log()
            .contains("deleted by the broker before they were read"),
        "logged"
    );
}
