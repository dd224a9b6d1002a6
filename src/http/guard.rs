//! The gate in front of every call that changes state: the bearer token is
//! checked from the headers alone, *then* the body is read, whole, under a
//! size limit and a deadline.
//!
//! Reading the body first would let anyone without the token hold a
//! connection and a buffer for as long as they trickle bytes in, so a
//! request without a valid token gets its 401 before one byte of its body is
//! read. The body is then buffered here (the handlers see a complete body):
//! a declared `Content-Length` over `http.max_body_bytes` is refused at once
//! with 413, a body still incomplete after `http.body_timeout` gets 408.
//! Each refusal closes the connection, whose unread body makes it unusable.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::http::{webhook, ApiError, AppState};

/// Limits on the body of a request that changes state (config `[http]`).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest body accepted (`http.max_body_bytes`).
    pub max_bytes: usize,
    /// Longest wait for the whole body (`http.body_timeout`).
    pub timeout: Duration,
}

/// Why the API token in the environment cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("environment variable {var} (http.token_env) is set but blank: set it to the API token, or unset it to refuse every mutating call")]
    Blank { var: String },
    #[error("environment variable {var} (http.token_env) is not valid UTF-8")]
    NotUnicode { var: String },
    #[error("environment variable {var} (http.token_env) has a space or control character at byte {at}: a bearer token is printable ASCII without spaces (a trailing newline from a file?)")]
    BadCharacter { var: String, at: usize },
}

/// The API token from the environment variable `var`: `None` when unset
/// (mutations are then refused), an error when set but unusable: a token no
/// `Authorization` header can carry would refuse every call just as
/// silently.
pub fn token_from_env(var: &str) -> Result<Option<String>, TokenError> {
    let t = match std::env::var(var) {
        Ok(t) => t,
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(TokenError::NotUnicode { var: var.into() })
        }
    };
    if t.trim().is_empty() {
        return Err(TokenError::Blank { var: var.into() });
    }
    if let Some(at) = t.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(TokenError::BadCharacter {
            var: var.into(),
            at,
        });
    }
    Ok(Some(t))
}

/// The credentials of an `Authorization: Bearer <token>` header. The scheme
/// is case-insensitive and may be followed by several spaces (RFC 7235).
fn bearer(v: &HeaderValue) -> Result<&str, &'static str> {
    let v = v
        .to_str()
        .map_err(|_| "Authorization header is not visible ASCII")?;
    let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("Authorization header: expected the Bearer scheme");
    }
    Ok(rest.trim_start_matches(' '))
}

/// Checks `Authorization: Bearer <token>` against the configured token.
pub fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.token.as_deref() else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "mutations are disabled: no API token configured (set the variable named by http.token_env)".into(),
        ));
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing Authorization: Bearer <token> header".into(),
        ));
    };
    let given = bearer(value).map_err(|m| ApiError(StatusCode::UNAUTHORIZED, m.into()))?;
    // Compare all bytes regardless of where they differ.
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "invalid bearer token".into(),
        ))
    }
}

/// Middleware on every mutating route: authorize from the headers, then
/// read the body under [`BodyLimits`] and hand the handler a complete one.
pub async fn mutation(
    State((state, limits)): State<(Arc<AppState>, BodyLimits)>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(e) = authorize(&state, req.headers()) {
        if req.uri().path() == webhook::PATH {
            state
                .metrics
                .webhook_requests
                .with_label_values(&["unauthorized"])
                .inc();
        }
        return closing(e);
    }
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limits.max_bytes as u64) {
        return closing(too_large(n, limits.max_bytes));
    }
    let read = Limited::new(body, limits.max_bytes).collect();
    let bytes = match tokio::time::timeout(limits.timeout, read).await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return closing(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "request body: over the limit of {} bytes (http.max_body_bytes)",
                    limits.max_bytes
                ),
            ))
        }
        Ok(Err(e)) => {
            return closing(ApiError::bad_request(format!(
                "request body could not be read: {e}"
            )))
        }
        Err(_) => {
            return closing(ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "request body: not received in full within {} (http.body_timeout)",
                    humantime::format_duration(limits.timeout)
                ),
            ))
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(n: u64, max: usize) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body: Content-Length {n} is over the limit of {max} bytes (http.max_body_bytes)"),
    )
}

/// An error answer after which the connection closes: the request's body
/// may be unread, so the connection cannot carry another request.
fn closing(e: ApiError) -> Response {
    let mut r = e.into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}
