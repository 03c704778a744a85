//! Azure: credentials and their token cache, and ARM's long-running operations. Requests are
//! built by the actions (with `actions::encode`); every Azure API is sent through one
//! [`AzureSession`]: the shared HTTP layer plus the token provider, so token choice and origin
//! checks happen in one place.

pub mod arm;
pub mod credential;
pub mod token_cache;

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

pub use arm::ArmClient;
pub use credential::{CertificateSigner, Credential, ManagedIdentitySource, TokenProvider};
pub use token_cache::{CachedToken, TokenCache};

use super::cloud::Endpoints;
use super::error::ApiError;
use super::http::{ApiResponse, Auth, HttpClient};
use super::request::{Api, ApiRequest, Method};

/// Scheme, host and port: a token is only ever sent back to where its API lives.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let u = url::Url::parse(url).ok()?;
    Some((
        u.scheme().to_string(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?,
    ))
}

/// Fails unless `url` is on the same origin as `base`, so a request (or a polling URL a
/// server returned) cannot carry a token to another host.
pub(crate) fn check_same_origin(url: &str, base: &str) -> Result<(), ApiError> {
    match (origin(url), origin(base)) {
        (Some(a), Some(b)) if a == b => Ok(()),
        _ => Err(ApiError::Invalid(format!(
            "`{url}` is not under `{base}`; riposte sends this API's token only there"
        ))),
    }
}

/// The HTTP layer plus Azure identity: what every Azure client sends through.
#[derive(Debug)]
pub struct AzureSession {
    pub(crate) http: HttpClient,
    pub(crate) endpoints: Endpoints,
    pub(crate) tokens: Option<TokenProvider>,
    /// Rate-budget key: the tenant id, so replicas of one tenant's work share a budget.
    pub(crate) budget_key: String,
}

/// How one poll of a long-running operation went.
pub(crate) enum PollState {
    Running,
    Done,
    Failed {
        status: String,
        code: String,
        message: String,
    },
}

impl AzureSession {
    pub fn new(
        http: HttpClient,
        endpoints: Endpoints,
        tokens: Option<TokenProvider>,
        tenant: Option<&str>,
    ) -> AzureSession {
        AzureSession {
            http,
            endpoints,
            tokens,
            budget_key: tenant.unwrap_or("default").to_string(),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub fn has_credentials(&self) -> bool {
        self.tokens.is_some()
    }

    /// The claims of the access token riposte holds for `api` — `roles` lists the application
    /// permissions consented. The payload is decoded, not verified: riposte only reads what it
    /// was given, to tell an operator what is missing.
    pub async fn token_claims(&self, api: Api) -> Result<serde_json::Value, ApiError> {
        use base64::Engine;
        use secrecy::ExposeSecret;
        let (_, scope) = self
            .base_and_scope(api)
            .ok_or_else(|| ApiError::Invalid(format!("{api:?} is not an Azure API")))?;
        let tokens = self
            .tokens
            .as_ref()
            .ok_or_else(|| ApiError::Config("no Azure credentials configured".into()))?;
        let token = tokens.token(scope).await?;
        let payload = token
            .secret()
            .expose_secret()
            .split('.')
            .nth(1)
            .ok_or_else(|| ApiError::Invalid("the access token is not a JWT".into()))?
            .to_string();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|_| ApiError::Invalid("the access token's payload is not base64url".into()))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::Invalid("the access token's payload is not JSON".into()))
    }

    /// The base URL and token scope for an Azure API.
    pub(crate) fn base_and_scope(&self, api: Api) -> Option<(&str, &str)> {
        let e = &self.endpoints;
        match api {
            Api::Graph => Some((&e.graph, &e.graph_scope)),
            Api::Arm => Some((&e.arm, &e.arm_scope)),
            Api::LogAnalytics => Some((&e.log_analytics, &e.log_analytics_scope)),
            Api::Lacework | Api::Webhook => None,
        }
    }

    /// Sends one request with the token for its API. A 401 drops the cached token and is
    /// retried once with a new one (the token may have been revoked before its expiry).
    pub async fn send(
        &self,
        req: &ApiRequest,
        extra: &[(&str, &str)],
    ) -> Result<ApiResponse, ApiError> {
        let (base, scope) = self
            .base_and_scope(req.api)
            .ok_or_else(|| ApiError::Invalid(format!("{:?} is not an Azure API", req.api)))?;
        check_same_origin(&req.url, base)?;
        let tokens = self.tokens.as_ref().ok_or_else(|| {
            ApiError::Config(
                "no Azure credentials: set azure.client_secret, azure.certificate_path or azure.managed_identity".into(),
            )
        })?;
        let mut retried = false;
        loop {
            let token = tokens.token(scope).await?;
            let result = self
                .http
                .send_with_headers(req, Auth::Bearer(token.secret()), &self.budget_key, extra)
                .await;
            match result {
                Err(ApiError::Unauthorized { .. }) if !retried => {
                    tokens.invalidate(scope);
                    retried = true;
                }
                other => return other,
            }
        }
    }

    /// Polls `url` (same origin as `base`) until `classify` says done or failed, honouring
    /// `Retry-After`, within the configured poll count and time.
    pub(crate) async fn poll(
        &self,
        api: Api,
        url: &str,
        first_delay: Option<Duration>,
        classify: impl Fn(&ApiResponse) -> PollState,
    ) -> Result<ApiResponse, ApiError> {
        let (base, _) = self
            .base_and_scope(api)
            .ok_or_else(|| ApiError::Invalid("polling needs an Azure API".into()))?;
        check_same_origin(url, base)?;
        let opts = self.http.options().clone();
        let started = Instant::now();
        let mut delay = first_delay.unwrap_or(opts.poll_interval);
        for poll in 1..=opts.max_polls.max(1) {
            if started.elapsed() + delay > opts.max_poll_time {
                break;
            }
            tokio::time::sleep(delay).await;
            let response = self.send(&ApiRequest::get(api, url), &[]).await?;
            match classify(&response) {
                PollState::Done => {
                    info!(message = "Operation completed.", polls = poll);
                    return Ok(response);
                }
                PollState::Failed {
                    status,
                    code,
                    message,
                } => {
                    return Err(ApiError::OperationFailed {
                        status,
                        code,
                        message,
                        request_id: response.request_id,
                    });
                }
                PollState::Running => {
                    delay = response
                        .retry_after(opts.max_retry_after)
                        .unwrap_or(opts.poll_interval);
                }
            }
        }
        Err(ApiError::OperationFailed {
            status: "TimedOut".into(),
            code: "PollingLimitReached".into(),
            message: format!(
                "the operation was still running after {} polls / {:?}; it may still complete: check `{url}`",
                opts.max_polls, opts.max_poll_time
            ),
            request_id: None,
        })
    }
}

/// Whether `m` can start a long-running operation worth polling.
pub(crate) fn may_start_operation(m: Method) -> bool {
    !m.is_read()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_match() {
        assert!(
            check_same_origin(
                "https://graph.microsoft.com/v1.0/users",
                "https://graph.microsoft.com"
            )
            .is_ok()
        );
        assert!(
            check_same_origin(
                "https://GRAPH.microsoft.com:443/x",
                "https://graph.microsoft.com"
            )
            .is_ok()
        );
        assert!(
            check_same_origin(
                "https://evil.example/v1.0/users",
                "https://graph.microsoft.com"
            )
            .is_err()
        );
        assert!(
            check_same_origin(
                "http://graph.microsoft.com/x",
                "https://graph.microsoft.com"
            )
            .is_err()
        );
        assert!(check_same_origin("not a url", "https://graph.microsoft.com").is_err());
    }
}
