//! redb: engine state, consumed offsets and the outbox, one write
//! transaction per batch.
//!
//! The batch transaction is the exactly-once boundary: it holds the state
//! the batch produced, the next offset of every partition it read, and the
//! messages it must publish. A crash before commit loses the whole batch
//! (it is consumed again from the stored offsets); after commit, everything
//! it caused is durable and the publisher delivers it.
//!
//! - [`tables`]: table definitions and key encodings.
//! - `batch`: a batch's changes, encoded, then written in one transaction.
//! - [`codec`]: how entity values are encoded; the format version.
//! - `migrate`: older store formats brought up to date on open.
//! - [`outbox`]: the outbox entry format.

pub mod codec;
pub mod outbox;
pub mod tables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::alert::{Fingerprint, Timestamp};
use crate::engine::persist::Changes;
use crate::engine::state::{AlertState, Group, Incident, IncidentId, Member};
use crate::engine::{Engine, EngineConfig, FastMap, Stats};
use crate::problems::miner::MinerState;
use crate::problems::state::{Problem, ProblemId};
pub use outbox::{OutboxEntry, PayloadKind};
use tables::*;

/// Why a store operation failed. Messages name the file and table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("store {path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        source: redb::DatabaseError,
    },
    #[error("store {path}: cannot create directory: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store: {context}: {source}")]
    Redb {
        context: &'static str,
        source: redb::Error,
    },
    #[error("store table {table}: cannot encode a value: {reason}")]
    Encode { table: &'static str, reason: String },
    #[error("store {path}: written by a newer correlator (format {found}; this build reads up to {FORMAT})", FORMAT = codec::FORMAT)]
    NewerFormat { path: PathBuf, found: u32 },
    #[error("store {path}: cannot compact: {source}")]
    Compact {
        path: PathBuf,
        source: redb::CompactionError,
    },
    #[error("store table {table}, key {key}: corrupt entry: {reason}")]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },
}

macro_rules! r {
    ($ctx:expr, $e:expr) => {
        $e.map_err(|e| StoreError::Redb {
            context: $ctx,
            source: e.into(),
        })
    };
}

mod batch;
mod migrate;

pub use batch::{BatchWrite, PreparedBatch};

/// Next offset to consume, per (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Free space below this is never worth a compaction at start.
const COMPACT_MIN_FREE: u64 = 64 << 20;

/// A store file's size and free space, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub file_bytes: u64,
    pub free_bytes: u64,
}

/// The redb database.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Outbox entries the broker acknowledged, not yet deleted: the next
    /// batch transaction deletes them (see [`Store::outbox_acked`]).
    acked: std::sync::Mutex<Vec<u64>>,
}

impl Store {
    /// Opens (or creates) the file and its tables.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with_cache(path, crate::config::StoreConfig::default().cache_bytes())
    }

    /// [`Store::open`] with redb's page cache bounded to `cache_bytes`
    /// ([`crate::config::StoreConfig::cache_bytes`]).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let tx = r!("begin", db.begin_write())?;
        {
            r!("open alerts", tx.open_table(ALERTS))?;
            r!("open groups", tx.open_table(GROUPS))?;
            r!("open incidents", tx.open_table(INCIDENTS))?;
            r!("open offsets", tx.open_table(OFFSETS))?;
            r!("open outbox", tx.open_table(OUTBOX))?;
            r!("open outbox_parked", tx.open_table(OUTBOX_PARKED))?;
            r!("open meta", tx.open_table(META))?;
            r!("open problems", tx.open_table(PROBLEMS))?;
            r!("open signatures", tx.open_table(SIGNATURES))?;
            r!("open problem_incidents", tx.open_table(PROBLEM_INCIDENTS))?;
            r!("open mined", tx.open_table(MINED))?;
            r!("open members", tx.open_table(MEMBERS))?;
            r!("open miner", tx.open_table(MINER))?;
            migrate::migrate(&tx, path)?;
        }
        r!("commit", tx.commit())?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
            acked: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size and how much of it is free (pages freed by deletions,
    /// reused by later writes but not given back to the file system).
    pub fn space(&self) -> Result<Space, StoreError> {
        let file_bytes = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        let tx = r!("begin", self.db.begin_write())?;
        let stats = r!("stats", tx.stats())?;
        let free_bytes = stats.fragmented_bytes();
        tx.abort().ok();
        Ok(Space {
            file_bytes,
            free_bytes,
        })
    }

    /// Gives the file's free pages back to the file system (redb's
    /// `compact`). Needs the store to itself: run at start, before the
    /// pipeline, or by `correlator compact` on a stopped daemon's store.
    /// Takes time in proportion to the file.
    pub fn compact(&mut self) -> Result<(), StoreError> {
        // Each pass moves what it can; a few suffice.
        for _ in 0..8 {
            let moved = self.db.compact().map_err(|source| StoreError::Compact {
                path: self.path.clone(),
                source,
            })?;
            if !moved {
                break;
            }
        }
        Ok(())
    }

    /// Compacts when at least half the file (and 64 MiB) is free: after
    /// retention first deleted a long history, say. Under a steady stream
    /// the free pages are reused and this finds little to do. Returns the
    /// space before and after, if it compacted.
    pub fn compact_if_worth_it(&mut self) -> Result<Option<(Space, Space)>, StoreError> {
        let before = self.space()?;
        if before.free_bytes < COMPACT_MIN_FREE || before.free_bytes * 2 < before.file_bytes {
            return Ok(None);
        }
        self.compact()?;
        Ok(Some((before, self.space()?)))
    }

    /// Rebuilds the engine from the stored state: live entities, the final
    /// incidents retention still keeps (ids and end times only), and the
    /// miner from its snapshot plus the lines fed after it. When those
    /// lines reach `retention.miner_snapshot_lines` (a store written by an
    /// older format holds every line ever fed), a snapshot replaces them
    /// before this returns, so the next start re-feeds none.
    pub fn load_engine(&self, cfg: EngineConfig) -> Result<Engine, StoreError> {
        let (mut e, _) = self.load_engine_counted(cfg)?;
        if e.miner_snapshot_due() {
            let state = codec::encode("miner", &e.miner_state())?;
            let tx = r!("begin", self.db.begin_write())?;
            put_miner_snapshot(&tx, &state)?;
            r!("commit", tx.commit())?;
            e.miner_snapshot_stored();
        }
        Ok(e)
    }

    /// [`Store::load_engine`] without storing a snapshot, and how many
    /// lines the miner was re-fed.
    pub fn load_engine_counted(&self, cfg: EngineConfig) -> Result<(Engine, usize), StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let meta = r!("open meta", tx.open_table(META))?;
        let clock = match r!("read meta", meta.get(META_CLOCK))? {
            Some(v) => Timestamp(codec::decode_json::<i64>("meta", &META_CLOCK, v.value())?),
            None => Timestamp(0),
        };
        let stats = match r!("read meta", meta.get(META_STATS))? {
            Some(v) => codec::decode_json::<Stats>("meta", &META_STATS, v.value())?,
            None => Stats::default(),
        };
        let alerts =
            read_all::<u64, AlertState>(&tx, ALERTS, "alerts", |k| Fingerprint(k).to_string())?;
        let groups = read_all::<&str, Group>(&tx, GROUPS, "groups", str::to_string)?;
        let members = r!("open members", tx.open_table(MEMBERS))?;
        let mut incidents = Vec::new();
        let mut retired = Vec::new();
        for item in r!(
            "iter incidents",
            r!("open incidents", tx.open_table(INCIDENTS))?.iter()
        )? {
            let (k, v) = r!("read incidents", item)?;
            let id = IncidentId(k.value());
            let mut inc: Incident = codec::decode("incidents", &id, v.value())?;
            if inc.status.is_final() {
                // Stores of format 4 have no end time for merged incidents:
                // retention counts from this start.
                retired.push((inc.final_at.or(inc.closed_at).unwrap_or(clock), id));
            } else {
                inc.members = read_members(&members, id)?;
                incidents.push(inc);
            }
        }
        let mut problems: Vec<Problem> =
            read_all::<u64, _>(&tx, PROBLEMS, "problems", |k| ProblemId(k).to_string())?;
        let rows = r!("open problem_incidents", tx.open_table(PROBLEM_INCIDENTS))?;
        for p in &mut problems {
            p.incident_ids = read_problem_incidents(&rows, p.id, 0, usize::MAX)?;
            if p.incident_ids.len() as u64 != p.incident_count {
                return Err(StoreError::Corrupt {
                    table: "problem_incidents",
                    key: p.id.to_string(),
                    reason: format!(
                        "{} rows for a problem of {} incidents",
                        p.incident_ids.len(),
                        p.incident_count
                    ),
                });
            }
        }
        let signatures = read_all::<&str, _>(&tx, SIGNATURES, "signatures", str::to_string)?;
        let snapshot = match r!(
            "read miner",
            r!("open miner", tx.open_table(MINER))?.get(MINER_STATE)
        )? {
            Some(v) => Some(codec::decode::<MinerState>(
                "miner",
                &MINER_STATE,
                v.value(),
            )?),
            None => None,
        };
        let mut mined = Vec::new();
        for item in r!("iter mined", r!("open mined", tx.open_table(MINED))?.iter())? {
            let (_, v) = r!("read mined", item)?;
            mined.push(v.value().to_string());
        }
        let mut e = Engine::restore(cfg, alerts, groups, incidents, clock, stats);
        e.restore_retired(retired);
        let fed = e
            .restore_problems(
                problems,
                signatures,
                snapshot,
                mined.iter().map(String::as_str),
            )
            .map_err(|reason| StoreError::Corrupt {
                table: "miner",
                key: MINER_STATE.into(),
                reason,
            })?;
        e.set_tracking(true);
        Ok((e, fed))
    }

    /// Stored next offsets.
    pub fn offsets(&self) -> Result<Offsets, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open offsets", tx.open_table(OFFSETS))?;
        let mut out = Offsets::new();
        for item in r!("iter offsets", t.iter())? {
            let (k, v) = r!("read offsets", item)?;
            let (topic, p) = decode_offset_key(k.value()).ok_or_else(|| StoreError::Corrupt {
                table: "offsets",
                key: k.value().to_string(),
                reason: "expected TOPIC/PARTITION".into(),
            })?;
            out.insert((topic, p), v.value());
        }
        Ok(out)
    }

    /// Overwrites stored offsets (embedded-broker restart recovery).
    pub fn set_offsets(&self, offsets: &Offsets) -> Result<(), StoreError> {
        let tx = r!("begin", self.db.begin_write())?;
        put_offsets(&tx, offsets)?;
        r!("commit", tx.commit())
    }

    /// The batch transaction: changed entities, offsets and outbox entries
    /// (both steps at once; the daemon runs them on two threads).
    pub fn commit(
        &self,
        engine: &Engine,
        changes: &Changes,
        batch: BatchWrite,
    ) -> Result<(), StoreError> {
        self.write(&PreparedBatch::new(engine, changes, batch)?)
    }

    /// Stores a prepared batch in one transaction, with the deletion of the
    /// outbox entries acknowledged since the last one.
    pub fn write(&self, batch: &PreparedBatch) -> Result<(), StoreError> {
        self.with_acked(|acked| {
            let tx = r!("begin", self.db.begin_write())?;
            batch.write_to(&tx)?;
            delete_outbox(&tx, acked)?;
            r!("commit", tx.commit())
        })
    }

    /// Up to `max` outbox entries, oldest first.
    pub fn outbox_batch(&self, max: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        self.outbox_batch_from(0, max)
    }

    /// Up to `max` outbox entries from sequence `from` on, oldest first.
    pub fn outbox_batch_from(
        &self,
        from: u64,
        max: usize,
    ) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open outbox", tx.open_table(OUTBOX))?;
        let mut out = Vec::new();
        for item in r!("iter outbox", t.range(from..))?.take(max) {
            let (k, v) = r!("read outbox", item)?;
            let e = OutboxEntry::decode(v.value()).map_err(corrupt_outbox(k.value()))?;
            out.push((k.value(), e));
        }
        Ok(out)
    }

    /// Deletes delivered outbox entries in a transaction of their own
    /// (callers go through the acknowledged queue: [`Store::outbox_acked`]).
    fn outbox_delete(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let tx = r!("begin", self.db.begin_write())?;
        delete_outbox(&tx, seqs)?;
        r!("commit", tx.commit())
    }

    /// Delivered outbox entries, deleted with the next batch's transaction
    /// (or [`Store::outbox_flush_acked`]). Why: a busy daemon commits a
    /// batch every few milliseconds, and a transaction of its own per
    /// publish round doubled the commits (each an fsync) and made the
    /// publisher and the committer wait for each other's write lock. An
    /// entry acknowledged but not yet deleted when the daemon stops is
    /// published again on the next start (at least once, as always).
    pub fn outbox_acked(&self, seqs: impl IntoIterator<Item = u64>) {
        self.acked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(seqs);
    }

    /// Deletes the acknowledged entries no batch took yet.
    pub fn outbox_flush_acked(&self) -> Result<(), StoreError> {
        self.with_acked(|acked| {
            if acked.is_empty() {
                return Ok(());
            }
            self.outbox_delete(acked)
        })
    }

    /// Entries acknowledged and not yet deleted.
    pub fn outbox_acked_pending(&self) -> usize {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Runs a write that deletes the acknowledged entries taken from the
    /// queue; if it fails they go back, for the next one.
    fn with_acked(
        &self,
        write: impl FnOnce(&[u64]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let acked = std::mem::take(&mut *self.acked.lock().unwrap_or_else(|p| p.into_inner()));
        let r = write(&acked);
        if r.is_err() {
            self.outbox_acked(acked);
        }
        r
    }

    /// Moves an entry the broker refused for good from the outbox to the
    /// parked entries, with the reason, in one transaction: it no longer
    /// blocks (or is re-sent with) the entries behind it, and nothing is
    /// lost. A no-op if the entry is gone already.
    pub fn outbox_park(&self, seq: u64, reason: &str) -> Result<(), StoreError> {
        let tx = r!("begin", self.db.begin_write())?;
        {
            let mut outbox = r!("open outbox", tx.open_table(OUTBOX))?;
            let Some(entry) = r!("delete outbox", outbox.remove(seq))?.map(|v| v.value().to_vec())
            else {
                return Ok(());
            };
            let mut value = Vec::with_capacity(4 + reason.len() + entry.len());
            value.extend_from_slice(&(reason.len() as u32).to_be_bytes());
            value.extend_from_slice(reason.as_bytes());
            value.extend_from_slice(&entry);
            let mut parked = r!("open outbox_parked", tx.open_table(OUTBOX_PARKED))?;
            r!("park outbox", parked.insert(seq, value.as_slice()))?;
        }
        r!("commit", tx.commit())
    }

    /// Up to `max` parked entries, oldest first: (sequence, reason, entry).
    pub fn outbox_parked(&self, max: usize) -> Result<Vec<(u64, String, OutboxEntry)>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open outbox_parked", tx.open_table(OUTBOX_PARKED))?;
        let mut out = Vec::new();
        for item in r!("iter outbox_parked", t.iter())?.take(max) {
            let (k, v) = r!("read outbox_parked", item)?;
            let corrupt = |reason: String| StoreError::Corrupt {
                table: "outbox_parked",
                key: k.value().to_string(),
                reason,
            };
            let b = v.value();
            let len = b
                .get(..4)
                .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
                .ok_or_else(|| corrupt("shorter than its reason length".into()))?;
            let reason = b
                .get(4..4 + len)
                .ok_or_else(|| corrupt("shorter than its reason".into()))?;
            let entry = OutboxEntry::decode(&b[4 + len..]).map_err(corrupt)?;
            out.push((
                k.value(),
                String::from_utf8_lossy(reason).into_owned(),
                entry,
            ));
        }
        Ok(out)
    }

    /// How many entries are parked.
    pub fn outbox_parked_len(&self) -> Result<u64, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open outbox_parked", tx.open_table(OUTBOX_PARKED))?;
        r!("len outbox_parked", t.len())
    }

    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open outbox", tx.open_table(OUTBOX))?;
        r!("len outbox", t.len())
    }

    /// Up to `limit` of problem `id`'s incidents in join order, from
    /// position `from` on.
    pub fn problem_incidents(
        &self,
        id: ProblemId,
        from: u32,
        limit: usize,
    ) -> Result<Vec<IncidentId>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open problem_incidents", tx.open_table(PROBLEM_INCIDENTS))?;
        read_problem_incidents(&t, id, from, limit)
    }

    /// One stored incident (any status).
    pub fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open incidents", tx.open_table(INCIDENTS))?;
        let members = r!("open members", tx.open_table(MEMBERS))?;
        let alerts = r!("open alerts", tx.open_table(ALERTS))?;
        match r!("read incidents", t.get(id.0))? {
            Some(v) => Ok(Some(read_incident(&members, &alerts, id, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every stored incident, ordered by opening time then id.
    pub fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open incidents", tx.open_table(INCIDENTS))?;
        let members = r!("open members", tx.open_table(MEMBERS))?;
        let alerts = r!("open alerts", tx.open_table(ALERTS))?;
        let mut out = Vec::new();
        for item in r!("iter incidents", t.iter())? {
            let (k, v) = r!("read incidents", item)?;
            out.push(read_incident(
                &members,
                &alerts,
                IncidentId(k.value()),
                v.value(),
            )?);
        }
        out.sort_by_key(|i| (i.opened_at, i.id));
        Ok(out)
    }
}

/// Every value of a table, decoded; `show` prints a key for errors.
fn read_all<K, T>(
    tx: &redb::ReadTransaction,
    def: redb::TableDefinition<K, &[u8]>,
    table: &'static str,
    show: impl Fn(K::SelfType<'_>) -> String,
) -> Result<Vec<T>, StoreError>
where
    K: redb::Key + 'static,
    T: serde::de::DeserializeOwned,
{
    let mut out = Vec::new();
    for item in r!("iter", r!("open", tx.open_table(def))?.iter())? {
        let (k, v) = r!("read", item)?;
        out.push(codec::decode(table, &show(k.value()), v.value())?);
    }
    Ok(out)
}

/// Writes next offsets into `tx` (a batch's, or a recovery's).
fn put_offsets(tx: &redb::WriteTransaction, offsets: &Offsets) -> Result<(), StoreError> {
    let mut t = r!("open offsets", tx.open_table(OFFSETS))?;
    for ((topic, p), o) in offsets {
        r!(
            "write offsets",
            t.insert(encode_offset_key(topic, *p).as_str(), *o)
        )?;
    }
    Ok(())
}

/// Stores the miner's encoded state as its snapshot, and drops the lines
/// it covers (all those stored).
fn put_miner_snapshot(tx: &redb::WriteTransaction, state: &[u8]) -> Result<(), StoreError> {
    r!(
        "write miner",
        r!("open miner", tx.open_table(MINER))?.insert(MINER_STATE, state)
    )?;
    r!(
        "delete mined",
        r!("open mined", tx.open_table(MINED))?.retain(|_, _| false)
    )?;
    Ok(())
}

/// Deletes outbox entries (already deleted ones are skipped).
fn delete_outbox(tx: &redb::WriteTransaction, seqs: &[u64]) -> Result<(), StoreError> {
    if seqs.is_empty() {
        return Ok(());
    }
    let mut t = r!("open outbox", tx.open_table(OUTBOX))?;
    for s in seqs {
        r!("delete outbox", t.remove(*s))?;
    }
    Ok(())
}

/// A stored incident row with its members (a live member's `last_seen` and
/// `occurrences` from its alert's row, as loading does: see `Member`).
fn read_incident(
    members: &impl ReadableTable<(u64, u32), &'static [u8]>,
    alerts: &impl ReadableTable<u64, &'static [u8]>,
    id: IncidentId,
    row: &[u8],
) -> Result<Incident, StoreError> {
    let mut inc: Incident = codec::decode("incidents", &id, row)?;
    inc.members = read_members(members, id)?;
    if !inc.status.is_final() {
        let mut live = FastMap::default();
        for m in &inc.members {
            let fp = m.fingerprint;
            if let Some(v) = r!("read alerts", alerts.get(fp.0))? {
                let a: AlertState = codec::decode("alerts", &fp, v.value())?;
                live.insert(fp, (a.incident, a.last_seen, a.occurrences));
            }
        }
        inc.refresh_live_members(|fp| live.get(&fp).copied());
    }
    Ok(inc)
}

/// Up to `limit` of a problem's incidents from position `from` on
/// (positions must follow each other).
fn read_problem_incidents(
    t: &impl ReadableTable<(u64, u32), u64>,
    id: ProblemId,
    from: u32,
    limit: usize,
) -> Result<Vec<IncidentId>, StoreError> {
    let mut out = Vec::new();
    for item in r!(
        "iter problem_incidents",
        t.range((id.0, from)..=(id.0, u32::MAX))
    )?
    .take(limit)
    {
        let (k, v) = r!("read problem_incidents", item)?;
        let (_, pos) = k.value();
        let want = from as usize + out.len();
        if pos as usize != want {
            return Err(StoreError::Corrupt {
                table: "problem_incidents",
                key: format!("{id}/{pos}"),
                reason: format!("expected position {want}"),
            });
        }
        out.push(IncidentId(v.value()));
    }
    Ok(out)
}

/// An incident's members, in join order (positions must be 0, 1, 2, …).
fn read_members(
    t: &impl ReadableTable<(u64, u32), &'static [u8]>,
    id: IncidentId,
) -> Result<Vec<Member>, StoreError> {
    let mut out = Vec::new();
    for item in r!("iter members", t.range((id.0, 0)..=(id.0, u32::MAX)))? {
        let (k, v) = r!("read members", item)?;
        let (_, pos) = k.value();
        if pos as usize != out.len() {
            return Err(StoreError::Corrupt {
                table: "members",
                key: format!("{id}/{pos}"),
                reason: format!("expected position {}", out.len()),
            });
        }
        // The key is printed only if the value is corrupt.
        out.push(codec::decode(
            "members",
            &format_args!("{id}/{pos}"),
            v.value(),
        )?);
    }
    Ok(out)
}

/// The error for an outbox entry (sequence `seq`) that does not decode.
fn corrupt_outbox(seq: u64) -> impl FnOnce(String) -> StoreError {
    move |reason| StoreError::Corrupt {
        table: "outbox",
        key: seq.to_string(),
        reason,
    }
}

fn encode_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serializing our own plain-data types cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests;
