//! One batch's write, in two steps: [`PreparedBatch::new`] encodes what the
//! batch changed into owned bytes (on the pipeline thread, where the engine
//! is), and [`super::Store::write`] stores them in one transaction (on the
//! committer thread, while the pipeline applies the next batch).
//!
//! Encoding first is what lets the two overlap: the prepared batch no longer
//! borrows the engine, so the engine may move on; batches are still written
//! one at a time and in order, so the store only ever holds the state at the
//! end of a batch together with that batch's offsets and outbox entries.

use std::ops::Range;
use std::sync::Arc;

use redb::ReadableTable;

use super::tables::*;
use super::{codec, encode_json, Offsets, OutboxEntry, StoreError};
use crate::engine::persist::Changes;
use crate::engine::Engine;

/// What one batch leaves behind besides engine state.
#[derive(Debug, Default)]
pub struct BatchWrite {
    pub offsets: Offsets,
    pub outbox: Vec<OutboxEntry>,
}

/// A value's bytes in [`PreparedBatch::bytes`]; `None` deletes the key.
type Value = Option<Range<usize>>;

/// A batch's changes, encoded and detached from the engine.
#[derive(Debug, Default)]
pub struct PreparedBatch {
    /// Every encoded value, back to back (one allocation per batch).
    bytes: Vec<u8>,
    alerts: Vec<(u64, Value)>,
    groups: Vec<(Arc<str>, Value)>,
    incidents: Vec<(u64, Range<usize>)>,
    members: Vec<((u64, u32), Range<usize>)>,
    problems: Vec<(u64, Value)>,
    problem_incidents: Vec<((u64, u32), u64)>,
    signatures: Vec<(String, Value)>,
    mined: Vec<String>,
    /// Incidents deleted by retention (rows and member rows).
    expired: Vec<u64>,
    /// The miner's state, encoded, when a snapshot is due: it replaces the
    /// stored one, and covers every line in `mined` (stored and this
    /// batch's), which are dropped.
    miner: Option<Vec<u8>>,
    clock: Vec<u8>,
    stats: Vec<u8>,
    write: BatchWrite,
}

impl PreparedBatch {
    /// Encodes the entities named by `changes` as the engine holds them now.
    pub fn new(
        engine: &Engine,
        changes: &Changes,
        write: BatchWrite,
    ) -> Result<PreparedBatch, StoreError> {
        Self::new_in(engine, changes, write, Vec::new())
    }

    /// [`PreparedBatch::new`] encoding into `buffer` (cleared first): an
    /// earlier batch's, handed back by [`PreparedBatch::into_parts`], so a
    /// busy pipeline does not take fresh memory (which the kernel zeroes)
    /// for every batch.
    pub fn new_in(
        engine: &Engine,
        changes: &Changes,
        write: BatchWrite,
        mut buffer: Vec<u8>,
    ) -> Result<PreparedBatch, StoreError> {
        buffer.clear();
        let mut b = PreparedBatch {
            bytes: buffer,
            clock: encode_json(&engine.clock().0),
            stats: encode_json(engine.stats()),
            mined: changes.mined.clone(),
            write,
            ..PreparedBatch::default()
        };
        for fp in &changes.alerts {
            let v = b.put_opt("alerts", engine.alert(*fp))?;
            b.alerts.push((fp.0, v));
        }
        for key in &changes.groups {
            let v = b.put_opt("groups", engine.group(key))?;
            b.groups.push((key.clone(), v));
        }
        for id in &changes.incidents {
            // An incident missing from the engine was evicted once final
            // (its row is stored already) or deleted by retention (below).
            if let Some(i) = engine.incident(*id) {
                let v = b.put("incidents", i)?;
                b.incidents.push((id.0, v));
            }
        }
        for (id, pos) in &changes.members {
            let member = engine
                .incident(*id)
                .and_then(|i| i.members.get(*pos as usize));
            if let Some(m) = member {
                let v = b.put("members", m)?;
                b.members.push(((id.0, *pos), v));
            }
        }
        for id in &changes.problems {
            let v = b.put_opt("problems", engine.problem(*id))?;
            b.problems.push((id.0, v));
        }
        b.expired = changes.expired_incidents.iter().map(|i| i.0).collect();
        if changes.miner_snapshot {
            b.miner = Some(codec::encode("miner", &engine.miner_state())?);
            b.mined.clear();
        }
        for (id, pos) in &changes.problem_incidents {
            let incident = engine
                .problem(*id)
                .and_then(|p| p.incident_ids.get(*pos as usize));
            if let Some(i) = incident {
                b.problem_incidents.push(((id.0, *pos), i.0));
            }
        }
        for key in &changes.signatures {
            let v = b.put_opt("signatures", engine.problem_signature(key))?;
            b.signatures.push((key.clone(), v));
        }
        Ok(b)
    }

    /// The offsets this batch moves to.
    pub fn offsets(&self) -> &Offsets {
        &self.write.offsets
    }

    /// The offsets, and the encoding buffer for reuse (see
    /// [`PreparedBatch::new_in`]).
    pub fn into_parts(self) -> (Offsets, Vec<u8>) {
        (self.write.offsets, self.bytes)
    }

    /// Bytes the batch writes: encoded state values, mined lines and outbox
    /// payloads (keys and redb's own overhead left out).
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
            + self.problem_incidents.len() * std::mem::size_of::<u64>()
            + self.mined.iter().map(String::len).sum::<usize>()
            + self
                .write
                .outbox
                .iter()
                .map(|e| e.payload.len())
                .sum::<usize>()
    }

    /// Whether the batch leaves messages for the publisher.
    pub fn has_outbox(&self) -> bool {
        !self.write.outbox.is_empty()
    }

    fn put<T: serde::Serialize>(
        &mut self,
        table: &'static str,
        v: &T,
    ) -> Result<Range<usize>, StoreError> {
        let start = self.bytes.len();
        codec::encode_append(&mut self.bytes, table, v)?;
        Ok(start..self.bytes.len())
    }

    fn put_opt<T: serde::Serialize>(
        &mut self,
        table: &'static str,
        v: Option<&T>,
    ) -> Result<Value, StoreError> {
        v.map(|v| self.put(table, v)).transpose()
    }

    /// Writes everything into `tx` (the caller commits).
    pub(super) fn write_to(&self, tx: &redb::WriteTransaction) -> Result<(), StoreError> {
        let bytes = |r: &Range<usize>| &self.bytes[r.clone()];
        let mut t = r!("open alerts", tx.open_table(ALERTS))?;
        for (fp, v) in &self.alerts {
            match v {
                Some(v) => r!("write alerts", t.insert(*fp, bytes(v)))?,
                None => r!("delete alerts", t.remove(*fp))?,
            };
        }
        let mut t = r!("open groups", tx.open_table(GROUPS))?;
        for (key, v) in &self.groups {
            match v {
                Some(v) => r!("write groups", t.insert(&**key, bytes(v)))?,
                None => r!("delete groups", t.remove(&**key))?,
            };
        }
        let mut t = r!("open incidents", tx.open_table(INCIDENTS))?;
        for (id, v) in &self.incidents {
            r!("write incidents", t.insert(*id, bytes(v)))?;
        }
        let mut m = r!("open members", tx.open_table(MEMBERS))?;
        for (key, v) in &self.members {
            r!("write members", m.insert(*key, bytes(v)))?;
        }
        // After the writes: an incident may end and expire in one batch.
        for id in &self.expired {
            r!("delete incidents", t.remove(*id))?;
            r!(
                "delete members",
                m.retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)
            )?;
        }
        drop((t, m));
        let mut t = r!("open problems", tx.open_table(PROBLEMS))?;
        let mut pi = r!("open problem_incidents", tx.open_table(PROBLEM_INCIDENTS))?;
        for (key, incident) in &self.problem_incidents {
            r!("write problem_incidents", pi.insert(*key, *incident))?;
        }
        for (id, v) in &self.problems {
            match v {
                Some(v) => {
                    r!("write problems", t.insert(*id, bytes(v)))?;
                }
                None => {
                    // Deleted by retention: its incident rows go with it.
                    r!("delete problems", t.remove(*id))?;
                    r!(
                        "delete problem_incidents",
                        pi.retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)
                    )?;
                }
            }
        }
        drop(pi);
        let mut t = r!("open signatures", tx.open_table(SIGNATURES))?;
        for (key, v) in &self.signatures {
            match v {
                Some(v) => r!("write signatures", t.insert(key.as_str(), bytes(v)))?,
                None => r!("delete signatures", t.remove(key.as_str()))?,
            };
        }
        match &self.miner {
            Some(state) => super::put_miner_snapshot(tx, state)?,
            None => {
                let mut t = r!("open mined", tx.open_table(MINED))?;
                let first = match r!("last mined", t.last())? {
                    Some((k, _)) => k.value() + 1,
                    None => 0,
                };
                for (line, seq) in self.mined.iter().zip(first..) {
                    r!("write mined", t.insert(seq, line.as_str()))?;
                }
            }
        }
        super::put_offsets(tx, &self.write.offsets)?;
        let mut meta = r!("open meta", tx.open_table(META))?;
        let mut seq = match r!("read meta", meta.get(META_OUTBOX_SEQ))? {
            Some(v) => codec::decode_json::<u64>("meta", &META_OUTBOX_SEQ, v.value())?,
            None => 0,
        };
        let mut ob = r!("open outbox", tx.open_table(OUTBOX))?;
        let mut entry = Vec::new();
        for e in &self.write.outbox {
            seq += 1;
            e.encode_into(&mut entry);
            r!("write outbox", ob.insert(seq, entry.as_slice()))?;
        }
        r!(
            "write meta",
            meta.insert(META_OUTBOX_SEQ, encode_json(&seq).as_slice())
        )?;
        r!("write meta", meta.insert(META_CLOCK, self.clock.as_slice()))?;
        r!("write meta", meta.insert(META_STATS, self.stats.as_slice()))?;
        Ok(())
    }
}
