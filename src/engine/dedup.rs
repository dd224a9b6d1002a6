//! Deduplication: one state per alert identity.
//!
//! Rules, with `t` the engine time of the notification:
//! - a firing notification for a firing alert at or before its last accepted
//!   firing time is a duplicate delivery and changes nothing; a later one is a
//!   re-send (occurrences + 1, expiry pushed back);
//! - a firing notification for a resolved alert starts a new episode unless it
//!   is stale: at or before the resolution, or a copy of the very episode the
//!   sender itself resolved (same `startsAt`);
//! - a resolved notification resolves a firing alert unless it is older than
//!   the current episode; for an unknown or resolved alert it changes nothing;
//! - a firing alert not re-sent resolves at its expiry, read as its sender
//!   means it (the format is known per alert): a future `endsAt` sent with
//!   it; else, from the last notification, `resolve_timeout` for API v2
//!   (Prometheus, whose `endsAt` is normally there), `webhook_resolve_timeout`
//!   for notifier webhooks (Alertmanager v4, Grafana: they never send a
//!   firing alert's end and re-send every `repeat_interval`), and
//!   `pagerduty_resolve_timeout` for a PagerDuty trigger, by default never
//!   (it stays open until its `resolve`, as in PagerDuty);
//! - `flap_threshold` transitions within `flap_window` mark it flapping: it
//!   stays in its incident, whose resolution waits until it settles.

use crate::alert::{Alert, AlertStatus, Fingerprint, Format, Timestamp};
use crate::engine::deadlines::Deadline;
use crate::engine::state::AlertState;
use crate::engine::{priority, rules, Engine};

impl Engine {
    pub(crate) fn on_alert(&mut self, a: Alert, t: Timestamp) {
        self.stats.alerts += 1;
        let fp = if a.keyed || self.cfg.identity_labels.is_empty() {
            a.fingerprint
        } else {
            a.labels.fingerprint_of(&self.cfg.identity_labels)
        };
        match (self.alerts.contains_key(&fp), a.status) {
            (false, AlertStatus::Resolved) => self.stats.deduplicated += 1,
            (false, AlertStatus::Firing) => self.first_fire(fp, a, t),
            (true, AlertStatus::Firing) => self.fire_again(fp, a, t),
            (true, AlertStatus::Resolved) => self.resolve_notification(fp, a, t),
        }
    }

    fn first_fire(&mut self, fp: Fingerprint, a: Alert, t: Timestamp) {
        let rule = rules::select(&self.cfg.rules, &a.labels);
        let group_key =
            intern_group_key(&self.groups, self.cfg.rules[rule].group_key(&a.labels, fp));
        let severity = crate::alert::Severity::from_label(a.labels.get_or_empty("severity"));
        let prio = priority::of_alert(
            &a.labels,
            severity,
            &self.cfg.impact_label,
            &self.cfg.urgency_label,
        );
        let expires_at = self.expiry_for(&a, t);
        let st = AlertState {
            fingerprint: fp,
            labels: a.labels,
            summary: a.summary.map(Into::into),
            severity,
            priority: prio,
            status: AlertStatus::Firing,
            first_seen: t,
            last_seen: t,
            last_fired: t,
            fired_at: t,
            starts_at: a.starts_at,
            resolved_at: None,
            sender_resolved: false,
            expires_at,
            scheduled_expiry: expires_at,
            occurrences: 1,
            changes: Vec::new(),
            flapping: false,
            rule,
            group_key,
            incident: None,
            pending: false,
        };
        self.alerts.insert(fp, st);
        if let Some(e) = expires_at {
            self.deadlines.schedule(e, Deadline::AlertExpiry(fp));
        }
        self.attach(fp, t);
    }

    fn fire_again(&mut self, fp: Fingerprint, a: Alert, t: Timestamp) {
        let expiry = self.expiry_for(&a, t);
        let Some(st) = self.alerts.get_mut(&fp) else {
            return;
        };
        match st.status {
            AlertStatus::Firing => {
                if t <= st.last_fired {
                    self.stats.deduplicated += 1;
                    return;
                }
                self.stats.deduplicated += 1;
                st.last_seen = t;
                st.last_fired = t;
                st.occurrences += 1;
                if let Some(new) = a.summary {
                    if st.summary.as_deref() != Some(new.as_str()) {
                        st.summary = Some(new.into());
                    }
                }
                let relabelled = a.labels != st.labels;
                if relabelled {
                    // Labels outside the identity changed (or a keyed sender
                    // re-triggered): severity and priority may have too.
                    st.severity =
                        crate::alert::Severity::from_label(a.labels.get_or_empty("severity"));
                    st.priority = priority::of_alert(
                        &a.labels,
                        st.severity,
                        &self.cfg.impact_label,
                        &self.cfg.urgency_label,
                    );
                    st.labels = a.labels;
                }
                st.expires_at = expiry;
                // Expiry only moves later on re-sends; the deadline catches up
                // lazily when it fires (and is dropped then if there is no
                // expiry any more). An earlier expiry must move it now.
                if let Some(expiry) = expiry.filter(|e| st.scheduled_expiry.is_none_or(|s| *e < s))
                {
                    if let Some(old) = st.scheduled_expiry {
                        self.deadlines.cancel(old, Deadline::AlertExpiry(fp));
                    }
                    st.scheduled_expiry = Some(expiry);
                    self.deadlines.schedule(expiry, Deadline::AlertExpiry(fp));
                }
                let inc = st.incident;
                let (last_seen, occ) = (st.last_seen, st.occurrences);
                let relabel = relabelled.then(|| (st.labels.clone(), st.severity, st.priority));
                if let Some(id) = inc {
                    let member = self.incidents.get_mut(&id).and_then(|i| {
                        if relabel.is_some() {
                            i.member_mut(fp)
                        } else {
                            // Only its live fields change: no row rewrite.
                            i.member_mut_live(fp)
                        }
                    });
                    if let Some(m) = member {
                        m.last_seen = last_seen;
                        m.occurrences = occ;
                        if let Some((labels, severity, prio)) = relabel {
                            m.labels = labels;
                            m.severity = severity;
                            m.priority = prio;
                        }
                    }
                    if relabelled {
                        self.recompute_derived(id);
                        self.touch(id);
                    }
                }
            }
            AlertStatus::Resolved => {
                let stale_time = st.resolved_at.is_some_and(|r| t <= r);
                let same_episode =
                    st.sender_resolved && a.starts_at.is_some() && a.starts_at == st.starts_at;
                if stale_time || same_episode || t <= st.last_seen {
                    self.stats.deduplicated += 1;
                    return;
                }
                // A new firing episode.
                if st.incident.is_none() && !st.pending {
                    // Fresh membership: counters start again.
                    st.first_seen = t;
                    st.occurrences = 0;
                    st.rule = rules::select(&self.cfg.rules, &a.labels);
                    let key = self.cfg.rules[st.rule].group_key(&a.labels, fp);
                    st.group_key = intern_group_key(&self.groups, key);
                }
                st.status = AlertStatus::Firing;
                st.last_seen = t;
                st.last_fired = t;
                st.fired_at = t;
                st.starts_at = a.starts_at;
                st.resolved_at = None;
                st.sender_resolved = false;
                st.occurrences += 1;
                if let Some(new) = a.summary {
                    st.summary = Some(new.into());
                }
                st.labels = a.labels;
                st.expires_at = expiry;
                if let Some(old) = st.scheduled_expiry {
                    self.deadlines.cancel(old, Deadline::AlertExpiry(fp));
                }
                st.scheduled_expiry = expiry;
                if let Some(e) = expiry {
                    self.deadlines.schedule(e, Deadline::AlertExpiry(fp));
                }
                self.record_change(fp, t);
                self.attach(fp, t);
            }
        }
    }

    fn resolve_notification(&mut self, fp: Fingerprint, a: Alert, t: Timestamp) {
        let Some(st) = self.alerts.get_mut(&fp) else {
            return;
        };
        let older_episode = match (a.starts_at, st.starts_at) {
            (Some(new), Some(cur)) => new < cur,
            _ => false,
        };
        if st.status == AlertStatus::Resolved || t < st.last_fired || older_episode {
            self.stats.deduplicated += 1;
            return;
        }
        // When it really ended: the sender's endsAt if it is not in the
        // future, never before this episode began.
        let at = a.ends_at.map_or(t, |e| e.min(t)).max(st.fired_at);
        st.sender_resolved = true;
        st.last_seen = t;
        self.resolve_alert(fp, at, t);
    }

    /// The alert's expiry timer fired.
    pub(crate) fn on_expiry(&mut self, fp: Fingerprint, at: Timestamp) {
        let Some(st) = self.alerts.get_mut(&fp) else {
            return;
        };
        if st.scheduled_expiry != Some(at) {
            return;
        }
        st.scheduled_expiry = None;
        if st.status != AlertStatus::Firing {
            return;
        }
        match st.expires_at {
            Some(e) if e > at => {
                st.scheduled_expiry = Some(e);
                self.deadlines.schedule(e, Deadline::AlertExpiry(fp));
            }
            // No expiry any more (a PagerDuty re-trigger): it waits for its resolve.
            None => {}
            Some(_) => {
                st.sender_resolved = false;
                self.resolve_alert(fp, at, at);
            }
        }
    }

    /// Marks a firing alert resolved at `at` (engine time `t`) and lets its
    /// incident or group react.
    fn resolve_alert(&mut self, fp: Fingerprint, at: Timestamp, t: Timestamp) {
        let Some(st) = self.alerts.get_mut(&fp) else {
            return;
        };
        st.status = AlertStatus::Resolved;
        st.resolved_at = Some(at);
        st.expires_at = None;
        if let Some(old) = st.scheduled_expiry.take() {
            self.deadlines.cancel(old, Deadline::AlertExpiry(fp));
        }
        self.record_change(fp, at);
        let Some(st) = self.alerts.get(&fp) else {
            return;
        };
        if st.pending {
            let window = self.cfg.rules[st.rule].window;
            self.deadlines
                .schedule(at.plus(window), Deadline::PendingExpiry(fp));
        }
        if let Some(id) = st.incident {
            self.member_resolved(id, fp, at, t);
        }
    }

    /// Expiry for a firing notification at `t`: the sender's future
    /// `endsAt`, else the timeout of its format from `t`; `None` = it never
    /// expires (a PagerDuty trigger with `pagerduty_resolve_timeout = 0`).
    fn expiry_for(&self, a: &Alert, t: Timestamp) -> Option<Timestamp> {
        if let Some(e) = a.ends_at.filter(|e| *e > t) {
            return Some(e);
        }
        let timeout = match a.format {
            Format::AlertmanagerApiV2 => Some(self.cfg.resolve_timeout),
            Format::AlertmanagerWebhook | Format::Grafana => Some(self.cfg.webhook_resolve_timeout),
            Format::PagerDuty => self.cfg.pagerduty_resolve_timeout,
        };
        timeout.map(|d| t.plus(d))
    }

    /// Counts a firing/resolved transition for flap detection.
    fn record_change(&mut self, fp: Fingerprint, t: Timestamp) {
        let window = self.cfg.flap_window;
        let threshold = self.cfg.flap_threshold;
        let Some(st) = self.alerts.get_mut(&fp) else {
            return;
        };
        let floor = t.minus(window);
        st.changes.retain(|c| *c > floor);
        st.changes.push(t);
        let started = !st.flapping && st.changes.len() >= threshold;
        if started {
            st.flapping = true;
            self.stats.flapping_started += 1;
        }
        let (flapping, first, inc) = (st.flapping, st.changes[0], st.incident);
        if started {
            if let Some(id) = inc {
                self.set_member_flapping(id, fp, true);
            }
        }
        if flapping {
            // Re-check once the oldest change leaves the window.
            self.deadlines
                .schedule(first.plus(window), Deadline::FlapCheck(fp));
        }
    }

    /// A flap check timer fired: has the alert settled?
    pub(crate) fn on_flap_check(&mut self, fp: Fingerprint, at: Timestamp) {
        let window = self.cfg.flap_window;
        let threshold = self.cfg.flap_threshold;
        let Some(st) = self.alerts.get_mut(&fp) else {
            return;
        };
        if !st.flapping {
            return;
        }
        let floor = at.minus(window);
        st.changes.retain(|c| *c > floor);
        if st.changes.len() >= threshold {
            let first = st.changes[0];
            self.deadlines
                .schedule(first.plus(window), Deadline::FlapCheck(fp));
            return;
        }
        st.flapping = false;
        let (inc, status) = (st.incident, st.status);
        if let Some(id) = inc {
            self.set_member_flapping(id, fp, false);
            if status == AlertStatus::Resolved {
                self.check_incident_resolved(id, at);
            }
        }
    }
}

/// The group's shared key if the group exists, else a new one.
fn intern_group_key(
    groups: &crate::engine::tracked::Tracked<
        std::sync::Arc<str>,
        crate::engine::state::Group,
        std::hash::RandomState,
    >,
    key: String,
) -> std::sync::Arc<str> {
    match groups.get_key_value(key.as_str()) {
        Some((k, _)) => k.clone(),
        None => key.into(),
    }
}
