//! The `[azure]` and `[lacework]` configuration tables (DESIGN.md §3). Key names are part
//! of the user contract; the doc comments here are the reference for them.

use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;

use super::cloud::{Cloud, Endpoints, check_endpoint_scheme};
use super::error::ApiError;

/// Which JWS algorithm signs a certificate client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertificateAlg {
    /// RSA-PSS with SHA-256 and an `x5t#S256` header: what Entra documents today.
    #[default]
    Ps256,
    /// RSA PKCS#1 v1.5 with a SHA-1 `x5t` header: the older form some tenants still expect.
    Rs256,
}

/// `[azure]`: which tenant, which identity, which cloud. Exactly one way to authenticate is
/// used; see [`crate::connectors::azure::Credential::from_settings`] for the order.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSettings {
    /// National cloud; decides default endpoints and token scopes.
    #[serde(default)]
    pub cloud: Cloud,
    /// Tenant GUID or verified domain.
    pub tenant_id: Option<String>,
    /// Application (client) id of the service principal riposte acts as.
    pub client_id: Option<String>,
    /// Client secret value; kept wrapped so it never reaches a formatter.
    pub client_secret: Option<SecretString>,
    /// PEM file holding the certificate and its private key (client assertion).
    pub certificate_path: Option<String>,
    /// `ps256` (default) or `rs256`.
    pub certificate_alg: Option<CertificateAlg>,
    /// Use the host's managed identity (IMDS, or App Service when `IDENTITY_ENDPOINT` is set).
    #[serde(default)]
    pub managed_identity: bool,
    /// Client id of a user-assigned managed identity, when the host has several.
    pub managed_identity_client_id: Option<String>,
    /// Override of the Entra authority, e.g. the emulator.
    pub authority_host: Option<String>,
    /// Override of the Graph base URL (no `/v1.0`).
    pub graph_endpoint: Option<String>,
    /// Override of the ARM base URL.
    pub arm_endpoint: Option<String>,
    /// Override of the Log Analytics base URL (no `/v1`).
    pub log_analytics_endpoint: Option<String>,
}

impl fmt::Debug for AzureSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureSettings")
            .field("cloud", &self.cloud)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("certificate_path", &self.certificate_path)
            .field("certificate_alg", &self.certificate_alg)
            .field("managed_identity", &self.managed_identity)
            .field(
                "managed_identity_client_id",
                &self.managed_identity_client_id,
            )
            .field("authority_host", &self.authority_host)
            .field("graph_endpoint", &self.graph_endpoint)
            .field("arm_endpoint", &self.arm_endpoint)
            .field("log_analytics_endpoint", &self.log_analytics_endpoint)
            .finish()
    }
}

impl AzureSettings {
    /// The cloud's endpoints with the configured overrides applied. Every override must be
    /// https (or http on loopback), so a typo cannot send a token in clear text.
    pub fn endpoints(&self) -> Result<Endpoints, ApiError> {
        let overrides = [
            ("azure.authority_host", &self.authority_host),
            ("azure.graph_endpoint", &self.graph_endpoint),
            ("azure.arm_endpoint", &self.arm_endpoint),
            ("azure.log_analytics_endpoint", &self.log_analytics_endpoint),
        ];
        for (key, value) in overrides {
            if let Some(url) = value {
                check_endpoint_scheme(url).map_err(|e| ApiError::Config(format!("{key}: {e}")))?;
            }
        }
        Ok(self.cloud.endpoints().with_overrides(
            self.authority_host.as_deref(),
            self.graph_endpoint.as_deref(),
            self.arm_endpoint.as_deref(),
            self.log_analytics_endpoint.as_deref(),
        ))
    }

    /// Whether any way to authenticate is configured here (workload identity comes from the
    /// environment and is checked when the credential is built).
    pub fn has_credentials(&self) -> bool {
        self.client_secret.is_some() || self.certificate_path.is_some() || self.managed_identity
    }

    pub fn certificate_alg(&self) -> CertificateAlg {
        self.certificate_alg.unwrap_or_default()
    }
}

/// `[lacework]`: API v2 access for alert enrichment.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaceworkSettings {
    /// Account name: the API is `https://{account}.lacework.net` unless `endpoint` is set.
    pub account: Option<String>,
    /// Base URL override (no `/api/v2`), e.g. the emulator.
    pub endpoint: Option<String>,
    /// API key id (`keyId` in the token request).
    pub key_id: String,
    /// API secret, sent as `X-LW-UAKS` only to the token endpoint.
    pub secret: SecretString,
}

impl fmt::Debug for LaceworkSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaceworkSettings")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .field("key_id", &self.key_id)
            .field("secret", &"[REDACTED]")
            .finish()
    }
}

impl LaceworkSettings {
    /// Whether a key id and secret are configured, with somewhere to send them.
    pub fn has_credentials(&self) -> bool {
        use secrecy::ExposeSecret;
        !self.key_id.is_empty()
            && !self.secret.expose_secret().is_empty()
            && (self.account.is_some() || self.endpoint.is_some())
    }

    /// Base URL without a trailing slash: the override, else `https://{account}.lacework.net`.
    pub fn base_url(&self) -> Result<String, ApiError> {
        let url = match (&self.endpoint, &self.account) {
            (Some(e), _) => {
                check_endpoint_scheme(e)
                    .map_err(|e| ApiError::Config(format!("lacework.endpoint: {e}")))?;
                e.trim_end_matches('/').to_string()
            }
            (None, Some(a)) => {
                if a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(ApiError::Config(format!(
                        "lacework.account `{a}` is not an account name; use the part before .lacework.net"
                    )));
                }
                format!("https://{a}.lacework.net")
            }
            (None, None) => {
                return Err(ApiError::Config(
                    "set lacework.account or lacework.endpoint".into(),
                ));
            }
        };
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_like: serde_json::Value) -> Result<AzureSettings, serde_json::Error> {
        serde_json::from_value(toml_like)
    }

    #[test]
    fn secrets_never_reach_debug() {
        let s = parse(serde_json::json!({"tenant_id": "t", "client_secret": "hunter2"})).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"));
        let l: LaceworkSettings = serde_json::from_value(
            serde_json::json!({"account": "acme", "key_id": "k", "secret": "s3cr3t"}),
        )
        .unwrap();
        assert!(!format!("{l:?}").contains("s3cr3t"));
    }

    #[test]
    fn unknown_keys_are_rejected_and_cloud_defaults_to_public() {
        assert!(parse(serde_json::json!({"tenant": "x"})).is_err());
        let s = parse(serde_json::json!({})).unwrap();
        assert_eq!(s.cloud, Cloud::Public);
        assert_eq!(s.certificate_alg(), CertificateAlg::Ps256);
        assert!(!s.has_credentials());
        let s =
            parse(serde_json::json!({"cloud": "usgov-dod", "certificate_alg": "rs256"})).unwrap();
        assert_eq!(s.cloud, Cloud::UsgovDod);
        assert_eq!(s.certificate_alg(), CertificateAlg::Rs256);
    }

    #[test]
    fn overrides_are_checked_for_https() {
        let s = parse(serde_json::json!({"graph_endpoint": "http://graph.example.com"})).unwrap();
        let err = s.endpoints().unwrap_err();
        assert!(err.to_string().contains("azure.graph_endpoint"), "{err}");
        let s = parse(serde_json::json!({"arm_endpoint": "http://127.0.0.1:8080/"})).unwrap();
        let e = s.endpoints().unwrap();
        assert_eq!(e.arm, "http://127.0.0.1:8080");
        assert_eq!(e.arm_scope, "https://management.azure.com/.default");
    }

    #[test]
    fn lacework_base_url() {
        let l = LaceworkSettings {
            account: Some("acme".into()),
            endpoint: None,
            key_id: "k".into(),
            secret: SecretString::from("s"),
        };
        assert!(l.has_credentials());
        assert_eq!(l.base_url().unwrap(), "https://acme.lacework.net");
        let bad = LaceworkSettings {
            account: Some("evil.com/x".into()),
            ..l.clone()
        };
        assert!(bad.base_url().is_err());
    }
}
