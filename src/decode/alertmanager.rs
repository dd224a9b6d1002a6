//! Alertmanager webhook v4, and the Alertmanager alert object.
//!
//! The webhook (`webhook_config` receiver) posts one notification per alert
//! group:
//!
//! ```json
//! {"version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": "firing",
//!  "receiver": "…", "groupLabels": {…}, "commonLabels": {…}, "externalURL": "…",
//!  "alerts": [{"status": "firing", "labels": {…}, "annotations": {…},
//!              "startsAt": "…", "endsAt": "0001-01-01T00:00:00Z",
//!              "generatorURL": "…", "fingerprint": "…"}]}
//! ```
//!
//! Only `alerts` matters to us: the group-level fields are Alertmanager's
//! grouping, and correlator regroups by its own rules. The sender's
//! `fingerprint` is ignored: ours is computed from the labels, with the same
//! algorithm, so the two agree whenever the sender is Alertmanager.
//!
//! The alert object ([`AlertFields`]) is shared with Grafana (the same shape
//! plus extras) and with API v2 postable alerts (the same shape without
//! `status`). Validation follows Alertmanager's `Alert.Validate`: at least one
//! label, and `endsAt` not before `startsAt`.

use serde::de::IgnoredAny;

use super::{
    check_summary, grafana, labels_from_pairs, object, opt_str, opt_timestamp, quoted, DecodeError,
    Decoded, LabelCache, LabelsJson, Limits, List, Loc, Pairs, Text,
};
use crate::alert::{Alert, AlertStatus, Format, Labels, Signal, Timestamp};

/// One Alertmanager-style alert as it appears on the wire. Every field is
/// tolerant, so parsing never fails on a wrong JSON type; [`to_alert`] reports
/// it with the field's path. The sender's `fingerprint` is not even read.
#[derive(Debug, Default)]
pub(super) struct AlertFields<'a> {
    pub status: Option<Text<'a>>,
    pub labels: Option<LabelsJson<'a>>,
    pub annotations: Option<Pairs<'a>>,
    pub starts_at: Option<Text<'a>>,
    pub ends_at: Option<Text<'a>>,
    pub generator_url: Option<Text<'a>>,

    // Grafana's additions; we only note that they are there.
    pub values: Option<IgnoredAny>,
    pub value_string: Option<IgnoredAny>,
    pub dashboard_url: Option<IgnoredAny>,
    pub panel_url: Option<IgnoredAny>,
}

tolerant_object!(AlertFields {
    "status" => status,
    "labels" => labels,
    "annotations" => annotations,
    "startsAt" => starts_at,
    "endsAt" => ends_at,
    "generatorURL" => generator_url,
    "values" => values,
    "valueString" => value_string,
    "dashboardURL" => dashboard_url,
    "panelURL" => panel_url,
});

/// How an alert's status is decided.
#[derive(Debug, Clone, Copy)]
pub(super) enum StatusRule {
    /// The sender says so in `status` (webhooks): required, `firing` or `resolved`.
    Explicit,
    /// API v2: resolved iff `endsAt` is set and not after the engine clock.
    EndsAt(Timestamp),
}

/// Decodes the `alerts` of a webhook notification (Alertmanager v4 or Grafana).
/// `grafana` is what the top level says; an alert with Grafana's fields also
/// makes the record Grafana.
pub(super) fn decode_webhook(
    alerts: List<AlertFields<'_>>,
    grafana: bool,
    limits: &Limits,
    labels: &mut LabelCache,
) -> Decoded {
    let format = |grafana| match grafana {
        true => Format::Grafana,
        false => Format::AlertmanagerWebhook,
    };
    let items = match alerts {
        List::Items(items) => items,
        List::Wrong(found) => {
            let reason = format!("expected an array of alerts, found {found}");
            let error = DecodeError::field("alerts".to_string(), reason);
            return Decoded::failed(Some(format(grafana)), error);
        }
    };
    if items.is_empty() {
        let reason = "at least one alert is required, the list is empty";
        let error = DecodeError::field("alerts".to_string(), reason);
        return Decoded::failed(Some(format(grafana)), error);
    }
    if items.len() > limits.max_alerts_per_record {
        let limit = limits.max_alerts_per_record;
        let error = DecodeError::limit(
            "alerts".to_string(),
            items.len(),
            "alerts",
            limit,
            "max_alerts_per_record",
        );
        return Decoded::failed(Some(format(grafana)), error);
    }

    let mut grafana = grafana;
    let mut out = Decoded {
        format: None,
        signals: Vec::with_capacity(items.len()),
        errors: Vec::new(),
    };
    for (i, item) in items.into_iter().enumerate() {
        let loc = Loc::Item("alerts", i);
        let decoded = object(item, || loc.path("")).and_then(|fields| {
            grafana |= grafana::has_grafana_fields(&fields);
            to_alert(&fields, loc, StatusRule::Explicit, limits, labels)
        });
        match decoded {
            Ok(alert) => out.signals.push(Signal::Alert(alert)),
            Err(e) => out.errors.push(e),
        }
    }
    // Known only now: one alert with Grafana's fields makes every alert Grafana's.
    let format = format(grafana);
    for s in &mut out.signals {
        if let Signal::Alert(a) = s {
            a.format = format;
        }
    }
    out.format = Some(format);
    out
}

/// Validates one wire alert and builds the canonical [`Alert`]. The first
/// problem found is returned, with the field's path under `loc`.
pub(super) fn to_alert(
    fields: &AlertFields<'_>,
    loc: Loc,
    rule: StatusRule,
    limits: &Limits,
    cache: &mut LabelCache,
) -> Result<Alert, DecodeError> {
    let explicit_status = match rule {
        StatusRule::Explicit => Some(status(&fields.status, loc)?),
        StatusRule::EndsAt(_) => None,
    };

    let (labels, fingerprint) = match &fields.labels {
        Some(json) => cache.get(json.text(), || labels_of(json, loc, limits))?,
        None => return Err(no_labels(loc)),
    };

    let summary = summary(&fields.annotations, loc, limits)?;
    let starts_at = opt_timestamp(&fields.starts_at, loc, "startsAt")?;
    let ends_at = opt_timestamp(&fields.ends_at, loc, "endsAt")?;
    if let (Some(start), Some(end)) = (starts_at, ends_at) {
        if end < start {
            let reason =
                format!("{end} is before startsAt {start} (start time must be before end time)");
            return Err(DecodeError::field(loc.path("endsAt"), reason));
        }
    }
    let status = match (explicit_status, rule) {
        (Some(status), _) => status,
        (None, StatusRule::EndsAt(now)) if ends_at.is_some_and(|end| end <= now) => {
            AlertStatus::Resolved
        }
        (None, _) => AlertStatus::Firing,
    };
    // An empty URL (some API clients send one) means none.
    let generator_url = opt_str(&fields.generator_url, loc, "generatorURL")?
        .filter(|url| !url.is_empty())
        .map(str::to_string);

    Ok(Alert {
        fingerprint,
        keyed: false,
        labels,
        summary,
        status,
        starts_at,
        ends_at,
        generator_url,
        annotations: Vec::new(),
        // A webhook's alerts are retagged once the record's format is known.
        format: match rule {
            StatusRule::Explicit => Format::AlertmanagerWebhook,
            StatusRule::EndsAt(_) => Format::AlertmanagerApiV2,
        },
    })
}

/// Builds the label set of an alert's `labels`.
fn labels_of(json: &LabelsJson<'_>, loc: Loc, limits: &Limits) -> Result<Labels, DecodeError> {
    // The text is one JSON value (the record parsed): this cannot fail.
    let pairs: Pairs<'_> =
        serde_json::from_str(json.text()).map_err(|e| DecodeError::from_json(&e))?;
    match pairs {
        Pairs::Map(pairs) if !pairs.is_empty() => labels_from_pairs(&pairs, loc, "labels", limits),
        Pairs::Wrong(found) => {
            let reason =
                format!("expected an object of label names to string values, found {found}");
            Err(DecodeError::field(loc.path("labels"), reason))
        }
        Pairs::Map(_) => Err(no_labels(loc)),
    }
}

fn no_labels(loc: Loc) -> DecodeError {
    DecodeError::field(loc.path("labels"), "at least one label is required")
}

fn status(value: &Option<Text<'_>>, loc: Loc) -> Result<AlertStatus, DecodeError> {
    let reason = match value {
        Some(Text::Str(s)) if s == "firing" => return Ok(AlertStatus::Firing),
        Some(Text::Str(s)) if s == "resolved" => return Ok(AlertStatus::Resolved),
        Some(Text::Str(s)) => format!("{} is not one of firing, resolved", quoted(s)),
        Some(Text::Wrong(found)) => format!("expected \"firing\" or \"resolved\", found {found}"),
        None => "missing, expected \"firing\" or \"resolved\"".to_string(),
    };
    Err(DecodeError::field(loc.path("status"), reason))
}

/// The `summary` annotation, else `description`, else none (empty values count
/// as absent). Every annotation must be a string, as Alertmanager requires;
/// the others are not kept.
fn summary(
    annotations: &Option<Pairs<'_>>,
    loc: Loc,
    limits: &Limits,
) -> Result<Option<String>, DecodeError> {
    let pairs = match annotations {
        None => return Ok(None),
        Some(Pairs::Map(pairs)) => pairs,
        Some(Pairs::Wrong(found)) => {
            let reason =
                format!("expected an object of annotation names to string values, found {found}");
            return Err(DecodeError::field(loc.path("annotations"), reason));
        }
    };
    let mut summary: Option<(&str, &str)> = None;
    let mut description: Option<(&str, &str)> = None;
    for (name, value) in pairs {
        let value = match value {
            Text::Str(v) => v.as_ref(),
            Text::Wrong(found) => {
                let reason = format!("expected a string, found {found}");
                return Err(DecodeError::field(loc.entry("annotations", name), reason));
            }
        };
        match name.as_ref() {
            "summary" => summary = Some((name, value)),
            "description" => description = Some((name, value)),
            _ => {}
        }
    }
    let non_empty = |kv: &(&str, &str)| !kv.1.is_empty();
    let Some((name, text)) = summary.filter(non_empty).or(description.filter(non_empty)) else {
        return Ok(None);
    };
    check_summary(text, limits, || loc.entry("annotations", name))?;
    Ok(Some(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Fingerprint;
    use crate::decode::{decode, DecodeError};

    const NOW: Timestamp = Timestamp(1_767_607_200_000); // 2026-01-05T10:00:00Z

    fn webhook(alerts: &str) -> String {
        format!(
            r#"{{"version":"4","groupKey":"{{}}:{{alertname=\"X\"}}","status":"firing",
                "receiver":"correlator","groupLabels":{{}},"commonLabels":{{}},
                "externalURL":"http://am:9093","alerts":[{alerts}]}}"#
        )
    }

    fn run(json: &str) -> Decoded {
        decode(json.as_bytes(), NOW, &Limits::default())
    }

    fn errors(d: &Decoded) -> Vec<String> {
        d.errors.iter().map(ToString::to_string).collect()
    }

    fn alert(d: &Decoded, i: usize) -> &Alert {
        match &d.signals[i] {
            Signal::Alert(a) => a,
            other => panic!("signal {i} is not an alert: {other:?}"),
        }
    }

    #[test]
    fn firing_alert_is_decoded() {
        let d = run(&webhook(
            r#"{"status":"firing","labels":{"alertname":"HighLatency","service":"api","empty":""},
                "annotations":{"summary":"p99 over 1s","description":"long"},
                "startsAt":"2026-01-05T09:58:00.123Z","endsAt":"0001-01-01T00:00:00Z",
                "generatorURL":"http://prom:9090/graph","fingerprint":"ffffffffffffffff"}"#,
        ));
        assert_eq!(errors(&d), Vec::<String>::new());
        assert_eq!(d.format, Some(Format::AlertmanagerWebhook));
        let a = alert(&d, 0);
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(
            a.labels.get("empty"),
            Some(""),
            "empty label values are kept"
        );
        assert_eq!(a.labels.len(), 3);
        // The sender's fingerprint is ignored; ours comes from the labels.
        assert_eq!(a.fingerprint, a.labels.fingerprint());
        assert_ne!(a.fingerprint, Fingerprint(u64::MAX));
        assert!(!a.keyed);
        assert_eq!(a.summary.as_deref(), Some("p99 over 1s"));
        assert_eq!(a.starts_at, Some(Timestamp(1_767_607_080_123)));
        assert_eq!(a.ends_at, None, "Go zero time means unset");
        assert_eq!(a.generator_url.as_deref(), Some("http://prom:9090/graph"));
    }

    #[test]
    fn resolved_alert_keeps_ends_at_and_falls_back_to_description() {
        let d = run(&webhook(
            r#"{"status":"resolved","labels":{"alertname":"X"},
                "annotations":{"summary":"","description":"the description"},
                "startsAt":"2026-01-05T09:00:00Z","endsAt":"2026-01-05T09:30:00Z"}"#,
        ));
        let a = alert(&d, 0);
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.ends_at, Some(Timestamp(1_767_605_400_000)));
        assert_eq!(a.summary.as_deref(), Some("the description"));
        assert_eq!(a.generator_url, None);
    }

    #[test]
    fn partly_valid_webhook_keeps_the_good_alerts() {
        let d = run(&webhook(
            r#"{"status":"firing","labels":{"alertname":"A"}},
               {"status":"firing","labels":{}},
               {"status":"firing","labels":{"alertname":"C"}}"#,
        ));
        assert_eq!(d.signals.len(), 2);
        assert_eq!(
            errors(&d),
            ["alerts[1].labels: at least one label is required"]
        );
        assert_eq!(alert(&d, 0).labels.get("alertname"), Some("A"));
        assert_eq!(alert(&d, 1).labels.get("alertname"), Some("C"));
    }

    #[test]
    fn field_errors_name_the_path() {
        let cases = [
            (
                r#"{"status":"firing","labels":{"alertname":"X","severity":5}}"#,
                r#"alerts[0].labels."severity": expected a string, found integer 5"#,
            ),
            (
                r#"{"status":"firing"}"#,
                "alerts[0].labels: at least one label is required",
            ),
            (
                r#"{"status":"firing","labels":["a"]}"#,
                "alerts[0].labels: expected an object of label names to string values, found an array",
            ),
            (
                r#"{"status":"firing","labels":{"":"x"}}"#,
                r#"alerts[0].labels."": label name must not be empty"#,
            ),
            (
                r#"{"status":"flaring","labels":{"a":"b"}}"#,
                r#"alerts[0].status: "flaring" is not one of firing, resolved"#,
            ),
            (
                r#"{"labels":{"a":"b"}}"#,
                r#"alerts[0].status: missing, expected "firing" or "resolved""#,
            ),
            (
                r#"{"status":true,"labels":{"a":"b"}}"#,
                r#"alerts[0].status: expected "firing" or "resolved", found boolean true"#,
            ),
            (
                r#"{"status":"firing","labels":{"a":"b"},"startsAt":"yesterday"}"#,
                "alerts[0].startsAt: invalid RFC 3339 timestamp \"yesterday\": premature end of input",
            ),
            (
                r#"{"status":"firing","labels":{"a":"b"},"endsAt":1700000000}"#,
                "alerts[0].endsAt: expected a string, found integer 1700000000",
            ),
            (
                r#"{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-05T10:00:00Z","endsAt":"2026-01-05T09:00:00Z"}"#,
                "alerts[0].endsAt: 2026-01-05T09:00:00Z is before startsAt 2026-01-05T10:00:00Z (start time must be before end time)",
            ),
            (
                r#"{"status":"firing","labels":{"a":"b"},"annotations":{"summary":{"x":1}}}"#,
                r#"alerts[0].annotations."summary": expected a string, found an object"#,
            ),
            (
                r#"{"status":"firing","labels":{"a":"b"},"annotations":"text"}"#,
                r#"alerts[0].annotations: expected an object of annotation names to string values, found string "text""#,
            ),
            (
                r#"{"status":"firing","labels":{"a":"b"},"generatorURL":null,"annotations":null}"#,
                "",
            ),
            (r#""just a string""#, r#"alerts[0]: expected an object, found string "just a string""#),
            ("null", "alerts[0]: expected an object, found null"),
            // A repeated key keeps its last value, as in Go (and so Alertmanager).
            (r#"{"status":"bad","status":"firing","labels":{"a":"b"}}"#, ""),
        ];
        let mut failed = Vec::new();
        for (input, want) in cases {
            let d = run(&webhook(input));
            let got = errors(&d).join("; ");
            if got != want {
                failed.push(format!("input: {input}\n want: {want}\n  got: {got}"));
            }
        }
        assert!(failed.is_empty(), "\n{}", failed.join("\n"));
    }

    #[test]
    fn equal_start_and_end_is_accepted() {
        let d = run(&webhook(
            r#"{"status":"resolved","labels":{"a":"b"},
                "startsAt":"2026-01-05T10:00:00Z","endsAt":"2026-01-05T10:00:00Z"}"#,
        ));
        assert!(d.errors.is_empty(), "{:?}", d.errors);
    }

    #[test]
    fn duplicate_label_names_keep_the_last_value() {
        let d = run(&webhook(
            r#"{"status":"firing","labels":{"a":"1","a":"2"}}"#,
        ));
        assert_eq!(alert(&d, 0).labels.get("a"), Some("2"));
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let d = run(&webhook(
            r#"{"status":"firing","labels":{"alertname":"A\"B","path":"\u00fc\n"}}"#,
        ));
        let a = alert(&d, 0);
        assert_eq!(a.labels.get("alertname"), Some("A\"B"));
        assert_eq!(a.labels.get("path"), Some("ü\n"));
    }

    #[test]
    fn alerts_list_problems_reject_the_record() {
        let cases = [
            (
                r#"{"alerts":[]}"#,
                "alerts: at least one alert is required, the list is empty",
            ),
            (
                r#"{"alerts":{}}"#,
                "alerts: expected an array of alerts, found an object",
            ),
            (
                r#"{"alerts":"x"}"#,
                r#"alerts: expected an array of alerts, found string "x""#,
            ),
        ];
        for (input, want) in cases {
            let d = run(input);
            assert_eq!(
                d.format,
                Some(Format::AlertmanagerWebhook),
                "input: {input}"
            );
            assert!(d.signals.is_empty(), "input: {input}");
            assert_eq!(errors(&d), [want], "input: {input}");
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_alerts_per_record: 2,
            max_labels: 2,
            max_label_name_bytes: 4,
            max_label_value_bytes: 5,
            max_annotation_bytes: 6,
            ..Limits::default()
        };
        let one = r#"{"status":"firing","labels":{"a":"b"}}"#;
        let cases = [
            (
                webhook(&[one, one, one].join(",")),
                "alerts: 3 alerts, over the limit of 2 (limits.max_alerts_per_record)",
            ),
            (
                webhook(r#"{"status":"firing","labels":{"a":"1","b":"2","c":"3"}}"#),
                "alerts[0].labels: 3 labels, over the limit of 2 (limits.max_labels)",
            ),
            (
                webhook(r#"{"status":"firing","labels":{"abcde":"1"}}"#),
                r#"alerts[0].labels."abcde": 5 bytes, over the limit of 4 (limits.max_label_name_bytes)"#,
            ),
            (
                webhook(r#"{"status":"firing","labels":{"a":"123456"}}"#),
                r#"alerts[0].labels."a": 6 bytes, over the limit of 5 (limits.max_label_value_bytes)"#,
            ),
            (
                webhook(
                    r#"{"status":"firing","labels":{"a":"1"},"annotations":{"summary":"1234567"}}"#,
                ),
                r#"alerts[0].annotations."summary": 7 bytes, over the limit of 6 (limits.max_annotation_bytes)"#,
            ),
        ];
        for (input, want) in cases {
            let d = decode(input.as_bytes(), NOW, &limits);
            assert_eq!(errors(&d), [want], "input: {input}");
            assert_eq!(d.errors[0].reason(), "limit_exceeded");
        }
        // At the limits exactly: accepted.
        let ok = webhook(
            r#"{"status":"firing","labels":{"abcd":"12345","b":""},"annotations":{"summary":"123456"}}"#,
        );
        let d = decode(ok.as_bytes(), NOW, &limits);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
    }

    #[test]
    fn long_names_are_capped_in_messages() {
        let name = "n".repeat(10_000);
        let input = webhook(&format!(
            r#"{{"status":"firing","labels":{{"{name}":"v"}}}}"#
        ));
        let d = run(&input);
        let msg = d.errors[0].to_string();
        assert!(msg.len() < 200, "message is {} bytes: {msg}", msg.len());
        assert!(matches!(
            d.errors[0],
            DecodeError::LimitExceeded { actual: 10_000, .. }
        ));
    }
}
