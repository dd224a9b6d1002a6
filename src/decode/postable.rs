//! Alertmanager API v2 postable alerts: the native format.
//!
//! `POST /api/v2/alerts` takes a JSON array of
//! `{labels, annotations, startsAt, endsAt, generatorURL}`; we also take a
//! single such object, which is what a producer writing straight to Kafka
//! naturally sends.
//!
//! There is no `status`: as in Alertmanager (`model.Alert.Resolved`), an alert
//! is resolved iff `endsAt` is set and not after now, where now is the engine
//! clock passed to [`super::decode`]. A future `endsAt` is kept in
//! [`crate::alert::Alert::ends_at`]: the alert expires then unless re-sent.
//! A missing `startsAt` stays `None` (Alertmanager would fill in its receive
//! time; the engine does the same with its clock).

use super::alertmanager::{to_alert, AlertFields, StatusRule};
use super::{object, DecodeError, Decoded, LabelCache, Limits, List, Loc};
use crate::alert::{Format, Signal, Timestamp};

/// Decodes a record whose top level is a JSON array.
pub(super) fn decode_list(
    text: &str,
    now: Timestamp,
    limits: &Limits,
    labels: &mut LabelCache,
) -> Decoded {
    let format = Some(Format::AlertmanagerApiV2);
    let items = match serde_json::from_str::<List<AlertFields<'_>>>(text) {
        Ok(List::Items(items)) => items,
        // The caller saw `[`: anything else is a syntax error, reported as such.
        Ok(List::Wrong(_)) => return Decoded::failed(None, DecodeError::UnknownFormat),
        Err(e) => return Decoded::failed(None, DecodeError::from_json(&e)),
    };
    if items.is_empty() {
        let reason = "at least one alert is required, the list is empty";
        return Decoded::failed(format, DecodeError::field("record".to_string(), reason));
    }
    if items.len() > limits.max_alerts_per_record {
        let limit = limits.max_alerts_per_record;
        let error = DecodeError::limit(
            "record".to_string(),
            items.len(),
            "alerts",
            limit,
            "max_alerts_per_record",
        );
        return Decoded::failed(format, error);
    }
    let mut out = Decoded {
        format,
        signals: Vec::with_capacity(items.len()),
        errors: Vec::new(),
    };
    for (i, item) in items.into_iter().enumerate() {
        let loc = Loc::Item("", i);
        let decoded = object(item, || loc.path(""))
            .and_then(|fields| to_alert(&fields, loc, StatusRule::EndsAt(now), limits, labels));
        match decoded {
            Ok(alert) => out.signals.push(Signal::Alert(alert)),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// Decodes a single API v2 alert object (already parsed by the format probe).
pub(super) fn decode_one(
    fields: &AlertFields<'_>,
    now: Timestamp,
    limits: &Limits,
    labels: &mut LabelCache,
) -> Decoded {
    let format = Some(Format::AlertmanagerApiV2);
    match to_alert(fields, Loc::Root, StatusRule::EndsAt(now), limits, labels) {
        Ok(alert) => Decoded {
            format,
            signals: vec![Signal::Alert(alert)],
            errors: Vec::new(),
        },
        Err(e) => Decoded::failed(format, e),
    }
}

#[cfg(test)]
mod tests {
    use crate::alert::{Alert, AlertStatus, Format, Signal, Timestamp};
    use crate::decode::{decode, Decoded, Limits};

    const NOW: Timestamp = Timestamp(1_767_607_200_000); // 2026-01-05T10:00:00Z

    fn run(json: &str) -> Decoded {
        decode(json.as_bytes(), NOW, &Limits::default())
    }

    fn alerts(d: &Decoded) -> Vec<&Alert> {
        d.signals
            .iter()
            .map(|s| match s {
                Signal::Alert(a) => a,
                other => panic!("not an alert: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn status_follows_ends_at_and_now() {
        // (endsAt, want status): unset, past, exactly now, future.
        let cases = [
            (None, AlertStatus::Firing),
            (Some("0001-01-01T00:00:00Z"), AlertStatus::Firing),
            (Some("2026-01-05T09:59:59Z"), AlertStatus::Resolved),
            (Some("2026-01-05T10:00:00Z"), AlertStatus::Resolved),
            (Some("2026-01-05T10:00:00.001Z"), AlertStatus::Firing),
        ];
        for (ends_at, want) in cases {
            let ends = ends_at
                .map(|e| format!(r#","endsAt":"{e}""#))
                .unwrap_or_default();
            let json = format!(r#"{{"labels":{{"alertname":"X"}}{ends}}}"#);
            let d = run(&json);
            assert_eq!(d.format, Some(Format::AlertmanagerApiV2));
            assert_eq!(alerts(&d)[0].status, want, "endsAt {ends_at:?}");
        }
    }

    #[test]
    fn future_ends_at_is_kept_as_expiry() {
        let d = run(r#"[{"labels":{"a":"b"},"endsAt":"2026-01-05T10:05:00Z"}]"#);
        let a = alerts(&d)[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.ends_at, Some(Timestamp(1_767_607_500_000)));
    }

    #[test]
    fn status_field_is_ignored() {
        let d = run(r#"{"labels":{"a":"b"},"status":"resolved"}"#);
        assert_eq!(alerts(&d)[0].status, AlertStatus::Firing);
    }

    #[test]
    fn list_items_are_independent() {
        let d = run(
            r#"[{"labels":{"a":"1"}}, 5, {"labels":{"a":"3"},"startsAt":"x"}, {"labels":{"a":"4"}}]"#,
        );
        let errors: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "[1]: expected an object, found integer 5",
                "[2].startsAt: invalid RFC 3339 timestamp \"x\": premature end of input",
            ]
        );
        let names: Vec<_> = alerts(&d).iter().map(|a| a.labels.get("a")).collect();
        assert_eq!(names, [Some("1"), Some("4")]);
    }

    #[test]
    fn single_object_errors_have_bare_paths() {
        let cases = [
            (r#"{"labels":{}}"#, "labels: at least one label is required"),
            (r#"{"labels":null,"endsAt":"2026-01-05T09:00:00Z"}"#, "labels: at least one label is required"),
            (r#"{"annotations":{"summary":"s"}}"#, "labels: at least one label is required"),
            (
                r#"{"labels":{"a":"b"},"generatorURL":7}"#,
                "generatorURL: expected a string, found integer 7",
            ),
            (
                r#"{"labels":{"a":"b"},"startsAt":"2026-01-05T10:00:00Z","endsAt":"2026-01-05T09:00:00Z"}"#,
                "endsAt: 2026-01-05T09:00:00Z is before startsAt 2026-01-05T10:00:00Z (start time must be before end time)",
            ),
        ];
        for (input, want) in cases {
            let d = run(input);
            let got: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
            assert_eq!(got, [want], "input: {input}");
            assert_eq!(d.format, Some(Format::AlertmanagerApiV2));
        }
    }

    #[test]
    fn empty_and_oversized_lists_are_rejected() {
        let d = run("[]");
        assert_eq!(
            d.errors[0].to_string(),
            "record: at least one alert is required, the list is empty"
        );
        let limits = Limits {
            max_alerts_per_record: 1,
            ..Limits::default()
        };
        let d = decode(
            br#"[{"labels":{"a":"b"}},{"labels":{"a":"c"}}]"#,
            NOW,
            &limits,
        );
        assert_eq!(
            d.errors[0].to_string(),
            "record: 2 alerts, over the limit of 1 (limits.max_alerts_per_record)"
        );
        assert!(d.signals.is_empty());
    }
}
