//! One handler per route. Each authenticates (its signature names the least role), decodes,
//! calls the service once and encodes the answer; the rules are the service's.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Approver, Authenticated, Responder, Sender, Viewer};
use super::error::ApiError;
use super::{signature, telemetry};
use crate::engine::service::Invocation;
use crate::store::{AlertStatus, RunStatus};

/// Runs listed when `?limit=` is absent, and the most one page may ask for.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

/// The body as bytes; a body over `server.max_body_bytes` becomes a JSON 413.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if super::timeouts::timed_out(&e) {
            ApiError::Timeout
        } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge { limit }
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}

/// A JSON body; an empty one reads as `{}` so routes whose fields are all optional need
/// none. The content type is not checked: the bytes decide.
fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("the JSON body is not valid: {e}")))
}

/// `POST /v1/alerts/{source}`: 202 when the alert is new (and durable), 200 with the
/// existing ids and `"duplicate": true` when it was stored before.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    sender: Sender,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_bytes(body, state.max_body_bytes)?;
    if let Some(hmac) = &state.hmac {
        signature::verify(hmac, &headers, &body, chrono::Utc::now().timestamp())?;
    }
    let ingested = state.service.ingest(&source, &body, &sender.caller).await?;
    let status = if ingested.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, Json(ingested)).into_response())
}

/// `?limit=&status=` of the listing routes.
#[derive(Debug, Deserialize)]
pub(crate) struct RunsQuery {
    limit: Option<u32>,
    status: Option<String>,
}

/// `GET /v1/runs?limit=&status=`: `{"runs": […]}`, newest first as the service orders them.
pub(crate) async fn list_runs(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_limit(query.limit)?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            let known: Vec<&str> = RunStatus::ALL.iter().map(|r| r.as_str()).collect();
            ApiError::BadRequest(format!("status `{s}` is not one of {}", known.join(", ")))
        })?),
    };
    let runs = state.service.runs(limit, status).await?;
    Ok(Json(json!({ "runs": runs })).into_response())
}

/// `?limit=`, defaulted and bounded.
fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    Ok(limit)
}

/// `GET /v1/alerts?limit=&status=`: `{"alerts": […]}`, newest first; a `failed` alert
/// carries its attempts and `last_error`.
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = page_limit(query.limit)?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(AlertStatus::parse(s).ok_or_else(|| {
            let known: Vec<&str> = AlertStatus::ALL.iter().map(|a| a.as_str()).collect();
            ApiError::BadRequest(format!("status `{s}` is not one of {}", known.join(", ")))
        })?),
    };
    let alerts = state.service.alerts(limit, status).await?;
    Ok(Json(json!({ "alerts": alerts })).into_response())
}

/// `POST /v1/alerts/{id}/retry`: a failed alert becomes pending again (409 otherwise).
pub(crate) async fn retry_alert(
    State(state): State<AppState>,
    auth: Authenticated<Responder>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.retry_alert(&id, &auth.caller).await?).into_response())
}

/// `POST /v1/runs/{id}/cancel`: stops a run that has not started executing (409 otherwise).
pub(crate) async fn cancel(
    State(state): State<AppState>,
    auth: Authenticated<Responder>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.cancel(&id, &auth.caller).await?).into_response())
}

/// `GET /v1/runs/{id}`: the run with its plan, step timeline and evidence digests.
pub(crate) async fn show_run(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.run(&id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// The hash of the plan the approver read: what is approved is exactly what runs.
    plan_hash: String,
}

/// `POST /v1/runs/{id}/approve` with `{"plan_hash": "sha256:…"}`.
pub(crate) async fn approve(
    State(state): State<AppState>,
    auth: Authenticated<Approver>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: ApproveBody = json_body(&body_bytes(body, state.max_body_bytes)?)?;
    let run = state
        .service
        .approve(&id, &body.plan_hash, &auth.caller)
        .await?;
    Ok(Json(run).into_response())
}

/// `POST /v1/runs/{id}/reject`.
pub(crate) async fn reject(
    State(state): State<AppState>,
    auth: Authenticated<Approver>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.reject(&id, &auth.caller).await?).into_response())
}

/// `POST /v1/runs/{id}/rollback`: approver, not responder, because it changes the tenant.
pub(crate) async fn rollback(
    State(state): State<AppState>,
    auth: Authenticated<Approver>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(state.service.rollback(&id, &auth.caller).await?).into_response())
}

/// `POST /v1/playbooks/{name}/invoke` with an [`Invocation`]: 202 `{"run_id"}`.
pub(crate) async fn invoke_playbook(
    State(state): State<AppState>,
    auth: Authenticated<Responder>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let invocation: Invocation = json_body(&body_bytes(body, state.max_body_bytes)?)?;
    let run_id = state
        .service
        .invoke_playbook(&name, invocation, &auth.caller)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default)]
    params: BTreeMap<String, Value>,
}

/// `POST /v1/actions/{name}` with `{"params": {…}}`: 202 `{"run_id"}`.
pub(crate) async fn invoke_action(
    State(state): State<AppState>,
    auth: Authenticated<Responder>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: ActionBody = json_body(&body_bytes(body, state.max_body_bytes)?)?;
    let run_id = state
        .service
        .invoke_action(&name, body.params, &auth.caller)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run_id": run_id }))).into_response())
}

/// `GET /healthz`: the process answers. No authentication, so a liveness probe needs none.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 when the service can take alerts, 503 otherwise (a load balancer then
/// sends them elsewhere instead of losing them).
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.service.ready().await {
        Ok(Json(json!({"status": "ready"})).into_response())
    } else {
        Err(ApiError::NotReady)
    }
}

/// `GET /metrics` (viewer or higher): the Prometheus text format. Authenticated because
/// alert volumes and runs by status tell an outsider when an incident is being handled.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    _auth: Authenticated<Viewer>,
) -> Response {
    telemetry::record_stats(&state.service.stats().await);
    let handle = telemetry::install_metrics();
    // Without periodic upkeep, histogram samples would accumulate between scrapes.
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

pub(crate) async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
}
