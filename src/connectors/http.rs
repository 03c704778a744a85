//! The one door out (STYLE.md habit 5): the only place in the crate that builds a
//! `reqwest::Client`. Everything that leaves the process passes here, so timeouts, retries
//! that honour `Retry-After`, per-tenant rate budgets, request ids and error typing are
//! decided once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use rand::Rng;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::time::Instant;
use tracing::{info, warn};

use super::error::{ApiError, entra_hint};
use super::request::{Api, ApiRequest, HeaderError, Method, check_header};

/// Installs rustls' aws-lc-rs provider as the process default. Idempotent, so `main`, test
/// helpers and [`HttpClient::new`] can all call it without coordinating.
pub fn install_crypto_provider() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Err means another provider was installed first; that one keeps working.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Tuning of the HTTP layer. Defaults suit production; tests shrink the backoffs.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time to establish TCP + TLS; a dead endpoint fails fast and is retried.
    pub connect_timeout: Duration,
    /// Whole-request limit, so a stuck server cannot hold a step forever.
    pub timeout: Duration,
    /// Retries after the first attempt, for transient failures only.
    pub max_retries: u32,
    /// Longest `Retry-After` honoured; a server asking for more is waited on for this long.
    pub max_retry_after: Duration,
    /// First backoff step; doubles per attempt, with full jitter.
    pub base_backoff: Duration,
    /// Ceiling of one backoff step.
    pub max_backoff: Duration,
    /// Wait between polls of a long-running operation that sent no `Retry-After`.
    pub poll_interval: Duration,
    /// Polls of one long-running operation before riposte gives up on it.
    pub max_polls: u32,
    /// Total time riposte waits for one long-running operation.
    pub max_poll_time: Duration,
    /// Requests per second per tenant (0 = unlimited): keeps a burst of runs below Graph's
    /// and ARM's throttling thresholds instead of discovering them through 429s.
    pub rate_per_second: f64,
    /// ARM `x-ms-ratelimit-remaining-*` below this slows the next caller down.
    pub arm_remaining_threshold: i64,
    /// Delay added when the remaining ARM budget reaches zero; proportionally less above it.
    pub arm_max_slowdown: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_retries: 4,
            max_retry_after: Duration::from_secs(60),
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            max_polls: 360,
            max_poll_time: Duration::from_secs(1800),
            rate_per_second: 100.0,
            arm_remaining_threshold: 50,
            arm_max_slowdown: Duration::from_secs(5),
        }
    }
}

/// A successful (2xx/3xx) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    /// The headers callers act on: `location`, `azure-asyncoperation`, `retry-after`,
    /// `etag`, `content-type`, request ids. Others are dropped so nothing sensitive is kept.
    pub headers: HashMap<String, String>,
    /// Parsed JSON; `Null` for an empty body; a JSON string for a non-JSON body.
    pub body: Value,
    /// Microsoft's `request-id` / `x-ms-request-id`: what support asks for.
    pub request_id: Option<String>,
    /// The id riposte sent, the same across retries of one logical request.
    pub client_request_id: String,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
}

impl ApiResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The `Retry-After` the server asked for, capped by the caller.
    pub fn retry_after(&self, cap: Duration) -> Option<Duration> {
        self.header("retry-after")
            .and_then(parse_retry_after)
            .map(|d| d.min(cap))
    }
}

const KEPT_HEADERS: &[&str] = &[
    "location",
    "azure-asyncoperation",
    "retry-after",
    "etag",
    "content-type",
    "request-id",
    "client-request-id",
    "x-ms-request-id",
    "x-ms-client-request-id",
    "x-ms-correlation-request-id",
];

/// How a request proves who it is.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a SecretString),
}

/// A simple async token bucket: `rate` tokens per second, bursts up to `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket {
            rate,
            burst: burst.max(1.0),
            state: Mutex::new((burst.max(1.0), Instant::now())),
        }
    }

    /// Waits until one token is available and takes it.
    pub async fn acquire(&self) {
        if self.rate <= 0.0 {
            return;
        }
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * self.rate;
                state.0 = (state.0 + refill).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Per-tenant throttle state shared by every caller of that tenant.
#[derive(Debug)]
struct TenantBudget {
    /// The tenant (or Lacework account) it is for: the key of the shared throttle state.
    key: String,
    bucket: TokenBucket,
    /// Lowest ARM `x-ms-ratelimit-remaining-*` seen on the last ARM response; -1 = unknown.
    arm_remaining: AtomicI64,
}

struct Inner {
    client: reqwest::Client,
    opts: HttpOptions,
    budgets: Mutex<HashMap<String, Arc<TenantBudget>>>,
    /// Holds learnt by any replica; set once the store is open.
    shared: std::sync::OnceLock<Arc<dyn super::SharedThrottle>>,
}

/// The HTTP layer. Cheap to clone; clones share the connection pool and the budgets.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(opts: HttpOptions) -> Result<HttpClient, ApiError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            .user_agent(concat!("riposte/", env!("CARGO_PKG_VERSION")))
            // Redirects would carry the bearer token to wherever the server points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ApiError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(HttpClient {
            inner: Arc::new(Inner {
                client,
                opts,
                budgets: Mutex::new(HashMap::new()),
                shared: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Shares throttle holds with every replica through `shared` (for every clone of this
    /// client); a second call changes nothing.
    pub fn share_throttle(&self, shared: Arc<dyn super::SharedThrottle>) {
        let _ = self.inner.shared.set(shared);
    }

    pub fn options(&self) -> &HttpOptions {
        &self.inner.opts
    }

    fn budget(&self, key: &str) -> Arc<TenantBudget> {
        let mut budgets = self.inner.budgets.lock().unwrap_or_else(|p| p.into_inner());
        budgets
            .entry(key.to_string())
            .or_insert_with(|| {
                let rate = self.inner.opts.rate_per_second;
                Arc::new(TenantBudget {
                    key: key.to_string(),
                    bucket: TokenBucket::new(rate, (rate * 2.0).max(1.0)),
                    arm_remaining: AtomicI64::new(-1),
                })
            })
            .clone()
    }

    /// Sends one logical request, retrying transient failures. `budget_key` is the tenant
    /// (or Lacework account) whose rate budget the request spends.
    pub async fn send(
        &self,
        req: &ApiRequest,
        auth: Auth<'_>,
        budget_key: &str,
    ) -> Result<ApiResponse, ApiError> {
        self.send_with_headers(req, auth, budget_key, &[]).await
    }

    /// [`HttpClient::send`] with extra request headers (e.g. Graph's `Prefer`).
    pub async fn send_with_headers(
        &self,
        req: &ApiRequest,
        auth: Auth<'_>,
        budget_key: &str,
        extra: &[(&str, &str)],
    ) -> Result<ApiResponse, ApiError> {
        let budget = self.budget(budget_key);
        let client_request_id = uuid::Uuid::new_v4().to_string();
        let url = reqwest::Url::parse(&req.url)
            .map_err(|e| ApiError::Invalid(format!("`{}` is not a URL: {e}", req.url)))?;
        let shown_url = match req.api {
            // An incoming webhook's path and query are its credential.
            Api::Webhook => origin_only(&url),
            _ => redact_url(&url),
        };
        let attempt = |attempt| {
            self.attempt(
                req,
                auth,
                extra,
                &budget,
                &url,
                &shown_url,
                &client_request_id,
                attempt,
            )
        };
        let span = tracing::info_span!(
            "request",
            api = super::throttle::api_name(req.api),
            method = %req.method,
            url = %shown_url,
            client_request_id = %client_request_id,
        );
        tracing::Instrument::instrument(retrying(self.options(), &shown_url, attempt), span)
            .await
            .map_err(|failed| failed.outcome)
    }

    /// One attempt of [`HttpClient::send_with_headers`]. A failure says whether it may be
    /// retried: a 429 always (the API refused before acting), a transport error or a 5xx only
    /// when the request is safe to repeat.
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        req: &ApiRequest,
        auth: Auth<'_>,
        extra: &[(&str, &str)],
        budget: &TenantBudget,
        url: &reqwest::Url,
        shown_url: &str,
        client_request_id: &str,
        attempt: u32,
    ) -> Result<ApiResponse, Failed<ApiError>> {
        let opts = &self.inner.opts;
        budget.bucket.acquire().await;
        let api = super::throttle::api_name(req.api);
        if let Some(shared) = self.inner.shared.get()
            && let Some(until) = shared.held_until(&budget.key, api).await
        {
            let wait = (until - chrono::Utc::now())
                .to_std()
                .unwrap_or_default()
                .min(opts.max_retry_after);
            if !wait.is_zero() {
                warn!(
                    message = "Throttled (a replica was told to back off); waiting.",
                    api,
                    wait_ms = wait.as_millis() as u64
                );
                tokio::time::sleep(wait).await;
            }
        }
        if req.api == Api::Arm {
            let delay = arm_slowdown(opts, budget.arm_remaining.load(Ordering::Relaxed));
            if !delay.is_zero() {
                warn!(
                    message = "ARM budget low; slowing down.",
                    delay_ms = delay.as_millis() as u64
                );
                tokio::time::sleep(delay).await;
            }
        }
        let headers = build_headers(req, client_request_id, auth, extra).map_err(Failed::fatal)?;
        let mut builder = self
            .inner
            .client
            .request(to_reqwest_method(req.method), url.clone())
            .headers(headers);
        if let Some(body) = &req.body {
            builder = builder.json(body);
        } else if !req.method.is_read() && req.method != Method::Delete {
            // Graph rejects body-less POSTs without a length (411) behind some proxies.
            builder = builder.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        // After every wait above, and before each attempt: the caller may have lost its right
        // to send meanwhile (a worker's lease lapsed while this request queued).
        super::gate::check().map_err(|why| Failed::fatal(ApiError::Withheld(why)))?;
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let message = transport_message(&e);
                warn!(message = "Request failed.", method = %req.method, url = %shown_url, error = %message, attempt);
                return Err(Failed {
                    outcome: ApiError::Transient {
                        status: None,
                        message,
                        request_id: None,
                    },
                    retry: req.may_retry(),
                    retry_after: None,
                });
            }
        };
        let status = response.status().as_u16();
        let kept = kept_headers(response.headers());
        let request_id = response_request_id(response.headers());
        if req.api == Api::Arm
            && let Some(remaining) = arm_remaining(response.headers())
        {
            budget.arm_remaining.store(remaining, Ordering::Relaxed);
        }
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                return Err(Failed {
                    outcome: ApiError::Transient {
                        status: Some(status),
                        message: transport_message(&e),
                        request_id,
                    },
                    retry: req.may_retry(),
                    retry_after: None,
                });
            }
        };
        let body = parse_body(&bytes);
        info!(
            message = "Request sent.",
            method = %req.method,
            url = %shown_url,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            client_request_id = %client_request_id,
            attempt
        );
        if status < 400 {
            return Ok(ApiResponse {
                status,
                headers: kept,
                body,
                request_id,
                client_request_id: client_request_id.to_string(),
                attempts: attempt,
            });
        }
        let retry_after = kept
            .get("retry-after")
            .and_then(|v| parse_retry_after(v))
            .map(|d| d.min(opts.max_retry_after));
        if status == 429
            && let (Some(shared), Some(wait)) = (self.inner.shared.get(), retry_after)
            && let Ok(wait) = chrono::Duration::from_std(wait)
        {
            shared
                .hold(&budget.key, api, chrono::Utc::now() + wait)
                .await;
        }
        // A webhook is not an API we know: what it answered is summarised, not reflected
        // into plans, logs and the run page (it may echo the secret URL, or be written by
        // whoever controls the endpoint).
        let body = match req.api {
            Api::Webhook => Value::Null,
            _ => body,
        };
        Err(Failed {
            outcome: error_from_response(status, &body, request_id, retry_after),
            retry: is_retryable_status(status) && (req.may_retry() || status == 429),
            retry_after,
        })
    }

    /// Sends a pre-built request (token endpoints: oauth2's form posts, IMDS, Lacework's
    /// token). Token requests have no side effect, so transient failures are retried
    /// whatever the method. The body may hold secrets and is never logged.
    pub async fn send_raw(
        &self,
        request: oauth2::HttpRequest,
    ) -> Result<oauth2::HttpResponse, ApiError> {
        let opts = &self.inner.opts;
        let (parts, body) = request.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| ApiError::Invalid(format!("`{}` is not a URL: {e}", parts.uri)))?;
        let shown_url = redact_url(&url);
        let attempt = |attempt: u32| {
            let request = self
                .inner
                .client
                .request(parts.method.clone(), url.clone())
                .headers(parts.headers.clone())
                .body(body.clone());
            let (method, shown_url) = (&parts.method, &shown_url);
            async move {
                let response = match request.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        let message = transport_message(&e);
                        warn!(message = "Token request failed.", url = %shown_url, error = %message, attempt);
                        return Err(Failed {
                            outcome: Err(ApiError::Transient {
                                status: None,
                                message,
                                request_id: None,
                            }),
                            retry: true,
                            retry_after: None,
                        });
                    }
                };
                let status = response.status();
                let headers = response.headers().clone();
                let request_id = response_request_id(&headers);
                info!(message = "Token request sent.", method = %method, url = %shown_url, status = status.as_u16(), request_id = request_id.as_deref().unwrap_or(""), attempt);
                let bytes = response.bytes().await.map_err(|e| {
                    Failed::fatal(ApiError::Transient {
                        status: Some(status.as_u16()),
                        message: transport_message(&e),
                        request_id: request_id.clone(),
                    })
                    .map(Err)
                })?;
                let retry_after = headers
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                    .map(|d| d.min(opts.max_retry_after));
                let mut out = oauth2::HttpResponse::new(bytes.to_vec());
                *out.status_mut() = status;
                *out.headers_mut() = headers;
                if is_retryable_status(status.as_u16()) {
                    // Retried while attempts remain; the last one goes to oauth2 to be typed.
                    return Err(Failed {
                        outcome: Ok(out),
                        retry: true,
                        retry_after,
                    });
                }
                Ok(out)
            }
        };
        match retrying(opts, &shown_url, attempt).await {
            Ok(out) => Ok(out),
            Err(failed) => failed.outcome,
        }
    }
}

/// An adapter so the `oauth2` crate sends its token requests through [`HttpClient`]
/// (its own reqwest feature would pull in a second reqwest).
pub struct OAuthHttp<'a>(pub &'a HttpClient);

/// The error oauth2 sees from [`OAuthHttp`]; it wraps our typed error so nothing is lost.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OAuthTransportError(pub ApiError);

impl<'c> oauth2::AsyncHttpClient<'c> for OAuthHttp<'_> {
    type Error = OAuthTransportError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<oauth2::HttpResponse, OAuthTransportError>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move { self.0.send_raw(request).await.map_err(OAuthTransportError) })
    }
}

fn to_reqwest_method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

/// The header that carries our per-request GUID: Graph echoes `client-request-id`; ARM and
/// Log Analytics use the `x-ms-` form.
pub fn client_request_id_header(api: Api) -> Option<&'static str> {
    match api {
        Api::Graph => Some("client-request-id"),
        Api::Arm | Api::LogAnalytics => Some("x-ms-client-request-id"),
        Api::Lacework | Api::Webhook => None,
    }
}

/// The headers of one attempt. The request's own headers come first and are checked against
/// the reserved names, so the client's credential, request id and `Accept` always win.
fn build_headers(
    req: &ApiRequest,
    client_request_id: &str,
    auth: Auth<'_>,
    extra: &[(&str, &str)],
) -> Result<HeaderMap, ApiError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &req.headers {
        check_header(name, value)?;
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| HeaderError::InvalidName(name.clone()))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| HeaderError::InvalidValue(name.clone()))?;
        headers.insert(header, value);
    }
    if let Some(name) = client_request_id_header(req.api) {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(client_request_id)
                .map_err(|e| ApiError::Invalid(format!("client request id: {e}")))?,
        );
    }
    if let Auth::Bearer(token) = auth {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                ApiError::Invalid("the access token is not a valid header value".into())
            })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in extra {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ApiError::Invalid(format!("header `{name}`: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| ApiError::Invalid(format!("header `{name}` value: {e}")))?;
        headers.insert(name, value);
    }
    Ok(headers)
}

fn kept_headers(headers: &HeaderMap) -> HashMap<String, String> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*name).to_string(), v.to_string()))
        })
        .collect()
}

fn response_request_id(headers: &HeaderMap) -> Option<String> {
    ["request-id", "x-ms-request-id"]
        .iter()
        .find_map(|n| headers.get(*n).and_then(|v| v.to_str().ok()))
        .map(str::to_string)
}

/// Lowest of ARM's `x-ms-ratelimit-remaining-*` counters on a response, if any.
fn arm_remaining(headers: &HeaderMap) -> Option<i64> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ms-ratelimit-remaining-"))
        .filter_map(|(_, v)| v.to_str().ok()?.trim().parse::<i64>().ok())
        .min()
}

/// Delay before the next ARM call: zero above the threshold, growing linearly to
/// `arm_max_slowdown` as the remaining budget reaches zero.
fn arm_slowdown(opts: &HttpOptions, remaining: i64) -> Duration {
    let threshold = opts.arm_remaining_threshold;
    if remaining < 0 || threshold <= 0 || remaining >= threshold {
        return Duration::ZERO;
    }
    let missing = (threshold - remaining) as f64 / threshold as f64;
    opts.arm_max_slowdown.mul_f64(missing)
}

fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status) && status != 501
}

/// An attempt that did not give the answer: what to return if it is the last one, and
/// whether another may follow.
struct Failed<T> {
    /// The caller's result when no retry follows.
    outcome: T,
    /// Whether sending the request again is safe and may help.
    retry: bool,
    /// The server's `Retry-After` (already capped): it replaces the backoff step.
    retry_after: Option<Duration>,
}

impl<T> Failed<T> {
    /// A failure that no retry can mend.
    fn fatal(outcome: T) -> Failed<T> {
        Failed {
            outcome,
            retry: false,
            retry_after: None,
        }
    }

    fn map<U>(self, f: impl FnOnce(T) -> U) -> Failed<U> {
        Failed {
            outcome: f(self.outcome),
            retry: self.retry,
            retry_after: self.retry_after,
        }
    }
}

/// Runs `attempt` (given its number, 1 for the first) until it succeeds, fails for good, or
/// the [`retry_schedule`] runs out. A `Retry-After` takes the place of the backoff step but
/// still spends a retry, so the attempts stay bounded by `max_retries`.
async fn retrying<T, E, F, Fut>(
    opts: &HttpOptions,
    shown_url: &str,
    mut attempt: F,
) -> Result<T, Failed<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failed<E>>>,
{
    let mut made = 0;
    let mut retries = 0;
    (move || {
        made += 1;
        attempt(made)
    })
    .retry(retry_schedule(opts))
    .when(|failed: &Failed<E>| failed.retry)
    .adjust(|failed: &Failed<E>, step: Option<Duration>| {
        step.map(|step| failed.retry_after.unwrap_or(step))
    })
    .notify(|_: &Failed<E>, delay: Duration| {
        retries += 1;
        warn!(message = "Retrying.", url = %shown_url, delay_ms = delay.as_millis() as u64, retry = retries);
    })
    .await
}

/// The backoff steps of one logical request: `max_retries` of them, exponential from
/// `base_backoff` and capped at `max_backoff`, each drawn with full jitter.
fn retry_schedule(opts: &HttpOptions) -> FullJitter<backon::ExponentialBackoff> {
    FullJitter(
        ExponentialBuilder::new()
            .with_min_delay(opts.base_backoff)
            .with_max_delay(opts.max_backoff)
            .with_max_times(opts.max_retries as usize)
            .build(),
    )
}

/// Full jitter (uniform in `[0, step]`), so many callers failing together do not retry
/// together. backon's own jitter adds up to one more step on top (overshooting
/// `max_backoff`) and, without its `std` feature, draws from a fixed seed in every process.
#[derive(Debug)]
struct FullJitter<B>(B);

impl<B: Iterator<Item = Duration>> Iterator for FullJitter<B> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let ceiling = self.0.next()?;
        if ceiling.is_zero() {
            return Some(Duration::ZERO);
        }
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        Some(Duration::from_nanos(rand::rng().random_range(0..=nanos)))
    }
}

/// `Retry-After` as delta seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn transport_message(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL, whose query may carry a SAS signature.
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the response failed"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_string(),
    }
}

/// Scheme, host and path only: query strings can carry SAS signatures or codes.
/// Scheme, host and port only: how logs show a URL whose path is a secret.
pub fn origin_only(url: &reqwest::Url) -> String {
    format!(
        "{}://{}{}/…",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

pub fn redact_url(url: &reqwest::Url) -> String {
    let mut shown = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    );
    shown.push_str(url.path());
    if url.query().is_some() {
        shown.push_str("?…");
    }
    shown
}

/// Types an error body from any of the APIs: Entra's OAuth shape (`error` is a string), or
/// the `{"error": {"code", "message", …}}` shape of Graph, ARM and Log Analytics.
pub fn error_from_response(
    status: u16,
    body: &Value,
    header_request_id: Option<String>,
    retry_after: Option<Duration>,
) -> ApiError {
    use super::summary;
    if let Some(entra) = EntraErrorBody::from_value(body) {
        return entra.into_api_error(header_request_id);
    }
    let err = body.get("error");
    let code = summary::error_code(
        err.and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    // The body is the upstream's text: only its error message is repeated, summarised. A body
    // that is not JSON (an HTML error page, a proxy's text) is never shown at all.
    let mut message = err
        .and_then(|e| e.get("message"))
        // Lacework answers `{"message": "…"}` at the top level.
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .map(summary::error_message)
        .unwrap_or_default();
    // Log Analytics puts the useful part (which column, which line) in `details`.
    if let Some(details) = err.and_then(|e| e.get("details")).and_then(Value::as_array) {
        let parts: Vec<String> = details
            .iter()
            .take(3)
            .filter_map(|d| {
                let m = d.get("message").and_then(Value::as_str)?;
                let m = summary::error_message(m);
                Some(match d.get("code").and_then(Value::as_str) {
                    Some(c) => format!("{}: {m}", summary::error_code(c)),
                    None => m,
                })
            })
            .collect();
        if !parts.is_empty() {
            message = summary::error_message(&format!("{message} ({})", parts.join("; ")));
        }
    }
    if message.is_empty() {
        message = match body {
            Value::Null | Value::Object(_) => format!("HTTP {status}"),
            _ => format!("HTTP {status} (the answer was not a JSON error; not shown)"),
        };
    }
    let inner_id = err
        .and_then(|e| e.get("innerError").or_else(|| e.get("innererror")))
        .and_then(|i| i.get("request-id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let request_id = header_request_id
        .or(inner_id)
        .and_then(|id| summary::request_id(&id));
    match status {
        401 => ApiError::Unauthorized {
            message,
            request_id,
        },
        403 => ApiError::Forbidden {
            code,
            message,
            request_id,
        },
        404 => ApiError::NotFound {
            code,
            message,
            request_id,
        },
        429 => ApiError::Throttled {
            retry_after,
            request_id,
        },
        s if is_retryable_status(s) => ApiError::Transient {
            status: Some(s),
            message: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
            request_id,
        },
        s => ApiError::Permanent {
            status: s,
            code,
            message,
            request_id,
        },
    }
}

/// Entra's token-endpoint error body. It is also oauth2's error type for our token
/// requests, so `error_codes` and `trace_id` survive the crate.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct EntraErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u32>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl std::fmt::Display for EntraErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(d) = &self.error_description {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl oauth2::ErrorResponse for EntraErrorBody {}

impl EntraErrorBody {
    pub fn from_value(body: &Value) -> Option<EntraErrorBody> {
        if !body.get("error")?.is_string() {
            return None;
        }
        serde_json::from_value(body.clone()).ok()
    }

    pub fn into_api_error(self, header_request_id: Option<String>) -> ApiError {
        let number = self.error_codes.first().copied().or_else(|| {
            // Older answers carry the code only in the description: "AADSTS70011: …".
            let d = self.error_description.as_deref()?;
            let rest = d.strip_prefix("AADSTS")?;
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        });
        let code = match number {
            Some(n) => format!("AADSTS{n}"),
            None => super::summary::error_code(&self.error),
        };
        let hint = match number {
            Some(n) => entra_hint(n),
            None => "Check the azure.* credential settings.",
        };
        // The first line is the sentence; Entra appends trace/correlation ids and a timestamp.
        let message = self
            .error_description
            .as_deref()
            .and_then(|d| d.lines().next())
            .map(super::summary::error_message)
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| code.clone());
        ApiError::Auth {
            code,
            message,
            hint: hint.to_string(),
            request_id: self
                .trace_id
                .or(header_request_id)
                .and_then(|id| super::summary::request_id(&id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        let future = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(future)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 501] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }

    #[test]
    fn retry_schedule_is_bounded_growing_and_jittered() {
        let opts = HttpOptions {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            max_retries: 6,
            ..HttpOptions::default()
        };
        // backon computes steps in f32 seconds; a few nanoseconds of rounding are allowed.
        let slack = Duration::from_micros(1);
        let ceilings = [100, 200, 350, 350, 350, 350].map(Duration::from_millis);
        let mut sums = [Duration::ZERO; 6];
        let mut distinct = std::collections::HashSet::new();
        for _ in 0..200 {
            let steps: Vec<Duration> = retry_schedule(&opts).collect();
            // One step per retry, so the attempts stay at `max_retries` + 1.
            assert_eq!(steps.len(), 6, "{steps:?}");
            for (i, (step, ceiling)) in steps.iter().zip(ceilings).enumerate() {
                assert!(*step <= ceiling + slack, "retry {}: {step:?}", i + 1);
                sums[i] += *step;
            }
            distinct.insert(steps[0]);
        }
        // Full jitter: uniform below the ceiling, so the mean is near half of it and two
        // callers rarely wait the same time.
        for (i, (sum, ceiling)) in sums.iter().zip(ceilings).enumerate() {
            let mean = *sum / 200;
            assert!(
                mean > ceiling / 4 && mean < ceiling * 3 / 4,
                "retry {}: mean {mean:?} of {ceiling:?}",
                i + 1
            );
        }
        assert!(distinct.len() > 150, "{}", distinct.len());
        // Growing: the mean step doubles until the ceiling.
        assert!(sums[1] > sums[0] * 3 / 2, "{sums:?}");
        let none = HttpOptions {
            max_retries: 0,
            ..opts
        };
        assert_eq!(retry_schedule(&none).next(), None);
    }

    #[test]
    fn graph_error_is_typed_with_inner_request_id() {
        let body = json!({"error": {"code": "Authorization_RequestDenied",
            "message": "Insufficient privileges to complete the operation.",
            "innerError": {"date": "x", "request-id": "rid-1", "client-request-id": "c"}}});
        let e = error_from_response(403, &body, None, None);
        assert_eq!(
            e,
            ApiError::Forbidden {
                code: "Authorization_RequestDenied".into(),
                message: "Insufficient privileges to complete the operation.".into(),
                request_id: Some("rid-1".into()),
            }
        );
    }

    #[test]
    fn log_analytics_details_reach_the_message() {
        let body = json!({"error": {"code": "BadArgumentError", "message": "The request had some invalid properties",
            "details": [{"code": "SyntaxError", "message": "A recognition error occurred at line 1"}]}});
        match error_from_response(400, &body, Some("h".into()), None) {
            ApiError::Permanent {
                code,
                message,
                request_id,
                ..
            } => {
                assert_eq!(code, "BadArgumentError");
                assert!(
                    message.contains("SyntaxError: A recognition error"),
                    "{message}"
                );
                assert_eq!(request_id.as_deref(), Some("h"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entra_error_gets_code_and_hint() {
        let body = json!({"error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t-1\r\nCorrelation ID: c",
            "error_codes": [7000215], "trace_id": "t-1"});
        match error_from_response(401, &body, None, None) {
            ApiError::Auth {
                code,
                message,
                hint,
                request_id,
            } => {
                assert_eq!(code, "AADSTS7000215");
                assert_eq!(message, "AADSTS7000215: Invalid client secret provided.");
                assert!(hint.contains("client secret"), "{hint}");
                assert_eq!(request_id.as_deref(), Some("t-1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn arm_slowdown_is_proportional() {
        let opts = HttpOptions {
            arm_remaining_threshold: 100,
            arm_max_slowdown: Duration::from_secs(10),
            ..HttpOptions::default()
        };
        assert_eq!(arm_slowdown(&opts, -1), Duration::ZERO);
        assert_eq!(arm_slowdown(&opts, 100), Duration::ZERO);
        assert_eq!(arm_slowdown(&opts, 50), Duration::from_secs(5));
        assert_eq!(arm_slowdown(&opts, 0), Duration::from_secs(10));
    }

    #[test]
    fn request_headers_are_sent_but_never_credentials() {
        let mut req = ApiRequest::get(Api::Graph, "https://graph.microsoft.com/v1.0/users")
            .with_header("ConsistencyLevel", "eventual")
            .unwrap();
        let token = SecretString::from("t0ken".to_string());
        let headers = build_headers(&req, "c-1", Auth::Bearer(&token), &[]).unwrap();
        assert_eq!(headers["consistencylevel"], "eventual");
        assert_eq!(headers["authorization"], "Bearer t0ken");
        // A plan read back from JSON bypasses `with_header`; the client checks again.
        for name in ["Authorization", "host"] {
            req.headers.insert(name.into(), "evil".into());
            let err = build_headers(&req, "c-1", Auth::Bearer(&token), &[]).unwrap_err();
            assert_eq!(err, ApiError::Header(HeaderError::Reserved(name.into())));
            req.headers.remove(name);
        }
    }

    #[test]
    fn urls_lose_their_query_in_logs() {
        let u = reqwest::Url::parse("https://x.blob.core.windows.net/c/b?sig=SECRET&se=1").unwrap();
        let shown = redact_url(&u);
        assert!(!shown.contains("SECRET"));
        assert_eq!(shown, "https://x.blob.core.windows.net/c/b?…");
    }

    fn fast() -> HttpClient {
        HttpClient::new(HttpOptions {
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_retries: 2,
            rate_per_second: 0.0,
            ..HttpOptions::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn retries_stop_after_max_retries_with_the_last_request_id() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
        let server = MockServer::start().await;
        Mock::given(matchers::method("GET"))
            .respond_with(ResponseTemplate::new(503).insert_header("request-id", "rid-503"))
            .expect(3)
            .mount(&server)
            .await;
        let req = ApiRequest::get(Api::Graph, format!("{}/v1.0/users", server.uri()));
        let err = fast().send(&req, Auth::None, "t").await.unwrap_err();
        assert!(
            matches!(
                &err,
                ApiError::Transient {
                    status: Some(503),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.request_id(), Some("rid-503"));
        server.verify().await;
    }

    #[tokio::test]
    async fn a_throttled_request_retries_even_when_unsafe_but_within_max_retries() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
        let server = MockServer::start().await;
        Mock::given(matchers::method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
            .expect(3)
            .mount(&server)
            .await;
        let req = ApiRequest::new(Method::Post, Api::Graph, format!("{}/x", server.uri()));
        let err = fast().send(&req, Auth::None, "t").await.unwrap_err();
        assert!(
            matches!(err, ApiError::Throttled { retry_after: Some(d), .. } if d.is_zero()),
            "{err:?}"
        );
        server.verify().await;
    }

    #[tokio::test]
    async fn token_requests_are_retried_and_the_last_answer_is_handed_back() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
        let server = MockServer::start().await;
        Mock::given(matchers::method("POST"))
            .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
            .expect(3)
            .mount(&server)
            .await;
        let request = oauth2::http::Request::builder()
            .method("POST")
            .uri(format!("{}/token", server.uri()))
            .body(b"grant_type=x".to_vec())
            .unwrap();
        let out = fast().send_raw(request).await.unwrap();
        assert_eq!(
            (out.status().as_u16(), out.body().as_slice()),
            (503, &b"busy"[..])
        );
        server.verify().await;
    }

    #[tokio::test(start_paused = true)]
    async fn token_bucket_spaces_requests() {
        let bucket = TokenBucket::new(5.0, 5.0);
        let start = Instant::now();
        for _ in 0..10 {
            bucket.acquire().await;
        }
        // 5 from the burst, 5 more at 5/s.
        assert!(
            start.elapsed() >= Duration::from_millis(990),
            "{:?}",
            start.elapsed()
        );
    }
}
