//! The engine's persistent state: alerts, groups and incidents.
//!
//! Everything here is plain data with serde, so the store can persist it per
//! entity and the engine can be rebuilt from it after a restart. Indexes that
//! can be derived (deadlines, topology candidates) are not part of it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::alert::{AlertStatus, Fingerprint, Labels, Severity, Timestamp};
use crate::engine::priority::Priority;

/// Deterministic incident id: FNV-1a of rule, group key and opening time, so
/// replay and the daemon agree. Printed `inc-%016x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IncidentId(pub u64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inc-{:016x}", self.0)
    }
}

impl IncidentId {
    pub fn parse(s: &str) -> Option<IncidentId> {
        let hex = s.strip_prefix("inc-")?;
        Fingerprint::parse_hex(hex).map(|f| IncidentId(f.0))
    }
}

impl Serialize for IncidentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::alert::serialize_id(self.0, self, s)
    }
}

impl<'de> Deserialize<'de> for IncidentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::alert::deserialize_id(d, "incident id", IncidentId::parse, IncidentId)
    }
}

/// What the engine knows about one alert identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    pub fingerprint: Fingerprint,
    pub labels: Labels,
    pub summary: Option<std::sync::Arc<str>>,
    pub severity: Severity,
    pub priority: Priority,
    pub status: AlertStatus,
    /// Engine time of the first firing notification of the current membership.
    pub first_seen: Timestamp,
    /// Engine time of the last accepted notification.
    pub last_seen: Timestamp,
    /// Engine time of the last accepted firing notification: a firing
    /// notification at or before it is a duplicate delivery.
    pub last_fired: Timestamp,
    /// Engine time the current firing episode began (for topology windows).
    pub fired_at: Timestamp,
    /// Sender's `startsAt` of the current episode, when given.
    pub starts_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// The sender itself said resolved (not our resolve timeout): a late
    /// firing copy of that same episode (same `startsAt`) is stale.
    pub sender_resolved: bool,
    /// When a firing alert resolves unless re-sent (`endsAt` or its format's
    /// timeout); `None` while firing: never (a PagerDuty trigger).
    pub expires_at: Option<Timestamp>,
    /// Where its expiry deadline currently sits (index, not persisted).
    #[serde(skip)]
    pub scheduled_expiry: Option<Timestamp>,
    /// Firing notifications accepted in the current membership.
    pub occurrences: u64,
    /// Times of recent firing/resolved transitions, within the flap window.
    pub changes: Vec<Timestamp>,
    pub flapping: bool,
    /// Index of the rule that grouped it.
    pub rule: usize,
    /// Shared with the group's key: one allocation per group, not per alert.
    pub group_key: std::sync::Arc<str>,
    /// Incident holding it, if any.
    pub incident: Option<IncidentId>,
    /// Held in its group below the rule's `min_alerts`.
    pub pending: bool,
}

/// A correlation group: one rule, one set of `group_by` values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub rule: usize,
    pub key: std::sync::Arc<str>,
    /// The group's current incident (open, acknowledged or resolved within
    /// the reopen window).
    pub incident: Option<IncidentId>,
    /// Alerts held below the threshold, in arrival order.
    pub pending: Vec<Fingerprint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Open,
    Acknowledged,
    Resolved,
    Closed,
    Merged,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Closed => "closed",
            IncidentStatus::Merged => "merged",
        }
    }

    /// Open or acknowledged: new alerts may join and it counts as ongoing.
    pub fn is_active(self) -> bool {
        matches!(self, IncidentStatus::Open | IncidentStatus::Acknowledged)
    }

    /// Closed or merged: nothing changes any more.
    pub fn is_final(self) -> bool {
        matches!(self, IncidentStatus::Closed | IncidentStatus::Merged)
    }
}

/// Why an alert is part of an incident (for explanations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinReason {
    /// Same rule and group key.
    Group,
    /// Linked service within the topology window.
    Topology,
    /// Came with an incident merged into this one.
    Merge,
}

/// An alert's membership in an incident, frozen when the incident ends.
///
/// While its incident is active and its alert still belongs to it (a *live*
/// member), `last_seen` and `occurrences` equal the alert's: a re-send
/// changes them in memory without rewriting the member's row, and loading
/// takes them from the alert's row (see [`Incident::refresh_live_members`]).
/// Every other change rewrites the row, and so does the incident's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub fingerprint: Fingerprint,
    pub labels: Labels,
    pub status: AlertStatus,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub occurrences: u64,
    pub severity: Severity,
    pub priority: Priority,
    pub summary: Option<std::sync::Arc<str>>,
    pub flapping: bool,
    pub joined: JoinReason,
    pub resolved_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub status: IncidentStatus,
    pub merged_into: Option<IncidentId>,
    pub rule: String,
    pub group: Vec<(String, String)>,
    /// Every group whose new alerts go to this incident (more than one after
    /// topology joins and merges).
    pub groups: Vec<String>,
    pub title: String,
    pub severity: Severity,
    pub priority: Priority,
    pub opened_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    /// When it closed or merged: retention counts from here (not shown in
    /// views; `closed_at` is, for closed ones).
    #[serde(default)]
    pub final_at: Option<Timestamp>,
    /// How long after resolution a new alert reopens it (from its rule).
    pub reopen_window_ms: u64,
    pub reopened: u32,
    pub flapping: bool,
    pub root_cause: Option<Fingerprint>,
    /// The member the title comes from (most severe, then earliest).
    pub top: Option<Fingerprint>,
    /// Members currently firing: the incident resolves when this is 0 and
    /// no member flaps.
    pub firing: u32,
    /// In join order; views sort them by first seen. Append-only: change
    /// them through [`Incident::member_mut`] and [`Incident::push_member`],
    /// which record what the store must rewrite. The store keeps one row per
    /// member, not inside the incident, so a busy incident with thousands
    /// of members costs one small row per change.
    #[serde(skip)]
    pub members: Vec<Member>,
    /// Positions in `members` changed since the store last took them
    /// ([`Incident::take_changed_members`]); may repeat, bounded.
    #[serde(skip)]
    pub changed_members: Vec<u32>,
    /// fingerprint → position in `members` (derived, not persisted).
    #[serde(skip)]
    pub member_index: crate::engine::FastMap<Fingerprint, usize>,
    /// Events published so far; the next event gets `version + 1`.
    pub version: u64,
    /// Set by problem management.
    pub problem_id: Option<crate::problems::state::ProblemId>,
    /// The known error of its signature, attached when it opened.
    #[serde(default)]
    pub known_error: Option<Box<crate::problems::state::KnownErrorRef>>,
}

/// Up to this many members, a linear scan beats a hash index (and saves memory).
const SCAN_LIMIT: usize = 16;

impl Incident {
    /// The member for `fp`. Small incidents scan; large ones keep an index
    /// (rebuilt when stale, e.g. after loading from the store).
    pub fn member_mut(&mut self, fp: Fingerprint) -> Option<&mut Member> {
        let i = self.position(fp)?;
        self.mark_member(i);
        self.members.get_mut(i)
    }

    /// The member for `fp`, for a change to its live fields only
    /// (`last_seen`, `occurrences`, kept equal to its alert's): its row is
    /// not rewritten, which on a busy stream halves the rows each batch
    /// stores (an alert's row is rewritten anyway).
    pub fn member_mut_live(&mut self, fp: Fingerprint) -> Option<&mut Member> {
        let i = self.position(fp)?;
        self.members.get_mut(i)
    }

    fn position(&mut self, fp: Fingerprint) -> Option<usize> {
        if self.members.len() <= SCAN_LIMIT {
            return self.members.iter().position(|m| m.fingerprint == fp);
        }
        if self.member_index.len() != self.members.len() {
            self.member_index = self
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| (m.fingerprint, i))
                .collect();
        }
        self.member_index.get(&fp).copied()
    }

    /// Marks every member for rewriting: the incident has ended, and its
    /// rows must hold the members' last live fields from now on.
    pub fn mark_all_members(&mut self) {
        self.changed_members = (0..self.members.len() as u32).collect();
    }

    /// Takes the live fields of each live member from its alert (`alert`
    /// gives an alert's incident, last_seen and occurrences): what loading
    /// an active incident from the store needs (see [`Member`]).
    pub fn refresh_live_members(
        &mut self,
        alert: impl Fn(Fingerprint) -> Option<(Option<IncidentId>, Timestamp, u64)>,
    ) {
        if self.status.is_final() {
            return;
        }
        for m in &mut self.members {
            if let Some((Some(inc), last_seen, occurrences)) = alert(m.fingerprint) {
                if inc == self.id {
                    m.last_seen = last_seen;
                    m.occurrences = occurrences;
                }
            }
        }
    }

    fn mark_member(&mut self, i: usize) {
        let i = i as u32;
        if self.changed_members.last() == Some(&i) {
            return;
        }
        self.changed_members.push(i);
        // Bounded even when nobody takes them (replay keeps no store).
        if self.changed_members.len() > 2 * self.members.len() + 16 {
            self.changed_members.sort_unstable();
            self.changed_members.dedup();
        }
    }

    /// Positions of the members changed since the last call, ascending.
    pub fn take_changed_members(&mut self) -> Vec<u32> {
        let mut v = std::mem::take(&mut self.changed_members);
        v.sort_unstable();
        v.dedup();
        v
    }

    pub fn member(&self, fp: Fingerprint) -> Option<&Member> {
        if self.members.len() > SCAN_LIMIT && self.member_index.len() == self.members.len() {
            self.member_index
                .get(&fp)
                .and_then(|i| self.members.get(*i))
        } else {
            self.members.iter().find(|m| m.fingerprint == fp)
        }
    }

    /// When it closes if resolved at `resolved_at`: after its reopen window.
    pub fn close_due(&self, resolved_at: Timestamp) -> Timestamp {
        resolved_at.plus(std::time::Duration::from_millis(self.reopen_window_ms))
    }

    /// Adds a member; members keep join order (the index relies on it).
    pub fn push_member(&mut self, m: Member) {
        if self.members.len() >= SCAN_LIMIT && self.member_index.len() == self.members.len() {
            self.member_index.insert(m.fingerprint, self.members.len());
        }
        self.members.push(m);
        self.mark_member(self.members.len() - 1);
    }
}
