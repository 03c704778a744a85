//! The request log: every request the emulator answered (or dropped), so tests and users can see
//! exactly what a client sent. It never holds credentials: no `Authorization` or Lacework secret
//! values, and token-request forms keep only their non-secret fields.

use serde::Serialize;
use serde_json::{Map, Value};

use super::http::{Api, Req};

/// Headers worth recording: correlation ids and the ones the APIs' contracts turn on.
const RECORDED_HEADERS: &[&str] = &[
    "client-request-id",
    "x-ms-client-request-id",
    "x-ms-correlation-request-id",
    "return-client-request-id",
    "content-type",
    "consistencylevel",
    "prefer",
    "if-match",
    "metadata",
    "user-agent",
];

/// Token-request form fields that are safe to record.
const SAFE_FORM_FIELDS: &[&str] = &["grant_type", "client_id", "scope", "client_assertion_type"];

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedRequest {
    /// Arrival order, from 1.
    pub seq: u64,
    /// Which API it was routed to.
    pub api: &'static str,
    pub method: String,
    /// Raw path, still percent-encoded, as the client sent it.
    pub path: String,
    /// Raw query string, or null.
    pub query: Option<String>,
    /// Selected headers, lower-case names.
    pub headers: Map<String, Value>,
    /// Whether an `Authorization` header was present (its value is never stored).
    pub authorization: bool,
    /// JSON body, or the safe fields of a form body, or null.
    pub body: Option<Value>,
    /// The status answered; null when the connection was dropped.
    pub status: Option<u16>,
    /// The fault injected, if any (`latency`, `throttle`, `error`, `drop`).
    pub fault: Option<String>,
    /// Set for the inner requests of a Graph `$batch`: the outer request's `seq`.
    pub batch_of: Option<u64>,
    /// Our request id (`request-id` / `x-ms-request-id`).
    pub request_id: String,
    /// RFC 3339 arrival time.
    pub timestamp: String,
}

impl LoggedRequest {
    pub fn new(seq: u64, api: Api, req: &Req) -> LoggedRequest {
        let mut headers = Map::new();
        for name in RECORDED_HEADERS {
            if let Some(value) = req.header(name) {
                headers.insert((*name).to_owned(), Value::String(value.to_owned()));
            }
        }
        LoggedRequest {
            seq,
            api: api.name(),
            method: req.method.to_string(),
            path: req.path.clone(),
            query: (!req.query.is_empty()).then(|| req.query.clone()),
            headers,
            authorization: req.headers.contains_key("authorization"),
            body: safe_body(req),
            status: None,
            fault: None,
            batch_of: None,
            request_id: req.ctx.request_id.clone(),
            timestamp: req
                .ctx
                .received
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

fn safe_body(req: &Req) -> Option<Value> {
    let content_type = req.header("content-type").unwrap_or_default();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields: Map<String, Value> = url::form_urlencoded::parse(&req.body)
            .filter(|(k, _)| SAFE_FORM_FIELDS.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        return Some(Value::Object(fields));
    }
    req.json().ok().flatten()
}
