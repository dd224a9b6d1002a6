//! Table definitions and key encodings.
//!
//! Values are the engine's serde types in MessagePack with field names (see
//! `codec.rs`): tolerant of added fields; `meta` values are JSON. Keys: fingerprints and incident ids as u64
//! (their numeric order), group keys as strings, offsets as `TOPIC/PARTITION`
//! (a topic name never contains '/').

use redb::TableDefinition;

/// fingerprint → AlertState
pub const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");
/// group key → Group
pub const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
/// incident id → Incident without its members (closed and merged ones
/// included, until retention deletes them)
pub const INCIDENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("incidents");
/// (incident id, position in join order) → Member: one row per member, so a
/// change to one member of a large incident rewrites only that row
pub const MEMBERS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("members");
/// `TOPIC/PARTITION` → next offset to consume
pub const OFFSETS: TableDefinition<&str, i64> = TableDefinition::new("offsets");
/// sequence → outbox entry (see `outbox.rs`), deleted once the broker acked it
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// sequence → (reason, outbox entry) for an entry the broker refused for
/// good (too large, invalid): kept, counted and reported instead of
/// blocking the entries behind it. Value: `u32 BE reason_len, reason,
/// entry` (the entry in the outbox layout).
pub const OUTBOX_PARKED: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_parked");
/// problem id → Problem
pub const PROBLEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("problems");
/// (problem id, position in join order) → incident id: a problem's
/// incidents, one row each, so an incident joining a large problem writes
/// one row (the problem's own row holds their count)
pub const PROBLEM_INCIDENTS: TableDefinition<(u64, u32), u64> =
    TableDefinition::new("problem_incidents");
/// signature key → Signature
pub const SIGNATURES: TableDefinition<&str, &[u8]> = TableDefinition::new("signatures");
/// sequence → line fed to the template miner since its snapshot (re-fed in
/// order on start; emptied whenever a snapshot is stored)
pub const MINED: TableDefinition<u64, &str> = TableDefinition::new("mined");
/// [`MINER_STATE`] → the template miner's learned state
/// (`problems::miner::MinerState`), covering every line fed before the
/// lines in [`MINED`]
pub const MINER: TableDefinition<&str, &[u8]> = TableDefinition::new("miner");
/// The one key of [`MINER`].
pub const MINER_STATE: &str = "state";
/// name → JSON value
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub const META_CLOCK: &str = "clock";
pub const META_STATS: &str = "stats";
pub const META_OUTBOX_SEQ: &str = "outbox_seq";
/// The store format (`codec::FORMAT`); absent in format 1 stores.
pub const META_FORMAT: &str = "format";

pub fn encode_offset_key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

pub fn decode_offset_key(k: &str) -> Option<(String, i32)> {
    let (t, p) = k.rsplit_once('/')?;
    Some((t.to_string(), p.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_round_trip() {
        assert_eq!(
            decode_offset_key(&encode_offset_key("alerts.v1", 7)),
            Some(("alerts.v1".into(), 7))
        );
        assert_eq!(decode_offset_key("nope"), None);
    }
}
