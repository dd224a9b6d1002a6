//! The HTTP edge: health and readiness for orchestrators.
//!
//! `/healthz`: the process is up. `/readyz`: the store is writable and the
//! broker reachable (503 with the reasons otherwise).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::kafka::Health;

pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn readyz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let store = h.store_ok.load(Ordering::Relaxed);
    let broker = h.broker_ok.load(Ordering::Relaxed);
    let body = serde_json::json!({
        "ready": store && broker,
        "store": store,
        "broker": broker,
        "caught_up": h.caught_up.load(Ordering::Relaxed),
        "outbox_backlog": h.outbox_backlog.load(Ordering::Relaxed),
        "records_consumed": h.records_consumed.load(Ordering::Relaxed),
        "records_rejected": h.records_rejected.load(Ordering::Relaxed),
        "events_published": h.events_published.load(Ordering::Relaxed),
        "batches_committed": h.batches_committed.load(Ordering::Relaxed),
        "engine_clock_ms": h.engine_clock_ms.load(Ordering::Relaxed),
    });
    let code = if store && broker { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body))
}
