//! Wire formats in, [`Signal`]s out: one file per format, plus auto-detection.
//!
//! Map of the module:
//! - `mod.rs` (this file): the public API ([`decode`], [`Decoded`], [`DecodeError`],
//!   [`Limits`]), format detection, and the small JSON vocabulary every decoder
//!   shares (tolerant leaf types, label validation, error paths).
//! - `alertmanager.rs`: Alertmanager webhook v4 and the Alertmanager alert object
//!   (`labels`, `annotations`, `startsAt`, …) that the webhook, Grafana and API v2
//!   formats all carry.
//! - `grafana.rs`: Grafana alerting webhook: Alertmanager-shaped, told apart by
//!   its extra fields.
//! - `postable.rs`: Alertmanager API v2 postable alerts, a list or a single object
//!   (the native format).
//! - `pagerduty.rs`: PagerDuty Events v2 (`trigger`, `acknowledge`, `resolve`).
//!
//! How a record is read (the hot path):
//! 1. Size check before anything else, then one UTF-8 check of the whole record
//!    (after which the JSON parser can skip its own per-string checks).
//! 2. One parse of the whole record into a probe (`Envelope`) that holds the
//!    fields of every format, alerts included. Strings are borrowed from the
//!    record (`Cow`); nothing goes through `serde_json::Value`.
//! 3. Every type in that parse is tolerant ([`Text`], [`Pairs`], [`Item`],
//!    [`List`], and the `tolerant_object!` structs): a wrong JSON type is not a
//!    parse error but a [`Found`] value recording what was there, and a
//!    repeated key keeps its last value (as Go's decoder, hence Alertmanager,
//!    does). So only a JSON syntax error fails a parse, and after the parse each
//!    alert is validated on its own: a bad alert is reported with its path
//!    (`alerts[0].labels."severity": expected a string, found integer 5`) and
//!    never spoils its neighbours, as in Alertmanager's own API.
//!
//! Nothing here panics on any input: every index is checked, the tolerant types
//! nest only as deep as the formats do, values we skip are skipped by
//! serde_json without recursion (its 128-level limit covers the rest), and the
//! property tests below feed arbitrary bytes and arbitrary JSON.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::alert::{Format, Labels, Signal, Timestamp};

/// Defines a tolerant `Deserialize` for a struct of `Option` fields (which
/// must also derive `Default`): each listed JSON key fills its field, a
/// repeated key keeps its last value, unknown keys are skipped. With tolerant
/// field types the parse can then only fail on JSON syntax. Defined before the
/// format modules so that they can use it.
macro_rules! tolerant_object {
    ($name:ident { $($key:literal => $field:ident),* $(,)? }) => {
        impl<'de: 'a, 'a> serde::Deserialize<'de> for $name<'a> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ObjectVisitor<'a>(std::marker::PhantomData<&'a ()>);

                impl<'de: 'a, 'a> serde::de::Visitor<'de> for ObjectVisitor<'a> {
                    type Value = $name<'a>;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($name), ")"))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        while let Some(key) = map.next_key::<$crate::decode::Text<'de>>()? {
                            let $crate::decode::Text::Str(key) = key else {
                                map.next_value::<serde::de::IgnoredAny>()?;
                                continue;
                            };
                            match key.as_ref() {
                                $($key => out.$field = map.next_value()?,)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(out)
                    }
                }

                d.deserialize_map(ObjectVisitor(std::marker::PhantomData))
            }
        }
    };
}

mod alertmanager;
mod grafana;
mod label_cache;
mod pagerduty;
mod postable;

pub use label_cache::LabelCache;

/// Size caps on what we accept, from the `[limits]` config table.
///
/// They bound the memory one record can make the daemon hold (labels live as
/// long as their incident), and they turn a runaway producer into DLQ entries
/// with a precise reason instead of an out-of-memory kill. Every field has a
/// default; unknown keys are rejected so a typo is not silently ignored.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest record accepted, in bytes (default 1 MiB). Checked before parsing.
    pub max_record_bytes: usize,
    /// Most alerts in one record (webhook `alerts` or an API v2 list; default 1000).
    /// Over it, the whole record is rejected: there is no fair way to pick which
    /// alerts to keep.
    pub max_alerts_per_record: usize,
    /// Most labels on one alert (default 64).
    pub max_labels: usize,
    /// Longest label name, in bytes (default 256).
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes (default 4096).
    pub max_label_value_bytes: usize,
    /// Longest summary we keep (the `summary`/`description` annotation or the
    /// PagerDuty summary), in bytes (default 16384).
    pub max_annotation_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 1024 * 1024,
            max_alerts_per_record: 1000,
            max_labels: 64,
            max_label_name_bytes: 256,
            max_label_value_bytes: 4096,
            max_annotation_bytes: 16 * 1024,
        }
    }
}

/// Result of decoding one record.
///
/// A record may be partly valid: as Alertmanager's API does, the valid alerts
/// are accepted and each invalid one is reported. `signals` and `errors` are
/// both in record order. A record with errors and no signals goes to the DLQ;
/// what to do with a partly valid one is the caller's policy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The detected format; `None` when the record is too large, not JSON, or
    /// matches no known format.
    pub format: Option<Format>,
    /// What the record asks the engine to do, in record order.
    pub signals: Vec<Signal>,
    /// Why parts of the record (or all of it) were rejected, in record order.
    pub errors: Vec<DecodeError>,
}

impl Decoded {
    fn failed(format: Option<Format>, error: DecodeError) -> Decoded {
        Decoded {
            format,
            signals: Vec::new(),
            errors: vec![error],
        }
    }
}

/// Why a record, or one alert in it, was rejected.
///
/// The message names the field path (`alerts[2].labels`, `[0].startsAt`,
/// `payload.severity`) and the reason; [`DecodeError::reason`] gives a short
/// category for metric labels.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The record is over `limits.max_record_bytes`; it was not parsed.
    #[error("record is {size} bytes, over the limit of {limit} (limits.max_record_bytes)")]
    TooLarge { size: usize, limit: usize },

    /// The record is not JSON (or not UTF-8). The line is 1-based, the column
    /// is the 1-based byte in that line (0 when the input ends at a line start).
    #[error("invalid JSON at line {line} column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },

    /// Valid JSON, but none of the formats we know.
    #[error(
        "record matches no known format: expected \"alerts\" (Alertmanager/Grafana webhook), \
         \"labels\" (Alertmanager API v2 alert), an array of alerts, or \"event_action\" \
         (PagerDuty Events v2)"
    )]
    UnknownFormat,

    /// A field is missing, has the wrong type, or a value outside its set.
    #[error("{path}: {reason}")]
    InvalidField { path: String, reason: String },

    /// A field is over one of the configured [`Limits`].
    #[error("{path}: {actual} {unit}, over the limit of {limit} (limits.{limit_name})")]
    LimitExceeded {
        path: String,
        actual: usize,
        /// What `actual` counts: `bytes`, `labels` or `alerts`.
        unit: &'static str,
        limit: usize,
        /// The `[limits]` key to raise.
        limit_name: &'static str,
    },
}

impl DecodeError {
    /// A short category from a closed set, safe as a metric label:
    /// `too_large`, `invalid_json`, `unknown_format`, `invalid_field`,
    /// `limit_exceeded`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::InvalidJson { .. } => "invalid_json",
            DecodeError::UnknownFormat => "unknown_format",
            DecodeError::InvalidField { .. } => "invalid_field",
            DecodeError::LimitExceeded { .. } => "limit_exceeded",
        }
    }

    pub(crate) fn field(path: String, reason: impl Into<String>) -> DecodeError {
        DecodeError::InvalidField {
            path,
            reason: reason.into(),
        }
    }

    pub(crate) fn limit(
        path: String,
        actual: usize,
        unit: &'static str,
        limit: usize,
        limit_name: &'static str,
    ) -> DecodeError {
        DecodeError::LimitExceeded {
            path,
            actual,
            unit,
            limit,
            limit_name,
        }
    }

    /// Maps a serde_json error of a whole-record parse. The tolerant types accept
    /// any JSON value, so this is a syntax error (with its position); a data
    /// error cannot happen, but would be reported against the record.
    fn from_json(e: &serde_json::Error) -> DecodeError {
        match e.classify() {
            serde_json::error::Category::Data => {
                DecodeError::field("record".to_string(), without_position(e))
            }
            _ => DecodeError::InvalidJson {
                line: e.line(),
                column: e.column(),
                message: without_position(e),
            },
        }
    }
}

/// serde_json's message without its trailing " at line L column C" (we print
/// the position ourselves).
fn without_position(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    }
}

/// Decodes one record (one Kafka message value or one HTTP body).
///
/// The format is detected from the record itself:
/// - a JSON array: Alertmanager API v2 postable alerts;
/// - an object with `event_action` (or `routing_key` and `payload`): PagerDuty
///   Events v2;
/// - an object with `alerts`: a webhook, Grafana when the top level has `orgId`,
///   `title` or `state` or an alert has `values`, `valueString`, `dashboardURL`
///   or `panelURL`, Alertmanager webhook v4 otherwise;
/// - an object with `labels` (or, lacking them, another field of an alert:
///   `annotations`, `startsAt`, `endsAt`, `generatorURL`): one API v2 alert,
///   the native format.
///
/// A leading byte-order mark is skipped.
///
/// `now` is the engine clock (the record timestamp on replay): an API v2 alert
/// is resolved iff its `endsAt` is set and not after `now`. Never panics.
pub fn decode(bytes: &[u8], now: Timestamp, limits: &Limits) -> Decoded {
    decode_with(bytes, now, limits, &mut LabelCache::disabled())
}

/// [`decode`] for a long-lived reader of one stream (the daemon's fetch
/// thread, replay): it keeps the label sets of the alerts it decoded, so a
/// re-sent alert's labels are not built again (see [`LabelCache`]). Gives
/// exactly what [`decode`] gives.
pub struct Decoder {
    limits: Limits,
    labels: LabelCache,
}

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            labels: LabelCache::new(),
        }
    }

    /// [`decode`] with this decoder's limits.
    pub fn decode(&mut self, bytes: &[u8], now: Timestamp) -> Decoded {
        decode_with(bytes, now, &self.limits, &mut self.labels)
    }
}

fn decode_with(bytes: &[u8], now: Timestamp, limits: &Limits, labels: &mut LabelCache) -> Decoded {
    if bytes.len() > limits.max_record_bytes {
        let error = DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_record_bytes,
        };
        return Decoded::failed(None, error);
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Decoded::failed(None, invalid_utf8(bytes, e.valid_up_to())),
    };
    // A byte-order mark is not JSON, but some HTTP clients send one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match text.trim_start().as_bytes().first() {
        Some(b'[') => postable::decode_list(text, now, limits, labels),
        Some(b'{') => decode_object(text, now, limits, labels),
        _ => match serde_json::from_str::<IgnoredAny>(text) {
            Err(e) => Decoded::failed(None, DecodeError::from_json(&e)),
            Ok(_) => Decoded::failed(None, DecodeError::UnknownFormat),
        },
    }
}

fn invalid_utf8(bytes: &[u8], valid_up_to: usize) -> DecodeError {
    let before = &bytes[..valid_up_to.min(bytes.len())];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let column = 1 + before.iter().rev().take_while(|b| **b != b'\n').count();
    DecodeError::InvalidJson {
        line,
        column,
        message: "invalid UTF-8 byte sequence".to_string(),
    }
}

/// The top level of an object record: the fields of every format, parsed in
/// one pass. Unknown fields are ignored; `null` counts as absent.
#[derive(Default)]
struct Envelope<'a> {
    // Webhooks (Alertmanager v4, Grafana).
    alerts: Option<List<alertmanager::AlertFields<'a>>>,
    org_id: Option<IgnoredAny>,
    title: Option<IgnoredAny>,
    state: Option<IgnoredAny>,

    // PagerDuty Events v2.
    event_action: Option<Text<'a>>,
    routing_key: Option<IgnoredAny>,
    dedup_key: Option<Text<'a>>,
    payload: Option<Item<pagerduty::Payload<'a>>>,
    client_url: Option<Text<'a>>,

    // One API v2 postable alert (the native format): the object is the alert.
    labels: Option<LabelsJson<'a>>,
    annotations: Option<Pairs<'a>>,
    starts_at: Option<Text<'a>>,
    ends_at: Option<Text<'a>>,
    generator_url: Option<Text<'a>>,
}

tolerant_object!(Envelope {
    "alerts" => alerts,
    "orgId" => org_id,
    "title" => title,
    "state" => state,
    "event_action" => event_action,
    "routing_key" => routing_key,
    "dedup_key" => dedup_key,
    "payload" => payload,
    "client_url" => client_url,
    "labels" => labels,
    "annotations" => annotations,
    "startsAt" => starts_at,
    "endsAt" => ends_at,
    "generatorURL" => generator_url,
});

fn decode_object(text: &str, now: Timestamp, limits: &Limits, labels: &mut LabelCache) -> Decoded {
    let env: Envelope<'_> = match serde_json::from_str(text) {
        Ok(env) => env,
        Err(e) => return Decoded::failed(None, DecodeError::from_json(&e)),
    };
    if env.event_action.is_some() || (env.routing_key.is_some() && env.payload.is_some()) {
        let event = pagerduty::Event {
            event_action: env.event_action,
            dedup_key: env.dedup_key,
            payload: env.payload,
            client_url: env.client_url,
        };
        return pagerduty::decode(event, limits);
    }
    if let Some(alerts) = env.alerts {
        let grafana = grafana::is_grafana_envelope(
            env.org_id.is_some(),
            env.title.is_some(),
            env.state.is_some(),
        );
        return alertmanager::decode_webhook(alerts, grafana, limits, labels);
    }
    // `labels` is what marks the native format; the other alert fields do too,
    // so that a record that forgot its labels is told exactly that.
    let alert_like = env.labels.is_some()
        || env.annotations.is_some()
        || env.starts_at.is_some()
        || env.ends_at.is_some()
        || env.generator_url.is_some();
    if alert_like {
        let fields = alertmanager::AlertFields {
            labels: env.labels,
            annotations: env.annotations,
            starts_at: env.starts_at,
            ends_at: env.ends_at,
            generator_url: env.generator_url,
            ..alertmanager::AlertFields::default()
        };
        return postable::decode_one(&fields, now, limits, labels);
    }
    Decoded::failed(None, DecodeError::UnknownFormat)
}

// ---------------------------------------------------------------------------
// Error paths.

/// Where an alert sits in its record, for error paths: the record itself (one
/// API v2 object, a PagerDuty event) or item `i` of a list (`alerts[i]` in a
/// webhook, `[i]` in an API v2 array). Paths are only built on the error path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Loc {
    Root,
    Item(&'static str, usize),
}

impl Loc {
    /// The path of `field` (dotted, may be empty) under this location.
    pub(crate) fn path(self, field: &str) -> String {
        match (self, field.is_empty()) {
            (Loc::Root, true) => "record".to_string(),
            (Loc::Root, false) => field.to_string(),
            (Loc::Item(list, i), true) => format!("{list}[{i}]"),
            (Loc::Item(list, i), false) => format!("{list}[{i}].{field}"),
        }
    }

    /// The path of one entry of a map field: `alerts[0].labels."severity"`.
    pub(crate) fn entry(self, field: &str, key: &str) -> String {
        self.path(&format!("{field}.{}", quoted(key)))
    }
}

/// A JSON-quoted, length-capped rendering of a user string for messages, so a
/// 1 MiB label name does not become a 1 MiB error.
pub(crate) fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut short: String = s.chars().take(MAX_CHARS).collect();
    if short.len() < s.len() {
        short.push('…');
    }
    serde_json::to_string(&short).unwrap_or_else(|_| "\"?\"".to_string())
}

// ---------------------------------------------------------------------------
// Tolerant leaf types: they accept any JSON value and remember what they found.

/// What a JSON value turned out to be, for "expected X, found Y" messages.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Number(f64),
    Str(String),
    Array,
    Object,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Null => f.write_str("null"),
            Found::Bool(b) => write!(f, "boolean {b}"),
            Found::Int(i) => write!(f, "integer {i}"),
            Found::Uint(u) => write!(f, "integer {u}"),
            Found::Number(n) => write!(f, "number {n}"),
            Found::Str(s) => write!(f, "string {}", quoted(s)),
            Found::Array => f.write_str("an array"),
            Found::Object => f.write_str("an object"),
        }
    }
}

/// A JSON string, borrowed from the record when it has no escapes, or what
/// was there instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Text<'a> {
    Str(Cow<'a, str>),
    Wrong(Found),
}

/// A JSON object of (supposedly) strings, entries in record order with
/// duplicates kept (label building keeps the last, as Go's decoder does), or
/// what was there instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pairs<'a> {
    Map(Vec<(Cow<'a, str>, Text<'a>)>),
    Wrong(Found),
}

/// An alert's `labels` as the record has them, unparsed: the
/// [`LabelCache`] parses (into [`Pairs`]) only a text it has not seen.
#[derive(Debug)]
pub(crate) struct LabelsJson<'a>(&'a serde_json::value::RawValue);

impl<'a> LabelsJson<'a> {
    pub(crate) fn text(&self) -> &'a str {
        self.0.get()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for LabelsJson<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a serde_json::value::RawValue>::deserialize(d).map(LabelsJson)
    }
}

/// A JSON object parsed as `T` (a `tolerant_object!` struct), or what was
/// there instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item<T> {
    Object(T),
    Wrong(Found),
}

/// A JSON array of [`Item`]s, or what was there instead.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum List<T> {
    Items(Vec<Item<T>>),
    Wrong(Found),
}

/// The `visit_*` methods of every JSON scalar, each describing what it found
/// as `$wrap(Found)`. Strings arrive through `visit_str` (the default
/// `visit_borrowed_str` and `visit_string` forward to it).
macro_rules! describe_scalars {
    ($wrap:expr) => {
        describe_scalars!(@except_str $wrap);

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok($wrap(Found::Str(v.to_string())))
        }
    };
    (@except_str $wrap:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok($wrap(Found::Bool(v)))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok($wrap(Found::Int(v)))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok($wrap(Found::Uint(v)))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok($wrap(Found::Number(v)))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Found::Null))
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap(Found::Null))
        }
    };
}

/// Skips the rest of an array we do not keep, allocating nothing.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Skips the rest of an object we do not keep, allocating nothing.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    describe_scalars!(@except_str Text::Wrong);

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Borrowed(v)))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text::Str(Cow::Owned(v.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text<'de>, A::Error> {
        drain_seq(seq)?;
        Ok(Text::Wrong(Found::Array))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Text<'de>, A::Error> {
        drain_map(map)?;
        Ok(Text::Wrong(Found::Object))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct PairsVisitor;

impl<'de> Visitor<'de> for PairsVisitor {
    type Value = Pairs<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    describe_scalars!(Pairs::Wrong);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Pairs<'de>, A::Error> {
        drain_seq(seq)?;
        Ok(Pairs::Wrong(Found::Array))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs<'de>, A::Error> {
        // serde_json gives no size hint; 16 holds a typical label set without
        // regrowing.
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let value = map.next_value::<Text<'de>>()?;
            let key = match key {
                Text::Str(k) => k,
                // JSON object keys are always strings.
                Text::Wrong(found) => Cow::Owned(found.to_string()),
            };
            pairs.push((key, value));
        }
        Ok(Pairs::Map(pairs))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PairsVisitor)
    }
}

struct ItemVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ItemVisitor<T> {
    type Value = Item<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    describe_scalars!(Item::Wrong);

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item<T>, A::Error> {
        drain_seq(seq)?;
        Ok(Item::Wrong(Found::Array))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Item::Object)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ItemVisitor(PhantomData))
    }
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    describe_scalars!(List::Wrong);

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(1024));
        while let Some(item) = seq.next_element::<Item<T>>()? {
            items.push(item);
        }
        Ok(List::Items(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
        drain_map(map)?;
        Ok(List::Wrong(Found::Object))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ListVisitor(PhantomData))
    }
}

/// The object in `item`, or an error saying what was at `path` instead.
pub(crate) fn object<T>(item: Item<T>, path: impl FnOnce() -> String) -> Result<T, DecodeError> {
    match item {
        Item::Object(t) => Ok(t),
        Item::Wrong(found) => Err(DecodeError::field(
            path(),
            format!("expected an object, found {found}"),
        )),
    }
}

// ---------------------------------------------------------------------------
// Field helpers shared by the decoders.

/// An optional string field: absent (or `null`) is `None`, a wrong type is an
/// error naming the field.
pub(crate) fn opt_str<'t>(
    value: &'t Option<Text<'_>>,
    loc: Loc,
    field: &str,
) -> Result<Option<&'t str>, DecodeError> {
    match value {
        None => Ok(None),
        Some(Text::Str(s)) => Ok(Some(s)),
        Some(Text::Wrong(found)) => Err(DecodeError::field(
            loc.path(field),
            format!("expected a string, found {found}"),
        )),
    }
}

/// An optional RFC 3339 timestamp field. Go's zero time (Alertmanager's "unset")
/// is `None`.
pub(crate) fn opt_timestamp(
    value: &Option<Text<'_>>,
    loc: Loc,
    field: &str,
) -> Result<Option<Timestamp>, DecodeError> {
    let Some(s) = opt_str(value, loc, field)? else {
        return Ok(None);
    };
    parse_timestamp(s).map_err(|reason| DecodeError::field(loc.path(field), reason))
}

/// [`Timestamp::parse_rfc3339`] with the quoted input capped in the message.
pub(crate) fn parse_timestamp(s: &str) -> Result<Option<Timestamp>, String> {
    // The longest RFC 3339 form (nanoseconds and an offset) is 35 bytes.
    if s.len() > 64 {
        return Err(format!(
            "invalid RFC 3339 timestamp {}: {} bytes long",
            quoted(s),
            s.len()
        ));
    }
    Timestamp::parse_rfc3339(s)
}

/// Checks one label against the naming rule and the size limits. `path` builds
/// the entry's path, only when there is an error to report.
pub(crate) fn check_label(
    name: &str,
    value: &str,
    limits: &Limits,
    path: impl Fn() -> String,
) -> Result<(), DecodeError> {
    if name.is_empty() {
        return Err(DecodeError::field(path(), "label name must not be empty"));
    }
    if name.len() > limits.max_label_name_bytes {
        let limit = limits.max_label_name_bytes;
        return Err(DecodeError::limit(
            path(),
            name.len(),
            "bytes",
            limit,
            "max_label_name_bytes",
        ));
    }
    if value.len() > limits.max_label_value_bytes {
        let limit = limits.max_label_value_bytes;
        let name = "max_label_value_bytes";
        return Err(DecodeError::limit(
            path(),
            value.len(),
            "bytes",
            limit,
            name,
        ));
    }
    Ok(())
}

/// Checks the number of labels of one alert.
pub(crate) fn check_label_count(
    count: usize,
    limits: &Limits,
    path: impl FnOnce() -> String,
) -> Result<(), DecodeError> {
    if count > limits.max_labels {
        return Err(DecodeError::limit(
            path(),
            count,
            "labels",
            limits.max_labels,
            "max_labels",
        ));
    }
    Ok(())
}

/// Checks a kept summary against `limits.max_annotation_bytes`.
pub(crate) fn check_summary(
    summary: &str,
    limits: &Limits,
    path: impl FnOnce() -> String,
) -> Result<(), DecodeError> {
    if summary.len() > limits.max_annotation_bytes {
        let limit = limits.max_annotation_bytes;
        let name = "max_annotation_bytes";
        return Err(DecodeError::limit(
            path(),
            summary.len(),
            "bytes",
            limit,
            name,
        ));
    }
    Ok(())
}

/// Builds a label set from an Alertmanager-style `labels` object: every value
/// must be a string, names non-empty, sizes within limits. Empty values are
/// kept (they are part of Alertmanager's fingerprint).
pub(crate) fn labels_from_pairs(
    pairs: &[(Cow<'_, str>, Text<'_>)],
    loc: Loc,
    field: &str,
    limits: &Limits,
) -> Result<Labels, DecodeError> {
    check_label_count(pairs.len(), limits, || loc.path(field))?;
    let mut checked: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let entry = || loc.entry(field, name);
        let value = match value {
            Text::Str(v) => v.as_ref(),
            Text::Wrong(found) => {
                return Err(DecodeError::field(
                    entry(),
                    format!("expected a string, found {found}"),
                ))
            }
        };
        check_label(name, value, limits, entry)?;
        checked.push((name, value));
    }
    Labels::from_pairs(checked).map_err(|e| DecodeError::field(loc.path(field), e))
}

#[cfg(test)]
mod tests;

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary (`s` itself when it fits).
pub fn utf8_prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
