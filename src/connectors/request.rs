use std::collections::BTreeMap;
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
    /// Headers the API contract asks for on this request (Graph's `ConsistencyLevel` for
    /// advanced queries). Authentication, `Host` and the client request id are the client's
    /// business and are refused here ([`HeaderError::Reserved`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Which items of a collection answer to keep, for a condition the API cannot filter on
    /// (the Activity Log has no `caller` filter). Applied to every page before the answer is
    /// stored; part of the plan, so the plan states exactly what is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<KeepItems>,
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
            headers: BTreeMap::new(),
            keep: None,
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

    /// Adds a request header. Headers riposte sets itself (see [`check_header`]) are refused,
    /// so a plan can never carry a credential or point the request at another host.
    pub fn with_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<ApiRequest, HeaderError> {
        let (name, value) = (name.into(), value.into());
        check_header(&name, &value)?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Keeps only the answer's items whose `field` equals `value` (see [`KeepItems`]).
    pub fn keep_items(mut self, field: impl Into<String>, value: impl Into<String>) -> ApiRequest {
        self.keep = Some(KeepItems {
            field: field.into(),
            equals: value.into(),
        });
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

/// A client-side filter on a collection's items: keep those whose top-level string `field`
/// equals `equals`, ignoring case (callers, UPNs and ids compare case-insensitively in Azure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepItems {
    pub field: String,
    pub equals: String,
}

impl KeepItems {
    pub fn matches(&self, item: &Value) -> bool {
        item.get(&self.field)
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(&self.equals))
    }
}

/// Header names a request may not carry in [`ApiRequest::headers`]: the client sets them
/// (credentials, the target host, framing and the per-request id), and letting a plan choose
/// them would let data decide where a token goes or what it says.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "host",
    "cookie",
    "content-length",
    "transfer-encoding",
    "client-request-id",
    "x-ms-client-request-id",
    "x-lw-uaks",
    "x-identity-header",
    "metadata",
];

/// Why a request header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("request header `{0}` is set by riposte itself and cannot be given on a request")]
    Reserved(String),
    #[error("`{0}` is not a valid HTTP header name")]
    InvalidName(String),
    #[error("the value of request header `{0}` is not a valid HTTP header value")]
    InvalidValue(String),
}

/// Checks one request header: a valid token name, a visible-ASCII value, not reserved.
pub fn check_header(name: &str, value: &str) -> Result<(), HeaderError> {
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid_name {
        return Err(HeaderError::InvalidName(name.to_string()));
    }
    if RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(HeaderError::Reserved(name.to_string()));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(HeaderError::InvalidValue(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_host_cannot_be_set() {
        for name in [
            "Authorization",
            "authorization",
            "HOST",
            "Proxy-Authorization",
        ] {
            let err = ApiRequest::get(Api::Graph, "https://graph.microsoft.com/v1.0/me")
                .with_header(name, "x")
                .unwrap_err();
            assert_eq!(err, HeaderError::Reserved(name.to_string()));
        }
        assert!(matches!(
            ApiRequest::get(Api::Graph, "u").with_header("Bad Name", "x"),
            Err(HeaderError::InvalidName(_))
        ));
        assert!(matches!(
            ApiRequest::get(Api::Graph, "u").with_header("X-A", "a\r\nHost: evil"),
            Err(HeaderError::InvalidValue(_))
        ));
    }

    #[test]
    fn kept_items_match_case_insensitively() {
        let keep = KeepItems {
            field: "caller".into(),
            equals: "Alex.Wilber@contoso.com".into(),
        };
        assert!(keep.matches(&serde_json::json!({"caller": "alex.wilber@CONTOSO.com"})));
        assert!(!keep.matches(&serde_json::json!({"caller": "grady@contoso.com"})));
        assert!(
            !keep.matches(&serde_json::json!({"claims": {"caller": "alex.wilber@contoso.com"}}))
        );
    }

    #[test]
    fn headers_appear_in_json_only_when_set() {
        let plain = ApiRequest::get(Api::Graph, "https://g/v1.0/me");
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("headers"), "{text}");
        let back: ApiRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, plain);
        let with = plain.with_header("ConsistencyLevel", "eventual").unwrap();
        let value = serde_json::to_value(&with).unwrap();
        assert_eq!(value["headers"]["ConsistencyLevel"], "eventual");
        assert_eq!(serde_json::from_value::<ApiRequest>(value).unwrap(), with);
    }
}
