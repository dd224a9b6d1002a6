//! `POST /api/v1/alerts`: the Alertmanager-compatible webhook receiver.
//!
//! Accepts an Alertmanager webhook v4 body or an API v2 body (a list of
//! postable alerts, or one), checks that it decodes completely, and produces
//! it unchanged to the alerts topic, keyed by the `kafka.partition_key` label.
//! It answers 200 only after the broker acknowledged the record, so a sender
//! that saw 200 can forget the alerts; on any failure it answers 5xx and the
//! sender (Alertmanager retries) sends again. Needs the bearer token, like
//! every call that changes state ([`super::guard`] checks it before the
//! body is read).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value};

use crate::alert::{Format, Signal};
use crate::decode::{self, Limits};
use crate::http::{ApiError, AppState};
use crate::kafka::consumer::wall_clock;

/// Where the receiver listens.
pub const PATH: &str = "/api/v1/alerts";

pub struct Webhook {
    pub producer: FutureProducer,
    pub topic: String,
    pub partition_key: String,
    pub limits: Limits,
}

pub async fn receive(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let outcome = |o: &str| state.metrics.webhook_requests.with_label_values(&[o]).inc();
    let Some(w) = state.webhook.as_ref() else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the webhook receiver is not configured".into(),
        ));
    };
    let decoded = decode::decode(&body, wall_clock(), &w.limits);
    if !decoded.errors.is_empty() {
        outcome("rejected");
        let errors: Vec<String> = decoded.errors.iter().map(|e| e.to_string()).collect();
        return Err(ApiError::bad_request(format!(
            "invalid alerts: {}",
            errors.join("; ")
        )));
    }
    match decoded.format {
        Some(Format::AlertmanagerWebhook | Format::AlertmanagerApiV2 | Format::Grafana) => {}
        _ => {
            outcome("rejected");
            return Err(ApiError::bad_request(
                "expected an Alertmanager webhook (v4) or API v2 body (a list of alerts, or one)",
            ));
        }
    }
    let key = decoded.signals.iter().find_map(|s| match s {
        Signal::Alert(a) => a.labels.get(&w.partition_key).map(str::to_string),
        _ => None,
    });
    let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&w.topic).payload(&body);
    if let Some(k) = key.as_deref() {
        rec = rec.key(k);
    }
    match w.producer.send(rec, Duration::from_secs(30)).await {
        Ok(_) => {
            outcome("accepted");
            Ok(Json(json!({"accepted": decoded.signals.len()})))
        }
        Err((e, _)) => {
            outcome("failed");
            tracing::warn!(error = %e, topic = %w.topic, "webhook alerts not produced");
            Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the alerts topic did not acknowledge: {e}"),
            ))
        }
    }
}
