//! PagerDuty Events API v2 (`POST https://events.pagerduty.com/v2/enqueue`).
//!
//! ```json
//! {"routing_key": "…", "event_action": "trigger", "dedup_key": "…",
//!  "client": "…", "client_url": "…",
//!  "payload": {"summary": "…", "source": "…", "severity": "critical",
//!              "timestamp": "…", "component": "…", "group": "…", "class": "…",
//!              "custom_details": {…}}}
//! ```
//!
//! Mapping onto [`Alert`]:
//! - labels: `source`, `severity`, `component`, `group` and `class` when
//!   present (checked like any label: a bad one fails the event), plus the
//!   `custom_details` entries that are label-like: a string value of one line
//!   within `limits.max_label_value_bytes`, under a non-empty key within
//!   `limits.max_label_name_bytes` that is not a payload field name and not
//!   one of the free-text keys [`FREE_TEXT_DETAILS`] (`firing`, `resolved`,
//!   `num_firing`, `num_resolved`, `description`, `details`, `message`,
//!   `summary`, `text`, `body`), while the alert has fewer than
//!   `limits.max_labels` labels.
//! - annotations: every other string entry of `custom_details`, cut to
//!   `limits.max_annotation_bytes` with the marker `…[truncated, N bytes]`
//!   (N the original size). A `custom_details` entry never fails the event
//!   and free text never becomes identity: Alertmanager's notifier sends its
//!   multi-line `firing`/`resolved` lists, different with every
//!   notification of a group and often over any label limit, there.
//!   Non-string values (numbers, nested objects) are skipped, and so is a
//!   `custom_details` that is not an object.
//! - identity: `dedup_key` when present and non-empty (16 hex digits are used
//!   as the fingerprint as is, any other key is hashed), `keyed = true`;
//!   otherwise the label fingerprint.
//! - `summary` is the summary; `client_url` the generator URL; `timestamp` the
//!   start of a `trigger` and the end of a `resolve`. PagerDuty's own examples
//!   write offsets without a colon (`2015-07-17T08:42:58.315+0000`), which
//!   strict RFC 3339 refuses, so that form is accepted too.
//! - `trigger` needs a payload with `summary`, `source` and `severity`
//!   (`critical`, `error`, `warning` or `info`), as PagerDuty does.
//!   `acknowledge` needs a `dedup_key` and becomes [`Signal::Acknowledge`].
//!   `resolve` needs a `dedup_key`; its payload is optional (PagerDuty ignores
//!   it) and its labels may then be empty.
//! - `routing_key` is PagerDuty's integration secret: it is never copied
//!   anywhere, it only helps recognise the format.

use super::{
    check_label, check_label_count, check_summary, object, opt_str, parse_timestamp, quoted,
    DecodeError, Decoded, Item, Limits, Loc, Pairs, Text,
};
use crate::alert::{Alert, AlertStatus, Fingerprint, Format, Labels, Signal, Timestamp};

/// The PagerDuty fields of the top-level probe.
pub(super) struct Event<'a> {
    pub event_action: Option<Text<'a>>,
    pub dedup_key: Option<Text<'a>>,
    pub payload: Option<Item<Payload<'a>>>,
    pub client_url: Option<Text<'a>>,
}

/// PagerDuty's `payload` object, tolerant like every wire type here.
#[derive(Debug, Default)]
pub(super) struct Payload<'a> {
    summary: Option<Text<'a>>,
    source: Option<Text<'a>>,
    severity: Option<Text<'a>>,
    timestamp: Option<Text<'a>>,
    component: Option<Text<'a>>,
    group: Option<Text<'a>>,
    class: Option<Text<'a>>,
    custom_details: Option<Pairs<'a>>,
}

tolerant_object!(Payload {
    "summary" => summary,
    "source" => source,
    "severity" => severity,
    "timestamp" => timestamp,
    "component" => component,
    "group" => group,
    "class" => class,
    "custom_details" => custom_details,
});

#[derive(Debug, Clone, Copy, PartialEq)]
enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

const SEVERITIES: [&str; 4] = ["critical", "error", "warning", "info"];

/// Decodes one event. An event is one signal or one error.
pub(super) fn decode(event: Event<'_>, limits: &Limits) -> Decoded {
    let format = Some(Format::PagerDuty);
    match decode_event(event, limits) {
        Ok(signal) => Decoded {
            format,
            signals: vec![signal],
            errors: Vec::new(),
        },
        Err(e) => Decoded::failed(format, e),
    }
}

fn decode_event(event: Event<'_>, limits: &Limits) -> Result<Signal, DecodeError> {
    let action = action(&event.event_action)?;
    let dedup_key = opt_str(&event.dedup_key, Loc::Root, "dedup_key")?.filter(|k| !k.is_empty());
    let keyed = dedup_key.map(identity);
    let require_key = |name: &str| {
        keyed.ok_or_else(|| {
            let reason = format!("required for event_action \"{name}\"");
            DecodeError::field("dedup_key".to_string(), reason)
        })
    };
    let generator_url = opt_str(&event.client_url, Loc::Root, "client_url")?
        .filter(|url| !url.is_empty())
        .map(str::to_string);

    match action {
        Action::Acknowledge => Ok(Signal::Acknowledge {
            fingerprint: require_key("acknowledge")?,
        }),
        Action::Resolve => {
            let fingerprint = require_key("resolve")?;
            let ((labels, annotations), summary, ends_at) = match event.payload {
                None => ((Labels::default(), Vec::new()), None, None),
                Some(item) => {
                    let p = object(item, || "payload".to_string())?;
                    (labels(&p, limits)?, summary(&p, limits)?, timestamp(&p)?)
                }
            };
            Ok(Signal::Alert(Alert {
                fingerprint,
                keyed: true,
                labels,
                summary,
                status: AlertStatus::Resolved,
                starts_at: None,
                ends_at,
                generator_url,
                annotations,
                format: Format::PagerDuty,
            }))
        }
        Action::Trigger => {
            let Some(item) = event.payload else {
                let reason = "required for event_action \"trigger\"";
                return Err(DecodeError::field("payload".to_string(), reason));
            };
            let p = object(item, || "payload".to_string())?;
            required(&p.summary, "payload.summary")?;
            required(&p.source, "payload.source")?;
            let severity = required(&p.severity, "payload.severity")?;
            if !SEVERITIES.contains(&severity) {
                let reason = format!(
                    "{} is not one of {}",
                    quoted(severity),
                    SEVERITIES.join(", ")
                );
                return Err(DecodeError::field("payload.severity".to_string(), reason));
            }
            let (labels, annotations) = labels(&p, limits)?;
            let summary = summary(&p, limits)?;
            let starts_at = timestamp(&p)?;
            let (fingerprint, keyed) = match keyed {
                Some(fingerprint) => (fingerprint, true),
                None => (labels.fingerprint(), false),
            };
            Ok(Signal::Alert(Alert {
                fingerprint,
                keyed,
                labels,
                summary,
                status: AlertStatus::Firing,
                starts_at,
                ends_at: None,
                generator_url,
                annotations,
                format: Format::PagerDuty,
            }))
        }
    }
}

fn action(value: &Option<Text<'_>>) -> Result<Action, DecodeError> {
    let reason = match value {
        Some(Text::Str(s)) => match s.as_ref() {
            "trigger" => return Ok(Action::Trigger),
            "acknowledge" => return Ok(Action::Acknowledge),
            "resolve" => return Ok(Action::Resolve),
            other => format!(
                "{} is not one of trigger, acknowledge, resolve",
                quoted(other)
            ),
        },
        Some(Text::Wrong(found)) => {
            format!("expected one of \"trigger\", \"acknowledge\", \"resolve\", found {found}")
        }
        None => "missing, expected one of \"trigger\", \"acknowledge\", \"resolve\"".to_string(),
    };
    Err(DecodeError::field("event_action".to_string(), reason))
}

/// A `dedup_key` as an identity: 16 hex digits are already a fingerprint (what
/// Alertmanager's own PagerDuty notifier does not send, but correlator-aware
/// producers do); anything else is hashed.
fn identity(key: &str) -> Fingerprint {
    Fingerprint::parse_hex(key).unwrap_or_else(|| Fingerprint::of_key(key))
}

/// A string field PagerDuty requires on `trigger`: present and non-empty.
fn required<'t>(value: &'t Option<Text<'_>>, path: &str) -> Result<&'t str, DecodeError> {
    match opt_str(value, Loc::Root, path)? {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(DecodeError::field(path.to_string(), "must not be empty")),
        None => {
            let reason = "required for event_action \"trigger\"";
            Err(DecodeError::field(path.to_string(), reason))
        }
    }
}

/// `custom_details` keys that hold free text, never a label: the per-notification
/// summaries and counts of Alertmanager's PagerDuty notifier (`firing`,
/// `resolved`, `num_firing`, `num_resolved`, which change with every
/// notification of a group) and the usual names of prose. Compared
/// ASCII-case-insensitively.
const FREE_TEXT_DETAILS: [&str; 10] = [
    "firing",
    "resolved",
    "num_firing",
    "num_resolved",
    "description",
    "details",
    "message",
    "summary",
    "text",
    "body",
];

/// `value` whole if it fits in `limit` bytes, else its first `limit` bytes
/// (back to a character boundary) followed by `…[truncated, N bytes]`, N
/// being the original size.
fn truncated(value: &str, limit: usize) -> String {
    if value.len() <= limit {
        return value.to_string();
    }
    format!(
        "{}…[truncated, {} bytes]",
        super::utf8_prefix(value, limit),
        value.len()
    )
}

/// Whether a `custom_details` entry is a label: a short single-line string
/// under a key that is not free text, with a valid name (see the module doc).
fn is_label_detail(name: &str, value: &str, limits: &Limits) -> bool {
    !name.is_empty()
        && name.len() <= limits.max_label_name_bytes
        && value.len() <= limits.max_label_value_bytes
        && !value.contains(['\n', '\r'])
        && !FREE_TEXT_DETAILS
            .iter()
            .any(|k| k.eq_ignore_ascii_case(name))
}

/// Labels and annotations of a payload. Only the payload fields can fail
/// (they are checked like any label); a `custom_details` entry never does:
/// what is not a label is an annotation.
fn labels(
    p: &Payload<'_>,
    limits: &Limits,
) -> Result<(Labels, Vec<(String, String)>), DecodeError> {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    // Pushed first so that, on equal names, the custom_details entry loses.
    let fields = [
        ("source", &p.source),
        ("severity", &p.severity),
        ("component", &p.component),
        ("group", &p.group),
        ("class", &p.class),
    ];
    for (name, value) in fields {
        let path = || format!("payload.{name}");
        if let Some(value) = opt_str(value, Loc::Root, &path())? {
            check_label(name, value, limits, path)?;
            pairs.push((name, value));
        }
    }
    let fixed = pairs.len();
    let mut annotations: Vec<(String, String)> = Vec::new();
    if let Some(Pairs::Map(details)) = &p.custom_details {
        // Flat string entries, a repeated key keeping its last value (as
        // Go's decoder does); non-string values (numbers, objects, lists)
        // are skipped.
        let mut last: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        let mut order: Vec<&str> = Vec::new();
        for (name, value) in details {
            let Text::Str(value) = value else { continue };
            if last.insert(name, value).is_none() {
                order.push(name);
            }
        }
        for name in order {
            let value = last[name];
            let taken = pairs[..fixed].iter().any(|(n, _)| *n == name);
            if !taken && is_label_detail(name, value, limits) && pairs.len() < limits.max_labels {
                pairs.push((name, value));
            } else {
                let value = truncated(value, limits.max_annotation_bytes);
                annotations.push((name.to_string(), value));
            }
        }
    }
    annotations.sort();
    check_label_count(pairs.len(), limits, || "payload".to_string())?;
    let labels =
        Labels::from_pairs(pairs).map_err(|e| DecodeError::field("payload".to_string(), e))?;
    Ok((labels, annotations))
}

fn summary(p: &Payload<'_>, limits: &Limits) -> Result<Option<String>, DecodeError> {
    let Some(summary) = opt_str(&p.summary, Loc::Root, "payload.summary")? else {
        return Ok(None);
    };
    check_summary(summary, limits, || "payload.summary".to_string())?;
    Ok(Some(summary.to_string()).filter(|s| !s.is_empty()))
}

fn timestamp(p: &Payload<'_>) -> Result<Option<Timestamp>, DecodeError> {
    let Some(s) = opt_str(&p.timestamp, Loc::Root, "payload.timestamp")? else {
        return Ok(None);
    };
    parse_pd_timestamp(s)
        .map_err(|reason| DecodeError::field("payload.timestamp".to_string(), reason))
}

/// RFC 3339, or ISO 8601 with a colon-less offset as in PagerDuty's examples
/// (`…58.315+0000`): the colon is put back and the result parsed as RFC 3339,
/// so both forms give the same instant and the same "unset" rule.
fn parse_pd_timestamp(s: &str) -> Result<Option<Timestamp>, String> {
    let b = s.as_bytes();
    let n = b.len();
    let colon_less = n > 5
        && matches!(b[n - 5], b'+' | b'-')
        && b[n - 4..].iter().all(u8::is_ascii_digit)
        && s.contains('T');
    if colon_less {
        // The last four bytes are ASCII digits, so these are char boundaries.
        let fixed = format!("{}:{}", &s[..n - 2], &s[n - 2..]);
        if let Ok(t) = parse_timestamp(&fixed) {
            return Ok(t);
        }
    }
    parse_timestamp(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode;

    const NOW: Timestamp = Timestamp(1_767_607_200_000);

    fn run(json: &str) -> Decoded {
        decode(json.as_bytes(), NOW, &Limits::default())
    }

    fn errors(d: &Decoded) -> Vec<String> {
        d.errors.iter().map(ToString::to_string).collect()
    }

    fn alert(d: &Decoded) -> &Alert {
        match d.signals.first() {
            Some(Signal::Alert(a)) => a,
            other => panic!("not an alert: {other:?}; errors {:?}", d.errors),
        }
    }

    #[test]
    fn trigger_maps_payload_onto_labels() {
        let d = run(
            r#"{"routing_key":"R0123456789abcdef0123456789abcdef","event_action":"trigger",
            "dedup_key":"disk-full/db-1","client_url":"https://mon.example.com",
            "payload":{"summary":"Disk 95% full on db-1","source":"db-1","severity":"warning",
              "timestamp":"2026-01-05T09:58:00.250+0000","component":"postgres","group":"prod",
              "class":"disk","custom_details":{"mount":"/var","source":"overridden",
              "used_pct":95,"nested":{"a":"b"},"tags":["x"]}}}"#,
        );
        assert_eq!(errors(&d), Vec::<String>::new());
        assert_eq!(d.format, Some(Format::PagerDuty));
        let a = alert(&d);
        let labels: Vec<_> = a.labels.iter().collect();
        assert_eq!(
            labels,
            [
                ("class", "disk"),
                ("component", "postgres"),
                ("group", "prod"),
                ("mount", "/var"),
                ("severity", "warning"),
                ("source", "db-1"),
            ]
        );
        assert_eq!(a.fingerprint, Fingerprint::of_key("disk-full/db-1"));
        assert!(a.keyed);
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.summary.as_deref(), Some("Disk 95% full on db-1"));
        assert_eq!(a.starts_at, Some(Timestamp(1_767_607_080_250)));
        assert_eq!(a.generator_url.as_deref(), Some("https://mon.example.com"));
        assert!(
            !format!("{:?}", d).contains("R0123456789"),
            "routing_key must not leak"
        );
    }

    #[test]
    fn hex_dedup_key_is_the_fingerprint() {
        let d = run(r#"{"event_action":"trigger","dedup_key":"0223b772b51c29e1",
            "payload":{"summary":"s","source":"h","severity":"info"}}"#);
        assert_eq!(alert(&d).fingerprint, Fingerprint(0x0223_b772_b51c_29e1));
    }

    #[test]
    fn without_dedup_key_identity_is_the_label_fingerprint() {
        for key in ["", r#","dedup_key":"""#, r#","dedup_key":null"#] {
            let json = format!(
                r#"{{"routing_key":"r","event_action":"trigger"{key},
                    "payload":{{"summary":"s","source":"h","severity":"info"}}}}"#
            );
            let d = run(&json);
            let a = alert(&d);
            assert!(!a.keyed, "{json}");
            assert_eq!(a.fingerprint, a.labels.fingerprint());
        }
    }

    #[test]
    fn acknowledge_and_resolve() {
        let d = run(r#"{"routing_key":"r","dedup_key":"k","event_action":"acknowledge"}"#);
        assert_eq!(
            d.signals,
            [Signal::Acknowledge {
                fingerprint: Fingerprint::of_key("k")
            }]
        );

        let d = run(r#"{"routing_key":"r","dedup_key":"k","event_action":"resolve"}"#);
        let a = alert(&d);
        assert_eq!(a.status, AlertStatus::Resolved);
        assert!(a.labels.is_empty());
        assert!(a.keyed);
        assert_eq!(a.fingerprint, Fingerprint::of_key("k"));

        let d = run(r#"{"dedup_key":"k","event_action":"resolve",
            "payload":{"summary":"recovered","source":"h","severity":"whatever",
                       "timestamp":"2026-01-05T09:59:00Z"}}"#);
        let a = alert(&d);
        assert_eq!(a.summary.as_deref(), Some("recovered"));
        assert_eq!(a.ends_at, Some(Timestamp(1_767_607_140_000)));
        assert_eq!(a.labels.get("severity"), Some("whatever"));
    }

    #[test]
    fn field_errors_name_the_path() {
        let ok = r#""summary":"s","source":"h","severity":"info""#;
        let cases = [
            (
                r#"{"event_action":"snooze","dedup_key":"k"}"#.to_string(),
                r#"event_action: "snooze" is not one of trigger, acknowledge, resolve"#,
            ),
            (
                r#"{"event_action":1}"#.to_string(),
                r#"event_action: expected one of "trigger", "acknowledge", "resolve", found integer 1"#,
            ),
            (
                r#"{"routing_key":"r","payload":{}}"#.to_string(),
                r#"event_action: missing, expected one of "trigger", "acknowledge", "resolve""#,
            ),
            (
                r#"{"event_action":"acknowledge"}"#.to_string(),
                r#"dedup_key: required for event_action "acknowledge""#,
            ),
            (
                r#"{"event_action":"resolve","dedup_key":5}"#.to_string(),
                "dedup_key: expected a string, found integer 5",
            ),
            (
                r#"{"event_action":"resolve","payload":{}}"#.to_string(),
                r#"dedup_key: required for event_action "resolve""#,
            ),
            (
                r#"{"event_action":"trigger"}"#.to_string(),
                r#"payload: required for event_action "trigger""#,
            ),
            (
                r#"{"event_action":"trigger","payload":"disk full"}"#.to_string(),
                r#"payload: expected an object, found string "disk full""#,
            ),
            (
                r#"{"event_action":"trigger","payload":{"source":"h","severity":"info"}}"#.to_string(),
                r#"payload.summary: required for event_action "trigger""#,
            ),
            (
                r#"{"event_action":"trigger","payload":{"summary":"s","source":"","severity":"info"}}"#.to_string(),
                "payload.source: must not be empty",
            ),
            (
                r#"{"event_action":"trigger","payload":{"summary":"s","source":"h","severity":"urgent"}}"#.to_string(),
                r#"payload.severity: "urgent" is not one of critical, error, warning, info"#,
            ),
            (
                r#"{"event_action":"trigger","payload":{"summary":"s","source":["h"],"severity":"info"}}"#.to_string(),
                "payload.source: expected a string, found an array",
            ),
            (
                format!(r#"{{"event_action":"trigger","payload":{{{ok},"timestamp":"noon"}}}}"#),
                "payload.timestamp: invalid RFC 3339 timestamp \"noon\": premature end of input",
            ),
            (
                format!(r#"{{"event_action":"trigger","client_url":{{}},"payload":{{{ok}}}}}"#),
                "client_url: expected a string, found an object",
            ),
        ];
        let mut failed = Vec::new();
        for (input, want) in &cases {
            let d = run(input);
            let got = errors(&d).join("; ");
            if got != *want || d.format != Some(Format::PagerDuty) {
                failed.push(format!(
                    "input: {input}\n want: {want}\n  got: {got} ({:?})",
                    d.format
                ));
            }
        }
        assert!(failed.is_empty(), "\n{}", failed.join("\n"));
    }

    #[test]
    fn custom_details_that_are_not_an_object_are_ignored() {
        let d = run(
            r#"{"event_action":"trigger","payload":{"summary":"s","source":"h",
            "severity":"critical","custom_details":"free text"}}"#,
        );
        assert_eq!(alert(&d).labels.len(), 2);
    }

    #[test]
    fn limits_apply_to_pagerduty_labels_and_summary() {
        let limits = Limits {
            max_labels: 3,
            max_label_value_bytes: 8,
            max_annotation_bytes: 4,
            ..Limits::default()
        };
        let cases = [
            (
                r#"{"event_action":"trigger","payload":{"summary":"s","source":"123456789","severity":"info"}}"#,
                "payload.source: 9 bytes, over the limit of 8 (limits.max_label_value_bytes)",
            ),
            (
                r#"{"event_action":"trigger","payload":{"summary":"12345","source":"h","severity":"info"}}"#,
                "payload.summary: 5 bytes, over the limit of 4 (limits.max_annotation_bytes)",
            ),
        ];
        for (input, want) in cases {
            let d = decode(input.as_bytes(), NOW, &limits);
            assert_eq!(errors(&d), [want], "input: {input}");
        }
    }

    /// What an SRE sees in `custom_details` as prose (Alertmanager's
    /// notifier's `firing` list, a description) or over a limit becomes an
    /// annotation, cut with a marker; the event never fails for it, and the
    /// labels (and so a keyless identity) stay the same from one
    /// notification to the next.
    #[test]
    fn free_text_and_oversized_custom_details_are_annotations() {
        let limits = Limits {
            max_labels: 4,
            max_label_value_bytes: 8,
            max_annotation_bytes: 10,
            ..Limits::default()
        };
        let event = |firing: &str| {
            format!(
                r#"{{"event_action":"trigger","payload":{{"summary":"s","source":"h",
                "severity":"info","custom_details":{{"firing":{firing},"num_firing":"7",
                "Description":"short","long":"123456789","multi":"a\nb","":"x",
                "env":"prod","source":"other","team":"db","zone":"eu","n":5,"env":"dev"}}}}}}"#
            )
        };
        let big = format!("\"{}\"", "é".repeat(5000));
        let d = decode(event(&big).as_bytes(), NOW, &limits);
        assert_eq!(errors(&d), Vec::<String>::new());
        let a = alert(&d);
        let labels: Vec<_> = a.labels.iter().collect();
        // Payload fields first, then custom_details in order while there is
        // room (max_labels = 4); a repeated key keeps its last value.
        assert_eq!(
            labels,
            [
                ("env", "dev"),
                ("severity", "info"),
                ("source", "h"),
                ("team", "db")
            ]
        );
        let annotations: Vec<(&str, &str)> = a
            .annotations
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let cut = "ééééé\u{2026}[truncated, 10000 bytes]";
        assert_eq!(
            annotations,
            [
                ("", "x"),
                ("Description", "short"),
                ("firing", cut),
                ("long", "123456789"),
                ("multi", "a\nb"),
                ("num_firing", "7"),
                ("source", "other"),
                ("zone", "eu"),
            ]
        );
        // Another notification of the same group: other free text, same labels.
        let d2 = decode(event("\"Labels:\\n - x\"").as_bytes(), NOW, &limits);
        assert_eq!(alert(&d2).labels, a.labels);
        assert_eq!(alert(&d2).fingerprint, a.fingerprint);
    }

    #[test]
    fn pagerduty_timestamps() {
        let cases = [
            ("2015-07-17T08:42:58.315+0000", Some(1_437_122_578_315)),
            ("2015-07-17T08:42:58.315Z", Some(1_437_122_578_315)),
            ("2015-07-17T10:42:58+02:00", Some(1_437_122_578_000)),
            ("0001-01-01T00:00:00+0000", None),
        ];
        for (input, want) in cases {
            let got = parse_pd_timestamp(input).map(|t| t.map(|t| t.0));
            assert_eq!(got, Ok(want), "input: {input}");
        }
        for bad in [
            "2015-07-17",
            "2015-07-17T08:42:58+00000",
            "T+0000",
            "2015-07-17T08:42:58+2500",
        ] {
            assert!(parse_pd_timestamp(bad).is_err(), "{bad}");
        }
    }
}
