//! Evidence out: `GET /v1/runs/{id}/evidence` lists a run's evidence with digests,
//! `GET /v1/runs/{id}/evidence/{step}[/{n}]` hands out one item's bytes exactly as stored.
//! A step that keeps several items (paged Activity Log, `for_each`) is addressed by `{n}`,
//! from 0 in stored order; `{step}` alone is its first (usually only) item.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::auth::{Authenticated, Viewer};
use super::error::ApiError;
use crate::store::Evidence;

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
