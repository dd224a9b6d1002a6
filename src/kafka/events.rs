//! Incident events as CloudEvents 1.0 (structured JSON mode), the contract
//! with downstream consumers; `schema/incident-event.schema.json` documents it.
//!
//! `id` is `<subject>/<version>`: a consumer that sees an event twice (the
//! publisher is at-least-once) drops the copy by id; two different events
//! never share an id because versions grow by one per incident event.

use serde::Serialize;

use crate::alert::Fingerprint;
use crate::alert::Timestamp;
use crate::engine::state::{Incident, Member};
use crate::engine::view::{IncidentView, MemberView};
use crate::engine::IncidentEvent;
use crate::store::StoreError;
use serde_json::value::RawValue;

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

/// A problem event: `correlator.problem.<kind>`, subject = problem id.
pub fn render_problem(
    ev: &crate::problems::manager::ProblemEvent,
    p: &crate::problems::state::Problem,
) -> Vec<u8> {
    let mut data = p.view();
    data.version = Some(ev.version);
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
fn incident_event<A: Serialize>(ev: &IncidentEvent, mut data: IncidentView<'_, A>) -> Vec<u8> {
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

/// The event and the incident as they stand now, in the store's binary
/// encoding, LZ4-compressed: what the outbox keeps instead of the JSON,
/// which the publisher renders ([`render_snapshot`]) off the pipeline
/// thread. An event carries every member with its labels, so events are
/// most of what a busy batch writes; members repeat label names and values,
/// and compress several times over. Rendering is a pure function of the
/// snapshot, so a re-publish gives the same bytes.
///
/// `scratch` holds the uncompressed encoding; reusing it across calls
/// spares growing a buffer to the size of a large incident every time.
pub fn snapshot(
    ev: &IncidentEvent,
    incident: &Incident,
    scratch: &mut Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    crate::store::codec::encode_compact_into(
        scratch,
        "outbox",
        &(ev, incident, &incident.members),
    )?;
    let mut out = vec![0u8; 4 + lz4_flex::block::get_maximum_output_size(scratch.len())];
    out[..4].copy_from_slice(&(scratch.len() as u32).to_le_bytes());
    let n =
        lz4_flex::block::compress_into(scratch, &mut out[4..]).map_err(|e| StoreError::Encode {
            table: "outbox",
            reason: e.to_string(),
        })?;
    out.truncate(4 + n);
    Ok(out)
}

/// Snapshots larger than this are refused as corrupt (an event is a few
/// KiB per member).
const SNAPSHOT_MAX: usize = 256 << 20;

/// Rendered members of earlier events, by fingerprint. Most members of an
/// `updated` event have not changed since their incident's previous event,
/// and writing their labels and timestamps again was most of the
/// publisher's work. An entry is used only when every field the event shows
/// is equal, so the bytes are those of [`render`].
#[derive(Default)]
pub struct RenderCache {
    by_fingerprint: std::collections::HashMap<Fingerprint, (Member, Box<RawValue>)>,
}

/// Members remembered at most (about 0.5 KiB each: the member and its
/// JSON); past it the cache starts over.
const RENDER_CACHE_MAX: usize = 100_000;

impl RenderCache {
    fn ensure(&mut self, m: &Member) {
        let fresh = self
            .by_fingerprint
            .get(&m.fingerprint)
            .is_some_and(|(seen, _)| same_view(seen, m));
        if fresh {
            return;
        }
        let json = serde_json::to_string(&MemberView::of(m)).unwrap_or_default();
        if let Ok(raw) = RawValue::from_string(json) {
            self.by_fingerprint.insert(m.fingerprint, (m.clone(), raw));
        }
    }

    fn get(&self, m: &Member) -> Option<&RawValue> {
        self.by_fingerprint.get(&m.fingerprint).map(|(_, r)| &**r)
    }
}

/// Equal in every field [`MemberView`] shows.
fn same_view(a: &Member, b: &Member) -> bool {
    a.fingerprint == b.fingerprint
        && a.status == b.status
        && a.first_seen == b.first_seen
        && a.last_seen == b.last_seen
        && a.occurrences == b.occurrences
        && a.flapping == b.flapping
        && a.joined == b.joined
        && a.labels == b.labels
}

/// [`render`], reusing the rendering of members unchanged since `cache`
/// last saw them.
pub fn render_cached(ev: &IncidentEvent, incident: &Incident, cache: &mut RenderCache) -> Vec<u8> {
    if cache.by_fingerprint.len() + incident.members.len() > RENDER_CACHE_MAX {
        cache.by_fingerprint.clear();
    }
    for m in &incident.members {
        cache.ensure(m);
    }
    if incident.members.iter().any(|m| cache.get(m).is_none()) {
        return render(ev, incident);
    }
    incident_event(ev, incident.view_with(true, |m| cache.get(m)))
}

/// The event JSON of a [`snapshot`].
pub fn render_snapshot(bytes: &[u8], cache: &mut RenderCache) -> Result<Vec<u8>, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "outbox",
        key: "incident snapshot".into(),
        reason,
    };
    let (len, body) = bytes
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated".into()))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > SNAPSHOT_MAX {
        return Err(corrupt(format!("claims {len} bytes")));
    }
    let raw = lz4_flex::block::decompress(body, len).map_err(|e| corrupt(e.to_string()))?;
    let (ev, mut incident, members): (IncidentEvent, Incident, Vec<Member>) =
        crate::store::codec::decode("outbox", &"incident snapshot", &raw)?;
    incident.members = members;
    Ok(render_cached(&ev, &incident, cache))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_rendered_snapshot_equals_the_event_rendered_at_once() {
        let toml = "[[rules]]\nname = \"svc\"\ngroup_by = [\"service\"]\n";
        let cfg = crate::config::Config::parse(toml, "t.toml").unwrap();
        let mut e = crate::engine::Engine::new(crate::engine::EngineConfig::compile(&cfg).unwrap());
        let t = Timestamp(1_767_607_200_000);
        e.handle(br#"{"labels":{"alertname":"Down","service":"api"}}"#, t);
        let out = e.handle(
            br#"{"labels":{"alertname":"Slow","service":"api","zone":"\u00e9\"x"}}"#,
            t.plus(std::time::Duration::from_secs(1)),
        );
        let ev = out.events[0];
        let inc = e.incident(ev.incident).unwrap();
        assert!(inc.members.len() >= 2, "{inc:?}");
        let mut cache = RenderCache::default();
        let direct = render(&ev, inc);
        let deferred =
            render_snapshot(&snapshot(&ev, inc, &mut Vec::new()).unwrap(), &mut cache).unwrap();
        assert_eq!(
            String::from_utf8(deferred).unwrap(),
            String::from_utf8(direct).unwrap()
        );
        // The cache now holds both members; one changes (re-fires after a
        // resolve), and the next event must show the change.
        e.handle(
            br#"{"labels":{"alertname":"Down","service":"api"},"endsAt":"2026-01-05T10:00:05Z"}"#,
            t.plus(std::time::Duration::from_secs(5)),
        );
        let out = e.handle(
            br#"{"labels":{"alertname":"Down","service":"api"}}"#,
            t.plus(std::time::Duration::from_secs(9)),
        );
        let ev = *out.events.last().expect("an event for the re-fire");
        let inc = e.incident(ev.incident).unwrap();
        let direct = render(&ev, inc);
        let cached =
            render_snapshot(&snapshot(&ev, inc, &mut Vec::new()).unwrap(), &mut cache).unwrap();
        assert_eq!(
            String::from_utf8(cached).unwrap(),
            String::from_utf8(direct).unwrap()
        );
        assert!(render_snapshot(b"\x01\x02", &mut cache).is_err());
        assert!(render_snapshot(b"\xff\xff\xff\xff\x00", &mut cache).is_err());
    }
}
