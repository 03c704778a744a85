//! `GET /directoryObjects/{id}` (graph/api/directoryobject-get): any directory object by its
//! object id, answered as its derived type with `@odata.type` — how a caller learns whether a
//! principal id is a user, a group or a service principal. Least privilege: Directory.Read.All.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{authorize, not_found, users};
use crate::Shared;
use crate::http::{self, Req};

const READ: &[&str] = &["Directory.Read.All", "Directory.ReadWrite.All"];

const CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata#directoryObjects/$entity";

pub fn get(shared: &Shared, req: &Req, id: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let same = |other: &str| other.eq_ignore_ascii_case(id);
    let body: Option<Value> = if let Some(user) = state.users.iter().find(|u| same(&u.seed.id)) {
        let mut m = users::full_json(user);
        m.insert("@odata.type".into(), json!("#microsoft.graph.user"));
        Some(Value::Object(m))
    } else if let Some(group) = state.groups.iter().find(|g| same(&g.id)) {
        Some(json!({
            "@odata.type": "#microsoft.graph.group",
            "id": group.id,
            "displayName": group.display_name,
            "securityEnabled": true,
        }))
    } else if let Some(app) = state
        .apps
        .iter()
        .find(|a| a.object_id.as_deref().is_some_and(same))
    {
        Some(json!({
            "@odata.type": "#microsoft.graph.servicePrincipal",
            "id": app.object_id,
            "appId": app.client_id,
            "displayName": app.display_name,
            "servicePrincipalType": "Application",
            "accountEnabled": true,
        }))
    } else {
        state
            .managed_identity
            .as_ref()
            .filter(|mi| same(&mi.object_id))
            .map(|mi| {
                json!({
                    "@odata.type": "#microsoft.graph.servicePrincipal",
                    "id": mi.object_id,
                    "appId": mi.client_id,
                    "displayName": "riposte managed identity",
                    "servicePrincipalType": "ManagedIdentity",
                    "accountEnabled": true,
                })
            })
    };
    drop(state);
    match body {
        Some(Value::Object(mut m)) => {
            m.insert("@odata.context".into(), json!(CONTEXT));
            http::json(StatusCode::OK, &Value::Object(m))
        }
        _ => not_found(req, id),
    }
}
