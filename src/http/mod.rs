//! The HTTP edge (axum): metrics, health, the incident and problem API, and
//! the Alertmanager-compatible webhook receiver.
//!
//! - `/healthz`: the process is up. `/readyz`: the store is writable and the
//!   broker reachable (503 with the reasons otherwise). `/metrics`.
//! - [`api`]: `/api/v1/incidents…`, `/api/v1/problems…`; mutations need the
//!   bearer token and go to the pipeline thread as commands (one write path).
//! - [`webhook`]: `POST /api/v1/alerts`, produced to Kafka before answering.
//!
//! Client mistakes get a 4xx JSON `{"error": "..."}` naming what is wrong;
//! internal failures a generic 500, logged.

pub mod api;
pub mod webhook;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::kafka::consumer::Command;
use crate::kafka::Health;
use crate::metrics::Metrics;
use crate::read_model::ReadModel;
use crate::store::Store;

/// Everything the handlers share.
pub struct AppState {
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub read_model: Arc<ReadModel>,
    pub store: Arc<Store>,
    /// Commands to the pipeline thread.
    pub commands: std::sync::mpsc::Sender<Command>,
    /// The bearer token for mutations; None = mutations refused.
    pub token: Option<String>,
    pub webhook: Option<webhook::Webhook>,
}

pub fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/alerts", post(webhook::receive))
        .route("/api/v1/incidents", get(api::list_incidents))
        .route("/api/v1/incidents/{id}", get(api::get_incident))
        .route(
            "/api/v1/incidents/{id}/{action}",
            post(api::incident_action),
        )
        .route("/api/v1/problems", get(api::list_problems))
        .route("/api/v1/problems/{id}", get(api::get_problem))
        .route(
            "/api/v1/problems/{id}/{action}",
            post(api::problem_action).get(api::problem_incidents),
        )
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// A JSON error response.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(serde_json::json!({"error": self.1, "code": self.0.as_u16()})),
        )
            .into_response()
    }
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::NOT_FOUND, msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::CONFLICT, msg.into())
    }
    /// Logs the cause; the client gets a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error serving a request");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    }
}

async fn readyz(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let h = &s.health;
    let store = h.store_ok.load(Ordering::Relaxed);
    let broker = h.broker_ok.load(Ordering::Relaxed);
    let body = serde_json::json!({
        "ready": store && broker,
        "store": store,
        "broker": broker,
        "caught_up": h.caught_up.load(Ordering::Relaxed),
        "outbox_backlog": h.outbox_backlog.load(Ordering::Relaxed),
        "records_consumed": h.records_consumed.load(Ordering::Relaxed),
        "records_committed": h.records_committed.load(Ordering::Relaxed),
        "records_rejected": h.records_rejected.load(Ordering::Relaxed),
        "events_published": h.events_published.load(Ordering::Relaxed),
        "batches_committed": h.batches_committed.load(Ordering::Relaxed),
        "engine_clock_ms": h.engine_clock_ms.load(Ordering::Relaxed),
    });
    let code = if store && broker {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    s.metrics.ready.set(i64::from(s.health.ready()));
    s.metrics
        .outbox_backlog
        .set(s.health.outbox_backlog.load(Ordering::Relaxed) as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}
