//! Graph service principals: enough for riposte's preflight to find its own service principal
//! (`/servicePrincipals(appId='…')`) and the directory roles it holds.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::json;

use super::{authorize, not_found};
use crate::Shared;
use crate::http::{self, Req};

const READ: &[&str] = &[
    "Application.Read.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// `GET /servicePrincipals(appId='{client id}')` or `/servicePrincipals/{object id}`.
pub fn get(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let Some(app) = find_app(&state.apps, key) else {
        drop(state);
        return not_found(req, key);
    };
    let body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity",
        "id": app.object_id.clone().unwrap_or_else(|| app.client_id.clone()),
        "appId": app.client_id,
        "displayName": app.display_name,
        "servicePrincipalType": "Application",
        "accountEnabled": true,
    });
    drop(state);
    http::json(StatusCode::OK, &body)
}

/// `GET /servicePrincipals/{id}/transitiveMemberOf/microsoft.graph.directoryRole`.
pub fn directory_roles(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let Some(app) = find_app(&state.apps, key) else {
        drop(state);
        return not_found(req, key);
    };
    let value: Vec<_> = app
        .directory_roles
        .iter()
        .map(|template| {
            let known = state.directory_roles.iter().find(|r| r.role_template_id.eq_ignore_ascii_case(template));
            json!({
                "@odata.type": "#microsoft.graph.directoryRole",
                "id": known.map(|r| r.id.clone()).unwrap_or_else(|| template.clone()),
                "displayName": known.map(|r| r.display_name.clone()).unwrap_or_else(|| role_name(template).to_string()),
                "roleTemplateId": template,
            })
        })
        .collect();
    drop(state);
    http::json(
        StatusCode::OK,
        &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "@odata.count": value.len(), "value": value}),
    )
}

/// Names of the built-in roles an app is typically given, for roles the tenant file does not
/// list.
fn role_name(template: &str) -> &'static str {
    match template.to_ascii_lowercase().as_str() {
        "fe930be7-5e62-47db-91af-98c3a49a38b1" => "User Administrator",
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13" => "Privileged Authentication Administrator",
        "62e90394-69f5-4237-9190-012177145e10" => "Global Administrator",
        "c4e39bd9-1100-46d3-8c65-fb160da0071f" => "Authentication Administrator",
        "194ae4cb-b126-40b2-bd5b-6091b380977d" => "Security Administrator",
        _ => "Directory role",
    }
}

/// The app registration whose client id or service principal object id is `key`.
fn find_app<'a>(apps: &'a [crate::tenant::App], key: &str) -> Option<&'a crate::tenant::App> {
    apps.iter().find(|a| {
        a.client_id.eq_ignore_ascii_case(key)
            || a.object_id
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(key))
    })
}
