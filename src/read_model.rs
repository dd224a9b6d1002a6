//! The read model: what the HTTP API serves, updated by the pipeline after
//! each commit so reads never block the engine.
//!
//! It holds the incidents the engine has in memory (open, acknowledged,
//! resolved) and every problem; closed and merged incidents are read from
//! the store. Locks are std `RwLock`s held only to copy or swap entries,
//! never across an `.await`.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::engine::state::{Incident, IncidentId};
use crate::engine::Engine;
use crate::problems::state::{Problem, ProblemId};

#[derive(Default)]
pub struct ReadModel {
    incidents: RwLock<BTreeMap<IncidentId, Arc<Incident>>>,
    problems: RwLock<BTreeMap<ProblemId, Arc<Problem>>>,
}

impl ReadModel {
    /// Copies the given entities from the engine (after they were committed).
    pub fn update(&self, engine: &Engine, incidents: &[IncidentId], problems: &[ProblemId]) {
        if !incidents.is_empty() {
            if let Ok(mut m) = self.incidents.write() {
                for id in incidents {
                    match engine.incident(*id) {
                        Some(i) if !i.status.is_final() => {
                            m.insert(*id, Arc::new(i.clone()));
                        }
                        _ => {
                            m.remove(id);
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            if let Ok(mut m) = self.problems.write() {
                for id in problems {
                    if let Some(p) = engine.problem(*id) {
                        m.insert(*id, Arc::new(p.clone()));
                    }
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
