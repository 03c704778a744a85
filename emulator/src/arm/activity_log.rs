//! The Activity Log (`microsoft.insights/eventtypes/management/values`): the seeded events,
//! filtered by time window and at most one of resource group, resource, resource provider or
//! correlation id, newest first, paged with `nextLink`. Those are the only `$filter` patterns
//! ActivityLogs_List documents ("No other syntax is allowed"); anything else, `caller eq`
//! included, is refused. Its errors use the Insights shape `{code, message}`.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::authorization::{quoted_after, split_and};
use super::page;
use crate::Shared;
use crate::http::{self, Req};

fn bad_request(message: &str) -> Response<Body> {
    http::json(
        StatusCode::BAD_REQUEST,
        &json!({"code": "BadRequest", "message": message}),
    )
}

fn timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `GET /subscriptions/{sub}/providers/microsoft.insights/eventtypes/management/values`
pub fn list(shared: &Shared, req: &Req, subscription: &str) -> Response<Body> {
    let Some(filter) = req.query_param("$filter") else {
        return bad_request(
            "The $filter query parameter is required and must contain 'eventTimestamp ge'.",
        );
    };
    let mut from = None;
    let mut to = None;
    let mut field: Option<(&'static str, String)> = None;
    for clause in split_and(&filter) {
        if let Some(v) = quoted_after(&clause, "eventtimestamp ge ") {
            from = Some(timestamp(&v).ok_or(v));
        } else if let Some(v) = quoted_after(&clause, "eventtimestamp le ") {
            to = Some(timestamp(&v).ok_or(v));
        } else {
            if quoted_after(&clause, "eventchannels eq ").is_some() {
                // The tenant-level variant's channel clause; every seeded event matches it.
                continue;
            }
            let fields = [
                ("resourcegroupname eq ", "resourceGroupName"),
                ("resourceuri eq ", "resourceId"),
                ("correlationid eq ", "correlationId"),
                ("resourceprovider eq ", "resourceProviderName"),
            ];
            let Some((name, value)) = fields
                .iter()
                .find_map(|(prefix, name)| quoted_after(&clause, prefix).map(|v| (*name, v)))
            else {
                return bad_request(&format!(
                    "The $filter clause '{clause}' is not supported. The $filter allows only eventTimestamp ge and le, and at most one of resourceGroupName, resourceUri, resourceProvider or correlationId eq."
                ));
            };
            if field.is_some() {
                return bad_request(
                    "The $filter may contain at most one of resourceGroupName, resourceUri, resourceProvider and correlationId.",
                );
            }
            field = Some((name, value));
        }
    }
    let from = match from {
        Some(Ok(t)) => t,
        Some(Err(v)) => {
            return bad_request(&format!(
                "The eventTimestamp '{v}' is not a valid date and time."
            ));
        }
        None => {
            return bad_request(
                "The $filter query parameter value is invalid. It must contain 'eventTimestamp ge'.",
            );
        }
    };
    let to = match to {
        Some(Ok(t)) => t,
        Some(Err(v)) => {
            return bad_request(&format!(
                "The eventTimestamp '{v}' is not a valid date and time."
            ));
        }
        None => Utc::now(),
    };
    let state = shared.state.lock().expect("state lock");
    let text_of = |event: &Value, name: &str| -> String {
        match event.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(o)) => o
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        }
    };
    let mut events: Vec<(DateTime<Utc>, Value)> = state
        .azure
        .activity_log
        .iter()
        .filter(|e| {
            text_of(e, "subscriptionId").is_empty()
                || text_of(e, "subscriptionId").eq_ignore_ascii_case(subscription)
        })
        .filter_map(|e| timestamp(&text_of(e, "eventTimestamp")).map(|t| (t, e.clone())))
        .filter(|(t, _)| *t >= from && *t <= to)
        .filter(|(_, e)| {
            field
                .as_ref()
                .is_none_or(|(name, value)| text_of(e, name).eq_ignore_ascii_case(value))
        })
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.0));
    let select: Option<Vec<String>> = req
        .query_param("$select")
        .map(|s| s.split(',').map(|f| f.trim().to_owned()).collect());
    let items: Vec<Value> = events
        .into_iter()
        .map(|(_, e)| match (&select, e) {
            (Some(fields), Value::Object(o)) => Value::Object(
                o.into_iter()
                    .filter(|(k, _)| fields.iter().any(|f| f.eq_ignore_ascii_case(k)))
                    .collect::<Map<String, Value>>(),
            ),
            (_, e) => e,
        })
        .collect();
    let size = state.behaviour.arm_page_size;
    http::json(StatusCode::OK, &page(req, items, size))
}
