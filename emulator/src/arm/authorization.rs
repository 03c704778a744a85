//! Microsoft.Authorization extension resources at any scope: role assignments (list with
//! `principalId eq`, create with PUT, delete with 200-then-204) and management locks.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::{error, is_within, not_found, page, scope_exists};
use crate::Shared;
use crate::http::{self, Req};
use crate::state::{Lock, role_assignment_json};

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
        (&Method::PUT, Some(name)) => create_role_assignment(&mut state, req, scope, name),
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

/// `PUT …/roleAssignments/{name}` (2022-04-01): 201 with the new assignment; 200 when the same
/// assignment already exists under that name; 409 `RoleAssignmentExists` when another name
/// already grants the same principal the same role at the same scope (ARM keeps one), and 409
/// `RoleAssignmentUpdateNotPermitted` when the name exists with other properties.
fn create_role_assignment(
    state: &mut crate::state::State,
    req: &Req,
    scope: &str,
    name: &str,
) -> Response<Body> {
    if uuid::Uuid::parse_str(name).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRoleAssignmentId",
            &format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
            ),
        );
    }
    if !scope_exists(state, scope) {
        return not_found(state, scope);
    }
    let body = req.json().ok().flatten().unwrap_or(Value::Null);
    let properties = &body["properties"];
    let text = |key: &str| properties[key].as_str().map(str::to_owned);
    let (Some(role_definition_id), Some(principal_id)) =
        (text("roleDefinitionId"), text("principalId"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content was invalid: properties.roleDefinitionId and properties.principalId are required.",
        );
    };
    let role_definition = role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let valid_definition = role_definition_id
        .to_ascii_lowercase()
        .contains("/providers/microsoft.authorization/roledefinitions/")
        && uuid::Uuid::parse_str(&role_definition).is_ok();
    if !valid_definition {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRoleDefinitionId",
            &format!("The role definition ID '{role_definition_id}' is not valid."),
        );
    }
    let principal_known = state.user_index(&principal_id).is_some()
        || state
            .groups
            .iter()
            .any(|g| g.id.eq_ignore_ascii_case(&principal_id));
    if !principal_known {
        return error(
            StatusCode::BAD_REQUEST,
            "PrincipalNotFound",
            &format!(
                "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                principal_id.replace('-', ""),
                state.tenant_id
            ),
        );
    }
    let principal_type = text("principalType").unwrap_or_else(|| "User".to_owned());
    let same_grant = |ra: &crate::tenant::RoleAssignment| {
        ra.principal_id.eq_ignore_ascii_case(&principal_id)
            && ra.role_definition.eq_ignore_ascii_case(&role_definition)
            && is_within(&ra.scope, scope)
            && is_within(scope, &ra.scope)
    };
    let same_name = |ra: &crate::tenant::RoleAssignment| {
        ra.name.eq_ignore_ascii_case(name)
            && is_within(&ra.scope, scope)
            && is_within(scope, &ra.scope)
    };
    if let Some(existing) = state.azure.role_assignments.iter().find(|ra| same_name(ra)) {
        return if same_grant(existing) {
            http::json(StatusCode::OK, &role_assignment_json(existing))
        } else {
            error(
                StatusCode::CONFLICT,
                "RoleAssignmentUpdateNotPermitted",
                "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
            )
        };
    }
    if state.azure.role_assignments.iter().any(same_grant) {
        return error(
            StatusCode::CONFLICT,
            "RoleAssignmentExists",
            "The role assignment already exists.",
        );
    }
    let assignment = crate::tenant::RoleAssignment {
        name: name.to_owned(),
        scope: scope.to_owned(),
        principal_id,
        principal_type,
        role_definition,
        created_on: Some(http::now_rfc3339()),
    };
    let answer = role_assignment_json(&assignment);
    state.azure.role_assignments.push(assignment);
    state.bump("role_assignments_created");
    http::json(StatusCode::CREATED, &answer)
}

const LOCK_LEVELS: &[&str] = &["CanNotDelete", "ReadOnly"];

/// `…/providers/Microsoft.Authorization/locks[/{name}]`
pub fn locks(shared: &Shared, req: &Req, scope: &str, name: Option<&str>) -> Response<Body> {
    let mut state = shared.state.lock().expect("state lock");
    let position = |state: &crate::state::State, name: &str| {
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
