//! Engine behaviour tests on decoded signals (no wire format involved).

use crate::alert::{Alert, AlertStatus, Format, Labels, Signal, Timestamp};
use crate::config::Config;
use crate::engine::state::{IncidentId, IncidentStatus};
use crate::engine::{CommandError, Engine, EngineConfig, EventKind, IncidentEvent};
use crate::store::codec;

const T0: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z

fn at(secs: i64) -> Timestamp {
    Timestamp(T0 + secs * 1000)
}

fn engine(toml: &str) -> Engine {
    let cfg = Config::parse(toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
    Engine::new(EngineConfig::compile(&cfg).expect("compiles"))
}

fn alert(pairs: &[(&str, &str)], status: AlertStatus) -> Signal {
    let labels = Labels::from_pairs(pairs.iter().copied()).unwrap();
    Signal::Alert(Alert {
        fingerprint: labels.fingerprint(),
        keyed: false,
        labels,
        summary: Some("something broke".into()),
        status,
        starts_at: None,
        ends_at: None,
        generator_url: None,
        annotations: Vec::new(),
        format: Format::AlertmanagerApiV2,
    })
}

fn fire(pairs: &[(&str, &str)]) -> Signal {
    alert(pairs, AlertStatus::Firing)
}

fn resolve(pairs: &[(&str, &str)]) -> Signal {
    alert(pairs, AlertStatus::Resolved)
}

fn kinds(evs: &[IncidentEvent]) -> Vec<EventKind> {
    evs.iter().map(|e| e.kind).collect()
}

fn only_incident(e: &Engine) -> IncidentId {
    let all = e.incidents_sorted();
    assert_eq!(all.len(), 1, "expected one incident, got {all:#?}");
    all[0].id
}

const BY_SERVICE: &str = r#"
[dedup]
resolve_timeout = "5m"
flap_window = "15m"
flap_threshold = 4
[[rules]]
name = "by-service"
matchers = ['severity=~"critical|warning"']
group_by = ["env", "service"]
window = "10m"
min_alerts = 1
reopen_window = "30m"
"#;

#[test]
fn resends_deduplicate_and_duplicates_change_nothing() {
    let mut e = engine(BY_SERVICE);
    let a = [
        ("alertname", "HighLatency"),
        ("service", "api"),
        ("env", "prod"),
        ("severity", "warning"),
    ];
    let ev = e.handle_signals(vec![fire(&a)], at(0));
    assert_eq!(kinds(&ev), vec![EventKind::Opened]);
    assert_eq!(ev[0].version, 1);
    // Exact duplicate delivery (same time): nothing changes.
    assert!(e.handle_signals(vec![fire(&a)], at(0)).is_empty());
    // Re-sends: occurrences grow, no event, no new incident.
    assert!(e.handle_signals(vec![fire(&a)], at(60)).is_empty());
    assert!(e.handle_signals(vec![fire(&a)], at(120)).is_empty());
    let id = only_incident(&e);
    let inc = e.incident(id).unwrap();
    assert_eq!(inc.members.len(), 1);
    assert_eq!(inc.members[0].occurrences, 3);
    assert_eq!(inc.members[0].last_seen, at(120));
    assert_eq!(e.stats().deduplicated, 3);
    assert_eq!(inc.title, "HighLatency: something broke");
    assert_eq!(inc.priority.as_str(), "P3");
}

#[test]
fn resolve_timeout_resolves_silent_alert_then_closes() {
    let mut e = engine(BY_SERVICE);
    let a = [
        ("alertname", "Down"),
        ("service", "api"),
        ("severity", "critical"),
    ];
    e.handle_signals(vec![fire(&a)], at(0));
    e.handle_signals(vec![fire(&a)], at(100));
    // Not yet: expiry is 100 + 300.
    assert!(e.tick(at(399)).is_empty());
    let ev = e.tick(at(400));
    assert_eq!(kinds(&ev), vec![EventKind::Resolved]);
    let id = only_incident(&e);
    assert_eq!(e.incident(id).unwrap().resolved_at, Some(at(400)));
    // Closes 30m after resolution.
    let ev = e.tick(at(400 + 1800));
    assert_eq!(kinds(&ev), vec![EventKind::Closed]);
    assert_eq!(e.incident(id).unwrap().status, IncidentStatus::Closed);
}

#[test]
fn evict_final_drops_exactly_the_incidents_that_closed() {
    let mut e = engine(BY_SERVICE);
    let svc = |s: &'static str| [("alertname", "Down"), ("service", s)];
    e.handle_signals(vec![fire(&svc("api")), fire(&svc("db"))], at(0));
    assert_eq!(e.evict_final(), 0);
    e.handle_signals(vec![resolve(&svc("api"))], at(10));
    e.handle_signals(vec![fire(&svc("db"))], at(200));
    e.tick(at(10 + 1800));
    assert_eq!(
        e.incident_count(),
        2,
        "closed, still in memory until evicted"
    );
    assert_eq!(e.evict_final(), 1);
    assert_eq!(e.incident_count(), 1);
    let left = only_incident(&e);
    assert_eq!(
        e.incident(left).unwrap().members[0].labels.get("service"),
        Some("db")
    );
    assert_eq!(e.evict_final(), 0, "each final incident is evicted once");
}

#[test]
fn threshold_holds_alerts_until_min_alerts() {
    let mut e = engine(
        r#"
[[rules]]
name = "cluster"
group_by = ["cluster"]
window = "10m"
min_alerts = 3
"#,
    );
    let a = |i: &'static str| {
        [
            ("alertname", "NodeDown"),
            ("cluster", "eu1"),
            ("instance", i),
        ]
    };
    assert!(e.handle_signals(vec![fire(&a("n1"))], at(0)).is_empty());
    assert!(e.handle_signals(vec![fire(&a("n2"))], at(60)).is_empty());
    assert!(e.incidents_sorted().is_empty(), "held below threshold");
    let ev = e.handle_signals(vec![fire(&a("n3"))], at(120));
    assert_eq!(kinds(&ev), vec![EventKind::Opened]);
    let id = only_incident(&e);
    let inc = e.incident(id).unwrap();
    assert_eq!(inc.members.len(), 3, "held alerts joined");
    assert_eq!(inc.opened_at, at(120));
    assert_eq!(inc.members[0].first_seen, at(0));
}

#[test]
fn held_alerts_that_never_reach_threshold_are_noise() {
    let mut e = engine(
        r#"
[[rules]]
name = "cluster"
group_by = ["cluster"]
window = "10m"
min_alerts = 3
"#,
    );
    let a = [
        ("alertname", "NodeDown"),
        ("cluster", "eu1"),
        ("instance", "n1"),
    ];
    let b = [
        ("alertname", "NodeDown"),
        ("cluster", "eu1"),
        ("instance", "n2"),
    ];
    e.handle_signals(vec![fire(&a), fire(&b)], at(0));
    e.handle_signals(vec![resolve(&a), resolve(&b)], at(30));
    e.tick(at(30 + 600));
    assert_eq!(e.stats().noise_dropped, 2);
    assert_eq!(e.alert_count(), 0);
    // A third alert later does not see the dropped ones.
    let c = [
        ("alertname", "NodeDown"),
        ("cluster", "eu1"),
        ("instance", "n3"),
    ];
    assert!(e.handle_signals(vec![fire(&c)], at(700)).is_empty());
    assert!(e.incidents_sorted().is_empty());
}

#[test]
fn reopen_within_window_new_incident_after() {
    let mut e = engine(BY_SERVICE);
    let a = [
        ("alertname", "Down"),
        ("service", "api"),
        ("severity", "critical"),
    ];
    e.handle_signals(vec![fire(&a)], at(0));
    e.handle_signals(vec![resolve(&a)], at(60));
    let id = only_incident(&e);
    assert_eq!(e.incident(id).unwrap().status, IncidentStatus::Resolved);
    let ev = e.handle_signals(vec![fire(&a)], at(600));
    assert_eq!(kinds(&ev), vec![EventKind::Reopened]);
    let inc = e.incident(id).unwrap();
    assert_eq!((inc.status, inc.reopened), (IncidentStatus::Open, 1));
    e.handle_signals(vec![resolve(&a)], at(700));
    // Past the 30m reopen window: the old one closed, a new one opens.
    let ev = e.handle_signals(vec![fire(&a)], at(700 + 1801));
    assert_eq!(kinds(&ev), vec![EventKind::Closed, EventKind::Opened]);
    assert_eq!(e.incidents_sorted().len(), 2);
    assert_eq!(e.incident(id).unwrap().status, IncidentStatus::Closed);
}

#[test]
fn flapping_alert_stays_in_one_incident() {
    let mut e = engine(BY_SERVICE);
    let a = [
        ("alertname", "Flappy"),
        ("service", "api"),
        ("severity", "warning"),
    ];
    let mut t = 0;
    for _ in 0..6 {
        e.handle_signals(vec![fire(&a)], at(t));
        e.handle_signals(vec![resolve(&a)], at(t + 30));
        t += 60;
    }
    let id = only_incident(&e);
    let inc = e.incident(id).unwrap();
    assert!(inc.flapping, "marked flapping");
    assert_eq!(
        inc.status,
        IncidentStatus::Open,
        "a flapping alert holds it open"
    );
    assert_eq!(e.stats().flapping_started, 1);
    // Once it settles (no change for the flap window) the incident resolves.
    let ev = e.tick(at(t + 900));
    assert!(kinds(&ev).contains(&EventKind::Resolved), "{ev:?}");
    assert_eq!(e.incident(id).unwrap().resolved_at, Some(at(t - 60 + 30)));
}

const TOPO: &str = r#"
[[rules]]
name = "by-service"
group_by = ["service"]
[topology]
label = "service"
window = "5m"
[topology.depends_on]
checkout = ["payments", "inventory"]
payments = ["postgres"]
"#;

#[test]
fn topology_one_incident_either_order_root_cause_deepest() {
    let c = [
        ("alertname", "CheckoutErrors"),
        ("service", "checkout"),
        ("severity", "critical"),
    ];
    let p = [
        ("alertname", "PgDown"),
        ("service", "postgres"),
        ("severity", "warning"),
    ];
    for (first, second) in [(c, p), (p, c)] {
        let mut e = engine(TOPO);
        e.handle_signals(vec![fire(&first)], at(0));
        e.handle_signals(vec![fire(&second)], at(120));
        let id = only_incident(&e);
        let inc = e.incident(id).unwrap();
        assert_eq!(inc.members.len(), 2);
        let pg = Labels::from_pairs(p).unwrap().fingerprint();
        assert_eq!(inc.root_cause, Some(pg));
        assert_eq!(inc.severity.as_str(), "critical");
    }
}

/// A 100,000-service chain: alerts on 41 services along it (more services
/// in the topology index than are asked about one by one) make one
/// incident whose root cause is the deepest; a service linked to nothing
/// keeps its own.
#[test]
fn topology_chain_of_100k_services_at_run_time() {
    let n = 100_000;
    let mut toml = String::from(
        "[[rules]]\nname = \"by-service\"\ngroup_by = [\"service\"]\n\
         [topology]\nlabel = \"service\"\nwindow = \"5m\"\n[topology.depends_on]\nlonely = []\n",
    );
    for i in 0..n - 1 {
        toml.push_str(&format!("s{i:06} = [\"s{:06}\"]\n", i + 1));
    }
    let mut e = engine(&toml);
    let svc = |i: usize| format!("s{i:06}");
    for (t, i) in (0..=40).map(|k| k * 1000).enumerate() {
        let s = svc(i);
        e.handle_signals(
            vec![fire(&[("alertname", "Down"), ("service", &s)])],
            at(t as i64),
        );
    }
    e.handle_signals(
        vec![fire(&[("alertname", "Down"), ("service", "lonely")])],
        at(41),
    );
    let all = e.incidents_sorted();
    assert_eq!(all.len(), 2, "{all:#?}");
    let chain = all
        .iter()
        .find(|i| i.members.len() == 41)
        .expect("one chain incident");
    let deepest = Labels::from_pairs([("alertname", "Down"), ("service", svc(40_000).as_str())])
        .unwrap()
        .fingerprint();
    assert_eq!(chain.root_cause, Some(deepest));
    assert!(all.iter().any(|i| i.members.len() == 1));
}

#[test]
fn topology_window_and_siblings() {
    let c = [("alertname", "A"), ("service", "payments")];
    let i = [("alertname", "B"), ("service", "inventory")];
    let pg = [("alertname", "C"), ("service", "postgres")];
    let mut e = engine(TOPO);
    e.handle_signals(vec![fire(&c)], at(0));
    e.handle_signals(vec![fire(&i)], at(10));
    assert_eq!(e.incidents_sorted().len(), 2, "siblings are not linked");
    e.handle_signals(vec![fire(&pg)], at(301 + 10));
    assert_eq!(e.incidents_sorted().len(), 3, "outside the window");
}

#[test]
fn simultaneous_linked_alerts_form_one_incident_without_merges() {
    let c = [("alertname", "A"), ("service", "checkout")];
    let p = [("alertname", "B"), ("service", "payments")];
    let mut results = Vec::new();
    for order in [vec![fire(&c), fire(&p)], vec![fire(&p), fire(&c)]] {
        let mut e = engine(TOPO);
        e.handle_signals(order, at(0));
        let v: Vec<(String, &str, Option<String>, usize)> = e
            .incidents_sorted()
            .iter()
            .map(|i| {
                (
                    i.id.to_string(),
                    i.status.as_str(),
                    i.merged_into.map(|m| m.to_string()),
                    i.members.len(),
                )
            })
            .collect();
        results.push(v);
    }
    for r in &results {
        assert_eq!(r.len(), 1, "one incident, no opened-then-merged one: {r:?}");
        assert_eq!((r[0].1, r[0].3), ("open", 2));
    }
}

#[test]
fn later_link_merges_two_open_incidents() {
    let mut e = engine(TOPO);
    let c1 = [
        ("alertname", "A"),
        ("service", "checkout"),
        ("instance", "1"),
    ];
    let pg = [("alertname", "C"), ("service", "postgres")];
    let c2 = [
        ("alertname", "A"),
        ("service", "checkout"),
        ("instance", "2"),
    ];
    e.handle_signals(vec![fire(&c1)], at(0));
    e.handle_signals(vec![fire(&pg)], at(600)); // outside 5m: own incident
    assert_eq!(e.incidents_sorted().len(), 2);
    let ev = e.handle_signals(vec![fire(&c2)], at(660)); // links both
    assert!(kinds(&ev).contains(&EventKind::Merged), "{ev:?}");
    let all = e.incidents_sorted();
    let (first, second) = (all[0], all[1]);
    assert_eq!(first.status, IncidentStatus::Open);
    assert_eq!(first.members.len(), 3);
    assert_eq!(second.status, IncidentStatus::Merged);
    assert_eq!(second.merged_into, Some(first.id));
}

#[test]
fn acknowledge_and_resolve_commands() {
    let mut e = engine(BY_SERVICE);
    let a = [
        ("alertname", "Down"),
        ("service", "api"),
        ("severity", "critical"),
    ];
    e.handle_signals(vec![fire(&a)], at(0));
    let id = only_incident(&e);
    let ev = e.acknowledge(id, at(30)).accepted().unwrap();
    assert_eq!(
        (kinds(&ev), ev[0].version),
        (vec![EventKind::Acknowledged], 2)
    );
    assert!(
        e.acknowledge(id, at(31)).accepted().unwrap().is_empty(),
        "idempotent"
    );
    assert_eq!(e.incident(id).unwrap().acknowledged_at, Some(at(30)));
    let ev = e.resolve(id, at(60)).accepted().unwrap();
    assert_eq!(kinds(&ev), vec![EventKind::Resolved]);
    let err = e.acknowledge(id, at(61)).accepted().unwrap_err();
    assert_eq!(
        err,
        CommandError::InvalidTransition {
            id,
            status: "resolved",
            action: "acknowledge"
        }
    );
    assert!(matches!(
        e.acknowledge(IncidentId(7), at(62)).result,
        Err(CommandError::NotFound(_))
    ));
    // A re-send of the still-firing alert does not reopen a hand-resolved incident.
    assert!(e.handle_signals(vec![fire(&a)], at(90)).is_empty());
}

#[test]
fn pagerduty_acknowledge_signal() {
    let mut e = engine(BY_SERVICE);
    let a = [
        ("alertname", "Down"),
        ("service", "api"),
        ("severity", "critical"),
    ];
    e.handle_signals(vec![fire(&a)], at(0));
    let fp = Labels::from_pairs(a).unwrap().fingerprint();
    let ev = e.handle_signals(vec![Signal::Acknowledge { fingerprint: fp }], at(10));
    assert_eq!(kinds(&ev), vec![EventKind::Acknowledged]);
    e.handle_signals(
        vec![Signal::Acknowledge {
            fingerprint: crate::alert::Fingerprint(1),
        }],
        at(11),
    );
    assert_eq!(e.stats().acknowledgements_ignored, 1);
}

#[test]
fn stale_firing_after_sender_resolution_is_ignored() {
    let mut e = engine(BY_SERVICE);
    let labels = Labels::from_pairs([("alertname", "X"), ("service", "api")]).unwrap();
    let mk = |status, starts: i64| {
        Signal::Alert(Alert {
            fingerprint: labels.fingerprint(),
            keyed: false,
            labels: labels.clone(),
            summary: None,
            status,
            starts_at: Some(at(starts)),
            ends_at: None,
            generator_url: None,
            annotations: Vec::new(),
            format: Format::AlertmanagerApiV2,
        })
    };
    e.handle_signals(vec![mk(AlertStatus::Firing, 0)], at(0));
    e.handle_signals(vec![mk(AlertStatus::Resolved, 0)], at(60));
    // A late copy of the same episode: ignored.
    assert!(e
        .handle_signals(vec![mk(AlertStatus::Firing, 0)], at(120))
        .is_empty());
    // A new episode: reopens.
    let ev = e.handle_signals(vec![mk(AlertStatus::Firing, 100)], at(130));
    assert_eq!(kinds(&ev), vec![EventKind::Reopened]);
}

#[test]
fn versions_grow_by_one_per_event() {
    let mut e = engine(BY_SERVICE);
    let a = [
        ("alertname", "Down"),
        ("service", "api"),
        ("severity", "critical"),
    ];
    let b = [
        ("alertname", "Slow"),
        ("service", "api"),
        ("severity", "warning"),
    ];
    let mut all = Vec::new();
    all.extend(e.handle_signals(vec![fire(&a)], at(0)));
    all.extend(e.handle_signals(vec![fire(&b)], at(10)));
    all.extend(e.handle_signals(vec![resolve(&a)], at(20)));
    all.extend(e.handle_signals(vec![resolve(&b)], at(30)));
    all.extend(e.flush());
    let versions: Vec<u64> = all.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=all.len() as u64).collect::<Vec<_>>());
    assert_eq!(
        kinds(&all),
        vec![
            EventKind::Opened,
            EventKind::Updated,
            EventKind::Updated,
            EventKind::Resolved,
            EventKind::Closed
        ]
    );
}

/// Persist everything through serde half-way, restore, continue: the result
/// equals an uninterrupted run (what a crash and restart must give).
#[test]
fn restore_from_persisted_state_continues_identically() {
    let cfg = r#"
[dedup]
resolve_timeout = "5m"
[[rules]]
name = "cluster"
group_by = ["cluster"]
window = "10m"
min_alerts = 2
reopen_window = "30m"
[topology]
label = "service"
window = "5m"
[topology.depends_on]
checkout = ["payments"]
"#;
    let stream: Vec<(i64, Signal)> = vec![
        (
            0,
            fire(&[
                ("alertname", "A"),
                ("cluster", "c1"),
                ("service", "checkout"),
            ]),
        ),
        (
            10,
            fire(&[("alertname", "B"), ("cluster", "c2"), ("service", "x")]),
        ),
        (
            20,
            fire(&[
                ("alertname", "C"),
                ("cluster", "c1"),
                ("service", "payments"),
            ]),
        ),
        (
            400,
            fire(&[
                ("alertname", "A"),
                ("cluster", "c1"),
                ("service", "checkout"),
            ]),
        ),
        (
            500,
            resolve(&[
                ("alertname", "C"),
                ("cluster", "c1"),
                ("service", "payments"),
            ]),
        ),
        (
            900,
            fire(&[("alertname", "D"), ("cluster", "c2"), ("service", "y")]),
        ),
        (
            2000,
            fire(&[
                ("alertname", "C"),
                ("cluster", "c1"),
                ("service", "payments"),
            ]),
        ),
        (
            2100,
            fire(&[("alertname", "E"), ("cluster", "c1"), ("service", "z")]),
        ),
    ];
    let run = |split: Option<usize>| -> String {
        let mut e = engine(cfg);
        e.set_tracking(true);
        for (k, (t, s)) in stream.iter().enumerate() {
            if Some(k) == split {
                e = persisted_and_restored(e);
            }
            e.handle_signals(vec![s.clone()], at(*t));
        }
        e.flush();
        let mut out = String::new();
        for i in e.incidents_sorted() {
            out.push_str(&serde_json::to_string(&i.view(true)).unwrap());
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(e.stats()).unwrap());
        out
    };
    let whole = run(None);
    assert!(whole.lines().count() >= 3, "{whole}");
    for split in 1..stream.len() {
        assert_eq!(run(Some(split)), whole, "restored at record {split}");
    }
}

/// The engine after a trip through the store's encoding: what a crash and
/// restart give (every entity encoded, decoded, and the engine rebuilt).
fn persisted_and_restored(mut e: Engine) -> Engine {
    fn trip<T: serde::Serialize + serde::de::DeserializeOwned>(v: &T) -> T {
        codec::decode("t", &"k", &codec::encode("t", v).unwrap()).unwrap()
    }
    let alerts = e.alerts.values().map(trip).collect();
    let groups = e.groups.values().map(trip).collect();
    let incidents = e
        .incidents
        .values()
        .map(|i| {
            let mut copy = trip(i);
            copy.members = trip(&i.members);
            copy
        })
        .collect();
    let problems = e
        .problems
        .problems
        .values()
        .map(|p| {
            // Stored apart from the row, as the store does.
            let mut copy = trip(p);
            copy.incident_ids = trip(&p.incident_ids);
            copy
        })
        .collect();
    let signatures = e.problems.signatures.values().map(trip).collect();
    let mined = e.problems.take_mined();
    let (clock, stats, ec) = (e.clock(), e.stats().clone(), e.config().clone());
    let mut e = Engine::restore(ec, alerts, groups, incidents, clock, stats);
    e.restore_problems(problems, signatures, None, mined.iter().map(String::as_str))
        .unwrap();
    e
}

const PROBLEMS: &str = r#"
[[rules]]
name = "per-pod"
group_by = ["pod"]
reopen_window = "1h"
[problems]
min_incidents = 3
lookback = "7d"
"#;

fn oom(pod: &str) -> Signal {
    let labels = Labels::from_pairs([
        ("alertname", "KubePodOOMKilled"),
        ("service", "search"),
        ("pod", pod),
    ])
    .unwrap();
    Signal::Alert(Alert {
        fingerprint: labels.fingerprint(),
        keyed: false,
        labels,
        summary: Some(format!("container search in pod {pod} was OOM killed")),
        status: AlertStatus::Firing,
        starts_at: None,
        ends_at: None,
        generator_url: None,
        annotations: Vec::new(),
        format: Format::AlertmanagerApiV2,
    })
}

const PODS: [&str; 5] = [
    "search-7d9f8b6c5-x2x9z",
    "search-7d9f8b6c5-k8j2m",
    "search-5b6c7d8e9-p0q1r",
    "search-66bd4f9c77-zt5wq",
    "search-66bd4f9c77-h2n4c",
];

#[test]
fn recurring_incidents_become_a_candidate_and_known_error_attaches() {
    let mut e = engine(PROBLEMS);
    for (day, pod) in PODS.iter().take(3).enumerate() {
        e.handle_signals(vec![oom(pod)], at(day as i64 * 86_400));
    }
    // None has settled yet: nothing recurred so far as problems know.
    assert!(e.problems_sorted().is_empty());
    // Each resolves 5 min after its alert and closes an hour later.
    e.tick(at(2 * 86_400 + 7_200));
    let probs = e.problems_sorted();
    assert_eq!(probs.len(), 1, "{probs:#?}");
    let pid = probs[0].id;
    assert_eq!(probs[0].incident_ids.len(), 3);
    for inc in e.incidents_sorted() {
        assert!(
            probs[0].incident_ids.contains(&inc.id),
            "the problem lists every recurrence"
        );
        // Incidents closed before the candidate opened are history; the
        // one whose closing opened it carries the link.
        let want = if inc.opened_at < at(2 * 86_400) {
            None
        } else {
            Some(pid)
        };
        assert_eq!(inc.problem_id, want, "{} ({:?})", inc.id, inc.status);
    }
    assert!(e
        .incidents_sorted()
        .iter()
        .any(|i| i.problem_id == Some(pid)));
    e.record_known_error(
        pid,
        crate::problems::state::KnownError {
            root_cause: "heap too small".into(),
            workaround: "raise the limit".into(),
            link: None,
        },
        at(3 * 86_400),
    )
    .unwrap();
    let ev = e.handle_signals(vec![oom(PODS[3])], at(4 * 86_400));
    let opened = ev
        .iter()
        .find(|e| e.kind == EventKind::Opened)
        .expect("a new incident");
    let inc = e.incident(opened.incident).unwrap();
    assert_eq!(inc.problem_id, Some(pid));
    assert_eq!(
        inc.known_error.as_ref().map(|k| k.workaround.as_str()),
        Some("raise the limit"),
        "in its first event"
    );
}

#[test]
fn problems_survive_restore() {
    let run = |split: Option<usize>| -> String {
        let mut e = engine(PROBLEMS);
        // As in the daemon: tracking on, so mined lines are kept for re-feeding.
        e.set_tracking(true);
        // Mined first, so the OOM template is not the miner's first cluster:
        // a restored miner that was not re-fed would number it differently.
        let disk = Labels::from_pairs([
            ("alertname", "DiskFull"),
            ("service", "search"),
            ("pod", "db-0"),
        ])
        .unwrap();
        e.handle_signals(
            vec![Signal::Alert(Alert {
                fingerprint: disk.fingerprint(),
                keyed: false,
                labels: disk,
                summary: Some("volume /data is 97% full".into()),
                status: AlertStatus::Firing,
                starts_at: None,
                ends_at: None,
                generator_url: None,
                annotations: Vec::new(),
                format: Format::AlertmanagerApiV2,
            })],
            at(-86_400),
        );
        for (k, pod) in PODS.iter().enumerate() {
            if Some(k) == split {
                e = persisted_and_restored(e);
            }
            e.handle_signals(vec![oom(pod)], at(k as i64 * 86_400));
        }
        e.tick(at(PODS.len() as i64 * 86_400));
        e.flush();
        let mut out = String::new();
        for p in e.problems_sorted() {
            out.push_str(&serde_json::to_string(&p.view()).unwrap());
        }
        // Closed incidents leave memory (they live in the store), so compare
        // the problems, which reference every incident by id.
        out
    };
    let whole = run(None);
    assert!(whole.contains("\"state\":\"candidate\""), "{whole}");
    assert!(whole.contains("\"occurrences\":5"), "{whole}");
    for split in 1..PODS.len() {
        assert_eq!(run(Some(split)), whole, "restored before record {split}");
    }
}

#[test]
fn coalesced_updates_one_per_incident_per_batch() {
    let mut e = engine(BY_SERVICE);
    e.coalesce_updates(true);
    fn api(n: &'static str) -> [(&'static str, &'static str); 3] {
        [
            ("alertname", n),
            ("service", "api"),
            ("severity", "warning"),
        ]
    }
    let ev = e.handle_signals(vec![fire(&api("A"))], at(0));
    assert_eq!(
        kinds(&ev),
        vec![EventKind::Opened],
        "lifecycle events are not held"
    );
    let id = only_incident(&e);
    for (k, name) in ["B", "C", "D"].iter().enumerate() {
        let at_k = at(1 + k as i64);
        assert!(e.handle_signals(vec![fire(&api(name))], at_k).is_empty());
    }
    let ev = e.take_updates();
    assert_eq!(
        ev,
        vec![IncidentEvent {
            incident: id,
            kind: EventKind::Updated,
            version: 2,
            time: at(3),
        }]
    );
    assert_eq!(e.incident(id).unwrap().members.len(), 4);
    assert!(e.take_updates().is_empty(), "nothing changed since");
    // A change then a lifecycle event: the event shows the change, no
    // `updated` follows.
    assert!(e.handle_signals(vec![fire(&api("E"))], at(10)).is_empty());
    let ev = e.acknowledge(id, at(11)).accepted().unwrap();
    assert_eq!(
        (kinds(&ev), ev[0].version),
        (vec![EventKind::Acknowledged], 3)
    );
    assert!(e.take_updates().is_empty());
}

/// Retention: an incident closed longer ago than `closed_incidents` is
/// deleted (and listed for the store), a younger one stays; both replay
/// (incidents in memory) and the daemon (tracking) see the same.
#[test]
fn incidents_closed_longer_ago_than_retention_are_deleted() {
    let toml = format!("{BY_SERVICE}\n[retention]\nclosed_incidents = \"1h\"\n");
    for tracking in [false, true] {
        let mut e = engine(&toml);
        e.set_tracking(tracking);
        let svc = |s: &'static str| [("alertname", "Down"), ("service", s)];
        e.handle_signals(vec![fire(&svc("api")), fire(&svc("db"))], at(0));
        e.handle_signals(vec![resolve(&svc("api"))], at(10));
        e.handle_signals(vec![resolve(&svc("db"))], at(1000));
        let by_service = |e: &Engine, s: &str| {
            e.incidents_sorted()
                .into_iter()
                .find(|i| i.members[0].labels.get("service") == Some(s))
                .map(|i| i.id)
        };
        let (api, db) = (
            by_service(&e, "api").unwrap(),
            by_service(&e, "db").unwrap(),
        );
        e.take_changes();
        // api closes at 10 + 30m, db at 1000 + 30m.
        e.tick(at(10 + 1800 + 3599));
        assert!(
            e.incident(api).is_some(),
            "kept until an hour after it closed"
        );
        assert!(e.take_changes().expired_incidents.is_empty());
        e.tick(at(10 + 1800 + 3600));
        assert!(e.incident(api).is_none(), "closed an hour ago: deleted");
        assert_eq!(e.incident(db).unwrap().status, IncidentStatus::Closed);
        let c = e.take_changes();
        let want: &[IncidentId] = if tracking { &[api] } else { &[] };
        assert_eq!(c.expired_incidents, want, "tracking {tracking}");
        e.tick(at(1000 + 1800 + 3600));
        assert!(e.incident(db).is_none());
        assert_eq!(e.retired_count(), 0);
    }
}

/// Retention sweeps, at whole hours of the engine clock, resolved alerts no
/// incident or group holds and problems that stopped changing.
#[test]
fn resolved_orphan_alerts_and_resolved_problems_expire_at_whole_hours() {
    let toml = format!(
        "{BY_SERVICE}\n[problems]\nmin_incidents = 2\n\
         [retention]\nclosed_incidents = \"1h\"\nresolved_problems = \"2h\"\n"
    );
    let mut e = engine(&toml);
    e.set_tracking(true);
    let a = [("alertname", "Down"), ("service", "api")];
    // Two incidents of one signature, each closed (a problem's members are
    // settled when they close): a problem candidate, then rejected.
    e.handle_signals(vec![fire(&a)], at(0));
    let proto = e.alerts.iter().next().map(|(_, a)| a.clone()).unwrap();
    e.handle_signals(vec![resolve(&a)], at(10));
    e.tick(at(10 + 1800));
    e.handle_signals(vec![fire(&a)], at(2000));
    e.handle_signals(vec![resolve(&a)], at(2010));
    e.tick(at(2010 + 1800));
    let t = 2010 + 1801;
    let pid = e.problems_sorted()[0].id;
    e.reject_problem(pid, at(t)).unwrap();
    // A resolved alert that no incident or group holds.
    let mut orphan = proto;
    orphan.fingerprint = crate::alert::Fingerprint(42);
    orphan.incident = None;
    orphan.status = AlertStatus::Resolved;
    orphan.resolved_at = Some(at(t + 1));
    e.alerts.insert(orphan.fingerprint, orphan);
    e.take_changes();
    let hour = |t: Timestamp| Timestamp((t.0 / 3_600_000 + 1) * 3_600_000);
    e.tick(at(t + 1 + 3599));
    assert!(e.alert(crate::alert::Fingerprint(42)).is_some());
    e.tick(hour(at(t + 1 + 3600)));
    assert!(e.alert(crate::alert::Fingerprint(42)).is_none(), "swept");
    assert!(e.problem(pid).is_some(), "rejected less than 2h ago");
    e.tick(hour(at(t + 7200)));
    assert!(e.problem(pid).is_none(), "rejected over 2h ago, swept");
    let c = e.take_changes();
    assert!(c.problems.contains(&pid), "{:?}", c.problems);
    assert!(c.alerts.contains(&crate::alert::Fingerprint(42)));
}

/// A clock that jumps past an incident's close and its retention at once
/// (a daemon catching up, its wall-clock tick months after the records):
/// the tick that closes it still leaves it there for its `closed` event to
/// be rendered, and the next pass deletes it. (Deleting it in the same
/// tick dropped the event.)
#[test]
fn an_incident_is_never_deleted_by_the_tick_that_closed_it() {
    let toml = format!("{BY_SERVICE}\n[retention]\nclosed_incidents = \"1h\"\n");
    let mut e = engine(&toml);
    e.set_tracking(true);
    let a = [("alertname", "Down"), ("service", "api")];
    e.handle_signals(vec![fire(&a)], at(0));
    e.handle_signals(vec![resolve(&a)], at(10));
    let id = only_incident(&e);
    e.take_changes();
    let ev = e.tick(at(90 * 86_400));
    assert_eq!(kinds(&ev), vec![EventKind::Closed]);
    assert!(
        e.incident(id).is_some(),
        "still there for its closed event to be rendered"
    );
    assert!(e.take_changes().expired_incidents.is_empty());
    e.tick(at(90 * 86_400 + 1));
    assert!(e.incident(id).is_none(), "deleted by the next pass");
    assert_eq!(e.take_changes().expired_incidents, [id]);
}
