//! Who riposte is towards Entra: a client secret, a certificate, a managed identity or a
//! workload identity, chosen from configuration and the environment in one documented
//! order, and turned into access tokens through the one HTTP layer.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenResponse,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError, Scope,
    StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::token_cache::{CachedToken, TokenCache};
use crate::connectors::cloud::Endpoints;
use crate::connectors::error::ApiError;
use crate::connectors::http::{EntraErrorBody, HttpClient, OAuthHttp, OAuthTransportError};
use crate::connectors::settings::{AzureSettings, CertificateAlg};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const IMDS_DEFAULT: &str = "http://169.254.169.254";
/// Lifetime assumed when a token endpoint does not say (Entra's default is about an hour).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// oauth2's client, typed with Entra's error body so `error_codes` and `trace_id` survive.
type EntraClient = oauth2::Client<
    EntraErrorBody,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Signs client assertions with a certificate's private key.
pub struct CertificateSigner {
    alg: CertificateAlg,
    key: jsonwebtoken::EncodingKey,
    /// base64url SHA-256 of the certificate DER (`x5t#S256`).
    x5t_s256: String,
    /// base64url SHA-1 of the certificate DER (`x5t`), for RS256.
    x5t: String,
}

impl std::fmt::Debug for CertificateSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateSigner")
            .field("alg", &self.alg)
            .field("x5t#S256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

/// Claims of a client assertion (Entra certificate credentials).
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct AssertionClaims {
    pub aud: String,
    pub iss: String,
    pub sub: String,
    pub jti: String,
    pub nbf: i64,
    pub iat: i64,
    pub exp: i64,
}

/// `(label, DER)` for every PEM block in `text`.
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            current = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            let (open, b64) = current
                .take()
                .ok_or_else(|| format!("`END {label}` without a BEGIN"))?;
            if open != label {
                return Err(format!("`BEGIN {open}` closed by `END {label}`"));
            }
            let der = STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("the {label} block is not valid base64: {e}"))?;
            blocks.push((label.to_string(), der));
        } else if let Some((_, b64)) = current.as_mut() {
            // Skip RFC 1421 headers such as `Proc-Type:` (encrypted legacy keys).
            if !line.contains(':') {
                b64.push_str(line);
            }
        }
    }
    Ok(blocks)
}

impl CertificateSigner {
    /// From a PEM holding the certificate (the first `CERTIFICATE` block, the leaf) and
    /// its unencrypted RSA private key (`PRIVATE KEY` or `RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str, alg: CertificateAlg) -> Result<CertificateSigner, ApiError> {
        let config = |m: String| ApiError::Config(format!("azure.certificate_path: {m}"));
        let blocks = pem_blocks(pem).map_err(config)?;
        let cert = blocks
            .iter()
            .find(|(l, _)| l == "CERTIFICATE")
            .map(|(_, der)| der)
            .ok_or_else(|| {
                config(
                    "no CERTIFICATE block; the file must hold the certificate and its private key"
                        .into(),
                )
            })?;
        if blocks.iter().any(|(l, _)| l == "ENCRYPTED PRIVATE KEY") {
            return Err(config(
                "the private key is encrypted; export it unencrypted (openssl pkcs8 -nocrypt) and protect the file instead".into(),
            ));
        }
        let (label, key_der) = blocks
            .iter()
            .find(|(l, _)| l == "PRIVATE KEY" || l == "RSA PRIVATE KEY")
            .ok_or_else(|| config("no PRIVATE KEY block next to the certificate".into()))?;
        let key_pem = format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            STANDARD.encode(key_der)
        );
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
            .map_err(|e| config(format!("the private key is not an RSA key: {e}")))?;
        Ok(CertificateSigner {
            alg,
            key,
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(cert)),
            x5t: URL_SAFE_NO_PAD.encode(Sha1::digest(cert)),
        })
    }

    /// A fresh signed assertion for `token_url`: valid 10 minutes, unique `jti`.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> Result<String, ApiError> {
        let mut header = match self.alg {
            CertificateAlg::Ps256 => {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
                h.x5t_s256 = Some(self.x5t_s256.clone());
                h
            }
            CertificateAlg::Rs256 => {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                h.x5t = Some(self.x5t.clone());
                h
            }
        };
        header.typ = Some("JWT".into());
        let now = chrono::Utc::now().timestamp();
        let claims = AssertionClaims {
            aud: token_url.to_string(),
            iss: client_id.to_string(),
            sub: client_id.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now,
            iat: now,
            exp: now + 600,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| ApiError::Config(format!("cannot sign the client assertion: {e}")))
    }
}

/// Where a managed identity's token comes from.
#[derive(Debug)]
pub enum ManagedIdentitySource {
    /// VM / VMSS / AKS node: the Instance Metadata Service.
    Imds { base: String },
    /// App Service / Functions: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`.
    AppService {
        endpoint: String,
        header: SecretString,
    },
}

/// One way of obtaining tokens.
#[derive(Debug)]
pub enum Credential {
    ClientSecret {
        tenant: String,
        client_id: String,
        secret: SecretString,
        token_url: String,
    },
    Certificate {
        tenant: String,
        client_id: String,
        token_url: String,
        signer: CertificateSigner,
    },
    ManagedIdentity {
        source: ManagedIdentitySource,
        /// A user-assigned identity's client id; `None` for the system-assigned one.
        client_id: Option<String>,
    },
    /// Kubernetes workload identity: a projected service-account token exchanged as a
    /// client assertion. The file is re-read per request because the kubelet rotates it.
    WorkloadIdentity {
        tenant: String,
        client_id: String,
        token_url: String,
        token_file: String,
    },
}

fn required(value: Option<String>, what: &str) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::Config(format!("{what} is required for this credential")))
}

impl Credential {
    /// Chooses the credential, first match wins:
    /// 1. `client_secret` (with `tenant_id`, `client_id`);
    /// 2. `certificate_path` (PEM with certificate and key);
    /// 3. `managed_identity = true`: App Service when `IDENTITY_ENDPOINT` and
    ///    `IDENTITY_HEADER` are set, else IMDS (base overridable with
    ///    `AZURE_POD_IDENTITY_AUTHORITY_HOST`, as the Azure SDKs do);
    /// 4. workload identity when `AZURE_FEDERATED_TOKEN_FILE` is set (`tenant_id` /
    ///    `client_id` fall back to `AZURE_TENANT_ID` / `AZURE_CLIENT_ID`).
    ///
    /// Both a secret and a certificate is an error rather than a silent pick. `Ok(None)`
    /// means no credential: lookups report `Unavailable`. `env` reads environment variables
    /// (a parameter so tests need not mutate the process environment).
    pub fn from_settings(
        settings: &AzureSettings,
        endpoints: &Endpoints,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Credential>, ApiError> {
        if settings.client_secret.is_some() && settings.certificate_path.is_some() {
            return Err(ApiError::Config(
                "set azure.client_secret or azure.certificate_path, not both".into(),
            ));
        }
        if let Some(secret) = &settings.client_secret {
            let tenant = required(settings.tenant_id.clone(), "azure.tenant_id")?;
            return Ok(Some(Credential::ClientSecret {
                token_url: endpoints.token_url(&tenant),
                tenant,
                client_id: required(settings.client_id.clone(), "azure.client_id")?,
                secret: secret.clone(),
            }));
        }
        if let Some(path) = &settings.certificate_path {
            let tenant = required(settings.tenant_id.clone(), "azure.tenant_id")?;
            let pem = std::fs::read_to_string(path).map_err(|e| {
                ApiError::Config(format!(
                    "azure.certificate_path `{path}` cannot be read: {e}"
                ))
            })?;
            return Ok(Some(Credential::Certificate {
                token_url: endpoints.token_url(&tenant),
                tenant,
                client_id: required(settings.client_id.clone(), "azure.client_id")?,
                signer: CertificateSigner::from_pem(&pem, settings.certificate_alg())?,
            }));
        }
        if settings.managed_identity {
            let source = match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) {
                (Some(endpoint), Some(header)) => ManagedIdentitySource::AppService {
                    endpoint,
                    header: SecretString::from(header),
                },
                _ => ManagedIdentitySource::Imds {
                    base: env("AZURE_POD_IDENTITY_AUTHORITY_HOST")
                        .map(|b| b.trim_end_matches('/').to_string())
                        .unwrap_or_else(|| IMDS_DEFAULT.to_string()),
                },
            };
            return Ok(Some(Credential::ManagedIdentity {
                source,
                client_id: settings.managed_identity_client_id.clone(),
            }));
        }
        if let Some(token_file) = env("AZURE_FEDERATED_TOKEN_FILE") {
            let tenant = required(
                settings
                    .tenant_id
                    .clone()
                    .or_else(|| env("AZURE_TENANT_ID")),
                "azure.tenant_id (or AZURE_TENANT_ID)",
            )?;
            return Ok(Some(Credential::WorkloadIdentity {
                token_url: endpoints.token_url(&tenant),
                tenant,
                client_id: required(
                    settings
                        .client_id
                        .clone()
                        .or_else(|| env("AZURE_CLIENT_ID")),
                    "azure.client_id (or AZURE_CLIENT_ID)",
                )?,
                token_file,
            }));
        }
        Ok(None)
    }

    /// The name the token cache files tokens under.
    pub fn tenant(&self) -> &str {
        match self {
            Credential::ClientSecret { tenant, .. }
            | Credential::Certificate { tenant, .. }
            | Credential::WorkloadIdentity { tenant, .. } => tenant,
            Credential::ManagedIdentity { .. } => "managed-identity",
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ClientSecret { .. } => "client_secret",
            Credential::Certificate { .. } => "certificate",
            Credential::ManagedIdentity { .. } => "managed_identity",
            Credential::WorkloadIdentity { .. } => "workload_identity",
        }
    }

    /// Fetches a new token for `scope` (`<resource>/.default`), bypassing any cache.
    pub async fn fetch(&self, http: &HttpClient, scope: &str) -> Result<CachedToken, ApiError> {
        match self {
            Credential::ClientSecret {
                client_id,
                secret,
                token_url,
                ..
            } => client_credentials(http, token_url, client_id, Some(secret), None, scope).await,
            Credential::Certificate {
                client_id,
                token_url,
                signer,
                ..
            } => {
                let assertion = signer.assertion(client_id, token_url)?;
                client_credentials(http, token_url, client_id, None, Some(assertion), scope).await
            }
            Credential::WorkloadIdentity {
                client_id,
                token_url,
                token_file,
                ..
            } => {
                let assertion = tokio::fs::read_to_string(token_file).await.map_err(|e| {
                    ApiError::Config(format!(
                        "AZURE_FEDERATED_TOKEN_FILE `{token_file}` cannot be read: {e}"
                    ))
                })?;
                let assertion = assertion.trim().to_string();
                client_credentials(http, token_url, client_id, None, Some(assertion), scope).await
            }
            Credential::ManagedIdentity { source, client_id } => {
                managed_identity(http, source, client_id.as_deref(), scope).await
            }
        }
    }
}

async fn client_credentials(
    http: &HttpClient,
    token_url: &str,
    client_id: &str,
    secret: Option<&SecretString>,
    assertion: Option<String>,
    scope: &str,
) -> Result<CachedToken, ApiError> {
    let token_uri = TokenUrl::new(token_url.to_string())
        .map_err(|e| ApiError::Config(format!("token URL `{token_url}`: {e}")))?;
    let mut client: EntraClient = oauth2::Client::new(ClientId::new(client_id.to_string()))
        .set_token_uri(token_uri)
        .set_auth_type(AuthType::RequestBody);
    if let Some(secret) = secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
    }
    let mut request = client
        .exchange_client_credentials()
        .add_scope(Scope::new(scope.to_string()));
    if let Some(assertion) = assertion {
        request = request
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", assertion);
    }
    let adapter = OAuthHttp(http);
    match request.request_async(&adapter).await {
        Ok(token) => Ok(CachedToken::new(
            SecretString::from(token.access_token().secret().clone()),
            token.expires_in().unwrap_or(DEFAULT_LIFETIME),
        )),
        Err(RequestTokenError::ServerResponse(body)) => Err(body.into_api_error(None)),
        Err(RequestTokenError::Request(OAuthTransportError(e))) => Err(e),
        // The body is not echoed: it could hold a token.
        Err(RequestTokenError::Parse(e, _)) => Err(ApiError::Auth {
            code: "invalid_token_response".into(),
            message: format!("the token endpoint's answer is not a token response: {e}"),
            hint: "Check azure.authority_host points at an Entra token endpoint.".into(),
            request_id: None,
        }),
        Err(RequestTokenError::Other(m)) => Err(ApiError::Auth {
            code: "token_request_failed".into(),
            message: m,
            hint: "Check azure.authority_host and azure.tenant_id.".into(),
            request_id: None,
        }),
    }
}

/// A string or number field as seconds (IMDS sends numbers as strings).
fn seconds_field(body: &Value, name: &str) -> Option<i64> {
    match body.get(name)? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

async fn managed_identity(
    http: &HttpClient,
    source: &ManagedIdentitySource,
    client_id: Option<&str>,
    scope: &str,
) -> Result<CachedToken, ApiError> {
    // Managed identity endpoints take a resource, not a scope.
    let resource = scope.strip_suffix("/.default").unwrap_or(scope);
    let (base, api_version, header_name, header_value) = match source {
        ManagedIdentitySource::Imds { base } => (
            format!("{base}/metadata/identity/oauth2/token"),
            "2018-02-01",
            "Metadata",
            SecretString::from("true"),
        ),
        ManagedIdentitySource::AppService { endpoint, header } => (
            endpoint.clone(),
            "2019-08-01",
            "X-IDENTITY-HEADER",
            header.clone(),
        ),
    };
    let mut url = url::Url::parse(&base)
        .map_err(|e| ApiError::Config(format!("managed identity endpoint `{base}`: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("api-version", api_version)
            .append_pair("resource", resource);
        if let Some(id) = client_id {
            q.append_pair("client_id", id);
        }
    }
    let mut value = oauth2::http::HeaderValue::from_str(header_value.expose_secret())
        .map_err(|_| ApiError::Config("IDENTITY_HEADER is not a valid header value".into()))?;
    value.set_sensitive(true);
    let request = oauth2::http::Request::builder()
        .method(oauth2::http::Method::GET)
        .uri(url.as_str())
        .header(header_name, value)
        .header("accept", "application/json")
        .body(Vec::new())
        .map_err(|e| ApiError::Config(format!("managed identity request: {e}")))?;
    let response = http.send_raw(request).await?;
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-ms-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    if status >= 400 {
        return Err(crate::connectors::http::error_from_response(
            status, &body, request_id, None,
        ));
    }
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::Auth {
            code: "invalid_token_response".into(),
            message: "the managed identity endpoint answered without an access_token".into(),
            hint: "Check that a managed identity is assigned to this host.".into(),
            request_id: request_id.clone(),
        })?;
    let lifetime = seconds_field(&body, "expires_in")
        .or_else(|| {
            seconds_field(&body, "expires_on").map(|on| on - chrono::Utc::now().timestamp())
        })
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
        .unwrap_or(DEFAULT_LIFETIME);
    Ok(CachedToken::new(
        SecretString::from(token.to_string()),
        lifetime,
    ))
}

/// A credential plus its cache: what the clients ask for tokens.
#[derive(Debug)]
pub struct TokenProvider {
    credential: Credential,
    cache: TokenCache,
    http: HttpClient,
}

impl TokenProvider {
    pub fn new(credential: Credential, http: HttpClient) -> TokenProvider {
        TokenProvider {
            credential,
            cache: TokenCache::new(),
            http,
        }
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// A token for `scope`, from the cache when fresh; one request however many callers.
    pub async fn token(&self, scope: &str) -> Result<Arc<CachedToken>, ApiError> {
        self.cache
            .get_or_fetch(self.credential.tenant(), scope, || {
                self.credential.fetch(&self.http, scope)
            })
            .await
    }

    /// Forgets the token for `scope` after the API rejected it.
    pub fn invalidate(&self, scope: &str) {
        self.cache.invalidate(self.credential.tenant(), scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn settings(v: serde_json::Value) -> AzureSettings {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn order_secret_then_managed_identity_then_workload() {
        let e = Endpoints::default();
        let s = settings(
            serde_json::json!({"tenant_id": "t", "client_id": "c", "client_secret": "x", "managed_identity": true}),
        );
        let c = Credential::from_settings(&s, &e, &env_of(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(c.kind(), "client_secret");
        assert!(
            matches!(&c, Credential::ClientSecret { token_url, .. } if token_url == "https://login.microsoftonline.com/t/oauth2/v2.0/token")
        );

        let s = settings(
            serde_json::json!({"managed_identity": true, "managed_identity_client_id": "uai"}),
        );
        let c = Credential::from_settings(&s, &e, &env_of(&[("AZURE_FEDERATED_TOKEN_FILE", "/f")]))
            .unwrap()
            .unwrap();
        assert!(
            matches!(&c, Credential::ManagedIdentity { source: ManagedIdentitySource::Imds { base }, client_id: Some(id) } if base == IMDS_DEFAULT && id == "uai")
        );

        let c = Credential::from_settings(
            &s,
            &e,
            &env_of(&[
                ("IDENTITY_ENDPOINT", "http://169.254.129.2:8081/msi/token"),
                ("IDENTITY_HEADER", "h"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert!(matches!(
            &c,
            Credential::ManagedIdentity {
                source: ManagedIdentitySource::AppService { .. },
                ..
            }
        ));

        let s = settings(serde_json::json!({}));
        let c = Credential::from_settings(
            &s,
            &e,
            &env_of(&[
                ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
                ("AZURE_CLIENT_ID", "c2"),
                ("AZURE_TENANT_ID", "t2"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert!(
            matches!(&c, Credential::WorkloadIdentity { client_id, tenant, .. } if client_id == "c2" && tenant == "t2")
        );

        assert!(
            Credential::from_settings(&s, &e, &env_of(&[]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn ambiguous_or_incomplete_settings_are_errors() {
        let e = Endpoints::default();
        let s = settings(
            serde_json::json!({"tenant_id": "t", "client_id": "c", "client_secret": "x", "certificate_path": "/p"}),
        );
        assert!(Credential::from_settings(&s, &e, &env_of(&[])).is_err());
        let s = settings(serde_json::json!({"client_id": "c", "client_secret": "x"}));
        let err = Credential::from_settings(&s, &e, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("azure.tenant_id"), "{err}");
    }

    #[test]
    fn pem_parsing_reports_what_is_missing() {
        let err = CertificateSigner::from_pem("", CertificateAlg::Ps256).unwrap_err();
        assert!(err.to_string().contains("CERTIFICATE"), "{err}");
        let only_cert = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        let err = CertificateSigner::from_pem(only_cert, CertificateAlg::Ps256).unwrap_err();
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
        assert!(pem_blocks("-----BEGIN A-----\nAA==\n-----END B-----").is_err());
        assert_eq!(
            pem_blocks("x\n-----BEGIN A-----\nAAEC\n-----END A-----\n").unwrap(),
            vec![("A".to_string(), vec![0, 1, 2])]
        );
    }

    #[test]
    fn seconds_fields_accept_strings_and_numbers() {
        let b = serde_json::json!({"expires_in": "3599", "expires_on": 17});
        assert_eq!(seconds_field(&b, "expires_in"), Some(3599));
        assert_eq!(seconds_field(&b, "expires_on"), Some(17));
        assert_eq!(seconds_field(&b, "nope"), None);
    }
}
