//! Incident lifecycle: open → acknowledged → resolved → closed, or merged.
//!
//! An incident resolves when all its alerts have resolved and none is
//! flapping; it closes `reopen_window` after resolution, and until then a
//! new firing episode of one of its groups reopens it. Severity is the max of
//! its alerts, priority the best, the title comes from the most severe alert
//! (ties: the earliest, then the smaller fingerprint).

use crate::alert::{AlertStatus, Fingerprint, Timestamp};
use crate::engine::deadlines::Deadline;
use crate::engine::state::{Incident, IncidentId, IncidentStatus};
use crate::engine::{CommandError, Engine, EventKind};

impl Engine {
    /// A member alert resolved at `at`.
    pub(crate) fn member_resolved(
        &mut self,
        id: IncidentId,
        fp: Fingerprint,
        at: Timestamp,
        t: Timestamp,
    ) {
        let flapping = self.alerts.get(&fp).is_some_and(|a| a.flapping);
        let last_seen = self.alerts.get(&fp).map(|a| a.last_seen);
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        if inc.status.is_final() {
            return;
        }
        let mut was_firing = false;
        if let Some(m) = inc.member_mut(fp) {
            was_firing = m.status == AlertStatus::Firing;
            m.status = AlertStatus::Resolved;
            m.resolved_at = Some(at);
            if let Some(ls) = last_seen {
                m.last_seen = ls;
            }
        }
        if was_firing {
            inc.firing = inc.firing.saturating_sub(1);
        }
        if !inc.status.is_active() {
            return;
        }
        if !flapping {
            self.touch(id);
        }
        self.check_incident_resolved(id, t);
    }

    /// Resolves the incident if every member has resolved and none flaps.
    pub(crate) fn check_incident_resolved(&mut self, id: IncidentId, t: Timestamp) {
        let Some(inc) = self.incidents.get(&id) else {
            return;
        };
        if !inc.status.is_active() || inc.members.is_empty() || inc.firing > 0 || inc.flapping {
            return;
        }
        let last = inc.members.iter().filter_map(|m| m.resolved_at).max();
        let at = last.unwrap_or(t).max(inc.opened_at);
        let inc = self.incidents.get_mut(&id).expect("checked above");
        inc.status = IncidentStatus::Resolved;
        inc.resolved_at = Some(at);
        let close_at = inc.close_due(at);
        self.deadlines
            .schedule(close_at.max(t), Deadline::IncidentClose(id));
        self.emit(id, EventKind::Resolved, t);
    }

    pub(crate) fn reopen(&mut self, id: IncidentId, t: Timestamp) {
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        if inc.status != IncidentStatus::Resolved {
            return;
        }
        inc.status = IncidentStatus::Open;
        inc.resolved_at = None;
        inc.reopened += 1;
        self.stats.incidents_reopened += 1;
        self.emit(id, EventKind::Reopened, t);
    }

    /// The close timer fired: a still-resolved incident closes and its
    /// groups and alerts are released.
    pub(crate) fn on_close(&mut self, id: IncidentId, at: Timestamp) {
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        let due = inc.resolved_at.map(|r| inc.close_due(r));
        if inc.status != IncidentStatus::Resolved || due.is_none_or(|d| d > at) {
            return;
        }
        inc.status = IncidentStatus::Closed;
        inc.closed_at = Some(at);
        inc.mark_all_members();
        self.finalized.push(id);
        let groups = inc.groups.clone();
        let members: Vec<Fingerprint> = inc.members.iter().map(|m| m.fingerprint).collect();
        self.retire(id, at);
        let mut still_firing = Vec::new();
        for key in groups {
            if let Some(g) = self.groups.get_mut(key.as_str()) {
                if g.incident == Some(id) {
                    g.incident = None;
                }
                if g.incident.is_none() && g.pending.is_empty() {
                    self.groups.remove(key.as_str());
                }
            }
        }
        for fp in members {
            let forget = match self.alerts.get_mut(&fp) {
                Some(a) if a.incident == Some(id) => {
                    a.incident = None;
                    if a.status == AlertStatus::Firing {
                        still_firing.push(fp);
                    }
                    a.status == AlertStatus::Resolved && !a.flapping
                }
                _ => false,
            };
            if forget {
                self.alerts.remove(&fp);
            }
        }
        // Settled: its final problem match, in its closed record and event.
        self.classify_final(id, at);
        self.emit(id, EventKind::Closed, at);
        // An alert still firing when its (hand-resolved) incident closes is
        // not orphaned: it starts a new membership, like a new alert.
        for fp in still_firing {
            if let Some(a) = self.alerts.get_mut(&fp) {
                a.first_seen = at;
                a.occurrences = 1;
                a.fired_at = at;
            }
            self.attach(fp, at);
        }
    }

    /// A held alert's window ran out after it resolved: it was noise.
    pub(crate) fn on_pending_expiry(&mut self, fp: Fingerprint, at: Timestamp) {
        let Some(a) = self.alerts.get(&fp) else {
            return;
        };
        if !a.pending || a.status != AlertStatus::Resolved {
            return;
        }
        let window = self.cfg.rules[a.rule].window;
        if a.resolved_at.is_none_or(|r| r.plus(window) > at) {
            return;
        }
        let key = a.group_key.clone();
        self.alerts.remove(&fp);
        self.stats.noise_dropped += 1;
        if let Some(g) = self.groups.get_mut(&*key) {
            g.pending.retain(|p| *p != fp);
            if g.pending.is_empty() && g.incident.is_none() {
                self.groups.remove(&*key);
            }
        }
    }

    /// PagerDuty `acknowledge`: acknowledges the incident holding the alert.
    pub(crate) fn on_acknowledge_alert(&mut self, fp: Fingerprint, t: Timestamp) {
        let id = self.alerts.get(&fp).and_then(|a| a.incident);
        match id {
            Some(id) if self.ack_incident(id, t).is_ok() => {}
            _ => self.stats.acknowledgements_ignored += 1,
        }
    }

    pub(crate) fn ack_incident(
        &mut self,
        id: IncidentId,
        t: Timestamp,
    ) -> Result<(), CommandError> {
        let inc = self
            .incidents
            .get_mut(&id)
            .ok_or(CommandError::NotFound(id))?;
        match inc.status {
            IncidentStatus::Open => {
                inc.status = IncidentStatus::Acknowledged;
                if inc.acknowledged_at.is_none() {
                    inc.acknowledged_at = Some(t);
                }
                self.emit(id, EventKind::Acknowledged, t);
                Ok(())
            }
            IncidentStatus::Acknowledged => Ok(()),
            _ => Err(refused(inc, "acknowledge")),
        }
    }

    pub(crate) fn resolve_incident_by_hand(
        &mut self,
        id: IncidentId,
        t: Timestamp,
    ) -> Result<(), CommandError> {
        let inc = self
            .incidents
            .get_mut(&id)
            .ok_or(CommandError::NotFound(id))?;
        match inc.status {
            IncidentStatus::Open | IncidentStatus::Acknowledged => {
                inc.status = IncidentStatus::Resolved;
                inc.resolved_at = Some(t);
                let close_at = inc.close_due(t);
                self.deadlines
                    .schedule(close_at, Deadline::IncidentClose(id));
                self.emit(id, EventKind::Resolved, t);
                Ok(())
            }
            IncidentStatus::Resolved => Ok(()),
            _ => Err(refused(inc, "resolve")),
        }
    }

    pub(crate) fn set_member_flapping(&mut self, id: IncidentId, fp: Fingerprint, flapping: bool) {
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        if let Some(m) = inc.member_mut(fp) {
            m.flapping = flapping;
            inc.flapping = inc.members.iter().any(|m| m.flapping);
            self.touch(id);
        }
    }

    /// Recomputes title, severity, priority and root cause from every member
    /// (after a member's labels changed): O(members), rare.
    pub(crate) fn recompute_derived(&mut self, id: IncidentId) {
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        inc.top = None;
        inc.root_cause = None;
        inc.priority = crate::engine::priority::Priority::P5;
        inc.flapping = false;
        let fps: Vec<Fingerprint> = inc.members.iter().map(|m| m.fingerprint).collect();
        for fp in fps {
            self.update_derived(id, fp);
        }
    }

    /// Updates title, severity, priority and root cause for a new member:
    /// O(1), since a new member can only take the top spot from the current one.
    pub(crate) fn update_derived(&mut self, id: IncidentId, fp: Fingerprint) {
        let topo = &self.cfg.topology;
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        let Some(m) = inc.member(fp) else { return };
        let rank = |m: &crate::engine::state::Member| {
            (
                m.severity,
                std::cmp::Reverse(m.first_seen),
                std::cmp::Reverse(m.fingerprint),
            )
        };
        let new_rank = rank(m);
        let new_prio = m.priority;
        let new_depth = topo.depth(m.labels.get(&topo.label).unwrap_or_default());
        let top_rank = inc.top.and_then(|t| inc.member(t)).map(rank);
        let beats_top = top_rank.is_none_or(|r| new_rank > r);
        let root_rank = inc.root_cause.and_then(|r| inc.member(r)).map(|r| {
            (
                topo.depth(r.labels.get(&topo.label).unwrap_or_default()),
                rank(r).1,
                rank(r).2,
            )
        });
        let beats_root = new_depth.is_some()
            && root_rank.is_none_or(|r| (new_depth, new_rank.1, new_rank.2) > r);
        if beats_top {
            let m = inc.member(fp).expect("looked up above");
            let severity = m.severity;
            let title = match (m.labels.get("alertname"), m.summary.as_deref()) {
                (Some(n), Some(s)) if !s.is_empty() => format!("{n}: {s}"),
                (Some(n), _) => n.to_string(),
                (None, Some(s)) => s.to_string(),
                (None, None) => format!("alert {}", m.fingerprint),
            };
            inc.severity = severity;
            inc.title = title;
            inc.top = Some(fp);
        }
        if beats_root {
            inc.root_cause = Some(fp);
        }
        if inc.members.len() == 1 || new_prio < inc.priority {
            inc.priority = new_prio;
        }
        if inc
            .members
            .iter()
            .any(|m| m.fingerprint == fp && m.flapping)
        {
            inc.flapping = true;
        }
    }
}

/// Why an operator command cannot apply to an incident in its status.
fn refused(inc: &Incident, action: &'static str) -> CommandError {
    match inc.status {
        IncidentStatus::Merged => CommandError::Merged {
            id: inc.id,
            into: inc.merged_into.unwrap_or_default(),
        },
        s => CommandError::InvalidTransition {
            id: inc.id,
            status: s.as_str(),
            action,
        },
    }
}
