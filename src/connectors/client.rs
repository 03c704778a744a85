//! The facade the engine and actions use: one value that sends any [`ApiRequest`] with the
//! right token, and hands the planner a read-only view.

use std::sync::Arc;

use async_trait::async_trait;

use super::azure::{ArmClient, AzureSession, Credential, TokenProvider};
use super::cloud::{Endpoints, check_endpoint_scheme};
use super::error::ApiError;
use super::http::{ApiResponse, Auth, HttpClient, HttpOptions};
use super::lacework::LaceworkClient;
use super::request::{Api, ApiRequest};
use super::settings::{AzureSettings, LaceworkSettings};
use super::{Lookup, LookupOutcome, check_read};

/// Every outbound API, behind one HTTP layer.
#[derive(Debug, Clone)]
pub struct Connectors {
    http: HttpClient,
    azure: Arc<AzureSession>,
    lacework: Option<LaceworkClient>,
}

impl Connectors {
    /// Shares throttle holds with every replica (the store keeps them).
    pub fn share_throttle(&self, shared: Arc<dyn super::SharedThrottle>) {
        self.http.share_throttle(shared);
    }

    /// Builds the connectors from configuration, reading the process environment for
    /// managed and workload identity (see [`Credential::from_settings`]).
    pub fn new(
        azure: &AzureSettings,
        lacework: Option<&LaceworkSettings>,
        opts: HttpOptions,
    ) -> Result<Connectors, ApiError> {
        Connectors::with_env(azure, lacework, opts, &|k| std::env::var(k).ok())
    }

    /// [`Connectors::new`] with an explicit environment, for tests and embedding.
    pub fn with_env(
        azure: &AzureSettings,
        lacework: Option<&LaceworkSettings>,
        opts: HttpOptions,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Connectors, ApiError> {
        let http = HttpClient::new(opts)?;
        let endpoints = azure.endpoints()?;
        let credential = Credential::from_settings(azure, &endpoints, env)?;
        let tenant = azure.tenant_id.clone().or_else(|| match &credential {
            Some(Credential::WorkloadIdentity { tenant, .. }) => Some(tenant.clone()),
            _ => None,
        });
        let tokens = credential.map(|c| TokenProvider::new(c, http.clone()));
        let session = AzureSession::new(http.clone(), endpoints, tokens, tenant.as_deref());
        let lacework = lacework
            .filter(|l| l.has_credentials())
            .map(|l| LaceworkClient::new(l, http.clone()))
            .transpose()?;
        Ok(Connectors {
            http,
            azure: Arc::new(session),
            lacework,
        })
    }

    /// Sends one request with the token its API needs. ARM answers of 201/202 with a
    /// polling header are driven to the end, and the final response is returned.
    pub async fn send(&self, req: &ApiRequest) -> Result<ApiResponse, ApiError> {
        match req.api {
            Api::Graph | Api::LogAnalytics => self.azure.send(req, &[]).await,
            Api::Arm => self.arm().send(req).await,
            Api::Lacework => self.lacework_or_err()?.send(req).await,
            Api::Webhook => {
                check_endpoint_scheme(&req.url).map_err(ApiError::Invalid)?;
                self.http.send(req, Auth::None, "webhook").await
            }
        }
    }

    fn lacework_or_err(&self) -> Result<&LaceworkClient, ApiError> {
        self.lacework
            .as_ref()
            .ok_or_else(|| ApiError::Config("no [lacework] credentials configured".into()))
    }

    /// The planner's door: real reads with Azure credentials; without them every read is
    /// unknown until run time ([`NoLookup`]).
    pub fn planning_lookup(&self) -> Box<dyn super::Lookup> {
        if self.has_azure_credentials() {
            Box::new(self.read_only())
        } else {
            Box::new(super::NoLookup)
        }
    }

    /// The planner's view: GET only.
    pub fn read_only(&self) -> ReadOnly {
        ReadOnly {
            inner: self.clone(),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        self.azure.endpoints()
    }

    /// Whether an Azure credential is configured (lookups are `Unavailable` otherwise).
    /// The claims of riposte's own access token for `api` (see [`AzureSession::token_claims`]).
    pub async fn token_claims(&self, api: Api) -> Result<serde_json::Value, ApiError> {
        self.azure.token_claims(api).await
    }

    pub fn has_azure_credentials(&self) -> bool {
        self.azure.has_credentials()
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn arm(&self) -> ArmClient {
        ArmClient::new(self.azure.clone())
    }

    pub fn lacework(&self) -> Option<&LaceworkClient> {
        self.lacework.as_ref()
    }
}

/// Read-only access for planning. Its only operation is [`Lookup::get`], and its field is
/// private, so holding a `ReadOnly` gives no way to send anything but a GET.
#[derive(Debug, Clone)]
pub struct ReadOnly {
    inner: Connectors,
}

#[async_trait]
impl Lookup for ReadOnly {
    async fn read(&self, req: &ApiRequest) -> Result<LookupOutcome, ApiError> {
        check_read(req)?;
        let available = match req.api {
            Api::Graph | Api::Arm | Api::LogAnalytics => self.inner.has_azure_credentials(),
            Api::Lacework => self.inner.lacework.is_some(),
            // Planning never calls arbitrary hosts.
            Api::Webhook => false,
        };
        if !available {
            return Ok(LookupOutcome::Unavailable);
        }
        let result = match req.api {
            Api::Lacework => self.inner.lacework_or_err()?.send(req).await,
            _ => self.inner.azure.send(req, &[]).await,
        };
        match result {
            Ok(resp) => Ok(LookupOutcome::Found(resp.body)),
            Err(ApiError::NotFound { .. }) => Ok(LookupOutcome::NotFound),
            Err(e) => Err(e),
        }
    }
}
