//! The `/_emulator/` control routes: the request log, the current state and fault injection.
//! They are not part of any Microsoft API, need no token, and are never logged or faulted.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::Shared;
use super::faults::FaultSpec;
use super::http::{self, Req};

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    http::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// Serves one control request.
pub fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    let segments = req.segments();
    let route: Vec<&str> = segments.iter().skip(1).map(String::as_str).collect();
    match (&req.method, route.as_slice()) {
        (&Method::GET, ["requests"]) => {
            let since: u64 = req
                .query_param("since")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let log = shared.log.lock().expect("log lock");
            let entries: Vec<Value> = log
                .iter()
                .filter(|e| e.seq > since)
                .map(|e| serde_json::to_value(e).expect("log entries serialize"))
                .collect();
            http::json(StatusCode::OK, &Value::Array(entries))
        }
        (&Method::DELETE, ["requests"]) => {
            shared.log.lock().expect("log lock").clear();
            http::empty(StatusCode::NO_CONTENT)
        }
        (&Method::GET, ["state"]) => {
            let view = shared.state.lock().expect("state lock").view();
            http::json(StatusCode::OK, &view)
        }
        (&Method::GET, ["faults"]) => {
            let faults = shared.faults.lock().expect("faults lock").list();
            http::json(
                StatusCode::OK,
                &serde_json::to_value(faults).expect("faults serialize"),
            )
        }
        (&Method::POST, ["faults"]) => {
            let spec: FaultSpec = match serde_json::from_slice(&req.body) {
                Ok(spec) => spec,
                Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidFault", &e.to_string()),
            };
            match shared.faults.lock().expect("faults lock").add(spec) {
                Ok(fault) => http::json(
                    StatusCode::CREATED,
                    &serde_json::to_value(fault).expect("fault serializes"),
                ),
                Err(message) => error(StatusCode::BAD_REQUEST, "InvalidFault", &message),
            }
        }
        (&Method::POST, ["webhooks", name]) => shared
            .webhooks
            .lock()
            .expect("webhooks lock")
            .receive(name, req),
        (&Method::GET, ["webhooks"]) => webhook_list(shared, None),
        (&Method::GET, ["webhooks", name]) => webhook_list(shared, Some(name)),
        (&Method::DELETE, ["webhooks"]) => {
            shared.webhooks.lock().expect("webhooks lock").clear();
            http::empty(StatusCode::NO_CONTENT)
        }
        (&Method::DELETE, ["faults"]) => {
            shared.faults.lock().expect("faults lock").clear();
            http::empty(StatusCode::NO_CONTENT)
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Control routes: GET/DELETE /_emulator/requests, GET /_emulator/state, GET/POST/DELETE /_emulator/faults, POST /_emulator/webhooks/{name}, GET /_emulator/webhooks[/{name}], DELETE /_emulator/webhooks.",
        ),
    }
}

fn webhook_list(shared: &Shared, name: Option<&str>) -> Response<Body> {
    let messages = shared.webhooks.lock().expect("webhooks lock").list(name);
    http::json(
        StatusCode::OK,
        &serde_json::to_value(messages).expect("messages serialize"),
    )
}
