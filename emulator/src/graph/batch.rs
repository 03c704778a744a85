//! Graph JSON batching (`POST /$batch`): at most 20 requests, unique ids, `dependsOn` ordering,
//! and 424 for requests whose dependency failed. Inner requests are logged (with `batch_of`) and
//! throttled individually, as Graph does.

use std::collections::{HashMap, HashSet};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{authorize, error, handle_one, route_segments};
use crate::faults::FaultKind;
use crate::http::{self, Api, Req};
use crate::log::LoggedRequest;
use crate::{Shared, fault_response};

/// Graph's limit on requests per batch.
const MAX_REQUESTS: usize = 20;

struct Item {
    id: String,
    method: Method,
    url: String,
    headers: Map<String, Value>,
    body: Option<Value>,
    depends_on: Vec<String>,
}

fn invalid(req: &Req, message: &str) -> Response<Body> {
    error(req, StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn parse(req: &Req) -> Result<Vec<Item>, String> {
    let body = req
        .json()
        .ok()
        .flatten()
        .ok_or("Invalid batch payload format.")?;
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or("Invalid batch payload format.")?;
    let mut items = Vec::new();
    for r in requests {
        let text = |name: &str| r.get(name).and_then(Value::as_str).map(str::to_owned);
        let id = text("id").ok_or("Each batch request needs an 'id'.")?;
        let method = text("method")
            .and_then(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
            .ok_or(format!("Batch request id : {id} has an invalid 'method'."))?;
        let url = text("url").ok_or(format!("Batch request id : {id} has no 'url'."))?;
        let headers = r
            .get("headers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let depends_on = r
            .get("dependsOn")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        items.push(Item {
            id,
            method,
            url,
            headers,
            body: r.get("body").cloned(),
            depends_on,
        });
    }
    Ok(items)
}

fn validate(items: &[Item]) -> Result<(), String> {
    if items.is_empty() {
        return Err("Invalid batch payload format.".into());
    }
    if items.len() > MAX_REQUESTS {
        return Err(format!(
            "The number of batch requests exceeds the limit of {MAX_REQUESTS}."
        ));
    }
    let mut ids = HashSet::new();
    for item in items {
        if !ids.insert(item.id.as_str()) {
            return Err(format!(
                "Batch request contains duplicate request id '{}'.",
                item.id
            ));
        }
    }
    for item in items {
        for dep in &item.depends_on {
            if !ids.contains(dep.as_str()) {
                return Err(format!(
                    "Request id : {} depends on id '{dep}' which is not in the batch.",
                    item.id
                ));
            }
        }
        let writes = matches!(item.method, Method::POST | Method::PATCH | Method::PUT);
        let has_content_type = item
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"));
        if writes && (item.body.is_none() || !has_content_type) {
            return Err(format!(
                "Write request id : {} does not contain Content-Type header or body.",
                item.id
            ));
        }
    }
    Ok(())
}

/// `POST /$batch`
pub async fn handle(shared: &Shared, req: &Req, outer_seq: u64) -> Response<Body> {
    if let Err(r) = authorize(shared, req, &[]) {
        return r;
    }
    let items = match parse(req).and_then(|items| validate(&items).map(|()| items)) {
        Ok(items) => items,
        Err(message) => return invalid(req, &message),
    };
    let version = req
        .segments()
        .first()
        .cloned()
        .unwrap_or_else(|| "v1.0".into());
    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::new();
    let mut pending: Vec<&Item> = items.iter().collect();
    while !pending.is_empty() {
        // Run the first request whose dependencies have all answered; a cycle fails the rest.
        let ready = pending
            .iter()
            .position(|i| i.depends_on.iter().all(|d| statuses.contains_key(d)));
        let item = match ready {
            Some(index) => pending.remove(index),
            None => pending.remove(0),
        };
        let failed_dependency = ready.is_none()
            || item
                .depends_on
                .iter()
                .any(|d| !(200..300).contains(statuses.get(d).unwrap_or(&424)));
        let (status, headers, body) = if failed_dependency {
            (
                424,
                json!({"Content-Type": "application/json"}),
                Some(json!({"error": {
                    "code": "FailedDependency",
                    "message": "The request could not be executed because a request it depends on failed.",
                }})),
            )
        } else {
            run(shared, req, item, &version, outer_seq).await
        };
        statuses.insert(item.id.clone(), status);
        let mut entry = Map::new();
        entry.insert("id".into(), json!(item.id));
        entry.insert("status".into(), json!(status));
        entry.insert("headers".into(), headers);
        if let Some(body) = body {
            entry.insert("body".into(), body);
        }
        responses.push(Value::Object(entry));
    }
    http::json(StatusCode::OK, &json!({"responses": responses}))
}

/// Runs one inner request through the Graph router.
async fn run(
    shared: &Shared,
    outer: &Req,
    item: &Item,
    version: &str,
    outer_seq: u64,
) -> (u16, Value, Option<Value>) {
    // Graph takes relative URLs; tolerate an absolute one by dropping scheme and host.
    let url = match item.url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => item.url.as_str(),
    };
    let relative = url.trim_start_matches('/');
    let relative = relative
        .strip_prefix("v1.0/")
        .or_else(|| relative.strip_prefix("beta/"))
        .unwrap_or(relative);
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let mut headers = HeaderMap::new();
    for (name, value) in &item.headers {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(name, value);
        }
    }
    if let Some(auth) = outer.headers.get("authorization") {
        headers.insert("authorization", auth.clone());
    }
    let mut ctx = outer.ctx.clone();
    ctx.request_id = http::new_id();
    let inner = Req {
        method: item.method.clone(),
        path: format!("/{version}/{path}"),
        query: query.to_owned(),
        headers,
        body: item
            .body
            .as_ref()
            .map(|b| b.to_string().into())
            .unwrap_or_default(),
        ctx,
    };
    let seq = shared.next_seq();
    let mut entry = LoggedRequest::new(seq, Api::Graph, &inner);
    entry.batch_of = Some(outer_seq);
    let decision = shared
        .faults
        .lock()
        .expect("faults lock")
        .decide(inner.method.as_str(), &inner.path);
    let response = match decision.action {
        Some(mut fault) => {
            if fault.kind == FaultKind::Drop {
                // A batch item cannot drop the shared connection; it fails as unavailable.
                fault.kind = FaultKind::Error;
            }
            entry.fault = Some(format!("{:?}", fault.kind).to_ascii_lowercase());
            fault_response(Api::Graph, &inner, &fault)
        }
        None => {
            let route = route_segments(&inner);
            let route: Vec<&str> = route.iter().map(String::as_str).collect();
            handle_one(shared, &inner, &route)
        }
    };
    let status = response.status().as_u16();
    entry.status = Some(status);
    shared.record(entry);
    let mut headers = Map::new();
    for name in ["content-type", "location", "retry-after"] {
        if let Some(value) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            let display = match name {
                "content-type" => "Content-Type",
                "location" => "Location",
                _ => "Retry-After",
            };
            headers.insert(display.into(), json!(value));
        }
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = (!bytes.is_empty())
        .then(|| serde_json::from_slice(&bytes).ok())
        .flatten();
    (status, Value::Object(headers), body)
}
