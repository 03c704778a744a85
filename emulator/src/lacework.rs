//! The Lacework API v2: access tokens from a key id and secret, and alerts with their Details
//! (`entityMap`).

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::Shared;
use super::http::{self, Req};

/// Lacework's error body.
pub fn error(status: StatusCode, message: &str) -> Response<Body> {
    http::json(status, &json!({"message": message}))
}

/// Serves `/api/v2/…`.
pub fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    let segments = req.segments();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match (&req.method, lower.as_slice()) {
        (&Method::POST, ["api", "v2", "access", "tokens"]) => token(shared, req),
        (&Method::GET, ["api", "v2", "alerts"]) => with_auth(shared, req, |alerts| {
            let data: Vec<Value> = alerts.iter().map(without_entity_map).collect();
            let n = data.len();
            http::json(
                StatusCode::OK,
                &json!({"data": data, "paging": {"rows": n, "totalRows": n, "urls": {"nextPage": null}}}),
            )
        }),
        (&Method::GET, ["api", "v2", "alerts", id]) => {
            let id = (*id).to_owned();
            let details = req
                .query_param("scope")
                .is_none_or(|s| s.eq_ignore_ascii_case("Details"));
            with_auth(shared, req, |alerts| {
                let found = alerts.iter().find(|a| match a.get("alertId") {
                    Some(Value::Number(n)) => n.to_string() == id,
                    Some(Value::String(s)) => *s == id,
                    _ => false,
                });
                match found {
                    Some(alert) if details => http::json(StatusCode::OK, &json!({"data": alert})),
                    Some(alert) => {
                        http::json(StatusCode::OK, &json!({"data": without_entity_map(alert)}))
                    }
                    None => error(StatusCode::NOT_FOUND, &format!("Alert {id} was not found.")),
                }
            })
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn without_entity_map(alert: &Value) -> Value {
    let mut alert = alert.clone();
    if let Some(o) = alert.as_object_mut() {
        o.remove("entityMap");
    }
    alert
}

/// `POST /api/v2/access/tokens` with `X-LW-UAKS` and `{keyId, expiryTime}` → 201.
fn token(shared: &Shared, req: &Req) -> Response<Body> {
    let mut state = shared.state.lock().expect("state lock");
    let Some(account) = state.lacework.clone() else {
        return error(StatusCode::NOT_FOUND, "No Lacework account is configured.");
    };
    let body = req.json().ok().flatten().unwrap_or(Value::Null);
    let key_ok = body.get("keyId").and_then(Value::as_str) == Some(account.key_id.as_str());
    let secret_ok = req.header("x-lw-uaks") == Some(account.secret.as_str());
    if !key_ok || !secret_ok {
        return error(StatusCode::UNAUTHORIZED, "Invalid Authorization");
    }
    let expiry = body
        .get("expiryTime")
        .and_then(Value::as_i64)
        .unwrap_or(3600)
        .clamp(1, 86400);
    let token = format!("_emulator{}", uuid::Uuid::new_v4().simple());
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(expiry);
    state.lacework_tokens.push((token.clone(), expires_at));
    http::json(
        StatusCode::CREATED,
        &json!({
            "expiresAt": expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "token": token,
        }),
    )
}

fn with_auth(
    shared: &Shared,
    req: &Req,
    answer: impl FnOnce(&[Value]) -> Response<Body>,
) -> Response<Body> {
    let state = shared.state.lock().expect("state lock");
    let now = chrono::Utc::now();
    let valid = req.bearer().is_some_and(|t| {
        state
            .lacework_tokens
            .iter()
            .any(|(token, expires)| token == t && *expires > now)
    });
    if !valid {
        return error(StatusCode::UNAUTHORIZED, "Invalid Authorization");
    }
    let alerts = state
        .lacework
        .as_ref()
        .map(|l| l.alerts.clone())
        .unwrap_or_default();
    drop(state);
    answer(&alerts)
}
