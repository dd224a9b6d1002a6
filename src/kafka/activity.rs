//! What the daemon says about its work, so an operator watching its
//! terminal or journald sees it: one INFO line per incident lifecycle
//! change (opened, acknowledged, resolved, reopened, merged, closed) and
//! per problem change (a new candidate, accepted, …), and a summary line
//! every minute while records flow.
//!
//! The lines carry fixed tracing fields, so JSON logs stay machine
//! readable: `incident_id`, `priority`, `severity`, `title`,
//! `root_cause_service`, `root_cause_alertname`, `alerts` (and
//! `merged_into`); `problem_id`, `signature`, `incidents`; the summary's
//! `records_per_second`, `open_incidents`, `lag`, `outbox_backlog`.
//!
//! Called by the pipeline thread as it hands a batch to the committer (as
//! its metrics are), never from the engine: the engine stays pure.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use tracing::info;

use crate::engine::state::Incident;
use crate::engine::{Engine, EventKind, IncidentEvent};
use crate::metrics::Metrics;
use crate::problems::manager::{ProblemEvent, ProblemEventKind};
use crate::problems::state::Problem;

/// How often the summary line is written while records flow.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

thread_local! {
    /// One pipeline per thread: each daemon's pipeline thread keeps its own.
    static SUMMARY: RefCell<Summary> = RefCell::new(Summary::new(Instant::now()));
}

/// Logs a batch's incident lifecycle changes and, once a minute while
/// records flow, the summary line.
pub fn batch(engine: &Engine, records: usize, events: &[IncidentEvent], metrics: &Metrics) {
    incident_events(engine, events);
    let rate = SUMMARY.with(|s| s.borrow_mut().observe(records as u64, Instant::now()));
    if let Some(rate) = rate {
        summary(rate, metrics);
    }
}

/// One line per lifecycle event (`updated` events are not lifecycle
/// changes and are left to `tail`).
pub fn incident_events(engine: &Engine, events: &[IncidentEvent]) {
    for ev in events {
        if ev.kind == EventKind::Updated {
            continue;
        }
        if let Some(inc) = engine.incident(ev.incident) {
            incident(ev.kind, inc);
        }
    }
}

fn incident(kind: EventKind, inc: &Incident) {
    let root = inc.root_cause.and_then(|fp| inc.member(fp));
    let label = |name: &str| root.and_then(|m| m.labels.get(name)).unwrap_or("-");
    let merged_into = inc.merged_into.map(|id| id.to_string());
    info!(
        incident_id = %inc.id,
        priority = %inc.priority.as_str(),
        severity = %inc.severity.as_str(),
        title = %inc.title,
        root_cause_service = %label("service"),
        root_cause_alertname = %label("alertname"),
        alerts = inc.members.len(),
        merged_into = %merged_into.as_deref().unwrap_or("-"),
        "incident {}",
        kind.as_str()
    );
}

/// One line per problem change; a new candidate is `problem created`.
pub fn problem_event(ev: &ProblemEvent, p: &Problem) {
    if ev.kind == ProblemEventKind::Updated {
        return;
    }
    info!(
        problem_id = %p.id,
        state = %p.state.as_str(),
        signature = %p.signature,
        incidents = p.incident_ids.len(),
        "problem {}",
        ev.kind.as_str()
    );
}

fn summary(records_per_second: f64, m: &Metrics) {
    let sum = |c: &dyn Collector| -> i64 {
        c.collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|x| x.get_gauge().value() as i64)
            .sum()
    };
    info!(
        records_per_second = %format!("{records_per_second:.1}"),
        open_incidents = sum(&m.incidents_open),
        lag = sum(&m.consumer_lag),
        outbox_backlog = m.outbox_backlog.get(),
        "working"
    );
}

/// Records counted since the last summary line.
#[derive(Debug)]
pub struct Summary {
    since: Instant,
    records: u64,
}

impl Summary {
    pub fn new(now: Instant) -> Summary {
        Summary {
            since: now,
            records: 0,
        }
    }

    /// Counts a batch's records; the rate (records per second) when a
    /// summary is due: [`SUMMARY_EVERY`] has passed and records came in it.
    /// A quiet minute writes nothing and starts a new one.
    pub fn observe(&mut self, records: u64, now: Instant) -> Option<f64> {
        self.records += records;
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed < SUMMARY_EVERY {
            return None;
        }
        let n = std::mem::take(&mut self.records);
        self.since = now;
        (n > 0).then(|| n as f64 / elapsed.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::alert::Timestamp;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const TOPO: &str = "[[rules]]\nname = \"by-service\"\ngroup_by = [\"service\"]\n\
        [topology]\nlabel = \"service\"\nwindow = \"5m\"\n\
        [topology.depends_on]\ncheckout = [\"postgres\"]\n";

    fn body(name: &str, service: &str, instance: &str, ends: Option<&str>) -> Vec<u8> {
        let ends = ends.map_or(String::new(), |e| format!(r#","endsAt":"{e}""#));
        format!(
            r#"{{"labels":{{"alertname":"{name}","service":"{service}","instance":"{instance}","severity":"critical"}}{ends}}}"#
        )
        .into_bytes()
    }

    /// Opened, merged and resolved incidents each log one JSON line with
    /// the fixed fields.
    #[test]
    fn lifecycle_changes_log_one_line_each_with_their_fields() {
        let cfg = crate::config::Config::parse(TOPO, "t.toml").unwrap();
        let mut e = Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap());
        let t0 = 1_767_607_200_000;
        let at = |s: i64| Timestamp(t0 + s * 1000);
        let mut events = Vec::new();
        events.extend(e.handle(&body("A", "checkout", "1", None), at(0)).events);
        events.extend(e.handle(&body("C", "postgres", "1", None), at(600)).events);
        events.extend(e.handle(&body("A", "checkout", "2", None), at(660)).events);
        for (n, s, i) in [
            ("A", "checkout", "1"),
            ("C", "postgres", "1"),
            ("A", "checkout", "2"),
        ] {
            let out = e.handle(&body(n, s, i, Some("2026-01-05T10:11:00Z")), at(700));
            events.extend(out.events);
        }
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .json()
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(sub, || incident_events(&e, &events));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let messages: Vec<&str> = lines
            .iter()
            .map(|l| l["fields"]["message"].as_str().unwrap())
            .collect();
        for want in ["incident opened", "incident merged", "incident resolved"] {
            assert!(messages.contains(&want), "no {want:?} in {messages:?}");
        }
        assert!(!messages.contains(&"incident updated"), "{messages:?}");
        for l in &lines {
            let f = &l["fields"];
            assert_eq!(l["level"], "INFO");
            for k in [
                "incident_id",
                "priority",
                "severity",
                "title",
                "root_cause_service",
                "root_cause_alertname",
                "alerts",
            ] {
                assert!(f.get(k).is_some(), "{k} missing in {l}");
            }
        }
        let resolved = lines
            .iter()
            .find(|l| l["fields"]["message"] == "incident resolved")
            .unwrap();
        assert_eq!(resolved["fields"]["root_cause_service"], "postgres");
        assert_eq!(resolved["fields"]["alerts"], 3);
        let merged = lines
            .iter()
            .find(|l| l["fields"]["message"] == "incident merged")
            .unwrap();
        assert_eq!(
            merged["fields"]["merged_into"],
            resolved["fields"]["incident_id"]
        );
    }

    #[test]
    fn summary_is_due_once_a_minute_while_records_flow() {
        let t = Instant::now();
        let mut s = Summary::new(t);
        assert_eq!(s.observe(100, t + Duration::from_secs(30)), None);
        let rate = s.observe(20, t + Duration::from_secs(60)).unwrap();
        assert!((rate - 2.0).abs() < 1e-9, "{rate}");
        // A quiet minute: nothing.
        assert_eq!(s.observe(0, t + Duration::from_secs(125)), None);
        assert_eq!(s.observe(6, t + Duration::from_secs(130)), None);
        let rate = s.observe(0, t + Duration::from_secs(185)).unwrap();
        assert!((rate - 0.1).abs() < 1e-9, "{rate}");
    }
}
