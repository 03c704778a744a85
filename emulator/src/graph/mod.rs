//! Microsoft Graph (`/v1.0/…`, `/beta/…`): routing, the bearer and permission checks, and
//! Graph's error shape and headers.

mod batch;
mod directory_objects;
mod groups;
mod security;
mod service_principals;
mod users;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::json;

use super::Shared;
use super::auth::{AuthFailure, Claims, GRAPH_AUDIENCES};
use super::http::{self, Req};

/// Directory role templates that can change sensitive properties of admins (app-only).
const PRIVILEGED_ADMIN_ROLES: &[&str] = &[
    "62e90394-69f5-4237-9190-012177145e10", // Global Administrator
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13", // Privileged Authentication Administrator
];
/// Directory role templates that may reset passwords of non-admins (app-only).
const PASSWORD_ADMIN_ROLES: &[&str] = &[
    "fe930be7-5e62-47db-91af-98c3a49a38b1", // User Administrator
    "62e90394-69f5-4237-9190-012177145e10",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
];

/// Graph's error body: `{"error":{"code","message","innerError":{…}}}`.
pub fn error(req: &Req, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let client_request_id = req
        .ctx
        .client_request_id
        .clone()
        .unwrap_or_else(|| req.ctx.request_id.clone());
    http::json(
        status,
        &json!({
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": req.ctx.received.format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "request-id": req.ctx.request_id,
                    "client-request-id": client_request_id,
                }
            }
        }),
    )
}

/// Headers Graph sends on every response.
pub fn decorate(req: &Req, response: &mut Response<Body>) {
    http::set_header(response, "request-id", &req.ctx.request_id);
    let client = req
        .ctx
        .client_request_id
        .clone()
        .unwrap_or_else(|| req.ctx.request_id.clone());
    http::set_header(response, "client-request-id", &client);
    http::set_header(
        response,
        "x-ms-ags-diagnostic",
        r#"{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0","ScaleUnit":"000","RoleInstance":"riposte-emulator"}}"#,
    );
}

fn not_found(req: &Req, key: &str) -> Response<Body> {
    error(
        req,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn bad_request(req: &Req, message: &str) -> Response<Body> {
    error(req, StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn denied(req: &Req) -> Response<Body> {
    error(
        req,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// Checks the bearer token and that it carries one of `roles` (empty: any valid token).
fn authorize(shared: &Shared, req: &Req, roles: &[&str]) -> Result<Claims, Response<Body>> {
    let claims = shared.issuer.check(req, GRAPH_AUDIENCES).map_err(|failure| {
        let message = match failure {
            AuthFailure::Missing => "Access token is empty.",
            AuthFailure::Invalid => "Access token validation failure.",
            AuthFailure::Expired { .. } => "Lifetime validation failed, the token is expired.",
            AuthFailure::WrongAudience { .. } => "Access token validation failure. Invalid audience.",
        };
        let mut response = error(
            req,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        http::set_header(
            &mut response,
            "www-authenticate",
            r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
        );
        response
    })?;
    require(req, &claims, roles)?;
    Ok(claims)
}

/// Checks that a validated token carries one of `roles` (empty: any).
fn require(req: &Req, claims: &Claims, roles: &[&str]) -> Result<(), Response<Body>> {
    if !roles.is_empty() && !claims.roles.iter().any(|r| roles.contains(&r.as_str())) {
        return Err(denied(req));
    }
    Ok(())
}

/// Directory role templates held by the calling app's service principal.
fn caller_directory_roles(shared: &Shared, claims: &Claims) -> Vec<String> {
    shared
        .state
        .lock()
        .expect("state lock")
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(&claims.appid))
        .map(|a| a.directory_roles.clone())
        .unwrap_or_default()
}

/// Path segments after the version, with `users('…')` keys split out and the
/// `microsoft.graph.` prefix removed from bound actions (type casts keep it).
fn route_segments(req: &Req) -> Vec<String> {
    let mut out = Vec::new();
    for segment in req.segments().into_iter().skip(1) {
        if let Some(open) = segment.find("('")
            && segment.ends_with("')")
        {
            out.push(segment[..open].to_owned());
            out.push(segment[open + 2..segment.len() - 2].replace("''", "'"));
            continue;
        }
        match segment.strip_prefix("microsoft.graph.") {
            Some(action)
                if [
                    "revokeSignInSessions",
                    "resetPassword",
                    "confirmCompromised",
                ]
                .iter()
                .any(|a| a.eq_ignore_ascii_case(action)) =>
            {
                out.push(action.to_owned())
            }
            _ => out.push(segment),
        }
    }
    out
}

/// Serves a Graph request; `seq` is the log sequence of the request (for `$batch` children).
pub async fn handle(shared: &Shared, req: &Req, seq: u64) -> Response<Body> {
    let route = route_segments(req);
    let route: Vec<&str> = route.iter().map(String::as_str).collect();
    if route.first() == Some(&"$batch") && route.len() == 1 && req.method == Method::POST {
        return batch::handle(shared, req, seq).await;
    }
    handle_one(shared, req, &route)
}

fn handle_one(shared: &Shared, req: &Req, route: &[&str]) -> Response<Body> {
    let beta = req
        .segments()
        .first()
        .is_some_and(|v| v.eq_ignore_ascii_case("beta"));
    let lower: Vec<String> = route.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let m = &req.method;
    if let Err(response) = require_advanced_query(shared, req, &lower) {
        return response;
    }
    // `servicePrincipals(appId='…')`: the alternate key Graph offers for an app.
    if let Some(app_id) = route.first().and_then(|s| {
        let l = s.to_ascii_lowercase();
        (l.starts_with("serviceprincipals(appid='") && l.ends_with("')"))
            .then(|| s[25..s.len() - 2].to_string())
    }) && route.len() == 1
        && *m == Method::GET
    {
        return service_principals::get(shared, req, &app_id);
    }
    match lower.as_slice() {
        ["serviceprincipals", _] if m == Method::GET => {
            service_principals::get(shared, req, route[1])
        }
        [
            "serviceprincipals",
            _,
            "transitivememberof",
            "microsoft.graph.directoryrole",
        ] if m == Method::GET => service_principals::directory_roles(shared, req, route[1]),
        ["directoryobjects", _] if m == Method::GET => {
            directory_objects::get(shared, req, route[1])
        }
        ["users"] if m == Method::GET => users::list(shared, req),
        ["users", _] if m == Method::GET => users::get(shared, req, route[1]),
        ["users", _] if m == Method::PATCH => users::patch(shared, req, route[1]),
        ["users", _, "memberof"] if m == Method::GET => users::member_of(shared, req, route[1]),
        ["users", _, "revokesigninsessions"] if m == Method::POST => {
            users::revoke_sessions(shared, req, route[1])
        }
        [
            "users",
            _,
            "transitivememberof",
            "microsoft.graph.directoryrole",
        ] if m == Method::GET => users::directory_roles(shared, req, route[1]),
        ["users", _, "authentication", "methods", _, "resetpassword"] if m == Method::POST => {
            users::reset_password(shared, req, route[1], route[4])
        }
        ["users", _, "authentication", "operations", _] if m == Method::GET => {
            users::reset_operation(shared, req, route[1], route[4])
        }
        ["users", _, "authentication", "requirements"] if beta => {
            users::mfa_requirements(shared, req, route[1], false)
        }
        ["users", _, "authentication"] if beta && m != Method::DELETE => {
            users::mfa_requirements(shared, req, route[1], true)
        }
        ["groups", _] if m == Method::GET => groups::get(shared, req, route[1]),
        ["groups", _, "members"] if m == Method::GET => groups::members(shared, req, route[1]),
        ["groups", _, "members", "$ref"] if m == Method::POST => {
            groups::add_member(shared, req, route[1])
        }
        ["groups", _, "members", _, "$ref"] if m == Method::DELETE => {
            groups::remove_member(shared, req, route[1], route[3])
        }
        ["identityprotection", "riskyusers", "confirmcompromised"] if m == Method::POST => {
            security::confirm_compromised(shared, req)
        }
        ["identityprotection", "riskyusers", _] if m == Method::GET => {
            security::risky_user(shared, req, route[2])
        }
        ["security", "alerts_v2"] if m == Method::GET => security::alerts(shared, req),
        ["security", "alerts_v2", _] if m == Method::GET => security::alert(shared, req, route[2]),
        ["identity", "conditionalaccess", "policies"] if m == Method::GET => {
            security::ca_policies(shared, req)
        }
        _ => unknown_route(req, route, &lower, beta),
    }
}

/// An OData cast (`/transitiveMemberOf/microsoft.graph.directoryRole`) is an advanced query
/// on directory objects: Graph serves it only with `ConsistencyLevel: eventual` and
/// `$count=true` (graph/aad-advanced-queries; user-list-transitivememberof). Authentication
/// comes first: a request without a valid token gets its 401 from the route.
fn require_advanced_query(
    shared: &Shared,
    req: &Req,
    lower: &[&str],
) -> Result<(), Response<Body>> {
    let cast = lower
        .iter()
        .skip(1)
        .any(|s| s.starts_with("microsoft.graph."));
    if !cast || req.method != Method::GET || shared.issuer.check(req, GRAPH_AUDIENCES).is_err() {
        return Ok(());
    }
    let eventual = req
        .header("consistencylevel")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual"));
    let counted = req
        .query_param("$count")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if eventual && counted {
        return Ok(());
    }
    Err(error(
        req,
        StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
        "OData cast is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
    ))
}

/// Whether a path has a route for some method (then the method is what is wrong).
fn known_shape(route: &[&str], beta: bool) -> bool {
    matches!(
        route,
        ["directoryobjects", _]
            | ["users"]
            | ["users", _]
            | ["users", _, "revokesigninsessions"]
            | ["users", _, "memberof"]
            | [
                "users",
                _,
                "transitivememberof",
                "microsoft.graph.directoryrole"
            ]
            | ["users", _, "authentication", "methods", _, "resetpassword"]
            | ["users", _, "authentication", "operations", _]
            | ["groups", _]
            | ["groups", _, "members"]
            | ["groups", _, "members", "$ref"]
            | ["groups", _, "members", _, "$ref"]
            | ["identityprotection", "riskyusers", "confirmcompromised"]
            | ["identityprotection", "riskyusers", _]
            | ["security", "alerts_v2"]
            | ["security", "alerts_v2", _]
            | ["identity", "conditionalaccess", "policies"]
    ) || (beta
        && matches!(
            route,
            ["users", _, "authentication"] | ["users", _, "authentication", "requirements"]
        ))
}

/// 405 for a known path with the wrong method; otherwise Graph's 400 naming the first segment
/// it could not resolve.
fn unknown_route(req: &Req, route: &[&str], lower: &[&str], beta: bool) -> Response<Body> {
    if known_shape(lower, beta) {
        return error(
            req,
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        );
    }
    let resolved = (0..=lower.len())
        .rev()
        .find(|&n| known_prefix(&lower[..n], beta))
        .unwrap_or(0);
    let segment = route
        .get(resolved)
        .or(route.last())
        .copied()
        .unwrap_or_default();
    error(
        req,
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
}

/// Whether some known route starts with `prefix`.
fn known_prefix(prefix: &[&str], beta: bool) -> bool {
    const SHAPES: &[&[&str]] = &[
        &["users", "*", "revokesigninsessions"],
        &["users", "*", "memberof"],
        &[
            "users",
            "*",
            "transitivememberof",
            "microsoft.graph.directoryrole",
        ],
        &[
            "users",
            "*",
            "authentication",
            "methods",
            "*",
            "resetpassword",
        ],
        &["users", "*", "authentication", "operations", "*"],
        &["groups", "*", "members", "*", "$ref"],
        &["identityprotection", "riskyusers", "confirmcompromised"],
        &["security", "alerts_v2", "*"],
        &["identity", "conditionalaccess", "policies"],
    ];
    const BETA: &[&[&str]] = &[&["users", "*", "authentication", "requirements"]];
    SHAPES
        .iter()
        .chain(if beta { BETA } else { &[] })
        .any(|shape| {
            shape.len() >= prefix.len()
                && shape.iter().zip(prefix).all(|(s, p)| *s == "*" || s == p)
        })
}
