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
//! One outbox entry holds all the events of one incident in one batch (a
//! backlog batch gives a busy incident several), and each member's bytes
//! appear in it once until the member changes: a later event lists an
//! unchanged member by fingerprint only. The publisher renders the entry to
//! one message per event and deletes it once all were acknowledged (a
//! re-publish after a crash sends them all again, with the same bytes).
//!
//! Layout ([`PayloadKind::IncidentParts`]; the store compresses it):
//! `u32 LE events`, then per event `u32 LE header_len, header` (positional
//! MessagePack of the event and the incident without members), `u32 LE
//! count`, then per member in view order (first seen, then fingerprint)
//! `u64 LE fingerprint, u32 LE len, member` (positional MessagePack), where
//! `len` = `u32::MAX` (no bytes follow) means "as last given in this entry".
//! [`PayloadKind::IncidentSnapshot`] entries (the whole `(event, incident,
//! members)` as one value, written by earlier builds) are still rendered.
//!
//! [`PayloadKind::IncidentParts`]: crate::store::PayloadKind::IncidentParts
//! [`PayloadKind::IncidentSnapshot`]: crate::store::PayloadKind::IncidentSnapshot

use std::collections::hash_map::Entry;

use serde_json::value::RawValue;

use crate::alert::Fingerprint;
use crate::engine::state::{Incident, IncidentId, Member};
use crate::engine::view::{MemberView, RootCauseView};
use crate::engine::{FastMap, IncidentEvent};
use crate::kafka::events;
use crate::store::codec;
use crate::store::{outbox, OutboxEntry, PayloadKind, StoreError};

/// Members remembered at most by either cache (a few hundred bytes each);
/// past it a cache starts over.
const CACHE_MAX: usize = 100_000;

/// "As last given in this entry" (a member's `len`).
const SAME: u32 = u32::MAX;

/// A member's encoding, and the entry that last holds it in full.
struct Encoded {
    member: Member,
    bytes: Vec<u8>,
    /// Serial of that entry (0: none).
    entry: u64,
}

/// Encodes snapshots on the pipeline thread, reusing the encoding of
/// members unchanged since it last encoded them.
#[derive(Default)]
pub struct SnapshotWriter {
    /// Member positions in view order (reused).
    order: Vec<usize>,
    members: FastMap<(IncidentId, Fingerprint), Encoded>,
    /// This batch's entry per incident: (position in the batch's outbox,
    /// serial).
    entries: FastMap<IncidentId, (usize, u64)>,
    serial: u64,
}

impl SnapshotWriter {
    /// Adds the event, with the incident as it stands now, to the batch's
    /// outbox: to the incident's entry if this batch has one, else as a new
    /// entry at the end (sent to `topic`, keyed by the incident id).
    pub fn add(
        &mut self,
        ev: &IncidentEvent,
        incident: &Incident,
        outbox: &mut Vec<OutboxEntry>,
        topic: &str,
    ) -> Result<(), StoreError> {
        if self.members.len() + incident.members.len() > CACHE_MAX {
            self.members.clear();
        }
        let key = incident.id.to_string().into_bytes();
        let existing = self.entries.get(&incident.id).filter(|(i, _)| {
            outbox
                .get(*i)
                .is_some_and(|e| e.kind == PayloadKind::IncidentParts && e.key == key)
        });
        let (index, serial) = match existing {
            Some(&(i, serial)) => (i, serial),
            None => {
                self.serial += 1;
                outbox.push(OutboxEntry {
                    topic: topic.to_string(),
                    key,
                    headers: Vec::new(),
                    kind: PayloadKind::IncidentParts,
                    payload: 0u32.to_le_bytes().to_vec(),
                });
                let at = (outbox.len() - 1, self.serial);
                self.entries.insert(incident.id, at);
                at
            }
        };
        let raw = &mut outbox[index].payload;
        let before = raw.len();
        let count: [u8; 4] = raw[..4].try_into().unwrap_or_default();
        let written = Self::append(
            &mut self.order,
            &mut self.members,
            serial,
            ev,
            incident,
            raw,
        );
        if written.is_err() {
            // Nothing half-written stays; the caller sends this event some
            // other way, and the incident's later events go after it (in a
            // new entry, so no member refers to bytes cut here).
            raw.truncate(before);
            raw[..4].copy_from_slice(&count);
            if before == 4 && index + 1 == outbox.len() {
                outbox.pop();
            }
            self.entries.remove(&incident.id);
        }
        written
    }

    /// Appends one event to an entry's payload `raw`.
    fn append(
        order: &mut Vec<usize>,
        members: &mut FastMap<(IncidentId, Fingerprint), Encoded>,
        serial: u64,
        ev: &IncidentEvent,
        incident: &Incident,
        raw: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        let events = u32::from_le_bytes(raw[..4].try_into().unwrap_or_default()) + 1;
        raw[..4].copy_from_slice(&events.to_le_bytes());
        let header_at = raw.len();
        raw.extend_from_slice(&[0; 4]);
        codec::encode_compact_append(raw, "outbox", &(ev, incident))?;
        let header_len = (raw.len() - header_at - 4) as u32;
        raw[header_at..header_at + 4].copy_from_slice(&header_len.to_le_bytes());
        order.clear();
        order.extend(0..incident.members.len());
        order.sort_by_key(|&i| incident.members[i].view_order());
        raw.extend_from_slice(&(order.len() as u32).to_le_bytes());
        for &i in order.iter() {
            let m = &incident.members[i];
            let enc = match members.entry((incident.id, m.fingerprint)) {
                Entry::Occupied(o) => {
                    let enc = o.into_mut();
                    if enc.member != *m {
                        enc.member.clone_from(m);
                        enc.bytes.clear();
                        codec::encode_compact_append(&mut enc.bytes, "outbox", m)?;
                        enc.entry = 0;
                    }
                    enc
                }
                Entry::Vacant(v) => {
                    let mut bytes = Vec::new();
                    codec::encode_compact_append(&mut bytes, "outbox", m)?;
                    v.insert(Encoded {
                        member: m.clone(),
                        bytes,
                        entry: 0,
                    })
                }
            };
            raw.extend_from_slice(&m.fingerprint.0.to_le_bytes());
            if enc.entry == serial {
                raw.extend_from_slice(&SAME.to_le_bytes());
            } else {
                raw.extend_from_slice(&(enc.bytes.len() as u32).to_le_bytes());
                raw.extend_from_slice(&enc.bytes);
                enc.entry = serial;
            }
        }
        Ok(())
    }

    /// The batch was handed over: later events start new entries.
    pub fn end_batch(&mut self) {
        self.entries.clear();
    }
}

/// A member's encoded bytes and their JSON.
type Rendered = (Box<[u8]>, Box<RawValue>);

/// Rendered members of earlier events, by (incident, fingerprint).
#[derive(Default)]
pub struct RenderCache {
    members: FastMap<(IncidentId, Fingerprint), Rendered>,
}

/// The event messages (JSON) of an outbox payload of kind `kind` (one of
/// the two snapshot kinds), in event order.
///
/// Each event fits in `max_bytes` by construction: an incident with so many
/// alerts that its event would not lists as many as fit (the root cause
/// first, then in join order) and counts the rest in `alerts_omitted`; the
/// API pages the whole list.
pub fn render(
    kind: PayloadKind,
    bytes: &[u8],
    cache: &mut RenderCache,
    max_bytes: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    match kind {
        PayloadKind::IncidentParts => render_parts(bytes, cache, max_bytes),
        _ => {
            let (ev, mut incident, members): (IncidentEvent, Incident, Vec<Member>) =
                codec::decode("outbox", &"incident snapshot", bytes)?;
            incident.members = members;
            Ok(vec![events::render(&ev, &incident)])
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
    outbox::take_exact(b, n).map_err(corrupt)
}

fn take_u32(b: &mut &[u8]) -> Result<usize, StoreError> {
    Ok(u32::from_le_bytes(outbox::take_n(b).map_err(corrupt)?) as usize)
}

fn render_parts(
    mut b: &[u8],
    cache: &mut RenderCache,
    max_bytes: usize,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let events = take_u32(&mut b)?;
    let mut out = Vec::with_capacity(events.min(1024));
    // Each member's bytes as last given in this entry.
    let mut given: FastMap<Fingerprint, &[u8]> = FastMap::default();
    for _ in 0..events {
        out.push(render_part(&mut b, cache, &mut given, max_bytes)?);
    }
    if !b.is_empty() {
        return Err(corrupt(format!("{} bytes after the last event", b.len())));
    }
    Ok(out)
}

/// One event of an entry, read off the front of `b`.
fn render_part<'a>(
    b: &mut &'a [u8],
    cache: &mut RenderCache,
    given: &mut FastMap<Fingerprint, &'a [u8]>,
    max_bytes: usize,
) -> Result<Vec<u8>, StoreError> {
    let header_len = take_u32(b)?;
    let (ev, incident): (IncidentEvent, Incident) =
        codec::decode("outbox", &"incident snapshot", take(b, header_len)?)?;
    let count = take_u32(b)?;
    if cache.members.len() + count > CACHE_MAX {
        cache.members.clear();
    }
    let mut keys = Vec::with_capacity(count.min(b.len() / 12));
    for _ in 0..count {
        let fp = Fingerprint(u64::from_le_bytes(outbox::take_n(b).map_err(corrupt)?));
        let len = take_u32(b)?;
        let bytes = if len == SAME as usize {
            *given
                .get(&fp)
                .ok_or_else(|| corrupt(format!("member {fp} refers to bytes not given")))?
        } else {
            let bytes = take(b, len)?;
            given.insert(fp, bytes);
            bytes
        };
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
    let alerts = keys
        .iter()
        .map(|k| cache.members.get(k).map(|(_, j)| &**j))
        .collect::<Option<Vec<&RawValue>>>()
        .ok_or_else(|| corrupt("a member was listed twice".into()))?;
    // The header's incident has no members (they follow it): its view's
    // alerts are the rendered ones, already in view order.
    let mut view = incident.view_with(true, |_| RawValue::NULL);
    view.alerts = alerts;
    // Nor, so, its root cause alert: named from the member listed above.
    let root_cause_alert = match view
        .root_cause
        .and_then(|fp| cache.members.get(&(incident.id, fp)))
    {
        Some((bytes, _)) => {
            let m: Member = codec::decode("outbox", &"incident snapshot member", bytes)?;
            Some(RootCauseView::of(&m))
        }
        None => None,
    };
    view.root_cause_alert = root_cause_alert.clone();
    let event = events::incident_event(&ev, view);
    if event.len() <= max_bytes {
        return Ok(event);
    }
    Ok(fit_event(
        &ev,
        &incident,
        &keys,
        cache,
        max_bytes,
        root_cause_alert,
    ))
}

/// Room kept for `"alerts_omitted":N` and rounding.
const OMITTED_FIELD_BYTES: usize = 64;

/// The event of an incident whose alerts do not all fit in `max_bytes`:
/// the root cause first, then members in join order while they fit.
fn fit_event(
    ev: &IncidentEvent,
    incident: &Incident,
    keys: &[(IncidentId, Fingerprint)],
    cache: &RenderCache,
    max_bytes: usize,
    root_cause_alert: Option<RootCauseView>,
) -> Vec<u8> {
    let mut view = incident.view_with(true, |_| RawValue::NULL);
    view.alerts = Vec::new();
    view.root_cause_alert = root_cause_alert.clone();
    let base = events::incident_event(ev, view).len() + OMITTED_FIELD_BYTES;
    let mut room = max_bytes.saturating_sub(base);
    let root = keys
        .iter()
        .position(|(_, fp)| Some(*fp) == incident.root_cause);
    let order = root
        .into_iter()
        .chain((0..keys.len()).filter(|i| Some(*i) != root));
    let mut kept = Vec::new();
    for i in order {
        let Some((_, json)) = cache.members.get(&keys[i]) else {
            continue;
        };
        let need = json.get().len() + 1;
        if need > room {
            continue;
        }
        room -= need;
        kept.push(i);
    }
    kept.sort_unstable();
    let mut view = incident.view_with(true, |_| RawValue::NULL);
    view.root_cause_alert = root_cause_alert;
    view.alerts = kept
        .iter()
        .filter_map(|i| cache.members.get(&keys[*i]).map(|(_, j)| &**j))
        .collect();
    view.alerts_omitted = keys.len() - view.alerts.len();
    events::incident_event(ev, view)
}

#[cfg(test)]
mod tests;
