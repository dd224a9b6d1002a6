//! Grafana alerting webhook.
//!
//! Grafana's unified alerting posts an Alertmanager-shaped notification (it
//! embeds Alertmanager's notifier) with extra fields: at the top level `orgId`,
//! `title`, `state`, `message`; on each alert `values`, `valueString`,
//! `dashboardURL`, `panelURL`, `silenceURL`, `imageURL`. The alerts decode
//! exactly as Alertmanager's (see `alertmanager.rs`); this file only decides
//! that a record is Grafana's, so that the format is reported (and counted)
//! correctly.
//!
//! Identity: like Alertmanager, we fingerprint the labels Grafana sends. Grafana's
//! own `fingerprint` field may differ (it can hash internal labels it strips
//! before sending), so it is ignored.

use super::alertmanager::AlertFields;

/// Whether the top level of a webhook says Grafana: `orgId`, `title` or
/// `state`, none of which Alertmanager sends.
pub(super) fn is_grafana_envelope(org_id: bool, title: bool, state: bool) -> bool {
    org_id || title || state
}

/// Whether one alert carries Grafana's extra fields.
pub(super) fn has_grafana_fields(fields: &AlertFields<'_>) -> bool {
    fields.values.is_some()
        || fields.value_string.is_some()
        || fields.dashboard_url.is_some()
        || fields.panel_url.is_some()
}

#[cfg(test)]
mod tests {
    use crate::alert::{AlertStatus, Format, Signal, Timestamp};
    use crate::decode::{decode, Limits};

    const NOW: Timestamp = Timestamp(1_767_607_200_000);

    fn format_of(json: &str) -> Option<Format> {
        decode(json.as_bytes(), NOW, &Limits::default()).format
    }

    #[test]
    fn detected_by_top_level_fields() {
        let alert = r#"{"status":"firing","labels":{"alertname":"X"}}"#;
        for top in [
            r#""orgId":1"#,
            r#""title":"[FIRING:1]""#,
            r#""state":"alerting""#,
        ] {
            let json = format!(r#"{{{top},"alerts":[{alert}]}}"#);
            assert_eq!(format_of(&json), Some(Format::Grafana), "{json}");
        }
        let json = format!(r#"{{"version":"4","alerts":[{alert}]}}"#);
        assert_eq!(format_of(&json), Some(Format::AlertmanagerWebhook));
    }

    #[test]
    fn detected_by_any_alert_field() {
        for extra in [
            r#""values":{"B":44.2,"C":1}"#,
            r#""valueString":"[ var='B' value=1 ]""#,
            r#""dashboardURL":"""#,
            r#""panelURL":"""#,
        ] {
            // The Grafana field is on the second alert only.
            let json = format!(
                r#"{{"alerts":[{{"status":"firing","labels":{{"a":"1"}}}},
                               {{"status":"firing","labels":{{"a":"2"}},{extra}}}]}}"#
            );
            let d = decode(json.as_bytes(), NOW, &Limits::default());
            assert_eq!(d.format, Some(Format::Grafana), "{json}");
            assert_eq!(d.signals.len(), 2);
        }
    }

    #[test]
    fn decodes_like_alertmanager() {
        let json = r#"{"receiver":"webhook","status":"resolved","orgId":1,"alerts":[
            {"status":"resolved","labels":{"alertname":"DatasourceNoData","grafana_folder":"Infra"},
             "annotations":{"description":"no data"},
             "startsAt":"2026-01-05T09:00:00+02:00","endsAt":"2026-01-05T09:10:00+02:00",
             "values":null,"valueString":"","dashboardURL":"","panelURL":""}]}"#;
        let d = decode(json.as_bytes(), NOW, &Limits::default());
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let Signal::Alert(a) = &d.signals[0] else {
            panic!("not an alert")
        };
        assert_eq!(a.status, AlertStatus::Resolved);
        assert_eq!(a.summary.as_deref(), Some("no data"));
        assert_eq!(
            a.starts_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2026-01-05T07:00:00Z")
        );
        assert_eq!(a.labels.get("grafana_folder"), Some("Infra"));
    }
}
