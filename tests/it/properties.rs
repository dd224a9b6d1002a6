//! Properties of whole replays, checked on generated alert streams.
//!
//! - (a) determinism: the same stream replayed twice gives identical bytes;
//! - (b) duplicate delivery: an exact copy of any record right after it
//!   changes nothing in incidents.jsonl;
//! - (c) order independence: records sharing a timestamp but concerning
//!   different groups (no topology) may arrive in any order;
//! - (d) no input panics the engine (arbitrary bytes, arbitrary label sets,
//!   time going backwards, operator commands), and structural invariants hold
//!   after every call and after the final flush;
//! - (f) the daemon's per-batch coalescing of `updated` events leaves the
//!   state, the lifecycle events and the set of incidents with news in each
//!   batch as they are without it;
//! - (e) with a simple configuration (one rule grouping by service,
//!   min_alerts 1, no topology, no flapping) the engine agrees with a naive
//!   model written from the documented semantics.
//!
//! Case counts are modest (64–128) so the suite stays fast on two cores.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde_json::{json, Value};

use correlator::alert::{Alert, AlertStatus, Fingerprint, Format, Labels, Signal, Timestamp};
use correlator::engine::state::{IncidentId, IncidentStatus};
use correlator::engine::{Engine, EventKind, IncidentEvent};

use crate::support::{engine_from_toml, replay_lines, ReplayOutput};

/// 2026-01-05T10:00:00Z.
const T0: i64 = 1_767_607_200_000;

fn rfc3339(ms: i64) -> String {
    Timestamp(ms).to_rfc3339()
}

// ---------------------------------------------------------------------------
// Generated streams of realistic records in every wire format.

/// How one alert notification is sent.
#[derive(Debug, Clone, Copy)]
enum Wire {
    ApiV2,
    Webhook,
    Grafana,
    PagerDuty,
}

/// One alert notification: which alert (slot = its service/cluster, name),
/// firing or resolved, in which format.
#[derive(Debug, Clone)]
struct Note {
    slot: usize,
    name: usize,
    fire: bool,
    wire: Wire,
}

/// One record of a generated stream.
#[derive(Debug, Clone)]
enum Rec {
    /// Alert notifications; a webhook or API v2 list carries them all, the
    /// other formats only the first.
    Alerts(Vec<Note>),
    /// PagerDuty `acknowledge` of the alert (slot, name).
    Ack(usize, usize),
    /// An undecodable body.
    Garbage(String),
}

/// What the slot numbers mean.
#[derive(Debug, Clone, Copy)]
enum Slots {
    /// The shop's services (with topology in the config), two clusters.
    Shop,
    /// One service and one cluster per slot (`svc3`, `c3`): slots never
    /// share a group.
    Isolated,
}

const SHOP: &[&str] = &["checkout", "payments", "postgres", "inventory", "billing"];
const NAMES: &[&str] = &["NodeDown", "Latency", "Errors", "DiskFull"];
const SEVERITIES: &[&str] = &["critical", "warning", "info", "critical"];

fn service(slots: Slots, slot: usize) -> String {
    match slots {
        Slots::Shop => SHOP[slot % SHOP.len()].to_string(),
        Slots::Isolated => format!("svc{slot}"),
    }
}

fn cluster(slots: Slots, slot: usize) -> String {
    match slots {
        Slots::Shop => ["eu1", "us1"][slot % 2].to_string(),
        Slots::Isolated => format!("c{slot}"),
    }
}

fn labels_of(slots: Slots, slot: usize, name: usize) -> Value {
    json!({
        "alertname": NAMES[name],
        "service": service(slots, slot),
        "cluster": cluster(slots, slot),
        "env": "prod",
        "severity": SEVERITIES[name],
    })
}

fn dedup_key(slots: Slots, slot: usize, name: usize) -> String {
    format!("{}/{}", service(slots, slot), NAMES[name])
}

fn am_alert(slots: Slots, n: &Note, ts: i64) -> Value {
    let zero = "0001-01-01T00:00:00Z";
    json!({
        "status": if n.fire { "firing" } else { "resolved" },
        "labels": labels_of(slots, n.slot, n.name),
        "annotations": {"summary": format!("{} on {}", NAMES[n.name], service(slots, n.slot))},
        "startsAt": zero,
        "endsAt": if n.fire { zero.to_string() } else { rfc3339(ts) },
    })
}

fn body(slots: Slots, rec: &Rec, ts: i64) -> Value {
    match rec {
        Rec::Garbage(s) => Value::String(s.clone()),
        Rec::Ack(slot, name) => json!({
            "routing_key": "r", "event_action": "acknowledge",
            "dedup_key": dedup_key(slots, *slot, *name),
        }),
        Rec::Alerts(notes) => {
            let first = &notes[0];
            match first.wire {
                Wire::Webhook => json!({
                    "version": "4", "status": "firing",
                    "alerts": notes.iter().map(|n| am_alert(slots, n, ts)).collect::<Vec<_>>(),
                }),
                Wire::Grafana => json!({
                    "orgId": 1, "state": "alerting",
                    "alerts": notes.iter().map(|n| {
                        let mut a = am_alert(slots, n, ts);
                        a["values"] = json!({"B": 1.5});
                        a
                    }).collect::<Vec<_>>(),
                }),
                Wire::ApiV2 => {
                    let items: Vec<Value> = notes
                        .iter()
                        .map(|n| {
                            let mut a = json!({
                                "labels": labels_of(slots, n.slot, n.name),
                                "annotations": {"summary": "s"},
                            });
                            if !n.fire {
                                a["endsAt"] = json!(rfc3339(ts));
                            }
                            a
                        })
                        .collect();
                    if items.len() == 1 {
                        items[0].clone()
                    } else {
                        Value::Array(items)
                    }
                }
                Wire::PagerDuty => {
                    let key = dedup_key(slots, first.slot, first.name);
                    if first.fire {
                        let sev = SEVERITIES[first.name];
                        json!({
                            "routing_key": "r", "event_action": "trigger", "dedup_key": key,
                            "payload": {
                                "summary": format!("{} (pd)", NAMES[first.name]),
                                "source": service(slots, first.slot), "severity": sev,
                                "custom_details": {
                                    "alertname": NAMES[first.name],
                                    "service": service(slots, first.slot),
                                    "cluster": cluster(slots, first.slot),
                                    "env": "prod",
                                },
                            },
                        })
                    } else {
                        json!({"routing_key": "r", "event_action": "resolve", "dedup_key": key})
                    }
                }
            }
        }
    }
}

fn render(slots: Slots, stream: &[(i64, Rec)]) -> Vec<String> {
    stream
        .iter()
        .map(|(ts, rec)| {
            json!({"ts": rfc3339(*ts), "key": "k", "value": body(slots, rec, *ts)}).to_string()
        })
        .collect()
}

/// Gaps between records: zero (same instant) often, and values on and around
/// the windows of the configs below (5m resolve timeout, 5m topology and
/// threshold windows, 10m and 30m reopen windows).
const GAPS_MS: &[i64] = &[
    0, 0, 0, 1_000, 30_000, 60_000, 120_000, 299_000, 300_000, 301_000, 600_000, 1_800_000,
    2_400_000,
];

fn wire() -> impl Strategy<Value = Wire> {
    prop_oneof![
        3 => Just(Wire::ApiV2),
        3 => Just(Wire::Webhook),
        1 => Just(Wire::Grafana),
        2 => Just(Wire::PagerDuty),
    ]
}

fn note(slots: usize) -> impl Strategy<Value = Note> {
    (0..slots, 0..NAMES.len(), prop::bool::weighted(0.65), wire()).prop_map(
        |(slot, name, fire, wire)| Note {
            slot,
            name,
            fire,
            wire,
        },
    )
}

fn rec(slots: usize) -> impl Strategy<Value = Rec> {
    prop_oneof![
        // An alert appears at most once per record, as in every real sender
        // (a record saying "X resolved, X firing" at one instant contradicts
        // itself, and delivering it twice is not a no-op: the copy's
        // resolution is newer than the original's firing).
        12 => prop::collection::vec(note(slots), 1..4).prop_map(|mut notes| {
            let mut seen = BTreeSet::new();
            notes.retain(|n| seen.insert((n.slot, n.name)));
            Rec::Alerts(notes)
        }),
        1 => (0..slots, 0..NAMES.len()).prop_map(|(s, n)| Rec::Ack(s, n)),
        1 => prop_oneof![
            Just("{not json".to_string()),
            Just(r#"{"hello":1}"#.to_string()),
            ".{0,12}",
        ].prop_map(Rec::Garbage),
    ]
}

/// A stream of up to `len` records at non-decreasing times.
fn stream(slots: usize, len: usize) -> impl Strategy<Value = Vec<(i64, Rec)>> {
    prop::collection::vec((prop::sample::select(GAPS_MS), rec(slots)), 1..len).prop_map(|v| {
        let mut t = T0;
        v.into_iter()
            .map(|(gap, r)| {
                t += gap;
                (t, r)
            })
            .collect()
    })
}

/// The shop: topology, a threshold rule, a by-service rule, the default rule.
const SHOP_CONFIG: &str = r#"
[dedup]
resolve_timeout = "5m"
# One timeout for every wire format, so that after the flush every alert has
# resolved and the model needs no per-format expiry.
webhook_resolve_timeout = "5m"
pagerduty_resolve_timeout = "5m"
flap_window = "15m"
flap_threshold = 4

[incidents]
default_reopen_window = "10m"

[[rules]]
name = "node-storm"
matchers = ['alertname="NodeDown"']
group_by = ["cluster"]
window = "5m"
min_alerts = 2
reopen_window = "30m"

[[rules]]
name = "by-service"
matchers = ['severity=~"critical|warning"']
group_by = ["env", "service"]
window = "10m"
reopen_window = "30m"

[topology]
label = "service"
window = "5m"
[topology.depends_on]
checkout = ["payments", "inventory"]
payments = ["postgres"]
"#;

/// The shop's rules without topology (for order independence).
fn no_topology_config() -> String {
    let cut = SHOP_CONFIG.find("[topology]").expect("has topology");
    SHOP_CONFIG[..cut].to_string()
}

fn show(lines: &[String]) -> String {
    lines.join("\n")
}

fn diff(a: &[u8], b: &[u8]) -> String {
    let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("first difference at line {}:\n  {x}\n  {y}", i + 1);
        }
    }
    format!("{} lines vs {} lines", a.lines().count(), b.lines().count())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// (a) The same stream replayed twice (two engines, so two sets of
    /// randomly seeded hash maps) gives identical output files.
    #[test]
    fn replay_is_deterministic(s in stream(5, 40)) {
        let lines = render(Slots::Shop, &s);
        let one = replay_lines(SHOP_CONFIG, &lines);
        let two = replay_lines(SHOP_CONFIG, &lines);
        prop_assert!(one == two, "{}\ninput:\n{}", diff(&one.incidents, &two.incidents), show(&lines));
    }

    /// (b) Delivering any record twice in a row changes no incident.
    #[test]
    fn duplicate_delivery_changes_nothing(s in stream(5, 40), pick in any::<prop::sample::Index>()) {
        let lines = render(Slots::Shop, &s);
        let i = pick.index(lines.len());
        let mut twice = lines.clone();
        twice.insert(i + 1, lines[i].clone());
        let once = replay_lines(SHOP_CONFIG, &lines);
        let dup = replay_lines(SHOP_CONFIG, &twice);
        prop_assert!(
            once.incidents == dup.incidents,
            "duplicating line {}: {}\ninput:\n{}",
            i + 1,
            diff(&once.incidents, &dup.incidents),
            show(&lines)
        );
    }

    /// (c) Records at one instant that concern different groups may arrive
    /// in any order: same incidents, same summary. Problem ids are left out
    /// here; `order_within_an_instant_keeps_problem_ids` checks them.
    #[test]
    fn order_within_an_instant_does_not_matter((a_lines, b_lines) in same_instant_permutation()) {
        let config = no_topology_config();
        let a = replay_lines(&config, &a_lines);
        let b = replay_lines(&config, &b_lines);
        let (a_inc, b_inc) = (without_problem_ids(&a), without_problem_ids(&b));
        prop_assert!(
            a_inc == b_inc,
            "{}\nordered:\n{}\nshuffled:\n{}",
            diff(a_inc.as_bytes(), b_inc.as_bytes()),
            show(&a_lines),
            show(&b_lines)
        );
        prop_assert_eq!(a.summary_json(), b.summary_json());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// (c) In full, problem ids included.
    ///
    /// BUG (explained, not fixed): the template miner is online, so a
    /// template depends on which lines it saw first. In the saved case two
    /// services' incidents open at the same instant ("Latency on svc0",
    /// "Latency on svc3"); when svc3's line is mined first the cluster
    /// generalises to "Latency on svc<*>" before svc0's third occurrence
    /// forms its problem, so the problem's template, and the id derived from
    /// it, differ. Incidents are the same either way. A fix needs a canonical
    /// order for records of one instant (in replay and in the daemon's
    /// merge) or problem ids that do not derive from the template text.
    #[test]
    #[ignore = "BUG: records of one instant mined in another order give a problem another template, hence another id (see the comment)"]
        fn order_within_an_instant_keeps_problem_ids((a_lines, b_lines) in same_instant_permutation()) {
        let config = no_topology_config();
        let a = replay_lines(&config, &a_lines);
        let b = replay_lines(&config, &b_lines);
        prop_assert!(
            a.incidents == b.incidents && a.problems == b.problems,
            "{}\n{}\nordered:\n{}\nshuffled:\n{}",
            diff(&a.incidents, &b.incidents),
            diff(&a.problems, &b.problems),
            show(&a_lines),
            show(&b_lines)
        );
    }
}

/// Two renderings of one stream: batches of records at one instant, record
/// j of a batch concerning slot j only (its own service and cluster), in
/// order and shuffled within each batch.
fn same_instant_permutation() -> impl Strategy<Value = (Vec<String>, Vec<String>)> {
    let batch = (
        prop::sample::select(GAPS_MS),
        prop::collection::vec(
            prop::collection::btree_map(0..NAMES.len(), (prop::bool::weighted(0.65), wire()), 1..3),
            1..5,
        ),
    );
    (prop::collection::vec(batch, 1..14), any::<u64>()).prop_map(|(batches, seed)| {
        let mut t = T0;
        let mut ordered = Vec::new();
        let mut shuffled = Vec::new();
        let mut state = seed | 1;
        for (gap, recs) in batches {
            t += gap.max(1_000);
            let mut batch: Vec<(i64, Rec)> = recs
                .into_iter()
                .enumerate()
                .map(|(slot, notes)| {
                    let notes = notes
                        .into_iter()
                        .map(|(name, (fire, wire))| Note {
                            slot,
                            name,
                            fire,
                            wire,
                        })
                        .collect();
                    (t, Rec::Alerts(notes))
                })
                .collect();
            ordered.extend(batch.iter().cloned());
            // Seeded Fisher-Yates.
            for i in (1..batch.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                batch.swap(i, (state % (i as u64 + 1)) as usize);
            }
            shuffled.extend(batch);
        }
        (
            render(Slots::Isolated, &ordered),
            render(Slots::Isolated, &shuffled),
        )
    })
}

/// incidents.jsonl with every `problem_id` blanked.
fn without_problem_ids(out: &ReplayOutput) -> String {
    out.incidents_json()
        .into_iter()
        .map(|mut i| {
            if let Some(o) = i.as_object_mut() {
                o.remove("problem_id");
            }
            i.to_string() + "\n"
        })
        .collect()
}

// ---------------------------------------------------------------------------
// (d) Nothing panics; invariants hold.

/// Labels, firing?, a PagerDuty-like key, startsAt and endsAt offsets.
type RawSignal = (
    BTreeMap<String, String>,
    bool,
    Option<u64>,
    Option<i64>,
    Option<i64>,
);

#[derive(Debug, Clone)]
enum Op {
    /// Raw bytes as a record body.
    Bytes(Vec<u8>),
    /// A record in a real format.
    Record(Rec),
    /// Decoded signals with arbitrary labels.
    Signals(Vec<RawSignal>),
    /// An acknowledge signal for an arbitrary or a known fingerprint.
    AckFp(u64),
    Tick,
    /// Operator commands on the n-th incident.
    AckIncident(usize),
    ResolveIncident(usize),
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "alertname", "service", "severity", "cluster", "env", "instance", "impact", "urgency",
        ]).prop_map(str::to_string),
        1 => "[a-z_]{1,6}",
        1 => ".{1,4}",
    ]
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "checkout", "payments", "postgres", "inventory", "critical", "warning", "info",
            "NodeDown", "prod", "dev", "eu1", "high", "low", "",
        ]).prop_map(str::to_string),
        1 => ".{0,6}",
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let labels = prop::collection::btree_map(label_name(), label_value(), 1..6);
    let signal = (
        labels,
        prop::bool::weighted(0.6),
        prop::option::weighted(0.2, 0u64..4),
        prop::option::weighted(0.2, -600_000i64..900_000),
        prop::option::weighted(0.3, -600_000i64..900_000),
    );
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::Bytes),
        4 => rec(5).prop_map(Op::Record),
        6 => prop::collection::vec(signal, 1..4).prop_map(Op::Signals),
        1 => (0u64..6).prop_map(Op::AckFp),
        1 => Just(Op::Tick),
        1 => (0usize..8).prop_map(Op::AckIncident),
        1 => (0usize..8).prop_map(Op::ResolveIncident),
    ]
}

/// Checks what must hold after every call. `hand_resolved` says whether an
/// operator resolved an incident by hand (which may leave firing alerts in a
/// resolved incident, by design).
fn check_invariants(
    e: &Engine,
    fps: &BTreeSet<Fingerprint>,
    hand_resolved: bool,
) -> Result<(), String> {
    for inc in e.incidents_sorted() {
        if inc.status == IncidentStatus::Merged {
            let into = inc.merged_into.ok_or("merged without merged_into")?;
            let target = e.incident(into).ok_or("merged into an unknown incident")?;
            if target.opened_at > inc.opened_at {
                return Err(format!("{} merged into a later incident {}", inc.id, into));
            }
            continue;
        }
        let firing = inc
            .members
            .iter()
            .filter(|m| m.status == AlertStatus::Firing)
            .count();
        if inc.firing as usize != firing {
            return Err(format!(
                "{}: firing counter {} but {} members firing",
                inc.id, inc.firing, firing
            ));
        }
        if inc.members.is_empty() {
            return Err(format!("{} has no members", inc.id));
        }
        let max_sev = inc.members.iter().map(|m| m.severity).max();
        if Some(inc.severity) != max_sev {
            return Err(format!(
                "{}: severity {:?}, max of members {:?}",
                inc.id, inc.severity, max_sev
            ));
        }
        let best = inc.members.iter().map(|m| m.priority).min();
        if Some(inc.priority) != best {
            return Err(format!(
                "{}: priority {:?}, best of members {:?}",
                inc.id, inc.priority, best
            ));
        }
        let resolved_like = matches!(
            inc.status,
            IncidentStatus::Resolved | IncidentStatus::Closed
        );
        if resolved_like && firing > 0 && !hand_resolved {
            return Err(format!(
                "{} is {:?} with {} firing members",
                inc.id, inc.status, firing
            ));
        }
        if resolved_like != inc.resolved_at.is_some() {
            return Err(format!(
                "{} is {:?} with resolved_at {:?}",
                inc.id, inc.status, inc.resolved_at
            ));
        }
        if serde_json::to_string(&inc.view(true)).is_err() {
            return Err(format!("{} does not serialize", inc.id));
        }
    }
    for fp in fps {
        let Some(a) = e.alert(*fp) else { continue };
        if a.status != AlertStatus::Firing || a.pending {
            continue;
        }
        // Every firing alert that is not held belongs to exactly one
        // incident that is not closed or merged, as a firing member.
        let id = a
            .incident
            .ok_or_else(|| format!("firing alert {fp} in no incident"))?;
        let inc = e
            .incident(id)
            .ok_or_else(|| format!("alert {fp} in unknown incident {id}"))?;
        if matches!(inc.status, IncidentStatus::Closed | IncidentStatus::Merged) {
            return Err(format!(
                "firing alert {fp} belongs to {:?} incident {id}",
                inc.status
            ));
        }
        match inc.member(*fp) {
            Some(m) if m.status == AlertStatus::Firing => {}
            other => {
                return Err(format!(
                    "alert {fp} firing but its membership in {id} is {other:?}"
                ))
            }
        }
        // Closed incidents are history: their members stay as they were.
        let holders = e
            .incidents_sorted()
            .iter()
            .filter(|i| !matches!(i.status, IncidentStatus::Merged | IncidentStatus::Closed))
            .filter(|i| {
                i.member(*fp)
                    .is_some_and(|m| m.status == AlertStatus::Firing)
            })
            .count();
        if holders != 1 {
            return Err(format!(
                "firing alert {fp} is a firing member of {holders} incidents"
            ));
        }
    }
    Ok(())
}

/// After the final flush every timer has fired: incidents are closed or
/// merged, and no alert is left behind.
fn check_flushed(e: &Engine) -> Result<(), String> {
    for inc in e.incidents_sorted() {
        if !matches!(inc.status, IncidentStatus::Closed | IncidentStatus::Merged) {
            return Err(format!("{} is {:?} after flush", inc.id, inc.status));
        }
    }
    if e.alert_count() != 0 {
        return Err(format!(
            "{} alerts still tracked after flush",
            e.alert_count()
        ));
    }
    Ok(())
}

/// Feeds one op to the engine at `t`; returns its incident events and
/// whether an operator resolved an incident by hand.
fn apply_op(
    e: &mut Engine,
    op: &Op,
    t: i64,
    fps: &mut BTreeSet<Fingerprint>,
    allow_hand_resolve: bool,
) -> (Vec<IncidentEvent>, bool) {
    let now = Timestamp(t);
    let mut hand_resolved = false;
    let events = match op {
        Op::Bytes(b) => e.handle(b, now).events,
        Op::Record(r) => {
            let v = body(Slots::Shop, r, t);
            let bytes = match &v {
                Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            };
            let out = e.handle(&bytes, now);
            for s in &out.decoded.signals {
                match s {
                    Signal::Alert(a) => {
                        fps.insert(a.fingerprint);
                    }
                    Signal::Acknowledge { fingerprint } => {
                        fps.insert(*fingerprint);
                    }
                }
            }
            out.events
        }
        Op::Signals(sigs) => {
            let mut signals = Vec::new();
            for (labels, fire, key, starts, ends) in sigs {
                let Ok(l) = Labels::from_pairs(labels.iter()) else {
                    continue;
                };
                let (fingerprint, keyed) = match key {
                    Some(k) => (Fingerprint(0x1000 + k), true),
                    None => (l.fingerprint(), false),
                };
                fps.insert(fingerprint);
                signals.push(Signal::Alert(Alert {
                    fingerprint,
                    keyed,
                    labels: l,
                    summary: Some("s".into()),
                    status: if *fire {
                        AlertStatus::Firing
                    } else {
                        AlertStatus::Resolved
                    },
                    starts_at: starts.map(|d| Timestamp(t + d)),
                    ends_at: ends.map(|d| Timestamp(t + d)),
                    generator_url: None,
                    annotations: Vec::new(),
                    format: Format::AlertmanagerApiV2,
                }));
            }
            e.handle_signals(signals, now)
        }
        Op::AckFp(k) => {
            let fp = fps
                .iter()
                .nth(*k as usize)
                .copied()
                .unwrap_or(Fingerprint(0x1000 + k));
            e.handle_signals(vec![Signal::Acknowledge { fingerprint: fp }], now)
        }
        Op::Tick => e.tick(now),
        Op::AckIncident(n) => {
            let id = e.incidents_sorted().get(*n).map_or(IncidentId(7), |i| i.id);
            e.acknowledge(id, now).events
        }
        Op::ResolveIncident(n) => {
            if !allow_hand_resolve {
                return (Vec::new(), false);
            }
            let id = e.incidents_sorted().get(*n).map_or(IncidentId(7), |i| i.id);
            let out = e.resolve(id, now);
            hand_resolved = out.result.is_ok();
            out.events
        }
    };
    (events, hand_resolved)
}

fn run_ops(ops: &[(i64, Op)], allow_hand_resolve: bool) -> Result<(), String> {
    let mut e = engine_from_toml(SHOP_CONFIG);
    let mut fps = BTreeSet::new();
    let mut hand_resolved = false;
    let mut t = T0;
    for (step, (dt, op)) in ops.iter().enumerate() {
        t += dt;
        let (_, by_hand) = apply_op(&mut e, op, t, &mut fps, allow_hand_resolve);
        hand_resolved |= by_hand;
        check_invariants(&e, &fps, hand_resolved)
            .map_err(|m| format!("after op {step} {op:?}: {m}"))?;
    }
    e.flush();
    check_invariants(&e, &fps, hand_resolved).map_err(|m| format!("after flush: {m}"))?;
    if !hand_resolved {
        check_flushed(&e)?;
    }
    Ok(())
}

/// (f) The same ops, cut into batches, on an engine that emits every
/// `updated` and on one that coalesces them per batch (the daemon's mode).
/// At every batch end: the same state; the same incidents have events in
/// the batch (no change left unpublished, none invented); the same lifecycle
/// events in the same order; versions still grow by one per event.
fn check_coalescing(ops: &[(i64, Op, bool)]) -> Result<(), String> {
    let mut each = engine_from_toml(SHOP_CONFIG);
    let mut coalesced = engine_from_toml(SHOP_CONFIG);
    coalesced.coalesce_updates(true);
    let (mut fps_a, mut fps_b) = (BTreeSet::new(), BTreeSet::new());
    let (mut batch_a, mut batch_b) = (Vec::new(), Vec::new());
    let mut versions: BTreeMap<IncidentId, u64> = BTreeMap::new();
    let mut t = T0;
    let last = ops.len().saturating_sub(1);
    for (step, (dt, op, end_batch)) in ops.iter().enumerate() {
        t += dt;
        batch_a.extend(apply_op(&mut each, op, t, &mut fps_a, true).0);
        batch_b.extend(apply_op(&mut coalesced, op, t, &mut fps_b, true).0);
        if !*end_batch && step != last {
            continue;
        }
        batch_b.extend(coalesced.take_updates());
        let ctx = |m: String| format!("batch ending at op {step} {op:?}: {m}");
        for ev in &batch_b {
            let v = versions.entry(ev.incident).or_insert(0);
            if ev.version != *v + 1 {
                return Err(ctx(format!("{ev:?} follows version {v}")));
            }
            *v = ev.version;
        }
        // At most one `updated` per incident, after its lifecycle events,
        // and only if something changed after the last of them.
        let mut seen_update = BTreeSet::new();
        for ev in &batch_b {
            if !seen_update.insert(ev.incident) {
                return Err(ctx(format!("{ev:?} follows an `updated` of its batch")));
            }
            if ev.kind != EventKind::Updated {
                seen_update.remove(&ev.incident);
            }
        }
        // The same incidents have news, and each one's last event is of the
        // same kind (no `updated` left out, none after a lifecycle event
        // that already showed the change).
        let last_kind = |b: &[IncidentEvent]| {
            b.iter()
                .map(|e| (e.incident, e.kind))
                .collect::<BTreeMap<_, _>>()
        };
        if last_kind(&batch_a) != last_kind(&batch_b) {
            return Err(ctx(format!(
                "last events differ:\n each {batch_a:?}\n coalesced {batch_b:?}"
            )));
        }
        let lifecycle = |b: &[IncidentEvent]| {
            b.iter()
                .filter(|e| e.kind != EventKind::Updated)
                .map(|e| (e.incident, e.kind))
                .collect::<Vec<_>>()
        };
        if lifecycle(&batch_a) != lifecycle(&batch_b) {
            return Err(ctx(format!(
                "lifecycle events differ:\n each {batch_a:?}\n coalesced {batch_b:?}"
            )));
        }
        let state = |e: &Engine| {
            e.incidents_sorted()
                .iter()
                .map(|i| serde_json::to_string(&i.view(false)).unwrap())
                .collect::<Vec<_>>()
        };
        if state(&each) != state(&coalesced) {
            return Err(ctx("the two engines' incidents differ".into()));
        }
        batch_a.clear();
        batch_b.clear();
    }
    Ok(())
}

/// Time steps for (d): mostly forward, sometimes backwards (the engine clock
/// never goes back), sometimes days ahead.
fn dt() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => prop::sample::select(GAPS_MS),
        1 => -3_600_000i64..0,
        1 => Just(86_400_000i64 * 3),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// (d) Arbitrary bodies, label sets, times and commands: no panic, and
    /// the invariants hold after every call (without hand resolution).
    #[test]
    fn no_input_panics_and_invariants_hold(ops in prop::collection::vec((dt(), op()), 1..40)) {
        if let Err(m) = run_ops(&ops, false) {
            return Err(TestCaseError::fail(m));
        }
    }

    /// (d) The same with operator resolutions mixed in: no panic, and the
    /// invariants that hand resolution does not suspend.
    #[test]
    fn no_input_panics_with_operator_commands(ops in prop::collection::vec((dt(), op()), 1..40)) {
        if let Err(m) = run_ops(&ops, true) {
            return Err(TestCaseError::fail(m));
        }
    }

    /// (f) Coalescing `updated` events per batch publishes every change and
    /// every lifecycle event.
    #[test]
    fn coalesced_updates_publish_every_change(
        ops in prop::collection::vec((dt(), op(), prop::bool::weighted(0.3)), 1..40)
    ) {
        if let Err(m) = check_coalescing(&ops) {
            return Err(TestCaseError::fail(m));
        }
    }

    /// (d) Arbitrary bytes as record values, through the replay driver:
    /// every line is either accepted or rejected, and the replay completes.
    #[test]
    fn replay_survives_arbitrary_bodies(bodies in prop::collection::vec(".{0,40}", 1..20)) {
        let lines: Vec<String> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| json!({"ts": rfc3339(T0 + i as i64 * 1_000), "value": b}).to_string())
            .collect();
        let out = replay_lines(SHOP_CONFIG, &lines);
        let summary = out.summary_json();
        prop_assert_eq!(summary["records"].as_u64(), Some(lines.len() as u64));
        prop_assert_eq!(
            summary["rejected"].as_u64(),
            Some(ReplayOutput::lines(&out.rejected).len() as u64)
        );
    }
}

// ---------------------------------------------------------------------------
// (e) A naive model.
//
// Config: one rule grouping by service, min_alerts 1, no topology, flapping
// disabled, every resolve timeout T = 5m, reopen_window R = 10m. Notifications are
// webhook alerts without startsAt/endsAt. From the documented semantics
// (engine/dedup.rs, correlate.rs, lifecycle.rs), written without the engine's
// data structures:
//
// - Timers due at or before a record's time fire before it, in time order: a
//   firing alert expires at last_fired + T; a resolved incident closes at
//   resolved_at + R, releasing its (resolved) alerts, which are forgotten.
// - firing at t: unknown alert: fires (occurrences 1); firing alert: t after
//   its last firing is a re-send (occurrences + 1, expiry t + T), else a
//   duplicate; resolved alert: t after its resolution starts a new episode
//   (occurrences + 1), else stale.
// - resolved at t: a firing alert resolves at t; otherwise nothing.
// - A newly firing alert joins its own incident if that is not closed, else
//   the service's current (not closed) incident, else opens one at t. Joining
//   a resolved incident reopens it.
// - An incident resolves when none of its alerts fires, at the latest
//   resolution among them.

const MODEL_CONFIG: &str = r#"
[dedup]
resolve_timeout = "5m"
# The model has one timeout T for every wire format.
webhook_resolve_timeout = "5m"
pagerduty_resolve_timeout = "5m"
flap_window = "1s"
flap_threshold = 1000

[[rules]]
name = "by-service"
group_by = ["service"]
reopen_window = "10m"
"#;

const T_MS: i64 = 300_000;
const R_MS: i64 = 600_000;
const MODEL_SERVICES: &[&str] = &["api", "web", "db"];
const MODEL_NAMES: &[&str] = &["A", "B", "C"];

#[derive(Debug, Clone)]
struct MAlert {
    firing: bool,
    last_fired: i64,
    resolved_at: i64,
    occurrences: u64,
    incident: usize,
}

#[derive(Debug, Clone)]
struct MIncident {
    service: String,
    opened: i64,
    resolved: Option<i64>,
    closed: Option<i64>,
    reopened: u32,
    /// alertname → (occurrences, resolution time if resolved).
    members: BTreeMap<String, (u64, Option<i64>)>,
}

#[derive(Default)]
struct Model {
    alerts: BTreeMap<(String, String), MAlert>,
    current: BTreeMap<String, usize>,
    incidents: Vec<MIncident>,
}

impl Model {
    /// The earliest timer due at or before `now`.
    fn next_timer(&self, now: i64) -> Option<(i64, bool, usize, (String, String))> {
        let mut best: Option<(i64, bool, usize, (String, String))> = None;
        for (k, a) in &self.alerts {
            let at = a.last_fired + T_MS;
            if a.firing && at <= now && best.as_ref().is_none_or(|b| (at, false) < (b.0, b.1)) {
                best = Some((at, false, 0, k.clone()));
            }
        }
        for (i, inc) in self.incidents.iter().enumerate() {
            if let (Some(r), None) = (inc.resolved, inc.closed) {
                let at = r + R_MS;
                if at <= now && best.as_ref().is_none_or(|b| (at, true) < (b.0, b.1)) {
                    best = Some((at, true, i, Default::default()));
                }
            }
        }
        best
    }

    fn run_timers(&mut self, now: i64) {
        while let Some((at, is_close, i, key)) = self.next_timer(now) {
            if is_close {
                let inc = &mut self.incidents[i];
                inc.closed = Some(at);
                let svc = inc.service.clone();
                if self.current.get(&svc) == Some(&i) {
                    self.current.remove(&svc);
                }
                self.alerts.retain(|_, a| a.incident != i);
            } else {
                self.resolve(&key, at);
            }
        }
    }

    fn resolve(&mut self, key: &(String, String), at: i64) {
        let a = self.alerts.get_mut(key).expect("known alert");
        a.firing = false;
        a.resolved_at = at;
        let inc = &mut self.incidents[a.incident];
        inc.members.get_mut(&key.1).expect("member").1 = Some(at);
        let any_firing = self
            .alerts
            .iter()
            .any(|(_, b)| b.incident == self.alerts[key].incident && b.firing);
        if !any_firing {
            let inc = &mut self.incidents[self.alerts[key].incident];
            inc.resolved = inc.members.values().filter_map(|m| m.1).max();
        }
    }

    fn attach(&mut self, key: &(String, String), t: i64) {
        let svc = key.0.clone();
        let own = self.alerts.get(key).map(|a| a.incident);
        let target = match own.filter(|&i| {
            self.incidents
                .get(i)
                .is_some_and(|inc| inc.closed.is_none())
        }) {
            Some(i) => i,
            None => match self.current.get(&svc).copied() {
                Some(i) => i,
                None => {
                    self.incidents.push(MIncident {
                        service: svc.clone(),
                        opened: t,
                        resolved: None,
                        closed: None,
                        reopened: 0,
                        members: BTreeMap::new(),
                    });
                    let i = self.incidents.len() - 1;
                    self.current.insert(svc, i);
                    i
                }
            },
        };
        let a = self.alerts.get_mut(key).expect("alert");
        a.incident = target;
        let occ = a.occurrences;
        let inc = &mut self.incidents[target];
        inc.members.insert(key.1.clone(), (occ, None));
        if inc.resolved.is_some() {
            inc.resolved = None;
            inc.reopened += 1;
        }
    }

    fn notify(&mut self, svc: &str, name: &str, fire: bool, t: i64) {
        let key = (svc.to_string(), name.to_string());
        match (self.alerts.get_mut(&key), fire) {
            (None, false) => {}
            (None, true) => {
                self.alerts.insert(
                    key.clone(),
                    MAlert {
                        firing: true,
                        last_fired: t,
                        resolved_at: 0,
                        occurrences: 1,
                        incident: usize::MAX,
                    },
                );
                self.attach(&key, t);
            }
            (Some(a), true) if a.firing => {
                if t > a.last_fired {
                    a.last_fired = t;
                    a.occurrences += 1;
                    let (occ, i) = (a.occurrences, a.incident);
                    self.incidents[i].members.get_mut(name).expect("member").0 = occ;
                }
            }
            (Some(a), true) => {
                if t > a.resolved_at {
                    a.firing = true;
                    a.last_fired = t;
                    a.occurrences += 1;
                    self.attach(&key, t);
                }
            }
            (Some(a), false) => {
                if a.firing && t >= a.last_fired {
                    self.resolve(&key, t);
                }
            }
        }
    }
}

/// (service, opened, resolved, closed, reopened, members with occurrences).
type Summary = (
    String,
    String,
    Option<String>,
    Option<String>,
    u64,
    Vec<(String, u64)>,
);

/// A record for the model: its time and (service, alertname, firing?) triples.
type ModelRecord = (i64, Vec<(usize, usize, bool)>);

fn model_incidents(records: &[ModelRecord]) -> Vec<Summary> {
    let mut m = Model::default();
    for (t, notes) in records {
        m.run_timers(*t);
        for &(s, n, fire) in notes {
            m.notify(MODEL_SERVICES[s], MODEL_NAMES[n], fire, *t);
        }
    }
    m.run_timers(i64::MAX);
    let mut out: Vec<Summary> = m
        .incidents
        .iter()
        .map(|i| {
            (
                i.service.clone(),
                rfc3339(i.opened),
                i.resolved.map(rfc3339),
                i.closed.map(rfc3339),
                u64::from(i.reopened),
                i.members.iter().map(|(k, v)| (k.clone(), v.0)).collect(),
            )
        })
        .collect();
    out.sort();
    out
}

fn engine_incidents(out: &ReplayOutput) -> Vec<Summary> {
    let mut v: Vec<Summary> = out
        .incidents_json()
        .iter()
        .map(|i| {
            let mut members: Vec<(String, u64)> = i["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    (
                        a["labels"]["alertname"].as_str().unwrap_or("?").to_string(),
                        a["occurrences"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            members.sort();
            (
                i["group"]["service"].as_str().unwrap_or("?").to_string(),
                i["opened_at"].as_str().unwrap_or("?").to_string(),
                i["resolved_at"].as_str().map(str::to_string),
                i["closed_at"].as_str().map(str::to_string),
                i["reopened"].as_u64().unwrap_or(0),
                members,
            )
        })
        .collect();
    v.sort();
    v
}

/// Gaps for the model: on and around T (5m) and R (10m).
const MODEL_GAPS_MS: &[i64] = &[
    0, 1_000, 60_000, 120_000, 240_000, 299_000, 300_000, 301_000, 540_000, 600_000, 601_000,
    900_000, 1_800_000,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// (e) The engine's incidents are exactly the model's.
    #[test]
    fn engine_agrees_with_naive_model(
        recs in prop::collection::vec(
            (
                prop::sample::select(MODEL_GAPS_MS),
                prop::collection::vec((0..MODEL_SERVICES.len(), 0..MODEL_NAMES.len(), prop::bool::weighted(0.6)), 1..3),
            ),
            1..40,
        )
    ) {
        let mut t = T0;
        let records: Vec<ModelRecord> = recs
            .into_iter()
            .map(|(gap, notes)| {
                t += gap;
                (t, notes)
            })
            .collect();
        let lines: Vec<String> = records
            .iter()
            .map(|(t, notes)| {
                let alerts: Vec<Value> = notes
                    .iter()
                    .map(|&(s, n, fire)| json!({
                        "status": if fire { "firing" } else { "resolved" },
                        "labels": {"alertname": MODEL_NAMES[n], "service": MODEL_SERVICES[s]},
                    }))
                    .collect();
                json!({"ts": rfc3339(*t), "value": {"version": "4", "alerts": alerts}}).to_string()
            })
            .collect();
        let got = engine_incidents(&replay_lines(MODEL_CONFIG, &lines));
        let want = model_incidents(&records);
        prop_assert!(
            got == want,
            "engine and model disagree\n want: {want:#?}\n  got: {got:#?}\ninput:\n{}",
            show(&lines)
        );
    }
}

/// The model itself, on a hand-checked stream (so a broken model cannot
/// agree with a broken engine by accident): fire at 0, resolve at 60s,
/// fire again at 5m (reopen), expire at 10m, close at 20m; a new fire at
/// 20m opens a second incident.
#[test]
fn naive_model_hand_checked() {
    let r = |s: i64| T0 + s * 1000;
    let records = vec![
        (r(0), vec![(0, 0, true)]),
        (r(60), vec![(0, 0, false)]),
        (r(300), vec![(0, 0, true), (0, 1, true)]),
        (r(1200), vec![(0, 0, true)]),
    ];
    let got = model_incidents(&records);
    let want: Vec<Summary> = vec![
        (
            "api".into(),
            rfc3339(r(0)),
            Some(rfc3339(r(600))),
            Some(rfc3339(r(1200))),
            1,
            vec![("A".into(), 2), ("B".into(), 1)],
        ),
        (
            "api".into(),
            rfc3339(r(1200)),
            Some(rfc3339(r(1500))),
            Some(rfc3339(r(2100))),
            0,
            vec![("A".into(), 1)],
        ),
    ];
    assert_eq!(got, want);
}

/// The smallest case of the problem-id bug above, written out: DiskFull on
/// svc0 recurs three times (a problem candidate); Latency on svc1 opens an
/// unrelated incident at the same instant as the first DiskFull. Swapping
/// those two simultaneous records must not change any id.
#[test]
fn problem_ids_do_not_depend_on_unrelated_simultaneous_records() {
    let disk = |t: i64| {
        (
            t,
            Rec::Alerts(vec![Note {
                slot: 0,
                name: 3,
                fire: true,
                wire: Wire::Webhook,
            }]),
        )
    };
    let latency = |t: i64| {
        (
            t,
            Rec::Alerts(vec![Note {
                slot: 1,
                name: 1,
                fire: true,
                wire: Wire::ApiV2,
            }]),
        )
    };
    let tail = [disk(T0 + 2_400_000), disk(T0 + 4_800_000)];
    let mut a = vec![disk(T0), latency(T0)];
    a.extend(tail.iter().cloned());
    let mut b = vec![latency(T0), disk(T0)];
    b.extend(tail.iter().cloned());
    let config = no_topology_config();
    let one = replay_lines(&config, &render(Slots::Isolated, &a));
    let two = replay_lines(&config, &render(Slots::Isolated, &b));
    assert_eq!(
        one.summary_json()["problems"],
        1,
        "the recurrence makes a candidate"
    );
    assert!(
        one.incidents == two.incidents && one.problems == two.problems,
        "{}\n{}",
        diff(&one.incidents, &two.incidents),
        diff(&one.problems, &two.problems)
    );
}

/// Found while writing (d): an alert that keeps firing after an operator
/// resolved its incident by hand. Re-sends do not reopen the incident (by
/// design), and once the reopen window has passed the incident closes. The
/// alert is still firing, so it must belong to an active incident again (the
/// invariant of `check_invariants`), not to none.
#[test]
fn still_firing_alert_after_hand_resolution_is_not_orphaned() {
    let mut e = engine_from_toml(SHOP_CONFIG);
    let labels = Labels::from_pairs([
        ("alertname", "Errors"),
        ("service", "billing"),
        ("env", "prod"),
        ("severity", "critical"),
    ])
    .expect("labels");
    let fp = labels.fingerprint();
    let fire = || {
        vec![Signal::Alert(Alert {
            fingerprint: fp,
            keyed: false,
            labels: labels.clone(),
            summary: None,
            status: AlertStatus::Firing,
            starts_at: None,
            ends_at: None,
            generator_url: None,
            annotations: Vec::new(),
            format: Format::AlertmanagerApiV2,
        })]
    };
    e.handle_signals(fire(), Timestamp(T0));
    let id = e.incidents_sorted()[0].id;
    e.resolve(id, Timestamp(T0 + 60_000))
        .accepted()
        .expect("hand resolution");
    // Re-sent every 4 minutes for 40 minutes: firing throughout.
    for k in 1..=10 {
        e.handle_signals(fire(), Timestamp(T0 + k * 240_000));
    }
    let fps: BTreeSet<Fingerprint> = [fp].into();
    let a = e.alert(fp).expect("tracked");
    assert_eq!(a.status, AlertStatus::Firing);
    check_invariants(&e, &fps, true).unwrap_or_else(|m| panic!("{m}"));
}
