//! Microsoft Graph: the calls riposte's Entra actions make (reference/azure-api.md B).
//! Each call has a pure `*_request` builder, so a plan can record the exact request, and a
//! method that sends it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AzureSession, PollState, encode_segment};
use crate::connectors::error::ApiError;
use crate::connectors::http::ApiResponse;
use crate::connectors::request::{Api, ApiRequest, Method};

/// Graph's id of the password authentication method (fixed for every user).
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
/// Graph refuses batches above this size.
pub const MAX_BATCH: usize = 20;

/// One request inside a `$batch`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRequest {
    pub id: String,
    pub method: Method,
    /// Relative to the version root, e.g. `/users/{id}`.
    pub url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Ids that must succeed first; a failed dependency answers 424.
    #[serde(rename = "dependsOn", skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

impl BatchRequest {
    pub fn new(id: impl Into<String>, method: Method, url: impl Into<String>) -> BatchRequest {
        BatchRequest {
            id: id.into(),
            method,
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            depends_on: Vec::new(),
        }
    }

    pub fn with_body(mut self, body: Value) -> BatchRequest {
        self.body = Some(body);
        self
    }

    pub fn depends_on(mut self, id: impl Into<String>) -> BatchRequest {
        self.depends_on.push(id.into());
        self
    }
}

/// One answer inside a `$batch` response.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchResponse {
    pub id: String,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Value,
}

impl BatchResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// 424: not run because a request it depended on failed.
    pub fn is_failed_dependency(&self) -> bool {
        self.status == 424
    }
}

/// The outcome of a password reset through the authentication methods API.
#[derive(Debug)]
pub struct PasswordReset {
    /// The final long-running operation (`status` succeeded).
    pub operation: Value,
    /// The system-generated password, when Graph made one.
    pub new_password: Option<SecretString>,
}

/// Graph v1.0 (and the few beta calls riposte needs).
#[derive(Debug, Clone)]
pub struct GraphClient {
    session: Arc<AzureSession>,
}

/// `/users/{key}`: an id or UPN, percent-encoded; a UPN starting with `$` uses the
/// `users('…')` form Graph requires (B0).
pub fn user_path(user: &str) -> String {
    if user.starts_with('$') {
        format!("/users('{}')", encode_segment(&user.replace('\'', "''")))
    } else {
        format!("/users/{}", encode_segment(user))
    }
}

impl GraphClient {
    pub fn new(session: Arc<AzureSession>) -> GraphClient {
        GraphClient { session }
    }

    fn v1(&self, path: &str) -> String {
        format!("{}{}", self.session.endpoints.graph_v1(), path)
    }

    fn beta(&self, path: &str) -> String {
        format!("{}{}", self.session.endpoints.graph_beta(), path)
    }

    async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        self.session.send(req, &[]).await
    }

    pub fn get_user_request(&self, user: &str, select: &[&str]) -> ApiRequest {
        let mut url = self.v1(&user_path(user));
        if !select.is_empty() {
            url.push_str("?$select=");
            url.push_str(&select.join(","));
        }
        ApiRequest::get(Api::Graph, url)
    }

    /// The user with the given properties (`accountEnabled` etc. need `$select`).
    pub async fn get_user(&self, user: &str, select: &[&str]) -> Result<Value, ApiError> {
        Ok(self.send(&self.get_user_request(user, select)).await?.body)
    }

    pub fn update_user_request(&self, user: &str, patch: Value) -> ApiRequest {
        ApiRequest::new(Method::Patch, Api::Graph, self.v1(&user_path(user))).with_body(patch)
    }

    /// PATCH of user properties (204). Directory PATCHes are unconditional and setting the
    /// same value twice is harmless, so it may be retried.
    pub async fn update_user(&self, user: &str, patch: Value) -> Result<(), ApiError> {
        self.send(&self.update_user_request(user, patch).retry_safe())
            .await
            .map(|_| ())
    }

    pub fn revoke_sign_in_sessions_request(&self, user: &str) -> ApiRequest {
        ApiRequest::new(
            Method::Post,
            Api::Graph,
            self.v1(&format!("{}/revokeSignInSessions", user_path(user))),
        )
        .retry_safe()
    }

    /// Invalidates refresh tokens; any 2xx counts (docs disagree on 200 vs 204).
    pub async fn revoke_sign_in_sessions(&self, user: &str) -> Result<(), ApiError> {
        self.send(&self.revoke_sign_in_sessions_request(user))
            .await
            .map(|_| ())
    }

    /// Active directory roles, including those held through role-assignable groups.
    pub async fn transitive_directory_roles(&self, user: &str) -> Result<Vec<Value>, ApiError> {
        let url = self.v1(&format!(
            "{}/transitiveMemberOf/microsoft.graph.directoryRole?$select=id,displayName,roleTemplateId",
            user_path(user)
        ));
        self.list_paged(&url).await
    }

    /// Every item of a Graph collection, following `@odata.nextLink`.
    pub async fn list_paged(&self, url: &str) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut next = Some(url.to_string());
        while let Some(url) = next.take() {
            let body = self.send(&ApiRequest::get(Api::Graph, url)).await?.body;
            if let Some(values) = body.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            next = body
                .get("@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(items)
    }

    pub fn add_group_member_request(&self, group: &str, object_id: &str) -> ApiRequest {
        ApiRequest::new(
            Method::Post,
            Api::Graph,
            self.v1(&format!("/groups/{}/members/$ref", encode_segment(group))),
        )
        .with_body(json!({
            "@odata.id": format!("{}/directoryObjects/{}", self.session.endpoints.graph_v1(), encode_segment(object_id))
        }))
    }

    /// Adds a member (204). Graph answers 400 when it is already a member; that error is
    /// returned as is so the caller can treat it as "already satisfied".
    pub async fn add_group_member(&self, group: &str, object_id: &str) -> Result<(), ApiError> {
        self.send(&self.add_group_member_request(group, object_id))
            .await
            .map(|_| ())
    }

    pub fn remove_group_member_request(&self, group: &str, object_id: &str) -> ApiRequest {
        ApiRequest::new(
            Method::Delete,
            Api::Graph,
            self.v1(&format!(
                "/groups/{}/members/{}/$ref",
                encode_segment(group),
                encode_segment(object_id)
            )),
        )
    }

    pub async fn remove_group_member(&self, group: &str, object_id: &str) -> Result<(), ApiError> {
        self.send(&self.remove_group_member_request(group, object_id))
            .await
            .map(|_| ())
    }

    pub fn reset_password_request(
        &self,
        user: &str,
        new_password: Option<&SecretString>,
    ) -> ApiRequest {
        let body = match new_password {
            Some(p) => json!({"newPassword": p.expose_secret()}),
            None => json!({}),
        };
        ApiRequest::new(
            Method::Post,
            Api::Graph,
            self.v1(&format!(
                "{}/authentication/methods/{PASSWORD_METHOD_ID}/resetPassword",
                user_path(user)
            )),
        )
        .with_body(body)
    }

    /// Resets the password (202) and polls the operation in `Location` until it succeeds
    /// or fails. Needs delegated permissions (B5).
    pub async fn reset_password(
        &self,
        user: &str,
        new_password: Option<&SecretString>,
    ) -> Result<PasswordReset, ApiError> {
        let first = self
            .send(&self.reset_password_request(user, new_password))
            .await?;
        let generated = first
            .body
            .get("newPassword")
            .and_then(Value::as_str)
            .map(|p| SecretString::from(p.to_string()));
        let Some(location) = first.header("location").map(str::to_string) else {
            return Ok(PasswordReset {
                operation: first.body,
                new_password: generated,
            });
        };
        let delay = first.retry_after(self.session.http.options().max_retry_after);
        let done = self
            .session
            .poll(Api::Graph, &location, delay, graph_operation_state)
            .await?;
        Ok(PasswordReset {
            operation: done.body,
            new_password: generated,
        })
    }

    pub fn confirm_compromised_request(&self, user_ids: &[&str]) -> ApiRequest {
        ApiRequest::new(
            Method::Post,
            Api::Graph,
            self.v1("/identityProtection/riskyUsers/confirmCompromised"),
        )
        .with_body(json!({ "userIds": user_ids }))
        .retry_safe()
    }

    /// Marks users compromised (risk high); idempotent, so retried on transient failures.
    pub async fn confirm_compromised(&self, user_ids: &[&str]) -> Result<(), ApiError> {
        self.send(&self.confirm_compromised_request(user_ids))
            .await
            .map(|_| ())
    }

    /// Per-user MFA state (beta): `{"perUserMfaState": "enforced|enabled|disabled"}`.
    pub async fn get_mfa_requirements(&self, user: &str) -> Result<Value, ApiError> {
        let url = self.beta(&format!("{}/authentication/requirements", user_path(user)));
        Ok(self.send(&ApiRequest::get(Api::Graph, url)).await?.body)
    }

    pub fn set_per_user_mfa_state_request(&self, user: &str, state: &str) -> ApiRequest {
        ApiRequest::new(
            Method::Patch,
            Api::Graph,
            self.beta(&format!("{}/authentication/requirements", user_path(user))),
        )
        .with_body(json!({ "perUserMfaState": state }))
        .retry_safe()
    }

    pub async fn set_per_user_mfa_state(&self, user: &str, state: &str) -> Result<(), ApiError> {
        self.send(&self.set_per_user_mfa_state_request(user, state))
            .await
            .map(|_| ())
    }

    /// A Defender/Sentinel alert (alerts_v2), with enum members newer than v1.0 included.
    pub async fn get_security_alert(&self, id: &str) -> Result<Value, ApiError> {
        let url = self.v1(&format!("/security/alerts_v2/{}", encode_segment(id)));
        let resp = self
            .session
            .send(
                &ApiRequest::get(Api::Graph, url),
                &[("Prefer", "include-unknown-enum-members")],
            )
            .await?;
        Ok(resp.body)
    }

    /// Checks a batch before anything is sent: 1–20 requests, unique ids, known
    /// dependencies; adds the `Content-Type` Graph demands on requests with a body, and an
    /// empty body to body-less POSTs (B9).
    pub fn batch_request(&self, mut requests: Vec<BatchRequest>) -> Result<ApiRequest, ApiError> {
        if requests.is_empty() {
            return Err(ApiError::Invalid(
                "a $batch needs at least one request".into(),
            ));
        }
        if requests.len() > MAX_BATCH {
            return Err(ApiError::Invalid(format!(
                "a $batch holds at most {MAX_BATCH} requests, got {}; split it",
                requests.len()
            )));
        }
        let mut ids = HashSet::new();
        for r in &requests {
            if !ids.insert(r.id.as_str()) {
                return Err(ApiError::Invalid(format!("duplicate $batch id `{}`", r.id)));
            }
        }
        for r in &requests {
            if let Some(d) = r.depends_on.iter().find(|d| !ids.contains(d.as_str())) {
                return Err(ApiError::Invalid(format!(
                    "$batch request `{}` depends on unknown id `{d}`",
                    r.id
                )));
            }
        }
        for r in &mut requests {
            if r.body.is_none() && r.method == Method::Post {
                r.body = Some(json!({}));
            }
            if r.body.is_some()
                && !r
                    .headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("content-type"))
            {
                r.headers
                    .insert("Content-Type".into(), "application/json".into());
            }
        }
        let all_reads = requests.iter().all(|r| r.method.is_read());
        let mut req = ApiRequest::new(Method::Post, Api::Graph, self.v1("/$batch"))
            .with_body(json!({ "requests": requests }));
        req.retry_safe = all_reads;
        Ok(req)
    }

    /// Sends up to 20 requests in one `$batch`; answers come back in request order. Inner
    /// failures (including 424 for a failed dependency, or an inner 429) are per item.
    pub async fn batch(&self, requests: Vec<BatchRequest>) -> Result<Vec<BatchResponse>, ApiError> {
        let order: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let req = self.batch_request(requests)?;
        let resp = self.send(&req).await?;
        let mut answers: Vec<BatchResponse> = resp
            .body
            .get("responses")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ApiError::Permanent {
                status: resp.status,
                code: "InvalidBatchResponse".into(),
                message: format!("the $batch answer is not a list of responses: {e}"),
                request_id: resp.request_id.clone(),
            })?
            .unwrap_or_default();
        answers.sort_by_key(|a| {
            order
                .iter()
                .position(|id| *id == a.id)
                .unwrap_or(usize::MAX)
        });
        Ok(answers)
    }
}

/// Graph's longRunningOperation `status`: notStarted | running | succeeded | failed.
fn graph_operation_state(resp: &ApiResponse) -> PollState {
    match resp.body.get("status").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("succeeded") => PollState::Done,
        Some(s) if s.eq_ignore_ascii_case("failed") => PollState::Failed {
            status: "Failed".into(),
            code: resp
                .body
                .pointer("/error/code")
                .and_then(Value::as_str)
                .unwrap_or("OperationFailed")
                .to_string(),
            message: resp
                .body
                .pointer("/error/message")
                .or_else(|| resp.body.get("statusDetail"))
                .and_then(Value::as_str)
                .unwrap_or("the operation failed")
                .to_string(),
        },
        // No status at all: a plain 200 resource, nothing left to wait for.
        None if resp.status != 202 => PollState::Done,
        _ => PollState::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::cloud::Endpoints;
    use crate::connectors::http::{HttpClient, HttpOptions};

    fn client() -> GraphClient {
        let http = HttpClient::new(HttpOptions::default()).unwrap();
        GraphClient::new(Arc::new(AzureSession::new(
            http,
            Endpoints::default(),
            None,
            None,
        )))
    }

    #[test]
    fn user_paths() {
        assert_eq!(user_path("a#EXT#@b.com"), "/users/a%23EXT%23@b.com");
        assert_eq!(user_path("$x@y.com"), "/users('$x@y.com')");
        let g = client();
        assert_eq!(
            g.get_user_request("u1", &["id", "accountEnabled"]).url,
            "https://graph.microsoft.com/v1.0/users/u1?$select=id,accountEnabled"
        );
    }

    #[test]
    fn batch_is_checked_before_sending() {
        let g = client();
        let many: Vec<_> = (0..21)
            .map(|i| BatchRequest::new(i.to_string(), Method::Get, "/me"))
            .collect();
        assert!(matches!(g.batch_request(many), Err(ApiError::Invalid(m)) if m.contains("20")));
        let dup = vec![
            BatchRequest::new("1", Method::Get, "/a"),
            BatchRequest::new("1", Method::Get, "/b"),
        ];
        assert!(
            matches!(g.batch_request(dup), Err(ApiError::Invalid(m)) if m.contains("duplicate"))
        );
        let dangling = vec![BatchRequest::new("1", Method::Get, "/a").depends_on("9")];
        assert!(g.batch_request(dangling).is_err());
        assert!(g.batch_request(vec![]).is_err());
    }

    #[test]
    fn batch_body_gets_content_type_and_depends_on() {
        let g = client();
        let req = g
            .batch_request(vec![
                BatchRequest::new("1", Method::Patch, "/users/u")
                    .with_body(json!({"accountEnabled": false})),
                BatchRequest::new("2", Method::Post, "/users/u/revokeSignInSessions")
                    .depends_on("1"),
            ])
            .unwrap();
        assert!(!req.retry_safe);
        assert_eq!(req.url, "https://graph.microsoft.com/v1.0/$batch");
        let body = req.body.unwrap();
        assert_eq!(
            body["requests"][0]["headers"]["Content-Type"],
            "application/json"
        );
        assert_eq!(body["requests"][1]["body"], json!({}));
        assert_eq!(body["requests"][1]["dependsOn"], json!(["1"]));
        assert_eq!(body["requests"][1]["method"], "POST");
        assert!(body["requests"][0].get("dependsOn").is_none());
    }
}
