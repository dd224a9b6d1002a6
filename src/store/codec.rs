//! How entity values are encoded, and the store's format version.
//!
//! MessagePack with field names (rmp-serde): self-describing like JSON, so a
//! field added later reads as its default, and any MessagePack tool can
//! inspect a value; but with no text escaping and no time formatting:
//! identities, timestamps and label sets are written as numbers and raw
//! bytes (their serde impls switch on `is_human_readable`). Small
//! bookkeeping values in `meta` stay JSON.
//!
//! Format 1 (before this module) stored JSON values with an incident's
//! members inside the incident; [`super::Store::open`] migrates it.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;

/// The format this build writes. Stored in `meta` under `format`.
/// Format 3 added outbox entries of kind `IncidentParts`; a format 2 store
/// opens as it is (its entries are still read), while a format 2 build
/// refuses a format 3 store instead of failing on entries it cannot read.
/// Format 4 stops rewriting a live member's row when only its `last_seen`
/// and `occurrences` change (loading takes them from its alert's row; see
/// `Member`): a format 3 store opens as it is (its rows are exact), while a
/// format 3 build refuses a format 4 store instead of showing stale members.
/// Format 5 stores a problem's incidents one row each (`problem_incidents`)
/// instead of a list inside the problem's row; opening an older store moves
/// them.
/// Format 6 snapshots the template miner's state (table `miner`) and keeps
/// in `mined` only the lines fed after the snapshot, and retention deletes
/// incidents, members, alerts and problems: an older store opens as it is
/// (its full `mined` log is re-fed once and the first snapshot replaces
/// it), while an older build refuses a format 6 store, whose miner it
/// would rebuild from the last few lines only.
pub const FORMAT: u32 = 6;

/// Appends the encoding of `v` to `buf` (kept as it is).
pub fn encode_append<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    table: &'static str,
    v: &T,
) -> Result<(), StoreError> {
    rmp_serde::encode::write_named(buf, v).map_err(|e| encode_error(table, e))
}

pub fn encode<T: Serialize + ?Sized>(table: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    let mut buf = Vec::new();
    encode_append(&mut buf, table, v)?;
    Ok(buf)
}

/// Positional (fields as arrays, no names): for short-lived values that
/// this same build reads back (outbox snapshots), where names would be a
/// third of the bytes. [`decode`] reads both forms. Appends to `buf` as it
/// is.
pub fn encode_compact_append<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    table: &'static str,
    v: &T,
) -> Result<(), StoreError> {
    rmp_serde::encode::write(buf, v).map_err(|e| encode_error(table, e))
}

fn encode_error(table: &'static str, e: rmp_serde::encode::Error) -> StoreError {
    StoreError::Encode {
        table,
        reason: e.to_string(),
    }
}

pub fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &dyn std::fmt::Display,
    v: &[u8],
) -> Result<T, StoreError> {
    rmp_serde::from_slice(v).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Format 1 values were JSON.
pub fn decode_json<T: DeserializeOwned>(
    table: &'static str,
    key: &dyn std::fmt::Display,
    v: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
        table,
        key: key.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Fingerprint, Labels, Timestamp};
    use crate::engine::state::IncidentId;

    #[test]
    fn identities_times_and_labels_round_trip_in_binary_form() {
        let labels = Labels::from_pairs([("alertname", "Down"), ("job", "api")]).unwrap();
        let v = (
            IncidentId(42),
            Fingerprint(0xdead_beef),
            Timestamp(1_767_607_200_123),
            labels.clone(),
        );
        let b = encode("t", &v).unwrap();
        let back: (IncidentId, Fingerprint, Timestamp, Labels) = decode("t", &"k", &b).unwrap();
        assert_eq!(back, v);
        // Numbers and raw bytes, not their printed forms.
        assert!(b.len() < 60, "{} bytes", b.len());
        assert!(!b.windows(4).any(|w| w == b"inc-"));
    }

    #[test]
    fn corrupt_label_bytes_are_an_error_naming_table_and_key() {
        let b = encode("t", &serde_bytes_like(b"job\xffapi")).unwrap();
        let e = decode::<Labels>("alerts", &"00ff", &b).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("alerts") && msg.contains("00ff"), "{msg}");
    }

    /// A MessagePack `bin` value.
    fn serde_bytes_like(b: &'static [u8]) -> impl Serialize {
        struct B(&'static [u8]);
        impl Serialize for B {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        B(b)
    }
}
