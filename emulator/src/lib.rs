//! A faithful local Entra/Graph/ARM/Log Analytics/Lacework tenant for tests, demo and dev.
//!
//! One listener serves every API under its real path shape, so a client only swaps base URLs.
//! It follows `reference/azure-api.md`: status codes, bodies, error shapes, throttling and
//! long-running operations, because every test trusts it.
//!
//! # Routes
//! - Entra: `POST /{tenant}/oauth2/v2.0/token` (client credentials: secret in the form or HTTP
//!   Basic, or a PS256/RS256 certificate assertion; the authorization code + PKCE of the review
//!   page's sign-in, with [`oidc`]'s OpenID configuration, JWKS and authorize user picker);
//!   IMDS `GET /metadata/identity/oauth2/token` (`Metadata: true`); App Service `GET /msi/token`
//!   (`X-IDENTITY-HEADER`).
//! - Graph `/v1.0` and `/beta`: users (GET with `$select`, PATCH, revokeSignInSessions,
//!   memberOf, transitiveMemberOf/microsoft.graph.directoryRole, resetPassword + operation status), beta
//!   authentication/requirements, groups and members `$ref`, riskyUsers confirmCompromised,
//!   security/alerts_v2, conditionalAccess/policies, `$batch`.
//! - ARM (`api-version` required): any seeded resource by id, snapshots (PUT as a long-running
//!   operation, GET, DELETE), Compute operation status, role assignments (list, GET, PUT,
//!   DELETE) and locks (GET, PUT, DELETE) at any scope, the Activity Log.
//! - Log Analytics `/v1/workspaces/{customerId}/query`; Lacework `/api/v2/access/tokens`,
//!   `/api/v2/Alerts`, `/api/v2/Alerts/{id}?scope=Details`.
//!
//! # Control routes (no token, never logged or faulted)
//! - `GET /_emulator/requests[?since=SEQ]` → `[LoggedRequest]`; `DELETE` empties it (204).
//! - `GET /_emulator/state` → `{tenant_id, users, groups, directory_roles,
//!   conditional_access_policies, snapshots, locks, role_assignments, counters}`.
//! - `POST /_emulator/webhooks/{name}`: a Teams (or, for names starting `slack`, Slack)
//!   incoming webhook; `GET /_emulator/webhooks[/{name}]` lists what it accepted, `DELETE`
//!   empties it (see [`webhooks`]).
//! - `POST /_emulator/faults` with a [`FaultSpec`] → 201 [`Fault`] (400 `{"error":{code,message}}`
//!   when invalid); `GET` lists them; `DELETE` removes all (204).
//!
//! Architecture Invariant: nothing outside tests, `riposte emulator` and `riposte demo` uses
//! this module; production code paths never reach it.

// Handlers bail out early with the finished HTTP error response; boxing it would only add noise.
#![forbid(unsafe_code)]
#![allow(clippy::result_large_err)]

mod arm;
mod auth;
mod control;
pub mod faults;
mod graph;
mod http;
mod kql;
mod lacework;
pub mod log;
mod log_analytics;
pub mod oidc;
mod state;
pub mod tenant;
pub mod webhooks;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinHandle, JoinSet};

pub use faults::{Fault, FaultKind, FaultSpec};
pub use log::LoggedRequest;
pub use tenant::{Tenant, TenantError};

use faults::Faults;
use http::{Api, Ctx, Req};
use state::State;

/// Largest request body accepted; far above anything the APIs take.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Everything the request handlers share.
pub(crate) struct Shared {
    /// The tenant as it is now.
    state: Mutex<State>,
    /// Signs and checks access tokens.
    issuer: auth::Issuer,
    /// Review-page sign-in: id-token keys, authorization codes.
    oidc: oidc::Oidc,
    /// Installed faults.
    faults: Mutex<Faults>,
    /// Every request answered, in order.
    log: Mutex<Vec<LoggedRequest>>,
    /// Requests received but not answered yet (held by a latency fault, or being handled), by
    /// `seq`: the log only learns of a request once it is answered, and a test that must act
    /// while a request is on the wire (pause or kill its sender) needs to see it arrive.
    in_flight: Mutex<BTreeMap<u64, LoggedRequest>>,
    /// Last request sequence number handed out.
    seq: AtomicU64,
    /// Messages posted to `/_emulator/webhooks/{name}`.
    webhooks: Mutex<webhooks::Sink>,
}

impl Shared {
    fn bump(&self, kind: &str) {
        self.state.lock().expect("state lock").bump(kind);
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn record(&self, entry: LoggedRequest) {
        self.log.lock().expect("log lock").push(entry);
    }
}

/// Lists a request as in flight for as long as it lives. A guard rather than a call at the
/// end of `handle`, so a request whose client went away (its future dropped) leaves the list too.
struct InFlight<'a> {
    shared: &'a Shared,
    seq: u64,
}

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared, entry: &LoggedRequest) -> InFlight<'a> {
        shared
            .in_flight
            .lock()
            .expect("in-flight lock")
            .insert(entry.seq, entry.clone());
        InFlight {
            shared,
            seq: entry.seq,
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.shared.in_flight.lock() {
            in_flight.remove(&self.seq);
        }
    }
}

/// The emulator server.
pub struct Emulator;

impl Emulator {
    /// Binds `addr` (use port 0 for an ephemeral port) and serves `tenant` until the handle is
    /// shut down. Must be called inside a Tokio runtime.
    pub fn start(addr: SocketAddr, tenant: Tenant) -> std::io::Result<EmulatorHandle> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(tenant)),
            issuer: auth::Issuer::new(),
            oidc: oidc::Oidc::default(),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            in_flight: Mutex::new(BTreeMap::new()),
            seq: AtomicU64::new(0),
            webhooks: Mutex::new(webhooks::Sink::default()),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, shared.clone(), stopped));
        Ok(EmulatorHandle {
            addr,
            shared,
            stop,
            task,
        })
    }
}

/// A running emulator.
pub struct EmulatorHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl EmulatorHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (loopback when bound to an unspecified address).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            "127.0.0.1".parse().expect("loopback parses")
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// Direct access to state, log and faults for tests in the same process.
    pub fn state(&self) -> EmulatorState {
        EmulatorState(self.shared.clone())
    }

    /// Stops accepting, closes open connections and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// In-process view of a running emulator (the same data the control routes serve).
#[derive(Clone)]
pub struct EmulatorState(Arc<Shared>);

impl EmulatorState {
    /// Messages the webhook sink `name` accepted (every sink's with `None`), in order.
    pub fn webhook_messages(&self, name: Option<&str>) -> Vec<webhooks::WebhookMessage> {
        self.0.webhooks.lock().expect("webhooks lock").list(name)
    }

    /// The state document of `GET /_emulator/state`.
    pub fn view(&self) -> Value {
        self.0.state.lock().expect("state lock").view()
    }

    /// How many times an effect happened (`user_disabled`, `sessions_revoked`, …).
    pub fn counter(&self, kind: &str) -> u64 {
        self.counters().get(kind).copied().unwrap_or(0)
    }

    /// All effect counters.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.0.state.lock().expect("state lock").counters.clone()
    }

    /// The request log.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.0.log.lock().expect("log lock").clone()
    }

    /// The requests received and not answered yet, oldest first (their `status` is null).
    /// An answered request is in the log before it leaves this list.
    pub fn in_flight(&self) -> Vec<LoggedRequest> {
        self.0
            .in_flight
            .lock()
            .expect("in-flight lock")
            .values()
            .cloned()
            .collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.0.log.lock().expect("log lock").clear();
    }

    /// Installs a fault.
    pub fn add_fault(&self, spec: FaultSpec) -> Result<Fault, String> {
        self.0.faults.lock().expect("faults lock").add(spec)
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.0.faults.lock().expect("faults lock").clear();
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stopped: oneshot::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// What to do with one request.
enum Outcome {
    Respond(Response<Body>),
    /// Close the connection without a response (fault `drop`).
    Drop,
}

/// Serves one connection with hyper directly, so a `drop` fault can close the socket mid-request.
async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let dropped = Arc::new(Notify::new());
    let signal = dropped.clone();
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let shared = shared.clone();
        let signal = signal.clone();
        async move {
            // Handled in a task of its own: like Azure, the tenant carries out a request that
            // reached it even when the client goes away before the answer (a client killed
            // mid-request leaves an effect its successor must find by reading state back).
            let handled = tokio::spawn(async move { handle(&shared, request).await }).await;
            match handled {
                Ok(Outcome::Respond(response)) => Ok::<_, Infallible>(response),
                Ok(Outcome::Drop) => {
                    signal.notify_one();
                    std::future::pending().await
                }
                Err(_) => Ok(http::json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &json!({"error": {"code": "InternalServerError", "message": "The emulator failed to handle the request."}}),
                )),
            }
        }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        _ = dropped.notified() => {}
    }
}

async fn handle(shared: &Arc<Shared>, request: Request<hyper::body::Incoming>) -> Outcome {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(Body::new(body), MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return Outcome::Respond(http::json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"error": {"code": "RequestTooLarge", "message": "The request body is too large."}}),
            ));
        }
    };
    let path = parts.uri.path().to_owned();
    let api = Api::of(&path);
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let correlation_header = if api == Api::Arm {
        "x-ms-client-request-id"
    } else {
        "client-request-id"
    };
    let client_request_id = parts
        .headers
        .get(correlation_header)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let req = Req {
        method: parts.method,
        path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body,
        ctx: Ctx {
            request_id: http::new_id(),
            client_request_id,
            base_url: format!("http://{host}"),
            received: chrono::Utc::now(),
        },
    };
    if api == Api::Control {
        return Outcome::Respond(control::handle(shared, &req));
    }
    let seq = shared.next_seq();
    let mut entry = LoggedRequest::new(seq, api, &req);
    // Dropped last, after `record`: a request is always in the log or in flight.
    let _in_flight = InFlight::enter(shared, &entry);
    let decision = shared
        .faults
        .lock()
        .expect("faults lock")
        .decide(req.method.as_str(), &req.path);
    if decision.latency_ms > 0 {
        entry.fault = Some("latency".into());
        tokio::time::sleep(std::time::Duration::from_millis(decision.latency_ms)).await;
    }
    let mut response = match decision.action {
        Some(fault) if fault.kind == FaultKind::Drop => {
            entry.fault = Some("drop".into());
            shared.record(entry);
            return Outcome::Drop;
        }
        Some(fault) => {
            entry.fault = Some(
                match fault.kind {
                    FaultKind::Throttle => "throttle",
                    _ => "error",
                }
                .into(),
            );
            fault_response(api, &req, &fault)
        }
        None => dispatch(shared, api, &req, seq).await,
    };
    decorate(shared, api, &req, &mut response);
    entry.status = Some(response.status().as_u16());
    shared.record(entry);
    Outcome::Respond(response)
}

/// Routes a request to its API.
async fn dispatch(shared: &Shared, api: Api, req: &Req, seq: u64) -> Response<Body> {
    match api {
        Api::Entra if oidc::serves(req) => oidc::handle(shared, req),
        Api::Entra => auth::token_endpoint(shared, req),
        Api::Imds => auth::imds(shared, req),
        Api::AppService => auth::app_service(shared, req),
        Api::Graph => graph::handle(shared, req, seq).await,
        Api::Arm => arm::handle(shared, req),
        Api::LogAnalytics => log_analytics::handle(shared, req),
        Api::Lacework => lacework::handle(shared, req),
        Api::Control | Api::Unknown => http::json(
            StatusCode::NOT_FOUND,
            &json!({"error": {"code": "NotFound", "message": format!("No emulated API serves '{}'.", req.path)}}),
        ),
    }
}

/// The answer to a throttle or error fault, in the shape of the API the request was for.
pub(crate) fn fault_response(api: Api, req: &Req, fault: &FaultSpec) -> Response<Body> {
    let throttle = fault.kind == FaultKind::Throttle;
    let status = if throttle {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        fault
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
    };
    let retry_after = fault.retry_after.or(throttle.then_some(1));
    let mut response = match api {
        Api::Graph if throttle => graph::error(
            req,
            status,
            "TooManyRequests",
            "Too many requests from Identifier under category. Please try again later.",
        ),
        Api::Graph => graph::error(
            req,
            status,
            "ServiceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        ),
        Api::Arm if throttle => {
            let code = if req.path.to_ascii_lowercase().starts_with("/subscriptions/") {
                "SubscriptionRequestsThrottled"
            } else {
                "TooManyRequests"
            };
            arm::error(
                status,
                code,
                "Number of requests exceeded the limit. Please try again after some time.",
            )
        }
        Api::Arm => arm::error(
            status,
            "ServiceUnavailable",
            "The server is currently unable to handle the request. Please try again later.",
        ),
        Api::Entra => auth::entra_error(
            req,
            status,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
        ),
        Api::LogAnalytics => log_analytics::error(
            status,
            if throttle {
                "ThrottledError"
            } else {
                "ServiceUnavailableError"
            },
            "The service is temporarily unavailable. Please retry later.",
        ),
        Api::Lacework => lacework::error(status, "Service temporarily unavailable"),
        _ => http::json(
            status,
            &json!({"error": if throttle { "too_many_requests" } else { "service_unavailable" },
                    "error_description": "Injected fault."}),
        ),
    };
    if let Some(seconds) = retry_after {
        http::set_header(&mut response, "retry-after", &seconds.to_string());
    }
    response
}

/// Adds the headers each API sends on every response: request ids and echoed correlation ids.
fn decorate(shared: &Shared, api: Api, req: &Req, response: &mut Response<Body>) {
    match api {
        Api::Graph => graph::decorate(req, response),
        Api::Arm => {
            let write = !matches!(req.method.as_str(), "GET" | "HEAD");
            let left = {
                let mut state = shared.state.lock().expect("state lock");
                let bucket = if write {
                    &mut state.arm_writes_left
                } else {
                    &mut state.arm_reads_left
                };
                *bucket = bucket.saturating_sub(1);
                *bucket
            };
            arm::decorate(req, response, write, left);
        }
        _ => {}
    }
    if !response.headers().contains_key(header::DATE) {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(value) = HeaderValue::from_str(&now) {
            response.headers_mut().insert(header::DATE, value);
        }
    }
}

/// The `riposte.toml` lines that point riposte at an emulator serving the bundled fixture
/// tenant (its app registration, Lacework key, MFA group, workspace and break-glass account).
/// The demo and the tests use it; real deployments never do.
/// The address of the webhook sink `name` (a Teams webhook; a Slack one when `name` starts
/// with `slack`).
pub fn webhook_sink_url(base_url: &str, name: &str) -> String {
    format!("{base_url}/_emulator/webhooks/{name}")
}

/// [`client_config_toml`] with notifications: the `notify.webhook` action and `[notify]`
/// service events both post to the webhook sink `name`.
pub fn client_config_toml_with_notify(base_url: &str, name: &str) -> String {
    let sink = webhook_sink_url(base_url, name);
    // `[actions]` is the last table of the client configuration, so the key lands in it.
    format!(
        "{}notify_webhook_url = \"{sink}\"\n\n[notify]\nwebhook_url = \"{sink}\"\n",
        client_config_toml(base_url)
    )
}

pub fn client_config_toml(base_url: &str) -> String {
    format!(
        r#"[azure]
tenant_id = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11"
client_id = "c0ffee00-1111-4222-8333-444455556666"
client_secret = "emulator-secret"
authority_host = "{base_url}"
graph_endpoint = "{base_url}"
arm_endpoint = "{base_url}"
log_analytics_endpoint = "{base_url}"

[lacework]
endpoint = "{base_url}"
key_id = "CONTOSO_1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B1C2D3E4"
secret = "_emulator-lacework-secret"

[guardrails]
break_glass = ["a1e7d1c2-5b3f-4c8e-9d21-000000000006"]

[actions]
mfa_group_id = "9f0c7e3a-1d2b-4c5e-8f6a-000000000101"
log_analytics_workspace = "5c9e2a71-3f4b-4d8e-a6c1-000000000201"
"#
    )
}
