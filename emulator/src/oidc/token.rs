//! `POST /{tenant}/oauth2/v2.0/token` with `grant_type=authorization_code`: the review app
//! authenticates, presents a code with the redirect URI it was issued for and the PKCE
//! verifier, and gets an access token and an RS256 id token.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::super::Shared;
use super::super::auth::{basic_credentials, entra_error};
use super::super::http::{self, Req};
use super::{Grant, REVIEW_CLIENT_ID, REVIEW_CLIENT_SECRET, TOKEN_LIFETIME_SECONDS};

/// Microsoft Graph's app id: the audience of the access token a sign-in gives.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Redeems an authorization code. The tenant in the path was checked by the caller.
pub(crate) fn redeem(shared: &Shared, req: &Req, form: &[(String, String)]) -> Response<Body> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let bad = |error, code, message: &str| {
        entra_error(req, StatusCode::BAD_REQUEST, error, code, message)
    };
    let missing = |name: &str| {
        bad(
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    let basic = basic_credentials(req);
    let Some(client_id) = field("client_id")
        .map(str::to_owned)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
    else {
        return missing("client_id");
    };
    if !client_id.eq_ignore_ascii_case(REVIEW_CLIENT_ID) {
        return bad(
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory, or it may not redeem authorization codes."
            ),
        );
    }
    let secret = field("client_secret")
        .map(str::to_owned)
        .or_else(|| basic.map(|(_, s)| s));
    match secret {
        None => {
            return entra_error(
                req,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            );
        }
        Some(s) if s != REVIEW_CLIENT_SECRET => {
            return entra_error(
                req,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{REVIEW_CLIENT_ID}'."
                ),
            );
        }
        Some(_) => {}
    }
    let Some(code) = field("code") else {
        return missing("code");
    };
    let Some(redirect_uri) = field("redirect_uri") else {
        return missing("redirect_uri");
    };
    let grant = {
        let mut codes = shared.oidc.codes.lock().expect("codes lock");
        let Some(grant) = codes.get_mut(code) else {
            return bad(
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid. The provided authorization code is not valid.",
            );
        };
        if let Err((code, message)) = check_grant(grant, redirect_uri, field("code_verifier")) {
            return bad("invalid_grant", code, &message);
        }
        // Single use: a second redemption, even by the rightful client, is refused.
        grant.redeemed = true;
        grant.clone()
    };
    tokens(shared, req, &grant)
}

/// Whether `grant` may be redeemed with this redirect URI and verifier; else the AADSTS code
/// and message.
fn check_grant(
    grant: &Grant,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> Result<(), (u32, String)> {
    if grant.redeemed {
        return Err((54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.".into()));
    }
    if grant.expires <= chrono::Utc::now().timestamp() {
        return Err((70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.".into()));
    }
    // The URL the code was issued for, normalised the same way.
    let same_uri = url::Url::parse(redirect_uri).is_ok_and(|u| u.as_str() == grant.redirect_uri);
    if !same_uri {
        return Err((
            500112,
            format!(
                "The reply address '{redirect_uri}' does not match the reply address provided when requesting the authorization code."
            ),
        ));
    }
    if let Some((challenge, method)) = &grant.challenge {
        let Some(verifier) = verifier else {
            return Err((501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.".into()));
        };
        if !(43..=128).contains(&verifier.len()) {
            return Err((501491, "Invalid size of Code_Verifier.".into()));
        }
        let derived = if method == "S256" {
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
        } else {
            verifier.to_owned()
        };
        if &derived != challenge {
            return Err((501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.".into()));
        }
    }
    Ok(())
}

/// The token response for a redeemed grant: an id token only when `openid` was asked for.
fn tokens(shared: &Shared, req: &Req, grant: &Grant) -> Response<Body> {
    let (tenant_id, username) = {
        let state = shared.state.lock().expect("state lock");
        (state.tenant_id.clone(), grant.user.username(&state))
    };
    let now = chrono::Utc::now().timestamp();
    let (access_token, _) = shared.issuer.issue(
        &tenant_id,
        &grant.client_id,
        grant.user.oid,
        GRAPH_APP_ID,
        Vec::new(),
        TOKEN_LIFETIME_SECONDS,
    );
    let scopes: Vec<&str> = grant.scope.split_whitespace().collect();
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scopes.iter().filter(|s| **s != "offline_access").copied().collect::<Vec<_>>().join(" "),
        "expires_in": TOKEN_LIFETIME_SECONDS,
        "ext_expires_in": TOKEN_LIFETIME_SECONDS,
        "access_token": access_token,
    });
    if scopes.contains(&"openid") {
        // `sub` is pairwise (per app), as Entra's is; `oid` is the same for every app.
        let sub = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
            format!("{}:{}", grant.client_id, grant.user.oid).as_bytes(),
        ));
        let mut claims = json!({
            "aud": grant.client_id,
            "iss": super::issuer(req, &tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "name": grant.user.name,
            "oid": grant.user.oid,
            "preferred_username": username,
            "sub": sub,
            "tid": tenant_id,
            "ver": "2.0",
        });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        if !grant.user.roles.is_empty() {
            claims["roles"] = json!(grant.user.roles);
        }
        body["id_token"] = json!(id_token(shared, claims));
    }
    shared.bump("tokens_issued");
    shared.bump("sign_ins");
    let mut response = http::json(StatusCode::OK, &body);
    http::set_header(&mut response, "x-ms-request-id", &req.ctx.request_id);
    http::set_header(&mut response, "cache-control", "no-store, no-cache");
    if let Some(id) = &req.ctx.client_request_id {
        http::set_header(&mut response, "client-request-id", id);
    }
    response
}

/// Signs the id token, applying a test's patch if one is waiting.
fn id_token(shared: &Shared, mut claims: Value) -> String {
    let patch = shared.oidc.patch.lock().expect("patch lock").take();
    let Some(patch) = patch else {
        return shared.oidc.keys.sign(&claims, None);
    };
    let apply = |claims: &mut Value| {
        for (name, value) in &patch.claims {
            match value {
                Value::Null => {
                    claims.as_object_mut().map(|c| c.remove(name));
                }
                v => claims[name] = v.clone(),
            }
        }
    };
    if !patch.tamper {
        apply(&mut claims);
        return shared.oidc.keys.sign(&claims, patch.kid.as_deref());
    }
    let signed = shared.oidc.keys.sign(&claims, patch.kid.as_deref());
    apply(&mut claims);
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    parts.join(".")
}
