//! National clouds and their endpoints (reference/azure-api.md A6).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    #[default]
    Public,
    Usgov,
    UsgovDod,
    China,
}

/// Base URLs (no trailing slash, no API version) and the token scopes that go with them.
/// Scopes follow the cloud, never an override: a proxy or the emulator still gets tokens for
/// the real resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoints {
    pub authority_host: String,
    pub graph: String,
    pub arm: String,
    pub log_analytics: String,
    pub graph_scope: String,
    pub arm_scope: String,
    pub log_analytics_scope: String,
}

impl Cloud {
    pub fn endpoints(self) -> Endpoints {
        let (authority, graph, arm, la) = match self {
            Cloud::Public => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
                "https://management.azure.com",
                "https://api.loganalytics.io",
            ),
            Cloud::Usgov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
                "https://management.usgovcloudapi.net",
                "https://api.loganalytics.us",
            ),
            Cloud::UsgovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
                "https://management.usgovcloudapi.net",
                "https://api.loganalytics.us",
            ),
            Cloud::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
                "https://management.chinacloudapi.cn",
                "https://api.loganalytics.azure.cn",
            ),
        };
        Endpoints {
            authority_host: authority.into(),
            graph: graph.into(),
            arm: arm.into(),
            log_analytics: la.into(),
            graph_scope: format!("{graph}/.default"),
            arm_scope: format!("{arm}/.default"),
            log_analytics_scope: format!("{la}/.default"),
        }
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Cloud::Public.endpoints()
    }
}

impl Endpoints {
    /// Replaces the base URLs that configuration overrides; scopes stay the cloud's.
    pub fn with_overrides(
        mut self,
        authority_host: Option<&str>,
        graph: Option<&str>,
        arm: Option<&str>,
        log_analytics: Option<&str>,
    ) -> Endpoints {
        let trim = |s: &str| s.trim_end_matches('/').to_string();
        if let Some(v) = authority_host {
            self.authority_host = trim(v);
        }
        if let Some(v) = graph {
            self.graph = trim(v);
        }
        if let Some(v) = arm {
            self.arm = trim(v);
        }
        if let Some(v) = log_analytics {
            self.log_analytics = trim(v);
        }
        self
    }

    /// Graph v1.0 base, e.g. `https://graph.microsoft.com/v1.0`.
    pub fn graph_v1(&self) -> String {
        format!("{}/v1.0", self.graph)
    }

    pub fn graph_beta(&self) -> String {
        format!("{}/beta", self.graph)
    }

    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.authority_host, tenant)
    }
}

/// `http://` is accepted only for loopback hosts; everything else must be https.
pub fn check_endpoint_scheme(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(format!(
                    "`{url}` uses plain http; only loopback addresses may, use https"
                ))
            }
        }
        other => Err(format!("`{url}` has scheme `{other}`; use https")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_cloud_not_the_override() {
        let e =
            Cloud::Public
                .endpoints()
                .with_overrides(None, Some("http://127.0.0.1:9/"), None, None);
        assert_eq!(e.graph, "http://127.0.0.1:9");
        assert_eq!(e.graph_scope, "https://graph.microsoft.com/.default");
        assert_eq!(
            Cloud::UsgovDod.endpoints().graph_scope,
            "https://dod-graph.microsoft.us/.default"
        );
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(check_endpoint_scheme("http://127.0.0.1:8080").is_ok());
        assert!(check_endpoint_scheme("http://[::1]:8080").is_ok());
        assert!(check_endpoint_scheme("http://localhost:1").is_ok());
        assert!(check_endpoint_scheme("http://graph.microsoft.com").is_err());
        assert!(check_endpoint_scheme("https://graph.microsoft.com").is_ok());
        assert!(check_endpoint_scheme("ftp://x").is_err());
    }
}
