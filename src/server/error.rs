//! The one error shape of the API: `{"error": {"code", "message"}}` with a fitting status.
//! Transport failures (authentication, body, routing) are made here; business refusals
//! arrive as [`ServiceError`] and keep the status the service chose.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::settings::Role;
use crate::engine::service::ServiceError;

/// Why a request was refused before or by the service.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no token, or one we do not know. The message never repeats the token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// 401: the ingestion signature is missing, stale or wrong.
    #[error("{0}")]
    BadSignature(String),
    /// 403: the token is valid but its role is below what the route needs.
    #[error("this route needs the {needed} role or higher; the token's role is {held}")]
    Forbidden { needed: Role, held: Role },
    /// 400: the request is malformed (query, path or JSON body).
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is larger than `server.max_body_bytes`.
    #[error("the request body is larger than {limit} bytes (server.max_body_bytes)")]
    TooLarge { limit: usize },
    /// 408: the body did not arrive within `server.read_timeout_secs`.
    #[error("the request body did not arrive within server.read_timeout_secs")]
    Timeout,
    /// 404: no route has this path.
    #[error("no route {method} {path}; see the HTTP API in the README")]
    NoRoute { method: String, path: String },
    /// 405: the path exists but not with this method.
    #[error("{method} is not allowed on this route")]
    MethodNotAllowed { method: String },
    /// 503 on `/readyz`.
    #[error("the service is not ready (store unreachable or playbooks not loaded)")]
    NotReady,
    /// Whatever the service refused, with its own status.
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl ApiError {
    /// The stable `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthorized",
            ApiError::BadSignature(_) => "bad_signature",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::TooLarge { .. } => "payload_too_large",
            ApiError::Timeout => "request_timeout",
            ApiError::NoRoute { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::NotReady => "not_ready",
            ApiError::Service(e) => e.code(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) | ApiError::BadSignature(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Service(e) => {
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = error_response(status, self.code(), &self.to_string());
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §11.6.1: a 401 names the scheme that would work.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"riposte\""),
            );
        }
        response
    }
}

/// The JSON error body with `status`.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The code a bare status gets when something below the handlers (an axum rejection)
/// produced it, so even those answers are JSON.
pub(crate) fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "error",
    }
}

/// Middleware: any error answer that is not JSON yet (an axum rejection such as a bad path
/// parameter) becomes the JSON error shape, keeping its status and its text as the message,
/// so clients parse one shape whatever produced the error. HTML answers (the review page's
/// error pages, for a browser) are left as they are.
pub(crate) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let shaped = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if !(status.is_client_error() || status.is_server_error()) || shaped {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut json = error_response(status, code_for_status(status), &message);
    for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            json.headers_mut().insert(name, value.clone());
        }
    }
    json
}
