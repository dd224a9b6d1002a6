//! Correlation: which incident a newly firing alert belongs to.
//!
//! In order:
//! 1. its current incident, if still open, acknowledged or resolved within
//!    the reopen window (a resolved one reopens);
//! 2. its group's current incident (same rule and group key);
//! 3. an active incident holding an alert on a linked service that fired
//!    within `topology.window` (the earliest opened, if several);
//! 4. otherwise it is held in its group until `min_alerts` distinct alerts
//!    were firing within `window`; then one incident opens with all of them.
//!
//! After joining, incidents linked through the new alert merge into the
//! earliest opened one (ties: the smaller id). Linked alerts arriving at the
//! same instant join whichever incident opened first in processing order:
//! opening a second incident only to merge it at once would page twice.

use crate::alert::{AlertStatus, Fingerprint, Timestamp};
use crate::engine::state::{Group, Incident, IncidentId, IncidentStatus, JoinReason, Member};
use crate::engine::{Engine, EventKind};

impl Engine {
    /// Places a newly firing alert (first fire or new episode).
    pub(crate) fn attach(&mut self, fp: Fingerprint, t: Timestamp) {
        let Some(st) = self.alerts.get(&fp) else {
            return;
        };
        let (current, pending, key, rule) =
            (st.incident, st.pending, st.group_key.clone(), st.rule);

        if let Some(id) = current {
            if self
                .incidents
                .get(&id)
                .is_some_and(|i| !i.status.is_final())
            {
                self.rejoin(id, fp, t);
                self.merge_linked(id, fp, t);
                return;
            }
            if let Some(st) = self.alerts.get_mut(&fp) {
                st.incident = None;
            }
        }
        if pending {
            self.evaluate_group(&key, t);
            return;
        }
        let group_incident = self.groups.get(&*key).and_then(|g| g.incident);
        if let Some(id) = group_incident {
            if self
                .incidents
                .get(&id)
                .is_some_and(|i| !i.status.is_final())
            {
                self.join(id, fp, JoinReason::Group, t);
                if self
                    .incidents
                    .get(&id)
                    .is_some_and(|i| i.status == IncidentStatus::Resolved)
                {
                    self.reopen(id, t);
                }
                self.merge_linked(id, fp, t);
                return;
            }
        }
        let group = self.groups.get_or_insert_with(key.clone(), || Group {
            rule,
            key: key.clone(),
            incident: None,
            pending: Vec::new(),
        });
        group.incident = None;

        // Topology: join an earlier incident on a linked service.
        let cands = self.topology_candidates(fp, t, None);
        if let Some(&(_, target)) = cands.first() {
            self.join(target, fp, JoinReason::Topology, t);
            self.link_group(&key, target, t);
            self.merge_linked(target, fp, t);
            return;
        }

        if let Some(g) = self.groups.get_mut(&*key) {
            g.pending.push(fp);
        }
        if let Some(st) = self.alerts.get_mut(&fp) {
            st.pending = true;
        }
        self.evaluate_group(&key, t);
    }

    /// Opens the group's incident once enough of its held alerts were
    /// firing within the rule's window.
    pub(crate) fn evaluate_group(&mut self, key: &str, t: Timestamp) {
        let Some(g) = self.groups.get(key) else {
            return;
        };
        let rule = &self.cfg.rules[g.rule];
        let floor = t.minus(rule.window);
        let live = g
            .pending
            .iter()
            .filter(|fp| {
                self.alerts.get(fp).is_some_and(|a| {
                    a.status == AlertStatus::Firing || a.resolved_at.is_some_and(|r| r >= floor)
                })
            })
            .count();
        if live < rule.min_alerts {
            return;
        }
        let rule_name = rule.name.clone();
        let reopen = rule.reopen_window;
        let members = g.pending.clone();
        let group_labels = match g.pending.first().and_then(|fp| self.alerts.get(fp)) {
            Some(a) => rule.group_labels(&a.labels),
            None => Vec::new(),
        };
        let id = self.new_incident_id(&rule_name, key, t);
        let inc = Incident {
            id,
            status: IncidentStatus::Open,
            merged_into: None,
            rule: rule_name,
            group: group_labels,
            groups: vec![key.to_string()],
            title: String::new(),
            severity: crate::alert::Severity::None,
            priority: crate::engine::priority::Priority::P5,
            opened_at: t,
            acknowledged_at: None,
            resolved_at: None,
            closed_at: None,
            final_at: None,
            reopen_window_ms: u64::try_from(reopen.as_millis()).unwrap_or(u64::MAX),
            reopened: 0,
            flapping: false,
            root_cause: None,
            top: None,
            firing: 0,
            members: Vec::new(),
            changed_members: Vec::new(),
            member_index: Default::default(),
            version: 0,
            problem_id: None,
            known_error: None,
        };
        self.incidents.insert(id, inc);
        self.stats.incidents_opened += 1;
        if let Some(g) = self.groups.get_mut(key) {
            g.pending.clear();
            g.incident = Some(id);
        }
        self.emit(id, EventKind::Opened, t);
        for fp in &members {
            if let Some(a) = self.alerts.get_mut(fp) {
                a.pending = false;
            }
            self.join(id, *fp, JoinReason::Group, t);
        }
        self.classify(id, t);
        // All members resolved already (threshold met by recent ones)?
        self.check_incident_resolved(id, t);
        for fp in members {
            if self
                .incidents
                .get(&id)
                .is_some_and(|i| i.status.is_active())
            {
                self.merge_linked(id, fp, t);
            }
        }
    }

    /// Deterministic id from rule, group key and opening time.
    fn new_incident_id(&self, rule: &str, key: &str, t: Timestamp) -> IncidentId {
        use crate::alert::{fnv1a, fnv1a_64};
        let mut h = fnv1a_64(rule.as_bytes());
        h = fnv1a(h, &[0xFF]);
        h = fnv1a(h, key.as_bytes());
        h = fnv1a(h, &[0xFF]);
        h = fnv1a(h, &t.0.to_be_bytes());
        while self.incidents.contains_key(&IncidentId(h)) {
            h = fnv1a(h, &[0x01]);
        }
        IncidentId(h)
    }

    /// Adds an alert to an incident as a member (or refreshes its membership).
    pub(crate) fn join(
        &mut self,
        id: IncidentId,
        fp: Fingerprint,
        reason: JoinReason,
        t: Timestamp,
    ) {
        let Some(st) = self.alerts.get_mut(&fp) else {
            return;
        };
        st.incident = Some(id);
        st.pending = false;
        let member = Member {
            fingerprint: fp,
            labels: st.labels.clone(),
            status: st.status,
            first_seen: st.first_seen,
            last_seen: st.last_seen,
            occurrences: st.occurrences,
            severity: st.severity,
            priority: st.priority,
            summary: st.summary.clone(),
            flapping: st.flapping,
            joined: reason,
            resolved_at: st.resolved_at,
        };
        let service = self.service_of(fp);
        let Some(inc) = self.incidents.get_mut(&id) else {
            return;
        };
        let firing_now = member.status == AlertStatus::Firing;
        let was_firing = match inc.member_mut(fp) {
            Some(m) => {
                let (joined, was) = (m.joined, m.status == AlertStatus::Firing);
                *m = member;
                m.joined = joined;
                Some(was)
            }
            None => {
                inc.push_member(member);
                None
            }
        };
        match (was_firing.unwrap_or(false), firing_now) {
            (false, true) => inc.firing += 1,
            (true, false) => inc.firing = inc.firing.saturating_sub(1),
            _ => {}
        }
        if let Some(svc) = service {
            let list = self.topo_index.entry(svc).or_default();
            if !list.contains(&fp) {
                list.push(fp);
            }
        }
        if was_firing.is_none() {
            self.update_derived(id, fp);
        }
        self.touch(id);
        let _ = t;
    }

    /// A member of a not-yet-final incident fires again: refresh it, and
    /// reopen the incident if it was resolved.
    fn rejoin(&mut self, id: IncidentId, fp: Fingerprint, t: Timestamp) {
        let flapping = self.alerts.get(&fp).is_some_and(|a| a.flapping);
        let status = self.incidents.get(&id).map(|i| i.status);
        let reason = self
            .incidents
            .get(&id)
            .and_then(|i| i.member(fp))
            .map_or(JoinReason::Group, |m| m.joined);
        self.join(id, fp, reason, t);
        if status == Some(IncidentStatus::Resolved) {
            self.reopen(id, t);
        } else if flapping {
            // A flap inside an ongoing incident is not news.
            self.touched.retain(|x| *x != id);
        }
    }

    /// Points a group at an incident (after a topology join), bringing its
    /// held alerts along.
    fn link_group(&mut self, key: &str, id: IncidentId, t: Timestamp) {
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        g.incident = Some(id);
        let held = std::mem::take(&mut g.pending);
        if let Some(inc) = self.incidents.get_mut(&id) {
            if !inc.groups.iter().any(|k| k == key) {
                inc.groups.push(key.to_string());
            }
        }
        for fp in held {
            self.join(id, fp, JoinReason::Group, t);
        }
    }

    pub(crate) fn service_of(&self, fp: Fingerprint) -> Option<String> {
        let topo = &self.cfg.topology;
        if topo.is_empty() {
            return None;
        }
        let svc = self.alerts.get(&fp)?.labels.get(&topo.label)?;
        topo.knows(svc).then(|| svc.to_string())
    }

    /// Active incidents (other than `exclude`) holding an alert on a service
    /// linked to `fp`'s, fired within the topology window of `t`; sorted by
    /// (opened_at, id).
    fn topology_candidates(
        &mut self,
        fp: Fingerprint,
        t: Timestamp,
        exclude: Option<IncidentId>,
    ) -> Vec<(Timestamp, IncidentId)> {
        let Some(svc) = self.service_of(fp) else {
            return Vec::new();
        };
        let topo = &self.cfg.topology;
        let floor = t.minus(topo.window);
        let me = &self.alerts[&fp];
        let mut out: Vec<(Timestamp, IncidentId)> = Vec::new();
        // Only services with alerts in the index can hold candidates: ask
        // about those rather than walk every service linked to `svc`.
        let linked: Vec<String> = topo
            .linked_among(&svc, self.topo_index.keys().map(String::as_str))
            .into_iter()
            .map(str::to_string)
            .collect();
        for other in linked {
            let Some(list) = self.topo_index.get_mut(&other) else {
                continue;
            };
            list.retain(|ofp| {
                let Some(a) = self.alerts.get(ofp) else {
                    return false;
                };
                let Some(inc) = a.incident.and_then(|i| self.incidents.get(&i)) else {
                    return false;
                };
                if !inc.status.is_active() || a.fired_at < floor {
                    return false;
                }
                let equal = topo
                    .equal
                    .iter()
                    .all(|l| a.labels.get(l) == me.labels.get(l));
                if equal && Some(inc.id) != exclude && !out.iter().any(|(_, i)| *i == inc.id) {
                    out.push((inc.opened_at, inc.id));
                }
                true
            });
            // An emptied list is dropped, so the index holds only services
            // with alerts and the question above stays small.
            if list.is_empty() {
                self.topo_index.remove(&other);
            }
        }
        out.sort();
        out
    }

    /// Merges every active incident linked through `fp` with `id`.
    fn merge_linked(&mut self, id: IncidentId, fp: Fingerprint, t: Timestamp) {
        if !self
            .incidents
            .get(&id)
            .is_some_and(|i| i.status.is_active())
        {
            return;
        }
        let mut cands = self.topology_candidates(fp, t, Some(id));
        if cands.is_empty() {
            return;
        }
        let me = &self.incidents[&id];
        cands.push((me.opened_at, id));
        cands.sort();
        let survivor = cands[0].1;
        for &(_, loser) in &cands[1..] {
            self.merge(loser, survivor, t);
        }
    }

    /// Merges `loser` into `survivor`: members and groups move over.
    pub(crate) fn merge(&mut self, loser: IncidentId, survivor: IncidentId, t: Timestamp) {
        if loser == survivor {
            return;
        }
        let Some(l) = self.incidents.get_mut(&loser) else {
            return;
        };
        if l.status.is_final() {
            return;
        }
        l.status = IncidentStatus::Merged;
        l.merged_into = Some(survivor);
        l.mark_all_members();
        self.finalized.push(loser);
        let members: Vec<Fingerprint> = l.members.iter().map(|m| m.fingerprint).collect();
        let groups = l.groups.clone();
        self.retire(loser, t);
        self.stats.incidents_merged += 1;
        for fp in members {
            if self
                .alerts
                .get(&fp)
                .is_some_and(|a| a.incident == Some(loser))
            {
                self.join(survivor, fp, crate::engine::state::JoinReason::Merge, t);
            }
        }
        for key in groups {
            if let Some(g) = self.groups.get_mut(key.as_str()) {
                if g.incident == Some(loser) {
                    g.incident = Some(survivor);
                }
            }
            if let Some(s) = self.incidents.get_mut(&survivor) {
                if !s.groups.contains(&key) {
                    s.groups.push(key);
                }
            }
        }
        self.emit(loser, EventKind::Merged, t);
        // The survivor may have been resolved while the loser was active.
        if self
            .incidents
            .get(&survivor)
            .is_some_and(|s| s.status == IncidentStatus::Resolved)
        {
            let any_firing = self.incidents[&survivor]
                .members
                .iter()
                .any(|m| m.status == AlertStatus::Firing);
            if any_firing {
                self.reopen(survivor, t);
            }
        }
        self.touch(survivor);
    }
}
