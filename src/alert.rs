//! The canonical alert every wire format decodes into, and its identity.
//!
//! Identity is Alertmanager's fingerprint (FNV-1a 64 over the labels sorted by
//! name, each `name 0xFF value 0xFF`), so the ids correlator shows are the ids
//! users already see in Alertmanager and Grafana.
//!
//! Labels are stored in exactly that byte layout ([`Labels`]): one allocation
//! per label set, sorted once, and the fingerprint is a single pass over it.
//! `0xFF` never occurs in UTF-8, so the layout is unambiguous.

use std::fmt;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

/// Whole milliseconds in `d`, saturating at `i64::MAX` (~292 million years)
/// instead of wrapping to a negative count.
pub fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, UTC. The engine's only notion of time:
/// it is always passed in, never read from a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses RFC 3339 (`2026-01-05T10:00:00Z`, fractional seconds and offsets
    /// allowed). Returns `None` for Go's zero time (`0001-01-01T00:00:00Z`),
    /// which Alertmanager sends for "unset".
    pub fn parse_rfc3339(s: &str) -> Result<Option<Timestamp>, String> {
        let dt = chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("invalid RFC 3339 timestamp {s:?}: {e}"))?;
        let ms = dt.timestamp_millis();
        // Go's zero time and anything before 1970 means "not set".
        if ms <= 0 {
            return Ok(None);
        }
        Ok(Some(Timestamp(ms)))
    }

    /// Formats as RFC 3339 in UTC, with milliseconds only when not whole seconds.
    pub fn to_rfc3339(self) -> String {
        let mut buf = [0u8; 24];
        match self.rfc3339_fast(&mut buf) {
            Some(s) => s.to_string(),
            None => self.rfc3339_chrono(),
        }
    }

    fn rfc3339_chrono(self) -> String {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            None => format!("invalid-timestamp({})", self.0),
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` for years 0–9999 (every event carries a
    /// dozen timestamps per alert, so this skips chrono and any allocation);
    /// None outside that range. Same text as chrono's `AutoSi`.
    fn rfc3339_fast(self, buf: &mut [u8; 24]) -> Option<&str> {
        let days = self.0.div_euclid(86_400_000);
        let ms_of_day = self.0.rem_euclid(86_400_000);
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let (secs, ms) = (ms_of_day / 1000, ms_of_day % 1000);
        let fields = [
            (0, year, 4),
            (5, month, 2),
            (8, day, 2),
            (11, secs / 3600, 2),
            (14, secs / 60 % 60, 2),
            (17, secs % 60, 2),
        ];
        buf[..19].copy_from_slice(b"0000-00-00T00:00:00");
        for (at, mut v, width) in fields {
            for i in (0..width).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let end = if ms == 0 {
            buf[19] = b'Z';
            20
        } else {
            buf[19] = b'.';
            buf[20] = b'0' + (ms / 100) as u8;
            buf[21] = b'0' + (ms / 10 % 10) as u8;
            buf[22] = b'0' + (ms % 10) as u8;
            buf[23] = b'Z';
            24
        };
        std::str::from_utf8(&buf[..end]).ok()
    }

    /// `self + d`, saturating at the largest timestamp.
    pub fn plus(self, d: std::time::Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(millis(d)))
    }

    /// `self - d`, saturating at the smallest timestamp.
    pub fn minus(self, d: std::time::Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(millis(d)))
    }

    /// Seconds elapsed from `earlier` to `self` (negative if `earlier` is later).
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// RFC 3339 in human-readable formats (JSON); milliseconds in binary ones
/// (the store), which is smaller and needs no formatting.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut buf = [0u8; 24];
            match self.rfc3339_fast(&mut buf) {
                Some(text) => s.serialize_str(text),
                None => s.serialize_str(&self.rfc3339_chrono()),
            }
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d).map(Timestamp);
        }
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        match Timestamp::parse_rfc3339(&s) {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Ok(Timestamp(0)),
            Err(e) => Err(serde::de::Error::custom(e)),
        }
    }
}

/// Alertmanager-compatible alert identity, printed `%016x`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fingerprint(pub u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const SEP: u8 = 0xFF;

/// FNV-1a 64 over raw bytes, continuing from `hash`.
#[inline]
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// FNV-1a 64 of `bytes` from the standard offset basis.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    fnv1a(FNV_OFFSET, bytes)
}

impl Fingerprint {
    /// Parses 16 hex digits (the form Alertmanager prints).
    pub fn parse_hex(s: &str) -> Option<Fingerprint> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(Fingerprint)
    }

    /// Identity of an arbitrary key (a PagerDuty `dedup_key` that is not 16 hex
    /// digits): FNV-1a 64 of its bytes.
    pub fn of_key(key: &str) -> Fingerprint {
        Fingerprint(fnv1a_64(key.as_bytes()))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_id(self.0, self, s)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_id(d, "fingerprint", Fingerprint::parse_hex, Fingerprint)
    }
}

/// Serde for a u64 identity: its printed form in human-readable formats
/// (JSON, what operators read), the number in binary ones (the store).
pub(crate) fn serialize_id<S: Serializer>(
    n: u64,
    shown: &dyn fmt::Display,
    s: S,
) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.collect_str(shown)
    } else {
        s.serialize_u64(n)
    }
}

/// The inverse of [`serialize_id`]; `what` names the identity in errors.
pub(crate) fn deserialize_id<'de, D, T>(
    d: D,
    what: &str,
    parse: impl FnOnce(&str) -> Option<T>,
    from_number: impl FnOnce(u64) -> T,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    if !d.is_human_readable() {
        return u64::deserialize(d).map(from_number);
    }
    let s = std::borrow::Cow::<str>::deserialize(d)?;
    parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid {what} {s:?}")))
}

/// A label set, sorted by name, unique names, stored as the fingerprint's byte
/// layout `name 0xFF value 0xFF …` in one allocation.
///
/// Invariant: the buffer is a sequence of (name, value) pairs, each followed by
/// `0xFF`, names strictly increasing, names non-empty, all parts valid UTF-8.
///
/// Shared (`Arc`): an alert's labels are kept by its state and by its
/// incident membership, and cloning must not copy them.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Labels(std::sync::Arc<[u8]>);

impl Labels {
    /// Builds a label set from pairs in any order. A repeated name keeps the
    /// last value (as JSON objects do). Callers validate names and sizes
    /// beforehand; empty names are rejected here because they break identity.
    pub fn from_pairs<K, V, I>(pairs: I) -> Result<Labels, String>
    where
        K: AsRef<str>,
        V: AsRef<str>,
        I: IntoIterator<Item = (K, V)>,
    {
        let mut v: Vec<(K, V)> = pairs.into_iter().collect();
        // Stable sort keeps input order among equal names, so "last wins" below.
        v.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut len = 0;
        for (k, val) in &v {
            if k.as_ref().is_empty() {
                return Err("empty label name".to_string());
            }
            len += k.as_ref().len() + val.as_ref().len() + 2;
        }
        let mut buf = Vec::with_capacity(len);
        let mut i = 0;
        while i < v.len() {
            // Skip to the last of a run of equal names.
            let mut j = i;
            while j + 1 < v.len() && v[j + 1].0.as_ref() == v[i].0.as_ref() {
                j += 1;
            }
            buf.extend_from_slice(v[j].0.as_ref().as_bytes());
            buf.push(SEP);
            buf.extend_from_slice(v[j].1.as_ref().as_bytes());
            buf.push(SEP);
            i = j + 1;
        }
        Ok(Labels(buf.into()))
    }

    /// Iterates `(name, value)` in name order.
    pub fn iter(&self) -> LabelIter<'_> {
        LabelIter { rest: &self.0 }
    }

    /// The value of `name`, if present. Compares raw bytes and converts
    /// only the value found (this sits on the hot path of rule matching).
    pub fn get(&self, name: &str) -> Option<&str> {
        let mut rest: &[u8] = &self.0;
        let name = name.as_bytes();
        while !rest.is_empty() {
            let k_end = rest.iter().position(|b| *b == SEP)?;
            let v_start = k_end + 1;
            let v_len = rest[v_start..].iter().position(|b| *b == SEP)?;
            if &rest[..k_end] == name {
                return std::str::from_utf8(&rest[v_start..v_start + v_len]).ok();
            }
            rest = &rest[v_start + v_len + 1..];
        }
        None
    }

    /// The value of `name`, or "" when absent (Alertmanager matcher semantics).
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.0.iter().filter(|b| **b == SEP).count() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Heap bytes held by this label set (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }

    /// Alertmanager's fingerprint of the whole label set.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(fnv1a_64(&self.0))
    }

    /// Fingerprint over only the labels named in `names` (sorted, unique).
    /// An empty `names` means all labels.
    pub fn fingerprint_of(&self, names: &[String]) -> Fingerprint {
        if names.is_empty() {
            return self.fingerprint();
        }
        let mut h = FNV_OFFSET;
        for (k, v) in self.iter() {
            if names.iter().any(|n| n == k) {
                h = fnv1a(h, k.as_bytes());
                h = fnv1a(h, &[SEP]);
                h = fnv1a(h, v.as_bytes());
                h = fnv1a(h, &[SEP]);
            }
        }
        Fingerprint(h)
    }

    /// The raw `name 0xFF value 0xFF` bytes (for storage).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Rebuilds from bytes produced by [`Labels::as_bytes`], checking the
    /// invariant in one pass (this runs for every stored or snapshotted
    /// label set read back, so it copies once and sorts nothing).
    pub fn from_bytes(bytes: &[u8]) -> Result<Labels, String> {
        let mut rest = bytes;
        let mut prev: Option<&[u8]> = None;
        while !rest.is_empty() {
            let k_end = rest
                .iter()
                .position(|b| *b == SEP)
                .ok_or("label bytes: missing separator after a name")?;
            let name = &rest[..k_end];
            let after = &rest[k_end + 1..];
            let v_end = after
                .iter()
                .position(|b| *b == SEP)
                .ok_or("label bytes: name without value")?;
            let value = &after[..v_end];
            if name.is_empty() {
                return Err("label bytes: empty label name".to_string());
            }
            if prev.is_some_and(|p| p >= name) {
                return Err("label bytes are not in canonical order".to_string());
            }
            std::str::from_utf8(name).map_err(|e| format!("label name: {e}"))?;
            std::str::from_utf8(value).map_err(|e| format!("label value: {e}"))?;
            prev = Some(name);
            rest = &after[v_end + 1..];
        }
        Ok(Labels(bytes.into()))
    }
}

/// Iterator over a [`Labels`] buffer.
pub struct LabelIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let k_end = self.rest.iter().position(|b| *b == SEP)?;
        let (k, rest) = self.rest.split_at(k_end);
        let rest = &rest[1..];
        let v_end = rest.iter().position(|b| *b == SEP)?;
        let (v, rest) = rest.split_at(v_end);
        self.rest = &rest[1..];
        // The buffer is only built from &str parts separated by 0xFF, which
        // never occurs in UTF-8, so these conversions cannot fail.
        Some((
            std::str::from_utf8(k).unwrap_or_default(),
            std::str::from_utf8(v).unwrap_or_default(),
        ))
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A map in human-readable formats; the raw canonical bytes in binary ones
/// (the store: no per-label work, checked again when read).
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_bytes(&self.0);
        }
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            let b = serde_bytes_buf(d)?;
            return Labels::from_bytes(&b).map_err(serde::de::Error::custom);
        }
        let m = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Labels::from_pairs(m).map_err(serde::de::Error::custom)
    }
}

/// Bytes from a binary format (MessagePack `bin`), owned.
fn serde_bytes_buf<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("label bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
    d.deserialize_bytes(V)
}

/// Whether an alert is firing or resolved, as its sender says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// Normalised severity. Senders use many vocabularies; we map them onto the
/// four PagerDuty levels (plus `none`), ordered so that `max` is "most severe".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    /// Maps a `severity` label value (case-insensitive) onto the scale.
    pub fn from_label(v: &str) -> Severity {
        match v.to_ascii_lowercase().as_str() {
            "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "page" | "high"
            | "disaster" | "p1" | "sev1" => Severity::Critical,
            "error" | "err" | "major" | "p2" | "sev2" => Severity::Error,
            "warning" | "warn" | "minor" | "medium" | "average" | "p3" | "sev3" => {
                Severity::Warning
            }
            "info" | "informational" | "information" | "notice" | "low" | "debug" | "p4" | "p5"
            | "sev4" | "sev5" => Severity::Info,
            _ => Severity::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// Which wire format a record was decoded from (a closed set: safe as a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    AlertmanagerWebhook,
    AlertmanagerApiV2,
    PagerDuty,
    Grafana,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::AlertmanagerWebhook => "alertmanager_webhook",
            Format::AlertmanagerApiV2 => "alertmanager_api_v2",
            Format::PagerDuty => "pagerduty",
            Format::Grafana => "grafana",
        }
    }
}

/// One alert notification as decoded from a record, before the engine sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Identity (fingerprint of all labels, a PagerDuty dedup key, …). The
    /// engine may recompute it from `labels` when `dedup.identity_labels` is set.
    pub fingerprint: Fingerprint,
    /// True when `fingerprint` came from a sender-supplied key (PagerDuty
    /// `dedup_key`) and must not be recomputed from labels.
    pub keyed: bool,
    pub labels: Labels,
    /// The `summary` annotation (or `description`, or PagerDuty's summary).
    pub summary: Option<String>,
    pub status: AlertStatus,
    /// When the sender says the alert started (`startsAt`, PD `timestamp`).
    pub starts_at: Option<Timestamp>,
    /// When the sender says the alert ends (`endsAt`): in the past for a
    /// resolved alert, in the future for a firing one that expires unless re-sent.
    pub ends_at: Option<Timestamp>,
    pub generator_url: Option<String>,
    /// Free text the sender attached that is neither a label nor the
    /// summary, sorted by name: the PagerDuty `custom_details` entries that
    /// do not become labels (see `decode/pagerduty.rs`), each cut to
    /// `limits.max_annotation_bytes`. Never part of identity.
    pub annotations: Vec<(String, String)>,
    /// The wire format the alert came in: it decides how a firing alert
    /// that is not re-sent expires (see `engine/dedup.rs`).
    pub format: Format,
}

/// What a record asks the engine to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// A firing or resolved alert notification.
    Alert(Alert),
    /// Acknowledge the incident holding this alert (PagerDuty `acknowledge`).
    Acknowledge { fingerprint: Fingerprint },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sorted_unique_last_wins() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3")]).unwrap();
        let v: Vec<_> = l.iter().collect();
        assert_eq!(v, vec![("a", "1"), ("b", "3")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        assert_eq!(l.len(), 2);
    }

    /// A duration too long for an `i64` of milliseconds saturates: it must
    /// never wrap to a negative offset (an alert resolving as it opens).
    #[test]
    fn timestamp_arithmetic_saturates_on_huge_durations() {
        let t = Timestamp(1_767_225_600_000);
        let huge = std::time::Duration::from_secs(u64::MAX);
        assert_eq!(t.plus(huge), Timestamp(i64::MAX));
        assert_eq!(t.minus(huge), Timestamp(t.0 - i64::MAX));
        assert_eq!(Timestamp(-t.0).minus(huge), Timestamp(i64::MIN));
        assert_eq!(millis(huge), i64::MAX);
        assert_eq!(millis(std::time::Duration::from_millis(1500)), 1500);
    }

    #[test]
    fn empty_name_rejected() {
        assert!(Labels::from_pairs([("", "x")]).is_err());
    }

    #[test]
    fn bytes_round_trip() {
        let l = Labels::from_pairs([("job", "api"), ("a", ""), ("z", "ü")]).unwrap();
        assert_eq!(Labels::from_bytes(l.as_bytes()).unwrap(), l);
        let empty = Labels::from_pairs(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(Labels::from_bytes(empty.as_bytes()).unwrap(), empty);
        for bad in [
            &b"job\xffapi"[..],      // no final separator
            b"job\xff",              // name without value
            b"\xffx\xff",            // empty name
            b"z\xff1\xffa\xff2\xff", // out of order
            b"a\xff1\xffa\xff2\xff", // repeated name
            b"a\xff\xc3\x28\xff",    // invalid UTF-8
        ] {
            assert!(Labels::from_bytes(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Any label set survives its byte form; any other bytes are
        /// refused or read back as exactly what they encode.
        #[test]
        fn label_bytes_round_trip(
            pairs in proptest::collection::vec(("[a-z_]{1,6}", "\\PC{0,6}"), 0..8),
            noise in proptest::collection::vec(proptest::num::u8::ANY, 0..24),
        ) {
            let l = Labels::from_pairs(pairs).unwrap();
            proptest::prop_assert_eq!(Labels::from_bytes(l.as_bytes()).unwrap(), l);
            if let Ok(n) = Labels::from_bytes(&noise) {
                let again = Labels::from_pairs(n.iter()).unwrap();
                proptest::prop_assert_eq!(again.as_bytes(), &noise[..]);
            }
        }
    }

    proptest::proptest! {
        /// The fast formatter writes exactly what chrono writes.
        #[test]
        fn rfc3339_matches_chrono(ms in -63_000_000_000_000i64..254_000_000_000_000i64, whole in proptest::bool::ANY) {
            let t = Timestamp(if whole { ms - ms.rem_euclid(1000) } else { ms });
            proptest::prop_assert_eq!(t.to_rfc3339(), t.rfc3339_chrono());
        }
    }

    #[test]
    fn timestamps() {
        let t = Timestamp::parse_rfc3339("2026-01-05T10:00:00Z")
            .unwrap()
            .unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-05T10:00:00Z");
        let t2 = Timestamp::parse_rfc3339("2026-01-05T11:00:00.250+01:00")
            .unwrap()
            .unwrap();
        assert_eq!(t2.0 - t.0, 250);
        assert_eq!(t2.to_rfc3339(), "2026-01-05T10:00:00.250Z");
        assert_eq!(
            Timestamp::parse_rfc3339("0001-01-01T00:00:00Z").unwrap(),
            None
        );
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn severity_order() {
        assert!(Severity::Critical > Severity::Warning);
        assert_eq!(Severity::from_label("CRITICAL"), Severity::Critical);
        assert_eq!(Severity::from_label("whatever"), Severity::None);
    }
}
