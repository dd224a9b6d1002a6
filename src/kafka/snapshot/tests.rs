use super::*;
use crate::alert::Timestamp;
use crate::engine::Engine;
use std::time::Duration;

fn engine() -> Engine {
    let toml = "[[rules]]\nname = \"svc\"\ngroup_by = [\"service\"]\n";
    let cfg = crate::config::Config::parse(toml, "t.toml").unwrap();
    Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap())
}

const T: Timestamp = Timestamp(1_767_607_200_000);

/// The last event of `record` at `T + secs`.
fn apply(e: &mut Engine, record: &str, secs: u64) -> IncidentEvent {
    let out = e.handle(record.as_bytes(), T.plus(Duration::from_secs(secs)));
    *out.events.last().expect("an event")
}

fn rendered(kind: PayloadKind, bytes: &[u8], cache: &mut RenderCache) -> String {
    String::from_utf8(render(kind, bytes, cache).unwrap()).unwrap()
}

/// A snapshot from a new writer (a fresh process: nothing cached).
fn fresh_snapshot(e: &Engine, ev: &IncidentEvent) -> Vec<u8> {
    SnapshotWriter::default()
        .write(ev, e.incident(ev.incident).unwrap())
        .unwrap()
}

fn direct(e: &Engine, ev: &IncidentEvent) -> String {
    String::from_utf8(events::render(ev, e.incident(ev.incident).unwrap())).unwrap()
}

#[test]
fn a_rendered_snapshot_equals_the_event_rendered_at_once_as_members_change() {
    let mut e = engine();
    let mut w = SnapshotWriter::default();
    let mut cache = RenderCache::default();
    let mut check = |e: &Engine, ev: IncidentEvent| {
        let snap = w.write(&ev, e.incident(ev.incident).unwrap()).unwrap();
        assert_eq!(
            rendered(PayloadKind::IncidentParts, &snap, &mut cache),
            direct(e, &ev)
        );
    };
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Down","service":"api"}}"#,
        0,
    );
    check(&e, ev);
    // A second member (first seen later: listed second), with escapes.
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Slow","service":"api","zone":"\u00e9\"x"}}"#,
        1,
    );
    check(&e, ev);
    // Both caches now hold both members; one resolves, then fires again:
    // each event must show the change, the other member unchanged.
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Down","service":"api"},"endsAt":"2026-01-05T10:00:05Z"}"#,
        5,
    );
    check(&e, ev);
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Down","service":"api"}}"#,
        9,
    );
    check(&e, ev);
    assert_eq!(e.incident(ev.incident).unwrap().members.len(), 2);
}

#[test]
fn a_stale_cache_entry_is_not_used() {
    // Two writers stand for two processes (a restart): the publisher's
    // cache holds members rendered from the first, and must still render
    // what the second wrote.
    let mut e = engine();
    let mut cache = RenderCache::default();
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Down","service":"api"}}"#,
        0,
    );
    let before = fresh_snapshot(&e, &ev);
    rendered(PayloadKind::IncidentParts, &before, &mut cache);
    // A re-send changes the member (occurrences) without an event; the
    // next event (another alert joins) shows it.
    e.handle(
        br#"{"labels":{"alertname":"Down","service":"api"}}"#,
        T.plus(Duration::from_secs(60)),
    );
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Other","service":"api"}}"#,
        61,
    );
    let after = fresh_snapshot(&e, &ev);
    let out = rendered(PayloadKind::IncidentParts, &after, &mut cache);
    assert_eq!(out, direct(&e, &ev));
    assert!(out.contains(r#""occurrences":2"#), "{out}");
}

#[test]
fn snapshots_written_by_earlier_builds_are_rendered() {
    let mut e = engine();
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Down","service":"api"}}"#,
        0,
    );
    let inc = e.incident(ev.incident).unwrap();
    // Kind 1: the whole (event, incident, members) as one positional value.
    let mut raw = Vec::new();
    codec::encode_compact_into(&mut raw, "outbox", &(&ev, inc, &inc.members)).unwrap();
    let mut cache = RenderCache::default();
    assert_eq!(
        rendered(PayloadKind::IncidentSnapshot, &raw, &mut cache),
        direct(&e, &ev)
    );
}

#[test]
fn corrupt_snapshots_are_errors_naming_the_outbox() {
    let mut e = engine();
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Down","service":"api"}}"#,
        0,
    );
    let good = fresh_snapshot(&e, &ev);
    let mut cache = RenderCache::default();
    for bad in [
        b"\x01\x02".to_vec(),
        b"\xff\xff\xff\xff\x00".to_vec(),
        // Cut inside the last member, and with bytes after it.
        good[..good.len() - 3].to_vec(),
        [&good[..], b"x"].concat(),
    ] {
        let err = render(PayloadKind::IncidentParts, &bad, &mut cache).unwrap_err();
        assert!(err.to_string().contains("outbox"), "{err}");
    }
}
