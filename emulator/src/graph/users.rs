//! Graph users: read with `$select` semantics, update (disable, password profile), revoke
//! sessions, directory roles, password reset and per-user MFA.

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{
    PASSWORD_ADMIN_ROLES, PRIVILEGED_ADMIN_ROLES, authorize, bad_request, caller_directory_roles,
    denied, error, not_found, require,
};
use crate::Shared;
use crate::http::{self, Req};
use crate::state::UserState;

const READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ENABLE_DISABLE: &[&str] = &[
    "User.EnableDisableAccount.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const PASSWORD_PROFILE: &[&str] = &[
    "User-PasswordProfile.ReadWrite.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const WRITE: &[&str] = &["User.ReadWrite.All", "Directory.ReadWrite.All"];
const REVOKE: &[&str] = &[
    "User.RevokeSessions.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];
const ROLES_READ: &[&str] = &[
    "User.Read.All",
    "Directory.Read.All",
    "GroupMember.Read.All",
    "RoleManagement.Read.Directory",
    "Directory.ReadWrite.All",
];
const AUTH_METHODS: &[&str] = &["UserAuthenticationMethod.ReadWrite.All"];
const MFA_READ: &[&str] = &[
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.Read.AuthenticationMethod",
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
];
const MFA_WRITE: &[&str] = &["Policy.ReadWrite.AuthenticationMethod"];

/// The properties a user GET returns without `$select`.
const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Properties a cloud PATCH may not change on a user synced from on-premises AD.
const ON_PREMISES_MASTERED: &[&str] = &[
    "passwordProfile",
    "displayName",
    "givenName",
    "surname",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
];

const SYNCED_MESSAGE: &str = "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.";

/// The fixed id of the password authentication method.
const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// Every property the emulator knows for a user, in Graph's names.
pub fn full_json(user: &UserState) -> Map<String, Value> {
    let u = &user.seed;
    let mut m = Map::new();
    m.insert("id".into(), json!(u.id));
    m.insert("businessPhones".into(), json!(u.business_phones));
    m.insert("displayName".into(), json!(u.display_name));
    m.insert("givenName".into(), json!(u.given_name));
    m.insert("jobTitle".into(), json!(u.job_title));
    m.insert("mail".into(), json!(u.mail));
    m.insert("mobilePhone".into(), json!(u.mobile_phone));
    m.insert("officeLocation".into(), json!(u.office_location));
    m.insert("preferredLanguage".into(), json!(u.preferred_language));
    m.insert("surname".into(), json!(u.surname));
    m.insert("userPrincipalName".into(), json!(u.user_principal_name));
    m.insert("accountEnabled".into(), json!(u.account_enabled));
    m.insert("userType".into(), json!(u.user_type));
    m.insert(
        "onPremisesSyncEnabled".into(),
        json!(u.on_premises_sync_enabled),
    );
    m.insert(
        "onPremisesImmutableId".into(),
        json!(u.on_premises_immutable_id),
    );
    m.insert(
        "signInSessionsValidFromDateTime".into(),
        json!(user.sign_in_sessions_valid_from),
    );
    m.insert(
        "lastPasswordChangeDateTime".into(),
        json!(user.last_password_change),
    );
    m.insert(
        "passwordProfile".into(),
        json!({
            "password": null,
            "forceChangePasswordNextSignIn": user.force_change_password_next_sign_in,
            "forceChangePasswordNextSignInWithMfa": user.force_change_password_next_sign_in_with_mfa,
        }),
    );
    m
}

/// The selected properties, and the selected names when `$select` was given.
pub type Selected = (Map<String, Value>, Option<Vec<String>>);

/// Applies `$select`: without it the default properties, with it exactly the selected ones
/// plus `id`. Unknown names are a 400, as in Graph.
pub fn select(
    full: &Map<String, Value>,
    select: Option<&str>,
    entity: &str,
) -> Result<Selected, String> {
    let Some(select) = select.filter(|s| !s.trim().is_empty()) else {
        let mut out = Map::new();
        for name in DEFAULT_PROPERTIES {
            if let Some(v) = full.get(*name) {
                out.insert((*name).to_owned(), v.clone());
            }
        }
        return Ok((out, None));
    };
    let mut out = Map::new();
    let mut names = Vec::new();
    if let Some(id) = full.get("id") {
        out.insert("id".into(), id.clone());
    }
    for wanted in select.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((name, value)) = full.iter().find(|(k, _)| k.eq_ignore_ascii_case(wanted)) else {
            return Err(format!(
                "Could not find a property named '{wanted}' on type 'microsoft.graph.{entity}'."
            ));
        };
        out.insert(name.clone(), value.clone());
        names.push(name.clone());
    }
    Ok((out, Some(names)))
}

fn find(shared: &Shared, key: &str) -> Option<UserState> {
    let state = shared.state.lock().expect("state lock");
    state.user_index(key).map(|i| state.users[i].clone())
}

fn check_key<'a>(req: &Req, key: &'a str) -> Result<&'a str, Response<Body>> {
    if key.starts_with('$') {
        return Err(error(
            req,
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Resource not found for the segment '{key}'."),
        ));
    }
    Ok(key)
}

fn version(req: &Req) -> &'static str {
    if req.path.to_ascii_lowercase().starts_with("/beta/") {
        "beta"
    } else {
        "v1.0"
    }
}

/// `GET /users`
pub fn list(shared: &Shared, req: &Req) -> Response<Body> {
    if let Err(r) = authorize(shared, req, READ) {
        return r;
    }
    let users: Vec<UserState> = shared.state.lock().expect("state lock").users.clone();
    let mut value = Vec::new();
    for user in &users {
        match select(
            &full_json(user),
            req.query_param("$select").as_deref(),
            "user",
        ) {
            Ok((m, _)) => value.push(Value::Object(m)),
            Err(message) => return bad_request(req, &message),
        }
    }
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("https://graph.microsoft.com/{}/$metadata#users", version(req)),
            "value": value,
        }),
    )
}

/// `GET /users/{id | userPrincipalName}`
pub fn get(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, READ) {
        return r;
    }
    let key = match check_key(req, key) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let Some(user) = find(shared, key) else {
        return not_found(req, key);
    };
    match select(
        &full_json(&user),
        req.query_param("$select").as_deref(),
        "user",
    ) {
        Ok((mut body, names)) => {
            let context = match names {
                Some(names) => format!(
                    "https://graph.microsoft.com/{}/$metadata#users({})/$entity",
                    version(req),
                    names.join(",")
                ),
                None => format!(
                    "https://graph.microsoft.com/{}/$metadata#users/$entity",
                    version(req)
                ),
            };
            body.insert("@odata.context".into(), json!(context));
            body.sort_keys_context_first();
            http::json(StatusCode::OK, &Value::Object(body))
        }
        Err(message) => bad_request(req, &message),
    }
}

/// Keeps `@odata.context` first, as Graph prints it.
trait ContextFirst {
    fn sort_keys_context_first(&mut self);
}

impl ContextFirst for Map<String, Value> {
    fn sort_keys_context_first(&mut self) {
        if let Some(context) = self.remove("@odata.context") {
            let rest = std::mem::take(self);
            self.insert("@odata.context".into(), context);
            self.extend(rest);
        }
    }
}

/// `PATCH /users/{id}`: 204 with no body.
pub fn patch(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    // Graph checks the token before it reads the body.
    let claims = match authorize(shared, req, &[]) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match req.json() {
        Ok(Some(Value::Object(body))) => body,
        Ok(_) => {
            return error(
                req,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Empty Payload. JSON content expected.",
            );
        }
        Err(_) => {
            return error(
                req,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid JSON payload.",
            );
        }
    };
    // Which permission the change needs decides the role check, so read the body first.
    let needs: &[&str] = if body.keys().all(|k| k == "accountEnabled") {
        ENABLE_DISABLE
    } else if body.keys().all(|k| k == "passwordProfile") {
        PASSWORD_PROFILE
    } else {
        WRITE
    };
    if let Err(r) = require(req, &claims, needs) {
        return r;
    }
    let Some(user) = find(shared, key) else {
        return not_found(req, key);
    };
    let mut account_enabled = None;
    let mut password_profile = None;
    let mut strings = Vec::new();
    for (name, value) in &body {
        match name.as_str() {
            "accountEnabled" => match value.as_bool() {
                Some(b) => account_enabled = Some(b),
                None => {
                    return bad_request(
                        req,
                        "Invalid value specified for property 'accountEnabled' of resource 'User'.",
                    );
                }
            },
            "passwordProfile" => match value.as_object() {
                Some(p) => password_profile = Some(p.clone()),
                None => {
                    return bad_request(
                        req,
                        "Invalid value specified for property 'passwordProfile' of resource 'User'.",
                    );
                }
            },
            "displayName" | "givenName" | "surname" | "jobTitle" | "mobilePhone"
            | "officeLocation" | "preferredLanguage" | "mail" => {
                if !(value.is_string() || value.is_null()) {
                    return bad_request(
                        req,
                        &format!(
                            "Invalid value specified for property '{name}' of resource 'User'."
                        ),
                    );
                }
                strings.push((name.clone(), value.as_str().map(str::to_owned)));
            }
            "id"
            | "onPremisesSyncEnabled"
            | "onPremisesImmutableId"
            | "signInSessionsValidFromDateTime"
            | "createdDateTime"
            | "lastPasswordChangeDateTime" => {
                return bad_request(
                    req,
                    &format!("Property '{name}' is read-only and cannot be set."),
                );
            }
            n if n.starts_with("@odata.") => {}
            _ => {
                return bad_request(
                    req,
                    &format!(
                        "Property '{name}' does not exist as a declared property or extension property."
                    ),
                );
            }
        }
    }
    if user.seed.on_premises_sync_enabled == Some(true)
        && body
            .keys()
            .any(|k| ON_PREMISES_MASTERED.contains(&k.as_str()))
    {
        return bad_request(req, SYNCED_MESSAGE);
    }
    // Sensitive properties: app-only callers need an admin role above the target's.
    let sensitive = account_enabled.is_some() || password_profile.is_some();
    if sensitive {
        let caller_roles = caller_directory_roles(shared, &claims);
        let holds = |set: &[&str]| caller_roles.iter().any(|r| set.contains(&r.as_str()));
        let target_is_admin = !shared
            .state
            .lock()
            .expect("state lock")
            .roles_of(&user.seed.id)
            .is_empty();
        if target_is_admin && !holds(PRIVILEGED_ADMIN_ROLES) {
            return denied(req);
        }
        if password_profile.is_some() && !holds(PASSWORD_ADMIN_ROLES) {
            return denied(req);
        }
    }
    if let Some(password) = password_profile
        .as_ref()
        .and_then(|p| p.get("password"))
        .and_then(Value::as_str)
        && password.chars().count() < 8
    {
        return bad_request(
            req,
            "The specified password does not comply with password complexity requirements. Please provide a different password.",
        );
    }
    let mut state = shared.state.lock().expect("state lock");
    let Some(index) = state.user_index(&user.seed.id) else {
        return not_found(req, key);
    };
    let mut effects = Vec::new();
    {
        let u = &mut state.users[index];
        if let Some(enabled) = account_enabled
            && u.seed.account_enabled != enabled
        {
            u.seed.account_enabled = enabled;
            effects.push(if enabled {
                "user_enabled"
            } else {
                "user_disabled"
            });
        }
        if let Some(profile) = &password_profile {
            let flag = |name: &str| profile.get(name).and_then(Value::as_bool);
            // Like the other counters, this one counts changes of state: setting a flag to
            // the value it already has changes nothing.
            let before = (
                u.force_change_password_next_sign_in,
                u.force_change_password_next_sign_in_with_mfa,
            );
            if let Some(f) = flag("forceChangePasswordNextSignIn") {
                u.force_change_password_next_sign_in = f;
            }
            if let Some(f) = flag("forceChangePasswordNextSignInWithMfa") {
                u.force_change_password_next_sign_in_with_mfa = f;
            }
            let changed_password = profile.get("password").is_some_and(Value::is_string);
            if changed_password {
                u.last_password_change = Some(http::now_rfc3339());
                effects.push("password_changed");
            }
            let after = (
                u.force_change_password_next_sign_in,
                u.force_change_password_next_sign_in_with_mfa,
            );
            if changed_password || before != after {
                effects.push("password_profile_updated");
            }
        }
        for (name, value) in strings {
            let seed = &mut u.seed;
            match name.as_str() {
                "displayName" => seed.display_name = value.unwrap_or_default(),
                "givenName" => seed.given_name = value,
                "surname" => seed.surname = value,
                "jobTitle" => seed.job_title = value,
                "mobilePhone" => seed.mobile_phone = value,
                "officeLocation" => seed.office_location = value,
                "preferredLanguage" => seed.preferred_language = value,
                _ => seed.mail = value,
            }
            effects.push("user_updated");
        }
    }
    for effect in effects {
        state.bump(effect);
    }
    http::empty(StatusCode::NO_CONTENT)
}

/// `POST /users/{id}/revokeSignInSessions`: 200 `{"value": true}`.
pub fn revoke_sessions(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, REVOKE) {
        return r;
    }
    let mut state = shared.state.lock().expect("state lock");
    let Some(index) = state.user_index(key) else {
        drop(state);
        return not_found(req, key);
    };
    state.users[index].sign_in_sessions_valid_from =
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    state.bump("sessions_revoked");
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("https://graph.microsoft.com/{}/$metadata#Edm.Boolean", version(req)),
            "value": true,
        }),
    )
}

/// `GET /users/{id}/transitiveMemberOf/microsoft.graph.directoryRole`
pub fn directory_roles(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, ROLES_READ) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let Some(index) = state.user_index(key) else {
        drop(state);
        return not_found(req, key);
    };
    let select_param = req.query_param("$select");
    let mut value = Vec::new();
    for role in state.roles_of(&state.users[index].seed.id) {
        let mut full = Map::new();
        full.insert(
            "@odata.type".into(),
            json!("#microsoft.graph.directoryRole"),
        );
        full.insert("id".into(), json!(role.id));
        full.insert("deletedDateTime".into(), Value::Null);
        full.insert("description".into(), json!(role.description));
        full.insert("displayName".into(), json!(role.display_name));
        full.insert("roleTemplateId".into(), json!(role.role_template_id));
        let item = match select_param.as_deref() {
            Some(s) => {
                let mut out = Map::new();
                out.insert(
                    "@odata.type".into(),
                    json!("#microsoft.graph.directoryRole"),
                );
                out.insert("id".into(), json!(role.id));
                for wanted in s.split(',').map(str::trim) {
                    match full.iter().find(|(k, _)| k.eq_ignore_ascii_case(wanted)) {
                        Some((k, v)) => {
                            out.insert(k.clone(), v.clone());
                        }
                        None => {
                            drop(state);
                            return bad_request(
                                req,
                                &format!(
                                    "Could not find a property named '{wanted}' on type 'microsoft.graph.directoryRole'."
                                ),
                            );
                        }
                    }
                }
                out
            }
            None => full,
        };
        value.push(Value::Object(item));
    }
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("https://graph.microsoft.com/{}/$metadata#directoryRoles", version(req)),
            "@odata.count": value.len(),
            "value": value,
        }),
    )
}

/// Properties `memberOf` can `$select` across the types it returns.
const MEMBER_OF_PROPERTIES: &[&str] = &[
    "id",
    "displayName",
    "description",
    "deletedDateTime",
    "securityEnabled",
    "mailEnabled",
    "isAssignableToRole",
    "groupTypes",
    "roleTemplateId",
];

/// `GET /users/{id}/memberOf`: the groups and directory roles the user is a *direct* member
/// of (not transitive), each with its `@odata.type`.
pub fn member_of(shared: &Shared, req: &Req, key: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, ROLES_READ) {
        return r;
    }
    let select_param = req.query_param("$select");
    let wanted: Option<Vec<&str>> = select_param.as_deref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect()
    });
    if let Some(bad) = wanted.iter().flatten().find(|w| {
        !MEMBER_OF_PROPERTIES
            .iter()
            .any(|p| p.eq_ignore_ascii_case(w))
    }) {
        return bad_request(
            req,
            &format!(
                "Could not find a property named '{bad}' on type 'microsoft.graph.directoryObject'."
            ),
        );
    }
    let state = shared.state.lock().expect("state lock");
    let Some(index) = state.user_index(key) else {
        drop(state);
        return not_found(req, key);
    };
    let uid = state.users[index].seed.id.clone();
    let mut objects = Vec::new();
    for g in state
        .groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m.eq_ignore_ascii_case(&uid)))
    {
        objects.push(json!({
            "@odata.type": "#microsoft.graph.group",
            "id": g.id,
            "deletedDateTime": null,
            "displayName": g.display_name,
            "description": g.description,
            "securityEnabled": true,
            "mailEnabled": false,
            "isAssignableToRole": g.is_assignable_to_role,
            "groupTypes": [],
        }));
    }
    for r in state
        .directory_roles
        .iter()
        .filter(|r| r.members.iter().any(|m| m.eq_ignore_ascii_case(&uid)))
    {
        objects.push(json!({
            "@odata.type": "#microsoft.graph.directoryRole",
            "id": r.id,
            "deletedDateTime": null,
            "displayName": r.display_name,
            "description": r.description,
            "roleTemplateId": r.role_template_id,
        }));
    }
    drop(state);
    let value: Vec<Value> = objects
        .into_iter()
        .map(|o| match &wanted {
            None => o,
            Some(keys) => {
                let mut out = Map::new();
                out.insert("@odata.type".into(), o["@odata.type"].clone());
                for (k, v) in o.as_object().into_iter().flatten() {
                    if keys.iter().any(|w| w.eq_ignore_ascii_case(k)) {
                        out.insert(k.clone(), v.clone());
                    }
                }
                Value::Object(out)
            }
        })
        .collect();
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": format!("https://graph.microsoft.com/{}/$metadata#directoryObjects", version(req)),
            "value": value,
        }),
    )
}

/// `POST /users/{id}/authentication/methods/28c10230-…/resetPassword`: 202 + `Location`.
pub fn reset_password(shared: &Shared, req: &Req, key: &str, method_id: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, AUTH_METHODS) {
        return r;
    }
    let body = req.json().ok().flatten();
    let new_password = body
        .as_ref()
        .and_then(|b| b.get("newPassword"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut state = shared.state.lock().expect("state lock");
    let Some(index) = state.user_index(key) else {
        drop(state);
        return not_found(req, key);
    };
    if !method_id.eq_ignore_ascii_case(PASSWORD_METHOD_ID) {
        drop(state);
        return not_found(req, method_id);
    }
    let user_id = state.users[index].seed.id.clone();
    let operation = http::new_id();
    state.users[index].last_password_change = Some(http::now_rfc3339());
    state.users[index].force_change_password_next_sign_in = true;
    state
        .password_resets
        .push((operation.clone(), user_id.clone()));
    state.bump("password_reset");
    drop(state);
    let generated = new_password
        .is_none()
        .then(|| format!("Emu{}!", &http::new_id()[..8]));
    let mut response = http::json(
        StatusCode::ACCEPTED,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.passwordResetResponse",
            "newPassword": generated,
        }),
    );
    http::set_header(
        &mut response,
        "location",
        &format!(
            "{}/v1.0/users/{user_id}/authentication/operations/{operation}?aadgdc=emulator",
            req.ctx.base_url
        ),
    );
    http::set_header(&mut response, "retry-after", "0");
    response
}

/// `GET /users/{id}/authentication/operations/{id}`: the reset is already done.
pub fn reset_operation(shared: &Shared, req: &Req, key: &str, operation: &str) -> Response<Body> {
    if let Err(r) = authorize(shared, req, AUTH_METHODS) {
        return r;
    }
    let state = shared.state.lock().expect("state lock");
    let known = state.user_index(key).is_some_and(|i| {
        let id = &state.users[i].seed.id;
        state
            .password_resets
            .iter()
            .any(|(op, user)| op.eq_ignore_ascii_case(operation) && user == id)
    });
    drop(state);
    if !known {
        return not_found(req, operation);
    }
    http::json(
        StatusCode::OK,
        &json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.longRunningOperation",
            "id": operation,
            "createdDateTime": http::now_rfc3339(),
            "lastActionDateTime": http::now_rfc3339(),
            "status": "succeeded",
            "statusDetail": null,
            "resourceLocation": null,
        }),
    )
}

/// beta `GET|PATCH /users/{id}/authentication/requirements` (and the contract's
/// `/users/{id}/authentication` with a `requirements` property when `wrapped`).
pub fn mfa_requirements(shared: &Shared, req: &Req, key: &str, wrapped: bool) -> Response<Body> {
    let write = req.method == Method::PATCH;
    if req.method != Method::GET && !write {
        return error(
            req,
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        );
    }
    if let Err(r) = authorize(shared, req, if write { MFA_WRITE } else { MFA_READ }) {
        return r;
    }
    let mut state = shared.state.lock().expect("state lock");
    let Some(index) = state.user_index(key) else {
        drop(state);
        return not_found(req, key);
    };
    if write {
        let body = req.json().ok().flatten().unwrap_or(Value::Null);
        let requested = if wrapped {
            body.pointer("/requirements/perUserMfaState")
        } else {
            body.get("perUserMfaState")
        }
        .and_then(Value::as_str)
        .map(str::to_owned);
        let Some(value) =
            requested.filter(|v| ["disabled", "enabled", "enforced"].contains(&v.as_str()))
        else {
            drop(state);
            return bad_request(
                req,
                "Invalid value specified for property 'perUserMfaState'; expected disabled, enabled or enforced.",
            );
        };
        if state.users[index].seed.per_user_mfa_state != value {
            state.users[index].seed.per_user_mfa_state = value;
            state.bump("mfa_state_changed");
        }
        return http::empty(StatusCode::NO_CONTENT);
    }
    let user = &state.users[index].seed;
    let body = if wrapped {
        json!({
            "@odata.context": format!("https://graph.microsoft.com/beta/$metadata#users('{}')/authentication/$entity", user.id),
            "id": user.id,
            "requirements": {"perUserMfaState": user.per_user_mfa_state},
        })
    } else {
        json!({
            "@odata.context": format!("https://graph.microsoft.com/beta/$metadata#users('{}')/authentication/requirements", user.id),
            "perUserMfaState": user.per_user_mfa_state,
        })
    };
    http::json(StatusCode::OK, &body)
}
