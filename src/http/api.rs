//! `/api/v1/incidents` and `/api/v1/problems`.
//!
//! Reads come from the read model (and the store for closed incidents);
//! mutations, past the bearer token check of [`super::guard`], go to the
//! pipeline thread as commands and are answered once their transaction
//! committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::engine::state::{Incident, IncidentId, IncidentStatus};
use crate::engine::CommandError;
use crate::http::{ApiError, ApiPath, AppState};
use crate::kafka::consumer::{Command, CommandFailure, IncidentOp, ProblemOp};
use crate::problems::manager::ProblemError;
use crate::problems::state::{KnownError, ProblemId, ProblemState};

const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;
/// Longest text accepted in a known-error field.
const MAX_TEXT: usize = 4096;

type ApiResult = Result<Json<Value>, ApiError>;

fn parse_incident_id(s: &str) -> Result<IncidentId, ApiError> {
    IncidentId::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid incident id {s:?}: expected inc- and 16 hex digits"
        ))
    })
}

fn parse_problem_id(s: &str) -> Result<ProblemId, ApiError> {
    ProblemId::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid problem id {s:?}: expected prb- and 16 hex digits"
        ))
    })
}

fn parse_limit(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "limit: {v:?} is not a number from 1 to {MAX_LIMIT}"
            ))),
        },
    }
}

fn check_params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    for k in q.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?} (allowed: {})",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn view(i: &Incident) -> Value {
    serde_json::to_value(i.view(true)).unwrap_or(Value::Null)
}

/// No such incident: never opened, or deleted by retention.
fn not_found_incident(id: IncidentId) -> ApiError {
    ApiError::not_found(format!(
        "incident {id} not found (closed and merged incidents are deleted by retention \
         retention.closed_incidents after they end)"
    ))
}

/// An incident from the read model, else from the store.
async fn find_incident(
    state: &Arc<AppState>,
    id: IncidentId,
) -> Result<Option<Arc<Incident>>, ApiError> {
    if let Some(i) = state.read_model.incident(id) {
        return Ok(Some(i));
    }
    let store = state.store.clone();
    let r = tokio::task::spawn_blocking(move || store.incident(id))
        .await
        .map_err(ApiError::internal)?;
    Ok(r.map_err(ApiError::internal)?.map(Arc::new))
}

pub async fn list_incidents(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    check_params(&q, &["status", "service", "limit", "cursor"])?;
    let status = match q.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(
            [
                IncidentStatus::Open,
                IncidentStatus::Acknowledged,
                IncidentStatus::Resolved,
                IncidentStatus::Closed,
                IncidentStatus::Merged,
            ]
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "status: {s:?} is not one of open, acknowledged, resolved, closed, merged"
                ))
            })?,
        ),
    };
    let limit = parse_limit(&q)?;
    let cursor = match q.get("cursor") {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::bad_request(format!("cursor: {c:?} is not a cursor this API returned"))
        })?),
    };
    let mut all: Vec<Arc<Incident>> = state.read_model.incidents();
    if status.is_none_or(IncidentStatus::is_final) {
        let store = state.store.clone();
        let stored = tokio::task::spawn_blocking(move || store.incidents())
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        all.extend(
            stored
                .into_iter()
                .filter(|i| i.status.is_final())
                .map(Arc::new),
        );
    }
    let service = q.get("service").filter(|s| !s.is_empty());
    let mut v: Vec<Arc<Incident>> = all
        .into_iter()
        .filter(|i| status.is_none_or(|s| i.status == s))
        .filter(|i| {
            service.is_none_or(|svc| {
                i.group.iter().any(|(k, v)| k == "service" && v == svc)
                    || i.members
                        .iter()
                        .any(|m| m.labels.get("service") == Some(svc.as_str()))
            })
        })
        .collect();
    // Newest first; the cursor is the last (opened_at, id) returned.
    v.sort_by_key(|i| std::cmp::Reverse((i.opened_at, i.id)));
    if let Some(c) = cursor {
        v.retain(|i| (i.opened_at.0, i.id) < c);
    }
    let more = v.len() > limit;
    v.truncate(limit);
    let next = if more {
        v.last().map(|i| format!("{}:{}", i.opened_at.0, i.id))
    } else {
        None
    };
    Ok(Json(
        json!({"incidents": v.iter().map(|i| view(i)).collect::<Vec<_>>(), "next_cursor": next}),
    ))
}

fn parse_cursor(c: &str) -> Option<(i64, IncidentId)> {
    let (t, id) = c.split_once(':')?;
    Some((t.parse().ok()?, IncidentId::parse(id)?))
}

pub async fn get_incident(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult {
    let id = parse_incident_id(&id)?;
    match find_incident(&state, id).await? {
        Some(i) => Ok(Json(view(&i))),
        None => Err(not_found_incident(id)),
    }
}

/// Sends a command to the pipeline and waits for its committed result.
async fn run_command(
    state: &AppState,
    make: impl FnOnce(crate::kafka::consumer::CommandReply) -> Command,
) -> Result<Result<(), CommandFailure>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    state.commands.send(make(tx)).map_err(|_| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is not running".into(),
        )
    })?;
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline stopped before committing".into(),
        )),
        Err(_) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "timed out waiting for the store commit".into(),
        )),
    }
}

pub async fn incident_action(
    State(state): State<Arc<AppState>>,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> ApiResult {
    let op = match action.as_str() {
        "acknowledge" => IncidentOp::Acknowledge,
        "resolve" => IncidentOp::Resolve,
        other => {
            return Err(ApiError::not_found(format!(
                "unknown incident action {other:?} (acknowledge, resolve)"
            )))
        }
    };
    let id = parse_incident_id(&id)?;
    match run_command(&state, |reply| Command::Incident { id, op, reply }).await? {
        Ok(()) => {}
        Err(CommandFailure::Incident(CommandError::NotFound(_))) => {
            // Closed incidents leave the engine: say why rather than 404.
            return match find_incident(&state, id).await? {
                Some(i) => Err(ApiError::conflict(format!(
                    "incident {id} is {}: cannot {action}",
                    i.status.as_str()
                ))),
                None => Err(not_found_incident(id)),
            };
        }
        Err(e) => return Err(ApiError::conflict(e.to_string())),
    }
    match find_incident(&state, id).await? {
        Some(i) => Ok(Json(view(&i))),
        None => Err(ApiError::internal(format!(
            "incident {id} vanished after {action}"
        ))),
    }
}

/// A problem with its counts; its incidents are paged by
/// [`problem_incidents`].
fn problem_view(p: &crate::problems::state::Problem) -> Value {
    serde_json::to_value(p.summary()).unwrap_or(Value::Null)
}

pub async fn list_problems(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    check_params(&q, &["state", "limit"])?;
    let wanted = match q.get("state").map(String::as_str) {
        None | Some("") => None,
        Some(s) => Some(ProblemState::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            ApiError::bad_request(format!("state: {s:?} is not one of candidate, accepted, known_error, resolved, rejected, merged"))
        })?),
    };
    let limit = parse_limit(&q)?;
    let mut v = state.read_model.problems();
    v.retain(|p| wanted.is_none_or(|w| p.state == w));
    v.sort_by_key(|p| std::cmp::Reverse((p.last_seen, p.id)));
    v.truncate(limit);
    Ok(Json(
        json!({"problems": v.iter().map(|p| problem_view(p)).collect::<Vec<_>>()}),
    ))
}

pub async fn get_problem(
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult {
    let id = parse_problem_id(&id)?;
    match state.read_model.problem(id) {
        Some(p) => Ok(Json(problem_view(&p))),
        None => Err(ApiError::not_found(format!("problem {id} not found"))),
    }
}

/// `GET /api/v1/problems/{id}/incidents?limit=&cursor=`: a problem's
/// incident ids in join order, a page at a time from the store (a problem
/// may hold any number of them). `next_cursor` is the position after the
/// page, `null` on the last one.
pub async fn problem_incidents(
    State(state): State<Arc<AppState>>,
    ApiPath((id, resource)): ApiPath<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    if resource != "incidents" {
        return Err(ApiError::not_found(format!(
            "unknown problem resource {resource:?} (incidents)"
        )));
    }
    check_params(&q, &["limit", "cursor"])?;
    let id = parse_problem_id(&id)?;
    let limit = parse_limit(&q)?;
    let from = match q.get("cursor").map(String::as_str) {
        None | Some("") => 0,
        Some(c) => c.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!(
                "cursor: {c:?} is not a cursor this endpoint returned (a position)"
            ))
        })?,
    };
    let Some(p) = state.read_model.problem(id) else {
        return Err(ApiError::not_found(format!("problem {id} not found")));
    };
    let store = state.store.clone();
    let ids = tokio::task::spawn_blocking(move || store.problem_incidents(id, from, limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let end = u64::from(from) + ids.len() as u64;
    let next = (end < p.incident_count && !ids.is_empty()).then(|| end.to_string());
    Ok(Json(json!({
        "problem_id": id,
        "incident_count": p.incident_count,
        "incident_ids": ids,
        "next_cursor": next,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownErrorBody {
    root_cause: String,
    workaround: String,
    #[serde(default)]
    link: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    from: String,
}

fn body<T: serde::de::DeserializeOwned>(
    b: Result<Json<Value>, JsonRejection>,
) -> Result<T, ApiError> {
    let Json(v) =
        b.map_err(|e| ApiError(e.status(), format!("request body: {}", e.body_text())))?;
    serde_json::from_value(v).map_err(|e| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("request body: {e}"),
        )
    })
}

fn check_text(field: &str, v: &str) -> Result<(), ApiError> {
    if v.len() > MAX_TEXT {
        return Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{field}: {} bytes, over the limit of {MAX_TEXT}", v.len()),
        ));
    }
    Ok(())
}

pub async fn problem_action(
    State(state): State<Arc<AppState>>,
    ApiPath((id, action)): ApiPath<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    if !["accept", "reject", "known-error", "resolve", "merge"].contains(&action.as_str()) {
        return Err(ApiError::not_found(format!(
            "unknown problem action {action:?} (accept, reject, known-error, resolve, merge)"
        )));
    }
    let id = parse_problem_id(&id)?;
    let op = match action.as_str() {
        "accept" => ProblemOp::Accept,
        "reject" => ProblemOp::Reject,
        "resolve" => ProblemOp::Resolve,
        "known-error" => {
            let k: KnownErrorBody = body(b)?;
            check_text("root_cause", &k.root_cause)?;
            check_text("workaround", &k.workaround)?;
            if let Some(l) = &k.link {
                check_text("link", l)?;
            }
            ProblemOp::KnownError(KnownError {
                root_cause: k.root_cause,
                workaround: k.workaround,
                link: k.link,
            })
        }
        _ => {
            let m: MergeBody = body(b)?;
            ProblemOp::Merge {
                from: parse_problem_id(&m.from)?,
            }
        }
    };
    match run_command(&state, |reply| Command::Problem { id, op, reply }).await? {
        Ok(()) => {}
        Err(CommandFailure::Problem(ProblemError::NotFound(p))) => {
            return Err(ApiError::not_found(format!("problem {p} not found")))
        }
        Err(CommandFailure::Problem(e @ ProblemError::Invalid { .. })) => {
            return Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))
        }
        Err(e) => return Err(ApiError::conflict(e.to_string())),
    }
    match state.read_model.problem(id) {
        Some(p) => Ok(Json(problem_view(&p))),
        None => Err(ApiError::internal(format!(
            "problem {id} vanished after {action}"
        ))),
    }
}
