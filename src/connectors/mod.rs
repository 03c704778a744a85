//! Every outbound HTTP call riposte makes goes through this module (STYLE.md habit 5).
//!
//! The rest of the crate describes requests as [`ApiRequest`] values and hands them here;
//! planning only ever sees the read-only [`Lookup`] interface.

pub mod azure;
mod client;
pub mod cloud;
mod error;
pub mod gate;
pub mod http;
pub mod lacework;
pub mod oidc;
pub mod paging;
mod request;
pub mod settings;
pub mod summary;
pub mod throttle;

use async_trait::async_trait;
use serde_json::Value;

pub use client::{Connectors, ReadOnly};
pub use cloud::{Cloud, Endpoints};
pub use error::{ApiError, entra_hint};
pub use http::{ApiResponse, HttpClient, HttpOptions, install_crypto_provider};
pub use lacework::LaceworkClient;
pub use request::{Api, ApiRequest, HeaderError, KeepItems, Method, check_header};
pub use settings::{AzureSettings, CertificateAlg, LaceworkSettings};
pub use throttle::SharedThrottle;

/// What a read at plan time found.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupOutcome {
    Found(Value),
    /// The API answered 404: the object does not exist.
    NotFound,
    /// Riposte has no credentials for this API, so the value is known only at run time.
    Unavailable,
}

/// The only door the planner has to the outside: GET requests. Having no method that could
/// send anything else is what makes planning structurally unable to mutate.
#[async_trait]
pub trait Lookup: Send + Sync {
    /// Sends `req`, which must be a GET (anything else is refused before it is sent), with
    /// the headers it carries (e.g. Graph's `ConsistencyLevel` for advanced queries).
    async fn read(&self, req: &ApiRequest) -> Result<LookupOutcome, ApiError>;

    /// A plain GET of `url`.
    async fn get(&self, api: Api, url: &str) -> Result<LookupOutcome, ApiError> {
        self.read(&ApiRequest::get(api, url)).await
    }
}

/// Refuses anything but a GET, for every [`Lookup`] implementation.
pub fn check_read(req: &ApiRequest) -> Result<(), ApiError> {
    if req.method.is_read() {
        Ok(())
    } else {
        Err(ApiError::Invalid(format!(
            "a lookup only reads; {} {} was refused",
            req.method, req.url
        )))
    }
}

/// A `Lookup` with no credentials: every value is unknown until run time.
pub struct NoLookup;

#[async_trait]
impl Lookup for NoLookup {
    async fn read(&self, req: &ApiRequest) -> Result<LookupOutcome, ApiError> {
        check_read(req)?;
        Ok(LookupOutcome::Unavailable)
    }
}
