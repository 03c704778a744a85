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
    /// A long-running operation ended `Failed` or `Canceled`; `code` and `message` are the
    /// operation's own, so the operator sees why the provider gave up.
    #[error("operation {status}: {code}: {message}{}", request_id_suffix(.request_id))]
    OperationFailed {
        /// `Failed`, `Canceled`, or `TimedOut` when riposte stopped polling.
        status: String,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// Refused before anything was sent (e.g. a `$batch` of more than 20 requests).
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("configuration: {0}")]
    Config(String),
    /// The caller's send gate closed before the request left (see `connectors::gate`);
    /// nothing was sent.
    #[error("not sent: {0}")]
    Withheld(String),
    /// A page's next link pointed away from the site of the first request; it was not
    /// followed.
    #[error("refused to follow the next-page link `{link}`: pages must stay on {expected}")]
    ForeignNextLink { link: String, expected: String },
    /// A request header that is malformed or reserved to the client; nothing was sent.
    #[error(transparent)]
    Header(#[from] super::request::HeaderError),
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
            | ApiError::Auth { request_id, .. }
            | ApiError::OperationFailed { request_id, .. } => request_id.as_deref(),
            ApiError::Config(_)
            | ApiError::Invalid(_)
            | ApiError::Header(_)
            | ApiError::ForeignNextLink { .. }
            | ApiError::Withheld(_) => None,
        }
    }
}

/// What the operator should change for the Entra (AADSTS) errors a service principal meets
/// most; the code alone rarely tells someone on call what to do.
pub fn entra_hint(code: u32) -> &'static str {
    match code {
        7000215 => {
            "The client secret is wrong: copy the secret's *value* (not its id) from the app registration into azure.client_secret."
        }
        7000222 => {
            "The client secret has expired: create a new secret on the app registration and update azure.client_secret."
        }
        700016 => {
            "The application is not found in this tenant: check azure.client_id and azure.tenant_id, and that the app is consented in that tenant."
        }
        90002 => {
            "The tenant is not found: check azure.tenant_id (a GUID or verified domain) and azure.cloud."
        }
        70011 => {
            "The scope is invalid: riposte asks for `<resource>/.default`; check azure.cloud matches the tenant's national cloud."
        }
        700027 => {
            "The client assertion signature is invalid: upload this certificate's public part to the app registration, or point azure.certificate_path at the key that matches the uploaded certificate."
        }
        65001 => {
            "The application has no admin consent for the permissions it needs: grant admin consent on the app registration (riposte preflight lists them)."
        }
        53003 => {
            "Conditional Access blocked the sign-in: exclude this workload identity from the policy or add its location to a trusted network."
        }
        700024 | 500133 => {
            "The client assertion is outside its validity window: check the host clock (NTP)."
        }
        _ => "See the AADSTS code in the Entra error reference and check the azure.* settings.",
    }
}
