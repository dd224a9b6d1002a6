use super::*;
use crate::alert::Timestamp;
use crate::engine::Engine;
use std::time::Duration;

fn engine() -> Engine {
    // With a topology, so events carry a root cause (and its alert).
    let toml = "[[rules]]\nname = \"svc\"\ngroup_by = [\"service\"]\n\
                [topology]\nlabel = \"service\"\n[topology.depends_on]\napi = [\"storage\"]\n";
    let cfg = crate::config::Config::parse(toml, "t.toml").unwrap();
    Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap())
}

const T: Timestamp = Timestamp(1_767_607_200_000);

/// The last event of `record` at `T + secs`.
fn apply(e: &mut Engine, record: &str, secs: u64) -> IncidentEvent {
    let out = e.handle(record.as_bytes(), T.plus(Duration::from_secs(secs)));
    *out.events.last().expect("an event")
}

fn rendered(kind: PayloadKind, bytes: &[u8], cache: &mut RenderCache) -> Vec<String> {
    render(kind, bytes, cache, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|m| String::from_utf8(m).unwrap())
        .collect()
}

fn direct(e: &Engine, ev: &IncidentEvent) -> String {
    String::from_utf8(events::render(ev, e.incident(ev.incident).unwrap())).unwrap()
}

/// Adds the event to `outbox` as `w` does in a batch.
fn add(w: &mut SnapshotWriter, e: &Engine, ev: &IncidentEvent, outbox: &mut Vec<OutboxEntry>) {
    w.add(ev, e.incident(ev.incident).unwrap(), outbox, "incidents")
        .unwrap();
}

/// The entry of one event from a new writer (a fresh process).
fn fresh_snapshot(e: &Engine, ev: &IncidentEvent) -> Vec<u8> {
    let mut outbox = Vec::new();
    add(&mut SnapshotWriter::default(), e, ev, &mut outbox);
    assert_eq!(outbox.len(), 1);
    outbox.remove(0).payload
}

const DOWN: &str = r#"{"labels":{"alertname":"Down","service":"api"}}"#;
/// A second member (first seen later: listed second), with escapes.
const SLOW: &str = r#"{"labels":{"alertname":"Slow","service":"api","zone":"\u00e9\"x"}}"#;
const DOWN_RESOLVED: &str =
    r#"{"labels":{"alertname":"Down","service":"api"},"endsAt":"2026-01-05T10:00:05Z"}"#;

#[test]
fn a_rendered_snapshot_equals_the_event_rendered_at_once_as_members_change() {
    let mut e = engine();
    let mut w = SnapshotWriter::default();
    let mut cache = RenderCache::default();
    // Each event in a batch of its own: one entry, one message each.
    let mut check = |e: &Engine, ev: IncidentEvent| {
        w.end_batch();
        let mut outbox = Vec::new();
        add(&mut w, e, &ev, &mut outbox);
        assert_eq!(
            rendered(PayloadKind::IncidentParts, &outbox[0].payload, &mut cache),
            [direct(e, &ev)]
        );
        assert_eq!(outbox[0].key, ev.incident.to_string().into_bytes());
    };
    let ev = apply(&mut e, DOWN, 0);
    check(&e, ev);
    let ev = apply(&mut e, SLOW, 1);
    check(&e, ev);
    // Both caches now hold both members; one resolves, then fires again:
    // each event must show the change, the other member unchanged.
    let ev = apply(&mut e, DOWN_RESOLVED, 5);
    check(&e, ev);
    let ev = apply(&mut e, DOWN, 9);
    check(&e, ev);
    assert_eq!(e.incident(ev.incident).unwrap().members.len(), 2);
}

#[test]
fn one_batch_keeps_an_incidents_events_in_one_entry_with_each_member_once() {
    let mut e = engine();
    let mut w = SnapshotWriter::default();
    let mut outbox = Vec::new();
    let mut expected = Vec::new();
    for (record, secs) in [(DOWN, 0), (SLOW, 1), (DOWN_RESOLVED, 5), (DOWN, 9)] {
        let ev = apply(&mut e, record, secs);
        add(&mut w, &e, &ev, &mut outbox);
        expected.push(direct(&e, &ev));
    }
    // Another incident's event in between gets its own entry.
    let other = apply(
        &mut e,
        r#"{"labels":{"alertname":"Down","service":"db"}}"#,
        10,
    );
    add(&mut w, &e, &other, &mut outbox);
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Lag","service":"api"}}"#,
        11,
    );
    add(&mut w, &e, &ev, &mut outbox);
    expected.push(direct(&e, &ev));
    assert_eq!(outbox.len(), 2, "one entry per incident");
    let mut cache = RenderCache::default();
    assert_eq!(
        rendered(PayloadKind::IncidentParts, &outbox[0].payload, &mut cache),
        expected
    );
    assert_eq!(
        rendered(PayloadKind::IncidentParts, &outbox[1].payload, &mut cache),
        [direct(&e, &other)]
    );
    // Unchanged members are listed by fingerprint only after their first
    // appearance: "Slow" is written once although five events show it.
    let written = outbox[0]
        .payload
        .windows(4)
        .filter(|w| *w == b"Slow")
        .count();
    assert_eq!(
        written,
        1,
        "{:?}",
        String::from_utf8_lossy(&outbox[0].payload)
    );
    // A new batch starts a new entry.
    w.end_batch();
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Err","service":"api"}}"#,
        12,
    );
    add(&mut w, &e, &ev, &mut outbox);
    assert_eq!(outbox.len(), 3);
    assert_eq!(
        rendered(
            PayloadKind::IncidentParts,
            &outbox[2].payload,
            &mut RenderCache::default()
        ),
        [direct(&e, &ev)]
    );
}

#[test]
fn a_stale_cache_entry_is_not_used() {
    // Two writers stand for two processes (a restart): the publisher's
    // cache holds members rendered from the first, and must still render
    // what the second wrote.
    let mut e = engine();
    let mut cache = RenderCache::default();
    let ev = apply(&mut e, DOWN, 0);
    let before = fresh_snapshot(&e, &ev);
    rendered(PayloadKind::IncidentParts, &before, &mut cache);
    // A re-send changes the member (occurrences) without an event; the
    // next event (another alert joins) shows it.
    e.handle(DOWN.as_bytes(), T.plus(Duration::from_secs(60)));
    let ev = apply(
        &mut e,
        r#"{"labels":{"alertname":"Other","service":"api"}}"#,
        61,
    );
    let after = fresh_snapshot(&e, &ev);
    let out = rendered(PayloadKind::IncidentParts, &after, &mut cache);
    assert_eq!(out, [direct(&e, &ev)]);
    assert!(out[0].contains(r#""occurrences":2"#), "{}", out[0]);
}

#[test]
fn snapshots_written_by_earlier_builds_are_rendered() {
    let mut e = engine();
    let ev = apply(&mut e, DOWN, 0);
    let inc = e.incident(ev.incident).unwrap();
    // Kind 1: the whole (event, incident, members) as one positional value.
    let mut raw = Vec::new();
    codec::encode_compact_append(&mut raw, "outbox", &(&ev, inc, &inc.members)).unwrap();
    let mut cache = RenderCache::default();
    assert_eq!(
        rendered(PayloadKind::IncidentSnapshot, &raw, &mut cache),
        [direct(&e, &ev)]
    );
}

#[test]
fn corrupt_snapshots_are_errors_naming_the_outbox() {
    let mut e = engine();
    let ev = apply(&mut e, DOWN, 0);
    let good = fresh_snapshot(&e, &ev);
    // The member's length set to "as given before", with nothing before.
    let mut dangling = good.clone();
    let n = dangling.len();
    let member_len = e.incident(ev.incident).unwrap().members.len();
    assert_eq!(member_len, 1);
    let fp_end = n - {
        let mut raw = Vec::new();
        codec::encode_compact_append(&mut raw, "t", &e.incident(ev.incident).unwrap().members[0])
            .unwrap();
        raw.len() + 4
    };
    dangling[fp_end..fp_end + 4].copy_from_slice(&SAME.to_le_bytes());
    dangling.truncate(fp_end + 4);
    let mut cache = RenderCache::default();
    for bad in [
        b"\x01\x02".to_vec(),
        b"\xff\xff\xff\xff\x00".to_vec(),
        // Cut inside the last member, and with bytes after it.
        good[..good.len() - 3].to_vec(),
        [&good[..], b"x"].concat(),
        dangling,
    ] {
        let err = render(PayloadKind::IncidentParts, &bad, &mut cache, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("outbox"), "{err}");
    }
}

/// An incident with more alerts than one message can hold: its event fits
/// the limit, keeps the root cause, and counts what it left out.
#[test]
fn an_event_too_large_for_the_broker_lists_what_fits_and_counts_the_rest() {
    let toml = "[[rules]]\nname = \"svc\"\ngroup_by = [\"service\"]\n";
    let cfg = crate::config::Config::parse(toml, "t.toml").unwrap();
    let mut e = Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap());
    let mut ev = None;
    for i in 0..400 {
        let rec = format!(
            r#"{{"labels":{{"alertname":"Down","service":"api","pod":"pod-{i}","detail":"{}"}}}}"#,
            "d".repeat(200)
        );
        ev = Some(apply(&mut e, &rec, i));
    }
    let ev = ev.unwrap();
    let full = direct(&e, &ev);
    assert!(full.len() > 50_000, "{}", full.len());
    let mut w = SnapshotWriter::default();
    let mut outbox = Vec::new();
    add(&mut w, &e, &ev, &mut outbox);
    let mut cache = RenderCache::default();
    let limit = 20_000;
    let got = render(
        PayloadKind::IncidentParts,
        &outbox[0].payload,
        &mut cache,
        limit,
    )
    .unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].len() <= limit, "{} bytes over {limit}", got[0].len());
    let v: serde_json::Value = serde_json::from_slice(&got[0]).unwrap();
    let listed = v["data"]["alerts"].as_array().unwrap().len();
    assert!(listed > 10, "{listed} alerts listed");
    assert_eq!(
        v["data"]["alerts_omitted"].as_u64(),
        Some(400 - listed as u64)
    );
    let root = v["data"]["root_cause"].clone();
    assert!(
        root.is_null()
            || v["data"]["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["fingerprint"] == root),
        "the root cause is listed"
    );
    // Under the limit, nothing changes.
    let all = render(
        PayloadKind::IncidentParts,
        &outbox[0].payload,
        &mut cache,
        usize::MAX,
    )
    .unwrap();
    assert_eq!(String::from_utf8(all[0].clone()).unwrap(), full);
}
