//! The read model: what the HTTP API serves, updated by the pipeline after
//! each commit so reads never block the engine.
//!
//! It holds the incidents the engine has in memory (open, acknowledged,
//! resolved) and every problem without its incident list (a copy per
//! change would cost as much as the list: the API pages it from the store);
//! closed and merged incidents are read from the store. Locks are std `RwLock`s held only to copy or swap entries,
//! never across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::engine::state::{Incident, IncidentId};
use crate::engine::Engine;
use crate::problems::state::{Problem, ProblemId};

/// Entities changed by a batch, copied from the engine; `None`: the
/// incident is no longer held in memory (closed or merged: read it from the
/// store).
#[derive(Debug, Default)]
pub struct ReadModelDelta {
    incidents: Vec<(IncidentId, Option<Arc<Incident>>)>,
    /// `None`: deleted by retention.
    problems: Vec<(ProblemId, Option<Arc<Problem>>)>,
}

#[derive(Default)]
pub struct ReadModel {
    incidents: RwLock<BTreeMap<IncidentId, Arc<Incident>>>,
    problems: RwLock<BTreeMap<ProblemId, Arc<Problem>>>,
}

impl ReadModel {
    /// Copies the given entities from the engine (after they were committed).
    pub fn update(&self, engine: &Engine, incidents: &[IncidentId], problems: &[ProblemId]) {
        self.apply(ReadModel::delta(engine, incidents, problems));
    }

    /// The given entities as the engine holds them now, to [`apply`] once
    /// they are committed.
    ///
    /// [`apply`]: ReadModel::apply
    pub fn delta(
        engine: &Engine,
        incidents: &[IncidentId],
        problems: &[ProblemId],
    ) -> ReadModelDelta {
        ReadModelDelta {
            incidents: incidents
                .iter()
                .map(|id| {
                    let live = engine
                        .incident(*id)
                        .filter(|i| !i.status.is_final())
                        .map(|i| Arc::new(i.clone()));
                    (*id, live)
                })
                .collect(),
            problems: problems
                .iter()
                .map(|id| {
                    (
                        *id,
                        engine.problem(*id).map(|p| Arc::new(p.without_incidents())),
                    )
                })
                .collect(),
        }
    }

    pub fn apply(&self, d: ReadModelDelta) {
        if !d.incidents.is_empty() {
            if let Ok(mut m) = self.incidents.write() {
                for (id, i) in d.incidents {
                    match i {
                        Some(i) => m.insert(id, i),
                        None => m.remove(&id),
                    };
                }
            }
        }
        if !d.problems.is_empty() {
            if let Ok(mut m) = self.problems.write() {
                for (id, p) in d.problems {
                    match p {
                        Some(p) => m.insert(id, p),
                        None => m.remove(&id),
                    };
                }
            }
        }
    }

    /// Loads everything the engine holds (at start).
    pub fn load(&self, engine: &Engine) {
        let ids: Vec<IncidentId> = engine.incidents_sorted().iter().map(|i| i.id).collect();
        let pids: Vec<ProblemId> = engine.problems_sorted().iter().map(|p| p.id).collect();
        self.update(engine, &ids, &pids);
    }

    pub fn incident(&self, id: IncidentId) -> Option<Arc<Incident>> {
        self.incidents.read().ok()?.get(&id).cloned()
    }

    pub fn incidents(&self) -> Vec<Arc<Incident>> {
        self.incidents
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn problem(&self, id: ProblemId) -> Option<Arc<Problem>> {
        self.problems.read().ok()?.get(&id).cloned()
    }

    pub fn problems(&self) -> Vec<Arc<Problem>> {
        self.problems
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}
