use std::time::Duration;

/// A failed call to Graph, ARM, Log Analytics, Entra or Lacework, typed where it is made.
/// Every variant that Microsoft answered carries the request id it returned.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ApiError {
    #[error("throttled (429){}; retry after {retry_after:?}", request_id_suffix(.request_id))]
    Throttled {
        retry_after: Option<Duration>,
        request_id: Option<String>,
    },
    #[error("unauthorized (401): {message}{}", request_id_suffix(.request_id))]
    Unauthorized {
        message: String,
        request_id: Option<String>,
    },
    #[error("forbidden (403) {code}: {message}{}", request_id_suffix(.request_id))]
    Forbidden {
        code: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("not found (404) {code}: {message}{}", request_id_suffix(.request_id))]
    NotFound {
        code: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("transient failure: {message}{}", request_id_suffix(.request_id))]
    Transient {
        status: Option<u16>,
        message: String,
        request_id: Option<String>,
    },
    #[error("{status} {code}: {message}{}", request_id_suffix(.request_id))]
    Permanent {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("authentication failed ({code}): {message} — {hint}")]
    Auth {
        /// The AADSTS code (e.g. `AADSTS7000215`) or the token endpoint's `error`.
        code: String,
        message: String,
        /// What the operator should fix.
        hint: String,
        request_id: Option<String>,
    },
    #[error("configuration: {0}")]
    Config(String),
}

fn request_id_suffix(id: &Option<String>) -> String {
    match id {
        Some(id) => format!(" (request-id {id})"),
        None => String::new(),
    }
}

impl ApiError {
    /// Whether the same request may succeed if sent again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Throttled { .. } | ApiError::Transient { .. }
        )
    }

    /// The request id Microsoft returned, when it answered at all.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ApiError::Throttled { request_id, .. }
            | ApiError::Unauthorized { request_id, .. }
            | ApiError::Forbidden { request_id, .. }
            | ApiError::NotFound { request_id, .. }
            | ApiError::Transient { request_id, .. }
            | ApiError::Permanent { request_id, .. }
            | ApiError::Auth { request_id, .. } => request_id.as_deref(),
            ApiError::Config(_) => None,
        }
    }
}
