//! Sign-in with Entra ID (`[server.oidc]`): `GET /auth/login` sends the browser to the
//! tenant's authorize endpoint, `GET /auth/callback` completes the sign-in and opens a
//! session for `oidc:<object id>` with the role the id token's app roles grant.
//!
//! What a sign-in in progress must remember (state, nonce, PKCE verifier) is kept in the store,
//! as a session row that is not signed in yet (its role `oidc-pending` is no role, so it can
//! never pass for a session), under the digest of a random id that only this browser holds in
//! the `riposte_login` cookie. Binding the callback to that cookie, not only to `state`, means
//! a callback URL someone else started (login CSRF: signing a victim in as the attacker) finds
//! no pending sign-in here. The row is deleted when the callback reads it, whatever happens next.

use axum::extract::Query;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::session::{self, cookie, digest, random_token};
use super::{error_page, see_other};
use crate::server::AppState;
use crate::server::oidc::{EntraSignIn, PendingLogin};
use crate::store::SessionRecord;

const LOGIN_COOKIE: &str = "riposte_login";
/// What a pending sign-in's row holds in the role column: not a role.
const PENDING: &str = "oidc-pending";
/// How long a browser may take at the identity platform.
const PENDING_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// The pending row's payload: the client's pending login and where to go afterwards.
#[derive(Serialize, Deserialize)]
struct Pending {
    login: PendingLogin,
    next: String,
}

fn login_cookie(value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // `SameSite=Lax` is sent on the identity platform's top-level redirect back to us; the
    // path keeps the cookie to the one route that reads it.
    HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/auth/callback; Max-Age={max_age}{secure}"
    ))
    .expect("a cookie of base64url and fixed text is a valid header value")
}

/// Starts a sign-in: the pending login stored, the browser sent to the authorize endpoint.
pub(super) async fn begin(state: &AppState, sign_in: &EntraSignIn, next: &str) -> Response {
    let client = match sign_in.client().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(message = "Entra ID sign-in is unavailable.", error = %e);
            return error_page(
                None,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("sign-in with Entra ID is unavailable: {e}"),
            );
        }
    };
    let (url, login) = match client.begin(sign_in.redirect_uri()) {
        Ok(begun) => begun,
        Err(e) => return error_page(None, StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Some(store) = state.service.sessions() else {
        return error_page(
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "this service keeps no sessions",
        );
    };
    let id = random_token();
    let now = Utc::now();
    let payload = Pending {
        login,
        next: next.to_string(),
    };
    let stored = store
        .create_session(&SessionRecord {
            id_sha256: digest(&id),
            caller: "oidc:pending".into(),
            role: PENDING.into(),
            csrf_token: serde_json::to_string(&payload).unwrap_or_default(),
            created_at: now,
            expires_at: now + PENDING_LIFETIME,
        })
        .await;
    if let Err(e) = stored {
        tracing::warn!(message = "A pending sign-in could not be stored.", error = %e);
        return error_page(
            None,
            StatusCode::SERVICE_UNAVAILABLE,
            "the sign-in could not be stored; try again",
        );
    }
    let mut response = see_other(url.as_str());
    response.headers_mut().insert(
        header::SET_COOKIE,
        login_cookie(&id, PENDING_LIFETIME.num_seconds(), state.secure_cookies),
    );
    response
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Completes a sign-in this browser began.
pub(super) async fn finish(
    state: &AppState,
    sign_in: &EntraSignIn,
    headers: &HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let refused = |status: StatusCode, message: &str| {
        let mut response = error_page(None, status, message);
        response.headers_mut().insert(
            header::SET_COOKIE,
            login_cookie("", 0, state.secure_cookies),
        );
        response
    };
    let Some(store) = state.service.sessions() else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "this service keeps no sessions",
        );
    };
    let Some(id) = cookie(headers, LOGIN_COOKIE) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "no sign-in was started from this browser (or it took too long); sign in again",
        );
    };
    let key = digest(id);
    let row = store.find_session(&key, Utc::now()).await;
    // Used once, whatever follows.
    let _ = store.delete_session(&key).await;
    let pending = match row {
        Ok(Some(r)) if r.role == PENDING => serde_json::from_str::<Pending>(&r.csrf_token).ok(),
        _ => None,
    };
    let Some(pending) = pending else {
        return refused(
            StatusCode::BAD_REQUEST,
            "this sign-in is not pending any more; sign in again",
        );
    };
    if let Some(error) = &query.error {
        // The identity platform's words, shown as text (the page escapes them).
        let description = query
            .error_description
            .as_deref()
            .and_then(|d| d.lines().next())
            .unwrap_or("");
        return refused(
            StatusCode::FORBIDDEN,
            &format!("Entra ID refused the sign-in ({error}): {description}"),
        );
    }
    let (Some(code), Some(returned_state)) = (&query.code, &query.state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "the callback carries no code or state",
        );
    };
    let client = match sign_in.client().await {
        Ok(c) => c,
        Err(e) => return refused(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let signed_in = match client.finish(code, returned_state, &pending.login).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(message = "An Entra ID sign-in was refused.", error = %e);
            return refused(StatusCode::FORBIDDEN, &format!("sign-in refused: {e}"));
        }
    };
    match session::open(store, &signed_in.caller, signed_in.role).await {
        Ok(opened) => {
            tracing::info!(message = "Signed in with Entra ID.", caller = %signed_in.caller.name, role = signed_in.role.as_str());
            let mut response = see_other(super::local_path(&pending.next));
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, opened.set_cookie(state.secure_cookies));
            headers.append(
                header::SET_COOKIE,
                login_cookie("", 0, state.secure_cookies),
            );
            response.into_response()
        }
        Err(e) => {
            tracing::warn!(message = "A review-page session could not be opened.", error = %e);
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "the session could not be stored; try again",
            )
        }
    }
}
