//! Incident events as CloudEvents 1.0 (structured JSON mode), the contract
//! with downstream consumers; `schema/incident-event.schema.json` documents it.
//!
//! `id` is `<subject>/<version>`: a consumer that sees an event twice (the
//! publisher is at-least-once) drops the copy by id; two different events
//! never share an id because versions grow by one per incident event.

use serde::Serialize;

use crate::alert::Timestamp;
use crate::engine::state::Incident;
use crate::engine::view::IncidentView;
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

/// Wraps `data` in the envelope; `entity` is `incident` or `problem`.
fn envelope<D: Serialize>(
    entity: &str,
    subject: String,
    version: u64,
    kind: &str,
    time: Timestamp,
    data: D,
) -> Vec<u8> {
    let ce = CloudEvent {
        specversion: "1.0",
        id: format!("{subject}/{version}"),
        source: SOURCE,
        kind: format!("correlator.{entity}.{kind}"),
        subject,
        time,
        datacontenttype: "application/json",
        data,
    };
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_vec(&ce).unwrap_or_default()
}

/// A problem event: `correlator.problem.<kind>`, subject = problem id;
/// `schema/problem-event.schema.json` documents it. `data` is the problem's
/// summary (counts, never its incident list) and what changed.
pub fn render_problem(
    ev: &crate::problems::manager::ProblemEvent,
    p: &crate::problems::state::Problem,
) -> Vec<u8> {
    let mut data = p.summary();
    data.version = ev.version;
    data.incident_id = ev.incident;
    data.merged_from = ev.merged_from;
    envelope(
        "problem",
        ev.problem.to_string(),
        ev.version,
        ev.kind.as_str(),
        ev.time,
        data,
    )
}

/// The event's JSON bytes, with the incident as it stands now as data.
pub fn render(ev: &IncidentEvent, incident: &Incident) -> Vec<u8> {
    incident_event(ev, incident.view(true))
}

/// The envelope of an incident event around `data` (its version set).
pub(crate) fn incident_event<A: Serialize>(
    ev: &IncidentEvent,
    mut data: IncidentView<'_, A>,
) -> Vec<u8> {
    data.version = Some(ev.version);
    envelope(
        "incident",
        ev.incident.to_string(),
        ev.version,
        ev.kind.as_str(),
        ev.time,
        data,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Problem events follow their schema: every required field, no field it
    /// does not name, a listed type and an id of its pattern; and they stay
    /// small as the problem grows.
    #[test]
    fn problem_events_follow_their_schema_and_carry_no_incident_list() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/problem-event.schema.json")).unwrap();
        // Alerts expire after 1 s; incidents close as they resolve (and
        // meet problem management then).
        let cfg = crate::config::Config::parse(
            "[dedup]\nresolve_timeout = \"1s\"\n[incidents]\ndefault_reopen_window = \"0s\"\n",
            "t.toml",
        )
        .unwrap();
        let mut e = crate::engine::Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap());
        let mut events = Vec::new();
        for i in 0..=300 {
            let now = Timestamp(1_767_607_200_000 + 2_000 * i);
            if i < 300 {
                let body = format!(
                    r#"{{"labels":{{"alertname":"Storm-{i}","service":"storm"}},"annotations":{{"summary":"pod crashloop"}}}}"#
                );
                e.handle(body.as_bytes(), now);
            } else {
                e.tick(now);
            }
            for ev in e.take_problem_events() {
                events.push(render_problem(&ev, e.problem(ev.problem).unwrap()));
            }
        }
        assert_eq!(events.len(), 298, "created, then one per join");
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let names = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect()
        };
        let re =
            regex::Regex::new(schema["properties"]["id"]["pattern"].as_str().unwrap()).unwrap();
        let types = names(&schema["properties"]["type"]["enum"]);
        let def = &schema["$defs"]["problem"];
        for bytes in &events {
            assert!(bytes.len() < 1024, "{} bytes", bytes.len());
            let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            for (obj, s) in [(&v, &schema), (&v["data"], def)] {
                for k in names(&s["required"]) {
                    assert!(obj.get(&k).is_some(), "missing {k}: {obj}");
                }
                for k in keys(obj) {
                    assert!(s["properties"].get(&k).is_some(), "{k} not in the schema");
                }
            }
            assert!(types.contains(&v["type"].as_str().unwrap().to_string()));
            assert!(re.is_match(v["id"].as_str().unwrap()), "{}", v["id"]);
        }
        let last: serde_json::Value = serde_json::from_slice(events.last().unwrap()).unwrap();
        assert_eq!(last["type"], "correlator.problem.updated");
        assert_eq!(
            (&last["data"]["incident_count"], &last["data"]["version"]),
            (&serde_json::json!(300), &serde_json::json!(298))
        );
        assert!(last["data"]["incident_id"]
            .as_str()
            .unwrap()
            .starts_with("inc-"));
    }

    /// Every field the schema requires is present, with the pattern it gives.
    #[test]
    fn rendered_event_has_every_schema_required_field() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/incident-event.schema.json")).unwrap();
        let cfg = crate::config::Config::parse("", "t.toml").unwrap();
        let mut e = crate::engine::Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap());
        let body = br#"{"labels":{"alertname":"Down","service":"api","severity":"critical"},"annotations":{"summary":"api is down"}}"#;
        let out = e.handle(body, Timestamp(1_767_607_200_000));
        let ev = out.events[0];
        let v: serde_json::Value =
            serde_json::from_slice(&render(&ev, e.incident(ev.incident).unwrap())).unwrap();
        for k in schema["required"].as_array().unwrap() {
            assert!(v.get(k.as_str().unwrap()).is_some(), "missing {k}");
        }
        for k in schema["$defs"]["incident"]["required"].as_array().unwrap() {
            assert!(
                v["data"].get(k.as_str().unwrap()).is_some(),
                "data missing {k}"
            );
        }
        let types: Vec<&str> = schema["properties"]["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert!(types.contains(&v["type"].as_str().unwrap()));
        let re =
            regex::Regex::new(schema["properties"]["id"]["pattern"].as_str().unwrap()).unwrap();
        assert!(re.is_match(v["id"].as_str().unwrap()), "{}", v["id"]);
        assert_eq!(v["data"]["version"], 1);
    }

    /// The root cause travels as an object naming its service and alertname
    /// beside the bare fingerprint, as the schema describes it; the replay
    /// line (no version) keeps its fixed shape without it.
    #[test]
    fn event_names_the_root_cause_alert_and_replay_line_does_not() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/incident-event.schema.json")).unwrap();
        let rca = &schema["$defs"]["incident"]["properties"]["root_cause_alert"];
        let cfg = crate::config::Config::parse(
            "[[rules]]\nname = \"r\"\ngroup_by = [\"env\"]\n[topology]\nlabel = \"service\"\n\
             [topology.depends_on]\ncheckout = [\"postgres\"]\n",
            "t.toml",
        )
        .unwrap();
        let mut e = crate::engine::Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap());
        let t = Timestamp(1_767_607_200_000);
        e.handle(
            br#"{"labels":{"alertname":"CheckoutErrors","service":"checkout","env":"prod","severity":"critical"}}"#,
            t,
        );
        let out = e.handle(
            br#"{"labels":{"alertname":"PgDown","service":"postgres","env":"prod","severity":"warning"}}"#,
            Timestamp(t.0 + 1_000),
        );
        let ev = *out.events.last().unwrap();
        let inc = e.incident(ev.incident).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&render(&ev, inc)).unwrap();
        let root = &v["data"]["root_cause_alert"];
        assert_eq!(root["service"], "postgres", "{v}");
        assert_eq!(root["alertname"], "PgDown");
        assert_eq!(root["fingerprint"], v["data"]["root_cause"]);
        for k in rca["required"].as_array().unwrap() {
            assert!(root.get(k.as_str().unwrap()).is_some(), "missing {k}");
        }
        let line = serde_json::to_value(inc.view(false)).unwrap();
        assert!(line.get("root_cause_alert").is_none(), "{line}");
        assert_eq!(line["root_cause"], v["data"]["root_cause"]);
    }
}
