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
//! - [`outbox`]: the outbox entry format.

pub mod outbox;
pub mod tables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

use crate::alert::Timestamp;
use crate::engine::persist::Changes;
use crate::engine::state::{AlertState, Group, Incident, IncidentId};
use crate::engine::{Engine, EngineConfig, Stats};
pub use outbox::OutboxEntry;
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

/// Next offset to consume, per (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

/// What one batch leaves behind besides engine state.
#[derive(Debug, Default)]
pub struct BatchWrite {
    pub offsets: Offsets,
    pub outbox: Vec<OutboxEntry>,
}

/// The redb database.
pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the file and its tables.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let db = Database::create(path).map_err(|source| StoreError::Open {
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
            r!("open meta", tx.open_table(META))?;
            r!("open problems", tx.open_table(PROBLEMS))?;
            r!("open signatures", tx.open_table(SIGNATURES))?;
            r!("open mined", tx.open_table(MINED))?;
        }
        r!("commit", tx.commit())?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rebuilds the engine from the stored state.
    pub fn load_engine(&self, cfg: EngineConfig) -> Result<Engine, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let mut alerts = Vec::new();
        for item in r!(
            "iter alerts",
            r!("open alerts", tx.open_table(ALERTS))?.iter()
        )? {
            let (k, v) = r!("read alerts", item)?;
            alerts.push(decode_json::<AlertState>(
                "alerts",
                &k.value().to_string(),
                v.value(),
            )?);
        }
        let mut groups = Vec::new();
        for item in r!(
            "iter groups",
            r!("open groups", tx.open_table(GROUPS))?.iter()
        )? {
            let (k, v) = r!("read groups", item)?;
            groups.push(decode_json::<Group>("groups", k.value(), v.value())?);
        }
        let mut incidents = Vec::new();
        for item in r!(
            "iter incidents",
            r!("open incidents", tx.open_table(INCIDENTS))?.iter()
        )? {
            let (k, v) = r!("read incidents", item)?;
            let inc = decode_json::<Incident>(
                "incidents",
                &IncidentId(k.value()).to_string(),
                v.value(),
            )?;
            if !inc.status.is_final() {
                incidents.push(inc);
            }
        }
        let meta = r!("open meta", tx.open_table(META))?;
        let clock = match r!("read meta", meta.get(META_CLOCK))? {
            Some(v) => Timestamp(decode_json::<i64>("meta", META_CLOCK, v.value())?),
            None => Timestamp(0),
        };
        let stats = match r!("read meta", meta.get(META_STATS))? {
            Some(v) => decode_json::<Stats>("meta", META_STATS, v.value())?,
            None => Stats::default(),
        };
        let mut problems = Vec::new();
        for item in r!(
            "iter problems",
            r!("open problems", tx.open_table(PROBLEMS))?.iter()
        )? {
            let (k, v) = r!("read problems", item)?;
            problems.push(decode_json("problems", &k.value().to_string(), v.value())?);
        }
        let mut signatures = Vec::new();
        for item in r!(
            "iter signatures",
            r!("open signatures", tx.open_table(SIGNATURES))?.iter()
        )? {
            let (k, v) = r!("read signatures", item)?;
            signatures.push(decode_json("signatures", k.value(), v.value())?);
        }
        let mut mined = Vec::new();
        for item in r!("iter mined", r!("open mined", tx.open_table(MINED))?.iter())? {
            let (_, v) = r!("read mined", item)?;
            mined.push(v.value().to_string());
        }
        let mut e = Engine::restore(cfg, alerts, groups, incidents, clock, stats);
        e.restore_problems(problems, signatures, mined.iter().map(String::as_str));
        e.set_tracking(true);
        Ok(e)
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
        {
            let mut t = r!("open offsets", tx.open_table(OFFSETS))?;
            for ((topic, p), o) in offsets {
                r!(
                    "write offsets",
                    t.insert(encode_offset_key(topic, *p).as_str(), *o)
                )?;
            }
        }
        r!("commit", tx.commit())
    }

    /// The batch transaction: changed entities, offsets and outbox entries.
    pub fn commit(
        &self,
        engine: &Engine,
        changes: &Changes,
        batch: &BatchWrite,
    ) -> Result<(), StoreError> {
        let tx = r!("begin", self.db.begin_write())?;
        {
            let mut t = r!("open alerts", tx.open_table(ALERTS))?;
            for fp in &changes.alerts {
                match engine.alert(*fp) {
                    Some(a) => {
                        r!("write alerts", t.insert(fp.0, encode_json(a).as_slice()))?;
                    }
                    None => {
                        r!("delete alerts", t.remove(fp.0))?;
                    }
                }
            }
            let mut t = r!("open groups", tx.open_table(GROUPS))?;
            for key in &changes.groups {
                match engine.group(key) {
                    Some(g) => {
                        r!("write groups", t.insert(&**key, encode_json(g).as_slice()))?;
                    }
                    None => {
                        r!("delete groups", t.remove(&**key))?;
                    }
                }
            }
            let mut t = r!("open incidents", tx.open_table(INCIDENTS))?;
            for id in &changes.incidents {
                // Incidents are never deleted: closed ones stay for the API.
                if let Some(i) = engine.incident(*id) {
                    r!("write incidents", t.insert(id.0, encode_json(i).as_slice()))?;
                }
            }
            let mut t = r!("open problems", tx.open_table(PROBLEMS))?;
            for id in &changes.problems {
                if let Some(p) = engine.problem(*id) {
                    r!("write problems", t.insert(id.0, encode_json(p).as_slice()))?;
                }
            }
            let mut t = r!("open signatures", tx.open_table(SIGNATURES))?;
            for key in &changes.signatures {
                match engine.problem_signature(key) {
                    Some(s) => {
                        r!(
                            "write signatures",
                            t.insert(key.as_str(), encode_json(s).as_slice())
                        )?;
                    }
                    None => {
                        r!("delete signatures", t.remove(key.as_str()))?;
                    }
                }
            }
            let mut t = r!("open mined", tx.open_table(MINED))?;
            let first = match r!("last mined", t.last())? {
                Some((k, _)) => k.value() + 1,
                None => 0,
            };
            for (line, seq) in changes.mined.iter().zip(first..) {
                r!("write mined", t.insert(seq, line.as_str()))?;
            }
            let mut t = r!("open offsets", tx.open_table(OFFSETS))?;
            for ((topic, p), o) in &batch.offsets {
                r!(
                    "write offsets",
                    t.insert(encode_offset_key(topic, *p).as_str(), *o)
                )?;
            }
            let mut meta = r!("open meta", tx.open_table(META))?;
            let mut seq = match r!("read meta", meta.get(META_OUTBOX_SEQ))? {
                Some(v) => decode_json::<u64>("meta", META_OUTBOX_SEQ, v.value())?,
                None => 0,
            };
            let mut ob = r!("open outbox", tx.open_table(OUTBOX))?;
            for e in &batch.outbox {
                seq += 1;
                r!("write outbox", ob.insert(seq, e.encode().as_slice()))?;
            }
            r!(
                "write meta",
                meta.insert(META_OUTBOX_SEQ, encode_json(&seq).as_slice())
            )?;
            r!(
                "write meta",
                meta.insert(META_CLOCK, encode_json(&engine.clock().0).as_slice())
            )?;
            r!(
                "write meta",
                meta.insert(META_STATS, encode_json(engine.stats()).as_slice())
            )?;
        }
        r!("commit", tx.commit())
    }

    /// Up to `max` outbox entries, oldest first.
    pub fn outbox_batch(&self, max: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open outbox", tx.open_table(OUTBOX))?;
        let mut out = Vec::new();
        for item in r!("iter outbox", t.iter())?.take(max) {
            let (k, v) = r!("read outbox", item)?;
            let e = OutboxEntry::decode(v.value()).map_err(|reason| StoreError::Corrupt {
                table: "outbox",
                key: k.value().to_string(),
                reason,
            })?;
            out.push((k.value(), e));
        }
        Ok(out)
    }

    /// Deletes delivered outbox entries.
    pub fn outbox_delete(&self, seqs: &[u64]) -> Result<(), StoreError> {
        let tx = r!("begin", self.db.begin_write())?;
        {
            let mut t = r!("open outbox", tx.open_table(OUTBOX))?;
            for s in seqs {
                r!("delete outbox", t.remove(*s))?;
            }
        }
        r!("commit", tx.commit())
    }

    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open outbox", tx.open_table(OUTBOX))?;
        r!("len outbox", t.len())
    }

    /// One stored incident (any status).
    pub fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open incidents", tx.open_table(INCIDENTS))?;
        match r!("read incidents", t.get(id.0))? {
            Some(v) => Ok(Some(decode_json("incidents", &id.to_string(), v.value())?)),
            None => Ok(None),
        }
    }

    /// Every stored incident, ordered by opening time then id.
    pub fn incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let tx = r!("begin read", self.db.begin_read())?;
        let t = r!("open incidents", tx.open_table(INCIDENTS))?;
        let mut out = Vec::new();
        for item in r!("iter incidents", t.iter())? {
            let (k, v) = r!("read incidents", item)?;
            out.push(decode_json::<Incident>(
                "incidents",
                &IncidentId(k.value()).to_string(),
                v.value(),
            )?);
        }
        out.sort_by_key(|i| (i.opened_at, i.id));
        Ok(out)
    }
}

fn encode_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serializing our own plain-data types cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    key: &str,
    v: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        reason: e.to_string(),
    })
}
