//! Problem records and per-signature bookkeeping (persisted).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::alert::Timestamp;
use crate::engine::state::IncidentId;

/// Deterministic problem id (`prb-%016x`): FNV-1a of the signature and the
/// opening time of the incident that made it a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProblemId(pub u64);

impl fmt::Display for ProblemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "prb-{:016x}", self.0)
    }
}

impl ProblemId {
    pub fn parse(s: &str) -> Option<ProblemId> {
        let hex = s.strip_prefix("prb-")?;
        crate::alert::Fingerprint::parse_hex(hex).map(|f| ProblemId(f.0))
    }
}

impl Serialize for ProblemId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::alert::serialize_id(self.0, self, s)
    }
}

impl<'de> Deserialize<'de> for ProblemId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::alert::deserialize_id(d, "problem id", ProblemId::parse, ProblemId)
    }
}

/// candidate → accepted → known_error → resolved; rejected; merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemState {
    Candidate,
    Accepted,
    KnownError,
    Resolved,
    Rejected,
    Merged,
}

impl ProblemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemState::Candidate => "candidate",
            ProblemState::Accepted => "accepted",
            ProblemState::KnownError => "known_error",
            ProblemState::Resolved => "resolved",
            ProblemState::Rejected => "rejected",
            ProblemState::Merged => "merged",
        }
    }

    /// Still collecting recurrences of its signature.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ProblemState::Candidate | ProblemState::Accepted | ProblemState::KnownError
        )
    }

    pub const ALL: [ProblemState; 6] = [
        ProblemState::Candidate,
        ProblemState::Accepted,
        ProblemState::KnownError,
        ProblemState::Resolved,
        ProblemState::Rejected,
        ProblemState::Merged,
    ];
}

/// Root cause and workaround recorded by an SRE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownError {
    pub root_cause: String,
    pub workaround: String,
    #[serde(default)]
    pub link: Option<String>,
}

/// What a matching incident carries when its signature is a known error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownErrorRef {
    pub problem_id: ProblemId,
    pub root_cause: String,
    pub workaround: String,
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: ProblemId,
    pub state: ProblemState,
    /// `service: template` at creation (the display form of the signature).
    pub signature: String,
    /// The service whose incidents it collects.
    pub key: String,
    pub service: String,
    /// The template as the miner currently has it.
    pub template: String,
    /// Its incidents in join order. Stored one row each (table
    /// `problem_incidents`), not in the problem's row, so that an incident
    /// joining a large problem writes one small row; empty in the read
    /// model's copies, which page them from the store.
    #[serde(skip)]
    pub incident_ids: Vec<IncidentId>,
    /// How many incidents it has (`incident_ids.len()` where that is loaded).
    #[serde(default)]
    pub incident_count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub known_error: Option<KnownError>,
    pub merged_into: Option<ProblemId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: u64,
    /// Its signature: (element: alert service and template cluster, how
    /// many of its signed incidents have it), sorted by cluster, at most `MAX_PROFILE` entries.
    #[serde(default)]
    pub profile: Vec<(u64, u32)>,
    /// How many incidents the profile counts.
    #[serde(default)]
    pub signed: u32,
    /// Rejected: it swallows matching incidents (no new candidate) until then.
    #[serde(default)]
    pub suppressed_until: Option<Timestamp>,
}

/// An incident no problem holds yet, kept to find its recurrences.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Pending {
    pub incident: IncidentId,
    /// When it opened.
    pub at: Timestamp,
    /// Its signature elements (service and template cluster), sorted.
    pub templates: Vec<u64>,
}

/// Bookkeeping per service (the key).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Signature {
    pub key: String,
    /// Its resolved incidents within the lookback that no problem holds:
    /// the newest `MAX_PENDING` at most.
    pub pending: Vec<Pending>,
}

/// A line of the replay's problems.jsonl and the `data` of problem events.
#[derive(Debug, Serialize)]
pub struct ProblemView<'a> {
    pub id: ProblemId,
    pub state: &'static str,
    pub signature: &'a str,
    pub template: &'a str,
    pub service: &'a str,
    pub incident_ids: &'a [IncidentId],
    pub occurrences: usize,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub known_error: Option<&'a KnownError>,
    pub merged_into: Option<ProblemId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A problem in events and the API: what it is and its counts, never its
/// list of incidents (paged by `GET /api/v1/problems/{id}/incidents`), so its
/// size does not grow with the problem.
#[derive(Debug, Serialize)]
pub struct ProblemSummary<'a> {
    pub id: ProblemId,
    pub state: &'static str,
    pub signature: &'a str,
    pub template: &'a str,
    pub service: &'a str,
    pub incident_count: u64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub known_error: Option<&'a KnownError>,
    pub merged_into: Option<ProblemId>,
    /// The incident that joined (`created`, `updated`), if that is what
    /// changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<IncidentId>,
    /// The problem merged into this one (`updated` after a merge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<ProblemId>,
    pub version: u64,
}

impl Problem {
    /// Adds an incident (the caller checks it is not there yet).
    pub fn add_incident(&mut self, id: IncidentId) {
        self.incident_ids.push(id);
        self.incident_count = self.incident_ids.len() as u64;
    }

    /// A copy without the incident list (its count kept), for readers that
    /// page the list from the store.
    pub fn without_incidents(&self) -> Problem {
        Problem {
            id: self.id,
            state: self.state,
            signature: self.signature.clone(),
            key: self.key.clone(),
            service: self.service.clone(),
            template: self.template.clone(),
            incident_ids: Vec::new(),
            incident_count: self.incident_count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            known_error: self.known_error.clone(),
            merged_into: self.merged_into,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            profile: self.profile.clone(),
            signed: self.signed,
            suppressed_until: self.suppressed_until,
        }
    }

    /// The problem as events and the API show it (no `incident_id` or
    /// `merged_from`: the caller sets what changed).
    pub fn summary(&self) -> ProblemSummary<'_> {
        ProblemSummary {
            id: self.id,
            state: self.state.as_str(),
            signature: &self.signature,
            template: &self.template,
            service: &self.service,
            incident_count: self.incident_count,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            known_error: self.known_error.as_ref(),
            merged_into: self.merged_into,
            incident_id: None,
            merged_from: None,
            version: self.version,
        }
    }

    /// The replay's problems.jsonl line: the whole incident list.
    pub fn view(&self) -> ProblemView<'_> {
        ProblemView {
            id: self.id,
            state: self.state.as_str(),
            signature: &self.signature,
            template: &self.template,
            service: &self.service,
            incident_ids: &self.incident_ids,
            occurrences: self.incident_ids.len(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            known_error: self.known_error.as_ref(),
            merged_into: self.merged_into,
            version: None,
        }
    }
}
