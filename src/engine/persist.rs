//! How the engine's state leaves and re-enters memory.
//!
//! The daemon turns tracking on; after each batch it takes the keys of the
//! entities the batch wrote ([`Engine::take_changes`]) and persists them in
//! the batch's store transaction. Closed and merged incidents never change
//! again: once persisted they are evicted from memory. On start,
//! [`Engine::restore`] rebuilds the engine from the stored entities,
//! re-deriving every index (timers, topology candidates).

use std::sync::Arc;

use crate::alert::{AlertStatus, Fingerprint, Timestamp};
use crate::engine::deadlines::Deadline;
use crate::engine::state::{AlertState, Group, Incident, IncidentId};
use crate::engine::{rules, Engine, EngineConfig, Stats};
use crate::problems::miner::MinerState;

/// Keys written since the last call; a key whose entity is gone was deleted.
#[derive(Debug, Default)]
pub struct Changes {
    pub alerts: Vec<Fingerprint>,
    pub groups: Vec<Arc<str>>,
    pub incidents: Vec<IncidentId>,
    /// Changed members (incident, position), stored one row each.
    pub members: Vec<(IncidentId, u32)>,
    pub problems: Vec<crate::problems::state::ProblemId>,
    /// Incidents added to problems (problem, position), stored one row each.
    pub problem_incidents: Vec<(crate::problems::state::ProblemId, u32)>,
    pub signatures: Vec<String>,
    /// Lines fed to the template miner, in order (appended to the store).
    pub mined: Vec<String>,
    /// Incidents deleted by retention: the store deletes their rows and
    /// their members' (see [`crate::engine::retention`]).
    pub expired_incidents: Vec<IncidentId>,
    /// Enough lines were fed to the miner since its last snapshot: the
    /// store replaces the snapshot with the miner's state now
    /// ([`Engine::miner_state`]) and drops the lines it covers.
    pub miner_snapshot: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.groups.is_empty()
            && self.incidents.is_empty()
            && self.problems.is_empty()
            && self.problem_incidents.is_empty()
            && self.signatures.is_empty()
            && self.mined.is_empty()
            && self.expired_incidents.is_empty()
            && !self.miner_snapshot
    }
}

impl Engine {
    /// Records which entities each call writes (off by default).
    pub fn set_tracking(&mut self, on: bool) {
        self.alerts.set_tracking(on);
        self.groups.set_tracking(on);
        self.incidents.set_tracking(on);
        self.problems.set_tracking(on);
    }

    pub fn take_changes(&mut self) -> Changes {
        debug_assert!(
            self.pending_updates.1.is_empty(),
            "take_updates() comes first: stored state must not outrun its events"
        );
        #[cfg(debug_assertions)]
        self.assert_live_members();
        let (problems, signatures) = self.problems.take_dirty();
        let incidents = self.incidents.take_dirty();
        let mut members = Vec::new();
        for id in &incidents {
            if let Some(inc) = self.incidents.get_mut_untracked(id) {
                members.extend(inc.take_changed_members().into_iter().map(|i| (*id, i)));
            }
        }
        let mut c = Changes {
            alerts: self.alerts.take_dirty(),
            groups: self.groups.take_dirty(),
            incidents,
            members,
            problems,
            problem_incidents: self.problems.take_joined(),
            signatures,
            mined: self.problems.take_mined(),
            expired_incidents: std::mem::take(&mut self.expired),
            miner_snapshot: self.miner_snapshot_due(),
        };
        if c.miner_snapshot {
            self.problems.snapshot_taken();
        }
        // Sorted: the store writes in key order, and the order is reproducible.
        c.alerts.sort();
        c.groups.sort();
        c.incidents.sort();
        c.members.sort();
        c
    }

    /// What loading relies on (see `Member`): a live member's `last_seen`
    /// and `occurrences` equal its alert's. O(members): debug builds only.
    #[cfg(debug_assertions)]
    fn assert_live_members(&self) {
        for inc in self.incidents.values() {
            if inc.status.is_final() {
                continue;
            }
            for m in &inc.members {
                if let Some(a) = self.alerts.get(&m.fingerprint) {
                    if a.incident == Some(inc.id) {
                        assert!(
                            a.last_seen == m.last_seen && a.occurrences == m.occurrences,
                            "incident {} member {}: last_seen {:?}/{:?}, occurrences {}/{} (member/alert)",
                            inc.id,
                            m.fingerprint,
                            m.last_seen,
                            a.last_seen,
                            m.occurrences,
                            a.occurrences
                        );
                    }
                }
            }
        }
    }

    pub fn group(&self, key: &str) -> Option<&Group> {
        self.groups.get(key)
    }

    pub fn problem_signature(&self, key: &str) -> Option<&crate::problems::state::Signature> {
        self.problems.signature(key)
    }

    /// Restores problem records and the miner: from its snapshot, if one
    /// was taken, then by re-feeding the lines fed after it. Returns how
    /// many lines were re-fed, or why the snapshot cannot be used.
    pub fn restore_problems<'a>(
        &mut self,
        problems: Vec<crate::problems::state::Problem>,
        signatures: Vec<crate::problems::state::Signature>,
        snapshot: Option<MinerState>,
        mined: impl IntoIterator<Item = &'a str>,
    ) -> Result<usize, String> {
        self.problems.restore(problems, signatures);
        if let Some(state) = snapshot {
            self.problems.restore_miner(state)?;
        }
        let fed = self.problems.refeed(mined);
        // Restoring is not a change to persist.
        self.problems.take_dirty();
        Ok(fed)
    }

    /// Final incidents kept by retention (id, when it ended), as stored:
    /// each is deleted once retention runs out.
    pub fn restore_retired(&mut self, retired: impl IntoIterator<Item = (Timestamp, IncidentId)>) {
        self.retired.extend(retired);
    }

    /// The miner's learned state, for its snapshot in the store.
    pub fn miner_state(&self) -> MinerState {
        self.problems.miner_state()
    }

    /// Whether enough lines were fed to the miner since its last snapshot
    /// (or since the log a restore re-fed began) for a new one.
    pub fn miner_snapshot_due(&self) -> bool {
        self.problems.unsnapshotted() >= self.cfg.retention.miner_snapshot_lines.max(1)
    }

    /// A snapshot of the miner's state was stored outside a batch (on
    /// load): the lines before it need no re-feeding any more.
    pub fn miner_snapshot_stored(&mut self) {
        self.problems.snapshot_taken();
    }

    /// Drops closed and merged incidents from memory (they are persisted
    /// and immutable). Returns how many were evicted.
    pub fn evict_final(&mut self) -> usize {
        let mut evicted = 0;
        for id in std::mem::take(&mut self.finalized) {
            // Final states are final: no check of the status needed, but an
            // id is listed once per transition and evicted once.
            if self.incidents.evict(&id).is_some() {
                evicted += 1;
            }
        }
        debug_assert!(
            self.incidents.values().all(|i| !i.status.is_final()),
            "an incident became final without being listed in `finalized`"
        );
        evicted
    }

    /// Incidents held in memory (open, acknowledged, resolved).
    pub fn incident_count(&self) -> usize {
        self.incidents.len()
    }

    /// Rebuilds an engine from persisted entities.
    pub fn restore(
        cfg: EngineConfig,
        alerts: Vec<AlertState>,
        groups: Vec<Group>,
        incidents: Vec<Incident>,
        clock: Timestamp,
        stats: Stats,
    ) -> Engine {
        let mut e = Engine::new(cfg);
        e.clock = clock;
        e.stats = stats;
        e.schedule_sweep_after(clock);
        for mut g in groups {
            // Config may have changed: find the rule by the key's name prefix.
            let name = g.key.split('\u{1f}').next().unwrap_or_default();
            g.rule = e
                .cfg
                .rules
                .iter()
                .position(|r| r.name == name)
                .unwrap_or(e.cfg.rules.len() - 1);
            e.groups.insert(g.key.clone(), g);
        }
        for inc in incidents {
            if inc.status == crate::engine::state::IncidentStatus::Resolved {
                if let Some(r) = inc.resolved_at {
                    let at = inc.close_due(r);
                    e.deadlines.schedule(at, Deadline::IncidentClose(inc.id));
                }
            }
            if !inc.status.is_final() {
                e.incidents.insert(inc.id, inc);
            }
        }
        for mut a in alerts {
            let fp = a.fingerprint;
            a.rule = rules::select(&e.cfg.rules, &a.labels);
            if let Some((k, _)) = e.groups.get_key_value(&*a.group_key) {
                a.group_key = k.clone();
            }
            match a.status {
                AlertStatus::Firing => {
                    if let Some(x) = a.expires_at {
                        a.scheduled_expiry = Some(x);
                        e.deadlines.schedule(x, Deadline::AlertExpiry(fp));
                    }
                }
                AlertStatus::Resolved => {
                    if let (true, Some(r)) = (a.pending, a.resolved_at) {
                        let w = e.cfg.rules[a.rule].window;
                        e.deadlines.schedule(r.plus(w), Deadline::PendingExpiry(fp));
                    }
                }
            }
            if a.flapping {
                if let Some(first) = a.changes.first() {
                    e.deadlines
                        .schedule(first.plus(e.cfg.flap_window), Deadline::FlapCheck(fp));
                }
            }
            let active = a
                .incident
                .and_then(|i| e.incidents.get(&i))
                .is_some_and(|i| i.status.is_active());
            e.alerts.insert(fp, a);
            if active {
                if let Some(svc) = e.service_of(fp) {
                    e.topo_index.entry(svc).or_default().push(fp);
                }
            }
        }
        // Member rows are not rewritten for a re-send (see `Member`).
        let alerts = &e.alerts;
        for inc in e.incidents.values_mut_untracked() {
            inc.refresh_live_members(|fp| {
                alerts
                    .get(&fp)
                    .map(|a| (a.incident, a.last_seen, a.occurrences))
            });
        }
        e
    }
}
