//! What the server tells operators: one access-log line and two metrics per request, and
//! the Prometheus recorder every module's `metrics` macros report to.
//!
//! The access log records the method, the matched route and the path — never the query
//! string, because ingestion accepts its token there (`?token=`).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::{Instrument, info, info_span, warn};

use crate::engine::service::ServiceStats;
use crate::store::{AlertStatus, RunStatus};

/// Upper bounds (seconds) of latency histograms: API calls are milliseconds, Graph and ARM
/// calls the engine times with the same suffix reach seconds under throttling.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder the first time it is called and returns its
/// handle every time. `metrics` allows one global recorder per process, and tests build many
/// routers in one process, hence once. Call it early (before the engine starts) so no
/// counter incremented at start-up is lost; [`super::router`] calls it too.
pub fn install_metrics() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            warn!(
                message = "Another metrics recorder was installed first; /metrics will not show riposte's figures."
            );
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "riposte_http_requests_total",
        "HTTP requests answered, by method, matched route and status."
    );
    describe_histogram!(
        "riposte_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and matched route."
    );
    describe_counter!(
        "riposte_alerts_received_total",
        "Alerts stored since the store was created."
    );
    describe_counter!(
        "riposte_alerts_duplicate_total",
        "Alert deliveries that were already stored (same source and id)."
    );
    describe_counter!(
        "riposte_alerts_rejected_total",
        "Alert deliveries refused because they did not parse."
    );
    describe_gauge!("riposte_runs", "Runs by status.");
}

/// Copies the service's own counts into the recorder just before a scrape, so `/metrics`
/// reports the store's figures (which survive restarts) rather than this process's tally.
pub(crate) fn record_stats(stats: &ServiceStats) {
    counter!("riposte_alerts_received_total").absolute(stats.alerts_received);
    counter!("riposte_alerts_duplicate_total").absolute(stats.alerts_duplicate);
    counter!("riposte_alerts_rejected_total").absolute(stats.alerts_rejected);
    for status in RunStatus::ALL {
        let n = stats
            .runs_by_status
            .get(status.as_str())
            .copied()
            .unwrap_or(0);
        gauge!("riposte_runs", "status" => status.as_str()).set(n as f64);
    }
    for status in AlertStatus::ALL {
        let n = stats
            .alerts_by_status
            .get(status.as_str())
            .copied()
            .unwrap_or(0);
        gauge!("riposte_alerts", "status" => status.as_str()).set(n as f64);
    }
}

/// A bounded label: arbitrary methods from the network must not create new series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: a span per request, the access-log line, the request counter and latency.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    // The route template (`/v1/runs/{id}`), not the path, keeps the label set bounded.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    // `uri.path()` excludes the query, where an ingestion token may be.
    let path = request.uri().path().to_owned();
    let span = info_span!("request", method, route = %route);
    let response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    counter!(
        "riposte_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status.to_string()
    )
    .increment(1);
    histogram!(
        "riposte_http_request_duration_seconds",
        "method" => method,
        "route" => route
    )
    .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        info!(
            message = "Request served.",
            %path,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0
        )
    });
    response
}
