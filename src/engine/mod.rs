//! The pure, deterministic core: dedup → correlate → incidents.
//!
//! No I/O, no clock, no logging: every call gets `now` and returns the
//! incident events it caused. The shell persists state and publishes events.
//!
//! - [`dedup`]: per-fingerprint state, duplicates, re-sends, expiry, flapping.
//! - [`correlate`]: rules, thresholds, topology joins and merges.
//! - [`lifecycle`]: open → acknowledged → resolved → closed / merged.
//! - [`rules`], [`topology`], [`priority`]: compiled config.
//! - [`state`]: the persistent data; [`deadlines`]: timers on the engine clock.
//! - [`retention`]: what is deleted once it no longer changes, and when.
//! - [`view`]: the incident as published and written by replay.

pub mod correlate;
pub mod deadlines;
pub mod dedup;
pub mod lifecycle;
pub mod persist;
pub mod priority;
pub mod problem_link;
pub mod retention;
pub mod rules;
pub mod state;
pub mod topology;
pub mod tracked;
pub mod view;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use serde::Serialize;

use crate::alert::{Fingerprint, Signal, Timestamp};
use crate::config::{Config, ConfigIssue};
use crate::decode::{self, Decoded, Limits};
use deadlines::{Deadline, Deadlines};
use rules::Rule;
use state::{AlertState, Group, Incident, IncidentId};
use topology::Topology;
use tracked::Tracked;

/// The configuration the engine runs on, compiled and checked.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub rules: Vec<Rule>,
    pub topology: Topology,
    /// Sorted, unique; empty = all labels.
    pub identity_labels: Vec<String>,
    /// Expiry of an API v2 alert without a future `endsAt`.
    pub resolve_timeout: Duration,
    /// Expiry of a notifier webhook's firing alert (Alertmanager, Grafana).
    pub webhook_resolve_timeout: Duration,
    /// Expiry of a PagerDuty trigger; `None` = never (waits for its resolve).
    pub pagerduty_resolve_timeout: Option<Duration>,
    pub flap_window: Duration,
    pub flap_threshold: usize,
    pub impact_label: String,
    pub urgency_label: String,
    pub limits: Limits,
    pub problems: crate::problems::manager::ProblemsConfig,
    pub retention: retention::Retention,
}

impl EngineConfig {
    /// Compiles matchers and the topology graph; returns every problem found.
    pub fn compile(cfg: &Config) -> Result<EngineConfig, Vec<ConfigIssue>> {
        let mut issues = Vec::new();
        let rules = rules::compile(cfg, &mut issues);
        let topology = Topology::compile(&cfg.topology, &mut issues);
        let mut identity_labels = cfg.dedup.identity_labels.clone();
        identity_labels.sort();
        identity_labels.dedup();
        let problems = compile_problems(&cfg.problems, &mut issues);
        let Some(problems) = problems.filter(|_| issues.is_empty()) else {
            return Err(issues);
        };
        Ok(EngineConfig {
            rules,
            topology,
            identity_labels,
            resolve_timeout: cfg.dedup.resolve_timeout.0,
            webhook_resolve_timeout: cfg.dedup.webhook_resolve_timeout.0,
            pagerduty_resolve_timeout: Some(cfg.dedup.pagerduty_resolve_timeout.0)
                .filter(|d| !d.is_zero()),
            flap_window: cfg.dedup.flap_window.0,
            flap_threshold: cfg.dedup.flap_threshold,
            impact_label: cfg.priority.impact_label.clone(),
            urgency_label: cfg.priority.urgency_label.clone(),
            limits: cfg.limits.clone(),
            problems,
            retention: retention::Retention::from_config(&cfg.retention),
        })
    }

    /// The longest window or timeout: past it, every timer has fired.
    pub fn horizon(&self) -> Duration {
        let mut h = self
            .resolve_timeout
            .max(self.webhook_resolve_timeout)
            .max(self.pagerduty_resolve_timeout.unwrap_or_default())
            .max(self.flap_window)
            .max(self.topology.window);
        for r in &self.rules {
            h = h.max(r.window).max(r.reopen_window);
        }
        h
    }
}

/// Checks the miner settings one by one (so each is reported with its key),
/// then builds the problems configuration.
fn compile_problems(
    p: &crate::config::ProblemsConfig,
    issues: &mut Vec<ConfigIssue>,
) -> Option<crate::problems::manager::ProblemsConfig> {
    let before = issues.len();
    let mut push = |key: String, reason: String| issues.push(ConfigIssue { key, reason });
    if let Some(s) = p.template_similarity {
        if !(0.0..=1.0).contains(&s) {
            push(
                "problems.template_similarity".into(),
                format!("{s} is out of range 0.0..=1.0"),
            );
        }
    }
    if let Some(d) = p.depth {
        if !(3..=16).contains(&d) {
            push(
                "problems.depth".into(),
                format!("{d} is out of range 3..=16"),
            );
        }
    }
    for (i, m) in p.masks.iter().enumerate() {
        if let Err(e) = regex::Regex::new(m) {
            push(
                format!("problems.masks[{i}]"),
                format!("invalid regular expression: {e}"),
            );
        }
    }
    if issues.len() > before {
        return None;
    }
    match crate::problems::manager::ProblemsConfig::from_config(p) {
        Ok(c) => Some(c),
        Err(e) => {
            issues.push(ConfigIssue {
                key: "problems".into(),
                reason: e.to_string(),
            });
            None
        }
    }
}

/// Fingerprints are already FNV hashes: hash them as they are.
#[derive(Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub type FastHash = BuildHasherDefault<IdentityHasher>;
pub type FastMap<K, V> = HashMap<K, V, FastHash>;

/// What happened to an incident (the `type` suffix of the CloudEvent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Opened,
    Updated,
    Acknowledged,
    Resolved,
    Reopened,
    Merged,
    Closed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Updated => "updated",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Resolved => "resolved",
            EventKind::Reopened => "reopened",
            EventKind::Merged => "merged",
            EventKind::Closed => "closed",
        }
    }
}

/// One incident event. Its data is the incident as it stands after the call
/// that produced it: render it with [`Engine::incident`] before the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IncidentEvent {
    pub incident: IncidentId,
    pub kind: EventKind,
    /// 1 for `opened`, +1 per event: `<id>/<version>` identifies the event.
    pub version: u64,
    pub time: Timestamp,
}

/// Counters the shell turns into metrics and replay into summary.json.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Alert notifications received (firing and resolved).
    pub alerts: u64,
    /// Notifications that changed no alert's status: re-sends, duplicate
    /// deliveries, stale copies, resolutions of unknown alerts.
    pub deduplicated: u64,
    pub incidents_opened: u64,
    pub incidents_reopened: u64,
    pub incidents_merged: u64,
    /// Alerts held below a threshold that never reached it.
    pub noise_dropped: u64,
    /// Times an alert started flapping.
    pub flapping_started: u64,
    /// Acknowledge requests for alerts or incidents that could not take one.
    pub acknowledgements_ignored: u64,
}

/// Outcome of feeding one raw record.
#[derive(Debug)]
pub struct RecordOutcome {
    pub decoded: Decoded,
    /// Alert notifications the record carried (acknowledgements excluded).
    pub alerts: usize,
    pub events: Vec<IncidentEvent>,
}

/// What an operator command did. `events` holds the call's events even
/// when the command was refused: timers due by `now` fire first, and their
/// events must be published whatever the command's fate.
#[derive(Debug)]
#[must_use]
pub struct CommandOutcome {
    pub result: Result<(), CommandError>,
    pub events: Vec<IncidentEvent>,
}

impl CommandOutcome {
    /// The events, if the command was accepted (tests).
    pub fn accepted(self) -> Result<Vec<IncidentEvent>, CommandError> {
        self.result.map(|_| self.events)
    }
}

/// Why an operator command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    #[error("incident {id} was merged into {into}")]
    Merged { id: IncidentId, into: IncidentId },
    #[error("incident {id} is {status}: cannot {action}")]
    InvalidTransition {
        id: IncidentId,
        status: &'static str,
        action: &'static str,
    },
}

/// The engine. Same inputs in the same order give the same outputs.
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    /// Latest `now` seen; never goes backwards.
    pub(crate) clock: Timestamp,
    pub(crate) alerts: Tracked<Fingerprint, AlertState, FastHash>,
    pub(crate) groups: Tracked<std::sync::Arc<str>, Group, std::hash::RandomState>,
    pub(crate) incidents: Tracked<IncidentId, Incident, FastHash>,
    pub(crate) deadlines: Deadlines,
    /// service → alerts in active incidents on that service (topology candidates).
    pub(crate) topo_index: HashMap<String, Vec<Fingerprint>>,
    pub(crate) events: Vec<IncidentEvent>,
    /// Incidents changed in the current call, in order of first change.
    pub(crate) touched: Vec<IncidentId>,
    /// With [`Engine::coalesce_updates`]: incidents changed since their last
    /// event, waiting for [`Engine::take_updates`]; the list keeps the order
    /// of first change, the set which of them are still pending.
    pub(crate) pending_updates: (
        Vec<IncidentId>,
        std::collections::HashSet<IncidentId, FastHash>,
    ),
    pub(crate) coalesce_updates: bool,
    /// Incidents closed or merged since the last [`Engine::evict_final`]
    /// (so eviction does not scan every incident of every batch).
    pub(crate) finalized: Vec<IncidentId>,
    /// Final incidents not yet deleted by retention, by the time they
    /// ended (see [`retention`]).
    pub(crate) retired: std::collections::BTreeSet<(Timestamp, IncidentId)>,
    /// Incidents that ended since the last retention pass: they join
    /// `retired` at its end, so an incident is never deleted by the call
    /// that ended it (its last event must be rendered first, even when the
    /// clock jumps past its retention at once).
    pub(crate) retiring: Vec<(Timestamp, IncidentId)>,
    /// Incidents deleted by retention since the last
    /// [`Engine::take_changes`] (tracking only).
    pub(crate) expired: Vec<IncidentId>,
    /// When alerts and problems are next swept for retention.
    pub(crate) next_sweep: Timestamp,
    pub(crate) stats: Stats,
    pub(crate) problems: crate::problems::manager::Problems,
    /// Decodes records for [`Engine::handle`] (keeps re-sent alerts' label
    /// sets; the output is that of [`decode::decode`]).
    decoder: decode::Decoder,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            decoder: decode::Decoder::new(cfg.limits.clone()),
            problems: crate::problems::manager::Problems::new(cfg.problems.clone()),
            cfg,
            clock: Timestamp(0),
            alerts: Tracked::default(),
            groups: Tracked::default(),
            incidents: Tracked::default(),
            deadlines: Deadlines::default(),
            topo_index: HashMap::new(),
            events: Vec::new(),
            touched: Vec::new(),
            pending_updates: Default::default(),
            coalesce_updates: false,
            finalized: Vec::new(),
            retired: Default::default(),
            retiring: Vec::new(),
            expired: Vec::new(),
            next_sweep: Timestamp(0),
            stats: Stats::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Coalesces `updated` events: a call that changes an incident without a
    /// lifecycle event (a member joins, a member resolves, ...) no longer
    /// emits `updated` itself; [`Engine::take_updates`] emits one per
    /// incident changed since its last event. The daemon calls it once per
    /// batch, so an alert storm that adds 50 alerts to an incident within
    /// one batch publishes one `updated` (with all 50), not 50 — the
    /// notification grouping Alertmanager users expect. Lifecycle events
    /// (opened, resolved, ...) are never coalesced, and an event's data
    /// always includes every change before it. Off by default (replay, the
    /// tests): every call emits its own `updated`.
    pub fn coalesce_updates(&mut self, on: bool) {
        self.coalesce_updates = on;
    }

    /// One `updated` per incident changed since its last event (see
    /// [`Engine::coalesce_updates`]), timed at the engine clock. Call it
    /// before [`Engine::take_changes`], so a batch's state is never stored
    /// without the events that describe it.
    pub fn take_updates(&mut self) -> Vec<IncidentEvent> {
        let (order, mut pending) = std::mem::take(&mut self.pending_updates);
        for id in order {
            if pending.remove(&id) {
                self.emit(id, EventKind::Updated, self.clock);
            }
        }
        self.touched.clear();
        std::mem::take(&mut self.events)
    }

    /// Decodes one raw record and applies what it says.
    pub fn handle(&mut self, record: &[u8], now: Timestamp) -> RecordOutcome {
        let decoded = self.decoder.decode(record, now);
        self.handle_decoded(decoded, now)
    }

    /// Applies a record decoded at `now` with this engine's limits (the
    /// daemon decodes records on its fetch thread; see [`Engine::handle`]).
    pub fn handle_decoded(&mut self, mut decoded: Decoded, now: Timestamp) -> RecordOutcome {
        let signals = std::mem::take(&mut decoded.signals);
        let alerts = signals
            .iter()
            .filter(|s| matches!(s, Signal::Alert(_)))
            .count();
        let events = self.handle_signals(signals, now);
        RecordOutcome {
            decoded,
            alerts,
            events,
        }
    }

    /// Applies decoded signals at `now`. Timers due by `now` fire first.
    pub fn handle_signals(&mut self, signals: Vec<Signal>, now: Timestamp) -> Vec<IncidentEvent> {
        let now = self.advance(now);
        for s in signals {
            match s {
                Signal::Alert(a) => self.on_alert(a, now),
                Signal::Acknowledge { fingerprint } => self.on_acknowledge_alert(fingerprint, now),
            }
        }
        self.finish_call(now)
    }

    /// Fires every timer due by `now`.
    pub fn tick(&mut self, now: Timestamp) -> Vec<IncidentEvent> {
        let now = self.advance(now);
        self.finish_call(now)
    }

    /// Moves the clock past every pending timer (the end of a replay).
    pub fn flush(&mut self) -> Vec<IncidentEvent> {
        let mut all = Vec::new();
        while let Some(t) = self.deadlines.next_due() {
            all.extend(self.tick(t.max(self.clock)));
        }
        all
    }

    /// Acknowledges an incident (operator command).
    pub fn acknowledge(&mut self, id: IncidentId, now: Timestamp) -> CommandOutcome {
        let now = self.advance(now);
        let result = self.ack_incident(id, now).map(|_| ());
        CommandOutcome {
            result,
            events: self.finish_call(now),
        }
    }

    /// Resolves an incident by hand (operator command); still-firing alerts
    /// stay attached and a new firing episode reopens it.
    pub fn resolve(&mut self, id: IncidentId, now: Timestamp) -> CommandOutcome {
        let now = self.advance(now);
        let result = self.resolve_incident_by_hand(id, now).map(|_| ());
        CommandOutcome {
            result,
            events: self.finish_call(now),
        }
    }

    pub fn incident(&self, id: IncidentId) -> Option<&Incident> {
        self.incidents.get(&id)
    }

    /// Every incident, ordered by opening time then id.
    pub fn incidents_sorted(&self) -> Vec<&Incident> {
        let mut v: Vec<&Incident> = self.incidents.values().collect();
        v.sort_by_key(|i| (i.opened_at, i.id));
        v
    }

    pub fn alert(&self, fp: Fingerprint) -> Option<&AlertState> {
        self.alerts.get(&fp)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// (alerts tracked, alerts flapping): an O(alerts) scan, for gauges.
    pub fn alert_gauges(&self) -> (usize, usize) {
        (
            self.alerts.len(),
            self.alerts.values().filter(|a| a.flapping).count(),
        )
    }

    /// Number of alerts the engine tracks.
    pub fn alert_count(&self) -> usize {
        self.alerts.len()
    }

    fn advance(&mut self, now: Timestamp) -> Timestamp {
        if now > self.clock {
            self.clock = now;
        }
        self.run_deadlines(self.clock);
        self.expire(self.clock);
        self.clock
    }

    fn run_deadlines(&mut self, now: Timestamp) {
        while let Some((at, d)) = self.deadlines.pop_due(now) {
            match d {
                Deadline::AlertExpiry(fp) => self.on_expiry(fp, at),
                Deadline::FlapCheck(fp) => self.on_flap_check(fp, at),
                Deadline::PendingExpiry(fp) => self.on_pending_expiry(fp, at),
                Deadline::IncidentClose(id) => self.on_close(id, at),
            }
        }
    }

    /// Emits `updated` for incidents changed without a lifecycle event (or,
    /// coalescing, leaves them pending for [`Engine::take_updates`]).
    fn finish_call(&mut self, now: Timestamp) -> Vec<IncidentEvent> {
        let touched = std::mem::take(&mut self.touched);
        for id in touched {
            let had_event = self.events.iter().any(|e| e.incident == id);
            if had_event {
                // Its data, rendered after this call, shows every change.
                self.pending_updates.1.remove(&id);
            } else if !self.coalesce_updates {
                self.emit(id, EventKind::Updated, now);
            } else if self.pending_updates.1.insert(id) {
                self.pending_updates.0.push(id);
            }
        }
        self.touched.clear();
        std::mem::take(&mut self.events)
    }

    /// Records an event, bumping the incident's version.
    pub(crate) fn emit(&mut self, id: IncidentId, kind: EventKind, time: Timestamp) {
        if let Some(inc) = self.incidents.get_mut(&id) {
            inc.version += 1;
            self.events.push(IncidentEvent {
                incident: id,
                kind,
                version: inc.version,
                time,
            });
            if !self.touched.contains(&id) {
                self.touched.push(id);
            }
        }
    }

    /// Marks an incident changed; an `updated` event follows unless the call
    /// emits a lifecycle event for it.
    pub(crate) fn touch(&mut self, id: IncidentId) {
        if !self.touched.contains(&id) {
            self.touched.push(id);
        }
    }
}

#[cfg(test)]
mod expiry_tests;
#[cfg(test)]
mod tests;
