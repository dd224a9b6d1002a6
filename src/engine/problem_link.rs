//! Where incidents meet problem management: a newly opened incident is
//! signed and filed under its problem (and gets the known error, if any, in
//! its first event); problem commands go through the engine so their effects
//! on incidents and their events share the batch transaction.

use crate::alert::Timestamp;
use crate::engine::state::IncidentId;
use crate::engine::Engine;
use crate::problems::manager::{AlertText, ProblemError, ProblemEvent, MAX_TEXTS};
use crate::problems::state::{KnownError, Problem, ProblemId};

impl Engine {
    /// An incident's signature input: its service (the root-cause alert's,
    /// else the title alert's) and the distinct `alertname summary` texts
    /// of its alerts in join order (at most [`MAX_TEXTS`]).
    fn signature_input(&self, id: IncidentId) -> Option<(String, Vec<AlertText>)> {
        let label = if self.cfg.topology.label.is_empty() {
            "service"
        } else {
            &self.cfg.topology.label
        };
        let inc = self.incidents.get(&id)?;
        let lead = inc
            .root_cause
            .and_then(|fp| inc.member(fp))
            .or_else(|| inc.top.and_then(|fp| inc.member(fp)))?;
        let service = lead.labels.get(label).unwrap_or_default().to_string();
        let mut texts: Vec<AlertText> = Vec::new();
        for m in &inc.members {
            let name = m.labels.get("alertname").unwrap_or_default();
            let text = match m.summary.as_deref() {
                Some(s) if !s.is_empty() => format!("{name} {s}"),
                _ => name.to_string(),
            };
            let t = AlertText {
                service: m.labels.get(label).unwrap_or_default().to_string(),
                text: text.trim().to_string(),
            };
            if t.text.is_empty() || texts.contains(&t) {
                continue;
            }
            texts.push(t);
            if texts.len() >= MAX_TEXTS {
                break;
            }
        }
        Some((service, texts))
    }

    /// The provisional match of a just-opened incident (so a known error is
    /// in its first event); see [`crate::problems::manager`].
    pub(crate) fn classify(&mut self, id: IncidentId, t: Timestamp) {
        let Some((service, texts)) = self.signature_input(id) else {
            return;
        };
        let c = self.problems.incident_opened(&service, &texts, t);
        if let Some(inc) = self.incidents.get_mut(&id) {
            inc.problem_id = c.problem;
            inc.known_error = c.known_error.map(Box::new);
        }
    }

    /// The final match, when the incident closes (settled: every alert,
    /// reopening and topology merge done). Called before its `closed`
    /// event, which carries the result.
    pub(crate) fn classify_final(&mut self, id: IncidentId, t: Timestamp) {
        let Some((service, texts)) = self.signature_input(id) else {
            return;
        };
        let opened = self.incidents.get(&id).map_or(t, |i| i.opened_at);
        let c = self
            .problems
            .incident_resolved(id, opened, &service, &texts, t);
        if let Some(inc) = self.incidents.get_mut(&id) {
            inc.problem_id = c.problem;
            if c.known_error.is_some() {
                inc.known_error = c.known_error.map(Box::new);
            }
        }
        // Earlier incidents of the new candidate are linked while they are
        // not closed (a hand-resolved one may still be open); closed ones
        // are history (the problem lists them all), so replay and the
        // daemon (which keeps closed incidents only in the store) agree.
        for other in c.linked {
            if let Some(inc) = self.incidents.get_mut(&other) {
                if inc.problem_id.is_none() && !inc.status.is_final() {
                    inc.problem_id = c.problem;
                    self.touch(other);
                }
            }
        }
    }

    pub fn problem(&self, id: ProblemId) -> Option<&Problem> {
        self.problems.get(id)
    }

    /// Every problem, ordered by creation then id.
    pub fn problems_sorted(&self) -> Vec<&Problem> {
        self.problems.sorted()
    }

    /// Problem events since the last call.
    pub fn take_problem_events(&mut self) -> Vec<ProblemEvent> {
        self.problems.take_events()
    }

    pub fn accept_problem(&mut self, id: ProblemId, now: Timestamp) -> Result<(), ProblemError> {
        let now = self.clock.max(now);
        self.problems.accept(id, now)
    }

    pub fn reject_problem(&mut self, id: ProblemId, now: Timestamp) -> Result<(), ProblemError> {
        let now = self.clock.max(now);
        self.problems.reject(id, now)
    }

    pub fn record_known_error(
        &mut self,
        id: ProblemId,
        ke: KnownError,
        now: Timestamp,
    ) -> Result<(), ProblemError> {
        let now = self.clock.max(now);
        self.problems.record_known_error(id, ke, now)
    }

    pub fn resolve_problem(&mut self, id: ProblemId, now: Timestamp) -> Result<(), ProblemError> {
        let now = self.clock.max(now);
        self.problems.resolve(id, now)
    }

    /// Merges problem `from` into `into`; incidents in memory are re-linked.
    pub fn merge_problems(
        &mut self,
        into: ProblemId,
        from: ProblemId,
        now: Timestamp,
    ) -> Result<(), ProblemError> {
        let now = self.clock.max(now);
        self.problems.merge(into, from, now)?;
        let relink: Vec<IncidentId> = self
            .incidents
            .iter()
            .filter(|(_, i)| i.problem_id == Some(from))
            .map(|(id, _)| *id)
            .collect();
        for id in relink {
            if let Some(i) = self.incidents.get_mut(&id) {
                i.problem_id = Some(into);
            }
        }
        Ok(())
    }
}
