//! `[server]`: where the API listens, its tokens and roles, ingestion signatures.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The HTTP API of `riposte serve` (DESIGN.md §3). Read by `server/`; nothing else listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the API binds. Loopback by default so a fresh install exposes nothing.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// API bearer tokens; only their sha256 is kept, so the file itself grants nothing.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// Largest request body accepted (bytes); larger ones get 413 before they are buffered,
    /// so an alert storm of huge payloads cannot exhaust memory. Default 1 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// When present, ingestion also requires an HMAC signature of the body, so a leaked
    /// webhook URL (with its `?token=`) alone cannot inject alerts.
    #[serde(default)]
    pub hmac: Option<HmacSettings>,
    /// How long a client may take to send a request's headers, and then its body (seconds,
    /// each). A slow sender holding connections open cannot starve the API. Default 30.
    #[serde(default = "default_read_timeout_secs")]
    pub read_timeout_secs: u64,
    /// The base of links people follow to the review page (notifications, the demo).
    /// Default `http://{listen}`; set it to the address behind a load balancer.
    #[serde(default)]
    pub public_url: Option<String>,
    /// `[server.oidc]`: review-page sign-in with Entra ID; absent, the sign-in form takes an
    /// API token instead.
    #[serde(default)]
    pub oidc: Option<OidcSettings>,
}

/// The review page's app registration. The authority is `[azure]`'s (cloud login host, or
/// `authority_host`, and `tenant_id`), so sign-in and riposte's own identity are one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Application (client) id; the id token's audience.
    pub client_id: String,
    /// Its client secret, for the code redemption; wrapped so it never reaches a formatter.
    pub client_secret: secrecy::SecretString,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: default_listen(),
            tokens: Vec::new(),
            max_body_bytes: default_max_body_bytes(),
            hmac: None,
            read_timeout_secs: default_read_timeout_secs(),
            public_url: None,
            oidc: None,
        }
    }
}

fn default_read_timeout_secs() -> u64 {
    30
}

impl ServerSettings {
    /// `public_url`, or `http://{listen}`, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.read_timeout_secs.max(1))
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}

/// Signature verification on `POST /v1/alerts/{source}`: the sender puts the unix time in the
/// timestamp header and `sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` in the
/// signature header. Signing the timestamp bounds how long a captured request can be replayed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacSettings {
    /// The shared secret; wrapped so it never reaches a formatter.
    pub secret: secrecy::SecretString,
    /// Header carrying `sha256=<hex>`.
    #[serde(default = "default_signature_header")]
    pub header: String,
    /// Header carrying the signing time in unix seconds.
    #[serde(default = "default_timestamp_header")]
    pub timestamp_header: String,
    /// How far (seconds, either direction) the timestamp may be from our clock; wider
    /// tolerates clock skew, narrower shortens the replay window. Default 300.
    #[serde(default = "default_window_secs")]
    pub window_secs: u64,
}

fn default_signature_header() -> String {
    "X-Riposte-Signature".into()
}

fn default_timestamp_header() -> String {
    "X-Riposte-Timestamp".into()
}

fn default_window_secs() -> u64 {
    300
}

/// One API token as configured: `riposte token new` prints it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds the token; it becomes the caller's name in runs, approvals and the audit
    /// trail (an approver cannot approve a run requested under the same name).
    pub name: String,
    /// What the token may do.
    pub role: Role,
    /// Hex sha256 of the token.
    pub sha256: String,
}

/// API roles. `ingest` may only post alerts; from `viewer` on, each includes the ones
/// before it (and a responder or higher may post alerts too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingest,
    Viewer,
    Responder,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Ingest,
        Role::Viewer,
        Role::Responder,
        Role::Approver,
        Role::Admin,
    ];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a role: ingest, viewer, responder, approver or admin")
            })
    }
}

impl ServerSettings {
    /// Refuses a token table that would silently lock a sender out (a mistyped digest) or
    /// make two holders indistinguishable in the audit trail (a repeated name).
    pub fn check(&self) -> Result<(), String> {
        if let Some(url) = &self.public_url {
            match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => {
                    return Err(format!(
                        "server.public_url `{url}` must be an http(s) URL such as https://riposte.contoso.com"
                    ));
                }
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for t in &self.tokens {
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "server.tokens `{}`: sha256 must be 64 hex digits (run `riposte token new`)",
                    t.name
                ));
            }
            if !names.insert(t.name.as_str()) {
                return Err(format!(
                    "server.tokens: the name `{}` is used twice; each token needs its own name",
                    t.name
                ));
            }
        }
        if self.read_timeout_secs == 0 {
            return Err("server.read_timeout_secs must be greater than 0".to_string());
        }
        if self.max_body_bytes == 0 {
            return Err("server.max_body_bytes must be greater than 0".to_string());
        }
        if let Some(oidc) = &self.oidc {
            use secrecy::ExposeSecret;
            if oidc.client_id.trim().is_empty() || oidc.client_secret.expose_secret().is_empty() {
                return Err(
                    "server.oidc needs client_id and client_secret (the review page's app registration)".to_string(),
                );
            }
        }
        if let Some(hmac) = &self.hmac {
            use secrecy::ExposeSecret;
            if hmac.secret.expose_secret().is_empty() {
                return Err(
                    "server.hmac.secret is empty; set it or remove [server.hmac]".to_string(),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format as _, Toml};
    use secrecy::ExposeSecret as _;

    fn server(text: &str) -> Result<ServerSettings, String> {
        figment::Figment::from(Toml::string(text))
            .extract_inner("server")
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_oidc_section_needs_both_keys_and_keeps_its_secret_out_of_debug() {
        let s = server("[server.oidc]\nclient_id = \"app\"\nclient_secret = \"s3cret\"\n").unwrap();
        let oidc = s.oidc.as_ref().unwrap();
        assert_eq!(
            (oidc.client_id.as_str(), oidc.client_secret.expose_secret()),
            ("app", "s3cret")
        );
        assert!(s.check().is_ok());
        assert!(!format!("{s:?}").contains("s3cret"));
        assert!(server("[server.oidc]\nclient_id = \"app\"\n").is_err());
        assert!(server("[server.oidc]\nclient_secret = \"s\"\n").is_err());
        assert!(
            server("[server.oidc]\nclient_id = \"a\"\nclient_secret = \"s\"\nauthority = \"x\"\n")
                .is_err()
        );
        let empty = server("[server.oidc]\nclient_id = \"app\"\nclient_secret = \"\"\n").unwrap();
        assert!(empty.check().unwrap_err().contains("server.oidc"));
        assert!(server("[server]\n").unwrap().oidc.is_none());
    }
}
