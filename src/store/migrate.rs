//! Brings a store written by an older build to [`codec::FORMAT`] when it is
//! opened, in the opening transaction (all or nothing).
//!
//! Format 1 stored JSON values, an incident's members inside the incident,
//! and outbox entries without a payload kind byte. Format 2 differs from 3
//! only by an outbox payload kind it never wrote, and 3 from 4 only by
//! member rows 4 leaves stale where loading re-derives them: nothing to
//! change. Formats before 5 kept a problem's incident list in its row; 5
//! keeps one row per (problem, incident). Formats before 6 kept every line
//! ever fed to the miner in `mined`; 6 keeps a snapshot of the miner and the
//! lines after it. The snapshot needs the miner's configuration, so it is
//! not built here but by the first [`super::Store::load_engine`], which
//! re-feeds the old log once and stores the snapshot in place of it.

use std::path::Path;

use redb::{ReadableTable, ReadableTableMetadata};

use super::tables::*;
use super::{codec, corrupt_outbox, encode_json, OutboxEntry, StoreError};
use crate::engine::state::{AlertState, Group, Incident, IncidentId, Member};

/// Brings a store written by an older build to [`codec::FORMAT`], in the
/// open transaction: format 1 held JSON values, members inside incidents.
pub(super) fn migrate(tx: &redb::WriteTransaction, path: &Path) -> Result<(), StoreError> {
    let mut meta = r!("open meta", tx.open_table(META))?;
    let found = match r!("read meta", meta.get(META_FORMAT))? {
        Some(v) => codec::decode_json::<u32>("meta", &META_FORMAT, v.value())?,
        None => {
            let has_data = !r!("len alerts", r!("open", tx.open_table(ALERTS))?.is_empty())?
                || !r!(
                    "len incidents",
                    r!("open", tx.open_table(INCIDENTS))?.is_empty()
                )?
                || !r!(
                    "len problems",
                    r!("open", tx.open_table(PROBLEMS))?.is_empty()
                )?
                || !r!("len groups", r!("open", tx.open_table(GROUPS))?.is_empty())?;
            if has_data {
                1
            } else {
                codec::FORMAT
            }
        }
    };
    if found > codec::FORMAT {
        return Err(StoreError::NewerFormat {
            path: path.to_path_buf(),
            found,
        });
    }
    if found == 1 {
        tracing::info!(path = %path.display(), "migrating store from format 1 (JSON values) to {}", codec::FORMAT);
        recode_json::<_, AlertState>(tx, ALERTS, "alerts")?;
        recode_json::<_, Group>(tx, GROUPS, "groups")?;
        recode_json::<_, crate::problems::state::Signature>(tx, SIGNATURES, "signatures")?;
        migrate_incidents(tx)?;
        migrate_outbox(tx)?;
    }
    if found < 5 {
        migrate_problem_incidents(tx, found == 1)?;
    }
    r!(
        "write meta",
        meta.insert(META_FORMAT, encode_json(&codec::FORMAT).as_slice())
    )?;
    Ok(())
}

/// Re-encodes every JSON value of a table in the current format (keys, u64
/// or string, are carried over as their bytes).
fn recode_json<K, T>(
    tx: &redb::WriteTransaction,
    def: redb::TableDefinition<K, &[u8]>,
    table: &'static str,
) -> Result<(), StoreError>
where
    K: redb::Key + 'static,
    for<'a> K::SelfType<'a>: std::fmt::Display,
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let mut t = r!("open", tx.open_table(def))?;
    let mut all = Vec::new();
    for item in r!("iter", t.iter())? {
        let (k, v) = r!("read", item)?;
        let key = k.value();
        let value = recode::<T>(table, &key, v.value())?;
        all.push((K::as_bytes(&key).as_ref().to_vec(), value));
    }
    for (k, v) in all {
        r!("rewrite", t.insert(K::from_bytes(&k), v.as_slice()))?;
    }
    Ok(())
}

fn recode<T>(
    table: &'static str,
    key: &dyn std::fmt::Display,
    json: &[u8],
) -> Result<Vec<u8>, StoreError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let value: T = codec::decode_json(table, key, json)?;
    codec::encode(table, &value)
}

/// Format 1 incidents carried their members; they move to `members`.
fn migrate_incidents(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    #[derive(serde::Deserialize)]
    struct WithMembers {
        #[serde(default)]
        members: Vec<Member>,
    }
    let mut t = r!("open incidents", tx.open_table(INCIDENTS))?;
    let mut m = r!("open members", tx.open_table(MEMBERS))?;
    let mut all = Vec::new();
    for item in r!("iter incidents", t.iter())? {
        let (k, v) = r!("read incidents", item)?;
        let id = IncidentId(k.value());
        let inc: Incident = codec::decode_json("incidents", &id, v.value())?;
        let members: WithMembers = codec::decode_json("incidents", &id, v.value())?;
        all.push((inc, members.members));
    }
    for (inc, members) in all {
        r!(
            "rewrite incidents",
            t.insert(inc.id.0, codec::encode("incidents", &inc)?.as_slice())
        )?;
        for (pos, member) in members.iter().enumerate() {
            r!(
                "write members",
                m.insert(
                    (inc.id.0, pos as u32),
                    codec::encode("members", member)?.as_slice()
                )
            )?;
        }
    }
    Ok(())
}

/// Before format 5 a problem's row held its incident list: it moves to
/// `problem_incidents`, one row each, and the row keeps the count. `json`:
/// format 1 values were JSON.
fn migrate_problem_incidents(tx: &redb::WriteTransaction, json: bool) -> Result<(), StoreError> {
    #[derive(serde::Deserialize)]
    struct WithIncidents {
        #[serde(default)]
        incident_ids: Vec<IncidentId>,
    }
    let mut t = r!("open problems", tx.open_table(PROBLEMS))?;
    let mut rows = r!("open problem_incidents", tx.open_table(PROBLEM_INCIDENTS))?;
    let mut all = Vec::new();
    for item in r!("iter problems", t.iter())? {
        let (k, v) = r!("read problems", item)?;
        let id = crate::problems::state::ProblemId(k.value());
        let (mut p, with): (crate::problems::state::Problem, WithIncidents) = if json {
            (
                codec::decode_json("problems", &id, v.value())?,
                codec::decode_json("problems", &id, v.value())?,
            )
        } else {
            (
                codec::decode("problems", &id, v.value())?,
                codec::decode("problems", &id, v.value())?,
            )
        };
        p.incident_count = with.incident_ids.len() as u64;
        all.push((p, with.incident_ids));
    }
    for (p, ids) in all {
        r!(
            "rewrite problems",
            t.insert(p.id.0, codec::encode("problems", &p)?.as_slice())
        )?;
        for (pos, i) in ids.iter().enumerate() {
            r!(
                "write problem_incidents",
                rows.insert((p.id.0, pos as u32), i.0)
            )?;
        }
    }
    Ok(())
}

/// Format 1 outbox entries had no payload kind byte.
fn migrate_outbox(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut t = r!("open outbox", tx.open_table(OUTBOX))?;
    let mut all = Vec::new();
    for item in r!("iter outbox", t.iter())? {
        let (k, v) = r!("read outbox", item)?;
        let e = OutboxEntry::decode_v1(v.value()).map_err(corrupt_outbox(k.value()))?;
        all.push((k.value(), e.encode()));
    }
    for (k, v) in all {
        r!("rewrite outbox", t.insert(k, v.as_slice()))?;
    }
    Ok(())
}
