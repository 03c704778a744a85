//! Graph security and Identity Protection: `alerts_v2`, risky users and Conditional Access
//! policies.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{authorize, bad_request, error, not_found};
use crate::Shared;
use crate::http::{self, Req};

const ALERTS: &[&str] = &["SecurityAlert.Read.All", "SecurityAlert.ReadWrite.All"];
const RISK_WRITE: &[&str] = &["IdentityRiskyUser.ReadWrite.All"];
const RISK_READ: &[&str] = &[
    "IdentityRiskyUser.Read.All",
    "IdentityRiskyUser.ReadWrite.All",
];
const POLICY_READ: &[&str] = &["Policy.Read.All", "Policy.ReadWrite.ConditionalAccess"];

/// `GET /security/alerts_v2`
pub fn alerts(shared: &Shared, req: &Req) -> Response<Body> {
    if let Err(r) = authorize(shared, req, ALERTS) {
        return r;
    }
    let value = shared
        .state
        .lock()
        .expect("state lock")
        .security_alerts
        .clone();
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2",
            "value": value,
        }),
    )
}

/// `GET /security/alerts_v2/{id}`
pub fn alert(shared: &Shared, req: &Req, id: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, ALERTS) {
        return r;
    }
    let found = shared
        .state
        .lock()
        .expect("state lock")
        .security_alerts
        .iter()
        .find(|a| a.get("id").and_then(Value::as_str) == Some(id))
        .cloned();
    match found {
        Some(Value::Object(mut alert)) => {
            let mut body = serde_json::Map::new();
            body.insert(
                "@odata.context".into(),
                json!("https://graph.microsoft.com/v1.0/$metadata#security/alerts_v2/$entity"),
            );
            body.append(&mut alert);
            http::json(StatusCode::OK, &Value::Object(body))
        }
        _ => error(
            req,
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Alert '{id}' was not found."),
        ),
    }
}

/// `POST /identityProtection/riskyUsers/confirmCompromised`: 204, risk becomes high.
pub fn confirm_compromised(shared: &Shared, req: &Req) -> Response<Body> {
    if let Err(r) = authorize(shared, req, RISK_WRITE) {
        return r;
    }
    let ids: Vec<String> = req
        .json()
        .ok()
        .flatten()
        .and_then(|b| b.get("userIds").cloned())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if ids.is_empty() {
        return bad_request(
            req,
            "The request body must contain a non-empty 'userIds' array.",
        );
    }
    let mut state = shared.state.lock().expect("state lock");
    let mut indexes = Vec::new();
    for id in &ids {
        match state
            .users
            .iter()
            .position(|u| u.seed.id.eq_ignore_ascii_case(id))
        {
            Some(i) => indexes.push(i),
            None => {
                drop(state);
                return not_found(req, id);
            }
        }
    }
    for i in indexes {
        state.users[i].seed.risk_level = "high".into();
        state.users[i].risk_state = "confirmedCompromised".into();
        state.bump("users_confirmed_compromised");
    }
    http::empty(StatusCode::NO_CONTENT)
}

/// `GET /identityProtection/riskyUsers/{id}`
pub fn risky_user(shared: &Shared, req: &Req, id: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, RISK_READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let Some(user) = state
        .users
        .iter()
        .find(|u| u.seed.id.eq_ignore_ascii_case(id))
    else {
        drop(state);
        return not_found(req, id);
    };
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identityProtection/riskyUsers/$entity",
            "id": user.seed.id,
            "isDeleted": false,
            "isProcessing": false,
            "riskLevel": user.seed.risk_level,
            "riskState": user.risk_state,
            "riskDetail": if user.risk_state == "confirmedCompromised" { "adminConfirmedUserCompromised" } else { "none" },
            "userDisplayName": user.seed.display_name,
            "userPrincipalName": user.seed.user_principal_name,
        }),
    )
}

/// `GET /identity/conditionalAccess/policies`
pub fn ca_policies(shared: &Shared, req: &Req) -> Response<Body> {
    if let Err(r) = authorize(shared, req, POLICY_READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let value: Vec<Value> = state
        .ca_policies
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "displayName": p.display_name,
                "state": p.state,
                "conditions": {"users": {
                    "includeGroups": p.include_groups,
                    "excludeUsers": p.exclude_users,
                }},
                "grantControls": {"operator": "OR", "builtInControls": p.grant_controls},
            })
        })
        .collect();
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#identity/conditionalAccess/policies",
            "value": value,
        }),
    )
}
