//! `riposte serve`, transport half: binds `[server] listen`, serves the API around a
//! service and drains in-flight requests on Ctrl-C or SIGTERM. Building the service (store,
//! engine, workers) is the caller's; this takes it ready-made.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tracing::info;

use riposte::engine::service::ServiceApi;
use riposte::server;
use riposte::server::ServerSettings;

/// `riposte serve`: the service (store, workers) and its API, until Ctrl-C or SIGTERM. The
/// worker stops taking new work; steps in flight finish, and leased runs left unfinished are
/// resumed from the journal by the next start.
pub async fn run(config: &riposte::config::Config) -> anyhow::Result<ExitCode> {
    let app = riposte::app::App::new(config.clone())?;
    let service = app.service().await?;
    let sign_in = config.server.oidc.clone().map(|oidc| {
        server::oidc::EntraSignIn::new(
            oidc,
            &config.azure,
            app.connectors.http().clone(),
            &config.server.public_url(),
        )
    });
    // Listen first: a service that cannot serve its API must not start working runs.
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let worker = service.spawn_worker();
    let code = serve_on(listener, service, &config.server, sign_in).await;
    worker.stop().await;
    code
}

/// Serves `service` on a listener already bound until Ctrl-C or SIGTERM; returns when
/// in-flight requests are answered.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    service: Arc<dyn ServiceApi>,
    settings: &ServerSettings,
    sign_in: Option<server::oidc::EntraSignIn>,
) -> anyhow::Result<ExitCode> {
    server::install_metrics();
    if settings.tokens.is_empty() {
        eprintln!(
            "note: no [[server.tokens]] are configured, so every /v1 route will answer 401; create one with `riposte token new --name NAME --role ROLE`"
        );
    }
    let addr = listener.local_addr()?;
    if let Some(s) = &sign_in {
        eprintln!(
            "review page sign-in: Entra ID, callback {} (register it on the app)",
            s.redirect_uri()
        );
    }
    eprintln!("riposte API listening on http://{addr} (Ctrl-C stops it)");
    eprintln!("review page: http://{addr}/");
    info!(message = "API listening.", %addr);
    server::serve_with(
        listener,
        server::router_with_sign_in(service, settings, sign_in),
        shutdown_signal(),
        settings,
    )
    .await
    .context("the API server failed")?;
    info!(message = "API stopped; in-flight requests were answered.");
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C, or on SIGTERM (what a container runtime or systemd sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
