//! The incident as the outside world sees it: one line of the replay's
//! incidents.jsonl, and the `data` of each incident event (plus `version`).
//! Field names and order are a contract (see `schema/`): keep them stable.

use serde::Serialize;

use crate::alert::{AlertStatus, Fingerprint, Labels, Timestamp};
use crate::engine::state::{Incident, IncidentId, JoinReason, Member};

/// `A` is how an alert is written: [`MemberView`], or JSON rendered before
/// (the publisher's cache of unchanged members).
#[derive(Debug, Serialize)]
pub struct IncidentView<'a, A = MemberView<'a>> {
    pub id: IncidentId,
    pub status: &'static str,
    pub merged_into: Option<IncidentId>,
    pub title: &'a str,
    pub severity: &'static str,
    pub priority: &'static str,
    pub rule: &'a str,
    pub group: GroupView<'a>,
    pub opened_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub reopened: u32,
    pub flapping: bool,
    pub root_cause: Option<Fingerprint>,
    /// The root cause alert with the labels a reader needs to name it. Only
    /// in the event and API form (`with_version`): the replay line's shape
    /// is fixed by the replay contract.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_cause_alert: Option<RootCauseView>,
    pub alerts: Vec<A>,
    /// Alerts left out of `alerts` so that an event fits the largest
    /// message the broker takes (see `kafka::snapshot::render`); absent
    /// when none were (always, in replay output).
    #[serde(skip_serializing_if = "is_zero")]
    pub alerts_omitted: usize,
    pub problem_id: Option<crate::problems::state::ProblemId>,
    pub known_error: Option<&'a crate::problems::state::KnownErrorRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// The root cause alert: its fingerprint and its `service` and `alertname`
/// labels (null when the alert has no such label).
#[derive(Debug, Clone, Serialize)]
pub struct RootCauseView {
    pub fingerprint: Fingerprint,
    pub service: Option<String>,
    pub alertname: Option<String>,
}

impl RootCauseView {
    pub fn of(m: &Member) -> RootCauseView {
        RootCauseView {
            fingerprint: m.fingerprint,
            service: m.labels.get("service").map(str::to_string),
            alertname: m.labels.get("alertname").map(str::to_string),
        }
    }
}

/// The grouping labels as a JSON object.
#[derive(Debug)]
pub struct GroupView<'a>(&'a [(String, String)]);

impl Serialize for GroupView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Debug, Serialize)]
pub struct MemberView<'a> {
    pub fingerprint: Fingerprint,
    pub labels: &'a Labels,
    pub status: AlertStatus,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub occurrences: u64,
    pub flapping: bool,
    pub joined: JoinReason,
}

impl<'a> MemberView<'a> {
    pub fn of(m: &'a Member) -> MemberView<'a> {
        MemberView {
            fingerprint: m.fingerprint,
            labels: &m.labels,
            status: m.status,
            first_seen: m.first_seen,
            last_seen: m.last_seen,
            occurrences: m.occurrences,
            flapping: m.flapping,
            joined: m.joined,
        }
    }
}

impl Member {
    /// Where the member stands among its incident's published alerts: first
    /// seen, then fingerprint (the order snapshots store them in, too).
    pub fn view_order(&self) -> (Timestamp, Fingerprint) {
        (self.first_seen, self.fingerprint)
    }
}

impl Incident {
    /// The replay line (no version) or event data (with version).
    pub fn view(&self, with_version: bool) -> IncidentView<'_> {
        self.view_with(with_version, MemberView::of)
    }

    /// [`Incident::view`] with each member written by `alert`, in view
    /// order (first seen, then fingerprint).
    pub fn view_with<'a, A>(
        &'a self,
        with_version: bool,
        alert: impl FnMut(&'a Member) -> A,
    ) -> IncidentView<'a, A> {
        let mut members: Vec<&Member> = self.members.iter().collect();
        members.sort_by_key(|m| m.view_order());
        IncidentView {
            id: self.id,
            status: self.status.as_str(),
            merged_into: self.merged_into,
            title: &self.title,
            severity: self.severity.as_str(),
            priority: self.priority.as_str(),
            rule: &self.rule,
            group: GroupView(&self.group),
            opened_at: self.opened_at,
            acknowledged_at: self.acknowledged_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            reopened: self.reopened,
            flapping: self.flapping,
            root_cause: self.root_cause,
            root_cause_alert: self
                .root_cause
                .filter(|_| with_version)
                .and_then(|fp| self.member(fp))
                .map(RootCauseView::of),
            alerts: members.into_iter().map(alert).collect(),
            problem_id: self.problem_id,
            known_error: self.known_error.as_deref(),
            version: with_version.then_some(self.version),
            alerts_omitted: 0,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
