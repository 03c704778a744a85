//! Review-page sign-in with Entra ID: the authorization code flow with PKCE (S256), a state
//! and a nonce, through the `oauth2` crate, and the id token checked against the tenant's JWKS.
//!
//! How the routes use it:
//! ```text
//! let oidc = OidcClient::discover_for(oidc_settings, &config.azure, http).await?;  // at start
//! // GET /auth/login
//! let (url, pending) = oidc.begin("https://riposte.contoso.com/auth/callback")?;
//! store pending under pending.state; answer 302 to url
//! // GET /auth/callback?code=…&state=…
//! let pending = take (load and delete) the pending login stored under the `state` parameter;
//! let signed_in = oidc.finish(code, state, &pending).await?;   // caller `oidc:<oid>`, role
//! ```
//! A pending login is used once: the caller deletes it when it reads it back, whatever
//! `finish` answers.
//!
//! Outbound calls (discovery, JWKS, code redemption) go through `connectors`' one HTTP
//! client; this is the only file of `server` that uses `connectors`.

use std::sync::RwLock;

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::settings::{OidcSettings, Role};
use crate::connectors::cloud::{Endpoints, check_endpoint_scheme};
use crate::connectors::http::{EntraErrorBody, HttpClient, OAuthHttp, OAuthTransportError};
use crate::connectors::{ApiError, AzureSettings, oidc as documents};
use crate::digest::constant_time_eq;
use crate::engine::service::Caller;

/// How long a sign-in may take between `begin` and `finish` (Entra's codes live as long).
const PENDING_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;

/// Why a sign-in failed. None of them signs anyone in; each names what went wrong.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity platform's {what} could not be read: {source}")]
    Unreachable {
        what: &'static str,
        #[source]
        source: ApiError,
    },
    #[error("the identity platform's {what} is not usable: {reason}")]
    BadDocument { what: &'static str, reason: String },
    #[error(
        "the OpenID configuration's issuer `{found}` is not the tenant's authority `{expected}`; check [azure] cloud, authority_host and tenant_id"
    )]
    IssuerMismatch { expected: String, found: String },
    #[error("[server.oidc] signs in through the [azure] tenant: {0}")]
    Authority(String),
    #[error("the callback's state is not the one this sign-in began with")]
    StateMismatch,
    #[error("the sign-in took longer than {} minutes; sign in again", PENDING_LIFETIME.num_minutes())]
    Expired,
    #[error("the redirect URI `{0}` is not a URL")]
    RedirectUri(String),
    #[error("the identity platform refused the code ({error}{}){}", aadsts_codes(.codes), first_line(.description))]
    Refused {
        error: String,
        codes: Vec<u32>,
        description: Option<String>,
    },
    #[error("the code could not be redeemed: {0}")]
    Exchange(String),
    #[error("the token response holds no id token (was `openid` granted?)")]
    NoIdToken,
    #[error("the id token is not valid: {0}")]
    InvalidIdToken(String),
    #[error("the id token is signed with key `{0}`, which the tenant's JWKS does not list")]
    UnknownKey(String),
    #[error("the id token's nonce is not the one this sign-in sent")]
    NonceMismatch,
    #[error("the id token is for tenant `{found}`, not `{expected}`")]
    WrongTenant { expected: String, found: String },
    #[error(
        "the signed-in user holds none of the review app's roles (Riposte.Viewer, Riposte.Responder, Riposte.Approver, Riposte.Admin); assign one in Entra ID"
    )]
    NoRole,
}

fn aadsts_codes(codes: &[u32]) -> String {
    codes.iter().map(|c| format!(", AADSTS{c}")).collect()
}

fn first_line(d: &Option<String>) -> String {
    // Entra's description carries trace and correlation ids after the first line.
    d.as_deref()
        .and_then(|d| d.lines().next())
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

/// What a sign-in in progress must remember until its callback: keep it server-side (in the
/// store, keyed by `state`), never in the browser. `Debug` hides the verifier and nonce.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct PendingLogin {
    /// The CSRF token sent as `state`; the callback must bring it back.
    pub state: String,
    /// Sent as `nonce`; the id token must carry it, so a token from another sign-in is refused.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge went with the authorize request.
    pub pkce_verifier: String,
    /// The redirect URI of the authorize request; the redemption must name the same one.
    pub redirect_uri: String,
    /// When `begin` made it; a pending login older than ten minutes is refused.
    pub created: DateTime<Utc>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("state", &self.state)
            .field("redirect_uri", &self.redirect_uri)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedIn {
    /// `oidc:<object id>`: what runs, approvals and the audit trail record.
    pub caller: Caller,
    /// Display name (`name`), for the page header.
    pub name: String,
    /// Sign-in name (`preferred_username`), for display only: it is not an identifier.
    pub username: String,
    /// The highest of the user's app roles.
    pub role: Role,
}

/// The id token from the token response (`oauth2` keeps unknown fields here).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenField {
    #[serde(default)]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type TokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

type Client = oauth2::Client<
    EntraErrorBody,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The claims riposte reads from an id token (the signature, `iss`, `aud`, `exp` and `nbf`
/// are checked by `jsonwebtoken`).
#[derive(Debug, Deserialize)]
struct IdClaims {
    oid: String,
    tid: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

/// The parts of the OpenID configuration riposte uses.
#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A relying party for one tenant: its endpoints from discovery and its signing keys.
pub struct OidcClient {
    client_id: String,
    client_secret: secrecy::SecretString,
    http: HttpClient,
    /// The expected `iss` of id tokens.
    issuer: String,
    /// The tenant GUID the id tokens' `tid` must name.
    tenant_id: String,
    authorization_endpoint: AuthUrl,
    token_endpoint: TokenUrl,
    jwks_uri: String,
    /// The signing keys; fetched again once when a token names a key not listed.
    jwks: RwLock<JwkSet>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Reads the tenant's OpenID configuration at `{authority_host}/{tenant}/v2.0/.well-known/
    /// openid-configuration` and its JWKS. `tenant` is `[azure] tenant_id`: a GUID, or a
    /// verified domain, in which case the GUID is the one the issuer names.
    ///
    /// The document is an answer from the network, so it is checked before anything trusts
    /// it: the issuer must be the tenant's authority, and every endpoint must be on the
    /// authority's host (the client secret goes to the token endpoint).
    pub async fn discover(
        settings: &OidcSettings,
        endpoints: &Endpoints,
        tenant: &str,
        http: HttpClient,
    ) -> Result<OidcClient, OidcError> {
        let authority = endpoints.authority_host.trim_end_matches('/');
        let bad = |reason: String| OidcError::BadDocument {
            what: "OpenID configuration",
            reason,
        };
        let tenant_segment: String =
            url::form_urlencoded::byte_serialize(tenant.as_bytes()).collect();
        let url = format!("{authority}/{tenant_segment}/v2.0/.well-known/openid-configuration");
        let document = documents::get_document(&http, &url)
            .await
            .map_err(|source| OidcError::Unreachable {
                what: "OpenID configuration",
                source,
            })?;
        let discovery: Discovery =
            serde_json::from_value(document).map_err(|e| bad(e.to_string()))?;
        let tenant_id = expected_tenant(authority, tenant, &discovery.issuer)?;
        let on_authority = |name: &str, endpoint: &str| {
            let same_host = endpoint
                .strip_prefix(authority)
                .is_some_and(|rest| rest.starts_with('/'));
            if !same_host {
                return Err(bad(format!("its {name} is not on {authority}")));
            }
            check_endpoint_scheme(endpoint).map_err(bad)
        };
        on_authority("authorization_endpoint", &discovery.authorization_endpoint)?;
        on_authority("token_endpoint", &discovery.token_endpoint)?;
        on_authority("jwks_uri", &discovery.jwks_uri)?;
        let client = OidcClient {
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            http,
            issuer: discovery.issuer,
            tenant_id,
            authorization_endpoint: AuthUrl::new(discovery.authorization_endpoint)
                .map_err(|e| bad(e.to_string()))?,
            token_endpoint: TokenUrl::new(discovery.token_endpoint)
                .map_err(|e| bad(e.to_string()))?,
            jwks_uri: discovery.jwks_uri,
            jwks: RwLock::new(JwkSet { keys: Vec::new() }),
        };
        client.refresh_keys().await?;
        Ok(client)
    }

    /// [`discover`](Self::discover) with `[azure]`'s login host (the cloud's, or
    /// `authority_host`) and `tenant_id`.
    pub async fn discover_for(
        settings: &OidcSettings,
        azure: &AzureSettings,
        http: HttpClient,
    ) -> Result<OidcClient, OidcError> {
        let tenant = azure
            .tenant_id
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| OidcError::Authority("set [azure] tenant_id".into()))?;
        let endpoints = azure
            .endpoints()
            .map_err(|e| OidcError::Authority(e.to_string()))?;
        OidcClient::discover(settings, &endpoints, tenant, http).await
    }

    /// The issuer id tokens must carry (`{authority}/{tenant GUID}/v2.0`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Starts a sign-in: the URL to send the browser to, and what to keep until the callback.
    /// `redirect_uri` is riposte's `/auth/callback` as registered on the app.
    pub fn begin(&self, redirect_uri: &str) -> Result<(url::Url, PendingLogin), OidcError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|_| OidcError::RedirectUri(redirect_uri.to_owned()))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = CsrfToken::new_random();
        let (url, state) = self
            .oauth_client(redirect)
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .add_extra_param("nonce", nonce.secret())
            .add_extra_param("response_mode", "query")
            .url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            redirect_uri: redirect_uri.to_owned(),
            created: Utc::now(),
        };
        Ok((url, pending))
    }

    /// Ends a sign-in: checks the callback's `state` against the pending login's, redeems
    /// `code` with the PKCE verifier, and validates the id token. The pending login must be
    /// the one stored under `state` and must not be used again.
    pub async fn finish(
        &self,
        code: &str,
        state: &str,
        pending: &PendingLogin,
    ) -> Result<SignedIn, OidcError> {
        if !constant_time_eq(state.as_bytes(), pending.state.as_bytes()) {
            return Err(OidcError::StateMismatch);
        }
        if Utc::now() - pending.created > PENDING_LIFETIME {
            return Err(OidcError::Expired);
        }
        let redirect = RedirectUrl::new(pending.redirect_uri.clone())
            .map_err(|_| OidcError::RedirectUri(pending.redirect_uri.clone()))?;
        let response = self
            .oauth_client(redirect)
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&OAuthHttp(&self.http))
            .await
            .map_err(exchange_error)?;
        let id_token = response
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or(OidcError::NoIdToken)?;
        self.validate(id_token, &pending.nonce).await
    }

    fn oauth_client(&self, redirect: RedirectUrl) -> Client {
        oauth2::Client::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_uri(self.authorization_endpoint.clone())
            .set_token_uri(self.token_endpoint.clone())
            .set_redirect_uri(redirect)
            .set_auth_type(AuthType::RequestBody)
    }

    async fn refresh_keys(&self) -> Result<(), OidcError> {
        let document = documents::get_document(&self.http, &self.jwks_uri)
            .await
            .map_err(|source| OidcError::Unreachable {
                what: "JWKS",
                source,
            })?;
        let keys: JwkSet =
            serde_json::from_value(document).map_err(|e| OidcError::BadDocument {
                what: "JWKS",
                reason: e.to_string(),
            })?;
        *self.jwks.write().unwrap_or_else(|p| p.into_inner()) = keys;
        Ok(())
    }

    /// The decoding key for `kid`, from the cached JWKS or, when it is not listed (a key
    /// rollover), from the JWKS fetched once more.
    async fn key(&self, kid: &str) -> Result<DecodingKey, OidcError> {
        // Only signing keys: a key published for encryption must not verify a signature.
        let cached = || {
            self.jwks
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .keys
                .iter()
                .find(|k| {
                    k.common.key_id.as_deref() == Some(kid)
                        && matches!(
                            k.common.public_key_use,
                            None | Some(jsonwebtoken::jwk::PublicKeyUse::Signature)
                        )
                })
                .cloned()
        };
        let jwk = match cached() {
            Some(jwk) => jwk,
            None => {
                self.refresh_keys().await?;
                cached().ok_or_else(|| OidcError::UnknownKey(kid.to_owned()))?
            }
        };
        DecodingKey::from_jwk(&jwk).map_err(|e| OidcError::InvalidIdToken(e.to_string()))
    }

    /// Checks an id token: RS256 only, signed by a key of the tenant's JWKS, this issuer,
    /// this app as audience, within `exp`/`nbf` (with leeway), this sign-in's nonce, this
    /// tenant; then maps its app roles.
    async fn validate(&self, token: &str, nonce: &str) -> Result<SignedIn, OidcError> {
        let invalid = |e: jsonwebtoken::errors::Error| OidcError::InvalidIdToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::InvalidIdToken(format!(
                "it is signed with {:?}; only RS256 is accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| OidcError::InvalidIdToken("its header names no key (kid)".into()))?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<IdClaims>(token, &key, &validation)
            .map_err(invalid)?
            .claims;
        let nonce_ok = claims
            .nonce
            .as_deref()
            .is_some_and(|n| constant_time_eq(n.as_bytes(), nonce.as_bytes()));
        if !nonce_ok {
            return Err(OidcError::NonceMismatch);
        }
        if !claims.tid.eq_ignore_ascii_case(&self.tenant_id) {
            return Err(OidcError::WrongTenant {
                expected: self.tenant_id.clone(),
                found: claims.tid,
            });
        }
        // The object id becomes the caller's name in runs and the audit trail: only a GUID.
        let oid = uuid::Uuid::parse_str(&claims.oid)
            .map_err(|_| OidcError::InvalidIdToken("its oid is not an object id".into()))?;
        let role = role_of(&claims.roles).ok_or(OidcError::NoRole)?;
        Ok(SignedIn {
            caller: Caller {
                name: format!("oidc:{}", oid.hyphenated()),
            },
            name: claims.name.unwrap_or_default(),
            username: claims.preferred_username.unwrap_or_default(),
            role,
        })
    }
}

/// The tenant GUID id tokens must name, from the discovery's issuer, which must be
/// `{authority}/{GUID}/v2.0` — with the configured GUID when `tenant` is one.
fn expected_tenant(authority: &str, tenant: &str, issuer: &str) -> Result<String, OidcError> {
    let mismatch = || OidcError::IssuerMismatch {
        expected: format!("{authority}/{tenant}/v2.0"),
        found: issuer.to_owned(),
    };
    let named = issuer
        .strip_prefix(authority)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_suffix("/v2.0"))
        .and_then(|guid| uuid::Uuid::parse_str(guid).ok())
        .filter(|guid| issuer == format!("{authority}/{}/v2.0", guid.hyphenated()))
        .ok_or_else(mismatch)?;
    match uuid::Uuid::parse_str(tenant) {
        Ok(configured) if configured != named => Err(mismatch()),
        _ => Ok(named.hyphenated().to_string()),
    }
}

/// The highest riposte role among an id token's app roles.
fn role_of(roles: &[String]) -> Option<Role> {
    roles
        .iter()
        .filter_map(|r| match r.as_str() {
            "Riposte.Viewer" => Some(Role::Viewer),
            "Riposte.Responder" => Some(Role::Responder),
            "Riposte.Approver" => Some(Role::Approver),
            "Riposte.Admin" => Some(Role::Admin),
            _ => None,
        })
        .max()
}

fn exchange_error(e: RequestTokenError<OAuthTransportError, EntraErrorBody>) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(body) => OidcError::Refused {
            error: body.error,
            codes: body.error_codes,
            description: body.error_description,
        },
        RequestTokenError::Request(transport) => OidcError::Exchange(transport.0.to_string()),
        RequestTokenError::Parse(e, _) => OidcError::Exchange(format!("unreadable answer: {e}")),
        RequestTokenError::Other(m) => OidcError::Exchange(m),
    }
}

/// `[server.oidc]` as the review page holds it: the settings, the HTTP client and the
/// callback address, and the client once discovered. Discovery waits for the first sign-in
/// (and is tried again after a failure), so `riposte serve` starts even while the identity
/// platform is unreachable; the API does not depend on it.
pub struct EntraSignIn {
    settings: OidcSettings,
    azure: AzureSettings,
    http: HttpClient,
    redirect_uri: String,
    client: tokio::sync::OnceCell<OidcClient>,
}

impl EntraSignIn {
    /// `public_url` is the review page's address as browsers reach it; the callback is its
    /// `/auth/callback`, which must be a redirect URI of the app registration.
    pub fn new(
        settings: OidcSettings,
        azure: &AzureSettings,
        http: HttpClient,
        public_url: &str,
    ) -> EntraSignIn {
        EntraSignIn {
            settings,
            azure: azure.clone(),
            http,
            redirect_uri: format!("{}/auth/callback", public_url.trim_end_matches('/')),
            client: tokio::sync::OnceCell::new(),
        }
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The discovered client.
    pub async fn client(&self) -> Result<&OidcClient, OidcError> {
        self.client
            .get_or_try_init(|| {
                OidcClient::discover_for(&self.settings, &self.azure, self.http.clone())
            })
            .await
    }
}

impl std::fmt::Debug for EntraSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraSignIn")
            .field("client_id", &self.settings.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_highest_known_app_role_wins() {
        assert_eq!(role_of(&roles(&["Riposte.Viewer"])), Some(Role::Viewer));
        assert_eq!(
            role_of(&roles(&["Riposte.Approver", "Riposte.Viewer"])),
            Some(Role::Approver)
        );
        assert_eq!(
            role_of(&roles(&["Other.Role", "Riposte.Responder"])),
            Some(Role::Responder)
        );
        assert_eq!(role_of(&roles(&["Riposte.Admin"])), Some(Role::Admin));
        assert_eq!(role_of(&roles(&["riposte.admin", "Admin", "ingest"])), None);
        assert_eq!(role_of(&[]), None);
    }

    #[test]
    fn a_pending_login_round_trips_and_hides_its_secrets_from_debug() {
        let pending = PendingLogin {
            state: "st".into(),
            nonce: "secret-nonce".into(),
            pkce_verifier: "secret-verifier".into(),
            redirect_uri: "http://127.0.0.1:1/auth/callback".into(),
            created: Utc::now(),
        };
        let json = serde_json::to_string(&pending).unwrap();
        assert_eq!(
            serde_json::from_str::<PendingLogin>(&json).unwrap(),
            pending
        );
        let shown = format!("{pending:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    /// A client whose documents were never read; its JWKS is empty and unreachable.
    fn offline_client() -> OidcClient {
        use crate::connectors::HttpOptions;
        OidcClient {
            client_id: "app".into(),
            client_secret: secrecy::SecretString::from("s"),
            http: HttpClient::new(HttpOptions {
                max_retries: 0,
                ..HttpOptions::default()
            })
            .unwrap(),
            issuer: "https://login.microsoftonline.com/t/v2.0".into(),
            tenant_id: "t".into(),
            authorization_endpoint: AuthUrl::new("https://login.microsoftonline.com/t/a".into())
                .unwrap(),
            token_endpoint: TokenUrl::new("https://login.microsoftonline.com/t/t".into()).unwrap(),
            jwks_uri: "http://127.0.0.1:9/keys".into(),
            jwks: RwLock::new(JwkSet { keys: Vec::new() }),
        }
    }

    #[tokio::test]
    async fn a_key_published_for_encryption_verifies_nothing() {
        let client = offline_client();
        *client.jwks.write().unwrap() = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "RSA", "use": "enc", "kid": "k", "n": "AQAB", "e": "AQAB"}
        ]}))
        .unwrap();
        // Not a signing key, so the client looks for it again (and cannot reach the JWKS).
        let error = client.key("k").await.unwrap_err();
        assert!(matches!(error, OidcError::Unreachable { .. }), "{error}");
    }

    #[tokio::test]
    async fn the_authority_needs_the_azure_tenant() {
        let settings: OidcSettings =
            serde_json::from_value(serde_json::json!({"client_id": "a", "client_secret": "s"}))
                .unwrap();
        let http = offline_client().http;
        let error = OidcClient::discover_for(&settings, &AzureSettings::default(), http)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("tenant_id"), "{error}");
    }

    /// The routes await `finish` inside axum handlers, whose futures must be `Send`.
    #[test]
    fn sign_in_futures_are_send() {
        fn send<T: Send>(_: T) {}
        let client = offline_client();
        let pending = PendingLogin {
            state: "s".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            redirect_uri: "http://127.0.0.1:1/auth/callback".into(),
            created: Utc::now(),
        };
        send(client.finish("c", "s", &pending));
    }

    #[tokio::test]
    async fn only_rs256_id_tokens_are_considered() {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let client = offline_client();
        for alg in [Algorithm::HS256, Algorithm::HS512] {
            let mut header = jsonwebtoken::Header::new(alg);
            header.kid = Some("k".into());
            let token = jsonwebtoken::encode(
                &header,
                &serde_json::json!({"oid": "x"}),
                &jsonwebtoken::EncodingKey::from_secret(b"k"),
            )
            .unwrap();
            let error = client.validate(&token, "n").await.unwrap_err();
            assert!(error.to_string().contains("only RS256"), "{alg:?}: {error}");
        }
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"oid":"x"}"#)
        );
        let error = client.validate(&none, "n").await.unwrap_err();
        assert!(matches!(error, OidcError::InvalidIdToken(_)), "{error}");
    }

    #[test]
    fn the_issuer_must_be_the_tenants_authority() {
        let authority = "https://login.microsoftonline.com";
        let tid = "d5f1a6c2-3b8e-4f0a-9c2d-7e1b4a6f0c11";
        let issuer = format!("{authority}/{tid}/v2.0");
        assert_eq!(expected_tenant(authority, tid, &issuer).unwrap(), tid);
        // A domain takes the GUID the issuer names.
        assert_eq!(
            expected_tenant(authority, "contoso.com", &issuer).unwrap(),
            tid
        );
        for wrong in [
            format!("{authority}/00000000-0000-0000-0000-000000000001/v2.0"),
            format!("https://login.evil.example/{tid}/v2.0"),
            format!("{authority}/{tid}/v2.0/extra"),
            format!("{authority}/{tid}"),
            format!("https://sts.windows.net/{tid}/"),
            format!("{authority}/{}/v2.0", tid.to_uppercase()),
        ] {
            assert!(
                matches!(
                    expected_tenant(authority, tid, &wrong),
                    Err(OidcError::IssuerMismatch { .. })
                ),
                "{wrong}"
            );
        }
        assert!(
            expected_tenant(
                authority,
                "contoso.com",
                "https://login.microsoftonline.com/common/v2.0"
            )
            .is_err()
        );
    }
}
