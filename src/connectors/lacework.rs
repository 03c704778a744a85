//! Lacework API v2 (reference/azure-api.md E1): an access token from the API key, cached
//! until its `expiresAt`, and alert details for enrichment.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::azure::token_cache::{CachedToken, TokenCache};
use super::error::ApiError;
use super::http::{ApiResponse, Auth, HttpClient, error_from_response};
use super::request::{Api, ApiRequest};
use super::settings::LaceworkSettings;

/// Token lifetime riposte asks for (Lacework's maximum is 86400 s; an hour limits exposure).
const TOKEN_SECONDS: u64 = 3600;

#[derive(Clone)]
pub struct LaceworkClient {
    http: HttpClient,
    base: String,
    key_id: String,
    secret: SecretString,
    cache: Arc<TokenCache>,
}

impl std::fmt::Debug for LaceworkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaceworkClient")
            .field("base", &self.base)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl LaceworkClient {
    pub fn new(settings: &LaceworkSettings, http: HttpClient) -> Result<LaceworkClient, ApiError> {
        if !settings.has_credentials() {
            return Err(ApiError::Config(
                "lacework needs key_id, secret and account (or endpoint)".into(),
            ));
        }
        Ok(LaceworkClient {
            http,
            base: settings.base_url()?,
            key_id: settings.key_id.clone(),
            secret: settings.secret.clone(),
            cache: Arc::new(TokenCache::new()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A bearer token, fetched once and reused until shortly before `expiresAt`.
    pub async fn token(&self) -> Result<Arc<CachedToken>, ApiError> {
        self.cache
            .get_or_fetch("lacework", &self.base, || self.fetch_token())
            .await
    }

    async fn fetch_token(&self) -> Result<CachedToken, ApiError> {
        let body = serde_json::to_vec(&json!({"keyId": self.key_id, "expiryTime": TOKEN_SECONDS}))
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        let mut secret = oauth2::http::HeaderValue::from_str(self.secret.expose_secret())
            .map_err(|_| ApiError::Config("lacework.secret is not a valid header value".into()))?;
        secret.set_sensitive(true);
        let request = oauth2::http::Request::builder()
            .method(oauth2::http::Method::POST)
            .uri(format!("{}/api/v2/access/tokens", self.base))
            .header("X-LW-UAKS", secret)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body)
            .map_err(|e| ApiError::Config(format!("lacework token request: {e}")))?;
        let response = self.http.send_raw(request).await?;
        let status = response.status().as_u16();
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        // Lacework answers 200 or 201 depending on the version: any 2xx is a token.
        if !(200..300).contains(&status) {
            return Err(match error_from_response(status, &body, None, None) {
                ApiError::Unauthorized { message, request_id } => ApiError::Auth {
                    code: "lacework_unauthorized".into(),
                    message,
                    hint: "Check lacework.key_id and lacework.secret (an API key from Settings > API keys).".into(),
                    request_id,
                },
                other => other,
            });
        }
        // Some API versions wrap the answer in `data`.
        let data = body.get("data").filter(|d| d.is_object()).unwrap_or(&body);
        let token = data
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::Auth {
                code: "invalid_token_response".into(),
                message: "Lacework answered without a token".into(),
                hint: "Check lacework.account / lacework.endpoint points at the Lacework API."
                    .into(),
                request_id: None,
            })?;
        let lifetime = data
            .get("expiresAt")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|at| (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(Duration::from_secs(TOKEN_SECONDS));
        Ok(CachedToken::new(
            SecretString::from(token.to_string()),
            lifetime,
        ))
    }

    /// Sends a Lacework request with the bearer token; the URL must be under the base.
    pub async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        if req.api != Api::Lacework {
            return Err(ApiError::Invalid("not a Lacework request".into()));
        }
        super::azure::check_same_origin(&req.url, &self.base)?;
        let token = self.token().await?;
        let result = self
            .http
            .send(req, Auth::Bearer(token.secret()), &self.base)
            .await;
        if matches!(result, Err(ApiError::Unauthorized { .. })) {
            self.cache.invalidate("lacework", &self.base);
        }
        result
    }

    /// `id` is Lacework's `alertId`, an integer (reference E1): anything else is refused, so
    /// an alert's data can never add a path segment or a query to the request.
    pub fn alert_details_request(&self, id: &str) -> Result<ApiRequest, ApiError> {
        if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::Invalid(format!(
                "`{}` is not a Lacework alert id (an integer)",
                id.chars().take(64).collect::<String>()
            )));
        }
        Ok(ApiRequest::get(
            Api::Lacework,
            format!("{}/api/v2/Alerts/{id}?scope=Details", self.base),
        ))
    }

    /// `GET /api/v2/Alerts/{id}?scope=Details`: the alert with its `entityMap`, untyped
    /// because Lacework does not document the Azure entity keys.
    pub async fn alert_details(&self, id: &str) -> Result<Value, ApiError> {
        Ok(self.send(&self.alert_details_request(id)?).await?.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::http::HttpOptions;

    #[test]
    fn alert_ids_must_be_integers() {
        let settings: LaceworkSettings = serde_json::from_value(json!({
            "endpoint": "https://acct.lacework.net", "key_id": "K", "secret": "s"}))
        .unwrap();
        let http = HttpClient::new(HttpOptions::default()).unwrap();
        let c = LaceworkClient::new(&settings, http).unwrap();
        for hostile in ["1/../../Users", "42?scope=Events", "", "⟨alert.id⟩"] {
            assert!(
                matches!(c.alert_details_request(hostile), Err(ApiError::Invalid(_))),
                "{hostile}"
            );
        }
        assert_eq!(
            c.alert_details_request("4242").unwrap().url,
            "https://acct.lacework.net/api/v2/Alerts/4242?scope=Details"
        );
    }
}
