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
    /// Answer 200 only once the alerts are committed to the store, not
    /// once the broker acknowledged them: set with the embedded broker,
    /// whose log lives in the daemon's memory (a kill -9 would lose what
    /// it acknowledged but the pipeline had not stored yet).
    pub await_commit: bool,
}

/// How long a request waits for the broker, and in embedded mode for the
/// pipeline's commit, before answering 503 (the sender retries).
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

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
    if let Some(e @ decode::DecodeError::TooLarge { .. }) = decoded.errors.first() {
        // Permanent: the sender must not retry it.
        outcome("rejected");
        return Err(ApiError(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()));
    }
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
    match w.producer.send(rec, ACK_TIMEOUT).await {
        Ok(rdkafka::producer::future_producer::Delivery {
            partition, offset, ..
        }) => {
            if w.await_commit
                && !state
                    .health
                    .wait_committed(&w.topic, partition, offset, ACK_TIMEOUT)
                    .await
            {
                outcome("failed");
                return Err(ApiError(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the alerts were not committed to the store within {ACK_TIMEOUT:?}; send them again"),
                ));
            }
            outcome("accepted");
            Ok(Json(json!({"accepted": decoded.signals.len()})))
        }
        Err((e, _)) if crate::kafka::is_permanent(&e) => {
            // No retry can cure it (the broker's own record limit is below
            // ours): a permanent 4xx, or Alertmanager retries forever.
            outcome("rejected");
            tracing::warn!(error = %e, topic = %w.topic, bytes = body.len(), "webhook alerts refused by the broker");
            let code = match e.rdkafka_error_code() {
                Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge) => {
                    StatusCode::PAYLOAD_TOO_LARGE
                }
                _ => StatusCode::BAD_REQUEST,
            };
            Err(ApiError(
                code,
                format!(
                    "the alerts topic refused this body of {} bytes for good: {e} (correlator accepts up to limits.max_record_bytes = {} bytes; the broker's own limit may be lower)",
                    body.len(),
                    w.limits.max_record_bytes
                ),
            ))
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
