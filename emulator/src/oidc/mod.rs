//! OpenID Connect sign-in on the emulated Microsoft identity platform, for riposte's review
//! page: the OpenID configuration, the JWKS, the authorize endpoint (a user picker instead of a
//! password prompt) and the authorization-code + PKCE redemption at the token endpoint.
//! `emulator/OIDC.md` lists what is emulated and what is not.
//!
//! The review app registration and its users are seeded here, not in the tenant file: every
//! tenant the emulator serves offers the same sign-in, so tests and the demo need no fixture
//! of their own.

mod authorize;
mod keys;
mod token;

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::http::{self, Req};
use super::state::State;
use super::{EmulatorHandle, EmulatorState, Shared};

pub(crate) use token::redeem;

/// The review page's app registration (client id).
pub const REVIEW_CLIENT_ID: &str = "c0ffee00-2222-4333-8444-555566667777";
/// Its client secret.
pub const REVIEW_CLIENT_SECRET: &str = "emulator-review-secret";

/// How long an authorization code may wait for redemption (Entra: about 10 minutes).
const CODE_LIFETIME_SECONDS: i64 = 600;
/// Lifetime of the id and access tokens a sign-in gives (Entra's default: one hour).
const TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// A person who may sign in to the review page, with the review app's roles assigned.
#[derive(Debug, Clone, Copy)]
pub struct ReviewUser {
    /// Object id (`oid`).
    pub oid: &'static str,
    /// Display name (`name`).
    pub name: &'static str,
    /// The part of `preferred_username` before `@`; the tenant's first domain follows it.
    pub alias: &'static str,
    /// App roles of the review app assigned to the user (`roles`).
    pub roles: &'static [&'static str],
}

/// The review users every emulated tenant holds, in the picker's order.
pub const REVIEW_USERS: &[ReviewUser] = &[
    ReviewUser {
        oid: "5e1ec7ed-0000-4000-8000-000000000001",
        name: "Alex Viewer",
        alias: "alex.viewer",
        roles: &["Riposte.Viewer"],
    },
    ReviewUser {
        oid: "5e1ec7ed-0000-4000-8000-000000000002",
        name: "Megan Responder",
        alias: "megan.responder",
        roles: &["Riposte.Responder"],
    },
    ReviewUser {
        oid: "5e1ec7ed-0000-4000-8000-000000000003",
        name: "Lee Approver",
        alias: "lee.approver",
        roles: &["Riposte.Viewer", "Riposte.Approver"],
    },
    ReviewUser {
        oid: "5e1ec7ed-0000-4000-8000-000000000004",
        name: "Grady Admin",
        alias: "grady.admin",
        roles: &["Riposte.Admin"],
    },
];

impl ReviewUser {
    fn username(&self, state: &State) -> String {
        let domain = state
            .domains
            .first()
            .map(String::as_str)
            .unwrap_or("contoso.onmicrosoft.com");
        format!("{}@{domain}", self.alias)
    }
}

/// An issued authorization code and what it is bound to.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    /// `(code_challenge, method)`, when the request carried one.
    challenge: Option<(String, String)>,
    nonce: Option<String>,
    scope: String,
    user: ReviewUser,
    expires: i64,
    redeemed: bool,
}

/// A change a test asks for in the next id token the token endpoint issues.
#[derive(Debug, Clone, Default)]
pub struct IdTokenPatch {
    /// Claims set (or, when `null`, removed) before signing.
    pub claims: Map<String, Value>,
    /// The `kid` header to claim instead of the signing key's.
    pub kid: Option<String>,
    /// Changes the payload after signing, so the signature no longer matches (a tampered token).
    pub tamper: bool,
}

/// What the sign-in endpoints share.
#[derive(Default)]
pub(crate) struct Oidc {
    keys: keys::Keys,
    /// Authorization codes by value.
    codes: Mutex<HashMap<String, Grant>>,
    patch: Mutex<Option<IdTokenPatch>>,
}

/// Whether the request is for a sign-in endpoint this module serves (the token endpoint is
/// shared with client credentials and reaches [`redeem`] through `auth`).
pub(crate) fn serves(req: &Req) -> bool {
    let s = lower_segments(req);
    matches!(
        s.iter().map(String::as_str).collect::<Vec<_>>()[..],
        [_, "v2.0", ".well-known", "openid-configuration"]
            | [_, "discovery", "v2.0", "keys"]
            | [_, "oauth2", "v2.0", "authorize"]
    )
}

fn lower_segments(req: &Req) -> Vec<String> {
    req.segments()
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// Serves discovery, keys and authorize.
pub(crate) fn handle(shared: &Shared, req: &Req) -> Response<Body> {
    let segments = lower_segments(req);
    let tenant = req.segments().swap_remove(0);
    let tenant_id = {
        let state = shared.state.lock().expect("state lock");
        known_tenant(&state, &tenant)
    };
    let Some(tenant_id) = tenant_id else {
        return match segments[1].as_str() {
            "oauth2" => authorize::error_page(
                req,
                90002,
                &format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                ),
            ),
            _ => http::json(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_tenant", "error_description": format!("AADSTS90002: Tenant '{tenant}' not found.")}),
            ),
        };
    };
    match (segments[1].as_str(), &req.method) {
        ("oauth2", &Method::GET | &Method::POST) => authorize::handle(shared, req),
        ("v2.0", &Method::GET) => http::json(StatusCode::OK, &discovery(req, &tenant_id)),
        ("discovery", &Method::GET) => http::json(
            StatusCode::OK,
            &shared.oidc.keys.jwks(&issuer(req, &tenant_id)),
        ),
        _ => http::json(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts GET requests."}),
        ),
    }
}

/// The tenant GUID a path segment names (its id or one of its domains).
fn known_tenant(state: &State, segment: &str) -> Option<String> {
    let known = state.tenant_id.eq_ignore_ascii_case(segment)
        || state
            .domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(segment));
    known.then(|| state.tenant_id.clone())
}

/// `https://login.microsoftonline.com/{tid}/v2.0` with the emulator as the login host.
pub(crate) fn issuer(req: &Req, tenant_id: &str) -> String {
    format!("{}/{tenant_id}/v2.0", req.ctx.base_url)
}

/// The v2.0 OpenID configuration, with the fields Entra's document has for the endpoints the
/// emulator serves (no userinfo, device code or Kerberos endpoints: nothing serves them, and a
/// client must not be pointed at a real host). Entra names endpoints by tenant GUID even when
/// the document was asked for by domain, and advertises no `code_challenge_methods_supported`.
fn discovery(req: &Req, tenant_id: &str) -> Value {
    let base = &req.ctx.base_url;
    json!({
        "token_endpoint": format!("{base}/{tenant_id}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant_id}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer(req, tenant_id),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{tenant_id}/oauth2/v2.0/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{tenant_id}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    })
}

/// Test hooks for sign-in.
impl EmulatorState {
    /// Starts a key rollover: id tokens are signed with a key the JWKS did not list before
    /// (it lists both from now on).
    pub fn rotate_signing_key(&self) {
        self.0.oidc.keys.rotate();
    }

    /// Makes every outstanding authorization code expired, as if ten minutes had passed.
    pub fn expire_authorization_codes(&self) {
        for grant in self.0.oidc.codes.lock().expect("codes lock").values_mut() {
            grant.expires = 0;
        }
    }

    /// Applies `patch` to the next id token issued (once).
    pub fn patch_next_id_token(&self, patch: IdTokenPatch) {
        *self.0.oidc.patch.lock().expect("patch lock") = Some(patch);
    }
}

impl EmulatorHandle {
    /// The `[server.oidc]` section that signs the review page in through this emulator (with
    /// [`client_config_toml`](crate::client_config_toml), whose `[azure] authority_host` is
    /// the login host).
    pub fn oidc_config_toml(&self) -> String {
        format!(
            "[server.oidc]\nclient_id = \"{REVIEW_CLIENT_ID}\"\nclient_secret = \"{REVIEW_CLIENT_SECRET}\"\n"
        )
    }
}
