//! Azure Resource Manager: long-running operations driven to their end
//! (reference/azure-api.md C3). Requests come built from the actions; pages are followed by
//! [`crate::connectors::paging`].

use std::sync::Arc;

use serde_json::Value;

use super::{AzureSession, PollState, may_start_operation};
use crate::connectors::error::ApiError;
use crate::connectors::http::ApiResponse;
use crate::connectors::request::{Api, ApiRequest, Method};

/// Sends ARM requests and drives the operations they start.
#[derive(Debug, Clone)]
pub struct ArmClient {
    session: Arc<AzureSession>,
}

impl ArmClient {
    pub fn new(session: Arc<AzureSession>) -> ArmClient {
        ArmClient { session }
    }

    /// Sends `req`; when ARM answers 201/202 with a polling header, polls to the end and
    /// returns the final response.
    pub async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        let first = self.session.send(req, &[]).await?;
        self.finish_operation(req, first).await
    }

    /// Drives a long-running operation from its first response (C3): `Azure-AsyncOperation`
    /// first, else `Location`, honouring `Retry-After`. `Failed`/`Canceled` becomes
    /// [`ApiError::OperationFailed`] with the operation's own code and message.
    pub async fn finish_operation(
        &self,
        req: &ApiRequest,
        first: ApiResponse,
    ) -> Result<ApiResponse, ApiError> {
        if !matches!(first.status, 201 | 202) || !may_start_operation(req.method) {
            return Ok(first);
        }
        let cap = self.session.http.options().max_retry_after;
        let delay = first.retry_after(cap);
        if let Some(op_url) = first.header("azure-asyncoperation").map(str::to_string) {
            self.session
                .poll(Api::Arm, &op_url, delay, async_operation_state)
                .await?;
            // The operation resource says only how it ended; the result lives elsewhere.
            return match req.method {
                Method::Put | Method::Patch => {
                    self.session
                        .send(&ApiRequest::get(Api::Arm, req.url.clone()), &[])
                        .await
                }
                _ => match first.header("location") {
                    Some(loc) => {
                        let loc = loc.to_string();
                        self.session
                            .send(&ApiRequest::get(Api::Arm, loc), &[])
                            .await
                    }
                    None => Ok(ApiResponse {
                        status: 200,
                        body: Value::Null,
                        ..first
                    }),
                },
            };
        }
        if let Some(loc) = first.header("location").map(str::to_string) {
            return self
                .session
                .poll(Api::Arm, &loc, delay, location_state)
                .await;
        }
        Ok(first)
    }
}

fn failed(resp: &ApiResponse, status: &str) -> PollState {
    let err = resp
        .body
        .get("error")
        .or_else(|| resp.body.pointer("/properties/error"));
    PollState::Failed {
        status: status.to_string(),
        // The operation's own error is upstream text: summarised, never repeated raw.
        code: crate::connectors::summary::error_code(
            err.and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or(status),
        ),
        message: crate::connectors::summary::error_message(
            err.and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("the operation ended without an error message"),
        ),
    }
}

/// `Azure-AsyncOperation` body: `status` InProgress | Succeeded | Failed | Canceled | RP value.
fn async_operation_state(resp: &ApiResponse) -> PollState {
    match resp.body.get("status").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("succeeded") => PollState::Done,
        Some(s) if s.eq_ignore_ascii_case("failed") => failed(resp, "Failed"),
        Some(s) if s.eq_ignore_ascii_case("canceled") || s.eq_ignore_ascii_case("cancelled") => {
            failed(resp, "Canceled")
        }
        _ => PollState::Running,
    }
}

/// `Location` polling: 202 while running, then 200/204 with the result. A 200 whose
/// `provisioningState` is Failed/Canceled still failed.
fn location_state(resp: &ApiResponse) -> PollState {
    if resp.status == 202 {
        return PollState::Running;
    }
    match resp
        .body
        .pointer("/properties/provisioningState")
        .or_else(|| resp.body.get("status"))
        .and_then(Value::as_str)
    {
        Some(s) if s.eq_ignore_ascii_case("failed") => failed(resp, "Failed"),
        Some(s) if s.eq_ignore_ascii_case("canceled") => failed(resp, "Canceled"),
        _ => PollState::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resp(status: u16, body: Value) -> ApiResponse {
        ApiResponse {
            status,
            headers: HashMap::new(),
            body,
            request_id: None,
            client_request_id: "c".into(),
            attempts: 1,
        }
    }

    #[test]
    fn async_operation_states() {
        use serde_json::json;
        assert!(matches!(
            async_operation_state(&resp(200, json!({"status": "InProgress"}))),
            PollState::Running
        ));
        assert!(matches!(
            async_operation_state(&resp(200, json!({"status": "Succeeded"}))),
            PollState::Done
        ));
        match async_operation_state(&resp(
            200,
            json!({"status": "Failed", "error": {"code": "QuotaExceeded", "message": "no"}}),
        )) {
            PollState::Failed {
                code,
                message,
                status,
            } => {
                assert_eq!(
                    (code.as_str(), message.as_str(), status.as_str()),
                    ("QuotaExceeded", "no", "Failed")
                );
            }
            _ => panic!(),
        }
        assert!(matches!(
            async_operation_state(&resp(200, json!({"status": "Canceled"}))),
            PollState::Failed { .. }
        ));
        assert!(matches!(
            location_state(&resp(202, Value::Null)),
            PollState::Running
        ));
        assert!(matches!(
            location_state(&resp(204, Value::Null)),
            PollState::Done
        ));
    }
}
