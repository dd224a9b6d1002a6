//! The HTTP edge (axum): metrics, health, the incident and problem API, and
//! the Alertmanager-compatible webhook receiver.
//!
//! - `/healthz`: the process is up. `/readyz`: the store is writable and the
//!   broker reachable (503 with the reasons otherwise). `/metrics`.
//! - [`api`]: `/api/v1/incidents…`, `/api/v1/problems…`; mutations need the
//!   bearer token and go to the pipeline thread as commands (one write path).
//! - [`webhook`]: `POST /api/v1/alerts`, produced to Kafka before answering;
//!   `POST /api/v2/alerts` and `/-/healthy`, `/-/ready`: Alertmanager's
//!   paths, so Prometheus can use correlator as its Alertmanager.
//!
//! - [`guard`]: in front of every mutation, the bearer token before the
//!   body, and the body under a size limit and a deadline.
//! - [`server`]: the listener, with a connection limit and a deadline for
//!   request headers.
//!
//! Every error, including unknown routes (404), wrong methods (405) and
//! rejections by axum's extractors, is JSON `{"error": "...", "code": N}`
//! naming what is wrong; internal failures a generic 500, logged.

pub mod api;
pub mod guard;
pub mod server;
pub mod webhook;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub use guard::{token_from_env, BodyLimits, TokenError};

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

/// The whole HTTP surface. Mutating routes pass through [`guard::mutation`]
/// (token, then body under `limits`); everything else answers JSON errors.
pub fn router(state: Arc<AppState>, limits: BodyLimits) -> Router {
    let guarded = axum::middleware::from_fn_with_state((state.clone(), limits), guard::mutation);
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            webhook::PATH,
            post(webhook::receive).route_layer(guarded.clone()),
        )
        .route(
            webhook::PATH_V2,
            post(webhook::receive_v2).route_layer(guarded.clone()),
        )
        .route("/-/healthy", get(am_healthy))
        .route("/-/ready", get(am_ready))
        .route("/api/v1/incidents", get(api::list_incidents))
        .route("/api/v1/incidents/{id}", get(api::get_incident))
        .route(
            "/api/v1/incidents/{id}/{action}",
            post(api::incident_action).route_layer(guarded.clone()),
        )
        .route("/api/v1/problems", get(api::list_problems))
        .route("/api/v1/problems/{id}", get(api::get_problem))
        .route(
            "/api/v1/problems/{id}/{action}",
            post(api::problem_action)
                .route_layer(guarded)
                .get(api::problem_incidents),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(limits.max_bytes))
        .with_state(state)
}

/// `/-/healthy`, Alertmanager's liveness path (for Prometheus' and load
/// balancers' checks of an Alertmanager): 200 `OK` while the process is up.
async fn am_healthy() -> &'static str {
    "OK"
}

/// `/-/ready`, Alertmanager's readiness path: 200 `OK` when `/readyz` would
/// answer 200 (store writable, broker reachable), else 503.
async fn am_ready(State(s): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if s.health.ready() {
        (StatusCode::OK, "OK")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
    }
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {method} is not allowed on {} (the Allow header lists those that are)",
            uri.path()
        ),
    )
}

/// axum's `Path` with its rejections (e.g. bad percent-encoding) as
/// [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(ApiError(r.status(), format!("path: {}", r.body_text()))),
        }
    }
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
    let degraded: serde_json::Map<String, serde_json::Value> = h
        .degraded(crate::kafka::consumer::wall_clock().0)
        .into_iter()
        .map(|(reason, detail)| (reason.to_string(), detail.into()))
        .collect();
    let body = serde_json::json!({
        "ready": store && broker,
        "status": if !(store && broker) { "unavailable" } else if degraded.is_empty() { "ok" } else { "degraded" },
        "degraded": degraded,
        "outbox_parked": h.outbox_parked.load(Ordering::Relaxed),
        "records_lost": h.records_lost.load(Ordering::Relaxed),
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
    let degraded = s.health.degraded(crate::kafka::consumer::wall_clock().0);
    for reason in ["outbox_parked", "outbox_stuck", "records_lost"] {
        let on = degraded.iter().any(|(r, _)| *r == reason);
        s.metrics
            .degraded
            .with_label_values(&[reason])
            .set(i64::from(on));
    }
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
