//! Incident events as CloudEvents 1.0 (structured JSON mode), the contract
//! with downstream consumers; `schema/incident-event.schema.json` documents it.
//!
//! `id` is `<subject>/<version>`: a consumer that sees an event twice (the
//! publisher is at-least-once) drops the copy by id; two different events
//! never share an id because versions grow by one per incident event.

use serde::Serialize;

use crate::alert::Timestamp;
use crate::engine::state::Incident;
use crate::engine::IncidentEvent;

pub const SOURCE: &str = "correlator";

#[derive(Serialize)]
struct CloudEvent<D: Serialize> {
    specversion: &'static str,
    id: String,
    source: &'static str,
    #[serde(rename = "type")]
    kind: String,
    subject: String,
    time: Timestamp,
    datacontenttype: &'static str,
    data: D,
}

/// A problem event: `correlator.problem.<kind>`, subject = problem id.
pub fn render_problem(ev: &crate::problems::manager::ProblemEvent, p: &crate::problems::state::Problem) -> Vec<u8> {
    let subject = ev.problem.to_string();
    let mut data = p.view();
    data.version = Some(ev.version);
    let ce = CloudEvent {
        specversion: "1.0",
        id: format!("{subject}/{}", ev.version),
        source: SOURCE,
        kind: format!("correlator.problem.{}", ev.kind.as_str()),
        subject,
        time: ev.time,
        datacontenttype: "application/json",
        data,
    };
    serde_json::to_vec(&ce).unwrap_or_default()
}

/// The event's JSON bytes, with the incident as it stands now as data.
pub fn render(ev: &IncidentEvent, incident: &Incident) -> Vec<u8> {
    let subject = ev.incident.to_string();
    let mut data = incident.view(true);
    data.version = Some(ev.version);
    let ce = CloudEvent {
        specversion: "1.0",
        id: format!("{subject}/{}", ev.version),
        source: SOURCE,
        kind: format!("correlator.incident.{}", ev.kind.as_str()),
        subject,
        time: ev.time,
        datacontenttype: "application/json",
        data,
    };
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_vec(&ce).unwrap_or_default()
}
