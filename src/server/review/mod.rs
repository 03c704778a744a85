//! The review page (DESIGN.md §3 "Review page"), on the API's listener: server-rendered HTML,
//! no JavaScript, for the people who read a plan and decide.
//!
//! | route | needs |
//! |---|---|
//! | `GET /` | a session (viewer or higher): the runs, those awaiting approval first |
//! | `GET /runs/{id}` | a session: plan, policy reasons, timeline, evidence, the buttons the role may use |
//! | `POST /runs/{id}/approve`, `/reject`, `/rollback` | a session with the approver role, the form's CSRF token |
//! | `POST /runs/{id}/cancel` | a session with the responder role, the form's CSRF token |
//! | `GET`, `POST /auth/login` | nothing: an API token typed into the form opens a session; with `[server.oidc]` `GET` goes to Entra ID and the token form is refused |
//! | `POST /auth/logout` | a session, the form's CSRF token |
//! | `GET /auth/callback` | the end of an Entra ID sign-in (`[server.oidc]`; 404 without it) |
//!
//! Without a session every page answers `303` to `/auth/login` and shows nothing of the tenant.
//! Each action calls the same [`ServiceApi`](crate::engine::service::ServiceApi) method as
//! `/v1` with the session's caller, so the rules (the requester may not approve, the plan hash
//! must match) are the service's, not the page's.

mod csrf;
mod entra;
mod pages;
pub(crate) mod session;
mod style;

use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use super::settings::Role;
use crate::engine::service::ServiceError;
use session::{NotSignedIn, SignedIn};

/// Runs the list shows.
const LIST_LIMIT: u32 = 200;

/// The page's routes, merged into the API's router (same state, same middleware).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/runs/{id}", get(show))
        .route("/runs/{id}/{op}", post(press))
        .route("/auth/login", get(login_form).post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/callback", get(callback))
}

/// An HTML answer. The policy forbids every source but the page's own inline style and
/// same-origin form targets, so even markup that slipped through escaping could run nothing;
/// `no-store` keeps tenant data out of shared caches and the back button after sign-out.
fn page(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn error_page(who: Option<&SignedIn>, status: StatusCode, message: &str) -> Response {
    page(status, pages::error(who, status, message))
}

fn service_error(who: &SignedIn, e: ServiceError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_page(Some(who), status, &e.to_string())
}

impl IntoResponse for NotSignedIn {
    fn into_response(self) -> Response {
        let next: String = url::form_urlencoded::byte_serialize(self.next.as_bytes()).collect();
        see_other(&format!("/auth/login?next={next}"))
    }
}

/// Where to go after sign-in: a local path only (`/…`, not `//host` or `/\host`, which
/// browsers read as another site), else `/`.
fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { "/" }
}

async fn list(State(state): State<AppState>, who: SignedIn) -> Response {
    match state.service.runs(LIST_LIMIT, None).await {
        Ok(mut runs) => {
            pages::order_for_list(&mut runs);
            page(StatusCode::OK, pages::list(&who, &runs, LIST_LIMIT))
        }
        Err(e) => service_error(&who, e),
    }
}

async fn show(State(state): State<AppState>, who: SignedIn, Path(id): Path<String>) -> Response {
    match state.service.run(&id).await {
        Ok(view) => {
            // The findings come from the evidence bytes; a run whose evidence cannot be read
            // still shows everything else.
            let found = crate::report::for_run(state.service.as_ref(), &id)
                .await
                .ok();
            page(StatusCode::OK, pages::run(&who, &view, found.as_ref()))
        }
        Err(e) => service_error(&who, e),
    }
}

/// The fields of the action forms.
#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    plan_hash: Option<String>,
}

/// What a button asks for.
#[derive(Debug, Clone, Copy)]
enum Op {
    Approve,
    Reject,
    Rollback,
    Cancel,
}

impl Op {
    /// The least role, as `/v1` requires it for the same operation.
    fn role(self) -> Role {
        match self {
            Op::Approve | Op::Reject | Op::Rollback => Role::Approver,
            Op::Cancel => Role::Responder,
        }
    }
}

/// One button press: session (by extraction), same site, role, CSRF token, then the service;
/// `303` back to the run, whose page shows the new status.
async fn act(
    state: AppState,
    who: SignedIn,
    headers: HeaderMap,
    id: String,
    form: Result<Form<ActionForm>, FormRejection>,
    op: Op,
) -> Response {
    if !csrf::same_site(&headers) {
        return error_page(
            Some(&who),
            StatusCode::FORBIDDEN,
            "this form was sent from another site",
        );
    }
    if who.role < op.role() {
        let refusal = ApiError::Forbidden {
            needed: op.role(),
            held: who.role,
        };
        return error_page(Some(&who), StatusCode::FORBIDDEN, &refusal.to_string());
    }
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return error_page(Some(&who), StatusCode::BAD_REQUEST, &e.body_text()),
    };
    if !csrf::token_matches(&who.csrf_token, form.csrf.as_deref()) {
        return error_page(
            Some(&who),
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong; reload the page and try again",
        );
    }
    let service = &state.service;
    let done = match op {
        Op::Approve => {
            let hash = form.plan_hash.unwrap_or_default();
            service.approve(&id, &hash, &who.caller).await.map(drop)
        }
        Op::Reject => service.reject(&id, &who.caller).await.map(drop),
        Op::Rollback => service.rollback(&id, &who.caller).await.map(drop),
        Op::Cancel => service.cancel(&id, &who.caller).await.map(drop),
    };
    match done {
        Ok(()) => see_other(&format!("/runs/{}", pages::segment(&id))),
        Err(e) => service_error(&who, e),
    }
}

/// `POST /runs/{id}/{approve|reject|rollback|cancel}`: the button's operation; any other name
/// is not a route.
async fn press(
    State(state): State<AppState>,
    who: SignedIn,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let op = match name.as_str() {
        "approve" => Op::Approve,
        "reject" => Op::Reject,
        "rollback" => Op::Rollback,
        "cancel" => Op::Cancel,
        _ => return error_page(Some(&who), StatusCode::NOT_FOUND, "no such page"),
    };
    act(state, who, headers, id, form, op).await
}

#[derive(Debug, Default, Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// The sign-in form, or with `[server.oidc]` straight on to Entra ID.
async fn login_form(
    State(state): State<AppState>,
    query: Result<Query<NextQuery>, QueryRejection>,
) -> Response {
    let next = query.map(|Query(q)| q.next).unwrap_or_default();
    if let Some(sign_in) = &state.sign_in {
        return entra::begin(&state, sign_in, local_path(&next)).await;
    }
    page(StatusCode::OK, pages::login(None, local_path(&next)))
}

#[derive(Debug, Default, Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    next: String,
}

/// Checks the token exactly as the bearer path does ([`Tokens`](super::auth::Tokens)); a
/// session needs at least the viewer role (an `ingest` token may only post alerts).
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if !csrf::same_site(&headers) {
        return error_page(
            None,
            StatusCode::FORBIDDEN,
            "this form was sent from another site",
        );
    }
    if state.sign_in.is_some() {
        // With Entra ID configured, people sign in as themselves, not as a shared token.
        return error_page(
            None,
            StatusCode::FORBIDDEN,
            "this service signs people in with Entra ID; open /auth/login",
        );
    }
    let form = match form {
        Ok(Form(form)) => form,
        Err(e) => return error_page(None, StatusCode::BAD_REQUEST, &e.body_text()),
    };
    let next = local_path(&form.next);
    let refused =
        |status: StatusCode, message: &str| page(status, pages::login(Some(message), next));
    let (caller, role) = match state
        .tokens
        .authorize_as(Some(form.token.trim()), Role::Viewer)
    {
        Ok(found) => found,
        Err(ApiError::Forbidden { held, .. }) => {
            return refused(
                StatusCode::FORBIDDEN,
                &format!(
                    "this token's role ({held}) may not read runs; sign in with a viewer token or higher"
                ),
            );
        }
        Err(_) => return refused(StatusCode::UNAUTHORIZED, "that token is not known"),
    };
    let Some(store) = state.service.sessions() else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "this service keeps no sessions",
        );
    };
    match session::open(store, &caller, role).await {
        Ok(opened) => {
            let mut response = see_other(next);
            response
                .headers_mut()
                .insert(header::SET_COOKIE, opened.set_cookie(state.secure_cookies));
            response
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

#[derive(Debug, Default, Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

/// Deletes the session's row (the old cookie then opens nothing) and expires the cookie.
async fn logout(
    State(state): State<AppState>,
    who: SignedIn,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    if !csrf::same_site(&headers) || !csrf::token_matches(&who.csrf_token, csrf.as_deref()) {
        return error_page(
            Some(&who),
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong; reload the page and try again",
        );
    }
    let deleted = match state.service.sessions() {
        Some(store) => store.delete_session(&who.id_sha256).await,
        None => Ok(false),
    };
    if let Err(e) = deleted {
        tracing::warn!(message = "A review-page session could not be deleted.", error = %e);
        return error_page(
            Some(&who),
            StatusCode::SERVICE_UNAVAILABLE,
            "the session could not be ended; try again",
        );
    }
    let mut response = see_other("/auth/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::expired_cookie(state.secure_cookies),
    );
    response
}

/// The end of an Entra ID sign-in; without `[server.oidc]` there is nothing to complete.
async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<entra::CallbackQuery>, QueryRejection>,
) -> Response {
    let Some(sign_in) = state.sign_in.clone() else {
        return error_page(
            None,
            StatusCode::NOT_FOUND,
            "OIDC sign-in is not configured; sign in with an API token",
        );
    };
    match query {
        Ok(query) => entra::finish(&state, &sign_in, &headers, query).await,
        Err(e) => error_page(None, StatusCode::BAD_REQUEST, &e.body_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_local_path_is_a_place_to_go_after_sign_in() {
        assert_eq!(local_path("/runs/abc"), "/runs/abc");
        assert_eq!(local_path("/"), "/");
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "runs",
            "/a\nb",
        ] {
            assert_eq!(local_path(bad), "/", "{bad:?}");
        }
    }
}
