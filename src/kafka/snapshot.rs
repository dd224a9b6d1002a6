//! Incident snapshots: what the outbox keeps for an incident event instead
//! of its JSON, rendered to the event by the publisher off the pipeline
//! thread.
//!
//! An event carries every member with its labels, so events are most of
//! what a busy batch writes, and most members of an `updated` event have
//! not changed since their incident's previous event. Both sides therefore
//! keep the work they did for a member until it changes:
//! - the pipeline ([`SnapshotWriter`]) reuses a member's encoding while the
//!   member is equal to the one it encoded;
//! - the publisher ([`RenderCache`]) reuses a member's JSON while the
//!   member's encoded bytes are equal to those it rendered.
//!
//! Both checks compare content, never a counter, so neither cache can serve
//! stale data (after a restart, or from entries written by an earlier
//! process), and rendering stays a pure function of the snapshot: a
//! re-publish gives the same bytes as [`events::render`].
//!
//! Layout ([`PayloadKind::IncidentParts`]; the store compresses it):
//! `u32 LE header_len, header` (positional
//! MessagePack of the event and the incident without members), `u32 LE
//! count`, then per member in view order (first seen, then fingerprint)
//! `u64 LE fingerprint, u32 LE len, member` (positional MessagePack).
//! [`PayloadKind::IncidentSnapshot`] entries (the whole `(event, incident,
//! members)` as one value, written by earlier builds) are still rendered.
//!
//! [`PayloadKind::IncidentParts`]: crate::store::PayloadKind::IncidentParts
//! [`PayloadKind::IncidentSnapshot`]: crate::store::PayloadKind::IncidentSnapshot

use std::collections::hash_map::Entry;

use serde_json::value::RawValue;

use crate::alert::Fingerprint;
use crate::engine::state::{Incident, IncidentId, Member};
use crate::engine::view::MemberView;
use crate::engine::{FastMap, IncidentEvent};
use crate::kafka::events;
use crate::store::codec;
use crate::store::{PayloadKind, StoreError};

/// Members remembered at most by either cache (a few hundred bytes each);
/// past it a cache starts over.
const CACHE_MAX: usize = 100_000;

/// Encodes snapshots on the pipeline thread, reusing the encoding of
/// members unchanged since it last encoded them.
#[derive(Default)]
pub struct SnapshotWriter {
    /// The snapshot being built (reused: its capacity fits large incidents).
    raw: Vec<u8>,
    /// Member positions in view order (reused).
    order: Vec<usize>,
    members: FastMap<(IncidentId, Fingerprint), (Member, Vec<u8>)>,
}

impl SnapshotWriter {
    /// The event and the incident as they stand now.
    pub fn write(
        &mut self,
        ev: &IncidentEvent,
        incident: &Incident,
    ) -> Result<Vec<u8>, StoreError> {
        if self.members.len() + incident.members.len() > CACHE_MAX {
            self.members.clear();
        }
        let raw = &mut self.raw;
        raw.clear();
        raw.extend_from_slice(&[0; 4]);
        codec::encode_compact_append(raw, "outbox", &(ev, incident))?;
        let header_len = (raw.len() - 4) as u32;
        raw[..4].copy_from_slice(&header_len.to_le_bytes());
        let order = &mut self.order;
        order.clear();
        order.extend(0..incident.members.len());
        order.sort_by_key(|&i| {
            (
                incident.members[i].first_seen,
                incident.members[i].fingerprint,
            )
        });
        raw.extend_from_slice(&(order.len() as u32).to_le_bytes());
        for &i in order.iter() {
            let m = &incident.members[i];
            let (_, bytes) = match self.members.entry((incident.id, m.fingerprint)) {
                Entry::Occupied(o) => {
                    let slot = o.into_mut();
                    if slot.0 != *m {
                        slot.0.clone_from(m);
                        slot.1.clear();
                        codec::encode_compact_append(&mut slot.1, "outbox", m)?;
                    }
                    slot
                }
                Entry::Vacant(v) => {
                    let mut bytes = Vec::new();
                    codec::encode_compact_append(&mut bytes, "outbox", m)?;
                    v.insert((m.clone(), bytes))
                }
            };
            raw.extend_from_slice(&m.fingerprint.0.to_le_bytes());
            raw.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            raw.extend_from_slice(bytes);
        }
        Ok(raw.clone())
    }
}

/// A member's encoded bytes and their JSON.
type Rendered = (Box<[u8]>, Box<RawValue>);

/// Rendered members of earlier events, by (incident, fingerprint).
#[derive(Default)]
pub struct RenderCache {
    members: FastMap<(IncidentId, Fingerprint), Rendered>,
}

/// The event JSON of an outbox payload of kind `kind` (one of the two
/// snapshot kinds).
pub fn render(
    kind: PayloadKind,
    bytes: &[u8],
    cache: &mut RenderCache,
) -> Result<Vec<u8>, StoreError> {
    match kind {
        PayloadKind::IncidentParts => render_parts(bytes, cache),
        _ => {
            let (ev, mut incident, members): (IncidentEvent, Incident, Vec<Member>) =
                codec::decode("outbox", &"incident snapshot", bytes)?;
            incident.members = members;
            Ok(events::render(&ev, &incident))
        }
    }
}

fn corrupt(reason: String) -> StoreError {
    StoreError::Corrupt {
        table: "outbox",
        key: "incident snapshot".into(),
        reason,
    }
}

/// Reads `n` bytes off the front of `b`.
fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], StoreError> {
    if b.len() < n {
        return Err(corrupt(format!(
            "truncated: {n} bytes expected, {} left",
            b.len()
        )));
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn take_u32(b: &mut &[u8]) -> Result<usize, StoreError> {
    let mut a = [0; 4];
    a.copy_from_slice(take(b, 4)?);
    Ok(u32::from_le_bytes(a) as usize)
}

fn render_parts(mut b: &[u8], cache: &mut RenderCache) -> Result<Vec<u8>, StoreError> {
    let header_len = take_u32(&mut b)?;
    let (ev, incident): (IncidentEvent, Incident) =
        codec::decode("outbox", &"incident snapshot", take(&mut b, header_len)?)?;
    let count = take_u32(&mut b)?;
    if cache.members.len() + count > CACHE_MAX {
        cache.members.clear();
    }
    let mut keys = Vec::with_capacity(count.min(b.len() / 12));
    for _ in 0..count {
        let mut fp = [0; 8];
        fp.copy_from_slice(take(&mut b, 8)?);
        let fp = Fingerprint(u64::from_le_bytes(fp));
        let len = take_u32(&mut b)?;
        let bytes = take(&mut b, len)?;
        let key = (incident.id, fp);
        let fresh = cache
            .members
            .get(&key)
            .is_some_and(|(seen, _)| **seen == *bytes);
        if !fresh {
            let m: Member = codec::decode("outbox", &"incident snapshot member", bytes)?;
            let json =
                serde_json::to_string(&MemberView::of(&m)).map_err(|e| corrupt(e.to_string()))?;
            let json = RawValue::from_string(json).map_err(|e| corrupt(e.to_string()))?;
            cache.members.insert(key, (bytes.into(), json));
        }
        keys.push(key);
    }
    if !b.is_empty() {
        return Err(corrupt(format!("{} bytes after the last member", b.len())));
    }
    let alerts = keys
        .iter()
        .map(|k| cache.members.get(k).map(|(_, j)| &**j))
        .collect::<Option<Vec<&RawValue>>>()
        .ok_or_else(|| corrupt("a member was listed twice".into()))?;
    // The header's incident has no members (they follow it): its view's
    // alerts are the rendered ones, already in view order.
    let mut view = incident.view_with(true, |_| RawValue::NULL);
    view.alerts = alerts;
    Ok(events::incident_event(&ev, view))
}

#[cfg(test)]
mod tests;
