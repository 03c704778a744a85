//! Evidence out: `GET /v1/runs/{id}/evidence` lists a run's evidence with digests,
//! `GET /v1/runs/{id}/evidence/{step}[/{n}]` hands out one item's bytes exactly as stored,
//! and `GET /v1/runs/{id}/report` renders the incident report from them.
//! A step that keeps several items (paged Activity Log, `for_each`) is addressed by `{n}`,
//! from 0 in stored order; `{step}` alone is its first (usually only) item.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::{Authenticated, Viewer};
use super::error::ApiError;
use crate::report::{self, Format};
use crate::store::Evidence;

/// `?format=` of the report route.
#[derive(Debug, Deserialize)]
pub(crate) struct ReportQuery {
    format: Option<String>,
}

/// `GET /v1/runs/{id}/report[?format=html|md]`: the incident report. Without `format`, an
/// `Accept` naming `text/markdown` (and not `text/html`) gets Markdown; HTML otherwise.
/// The HTML carries a CSP that runs no script and loads nothing, so even a value that
/// escaped escaping could not act.
pub(crate) async fn incident_report(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let format = match query.format.as_deref() {
        Some(f) => Format::parse(f)
            .ok_or_else(|| ApiError::BadRequest(format!("format `{f}` is not one of html, md")))?,
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if accept.contains("text/markdown") && !accept.contains("text/html") {
                Format::Markdown
            } else {
                Format::Html
            }
        }
    };
    let gathered = report::for_run(state.service.as_ref(), &id).await?;
    let mut response = report::render(&gathered, format).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    Ok(response)
}

/// `GET /v1/runs/{id}/evidence`: `{"run_id", "evidence": [EvidenceRecord…]}`.
pub(crate) async fn list(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let evidence = state.service.evidence(&id).await?;
    Ok(Json(json!({ "run_id": id, "evidence": evidence })).into_response())
}

/// `GET /v1/runs/{id}/evidence/{step}`: the step's first item.
pub(crate) async fn first(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
    Path((id, step)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(bytes_response(
        state.service.evidence_item(&id, &step, 0).await?,
    ))
}

/// `GET /v1/runs/{id}/evidence/{step}/{n}`: the step's `n`th item.
pub(crate) async fn nth(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
    Path((id, step, n)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let n: usize = n.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "the evidence index must be a number from 0; `{n}` is not"
        ))
    })?;
    Ok(bytes_response(
        state.service.evidence_item(&id, &step, n).await?,
    ))
}

/// The bytes untouched, typed as stored, with their digest in `ETag` and `X-Content-SHA256`
/// (hex) so a client can check what it received without trusting the transport. Always an
/// attachment with `nosniff`: evidence is upstream data and must never render as a page.
fn bytes_response(evidence: Evidence) -> Response {
    let record = evidence.record;
    let hex = record
        .sha256
        .strip_prefix("sha256:")
        .unwrap_or(&record.sha256)
        .to_string();
    let content_type = HeaderValue::from_str(&record.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let disposition = format!("attachment; filename=\"{}\"", file_name(&record.name));
    let mut response = evidence.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{hex}\"")) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&hex) {
        headers.insert("x-content-sha256", v);
    }
    response
}

/// A file name that is only `[A-Za-z0-9._-]`: the evidence name comes from the step id and
/// position, but nothing reaching a header is trusted to be tame.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("{cleaned}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_tame_characters() {
        assert_eq!(file_name("activity[0].1"), "activity_0_.1.json");
        assert_eq!(file_name("a\"\r\nb/../c"), "a___b_.._c.json");
    }
}
