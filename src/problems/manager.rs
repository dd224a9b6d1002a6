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
use crate::problems::miner::{ClusterId, MinerConfig, MinerError, MinerState, TemplateMiner};
use crate::problems::state::{
    KnownError, KnownErrorRef, Pending, Problem, ProblemId, ProblemState, Signature,
};

#[derive(Debug, Clone)]
pub struct ProblemsConfig {
    pub min_incidents: usize,
    /// Least similarity (weighted Jaccard of template sets) for an incident
    /// to match a problem or another incident.
    pub similarity: f64,
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
        if let Some(s) = p.template_similarity {
            miner.similarity = s;
        }
        if let Some(d) = p.depth {
            miner.depth = d;
        }
        miner.validate()?;
        Ok(ProblemsConfig {
            min_incidents: p.min_incidents.max(2),
            similarity: p.similarity,
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
    /// How similar the incident is to the problem (0 without one).
    pub similarity: f64,
    /// The templates it shares with the problem (final match only).
    pub matched: Vec<String>,
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
    /// service -> its problems that may still match (all but resolved ones),
    /// in creation order (derived index).
    by_service: std::collections::HashMap<String, Vec<ProblemId>>,
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
    /// merged) at or before `cutoff` (retention), and from the index of
    /// the problems an incident may match.
    pub fn expire(&mut self, cutoff: Timestamp) {
        let gone: Vec<ProblemId> = self
            .problems
            .values()
            .filter(|p| !p.state.is_open() && p.updated_at <= cutoff)
            .map(|p| p.id)
            .collect();
        for id in gone {
            if let Some(p) = self.problems.remove(&id) {
                // No longer a problem an incident may match.
                if let Some(v) = self.by_service.get_mut(&p.service) {
                    v.retain(|x| *x != id);
                }
            }
        }
    }

    pub fn restore(&mut self, problems: Vec<Problem>, signatures: Vec<Signature>) {
        let mut live: Vec<(Timestamp, ProblemId, String)> = Vec::new();
        for p in problems {
            if p.state != ProblemState::Resolved {
                live.push((p.created_at, p.id, p.service.clone()));
            }
            self.problems.insert(p.id, p);
        }
        live.sort();
        for (_, id, svc) in live {
            self.by_service.entry(svc).or_default().push(id);
        }
        for s in signatures {
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

    /// The templates of an incident's alerts as the miner knows them now,
    /// without learning (sorted, distinct). Unknown texts are left out.
    fn known_templates(&mut self, texts: &[AlertText]) -> Vec<u64> {
        let mut v: Vec<u64> = Vec::with_capacity(texts.len());
        for t in texts {
            if let Some(c) = self.miner.match_line(&t.text) {
                v.push(element(&t.service, self.miner.resolve(c).0));
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Learns an incident's alert texts and returns their template
    /// clusters (sorted, distinct).
    fn learn_templates(&mut self, texts: &[AlertText]) -> Vec<u64> {
        let mut v = Vec::with_capacity(texts.len());
        for t in texts {
            v.push((&t.service, self.miner.add(&t.text)));
            if self.signatures.is_tracking() {
                // Only a persisting engine needs the lines to re-feed after a restart.
                self.mined.push(t.text.clone());
                self.unsnapshotted += 1;
            }
        }
        // Resolved once all are learnt: a later line may merge an earlier cluster.
        let mut v: Vec<u64> = v
            .into_iter()
            .map(|(s, c)| element(s, self.miner.resolve(c).0))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// A problem's profile with cluster ids resolved through the miner's
    /// merges, as (cluster, weight) sorted by cluster.
    fn weights(&self, p: &Problem) -> Vec<(u64, f64)> {
        let n = f64::from(p.signed.max(1));
        let mut v: Vec<(u64, u32)> = p
            .profile
            .iter()
            .map(|(c, k)| (self.resolve_element(*c), *k))
            .collect();
        v.sort_unstable();
        let mut out: Vec<(u64, f64)> = Vec::with_capacity(v.len());
        for (c, k) in v {
            match out.last_mut() {
                Some((lc, w)) if *lc == c => *w = (*w + f64::from(k) / n).min(1.0),
                _ => out.push((c, f64::from(k) / n)),
            }
        }
        out
    }

    /// The best problem of `service` for templates `set`: open problems,
    /// and rejected ones while they suppress. Ties: the earlier created.
    /// An element with its cluster resolved through the miner's merges.
    fn resolve_element(&self, e: u64) -> u64 {
        (e & !0xffff_ffff) | u64::from(self.miner.resolve(ClusterId(e as u32)).0)
    }

    fn resolve_all(&self, v: &[u64]) -> Vec<u64> {
        let mut r: Vec<u64> = v.iter().map(|e| self.resolve_element(*e)).collect();
        r.sort_unstable();
        r.dedup();
        r
    }

    fn best_problem(&self, service: &str, set: &[u64], t: Timestamp) -> Option<(ProblemId, f64)> {
        let ids = self.by_service.get(service)?;
        let mut best: Option<(ProblemId, f64, Timestamp)> = None;
        for id in ids {
            let Some(own) = self.problems.get(id) else {
                continue;
            };
            // A merged problem's signature still matches, for its survivor.
            let Some(pid) = self.survivor(*id) else {
                continue;
            };
            let Some(p) = self.problems.get(&pid) else {
                continue;
            };
            let live = p.state.is_open()
                || (p.state == ProblemState::Rejected && p.suppressed_until.is_some_and(|u| u > t));
            if !live {
                continue;
            }
            let s = similarity(set, &self.weights(own));
            if s + f64::EPSILON < self.cfg.similarity {
                continue;
            }
            let better = match best {
                None => true,
                Some((bid, bs, bc)) => {
                    s > bs + f64::EPSILON
                        || ((s - bs).abs() <= f64::EPSILON && (p.created_at, pid) < (bc, bid))
                }
            };
            if better {
                best = Some((pid, s, p.created_at));
            }
        }
        best.map(|(id, s, _)| (id, s))
    }

    /// The problem `id` was merged into, followed to the end (itself if not
    /// merged); `None` for a chain longer than the number of problems.
    fn survivor(&self, mut id: ProblemId) -> Option<ProblemId> {
        for _ in 0..=self.problems.len() {
            match self.problems.get(&id)?.merged_into {
                Some(next) => id = next,
                None => return Some(id),
            }
        }
        None
    }

    fn known_error_of(&self, pid: ProblemId) -> Option<KnownErrorRef> {
        let p = self.problems.get(&pid)?;
        match (p.state, &p.known_error) {
            (ProblemState::KnownError, Some(ke)) => Some(KnownErrorRef {
                problem_id: pid,
                root_cause: ke.root_cause.clone(),
                workaround: ke.workaround.clone(),
                link: ke.link.clone(),
            }),
            _ => None,
        }
    }

    /// The provisional match of a just-opened incident: the open problem of
    /// `service` its alerts' templates (`texts`: `alertname summary` of each
    /// alert) match best, as the miner knows them now. It learns nothing and
    /// files nothing: the incident joins a problem's list when it resolves
    /// ([`Problems::incident_resolved`]).
    pub fn incident_opened(
        &mut self,
        service: &str,
        texts: &[AlertText],
        t: Timestamp,
    ) -> Classified {
        let set = self.known_templates(texts);
        let mut out = Classified::default();
        if set.is_empty() {
            return out;
        }
        if let Some((pid, s)) = self.best_problem(service, &set, t) {
            if self.problems.get(&pid).is_some_and(|p| p.state.is_open()) {
                out.problem = Some(pid);
                out.similarity = s;
                out.known_error = self.known_error_of(pid);
            }
        }
        out
    }

    /// The final match of an incident, once it resolved: its alerts' texts
    /// are learnt, and the incident joins the open problem of `service` it
    /// matches best; failing that, it waits among the service's unfiled
    /// incidents, and once `min_incidents` of those (itself included) are
    /// similar to it within `lookback`, they open a candidate together.
    pub fn incident_resolved(
        &mut self,
        id: IncidentId,
        opened: Timestamp,
        service: &str,
        texts: &[AlertText],
        t: Timestamp,
    ) -> Classified {
        let set = self.learn_templates(texts);
        let mut out = Classified::default();
        if set.is_empty() {
            return out;
        }
        if let Some((pid, s)) = self.best_problem(service, &set, t) {
            out.similarity = s;
            out.matched = self.matched(pid, &set);
            if self.problems.get(&pid).is_some_and(|p| p.state.is_open()) {
                self.add_incidents(pid, [id], false);
                let p = self.problems.get_mut(&pid).expect("checked");
                p.last_seen = p.last_seen.max(opened);
                add_profile(p, &set);
                self.refresh_display(pid);
                out.problem = Some(pid);
                out.known_error = self.known_error_of(pid);
                self.emit_change(pid, ProblemEventKind::Updated, t, Some(id), None);
            }
            // A rejected problem that still suppresses swallows it.
            return out;
        }
        let floor = t.minus(self.cfg.lookback);
        let min = self.cfg.min_incidents;
        let theta = self.cfg.similarity;
        let sig = self
            .signatures
            .get_or_insert_with(service.to_string(), || Signature {
                key: service.to_string(),
                ..Default::default()
            });
        sig.pending.retain(|p| p.at >= floor);
        let pending = std::mem::take(&mut sig.pending);
        let similar: Vec<usize> = pending
            .iter()
            .enumerate()
            .filter(|(_, p)| jaccard(&set, &self.resolve_all(&p.templates)) + f64::EPSILON >= theta)
            .map(|(i, _)| i)
            .collect();
        let sig = self.signatures.get_mut(service).expect("inserted above");
        sig.pending = pending;
        if similar.len() + 1 < min {
            sig.pending.push(Pending {
                incident: id,
                at: opened,
                templates: set,
            });
            if sig.pending.len() > MAX_PENDING {
                sig.pending.drain(..sig.pending.len() - MAX_PENDING);
            }
            return out;
        }
        // A new candidate with every similar unfiled incident.
        let mut members: Vec<Pending> = Vec::with_capacity(similar.len() + 1);
        for i in similar.into_iter().rev() {
            members.push(sig.pending.remove(i));
        }
        members.reverse();
        members.push(Pending {
            incident: id,
            at: opened,
            templates: set.clone(),
        });
        let first_seen = members.iter().map(|m| m.at).min().unwrap_or(opened);
        let last_seen = members.iter().map(|m| m.at).max().unwrap_or(opened);
        let mut h = fnv1a_64(service.as_bytes());
        for c in &set {
            h = fnv1a(h, &(c >> 32).to_be_bytes());
            h = fnv1a(h, self.miner.template(ClusterId(*c as u32)).as_bytes());
        }
        h = fnv1a(h, &t.0.to_be_bytes());
        while self.problems.contains_key(&ProblemId(h)) {
            h = fnv1a(h, &[1]);
        }
        let pid = ProblemId(h);
        let mut problem = Problem {
            id: pid,
            state: ProblemState::Candidate,
            signature: String::new(),
            key: service.to_string(),
            service: service.to_string(),
            template: String::new(),
            incident_ids: Vec::new(),
            incident_count: 0,
            first_seen,
            last_seen,
            known_error: None,
            merged_into: None,
            created_at: t,
            updated_at: t,
            version: 0,
            profile: Vec::new(),
            signed: 0,
            suppressed_until: None,
        };
        for m in &members {
            add_profile(&mut problem, &self.resolve_all(&m.templates));
        }
        self.problems.insert(pid, problem);
        self.by_service
            .entry(service.to_string())
            .or_default()
            .push(pid);
        self.refresh_display(pid);
        self.add_incidents(pid, members.iter().map(|m| m.incident), false);
        self.emit_change(pid, ProblemEventKind::Created, t, Some(id), None);
        out.problem = Some(pid);
        out.similarity = 1.0;
        out.matched = self.matched(pid, &set);
        out.linked = members
            .iter()
            .map(|m| m.incident)
            .filter(|i| *i != id)
            .collect();
        out
    }

    /// The templates of `set` that problem `pid` has (their text).
    fn matched(&self, pid: ProblemId, set: &[u64]) -> Vec<String> {
        let Some(p) = self.problems.get(&pid) else {
            return Vec::new();
        };
        let w = self.weights(p);
        set.iter()
            .filter(|c| w.iter().any(|(x, _)| x == *c))
            .map(|c| self.miner.template(ClusterId(*c as u32)))
            .collect()
    }

    /// Sets a problem's display signature and template from its profile:
    /// the templates at least half its incidents have, most frequent first
    /// (ties: template text).
    fn refresh_display(&mut self, pid: ProblemId) {
        let Some(p) = self.problems.get(&pid) else {
            return;
        };
        let mut w: Vec<(f64, String)> = self
            .weights(p)
            .into_iter()
            .map(|(c, w)| (w, self.miner.template(ClusterId(c as u32))))
            .collect();
        w.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let top: Vec<&str> = w
            .iter()
            .enumerate()
            .filter(|(i, (x, _))| *i == 0 || *x >= 0.5)
            .map(|(_, (_, s))| s.as_str())
            .collect();
        let template = top.first().copied().unwrap_or_default().to_string();
        let signature = format!("{}: {}", p.service, top.join(" + "));
        let p = self.problems.get_mut(&pid).expect("checked");
        p.template = template;
        p.signature = signature;
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
        let until = t.plus(self.cfg.reject_suppression);
        if let Some(p) = self.problems.get_mut(&id) {
            p.suppressed_until = Some(until);
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
        // Recurrences after the fix count afresh.
        let svc = self.problems[&id].service.clone();
        if let Some(v) = self.by_service.get_mut(&svc) {
            v.retain(|p| *p != id);
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
        let (moved, first, last) = (src.incident_ids.clone(), src.first_seen, src.last_seen);
        self.add_incidents(into, moved, true);
        if let Some(dst) = self.problems.get_mut(&into) {
            dst.first_seen = dst.first_seen.min(first);
            dst.last_seen = dst.last_seen.max(last);
        }
        // Its signature keeps matching (see `best_problem`), for the survivor.
        self.emit(from, ProblemEventKind::Merged, t);
        self.emit_change(into, ProblemEventKind::Updated, t, None, Some(from));
        Ok(())
    }
}

/// Unfiled incidents a service keeps at most (the oldest go first).
pub const MAX_PENDING: usize = 256;
/// Distinct templates a problem's profile keeps at most (the rarest go first).
pub const MAX_PROFILE: usize = 64;
/// Distinct alert texts of one incident its signature is built from at most
/// (the first to join).
pub const MAX_TEXTS: usize = 64;

/// One alert of an incident, as its signature reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertText {
    /// The alert's own service (in a cascade, not the incident's).
    pub service: String,
    /// `alertname summary`, mined into a template.
    pub text: String,
}

/// A signature element: the alert's service (hashed, high 32 bits) and its
/// template cluster (low 32 bits). The same template on another service is
/// another element.
fn element(service: &str, cluster: u32) -> u64 {
    (fnv1a_64(service.as_bytes()) & !0xffff_ffff) | u64::from(cluster)
}

/// Counts `set` into a problem's profile (one more signed incident).
fn add_profile(p: &mut Problem, set: &[u64]) {
    p.signed = p.signed.saturating_add(1);
    for c in set {
        match p.profile.iter_mut().find(|(x, _)| x == c) {
            Some((_, k)) => *k = k.saturating_add(1),
            None => p.profile.push((*c, 1)),
        }
    }
    if p.profile.len() > MAX_PROFILE {
        // Keep the most frequent; ties: the lower cluster id.
        p.profile.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        p.profile.truncate(MAX_PROFILE);
    }
    p.profile.sort_unstable();
}

/// Weighted Jaccard of an incident's templates (weight 1 each) and a
/// problem's profile (weight = share of its incidents with the template):
/// Σ min / Σ max over the union. Both sorted by cluster.
pub fn similarity(set: &[u64], profile: &[(u64, f64)]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    let (mut i, mut j) = (0, 0);
    while i < set.len() || j < profile.len() {
        match (set.get(i), profile.get(j)) {
            (Some(a), Some((b, w))) if a == b => {
                num += w.min(1.0);
                den += 1.0;
                i += 1;
                j += 1;
            }
            (Some(a), Some((b, _))) if a < b => {
                den += 1.0;
                i += 1;
            }
            (Some(_), None) => {
                den += 1.0;
                i += 1;
            }
            (_, Some((_, w))) => {
                den += w.min(1.0);
                j += 1;
            }
            (None, None) => break,
        }
    }
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Jaccard of two sorted template sets.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let w: Vec<(u64, f64)> = b.iter().map(|c| (*c, 1.0)).collect();
    similarity(a, &w)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn problems(min: usize) -> Problems {
        Problems::new(ProblemsConfig {
            min_incidents: min,
            similarity: 0.5,
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
        file(p, n, "search", &[("search", &text)], Timestamp(day * DAY))
    }

    /// An incident of `service` with alerts (alert service, text) that
    /// settles at `t` (its final match).
    fn file(
        p: &mut Problems,
        n: u64,
        service: &str,
        alerts: &[(&str, &str)],
        t: Timestamp,
    ) -> Classified {
        let texts: Vec<AlertText> = alerts
            .iter()
            .map(|(s, x)| AlertText {
                service: s.to_string(),
                text: x.to_string(),
            })
            .collect();
        p.incident_resolved(IncidentId(n), t, service, &texts, t)
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
        let other = file(
            &mut p,
            9,
            "api",
            &[(
                "api",
                "KubePodOOMKilled container search in pod search-ffff was OOM killed",
            )],
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
        // Its problem holds them: the service keeps none unfiled.
        assert!(p.signature(&pr.key).unwrap().pending.is_empty());
        // While rejected, it swallows its recurrences: none is kept.
        p.reject(id, Timestamp(DAY)).unwrap();
        for n in 101..=200 {
            assert_eq!(oom(&mut p, n, 2).problem, None);
        }
        assert!(p.signature("search").unwrap().pending.is_empty());
        // A service keeps only the newest MAX_PENDING unfiled incidents.
        let mut p = problems(MAX_PENDING + 100);
        for n in 0..(MAX_PENDING as u64 + 10) {
            oom(&mut p, 1000 + n, 2);
        }
        let pending = &p.signature("search").unwrap().pending;
        assert_eq!(pending.len(), MAX_PENDING);
        assert_eq!(pending[0].incident, IncidentId(1010));
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
            file(
                &mut p,
                n,
                "search",
                &[("search", "DiskFull volume /data is 97% full")],
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
        let c = file(
            &mut p,
            30,
            "search",
            &[("search", "DiskFull volume /data is 99% full")],
            Timestamp(9 * DAY),
        );
        assert_eq!(c.problem, Some(a));
    }
}
