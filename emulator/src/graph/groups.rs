//! Graph groups: read, list members, add and remove members by `$ref`.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{Value, json};

use super::users::{full_json, select};
use super::{authorize, bad_request, error, not_found};
use crate::Shared;
use crate::http::{self, Req};

const READ: &[&str] = &[
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const WRITE: &[&str] = &[
    "GroupMember.ReadWrite.All",
    "Group.ReadWrite.All",
    "Directory.ReadWrite.All",
];

fn group_index(shared: &Shared, key: &str) -> Option<usize> {
    shared
        .state
        .lock()
        .expect("state lock")
        .groups
        .iter()
        .position(|g| g.id.eq_ignore_ascii_case(key))
}

/// `GET /groups/{id}`
pub fn get(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let Some(group) = state.groups.iter().find(|g| g.id.eq_ignore_ascii_case(key)) else {
        drop(state);
        return not_found(req, key);
    };
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups/$entity",
            "id": group.id,
            "displayName": group.display_name,
            "description": group.description,
            "isAssignableToRole": group.is_assignable_to_role,
            "securityEnabled": true,
            "mailEnabled": false,
            "groupTypes": [],
        }),
    )
}

/// `GET /groups/{id}/members`
pub fn members(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let Some(group) = state.groups.iter().find(|g| g.id.eq_ignore_ascii_case(key)) else {
        drop(state);
        return not_found(req, key);
    };
    let mut value = Vec::new();
    for member in &group.members {
        if let Some(i) = state.user_index(member) {
            match select(
                &full_json(&state.users[i]),
                req.query_param("$select").as_deref(),
                "directoryObject",
            ) {
                Ok((mut m, _)) => {
                    m.insert("@odata.type".into(), json!("#microsoft.graph.user"));
                    value.push(Value::Object(m));
                }
                Err(message) => {
                    drop(state);
                    return bad_request(req, &message);
                }
            }
        } else if let Some(g) = state
            .groups
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(member))
        {
            value.push(json!({
                "@odata.type": "#microsoft.graph.group",
                "id": g.id,
                "displayName": g.display_name,
            }));
        }
    }
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
            "value": value,
        }),
    )
}

/// The object id at the end of an `@odata.id` URL (`…/directoryObjects/{id}` or `('{id}')`).
fn referenced_id(reference: &str) -> Option<String> {
    let last = reference.trim_end_matches('/').rsplit('/').next()?;
    let id = match last.find("('") {
        Some(open) if last.ends_with("')") => &last[open + 2..last.len() - 2],
        _ => last,
    };
    uuid::Uuid::parse_str(id).ok().map(|_| id.to_owned())
}

/// `POST /groups/{id}/members/$ref`: 204; 400 when already a member; 404 for unknown objects.
pub fn add_member(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, WRITE) {
        return r;
    }
    let reference = req.json().ok().flatten().and_then(|b| {
        b.get("@odata.id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(reference) = reference else {
        return error(
            req,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body must contain an '@odata.id' reference.",
        );
    };
    let Some(member) = referenced_id(&reference) else {
        return bad_request(req, &format!("Invalid object identifier '{reference}'."));
    };
    let Some(gi) = group_index(shared, key) else {
        return not_found(req, key);
    };
    let mut state = shared.state.lock().expect("state lock");
    let exists = state.user_index(&member).is_some()
        || state
            .groups
            .iter()
            .any(|g| g.id.eq_ignore_ascii_case(&member));
    if !exists {
        drop(state);
        return not_found(req, &member);
    }
    if state.groups[gi]
        .members
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&member))
    {
        drop(state);
        return bad_request(
            req,
            "One or more added object references already exist for the following modified properties: 'members'.",
        );
    }
    let canonical = state
        .user_index(&member)
        .map(|i| state.users[i].seed.id.clone())
        .unwrap_or(member);
    state.groups[gi].members.push(canonical);
    state.bump("group_member_added");
    http::empty(StatusCode::NO_CONTENT)
}

/// `DELETE /groups/{id}/members/{id}/$ref`: 204; 404 when not a member.
pub fn remove_member(shared: &Shared, req: &Req, key: &str, member: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, WRITE) {
        return r;
    }
    let Some(gi) = group_index(shared, key) else {
        return not_found(req, key);
    };
    let mut state = shared.state.lock().expect("state lock");
    let before = state.groups[gi].members.len();
    state.groups[gi]
        .members
        .retain(|m| !m.eq_ignore_ascii_case(member));
    if state.groups[gi].members.len() == before {
        drop(state);
        return not_found(req, member);
    }
    state.bump("group_member_removed");
    http::empty(StatusCode::NO_CONTENT)
}
