//! Request and response plumbing shared by every emulated API.
//!
//! The emulator routes by hand instead of through axum's router: ARM scopes are arbitrary-depth
//! paths, Graph accepts `users('…')` keys and `$batch` re-enters the Graph dispatcher with
//! synthetic requests, so one owned request type that every API handler takes is simpler.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use percent_encoding::percent_decode_str;
use serde_json::Value;

/// Which API a path belongs to; picks the router and the error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Entra,
    Imds,
    AppService,
    Graph,
    Arm,
    LogAnalytics,
    Lacework,
    Control,
    Unknown,
}

impl Api {
    /// Classifies a raw request path.
    pub fn of(path: &str) -> Api {
        let lower = path.to_ascii_lowercase();
        if lower.starts_with("/_emulator/") || lower == "/_emulator" {
            Api::Control
        } else if lower.starts_with("/metadata/identity/") {
            Api::Imds
        } else if lower.starts_with("/msi/token") {
            Api::AppService
        } else if lower.starts_with("/v1.0/") || lower.starts_with("/beta/") {
            Api::Graph
        } else if lower.starts_with("/v1/workspaces/") {
            Api::LogAnalytics
        } else if lower.starts_with("/api/v2/") {
            Api::Lacework
        } else if lower.contains("/oauth2/")
            || lower.ends_with("/v2.0/.well-known/openid-configuration")
            || lower.ends_with("/discovery/v2.0/keys")
        {
            Api::Entra
        } else if lower.starts_with("/subscriptions") || lower.contains("/providers/") {
            Api::Arm
        } else {
            Api::Unknown
        }
    }

    /// The name used in the request log.
    pub fn name(self) -> &'static str {
        match self {
            Api::Entra => "entra",
            Api::Imds => "imds",
            Api::AppService => "app_service",
            Api::Graph => "graph",
            Api::Arm => "arm",
            Api::LogAnalytics => "log_analytics",
            Api::Lacework => "lacework",
            Api::Control => "control",
            Api::Unknown => "unknown",
        }
    }
}

/// One request, fully read, as every handler sees it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    /// Raw path, still percent-encoded.
    pub path: String,
    /// Raw query string without `?`.
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Per-request ids and the base URL for links the response hands out.
    pub ctx: Ctx,
}

/// Ids and addresses that belong to one request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Our id for this request (`request-id`, `x-ms-request-id`, `trace_id`).
    pub request_id: String,
    /// The caller's correlation id, echoed back; Graph and Entra use `client-request-id`,
    /// ARM `x-ms-client-request-id`.
    pub client_request_id: Option<String>,
    /// `http://host:port` as the caller addressed us, for `Location`/`nextLink` URLs.
    pub base_url: String,
    /// When the request arrived.
    pub received: chrono::DateTime<chrono::Utc>,
}

impl Req {
    /// The value of a query parameter, decoded (`+` as space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    }

    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The path split into percent-decoded segments, without the empty leading one.
    pub fn segments(&self) -> Vec<String> {
        path_segments(&self.path)
    }

    /// The body as JSON, `None` when empty.
    pub fn json(&self) -> Result<Option<Value>, serde_json::Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&self.body).map(Some)
    }

    /// The bearer token from `Authorization`, if any.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }
}

/// Splits a raw path into percent-decoded segments.
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

/// A JSON response.
pub fn json(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// A response without a body (`204`, `202` with headers only).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// Sets a header, ignoring values that cannot be header text (they never come from callers).
pub fn set_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

/// A fresh GUID as text.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now, as ARM and Graph print it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
