//! `POST /api/v1/alerts`: the Alertmanager-compatible webhook receiver, and
//! `POST /api/v2/alerts`: Alertmanager's alert API, for Prometheus.
//!
//! Accepts an Alertmanager webhook v4 body or an API v2 body (a list of
//! postable alerts, or one), checks that it decodes completely, and produces
//! it unchanged to the alerts topic, keyed by the `kafka.partition_key` label.
//! It answers 200 only after the broker acknowledged the record, so a sender
//! that saw 200 can forget the alerts; on any failure it answers 5xx and the
//! sender (Alertmanager retries) sends again. Needs the bearer token, like
//! every call that changes state ([`super::guard`] checks it before the
//! body is read).
//!
//! `/api/v2/alerts` takes only what Alertmanager takes there (a JSON array of
//! postable alerts) and answers as Alertmanager does: 200 with an empty body,
//! or 400 with the reasons; Prometheus logs the status of a refused post.

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

/// Alertmanager's alert API path, where Prometheus posts.
pub const PATH_V2: &str = "/api/v2/alerts";

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
    let accepted = accept(&state, &body, Accepts::Webhook).await?;
    Ok(Json(json!({"accepted": accepted})))
}

/// `POST /api/v2/alerts`: Alertmanager's own alert API, where Prometheus
/// posts when correlator is its Alertmanager (`alerting.alertmanagers`).
/// The body is what Alertmanager takes there, a JSON array of postable
/// alerts; the answer is Alertmanager's: 200 with an empty body once the
/// alerts are on the alerts topic, 400 with the reasons for a bad body.
/// Same bearer token and limits as [`receive`].
pub async fn receive_v2(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    accept(&state, &body, Accepts::ApiV2List).await?;
    Ok(StatusCode::OK)
}

/// Which bodies a route takes.
#[derive(Clone, Copy, PartialEq)]
enum Accepts {
    /// An Alertmanager webhook (v4) or API v2 body (a list of alerts, or one).
    Webhook,
    /// A JSON array of API v2 postable alerts, as Alertmanager's API takes.
    ApiV2List,
}

/// Checks that `body` decodes completely as a format the route takes and
/// produces it to the alerts topic; returns how many alerts it holds.
async fn accept(state: &AppState, body: &[u8], accepts: Accepts) -> Result<usize, ApiError> {
    let outcome = |o: &str| state.metrics.webhook_requests.with_label_values(&[o]).inc();
    let Some(w) = state.webhook.as_ref() else {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the webhook receiver is not configured".into(),
        ));
    };
    let decoded = decode::decode(body, wall_clock(), &w.limits);
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
    let format_ok = match (accepts, decoded.format) {
        (
            Accepts::Webhook,
            Some(Format::AlertmanagerWebhook | Format::AlertmanagerApiV2 | Format::Grafana),
        ) => true,
        (Accepts::ApiV2List, Some(Format::AlertmanagerApiV2)) => is_array(body),
        _ => false,
    };
    if !format_ok {
        outcome("rejected");
        return Err(ApiError::bad_request(match accepts {
            Accepts::Webhook => {
                "expected an Alertmanager webhook (v4) or API v2 body (a list of alerts, or one)"
            }
            Accepts::ApiV2List => {
                "expected a JSON array of postable alerts (Alertmanager API v2), \
                 as Prometheus sends"
            }
        }));
    }
    let key = decoded.signals.iter().find_map(|s| match s {
        Signal::Alert(a) => a.labels.get(&w.partition_key).map(str::to_string),
        _ => None,
    });
    let mut rec: FutureRecord<'_, str, [u8]> = FutureRecord::to(&w.topic).payload(body);
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
            Ok(decoded.signals.len())
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

/// Whether a JSON body is an array (after an optional byte-order mark and
/// whitespace).
fn is_array(body: &[u8]) -> bool {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}
