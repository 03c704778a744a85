use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which API a request goes to; it decides the token scope and the error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Graph,
    Arm,
    LogAnalytics,
    Lacework,
    /// A plain HTTPS endpoint (an incoming webhook); no Azure token.
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Whether sending it twice has the same effect as once (RFC 9110 §9.2.2).
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post | Method::Patch)
    }

    pub fn is_read(self) -> bool {
        matches!(self, Method::Get)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One HTTP request exactly as it will be sent: absolute URL, already encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiRequest {
    pub method: Method,
    pub url: String,
    pub api: Api,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Set by an action whose POST has no side effect when repeated (a query, an idempotent
    /// Graph action), so the client may retry it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry_safe: bool,
}

impl ApiRequest {
    pub fn new(method: Method, api: Api, url: impl Into<String>) -> ApiRequest {
        ApiRequest {
            method,
            url: url.into(),
            api,
            body: None,
            retry_safe: false,
        }
    }

    pub fn get(api: Api, url: impl Into<String>) -> ApiRequest {
        ApiRequest::new(Method::Get, api, url)
    }

    pub fn with_body(mut self, body: Value) -> ApiRequest {
        self.body = Some(body);
        self
    }

    pub fn retry_safe(mut self) -> ApiRequest {
        self.retry_safe = true;
        self
    }

    /// Whether the client may send it again after a transient failure.
    pub fn may_retry(&self) -> bool {
        self.method.is_idempotent() || self.retry_safe
    }
}
