//! The Log Analytics query API (`/v1/workspaces/{customerId}/query`). There is no KQL engine:
//! a query returns the seeded rows of the table it starts with (or a `let` binds), cut by
//! the string comparisons [`kql`] understands and to an absolute `start/end` timespan
//! (relative spans are ignored because seeded rows have fixed dates); the seed's anomaly
//! query gets its computed table.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Shared;
use super::auth::{AuthFailure, LOG_ANALYTICS_AUDIENCES};
use super::http::{self, Req};
use super::kql;

/// Log Analytics' error body: `{"error":{"code","message","details"?}}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    http::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn bad_argument(detail_code: &str, detail: &str) -> Response<Body> {
    http::json(
        StatusCode::BAD_REQUEST,
        &json!({"error": {
            "code": "BadArgumentError",
            "message": "The request had some invalid properties",
            "details": [{"code": detail_code, "message": detail}],
        }}),
    )
}

fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serves `POST` (JSON body) and `GET` (`?query=&timespan=`) queries.
pub fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    if let Err(failure) = shared.issuer.check(req, LOG_ANALYTICS_AUDIENCES) {
        return match failure {
            AuthFailure::Missing => error(
                StatusCode::UNAUTHORIZED,
                "AuthorizationRequiredError",
                "Valid authentication was not provided",
            ),
            AuthFailure::Expired { .. } => error(
                StatusCode::UNAUTHORIZED,
                "TokenExpiredError",
                "The provided authentication has expired",
            ),
            _ => error(
                StatusCode::UNAUTHORIZED,
                "InvalidTokenError",
                "The provided authentication is not valid for this resource",
            ),
        };
    }
    let segments = req.segments();
    if segments.len() != 4 || !segments[3].eq_ignore_ascii_case("query") {
        return error(
            StatusCode::NOT_FOUND,
            "PathNotFoundError",
            &format!("The requested path does not exist: {}", req.path),
        );
    }
    let (query, timespan) = match req.method {
        Method::POST => match req.json() {
            Ok(Some(body)) => (
                body.get("query").and_then(Value::as_str).map(str::to_owned),
                body.get("timespan")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            ),
            _ => return bad_argument("InvalidBody", "The request body is not valid JSON."),
        },
        Method::GET => (req.query_param("query"), req.query_param("timespan")),
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "Use GET or POST.",
            );
        }
    };
    let Some(query) = query.filter(|q| !q.trim().is_empty()) else {
        return bad_argument("QueryValidationError", "Query is missing");
    };
    let state = shared.state.lock().expect("state lock");
    let Some(workspace) = state
        .workspaces
        .iter()
        .find(|w| w.customer_id.eq_ignore_ascii_case(&segments[2]))
    else {
        return error(
            StatusCode::NOT_FOUND,
            "WorkspaceNotFoundError",
            &format!("The workspace '{}' could not be found.", segments[2]),
        );
    };
    let window = timespan.as_deref().and_then(|t| {
        let (start, end) = t.split_once('/')?;
        Some((instant(start)?, instant(end)?))
    });
    let in_window = |table| rows_in_window(table, window);
    let table = match kql::run(&query, &workspace.tables, &in_window) {
        Ok(table) => table,
        Err(kql::KqlError::Syntax(m)) => return bad_argument("SyntaxError", &m),
        Err(kql::KqlError::Semantic(m)) => return bad_argument("SemanticError", &m),
    };
    http::json(StatusCode::OK, &json!({ "tables": [table] }))
}

/// The table's rows inside an absolute window (all of them without one).
fn rows_in_window(
    table: &crate::tenant::Table,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<&Vec<Value>> {
    let time_column = table
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case("TimeGenerated"));
    table
        .rows
        .iter()
        .filter(|row| match (window, time_column) {
            (Some((start, end)), Some(col)) => row
                .get(col)
                .and_then(Value::as_str)
                .and_then(instant)
                .is_some_and(|t| t >= start && t < end),
            _ => true,
        })
        .collect()
}
