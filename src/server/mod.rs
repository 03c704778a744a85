//! The HTTP API of `riposte serve` (DESIGN.md §3): authentication, JSON and status codes
//! around an [`Arc<dyn ServiceApi>`](ServiceApi).
//!
//! Architecture Invariant: `server` holds no business rule. Whether an alert is a
//! duplicate, a plan hash matches or an approver may approve is the service's answer; the
//! server only maps it to HTTP. And only `server` knows axum.
//!
//! | route | least role |
//! |---|---|
//! | `POST /v1/alerts/{source}` | ingest or responder (`?token=` only for ingest tokens) |
//! | `GET /v1/runs`, `GET /v1/runs/{id}` | viewer |
//! | `GET /v1/runs/{id}/evidence`, `GET /v1/runs/{id}/evidence/{step}[/{n}]` | viewer |
//! | `GET /v1/runs/{id}/report[?format=html\|md]` | viewer |
//! | `POST /v1/runs/{id}/approve`, `/reject`, `/rollback` | approver |
//! | `POST /v1/playbooks/{name}/invoke`, `POST /v1/actions/{name}` | responder |
//! | `GET /metrics` | viewer |
//! | `GET /healthz`, `GET /readyz` | none |
//! | `GET /`, `/runs/{id}`, `/auth/*` | the review page's session ([`review`]) |

mod auth;

pub use auth::token_digest;
mod error;
mod evidence;
pub mod oidc;
pub(crate) mod review;
mod routes;
mod settings;
pub mod signature;
mod telemetry;
mod timeouts;

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use error::ApiError;
pub use settings::{HmacSettings, OidcSettings, Role, ServerSettings, TokenEntry};
pub use telemetry::install_metrics;

use crate::engine::service::ServiceApi;
use auth::Tokens;

/// What every handler shares.
pub(crate) struct Shared {
    service: Arc<dyn ServiceApi>,
    tokens: Tokens,
    hmac: Option<HmacSettings>,
    max_body_bytes: usize,
    read_timeout: std::time::Duration,
    /// Whether the review page's session cookie is `Secure` (see `review::session`).
    secure_cookies: bool,
    /// Sign-in with Entra ID, when `[server.oidc]` is configured.
    sign_in: Option<Arc<oidc::EntraSignIn>>,
}

pub(crate) type AppState = Arc<Shared>;

/// The API's routes around `service`, configured by `[server]`, with sign-in by API token.
pub fn router(service: Arc<dyn ServiceApi>, settings: &ServerSettings) -> Router {
    router_with_sign_in(service, settings, None)
}

/// [`router`] with the review page's sign-in through Entra ID when `sign_in` is given
/// (`[server.oidc]`; the wiring builds it, since it needs the `[azure]` authority and the
/// connectors' HTTP client).
pub fn router_with_sign_in(
    service: Arc<dyn ServiceApi>,
    settings: &ServerSettings,
    sign_in: Option<oidc::EntraSignIn>,
) -> Router {
    install_metrics();
    let state: AppState = Arc::new(Shared {
        service,
        tokens: Tokens::new(&settings.tokens),
        hmac: settings.hmac.clone(),
        max_body_bytes: settings.max_body_bytes,
        read_timeout: settings.read_timeout(),
        secure_cookies: review::session::secure_cookies(&settings.listen),
        sign_in: sign_in.map(Arc::new),
    });
    Router::new()
        .route("/v1/alerts", get(routes::list_alerts))
        .route("/v1/alerts/{source}", post(routes::ingest))
        .route("/v1/alerts/{id}/retry", post(routes::retry_alert))
        .route("/v1/runs", get(routes::list_runs))
        .route("/v1/runs/{id}", get(routes::show_run))
        .route("/v1/runs/{id}/approve", post(routes::approve))
        .route("/v1/runs/{id}/reject", post(routes::reject))
        .route("/v1/runs/{id}/rollback", post(routes::rollback))
        .route("/v1/runs/{id}/cancel", post(routes::cancel))
        .route("/v1/runs/{id}/evidence", get(evidence::list))
        .route("/v1/runs/{id}/evidence/{step}", get(evidence::first))
        .route("/v1/runs/{id}/evidence/{step}/{n}", get(evidence::nth))
        .route("/v1/runs/{id}/report", get(evidence::incident_report))
        .route("/v1/playbooks/{name}/invoke", post(routes::invoke_playbook))
        .route("/v1/actions/{name}", post(routes::invoke_action))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .merge(review::routes())
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            timeouts::body_within_time,
        ))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(telemetry::observe))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// returns once the requests already in flight have been answered (an alert being stored
/// when SIGTERM arrives still gets its 202). Taking the listener lets tests bind port 0;
/// the caller bounds the drain with a timeout if it must. Headers must arrive within the
/// default `[server] read_timeout_secs`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let timeout = ServerSettings::default().read_timeout();
    timeouts::serve(listener, router, shutdown, timeout).await
}

/// [`serve`] with the header read timeout of `settings` (read now: the future borrows
/// nothing, so it can be spawned).
pub fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    settings: &ServerSettings,
) -> impl Future<Output = io::Result<()>> + Send + 'static {
    timeouts::serve(listener, router, shutdown, settings.read_timeout())
}
