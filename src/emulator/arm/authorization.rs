//! Microsoft.Authorization extension resources at any scope: role assignments (list with
//! `principalId eq`, delete with 200-then-204) and management locks.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::{error, is_within, not_found, page, scope_exists};
use crate::emulator::Shared;
use crate::emulator::http::{self, Req};
use crate::emulator::state::{Lock, role_assignment_json};

/// What a role-assignment `$filter` asks for.
struct Filter {
    principal: Option<String>,
    at_scope: bool,
}

fn parse_filter(filter: Option<&str>) -> Result<Filter, String> {
    let mut out = Filter {
        principal: None,
        at_scope: false,
    };
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(out);
    };
    for clause in split_and(filter) {
        let lower = clause.to_ascii_lowercase();
        if lower == "atscope()" {
            out.at_scope = true;
        } else if let Some(value) = quoted_after(&clause, "principalid eq ") {
            out.principal = Some(value);
        } else if let Some(value) = quoted_after(&clause, "assignedto(") {
            out.principal = Some(value);
        } else {
            return Err(format!(
                "The filter '{filter}' is not supported. Supported filters are atScope(), principalId eq '{{value}}' and assignedTo('{{value}}')."
            ));
        }
    }
    Ok(out)
}

/// Splits an OData filter on ` and ` (case-insensitive).
pub fn split_and(filter: &str) -> Vec<String> {
    let lower = filter.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(pos) = lower[start..].find(" and ") {
        out.push(filter[start..start + pos].trim().to_owned());
        start += pos + 5;
    }
    out.push(filter[start..].trim().to_owned());
    out
}

/// The single-quoted value after `prefix` (matched case-insensitively at the clause start).
pub fn quoted_after(clause: &str, prefix: &str) -> Option<String> {
    let lower = clause.to_ascii_lowercase();
    if !lower.starts_with(prefix) {
        return None;
    }
    let rest = clause[prefix.len()..].trim();
    let rest = rest.strip_prefix('\'')?;
    let end = rest.rfind('\'')?;
    Some(rest[..end].replace("''", "'"))
}

/// `…/providers/Microsoft.Authorization/roleAssignments[/{name}]`
pub fn role_assignments(
    shared: &Shared,
    req: &Req,
    scope: &str,
    name: Option<&str>,
) -> Response<Body> {
    let mut state = shared.state.lock().expect("state lock");
    match (&req.method, name) {
        (&Method::GET, None) => {
            let filter = match parse_filter(req.query_param("$filter").as_deref()) {
                Ok(f) => f,
                Err(message) => {
                    return error(StatusCode::BAD_REQUEST, "UnsupportedQuery", &message);
                }
            };
            let items: Vec<Value> = state
                .azure
                .role_assignments
                .iter()
                .filter(|ra| {
                    filter
                        .principal
                        .as_ref()
                        .is_none_or(|p| ra.principal_id.eq_ignore_ascii_case(p))
                })
                .filter(|ra| {
                    let above_or_at = is_within(scope, &ra.scope);
                    above_or_at || (!filter.at_scope && is_within(&ra.scope, scope))
                })
                .map(role_assignment_json)
                .collect();
            let size = state.behaviour.arm_page_size;
            http::json(StatusCode::OK, &page(req, items, size))
        }
        (&Method::GET, Some(name)) => {
            let found = state.azure.role_assignments.iter().find(|ra| {
                ra.name.eq_ignore_ascii_case(name)
                    && is_within(&ra.scope, scope)
                    && is_within(scope, &ra.scope)
            });
            match found {
                Some(ra) => http::json(StatusCode::OK, &role_assignment_json(ra)),
                None => error(
                    StatusCode::NOT_FOUND,
                    "RoleAssignmentNotFound",
                    &format!("The role assignment '{name}' is not found."),
                ),
            }
        }
        (&Method::DELETE, Some(name)) => {
            let index = state.azure.role_assignments.iter().position(|ra| {
                ra.name.eq_ignore_ascii_case(name)
                    && is_within(&ra.scope, scope)
                    && is_within(scope, &ra.scope)
            });
            match index {
                Some(i) => {
                    let removed = state.azure.role_assignments.remove(i);
                    state.bump("role_assignments_deleted");
                    http::json(StatusCode::OK, &role_assignment_json(&removed))
                }
                None => http::empty(StatusCode::NO_CONTENT),
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "The requested method '{}' is not allowed on this resource.",
                req.method
            ),
        ),
    }
}

const LOCK_LEVELS: &[&str] = &["CanNotDelete", "ReadOnly"];

/// `…/providers/Microsoft.Authorization/locks[/{name}]`
pub fn locks(shared: &Shared, req: &Req, scope: &str, name: Option<&str>) -> Response<Body> {
    let mut state = shared.state.lock().expect("state lock");
    let position = |state: &crate::emulator::state::State, name: &str| {
        state.locks.iter().position(|l| {
            l.name.eq_ignore_ascii_case(name)
                && is_within(&l.scope, scope)
                && is_within(scope, &l.scope)
        })
    };
    match (&req.method, name) {
        (&Method::GET, None) => {
            let value: Vec<Value> = state
                .locks
                .iter()
                .filter(|l| is_within(scope, &l.scope) || is_within(&l.scope, scope))
                .map(Lock::to_json)
                .collect();
            http::json(StatusCode::OK, &json!({"value": value}))
        }
        (&Method::GET, Some(name)) => match position(&state, name) {
            Some(i) => http::json(StatusCode::OK, &state.locks[i].to_json()),
            None => error(
                StatusCode::NOT_FOUND,
                "LockNotFound",
                &format!("The lock '{name}' could not be found."),
            ),
        },
        (&Method::PUT, Some(name)) => {
            if name.is_empty() || name.len() > 260 || name.chars().any(|c| "<>%&:\\?/".contains(c))
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidLockName",
                    &format!(
                        "The lock name '{name}' is invalid: at most 260 characters, none of < > % & : \\ ? /."
                    ),
                );
            }
            if !scope_exists(&state, scope) {
                return not_found(&state, scope);
            }
            let body = req.json().ok().flatten().unwrap_or(Value::Null);
            let properties = body.get("properties").cloned().unwrap_or(Value::Null);
            let level = properties
                .get("level")
                .and_then(Value::as_str)
                .and_then(|l| LOCK_LEVELS.iter().find(|k| k.eq_ignore_ascii_case(l)));
            let Some(level) = level else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "LockLevelInvalid",
                    "The lock level is missing or invalid. Supported levels are 'CanNotDelete' and 'ReadOnly'.",
                );
            };
            let lock = Lock {
                scope: scope.to_owned(),
                name: name.to_owned(),
                level: (*level).to_owned(),
                notes: properties
                    .get("notes")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                owners: properties.get("owners").cloned().unwrap_or(Value::Null),
            };
            let body = lock.to_json();
            match position(&state, name) {
                Some(i) => {
                    state.locks[i] = lock;
                    http::json(StatusCode::OK, &body)
                }
                None => {
                    state.locks.push(lock);
                    state.bump("locks_created");
                    http::json(StatusCode::CREATED, &body)
                }
            }
        }
        (&Method::DELETE, Some(name)) => match position(&state, name) {
            Some(i) => {
                state.locks.remove(i);
                state.bump("locks_deleted");
                http::empty(StatusCode::OK)
            }
            None => http::empty(StatusCode::NO_CONTENT),
        },
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "The requested method '{}' is not allowed on this resource.",
                req.method
            ),
        ),
    }
}
