//! Expiry per source, through the real decoders: each format's firing alert
//! is read as its producer means it.

use crate::alert::{AlertStatus, Timestamp};
use crate::config::Config;
use crate::engine::state::IncidentStatus;
use crate::engine::{Engine, EngineConfig, EventKind};

const T0: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z
const HOUR: i64 = 3600;

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * 1000)
}

/// Default `[dedup]` settings: what a user gets out of the box.
fn engine(toml: &str) -> Engine {
    let cfg = Config::parse(toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    Engine::new(EngineConfig::compile(&cfg).expect("compiles"))
}

/// Applies one record at `secs`, which must decode cleanly; returns the
/// kinds of the events it caused.
fn handle(e: &mut Engine, record: &str, secs: i64) -> Vec<EventKind> {
    let out = e.handle(record.as_bytes(), at(secs));
    assert!(out.decoded.errors.is_empty(), "{:?}", out.decoded.errors);
    out.events.iter().map(|ev| ev.kind).collect()
}

fn tick(e: &mut Engine, secs: i64) -> Vec<EventKind> {
    e.tick(at(secs)).iter().map(|ev| ev.kind).collect()
}

/// The one incident: its status, its alert's status, when it resolved.
fn state(e: &Engine) -> (IncidentStatus, AlertStatus, Option<Timestamp>) {
    let all = e.incidents_sorted();
    assert_eq!(all.len(), 1, "expected one incident, got {all:#?}");
    let i = all[0];
    (i.status, i.members[0].status, i.resolved_at)
}

const PD_TRIGGER: &str = r#"{"routing_key":"R0123456789ABCDEF0123456789ABCDE",
    "event_action":"trigger","dedup_key":"disk-full/db-1",
    "payload":{"summary":"Disk 95% full on db-1","source":"db-1","severity":"critical"}}"#;
const PD_RESOLVE: &str = r#"{"routing_key":"R0123456789ABCDEF0123456789ABCDE",
    "event_action":"resolve","dedup_key":"disk-full/db-1"}"#;

#[test]
fn pagerduty_trigger_stays_open_until_its_resolve() {
    let mut e = engine("");
    assert_eq!(handle(&mut e, PD_TRIGGER, 0), [EventKind::Opened]);
    // No re-send: PagerDuty senders trigger once.
    for secs in [HOUR, 24 * HOUR, 30 * 24 * HOUR] {
        assert_eq!(tick(&mut e, secs), [], "at +{secs} s");
        let (inc, alert, _) = state(&e);
        assert_eq!(
            (inc, alert),
            (IncidentStatus::Open, AlertStatus::Firing),
            "+{secs} s"
        );
    }
    // A re-trigger keeps it open and still sets no expiry.
    assert_eq!(handle(&mut e, PD_TRIGGER, 31 * 24 * HOUR), []);
    assert_eq!(tick(&mut e, 62 * 24 * HOUR), []);
    assert_eq!(
        handle(&mut e, PD_RESOLVE, 62 * 24 * HOUR),
        [EventKind::Resolved]
    );
    let (inc, alert, resolved) = state(&e);
    assert_eq!(
        (inc, alert, resolved),
        (
            IncidentStatus::Resolved,
            AlertStatus::Resolved,
            Some(at(62 * 24 * HOUR))
        )
    );
}

#[test]
fn pagerduty_resolve_timeout_is_a_safety_cap_when_set() {
    let mut e = engine("[dedup]\npagerduty_resolve_timeout = \"2h\"\n");
    handle(&mut e, PD_TRIGGER, 0);
    handle(&mut e, PD_TRIGGER, HOUR);
    assert_eq!(tick(&mut e, 3 * HOUR - 1), []);
    assert_eq!(tick(&mut e, 3 * HOUR), [EventKind::Resolved]);
    assert_eq!(state(&e).2, Some(at(3 * HOUR)));
}

/// What Alertmanager's webhook sends for a firing alert: a zero `endsAt`.
fn am_webhook(extra: &str) -> String {
    format!(
        r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"Down\"}}","status":"firing",
        "receiver":"correlator","groupLabels":{{"alertname":"Down"}}{extra},
        "alerts":[{{"status":"firing","labels":{{"alertname":"Down","service":"api",
        "severity":"critical"}},"annotations":{{"summary":"api is down"}},
        "startsAt":"2026-01-05T09:59:30Z","endsAt":"0001-01-01T00:00:00Z",
        "generatorURL":"http://prometheus-0:9090/graph","fingerprint":"x"}}]}}"#
    )
}

#[test]
fn notifier_webhook_alert_waits_for_the_next_repeat() {
    // Alertmanager's webhook, then Grafana's (the same with `orgId`).
    for extra in [
        "",
        r#","orgId":1,"title":"[FIRING:1] Down","state":"alerting""#,
    ] {
        let record = am_webhook(extra);
        let mut e = engine("");
        assert_eq!(handle(&mut e, &record, 0), [EventKind::Opened], "{record}");
        assert_eq!(tick(&mut e, HOUR), [], "{record}");
        assert_eq!(state(&e).0, IncidentStatus::Open, "{record}");
        // repeat_interval (4h by default) later: a re-send, the same incident.
        assert_eq!(handle(&mut e, &record, 4 * HOUR), [], "{record}");
        assert_eq!(tick(&mut e, 8 * HOUR), [], "{record}");
        assert_eq!(state(&e).0, IncidentStatus::Open, "{record}");
        // Silent for webhook_resolve_timeout (5h) after the last re-send.
        assert_eq!(tick(&mut e, 9 * HOUR), [EventKind::Resolved], "{record}");
        assert_eq!(state(&e).2, Some(at(9 * HOUR)), "{record}");
    }
}

#[test]
fn prometheus_alert_resolves_at_its_ends_at() {
    // What Prometheus posts: endsAt = evaluation + 4 × resend delay.
    let post = r#"[{"labels":{"alertname":"AlwaysFiring","service":"checkout",
        "severity":"warning"},"annotations":{"summary":"always"},
        "startsAt":"2026-01-05T09:59:00Z","endsAt":"2026-01-05T10:04:00Z",
        "generatorURL":"http://prometheus-0:9090/graph"}]"#;
    let mut e = engine("");
    assert_eq!(handle(&mut e, post, 0), [EventKind::Opened]);
    assert_eq!(tick(&mut e, 4 * 60 - 1), []);
    assert_eq!(tick(&mut e, 4 * 60), [EventKind::Resolved]);
    assert_eq!(state(&e).2, Some(at(4 * 60)));

    // Without endsAt: resolve_timeout (5m) after the last notification.
    let bare = r#"[{"labels":{"alertname":"NoEnd","service":"checkout"}}]"#;
    let mut e = engine("");
    handle(&mut e, bare, 0);
    assert_eq!(tick(&mut e, 5 * 60 - 1), []);
    assert_eq!(tick(&mut e, 5 * 60), [EventKind::Resolved]);
}
