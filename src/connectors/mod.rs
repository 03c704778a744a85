//! Every outbound HTTP call riposte makes goes through this module (STYLE.md habit 5).
//!
//! The rest of the crate describes requests as [`ApiRequest`] values and hands them here;
//! planning only ever sees the read-only [`Lookup`] interface.

pub mod azure;
mod client;
pub mod cloud;
mod error;
pub mod http;
pub mod lacework;
mod request;
pub mod settings;

use async_trait::async_trait;
use serde_json::Value;

pub use client::{Connectors, ReadOnly};
pub use cloud::{Cloud, Endpoints};
pub use error::{ApiError, entra_hint};
pub use http::{ApiResponse, HttpClient, HttpOptions, install_crypto_provider};
pub use lacework::LaceworkClient;
pub use request::{Api, ApiRequest, Method};
pub use settings::{AzureSettings, CertificateAlg, LaceworkSettings};

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
    async fn get(&self, api: Api, url: &str) -> Result<LookupOutcome, ApiError>;
}

/// A `Lookup` with no credentials: every value is unknown until run time.
pub struct NoLookup;

#[async_trait]
impl Lookup for NoLookup {
    async fn get(&self, _api: Api, _url: &str) -> Result<LookupOutcome, ApiError> {
        Ok(LookupOutcome::Unavailable)
    }
}
