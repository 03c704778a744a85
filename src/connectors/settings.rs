//! Placeholder until the connectors land: the `[azure]` and `[lacework]` configuration.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AzureSettings {
    #[serde(default)]
    pub cloud: super::Cloud,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<secrecy::SecretString>,
    pub certificate_path: Option<std::path::PathBuf>,
    #[serde(default)]
    pub managed_identity: bool,
    pub authority_host: Option<String>,
    pub graph_endpoint: Option<String>,
    pub arm_endpoint: Option<String>,
    pub log_analytics_endpoint: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaceworkSettings {
    pub account: Option<String>,
    pub endpoint: Option<String>,
    pub key_id: Option<String>,
    pub secret: Option<secrecy::SecretString>,
}

impl AzureSettings {
    /// The cloud's endpoints with configured overrides.
    pub fn endpoints(&self) -> Result<super::Endpoints, String> {
        Ok(self.cloud.endpoints().with_overrides(
            self.authority_host.as_deref(),
            self.graph_endpoint.as_deref(),
            self.arm_endpoint.as_deref(),
            self.log_analytics_endpoint.as_deref(),
        ))
    }
}
