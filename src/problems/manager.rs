//! Problem management: recurring incidents become candidates for review.
//!
//! Each incident gets a signature when it opens: its service plus the
//! template cluster the miner assigns to its title alert's
//! `alertname summary`. Keyed by the cluster (not the template text, which
//! still generalises as the miner learns), so recurrences with varying ids
//! and numbers share a signature. Once `min_incidents` incidents share a
//! signature within `lookback`, a candidate opens (or, if the signature has
//! an open problem, the incident joins it). Rejecting a candidate suppresses
//! its signature for `reject_suppression`. A known error is attached to every
//! new incident of its signature.
//!
//! Pure like the engine: explicit time, no I/O. The miner is rebuilt after a
//! restart from a snapshot of its state plus, re-fed in order, the lines it
//! was fed after that snapshot ([`Problems::take_mined`]).

use std::time::Duration;

use crate::alert::{fnv1a, fnv1a_64, Timestamp};
use crate::engine::state::IncidentId;
use crate::engine::tracked::Tracked;
use crate::engine::FastHash;
use crate::problems::miner::{MinerConfig, MinerError, MinerState, TemplateMiner};
use crate::problems::state::{
    KnownError, KnownErrorRef, Problem, ProblemId, ProblemState, Signature,
};

#[derive(Debug, Clone)]
pub struct ProblemsConfig {
    pub min_incidents: usize,
    pub lookback: Duration,
    pub reject_suppression: Duration,
    pub miner: MinerConfig,
}

impl ProblemsConfig {
    pub fn from_config(p: &crate::config::ProblemsConfig) -> Result<ProblemsConfig, MinerError> {
        let mut miner = MinerConfig::default();
        // User masks first: where two match at one position, theirs wins.
        let mut masks = p.masks.clone();
        masks.append(&mut miner.masks);
        miner.masks = masks;
        if let Some(s) = p.similarity {
            miner.similarity = s;
        }
        if let Some(d) = p.depth {
            miner.depth = d;
        }
        miner.validate()?;
        Ok(ProblemsConfig {
            min_incidents: p.min_incidents.max(2),
            lookback: p.lookback.0,
            reject_suppression: p.reject_suppression.0,
            miner,
        })
    }
}

/// What happened to a problem (the `type` suffix `correlator.problem.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemEventKind {
    Created,
    Updated,
    Accepted,
    Rejected,
    KnownError,
    Resolved,
    Merged,
}

impl ProblemEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemEventKind::Created => "created",
            ProblemEventKind::Updated => "updated",
            ProblemEventKind::Accepted => "accepted",
            ProblemEventKind::Rejected => "rejected",
            ProblemEventKind::KnownError => "known_error",
            ProblemEventKind::Resolved => "resolved",
            ProblemEventKind::Merged => "merged",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemEvent {
    pub problem: ProblemId,
    pub kind: ProblemEventKind,
    pub version: u64,
    pub time: Timestamp,
    /// The incident whose joining caused it (`created`, `updated`).
    pub incident: Option<IncidentId>,
    /// The problem merged into this one (its `updated` after a merge).
    pub merged_from: Option<ProblemId>,
}

/// Why a problem command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemError {
    #[error("problem {0} not found")]
    NotFound(ProblemId),
    #[error("problem {id} was merged into {into}")]
    Merged { id: ProblemId, into: ProblemId },
    #[error("problem {id} is {state}: cannot {action} (allowed from: {allowed})")]
    InvalidTransition {
        id: ProblemId,
        state: &'static str,
        action: &'static str,
        allowed: &'static str,
    },
    #[error("cannot merge problem {0} into itself")]
    SelfMerge(ProblemId),
    #[error("{field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
}

/// The outcome of classifying a newly opened incident.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Classified {
    pub problem: Option<ProblemId>,
    pub known_error: Option<KnownErrorRef>,
    /// Earlier incidents that just became part of a new candidate.
    pub linked: Vec<IncidentId>,
}

pub struct Problems {
    cfg: ProblemsConfig,
    miner: TemplateMiner,
    pub(crate) signatures: Tracked<String, Signature, std::hash::RandomState>,
    pub(crate) problems: Tracked<ProblemId, Problem, FastHash>,
    /// Lines fed to the miner since the last [`Problems::take_mined`].
    mined: Vec<String>,
    /// Lines fed to the miner (re-fed ones included) since the store last
    /// took a snapshot of its state.
    unsnapshotted: usize,
    /// service -> cluster ids it has signatures under (derived index), so a
    /// merge check looks at one service's signatures, not all.
    by_service: std::collections::HashMap<String, ServiceClusters>,
    events: Vec<ProblemEvent>,
    /// (problem, position in its incident list) of each incident added
    /// since the last [`Problems::take_joined`] (tracking only): stored one
    /// row each, so a join writes one row however large the problem is.
    joined: Vec<(ProblemId, u32)>,
}

impl Problems {
    pub fn new(cfg: ProblemsConfig) -> Problems {
        // The config was validated when compiled.
        let miner = TemplateMiner::new(cfg.miner.clone()).unwrap_or_else(|_| {
            TemplateMiner::new(MinerConfig::default()).expect("default miner config is valid")
        });
        Problems {
            cfg,
            miner,
            signatures: Tracked::default(),
            problems: Tracked::default(),
            mined: Vec::new(),
            unsnapshotted: 0,
            by_service: Default::default(),
            events: Vec::new(),
            joined: Vec::new(),
        }
    }

    pub fn set_tracking(&mut self, on: bool) {
        self.signatures.set_tracking(on);
        self.problems.set_tracking(on);
    }

    /// Re-feeds the miner with the lines it saw before a restart (after
    /// its snapshot, if any). Returns how many.
    pub fn refeed<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) -> usize {
        let mut n = 0;
        for l in lines {
            self.miner.add(l);
            n += 1;
        }
        self.unsnapshotted += n;
        n
    }

    /// Replaces the miner by one restored from a snapshot of its state.
    pub fn restore_miner(&mut self, state: MinerState) -> Result<(), String> {
        self.miner = TemplateMiner::restore(self.cfg.miner.clone(), state)?;
        Ok(())
    }

    /// The miner's learned state (see [`TemplateMiner::state`]).
    pub fn miner_state(&self) -> MinerState {
        self.miner.state()
    }

    /// Lines fed since the last snapshot.
    pub fn unsnapshotted(&self) -> usize {
        self.unsnapshotted
    }

    /// A snapshot of the miner's state now is being stored.
    pub fn snapshot_taken(&mut self) {
        self.unsnapshotted = 0;
    }

    /// Deletes the problems that stopped changing (resolved, rejected,
    /// merged) at or before `cutoff` (retention). Signatures pointing to
    /// one let go of it, as they do of any problem no longer open.
    pub fn expire(&mut self, cutoff: Timestamp) {
        let gone: Vec<ProblemId> = self
            .problems
            .values()
            .filter(|p| !p.state.is_open() && p.updated_at <= cutoff)
            .map(|p| p.id)
            .collect();
        for id in gone {
            if let Some(p) = self.problems.remove(&id) {
                if let Some(s) = self.signatures.get(&p.key) {
                    if s.problem == Some(id) {
                        if let Some(s) = self.signatures.get_mut(&p.key) {
                            s.problem = None;
                        }
                    }
                }
            }
        }
    }

    pub fn restore(&mut self, problems: Vec<Problem>, signatures: Vec<Signature>) {
        for p in problems {
            self.problems.insert(p.id, p);
        }
        for s in signatures {
            if let Some((svc, id)) = s.key.rsplit_once('\u{1f}') {
                if let Ok(id) = id.parse() {
                    self.by_service.entry(svc.to_string()).or_default().add(id);
                }
            }
            self.signatures.insert(s.key.clone(), s);
        }
    }

    /// Lines fed to the miner since the last call (to persist in order).
    pub fn take_mined(&mut self) -> Vec<String> {
        std::mem::take(&mut self.mined)
    }

    pub fn take_events(&mut self) -> Vec<ProblemEvent> {
        std::mem::take(&mut self.events)
    }

    /// Incidents added to problems since the last call, as (problem,
    /// position in its `incident_ids`), in order.
    pub fn take_joined(&mut self) -> Vec<(ProblemId, u32)> {
        std::mem::take(&mut self.joined)
    }

    /// Adds incidents to problem `pid`. With `dedup`, those it already has
    /// are skipped (a merge); without, the caller knows they are new (an
    /// incident that just opened), and a join costs the same whatever the
    /// size of the problem.
    fn add_incidents(
        &mut self,
        pid: ProblemId,
        ids: impl IntoIterator<Item = IncidentId>,
        dedup: bool,
    ) {
        let track = self.problems.is_tracking();
        let Some(p) = self.problems.get_mut(&pid) else {
            return;
        };
        let mut known: std::collections::HashSet<IncidentId, FastHash> = if dedup {
            p.incident_ids.iter().copied().collect()
        } else {
            Default::default()
        };
        for id in ids {
            if dedup && !known.insert(id) {
                continue;
            }
            if track {
                self.joined.push((pid, p.incident_ids.len() as u32));
            }
            p.add_incident(id);
        }
    }

    pub fn take_dirty(&mut self) -> (Vec<ProblemId>, Vec<String>) {
        let mut p = self.problems.take_dirty();
        p.sort();
        let mut s = self.signatures.take_dirty();
        s.sort();
        (p, s)
    }

    pub fn get(&self, id: ProblemId) -> Option<&Problem> {
        self.problems.get(&id)
    }

    pub fn signature(&self, key: &str) -> Option<&Signature> {
        self.signatures.get(key)
    }

    /// Every problem, ordered by creation then id.
    pub fn sorted(&self) -> Vec<&Problem> {
        let mut v: Vec<&Problem> = self.problems.values().collect();
        v.sort_by_key(|p| (p.created_at, p.id));
        v
    }

    fn emit(&mut self, id: ProblemId, kind: ProblemEventKind, t: Timestamp) {
        self.emit_change(id, kind, t, None, None);
    }

    /// [`Problems::emit`] naming what changed: the incident that joined, or
    /// the problem merged in.
    fn emit_change(
        &mut self,
        id: ProblemId,
        kind: ProblemEventKind,
        t: Timestamp,
        incident: Option<IncidentId>,
        merged_from: Option<ProblemId>,
    ) {
        if let Some(p) = self.problems.get_mut(&id) {
            p.version += 1;
            p.updated_at = t;
            self.events.push(ProblemEvent {
                problem: id,
                kind,
                version: p.version,
                time: t,
                incident,
                merged_from,
            });
        }
    }

    /// Signs a newly opened incident and files it under its problem.
    pub fn incident_opened(
        &mut self,
        id: IncidentId,
        service: &str,
        text: &str,
        t: Timestamp,
    ) -> Classified {
        let cluster = self.miner.add(text);
        if self.signatures.is_tracking() {
            // Only a persisting engine needs the lines to re-feed after a restart.
            self.mined.push(text.to_string());
            self.unsnapshotted += 1;
        }
        let cluster = self.miner.resolve(cluster);
        let key = format!("{service}\u{1f}{}", cluster.0);
        self.rekey_merged_clusters(service, cluster.0, &key);
        let floor = t.minus(self.cfg.lookback);
        let sig = self
            .signatures
            .get_or_insert_with(key.clone(), || Signature {
                key: key.clone(),
                ..Default::default()
            });
        sig.recent.retain(|(_, at)| *at >= floor);
        let mut out = Classified::default();
        // An open problem collects it.
        if let Some(pid) = sig.problem {
            let open = self.problems.get(&pid).is_some_and(|p| p.state.is_open());
            if open {
                self.add_incidents(pid, [id], false);
                let template = self.miner.template(cluster);
                let p = self.problems.get_mut(&pid).expect("checked");
                p.last_seen = t;
                p.template = template;
                out.problem = Some(pid);
                if let (ProblemState::KnownError, Some(ke)) = (p.state, &p.known_error) {
                    out.known_error = Some(KnownErrorRef {
                        problem_id: pid,
                        root_cause: ke.root_cause.clone(),
                        workaround: ke.workaround.clone(),
                        link: ke.link.clone(),
                    });
                }
                self.emit_change(pid, ProblemEventKind::Updated, t, Some(id), None);
                return out;
            }
        }
        let min = self.cfg.min_incidents;
        let Some(sig) = self.signatures.get_mut(&key) else {
            return out;
        };
        sig.problem = None;
        sig.recent.push((id, t));
        // Enough to tell whether `min_incidents` recurred within the lookback.
        keep_newest(&mut sig.recent, min);
        if sig.suppressed_until.is_some_and(|u| u > t) || sig.recent.len() < self.cfg.min_incidents
        {
            return out;
        }
        // A new candidate with every recent incident of the signature. Its id
        // comes from the signature text, not the miner's cluster number, which
        // depends on what else was mined first.
        let recent = sig.recent.clone();
        let template = self.miner.template(cluster);
        let mut h = fnv1a_64(format!("{service}: {template}").as_bytes());
        h = fnv1a(h, &t.0.to_be_bytes());
        while self.problems.contains_key(&ProblemId(h)) {
            h = fnv1a(h, &[1]);
        }
        let pid = ProblemId(h);
        let problem = Problem {
            id: pid,
            state: ProblemState::Candidate,
            signature: format!("{service}: {template}"),
            key: key.clone(),
            service: service.to_string(),
            template,
            incident_ids: Vec::new(),
            incident_count: 0,
            first_seen: recent.first().map_or(t, |r| r.1),
            last_seen: t,
            known_error: None,
            merged_into: None,
            created_at: t,
            updated_at: t,
            version: 0,
        };
        self.problems.insert(pid, problem);
        self.add_incidents(pid, recent.iter().map(|(i, _)| *i), false);
        if let Some(s) = self.signatures.get_mut(&key) {
            s.problem = Some(pid);
            // Its problem holds them now.
            s.recent.clear();
        }
        self.emit_change(pid, ProblemEventKind::Created, t, Some(id), None);
        out.problem = Some(pid);
        out.linked = recent
            .iter()
            .map(|(i, _)| *i)
            .filter(|i| *i != id)
            .collect();
        out
    }

    /// The miner may merge clusters as it learns: signatures of this service
    /// kept under an id that now resolves to `cluster` move to `key`. Only
    /// ids whose cluster was merged are checked (found again after each
    /// merge the miner made), so a service with many templates costs the
    /// same per incident as one with few.
    fn rekey_merged_clusters(&mut self, service: &str, cluster: u32, key: &str) {
        let sc = self.by_service.entry(service.to_string()).or_default();
        let miner = &self.miner;
        let resolve = |id: u32| miner.resolve(crate::problems::miner::ClusterId(id)).0;
        if sc.merges_seen != miner.merges() {
            sc.merged = sc
                .ids
                .iter()
                .copied()
                .filter(|id| resolve(*id) != *id)
                .collect();
            sc.merges_seen = miner.merges();
        }
        let gone: Vec<u32> = sc
            .merged
            .iter()
            .copied()
            .filter(|id| *id != cluster && resolve(*id) == cluster)
            .collect();
        if !gone.is_empty() {
            sc.ids.retain(|id| !gone.contains(id));
            sc.merged.retain(|id| !gone.contains(id));
            for id in &gone {
                sc.known.remove(id);
            }
        }
        sc.add(cluster);
        let stale: Vec<String> = gone
            .iter()
            .map(|id| format!("{service}\u{1f}{id}"))
            .collect();
        for old in stale {
            let Some(s) = self.signatures.remove(&old) else {
                continue;
            };
            let target = self
                .signatures
                .get_or_insert_with(key.to_string(), || Signature {
                    key: key.to_string(),
                    ..Default::default()
                });
            target.recent.extend(s.recent);
            target.recent.sort_by_key(|(i, t)| (*t, *i));
            keep_newest(&mut target.recent, self.cfg.min_incidents);
            target.problem = target.problem.or(s.problem);
            target.suppressed_until = target.suppressed_until.max(s.suppressed_until);
            if let Some(pid) = s.problem {
                if let Some(p) = self.problems.get_mut(&pid) {
                    p.key = key.to_string();
                }
            }
        }
    }

    fn open_problem(&mut self, id: ProblemId) -> Result<&mut Problem, ProblemError> {
        let p = self
            .problems
            .get_mut(&id)
            .ok_or(ProblemError::NotFound(id))?;
        if p.state == ProblemState::Merged {
            return Err(ProblemError::Merged {
                id,
                into: p.merged_into.unwrap_or_default(),
            });
        }
        Ok(p)
    }

    fn transition(
        &mut self,
        id: ProblemId,
        from: &[ProblemState],
        allowed: &'static str,
        action: &'static str,
        to: ProblemState,
    ) -> Result<(), ProblemError> {
        let p = self.open_problem(id)?;
        if !from.contains(&p.state) {
            return Err(ProblemError::InvalidTransition {
                id,
                state: p.state.as_str(),
                action,
                allowed,
            });
        }
        p.state = to;
        Ok(())
    }

    pub fn accept(&mut self, id: ProblemId, t: Timestamp) -> Result<(), ProblemError> {
        self.transition(
            id,
            &[ProblemState::Candidate],
            "candidate",
            "accept",
            ProblemState::Accepted,
        )?;
        self.emit(id, ProblemEventKind::Accepted, t);
        Ok(())
    }

    /// Rejects a candidate; its signature opens no candidate until
    /// `reject_suppression` has passed.
    pub fn reject(&mut self, id: ProblemId, t: Timestamp) -> Result<(), ProblemError> {
        self.transition(
            id,
            &[ProblemState::Candidate],
            "candidate",
            "reject",
            ProblemState::Rejected,
        )?;
        let key = self.problems[&id].key.clone();
        let until = t.plus(self.cfg.reject_suppression);
        if let Some(s) = self.signatures.get_mut(&key) {
            s.suppressed_until = Some(until);
            s.problem = None;
            s.recent.clear();
        }
        self.emit(id, ProblemEventKind::Rejected, t);
        Ok(())
    }

    pub fn record_known_error(
        &mut self,
        id: ProblemId,
        ke: KnownError,
        t: Timestamp,
    ) -> Result<(), ProblemError> {
        if ke.root_cause.trim().is_empty() {
            return Err(ProblemError::Invalid {
                field: "root_cause",
                reason: "must not be empty",
            });
        }
        if ke.workaround.trim().is_empty() {
            return Err(ProblemError::Invalid {
                field: "workaround",
                reason: "must not be empty",
            });
        }
        self.transition(
            id,
            &[
                ProblemState::Candidate,
                ProblemState::Accepted,
                ProblemState::KnownError,
            ],
            "candidate, accepted, known_error",
            "record a known error",
            ProblemState::KnownError,
        )?;
        if let Some(p) = self.problems.get_mut(&id) {
            p.known_error = Some(ke);
        }
        self.emit(id, ProblemEventKind::KnownError, t);
        Ok(())
    }

    pub fn resolve(&mut self, id: ProblemId, t: Timestamp) -> Result<(), ProblemError> {
        self.transition(
            id,
            &[ProblemState::Accepted, ProblemState::KnownError],
            "accepted, known_error",
            "resolve",
            ProblemState::Resolved,
        )?;
        let key = self.problems[&id].key.clone();
        if let Some(s) = self.signatures.get_mut(&key) {
            // Recurrences after the fix count afresh.
            s.problem = None;
            s.recent.clear();
        }
        self.emit(id, ProblemEventKind::Resolved, t);
        Ok(())
    }

    /// Merges `from` into `into`: incidents and signature move over.
    pub fn merge(
        &mut self,
        into: ProblemId,
        from: ProblemId,
        t: Timestamp,
    ) -> Result<(), ProblemError> {
        if into == from {
            return Err(ProblemError::SelfMerge(into));
        }
        let target_state = self.open_problem(into)?.state;
        if !target_state.is_open() {
            return Err(ProblemError::InvalidTransition {
                id: into,
                state: target_state.as_str(),
                action: "receive a merge",
                allowed: "candidate, accepted, known_error",
            });
        }
        let src = self.open_problem(from)?;
        if !src.state.is_open() {
            return Err(ProblemError::InvalidTransition {
                id: from,
                state: src.state.as_str(),
                action: "be merged",
                allowed: "candidate, accepted, known_error",
            });
        }
        src.state = ProblemState::Merged;
        src.merged_into = Some(into);
        let (moved, key, first, last) = (
            src.incident_ids.clone(),
            src.key.clone(),
            src.first_seen,
            src.last_seen,
        );
        self.add_incidents(into, moved, true);
        if let Some(dst) = self.problems.get_mut(&into) {
            dst.first_seen = dst.first_seen.min(first);
            dst.last_seen = dst.last_seen.max(last);
        }
        if let Some(s) = self.signatures.get_mut(&key) {
            s.problem = Some(into);
        }
        self.emit(from, ProblemEventKind::Merged, t);
        self.emit_change(into, ProblemEventKind::Updated, t, None, Some(from));
        Ok(())
    }
}

/// The template clusters a service has signatures under (derived index).
#[derive(Debug, Default)]
struct ServiceClusters {
    /// In the order they were first seen.
    ids: Vec<u32>,
    known: std::collections::HashSet<u32>,
    /// Those whose cluster the miner had merged into another at its
    /// `merges_seen`-th merge.
    merged: Vec<u32>,
    merges_seen: u64,
}

impl ServiceClusters {
    fn add(&mut self, id: u32) {
        if self.known.insert(id) {
            self.ids.push(id);
        }
    }
}

/// Drops all but the newest `n` of a signature's recent incidents (kept in
/// time order).
fn keep_newest(recent: &mut Vec<(IncidentId, Timestamp)>, n: usize) {
    if recent.len() > n {
        recent.drain(..recent.len() - n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn problems(min: usize) -> Problems {
        Problems::new(ProblemsConfig {
            min_incidents: min,
            lookback: Duration::from_secs(7 * 86_400),
            reject_suppression: Duration::from_secs(30 * 86_400),
            miner: MinerConfig::default(),
        })
    }

    fn oom(p: &mut Problems, n: u64, day: i64) -> Classified {
        const PODS: [&str; 6] = [
            "7d9f8b6c5-x2x9z",
            "7d9f8b6c5-k8j2m",
            "5b6c7d8e9-p0q1r",
            "66bd4f9c77-zt5wq",
            "66bd4f9c77-h2n4c",
            "7d9f8b6c5-ttz9a",
        ];
        let pod = PODS[n as usize % PODS.len()];
        let text = format!("KubePodOOMKilled container search in pod search-{pod} was OOM killed");
        p.incident_opened(IncidentId(n), "search", &text, Timestamp(day * DAY))
    }

    fn candidate() -> (Problems, ProblemId) {
        let mut p = problems(3);
        assert_eq!(oom(&mut p, 1, 1).problem, None);
        assert_eq!(oom(&mut p, 2, 2).problem, None);
        let c = oom(&mut p, 3, 3);
        let id = c.problem.expect("third recurrence opens a candidate");
        assert_eq!(c.linked, vec![IncidentId(1), IncidentId(2)]);
        (p, id)
    }

    #[test]
    fn recurrences_within_lookback_open_one_candidate() {
        let (mut p, id) = candidate();
        let pr = p.get(id).unwrap();
        assert_eq!(pr.state, ProblemState::Candidate);
        assert_eq!(
            pr.incident_ids,
            vec![IncidentId(1), IncidentId(2), IncidentId(3)]
        );
        assert_eq!(
            pr.template,
            "KubePodOOMKilled container search in pod <*> was OOM killed"
        );
        assert_eq!(
            pr.signature,
            "search: KubePodOOMKilled container search in pod <*> was OOM killed"
        );
        // A fourth joins it; a different service does not.
        assert_eq!(oom(&mut p, 4, 4).problem, Some(id));
        let other = p.incident_opened(
            IncidentId(9),
            "api",
            "KubePodOOMKilled container search in pod search-ffff was OOM killed",
            Timestamp(5 * DAY),
        );
        assert_eq!(other.problem, None);
        assert_eq!(p.get(id).unwrap().incident_ids.len(), 4);
        let kinds: Vec<_> = p.take_events().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![ProblemEventKind::Created, ProblemEventKind::Updated]
        );
    }

    #[test]
    fn events_name_what_changed_and_signatures_stay_small() {
        let mut p = problems(3);
        for n in 1..=100 {
            oom(&mut p, n, 1);
        }
        let id = p.sorted()[0].id;
        let evs = p.take_events();
        assert_eq!(evs.len(), 98, "created, then one updated per join");
        assert_eq!(
            (evs[0].kind, evs[0].incident),
            (ProblemEventKind::Created, Some(IncidentId(3)))
        );
        assert_eq!(
            (evs[97].kind, evs[97].incident, evs[97].version),
            (ProblemEventKind::Updated, Some(IncidentId(100)), 98)
        );
        let pr = p.get(id).unwrap();
        assert_eq!((pr.incident_ids.len(), pr.incident_count), (100, 100));
        // Its problem holds them: the signature keeps none.
        assert!(p.signature(&pr.key).unwrap().recent.is_empty());
        // While rejected, it keeps only the newest min_incidents.
        p.reject(id, Timestamp(DAY)).unwrap();
        for n in 101..=200 {
            oom(&mut p, n, 2);
        }
        let key = p.get(id).unwrap().key.clone();
        let recent: Vec<_> = p
            .signature(&key)
            .unwrap()
            .recent
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(recent, [IncidentId(198), IncidentId(199), IncidentId(200)]);
    }

    #[test]
    fn recurrences_spread_beyond_lookback_open_nothing() {
        let mut p = problems(3);
        assert_eq!(oom(&mut p, 1, 0).problem, None);
        assert_eq!(oom(&mut p, 2, 5).problem, None);
        assert_eq!(
            oom(&mut p, 3, 13).problem,
            None,
            "the first fell out of the 7-day lookback"
        );
        assert_eq!(
            oom(&mut p, 4, 14).problem,
            None,
            "day 5 is 9 days before day 14"
        );
        assert!(oom(&mut p, 5, 15).problem.is_some(), "days 13, 14, 15");
    }

    #[test]
    fn lifecycle_and_invalid_transitions() {
        let (mut p, id) = candidate();
        let t = Timestamp(10 * DAY);
        let err = p.resolve(id, t).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "problem {id} is candidate: cannot resolve (allowed from: accepted, known_error)"
            )
        );
        p.accept(id, t).unwrap();
        assert!(matches!(
            p.accept(id, t),
            Err(ProblemError::InvalidTransition { .. })
        ));
        assert!(matches!(
            p.reject(id, t),
            Err(ProblemError::InvalidTransition { .. })
        ));
        let bad = KnownError {
            root_cause: " ".into(),
            workaround: "x".into(),
            link: None,
        };
        assert_eq!(
            p.record_known_error(id, bad, t).unwrap_err().to_string(),
            "root_cause: must not be empty"
        );
        let ke = KnownError {
            root_cause: "JVM heap 512Mi too small".into(),
            workaround: "restart with 1Gi".into(),
            link: Some("https://wiki/ke/1".into()),
        };
        p.record_known_error(id, ke.clone(), t).unwrap();
        // A new matching incident gets the known error.
        let c = oom(&mut p, 5, 11);
        assert_eq!(c.problem, Some(id));
        let k = c.known_error.expect("known error attached");
        assert_eq!(
            (k.problem_id, k.root_cause.as_str(), k.workaround.as_str()),
            (id, "JVM heap 512Mi too small", "restart with 1Gi")
        );
        p.resolve(id, t).unwrap();
        assert_eq!(p.get(id).unwrap().state, ProblemState::Resolved);
        assert!(matches!(
            p.accept(id, t),
            Err(ProblemError::InvalidTransition { .. })
        ));
        // After the fix, recurrences count afresh.
        assert_eq!(oom(&mut p, 6, 12).problem, None);
        assert_eq!(
            p.accept(ProblemId(1), t),
            Err(ProblemError::NotFound(ProblemId(1)))
        );
    }

    #[test]
    fn reject_suppresses_the_signature() {
        let (mut p, id) = candidate();
        p.reject(id, Timestamp(3 * DAY)).unwrap();
        for n in 4..10 {
            assert_eq!(oom(&mut p, n, n as i64).problem, None, "suppressed");
        }
        // 30 days later it may become a candidate again.
        for n in 40..42 {
            assert_eq!(oom(&mut p, n, n as i64).problem, None);
        }
        assert!(oom(&mut p, 42, 42).problem.is_some());
    }

    #[test]
    fn merge_moves_incidents_and_signature() {
        let (mut p, a) = candidate();
        for n in 20..23 {
            p.incident_opened(
                IncidentId(n),
                "search",
                "DiskFull volume /data is 97% full",
                Timestamp(n as i64 * DAY / 4),
            );
        }
        let b = p
            .sorted()
            .iter()
            .map(|x| x.id)
            .find(|x| *x != a)
            .expect("second candidate");
        assert_eq!(
            p.merge(a, a, Timestamp(9 * DAY)),
            Err(ProblemError::SelfMerge(a))
        );
        p.take_events();
        p.merge(a, b, Timestamp(9 * DAY)).unwrap();
        let evs = p.take_events();
        assert_eq!(
            evs.iter()
                .map(|e| (e.problem, e.kind, e.merged_from))
                .collect::<Vec<_>>(),
            [
                (b, ProblemEventKind::Merged, None),
                (a, ProblemEventKind::Updated, Some(b))
            ]
        );
        assert_eq!(p.get(b).unwrap().state, ProblemState::Merged);
        assert_eq!(p.get(b).unwrap().merged_into, Some(a));
        assert_eq!(p.get(a).unwrap().incident_ids.len(), 6);
        assert_eq!(
            p.accept(b, Timestamp(9 * DAY)),
            Err(ProblemError::Merged { id: b, into: a })
        );
        // The merged signature now feeds the survivor.
        let c = p.incident_opened(
            IncidentId(30),
            "search",
            "DiskFull volume /data is 99% full",
            Timestamp(9 * DAY),
        );
        assert_eq!(c.problem, Some(a));
    }
}
